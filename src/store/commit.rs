//! Group commit: one thread makes writes durable for everybody.
//!
//! Writers get a sequence number when their batch is applied and wait until the committer
//! reports that sequence flushed. The committer takes the newest sequence, calls
//! `Db::flush()` once (sled 0.34.7's `flush_async` deadlocks under concurrency), and then
//! releases every writer at or below it, so concurrent writers share one fsync.
//!
//! sled 0.34.7 ends its log writes with `sync_file_range`, which does not flush the disk's
//! write cache; the committer therefore also calls `fdatasync` on sled's log file, so an
//! acknowledged write survives a power loss as well as a `kill -9`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use tokio::sync::watch;

pub struct GroupCommit {
    applied: AtomicU64,
    durable: watch::Sender<u64>,
    wake: Mutex<bool>,
    cond: Condvar,
    stop: AtomicBool,
}

impl GroupCommit {
    /// Starts the committer thread for `db`, whose log file is `log`.
    pub fn start(
        db: sled::Db,
        log: std::fs::File,
    ) -> (Arc<GroupCommit>, std::thread::JoinHandle<()>) {
        let (tx, _) = watch::channel(0);
        let gc = Arc::new(GroupCommit {
            applied: AtomicU64::new(0),
            durable: tx,
            wake: Mutex::new(false),
            cond: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let me = gc.clone();
        let handle = std::thread::Builder::new()
            .name("group-commit".into())
            .spawn(move || me.run(db, log))
            .expect("spawn committer");
        (gc, handle)
    }

    /// Records that a batch was applied; returns its sequence. Called under the write lock,
    /// so sequences follow the order of batches.
    pub fn applied(&self) -> u64 {
        let seq = self.applied.fetch_add(1, Ordering::AcqRel) + 1;
        let mut w = self.wake.lock().unwrap();
        *w = true;
        self.cond.notify_one();
        seq
    }

    /// The newest sequence handed out.
    pub fn last_applied(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    /// Waits until batch `seq` is on disk.
    pub async fn durable(&self, seq: u64) {
        let mut rx = self.durable.subscribe();
        // The sender lives as long as `self`, so this only ends when the value is reached.
        let _ = rx.wait_for(|d| *d >= seq).await;
    }

    /// Whether `seq` is already durable (no wait needed).
    pub fn is_durable(&self, seq: u64) -> bool {
        *self.durable.borrow() >= seq
    }

    /// Stops the committer after a last flush.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        let mut w = self.wake.lock().unwrap();
        *w = true;
        self.cond.notify_one();
    }

    fn run(&self, db: sled::Db, log: std::fs::File) {
        loop {
            {
                let mut w = self.wake.lock().unwrap();
                while !*w {
                    w = self.cond.wait(w).unwrap();
                }
                *w = false;
            }
            let target = self.applied.load(Ordering::Acquire);
            if target > *self.durable.borrow() {
                loop {
                    match db
                        .flush()
                        .map_err(|e| e.to_string())
                        .and_then(|_| log.sync_data().map_err(|e| format!("fdatasync: {e}")))
                    {
                        Ok(_) => break,
                        Err(e) => {
                            tracing::error!(error = %e, "flush failed; retrying");
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
                self.durable.send_replace(target);
            }
            if self.stop.load(Ordering::Acquire) {
                return;
            }
        }
    }
}
