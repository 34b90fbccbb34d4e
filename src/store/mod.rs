//! The store: every record in memory, made durable by a write-ahead log, kept in sled.
//!
//! All records live in one ordered map, under the key layout of [`keys`]; commands read it
//! without touching the disk. A command's writes are collected in a [`Writer`] (reads see
//! them) and applied as one batch under a store-wide write lock, so a command's change, its
//! stamp, its history and the notifications it causes land together or not at all, and never
//! conflict. Readers share the lock, so they never see half a batch.
//!
//! Durability: the batch is appended to the write-ahead log ([`wal`]) and the reply waits
//! until [`commit::GroupCommit`] has `fdatasync`ed it, one flush for all concurrent writers.
//! Closed log files are folded into sled's `data` tree by [`checkpoint`]; at start-up sled's
//! tree is loaded into memory and the log files not yet folded are replayed on top.

pub mod checkpoint;
pub mod commit;
pub mod issues;
pub mod keys;
pub mod notify;
pub mod projects;
pub mod subscriptions;
pub mod types;
pub mod users;
pub mod wal;

use crate::error::{Error, Result};
use serde::{Serialize, de::DeserializeOwned};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub use keys::{key, key_str};

/// What happened to an issue: one entry per stamp, written with the change itself. The
/// notification pass and subscriptions read this log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct IssueEvent {
    pub stamp: u64,
    pub issue: u64,
    pub folder: u64,
    pub project: u64,
    pub user: u64,
    pub time: i64,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum EventKind {
    Created {
        name: String,
    },
    Renamed {
        old: String,
        new: String,
    },
    ValueSet {
        attribute: u64,
        old: String,
        new: String,
    },
    Commented,
    Attached {
        name: String,
    },
}

/// Every record, in key order.
type Mem = BTreeMap<Box<[u8]>, Box<[u8]>>;

/// Where the store keeps its files and when it checkpoints.
#[derive(Debug, Clone)]
pub struct Options {
    /// sled's page cache in bytes (sled is only read at start-up and written at checkpoints).
    pub cache_bytes: u64,
    /// A log file is closed and folded into sled once it holds this many bytes...
    pub checkpoint_bytes: u64,
    /// ...or once it is this old and not empty.
    pub checkpoint_age: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cache_bytes: 16 << 20,
            checkpoint_bytes: 64 << 20,
            checkpoint_age: Duration::from_secs(300),
        }
    }
}

pub struct Store {
    db: sled::Db,
    mem: RwLock<Mem>,
    commit: Arc<commit::GroupCommit>,
    committer: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    checkpointer: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Bumped by every batch that touches projects or folders, so what is derived from them
    /// (LIST PROJECTS' encoded lines) knows when to rebuild.
    catalogue_generation: std::sync::atomic::AtomicU64,
    /// Set when notifications are enabled: every recorded event then fans out to watchers.
    fanout: std::sync::OnceLock<notify::FanoutConfig>,
}

/// Read access to records. Implemented by [`Reader`] and by [`Writer`] (which also sees its
/// own pending writes), so record functions work in both.
pub trait Read {
    fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// All entries whose key starts with `prefix`, in key order.
    fn scan_raw(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
    /// Entries with `start <= key < end`, in key order, at most `limit` of them.
    fn range_raw(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;

    fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>> {
        match self.get_raw(key)? {
            Some(v) => Ok(Some(postcard::from_bytes(&v)?)),
            None => Ok(None),
        }
    }

    fn exists(&self, key: &[u8]) -> Result<bool> {
        Ok(self.get_raw(key)?.is_some())
    }

    fn scan<T: DeserializeOwned>(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, T)>> {
        self.scan_raw(prefix)?
            .into_iter()
            .map(|(k, v)| Ok((k, postcard::from_bytes(&v)?)))
            .collect()
    }

    /// Whether any key starts with `prefix`.
    fn any(&self, prefix: &[u8]) -> Result<bool> {
        Ok(!self.scan_raw(prefix)?.is_empty())
    }

    /// The current value of a counter (0 if never used).
    fn counter(&self, name: &str) -> Result<u64> {
        Ok(self.get::<u64>(&key_str("ctr", name))?.unwrap_or(0))
    }
}

pub struct Reader<'a> {
    mem: &'a Mem,
}

impl Reader<'_> {
    fn prefixed<'b>(&'b self, prefix: &'b [u8]) -> impl Iterator<Item = (&'b [u8], &'b [u8])> {
        self.mem
            .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (&k[..], &v[..]))
    }
}

impl Read for Reader<'_> {
    fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.mem.get(key).map(|v| v.to_vec()))
    }

    // The overrides below decode straight from the map, without copying values first.
    fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>> {
        match self.mem.get(key) {
            Some(v) => Ok(Some(postcard::from_bytes(v)?)),
            None => Ok(None),
        }
    }

    fn exists(&self, key: &[u8]) -> Result<bool> {
        Ok(self.mem.contains_key(key))
    }

    fn scan<T: DeserializeOwned>(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, T)>> {
        self.prefixed(prefix)
            .map(|(k, v)| Ok((k.to_vec(), postcard::from_bytes(v)?)))
            .collect()
    }

    fn any(&self, prefix: &[u8]) -> Result<bool> {
        Ok(self.prefixed(prefix).next().is_some())
    }

    fn scan_raw(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        Ok(self
            .prefixed(prefix)
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect())
    }

    fn range_raw(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        if start >= end {
            return Ok(Vec::new());
        }
        Ok(self
            .mem
            .range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)))
            .take(limit)
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect())
    }
}

/// Pending writes of one command. Nothing reaches sled unless the closure succeeds.
pub struct Writer<'a> {
    reader: Reader<'a>,
    pending: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    fanout: Option<&'a notify::FanoutConfig>,
}

impl Read for Writer<'_> {
    fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.pending.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.reader.get_raw(key),
        }
    }

    fn scan_raw(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> =
            self.reader.scan_raw(prefix)?.into_iter().collect();
        for (k, v) in self.pending.range(prefix.to_vec()..) {
            if !k.starts_with(prefix) {
                break;
            }
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        Ok(merged.into_iter().collect())
    }

    fn range_raw(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        if start >= end {
            return Ok(Vec::new());
        }
        // Pending removals can hide stored entries, so read enough to still fill `limit`.
        let removed = self
            .pending
            .range(start.to_vec()..end.to_vec())
            .filter(|(_, v)| v.is_none())
            .count();
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = self
            .reader
            .range_raw(start, end, limit.saturating_add(removed))?
            .into_iter()
            .collect();
        for (k, v) in self.pending.range(start.to_vec()..end.to_vec()) {
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        Ok(merged.into_iter().take(limit).collect())
    }
}

impl Writer<'_> {
    pub fn put<T: Serialize + ?Sized>(&mut self, key: Vec<u8>, value: &T) -> Result<()> {
        self.pending.insert(key, Some(postcard::to_stdvec(value)?));
        Ok(())
    }

    pub fn put_raw(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.pending.insert(key, Some(value));
    }

    pub fn remove(&mut self, key: Vec<u8>) {
        self.pending.insert(key, None);
    }

    /// Removes every entry whose key starts with `prefix`.
    pub fn remove_prefix(&mut self, prefix: &[u8]) -> Result<()> {
        for (k, _) in self.scan_raw(prefix)? {
            self.remove(k);
        }
        Ok(())
    }

    /// Takes the next value of a counter (first value 1).
    pub fn next_id(&mut self, name: &str) -> Result<u64> {
        let next = self.counter(name)? + 1;
        self.put(key_str("ctr", name), &next)?;
        Ok(next)
    }

    /// Takes the next value of the global stamp sequence (protocol-spec: stamps).
    pub fn next_stamp(&mut self) -> Result<u64> {
        self.next_id("stamp")
    }

    /// Appends an issue event to the change log, keyed by its stamp, and writes the pending
    /// notifications it causes (watchers when notifications are on, and subscriptions), in
    /// the same atomic batch.
    pub fn record_event(&mut self, event: &IssueEvent) -> Result<()> {
        self.put(key("event", &[event.stamp]), event)?;
        if let Some(cfg) = self.fanout {
            notify::fan_out(self, event, cfg)?;
            subscriptions::fan_out(self, event)?;
        }
        Ok(())
    }

    /// The notification settings the store was given, if notifications are enabled.
    pub fn fanout_config(&self) -> Option<&notify::FanoutConfig> {
        self.fanout
    }

    fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

impl Store {
    /// Opens the store in `dir` with a page cache of `cache_bytes` and default checkpoints.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Store> {
        Store::open_with(
            dir,
            Options {
                cache_bytes,
                ..Options::default()
            },
        )
    }

    /// Opens the store in `dir`: loads sled's tree into memory, replays the log files not yet
    /// folded into it, and starts the committer and the checkpointer.
    pub fn open_with(dir: &Path, options: Options) -> Result<Store> {
        let started = std::time::Instant::now();
        std::fs::create_dir_all(dir)?;
        let db = sled::Config::new()
            .path(dir.join("db"))
            .cache_capacity(options.cache_bytes)
            .flush_every_ms(None)
            .open()?;
        let tree = db.open_tree("data")?;
        let opened = started.elapsed();
        let folded = checkpoint::folded_seq(&tree)?;
        let mut mem: Mem = tree
            .iter()
            .filter(|r| !matches!(r, Ok((k, _)) if k.as_ref() == checkpoint::CHECKPOINT_KEY))
            .map(|r| {
                let (k, v) = r?;
                Ok((Box::from(k.as_ref()), Box::from(v.as_ref())))
            })
            .collect::<Result<_>>()?;

        let loaded = started.elapsed();
        let wal_dir = dir.join("wal");
        std::fs::create_dir_all(&wal_dir)?;
        let files = wal::files(&wal_dir)?;
        let mut last = folded;
        for (_, path) in &files {
            let summary = wal::read_file(path, |seq, ops| {
                if seq > folded {
                    apply(&mut mem, ops);
                    last = last.max(seq);
                }
            })?;
            if summary.torn {
                tracing::warn!(
                    file = %path.display(),
                    intact = summary.records,
                    "log file ends in an unfinished record (a crash before its flush); it was never acknowledged"
                );
            }
        }
        tracing::info!(
            keys = mem.len(),
            sled_open_ms = opened.as_millis() as u64,
            load_ms = (loaded - opened).as_millis() as u64,
            replay_ms = (started.elapsed() - loaded).as_millis() as u64,
            "store loaded"
        );
        let next_gen = files.last().map_or(1, |(g, _)| g + 1);
        let log = wal::LogFile::create(&wal_dir, next_gen)?;

        // sled keeps its log in the file `db` of its directory; fdatasync on our own handle
        // flushes the same file.
        let sled_log = std::fs::File::open(dir.join("db").join("db"))?;
        let (closed_tx, closed_rx) = std::sync::mpsc::channel::<PathBuf>();
        for (_, path) in files {
            let _ = closed_tx.send(path);
        }
        let checkpointer = checkpoint::Checkpointer {
            db: db.clone(),
            tree,
            sled_log,
            wal_dir: wal_dir.clone(),
        };
        let checkpoint_handle = std::thread::Builder::new()
            .name("checkpoint".into())
            .spawn(move || checkpointer.run(closed_rx))?;
        let (commit, handle) = commit::GroupCommit::start(
            log,
            wal_dir,
            last,
            commit::Rotation {
                max_bytes: options.checkpoint_bytes,
                max_age: options.checkpoint_age,
            },
            closed_tx,
        );
        Ok(Store {
            db,
            mem: RwLock::new(mem),
            commit,
            committer: std::sync::Mutex::new(Some(handle)),
            checkpointer: std::sync::Mutex::new(Some(checkpoint_handle)),
            catalogue_generation: std::sync::atomic::AtomicU64::new(0),
            fanout: std::sync::OnceLock::new(),
        })
    }

    /// Turns on notification fan-out for every later write (once, at start-up).
    pub fn enable_fanout(&self, cfg: notify::FanoutConfig) {
        let _ = self.fanout.set(cfg);
    }

    /// Runs `f` with a consistent view of the data.
    pub fn read<T>(&self, f: impl FnOnce(&Reader) -> Result<T>) -> Result<T> {
        let guard = self.mem.read().map_err(Error::internal)?;
        f(&Reader { mem: &guard })
    }

    /// Runs `f` and applies its writes atomically if it succeeds. Returns `f`'s value and the
    /// batch's sequence number (0 if it wrote nothing), for [`Store::durable`].
    pub fn write<T>(&self, f: impl FnOnce(&mut Writer) -> Result<T>) -> Result<(T, u64)> {
        let mut guard = self.mem.write().map_err(Error::internal)?;
        let mut w = Writer {
            reader: Reader { mem: &guard },
            pending: BTreeMap::new(),
            fanout: self.fanout.get(),
        };
        let value = f(&mut w)?;
        if w.is_empty() {
            return Ok((value, 0));
        }
        let pending = w.pending;
        if pending.keys().any(|k| is_catalogue_key(k)) {
            self.catalogue_generation
                .fetch_add(1, std::sync::atomic::Ordering::Release);
        }
        let seq = self
            .commit
            .append(pending.iter().map(|(k, v)| (k.as_slice(), v.as_deref())));
        apply(&mut guard, pending);
        Ok((value, seq))
    }

    /// Changes whenever projects or folders (names, types, stamps) change. Read it inside
    /// [`Store::read`] to pair it with what that read sees.
    pub fn catalogue_generation(&self) -> u64 {
        self.catalogue_generation
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Waits until the batch with sequence `seq` is on disk.
    pub async fn durable(&self, seq: u64) {
        if seq != 0 && !self.commit.is_durable(seq) {
            self.commit.durable(seq).await;
        }
    }

    /// The sequence of the newest batch applied so far: every write a read has seen is at or
    /// below it, so waiting for it to be [`Store::durable`] makes what was read durable.
    pub fn last_applied(&self) -> u64 {
        self.commit.last_applied()
    }

    /// Blocks until everything written so far is durable (start-up, tools).
    pub fn flush_now(&self) -> Result<()> {
        self.commit.wait_durable(self.commit.last_applied());
        Ok(())
    }

    /// Makes everything durable, folds the log into sled and stops the store's threads
    /// (shutdown).
    pub fn close(&self) -> Result<()> {
        self.commit.stop();
        if let Some(h) = self.committer.lock().map_err(Error::internal)?.take() {
            let _ = h.join();
        }
        // The committer held the last sender: the checkpointer ends once it has folded all.
        if let Some(h) = self.checkpointer.lock().map_err(Error::internal)?.take() {
            let _ = h.join();
        }
        self.db.flush()?;
        Ok(())
    }
}

/// Keys whose change alters the project and folder list.
fn is_catalogue_key(k: &[u8]) -> bool {
    k.starts_with(b"project") || k.starts_with(b"folder/")
}

/// Applies a batch's writes to the in-memory map.
fn apply(mem: &mut Mem, ops: impl IntoIterator<Item = (Vec<u8>, Option<Vec<u8>>)>) {
    for (k, v) in ops {
        match v {
            Some(v) => {
                mem.insert(k.into_boxed_slice(), v.into_boxed_slice());
            }
            None => {
                mem.remove(k.as_slice());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_atomic_and_visible_to_their_own_reads() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let ((), seq) = store
            .write(|w| {
                let id = w.next_id("user")?;
                w.put(key("x", &[id]), &"one")?;
                assert_eq!(w.get::<String>(&key("x", &[1]))?, Some("one".into()));
                assert_eq!(w.scan::<String>(b"x/")?.len(), 1);
                Ok(())
            })
            .unwrap();
        assert_eq!(seq, 1);
        let failed: Result<((), u64)> = store.write(|w| {
            w.put(key("x", &[2]), &"two")?;
            Err(Error::new(crate::error::Code::UnknownUser))
        });
        assert!(failed.is_err());
        let n = store.read(|r| Ok(r.scan::<String>(b"x/")?.len())).unwrap();
        assert_eq!(n, 1, "a failed command writes nothing");
        let (_, seq) = store.write(|w| w.remove_prefix(b"x/")).unwrap();
        assert_eq!(seq, 2);
        assert!(!store.read(|r| r.any(b"x/")).unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_become_durable() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path(), 1 << 20).unwrap());
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..20 {
                    let (_, seq) = store
                        .write(|w| {
                            let id = w.next_id("n")?;
                            w.put(key("n", &[id]), &id)
                        })
                        .unwrap();
                    store.durable(seq).await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(store.read(|r| r.counter("n")).unwrap(), 400);
        store.close().unwrap();
    }

    fn small_logs() -> Options {
        Options {
            cache_bytes: 1 << 20,
            checkpoint_bytes: 300,
            checkpoint_age: Duration::from_secs(3600),
        }
    }

    fn put_numbers(store: &Store, range: std::ops::RangeInclusive<u64>) {
        for i in range {
            store
                .write(|w| {
                    w.put(key("x", &[i]), &i)?;
                    w.put(key_str("ctr", "x"), &i)
                })
                .unwrap();
        }
        store.flush_now().unwrap();
    }

    #[test]
    fn checkpoints_fold_the_log_into_sled_and_a_reopen_sees_everything() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with(dir.path(), small_logs()).unwrap();
        put_numbers(&store, 1..=100);
        store.write(|w| w.remove_prefix(&key("x", &[50]))).unwrap();
        store.close().unwrap();
        drop(store);
        let left: Vec<_> = wal::files(&dir.path().join("wal")).unwrap();
        assert!(
            left.iter()
                .all(|(_, p)| std::fs::metadata(p).unwrap().len() == 0),
            "every written log file was folded and removed: {left:?}"
        );

        let store = Store::open_with(dir.path(), small_logs()).unwrap();
        let (n, ctr) = store
            .read(|r| Ok((r.scan::<u64>(b"x/")?.len(), r.counter("x")?)))
            .unwrap();
        assert_eq!((n, ctr), (99, 100));
        // Sequences go on from the folded ones.
        let (_, seq) = store.write(|w| w.put(key("x", &[500]), &500u64)).unwrap();
        assert_eq!(seq, 102);
        store.close().unwrap();
    }

    #[test]
    fn start_up_replays_unfolded_log_records_up_to_a_damaged_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with(dir.path(), small_logs()).unwrap();
        put_numbers(&store, 1..=3);
        store.close().unwrap();
        drop(store);

        // A log file as a crash leaves it: two intact records, then half of a third.
        let wal_dir = dir.path().join("wal");
        let mut log = wal::LogFile::create(&wal_dir, 0xff).unwrap();
        let mut bytes = Vec::new();
        wal::encode(
            &mut bytes,
            4,
            [(&b"x/new"[..], Some(&b"\x01"[..]))].into_iter(),
        );
        wal::encode(&mut bytes, 5, [(&key("x", &[1])[..], None)].into_iter());
        let intact = bytes.len();
        wal::encode(
            &mut bytes,
            6,
            [(&b"x/lost"[..], Some(&b"\x01"[..]))].into_iter(),
        );
        log.append_durable(&bytes[..intact + 10]).unwrap();

        let store = Store::open_with(dir.path(), small_logs()).unwrap();
        let keys: Vec<Vec<u8>> = store
            .read(|r| Ok(r.scan_raw(b"x/")?.into_iter().map(|(k, _)| k).collect()))
            .unwrap();
        assert!(keys.contains(&b"x/new".to_vec()));
        assert!(
            !keys.contains(&key("x", &[1])),
            "the replayed removal applies"
        );
        assert!(
            !keys.contains(&b"x/lost".to_vec()),
            "the damaged record does not"
        );
        assert_eq!(store.last_applied(), 5);
        store.close().unwrap();
        drop(store);
        // Folded by the close: a third opening finds the same without any log.
        let store = Store::open_with(dir.path(), small_logs()).unwrap();
        assert!(store.read(|r| r.exists(b"x/new")).unwrap());
        assert!(!store.read(|r| r.exists(&key("x", &[1]))).unwrap());
        store.close().unwrap();
    }
}
