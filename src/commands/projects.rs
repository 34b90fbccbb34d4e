//! LIST PROJECTS, ADD/RENAME/DELETE PROJECT, ADD/RENAME/DELETE FOLDER, GRANT MEMBER.
//!
//! A project the caller may not see is "unknown" (303, or 304 for its folders); 301 is kept
//! for a project the caller sees but may not administer.

use super::Cx;
use crate::error::{Code, Error, Result};
use crate::protocol::{Line, LineOut, Reply};
use crate::store::users::{ACCESS_ADMIN, ACCESS_NONE};
use crate::store::{Read, projects, types, users};

/// The projects the caller may see (all of them for server administrators), then their
/// folders with the folder stamps.
///
/// Every client refresh starts with this command, so the lines are encoded once per change
/// of projects or folders ([`Catalogue`]) and each call only picks the caller's projects and
/// appends the folder stamps, which move with every issue change.
pub fn list_projects(cx: &mut Cx) -> Result<Reply> {
    let me = cx.user()?;
    let app = cx.shared;
    cx.read(|r| {
        let catalogue = app.catalogue.current(app.store.catalogue_generation(), r)?;
        let mine: Option<Vec<u64>> = (me.access != ACCESS_ADMIN)
            .then(|| users::projects_of(r, me.id))
            .transpose()?
            .map(|projects| {
                projects
                    .into_iter()
                    .filter(|&(_, a)| a > ACCESS_NONE)
                    .map(|(p, _)| p)
                    .collect()
            })
            // 1.1's public projects: every user sees them (projects::folder_access).
            .map(|mut mine: Vec<u64>| {
                for line in &catalogue.lines {
                    if line.folder.is_none()
                        && !mine.contains(&line.project)
                        && matches!(
                            crate::store::project_meta::public(r, line.project),
                            Ok(true)
                        )
                    {
                        mine.push(line.project);
                    }
                }
                mine
            });
        let mut out = Vec::with_capacity(catalogue.bytes.len() + 16 * catalogue.lines.len());
        for line in &catalogue.lines {
            if mine.as_ref().is_none_or(|m| m.contains(&line.project)) {
                out.extend_from_slice(&catalogue.bytes[line.bytes.clone()]);
                if let Some(folder) = line.folder {
                    LineOut::new(&mut out, "")
                        .int(r.folder_stamp(folder) as i64)
                        .end();
                }
            }
        }
        Ok(Reply::Encoded(out))
    })
}

/// LIST PROJECTS' lines for everybody: `P` lines, then `F` lines without their stamps, each
/// with its project.
pub struct Catalogue {
    generation: u64,
    bytes: Vec<u8>,
    lines: Vec<CatalogueLine>,
}

struct CatalogueLine {
    project: u64,
    bytes: std::ops::Range<usize>,
    /// For an `F` line, whose bytes end before the stamp: the folder.
    folder: Option<u64>,
}

impl Catalogue {
    fn build(generation: u64, r: &impl crate::store::Read) -> Result<Catalogue> {
        let mut c = Catalogue {
            generation,
            bytes: Vec::new(),
            lines: Vec::new(),
        };
        let mut push = |project: u64, folder: Option<u64>, line: Line| {
            let start = c.bytes.len();
            line.encode(&mut c.bytes);
            if folder.is_some() {
                // Without the line end: the stamp and the line end follow.
                c.bytes.truncate(c.bytes.len() - 2);
            }
            c.lines.push(CatalogueLine {
                project,
                bytes: start..c.bytes.len(),
                folder,
            });
        };
        for p in projects::all(r)? {
            push(p.id, None, Line::new("P").int(p.id as i64).str(p.name));
        }
        for f in projects::all_folders(r)? {
            push(
                f.project,
                Some(f.id),
                Line::new("F")
                    .int(f.id as i64)
                    .int(f.project as i64)
                    .str(f.name)
                    .int(f.type_id as i64),
            );
        }
        Ok(c)
    }
}

/// The newest [`Catalogue`], rebuilt when the store's catalogue generation moved on.
#[derive(Default)]
pub struct CatalogueCache(std::sync::Mutex<Option<std::sync::Arc<Catalogue>>>);

impl CatalogueCache {
    /// The catalogue of `generation`, read through `r` (a read of that generation).
    pub fn current(
        &self,
        generation: u64,
        r: &impl crate::store::Read,
    ) -> Result<std::sync::Arc<Catalogue>> {
        if let Some(c) = self.0.lock().map_err(Error::internal)?.as_ref()
            && c.generation == generation
        {
            return Ok(c.clone());
        }
        let built = std::sync::Arc::new(Catalogue::build(generation, r)?);
        let mut slot = self.0.lock().map_err(Error::internal)?;
        // Readers of an older generation may finish later; keep the newest.
        if slot.as_ref().is_none_or(|c| c.generation < generation) {
            *slot = Some(built.clone());
        }
        Ok(built)
    }
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
