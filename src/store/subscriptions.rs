//! E-mail subscriptions of outside addresses (protocol-spec/subscriptions.md).
//!
//! Each address of a subscription is confirmed on its own, with its own token: an address
//! that has not confirmed receives nothing but its one confirmation mail, whoever else is in
//! the same `mailto:` URI (Zaqar let one `to` address vouch for every other one).
//!
//! Changes reach subscriptions the same way they reach watchers: [`fan_out`] runs inside the
//! batch that records the event and writes `sub-pending/<sub>/<stamp>` for every deliverable
//! subscription on the issue or its folder, so the delivery pass reads only what is pending.

use super::token::{self, TokenHash};
use super::{IssueEvent, Read, Writer, key, keys};
use crate::error::{Code, Error, Result};
use serde::{Deserialize, Serialize};

/// What a subscription follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    Folder(u64),
    Issue(u64),
}

/// Which header an address appears in; `Bcc` addresses are only in the envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    To,
    Cc,
    Bcc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    pub address: String,
    pub role: Role,
    /// SHA-256 of this address's confirmation token; cleared when it is used.
    pub confirm: Option<TokenHash>,
    /// When the address confirmed (Unix seconds); `None` while pending.
    pub confirmed: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: u64,
    /// The user who created it: the one whose access decides what is sent.
    pub owner: u64,
    pub target: Target,
    /// The URI and options exactly as given, for LIST SUBSCRIPTIONS.
    pub subscriber: String,
    pub options: String,
    /// Effective subject and body (options over URI).
    pub subject: Option<String>,
    pub body: Option<String>,
    pub recipients: Vec<Recipient>,
    /// Seconds; 0 = never expires.
    pub ttl: i64,
    pub created: i64,
    /// `created + ttl`, `None` when `ttl` is 0.
    pub expires: Option<i64>,
    /// Confirmation tokens are refused from this moment on.
    pub confirm_expires: i64,
}

/// The life-cycle state shown by LIST SUBSCRIPTIONS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// No address has confirmed yet: nothing is sent but the confirmation mails.
    Pending,
    /// At least one address confirmed; changes go to the confirmed addresses.
    Active,
    /// The TTL has run out: nothing is sent any more.
    Expired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Active => "active",
            Status::Expired => "expired",
        }
    }
}

impl Subscription {
    pub fn status(&self, now: i64) -> Status {
        if self.expires.is_some_and(|e| now >= e) {
            Status::Expired
        } else if self.recipients.iter().any(|r| r.confirmed.is_some()) {
            Status::Active
        } else {
            Status::Pending
        }
    }

    /// The confirmed addresses of one role.
    pub fn confirmed(&self, role: Role) -> Vec<String> {
        self.recipients
            .iter()
            .filter(|r| r.role == role && r.confirmed.is_some())
            .map(|r| r.address.clone())
            .collect()
    }
}

fn target_key(target: Target, id: u64) -> Vec<u8> {
    match target {
        Target::Folder(f) => key("folder-sub", &[f, id]),
        Target::Issue(i) => key("issue-sub", &[i, id]),
    }
}

/// `prefix/<a>/`: scans under one id without matching longer ids' keys.
fn under(prefix: &str, id: u64) -> Vec<u8> {
    let mut k = key(prefix, &[id]);
    k.push(b'/');
    k
}

pub fn get(r: &impl Read, id: i64) -> Result<Option<Subscription>> {
    if id <= 0 {
        return Ok(None);
    }
    r.get(&key("sub", &[id as u64]))
}

/// Stores a new subscription with its indexes; returns its id.
pub fn insert(w: &mut Writer, mut sub: Subscription) -> Result<u64> {
    let id = w.next_id("sub")?;
    sub.id = id;
    w.put(key("user-sub", &[sub.owner, id]), &())?;
    w.put(target_key(sub.target, id), &())?;
    w.put(key("sub", &[id]), &sub)?;
    Ok(id)
}

pub fn update(w: &mut Writer, sub: &Subscription) -> Result<()> {
    w.put(key("sub", &[sub.id]), sub)
}

/// Removes a subscription with its indexes, pending changes and unsubscribe tokens.
pub fn delete(w: &mut Writer, sub: &Subscription) -> Result<()> {
    w.remove(key("user-sub", &[sub.owner, sub.id]));
    w.remove(target_key(sub.target, sub.id));
    w.remove_prefix(&under("sub-pending", sub.id))?;
    w.remove_prefix(&under("sub-unsub", sub.id))?;
    w.remove_prefix(&under("sub-unsub-to", sub.id))?;
    w.remove(key("sub", &[sub.id]));
    Ok(())
}

/// The subscriptions a user created, in id order.
pub fn of_user(r: &impl Read, user: u64) -> Result<Vec<Subscription>> {
    let mut out = Vec::new();
    for (k, _) in r.scan_raw(&under("user-sub", user))? {
        if let Some(s) = get(r, keys::id_at("user-sub", &k, 1) as i64)? {
            out.push(s);
        }
    }
    Ok(out)
}

pub fn all(r: &impl Read) -> Result<Vec<Subscription>> {
    Ok(r.scan::<Subscription>(b"sub/")?
        .into_iter()
        .map(|(_, s)| s)
        .collect())
}

pub fn count_of_user(r: &impl Read, user: u64) -> Result<usize> {
    Ok(r.scan_raw(&under("user-sub", user))?.len())
}

/// Confirms the address whose token this is. Every address's hash is compared (in constant
/// time), so the time taken does not depend on which one matched. Fails with `Invalid Token`
/// when none matches or the confirmation window has closed, changing nothing.
pub fn confirm(sub: &mut Subscription, token: &str, now: i64) -> Result<()> {
    if now >= sub.confirm_expires || sub.status(now) == Status::Expired {
        return Err(Error::with(Code::InvalidToken, "the token has expired"));
    }
    let mut found = None;
    for (i, r) in sub.recipients.iter().enumerate() {
        if let Some(h) = &r.confirm
            && token::matches(token, h)
        {
            found = Some(i);
        }
    }
    let i = found.ok_or_else(|| Error::new(Code::InvalidToken))?;
    let r = &mut sub.recipients[i];
    r.confirm = None;
    r.confirmed = Some(now);
    Ok(())
}

fn unsub_key(sub: u64, hash: &TokenHash) -> Vec<u8> {
    let mut k = under("sub-unsub-to", sub);
    k.extend_from_slice(hash);
    k
}

/// A live unsubscribe token: which address it was mailed to, and until when it works.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsubscribeToken {
    pub address: String,
    pub until: i64,
}

/// Makes a new unsubscribe token for the mail to `address`, valid until `expires`; drops the
/// subscription's lapsed ones on the way. Only the hash is stored. Each recipient gets its
/// own token, so a link names and stops one address only.
pub fn new_unsubscribe_token(
    w: &mut Writer,
    sub: u64,
    address: &str,
    now: i64,
    expires: i64,
) -> Result<String> {
    for (k, t) in w.scan::<UnsubscribeToken>(&under("sub-unsub-to", sub))? {
        if t.until <= now {
            w.remove(k);
        }
    }
    let (token, hash) = token::generate();
    w.put(
        unsub_key(sub, &hash),
        &UnsubscribeToken {
            address: address.to_string(),
            until: expires,
        },
    )?;
    Ok(token)
}

/// The address a live unsubscribe token of subscription `sub` was sent to, if it is one and
/// that address still receives the subscription. The lookup is by the token's SHA-256,
/// which tells a guesser nothing about the stored values.
pub fn unsubscribe_address(
    r: &impl Read,
    sub: &Subscription,
    token: &str,
    now: i64,
) -> Result<Option<String>> {
    let hash = token::hash(token);
    Ok(r.get::<UnsubscribeToken>(&unsub_key(sub.id, &hash))?
        .filter(|t| now < t.until && sub.recipients.iter().any(|r| r.address == t.address))
        .map(|t| t.address))
}

/// Stops the subscription for one address (its unsubscribe link): the address and its
/// tokens go; the subscription goes with its last address. Returns whether it was deleted.
pub fn remove_recipient(w: &mut Writer, sub: &Subscription, address: &str) -> Result<bool> {
    let mut sub = sub.clone();
    sub.recipients.retain(|r| r.address != address);
    if sub.recipients.is_empty() {
        delete(w, &sub)?;
        return Ok(true);
    }
    for (k, t) in w.scan::<UnsubscribeToken>(&under("sub-unsub-to", sub.id))? {
        if t.address == address {
            w.remove(k);
        }
    }
    update(w, &sub)?;
    Ok(false)
}

/// Whether the subscription should receive changes now: not expired, and someone confirmed.
fn deliverable(sub: &Subscription, now: i64) -> bool {
    sub.status(now) == Status::Active
}

/// Marks `event` pending for every deliverable subscription on its issue or folder. Runs in
/// the event's own batch; costs one read per subscription on that issue or folder.
pub fn fan_out(w: &mut Writer, event: &IssueEvent) -> Result<()> {
    let mut ids = Vec::new();
    w.visit(&under("folder-sub", event.folder), &mut |k, _| {
        ids.push(keys::id_at("folder-sub", k, 1));
        Ok(())
    })?;
    w.visit(&under("issue-sub", event.issue), &mut |k, _| {
        ids.push(keys::id_at("issue-sub", k, 1));
        Ok(())
    })?;
    for id in ids {
        if let Some(sub) = get(w, id as i64)?
            && deliverable(&sub, event.time)
        {
            w.put(key("sub-pending", &[id, event.stamp]), &())?;
        }
    }
    Ok(())
}

/// Pending changes of every subscription, as (subscription, stamps oldest first), at most
/// `limit` subscriptions. Reads only pending entries.
pub fn pending(r: &impl Read, limit: usize) -> Result<Vec<(u64, Vec<u64>)>> {
    let mut out: Vec<(u64, Vec<u64>)> = Vec::new();
    for (k, _) in r.scan_raw(b"sub-pending/")? {
        let sub = keys::id_at("sub-pending", &k, 0);
        let stamp = keys::id_at("sub-pending", &k, 1);
        match out.last_mut() {
            Some((s, stamps)) if *s == sub => stamps.push(stamp),
            _ => {
                if out.len() == limit {
                    break;
                }
                out.push((sub, vec![stamp]));
            }
        }
    }
    Ok(out)
}

/// Drops the pending changes of a subscription (sent, or no longer deliverable).
pub fn clear_pending(w: &mut Writer, sub: u64) -> Result<()> {
    w.remove_prefix(&under("sub-pending", sub))
}

/// Drops one pending change: a pass removes exactly what it read, so a change recorded
/// between its read and its write waits for the next pass instead of being lost.
pub fn clear_one(w: &mut Writer, sub: u64, stamp: u64) {
    w.remove(key("sub-pending", &[sub, stamp]));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{EventKind, Store};

    fn sub(owner: u64, target: Target) -> Subscription {
        Subscription {
            id: 0,
            owner,
            target,
            subscriber: "mailto:a@example.com".into(),
            options: String::new(),
            subject: None,
            body: None,
            recipients: vec![Recipient {
                address: "a@example.com".into(),
                role: Role::To,
                confirm: Some(token::hash("t")),
                confirmed: None,
            }],
            ttl: 0,
            created: 100,
            expires: None,
            confirm_expires: 200,
        }
    }

    fn event(stamp: u64, issue: u64, folder: u64) -> IssueEvent {
        IssueEvent {
            stamp,
            issue,
            folder,
            project: 1,
            user: 1,
            time: 150,
            kind: EventKind::Commented,
        }
    }

    #[test]
    fn confirm_checks_token_and_window() {
        let mut s = sub(1, Target::Folder(1));
        assert_eq!(s.status(150), Status::Pending);
        assert_eq!(
            confirm(&mut s, "x", 150).unwrap_err().code,
            Code::InvalidToken
        );
        let before = s.clone();
        assert_eq!(
            confirm(&mut s, "t", 200).unwrap_err().code,
            Code::InvalidToken
        );
        assert_eq!(s, before, "a refused token changes nothing");
        confirm(&mut s, "t", 150).unwrap();
        assert_eq!(s.status(150), Status::Active);
        assert_eq!(
            confirm(&mut s, "t", 150).unwrap_err().code,
            Code::InvalidToken,
            "single use"
        );
        s.expires = Some(160);
        assert_eq!(s.status(160), Status::Expired);
    }

    #[test]
    fn fan_out_reaches_only_active_subscriptions_of_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        store
            .write(|w| {
                let pending_one = insert(w, sub(1, Target::Folder(7)))?;
                let mut active = sub(1, Target::Folder(7));
                active.recipients[0].confirmed = Some(120);
                let active = insert(w, active)?;
                let mut on_issue = sub(1, Target::Issue(9));
                on_issue.recipients[0].confirmed = Some(120);
                let on_issue = insert(w, on_issue)?;
                let mut other = sub(1, Target::Folder(8));
                other.recipients[0].confirmed = Some(120);
                insert(w, other)?;
                fan_out(w, &event(50, 9, 7))?;
                fan_out(w, &event(51, 10, 7))?;
                let p = pending(w, 10)?;
                assert_eq!(p, vec![(active, vec![50, 51]), (on_issue, vec![50])]);
                assert!(!p.iter().any(|(s, _)| *s == pending_one));
                assert_eq!(pending(w, 1)?.len(), 1);
                clear_pending(w, active)?;
                assert_eq!(pending(w, 10)?, vec![(on_issue, vec![50])]);
                let s = get(w, on_issue as i64)?.unwrap();
                let token = new_unsubscribe_token(w, on_issue, "a@example.com", 150, 300)?;
                let other = new_unsubscribe_token(w, on_issue, "gone@example.com", 150, 300)?;
                assert_eq!(
                    unsubscribe_address(w, &s, &token, 299)?.as_deref(),
                    Some("a@example.com")
                );
                assert_eq!(unsubscribe_address(w, &s, &token, 300)?, None);
                assert_eq!(
                    unsubscribe_address(w, &s, &other, 200)?,
                    None,
                    "not a recipient"
                );
                let a = get(w, active as i64)?.unwrap();
                assert_eq!(unsubscribe_address(w, &a, &token, 200)?, None);
                delete(w, &s)?;
                assert!(pending(w, 10)?.is_empty());
                assert_eq!(unsubscribe_address(w, &s, &token, 200)?, None);
                assert_eq!(of_user(w, 1)?.len(), 3);
                Ok(())
            })
            .unwrap();
    }
}
