//! 1.1 alerts and issue subscriptions, stored as the one notification model that 0.8's
//! watches also use (protocol-spec/notifications.md, "One model for 0.8 and 1.1").
//!
//! `alert/<id>` holds an [`Alert`]; `alert-folder/<folder>/<id>` and `alert-type/<type>/<id>`
//! index the mailing ones for the fan-out. A personal folder alert on all issues with
//! immediate mail is exactly a 0.8 folder watch: it is written with the watch keys too, so
//! 0.8's LIST NOTIFICATIONS shows it and NOTIFY FOLDER creates or deletes it.
//! `wsub/<user>/<issue>` → id and `wsub-id/<id>` → (user, issue) number the issue watches
//! for 1.1's ADD/DELETE SUBSCRIPTION and LIST STATES.

use super::notify::{self, Watch};
use super::users::User;
use super::{Read, Writer, issues, key, keys, read_state};
use crate::error::Result;
use crate::protocol::definition::{MetaValue, parse_definition};
use crate::schedule::Frequency;
use serde::{Deserialize, Serialize};

/// `alertEmail`: no mail, immediate, summary of notifications, summary report.
pub const EMAIL_NONE: u8 = 0;
pub const EMAIL_IMMEDIATE: u8 = 1;
/// A summary report: the view's full issue list at each chosen hour (src/notify/report.rs),
/// not changes; never in the change fan-out.
pub const EMAIL_REPORT: u8 = 3;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub id: u64,
    /// `None` for a public alert (everybody who can see the folder).
    pub owner: Option<u64>,
    /// 0 for a global (per type) alert.
    pub folder: u64,
    /// 0 for a folder alert.
    pub type_id: u64,
    /// 0 = all issues.
    pub view: u64,
    pub email: u8,
    pub days: String,
    pub hours: String,
}

impl Alert {
    /// The alert a 0.8 folder watch stands for.
    fn is_watch(&self) -> bool {
        self.owner.is_some() && self.folder != 0 && self.view == 0 && self.email == EMAIL_IMMEDIATE
    }

    /// When its mail goes: `None` = the owner's `notify-frequency` (immediate alerts, as a
    /// 0.8 watch); a summary alert has its own days and hours.
    pub fn schedule(&self) -> Option<Frequency> {
        if self.email <= EMAIL_IMMEDIATE {
            return None;
        }
        let mask = |s: &str| {
            s.split(',')
                .filter_map(|x| x.parse::<u32>().ok())
                .fold(0u32, |m, x| m | 1u32.checked_shl(x).unwrap_or(0))
        };
        Some(Frequency::Summary {
            days: mask(&self.days) as u8,
            hours: mask(&self.hours),
        })
    }

    fn index_key(&self) -> Vec<u8> {
        if self.folder != 0 {
            key("alert-folder", &[self.folder, self.id])
        } else {
            key("alert-type", &[self.type_id, self.id])
        }
    }
}

pub fn get(r: &impl Read, id: i64) -> Result<Option<Alert>> {
    if id <= 0 {
        return Ok(None);
    }
    r.get(&key("alert", &[id as u64]))
}

pub fn all(r: &impl Read) -> Result<Vec<Alert>> {
    Ok(r.scan::<Alert>(b"alert/")?
        .into_iter()
        .map(|(_, a)| a)
        .collect())
}

/// The alerts of one scope: public (`None`) or one user's personal alerts, by the
/// `alert-by/<owner or 0>/<id>` index.
pub fn of(r: &impl Read, owner: Option<u64>) -> Result<Vec<Alert>> {
    let mut out = Vec::new();
    for (k, _) in r.scan_raw(&key("alert-by", &[owner.unwrap_or(0)]))? {
        if let Some(a) = get(r, keys::id_at("alert-by", &k, 1) as i64)? {
            out.push(a);
        }
    }
    Ok(out)
}

/// Stores a new or changed alert with its indexes and its watch keys.
pub fn put(w: &mut Writer, a: &Alert) -> Result<()> {
    if let Some(old) = get(w, a.id as i64)? {
        unindex(w, &old)?;
    }
    w.put(key("alert", &[a.id]), a)?;
    w.put(key("alert-by", &[a.owner.unwrap_or(0), a.id]), &())?;
    if a.email != EMAIL_NONE && a.email != EMAIL_REPORT {
        w.put(a.index_key(), &())?;
    }
    if a.is_watch()
        && let Some(owner) = a.owner
    {
        notify::set_watch_keys(w, owner, Watch::Folder(a.folder), true)?;
    }
    Ok(())
}

fn unindex(w: &mut Writer, a: &Alert) -> Result<()> {
    w.remove(a.index_key());
    if a.is_watch()
        && let Some(owner) = a.owner
    {
        notify::set_watch_keys(w, owner, Watch::Folder(a.folder), false)?;
    }
    Ok(())
}

pub fn delete(w: &mut Writer, a: &Alert) -> Result<()> {
    unindex(w, a)?;
    w.remove_prefix(&key("report-state", &[a.id]))?;
    w.remove(key("alert", &[a.id]));
    w.remove(key("alert-by", &[a.owner.unwrap_or(0), a.id]));
    Ok(())
}

/// Deletes the alerts `f` picks (a deleted folder's, a deleted type's).
pub fn delete_where(w: &mut Writer, f: impl Fn(&Alert) -> bool) -> Result<()> {
    for a in all(w)? {
        if f(&a) {
            delete(w, &a)?;
        }
    }
    Ok(())
}

/// 0.8's NOTIFY FOLDER: creates or deletes the personal all-issues immediate alert.
pub fn set_folder_watch(w: &mut Writer, user: u64, folder: u64, on: bool) -> Result<()> {
    let mine = of(w, Some(user))?
        .into_iter()
        .find(|a| a.folder == folder && a.view == 0);
    match (mine, on) {
        (Some(a), true) if a.email == EMAIL_IMMEDIATE => Ok(()),
        (Some(mut a), true) => {
            a.email = EMAIL_IMMEDIATE;
            a.days.clear();
            a.hours.clear();
            put(w, &a)
        }
        (Some(a), false) if a.email == EMAIL_IMMEDIATE => delete(w, &a),
        (None, true) => {
            let id = w.next_id("alert")?;
            put(
                w,
                &Alert {
                    id,
                    owner: Some(user),
                    folder,
                    type_id: 0,
                    view: 0,
                    email: EMAIL_IMMEDIATE,
                    days: String::new(),
                    hours: String::new(),
                },
            )
        }
        // Removing a watch the user does not have (or a 1.1 alert that does not mail
        // immediately) changes nothing, as in 0.8.
        _ => notify::set_watch_keys(w, user, Watch::Folder(folder), false),
    }
}

/// The summary-report alerts (`alertEmail` 3). Read from the alerts themselves, not an
/// index, so report alerts stored before reports were delivered are found too; a server
/// holds few alerts and a pass reads them once.
pub fn reports(r: &impl Read) -> Result<Vec<Alert>> {
    let mut out = all(r)?;
    out.retain(|a| a.email == EMAIL_REPORT);
    Ok(out)
}

/// The alerts on a folder (of type `type_id`) that mail changes: its own and its type's.
pub fn mailing(r: &impl Read, folder: u64, type_id: u64) -> Result<Vec<Alert>> {
    let mut out = Vec::new();
    for (prefix, id) in [("alert-folder", folder), ("alert-type", type_id)] {
        for (k, _) in r.scan_raw(&key(prefix, &[id]))? {
            // A report is never in this index; the check keeps it out of the fan-out
            // whatever an older store holds.
            if let Some(a) = get(r, keys::id_at(prefix, &k, 1) as i64)?
                && a.email != EMAIL_REPORT
            {
                out.push(a);
            }
        }
    }
    Ok(out)
}

/// The users the mailing alerts on the event's folder reach, each with the alert's own
/// schedule (None: the user's). The 0.8 watches among them are found by the caller through
/// the watch keys; a view's filters are checked against the issue as it is now.
pub fn targets(w: &Writer, event: &super::IssueEvent) -> Result<Vec<(u64, Option<Frequency>)>> {
    let Some(folder) = super::projects::folder(w, event.folder as i64)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for a in mailing(w, folder.id, folder.type_id)? {
        if a.is_watch() {
            continue;
        }
        let users = match a.owner {
            Some(u) => super::users::get(w, u as i64)?.into_iter().collect(),
            None => super::users::all(w)?,
        };
        let view = match a.view {
            0 => None,
            v => super::views::get(w, v as i64)?,
        };
        for u in users {
            if let Some(v) = &view
                && !matches(w, &v.definition, event.issue, &u)?
            {
                continue;
            }
            out.push((u.id, a.schedule()));
        }
    }
    Ok(out)
}

/// Whether one of the mailing alerts `user` gets still covers the issue (the digest
/// leaves out changes nobody asks for any more).
pub fn covers(r: &impl Read, user: &User, issue: u64, folder: u64) -> Result<bool> {
    let Some(f) = super::projects::folder(r, folder as i64)? else {
        return Ok(false);
    };
    for a in mailing(r, f.id, f.type_id)? {
        if a.owner.is_some_and(|o| o != user.id) {
            continue;
        }
        let view = match a.view {
            0 => return Ok(true),
            v => super::views::get(r, v as i64)?,
        };
        if view.is_none_or(|v| matches(r, &v.definition, issue, user).unwrap_or(false)) {
            return Ok(true);
        }
    }
    Ok(false)
}

// ---------------------------------------------------------------- subscriptions

/// The user's subscription id for an issue, if subscribed.
pub fn subscription(r: &impl Read, user: u64, issue: u64) -> Result<Option<u64>> {
    r.get(&key("wsub", &[user, issue]))
}

/// How many issues the user is subscribed to.
pub fn subscriptions_of(r: &impl Read, user: u64) -> Result<usize> {
    let mut n = 0;
    r.visit(&key("wsub", &[user]), &mut |_, _| {
        n += 1;
        Ok(())
    })?;
    Ok(n)
}

pub fn subscription_by_id(r: &impl Read, id: i64) -> Result<Option<(u64, u64)>> {
    if id <= 0 {
        return Ok(None);
    }
    r.get(&key("wsub-id", &[id as u64]))
}

/// Subscribes or unsubscribes (both dialects: 1.1's ADD/DELETE SUBSCRIPTION, 0.8's NOTIFY
/// ISSUE); the issue's read state takes a new state id so LIST STATES reports the change.
pub fn set_subscription(w: &mut Writer, user: u64, issue: u64, on: bool) -> Result<Option<u64>> {
    let old = subscription(w, user, issue)?;
    notify::set_watch_keys(w, user, Watch::Issue(issue), on)?;
    let id = match (old, on) {
        (Some(id), true) => return Ok(Some(id)),
        (None, false) => return Ok(None),
        (Some(id), false) => {
            w.remove(key("wsub", &[user, issue]));
            w.remove(key("wsub-id", &[id]));
            None
        }
        (None, true) => {
            let id = w.next_id("subscription")?;
            w.put(key("wsub", &[user, issue]), &id)?;
            w.put(key("wsub-id", &[id]), &(user, issue))?;
            Some(id)
        }
    };
    let read = read_state::get(w, user, issue)?.map_or(0, |s| s.read);
    read_state::set(w, user, issue, read)?;
    Ok(id)
}

// ---------------------------------------------------------------- view filters

/// Whether an issue matches a view definition's filters for `user` (`[Me]` is the user's
/// name). Comparisons follow the client: text case-insensitively, numbers as numbers,
/// dates as their `yyyy-mm-dd` text; an unreadable definition matches everything. A filter
/// on an attribute that no longer exists (or is not of the issue's type) is ignored, as
/// the reference server ignores it (protocol-spec/webissues-1.1.md, "Views").
pub fn matches(r: &impl Read, definition: &str, issue: u64, user: &User) -> Result<bool> {
    let Ok(def) = parse_definition(definition) else {
        return Ok(true);
    };
    let Some(MetaValue::Array(filters)) = def.get("filters") else {
        return Ok(true);
    };
    let Some(i) = issues::get(r, issue as i64)? else {
        return Ok(false);
    };
    for f in filters {
        let Ok(f) = parse_definition(f) else { continue };
        let column = match f.get("column") {
            Some(MetaValue::Int(c)) => *c,
            _ => continue,
        };
        let value = match f.get("value") {
            Some(MetaValue::Str(v)) => v.replace("[Me]", &user.name),
            _ => String::new(),
        };
        let user_name = |id: u64| -> Result<String> {
            Ok(super::users::get(r, id as i64)?
                .map(|u| u.name)
                .unwrap_or_default())
        };
        let actual = match column {
            0 => i.name.clone(),
            1 => i.id.to_string(),
            2 => date(i.created),
            3 => user_name(i.created_by)?,
            4 => date(i.modified),
            5 => user_name(i.modified_by)?,
            c if c > 1000 => {
                let attribute = (c - 1000) as u64;
                if !attribute_of_issue(r, attribute, i.folder)? {
                    continue;
                }
                issues::value(r, issue, attribute)?
            }
            _ => continue,
        };
        if !compare(&f.kind, &actual, &value) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether `attribute` exists and belongs to the type of `folder`.
pub fn attribute_of_issue(r: &impl Read, attribute: u64, folder: u64) -> Result<bool> {
    let Some(a) = super::types::attribute(r, attribute as i64)? else {
        return Ok(false);
    };
    Ok(super::projects::folder(r, folder as i64)?.is_some_and(|f| f.type_id == a.type_id))
}

fn date(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn compare(op: &str, actual: &str, value: &str) -> bool {
    let (a, v) = (actual.to_lowercase(), value.to_lowercase());
    let order = match (a.parse::<f64>(), v.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y),
        _ => Some(a.cmp(&v)),
    };
    use std::cmp::Ordering::*;
    match op {
        "EQ" => order == Some(Equal),
        "NEQ" => order != Some(Equal),
        "CON" => a.contains(&v),
        "BEG" => a.starts_with(&v),
        "END" => a.ends_with(&v),
        "IN" => a.split(", ").any(|x| x == v),
        "GT" => order == Some(Greater),
        "LT" => order == Some(Less),
        "GTE" => matches!(order, Some(Greater | Equal)),
        "LTE" => matches!(order, Some(Less | Equal)),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::UserTz;
    use crate::store::notify::{FanoutConfig, PREF_TIMEZONE, due_users, pending, set_pref};
    use crate::store::{EventKind, IssueEvent, Store, projects, users};

    fn utc(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }

    /// Folder 1 of project 1 holds issue 1 (Status = Active); users 2 and 3 are members
    /// with confirmed addresses, user 3 in Europe/Warsaw.
    fn setup() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        store.enable_fanout(FanoutConfig {
            min_interval: 0,
            server_tz: UserTz::Offset(0),
        });
        store
            .write(|w| {
                users::insert(w, "admin", "Admin", users::ACCESS_ADMIN, "x".into())?;
                users::insert(w, "a", "A", 1, "x".into())?;
                users::insert(w, "b", "B", 1, "x".into())?;
                crate::store::types::insert(w, "Bugs")?;
                crate::store::types::insert_attribute(w, 1, "Status", "TEXT")?;
                projects::insert(w, "Web")?;
                projects::insert_folder(w, 1, 1, "Bugs")?;
                w.put(
                    key("issue", &[1]),
                    &issues::Issue {
                        id: 1,
                        folder: 1,
                        name: "Issue".into(),
                        stamp: 1,
                        created: 0,
                        created_by: 1,
                        modified: 0,
                        modified_by: 1,
                    },
                )?;
                w.put(key("value", &[1, 1]), &"Active".to_string())?;
                for u in [2, 3] {
                    projects::set_member(w, 1, u, 1)?;
                    set_pref(w, u, crate::store::notify::PREF_EMAIL, "x@example.org", 0)?;
                    crate::store::email::mark_confirmed(w, u, "x@example.org")?;
                }
                set_pref(w, 3, PREF_TIMEZONE, "Europe/Warsaw", 0)?;
                Ok(())
            })
            .unwrap();
        (dir, store)
    }

    fn event(stamp: u64, time: i64) -> IssueEvent {
        IssueEvent {
            stamp,
            issue: 1,
            folder: 1,
            project: 1,
            user: 1,
            time,
            kind: EventKind::Commented,
        }
    }

    fn alert(id: u64, owner: u64, view: u64, email: u8, days: &str, hours: &str) -> Alert {
        Alert {
            id,
            owner: Some(owner),
            folder: 1,
            type_id: 0,
            view,
            email,
            days: days.into(),
            hours: hours.into(),
        }
    }

    /// An immediate alert is due at the change; a summary alert at its next hour in the
    /// owner's zone: 08:00 in Warsaw is 07:00 UTC on Saturday 28 March 2026 and 06:00 UTC
    /// on Sunday 29 March, after the clocks went forward.
    #[test]
    fn alerts_fan_out_on_their_own_schedule_across_dst() {
        let (_d, store) = setup();
        let saturday_noon = utc("2026-03-28T12:00:00Z");
        store
            .write(|w| {
                put(w, &alert(1, 2, 0, 1, "", ""))?;
                put(w, &alert(2, 3, 0, 2, "0,1,2,3,4,5,6", "8"))?;
                w.record_event(&event(10, saturday_noon))
            })
            .unwrap();
        store
            .read(|r| {
                assert!(
                    notify::is_watching(r, 2, Watch::Folder(1))?,
                    "alert 1 is a watch"
                );
                assert!(!notify::is_watching(r, 3, Watch::Folder(1))?);
                assert_eq!(pending(r, 2)?, vec![10]);
                assert_eq!(pending(r, 3)?, vec![10]);
                assert_eq!(
                    due_users(r, i64::MAX / 2, 10)?,
                    vec![(saturday_noon, 2), (utc("2026-03-29T06:00:00Z"), 3)]
                );
                Ok(())
            })
            .unwrap();
        // 0.8's NOTIFY FOLDER 1 0 deletes alert 1; NOTIFY FOLDER 1 1 creates it again.
        store
            .write(|w| notify::set_watch(w, 2, Watch::Folder(1), false))
            .unwrap();
        store
            .read(|r| {
                assert_eq!(get(r, 1)?, None);
                assert!(!notify::is_watching(r, 2, Watch::Folder(1))?);
                Ok(())
            })
            .unwrap();
        store
            .write(|w| notify::set_watch(w, 2, Watch::Folder(1), true))
            .unwrap();
        store
            .read(|r| {
                let mine: Vec<_> = all(r)?.into_iter().filter(|a| a.owner == Some(2)).collect();
                assert_eq!(mine.len(), 1);
                assert_eq!((mine[0].folder, mine[0].view, mine[0].email), (1, 0, 1));
                Ok(())
            })
            .unwrap();
    }

    /// A view's filters decide: a change to an issue outside the view mails nobody.
    #[test]
    fn a_view_alert_mails_only_matching_issues() {
        let (_d, store) = setup();
        store
            .write(|w| {
                crate::store::views::insert(
                    w,
                    1,
                    "Closed",
                    r#"VIEW columns="1,0" sort-column=1 filters={"EQ column=1001 value=\"Closed\""}"#,
                    None,
                )?;
                put(w, &alert(1, 2, 1, 1, "", ""))?;
                w.record_event(&event(10, 1000))
            })
            .unwrap();
        store
            .read(|r| {
                assert_eq!(pending(r, 2)?, Vec::<u64>::new());
                Ok(())
            })
            .unwrap();
        store
            .write(|w| {
                w.put(key("value", &[1, 1]), &"closed".to_string())?;
                w.record_event(&event(11, 1100))
            })
            .unwrap();
        store
            .read(|r| {
                assert_eq!(pending(r, 2)?, vec![11]);
                Ok(())
            })
            .unwrap();
    }

    /// 0.8's NOTIFY ISSUE and 1.1's subscriptions are one record.
    #[test]
    fn a_subscription_is_an_issue_watch() {
        let (_d, store) = setup();
        store
            .write(|w| notify::set_watch(w, 2, Watch::Issue(1), true))
            .unwrap();
        store
            .read(|r| {
                let id = subscription(r, 2, 1)?.unwrap();
                assert_eq!(subscription_by_id(r, id as i64)?, Some((2, 1)));
                assert_eq!(read_state::since(r, 2, 0)?.len(), 1, "LIST STATES sees it");
                Ok(())
            })
            .unwrap();
        store.write(|w| set_subscription(w, 2, 1, false)).unwrap();
        store
            .read(|r| {
                assert!(!notify::is_watching(r, 2, Watch::Issue(1))?);
                assert_eq!(subscription(r, 2, 1)?, None);
                Ok(())
            })
            .unwrap();
    }

    /// A filter on an attribute that is gone (or of another type) no longer narrows the
    /// view, as in the reference; one on an existing attribute still does.
    #[test]
    fn a_filter_on_a_deleted_attribute_is_ignored() {
        let (_d, store) = setup();
        store
            .read(|r| {
                let user = users::get(r, 2)?.unwrap();
                let def = |f: &str| format!("VIEW columns=\"1,0\" sort-column=1 filters={{{f}}}");
                let gone = def(r#""EQ column=1009 value=\"x\"""#);
                let closed = def(r#""EQ column=1001 value=\"Closed\"""#);
                assert!(matches(r, &gone, 1, &user)?);
                assert!(!matches(r, &closed, 1, &user)?);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn filter_operators() {
        assert!(compare("EQ", "Active", "active"));
        assert!(!compare("EQ", "10", "9"));
        assert!(compare("GT", "10", "9"), "numbers compare as numbers");
        assert!(compare("LT", "2026-03-01", "2026-03-28"));
        assert!(compare("CON", "Crash on start", "ON ST"));
        assert!(compare("NEQ", "", "x"));
    }

    #[test]
    fn summary_schedule_masks() {
        let a = Alert {
            id: 1,
            owner: Some(2),
            folder: 1,
            type_id: 0,
            view: 0,
            email: 2,
            days: "0,6".into(),
            hours: "8,16".into(),
        };
        assert_eq!(
            a.schedule(),
            Some(Frequency::Summary {
                days: 0b100_0001,
                hours: (1 << 8) | (1 << 16)
            })
        );
        assert!(a.clone().schedule().is_some() && !a.is_watch());
    }
}
