//! The only code that touches sled.
//!
//! All records live in one tree, under the key layout of [`keys`]. A command's writes are
//! collected in a [`Writer`] (reads see them) and applied as one atomic sled batch under a
//! store-wide write lock, so a command's change, its stamp, its history and the
//! notifications it causes land together or not at all, and never conflict. Readers share
//! the lock, so they never see half a batch. Durability comes after, through
//! [`commit::GroupCommit`]; replies wait for it.

pub mod commit;
pub mod issues;
pub mod keys;
pub mod notify;
pub mod projects;
pub mod subscriptions;
pub mod types;
pub mod users;

use crate::error::{Error, Result};
use serde::{Serialize, de::DeserializeOwned};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

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

pub struct Store {
    db: sled::Db,
    tree: sled::Tree,
    lock: RwLock<()>,
    commit: Arc<commit::GroupCommit>,
    committer: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
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
    tree: &'a sled::Tree,
}

impl Read for Reader<'_> {
    fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.tree.get(key)?.map(|v| v.to_vec()))
    }

    fn scan_raw(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.tree
            .scan_prefix(prefix)
            .map(|r| {
                let (k, v) = r?;
                Ok((k.to_vec(), v.to_vec()))
            })
            .collect()
    }

    fn range_raw(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        if start >= end {
            return Ok(Vec::new());
        }
        self.tree
            .range(start.to_vec()..end.to_vec())
            .take(limit)
            .map(|r| {
                let (k, v) = r?;
                Ok((k.to_vec(), v.to_vec()))
            })
            .collect()
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
    /// Opens the store in `dir` with a page cache of `cache_bytes`.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Store> {
        std::fs::create_dir_all(dir)?;
        let db = sled::Config::new()
            .path(dir.join("db"))
            .cache_capacity(cache_bytes)
            .open()?;
        let tree = db.open_tree("data")?;
        // sled keeps its log in the file `db` of its directory; fsync on our own handle
        // flushes the same file.
        let log = std::fs::File::open(dir.join("db").join("db"))?;
        let (commit, handle) = commit::GroupCommit::start(db.clone(), log);
        Ok(Store {
            db,
            tree,
            lock: RwLock::new(()),
            commit,
            committer: std::sync::Mutex::new(Some(handle)),
            fanout: std::sync::OnceLock::new(),
        })
    }

    /// Turns on notification fan-out for every later write (once, at start-up).
    pub fn enable_fanout(&self, cfg: notify::FanoutConfig) {
        let _ = self.fanout.set(cfg);
    }

    /// Runs `f` with a consistent view of the data.
    pub fn read<T>(&self, f: impl FnOnce(&Reader) -> Result<T>) -> Result<T> {
        let _guard = self.lock.read().map_err(Error::internal)?;
        f(&Reader { tree: &self.tree })
    }

    /// Runs `f` and applies its writes atomically if it succeeds. Returns `f`'s value and the
    /// batch's sequence number (0 if it wrote nothing), for [`Store::durable`].
    pub fn write<T>(&self, f: impl FnOnce(&mut Writer) -> Result<T>) -> Result<(T, u64)> {
        let _guard = self.lock.write().map_err(Error::internal)?;
        let mut w = Writer {
            reader: Reader { tree: &self.tree },
            pending: BTreeMap::new(),
            fanout: self.fanout.get(),
        };
        let value = f(&mut w)?;
        if w.is_empty() {
            return Ok((value, 0));
        }
        let mut batch = sled::Batch::default();
        for (k, v) in w.pending {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        self.tree.apply_batch(batch)?;
        Ok((value, self.commit.applied()))
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

    /// Flushes everything written so far, blocking (start-up, tools).
    pub fn flush_now(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    /// Flushes everything now and stops the committer (shutdown).
    pub fn close(&self) -> Result<()> {
        self.commit.stop();
        if let Some(h) = self.committer.lock().map_err(Error::internal)?.take() {
            let _ = h.join();
        }
        self.db.flush()?;
        Ok(())
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
}
