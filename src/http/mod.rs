//! The HTTP listener: the WebIssues HTTP transport (webissues.rs), the confirm and
//! unsubscribe pages of e-mail subscriptions, and the confirm page of the `email` preference.
//!
//! A GET only shows a page with one button; only a POST changes anything, because mail
//! scanners and link previewers fetch every link in a mail and must neither confirm nor
//! cancel anything. The unsubscribe URL doubles as the RFC 8058 one-click target: a POST
//! (whatever its body, normally `List-Unsubscribe=One-Click`) cancels at once.
//!
//! Every value shown is HTML-escaped, pages load nothing from elsewhere, and the token in
//! the URL is kept out of `Referer` headers and caches.

mod accept;
pub mod digest_stop;
mod metrics;
mod request_log;

use crate::app::App;
use crate::error::{Code, Error, Result};
use crate::front::Rests;
use crate::store::issues::now;
use crate::store::subscriptions::{self as subs, Status, Subscription, Target};
use crate::store::token;
use crate::store::{Read, issues, projects, users};
use crate::subscribe::email;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use std::sync::Arc;
use tokio::net::TcpListener;

pub mod multipart;
pub mod session;
pub mod webissues;
pub mod webissues11;

/// Accepts on `listener` until `stop` turns true; returns the open connections for the
/// shutdown to drain (`crate::shutdown`).
pub async fn accept(
    app: Arc<App>,
    listener: TcpListener,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> crate::drain::Connections {
    // Requests wait in the listen queue while the store loads at start-up.
    tokio::select! {
        _ = app.store.ready() => {}
        _ = async { drop(stop.wait_for(|s| *s).await) } => return Default::default(),
    }
    accept::accept(app.clone(), listener, router(app), stop).await
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(
            "/subscriptions/{id}/confirm",
            get(confirm_page).post(confirm_post),
        )
        .route(
            "/subscriptions/{id}/unsubscribe",
            get(unsubscribe_page).post(unsubscribe_post),
        )
        .merge(metrics::router())
        .route(
            "/digest/{user}/stop",
            get(digest_stop::stop_page).post(digest_stop::stop_post),
        )
        .route(
            "/email/{user}/confirm",
            get(email_confirm_page).post(email_confirm_post),
        )
        .with_state(app.clone())
        // `/`, the 0.8 and 1.1 handlers, and the fallback (any other POST is 0.8; any other
        // GET is the not-found page).
        .merge(webissues::router(app))
        .layer(axum::middleware::from_fn(request_log::log))
}

#[derive(Deserialize)]
pub(crate) struct TokenQuery {
    #[serde(default)]
    pub(crate) token: String,
}

/// Escapes text for HTML element content and double-quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A complete page; `title` is plain text, `body` is already-escaped HTML.
pub(crate) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let title = escape(title);
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex\">\n<title>{title}</title>\n\
         <style>body{{font-family:sans-serif;max-width:36em;margin:3em auto;padding:0 1em;line-height:1.5}}\
         button{{font-size:1.1em;padding:.4em 1.2em}}</style>\n</head>\n<body>\n<h1>{title}</h1>\n{body}\n</body>\n</html>\n"
    );
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

pub(crate) fn invalid_link(what: &str) -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Link not valid",
        &format!(
            "<p>This {} link is not valid: it has expired, was already used, or the \
             subscription no longer exists.</p>",
            escape(what)
        ),
    )
}

pub(crate) fn server_error() -> Response {
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Server error",
        "<p>Something went wrong on the server. Please try again later.</p>",
    )
}

fn disabled(app: &App) -> Option<Response> {
    (!app.subscriptions_enabled()).then(|| invalid_link("subscription"))
}

/// What a subscription follows, in words, as its creator can see it now.
fn target_text(r: &impl Read, sub: &Subscription) -> Result<String> {
    Ok(match sub.target {
        Target::Folder(f) => match projects::folder(r, f as i64)? {
            Some(folder) => {
                let project = projects::get(r, folder.project as i64)?
                    .map(|p| p.name)
                    .unwrap_or_default();
                format!("folder {} in project {}", folder.name, project)
            }
            None => format!("folder {f} (deleted)"),
        },
        Target::Issue(i) => match issues::get(r, i as i64)? {
            Some(issue) => format!("issue #{} \"{}\"", issue.id, issue.name),
            None => format!("issue #{i} (deleted)"),
        },
    })
}

/// The address whose confirmation token this is, if it is one and still usable.
fn confirm_target(sub: &Subscription, token_text: &str, at: i64) -> Option<String> {
    if at >= sub.confirm_expires || sub.status(at) == Status::Expired {
        return None;
    }
    let mut found = None;
    for r in &sub.recipients {
        if let Some(h) = &r.confirm
            && token::matches(token_text, h)
        {
            found = Some(r.address.clone());
        }
    }
    found
}

pub(crate) fn form(action: &str, button: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{}\">\n\
         <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\n\
         <button type=\"submit\" id=\"go\">{}</button>\n</form>",
        escape(action),
        escape(button)
    )
}

async fn confirm_page(
    State(app): State<Arc<App>>,
    Path(id): Path<i64>,
    Query(q): Query<TokenQuery>,
) -> Response {
    if let Some(r) = disabled(&app) {
        return r;
    }
    let found = app.store.read(|r| {
        let Some(sub) = subs::get(r, id)? else {
            return Ok(None);
        };
        let Some(address) = confirm_target(&sub, &q.token, now()) else {
            return Ok(None);
        };
        Ok(Some((address, target_text(r, &sub)?)))
    });
    match found {
        Ok(Some((address, target))) => page(
            StatusCode::OK,
            "Confirm subscription",
            &format!(
                "<p>{server} was asked to send notifications about <b>{target}</b> to \
                 <b>{address}</b>.</p>\n<p>Nothing is sent until you confirm. If you did not \
                 ask for this, close this page.</p>\n{form}",
                server = escape(&app.config.server.name),
                target = escape(&target),
                address = escape(&address),
                form = form(
                    &format!("/subscriptions/{id}/confirm?token={}", q.token),
                    "Confirm subscription"
                ),
            ),
        ),
        Ok(None) => invalid_link("confirmation"),
        Err(_) => server_error(),
    }
}

async fn confirm_post(
    State(app): State<Arc<App>>,
    Path(id): Path<i64>,
    Query(q): Query<TokenQuery>,
) -> Response {
    if let Some(r) = disabled(&app) {
        return r;
    }
    let time = now();
    let result = app.store.write(|w| {
        let mut sub = subs::get(w, id)?.ok_or_else(|| Error::new(Code::UnknownSubscription))?;
        let address = confirm_target(&sub, &q.token, time);
        subs::confirm(&mut sub, &q.token, time)?;
        subs::update(w, &sub)?;
        Ok((address.unwrap_or_default(), target_text(w, &sub)?))
    });
    match result {
        Ok(((address, target), seq)) => {
            if !Rests::write(seq).settle(&app.store).await {
                return server_error();
            }
            tracing::info!(subscription = id, "subscription confirmed by link");
            page(
                StatusCode::OK,
                "Subscription confirmed",
                &format!(
                    "<p><b>{}</b> will now receive notifications about <b>{}</b>.</p>\n\
                     <p>Every notification has a link to unsubscribe.</p>",
                    escape(&address),
                    escape(&target)
                ),
            )
        }
        Err(e) if e.code == Code::ServerError => server_error(),
        Err(_) => invalid_link("confirmation"),
    }
}

async fn unsubscribe_page(
    State(app): State<Arc<App>>,
    Path(id): Path<i64>,
    Query(q): Query<TokenQuery>,
) -> Response {
    if let Some(r) = disabled(&app) {
        return r;
    }
    let time = now();
    let found = app.store.read(|r| {
        let Some(sub) = subs::get(r, id)? else {
            return Ok(None);
        };
        // Only the address this link was mailed to: the other recipients (Bcc above all)
        // are none of its reader's business.
        let Some(address) = subs::unsubscribe_address(r, &sub, &q.token, time)? else {
            return Ok(None);
        };
        Ok(Some((address, target_text(r, &sub)?)))
    });
    match found {
        Ok(Some((address, target))) => page(
            StatusCode::OK,
            "Unsubscribe",
            &format!(
                "<p>Stop the notifications from {server} about <b>{target}</b> to \
                 <b>{address}</b>?</p>\n{form}",
                server = escape(&app.config.server.name),
                target = escape(&target),
                address = escape(&address),
                form = form(
                    &format!("/subscriptions/{id}/unsubscribe?token={}", q.token),
                    "Unsubscribe"
                ),
            ),
        ),
        Ok(None) => invalid_link("unsubscribe"),
        Err(_) => server_error(),
    }
}

/// RFC 8058 one-click and the page's button alike: the token in the URL is the authority,
/// the body is not needed. It stops the address the link was mailed to; the subscription
/// goes with its last address.
async fn unsubscribe_post(
    State(app): State<Arc<App>>,
    Path(id): Path<i64>,
    Query(q): Query<TokenQuery>,
) -> Response {
    if let Some(r) = disabled(&app) {
        return r;
    }
    let time = now();
    let result = app.store.write(|w| {
        let sub = subs::get(w, id)?.ok_or_else(|| Error::new(Code::UnknownSubscription))?;
        let address = subs::unsubscribe_address(w, &sub, &q.token, time)?
            .ok_or_else(|| Error::new(Code::InvalidToken))?;
        let target = target_text(w, &sub)?;
        subs::remove_recipient(w, &sub, &address)?;
        Ok((address, target))
    });
    match result {
        Ok(((address, target), seq)) => {
            if !Rests::write(seq).settle(&app.store).await {
                return server_error();
            }
            tracing::info!(
                subscription = id,
                "address unsubscribed by unsubscribe link"
            );
            page(
                StatusCode::OK,
                "Unsubscribed",
                &format!(
                    "<p><b>{}</b> will get no more notifications about <b>{}</b>.</p>",
                    escape(&address),
                    escape(&target)
                ),
            )
        }
        Err(e) if e.code == Code::ServerError => server_error(),
        Err(_) => invalid_link("unsubscribe"),
    }
}

/// The page of an `email` preference's confirmation link: names the server, the account
/// and the address, with one button; changes nothing.
async fn email_confirm_page(
    State(app): State<Arc<App>>,
    Path(user): Path<i64>,
    Query(q): Query<TokenQuery>,
) -> Response {
    if app.notifier.is_none() || user <= 0 {
        return invalid_link("confirmation");
    }
    let found = app.store.read(|r| {
        let Some(address) = email::pending_target(r, user as u64, &q.token, now())? else {
            return Ok(None);
        };
        let login = users::get(r, user)?.map(|u| u.login).unwrap_or_default();
        Ok(Some((address, login)))
    });
    match found {
        Ok(Some((address, login))) => page(
            StatusCode::OK,
            "Confirm e-mail address",
            &format!(
                "<p>{server} was asked to send the notifications of the user <b>{login}</b> \
                 to <b>{address}</b>.</p>\n<p>Nothing is sent until you confirm. If you did \
                 not ask for this, close this page.</p>\n{form}",
                server = escape(&app.config.server.name),
                login = escape(&login),
                address = escape(&address),
                form = form(
                    &format!("/email/{user}/confirm?token={}", q.token),
                    "Confirm e-mail address"
                ),
            ),
        ),
        Ok(None) => invalid_link("confirmation"),
        Err(_) => server_error(),
    }
}

async fn email_confirm_post(
    State(app): State<Arc<App>>,
    Path(user): Path<i64>,
    Query(q): Query<TokenQuery>,
) -> Response {
    if app.notifier.is_none() || user <= 0 {
        return invalid_link("confirmation");
    }
    let time = now();
    match app
        .store
        .write(|w| email::confirm(w, user as u64, &q.token, time))
    {
        Ok((address, seq)) => {
            if !Rests::write(seq).settle(&app.store).await {
                return server_error();
            }
            tracing::info!(user, "e-mail address confirmed by link");
            page(
                StatusCode::OK,
                "E-mail address confirmed",
                &format!(
                    "<p><b>{}</b> will now receive the notifications of this account.</p>",
                    escape(&address)
                ),
            )
        }
        Err(e) if e.code == Code::ServerError => server_error(),
        Err(_) => invalid_link("confirmation"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            super::escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
