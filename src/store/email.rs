//! The records of the `email` preference's opt-in: the confirmed address and the address
//! waiting for its confirmation (the mails and rules are `subscribe::email`).

use super::notify::{self as n, PREF_EMAIL};
use super::token::{self, TokenHash};
use super::{Read, Writer, key};
use crate::error::Result;
use serde::{Deserialize, Serialize};

/// An address waiting for its confirmation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub address: String,
    pub hash: TokenHash,
    pub expires: i64,
}

pub fn confirmed_key(user: u64) -> Vec<u8> {
    key("email-ok", &[user])
}

pub fn pending_key(user: u64) -> Vec<u8> {
    key("email-pending", &[user])
}

/// The address digests may go to: the `email` preference, once it has been confirmed.
pub fn confirmed_email(r: &impl Read, user: u64) -> Result<Option<String>> {
    let Some(email) = n::pref(r, user, PREF_EMAIL)? else {
        return Ok(None);
    };
    let ok: Option<String> = r.get(&confirmed_key(user))?;
    Ok((ok.as_deref() == Some(email.as_str())).then_some(email))
}

/// `confirmed` or `unconfirmed` when the user has an `email` preference.
pub fn status(r: &impl Read, user: u64) -> Result<Option<&'static str>> {
    if n::pref(r, user, PREF_EMAIL)?.is_none() {
        return Ok(None);
    }
    Ok(Some(if confirmed_email(r, user)?.is_some() {
        "confirmed"
    } else {
        "unconfirmed"
    }))
}

/// Records `address` as confirmed for `user` (by its token, or set by an administrator).
pub fn mark_confirmed(w: &mut Writer, user: u64, address: &str) -> Result<()> {
    w.remove(pending_key(user));
    w.put(confirmed_key(user), address)
}

/// The `email` preference of `user` was cleared.
pub fn clear(w: &mut Writer, user: u64) {
    w.remove(pending_key(user));
    w.remove(confirmed_key(user));
}

/// The address waiting for confirmation by `token`, if the token is live and the preference
/// still names that address.
pub fn pending_target(
    r: &impl Read,
    user: u64,
    token_text: &str,
    now: i64,
) -> Result<Option<String>> {
    let Some(p) = r.get::<Pending>(&pending_key(user))? else {
        return Ok(None);
    };
    let current = n::pref(r, user, PREF_EMAIL)?;
    let live = now < p.expires && current.as_deref() == Some(p.address.as_str());
    Ok((token::matches(token_text, &p.hash) && live).then_some(p.address))
}
