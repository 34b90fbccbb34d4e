//! LIST ISSUES, GET DETAILS, ADD ISSUE, RENAME ISSUE, SET VALUE, ADD COMMENT,
//! ADD ATTACHMENT, GET ATTACHMENT, FIND ITEM.
//!
//! All of them need member access to the issue's project; anything in a project the caller
//! cannot see is "unknown" (304 folder, 305 issue or item, 306 attachment).

use super::Cx;
use crate::error::{Code, Error, Result};
use crate::protocol::{FileBody, LineOut, Reply};
use crate::store::issues::{self, Issue, Row};
use crate::store::{Read, projects, types, users};
use bytes::Bytes;
use std::path::Path;

/// Room for a typical reply (an issue, its values and a few rows), so building it does not
/// grow the buffer step by step.
const REPLY_CAPACITY: usize = 1024;

fn issue_line(out: &mut Vec<u8>, i: &Issue) {
    LineOut::new(out, "I")
        .int(i.id as i64)
        .int(i.folder as i64)
        .str(&i.name)
        .int(i.stamp as i64)
        .int(i.created)
        .int(i.created_by as i64)
        .int(i.modified)
        .int(i.modified_by as i64)
        .end();
}

fn value_lines(out: &mut Vec<u8>, r: &impl Read, issue: u64) -> Result<()> {
    issues::visit_values(r, issue, |a, v| {
        LineOut::new(out, "V")
            .int(a as i64)
            .int(issue as i64)
            .str(v)
            .end();
        Ok(())
    })
}

/// Issues of the folder with a stamp above `since`, each followed by all its current values.
/// Clients run this on every refresh, so each issue's lines are encoded once per change
/// and kept ([`super::issue_lines`]).
pub fn list_issues(cx: &mut Cx, folder: i64, since: i64) -> Result<Reply> {
    let me = cx.user()?;
    let app = cx.shared;
    cx.read(|r| {
        let (f, _) = projects::visible_folder(r, &me, folder)?;
        let generation = app.store.attribute_generation();
        let mut out = Vec::with_capacity(REPLY_CAPACITY);
        let mut values = Vec::with_capacity(REPLY_CAPACITY);
        for (id, stamp) in issues::in_folder_since(r, f.id, since)? {
            if app
                .issue_lines
                .copy(id, stamp, generation, &mut out, &mut values)
            {
                continue;
            }
            let Some(issue) = issues::get(r, id as i64)? else {
                continue;
            };
            let (i_at, v_at) = (out.len(), values.len());
            issue_line(&mut out, &issue);
            value_lines(&mut values, r, id)?;
            app.issue_lines
                .keep(id, stamp, generation, &out[i_at..], &values[v_at..]);
        }
        out.extend_from_slice(&values);
        Ok(Reply::Encoded(out))
    })
}

/// `NULL` when the issue has not changed since `since`; else the issue, all its values,
/// and its comments, attachments and history rows newer than `since` (in that order).
pub fn get_details(cx: &mut Cx, issue: i64, since: i64) -> Result<Reply> {
    let me = cx.user()?;
    cx.read(|r| {
        let (i, _) = issues::visible(r, &me, issue)?;
        if (i.stamp as i64) <= since {
            return Ok(Reply::Null);
        }
        let mut out = Vec::with_capacity(REPLY_CAPACITY);
        issue_line(&mut out, &i);
        value_lines(&mut out, r, i.id)?;
        let (mut files, mut changes) = (Vec::new(), Vec::new());
        for row in issues::rows_since(r, i.id, since)? {
            match row {
                Row::Comment(c) => LineOut::new(&mut out, "C")
                    .int(c.id as i64)
                    .int(c.issue as i64)
                    .int(c.time)
                    .int(c.user as i64)
                    .str(&c.text)
                    .end(),
                Row::Attachment(a) => LineOut::new(&mut files, "A")
                    .int(a.id as i64)
                    .int(a.issue as i64)
                    .str(&a.name)
                    .int(a.time)
                    .int(a.user as i64)
                    .int(a.size as i64)
                    .str(&a.description)
                    .end(),
                Row::Change(c) => LineOut::new(&mut changes, "H")
                    .int(c.id as i64)
                    .int(c.issue as i64)
                    .int(c.time)
                    .int(c.user as i64)
                    .int(c.attribute as i64)
                    .str(&c.old)
                    .str(&c.new)
                    .end(),
            }
        }
        out.extend_from_slice(&files);
        out.extend_from_slice(&changes);
        Ok(Reply::Encoded(out))
    })
}

/// Creates the issue with each attribute's default value (no history rows for those).
pub fn add_issue(cx: &mut Cx, folder: i64, name: String) -> Result<Reply> {
    let me = cx.user()?;
    let app = cx.shared;
    let id = cx.write(|w| {
        let (f, _) = projects::visible_folder(w, &me, folder)?;
        let generation = app.store.attribute_generation();
        let defaults = app
            .type_defaults
            .get(w, &app.definitions, f.type_id, generation)?;
        issues::create(w, &f, &name, &defaults, me.id)
    })?;
    Ok(Reply::Id(id as i64))
}

fn id_or_null(stamp: Option<u64>) -> Reply {
    match stamp {
        Some(id) => Reply::Id(id as i64),
        None => Reply::Null,
    }
}

pub fn rename_issue(cx: &mut Cx, issue: i64, name: String) -> Result<Reply> {
    let me = cx.user()?;
    cx.write(|w| {
        let (mut i, f) = issues::visible(w, &me, issue)?;
        issues::rename(w, &mut i, &f, &name, me.id).map(id_or_null)
    })
}

/// Validates the value against the attribute's current definition and stores its
/// normalised form; a USER value with `member=1` must name a member of this project.
pub fn set_value(cx: &mut Cx, issue: i64, attribute: i64, value: String) -> Result<Reply> {
    let me = cx.user()?;
    let definitions = &cx.shared.definitions;
    cx.write(|w| {
        let (mut i, f) = issues::visible(w, &me, issue)?;
        let attr = types::attribute(w, attribute)?
            .filter(|a| a.type_id == f.type_id)
            .ok_or(Code::UnknownAttribute)?;
        let def = definitions
            .parse(&attr.definition)
            .map_err(Error::internal)?;
        let user_ok = |name: &str, member: bool| -> bool {
            match users::id_by_name(w, name) {
                Ok(Some(u)) => {
                    !member || matches!(users::member_access(w, f.project, u), Ok(Some(a)) if a > 0)
                }
                _ => false,
            }
        };
        let value = def
            .validate_value(&value, &user_ok)
            .map_err(|e| Error::with(Code::InvalidValue, e.to_string()))?;
        issues::set_value(w, &mut i, &f, attr.id, &value, me.id).map(id_or_null)
    })
}

pub fn add_comment(cx: &mut Cx, issue: i64, text: String) -> Result<Reply> {
    let me = cx.user()?;
    let id = cx.write(|w| {
        let (mut i, f) = issues::visible(w, &me, issue)?;
        issues::add_comment(w, &mut i, &f, text, me.id)
    })?;
    Ok(Reply::Id(id as i64))
}

/// The bytes go to their own file, made durable (file and directory fsync) before the
/// batch that records the attachment, so an acknowledged attachment never points at a
/// missing file, and large files stay out of sled's cache.
pub async fn add_attachment(
    cx: &mut Cx<'_>,
    issue: i64,
    name: String,
    description: String,
    data: Bytes,
) -> Result<Reply> {
    let me = cx.user()?;
    cx.read(|r| issues::visible(r, &me, issue))?;
    let dir = cx.shared.attachments_dir();
    let file = format!("{:032x}", rand::random::<u128>());
    let path = dir.join(&file);
    let size = data.len() as u64;
    {
        let path = path.clone();
        tokio::task::spawn_blocking(move || write_durably(&dir, &path, &data))
            .await
            .map_err(Error::internal)??;
    }
    let written = cx.write(|w| {
        let (mut i, f) = issues::visible(w, &me, issue)?;
        issues::add_attachment(w, &mut i, &f, &name, description, size, file, me.id)
    });
    match written {
        Ok(id) => Ok(Reply::Id(id as i64)),
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            Err(e)
        }
    }
}

fn write_durably(dir: &Path, path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let mut f = std::fs::File::create(path)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

pub async fn get_attachment(cx: &mut Cx<'_>, attachment: i64) -> Result<Reply> {
    let me = cx.user()?;
    let a = cx.read(|r| {
        if let Some(a) = issues::attachment(r, attachment)?
            && issues::visible(r, &me, a.issue as i64).is_ok()
        {
            return Ok(a);
        }
        Err(Error::new(Code::UnknownAttachment))
    })?;
    let path = cx.shared.attachments_dir().join(&a.file);
    // A streamed file stays open until its reply is written: it takes one of the
    // descriptors kept for that (`Shared::streamed_files`), so downloads cannot use them all up.
    let permit = if a.size > STREAM_ABOVE {
        let files = cx.shared.streamed_files.clone();
        match tokio::time::timeout(STREAM_WAIT, files.acquire_owned()).await {
            Ok(Ok(p)) => Some(std::sync::Arc::new(p)),
            _ => {
                tracing::warn!("download refused: too many attachment files streamed");
                return Err(Error::with(
                    Code::ServerError,
                    "too many downloads in progress; try again later",
                ));
            }
        }
    } else {
        None
    };
    // Small files are read whole; larger ones are streamed from the open file by the
    // connection, so replies in flight never hold a large attachment in memory.
    let file = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
        let file = std::fs::File::open(&path)?;
        let size = file.metadata()?.len();
        if size > STREAM_ABOVE
            && let Some(permit) = permit
        {
            return Ok(Reply::File(FileBody {
                file: std::sync::Arc::new(file),
                size,
                permit: Some(permit),
            }));
        }
        let mut data = Vec::with_capacity(size as usize);
        std::io::Read::read_to_end(&mut std::io::Read::take(file, size), &mut data)?;
        Ok(Reply::Data(Bytes::from(data)))
    });
    file.await
        .map_err(Error::internal)?
        .map_err(Error::internal)
}

/// Attachments larger than this are streamed from their file (see [`get_attachment`]).
const STREAM_ABOVE: u64 = 64 * 1024;
/// How long GET ATTACHMENT waits for a streamed file's descriptor before giving up.
const STREAM_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The issue owning an issue, comment, attachment or change id.
pub fn find_item(cx: &mut Cx, item: i64) -> Result<Reply> {
    let me = cx.user()?;
    cx.read(|r| {
        let issue = issues::owner_of_item(r, item)?.ok_or(Code::UnknownIssue)?;
        let (i, _) = issues::visible(r, &me, issue as i64)?;
        Ok(Reply::Id(i.id as i64))
    })
}
