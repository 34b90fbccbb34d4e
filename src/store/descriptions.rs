//! Issue descriptions and the text format of comments, which the 1.1 dialect shows
//! (`D` lines, the format field of `C` lines); 0.8 has neither and never sees them.

use super::issues::{self, Issue};
use super::projects::Folder;
use super::{EventKind, Read, Writer, key};
use crate::error::Result;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Description {
    pub text: String,
    /// 0 plain text, 1 text with markup.
    pub format: u8,
    /// The stamp of the last change (also the issue's stamp at that change).
    pub stamp: u64,
    pub time: i64,
    pub user: u64,
}

pub fn get(r: &impl Read, issue: u64) -> Result<Option<Description>> {
    r.get(&key("description", &[issue]))
}

/// Adds the description under a new stamp of the issue; `None` when it has one already.
pub fn add(
    w: &mut Writer,
    issue: &mut Issue,
    folder: &Folder,
    text: String,
    format: u8,
    user: u64,
) -> Result<Option<u64>> {
    if get(w, issue.id)?.is_some() {
        return Ok(None);
    }
    let (stamp, time) = issues::touch(w, issue, folder, user, EventKind::Described)?;
    w.put(
        key("description", &[issue.id]),
        &Description {
            text,
            format,
            stamp,
            time,
            user,
        },
    )?;
    Ok(Some(stamp))
}

/// A comment's text format: 1 is kept (as a key of its own), 0 is the default.
pub fn comment_format(r: &impl Read, comment: u64) -> Result<u8> {
    Ok(r.get(&key("comment-format", &[comment]))?.unwrap_or(0))
}

pub fn set_comment_format(w: &mut Writer, comment: u64, format: u8) -> Result<()> {
    if format != 0 {
        w.put(key("comment-format", &[comment]), &format)?;
    }
    Ok(())
}
