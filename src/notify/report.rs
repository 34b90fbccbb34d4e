//! 1.1 summary reports (`alertEmail` 3): at each chosen hour of each chosen day, in the
//! recipient's time zone, the full list of the issues the alert's view shows in its folder
//! (or in every folder of its type), not the changes (protocol-spec/notifications.md,
//! "Summary reports").
//!
//! Reports run in the digest pass, leave through the same outbox and use the same slot rules
//! (`schedule::last_slot` / `next_slot`). Each recipient of a report alert has a
//! [`ReportState`] under `report-state/<alert>/<user>`: a pass skips them until `next`
//! (recomputed when their zone changed) and sends when a slot passed since `last`. A missed
//! slot (downtime) gives one report, not one per slot; the first pass that sees a
//! recipient only records it, so no report is sent for a slot before the alert existed.

use crate::error::Result;
use crate::mail::OutgoingMail;
use crate::mail::templates::{ReportIssueView, ReportView};
use crate::notify::Notifier;
use crate::notify::digest::{Format, id_host, local_time};
use crate::protocol::definition::{MetaValue, parse_definition};
use crate::schedule::{self, UserTz};
use crate::store::alerts::{self, Alert};
use crate::store::notify::{self as n, PREF_FORMAT, PREF_TIMEZONE};
use crate::store::projects::{self, Folder};
use crate::store::users::{self, ACCESS_NONE, User};
use crate::store::{Read, Store, issues, key, types, views};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Most issues listed in one report (the reference lists at most 1000 too); the mail says
/// how many more match.
pub const MAX_ISSUES: usize = 1000;
/// Longest value shown in a cell, in characters (as the reference's mail).
pub const CELL_CHARS: usize = 60;

/// One recipient's bookkeeping for one report alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportState {
    /// When this recipient was last handled (a report sent, or none due).
    pub last: i64,
    /// The next slot, computed in zone `tz`.
    pub next: i64,
    pub tz: String,
}

type Update = (u64, u64, ReportState, Option<OutgoingMail>);

/// Queues the reports due at `now`; returns (messages queued, write sequence).
pub fn pass(nf: &Notifier, store: &Store, now: i64) -> Result<(usize, u64)> {
    let reports = store.read(|r| alerts::reports(r))?;
    if reports.is_empty() {
        return Ok((0, 0));
    }
    let now_utc = DateTime::<Utc>::from_timestamp(now, 0).unwrap_or_default();
    let mut stop_key = None;
    let mut updates: Vec<Update> = Vec::new();
    for alert in &reports {
        let Some(freq) = alert.schedule() else {
            continue;
        };
        let recipients: Vec<User> = store.read(|r| match alert.owner {
            Some(u) => Ok(users::get(r, u as i64)?.into_iter().collect()),
            None => users::all(r),
        })?;
        for user in recipients.into_iter().filter(|u| u.access > ACCESS_NONE) {
            let state_key = key("report-state", &[alert.id, user.id]);
            let (tz, state) = store.read(|r| {
                let tz = n::pref(r, user.id, PREF_TIMEZONE)?
                    .and_then(|t| UserTz::parse(&t).ok())
                    .unwrap_or(nf.fanout.server_tz);
                Ok((tz, r.get::<ReportState>(&state_key)?))
            })?;
            let tz_name = tz.to_string();
            if state
                .as_ref()
                .is_some_and(|s| s.tz == tz_name && now < s.next)
            {
                continue;
            }
            let slot = state.as_ref().and_then(|s| {
                schedule::last_slot(freq, tz, now_utc)
                    .map(|t| t.timestamp())
                    .filter(|t| *t > s.last)
            });
            let mut mail = None;
            if let Some(slot) = slot {
                let stop_url = match (
                    nf.stop_links(),
                    store.read(|r| crate::store::email::confirmed_email(r, user.id))?,
                ) {
                    (Some(base_url), Some(email)) => {
                        if stop_key.is_none() {
                            stop_key = Some(super::stop_link::key(store)?);
                        }
                        let key = stop_key.as_ref().expect("just made");
                        let token = super::stop_link::token(key, user.id, &email);
                        Some(super::stop_link::url(base_url, user.id, &token))
                    }
                    _ => None,
                };
                mail = store.read(|r| build(r, nf, alert, &user, tz, slot, now, stop_url))?;
            }
            let next = schedule::next_slot(freq, tz, now_utc).timestamp();
            let state = ReportState {
                last: now,
                next,
                tz: tz_name,
            };
            updates.push((alert.id, user.id, state, mail));
        }
    }
    if updates.is_empty() {
        return Ok((0, 0));
    }
    let (queued, seq) = store.write(|w| {
        let mut queued = 0;
        for (alert, user, state, mail) in &updates {
            // Deleted or changed meanwhile: its state went with it.
            if alerts::get(w, *alert as i64)?.is_none_or(|a| a.email != alerts::EMAIL_REPORT) {
                continue;
            }
            w.put(key("report-state", &[*alert, *user]), state)?;
            if let Some(mail) = mail {
                n::queue_mail(w, *user, mail.clone(), now)?;
                queued += 1;
            }
        }
        Ok(queued)
    })?;
    if queued > 0 {
        tracing::info!(queued, "summary reports");
    }
    Ok((queued, seq))
}

/// A column of a report after ID and Name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Location,
    CreatedDate,
    CreatedBy,
    ModifiedDate,
    ModifiedBy,
    Attribute(u64),
}

/// The view a report shows: its name, columns, sort column, order and definition.
struct Shown {
    name: String,
    definition: Option<String>,
    columns: Vec<Column>,
    sort: i64,
    desc: bool,
}

/// The alert's view as the reference's mail reads it: view 0 is "All Issues" with the
/// type's `default_view` (else ID, Name, Modified Date, Modified By by ID); columns and a
/// sort column naming an attribute that is gone are left out; a global alert shows the
/// location after the name.
fn shown(r: &impl Read, alert: &Alert, type_id: u64) -> Result<Option<Shown>> {
    let (name, definition) = match alert.view {
        0 => (
            "All Issues".to_string(),
            views::setting(r, type_id, "default_view")?,
        ),
        v => match views::get(r, v as i64)? {
            Some(view) => (view.name, Some(view.definition)),
            None => return Ok(None),
        },
    };
    let mut ids: Vec<i64> = vec![1, 0, 4, 5];
    let (mut sort, mut desc) = (1, false);
    if let Some(def) = definition.as_deref().and_then(|d| parse_definition(d).ok()) {
        if let Some(MetaValue::Str(c)) = def.get("columns") {
            ids = c.split(',').filter_map(|x| x.trim().parse().ok()).collect();
        }
        if let Some(MetaValue::Int(c)) = def.get("sort-column") {
            sort = *c;
        }
        desc = matches!(def.get("sort-desc"), Some(MetaValue::Int(d)) if *d != 0);
    }
    let available = |c: i64| -> Result<Option<Column>> {
        Ok(match c {
            2 => Some(Column::CreatedDate),
            3 => Some(Column::CreatedBy),
            4 => Some(Column::ModifiedDate),
            5 => Some(Column::ModifiedBy),
            c if c > 1000 => types::attribute(r, c - 1000)?
                .filter(|a| a.type_id == type_id)
                .map(|a| Column::Attribute(a.id)),
            _ => None,
        })
    };
    let mut columns = Vec::new();
    if alert.folder == 0 {
        columns.push(Column::Location);
    }
    for c in ids {
        if let Some(col) = available(c)?
            && !columns.contains(&col)
        {
            columns.push(col);
        }
    }
    if !matches!(sort, 0 | 1) && available(sort)?.is_none() {
        (sort, desc) = (1, false);
    }
    Ok(Some(Shown {
        name,
        definition,
        columns,
        sort,
        desc,
    }))
}

/// `s` cut to [`CELL_CHARS`] characters, `…` marking the cut.
fn cell(s: &str) -> String {
    if s.chars().count() <= CELL_CHARS {
        return s.to_string();
    }
    let mut out: String = s.chars().take(CELL_CHARS).collect();
    out.push('…');
    out
}

/// Compares two sort values: numbers as numbers, other text without case.
fn compare(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
        _ => a.to_lowercase().cmp(&b.to_lowercase()),
    }
}

/// The report mail for one recipient, or `None` when nothing is to be sent (no confirmed
/// address, no folder they can see, the view gone, or no issue shown).
#[allow(clippy::too_many_arguments)]
fn build(
    r: &impl Read,
    nf: &Notifier,
    alert: &Alert,
    user: &User,
    tz: UserTz,
    slot: i64,
    now: i64,
    stop_url: Option<String>,
) -> Result<Option<OutgoingMail>> {
    let Some(email) = crate::store::email::confirmed_email(r, user.id)? else {
        return Ok(None);
    };
    let mut folders: Vec<Folder> = if alert.folder != 0 {
        projects::folder(r, alert.folder as i64)?
            .into_iter()
            .collect()
    } else {
        projects::all_folders(r)?
            .into_iter()
            .filter(|f| f.type_id == alert.type_id)
            .collect()
    };
    let mut visible = Vec::new();
    for f in folders.drain(..) {
        if n::can_see(r, user, f.project)? {
            visible.push(f);
        }
    }
    let Some(first) = visible.first() else {
        return Ok(None);
    };
    let type_id = first.type_id;
    let Some(shown) = shown(r, alert, type_id)? else {
        return Ok(None);
    };
    let name_of = |id: u64| -> Result<String> {
        Ok(users::get(r, id as i64)?
            .map(|u| u.name)
            .unwrap_or_default())
    };
    let project_name = |id: u64| -> Result<String> {
        Ok(projects::get(r, id as i64)?
            .map(|p| p.name)
            .unwrap_or_default())
    };
    // (sort value, issue id, name, cells)
    let mut rows: Vec<(String, u64, String, Vec<String>)> = Vec::new();
    for f in &visible {
        let location = format!("{} / {}", project_name(f.project)?, f.name);
        for (id, _) in issues::in_folder_since(r, f.id, 0)? {
            let Some(issue) = issues::get(r, id as i64)? else {
                continue;
            };
            if let Some(def) = &shown.definition
                && !alerts::matches(r, def, id, user)?
            {
                continue;
            }
            let stamp = |t: i64| {
                DateTime::<Utc>::from_timestamp(t, 0)
                    .map(|d| tz.to_local(d).format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_default()
            };
            let mut cells = Vec::with_capacity(shown.columns.len());
            for c in &shown.columns {
                cells.push(cell(&match c {
                    Column::Location => location.clone(),
                    Column::CreatedDate => stamp(issue.created),
                    Column::CreatedBy => name_of(issue.created_by)?,
                    Column::ModifiedDate => stamp(issue.modified),
                    Column::ModifiedBy => name_of(issue.modified_by)?,
                    Column::Attribute(a) => issues::value(r, id, *a)?,
                }));
            }
            let sort = match shown.sort {
                0 => issue.name.clone(),
                2 => issue.created.to_string(),
                3 => name_of(issue.created_by)?,
                4 => issue.modified.to_string(),
                5 => name_of(issue.modified_by)?,
                c if c > 1000 => issues::value(r, id, (c - 1000) as u64)?,
                _ => id.to_string(),
            };
            rows.push((sort, id, issue.name, cells));
        }
    }
    if rows.is_empty() {
        return Ok(None);
    }
    rows.sort_by(|a, b| {
        let o = compare(&a.0, &b.0).then(a.1.cmp(&b.1));
        if shown.desc { o.reverse() } else { o }
    });
    let total = rows.len();
    rows.truncate(MAX_ISSUES);
    let mut headers = Vec::new();
    for c in &shown.columns {
        headers.push(match c {
            Column::Location => "Location".to_string(),
            Column::CreatedDate => "Created Date".into(),
            Column::CreatedBy => "Created By".into(),
            Column::ModifiedDate => "Modified Date".into(),
            Column::ModifiedBy => "Modified By".into(),
            Column::Attribute(a) => types::attribute(r, *a as i64)?
                .map(|a| a.name)
                .unwrap_or_default(),
        });
    }
    let (place, tag) = if alert.folder != 0 {
        let f = &visible[0];
        let p = project_name(f.project)?;
        (format!("{p} / {}", f.name), format!("[{p}] {}", f.name))
    } else {
        let t = types::get(r, alert.type_id as i64)?
            .map(|t| t.name)
            .unwrap_or_default();
        (
            format!("every folder of type {t}"),
            format!("[{}] {t}", nf.server_name),
        )
    };
    let scope = if alert.owner.is_some() {
        "your alert"
    } else {
        "the public alert"
    };
    let mut footer = vec![format!(
        "You get this report because of {scope} {} on {place}: view \"{}\", days {}, hours {} ({tz}).",
        alert.id, shown.name, alert.days, alert.hours
    )];
    if alert.owner.is_some() {
        footer.push(format!(
            "Change it: MODIFY ALERT {} 3 'days' 'hours'; stop it: DELETE ALERT {} (WebIssues 1.1 commands).",
            alert.id, alert.id
        ));
    }
    footer.push(format!(
        "Stop all these mails: SET PREFERENCE {} 'email' ''",
        user.id
    ));
    let view = ReportView {
        server_name: nf.server_name.clone(),
        recipient_name: user.name.clone(),
        place,
        view_name: shown.name.clone(),
        when: local_time(tz, slot),
        columns: headers,
        issues: rows
            .into_iter()
            .map(|(_, id, name, cells)| ReportIssueView { id, name, cells })
            .collect(),
        more: total.saturating_sub(MAX_ISSUES),
        unsubscribe_url: stop_url.clone(),
        footer,
    };
    let (text, html) = match nf.templates.render_report(&view) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::error!(alert = alert.id, user = user.id, error = %e, "cannot render report");
            return Ok(None);
        }
    };
    let format = n::pref(r, user.id, PREF_FORMAT)?
        .and_then(|f| Format::parse(&f))
        .unwrap_or(Format::Both);
    let host = id_host(&nf.mail.from);
    Ok(Some(OutgoingMail {
        from: nf.mail.from.clone(),
        to: vec![email],
        cc: vec![],
        bcc: vec![],
        subject: format!("{tag} - {}: {total} issues", shown.name),
        text: (format != Format::Html).then_some(text),
        html: (format != Format::Text).then_some(html),
        message_id: format!("report-{}-{}-{slot}@{host}", alert.id, user.id),
        in_reply_to: None,
        references: vec![],
        list_id: Some(nf.mail.list_id.clone()),
        list_unsubscribe: stop_url,
        date: now,
        envelope: vec![],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NotifyConfig;
    use crate::mail::MailConfig;
    use crate::store::alerts::EMAIL_REPORT;
    use crate::store::notify::{PREF_EMAIL, set_pref};

    fn utc(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }

    /// Folder 1 (type 1, project 1) with two issues, members 2 and 3 with confirmed
    /// addresses, and a report alert `id` of `owner` (None: public) at 08:00 every day.
    fn fixture(owner: Option<u64>) -> (tempfile::TempDir, Store, Notifier) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data"), 1 << 20).unwrap();
        let mail = MailConfig {
            file_dir: dir.path().join("mail"),
            ..MailConfig::default()
        };
        let nf = Notifier::new(&NotifyConfig::default(), &mail, "Tracker", "+0000").unwrap();
        store.enable_fanout(nf.fanout.clone());
        store
            .write(|w| {
                users::insert(w, "admin", "Admin", users::ACCESS_ADMIN, "x".into())?;
                users::insert(w, "a", "Ann", 1, "x".into())?;
                users::insert(w, "b", "Bob", 1, "x".into())?;
                types::insert(w, "Bugs")?;
                projects::insert(w, "Web")?;
                projects::insert_folder(w, 1, 1, "Bugs")?;
                for u in [2, 3] {
                    projects::set_member(w, 1, u, 1)?;
                    set_pref(w, u, PREF_EMAIL, "x@example.org", 0)?;
                    crate::store::email::mark_confirmed(w, u, "x@example.org")?;
                }
                let folder = projects::folder(w, 1)?.unwrap();
                issues::create(w, &folder, "First", &[], 1)?;
                issues::create(w, &folder, "Second", &[], 1)?;
                alerts::put(
                    w,
                    &Alert {
                        id: 1,
                        owner,
                        folder: 1,
                        type_id: 0,
                        view: 0,
                        email: EMAIL_REPORT,
                        days: "0,1,2,3,4,5,6".into(),
                        hours: "8".into(),
                    },
                )
            })
            .unwrap();
        (dir, store, nf)
    }

    fn queued(store: &Store, nf: &Notifier, now: i64) -> usize {
        pass(nf, store, now).unwrap().0
    }

    #[test]
    fn first_sight_records_then_one_report_per_slot_and_one_after_downtime() {
        let (_d, store, nf) = fixture(Some(2));
        let t = utc("2026-03-02T10:00:00Z");
        assert_eq!(queued(&store, &nf, t), 0, "first sight only records");
        assert_eq!(store.read(|r| n::pending(r, 2)).unwrap(), Vec::<u64>::new());
        assert_eq!(queued(&store, &nf, utc("2026-03-03T07:59:59Z")), 0);
        assert_eq!(queued(&store, &nf, utc("2026-03-03T08:00:00Z")), 1);
        assert_eq!(queued(&store, &nf, utc("2026-03-03T08:00:30Z")), 0);
        // Down from the 3rd to the 6th: one report for the missed slots.
        assert_eq!(queued(&store, &nf, utc("2026-03-06T12:00:00Z")), 1);
        assert_eq!(queued(&store, &nf, utc("2026-03-06T13:00:00Z")), 0);
        let out = store.read(|r| n::outbox_all(r)).unwrap();
        assert_eq!(out.len(), 2);
        let mail = &out[0].mail;
        assert_eq!(mail.subject, "[Web] Bugs - All Issues: 2 issues");
        assert_eq!(
            mail.message_id,
            format!("report-1-2-{}@localhost", utc("2026-03-03T08:00:00Z"))
        );
        let text = mail.text.as_deref().unwrap();
        assert!(
            text.contains("#1 First") && text.contains("#2 Second"),
            "{text}"
        );
        assert!(text.contains("  Modified By: Admin"), "{text}");
    }

    #[test]
    fn a_changed_zone_moves_the_next_report_at_once() {
        let (_d, store, nf) = fixture(Some(2));
        assert_eq!(queued(&store, &nf, utc("2026-03-02T10:00:00Z")), 0);
        // 08:00 in +0300 is 05:00 UTC, before the 08:00 UTC computed so far.
        store
            .write(|w| set_pref(w, 2, PREF_TIMEZONE, "+0300", 0))
            .unwrap();
        assert_eq!(queued(&store, &nf, utc("2026-03-03T05:00:00Z")), 1);
        assert_eq!(queued(&store, &nf, utc("2026-03-03T08:00:00Z")), 0);
    }

    #[test]
    fn a_public_report_reaches_every_member_and_nothing_when_empty() {
        let (_d, store, nf) = fixture(None);
        assert_eq!(queued(&store, &nf, utc("2026-03-02T10:00:00Z")), 0);
        // Users 2 and 3 have confirmed addresses; the admin has none.
        assert_eq!(queued(&store, &nf, utc("2026-03-03T08:00:00Z")), 2);
        store
            .write(|w| {
                for id in [1, 2] {
                    w.remove(key("issue", &[id]));
                }
                w.remove_prefix(&key("folder-stamp", &[1]))
            })
            .unwrap();
        assert_eq!(queued(&store, &nf, utc("2026-03-04T08:00:00Z")), 0);
    }

    #[test]
    fn the_html_part_escapes_every_value() {
        let t = crate::mail::Templates::new(None).unwrap();
        let view = ReportView {
            server_name: "T".into(),
            recipient_name: "<Ann>".into(),
            place: "P / F".into(),
            view_name: "a&b".into(),
            when: "now".into(),
            columns: vec!["<th>".into()],
            issues: vec![ReportIssueView {
                id: 1,
                name: "<script>".into(),
                cells: vec!["\"x\"".into()],
            }],
            more: 2,
            unsubscribe_url: None,
            footer: vec![],
        };
        let (text, html) = t.render_report(&view).unwrap();
        assert!(
            text.contains("issues.\n\n#1 <script>\n  <th>: \"x\"\n\n… and 2 more"),
            "{text}"
        );
        assert!(
            text.contains("3 issues") && text.contains("and 2 more"),
            "{text}"
        );
        assert!(
            html.contains("&lt;script&gt;") && !html.contains("<script>"),
            "{html}"
        );
        assert!(
            html.contains("a&amp;b") && html.contains("&lt;Ann&gt;"),
            "{html}"
        );
    }

    #[test]
    fn cells_are_cut_and_values_compare_as_numbers() {
        assert_eq!(cell("short"), "short");
        let long = "x".repeat(CELL_CHARS + 5);
        assert_eq!(cell(&long).chars().count(), CELL_CHARS + 1);
        assert!(cell(&long).ends_with('…'));
        assert_eq!(compare("9", "10"), std::cmp::Ordering::Less);
        assert_eq!(compare("apple", "Banana"), std::cmp::Ordering::Less);
    }
}
