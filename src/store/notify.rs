//! Notification records (protocol-spec/notifications.md): preferences, watches, pending
//! changes, each user's send state, the due index and the outbox.
//!
//! The fan-out happens at write time, inside the command's batch: [`fan_out`] writes one
//! `pending/<user>/<stamp>` entry per interested watcher and makes sure the user is in the due
//! index `due/<time>/<user>`. A digest pass then reads `due/` up to now and only the pending
//! entries of those users, so its cost follows the due users and their changes, not the size
//! of the database.

use super::outbox::OutgoingMail;
use super::users::{self, ACCESS_NONE, User};
use super::{IssueEvent, Read, Writer, key, keys};
use super::{issues, projects};
use crate::error::Result;
use crate::schedule::{Frequency, UserTz, next_slot};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What the fan-out needs to know from the configuration.
#[derive(Debug, Clone)]
pub struct FanoutConfig {
    /// Least time between two mails to one IMMEDIATELY user, seconds.
    pub min_interval: i64,
    /// Time zone of users without a `timezone` preference.
    pub server_tz: UserTz,
}

// ---------------------------------------------------------------- preferences

pub const PREF_EMAIL: &str = "email";
pub const PREF_TIMEZONE: &str = "timezone";
pub const PREF_FREQUENCY: &str = "notify-frequency";
pub const PREF_OWN_CHANGES: &str = "notify-own-changes";
pub const PREF_FORMAT: &str = "notify-format";

fn pref_prefix(user: u64) -> Vec<u8> {
    let mut k = key("pref", &[user]);
    k.push(b'/');
    k
}

fn pref_key(user: u64, name: &str) -> Vec<u8> {
    let mut k = pref_prefix(user);
    k.extend_from_slice(name.as_bytes());
    k
}

pub fn pref(r: &impl Read, user: u64, name: &str) -> Result<Option<String>> {
    r.get(&pref_key(user, name))
}

/// All preferences of a user, by name.
pub fn prefs(r: &impl Read, user: u64) -> Result<Vec<(String, String)>> {
    let prefix = pref_prefix(user);
    Ok(r.scan::<String>(&prefix)?
        .into_iter()
        .map(|(k, v)| (String::from_utf8_lossy(&k[prefix.len()..]).into_owned(), v))
        .collect())
}

/// Stores (or, for an empty value, removes) a preference that the caller validated. A change
/// of the schedule (frequency or time zone) moves the user's due entry at once.
pub fn set_pref(w: &mut Writer, user: u64, name: &str, value: &str, now: i64) -> Result<()> {
    if value.is_empty() {
        w.remove(pref_key(user, name));
    } else {
        w.put(pref_key(user, name), value)?;
    }
    if (name == PREF_FREQUENCY || name == PREF_TIMEZONE)
        && let Some(cfg) = w.fanout_config().cloned()
    {
        reschedule(w, user, &cfg, now)?;
    }
    Ok(())
}

/// The user's schedule: unset or unreadable frequency means IMMEDIATELY, unset time zone the
/// server's.
pub fn schedule_of(r: &impl Read, user: u64, cfg: &FanoutConfig) -> Result<(Frequency, UserTz)> {
    let freq = pref(r, user, PREF_FREQUENCY)?
        .and_then(|f| Frequency::parse(&f).ok())
        .unwrap_or(Frequency::Immediately);
    let tz = pref(r, user, PREF_TIMEZONE)?
        .and_then(|t| UserTz::parse(&t).ok())
        .unwrap_or(cfg.server_tz);
    Ok((freq, tz))
}

/// `notify-own-changes = 1`.
pub fn wants_own_changes(r: &impl Read, user: u64) -> Result<bool> {
    Ok(pref(r, user, PREF_OWN_CHANGES)?.as_deref() == Some("1"))
}

// ---------------------------------------------------------------- watches

/// What a watch is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    Folder(u64),
    Issue(u64),
}

impl Watch {
    fn keys(self, user: u64) -> (Vec<u8>, Vec<u8>) {
        match self {
            Watch::Folder(f) => (
                key("watch-folder", &[f, user]),
                key("user-watch-folder", &[user, f]),
            ),
            Watch::Issue(i) => (
                key("watch-issue", &[i, user]),
                key("user-watch-issue", &[user, i]),
            ),
        }
    }
}

/// Adds or removes a watch (0.8's NOTIFY FOLDER/ISSUE); repeating either is harmless. A
/// folder watch is a 1.1 alert, an issue watch a 1.1 subscription ([`super::alerts`]).
pub fn set_watch(w: &mut Writer, user: u64, watch: Watch, on: bool) -> Result<()> {
    match watch {
        Watch::Folder(f) => super::alerts::set_folder_watch(w, user, f, on),
        Watch::Issue(i) => super::alerts::set_subscription(w, user, i, on).map(drop),
    }
}

/// Writes or removes the watch index keys only.
pub fn set_watch_keys(w: &mut Writer, user: u64, watch: Watch, on: bool) -> Result<()> {
    let (by_object, by_user) = watch.keys(user);
    if on {
        w.put(by_object, &())?;
        w.put(by_user, &())?;
    } else {
        w.remove(by_object);
        w.remove(by_user);
    }
    Ok(())
}

pub fn is_watching(r: &impl Read, user: u64, watch: Watch) -> Result<bool> {
    r.exists(&watch.keys(user).0)
}

/// A user's watches: folders first, then issues, each in id order.
pub fn watches_of(r: &impl Read, user: u64) -> Result<Vec<Watch>> {
    let mut out = Vec::new();
    for (k, _) in r.scan_raw(&key("user-watch-folder", &[user]))? {
        out.push(Watch::Folder(keys::id_at("user-watch-folder", &k, 1)));
    }
    for (k, _) in r.scan_raw(&key("user-watch-issue", &[user]))? {
        out.push(Watch::Issue(keys::id_at("user-watch-issue", &k, 1)));
    }
    Ok(out)
}

/// The users watching an object.
pub fn watchers(r: &impl Read, watch: Watch) -> Result<Vec<u64>> {
    let (prefix, id) = match watch {
        Watch::Folder(f) => ("watch-folder", f),
        Watch::Issue(i) => ("watch-issue", i),
    };
    let mut out = Vec::new();
    r.visit(&key(prefix, &[id]), &mut |k, _| {
        out.push(keys::id_at(prefix, k, 1));
        Ok(())
    })?;
    Ok(out)
}

// ---------------------------------------------------------------- what users may see

/// Where an issue is now, with the names a digest shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuePlace {
    pub issue: u64,
    pub name: String,
    pub folder: u64,
    pub folder_name: String,
    pub project: u64,
    pub project_name: String,
}

/// The issue's current place, or None when it (or its folder or project) is gone.
pub fn issue_place(r: &impl Read, issue: u64) -> Result<Option<IssuePlace>> {
    let Some(i) = issues::get(r, issue as i64)? else {
        return Ok(None);
    };
    let Some(f) = projects::folder(r, i.folder as i64)? else {
        return Ok(None);
    };
    let Some(p) = projects::get(r, f.project as i64)? else {
        return Ok(None);
    };
    Ok(Some(IssuePlace {
        issue,
        name: i.name,
        folder: f.id,
        folder_name: f.name,
        project: p.id,
        project_name: p.name,
    }))
}

/// Whether `user` may see `project` now (the tracker's one visibility rule); a disabled
/// account sees nothing.
pub fn can_see(r: &impl Read, user: &User, project: u64) -> Result<bool> {
    Ok(user.access > ACCESS_NONE && projects::access(r, user, project)?.is_some())
}

/// Whether `user` may see folder `folder`.
pub fn can_see_folder(r: &impl Read, user: &User, folder: u64) -> Result<bool> {
    match projects::folder(r, folder as i64)? {
        Some(f) => can_see(r, user, f.project),
        None => Ok(false),
    }
}

/// Whether `user` may see issue `issue`.
pub fn can_see_issue(r: &impl Read, user: &User, issue: u64) -> Result<bool> {
    match issues::get(r, issue as i64)? {
        Some(i) => can_see_folder(r, user, i.folder),
        None => Ok(false),
    }
}

// ---------------------------------------------------------------- send state and due index

/// A user's notification bookkeeping (`nstate/<user>`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyState {
    /// When the last digest was queued.
    pub last_sent: Option<i64>,
    /// When the oldest change still pending arrived (None: nothing pending).
    pub pending_since: Option<i64>,
    /// The user's entry in the due index (None: not in it).
    pub due: Option<i64>,
}

pub fn state(r: &impl Read, user: u64) -> Result<NotifyState> {
    Ok(r.get(&key("nstate", &[user]))?.unwrap_or_default())
}

fn due_key(time: i64, user: u64) -> Vec<u8> {
    key("due", &[time.max(0) as u64, user])
}

/// Stores a user's state, keeping the due index in step with `new.due`.
fn put_state(w: &mut Writer, user: u64, old: &NotifyState, new: &NotifyState) -> Result<()> {
    if old.due != new.due {
        if let Some(t) = old.due {
            w.remove(due_key(t, user));
        }
        if let Some(t) = new.due {
            w.put(due_key(t, user), &())?;
        }
    }
    if *new == NotifyState::default() {
        w.remove(key("nstate", &[user]));
        Ok(())
    } else {
        w.put(key("nstate", &[user]), new)
    }
}

/// When a user with changes pending since `since` gets their digest.
///
/// IMMEDIATELY: at once, but not sooner than `min_interval` after the last mail. DAILY and
/// WEEKLY: at the first slot after both the last mail and the first pending change. So a
/// slot missed while the server was down is caught up once, at the first pass after it, and
/// a change made after today's slot waits for tomorrow's.
pub fn due_time(
    freq: Frequency,
    tz: UserTz,
    min_interval: i64,
    last_sent: Option<i64>,
    since: i64,
) -> i64 {
    match freq {
        Frequency::Immediately => match last_sent {
            Some(sent) => since.max(sent.saturating_add(min_interval)),
            None => since,
        },
        _ => {
            let after = since.max(last_sent.unwrap_or(i64::MIN));
            let after = DateTime::<Utc>::from_timestamp(after, 0).unwrap_or_default();
            next_slot(freq, tz, after).timestamp()
        }
    }
}

/// Recomputes the due entry of a user with pending changes (after a schedule change).
pub fn reschedule(w: &mut Writer, user: u64, cfg: &FanoutConfig, _now: i64) -> Result<()> {
    let old = state(w, user)?;
    let Some(since) = old.pending_since else {
        return Ok(());
    };
    let (freq, tz) = schedule_of(w, user, cfg)?;
    let new = NotifyState {
        due: Some(due_time(freq, tz, cfg.min_interval, old.last_sent, since)),
        ..old.clone()
    };
    put_state(w, user, &old, &new)
}

/// Writes the pending notifications an event causes: for each user watching the issue or its
/// folder, who has an e-mail address, may see the project, and did not make the change
/// (unless `notify-own-changes` is 1).
pub fn fan_out(w: &mut Writer, event: &IssueEvent, cfg: &FanoutConfig) -> Result<()> {
    let mut targets = watchers(w, Watch::Folder(event.folder))?;
    targets.extend(watchers(w, Watch::Issue(event.issue))?);
    // (user, the alert's own schedule): None = the user's notify-frequency.
    let mut targets: Vec<(u64, Option<Frequency>)> =
        targets.into_iter().map(|u| (u, None)).collect();
    targets.extend(super::alerts::targets(w, event)?);
    targets.sort_unstable_by_key(|&(u, _)| u);
    for (user_id, freq) in targets {
        if user_id == event.user && !wants_own_changes(w, user_id)? {
            continue;
        }
        let Some(user) = users::get(w, user_id as i64)? else {
            continue;
        };
        // Only a confirmed address collects changes (protocol-spec/notifications.md).
        if super::email::confirmed_email(w, user_id)?.is_none()
            || !can_see(w, &user, event.project)?
        {
            continue;
        }
        add_pending_on(w, user_id, event.stamp, event.time, cfg, freq)?;
    }
    Ok(())
}

/// Marks change `stamp` pending for `user` and puts the user in the due index if needed.
pub fn add_pending(
    w: &mut Writer,
    user: u64,
    stamp: u64,
    time: i64,
    cfg: &FanoutConfig,
) -> Result<()> {
    add_pending_on(w, user, stamp, time, cfg, None)
}

/// [`add_pending`] for a change that came through a 1.1 summary alert with its own
/// schedule: the user's one digest is due at the earliest time any of its changes asks for.
pub fn add_pending_on(
    w: &mut Writer,
    user: u64,
    stamp: u64,
    time: i64,
    cfg: &FanoutConfig,
    own: Option<Frequency>,
) -> Result<()> {
    w.put(key("pending", &[user, stamp]), &())?;
    let old = state(w, user)?;
    let since = old.pending_since.unwrap_or(time);
    let (freq, tz) = schedule_of(w, user, cfg)?;
    let due = match own {
        // A summary alert's slot counts from this change, not the oldest one pending.
        Some(f) => due_time(f, tz, cfg.min_interval, old.last_sent, time),
        None => due_time(freq, tz, cfg.min_interval, old.last_sent, since),
    };
    let new = NotifyState {
        pending_since: Some(since),
        due: Some(old.due.map_or(due, |d| d.min(due))),
        ..old.clone()
    };
    put_state(w, user, &old, &new)
}

/// The stamps pending for a user, oldest first.
pub fn pending(r: &impl Read, user: u64) -> Result<Vec<u64>> {
    Ok(r.scan_raw(&key("pending", &[user]))?
        .into_iter()
        .map(|(k, _)| keys::id_at("pending", &k, 1))
        .collect())
}

/// Up to `limit` entries of the due index at or before `now`: (due time, user), earliest first.
pub fn due_users(r: &impl Read, now: i64, limit: usize) -> Result<Vec<(i64, u64)>> {
    if now < 0 {
        return Ok(Vec::new());
    }
    let start = b"due/".to_vec();
    let end = key("due", &[now as u64 + 1]);
    Ok(r.range_raw(&start, &end, limit)?
        .into_iter()
        .map(|(k, _)| (keys::id_at("due", &k, 0) as i64, keys::id_at("due", &k, 1)))
        .collect())
}

/// Ends a user's turn in a pass, in the caller's batch (the pass writes one per chunk of
/// users): queues the digest (if any), removes the pending entries it covered (`done`),
/// records the send time, and leaves the user in the due index only if changes arrived
/// meanwhile. Returns the outbox id.
pub fn finish_user(
    w: &mut Writer,
    user: u64,
    done: &[u64],
    mail: Option<OutgoingMail>,
    now: i64,
    cfg: &FanoutConfig,
) -> Result<Option<u64>> {
    for stamp in done {
        w.remove(key("pending", &[user, *stamp]));
    }
    let old = state(w, user)?;
    let mut new = old.clone();
    let queued = match mail {
        Some(mail) => {
            new.last_sent = Some(now);
            Some(queue_mail(w, user, mail, now)?)
        }
        None => None,
    };
    if w.any(&key("pending", &[user]))? {
        let since = now.max(old.pending_since.unwrap_or(now));
        let (freq, tz) = schedule_of(w, user, cfg)?;
        new.pending_since = Some(since);
        new.due = Some(due_time(freq, tz, cfg.min_interval, new.last_sent, since));
    } else {
        new.pending_since = None;
        new.due = None;
    }
    put_state(w, user, &old, &new)?;
    Ok(queued)
}

/// Drops a stale due entry (its user's state no longer points at it).
pub fn drop_due(w: &mut Writer, time: i64, user: u64) {
    w.remove(due_key(time, user));
}

// ---------------------------------------------------------------- outbox

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutboxState {
    /// Waiting for its (next) attempt at `next_attempt`.
    Queued,
    /// Given up: a permanent failure, or too many transient ones. Kept for admins.
    Failed,
}

impl OutboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Queued => "queued",
            OutboxState::Failed => "failed",
        }
    }
}

/// A message in the durable outbox (`outbox/<id>`; queued ones also in
/// `outbox-queue/<next attempt>/<id>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub id: u64,
    pub user: u64,
    pub created: i64,
    pub mail: OutgoingMail,
    pub state: OutboxState,
    pub attempts: u32,
    pub next_attempt: i64,
    pub last_error: Option<String>,
}

fn queue_key(time: i64, id: u64) -> Vec<u8> {
    key("outbox-queue", &[time.max(0) as u64, id])
}

/// Adds a message to the outbox, due at once.
pub fn queue_mail(w: &mut Writer, user: u64, mail: OutgoingMail, now: i64) -> Result<u64> {
    let id = w.next_id("outbox")?;
    let entry = OutboxEntry {
        id,
        user,
        created: now,
        mail,
        state: OutboxState::Queued,
        attempts: 0,
        next_attempt: now,
        last_error: None,
    };
    if !entry.mail.envelope.is_empty() {
        w.put(key("outbox-rcpt", &[id]), &entry.mail.envelope)?;
    }
    w.put(queue_key(now, id), &())?;
    w.put(key("outbox", &[id]), &entry)?;
    Ok(id)
}

/// The explicit envelope of a message lives under `outbox-rcpt/<id>`, not in the entry, so
/// that entries stored by earlier versions still decode.
fn with_envelope(r: &impl Read, mut entry: OutboxEntry) -> Result<OutboxEntry> {
    entry.mail.envelope = r.get(&key("outbox-rcpt", &[entry.id]))?.unwrap_or_default();
    Ok(entry)
}

pub fn outbox_entry(r: &impl Read, id: u64) -> Result<Option<OutboxEntry>> {
    r.get(&key("outbox", &[id]))?
        .map(|e| with_envelope(r, e))
        .transpose()
}

/// Every outbox entry, queued and failed, in id order.
pub fn outbox_all(r: &impl Read) -> Result<Vec<OutboxEntry>> {
    r.scan::<OutboxEntry>(b"outbox/")?
        .into_iter()
        .map(|(_, e)| with_envelope(r, e))
        .collect()
}

/// Ids of queued messages whose next attempt is at or before `now`, earliest first.
pub fn outbox_due(r: &impl Read, now: i64, limit: usize) -> Result<Vec<u64>> {
    if now < 0 {
        return Ok(Vec::new());
    }
    let end = key("outbox-queue", &[now as u64 + 1]);
    Ok(r.range_raw(&key("outbox-queue", &[]), &end, limit)?
        .into_iter()
        .map(|(k, _)| keys::id_at("outbox-queue", &k, 1))
        .collect())
}

/// The earliest next attempt among queued messages.
pub fn outbox_next_attempt(r: &impl Read) -> Result<Option<i64>> {
    let start = key("outbox-queue", &[]);
    let end = key("outbox-queue", &[u64::MAX, u64::MAX]);
    Ok(r.range_raw(&start, &end, 1)?
        .first()
        .map(|(k, _)| keys::id_at("outbox-queue", k, 0) as i64))
}

/// Removes a sent message.
pub fn outbox_remove(w: &mut Writer, entry: &OutboxEntry) {
    w.remove(queue_key(entry.next_attempt, entry.id));
    w.remove(key("outbox-rcpt", &[entry.id]));
    w.remove(key("outbox", &[entry.id]));
}

/// Stores an entry after an attempt, keeping the queue index in step.
pub fn outbox_update(w: &mut Writer, old: &OutboxEntry, new: &OutboxEntry) -> Result<()> {
    if old.state == OutboxState::Queued {
        w.remove(queue_key(old.next_attempt, old.id));
    }
    if new.state == OutboxState::Queued {
        w.put(queue_key(new.next_attempt, new.id), &())?;
    }
    w.put(key("outbox", &[new.id]), new)
}

/// RETRY OUTBOX: puts a queued or failed message back in the queue, due at `now`, as if it
/// had just been queued (no attempts, no error). Returns the entry as it was; None for an
/// unknown id.
pub fn outbox_retry(w: &mut Writer, id: u64, now: i64) -> Result<Option<OutboxEntry>> {
    let Some(old) = outbox_entry(w, id)? else {
        return Ok(None);
    };
    let new = OutboxEntry {
        state: OutboxState::Queued,
        attempts: 0,
        next_attempt: now,
        last_error: None,
        ..old.clone()
    };
    outbox_update(w, &old, &new)?;
    Ok(Some(old))
}

/// DELETE OUTBOX: drops a message, queued or failed. False for an unknown id.
pub fn outbox_delete(w: &mut Writer, id: u64) -> Result<bool> {
    match outbox_entry(w, id)? {
        Some(entry) => {
            outbox_remove(w, &entry);
            Ok(true)
        }
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{EventKind, Store};

    fn issue(id: u64, folder: u64) -> issues::Issue {
        issues::Issue {
            id,
            folder,
            name: format!("Issue {id}"),
            stamp: id,
            created: 0,
            created_by: 1,
            modified: 0,
            modified_by: 1,
        }
    }

    fn cfg() -> FanoutConfig {
        FanoutConfig {
            min_interval: 300,
            server_tz: UserTz::Offset(0),
        }
    }

    /// Project 1 with folder 1 holding issue 1; users 2 (member) and 3 (not a member).
    fn setup() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        store.enable_fanout(cfg());
        store
            .write(|w| {
                users::insert(w, "admin", "Admin", users::ACCESS_ADMIN, "x".into())?;
                users::insert(w, "a", "A", 1, "x".into())?;
                users::insert(w, "b", "B", 1, "x".into())?;
                projects::insert(w, "Web")?;
                projects::insert_folder(w, 1, 1, "Bugs")?;
                w.put(key("issue", &[1]), &issue(1, 1))?;
                projects::set_member(w, 1, 2, 1)?;
                for u in [1, 2, 3] {
                    set_pref(w, u, PREF_EMAIL, "x@example.org", 0)?;
                    crate::store::email::mark_confirmed(w, u, "x@example.org")?;
                }
                Ok(())
            })
            .unwrap();
        (dir, store)
    }

    fn event(stamp: u64, user: u64, time: i64) -> IssueEvent {
        IssueEvent {
            stamp,
            issue: 1,
            folder: 1,
            project: 1,
            user,
            time,
            kind: EventKind::Commented,
        }
    }

    #[test]
    fn fan_out_reaches_visible_watchers_but_not_the_author() {
        let (_d, store) = setup();
        store
            .write(|w| {
                for u in [1, 2, 3] {
                    set_watch(w, u, Watch::Folder(1), true)?;
                }
                set_watch(w, 2, Watch::Issue(1), true)?;
                w.record_event(&event(10, 1, 1000))
            })
            .unwrap();
        store
            .read(|r| {
                assert_eq!(pending(r, 1)?, Vec::<u64>::new(), "own change");
                assert_eq!(pending(r, 2)?, vec![10], "deduplicated watcher");
                assert_eq!(pending(r, 3)?, Vec::<u64>::new(), "not a member");
                assert_eq!(due_users(r, 999, 10)?, vec![]);
                assert_eq!(due_users(r, 1000, 10)?, vec![(1000, 2)]);
                Ok(())
            })
            .unwrap();
        // Own changes on request; a second change leaves the due entry alone.
        store
            .write(|w| {
                set_pref(w, 1, PREF_OWN_CHANGES, "1", 0)?;
                w.record_event(&event(11, 1, 1100))
            })
            .unwrap();
        store
            .read(|r| {
                assert_eq!(pending(r, 1)?, vec![11]);
                assert_eq!(pending(r, 2)?, vec![10, 11]);
                assert_eq!(due_users(r, 2000, 10)?, vec![(1000, 2), (1100, 1)]);
                Ok(())
            })
            .unwrap();
    }

    fn test_mail(date: i64) -> OutgoingMail {
        OutgoingMail {
            from: "a@b.c".into(),
            to: vec!["x@example.org".into()],
            cc: vec![],
            bcc: vec![],
            subject: "s".into(),
            text: Some("t".into()),
            html: None,
            message_id: "m@b.c".into(),
            in_reply_to: None,
            references: vec![],
            list_id: None,
            list_unsubscribe: None,
            date,
            envelope: vec![],
        }
    }

    #[test]
    fn finishing_a_user_queues_mail_and_applies_the_min_interval() {
        let (_d, store) = setup();
        store
            .write(|w| {
                set_watch(w, 2, Watch::Issue(1), true)?;
                w.record_event(&event(10, 1, 1000))
            })
            .unwrap();
        let mail = test_mail(1010);
        store
            .write(|w| {
                // A change arriving while the digest was built stays pending.
                w.record_event(&event(12, 1, 1005))?;
                finish_user(w, 2, &[10], Some(mail), 1010, &cfg())
            })
            .unwrap();
        store
            .read(|r| {
                assert_eq!(pending(r, 2)?, vec![12]);
                assert_eq!(state(r, 2)?.last_sent, Some(1010));
                assert_eq!(due_users(r, 10_000, 10)?, vec![(1310, 2)]);
                assert_eq!(outbox_due(r, 1010, 10)?, vec![1]);
                assert_eq!(outbox_next_attempt(r)?, Some(1010));
                Ok(())
            })
            .unwrap();
        store
            .write(|w| finish_user(w, 2, &[12], None, 1400, &cfg()))
            .unwrap();
        store
            .read(|r| {
                assert_eq!(due_users(r, i64::MAX / 2, 10)?, vec![]);
                assert_eq!(state(r, 2)?.last_sent, Some(1010));
                assert!(!r.any(b"nstate/")? || state(r, 2)?.due.is_none());
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn an_explicit_envelope_is_kept_beside_the_entry_and_removed_with_it() {
        let (_d, store) = setup();
        let mut mail = test_mail(100);
        mail.envelope = vec!["one@example.org".into()];
        let id = store.write(|w| queue_mail(w, 2, mail, 100)).unwrap().0;
        store
            .write(|w| {
                let e = outbox_entry(w, id)?.unwrap();
                assert_eq!(e.mail.envelope, ["one@example.org"]);
                assert_eq!(outbox_all(w)?[0].mail.envelope, ["one@example.org"]);
                assert!(outbox_delete(w, id)?);
                assert!(w.get::<Vec<String>>(&key("outbox-rcpt", &[id]))?.is_none());
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn retry_and_delete_keep_the_queue_index_in_step() {
        let (_d, store) = setup();
        let mail = test_mail(100);
        let (a, b) = store
            .write(|w| {
                Ok((
                    queue_mail(w, 2, mail.clone(), 100)?,
                    queue_mail(w, 2, mail, 100)?,
                ))
            })
            .unwrap()
            .0;
        // `a` failed after 3 attempts; `b` backed off to 5000.
        store
            .write(|w| {
                let old = outbox_entry(w, a)?.unwrap();
                let failed = OutboxEntry {
                    state: OutboxState::Failed,
                    attempts: 3,
                    last_error: Some("550".into()),
                    ..old.clone()
                };
                outbox_update(w, &old, &failed)?;
                let old = outbox_entry(w, b)?.unwrap();
                let later = OutboxEntry {
                    attempts: 2,
                    next_attempt: 5000,
                    ..old.clone()
                };
                outbox_update(w, &old, &later)
            })
            .unwrap();
        assert_eq!(store.read(|r| outbox_due(r, 1000, 10)).unwrap(), []);
        let was = store
            .write(|w| {
                assert!(outbox_retry(w, a, 200)?.is_some());
                outbox_retry(w, b, 200)
            })
            .unwrap()
            .0
            .unwrap();
        assert_eq!((was.attempts, was.next_attempt), (2, 5000));
        store
            .read(|r| {
                assert_eq!(outbox_due(r, 200, 10)?, vec![a, b]);
                for id in [a, b] {
                    let e = outbox_entry(r, id)?.unwrap();
                    assert_eq!(
                        (e.state, e.attempts, e.next_attempt),
                        (OutboxState::Queued, 0, 200)
                    );
                    assert_eq!(e.last_error, None);
                }
                assert_eq!(outbox_next_attempt(r)?, Some(200));
                Ok(())
            })
            .unwrap();
        store
            .write(|w| {
                assert!(outbox_delete(w, a)?);
                assert!(outbox_delete(w, b)?);
                assert!(!outbox_delete(w, b)?);
                assert!(outbox_retry(w, a, 300)?.is_none());
                Ok(())
            })
            .unwrap();
        store
            .read(|r| {
                assert_eq!(outbox_all(r)?, vec![]);
                assert_eq!(outbox_next_attempt(r)?, None, "no stale queue entry");
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn schedule_changes_move_the_due_entry() {
        let (_d, store) = setup();
        let t0 = 1_700_000_000; // 2023-11-14 22:13:20 UTC
        store
            .write(|w| {
                set_watch(w, 2, Watch::Folder(1), true)?;
                w.record_event(&event(10, 1, t0))
            })
            .unwrap();
        assert_eq!(store.read(|r| due_users(r, t0, 10)).unwrap(), vec![(t0, 2)]);
        store
            .write(|w| set_pref(w, 2, PREF_FREQUENCY, "DAILY time=\"08:00\"", t0))
            .unwrap();
        let next_8am = 1_700_035_200; // 2023-11-15 08:00 UTC
        assert_eq!(
            store.read(|r| due_users(r, i64::MAX / 2, 10)).unwrap(),
            vec![(next_8am, 2)]
        );
        store
            .write(|w| set_pref(w, 2, PREF_TIMEZONE, "+0100", t0))
            .unwrap();
        assert_eq!(
            store.read(|r| due_users(r, i64::MAX / 2, 10)).unwrap(),
            vec![(next_8am - 3600, 2)]
        );
    }

    #[test]
    fn writer_range_sees_its_own_writes() {
        let (_d, store) = setup();
        store
            .write(|w| {
                w.put(key("due", &[5, 1]), &())?;
                w.put(key("due", &[6, 1]), &())?;
                Ok(())
            })
            .unwrap();
        store
            .write(|w| {
                w.remove(key("due", &[5, 1]));
                w.put(key("due", &[7, 1]), &())?;
                assert_eq!(due_users(w, 100, 1)?, vec![(6, 1)]);
                assert_eq!(due_users(w, 100, 10)?, vec![(6, 1), (7, 1)]);
                Ok(())
            })
            .unwrap();
    }
}
