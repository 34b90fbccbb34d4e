//! Group commit: one thread makes writes durable for everybody.
//!
//! A writer encodes its batch into the shared log buffer while it holds the store's write
//! lock (so the log's order is the order batches were applied in) and gets the batch's
//! sequence number. The committer thread takes the whole buffer, appends it to the current
//! [`wal`] file with one `write` and one `fdatasync`, and then releases every writer at or
//! below the newest sequence it wrote (and only those): concurrent writers share one disk
//! flush. When the last flush carried more than one batch, the committer first waits until
//! as many batches are queued again (the writers it released come back), or a short deadline.
//!
//! When the current file grows past its size or age limit the committer starts the next
//! generation and hands the closed file to the checkpointer ([`super::checkpoint`]).
//!
//! When the log cannot be written (a full disk) for [`FAILURE_GRACE`], every batch not yet
//! on disk is discarded: the store takes its writes back ([`Rollback`]), its writers are
//! told it failed, and new writes are refused until a probe file can be written again.
//! Sequences handed out stay increasing (a waiter never mistakes a later batch for its
//! own), while the log's sequences stay consecutive: a discarded batch's log sequence is
//! given to the next batch ([`Queue::skipped`]).

use super::wal::{self, LogFile};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

/// When the committer closes a log file and starts the next one.
#[derive(Debug, Clone, Copy)]
pub struct Rotation {
    pub max_bytes: u64,
    pub max_age: Duration,
}

struct Queue {
    /// Encoded records not yet handed to the committer.
    buf: Vec<u8>,
    /// Sequence of the newest record in `buf` (or written before).
    last: u64,
    /// Batches in `buf`.
    batches: usize,
    stop: bool,
    /// The committer sleeps on `wake` until `batches` reaches `want` (an append that gets
    /// there must wake it; while it writes, appends save the futex call).
    waiting: bool,
    want: usize,
    /// Sequences discarded so far: a batch's log sequence is its sequence minus this.
    skipped: u64,
}

/// Takes back, under the store's write lock, the writes of every batch after the given
/// durable sequence, then calls [`GroupCommit::discard_unwritten`] (the committer calls it
/// with the reason the log cannot be written).
pub type Rollback = Box<dyn Fn(&GroupCommit, &str) + Send>;

/// How long the committer retries a failed log write before it discards what is waiting.
/// Short: every writer and every reply that read a batch waiting for this flush waits too,
/// and the replies that read a discarded batch become errors.
pub const FAILURE_GRACE: Duration = Duration::from_millis(200);

/// How often a failed log is probed for space.
const PROBE_EVERY: Duration = Duration::from_millis(500);

/// The zeros a probe writes: writes resume once this much can be written (and kept, as the
/// next log file's room).
const PROBE_FILL: u64 = 1 << 20;

pub struct GroupCommit {
    queue: Mutex<Queue>,
    wake: Condvar,
    applied: AtomicU64,
    /// The newest settled sequence: every batch up to it is on disk, or was discarded
    /// (those are in `discarded`).
    durable: AtomicU64,
    /// Discarded sequence ranges (inclusive), and the highest discarded sequence (0: none),
    /// so the usual check costs one load.
    discarded: Mutex<Vec<(u64, u64)>>,
    discarded_max: AtomicU64,
    discard_count: std::sync::atomic::AtomicUsize,
    /// Set while the log cannot be written: new batches are refused.
    failed: std::sync::atomic::AtomicBool,
    /// Why, for the replies.
    failure: Mutex<String>,
    /// Tasks waiting in [`GroupCommit::durable`], each with the sequence it waits for: a
    /// flush wakes only those it made durable. (A `watch` channel woke every waiter at every
    /// flush, and with two flushes' worth of writers in flight, half of them for nothing.)
    waiters: Mutex<Vec<(u64, Waker)>>,
    /// How many threads are blocked in [`GroupCommit::wait_durable`], sleeping on
    /// `durable_cond` under this lock; the sequence itself is `durable`. A flush notifies
    /// the condition variable only when there are some (std's `notify_all` is a system call
    /// each time).
    durable_lock: Mutex<usize>,
    durable_cond: Condvar,
}

/// The longest [`GroupCommit::gather`] delays a flush waiting for writers to come back.
const GATHER_DEADLINE: Duration = Duration::from_micros(400);

/// The most zeros a prepared log file is filled with (`checkpoint_wal_mb` may be larger).
const MAX_FILL: u64 = 64 << 20;

/// Prepares log file `generation`, filled to `bytes`, on a thread of its own, so the
/// committer never waits for the zeros when it starts the next file.
fn prepare(
    dir: &std::path::Path,
    generation: u64,
    bytes: u64,
) -> std::thread::JoinHandle<std::io::Result<wal::Prepared>> {
    let dir = dir.to_path_buf();
    // A file past the fill is appended to as before; the fill stays a bounded write.
    let bytes = bytes.min(MAX_FILL);
    std::thread::spawn(move || wal::Prepared::create(&dir, generation, bytes))
}

impl GroupCommit {
    /// A committer that takes records once [`GroupCommit::start`] has run.
    pub fn new() -> Arc<GroupCommit> {
        Arc::new(GroupCommit {
            queue: Mutex::new(Queue {
                buf: Vec::new(),
                last: 0,
                batches: 0,
                stop: false,
                waiting: false,
                want: 1,
                skipped: 0,
            }),
            wake: Condvar::new(),
            applied: AtomicU64::new(0),
            durable: AtomicU64::new(0),
            discarded: Mutex::new(Vec::new()),
            discarded_max: AtomicU64::new(0),
            discard_count: std::sync::atomic::AtomicUsize::new(0),
            failed: std::sync::atomic::AtomicBool::new(false),
            failure: Mutex::new(String::new()),
            waiters: Mutex::new(Vec::new()),
            durable_lock: Mutex::new(0),
            durable_cond: Condvar::new(),
        })
    }

    /// Starts the committer thread appending to `log`; `last_seq` is the newest sequence
    /// already in the store (no record may be queued before this). Closed files are sent on
    /// `closed`.
    pub fn start(
        self: &Arc<Self>,
        log: LogFile,
        dir: PathBuf,
        last_seq: u64,
        rotation: Rotation,
        closed: mpsc::Sender<PathBuf>,
        rollback: Rollback,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        self.queue.lock().unwrap().last = last_seq;
        self.applied.store(last_seq, Ordering::Release);
        self.publish(last_seq);
        let me = self.clone();
        std::thread::Builder::new()
            .name("group-commit".into())
            .spawn(move || me.run(log, dir, rotation, closed, rollback))
    }

    /// Whether new batches are refused (the log cannot be written).
    #[inline]
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Why the log cannot be written (or could not, when a batch was discarded).
    pub fn failure(&self) -> String {
        self.failure.lock().unwrap().clone()
    }

    /// Whether batch `seq` was discarded (only meaningful once it is settled).
    #[inline]
    pub fn is_discarded(&self, seq: u64) -> bool {
        self.discarded_in(seq, seq)
    }

    /// Whether any batch in `from..=to` was discarded.
    pub fn discarded_in(&self, from: u64, to: u64) -> bool {
        if from > to || self.discarded_max.load(Ordering::Acquire) < from {
            return false;
        }
        self.discarded
            .lock()
            .unwrap()
            .iter()
            .any(|&(a, b)| a <= to && from <= b)
    }

    /// How many discards there were: while it stays the same, nothing was discarded.
    #[inline]
    pub fn discards(&self) -> usize {
        self.discard_count.load(Ordering::Acquire)
    }

    /// Drops every batch not on disk yet and refuses new ones until the log can be written
    /// again. To be called with the store's write lock held (so no batch is applied
    /// meanwhile), by the [`Rollback`] after `undo(durable)` took the writes back.
    pub fn discard_unwritten(&self, reason: &str, undo: impl FnOnce(u64)) {
        let mut q = self.queue.lock().unwrap();
        let durable = self.durable.load(Ordering::Acquire);
        let last = q.last;
        q.buf.clear();
        q.batches = 0;
        q.skipped += last - durable;
        *self.failure.lock().unwrap() = reason.to_string();
        self.failed.store(true, Ordering::Release);
        undo(durable);
        drop(q);
        if last > durable {
            self.discarded.lock().unwrap().push((durable + 1, last));
            self.discarded_max.store(last, Ordering::Release);
            self.discard_count.fetch_add(1, Ordering::Release);
            tracing::error!(
                from = durable + 1,
                to = last,
                reason,
                "batches not on disk discarded and taken back; writes refused until the log can be written"
            );
        }
        // Settled: their waiters wake and find them discarded.
        self.publish(last);
    }

    /// Queues the record of a batch and returns its sequence. Called under the store's
    /// write lock, so sequences follow the order of batches.
    pub fn append<'a>(&self, ops: impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)>) -> u64 {
        let mut q = self.queue.lock().unwrap();
        let seq = q.last + 1;
        q.last = seq;
        q.batches += 1;
        let log_seq = seq - q.skipped;
        wal::encode(&mut q.buf, log_seq, ops);
        self.applied.store(seq, Ordering::Release);
        let waiting = q.waiting && q.batches >= q.want;
        drop(q);
        if waiting {
            self.wake.notify_one();
        }
        seq
    }

    /// The log sequence of the newest batch applied: after a discard, later batches take
    /// the discarded sequences in the log, so it trails [`GroupCommit::last_applied`].
    pub fn applied_log_seq(&self) -> u64 {
        let q = self.queue.lock().unwrap();
        q.last - q.skipped
    }

    /// The newest sequence handed out.
    pub fn last_applied(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    /// Waits until batch `seq` is settled: on disk, or discarded ([`GroupCommit::is_discarded`]).
    pub async fn durable(&self, seq: u64) {
        let mut registered = false;
        std::future::poll_fn(|cx| {
            if self.is_durable(seq) {
                return Poll::Ready(());
            }
            let mut waiters = self.waiters.lock().unwrap();
            // Checked again under the lock: a publish stores before it takes the lock.
            if self.is_durable(seq) {
                return Poll::Ready(());
            }
            // Polled again before its flush (woken by something else): registered already,
            // unless the task's waker changed.
            let known = registered
                && waiters
                    .iter()
                    .any(|(s, w)| *s == seq && w.will_wake(cx.waker()));
            if !known {
                waiters.push((seq, cx.waker().clone()));
                registered = true;
            }
            Poll::Pending
        })
        .await
    }

    /// The newest settled sequence.
    #[inline]
    pub fn settled(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Whether `seq` is already settled (no wait needed).
    pub fn is_durable(&self, seq: u64) -> bool {
        self.durable.load(Ordering::Acquire) >= seq
    }

    /// Blocks the calling thread until batch `seq` is settled (start-up, tools).
    pub fn wait_durable(&self, seq: u64) {
        let mut blocked = self.durable_lock.lock().unwrap();
        while !self.is_durable(seq) {
            *blocked += 1;
            blocked = self.durable_cond.wait(blocked).unwrap();
            *blocked -= 1;
        }
    }

    /// Stops the committer after it has written everything queued.
    pub fn stop(&self) {
        self.queue.lock().unwrap().stop = true;
        self.wake.notify_one();
    }

    /// Marks everything up to `seq` durable and wakes whoever waited for it. A waiter whose
    /// future was dropped is woken once, harmlessly, when its sequence is reached.
    fn publish(&self, seq: u64) {
        let blocked = {
            // Stored under the lock, so a blocked thread cannot miss it between its check
            // and its wait.
            let blocked = self.durable_lock.lock().unwrap();
            self.durable.store(seq, Ordering::Release);
            *blocked
        };
        if blocked > 0 {
            self.durable_cond.notify_all();
        }
        let ready: Vec<_> = self
            .waiters
            .lock()
            .unwrap()
            .extract_if(.., |(s, _)| *s <= seq)
            .collect();
        for (_, w) in ready {
            w.wake();
        }
    }

    /// Lets concurrent writers join the next flush: waits until `want` batches are queued
    /// (the writers the last flush released have come back) or [`GATHER_DEADLINE`] has
    /// passed. The wait ends with one wake-up by the append that completes the group; it
    /// replaced sleeps of 50 µs, each of which cost about 25 µs of CPU in a VM, and
    /// writers that stopped only cost the deadline once (the next flush wants fewer).
    fn gather<'q>(
        &'q self,
        mut q: std::sync::MutexGuard<'q, Queue>,
        want: usize,
    ) -> std::sync::MutexGuard<'q, Queue> {
        let deadline = std::time::Instant::now() + GATHER_DEADLINE;
        q.want = want;
        while q.batches < want && !q.stop {
            let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) else {
                break;
            };
            q.waiting = true;
            q = self.wake.wait_timeout(q, left).unwrap().0;
            q.waiting = false;
        }
        q.want = 1;
        q
    }

    fn run(
        &self,
        mut log: LogFile,
        dir: PathBuf,
        rotation: Rotation,
        closed: mpsc::Sender<PathBuf>,
        rollback: Rollback,
    ) {
        let mut spare = Vec::new();
        if let Err(e) = wal::remove_prepared(&dir) {
            tracing::warn!(error = %e, "cannot remove a log file left half prepared");
        }
        let mut next = Some(prepare(&dir, log.generation + 1, rotation.max_bytes));
        // Batches the last flush carried: more than one means writers are concurrent.
        let mut last_flush = 0;
        loop {
            let (target, stop) = {
                let mut q = self.queue.lock().unwrap();
                if last_flush > 1 {
                    q = self.gather(q, last_flush);
                }
                loop {
                    if !q.buf.is_empty() || q.stop {
                        break;
                    }
                    // Idle: a file that has waited long enough is closed, so its data reaches
                    // sled even when writes stop.
                    let age = log.opened.elapsed();
                    if log.len > 0 && age >= rotation.max_age {
                        break;
                    }
                    let wait = if log.len > 0 {
                        rotation.max_age - age
                    } else {
                        Duration::from_secs(3600)
                    };
                    q.waiting = true;
                    q = self.wake.wait_timeout(q, wait).unwrap().0;
                    q.waiting = false;
                }
                std::mem::swap(&mut q.buf, &mut spare);
                last_flush = std::mem::take(&mut q.batches);
                (q.last, q.stop)
            };
            if !spare.is_empty() {
                let started = std::time::Instant::now();
                let written = self.write_or_give_up(&mut log, &spare, stop);
                if written.is_ok() {
                    crate::metrics::global().flushed(last_flush, spare.len(), started.elapsed());
                }
                spare.clear();
                match written {
                    Ok(()) => self.publish(target),
                    Err(e) => {
                        let reason = if e.raw_os_error() == Some(libc::ENOSPC) {
                            "disk full, the change was not saved".to_string()
                        } else {
                            format!("the log cannot be written ({e}), the change was not saved")
                        };
                        rollback(self, &reason);
                        match self.recover(&mut log, &dir, &mut next, rotation, &closed) {
                            true => continue,
                            false => return, // stopped while failed: nothing is queued
                        }
                    }
                }
            }
            if stop {
                if log.len > 0 {
                    let _ = closed.send(log.path.clone());
                }
                // The prepared next file holds nothing.
                if let Some(Ok(Ok(unused))) = next.map(std::thread::JoinHandle::join) {
                    unused.discard(&dir);
                }
                return;
            }
            if log.len > 0
                && (log.len >= rotation.max_bytes || log.opened.elapsed() >= rotation.max_age)
            {
                let generation = log.generation + 1;
                let file = match next.take().map(std::thread::JoinHandle::join) {
                    Some(Ok(Ok(prepared))) => prepared.install(&dir),
                    _ => LogFile::create(&dir, generation),
                };
                match file {
                    Ok(file) => {
                        let old = std::mem::replace(&mut log, file);
                        let _ = closed.send(old.path);
                        next = Some(prepare(&dir, generation + 1, rotation.max_bytes));
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot start the next log file; appending to the current one")
                    }
                }
            }
        }
    }
}

impl GroupCommit {
    /// Appends `bytes`, retrying for [`FAILURE_GRACE`] (unless stopping); the last error when
    /// it gives up.
    fn write_or_give_up(&self, log: &mut LogFile, bytes: &[u8], stop: bool) -> std::io::Result<()> {
        let started = std::time::Instant::now();
        loop {
            let e = match log.append_durable(bytes) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            tracing::error!(error = %e, file = %log.path.display(), "log write failed; retrying");
            if stop || started.elapsed() >= FAILURE_GRACE {
                return Err(e);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// After a discard: probes every [`PROBE_EVERY`] by preparing the next log file; once
    /// that works, continues in it and takes writes again. False when stopped first.
    fn recover(
        &self,
        log: &mut LogFile,
        dir: &std::path::Path,
        next: &mut Option<std::thread::JoinHandle<std::io::Result<wal::Prepared>>>,
        rotation: Rotation,
        closed: &mpsc::Sender<PathBuf>,
    ) -> bool {
        let started = std::time::Instant::now();
        loop {
            {
                let q = self.queue.lock().unwrap();
                let q = self.wake.wait_timeout(q, PROBE_EVERY).unwrap().0;
                if q.stop {
                    return false;
                }
            }
            let generation = log.generation + 1;
            let prepared = match next.take().map(std::thread::JoinHandle::join) {
                Some(Ok(Ok(p))) => Ok(p),
                _ => wal::Prepared::create(dir, generation, PROBE_FILL.min(rotation.max_bytes)),
            };
            let file = match prepared.and_then(|p| p.install(dir)) {
                Ok(file) => file,
                Err(e) => {
                    tracing::debug!(error = %e, "log still not writable");
                    continue;
                }
            };
            let old = std::mem::replace(log, file);
            // Cut back once more, in case the cut after the failed write failed too.
            let _ = old.cut_back();
            if old.len > 0 {
                let _ = closed.send(old.path);
            } else {
                let _ = std::fs::remove_file(&old.path);
            }
            *next = Some(prepare(dir, generation + 1, rotation.max_bytes));
            self.failed.store(false, Ordering::Release);
            tracing::warn!(
                after_ms = started.elapsed().as_millis() as u64,
                file = %log.path.display(),
                "the log can be written again; writes resume"
            );
            return true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::sync::atomic::AtomicUsize;
    use std::task::{Context, Wake};

    /// Counts its wake-ups.
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_thread_blocked_until_durable_is_released_by_the_flush_that_reaches_it() {
        let commit = GroupCommit::new();
        let waiter = {
            let commit = commit.clone();
            std::thread::spawn(move || commit.wait_durable(2))
        };
        while *commit.durable_lock.lock().unwrap() == 0 {
            std::thread::yield_now();
        }
        commit.publish(1);
        std::thread::sleep(Duration::from_millis(20));
        assert!(!waiter.is_finished(), "batch 2 is not durable yet");
        assert_eq!(*commit.durable_lock.lock().unwrap(), 1, "still blocked");
        commit.publish(2);
        waiter.join().unwrap();
        assert_eq!(*commit.durable_lock.lock().unwrap(), 0);
        // Already durable: no wait.
        commit.wait_durable(2);
    }

    #[test]
    fn a_flush_wakes_only_the_writers_it_made_durable() {
        let commit = GroupCommit::new();
        let (early, late) = (
            Arc::new(Counter(AtomicUsize::new(0))),
            Arc::new(Counter(AtomicUsize::new(0))),
        );
        let (early_waker, late_waker) = (Waker::from(early.clone()), Waker::from(late.clone()));
        let mut first = pin!(commit.durable(1));
        let mut second = pin!(commit.durable(2));
        let poll = |f: std::pin::Pin<&mut _>, w: &Waker| {
            Future::poll(f, &mut Context::from_waker(w)).is_ready()
        };
        assert!(!poll(first.as_mut(), &early_waker));
        assert!(!poll(second.as_mut(), &late_waker));
        // Polled again before its flush: still one registration.
        assert!(!poll(second.as_mut(), &late_waker));
        assert_eq!(commit.waiters.lock().unwrap().len(), 2);

        commit.publish(1);
        assert_eq!(early.0.load(Ordering::SeqCst), 1);
        assert_eq!(
            late.0.load(Ordering::SeqCst),
            0,
            "not durable yet: not woken"
        );
        assert!(poll(first.as_mut(), &early_waker));
        assert!(!poll(second.as_mut(), &late_waker));

        commit.publish(3);
        assert_eq!(late.0.load(Ordering::SeqCst), 1);
        assert!(poll(second.as_mut(), &late_waker));
        assert!(commit.waiters.lock().unwrap().is_empty());
        // Already durable: ready without waiting.
        assert!(poll(pin!(commit.durable(2)), &late_waker));
    }
}
