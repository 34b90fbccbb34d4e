//! LIST USERS, ADD USER, SET PASSWORD, RENAME USER, GRANT USER.

use super::Cx;
use crate::error::{Code, Error, Result};
use crate::protocol::{Line, Reply};
use crate::store::users::{self, ACCESS_ADMIN};

/// All users; memberships (`M`) of every project for server admins, otherwise only of the
/// projects the caller belongs to.
pub fn list_users(cx: &mut Cx) -> Result<Reply> {
    let me = cx.user()?;
    cx.read(|r| {
        let mut lines: Vec<Line> = users::all(r)?
            .into_iter()
            .map(|u| {
                Line::new("U")
                    .int(u.id as i64)
                    .str(u.login)
                    .str(u.name)
                    .int(u.access)
            })
            .collect();
        let mine: Vec<u64> = users::projects_of(r, me.id)?
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        let mut members = users::memberships(r)?;
        members.sort_by_key(|&(p, u, _)| (u, p));
        for (project, user, access) in members {
            if me.access == ACCESS_ADMIN || mine.contains(&project) {
                lines.push(
                    Line::new("M")
                        .int(user as i64)
                        .int(project as i64)
                        .int(access),
                );
            }
        }
        Ok(Reply::Lines(lines))
    })
}

pub async fn add_user(
    cx: &mut Cx<'_>,
    login: String,
    name: String,
    password: String,
) -> Result<Reply> {
    cx.admin()?;
    let hash = crate::password::hash_async(password).await;
    let id = cx.write(|w| users::insert(w, &login, &name, users::ACCESS_NORMAL, hash))?;
    Ok(Reply::Id(id as i64))
}

/// Server admins set anyone's password; other users only their own.
pub async fn set_password(cx: &mut Cx<'_>, user: i64, password: String) -> Result<Reply> {
    let me = cx.user()?;
    if me.access != ACCESS_ADMIN && me.id as i64 != user {
        // Whether the user exists is no secret (LIST USERS shows everyone).
        cx.read(|r| users::require(r, user))?;
        return Err(Error::new(Code::AccessDenied));
    }
    cx.read(|r| users::require(r, user))?;
    let hash = crate::password::hash_async(password).await;
    let epoch = cx.write(|w| {
        let old = users::require(w, user)?;
        let new = users::User {
            password: hash,
            ..old.clone()
        };
        users::update(w, &old, &new)?;
        crate::sessions::end_all(w, old.id)
    })?;
    // The user's other sessions end; the one that changed the password goes on.
    if me.id as i64 == user {
        cx.session.adopt_epoch(epoch);
    }
    Ok(Reply::Ok)
}

pub fn rename_user(cx: &mut Cx, user: i64, name: String) -> Result<Reply> {
    cx.admin()?;
    cx.write(|w| {
        let old = users::require(w, user)?;
        if old.name == name {
            return Ok(Reply::Null);
        }
        let new = users::User {
            name,
            ..old.clone()
        };
        users::update(w, &old, &new)?;
        Ok(Reply::Ok)
    })
}

/// The last enabled server administrator cannot be demoted or disabled.
pub fn grant_user(cx: &mut Cx, user: i64, access: i64) -> Result<Reply> {
    cx.admin()?;
    let access = u8::try_from(access)
        .ok()
        .filter(|a| *a <= ACCESS_ADMIN)
        .ok_or(Code::InvalidAccess)?;
    cx.write(|w| {
        let old = users::require(w, user)?;
        if old.access == access {
            return Ok(Reply::Null);
        }
        if old.access == ACCESS_ADMIN && users::admin_count(w)? <= 1 {
            return Err(Error::with(
                Code::AccessDenied,
                "the last server administrator cannot be demoted or disabled",
            ));
        }
        let new = users::User {
            access,
            ..old.clone()
        };
        users::update(w, &old, &new)?;
        if access == users::ACCESS_NONE {
            crate::sessions::end_all(w, old.id)?;
        }
        Ok(Reply::Ok)
    })
}
