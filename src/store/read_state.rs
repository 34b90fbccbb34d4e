//! Read state per user and issue (1.1's `LIST STATES`, `SET ISSUE READ`, `SET FOLDER
//! READ`, `GET DETAILS … 1`): the stamp the user has read the issue up to.
//!
//! Every change takes the next value of one state sequence, so a client asks only for
//! states newer than the highest it holds; `read-seq/<user>/<state>` indexes a user's
//! states by that value.

use super::{Read, Writer, key, keys};
use crate::error::Result;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub state: u64,
    /// The stamp read up to; 0 = unread.
    pub read: u64,
}

pub fn get(r: &impl Read, user: u64, issue: u64) -> Result<Option<State>> {
    r.get(&key("read", &[user, issue]))
}

/// Sets the read stamp under a new state id, which it returns.
pub fn set(w: &mut Writer, user: u64, issue: u64, read: u64) -> Result<u64> {
    if let Some(old) = get(w, user, issue)? {
        w.remove(key("read-seq", &[user, old.state]));
    }
    let state = w.next_id("read-state")?;
    w.put(key("read", &[user, issue]), &State { state, read })?;
    w.put(key("read-seq", &[user, state]), &issue)?;
    Ok(state)
}

/// The user's states newer than `since`, as (state, issue, read), oldest first.
pub fn since(r: &impl Read, user: u64, since: i64) -> Result<Vec<(u64, u64, u64)>> {
    let from = key("read-seq", &[user, since.max(0) as u64 + 1]);
    let to = key("read-seq", &[user + 1]);
    let mut out = Vec::new();
    for (k, v) in r.range_raw(&from, &to, usize::MAX)? {
        let issue: u64 = postcard::from_bytes(&v)?;
        if let Some(s) = get(r, user, issue)? {
            out.push((keys::id_at("read-seq", &k, 1), issue, s.read));
        }
    }
    Ok(out)
}
