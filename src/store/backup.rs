//! Online backup: a copy of the store as of one batch, made while writers go on.
//!
//! The caller holds the checkpointer's gate, so sled's files are closed and no log file is
//! folded or removed while they are copied; sled's files are copied as they are, and the
//! log files record by record up to the backup point (a batch applied later may already be
//! in the file being written; it is left out, as is a record still being appended). Writers
//! only ever append to the newest log file, so nothing here waits for them or they for it.

use super::wal;
use crate::error::Result;
use std::path::Path;

/// Copies `src/db` and the log records of `src/wal` up to sequence `upto` into `dest`
/// (which must not exist), then syncs every file and directory.
pub fn copy(src: &Path, dest: &Path, upto: u64) -> Result<()> {
    std::fs::create_dir(dest)?;
    copy_tree(&src.join("db"), &dest.join("db"))?;
    let wal_dest = dest.join("wal");
    std::fs::create_dir(&wal_dest)?;
    for (generation, path) in wal::files(&src.join("wal"))? {
        let mut bytes = Vec::new();
        wal::read_file(&path, |seq, ops| {
            if seq <= upto {
                wal::encode(
                    &mut bytes,
                    seq,
                    ops.iter().map(|(k, v)| (k.as_slice(), v.as_deref())),
                );
            }
        })?;
        if bytes.is_empty() {
            continue;
        }
        let mut log = wal::LogFile::create(&wal_dest, generation)?;
        log.append_durable(&bytes)?;
    }
    wal::sync_dir(&wal_dest)?;
    wal::sync_dir(dest)?;
    Ok(())
}

/// Copies a directory tree, syncing each file and directory.
pub fn copy_tree(src: &Path, dest: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dest)?;
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let to = dest.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &to)?;
        } else {
            std::fs::copy(entry.path(), &to)?;
            std::fs::File::open(&to)?.sync_all()?;
        }
    }
    wal::sync_dir(dest)
}
