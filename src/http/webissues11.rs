//! `POST /server/webissues/handler.php`: the WebIssues 1.1 dialect over HTTP
//! (protocol-spec/webissues-1.1.md). The form and the sessions are the transport's
//! ([`super::multipart`], [`super::session`]); the command is [`crate::wi11::handle`]'s.
//!
//! 1.1 differs from the 0.8 routes in what the client checks: `X-WebIssues-Version: 1.1`
//! on every reply (exact match), no `X-WebIssues-Server`, status 200 for every protocol
//! outcome, 1.1 error codes, a binary body with the file name for GET ATTACHMENT.

use super::multipart;
use super::session::{self, State as SessionState};
use super::webissues::{Admission, Peer, Transport};
use crate::wi11::{self, Code11, Reply11, SessionChange};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;

/// A GET (or a POST without a form) is a request without a command: `400` as text.
pub async fn get() -> Response {
    reply(Reply11::Error(Code11::SyntaxError), None)
}

pub async fn post(
    State(t): State<Arc<Transport>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    // As on the 0.8 routes (http.md).
    let Admission {
        sid,
        existing,
        logged_in,
        small,
        cap,
    } = t.admit(&parts.headers);
    let refuse = |code| {
        let mut r = reply(Reply11::Error(code), None);
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        r
    };
    let over = if logged_in {
        Code11::UploadError
    } else {
        Code11::LoginRequired
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > cap) {
        tracing::info!(%peer, cap, logged_in, "1.1 request body over the limit: refused unread");
        return refuse(over);
    }
    let expected = declared.unwrap_or(cap);
    let _held = if expected > small {
        match t.budget.take(expected) {
            Some(h) => Some(h),
            None => {
                tracing::warn!(size = expected, "1.1 upload refused: memory budget spent");
                return refuse(Code11::UploadError);
            }
        }
    } else {
        None
    };
    let secs = t.app.config.server.http_body_max_secs.max(1);
    let body = match tokio::time::timeout(
        Duration::from_secs(secs),
        axum::body::to_bytes(body, cap as usize),
    )
    .await
    {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => return refuse(over),
        // 1.1 has no code for a slow client: the upload failed.
        Err(_) => return refuse(Code11::UploadError),
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let form = multipart::parse(content_type, body).unwrap_or_default();
    let command = form.command.as_deref().map(strip_line_end);
    let is_login = command.is_some_and(|c| c.starts_with(b"LOGIN "));
    let secure = t.secure;

    if is_login || existing.is_none() {
        // LOGIN always starts over (the old session ends whatever the outcome); without
        // a session HELLO works and everything else answers 300.
        if let Some(s) = &sid {
            t.sessions.remove(s);
        }
        let mut state = SessionState::new(peer);
        let out = wi11::handle(&t.app, &mut state.session, command, form.file.as_ref()).await;
        let cookie = match out.session {
            SessionChange::LoggedIn => {
                if let Some(user) = state.session.user {
                    state.generation = session::generation(&t.app, user);
                }
                Some(session::set_cookie(&t.sessions.insert(state), secure))
            }
            // A failed LOGIN, or a cookie naming no session: tell the client to forget it.
            _ if sid.is_some() || out.session == SessionChange::LoggedOut => {
                Some(session::clear_cookie(secure))
            }
            _ => None,
        };
        return reply(out.reply, cookie);
    }
    let entry = existing.expect("checked above");
    let mut state = entry.lock().await;
    state.session.peer = peer;
    let out = wi11::handle(&t.app, &mut state.session, command, form.file.as_ref()).await;
    reply(out.reply, None)
}

/// The client sends the line without a line end; one is tolerated, as on the 0.8 routes.
fn strip_line_end(c: &[u8]) -> &[u8] {
    c.strip_suffix(b"\r\n")
        .or_else(|| c.strip_suffix(b"\n"))
        .unwrap_or(c)
}

fn headers(h: &mut HeaderMap) {
    h.insert(
        "x-webissues-version",
        HeaderValue::from_static(wi11::PROTOCOL_VERSION),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn reply(r: Reply11, cookie: Option<String>) -> Response {
    let mut resp = match r {
        Reply11::File { name, data } => file_reply(&name, data.len() as u64, Body::from(data)),
        Reply11::Stream { name, body } => {
            file_reply(&name, body.size, super::webissues::file_body(body))
        }
        r => {
            let mut resp = (StatusCode::OK, r.encode()).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=UTF-8"),
            );
            resp
        }
    };
    headers(resp.headers_mut());
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    resp
}

/// GET ATTACHMENT's bytes with the file name the client shows.
fn file_reply(name: &str, len: u64, body: Body) -> Response {
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream; charset=binary"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    // The name is the client's; quotes and line ends cannot reach the header.
    let safe: String = name
        .chars()
        .map(|c| if c == '"' || c.is_control() { '_' } else { c })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{safe}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}
