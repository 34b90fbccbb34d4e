//! Building one user's digest from their pending changes, and rendering it as a mail.
//!
//! Visibility is checked again here, when the mail is built: an issue the user can no longer
//! see (membership revoked, folder gone) or no longer watches is left out. Several changes of
//! one issue collapse into one entry listing each change.

use crate::error::Result;
use crate::mail::{
    ChangeView, DigestView, FolderView, IssueView, MailConfig, OutgoingMail, ProjectView, Templates,
};
use crate::schedule::UserTz;
use crate::store::notify::{
    self as n, FanoutConfig, IssuePlace, PREF_FORMAT, PREF_TIMEZONE, Watch,
};
use crate::store::users::{self, ACCESS_NONE};
use crate::store::{EventKind, IssueEvent, Read, key};
use chrono::{DateTime, Utc};

/// Which bodies a user's mail has (`notify-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Html,
    Both,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "text" => Some(Format::Text),
            "html" => Some(Format::Html),
            "both" => Some(Format::Both),
            _ => None,
        }
    }
}

/// What the digest says about one issue beyond its body: the footer, the subject and
/// PREVIEW NOTIFICATIONS use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestIssue {
    pub issue: u64,
    pub name: String,
    pub folder: u64,
    pub folder_name: String,
    /// How many changes the body lists, and the newest one's stamp.
    pub changes: usize,
    pub last_stamp: u64,
    /// Reported through a watch on the issue (else on its folder): the footer names the
    /// command that stops it.
    pub issue_watch: bool,
}

/// What the next pass would send one user. The body is built once, in the shape the
/// template shows (projects, folders, issues, changes with times in the user's zone).
#[derive(Debug, Clone)]
pub struct Digest {
    pub user: u64,
    pub recipient: String,
    pub email: Option<String>,
    pub format: Format,
    /// The body: visible issues, ordered by project, folder and issue id.
    pub projects: Vec<ProjectView>,
    /// The same issues, in the same order.
    pub issues: Vec<DigestIssue>,
    /// Every pending stamp read, sent or dropped: the pass removes exactly these.
    pub covered: Vec<u64>,
    /// The one-click link that stops these mails (set by the pass when the HTTP pages run).
    pub stop_url: Option<String>,
}

impl Digest {
    /// The newest change in the digest (its Message-ID uses it).
    pub fn last_stamp(&self) -> u64 {
        self.issues.iter().map(|i| i.last_stamp).max().unwrap_or(0)
    }
}

/// Builds the digest of `user` from the pending entries as they are now.
pub fn build(r: &impl Read, user_id: u64, cfg: &FanoutConfig) -> Result<Digest> {
    let covered = n::pending(r, user_id)?;
    let user = users::get(r, user_id as i64)?;
    let tz = n::pref(r, user_id, PREF_TIMEZONE)?
        .and_then(|t| UserTz::parse(&t).ok())
        .unwrap_or(cfg.server_tz);
    let format = n::pref(r, user_id, PREF_FORMAT)?
        .and_then(|f| Format::parse(&f))
        .unwrap_or(Format::Both);
    let email = crate::store::email::confirmed_email(r, user_id)?;
    let mut digest = Digest {
        user: user_id,
        recipient: user.as_ref().map(|u| u.name.clone()).unwrap_or_default(),
        email,
        format,
        projects: Vec::new(),
        issues: Vec::new(),
        covered,
        stop_url: None,
    };
    let Some(user) = user.filter(|u| u.access > ACCESS_NONE) else {
        return Ok(digest);
    };
    if digest.email.is_none() {
        return Ok(digest);
    }
    // (place, issue watch, changes, newest stamp) per issue, ordered by project, folder, issue.
    type Entry = (IssuePlace, bool, Vec<ChangeView>, u64);
    let mut by_issue: std::collections::BTreeMap<(u64, u64, u64), Entry> = Default::default();
    let mut names = std::collections::HashMap::new();
    for stamp in &digest.covered {
        let Some(event) = r.get::<IssueEvent>(&key("event", &[*stamp]))? else {
            continue;
        };
        let Some(place) = n::issue_place(r, event.issue)? else {
            continue;
        };
        let issue_watch = n::is_watching(r, user_id, Watch::Issue(place.issue))?;
        let watched = issue_watch
            || n::is_watching(r, user_id, Watch::Folder(place.folder))?
            || crate::store::alerts::covers(r, &user, place.issue, place.folder)?;
        if !watched || !n::can_see(r, &user, place.project)? {
            continue;
        }
        let who = match names.get(&event.user) {
            Some(name) => String::clone(name),
            None => {
                let name = users::get(r, event.user as i64)?
                    .map(|u| u.name)
                    .unwrap_or_else(|| format!("user {}", event.user));
                names.insert(event.user, name.clone());
                name
            }
        };
        let (what, detail) = describe_event(r, &event)?;
        let change = ChangeView {
            who,
            when: local_time(tz, event.time),
            what,
            detail,
        };
        let entry = by_issue
            .entry((place.project, place.folder, place.issue))
            .or_insert_with(|| (place, issue_watch, Vec::new(), 0));
        entry.2.push(change);
        entry.3 = entry.3.max(event.stamp);
    }
    let mut at: Option<(u64, u64)> = None;
    for ((project, folder, _), (place, issue_watch, changes, last_stamp)) in by_issue {
        if at.is_none_or(|(p, _)| p != project) {
            digest.projects.push(ProjectView {
                name: place.project_name,
                folders: Vec::new(),
            });
        }
        let p = digest.projects.last_mut().expect("just pushed");
        if at != Some((project, folder)) {
            p.folders.push(FolderView {
                name: place.folder_name.clone(),
                issues: Vec::new(),
            });
        }
        at = Some((project, folder));
        digest.issues.push(DigestIssue {
            issue: place.issue,
            name: place.name.clone(),
            folder,
            folder_name: place.folder_name,
            changes: changes.len(),
            last_stamp,
            issue_watch,
        });
        let f = p.folders.last_mut().expect("just pushed");
        f.issues.push(IssueView {
            id: place.issue,
            name: place.name,
            url: None,
            changes,
        });
    }
    Ok(digest)
}

/// Longest comment excerpt in a mail, in characters and in lines: enough to act on, short
/// enough that a digest of many comments stays readable.
pub const COMMENT_CHARS: usize = 500;
pub const COMMENT_LINES: usize = 12;

/// A change in words, with the lines shown under it: a comment's text (trimmed to
/// [`COMMENT_CHARS`] / [`COMMENT_LINES`], `…` marking the cut) and an attachment's size.
pub fn describe_event(r: &impl Read, event: &IssueEvent) -> Result<(String, Vec<String>)> {
    let row = || r.get::<crate::store::issues::Row>(&key("row", &[event.issue, event.stamp]));
    Ok(match &event.kind {
        EventKind::Commented => match row()? {
            Some(crate::store::issues::Row::Comment(c)) => ("commented:".into(), excerpt(&c.text)),
            _ => ("added a comment".into(), Vec::new()),
        },
        EventKind::Attached { name } => match row()? {
            Some(crate::store::issues::Row::Attachment(a)) => (
                format!("attached \"{name}\" ({})", human_size(a.size)),
                Vec::new(),
            ),
            _ => (format!("attached \"{name}\""), Vec::new()),
        },
        kind => (describe(r, kind)?, Vec::new()),
    })
}

/// The first [`COMMENT_LINES`] lines and [`COMMENT_CHARS`] characters of a text, trimmed.
fn excerpt(text: &str) -> Vec<String> {
    let text = text.trim();
    let mut out = Vec::new();
    let mut chars = 0;
    let mut cut = false;
    for (i, line) in text.lines().enumerate() {
        if i == COMMENT_LINES || chars >= COMMENT_CHARS {
            cut = true;
            break;
        }
        let room = COMMENT_CHARS - chars;
        let n = line.chars().count();
        if n > room {
            out.push(line.chars().take(room).collect::<String>());
            cut = true;
            break;
        }
        chars += n;
        out.push(line.trim_end().to_string());
    }
    if cut && let Some(last) = out.last_mut() {
        last.push('…');
    }
    out
}

/// `512 bytes`, `12.3 KiB`, `4.0 MiB`.
pub fn human_size(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} bytes"),
        1024..1_048_576 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}

/// A change in words (no comment text and no file contents, as in WebIssues 0.8.4).
pub fn describe(r: &impl Read, kind: &EventKind) -> Result<String> {
    Ok(match kind {
        EventKind::Created { .. } => "created the issue".into(),
        EventKind::Renamed { old, new } => format!("renamed it from \"{old}\" to \"{new}\""),
        EventKind::ValueSet {
            attribute,
            old,
            new,
        } => {
            let name = attribute_name(r, *attribute)?;
            match (old.is_empty(), new.is_empty()) {
                (true, _) => format!("set {name} to \"{new}\""),
                (false, true) => format!("cleared {name} (was \"{old}\")"),
                _ => format!("changed {name} from \"{old}\" to \"{new}\""),
            }
        }
        EventKind::Commented => "added a comment".into(),
        EventKind::Attached { name } => format!("attached \"{name}\""),
        EventKind::Described => "added a description".into(),
        EventKind::Edited { what } => what.clone(),
        EventKind::Moved { .. } => "moved the issue".into(),
        EventKind::Deleted => "deleted the issue".into(),
    })
}

/// The attribute's current name (it may have been deleted since).
fn attribute_name(r: &impl Read, attribute: u64) -> Result<String> {
    Ok(crate::store::types::attribute(r, attribute as i64)?
        .map(|a| a.name)
        .unwrap_or_else(|| format!("attribute {attribute}")))
}

/// Formats an instant in the user's zone, e.g. `2024-03-01 08:30 (+0100)`.
pub fn local_time(tz: UserTz, t: i64) -> String {
    let utc = DateTime::<Utc>::from_timestamp(t, 0).unwrap_or_default();
    format!("{} ({tz})", tz.to_local(utc).format("%Y-%m-%d %H:%M"))
}

/// The domain of the sender address, used on the right of our Message-IDs.
pub fn id_host(from: &str) -> String {
    let addr = from
        .rsplit_once('<')
        .map(|(_, a)| a.trim_end_matches('>'))
        .unwrap_or(from);
    let host = addr.rsplit_once('@').map(|(_, h)| h).unwrap_or("");
    let ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if ok { host.into() } else { "localhost".into() }
}

/// The thread id of an issue: digests about one issue refer to it, so a mail client groups
/// every digest about that issue.
pub fn issue_thread_id(issue: u64, host: &str) -> String {
    format!("issue-{issue}@{host}")
}

/// `[Project] #12 Login page returns 500` for one issue (threaded per issue); otherwise the
/// counts, under the project's name when all issues are in one project.
fn subject(digest: &Digest, server_name: &str, host: &str) -> (String, Option<String>) {
    match (digest.projects.as_slice(), digest.issues.as_slice()) {
        ([project], [one]) => (
            format!("[{}] #{} {}", project.name, one.issue, one.name),
            Some(issue_thread_id(one.issue, host)),
        ),
        (projects, many) => {
            let changes: usize = many.iter().map(|i| i.changes).sum();
            let tag = match projects {
                [one] => one.name.as_str(),
                _ => server_name,
            };
            (
                format!("[{tag}] {changes} changes in {} issues", many.len()),
                None,
            )
        }
    }
}

/// Why the mail came and the exact protocol commands that change or stop it.
fn footer(digest: &Digest) -> Vec<String> {
    let u = digest.user;
    let mut folders: Vec<(u64, &str)> = Vec::new();
    let mut issues: Vec<u64> = Vec::new();
    for i in &digest.issues {
        if i.issue_watch {
            issues.push(i.issue);
        } else if !folders.iter().any(|(f, _)| *f == i.folder) {
            folders.push((i.folder, &i.folder_name));
        }
    }
    let mut why: Vec<String> = folders
        .iter()
        .map(|(f, name)| format!("folder {f} \"{name}\""))
        .collect();
    why.extend(issues.iter().map(|i| format!("issue #{i}")));
    let mut stop: Vec<String> = folders
        .iter()
        .map(|(f, _)| format!("NOTIFY FOLDER {f} 0"))
        .collect();
    stop.extend(issues.iter().map(|i| format!("NOTIFY ISSUE {i} 0")));
    vec![
        format!("You get this mail because you watch {}.", why.join(", ")),
        format!(
            "Daily instead: SET PREFERENCE {u} 'notify-frequency' 'DAILY time=\"08:30\"' \
             (or 'WEEKLY day=1 time=\"08:30\"', or 'IMMEDIATELY')."
        ),
        format!("Stop watching: {}", stop.join(", ")),
        format!("Stop all these mails: SET PREFERENCE {u} 'email' ''"),
        "(WebIssues protocol commands, sent after LOGIN, e.g. with nc.)".into(),
    ]
}

/// Turns a non-empty digest into a message.
pub fn render(
    digest: &Digest,
    templates: &Templates,
    mail: &MailConfig,
    server_name: &str,
    now: i64,
) -> std::result::Result<OutgoingMail, String> {
    let email = digest.email.clone().ok_or("no address")?;
    let view = DigestView {
        server_name: server_name.into(),
        recipient_name: digest.recipient.clone(),
        projects: digest.projects.clone(),
        unsubscribe_url: digest.stop_url.clone(),
        settings_hint: None,
        footer: footer(digest),
    };
    let (text, html) = templates.render_digest(&view).map_err(|e| e.to_string())?;
    let host = id_host(&mail.from);
    let (subject, thread) = subject(digest, server_name, &host);
    Ok(OutgoingMail {
        from: mail.from.clone(),
        to: vec![email],
        cc: vec![],
        bcc: vec![],
        subject,
        text: (digest.format != Format::Html).then_some(text),
        html: (digest.format != Format::Text).then_some(html),
        message_id: format!("digest-{}-{}@{host}", digest.user, digest.last_stamp()),
        in_reply_to: thread.clone(),
        references: thread.into_iter().collect(),
        list_id: Some(mail.list_id.clone()),
        list_unsubscribe: digest.stop_url.clone(),
        date: now,
        envelope: vec![],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_host_comes_from_the_sender() {
        assert_eq!(id_host("webissued@example.org"), "example.org");
        assert_eq!(id_host("Tracker <t@mail.example.org>"), "mail.example.org");
        assert_eq!(id_host("nobody"), "localhost");
    }

    #[test]
    fn local_times_follow_the_zone() {
        assert_eq!(
            local_time(UserTz::Offset(60), 1_700_000_000),
            "2023-11-14 23:13 (+0100)"
        );
        let warsaw = UserTz::parse("Europe/Warsaw").unwrap();
        assert_eq!(
            local_time(warsaw, 1_690_000_000),
            "2023-07-22 06:26 (Europe/Warsaw)"
        );
    }
}

#[cfg(test)]
mod excerpt_tests {
    use super::*;

    #[test]
    fn comments_are_trimmed_by_characters_and_lines() {
        assert_eq!(excerpt("  short\nsecond  \n"), ["short", "second"]);
        let long = "x".repeat(COMMENT_CHARS + 10);
        let e = excerpt(&long);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].chars().count(), COMMENT_CHARS + 1);
        assert!(e[0].ends_with('…'));
        let many = (0..30)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join("\n");
        let e = excerpt(&many);
        assert_eq!(e.len(), COMMENT_LINES);
        assert_eq!(e.last().unwrap(), "11…");
        assert_eq!(human_size(512), "512 bytes");
        assert_eq!(human_size(12_595), "12.3 KiB");
        assert_eq!(human_size(4 << 20), "4.0 MiB");
    }
}
