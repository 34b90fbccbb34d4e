//! Issues, their attribute values and their rows (changes, comments, attachments).
//!
//! Every issue modification takes the next value of the one global stamp sequence
//! (protocol-spec/tracker.md, "Stamps"): it becomes the id of the new issue or row, the
//! issue's stamp and the folder's stamp, and it keys the [`super::IssueEvent`] written in the
//! same batch. `folder-stamp/<folder>/<stamp>` indexes issues by their current stamp, so
//! `LIST ISSUES folder since` reads only the keys it needs.

use super::projects::{self, Folder};
use super::types::prefix;
use super::users::User;
use super::{EventKind, IssueEvent, Read, Writer, key, keys};
use crate::error::{Code, Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    pub id: u64,
    pub folder: u64,
    pub name: String,
    /// The stamp of the latest modification (the id, until the first change).
    pub stamp: u64,
    pub created: i64,
    pub created_by: u64,
    pub modified: i64,
    pub modified_by: u64,
}

/// One history entry of an issue: a change (attribute 0 = rename), a comment or an
/// attachment. Its id is a stamp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Row {
    Change(Change),
    Comment(Comment),
    Attachment(Attachment),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub id: u64,
    pub issue: u64,
    pub time: i64,
    pub user: u64,
    /// 0 for a rename of the issue.
    pub attribute: u64,
    pub old: String,
    pub new: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    pub id: u64,
    pub issue: u64,
    pub time: i64,
    pub user: u64,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: u64,
    pub issue: u64,
    pub name: String,
    pub time: i64,
    pub user: u64,
    pub size: u64,
    pub description: String,
    /// File name under `<data_dir>/attachments/`; the bytes live outside sled.
    pub file: String,
}

/// Unix seconds now: the time of every stamp.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn get(r: &impl Read, id: i64) -> Result<Option<Issue>> {
    if id <= 0 {
        return Ok(None);
    }
    r.get(&key("issue", &[id as u64]))
}

/// The issue and its folder if `user` may see them, else `Unknown Issue`.
pub fn visible(r: &impl Read, user: &User, id: i64) -> Result<(Issue, Folder)> {
    if let Some(issue) = get(r, id)?
        && let Some(folder) = projects::folder(r, issue.folder as i64)?
        && projects::folder_access(r, user, folder.project)?.is_some()
    {
        return Ok((issue, folder));
    }
    Err(Error::new(Code::UnknownIssue))
}

/// The issue that owns item `id` (an issue, change, comment or attachment id). Every item
/// id is the stamp of the event that made it, and events are kept, so the event names the
/// issue; the item itself must still exist (DELETE ATTRIBUTE removes its change rows).
/// Data written before events named every item has `item/<id>` keys instead.
pub fn owner_of_item(r: &impl Read, id: i64) -> Result<Option<u64>> {
    if id <= 0 {
        return Ok(None);
    }
    let id = id as u64;
    let Some(event) = r.get::<super::IssueEvent>(&key("event", &[id]))? else {
        return r.get(&key("item", &[id]));
    };
    let exists = if event.issue == id {
        r.exists(&key("issue", &[id]))?
    } else {
        r.exists(&key("row", &[event.issue, id]))?
    };
    Ok(exists.then_some(event.issue))
}

/// Issues of a folder whose stamp is greater than `since`, as (id, stamp), in id order.
/// Read from the folder's stamp index alone: no issue record is decoded.
pub fn in_folder_since(r: &impl Read, folder: u64, since: i64) -> Result<Vec<(u64, u64)>> {
    // Index keys are big-endian stamps: start right after `since`, skip the older issues.
    let from = key("folder-stamp", &[folder, since.max(0) as u64 + 1]);
    let to = key("folder-stamp", &[folder + 1]);
    let mut out = Vec::new();
    for (k, raw) in r.range_raw(&from, &to, usize::MAX)? {
        let id: u64 = postcard::from_bytes(&raw)?;
        out.push((id, keys::id_at("folder-stamp", &k, 1)));
    }
    out.sort_unstable();
    Ok(out)
}

/// Calls `f` with each non-empty value of an issue as (attribute, value), in attribute
/// order, without copying the values.
pub fn visit_values(
    r: &impl Read,
    issue: u64,
    mut f: impl FnMut(u64, &str) -> Result<()>,
) -> Result<()> {
    r.visit(&prefix("value", issue), &mut |k, v| {
        f(keys::id_at("value", k, 1), postcard::from_bytes(v)?)
    })
}

pub fn value(r: &impl Read, issue: u64, attribute: u64) -> Result<String> {
    Ok(r.get(&key("value", &[issue, attribute]))?
        .unwrap_or_default())
}

/// Rows of an issue with id greater than `since`, in id order. Older rows (long comments
/// among them) are skipped by key, without decoding them.
pub fn rows_since(r: &impl Read, issue: u64, since: i64) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    r.visit(&prefix("row", issue), &mut |k, v| {
        if keys::id_at("row", k, 1) as i64 > since {
            rows.push(postcard::from_bytes(v)?);
        }
        Ok(())
    })?;
    Ok(rows)
}

/// The attachment with this id, if any (visibility is the caller's business).
pub fn attachment(r: &impl Read, id: i64) -> Result<Option<Attachment>> {
    let Some(issue) = owner_of_item(r, id)? else {
        return Ok(None);
    };
    match r.get::<Row>(&key("row", &[issue, id as u64]))? {
        Some(Row::Attachment(a)) => Ok(Some(a)),
        _ => Ok(None),
    }
}

fn put_value(w: &mut Writer, issue: u64, attribute: u64, value: &str) -> Result<()> {
    if value.is_empty() {
        w.remove(key("value", &[issue, attribute]));
    } else {
        w.put(key("value", &[issue, attribute]), value)?;
    }
    Ok(())
}

/// Creates an issue with its default values (no history rows for them); returns its id.
pub fn create(
    w: &mut Writer,
    folder: &Folder,
    name: &str,
    defaults: &[(u64, String)],
    user: u64,
) -> Result<u64> {
    let stamp = w.next_stamp()?;
    let time = now();
    let issue = Issue {
        id: stamp,
        folder: folder.id,
        name: name.into(),
        stamp,
        created: time,
        created_by: user,
        modified: time,
        modified_by: user,
    };
    for (attribute, value) in defaults {
        put_value(w, stamp, *attribute, value)?;
    }
    w.put(key("issue", &[stamp]), &issue)?;
    // Also the folder's new stamp (super::stamps).
    w.put(key("folder-stamp", &[folder.id, stamp]), &stamp)?;
    w.record_event(&IssueEvent {
        stamp,
        issue: stamp,
        folder: folder.id,
        project: folder.project,
        user,
        time,
        kind: EventKind::Created { name: name.into() },
    })?;
    Ok(stamp)
}

/// Takes a new stamp for a modification of `issue` (in `folder`, which the caller has read
/// already) by `user`: moves the issue's stamp (and so the folder's, [`super::stamps`]),
/// records the row under it and the event. Returns the stamp.
fn modify(
    w: &mut Writer,
    issue: &mut Issue,
    folder: &Folder,
    user: u64,
    row: impl FnOnce(u64, i64) -> Row,
    kind: EventKind,
) -> Result<u64> {
    let (stamp, time) = touch(w, issue, folder, user, kind)?;
    w.put(key("row", &[issue.id, stamp]), &row(stamp, time))?;
    Ok(stamp)
}

/// Takes a new stamp for a modification of `issue` that has no history row of its own
/// (its description): moves the issue's and the folder's stamp and records the event.
/// Returns the stamp and its time.
pub fn touch(
    w: &mut Writer,
    issue: &mut Issue,
    folder: &Folder,
    user: u64,
    kind: EventKind,
) -> Result<(u64, i64)> {
    debug_assert_eq!(folder.id, issue.folder);
    let stamp = w.next_stamp()?;
    let time = now();
    w.remove(key("folder-stamp", &[folder.id, issue.stamp]));
    w.put(key("folder-stamp", &[folder.id, stamp]), &issue.id)?;
    issue.stamp = stamp;
    issue.modified = time;
    issue.modified_by = user;
    w.put(key("issue", &[issue.id]), &*issue)?;
    w.record_event(&IssueEvent {
        stamp,
        issue: issue.id,
        folder: folder.id,
        project: folder.project,
        user,
        time,
        kind,
    })?;
    Ok((stamp, time))
}

/// Renames an issue; `None` when the name is unchanged (no stamp taken).
pub fn rename(
    w: &mut Writer,
    issue: &mut Issue,
    folder: &Folder,
    name: &str,
    user: u64,
) -> Result<Option<u64>> {
    if issue.name == name {
        return Ok(None);
    }
    let old = std::mem::replace(&mut issue.name, name.into());
    change(w, issue, folder, user, 0, old, name.into()).map(Some)
}

/// Sets a value (already validated and normalised); `None` when it is unchanged.
pub fn set_value(
    w: &mut Writer,
    issue: &mut Issue,
    folder: &Folder,
    attribute: u64,
    value: &str,
    user: u64,
) -> Result<Option<u64>> {
    let old = self::value(w, issue.id, attribute)?;
    if old == value {
        return Ok(None);
    }
    put_value(w, issue.id, attribute, value)?;
    change(w, issue, folder, user, attribute, old, value.into()).map(Some)
}

/// Records a history row and its event (`attribute` 0: a rename) under a new stamp.
fn change(
    w: &mut Writer,
    issue: &mut Issue,
    folder: &Folder,
    user: u64,
    attribute: u64,
    old: String,
    new: String,
) -> Result<u64> {
    let id = issue.id;
    let kind = if attribute == 0 {
        EventKind::Renamed {
            old: old.clone(),
            new: new.clone(),
        }
    } else {
        EventKind::ValueSet {
            attribute,
            old: old.clone(),
            new: new.clone(),
        }
    };
    modify(
        w,
        issue,
        folder,
        user,
        |stamp, time| {
            Row::Change(Change {
                id: stamp,
                issue: id,
                time,
                user,
                attribute,
                old,
                new,
            })
        },
        kind,
    )
}

pub fn add_comment(
    w: &mut Writer,
    issue: &mut Issue,
    folder: &Folder,
    text: String,
    user: u64,
) -> Result<u64> {
    let id = issue.id;
    modify(
        w,
        issue,
        folder,
        user,
        |stamp, time| {
            Row::Comment(Comment {
                id: stamp,
                issue: id,
                time,
                user,
                text,
            })
        },
        EventKind::Commented,
    )
}

/// Records an attachment whose bytes are already durable in `file`.
#[expect(
    clippy::too_many_arguments,
    reason = "the fields of ADD ATTACHMENT and where it goes"
)]
pub fn add_attachment(
    w: &mut Writer,
    issue: &mut Issue,
    folder: &Folder,
    name: &str,
    description: String,
    size: u64,
    file: String,
    user: u64,
) -> Result<u64> {
    let id = issue.id;
    let kind = EventKind::Attached { name: name.into() };
    w.put(super::key_str("attachment-file", &file), &())?;
    modify(
        w,
        issue,
        folder,
        user,
        |stamp, time| {
            Row::Attachment(Attachment {
                id: stamp,
                issue: id,
                name: name.into(),
                time,
                user,
                size,
                description,
                file,
            })
        },
        kind,
    )
}

/// Deletes files in the attachments directory that no attachment records: bytes written
/// for an upload whose command then failed or whose batch a crash cut off. Run at start,
/// before any command, so no upload is in flight.
pub fn sweep_orphan_files(r: &impl Read, dir: &std::path::Path) -> Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !r.exists(&super::key_str("attachment-file", name))? {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Removes every value and history row of an attribute (DELETE ATTRIBUTE). Issue and folder
/// stamps do not move: clients learn of it from LIST TYPES.
///
/// No index by attribute is kept (each would cost every SET VALUE a record, for a rare
/// administrator's command): this reads every value and row in memory, about 0.1 s for a
/// million records. Keys of the indices that older versions wrote go too.
pub fn forget_attribute(w: &mut Writer, attribute: u64) -> Result<()> {
    let mut gone: Vec<Vec<u8>> = Vec::new();
    w.visit(b"value/", &mut |k, _| {
        if keys::id_at("value", k, 1) == attribute {
            gone.push(k.to_vec());
        }
        Ok(())
    })?;
    w.visit(b"row/", &mut |k, v| {
        if let Row::Change(c) = postcard::from_bytes::<Row>(v)?
            && c.attribute == attribute
        {
            gone.push(k.to_vec());
        }
        Ok(())
    })?;
    for old in ["attr-value", "attr-change"] {
        w.visit(&prefix(old, attribute), &mut |k, _| {
            gone.push(k.to_vec());
            Ok(())
        })?;
    }
    for k in gone {
        w.remove(k);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, projects, types};

    /// Every issue modification writes one event under its stamp, in the same batch
    /// (the contract the notification pass reads).
    #[test]
    fn every_modification_records_its_event() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let (kinds, _) = store
            .write(|w| {
                types::create_default_types(w)?;
                let p = projects::insert(w, "P")?;
                let f = projects::insert_folder(w, p, 1, "F")?;
                let folder = projects::folder(w, f as i64)?.unwrap();
                let id = create(w, &folder, "Bug", &[(1, "New".into())], 7)?;
                let mut issue = get(w, id as i64)?.unwrap();
                assert_eq!(rename(w, &mut issue, &folder, "Bug", 7)?, None, "no-op");
                rename(w, &mut issue, &folder, "Big bug", 7)?;
                assert_eq!(
                    set_value(w, &mut issue, &folder, 1, "New", 8)?,
                    None,
                    "no-op"
                );
                set_value(w, &mut issue, &folder, 1, "Open", 8)?;
                add_comment(w, &mut issue, &folder, "c".into(), 8)?;
                add_attachment(w, &mut issue, &folder, "a", String::new(), 1, "f".into(), 9)?;
                assert_eq!(issue.stamp, 5);
                assert_eq!(projects::folder(w, f as i64)?.unwrap().stamp, 5);
                let events: Vec<IssueEvent> =
                    w.scan(b"event/")?.into_iter().map(|(_, e)| e).collect();
                assert!(
                    events
                        .iter()
                        .all(|e| e.issue == id && e.folder == f && e.project == p)
                );
                assert_eq!(
                    events.iter().map(|e| (e.stamp, e.user)).collect::<Vec<_>>(),
                    [(1, 7), (2, 7), (3, 8), (4, 8), (5, 9)]
                );
                Ok(events.into_iter().map(|e| e.kind).collect::<Vec<_>>())
            })
            .unwrap();
        assert_eq!(
            kinds,
            [
                EventKind::Created { name: "Bug".into() },
                EventKind::Renamed {
                    old: "Bug".into(),
                    new: "Big bug".into()
                },
                EventKind::ValueSet {
                    attribute: 1,
                    old: "New".into(),
                    new: "Open".into()
                },
                EventKind::Commented,
                EventKind::Attached { name: "a".into() },
            ]
        );
    }

    /// The last stamp and the folder stamps are not stored but derived from the event and
    /// index keys: they survive a fold into sled and a restart, and data of older versions,
    /// which kept the counter in `ctr/stamp`, continues from the counter.
    #[test]
    fn stamps_continue_after_a_restart_without_a_stored_counter() {
        let dir = tempfile::tempdir().unwrap();
        let open = || Store::open(dir.path(), 1 << 20).unwrap();
        let store = open();
        let (folders, _) = store
            .write(|w| {
                types::create_default_types(w)?;
                let p = projects::insert(w, "P")?;
                let a = projects::insert_folder(w, p, 1, "A")?;
                let b = projects::insert_folder(w, p, 1, "B")?;
                let fa = projects::folder(w, a as i64)?.unwrap();
                let fb = projects::folder(w, b as i64)?.unwrap();
                let one = create(w, &fa, "one", &[], 1)?;
                create(w, &fb, "two", &[], 1)?;
                let mut issue = get(w, one as i64)?.unwrap();
                add_comment(w, &mut issue, &fa, "c".into(), 1)?;
                assert!(w.get::<u64>(b"ctr/stamp")?.is_none(), "no stored counter");
                Ok((a, b))
            })
            .unwrap();
        let stamps = |store: &Store| {
            store
                .read(|r| {
                    Ok((
                        projects::folder(r, folders.0 as i64)?.unwrap().stamp,
                        projects::folder(r, folders.1 as i64)?.unwrap().stamp,
                    ))
                })
                .unwrap()
        };
        assert_eq!(stamps(&store), (3, 2));
        store.close().unwrap();
        drop(store);

        let store = open();
        assert_eq!(stamps(&store), (3, 2), "folded into sled and loaded");
        let (next, _) = store
            .write(|w| {
                let mut issue = get(w, 2)?.unwrap();
                let folder = projects::folder(w, issue.folder as i64)?.unwrap();
                let stamp = add_comment(w, &mut issue, &folder, "d".into(), 1)?;
                // An older version's counter ahead of the events.
                w.put(crate::store::key_str("ctr", "stamp"), &40u64)?;
                Ok(stamp)
            })
            .unwrap();
        assert_eq!(next, 4);
        assert_eq!(stamps(&store), (3, 4));
        store.close().unwrap();
        drop(store);

        let store = open();
        let (next, _) = store
            .write(|w| {
                let mut issue = get(w, 1)?.unwrap();
                let folder = projects::folder(w, issue.folder as i64)?.unwrap();
                add_comment(w, &mut issue, &folder, "e".into(), 1)
            })
            .unwrap();
        assert_eq!(next, 41);
        assert_eq!(stamps(&store), (41, 4));
        store.close().unwrap();
    }

    #[test]
    fn orphan_files_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db"), 1 << 20).unwrap();
        let files = dir.path().join("attachments");
        std::fs::create_dir_all(&files).unwrap();
        std::fs::write(files.join("kept"), b"x").unwrap();
        std::fs::write(files.join("orphan"), b"x").unwrap();
        store
            .write(|w| w.put(crate::store::key_str("attachment-file", "kept"), &()))
            .unwrap();
        let n = store.read(|r| sweep_orphan_files(r, &files)).unwrap();
        assert_eq!(n, 1);
        assert!(files.join("kept").exists() && !files.join("orphan").exists());
    }
}
