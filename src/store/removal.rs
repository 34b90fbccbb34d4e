//! 1.1's edits, moves and deletions of issue data, and the stubs a client's cache needs
//! to learn of them (protocol-spec/webissues-1.1.md, "Edits, moves and deletions").
//!
//! Every one takes a stamp (and an event) like any other change. What is gone leaves a
//! stub under that stamp: `folder-gone/<folder>/<stamp>` for an issue that left a folder
//! (moved or deleted; it also keeps the folder's stamp, [`super::stamps`]),
//! `row-gone/<issue>/<row>` for a deleted comment or file, `description-gone/<issue>` for
//! a deleted description. An edited comment or file keeps its id and row; its newest
//! stamp is `row-edit/<issue>/<row>`. A move is `move/<issue>/<stamp>`.

use super::descriptions::{self, Description};
use super::issues::{self, Issue, Row};
use super::projects::Folder;
use super::types::prefix;
use super::{EventKind, IssueEvent, Read, Writer, key, keys};
use crate::error::Result;
use serde::{Deserialize, Serialize};

/// The stub of an issue that left a folder at the stamp of its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stub {
    pub issue: u64,
    /// The stamp at which the issue came into the folder (created or moved in): a client
    /// that listed the folder since then may hold it.
    pub entered: u64,
}

/// The newest edit of a comment or file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edit {
    pub stamp: u64,
    pub time: i64,
    pub user: u64,
}

/// A move of an issue (history type 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    pub stamp: u64,
    pub time: i64,
    pub user: u64,
    pub from: u64,
    pub to: u64,
}

/// A row (comment or file) of an issue by id.
pub fn row(r: &impl Read, issue: u64, id: u64) -> Result<Option<Row>> {
    r.get(&key("row", &[issue, id]))
}

pub fn edit_of(r: &impl Read, issue: u64, row: u64) -> Result<Option<Edit>> {
    r.get(&key("row-edit", &[issue, row]))
}

/// Rewrites a comment or file row under a new stamp of its issue.
pub fn edit_row(
    w: &mut Writer,
    issue: &mut Issue,
    folder: &Folder,
    new: Row,
    user: u64,
    what: &str,
) -> Result<u64> {
    let id = match &new {
        Row::Comment(c) => c.id,
        Row::Attachment(a) => a.id,
        Row::Change(c) => c.id,
    };
    let kind = EventKind::Edited { what: what.into() };
    let (stamp, time) = issues::touch(w, issue, folder, user, kind)?;
    w.put(key("row", &[issue.id, id]), &new)?;
    w.put(
        key("row-edit", &[issue.id, id]),
        &Edit { stamp, time, user },
    )?;
    Ok(stamp)
}

/// Deletes a comment or file row, leaving its stub; returns the stamp.
pub fn delete_row(
    w: &mut Writer,
    issue: &mut Issue,
    folder: &Folder,
    old: &Row,
    user: u64,
    what: &str,
) -> Result<u64> {
    let id = match old {
        Row::Comment(c) => c.id,
        Row::Attachment(a) => {
            // The bytes go at the next start's sweep (issues::sweep_orphan_files).
            w.remove(super::key_str("attachment-file", &a.file));
            a.id
        }
        Row::Change(c) => c.id,
    };
    let kind = EventKind::Edited { what: what.into() };
    let (stamp, _) = issues::touch(w, issue, folder, user, kind)?;
    w.remove(key("row", &[issue.id, id]));
    w.remove(key("row-edit", &[issue.id, id]));
    w.remove(key("comment-format", &[id]));
    w.put(key("row-gone", &[issue.id, id]), &stamp)?;
    Ok(stamp)
}

/// Rows edited after `since` that are older than `since` themselves, by id.
pub fn edited_since(r: &impl Read, issue: u64, since: i64) -> Result<Vec<(u64, Edit)>> {
    let mut out = Vec::new();
    r.visit(&prefix("row-edit", issue), &mut |k, v| {
        let e: Edit = postcard::from_bytes(v)?;
        let id = keys::id_at("row-edit", k, 1);
        if e.stamp as i64 > since && id as i64 <= since {
            out.push((id, e));
        }
        Ok(())
    })?;
    Ok(out)
}

/// Rows the client may hold (id ≤ `since`) deleted after `since`.
pub fn gone_since(r: &impl Read, issue: u64, since: i64) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    if since <= 0 {
        return Ok(out);
    }
    r.visit(&prefix("row-gone", issue), &mut |k, v| {
        let stamp: u64 = postcard::from_bytes(v)?;
        let id = keys::id_at("row-gone", k, 1);
        if stamp as i64 > since && id as i64 <= since {
            out.push(id);
        }
        Ok(())
    })?;
    Ok(out)
}

/// Edits the description; `None` when text and format are unchanged.
pub fn edit_description(
    w: &mut Writer,
    issue: &mut Issue,
    folder: &Folder,
    old: &Description,
    text: String,
    format: u8,
    user: u64,
) -> Result<Option<u64>> {
    if old.text == text && old.format == format {
        return Ok(None);
    }
    let kind = EventKind::Edited {
        what: "edited the description".into(),
    };
    let (stamp, time) = issues::touch(w, issue, folder, user, kind)?;
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

pub fn delete_description(
    w: &mut Writer,
    issue: &mut Issue,
    folder: &Folder,
    user: u64,
) -> Result<u64> {
    let kind = EventKind::Edited {
        what: "deleted the description".into(),
    };
    let (stamp, _) = issues::touch(w, issue, folder, user, kind)?;
    w.remove(key("description", &[issue.id]));
    w.put(key("description-gone", &[issue.id]), &stamp)?;
    Ok(stamp)
}

/// The stamp of the description's deletion, if it is deleted.
pub fn description_gone(r: &impl Read, issue: u64) -> Result<Option<u64>> {
    if descriptions::get(r, issue)?.is_some() {
        return Ok(None);
    }
    r.get(&key("description-gone", &[issue]))
}

/// Moves an issue to another folder; the old folder keeps a stub.
pub fn move_issue(
    w: &mut Writer,
    issue: &mut Issue,
    from: &Folder,
    to: &Folder,
    user: u64,
) -> Result<u64> {
    let stamp = w.next_stamp()?;
    let time = issues::now();
    w.remove(key("folder-stamp", &[from.id, issue.stamp]));
    w.put(key("folder-stamp", &[to.id, stamp]), &issue.id)?;
    w.put(
        key("folder-gone", &[from.id, stamp]),
        &Stub {
            issue: issue.id,
            entered: entered(w, issue.id)?,
        },
    )?;
    w.put(
        key("move", &[issue.id, stamp]),
        &Move {
            stamp,
            time,
            user,
            from: from.id,
            to: to.id,
        },
    )?;
    issue.folder = to.id;
    issue.stamp = stamp;
    issue.modified = time;
    issue.modified_by = user;
    w.put(key("issue", &[issue.id]), &*issue)?;
    w.record_event(&IssueEvent {
        stamp,
        issue: issue.id,
        folder: to.id,
        project: to.project,
        user,
        time,
        kind: EventKind::Moved {
            from: from.id,
            to: to.id,
        },
    })?;
    Ok(stamp)
}

/// The stamp at which the issue came into its current folder: its last move, else its
/// creation (its id).
fn entered(r: &impl Read, issue: u64) -> Result<u64> {
    Ok(moves_since(r, issue, 0)?
        .last()
        .map(|m| m.stamp)
        .unwrap_or(issue))
}

/// Moves of an issue after `since`.
pub fn moves_since(r: &impl Read, issue: u64, since: i64) -> Result<Vec<Move>> {
    let mut out = Vec::new();
    r.visit(&prefix("move", issue), &mut |_, v| {
        let m: Move = postcard::from_bytes(v)?;
        if m.stamp as i64 > since {
            out.push(m);
        }
        Ok(())
    })?;
    Ok(out)
}

/// Deletes an issue, leaving a stub in its folder; returns the stamp.
pub fn delete_issue(w: &mut Writer, issue: &Issue, folder: &Folder, user: u64) -> Result<u64> {
    let stamp = w.next_stamp()?;
    let time = issues::now();
    w.put(
        key("folder-gone", &[folder.id, stamp]),
        &Stub {
            issue: issue.id,
            entered: entered(w, issue.id)?,
        },
    )?;
    purge(w, issue)?;
    w.record_event(&IssueEvent {
        stamp,
        issue: issue.id,
        folder: folder.id,
        project: folder.project,
        user,
        time,
        kind: EventKind::Deleted,
    })?;
    Ok(stamp)
}

/// Removes an issue and everything it holds, without a stub (its folder goes too).
pub fn purge(w: &mut Writer, issue: &Issue) -> Result<()> {
    w.remove(key("folder-stamp", &[issue.folder, issue.stamp]));
    for row in issues::rows_since(w, issue.id, 0)? {
        match row {
            Row::Attachment(a) => w.remove(super::key_str("attachment-file", &a.file)),
            Row::Comment(c) => w.remove(key("comment-format", &[c.id])),
            Row::Change(_) => {}
        }
    }
    for name in ["value", "row", "row-edit", "row-gone", "move"] {
        w.remove_prefix(&prefix(name, issue.id))?;
    }
    w.remove(key("description", &[issue.id]));
    w.remove(key("description-gone", &[issue.id]));
    w.remove(key("issue", &[issue.id]));
    Ok(())
}

/// Removes a folder's issues and stubs (a forced DELETE FOLDER).
pub fn purge_folder(w: &mut Writer, folder: u64) -> Result<()> {
    for (id, _) in issues::in_folder_since(w, folder, 0)? {
        if let Some(i) = issues::get(w, id as i64)? {
            purge(w, &i)?;
        }
    }
    w.remove_prefix(&prefix("folder-gone", folder))?;
    Ok(())
}

/// `X` stubs of LIST ISSUES: issues that were in the folder at `since` (came in at or
/// before it) and left it after, as (issue, folder now or 0, its stamp now or 0).
pub fn folder_stubs(r: &impl Read, folder: u64, since: i64) -> Result<Vec<(u64, u64, u64)>> {
    let mut out: Vec<(u64, u64, u64)> = Vec::new();
    if since <= 0 {
        return Ok(out);
    }
    let mut stubs = Vec::new();
    r.visit(&prefix("folder-gone", folder), &mut |k, v| {
        let stamp = keys::id_at("folder-gone", k, 1);
        let s: Stub = postcard::from_bytes(v)?;
        if stamp as i64 > since && s.entered as i64 <= since {
            stubs.push(s.issue);
        }
        Ok(())
    })?;
    stubs.sort_unstable();
    stubs.dedup();
    for id in stubs {
        match issues::get(r, id as i64)? {
            // Moved away and back: its `I` line says all.
            Some(i) if i.folder == folder => {}
            Some(i) => out.push((id, i.folder, i.stamp)),
            None => out.push((id, 0, 0)),
        }
    }
    Ok(out)
}
