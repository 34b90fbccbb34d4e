//! HELLO, LOGIN, QUIT, LIST FEATURES.

use super::Cx;
use crate::error::{Code, Error, Result};
use crate::protocol::{Line, Reply};
use crate::store::users;

pub fn hello(cx: &mut Cx) -> Result<Reply> {
    Ok(Reply::Lines(vec![
        Line::new("SERVER")
            .str(cx.shared.config.server.name.clone())
            .str(cx.shared.uuid.clone()),
    ]))
}

/// Unknown login, wrong password and disabled account all answer 302 alike, and an unknown
/// login still costs one hash check, so the reply does not tell which logins exist.
///
/// After too many failures from the client's address or for the login name, LOGIN answers
/// 350 without checking the password (protocol-spec/limits.md).
pub async fn login(cx: &mut Cx<'_>, login: String, password: String) -> Result<Reply> {
    let ip = cx.session.peer.ip();
    let app = cx.shared;
    // Reserved before the hash and settled after it: simultaneous LOGINs cannot all pass.
    let attempt = match app.throttle.begin(ip, &login) {
        Ok(a) => a,
        Err(refusal) => {
            tracing::info!(%login, %ip, why = ?refusal.why, "login refused: throttled");
            return Err(refusal.error());
        }
    };
    // The epoch is read with the record: a password change made while this check runs
    // ends the new session too.
    let (user, epoch) = cx.read(|r| {
        let user = users::by_login(r, &login)?;
        let epoch = match &user {
            Some(u) => crate::sessions::epoch(r, u.id)?,
            None => 0,
        };
        Ok((user, epoch))
    })?;
    let hash = user
        .as_ref()
        .map(|u| u.password.clone())
        .unwrap_or_else(|| crate::password::dummy_hash().to_string());
    let ok = crate::password::verify_async(password, hash).await;
    match user {
        Some(u) if ok && u.access > users::ACCESS_NONE => {
            tracing::debug!(user = %u.login, "login");
            attempt.succeeded();
            cx.session.log_in(u.id, epoch);
            Ok(Reply::Lines(vec![
                Line::new("USER").int(u.id as i64).int(u.access),
            ]))
        }
        _ => {
            tracing::warn!(%login, peer = %cx.session.peer, "failed login");
            attempt.failed();
            Err(Error::new(Code::IncorrectLogin))
        }
    }
}

pub fn quit(cx: &mut Cx) -> Result<Reply> {
    cx.session.quit = true;
    Ok(Reply::Ok)
}

pub fn list_features(cx: &mut Cx) -> Result<Reply> {
    Ok(Reply::Lines(
        cx.shared
            .features()
            .into_iter()
            .map(|f| Line::new("F").str(f))
            .collect(),
    ))
}
