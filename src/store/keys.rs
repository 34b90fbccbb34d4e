//! Key layout of the single `data` tree. Every key is an ASCII prefix followed by
//! big-endian ids (so scans come back in id order) or a UTF-8 string.
//!
//! | key | value |
//! |---|---|
//! | `meta/uuid`, `meta/version` | server UUID string, schema version |
//! | `ctr/<name>` | u64 counter of ids (`ctr/stamp`, the global stamp, is no longer written: the newest `event/` key is the last stamp, [`super::stamps`]) |
//! | `user/<id>` | [`super::users::User`] |
//! | `user-login/<login>` | user id (logins are unique) |
//! | `user-name/<name>` | user id (display names are unique) |
//! | `user-epoch/<id>` | u64 session epoch, raised to end the user's sessions ([`crate::sessions`]) |
//! | `member/<project>/<user>` | access level u8 (membership, by project) |
//! | `user-member/<user>/<project>` | access level u8 (the same, by user) |
//! | `event/<stamp>` | [`super::IssueEvent`] (the issue change log; never removed: it names the issue of every item id) |
//! | `type/<id>` | [`super::types::IssueType`] |
//! | `type-name/<name>` | type id (type names are unique) |
//! | `attr/<id>` | [`super::types::Attribute`] |
//! | `type-attr/<type>/<attr>` | `()` (attributes of a type) |
//! | `type-folder/<type>/<folder>` | `()` (folders using a type: DELETE TYPE refuses) |
//! | `project/<id>` | [`super::projects::Project`] |
//! | `project-name/<name>` | project id (project names are unique) |
//! | `project-folder/<project>/<folder>` | `()` (folders of a project) |
//! | `folder/<id>` | [`super::projects::Folder`] (its stored stamp is not kept: the folder stamp comes from `folder-stamp/`, [`super::stamps`]) |
//! | `folder-stamp/<folder>/<stamp>` | issue id: each issue of the folder under its current stamp (the highest is the folder stamp) |
//! | `issue/<id>` | [`super::issues::Issue`] |
//! | `value/<issue>/<attr>` | value string (only non-empty values are stored) |
//! | `row/<issue>/<stamp>` | [`super::issues::Row`]: change, comment or attachment |
//! | `description/<issue>` | [`super::descriptions::Description`] (1.1 only; its stamp is an `event/` with kind `Described`) |
//! | `folder-gone/<folder>/<stamp>` | [`super::removal::Stub`]: an issue moved or deleted out of the folder at that stamp (it keeps the folder stamp) |
//! | `row-edit/<issue>/<row>`, `row-gone/<issue>/<row>` | [`super::removal::Edit`] of a comment or file's last edit; the stamp u64 of its deletion |
//! | `move/<issue>/<stamp>`, `description-gone/<issue>` | [`super::removal::Move`]; the stamp of a description's deletion |
//! | `user-temp/<user>` | `()`: the password is temporary (1.1's LOGIN answers 352) |
//! | `project-public/<id>`, `project-archived/<id>`, `project-desc/<id>`, `project-desc-gone/<id>` | 1.1's project flags and description ([`super::project_meta`]) |
//! | `comment-format/<comment>` | u8 text format 1 of a comment added through 1.1 (absent: 0) |
//! | `read/<user>/<issue>` | [`super::read_state::State`]: the stamp read up to, under a state id from `ctr/read-state` |
//! | `read-seq/<user>/<state>` | issue id: a user's read states by state id (LIST STATES) |
//! | `attachment-file/<file>` | `()` (files under `attachments/` that are recorded: the rest are swept at start) |
//! | `item/<stamp>`, `attr-value/<attr>/<issue>`, `attr-change/<attr>/<stamp>` | no longer written: indices of older versions, read where they remain (FIND ITEM finds an item's issue in `event/<stamp>`; DELETE ATTRIBUTE reads all values and rows) |
//! | `pref/<user>/<name>` | preference value string ([`super::notify`]) |
//! | `watch-folder/<folder>/<user>`, `user-watch-folder/<user>/<folder>` | `()` (folder watches) |
//! | `watch-issue/<issue>/<user>`, `user-watch-issue/<user>/<issue>` | `()` (issue watches) |
//! | `pending/<user>/<stamp>` | `()`: change `stamp` waits for the user's next digest |
//! | `nstate/<user>` | [`super::notify::NotifyState`]: last sent, pending since, due time |
//! | `due/<unix time>/<user>` | `()`: the due index the digest pass scans up to now |
//! | `outbox/<id>` | [`super::notify::OutboxEntry`]: a queued or failed message |
//! | `outbox-queue/<next attempt>/<id>` | `()`: queued messages by next attempt |
//! | `outbox-rcpt/<id>` | `Vec<String>`: the explicit envelope of a message (one copy per subscription recipient) |
//! | `sub/<id>` | [`super::subscriptions::Subscription`] (recipients with hashed confirm tokens) |
//! | `user-sub/<user>/<sub>` | `()` (subscriptions a user created) |
//! | `folder-sub/<folder>/<sub>`, `issue-sub/<issue>/<sub>` | `()` (subscriptions by target: fan-out) |
//! | `sub-pending/<sub>/<stamp>` | `()` (changes waiting for delivery to a subscription) |
//! | `sub-unsub/<sub>/<sha256 of token>` | no longer written: one token per mail for all its recipients (removed with the subscription) |
//! | `sub-unsub-to/<sub>/<sha256 of token>` | [`super::subscriptions::UnsubscribeToken`]: a live unsubscribe token and the one address it was mailed to |
//! | `confirm-rate/<normalised address>`, `confirm-rate-user/<user>` | `Vec<i64>`: times of the confirmation mails in the window (the mail budget, `subscribe/rate.rs`) |
//! | `email-ok/<user>` | the user's confirmed `email` address ([`crate::store::email`]) |
//! | `view/<id>` | [`super::views::View`]; `view-settings/<type>`: `Vec<(String, String)>` |
//! | `alert/<id>` | [`super::alerts::Alert`]; `alert-folder/<folder>/<id>`, `alert-type/<type>/<id>`: `()` (alerts that mail changes, for the fan-out) |
//! | `report-state/<alert>/<user>` | `ReportState` (`notify/report.rs`): the last report slot handled for one recipient |
//! | `wsub/<user>/<issue>` | `u64`: the 1.1 subscription id of an issue watch; `wsub-id/<id>`: `(user, issue)` |
//! | `email-pending/<user>` | [`crate::store::email::Pending`]: an address waiting for its confirmation |

/// `prefix` followed by `/` and each id as 8 big-endian bytes.
pub fn key(prefix: &str, ids: &[u64]) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + ids.len() * 9);
    k.extend_from_slice(prefix.as_bytes());
    for id in ids {
        k.push(b'/');
        k.extend_from_slice(&id.to_be_bytes());
    }
    k
}

/// `prefix` followed by `/` and a string.
pub fn key_str(prefix: &str, s: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + 1 + s.len());
    k.extend_from_slice(prefix.as_bytes());
    k.push(b'/');
    k.extend_from_slice(s.as_bytes());
    k
}

/// The id stored at `index` (0-based) among the ids following `prefix/` in `key`.
pub fn id_at(prefix: &str, key: &[u8], index: usize) -> u64 {
    let start = prefix.len() + 1 + index * 9;
    let bytes: [u8; 8] = key[start..start + 8].try_into().expect("key layout");
    u64::from_be_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_numerically_and_read_back() {
        let a = key("member", &[2, 1]);
        let b = key("member", &[10, 0]);
        assert!(a < b);
        assert_eq!(id_at("member", &a, 0), 2);
        assert_eq!(id_at("member", &a, 1), 1);
    }
}
