//! LIST PROJECTS, ADD/RENAME/DELETE PROJECT, ADD/RENAME/DELETE FOLDER, GRANT MEMBER.
//!
//! A project the caller may not see is "unknown" (303, or 304 for its folders); 301 is kept
//! for a project the caller sees but may not administer.

use super::Cx;
use crate::error::{Code, Error, Result};
use crate::protocol::{Line, Reply};
use crate::store::users::ACCESS_ADMIN;
use crate::store::{projects, types, users};

/// The projects the caller may see (all of them for server administrators), then their
/// folders with the folder stamps.
pub fn list_projects(cx: &mut Cx) -> Result<Reply> {
    let me = cx.user()?;
    cx.read(|r| {
        let mut visible = Vec::new();
        for p in projects::all(r)? {
            if projects::access(r, &me, p.id)?.is_some() {
                visible.push(p);
            }
        }
        let mut lines: Vec<Line> = visible
            .iter()
            .map(|p| Line::new("P").int(p.id as i64).str(p.name.clone()))
            .collect();
        let mut folders = Vec::new();
        for p in &visible {
            folders.extend(projects::folders_of(r, p.id)?);
        }
        folders.sort_by_key(|f| f.id);
        lines.extend(folders.into_iter().map(|f| {
            Line::new("F")
                .int(f.id as i64)
                .int(f.project as i64)
                .str(f.name)
                .int(f.type_id as i64)
                .int(f.stamp as i64)
        }));
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
