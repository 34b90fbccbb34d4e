//! Building one user's digest from their pending changes, and rendering it as a mail.
//!
//! Visibility is checked again here, when the mail is built: an issue the user can no longer
//! see (membership revoked, folder gone) or no longer watches is left out. Several changes of
//! one issue collapse into one entry listing each change.

use crate::error::Result;
use crate::mail::{
    ChangeView, DigestView, FolderView, IssueView, MailConfig, OutgoingMail, ProjectView, Templates,
};
use crate::notify::schedule::UserTz;
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

/// One change as the digest shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub stamp: u64,
    pub who: String,
    pub time: i64,
    pub what: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestIssue {
    pub place: IssuePlace,
    pub changes: Vec<Change>,
}

/// What the next pass would send one user.
#[derive(Debug, Clone)]
pub struct Digest {
    pub user: u64,
    pub recipient: String,
    pub email: Option<String>,
    pub tz: UserTz,
    pub format: Format,
    /// Visible issues, ordered by project, folder and issue id.
    pub issues: Vec<DigestIssue>,
    /// Every pending stamp read, sent or dropped: the pass removes exactly these.
    pub covered: Vec<u64>,
}

impl Digest {
    /// The newest change in the digest (its Message-ID uses it).
    pub fn last_stamp(&self) -> u64 {
        self.issues
            .iter()
            .flat_map(|i| i.changes.iter().map(|c| c.stamp))
            .max()
            .unwrap_or(0)
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
    let email = crate::subscribe::email::confirmed_email(r, user_id)?;
    let mut digest = Digest {
        user: user_id,
        recipient: user.as_ref().map(|u| u.name.clone()).unwrap_or_default(),
        email,
        tz,
        format,
        issues: Vec::new(),
        covered,
    };
    let Some(user) = user.filter(|u| u.access > ACCESS_NONE) else {
        return Ok(digest);
    };
    if digest.email.is_none() {
        return Ok(digest);
    }
    let mut by_issue: std::collections::BTreeMap<(u64, u64, u64), DigestIssue> = Default::default();
    let mut names = std::collections::HashMap::new();
    for stamp in &digest.covered {
        let Some(event) = r.get::<IssueEvent>(&key("event", &[*stamp]))? else {
            continue;
        };
        let Some(place) = n::issue_place(r, event.issue)? else {
            continue;
        };
        let watched = n::is_watching(r, user_id, Watch::Issue(place.issue))?
            || n::is_watching(r, user_id, Watch::Folder(place.folder))?;
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
        let change = Change {
            stamp: event.stamp,
            who,
            time: event.time,
            what: describe(r, &event.kind)?,
        };
        by_issue
            .entry((place.project, place.folder, place.issue))
            .or_insert_with(|| DigestIssue {
                place,
                changes: Vec::new(),
            })
            .changes
            .push(change);
    }
    digest.issues = by_issue.into_values().collect();
    Ok(digest)
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

/// Turns a non-empty digest into a message.
pub fn render(
    digest: &Digest,
    templates: &Templates,
    mail: &MailConfig,
    server_name: &str,
    now: i64,
) -> std::result::Result<OutgoingMail, String> {
    let email = digest.email.clone().ok_or("no address")?;
    let mut projects: Vec<ProjectView> = Vec::new();
    for issue in &digest.issues {
        let p = &issue.place;
        if projects.last().is_none_or(|x| x.name != p.project_name) {
            projects.push(ProjectView {
                name: p.project_name.clone(),
                folders: Vec::new(),
            });
        }
        let project = projects.last_mut().expect("just pushed");
        if project
            .folders
            .last()
            .is_none_or(|f| f.name != p.folder_name)
        {
            project.folders.push(FolderView {
                name: p.folder_name.clone(),
                issues: Vec::new(),
            });
        }
        let folder = project.folders.last_mut().expect("just pushed");
        folder.issues.push(IssueView {
            id: p.issue,
            name: p.name.clone(),
            url: None,
            changes: issue
                .changes
                .iter()
                .map(|c| ChangeView {
                    who: c.who.clone(),
                    when: local_time(digest.tz, c.time),
                    what: c.what.clone(),
                })
                .collect(),
        });
    }
    let view = DigestView {
        server_name: server_name.into(),
        recipient_name: digest.recipient.clone(),
        projects,
        unsubscribe_url: None,
        settings_hint: Some(
            "To change how often you get these mails, or to stop them, change your \
             preferences or notifications in the WebIssues client."
                .into(),
        ),
    };
    let (text, html) = templates.render_digest(&view).map_err(|e| e.to_string())?;
    let host = id_host(&mail.from);
    let (subject, thread) = match digest.issues.as_slice() {
        [one] => (
            format!("[{server_name}] #{} {}", one.place.issue, one.place.name),
            Some(issue_thread_id(one.place.issue, &host)),
        ),
        many => (
            format!("[{server_name}] {} issues changed", many.len()),
            None,
        ),
    };
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
        list_unsubscribe: None,
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
