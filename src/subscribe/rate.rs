//! The budget of confirmation mails (protocol-spec/limits.md): at most
//! `[subscribe] confirm_mails_per_address` per recipient and `confirm_mails_per_user` per
//! user within `confirm_mail_window_secs`.
//!
//! The counts live in the store under keys of their own, apart from the subscriptions and
//! preferences that caused the mails, so deleting a subscription, or asking again with a
//! slightly different URI, never gives the budget back: a confirmation request must not be
//! a way to mail a stranger over and over.

use crate::config::SubscribeConfig;
use crate::error::{Code, Error, Result};
use crate::store::{Read, Writer, key, key_str};

/// The address as its mailbox sees it: lower case, and without a `+tag` in the local part,
/// because most mail systems deliver `victim+1@x` and `victim+2@x` to the same person.
/// Provider quirks beyond that (dots ignored by some) are not undone.
pub fn normalise(address: &str) -> String {
    let lower = address.trim().to_lowercase();
    match lower.rsplit_once('@') {
        Some((local, domain)) => {
            let local = match local.split_once('+') {
                Some((base, _)) if !base.is_empty() => base,
                _ => local,
            };
            format!("{local}@{domain}")
        }
        None => lower,
    }
}

fn address_key(address: &str) -> Vec<u8> {
    key_str("confirm-rate", &normalise(address))
}

fn user_key(user: u64) -> Vec<u8> {
    key("confirm-rate-user", &[user])
}

/// The send times still inside the window at `now`.
fn recent(r: &impl Read, k: &[u8], now: i64, window: i64) -> Result<Vec<i64>> {
    let times: Vec<i64> = r.get(k)?.unwrap_or_default();
    Ok(times
        .into_iter()
        .filter(|t| *t > now.saturating_sub(window))
        .collect())
}

/// Takes one confirmation mail to each of `addresses` (already deduplicated) out of the
/// budget, for mails caused by `user`, in the caller's batch; refuses with `350 Too Many
/// Attempts`, charging nothing, when any address or the user would go over.
pub fn charge(
    w: &mut Writer,
    cfg: &SubscribeConfig,
    user: u64,
    addresses: &[String],
    now: i64,
) -> Result<()> {
    let window = cfg.confirm_mail_window_secs.min(i64::MAX as u64) as i64;
    let per_address = cfg.confirm_mails_per_address as usize;
    let per_user = cfg.confirm_mails_per_user as usize;
    let hours = ((window + 3599) / 3600).max(1);
    let mut charged = Vec::new();
    for a in addresses {
        let k = address_key(a);
        let times = recent(w, &k, now, window)?;
        // Two spellings of one mailbox in one request count twice.
        let already = charged.iter().filter(|(c, _)| *c == k).count();
        if per_address > 0 && times.len() + already >= per_address {
            tracing::warn!(user, "confirmation mail limit per address reached");
            return Err(Error::with(
                Code::TooManyAttempts,
                format!(
                    "{a} has been sent {per_address} confirmation mails in the last {hours} \
                     hours, the most allowed; try again later"
                ),
            ));
        }
        charged.push((k, times));
    }
    let uk = user_key(user);
    let mut mine = recent(w, &uk, now, window)?;
    if per_user > 0 && mine.len() + addresses.len() > per_user {
        tracing::warn!(user, "confirmation mail limit per user reached");
        return Err(Error::with(
            Code::TooManyAttempts,
            format!(
                "you may cause at most {per_user} confirmation mails in {hours} hours; try \
                 again later"
            ),
        ));
    }
    // Later entries for the same key carry the earlier ones' charges.
    let mut written: Vec<(Vec<u8>, Vec<i64>)> = Vec::new();
    for (k, times) in charged {
        let mut times = match written.iter().position(|(w, _)| *w == k) {
            Some(i) => written.remove(i).1,
            None => times,
        };
        times.push(now);
        written.push((k, times));
    }
    for (k, times) in written {
        w.put(k, &times)?;
    }
    mine.extend(std::iter::repeat_n(now, addresses.len()));
    w.put(uk, &mine)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn normalise_folds_case_and_tags() {
        assert_eq!(normalise("Victim+x1@Example.ORG"), "victim@example.org");
        assert_eq!(normalise("+only@example.org"), "+only@example.org");
        assert_eq!(normalise("a.b@example.org"), "a.b@example.org");
    }

    #[test]
    fn budget_survives_and_refuses_without_charging() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let cfg = SubscribeConfig {
            confirm_mails_per_address: 2,
            confirm_mails_per_user: 3,
            ..Default::default()
        };
        store
            .write(|w| {
                charge(w, &cfg, 1, &["v@x.org".into()], 100)?;
                charge(w, &cfg, 1, &["V+a@x.org".into()], 101)?;
                let e = charge(w, &cfg, 2, &["v+b@X.org".into()], 102).unwrap_err();
                assert_eq!(e.code, Code::TooManyAttempts);
                // The window slides: a day later the address may be mailed again.
                charge(w, &cfg, 2, &["v@x.org".into()], 100 + 86400)?;
                // The user budget: one left for user 1, so two addresses are refused.
                let e = charge(w, &cfg, 1, &["a@x.org".into(), "b@x.org".into()], 103);
                assert_eq!(e.unwrap_err().code, Code::TooManyAttempts);
                charge(w, &cfg, 1, &["a@x.org".into()], 103)?;
                Ok(())
            })
            .unwrap();
    }
}
