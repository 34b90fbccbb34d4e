//! The `email` preference's opt-in (protocol-spec/notifications.md, "E-mail address"):
//! SET PREFERENCE of a new address mails it a confirmation, `email-status` shows whether it
//! confirmed, and CONFIRM EMAIL takes the token from that mail.

use super::Cx;
use crate::error::{Code, Error, Result};
use crate::protocol::{Line, Reply};
use crate::store::notify::{self as n, PREF_EMAIL};
use crate::store::users::{ACCESS_ADMIN, User};
use crate::subscribe::email::{self, STATUS_PREF};
use crate::subscribe::mail::Context;

/// `SET PREFERENCE user 'email' 'value'`. An administrator's setting is taken as confirmed
/// (protocol-spec/notifications.md says why); anyone else's new address gets one
/// confirmation mail and no digest until it is confirmed.
pub fn set(cx: &mut Cx, target: &User, value: &str, now: i64) -> Result<Reply> {
    let me = cx.user()?;
    let by_admin = me.access == ACCESS_ADMIN;
    let mailer = cx.shared.notifier.clone();
    let cfg = cx.shared.config.subscribe.clone();
    // Links work whenever the notify feature is on: the HTTP listener serves the email page
    // even where subscriptions are disabled.
    let ctx = Context::new(&cx.shared.config);
    let mut queued = false;
    cx.write(|w| {
        n::set_pref(w, target.id, PREF_EMAIL, value, now)?;
        if value.is_empty() {
            email::clear(w, target.id);
        } else if by_admin {
            email::mark_confirmed(w, target.id, value)?;
        } else if let Some(m) = &mailer {
            queued = email::request(w, &ctx, &m.templates, &cfg, target, me.id, value, now)?;
        }
        Ok(())
    })?;
    if queued {
        tracing::info!(user = target.id, "e-mail address confirmation requested");
        if let Some(m) = &mailer {
            m.kick(cx.wrote);
        }
    }
    Ok(Reply::Ok)
}

/// `email-status` is the server's to set.
pub fn refuse_status(name: &str) -> Result<()> {
    if name == STATUS_PREF {
        return Err(Error::with(
            Code::InvalidPreference,
            "'email-status' is set by the server: use the link or the token mailed to the address",
        ));
    }
    Ok(())
}

/// The `P 'email-status' 'confirmed|unconfirmed'` line that follows the preferences of a
/// user who has an `email`.
pub fn status_line(cx: &Cx, user: u64) -> Result<Option<Line>> {
    let status = cx.read(|r| email::status(r, user))?;
    Ok(status.map(|s| Line::new("P").str(STATUS_PREF).str(s)))
}

/// `CONFIRM EMAIL userId 'token'`: the user themself or an administrator confirms the
/// address with the token from its confirmation mail.
pub fn confirm(cx: &mut Cx, user: i64, token: String) -> Result<Reply> {
    let me = cx.user()?;
    if me.id as i64 != user && me.access != ACCESS_ADMIN {
        return Err(Error::new(Code::AccessDenied));
    }
    let time = crate::store::issues::now();
    cx.write(|w| email::confirm(w, user.max(0) as u64, &token, time))?;
    tracing::info!(user, "e-mail address confirmed by protocol");
    Ok(Reply::Ok)
}
