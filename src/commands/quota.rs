//! What one user may store outside issues (protocol-spec/limits.md, "Per-user storage"):
//! preferences by count, by the size of one value and by the bytes of all of them, and
//! notification watches by count. Subscriptions are bounded by `[subscribe] max_per_user`.
//! Checked inside the write, so commands racing on several connections cannot pass
//! together.

use crate::config::LimitsConfig;
use crate::error::{Code, Error, Result};
use crate::store::notify::{self as n, Watch};
use crate::store::{Read, key};

/// Whether `user` may set preference `name` to `value` (an empty value removes it and is
/// always allowed). A limit of 0 is off.
pub fn preference(
    r: &impl Read,
    limits: &LimitsConfig,
    user: u64,
    name: &str,
    value: &str,
) -> Result<()> {
    if value.is_empty() {
        return Ok(());
    }
    let over = |limit: usize, n: usize| limit != 0 && n > limit;
    if over(limits.max_preference_bytes, value.len()) {
        return Err(Error::with(
            Code::InvalidPreference,
            format!(
                "a value is at most {} bytes (this one is {})",
                limits.max_preference_bytes,
                value.len()
            ),
        ));
    }
    let others: Vec<(String, String)> = n::prefs(r, user)?
        .into_iter()
        .filter(|(k, _)| k != name)
        .collect();
    if over(limits.max_preferences_per_user, others.len() + 1) {
        return Err(Error::with(
            Code::InvalidPreference,
            format!(
                "at most {} preferences per user; clear some first",
                limits.max_preferences_per_user
            ),
        ));
    }
    let bytes: usize = others.iter().map(|(k, v)| k.len() + v.len()).sum();
    if over(
        limits.max_preferences_bytes_per_user,
        bytes + name.len() + value.len(),
    ) {
        return Err(Error::with(
            Code::InvalidPreference,
            format!(
                "the preferences of one user hold at most {} bytes; clear some first",
                limits.max_preferences_bytes_per_user
            ),
        ));
    }
    Ok(())
}

/// Whether `user` may start watching `watch` (already watching, or stopping, is allowed).
pub fn watch(
    r: &impl Read,
    limits: &LimitsConfig,
    user: u64,
    watch: Watch,
    on: bool,
) -> Result<()> {
    let max = limits.max_watches_per_user;
    if !on || max == 0 || n::is_watching(r, user, watch)? {
        return Ok(());
    }
    let mut count = 0;
    for family in ["user-watch-folder", "user-watch-issue"] {
        r.visit(&key(family, &[user]), &mut |_, _| {
            count += 1;
            Ok(())
        })?;
    }
    if count >= max {
        return Err(Error::with(
            Code::InvalidValue,
            format!("at most {max} watches per user; stop some first"),
        ));
    }
    Ok(())
}
