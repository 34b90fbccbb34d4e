//! The WebIssues 1.1 dialect (protocol-spec/webissues-1.1.md), spoken by the desktop
//! client 1.1.5 over HTTP at `/server/webissues/handler.php`.
//!
//! A dialect is a parser, an encoder and a map of errors over the one store: [`token`]
//! and [`command`] turn the form into a [`Cmd11`], [`handlers`] answer it through the
//! shared domain (the 0.8 handlers where the meaning is the same), [`reply`] encodes.
//! The HTTP transport owns sessions and cookies; it calls [`handle`] per request and acts
//! on [`Outcome::session`].

pub mod admin;
pub mod alerts;
pub mod command;
pub mod edit;
pub mod handlers;
pub mod preferences;
pub mod reply;
pub mod settings;
pub mod token;
pub mod transcript;
pub mod views;

pub use command::Cmd11;
pub use reply::{Code11, Reply11};

use crate::commands::Shared;
use crate::commands::{Cx, Session};
use bytes::Bytes;

/// The version HELLO reports: the client enables the features of 1.1.5 for it.
pub const SERVER_VERSION: &str = "1.1.5";
/// `X-WebIssues-Version` of every 1.1 reply; the client wants exactly this.
pub const PROTOCOL_VERSION: &str = "1.1";

/// What the transport must do with the session after the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionChange {
    None,
    /// A successful LOGIN: issue a new session id (cookie) for the logged-in session.
    LoggedIn,
    /// A failed LOGIN: the session is over; expire the cookie.
    LoggedOut,
}

pub struct Outcome {
    pub reply: Reply11,
    pub session: SessionChange,
}

/// Runs one 1.1 request: the `command` field (None when missing) and the `file` upload.
/// The reply is returned once what the command wrote, or may have read, is durable;
/// `500` if it was discarded instead (the log could not be written).
pub async fn handle(
    app: &Shared,
    session: &mut Session,
    command: Option<&[u8]>,
    file: Option<&Bytes>,
) -> Outcome {
    let cmd = match token::tokenize(command, file).and_then(command::parse) {
        Ok(c) => c,
        Err(code) => {
            return Outcome {
                reply: Reply11::Error(code),
                session: SessionChange::None,
            };
        }
    };
    let is_login = matches!(cmd, Cmd11::Login { .. } | Cmd11::LoginNew { .. });
    let mut cx = Cx {
        shared: app,
        session,
        wrote: 0,
        me: None,
    };
    let start = crate::front::Start::now(&app.store);
    let mut reply = handlers::run(&mut cx, cmd).await;
    // As on the TCP connection: a write whose batch could not be logged (disk full) was
    // undone, and a read may have shown such a batch: both `500`.
    if !start.rests(&app.store, cx.wrote).settle(&app.store).await {
        reply = Reply11::Error(Code11::ServerError);
    }
    let change = match (&reply, is_login) {
        (Reply11::Error(_), true) => {
            session.user = None;
            SessionChange::LoggedOut
        }
        (_, true) => SessionChange::LoggedIn,
        _ => SessionChange::None,
    };
    Outcome {
        reply,
        session: change,
    }
}
