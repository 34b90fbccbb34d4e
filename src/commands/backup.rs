//! BACKUP 'name': a consistent copy of the data directory while the server serves
//! (protocol-spec/dump.md).

use super::Cx;
use crate::error::{Code, Error, Result};
use crate::protocol::Reply;
use std::path::PathBuf;

/// Where copies go: `[server] backup_dir`, else `<data_dir>.backups`.
pub fn backup_dir(config: &crate::config::Config) -> PathBuf {
    config.server.backup_dir.clone().unwrap_or_else(|| {
        let mut d = config.server.data_dir.clone().into_os_string();
        d.push(".backups");
        PathBuf::from(d)
    })
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

pub async fn backup(cx: &mut Cx<'_>, name: String) -> Result<Reply> {
    cx.admin()?;
    if !valid_name(&name) {
        return Err(Error::new(Code::InvalidString));
    }
    let root = backup_dir(&cx.shared.config);
    std::fs::create_dir_all(&root)?;
    let dest = root.join(&name);
    if dest.exists() {
        return Err(Error::with(
            Code::InvalidArguments,
            "a backup of that name exists",
        ));
    }
    let store = &cx.shared.store;
    let attachments = cx.shared.attachments_dir();
    let started = std::time::Instant::now();
    // The copy blocks this thread (seconds for a large store); the runtime moves this
    // worker's other connections to another one meanwhile.
    let upto = tokio::task::block_in_place(|| -> Result<u64> {
        let upto = store.backup(&dest)?;
        // Attachment files are written before their record and never changed after, so
        // every file a copied record names exists now; files of later uploads are swept
        // when the copy starts.
        if attachments.exists() {
            crate::store::backup::copy_tree(&attachments, &dest.join("attachments"))?;
        }
        crate::store::wal::sync_dir(&dest)?;
        Ok(upto)
    })?;
    tracing::info!(
        name,
        upto,
        ms = started.elapsed().as_millis() as u64,
        "backup written"
    );
    Ok(Reply::Ok)
}
