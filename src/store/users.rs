//! User records and their unique indexes (login, display name).

use super::{Read, Writer, key, key_str, keys};
use crate::error::{Code, Error, Result};
use serde::{Deserialize, Serialize};

/// Access levels of users (and of project members).
pub const ACCESS_NONE: u8 = 0;
pub const ACCESS_NORMAL: u8 = 1;
pub const ACCESS_ADMIN: u8 = 2;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: u64,
    pub login: String,
    pub name: String,
    pub access: u8,
    /// argon2id PHC string.
    pub password: String,
}

pub fn get(r: &impl Read, id: i64) -> Result<Option<User>> {
    if id <= 0 {
        return Ok(None);
    }
    r.get(&key("user", &[id as u64]))
}

/// The user or `Unknown User`.
pub fn require(r: &impl Read, id: i64) -> Result<User> {
    get(r, id)?.ok_or_else(|| Error::new(Code::UnknownUser))
}

pub fn by_login(r: &impl Read, login: &str) -> Result<Option<User>> {
    match r.get::<u64>(&key_str("user-login", login))? {
        Some(id) => r.get(&key("user", &[id])),
        None => Ok(None),
    }
}

/// The id of the user with this display name (USER attributes refer to display names).
pub fn id_by_name(r: &impl Read, name: &str) -> Result<Option<u64>> {
    r.get(&key_str("user-name", name))
}

pub fn all(r: &impl Read) -> Result<Vec<User>> {
    Ok(r.scan::<User>(b"user/")?
        .into_iter()
        .map(|(_, u)| u)
        .collect())
}

/// Number of enabled server administrators.
pub fn admin_count(r: &impl Read) -> Result<usize> {
    Ok(all(r)?.iter().filter(|u| u.access == ACCESS_ADMIN).count())
}

/// Creates a user; login and display name must both be unique.
pub fn insert(w: &mut Writer, login: &str, name: &str, access: u8, hash: String) -> Result<u64> {
    if w.exists(&key_str("user-login", login))? || w.exists(&key_str("user-name", name))? {
        return Err(Error::new(Code::UserExists));
    }
    let id = w.next_id("user")?;
    let user = User {
        id,
        login: login.into(),
        name: name.into(),
        access,
        password: hash,
    };
    w.put(key_str("user-login", login), &id)?;
    w.put(key_str("user-name", name), &id)?;
    w.put(key("user", &[id]), &user)?;
    Ok(id)
}

/// Stores a changed user, keeping the name index in step.
pub fn update(w: &mut Writer, old: &User, new: &User) -> Result<()> {
    if old.name != new.name {
        if w.exists(&key_str("user-name", &new.name))? {
            return Err(Error::new(Code::UserExists));
        }
        w.remove(key_str("user-name", &old.name));
        w.put(key_str("user-name", &new.name), &new.id)?;
    }
    w.put(key("user", &[new.id]), new)
}

/// Memberships as (project, user, access), all of them, in project order.
pub fn memberships(r: &impl Read) -> Result<Vec<(u64, u64, u8)>> {
    Ok(r.scan::<u8>(b"member/")?
        .into_iter()
        .map(|(k, a)| {
            (
                keys::id_at("member", &k, 0),
                keys::id_at("member", &k, 1),
                a,
            )
        })
        .collect())
}

/// The projects a user belongs to, with the member access level.
pub fn projects_of(r: &impl Read, user: u64) -> Result<Vec<(u64, u8)>> {
    let prefix = key("user-member", &[user]);
    Ok(r.scan::<u8>(&[&prefix[..], b"/"].concat())?
        .into_iter()
        .map(|(k, a)| (keys::id_at("user-member", &k, 1), a))
        .collect())
}

/// The member access of `user` in `project` (None when not a member).
pub fn member_access(r: &impl Read, project: u64, user: u64) -> Result<Option<u8>> {
    r.get(&key("member", &[project, user]))
}
