//! `webissued check --data DIR`: every index against the records it points to
//! (protocol-spec/dump.md). Reads only; the data directory's lock keeps a server away.

use crate::error::Result;
use crate::store::issues::{Issue, Row};
use crate::store::keys::id_at;
use crate::store::notify::{NotifyState, OutboxEntry, OutboxState};
use crate::store::projects::{Folder, Project};
use crate::store::subscriptions::{Subscription, Target};
use crate::store::types::{Attribute, IssueType};
use crate::store::users::User;
use crate::store::{Read, Reader, key, key_str};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// What a check found: one sentence per inconsistency, and how many records it looked at.
#[derive(Debug, Default)]
pub struct Report {
    pub problems: Vec<String>,
    pub records: u64,
}

/// The string after `prefix/` in `k`.
fn tail(prefix: &str, k: &[u8]) -> String {
    String::from_utf8_lossy(&k[prefix.len() + 1..]).into_owned()
}

/// Checks every index of the store in `r`; `attachments` is the directory of files.
pub fn check(r: &Reader, attachments: &Path) -> Result<Report> {
    let mut rep = Report::default();
    let mut problem = |s: String| {
        if rep.problems.len() < 1000 {
            rep.problems.push(s);
        }
    };
    let mut count = 0u64;

    // Users, logins, names.
    let users: HashMap<u64, User> = r
        .scan::<User>(b"user/")?
        .into_iter()
        .map(|(k, u)| (id_at("user", &k, 0), u))
        .collect();
    count += users.len() as u64;
    for (id, u) in &users {
        if u.id != *id {
            problem(format!("user/{id} holds id {}", u.id));
        }
        if r.get::<u64>(&key_str("user-login", &u.login))? != Some(*id) {
            problem(format!(
                "user {id}: user-login/{} missing or wrong",
                u.login
            ));
        }
        if r.get::<u64>(&key_str("user-name", &u.name))? != Some(*id) {
            problem(format!("user {id}: user-name/{} missing or wrong", u.name));
        }
    }
    for (index, field) in [("user-login", 0), ("user-name", 1)] {
        for (k, id) in r.scan::<u64>(format!("{index}/").as_bytes())? {
            count += 1;
            let s = tail(index, &k);
            let ok = users.get(&id).is_some_and(|u| {
                if field == 0 {
                    u.login == s
                } else {
                    u.name == s
                }
            });
            if !ok {
                problem(format!("{index}/{s} names user {id}, which does not match"));
            }
        }
    }

    // Projects, folders, types, attributes.
    let projects: HashMap<u64, Project> = r
        .scan::<Project>(b"project/")?
        .into_iter()
        .map(|(k, p)| (id_at("project", &k, 0), p))
        .collect();
    let types: HashMap<u64, IssueType> = r
        .scan::<IssueType>(b"type/")?
        .into_iter()
        .map(|(k, t)| (id_at("type", &k, 0), t))
        .collect();
    let attrs: HashMap<u64, Attribute> = r
        .scan::<Attribute>(b"attr/")?
        .into_iter()
        .map(|(k, a)| (id_at("attr", &k, 0), a))
        .collect();
    let folders: HashMap<u64, Folder> = r
        .scan::<Folder>(b"folder/")?
        .into_iter()
        .map(|(k, f)| (id_at("folder", &k, 0), f))
        .collect();
    count += (projects.len() + types.len() + attrs.len() + folders.len()) as u64;
    for (id, p) in &projects {
        if r.get::<u64>(&key_str("project-name", &p.name))? != Some(*id) {
            problem(format!("project {id}: project-name/{} missing", p.name));
        }
    }
    for (k, id) in r.scan::<u64>(b"project-name/")? {
        count += 1;
        let s = tail("project-name", &k);
        if projects.get(&id).is_none_or(|p| p.name != s) {
            problem(format!(
                "project-name/{s} names project {id}, which does not match"
            ));
        }
    }
    for (id, t) in &types {
        if r.get::<u64>(&key_str("type-name", &t.name))? != Some(*id) {
            problem(format!("type {id}: type-name/{} missing", t.name));
        }
    }
    for (k, id) in r.scan::<u64>(b"type-name/")? {
        count += 1;
        let s = tail("type-name", &k);
        if types.get(&id).is_none_or(|t| t.name != s) {
            problem(format!(
                "type-name/{s} names type {id}, which does not match"
            ));
        }
    }
    for (id, a) in &attrs {
        if !types.contains_key(&a.type_id) {
            problem(format!("attribute {id} of missing type {}", a.type_id));
        }
        if !r.exists(&key("type-attr", &[a.type_id, *id]))? {
            problem(format!(
                "attribute {id}: type-attr/{}/{id} missing",
                a.type_id
            ));
        }
    }
    for (k, _) in r.scan_raw(b"type-attr/")? {
        count += 1;
        let (t, a) = (id_at("type-attr", &k, 0), id_at("type-attr", &k, 1));
        if attrs.get(&a).is_none_or(|x| x.type_id != t) {
            problem(format!("type-attr/{t}/{a} without that attribute"));
        }
    }
    for (id, f) in &folders {
        if !projects.contains_key(&f.project) {
            problem(format!("folder {id} of missing project {}", f.project));
        }
        if !types.contains_key(&f.type_id) {
            problem(format!("folder {id} of missing type {}", f.type_id));
        }
        if !r.exists(&key("project-folder", &[f.project, *id]))? {
            problem(format!(
                "folder {id}: project-folder/{}/{id} missing",
                f.project
            ));
        }
        if !r.exists(&key("type-folder", &[f.type_id, *id]))? {
            problem(format!(
                "folder {id}: type-folder/{}/{id} missing",
                f.type_id
            ));
        }
    }
    for (index, at) in [("project-folder", 0usize), ("type-folder", 1)] {
        for (k, _) in r.scan_raw(format!("{index}/").as_bytes())? {
            count += 1;
            let (owner, f) = (id_at(index, &k, 0), id_at(index, &k, 1));
            let ok = folders.get(&f).is_some_and(|x| {
                if at == 0 {
                    x.project == owner
                } else {
                    x.type_id == owner
                }
            });
            if !ok {
                problem(format!("{index}/{owner}/{f} without that folder"));
            }
        }
    }

    // Memberships, both ways.
    for (k, v) in r.scan_raw(b"member/")? {
        count += 1;
        let (p, u) = (id_at("member", &k, 0), id_at("member", &k, 1));
        if !projects.contains_key(&p) || !users.contains_key(&u) {
            problem(format!("member/{p}/{u}: missing project or user"));
        }
        if r.get_raw(&key("user-member", &[u, p]))?.as_deref() != Some(&v[..]) {
            problem(format!(
                "member/{p}/{u} without the same user-member/{u}/{p}"
            ));
        }
    }
    for (k, _) in r.scan_raw(b"user-member/")? {
        count += 1;
        let (u, p) = (id_at("user-member", &k, 0), id_at("user-member", &k, 1));
        if !r.exists(&key("member", &[p, u]))? {
            problem(format!("user-member/{u}/{p} without member/{p}/{u}"));
        }
    }

    // Issues and the folder-stamp index: exactly one entry per issue, at its stamp.
    let mut issues: HashSet<u64> = HashSet::new();
    r.visit(b"issue/", &mut |k, v| {
        let id = id_at("issue", k, 0);
        let issue: Issue = postcard::from_bytes(v)?;
        if issue.id != id {
            problem(format!("issue/{id} holds id {}", issue.id));
        }
        if !folders.contains_key(&issue.folder) {
            problem(format!("issue {id} in missing folder {}", issue.folder));
        }
        let at = r.get::<u64>(&key("folder-stamp", &[issue.folder, issue.stamp]))?;
        if at != Some(id) {
            problem(format!(
                "issue {id}: folder-stamp/{}/{} is {at:?}",
                issue.folder, issue.stamp
            ));
        }
        issues.insert(id);
        Ok(())
    })?;
    count += issues.len() as u64;
    let mut indexed = 0u64;
    r.visit(b"folder-stamp/", &mut |k, v| {
        indexed += 1;
        let _ = (id_at("folder-stamp", k, 0), id_at("folder-stamp", k, 1));
        let id: u64 = postcard::from_bytes(v)?;
        if !issues.contains(&id) {
            problem(format!("folder-stamp entry names missing issue {id}"));
        }
        Ok(())
    })?;
    count += indexed;
    if indexed != issues.len() as u64 {
        problem(format!(
            "{indexed} folder-stamp entries for {} issues",
            issues.len()
        ));
    }

    // Values and rows belong to existing issues; attachments have their files.
    let mut values = 0u64;
    r.visit(b"value/", &mut |k, _| {
        values += 1;
        let (i, a) = (id_at("value", k, 0), id_at("value", k, 1));
        if !issues.contains(&i) || !attrs.contains_key(&a) {
            problem(format!("value/{i}/{a}: missing issue or attribute"));
        }
        Ok(())
    })?;
    count += values;
    let mut files: HashSet<String> = HashSet::new();
    let mut rows = 0u64;
    r.visit(b"row/", &mut |k, v| {
        rows += 1;
        let i = id_at("row", k, 0);
        if !issues.contains(&i) {
            problem(format!("row of missing issue {i}"));
        }
        if let Row::Attachment(a) = postcard::from_bytes::<Row>(v)?
            && !a.file.is_empty()
        {
            files.insert(a.file);
        }
        Ok(())
    })?;
    count += rows;
    for f in &files {
        if !r.exists(&key_str("attachment-file", f))? {
            problem(format!(
                "attachment file {f}: attachment-file/ entry missing"
            ));
        }
        match std::fs::metadata(attachments.join(f)) {
            Ok(m) if m.is_file() => {}
            _ => problem(format!("attachment file {f} missing from attachments/")),
        }
    }
    for (k, _) in r.scan_raw(b"attachment-file/")? {
        count += 1;
        let f = tail("attachment-file", &k);
        if !files.contains(&f) {
            problem(format!("attachment-file/{f} recorded by no attachment"));
        }
    }

    // Watches, both ways.
    for (a, b) in [
        ("watch-folder", "user-watch-folder"),
        ("watch-issue", "user-watch-issue"),
        ("user-watch-folder", "watch-folder"),
        ("user-watch-issue", "watch-issue"),
    ] {
        for (k, _) in r.scan_raw(format!("{a}/").as_bytes())? {
            count += 1;
            let (x, y) = (id_at(a, &k, 0), id_at(a, &k, 1));
            if !r.exists(&key(b, &[y, x]))? {
                problem(format!("{a}/{x}/{y} without {b}/{y}/{x}"));
            }
        }
    }

    // Subscriptions by user and by target.
    let subs: HashMap<u64, Subscription> = r
        .scan::<Subscription>(b"sub/")?
        .into_iter()
        .map(|(k, s)| (id_at("sub", &k, 0), s))
        .collect();
    count += subs.len() as u64;
    for (id, s) in &subs {
        if !r.exists(&key("user-sub", &[s.owner, *id]))? {
            problem(format!(
                "subscription {id}: user-sub/{}/{id} missing",
                s.owner
            ));
        }
        let k = match s.target {
            Target::Folder(f) => key("folder-sub", &[f, *id]),
            Target::Issue(i) => key("issue-sub", &[i, *id]),
        };
        if !r.exists(&k)? {
            problem(format!("subscription {id}: its target index is missing"));
        }
    }
    for index in ["user-sub", "folder-sub", "issue-sub"] {
        for (k, _) in r.scan_raw(format!("{index}/").as_bytes())? {
            count += 1;
            let (o, id) = (id_at(index, &k, 0), id_at(index, &k, 1));
            let ok = subs.get(&id).is_some_and(|s| match index {
                "user-sub" => s.owner == o,
                "folder-sub" => s.target == Target::Folder(o),
                _ => s.target == Target::Issue(o),
            });
            if !ok {
                problem(format!("{index}/{o}/{id} without that subscription"));
            }
        }
    }

    // The due index against the notification state.
    for (k, st) in r.scan::<NotifyState>(b"nstate/")? {
        count += 1;
        let u = id_at("nstate", &k, 0);
        if let Some(t) = st.due
            && !r.exists(&key("due", &[t.max(0) as u64, u]))?
        {
            problem(format!("user {u} due at {t} without its due/ entry"));
        }
    }
    for (k, _) in r.scan_raw(b"due/")? {
        count += 1;
        let (t, u) = (id_at("due", &k, 0), id_at("due", &k, 1));
        let st: Option<NotifyState> = r.get(&key("nstate", &[u]))?;
        if st.and_then(|s| s.due).map(|d| d.max(0) as u64) != Some(t) {
            problem(format!("due/{t}/{u} does not match the user's state"));
        }
    }

    // The outbox queue against the outbox.
    for (k, e) in r.scan::<OutboxEntry>(b"outbox/")? {
        count += 1;
        let id = id_at("outbox", &k, 0);
        let queued = r.exists(&key("outbox-queue", &[e.next_attempt.max(0) as u64, id]))?;
        if matches!(e.state, OutboxState::Queued) != queued {
            problem(format!("outbox {id}: queue entry does not match its state"));
        }
    }
    for (k, _) in r.scan_raw(b"outbox-queue/")? {
        count += 1;
        let (t, id) = (id_at("outbox-queue", &k, 0), id_at("outbox-queue", &k, 1));
        let e: Option<OutboxEntry> = r.get(&key("outbox", &[id]))?;
        if e.is_none_or(|e| e.next_attempt.max(0) as u64 != t) {
            problem(format!("outbox-queue/{t}/{id} without that message"));
        }
    }
    rep.records = count;
    Ok(rep)
}

/// `webissued check --data DIR`.
pub fn check_dir(dir: &Path) -> std::result::Result<(), String> {
    let _lock = crate::datadir::lock(dir)?;
    let store = crate::store::Store::open(dir, 16 << 20).map_err(|e| e.to_string())?;
    let report = store
        .read(|r| check(r, &dir.join("attachments")))
        .map_err(|e| e.to_string());
    store.close().map_err(|e| e.to_string())?;
    let report = report?;
    for p in &report.problems {
        println!("problem: {p}");
    }
    println!(
        "checked {} index entries and records: {} problems",
        report.records,
        report.problems.len()
    );
    if report.problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{} problems found", report.problems.len()))
    }
}
