//! 1.1 user preferences: SET PREFERENCE and LIST USERS' `P` lines, over the preference
//! records 0.8 uses (protocol-spec/webissues-1.1.md, "Preferences"). `email` is 0.8's
//! `email` (with its confirmation rule), `time_zone` is 0.8's `timezone`; the display
//! preferences are kept under their 1.1 names.

use super::handlers::check_name;
use super::reply::{Code11, Out, Reply11};
use crate::commands::Cx;
use crate::store::issues::now;
use crate::store::notify::{self as n, PREF_EMAIL, PREF_TIMEZONE};
use crate::store::users::{self, ACCESS_ADMIN, User};
use crate::store::{Read, Writer};

type R = Result<Reply11, Code11>;

/// The keys 1.1 knows, in the order LIST USERS gives them.
const KEYS: [&str; 15] = [
    "language",
    "time_zone",
    "number_format",
    "date_format",
    "time_format",
    "first_day_of_week",
    "project_page_size",
    "folder_page_size",
    "history_page_size",
    "history_order",
    "history_filter",
    "default_format",
    "email",
    "notify_details",
    "notify_no_read",
];

const NUMBER_FORMATS: [&str; 5] = ["dot1", "dot2", "dot3", "com1", "com2"];
const DATE_FORMATS: [&str; 13] = [
    "mdy1", "mdy2", "dmy1", "dmy2", "dmy3", "dmy4", "dmy5", "dmy6", "dmy7", "ymd1", "ymd2", "ymd3",
    "ymd4",
];
const TIME_FORMATS: [&str; 4] = ["12h1", "24h1", "24h2", "24h3"];

/// Where a 1.1 key is stored.
fn stored_name(key: &str) -> &str {
    match key {
        "email" => PREF_EMAIL,
        "time_zone" => PREF_TIMEZONE,
        k => k,
    }
}

/// A decimal integer in normal form within `min..=max` (332, 328, 329).
fn number(value: &str, min: i64, max: i64) -> Result<(), Code11> {
    let v: i64 = value.parse().map_err(|_| Code11::InvalidFormat)?;
    if v.to_string() != value {
        return Err(Code11::InvalidFormat);
    }
    if v < min {
        return Err(Code11::NumberTooLittle);
    }
    if v > max {
        return Err(Code11::NumberTooGreat);
    }
    Ok(())
}

fn check(key: &str, value: &str) -> Result<(), Code11> {
    let one_of = |list: &[&str]| {
        if list.contains(&value) {
            Ok(())
        } else {
            Err(Code11::NoMatchingItem)
        }
    };
    if !KEYS.contains(&key) {
        return Err(Code11::InvalidPreference);
    }
    if value.is_empty() {
        return Ok(());
    }
    match key {
        "language" if !super::settings::language_offered(value) => Err(Code11::NoMatchingItem),
        "time_zone" if !super::settings::zone_offered(value) => Err(Code11::NoMatchingItem),
        "number_format" => one_of(&NUMBER_FORMATS),
        "date_format" => one_of(&DATE_FORMATS),
        "time_format" => one_of(&TIME_FORMATS),
        "first_day_of_week" => number(value, 0, 6),
        "project_page_size" | "folder_page_size" | "history_page_size" => number(value, 1, 100),
        "history_order" if value != "asc" && value != "desc" => Err(Code11::InvalidSetting),
        "history_filter" => number(value, 1, 4),
        "default_format" | "notify_details" | "notify_no_read" => number(value, 0, 1),
        "email" if !crate::email_address::is_valid_email(value) => Err(Code11::InvalidEmail),
        _ => Ok(()),
    }
}

/// Another user already has the address (compared without case).
fn email_taken(r: &impl Read, user: u64, value: &str) -> crate::error::Result<bool> {
    for u in users::all(r)? {
        if u.id != user
            && n::pref(r, u.id, PREF_EMAIL)?.is_some_and(|e| e.eq_ignore_ascii_case(value))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

pub fn set(cx: &mut Cx, user: i64, key: String, value: String) -> R {
    let me = cx.user()?;
    if me.access != ACCESS_ADMIN && me.id as i64 != user {
        return Err(Code11::AccessDenied);
    }
    let target: User = cx
        .read(|r| users::get(r, user))?
        .ok_or(Code11::UnknownUser)?;
    if !value.is_empty() {
        check_name(&value, 255)?;
    }
    check(&key, &value)?;
    let name = stored_name(&key);
    let (old, taken) = cx.read(|r| {
        Ok((
            n::pref(r, target.id, name)?.unwrap_or_default(),
            key == "email" && !value.is_empty() && email_taken(r, target.id, &value)?,
        ))
    })?;
    if old == value {
        return Ok(Reply11::Null);
    }
    if taken {
        return Err(Code11::EmailExists);
    }
    if key == "email" {
        crate::commands::email_pref::set(cx, &target, &value, now())?;
        return Ok(Reply11::Ok);
    }
    let limits = cx.shared.config.limits.clone();
    let t = now();
    cx.write(|w: &mut Writer| {
        crate::commands::quota::preference(w, &limits, target.id, name, &value)?;
        n::set_pref(w, target.id, name, &value, t)
    })?;
    Ok(Reply11::Ok)
}

/// LIST USERS' `P` lines: every user's for a system administrator, else the caller's own;
/// only the 1.1 keys (a 0.8 `timezone` that is an offset, not a zone name, is left out).
pub fn list_lines(r: &impl Read, me: &User, out: &mut Vec<u8>) -> crate::error::Result<()> {
    let who: Vec<u64> = if me.access == ACCESS_ADMIN {
        users::all(r)?.into_iter().map(|u| u.id).collect()
    } else {
        vec![me.id]
    };
    for u in who {
        for key in KEYS {
            let Some(v) = n::pref(r, u, stored_name(key))? else {
                continue;
            };
            if key == "time_zone" && !super::settings::zone_offered(&v) {
                continue;
            }
            Out::line(out, "P").int(u as i64).str(key).str(&v).end();
        }
    }
    Ok(())
}
