//! Command handlers, one module per family. Each takes the command context and typed
//! arguments and returns a reply or a protocol error.

pub mod backup;
pub mod email_pref;
pub mod help;
pub mod issue_lines;
pub mod issues;
pub mod notifications;
pub mod projects;
pub mod quota;
pub mod shared;
pub mod subscriptions;
pub mod system;
pub mod throttle;
pub mod type_defaults;
pub mod types;
pub mod users;

use crate::error::{Code, Error, Result};
use crate::protocol::{Command, Reply};
use crate::store::{Generation, Reader, Writer, users::User};
use std::net::SocketAddr;
use std::sync::Arc;

pub use shared::Shared;

/// What a connection knows about its client. A TCP connection is one session.
pub struct Session {
    pub user: Option<u64>,
    pub peer: SocketAddr,
    /// Set by QUIT: the connection closes after the reply.
    pub quit: bool,
    /// The user's session epoch at login ([`crate::sessions`]).
    epoch: u64,
    /// The logged-in user's record as last read, with the store's [`Generation::Users`]
    /// at that read: while no user record changes, commands use it without a lookup.
    known: Option<(u64, Arc<User>)>,
}

impl Session {
    pub fn new(peer: SocketAddr) -> Self {
        Session {
            user: None,
            peer,
            quit: false,
            epoch: 0,
            known: None,
        }
    }

    pub fn log_in(&mut self, user: u64, epoch: u64) {
        self.user = Some(user);
        self.epoch = epoch;
        self.known = None;
    }

    /// The session made a change that ended the user's sessions, and keeps working.
    pub fn adopt_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
    }

    fn log_out(&mut self) {
        self.user = None;
        self.known = None;
    }
}

/// The context of one command: what connections share, the session, and the write it made.
pub struct Cx<'a> {
    pub shared: &'a Shared,
    pub session: &'a mut Session,
    /// Sequence of this command's write batch (0: nothing written); the reply waits for it.
    pub wrote: u64,
    /// The logged-in user as [`execute`] read it for this command, so the handler does
    /// not look the record up a second time.
    pub me: Option<Arc<User>>,
}

impl Cx<'_> {
    pub fn read<T>(&self, f: impl FnOnce(&Reader) -> Result<T>) -> Result<T> {
        self.shared.store.read(f)
    }

    /// Runs a write; its reply is held back until the write is durable.
    pub fn write<T>(&mut self, f: impl FnOnce(&mut Writer) -> Result<T>) -> Result<T> {
        let (value, seq) = self.shared.store.write(f)?;
        if seq != 0 {
            self.wrote = seq;
        }
        Ok(value)
    }

    /// The logged-in user as the store holds it now, so that a disabled account loses
    /// access at once. The record is read again only after some user record changed.
    pub fn user(&mut self) -> Result<Arc<User>> {
        if let Some(u) = &self.me {
            return Ok(u.clone());
        }
        let id = self.session.user.ok_or(Code::LoginRequired)?;
        let store = &self.shared.store;
        let known = match &self.session.known {
            Some((generation, u))
                if u.id == id && *generation == store.generation(Generation::Users) =>
            {
                u.clone()
            }
            _ => {
                let (generation, user, valid) = self.read(|r| {
                    Ok((
                        store.generation(Generation::Users),
                        crate::store::users::get(r, id as i64)?,
                        crate::sessions::still_valid(r, id, self.session.epoch)?,
                    ))
                })?;
                // A password change or a disabling ended this session: it stays logged out
                // even if the account is enabled again.
                let user = user.filter(|u| valid && u.access != crate::store::users::ACCESS_NONE);
                let Some(user) = user else {
                    self.session.log_out();
                    return Err(Error::new(Code::LoginRequired));
                };
                let u = Arc::new(user);
                self.session.known = Some((generation, u.clone()));
                u
            }
        };
        if known.access == crate::store::users::ACCESS_NONE {
            return Err(Error::new(Code::LoginRequired));
        }
        self.me = Some(known.clone());
        Ok(known)
    }

    /// The logged-in user, who must be a server administrator.
    pub fn admin(&mut self) -> Result<Arc<User>> {
        let u = self.user()?;
        if u.access == crate::store::users::ACCESS_ADMIN {
            Ok(u)
        } else {
            Err(Error::new(Code::AccessDenied))
        }
    }
}

/// Runs one command. Errors become `ERROR` replies; nothing here panics on bad input.
pub async fn execute(cx: &mut Cx<'_>, cmd: Command) -> Reply {
    if !cmd.is_anonymous()
        && let Err(e) = cx.user()
    {
        return Reply::Error(e);
    }
    dispatch(cx, cmd).await.unwrap_or_else(Reply::Error)
}

/// Calls a row's handler with the context and the row's fields.
macro_rules! call {
    (sync $handler:path, $cx:ident $(, $arg:ident)*) => { $handler($cx $(, $arg)*) };
    (async $handler:path, $cx:ident $(, $arg:ident)*) => { $handler($cx $(, $arg)*).await };
}

/// `dispatch`, one arm per row of the command table (`protocol/table.rs`).
macro_rules! dispatch_items {
    ($(
        $variant:ident [$($kw:literal)+] ($($field:ident : $kind:ident),*) $mode:ident $handler:path;
        $who:ident $feature:ident $sig:literal $sentence:literal;
    )*) => {
        async fn dispatch(cx: &mut Cx<'_>, cmd: Command) -> Result<Reply> {
            match cmd {
                $(Command::$variant { $($field),* } => call!($mode $handler, cx $(, $field)*),)*
            }
        }
    };
}

crate::command_table!(dispatch_items);
