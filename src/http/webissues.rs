//! The WebIssues HTTP transport (protocol-spec/http.md): one command per POST, carried in a
//! form, answered with the reply lines, a `WebIssuesSID` cookie standing for the session.
//!
//! Every command runs through [`crate::front::run_durable`], the path the TCP connection uses,
//! so the dispatcher, permissions, limits and login throttle are the same; only framing,
//! sessions and reply encoding live here.

use super::multipart;
use super::session::{self, Sessions, State as SessionState};
use crate::app::App;
use crate::commands::Cx;
use crate::error::{Code, Error};
use crate::front::LiteralBudget;
use crate::protocol::{Frame, Reply, codec::literal_marker};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The dialect this transport speaks, sent in `X-WebIssues-Version`.
pub const VERSION: &str = "0.8";
/// Sent in `X-WebIssues-Server` (0.8 clients read it after HELLO and fail without it).
pub const SERVER: &str = concat!("webissued ", env!("CARGO_PKG_VERSION"));
/// Where the 1.1 dialect is served (`super::webissues11`).
pub const HANDLER_11: &str = "/server/webissues/handler.php";
/// Room in a body beyond the attachment and the command line: multipart headers.
const FORM_OVERHEAD: u64 = 64 * 1024;

/// The client's address, for the login throttle and logs (put in each request's
/// extensions by the accept loop, for plain and TLS connections alike).
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

pub struct Transport {
    pub(super) app: Arc<App>,
    pub sessions: Sessions,
    /// Cookies get `Secure`: the public URL is https, or this listener speaks TLS.
    pub(super) secure: bool,
    /// Memory for request bodies being received, all requests together
    /// (`[limits] literal_memory_bytes`, a budget of its own beside the TCP listener's).
    pub(super) budget: LiteralBudget,
}

impl Transport {
    /// What a request may send, decided from its cookie before a byte of the body is read
    /// (as for a TCP literal): a body larger than a command line needs a live session and
    /// room in the upload budget. Both dialects' endpoints start here.
    pub(super) fn admit(&self, headers: &HeaderMap) -> Admission {
        let sid = session::sid_from_cookies(
            headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        );
        let existing = sid.as_deref().and_then(|s| self.sessions.get(s));
        let logged_in = existing.is_some();
        let small = self.small_body();
        let cap = if logged_in { self.body_limit() } else { small };
        Admission {
            sid,
            existing,
            logged_in,
            small,
            cap,
        }
    }
    pub fn new(app: Arc<App>) -> Self {
        let cfg = &app.config.server;
        let secure = cfg
            .base_url
            .as_deref()
            .is_some_and(|u| u.to_ascii_lowercase().starts_with("https:"))
            || cfg.tls_cert.is_some();
        Transport {
            budget: LiteralBudget::new(app.config.limits.literal_memory_bytes),
            sessions: Sessions::new(cfg.http_session_idle_secs, cfg.http_max_sessions),
            secure,
            app,
        }
    }

    /// Largest body taken without a session or the upload budget: a command line and its
    /// form, as much as a TCP client may send before LOGIN.
    pub(super) fn small_body(&self) -> u64 {
        (self.app.config.server.max_line_bytes as u64).saturating_add(FORM_OVERHEAD)
    }

    /// Largest request body: the largest attachment, the longest line, the form around them.
    pub(super) fn body_limit(&self) -> u64 {
        let cfg = &self.app.config.server;
        cfg.max_attachment_bytes
            .saturating_add(cfg.max_line_bytes as u64)
            .saturating_add(FORM_OVERHEAD)
    }
}

/// Routes of the transport; the rest of the listener's pages are merged beside them, and
/// every path no other route takes lands in [`fallback`].
pub fn router(app: Arc<App>) -> Router {
    let t = Arc::new(Transport::new(app));
    Router::new()
        .route("/", get(index).post(post_08))
        .route(
            HANDLER_11,
            post(super::webissues11::post).get(super::webissues11::get),
        )
        .fallback(fallback)
        // The transport bounds and times bodies itself (answering in the protocol).
        .layer(DefaultBodyLimit::disable())
        .with_state(t)
}

/// Any other path: a POST is a 0.8 command (clients post to the URL the user typed, with
/// `/` appended); anything else is not found.
async fn fallback(state: State<Arc<Transport>>, peer: ConnectInfo<Peer>, req: Request) -> Response {
    if req.method() == Method::POST {
        post_08(state, peer, req).await
    } else {
        let mut r = super::page(
            StatusCode::NOT_FOUND,
            "Not found",
            "<p>There is no page here.</p>",
        );
        protocol_headers(r.headers_mut());
        r
    }
}

/// A short page for people who open the server's URL in a browser.
async fn index(State(t): State<Arc<Transport>>, headers: HeaderMap) -> Response {
    let cfg = &t.app.config.server;
    let url = match &cfg.base_url {
        Some(b) => format!("{}/", b.trim_end_matches('/')),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or(&cfg.http_listen);
            let scheme = if cfg.tls_cert.is_some() {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{host}/")
        }
    };
    let mut r = super::page(
        StatusCode::OK,
        &cfg.name,
        &format!(
            "<p>This is a WebIssues server (webissued {}), speaking the WebIssues {VERSION} \
             protocol.</p>\n<p>To use it, give your WebIssues client this server URL:</p>\n\
             <p><code>{}</code></p>",
            env!("CARGO_PKG_VERSION"),
            super::escape(&url)
        ),
    );
    protocol_headers(r.headers_mut());
    r
}

/// A request's session and body cap ([`Transport::admit`]).
pub(super) struct Admission {
    pub sid: Option<String>,
    pub existing: Option<Arc<tokio::sync::Mutex<SessionState>>>,
    pub logged_in: bool,
    /// The most a request without a session may send: one command line.
    pub small: u64,
    pub cap: u64,
}

/// One 0.8 command: read the form, find the session, run the command, answer.
async fn post_08(
    State(t): State<Arc<Transport>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let Admission {
        sid,
        existing,
        logged_in,
        small,
        cap,
    } = t.admit(&parts.headers);
    let refuse = |e: Error| closing(text_reply(Reply::Error(e), None));
    let over = |cap: u64| {
        if logged_in {
            Error::with(
                Code::UploadError,
                format!("request body larger than the limit of {cap} bytes"),
            )
        } else {
            Error::with(
                Code::LoginRequired,
                format!("log in before sending more than {cap} bytes"),
            )
        }
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > cap) {
        tracing::info!(%peer, cap, logged_in, "http request body over the limit: refused unread");
        return refuse(over(cap));
    }
    let expected = declared.unwrap_or(cap);
    let _held = if expected > small {
        match t.budget.take(expected) {
            Some(h) => Some(h),
            None => {
                tracing::warn!(
                    size = expected,
                    in_use = t.budget.used(),
                    "http upload refused: memory budget spent"
                );
                return refuse(Error::with(
                    Code::UploadError,
                    "the server is receiving too many uploads; try again later",
                ));
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
        Ok(Err(e)) if stalled(&e) => {
            let secs = t.app.config.limits.http_body_timeout_secs;
            return refuse(Error::with(
                Code::IdleTimeout,
                format!("request body stalled: no data for {secs} s"),
            ));
        }
        Ok(Err(_)) => return refuse(over(cap)),
        Err(_) => {
            tracing::warn!(%peer, limit_secs = secs, "http request body timeout");
            return refuse(Error::with(
                Code::IdleTimeout,
                format!("request body not received within {secs} s"),
            ));
        }
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let form = match multipart::parse(content_type, body) {
        Ok(f) => f,
        Err(why) => return text_reply(Reply::Error(Error::with(Code::SyntaxError, why)), None),
    };
    let Some(command) = form.command else {
        let e = Error::with(Code::SyntaxError, "no command field in the form");
        return text_reply(Reply::Error(e), None);
    };
    let frame = match frame_of(&t.app, command, form.file) {
        Ok(f) => f,
        Err(e) => return text_reply(Reply::Error(e), None),
    };
    let attachment = match &frame {
        Frame::Line(l) => l.strip_prefix(b"GET ATTACHMENT ").map(|id| {
            String::from_utf8_lossy(id)
                .chars()
                .filter(char::is_ascii_digit)
                .collect::<String>()
        }),
        _ => None,
    };
    let span = tracing::info_span!("http", %peer);
    let (reply, cookie) =
        tracing::Instrument::instrument(t.run(peer, sid, existing, frame), span).await;
    let name = match (&reply, attachment) {
        (Reply::Data(_) | Reply::File(_), Some(id)) => attachment_name(&t.app, &id),
        _ => String::new(),
    };
    match reply {
        Reply::Data(bytes) => {
            let len = bytes.len() as u64;
            data_reply(Body::from(bytes), len, &name, cookie)
        }
        Reply::File(f) => {
            let len = f.size;
            data_reply(file_body(f), len, &name, cookie)
        }
        reply => text_reply(reply, cookie),
    }
}

/// Whether reading the body failed because it stalled (the accept loop's limit) rather
/// than because it was too long.
fn stalled(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.to_string().contains("stalled") {
            return true;
        }
        source = s.source();
    }
    false
}

/// A large attachment sent from its open file in pieces, never held whole.
pub(super) fn file_body(f: crate::protocol::reply::FileBody) -> Body {
    const PIECE: u64 = 64 * 1024;
    let stream = futures::stream::unfold((f.file, 0u64, f.size), |(file, at, size)| async move {
        if at >= size {
            return None;
        }
        let n = (size - at).min(PIECE);
        let f2 = file.clone();
        let piece = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0; n as usize];
            std::os::unix::fs::FileExt::read_exact_at(&*f2, &mut buf, at).map(|_| Bytes::from(buf))
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        // After an error the stream ends (the client sees a short body).
        let next = if piece.is_ok() { at + n } else { size };
        Some((piece, (file, next, size)))
    });
    Body::from_stream(stream)
}

/// The command line (one line; a trailing line end is allowed) with its upload, as the
/// line codec would have framed it. The `file` part takes the place of a `{size}` literal:
/// the marker may be left out, and when present must match the part's size.
fn frame_of(app: &App, command: Bytes, file: Option<Bytes>) -> Result<Frame, Error> {
    let cfg = &app.config.server;
    let mut line = command;
    for end in [&b"\n"[..], b"\r"] {
        if line.ends_with(end) {
            line.truncate(line.len() - 1);
        }
    }
    if line.len() > cfg.max_line_bytes {
        return Ok(Frame::TooLong);
    }
    let (line, announced) = match literal_marker(&line) {
        Some((cut, size)) => (line.slice(..cut), Some(size)),
        None => (line, None),
    };
    // Only an upload takes the file; a client that sends a part with other commands is
    // not refused for it.
    let file = file.filter(|_| line.starts_with(b"ADD ATTACHMENT "));
    match (file, announced) {
        (Some(f), _) if f.len() as u64 > cfg.max_attachment_bytes => {
            Ok(Frame::DataTooLarge(f.len() as u64))
        }
        (Some(f), Some(n)) if f.len() as u64 != n => Err(Error::with(
            Code::UploadError,
            format!(
                "the file part has {} bytes, the command announced {n}",
                f.len()
            ),
        )),
        (Some(f), _) => Ok(Frame::WithData(line, f)),
        (None, Some(_)) => Err(Error::with(
            Code::UploadError,
            "the command announces data but the request has no file part",
        )),
        (None, None) => Ok(Frame::Line(line)),
    }
}

impl Transport {
    /// Runs `frame` in the session `sid` names (`existing`, when it is live, or in none);
    /// returns the reply and the
    /// `Set-Cookie` value to send, if the session started or ended.
    async fn run(
        &self,
        peer: SocketAddr,
        sid: Option<String>,
        existing: Option<Arc<tokio::sync::Mutex<SessionState>>>,
        frame: Frame,
    ) -> (Reply, Option<String>) {
        let app = &*self.app;
        let line: &[u8] = match &frame {
            Frame::Line(l) | Frame::WithData(l, _) => l,
            _ => b"",
        };
        let is_login = line.starts_with(b"LOGIN ");
        if is_login {
            // A fresh session for every LOGIN: the old one ends whatever the outcome (a
            // failed LOGIN ends the session; a successful one gets a new identifier).
            if let Some(s) = &sid {
                self.sessions.remove(s);
            }
            let mut state = SessionState::new(peer);
            let reply = run_in(app, &mut state, frame).await;
            return match (state.session.user, &reply) {
                (Some(user), Reply::Lines(_)) => {
                    state.users_seen = app.store.generation(crate::store::Generation::Users);
                    state.generation = session::generation(app, user);
                    let new = self.sessions.insert(state);
                    (reply, Some(session::set_cookie(&new, self.secure)))
                }
                _ => (reply, sid.map(|_| session::clear_cookie(self.secure))),
            };
        }
        let Some(entry) = existing else {
            // No session: HELLO works, every command needing a login answers 300.
            let mut state = SessionState::new(peer);
            let reply = run_in(app, &mut state, frame).await;
            return (reply, sid.map(|_| session::clear_cookie(self.secure)));
        };
        let mut state = entry.lock().await;
        if !session::still_valid(app, &mut state) {
            // The user's sessions were ended (password change, account disabled).
            drop(state);
            if let Some(s) = &sid {
                self.sessions.remove(s);
            }
            let mut fresh = SessionState::new(peer);
            let reply = run_in(app, &mut fresh, frame).await;
            return (reply, Some(session::clear_cookie(self.secure)));
        }
        state.session.peer = peer;
        let own_password = line.starts_with(b"SET PASSWORD ");
        let reply = run_in(app, &mut state, frame).await;
        if own_password
            && reply == Reply::Ok
            && let Some(user) = state.session.user
        {
            // A password changed in this session keeps this session (others end).
            state.users_seen = app.store.generation(crate::store::Generation::Users);
            state.generation = session::generation(app, user);
        }
        if state.session.quit {
            drop(state);
            if let Some(s) = &sid {
                self.sessions.remove(s);
            }
            return (reply, Some(session::clear_cookie(self.secure)));
        }
        (reply, None)
    }
}

/// Runs one command in a session and answers as the TCP connection does
/// ([`crate::front::run_durable`]).
async fn run_in(app: &App, state: &mut SessionState, frame: Frame) -> Reply {
    let mut cx = Cx {
        shared: app,
        session: &mut state.session,
        wrote: 0,
        me: None,
    };
    crate::front::run_durable(&mut cx, frame).await
}

fn protocol_headers(h: &mut HeaderMap) {
    h.insert("x-webissues-version", HeaderValue::from_static(VERSION));
    h.insert("x-webissues-server", HeaderValue::from_static(SERVER));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn with_cookie(r: &mut Response, cookie: Option<String>) {
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
}

/// The reply lines, CRLF-terminated, without the empty line that closes a TCP reply.
pub fn text_reply(reply: Reply, cookie: Option<String>) -> Response {
    let mut out = Vec::new();
    reply.encode(&mut out);
    out.truncate(out.len().saturating_sub(2));
    let mut r = (StatusCode::OK, out).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    protocol_headers(r.headers_mut());
    with_cookie(&mut r, cookie);
    r
}

/// GET ATTACHMENT's bytes as they are.
fn data_reply(body: Body, len: u64, name: &str, cookie: Option<String>) -> Response {
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(v) = HeaderValue::from_str(&content_disposition(name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    protocol_headers(h);
    with_cookie(&mut r, cookie);
    r
}

/// The attachment's name as GET DETAILS lists it (the command already checked access).
fn attachment_name(app: &App, id: &str) -> String {
    let id: i64 = id.parse().unwrap_or(0);
    app.store
        .read(|r| crate::store::issues::attachment(r, id))
        .ok()
        .flatten()
        .map(|a| a.name)
        .unwrap_or_default()
}

/// `attachment; filename="…"` with an ASCII stand-in (RFC 6266), and the real name in
/// `filename*` (RFC 8187) when it is not plain ASCII.
pub fn content_disposition(name: &str) -> String {
    let plain: String = name
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            _ => '_',
        })
        .collect();
    let plain = if plain.is_empty() {
        "attachment".to_string()
    } else {
        plain
    };
    let mut v = format!("attachment; filename=\"{plain}\"");
    if plain != name && !name.is_empty() {
        v.push_str("; filename*=UTF-8''");
        for b in name.bytes() {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                v.push(b as char);
            } else {
                v.push_str(&format!("%{b:02X}"));
            }
        }
    }
    v
}

/// Asks the client to close the connection (its body may not have been read).
fn closing(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

#[cfg(test)]
mod tests {
    #[test]
    fn content_disposition_names() {
        use super::content_disposition as cd;
        assert_eq!(cd("log.txt"), "attachment; filename=\"log.txt\"");
        assert_eq!(
            cd("zrzut ekranu ż.png"),
            "attachment; filename=\"zrzut ekranu _.png\"; filename*=UTF-8''zrzut%20ekranu%20%C5%BC.png"
        );
        assert_eq!(
            cd("a\"b"),
            "attachment; filename=\"a_b\"; filename*=UTF-8''a%22b"
        );
        assert_eq!(cd(""), "attachment; filename=\"attachment\"");
    }
}
