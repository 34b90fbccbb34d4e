//! HTTP sessions of the WebIssues transport: the `WebIssuesSID` cookie names one
//! [`Session`] that outlives the request, as a TCP connection does on the line protocol.
//!
//! A session exists only after a successful LOGIN (a new identifier each time, so a
//! planted cookie never becomes a logged-in one), ends on a failed LOGIN, on QUIT, after
//! `http_session_idle_secs` unused, or when the map is full and it is the least recently
//! used. Identifiers are 256 random bits; only their SHA-256 is kept, so the map holds
//! nothing a memory dump could replay.

use crate::app::App;
use crate::commands::Session;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The cookie's name, as 0.8 clients expect it.
pub const COOKIE: &str = "WebIssuesSID";

/// What one session holds between requests. Requests of one session run one at a time
/// (the lock is held for the command), as commands of a TCP connection do.
pub struct State {
    pub session: Session,
    /// The user's session generation when LOGIN bound this session (see [`generation`]).
    pub generation: u64,
    /// The store's users generation when [`generation`] was last compared.
    pub users_seen: u64,
}

struct Entry {
    state: Arc<tokio::sync::Mutex<State>>,
    last_used: Instant,
}

pub struct Sessions {
    map: Mutex<Map>,
    idle: Duration,
    max: usize,
}

struct Map {
    entries: HashMap<[u8; 32], Entry>,
    last_sweep: Instant,
}

/// The hook for per-user session generations: a value that changes when the user's
/// password changes, the account is disabled (access 0) or goes away, so every session
/// bound before ends for good (enabling the account again does not revive them). Today it
/// is a fingerprint of the stored password hash (a new password, even the same one, gets a
/// new salt), 0 for a disabled or missing account; a per-user counter in the store can
/// replace it here without touching the transport.
pub fn generation(app: &App, user: u64) -> u64 {
    let hash = app
        .store
        .read(|r| crate::store::users::get(r, user as i64))
        .ok()
        .flatten()
        .filter(|u| u.access != crate::store::users::ACCESS_NONE)
        .map(|u| u.password);
    match hash {
        Some(h) => {
            let d = ring::digest::digest(&ring::digest::SHA256, h.as_bytes());
            u64::from_le_bytes(d.as_ref()[..8].try_into().unwrap_or([0; 8])) | 1
        }
        None => 0,
    }
}

/// Whether the session still stands for its user; checked again only after some user
/// record changed (the store's users generation moved), so a request costs no lookup.
pub fn still_valid(app: &App, state: &mut State) -> bool {
    let Some(user) = state.session.user else {
        return true;
    };
    let users = app.store.generation(crate::store::Generation::Users);
    if users == state.users_seen {
        return true;
    }
    state.users_seen = users;
    generation(app, user) == state.generation
}

impl Sessions {
    pub fn new(idle_secs: u64, max: usize) -> Self {
        Sessions {
            map: Mutex::new(Map {
                entries: HashMap::new(),
                last_sweep: Instant::now(),
            }),
            idle: Duration::from_secs(idle_secs.max(1)),
            max: max.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Map> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The live session named by `sid`, marked used now; an expired one is removed.
    pub fn get(&self, sid: &str) -> Option<Arc<tokio::sync::Mutex<State>>> {
        let key = digest(sid);
        let mut map = self.lock();
        let now = Instant::now();
        let entry = map.entries.get_mut(&key)?;
        if now.duration_since(entry.last_used) >= self.idle {
            map.entries.remove(&key);
            return None;
        }
        entry.last_used = now;
        Some(entry.state.clone())
    }

    /// Ends the session named by `sid`, if any.
    pub fn remove(&self, sid: &str) {
        self.lock().entries.remove(&digest(sid));
    }

    /// Starts a session holding `state`; returns its new identifier for the cookie.
    pub fn insert(&self, state: State) -> String {
        let bytes: [u8; 32] = rand::random();
        let sid: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let mut map = self.lock();
        if map.entries.len() >= self.max || now.duration_since(map.last_sweep) >= self.idle / 4 {
            let idle = self.idle;
            map.entries
                .retain(|_, e| now.duration_since(e.last_used) < idle);
            map.last_sweep = now;
        }
        if map.entries.len() >= self.max {
            let oldest = map
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                tracing::warn!(
                    max = self.max,
                    "http sessions full: ended the least recently used"
                );
                map.entries.remove(&k);
            }
        }
        map.entries.insert(
            digest(&sid),
            Entry {
                state: Arc::new(tokio::sync::Mutex::new(state)),
                last_used: now,
            },
        );
        sid
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl State {
    pub fn new(peer: SocketAddr) -> Self {
        State {
            session: Session::new(peer),
            generation: 0,
            users_seen: 0,
        }
    }
}

fn digest(sid: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, sid.as_bytes());
    let mut out = [0; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The `WebIssuesSID` value in a `Cookie` header, in the plain form (`a=1; b=2`) or the
/// RFC 2109 form 0.8 clients send (`$Version=0; WebIssuesSID=…; $Path=/`); a quoted
/// value is unquoted. `$`-attributes are skipped; the first matching cookie wins.
pub fn sid_from_cookies<'a>(headers: impl Iterator<Item = &'a str>) -> Option<String> {
    for header in headers {
        for part in header.split([';', ',']) {
            let Some((name, value)) = part.split_once('=') else {
                continue;
            };
            if name.trim() != COOKIE {
                continue;
            }
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            if !value.is_empty() {
                return Some(value.to_string());
            }
        }
    }
    None
}

/// The `Set-Cookie` value starting a session.
pub fn set_cookie(sid: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={sid}; Path=/; HttpOnly; SameSite=Strict{secure}")
}

/// The `Set-Cookie` value telling the client to forget its session.
pub fn clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_forms() {
        let plain = ["a=1; WebIssuesSID=abc; b=2"];
        assert_eq!(sid_from_cookies(plain.into_iter()).as_deref(), Some("abc"));
        let rfc2109 = ["$Version=0; WebIssuesSID=\"abc\"; $Path=/"];
        assert_eq!(
            sid_from_cookies(rfc2109.into_iter()).as_deref(),
            Some("abc")
        );
        let rfc2109 = ["$Version=\"1\"; WebIssuesSID=abc; $Path=\"/\""];
        assert_eq!(
            sid_from_cookies(rfc2109.into_iter()).as_deref(),
            Some("abc")
        );
        assert_eq!(sid_from_cookies(["x=1", "$Path=/"].into_iter()), None);
        assert_eq!(
            sid_from_cookies(["x=1", "WebIssuesSID=d"].into_iter()).as_deref(),
            Some("d")
        );
    }

    #[test]
    fn sessions_expire_and_are_bounded() {
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let s = Sessions::new(3600, 2);
        let a = s.insert(State::new(peer));
        assert_eq!(a.len(), 64);
        let b = s.insert(State::new(peer));
        assert!(s.get(&a).is_some()); // a is now the most recently used
        let c = s.insert(State::new(peer));
        assert_eq!(s.len(), 2);
        assert!(s.get(&b).is_none(), "least recently used is ended");
        assert!(s.get(&a).is_some() && s.get(&c).is_some());
        s.remove(&a);
        assert!(s.get(&a).is_none());
        assert!(s.get("nonsense").is_none());
    }
}
