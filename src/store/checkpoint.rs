//! Checkpoints: folding closed log files into sled, on a thread of their own.
//!
//! The newest value of every key written in a file goes to sled in one batch (a key written
//! a thousand times is written once), together with the sequence of the file's last record
//! under [`CHECKPOINT_KEY`]. sled is then flushed (and its log `fdatasync`ed: sled 0.34.7
//! only calls `sync_file_range`), and only then is the file removed. A crash at any point
//! leaves either the file or its data in sled, and replay skips what sled already has.

use super::wal;
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The key in sled's data tree holding the sequence of the last folded batch. It sorts after
/// every record key and is never loaded into memory.
pub const CHECKPOINT_KEY: &[u8] = b"~checkpoint";

/// The sequence sled has folded up to (0 for a store that never had a log).
pub fn folded_seq(tree: &sled::Tree) -> crate::error::Result<u64> {
    Ok(match tree.get(CHECKPOINT_KEY)? {
        Some(v) => u64::from_be_bytes(
            v.as_ref()
                .try_into()
                .map_err(crate::error::Error::internal)?,
        ),
        None => 0,
    })
}

/// Opens sled's database under `dir` (the store's `db/`) and its `data` tree.
pub fn open_sled(dir: &Path, cache_bytes: u64) -> crate::error::Result<(sled::Db, sled::Tree)> {
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(cache_bytes)
        .flush_every_ms(None)
        .open()?;
    let tree = db.open_tree("data")?;
    Ok((db, tree))
}

/// Makes the calling thread the last to get a core (Linux: a thread's own nice value).
fn lower_priority() {
    // SAFETY: plain system calls on the calling thread's id.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 19);
    }
}

/// Hands memory freed by sled back to the system: between checkpoints the server holds no
/// sled state at all.
pub fn release_memory() {
    // SAFETY: malloc_trim only walks glibc's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// How often a waiting checkpointer looks at the write activity.
const POLL: Duration = Duration::from_millis(100);

/// Keys per sled batch when folding.
const FOLD_CHUNK: usize = 10_000;

pub struct Checkpointer {
    /// sled's directory (`db/` of the data directory).
    pub sled_dir: PathBuf,
    pub cache_bytes: u64,
    pub wal_dir: PathBuf,
    /// Set at shutdown: finish the file being folded, leave the rest to the next start.
    pub stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The newest applied sequence: while it moves, writes are coming in.
    pub activity: Box<dyn Fn() -> u64 + Send>,
    /// When folds wait for writes to pause, and when they stop waiting.
    pub schedule: Schedule,
}

/// When closed log files are folded. Folding costs about 10 µs of CPU and several sled
/// flushes per key, which a burst of writes would pay for in latency; so folds wait for
/// writes to pause, but never longer than the limits here.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// No write for this long counts as a pause.
    pub quiet: Duration,
    /// Fold regardless once the waiting files hold this many bytes...
    pub backlog_bytes: u64,
    /// ...or once the oldest has waited this long.
    pub max_wait: Duration,
}

/// A closed log file waiting to be folded.
struct Waiting {
    path: PathBuf,
    /// Its size on disk (a file prepared with zeros counts all of them).
    bytes: u64,
    since: Instant,
}

impl Waiting {
    fn new(path: PathBuf) -> Waiting {
        let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
        Waiting {
            path,
            bytes,
            since: Instant::now(),
        }
    }
}

impl Checkpointer {
    /// Folds the files received, oldest first, as [`Schedule`] allows, until every sender is
    /// gone. sled is opened for each file and closed after it.
    ///
    /// The thread runs at the lowest priority: sled inserts cost about 10 µs a key here, and
    /// folding must not take CPU from the commands.
    pub fn run(self, files: mpsc::Receiver<PathBuf>) {
        lower_priority();
        let mut waiting: VecDeque<Waiting> = VecDeque::new();
        let mut seen = (self.activity)();
        let mut last_write = Instant::now();
        let mut senders_gone = false;
        loop {
            let received = if waiting.is_empty() && !senders_gone {
                files
                    .recv()
                    .map_err(|_| mpsc::RecvTimeoutError::Disconnected)
            } else {
                files.recv_timeout(POLL)
            };
            match received {
                Ok(path) => waiting.push_back(Waiting::new(path)),
                Err(mpsc::RecvTimeoutError::Disconnected) => senders_gone = true,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            while let Ok(path) = files.try_recv() {
                waiting.push_back(Waiting::new(path));
            }
            let now = (self.activity)();
            if now != seen {
                (seen, last_write) = (now, Instant::now());
            }
            let Some(oldest) = waiting.front() else {
                if senders_gone {
                    return;
                }
                continue;
            };
            let backlog: u64 = waiting.iter().map(|w| w.bytes).sum();
            let due = senders_gone
                || last_write.elapsed() >= self.schedule.quiet
                || backlog >= self.schedule.backlog_bytes
                || oldest.since.elapsed() >= self.schedule.max_wait;
            if !due {
                continue;
            }
            // One file per sled session: sled's memory grows with the keys written while
            // it is open (about 4 KB a key here) and is only returned when it closes.
            let round = [oldest.path.clone()];
            loop {
                match self.fold_all(&round) {
                    Ok(None) => break,
                    Ok(Some((path, at))) => {
                        // Folding stops here for good: the file (and every later one) stays
                        // for the next start to refuse and `webissued salvage` to read, and
                        // folding later files would put batches after a hole into sled.
                        tracing::error!(
                            file = %path.display(),
                            at,
                            "damaged log file: not folded and kept; no further checkpoints; the server serves from memory, but will refuse to start until `webissued salvage` is run"
                        );
                        while files.recv().is_ok() {}
                        return;
                    }
                    Err(e) => {
                        if self.stopping() {
                            return;
                        }
                        tracing::error!(error = %e, "checkpoint failed; retrying");
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            }
            waiting.pop_front();
            release_memory();
            if self.stopping() {
                return;
            }
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Folds `paths`, then removes them; or, when one of them is damaged, stops before it
    /// and returns its path and the offset of the damage (nothing is removed).
    fn fold_all(&self, paths: &[PathBuf]) -> crate::error::Result<Option<(PathBuf, u64)>> {
        let mut folded = Vec::new();
        {
            let (db, tree) = open_sled(&self.sled_dir, self.cache_bytes)?;
            // sled keeps its log in the file `db` of its directory; fdatasync on our own
            // handle flushes the same file.
            let sled_log = std::fs::File::open(self.sled_dir.join("db"))?;
            for path in paths {
                if self.stopping() {
                    break;
                }
                // A file folded before a failure in this round is gone already.
                if path.exists() {
                    if let Some(at) = self.fold(&db, &tree, &sled_log, path)? {
                        return Ok(Some((path.clone(), at)));
                    }
                    folded.push(path);
                }
            }
        }
        // sled replays everything written since its last snapshot when it opens and only
        // snapshots while opening, so an opening here keeps the server's next start short.
        if !self.stopping() {
            drop(open_sled(&self.sled_dir, self.cache_bytes)?);
        }
        for path in folded {
            std::fs::remove_file(path)?;
        }
        wal::sync_dir(&self.wal_dir)?;
        Ok(None)
    }

    /// Folds one closed log file into sled (the caller removes it). A damaged file (a bad
    /// record, or bytes after its last one) is not folded: returns the damage's offset.
    fn fold(
        &self,
        db: &sled::Db,
        tree: &sled::Tree,
        sled_log: &std::fs::File,
        path: &Path,
    ) -> crate::error::Result<Option<u64>> {
        let started = std::time::Instant::now();
        let done = folded_seq(tree)?;
        let mut latest: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        let mut last = done;
        let summary = wal::read_file(path, |seq, ops| {
            if seq > done {
                latest.extend(ops);
                last = seq;
            }
        })?;
        if summary.torn {
            return Ok(Some(summary.valid_bytes));
        }
        if last > done {
            let keys = latest.len();
            // In flushed chunks: a whole file at once made sled hold over a gigabyte.
            // A crash between chunks is safe: the file stays and is folded again.
            let mut batch = sled::Batch::default();
            for (n, (k, v)) in latest.into_iter().enumerate() {
                match v {
                    Some(v) => batch.insert(k, v),
                    None => batch.remove(k),
                }
                if (n + 1) % FOLD_CHUNK == 0 {
                    tree.apply_batch(std::mem::take(&mut batch))?;
                    db.flush()?;
                }
            }
            batch.insert(CHECKPOINT_KEY, &last.to_be_bytes()[..]);
            tree.apply_batch(batch)?;
            db.flush()?;
            sled_log.sync_data()?;
            tracing::debug!(
                file = %path.display(),
                records = summary.records,
                keys,
                up_to = last,
                ms = started.elapsed().as_millis() as u64,
                "checkpoint"
            );
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A closed file with a bad record is neither folded nor removed, and folding stops
    /// there (the file after it stays too); an intact file before it is folded and removed.
    #[test]
    fn a_damaged_file_is_never_folded_nor_removed() {
        let dir = tempfile::tempdir().unwrap();
        let wal_dir = dir.path().join("wal");
        std::fs::create_dir_all(&wal_dir).unwrap();
        let mut paths = Vec::new();
        for (g, seq) in [(1u64, 1u64), (2, 3), (3, 5)] {
            let mut log = wal::LogFile::create(&wal_dir, g).unwrap();
            let mut bytes = Vec::new();
            for s in seq..seq + 2 {
                let k = format!("k{s}");
                wal::encode(&mut bytes, s, [(k.as_bytes(), Some(&b"v"[..]))].into_iter());
            }
            log.append_durable(&bytes).unwrap();
            paths.push(log.path.clone());
        }
        let mut bad = std::fs::read(&paths[1]).unwrap();
        bad[20] ^= 1;
        std::fs::write(&paths[1], &bad).unwrap();
        let checkpointer = Checkpointer {
            sled_dir: dir.path().join("db"),
            cache_bytes: 1 << 20,
            wal_dir: wal_dir.clone(),
            stop: Default::default(),
            activity: Box::new(|| 0),
            schedule: Schedule {
                quiet: Duration::ZERO,
                backlog_bytes: 0,
                max_wait: Duration::ZERO,
            },
        };
        let (tx, rx) = mpsc::channel();
        for p in &paths {
            tx.send(p.clone()).unwrap();
        }
        drop(tx);
        checkpointer.run(rx);
        assert!(!paths[0].exists(), "the intact file is folded and removed");
        assert_eq!(
            std::fs::read(&paths[1]).unwrap(),
            bad,
            "the damaged file stays"
        );
        assert!(paths[2].exists(), "no fold past the damage");
        let (_db, tree) = open_sled(&dir.path().join("db"), 1 << 20).unwrap();
        assert_eq!(folded_seq(&tree).unwrap(), 2);
    }
}
