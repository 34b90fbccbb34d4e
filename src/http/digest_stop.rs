//! `/digest/{user}/stop?token=…`: the one-click stop link of notification digests. The GET
//! shows a button, the POST (the button, or an RFC 8058 one-click client) removes the
//! user's `email` preference, which stops every notification mail to them.

use super::{escape, form, invalid_link, page, server_error};
use crate::app::App;
use crate::error::{Code, Error};
use crate::notify::stop_link;
use crate::store::notify::{self as n, PREF_EMAIL};
use crate::store::{Read, users};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use std::sync::Arc;

/// The user's name and address when `token` is their current stop token.
fn check(r: &impl Read, user: u64, token: &str) -> crate::error::Result<(String, String)> {
    let none = || Error::new(Code::InvalidToken);
    let key = stop_link::existing_key(r)?.ok_or_else(none)?;
    let email = n::pref(r, user, PREF_EMAIL)?.ok_or_else(none)?;
    let name = users::get(r, user as i64)?.ok_or_else(none)?.name;
    if !stop_link::valid(&key, user, &email, token) {
        return Err(none());
    }
    Ok((name, email))
}

pub(crate) async fn stop_page(
    State(app): State<Arc<App>>,
    Path(user): Path<u64>,
    Query(q): Query<super::TokenQuery>,
) -> Response {
    match app.store.read(|r| check(r, user, &q.token)) {
        Ok((name, email)) => page(
            StatusCode::OK,
            "Stop notification mail",
            &format!(
                "<p>Stop mailing changes from {server} to <b>{email}</b> ({name})?</p>\n{form}",
                server = escape(&app.config.server.name),
                email = escape(&email),
                name = escape(&name),
                form = form(&format!("/digest/{user}/stop?token={}", q.token), "Stop"),
            ),
        ),
        Err(e) if e.code == Code::ServerError => server_error(),
        Err(_) => invalid_link("stop"),
    }
}

pub(crate) async fn stop_post(
    State(app): State<Arc<App>>,
    Path(user): Path<u64>,
    Query(q): Query<super::TokenQuery>,
) -> Response {
    let time = crate::store::issues::now();
    let result = app.store.write(|w| {
        let (_, email) = check(w, user, &q.token)?;
        n::set_pref(w, user, PREF_EMAIL, "", time)?;
        crate::store::email::clear(w, user);
        Ok(email)
    });
    match result {
        Ok((email, seq)) => {
            if !crate::front::Rests::write(seq).settle(&app.store).await {
                return server_error();
            }
            tracing::info!(user, "notification mail stopped by the digest's stop link");
            page(
                StatusCode::OK,
                "Stopped",
                &format!(
                    "<p>No more notification mail goes to <b>{}</b>. To get it again, set \
                     your address with <code>SET PREFERENCE {user} 'email' '…'</code>.</p>",
                    escape(&email)
                ),
            )
        }
        Err(e) if e.code == Code::ServerError => server_error(),
        Err(_) => invalid_link("stop"),
    }
}
