//! One process per data directory: an exclusive `flock` on `DIR/lock`, held for the life of
//! the process and taken before anything in the directory is read or written.
//!
//! Two servers on one directory would each rewrite the other's log and lose acknowledged
//! writes; the lock makes the second one (or an offline tool such as `admin set-password`)
//! refuse to start instead. The holder's PID is written into the file so the refusal can
//! name it; the kernel releases the lock when the process dies, even on `kill -9`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// The held lock; dropping it (or the process ending) releases the directory.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Creates `dir` when missing and locks it, or says in one line who holds it.
pub fn lock(dir: &Path) -> Result<DirLock, String> {
    if dir.exists() && !dir.is_dir() {
        return Err(format!(
            "the data directory {} is a file, not a directory",
            dir.display()
        ));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the data directory {}: {e}", dir.display()))?;
    if !dir.is_dir() {
        return Err(format!(
            "the data directory {} is not a directory",
            dir.display()
        ));
    }
    let path = dir.join("lock");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("cannot open the lock file {}: {e}", path.display()))?;
    // SAFETY: flock on a descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let by = if holder.chars().all(|c| c.is_ascii_digit()) && !holder.is_empty() {
                format!(" by process {holder}")
            } else {
                String::new()
            };
            return Err(format!(
                "the data directory {} is in use{by} (lock file {}); stop that server first",
                dir.display(),
                path.display()
            ));
        }
        return Err(format!("cannot lock {}: {err}", path.display()));
    }
    // Record who holds it, for the next one's error message.
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = write!(file, "{}", std::process::id());
    let _ = file.sync_data();
    Ok(DirLock { _file: file, path })
}

#[cfg(test)]
mod tests {
    #[test]
    fn second_lock_in_another_descriptor_is_refused_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let held = super::lock(dir.path()).unwrap();
        // flock locks are per open file description, so a second open in this process
        // conflicts like another process would.
        let err = super::lock(dir.path()).unwrap_err();
        assert!(err.contains("in use"), "{err}");
        assert!(
            err.contains(&format!("process {}", std::process::id())),
            "{err}"
        );
        drop(held);
        super::lock(dir.path()).unwrap();
    }

    #[test]
    fn a_file_in_place_of_the_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data");
        std::fs::write(&file, b"x").unwrap();
        let err = super::lock(&file).unwrap_err();
        assert!(err.contains(&file.display().to_string()), "{err}");
    }
}
