//! Checkpoints: folding closed log files into sled, on a thread of their own.
//!
//! The newest value of every key written in a file goes to sled in one batch (a key written
//! a thousand times is written once), together with the sequence of the file's last record
//! under [`CHECKPOINT_KEY`]. sled is then flushed (and its log `fdatasync`ed: sled 0.34.7
//! only calls `sync_file_range`), and only then is the file removed. A crash at any point
//! leaves either the file or its data in sled, and replay skips what sled already has.

use super::wal;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

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

pub struct Checkpointer {
    pub db: sled::Db,
    pub tree: sled::Tree,
    /// sled's own log file, `fdatasync`ed after each flush.
    pub sled_log: std::fs::File,
    pub wal_dir: PathBuf,
}

impl Checkpointer {
    /// Folds each file received until every sender is gone.
    pub fn run(self, files: mpsc::Receiver<PathBuf>) {
        for path in files {
            while let Err(e) = self.fold(&path) {
                tracing::error!(error = %e, file = %path.display(), "checkpoint failed; retrying");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }

    /// Folds one closed log file into sled and removes it.
    pub fn fold(&self, path: &Path) -> crate::error::Result<()> {
        let started = std::time::Instant::now();
        let done = folded_seq(&self.tree)?;
        let mut latest: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        let mut last = done;
        let summary = wal::read_file(path, |seq, ops| {
            if seq > done {
                latest.extend(ops);
                last = seq;
            }
        })?;
        if last > done {
            let mut batch = sled::Batch::default();
            let keys = latest.len();
            for (k, v) in latest {
                match v {
                    Some(v) => batch.insert(k, v),
                    None => batch.remove(k),
                }
            }
            batch.insert(CHECKPOINT_KEY, &last.to_be_bytes()[..]);
            self.tree.apply_batch(batch)?;
            self.db.flush()?;
            self.sled_log.sync_data()?;
            tracing::info!(
                file = %path.display(),
                records = summary.records,
                keys,
                up_to = last,
                ms = started.elapsed().as_millis() as u64,
                "checkpoint"
            );
        }
        std::fs::remove_file(path)?;
        wal::sync_dir(&self.wal_dir)?;
        Ok(())
    }
}
