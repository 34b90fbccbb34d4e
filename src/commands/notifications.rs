//! LIST PREFERENCES, SET PREFERENCE, LIST NOTIFICATIONS, NOTIFY FOLDER, NOTIFY ISSUE and the
//! admin extensions PREVIEW NOTIFICATIONS, RUN NOTIFICATIONS, LIST OUTBOX, RETRY OUTBOX,
//! DELETE OUTBOX (protocol-spec/notifications.md).

use super::Cx;
use crate::email_address::is_valid_email;
use crate::error::{Code, Error, Result};
use crate::notify::Notifier;
use crate::notify::digest::{self, Format};
use crate::protocol::{Line, Reply};
use crate::schedule::{Frequency, UserTz};
use crate::store::issues::now;
use crate::store::notify::{
    self as n, PREF_EMAIL, PREF_FORMAT, PREF_FREQUENCY, PREF_OWN_CHANGES, PREF_TIMEZONE, Watch,
};
use crate::store::users::{self, ACCESS_ADMIN, User};
use std::sync::Arc;

/// The longest preference name (the 0.8 column width).
const MAX_PREF_NAME: usize = 40;

/// The notifier, or `Unknown Command` when the `notify` feature is off.
fn notifier(cx: &Cx) -> Result<Arc<Notifier>> {
    cx.shared.notifier.clone().ok_or_else(|| {
        Error::with(
            Code::UnknownCommand,
            "notifications are disabled on this server",
        )
    })
}

/// The target user of a preference command: oneself, or anyone for a server admin.
fn target_user(cx: &mut Cx, user: i64) -> Result<User> {
    let me = cx.user()?;
    let target = cx.read(|r| users::require(r, user))?;
    if me.access != ACCESS_ADMIN && me.id != target.id {
        return Err(Error::new(Code::AccessDenied));
    }
    Ok(target)
}

pub fn list_preferences(cx: &mut Cx, user: i64) -> Result<Reply> {
    let target = target_user(cx, user)?;
    let prefs = cx.read(|r| n::prefs(r, target.id))?;
    let status = super::email_pref::status_line(cx, target.id)?;
    Ok(Reply::Lines(
        prefs
            .into_iter()
            .map(|(k, v)| Line::new("P").str(k).str(v))
            .chain(status)
            .collect(),
    ))
}

/// Checks a preference against the rules of protocol-spec/notifications.md; an empty value
/// (which clears the field) is accepted for every known name.
pub fn validate_preference(name: &str, value: &str, notify: bool) -> Result<()> {
    let bad = |why: String| Err(Error::with(Code::InvalidPreference, why));
    let name_ok = !name.is_empty()
        && name.len() <= MAX_PREF_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !name_ok {
        return bad("names are 1-40 lowercase letters, digits and hyphens".into());
    }
    if name.starts_with("x-") {
        return Ok(());
    }
    let notify_only = [PREF_FREQUENCY, PREF_OWN_CHANGES, PREF_FORMAT].contains(&name);
    if notify_only && !notify {
        return bad(format!("'{name}' needs the notify feature"));
    }
    if ![
        PREF_EMAIL,
        PREF_TIMEZONE,
        PREF_FREQUENCY,
        PREF_OWN_CHANGES,
        PREF_FORMAT,
    ]
    .contains(&name)
    {
        return bad(format!("unknown preference '{name}'"));
    }
    if value.is_empty() {
        return Ok(());
    }
    match name {
        PREF_EMAIL if !is_valid_email(value) => bad("not a valid e-mail address".into()),
        PREF_TIMEZONE => UserTz::parse(value)
            .map(drop)
            .or_else(|e| bad(e.to_string())),
        PREF_FREQUENCY => Frequency::parse(value)
            .map(drop)
            .or_else(|e| bad(e.to_string())),
        PREF_OWN_CHANGES if value != "0" && value != "1" => bad("use 0 or 1".into()),
        PREF_FORMAT if Format::parse(value).is_none() => bad("use text, html or both".into()),
        _ => Ok(()),
    }
}

pub fn set_preference(cx: &mut Cx, user: i64, name: String, value: String) -> Result<Reply> {
    let target = target_user(cx, user)?;
    super::email_pref::refuse_status(&name)?;
    validate_preference(&name, &value, cx.shared.notifier.is_some())?;
    let t = now();
    if name == PREF_EMAIL {
        return super::email_pref::set(cx, &target, &value, t);
    }
    let limits = &cx.shared.config.limits;
    cx.write(|w| {
        super::quota::preference(w, limits, target.id, &name, &value)?;
        n::set_pref(w, target.id, &name, &value, t)
    })?;
    Ok(Reply::Ok)
}

pub fn list_notifications(cx: &mut Cx) -> Result<Reply> {
    notifier(cx)?;
    let me = cx.user()?;
    cx.read(|r| {
        let mut lines = Vec::new();
        for watch in n::watches_of(r, me.id)? {
            match watch {
                Watch::Folder(f) if n::can_see_folder(r, &me, f)? => {
                    lines.push(Line::new("F").int(f as i64))
                }
                Watch::Issue(i) if n::can_see_issue(r, &me, i)? => {
                    lines.push(Line::new("I").int(i as i64))
                }
                _ => {}
            }
        }
        Ok(Reply::Lines(lines))
    })
}

fn status_flag(status: i64) -> Result<bool> {
    match status {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(Error::with(Code::InvalidValue, "status must be 0 or 1")),
    }
}

pub fn notify_folder(cx: &mut Cx, folder: i64, status: i64) -> Result<Reply> {
    notifier(cx)?;
    let me = cx.user()?;
    let on = status_flag(status)?;
    cx.write(|w| {
        if folder <= 0 || !n::can_see_folder(w, &me, folder as u64)? {
            return Err(Error::new(Code::UnknownFolder));
        }
        let watch = Watch::Folder(folder as u64);
        super::quota::watch(w, &cx.shared.config.limits, me.id, watch, on)?;
        n::set_watch(w, me.id, watch, on)
    })?;
    Ok(Reply::Ok)
}

pub fn notify_issue(cx: &mut Cx, issue: i64, status: i64) -> Result<Reply> {
    notifier(cx)?;
    let me = cx.user()?;
    let on = status_flag(status)?;
    cx.write(|w| {
        if issue <= 0 || !n::can_see_issue(w, &me, issue as u64)? {
            return Err(Error::new(Code::UnknownIssue));
        }
        let watch = Watch::Issue(issue as u64);
        super::quota::watch(w, &cx.shared.config.limits, me.id, watch, on)?;
        n::set_watch(w, me.id, watch, on)
    })?;
    Ok(Reply::Ok)
}

/// `D due lastSent`, then `N issueId folderId changes lastStamp 'name'` per issue that the
/// next pass would mail; NULL when nothing is pending.
pub fn preview_notifications(cx: &mut Cx, user: i64) -> Result<Reply> {
    let notifier = notifier(cx)?;
    cx.admin()?;
    let target = cx.read(|r| users::require(r, user))?;
    cx.read(|r| {
        let state = n::state(r, target.id)?;
        let Some(due) = state.due else {
            return Ok(Reply::Null);
        };
        let digest = digest::build(r, target.id, &notifier.fanout)?;
        let mut lines = vec![Line::new("D").int(due).int(state.last_sent.unwrap_or(0))];
        for issue in digest.issues {
            lines.push(
                Line::new("N")
                    .int(issue.issue as i64)
                    .int(issue.folder as i64)
                    .int(issue.changes as i64)
                    .int(issue.last_stamp as i64)
                    .str(issue.name),
            );
        }
        Ok(Reply::Lines(lines))
    })
}

/// `PASS users queued sent deferred failed`.
pub async fn run_notifications(cx: &mut Cx<'_>) -> Result<Reply> {
    let notifier = notifier(cx)?;
    cx.admin()?;
    let report = notifier.request_run().await?;
    Ok(Reply::Lines(vec![
        Line::new("PASS")
            .int(report.pass.users as i64)
            .int(report.pass.queued as i64)
            .int(report.send.sent as i64)
            .int(report.send.deferred as i64)
            .int(report.send.failed as i64),
    ]))
}

/// While the transport is backed off, first `T 'state' retryAt outages 'lastError'` (state
/// `open`, or `half-open` once `retryAt` has passed and the next round probes); then
/// `O id userId 'state' attempts nextAttempt 'to' 'subject' 'lastError'` per message.
pub fn list_outbox(cx: &mut Cx) -> Result<Reply> {
    let notifier = notifier(cx)?;
    cx.admin()?;
    let entries = cx.read(|r| n::outbox_all(r))?;
    let breaker = notifier.breaker();
    let transport = (!breaker.is_closed()).then(|| {
        let state = if breaker.holds(now()) {
            "open"
        } else {
            "half-open"
        };
        Line::new("T")
            .str(state)
            .int(breaker.retry_at)
            .int(breaker.failures)
            .str(one_line(&breaker.last_error))
    });
    Ok(Reply::Lines(
        transport
            .into_iter()
            .chain(entries.into_iter().map(|e| {
                Line::new("O")
                    .int(e.id as i64)
                    .int(e.user as i64)
                    .str(e.state.as_str())
                    .int(e.attempts)
                    .int(e.next_attempt)
                    .str(e.mail.to.join(", "))
                    .str(e.mail.subject)
                    .str(one_line(&e.last_error.unwrap_or_default()))
            }))
            .collect(),
    ))
}

/// The outbox id of RETRY / DELETE OUTBOX; `Unknown Message` for one that cannot exist.
fn message_id(message: i64) -> Result<u64> {
    u64::try_from(message)
        .ok()
        .filter(|&id| id > 0)
        .ok_or_else(|| Error::new(Code::UnknownMessage))
}

/// `RETRY OUTBOX id`: a queued or failed message is queued again, due now, with no attempts;
/// the worker is woken, and a transport backoff is lifted so it is tried at once.
pub fn retry_outbox(cx: &mut Cx, message: i64) -> Result<Reply> {
    let notifier = notifier(cx)?;
    let me = cx.admin()?;
    let id = message_id(message)?;
    let t = now();
    let old = cx
        .write(|w| n::outbox_retry(w, id, t))?
        .ok_or_else(|| Error::new(Code::UnknownMessage))?;
    let was = old.state.as_str();
    tracing::info!(id, user = %me.login, was, "outbox message retried");
    notifier.lift_breaker(t);
    notifier.kick(cx.wrote);
    Ok(Reply::Ok)
}

/// `DELETE OUTBOX id`: the message is dropped and never sent (unless a send of it is already
/// under way).
pub fn delete_outbox(cx: &mut Cx, message: i64) -> Result<Reply> {
    notifier(cx)?;
    let me = cx.admin()?;
    let id = message_id(message)?;
    if !cx.write(|w| n::outbox_delete(w, id))? {
        return Err(Error::new(Code::UnknownMessage));
    }
    tracing::info!(id, user = %me.login, "outbox message deleted");
    Ok(Reply::Ok)
}

/// Transport errors may span lines; a reply string may not hold control characters.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::validate_preference as v;
    use crate::error::Code;

    fn code(name: &str, value: &str, notify: bool) -> Option<Code> {
        v(name, value, notify).err().map(|e| e.code)
    }

    #[test]
    fn preference_rules() {
        assert_eq!(code("email", "a@example.org", true), None);
        assert_eq!(code("email", "nope", true), Some(Code::InvalidPreference));
        assert_eq!(code("email", "", true), None);
        assert_eq!(code("timezone", "+0130", true), None);
        assert_eq!(code("timezone", "Europe/Warsaw", true), None);
        assert_eq!(
            code("timezone", "+2500", true),
            Some(Code::InvalidPreference)
        );
        assert_eq!(
            code("notify-frequency", "WEEKLY day=1 time=\"07:00\"", true),
            None
        );
        assert_eq!(code("notify-frequency", "DAILY hour=\"08:30\"", true), None);
        assert_eq!(
            code("notify-frequency", "HOURLY", true),
            Some(Code::InvalidPreference)
        );
        assert_eq!(
            code("notify-frequency", "IMMEDIATELY", false),
            Some(Code::InvalidPreference)
        );
        assert_eq!(code("notify-own-changes", "1", true), None);
        assert_eq!(
            code("notify-own-changes", "yes", true),
            Some(Code::InvalidPreference)
        );
        assert_eq!(code("notify-format", "html", true), None);
        assert_eq!(
            code("notify-format", "pdf", true),
            Some(Code::InvalidPreference)
        );
        assert_eq!(code("x-anything", "\u{1F600} any\nthing", false), None);
        assert_eq!(code("x-wi-layout", "compact", false), None);
        assert_eq!(code("colour", "blue", true), Some(Code::InvalidPreference));
        assert_eq!(code("Email", "a@b.c", true), Some(Code::InvalidPreference));
        assert_eq!(code("", "x", true), Some(Code::InvalidPreference));
    }
}
