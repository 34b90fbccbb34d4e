//! Projects, folders and memberships, and the one rule of visibility: what a user may see of
//! a project is decided by [`access`] alone.

use super::types::prefix;
use super::users::{ACCESS_ADMIN, ACCESS_NONE, User};
use super::{Read, Writer, key, key_str, keys};
use crate::error::{Code, Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub id: u64,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Folder {
    pub id: u64,
    pub project: u64,
    pub type_id: u64,
    pub name: String,
    /// The latest stamp of any issue in the folder; 0 while it has none. Filled in from
    /// [`super::stamps`] when the folder is read: the stored value is not kept up to date.
    pub stamp: u64,
}

/// The effective access of `user` to `project`: 2 for server administrators, else the member
/// access; `None` when the user may not see the project at all (or it does not exist).
pub fn access(r: &impl Read, user: &User, project: u64) -> Result<Option<u8>> {
    if !r.exists(&key("project", &[project]))? {
        return Ok(None);
    }
    folder_access(r, user, project)
}

/// [`access`] to the project of an existing folder, which exists too ([`delete`] refuses a
/// project that has folders): one lookup fewer for every command on a folder or an issue.
/// An archived project (1.1) is seen by nobody; a public one (1.1) by every user, as a
/// member at least (super::project_meta).
pub fn folder_access(r: &impl Read, user: &User, project: u64) -> Result<Option<u8>> {
    if super::project_meta::archived(r, project)? {
        return Ok(None);
    }
    if user.access == ACCESS_ADMIN {
        return Ok(Some(ACCESS_ADMIN));
    }
    match super::users::member_access(r, project, user.id)?.filter(|a| *a > ACCESS_NONE) {
        Some(a) => Ok(Some(a)),
        None if super::project_meta::public(r, project)? => Ok(Some(super::users::ACCESS_NORMAL)),
        None => Ok(None),
    }
}

pub fn get(r: &impl Read, id: i64) -> Result<Option<Project>> {
    if id <= 0 {
        return Ok(None);
    }
    r.get(&key("project", &[id as u64]))
}

/// The project if `user` may see it, else `Unknown Project`; with its access level.
pub fn visible(r: &impl Read, user: &User, id: i64) -> Result<(Project, u8)> {
    if let Some(p) = get(r, id)?
        && let Some(a) = access(r, user, p.id)?
    {
        return Ok((p, a));
    }
    Err(Error::new(Code::UnknownProject))
}

/// Every project but the archived ones.
pub fn all(r: &impl Read) -> Result<Vec<Project>> {
    let mut out = Vec::new();
    for (_, p) in r.scan::<Project>(b"project/")? {
        if !super::project_meta::archived(r, p.id)? {
            out.push(p);
        }
    }
    Ok(out)
}

pub fn insert(w: &mut Writer, name: &str) -> Result<u64> {
    if w.exists(&key_str("project-name", name))? {
        return Err(Error::new(Code::ProjectExists));
    }
    let id = w.next_id("project")?;
    w.put(key_str("project-name", name), &id)?;
    w.put(
        key("project", &[id]),
        &Project {
            id,
            name: name.into(),
        },
    )?;
    Ok(id)
}

/// Renames a project; `false` when the name is unchanged.
pub fn rename(w: &mut Writer, mut p: Project, name: &str) -> Result<bool> {
    if p.name == name {
        return Ok(false);
    }
    if w.exists(&key_str("project-name", name))? {
        return Err(Error::new(Code::ProjectExists));
    }
    w.remove(key_str("project-name", &p.name));
    w.put(key_str("project-name", name), &p.id)?;
    p.name = name.into();
    w.put(key("project", &[p.id]), &p)?;
    Ok(true)
}

/// Deletes an empty project and its memberships.
pub fn delete(w: &mut Writer, p: &Project) -> Result<()> {
    if w.any(&prefix("project-folder", p.id))? {
        return Err(Error::with(
            Code::CannotDeleteProject,
            "the project still has folders",
        ));
    }
    for (k, _) in w.scan_raw(&prefix("member", p.id))? {
        let user = keys::id_at("member", &k, 1);
        w.remove(key("user-member", &[user, p.id]));
        w.remove(k);
    }
    w.remove(key_str("project-name", &p.name));
    w.remove(key("project", &[p.id]));
    Ok(())
}

/// Sets a membership (access 0 removes it); `false` when nothing changed.
pub fn set_member(w: &mut Writer, project: u64, user: u64, access: u8) -> Result<bool> {
    let old = super::users::member_access(w, project, user)?.unwrap_or(ACCESS_NONE);
    if old == access {
        return Ok(false);
    }
    if access == ACCESS_NONE {
        w.remove(key("member", &[project, user]));
        w.remove(key("user-member", &[user, project]));
    } else {
        w.put(key("member", &[project, user]), &access)?;
        w.put(key("user-member", &[user, project]), &access)?;
    }
    Ok(true)
}

pub fn folder(r: &impl Read, id: i64) -> Result<Option<Folder>> {
    if id <= 0 {
        return Ok(None);
    }
    Ok(r.get(&key("folder", &[id as u64]))?
        .map(|f| with_stamp(r, f)))
}

/// `f` with its current stamp.
fn with_stamp(r: &impl Read, f: Folder) -> Folder {
    Folder {
        stamp: r.folder_stamp(f.id),
        ..f
    }
}

/// The folder if `user` may see its project, else `Unknown Folder`; with the access level.
pub fn visible_folder(r: &impl Read, user: &User, id: i64) -> Result<(Folder, u8)> {
    if let Some(f) = folder(r, id)?
        && let Some(a) = folder_access(r, user, f.project)?
    {
        return Ok((f, a));
    }
    Err(Error::new(Code::UnknownFolder))
}

/// Every folder, in id order.
pub fn all_folders(r: &impl Read) -> Result<Vec<Folder>> {
    Ok(r.scan::<Folder>(b"folder/")?
        .into_iter()
        .map(|(_, f)| with_stamp(r, f))
        .collect())
}

/// The folders of one project, in id order.
pub fn folders_of(r: &impl Read, project: u64) -> Result<Vec<Folder>> {
    let mut out = Vec::new();
    for (k, _) in r.scan_raw(&prefix("project-folder", project))? {
        if let Some(f) = folder(r, keys::id_at("project-folder", &k, 1) as i64)? {
            out.push(f);
        }
    }
    Ok(out)
}

fn folder_name_taken(r: &impl Read, project: u64, name: &str) -> Result<bool> {
    Ok(folders_of(r, project)?.iter().any(|f| f.name == name))
}

pub fn insert_folder(w: &mut Writer, project: u64, type_id: u64, name: &str) -> Result<u64> {
    if folder_name_taken(w, project, name)? {
        return Err(Error::new(Code::FolderExists));
    }
    let id = w.next_id("folder")?;
    let f = Folder {
        id,
        project,
        type_id,
        name: name.into(),
        stamp: 0,
    };
    w.put(key("project-folder", &[project, id]), &())?;
    w.put(key("type-folder", &[type_id, id]), &())?;
    w.put(key("folder", &[id]), &f)?;
    Ok(id)
}

/// Renames a folder (its stamp stays); `false` when the name is unchanged.
pub fn rename_folder(w: &mut Writer, mut f: Folder, name: &str) -> Result<bool> {
    if f.name == name {
        return Ok(false);
    }
    if folder_name_taken(w, f.project, name)? {
        return Err(Error::new(Code::FolderExists));
    }
    f.name = name.into();
    w.put(key("folder", &[f.id]), &f)?;
    Ok(true)
}

/// Deletes a folder without issues.
pub fn delete_folder(w: &mut Writer, f: &Folder) -> Result<()> {
    if w.any(&prefix("folder-stamp", f.id))? {
        return Err(Error::with(
            Code::CannotDeleteFolder,
            "the folder still has issues",
        ));
    }
    w.remove(key("project-folder", &[f.project, f.id]));
    w.remove(key("type-folder", &[f.type_id, f.id]));
    super::alerts::delete_where(w, |a| a.folder == f.id)?;
    w.remove(key("folder", &[f.id]));
    Ok(())
}

/// Moves a folder into another project (1.1's MOVE FOLDER); its name must be free there.
pub fn move_folder(w: &mut Writer, mut f: Folder, project: u64) -> Result<()> {
    if folder_name_taken(w, project, &f.name)? {
        return Err(Error::new(Code::FolderExists));
    }
    w.remove(key("project-folder", &[f.project, f.id]));
    w.put(key("project-folder", &[project, f.id]), &())?;
    f.project = project;
    w.put(key("folder", &[f.id]), &f)?;
    Ok(())
}
