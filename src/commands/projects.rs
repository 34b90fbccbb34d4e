//! LIST PROJECTS, ADD/RENAME/DELETE PROJECT, ADD/RENAME/DELETE FOLDER, GRANT MEMBER.
//!
//! A project the caller may not see is "unknown" (303, or 304 for its folders); 301 is kept
//! for a project the caller sees but may not administer.

use super::Cx;
use crate::error::{Code, Error, Result};
use crate::protocol::{Line, Reply};
use crate::store::users::{ACCESS_ADMIN, ACCESS_NONE};
use crate::store::{projects, types, users};

/// The projects the caller may see (all of them for server administrators), then their
/// folders with the folder stamps.
pub fn list_projects(cx: &mut Cx) -> Result<Reply> {
    let me = cx.user()?;
    cx.read(|r| {
        // Two scans (projects, folders) and the caller's memberships: this runs on every
        // client refresh, so it avoids a lookup per project and per folder.
        let mine: std::collections::HashSet<u64> = if me.access == ACCESS_ADMIN {
            Default::default()
        } else {
            users::projects_of(r, me.id)?
                .into_iter()
                .filter(|&(_, a)| a > ACCESS_NONE)
                .map(|(p, _)| p)
                .collect()
        };
        let sees = |p: u64| me.access == ACCESS_ADMIN || mine.contains(&p);
        let mut lines: Vec<Line> = projects::all(r)?
            .into_iter()
            .filter(|p| sees(p.id))
            .map(|p| Line::new("P").int(p.id as i64).str(p.name))
            .collect();
        lines.extend(
            projects::all_folders(r)?
                .into_iter()
                .filter(|f| sees(f.project))
                .map(|f| {
                    Line::new("F")
                        .int(f.id as i64)
                        .int(f.project as i64)
                        .str(f.name)
                        .int(f.type_id as i64)
                        .int(f.stamp as i64)
                }),
        );
        Ok(Reply::Lines(lines))
    })
}

pub fn add_project(cx: &mut Cx, name: String) -> Result<Reply> {
    cx.admin()?;
    let id = cx.write(|w| projects::insert(w, &name))?;
    Ok(Reply::Id(id as i64))
}

pub fn rename_project(cx: &mut Cx, project: i64, name: String) -> Result<Reply> {
    let me = cx.admin()?;
    cx.write(|w| {
        let (p, _) = projects::visible(w, &me, project)?;
        Ok(if projects::rename(w, p, &name)? {
            Reply::Ok
        } else {
            Reply::Null
        })
    })
}

pub fn delete_project(cx: &mut Cx, project: i64) -> Result<Reply> {
    let me = cx.admin()?;
    cx.write(|w| {
        let (p, _) = projects::visible(w, &me, project)?;
        projects::delete(w, &p)
    })?;
    Ok(Reply::Ok)
}

fn require_padmin(access: u8) -> Result<()> {
    if access == ACCESS_ADMIN {
        Ok(())
    } else {
        Err(Error::with(
            Code::AccessDenied,
            "project administrator access required",
        ))
    }
}

pub fn add_folder(cx: &mut Cx, project: i64, type_id: i64, name: String) -> Result<Reply> {
    let me = cx.user()?;
    let id = cx.write(|w| {
        let (p, access) = projects::visible(w, &me, project)?;
        require_padmin(access)?;
        let t = types::require(w, type_id)?;
        projects::insert_folder(w, p.id, t.id, &name)
    })?;
    Ok(Reply::Id(id as i64))
}

pub fn rename_folder(cx: &mut Cx, folder: i64, name: String) -> Result<Reply> {
    let me = cx.user()?;
    cx.write(|w| {
        let (f, access) = projects::visible_folder(w, &me, folder)?;
        require_padmin(access)?;
        Ok(if projects::rename_folder(w, f, &name)? {
            Reply::Ok
        } else {
            Reply::Null
        })
    })
}

pub fn delete_folder(cx: &mut Cx, folder: i64) -> Result<Reply> {
    let me = cx.user()?;
    cx.write(|w| {
        let (f, access) = projects::visible_folder(w, &me, folder)?;
        require_padmin(access)?;
        projects::delete_folder(w, &f)
    })?;
    Ok(Reply::Ok)
}

/// Checks in this order: project visible (303), caller project admin (301), user known
/// (307), access level valid (341). Granting the level a user already has answers `NULL`.
pub fn grant_member(cx: &mut Cx, user: i64, project: i64, access: i64) -> Result<Reply> {
    let me = cx.user()?;
    cx.write(|w| {
        let (p, mine) = projects::visible(w, &me, project)?;
        require_padmin(mine)?;
        let target = users::require(w, user)?;
        let access = u8::try_from(access)
            .ok()
            .filter(|a| *a <= ACCESS_ADMIN)
            .ok_or(Code::InvalidAccess)?;
        Ok(if projects::set_member(w, p.id, target.id, access)? {
            Reply::Ok
        } else {
            Reply::Null
        })
    })
}
