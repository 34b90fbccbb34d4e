//! What 1.1 adds to a project: the public flag, the archived flag and the description,
//! under keys of their own (`project-public/<id>`, `project-archived/<id>`,
//! `project-desc/<id>`, `project-desc-gone/<id>`), so 0.8's project records stay as they
//! are. Both dialects honour the flags ([`super::projects::folder_access`]).

use super::descriptions::Description;
use super::{EventKind, IssueEvent, Read, Writer, key};
use crate::error::Result;

pub fn public(r: &impl Read, project: u64) -> Result<bool> {
    r.exists(&key("project-public", &[project]))
}

pub fn archived(r: &impl Read, project: u64) -> Result<bool> {
    r.exists(&key("project-archived", &[project]))
}

/// Sets the public flag; `false` when unchanged.
pub fn set_public(w: &mut Writer, project: u64, public: bool) -> Result<bool> {
    if self::public(w, project)? == public {
        return Ok(false);
    }
    if public {
        w.put(key("project-public", &[project]), &())?;
    } else {
        w.remove(key("project-public", &[project]));
    }
    Ok(true)
}

/// Archives a project: it keeps its name, its folders and issues, and disappears.
pub fn archive(w: &mut Writer, project: u64) -> Result<()> {
    w.put(key("project-archived", &[project]), &())
}

pub fn description(r: &impl Read, project: u64) -> Result<Option<Description>> {
    r.get(&key("project-desc", &[project]))
}

/// The stamp of the description's deletion while it is deleted.
pub fn description_gone(r: &impl Read, project: u64) -> Result<Option<u64>> {
    if description(r, project)?.is_some() {
        return Ok(None);
    }
    r.get(&key("project-desc-gone", &[project]))
}

/// The project's stamp: its description's last change (0 if never).
pub fn stamp(r: &impl Read, project: u64) -> Result<u64> {
    Ok(match description(r, project)? {
        Some(d) => d.stamp,
        None => description_gone(r, project)?.unwrap_or(0),
    })
}

/// A new stamp for a description change. Its event names no issue and is not fanned out
/// to notifications (no issue changed); it only keeps the stamp given out.
fn take_stamp(w: &mut Writer, project: u64, user: u64, what: &str) -> Result<(u64, i64)> {
    let stamp = w.next_stamp()?;
    let time = super::issues::now();
    w.put(
        key("event", &[stamp]),
        &IssueEvent {
            stamp,
            issue: 0,
            folder: 0,
            project,
            user,
            time,
            kind: EventKind::Edited { what: what.into() },
        },
    )?;
    Ok((stamp, time))
}

/// Adds, replaces (`None` when unchanged) the description.
pub fn set_description(
    w: &mut Writer,
    project: u64,
    text: String,
    format: u8,
    user: u64,
) -> Result<Option<u64>> {
    if let Some(d) = description(w, project)?
        && d.text == text
        && d.format == format
    {
        return Ok(None);
    }
    let (stamp, time) = take_stamp(w, project, user, "project description")?;
    w.put(
        key("project-desc", &[project]),
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

pub fn delete_description(w: &mut Writer, project: u64, user: u64) -> Result<u64> {
    let (stamp, _) = take_stamp(w, project, user, "project description deleted")?;
    w.remove(key("project-desc", &[project]));
    w.put(key("project-desc-gone", &[project]), &stamp)?;
    Ok(stamp)
}
