//! Opt-in for the `email` preference (protocol-spec/notifications.md, "E-mail address").
//!
//! A user's digests go only to an address that confirmed it wants them: a new or changed
//! address gets one confirmation mail (a link and a token, the rules and the mail budget of
//! subscriptions) and receives no digest until it is used. The confirmed address is kept
//! under a key of its own, so the preference itself stays what the user set and a change
//! back to the confirmed address needs no new mail.

use super::mail::{Context, utc};
use super::rate;
use crate::config::SubscribeConfig;
use crate::error::{Code, Error, Result};
use crate::mail::{ConfirmView, Templates};
use crate::store::email::{confirmed_key, pending_key};
use crate::store::notify as n;
use crate::store::token;
use crate::store::users::User;
use crate::store::{Read as _, Writer};

pub use crate::store::email::{
    Pending, clear, confirmed_email, mark_confirmed, pending_target, status,
};

/// The value of the `email-status` preference line.
pub const STATUS_PREF: &str = "email-status";

/// The `email` preference of `user` becomes `address`: unless it is the confirmed address
/// or already waiting with a live token, one confirmation mail is queued in the caller's
/// batch, charged to the mail budget of `by` (`350` when spent, and then nothing changes).
/// Returns whether a mail was queued.
#[allow(clippy::too_many_arguments)]
pub fn request(
    w: &mut Writer,
    ctx: &Context,
    templates: &Templates,
    cfg: &SubscribeConfig,
    user: &User,
    by: u64,
    address: &str,
    now: i64,
) -> Result<bool> {
    let ok: Option<String> = w.get(&confirmed_key(user.id))?;
    if ok.as_deref() == Some(address) {
        w.remove(pending_key(user.id));
        return Ok(false);
    }
    let pending: Option<Pending> = w.get(&pending_key(user.id))?;
    if pending.is_some_and(|p| p.address == address && now < p.expires) {
        return Ok(false);
    }
    rate::charge(w, cfg, by, &[address.to_string()], now)?;
    let (token, hash) = token::generate();
    let expires = now.saturating_add(ctx.confirm_ttl);
    w.put(
        pending_key(user.id),
        &Pending {
            address: address.to_string(),
            hash,
            expires,
        },
    )?;
    let view = ConfirmView {
        server_name: ctx.server_name.clone(),
        target: format!("the issues watched by the user {}", user.login),
        token: token.clone(),
        confirm_url: ctx.email_confirm_url(user.id, &token),
        expires: utc(expires),
    };
    let (text, html) = templates.render_confirm(&view).map_err(Error::internal)?;
    let mut m = ctx.mail(
        format!("Confirm your e-mail address on {}", ctx.server_name),
        format!("email-{}-confirm-{now}@{}", user.id, ctx.host),
        now,
    );
    m.to = vec![address.to_string()];
    m.text = Some(text);
    m.html = Some(html);
    n::queue_mail(w, user.id, m, now)?;
    Ok(true)
}

/// Confirms the waiting address of `user` with `token`; `345 Invalid Token` otherwise,
/// changing nothing. Returns the address.
pub fn confirm(w: &mut Writer, user: u64, token_text: &str, now: i64) -> Result<String> {
    let address =
        pending_target(w, user, token_text, now)?.ok_or_else(|| Error::new(Code::InvalidToken))?;
    mark_confirmed(w, user, &address)?;
    Ok(address)
}
