//! When sessions end on the server's side. Each user has a session epoch in the store,
//! raised when their password changes or their account is disabled. A session keeps the
//! epoch it logged in under and ends (`300 Login Required`, logged out) at its next
//! command once the stored epoch differs; re-enabling the account does not bring it back.
//! Any kind of session (a TCP connection, an HTTP session) checks it the same way, with
//! [`still_valid`].

use crate::error::Result;
use crate::store::{Read, Writer, key};

fn epoch_key(user: u64) -> Vec<u8> {
    key("user-epoch", &[user])
}

/// The user's current session epoch (0 until first raised).
pub fn epoch(r: &impl Read, user: u64) -> Result<u64> {
    Ok(r.get::<u64>(&epoch_key(user))?.unwrap_or(0))
}

/// Ends every session of `user` logged in so far; returns the new epoch, which the
/// session making the change adopts when it is to keep working.
pub fn end_all(w: &mut Writer, user: u64) -> Result<u64> {
    let next = epoch(w, user)? + 1;
    w.put(epoch_key(user), &next)?;
    Ok(next)
}

/// Whether a session of `user` that logged in under `epoch` may still run commands.
pub fn still_valid(r: &impl Read, user: u64, epoch: u64) -> Result<bool> {
    Ok(self::epoch(r, user)? == epoch)
}
