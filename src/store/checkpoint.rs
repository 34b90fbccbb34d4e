//! Checkpoints: the in-memory records written to sled in chunks ([`super::chunks`]), and
//! the closed log files they make redundant removed, on a thread of their own.
//!
//! The same thread merges the in-memory overlay into the packed base ([`super::mem`]): a
//! checkpoint is such a merge, after which the chunks whose key range the merged writes
//! touched are written from the new base, with the log sequence that base holds, in one
//! sled batch. sled is then flushed (and its log and blob files `fdatasync`ed: sled 0.34.7
//! only calls `sync_file_range`), and only then are the closed log files whose records are
//! all folded removed. A crash at any point leaves either the files or the chunks, and
//! replaying a log record again is harmless (every operation puts or removes a whole key).
//!
//! Writers wait for none of this: the write lock is only taken to freeze the overlay and to
//! install the merged base, both constant time.

use super::chunks::{self, Dirty, Index};
use super::commit::GroupCommit;
use super::mem::{self, Base, Mem};
use super::wal;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, mpsc};
use std::time::{Duration, Instant};

/// Opens sled's database under `dir` (the store's `db/`) and its tree of chunks.
pub fn open_sled(dir: &Path, cache_bytes: u64) -> crate::error::Result<(sled::Db, sled::Tree)> {
    // The data-directory lock already keeps other processes out, but sled's own file lock
    // can outlive a tool that just exited by a moment; wait for it briefly instead of failing.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let db = loop {
        let opened = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .flush_every_ms(None)
            .open();
        match opened {
            // sled reports its lock as ErrorKind::Other with this text (sled 0.34 config.rs).
            Err(sled::Error::Io(e))
                if e.to_string().starts_with("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => break other?,
        }
    };
    let tree = db.open_tree(chunks::TREE)?;
    Ok((db, tree))
}

/// The sequence sled's checkpoint holds every batch up to (0 for a store that never had
/// one), in either layout.
pub fn folded_seq(db: &sled::Db, tree: &sled::Tree) -> crate::error::Result<u64> {
    chunks::folded_seq(db, tree)
}

/// Hands memory freed by sled back to the system: between checkpoints the server holds no
/// Hands memory freed by sled and by merges back to the system.
pub fn release_memory() {
    // SAFETY: malloc_trim only walks glibc's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// How often the thread looks at the write activity and the overlay.
const POLL: Duration = Duration::from_millis(200);

/// How long a checkpoint waits for the batches it holds to be on disk before it gives up
/// (a log that cannot be written; the next round tries again).
const DURABLE_WAIT: Duration = Duration::from_secs(10);

/// When a checkpoint runs (a merge of the overlay without one runs whenever the overlay
/// has grown, see [`Mem::wants_compaction`]).
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// No write for this long counts as a pause: closed files are checkpointed then.
    pub quiet: Duration,
    /// Checkpoint regardless once the closed files hold this many bytes...
    pub backlog_bytes: u64,
    /// ...or once the oldest has waited this long.
    pub max_wait: Duration,
}

/// A closed log file waiting for a checkpoint.
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

/// How a round ended.
enum Outcome {
    /// Merged only, or the checkpoint had to wait for another round.
    Merged,
    Checkpointed,
    /// A closed log file is damaged at this offset: no checkpoint was written.
    Damaged(PathBuf, u64),
}

pub struct Checkpointer {
    /// sled's directory (`db/` of the data directory).
    pub sled_dir: PathBuf,
    pub cache_bytes: u64,
    pub wal_dir: PathBuf,
    /// Set at shutdown: once the committer is gone, a last checkpoint, then the thread ends.
    pub stop: Arc<AtomicBool>,
    pub mem: Arc<RwLock<Mem>>,
    pub commit: Arc<GroupCommit>,
    pub schedule: Schedule,
    /// Merge the overlay once it holds this many records (and half the base).
    pub compact_min: usize,
    /// Held while sled is open for a checkpoint; a backup holds it to copy sled's files.
    pub gate: Arc<Mutex<()>>,
    /// The chunks in sled.
    pub index: Index,
    /// The chunks holding keys written since the last checkpoint.
    pub dirty: Dirty,
    /// A checkpoint failed after it began to write: sled's manifest says what it holds.
    pub uncertain: bool,
    /// sled holds the first layout ([`chunks`]): checkpoint at once, converting it.
    pub convert: bool,
}

impl Checkpointer {
    /// Merges and checkpoints as the overlay, the closed files received and [`Schedule`]
    /// want, until the store stops; then checkpoints what is left and ends.
    ///
    /// The thread runs at the normal priority: at the lowest one, a host busy with other work
    /// starved it and the log grew without bound under a sustained write load.
    pub fn run(mut self, files: mpsc::Receiver<PathBuf>) {
        let mut waiting: VecDeque<Waiting> = VecDeque::new();
        let mut looked = self.commit.last_applied();
        let mut last_write = Instant::now();
        let mut gone = false;
        let mut broken = false;
        let mut untrimmed = false;
        let mut retry_at: Option<Instant> = None;
        loop {
            match files.recv_timeout(POLL) {
                Ok(path) => waiting.push_back(Waiting::new(path)),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    gone = true;
                    std::thread::sleep(POLL);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            while let Ok(path) = files.try_recv() {
                waiting.push_back(Waiting::new(path));
            }
            let now = self.commit.last_applied();
            // No write since the last look: a quiet moment to merge even a small overlay.
            let idle = now == looked;
            if !idle {
                (looked, last_write) = (now, Instant::now());
            }
            let last_round = gone && self.stop.load(Ordering::Acquire);
            let backlog: u64 = waiting.iter().map(|w| w.bytes).sum();
            let can = !broken && retry_at.is_none_or(|t| Instant::now() >= t);
            let changed = !waiting.is_empty() || !self.dirty.is_empty() || self.unmerged();
            let due = can
                && (self.convert
                    || (last_round && changed)
                    || (!waiting.is_empty()
                        && (last_write.elapsed() >= self.schedule.quiet
                            || backlog >= self.schedule.backlog_bytes
                            || waiting
                                .front()
                                .is_some_and(|w| w.since.elapsed() >= self.schedule.max_wait))));
            let merge = self
                .mem
                .read()
                .is_ok_and(|m| m.wants_compaction(self.compact_min, idle));
            if due || merge {
                match self.round(due, &mut waiting) {
                    Ok(Outcome::Merged) => untrimmed = true,
                    Ok(Outcome::Checkpointed) => {
                        retry_at = None;
                        untrimmed = true;
                    }
                    Ok(Outcome::Damaged(path, at)) => {
                        // Checkpoints stop here for good: the file (and every later one)
                        // stays for the next start to refuse and `webissued salvage` to read.
                        tracing::error!(
                            file = %path.display(),
                            at,
                            "damaged log file: not folded and kept; no further checkpoints; the server serves from memory, but will refuse to start until `webissued salvage` is run"
                        );
                        broken = true;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "checkpoint failed; retrying");
                        retry_at = Some(Instant::now() + Duration::from_secs(1));
                    }
                }
            } else if idle && untrimmed {
                release_memory();
                untrimmed = false;
            }
            if last_round {
                return;
            }
        }
    }

    /// Whether records were written since the base was made.
    fn unmerged(&self) -> bool {
        self.mem.read().is_ok_and(|m| m.sizes().1 > 0)
    }

    /// Merges the overlay into the base, then, with `checkpoint`, writes the chunks the
    /// merged writes touched and removes the closed files they make redundant.
    fn round(
        &mut self,
        checkpoint: bool,
        waiting: &mut VecDeque<Waiting>,
    ) -> crate::error::Result<Outcome> {
        let started = Instant::now();
        let (snapshot, job, seq, log_seq, discards) = {
            let mut m = self.mem.write().map_err(crate::error::Error::internal)?;
            if m.take_unseen_merge() {
                self.dirty.mark_all(&self.index);
            }
            let (seq, log_seq) = (self.commit.last_applied(), self.commit.applied_log_seq());
            let discards = self.commit.discards();
            match m.whole_base() {
                Some(base) => (Some(base), None, seq, log_seq, discards),
                None => (None, m.freeze(), seq, log_seq, discards),
            }
        };
        let base: Arc<Base> = match (snapshot, job) {
            (Some(base), _) => base,
            (None, None) => return Ok(Outcome::Merged), // Store::compact_now runs
            (None, Some(job)) => {
                self.dirty
                    .mark_sorted(&self.index, job.1.keys().map(|k| k.as_bytes()));
                let merged = Arc::new(mem::run_job(&job));
                let replaced = self
                    .mem
                    .write()
                    .map_err(crate::error::Error::internal)?
                    .install(&job, merged.clone());
                drop(job);
                drop(replaced);
                tracing::debug!(
                    records = merged.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "in-memory records compacted"
                );
                merged
            }
        };
        if !checkpoint {
            return Ok(Outcome::Merged);
        }
        // The base may hold batches still being flushed: they must be on disk first, and
        // none of them discarded (a discarded batch's writes are in this base).
        let deadline = Instant::now() + DURABLE_WAIT;
        while !self.commit.is_durable(seq) {
            if Instant::now() >= deadline {
                return Err(crate::error::Error::internal(
                    "the batches of the checkpoint did not reach the disk",
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if self.commit.discards() != discards {
            tracing::info!("checkpoint left for later: batches it held were discarded");
            return Ok(Outcome::Merged);
        }
        let removable = match removable(waiting.iter().map(|w| w.path.as_path()), log_seq)? {
            Ok(n) => n,
            Err((path, at)) => return Ok(Outcome::Damaged(path, at)),
        };
        let _gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        let written = {
            let (db, tree) = open_sled(&self.sled_dir, self.cache_bytes)?;
            if self.uncertain {
                // A failed checkpoint: sled holds its manifest or the one before, whole.
                self.index = chunks::manifest(&tree)?.unwrap_or_default();
                self.dirty.mark_all(&self.index);
                self.uncertain = false;
            }
            self.uncertain = true;
            let (index, written) = chunks::checkpoint(
                &db,
                &tree,
                &self.sled_dir,
                &self.index,
                &self.dirty,
                &base,
                log_seq,
            )?;
            drop(base);
            (self.index, self.dirty, self.uncertain) = (index, Dirty::default(), false);
            if chunks::old_tree(&db)?.is_some() {
                db.drop_tree(chunks::OLD_TREE)?;
                db.flush()?;
                chunks::sync(&self.sled_dir)?;
                tracing::info!(
                    "the checkpoint is now kept in chunks; the old one-key-per-record layout was removed"
                );
            }
            written
        };
        // sled replays everything written since its last snapshot when it opens and only
        // snapshots while opening, so an opening here keeps the server's next start short.
        drop(open_sled(&self.sled_dir, self.cache_bytes)?);
        self.convert = false;
        crate::metrics::global().checkpointed(log_seq);
        for w in waiting.drain(..removable) {
            std::fs::remove_file(&w.path)?;
        }
        wal::sync_dir(&self.wal_dir)?;
        tracing::debug!(
            up_to = log_seq,
            chunks = self.index.len(),
            written = written.chunks,
            written_bytes = written.bytes,
            files_removed = removable,
            ms = started.elapsed().as_millis() as u64,
            "checkpoint"
        );
        Ok(Outcome::Checkpointed)
    }
}

/// How many of the closed files `paths` (oldest first) a checkpoint holding every batch up
/// to `folded` makes redundant; or the first damaged one and the offset of its damage (a
/// bad record, or bytes after its last one): a damaged file is never removed, and no
/// checkpoint is written past it.
fn removable<'a>(
    paths: impl Iterator<Item = &'a Path>,
    folded: u64,
) -> std::io::Result<Result<usize, (PathBuf, u64)>> {
    let mut n = 0;
    let mut newer = false;
    for path in paths {
        let summary = wal::read_file(path, |_, _| {})?;
        if summary.torn {
            return Ok(Err((path.to_path_buf(), summary.valid_bytes)));
        }
        newer |= summary.records > 0 && summary.last_seq > folded;
        if !newer {
            n += 1;
        }
    }
    Ok(Ok(n))
}

/// `webissued import`'s writer ([`chunks::BulkWriter`]).
pub use chunks::BulkWriter;

#[cfg(test)]
mod tests {
    use super::*;

    /// A closed file with a bad record is never counted as removable, whatever the folded
    /// sequence; intact files before it are, up to the first holding newer batches.
    #[test]
    fn a_damaged_file_is_never_removable() {
        let dir = tempfile::tempdir().unwrap();
        let mut paths = Vec::new();
        for (g, seq) in [(1u64, 1u64), (2, 3), (3, 5)] {
            let mut log = wal::LogFile::create(dir.path(), g).unwrap();
            let mut bytes = Vec::new();
            for s in seq..seq + 2 {
                let k = format!("k{s}");
                wal::encode(&mut bytes, s, [(k.as_bytes(), Some(&b"v"[..]))].into_iter());
            }
            log.append_durable(&bytes).unwrap();
            paths.push(log.path.clone());
        }
        let all = || paths.iter().map(PathBuf::as_path);
        assert_eq!(removable(all(), 2).unwrap().unwrap(), 1);
        assert_eq!(removable(all(), 4).unwrap().unwrap(), 2);
        assert_eq!(removable(all(), 6).unwrap().unwrap(), 3);
        let mut bad = std::fs::read(&paths[1]).unwrap();
        bad[20] ^= 1;
        std::fs::write(&paths[1], &bad).unwrap();
        let (path, _) = removable(all(), 6).unwrap().unwrap_err();
        assert_eq!(path, paths[1]);
    }
}
