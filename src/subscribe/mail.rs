//! The mails of a subscription: one confirmation request per address, and the notifications
//! built from pending changes by the delivery pass. Both are queued in the durable outbox in
//! the batch that causes them, so a crash never loses or duplicates one.

use crate::app::App;
use crate::error::{Error, Result};
use crate::mail::{
    ChangeView, ConfirmView, DigestView, FolderView, IssueView, OutgoingMail, ProjectView,
};
use crate::notify::schedule::UserTz;
use crate::store::subscriptions::{self as subs, Recipient, Role, Subscription, Target};
use crate::store::{EventKind, IssueEvent, Read, Writer, issues, key, projects, types, users};
use chrono::{DateTime, Utc};

/// `/subscriptions/<id>/confirm?token=…`: the GET shows a page, only its POST confirms.
pub fn confirm_url(app: &App, id: u64, token: &str) -> String {
    format!(
        "{}/subscriptions/{id}/confirm?token={token}",
        app.base_url()
    )
}

/// `/subscriptions/<id>/unsubscribe?token=…`: also the RFC 8058 one-click POST target.
pub fn unsubscribe_url(app: &App, id: u64, token: &str) -> String {
    format!(
        "{}/subscriptions/{id}/unsubscribe?token={token}",
        app.base_url()
    )
}

/// The right-hand side of our Message-IDs: the domain of the configured sender.
fn id_domain(app: &App) -> String {
    let from = app.config.mail.from.trim_end_matches('>');
    let domain = from.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    if !domain.is_empty()
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        domain.to_string()
    } else {
        "webissued.localhost".into()
    }
}

fn utc(t: i64) -> String {
    DateTime::<Utc>::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

fn base_mail(app: &App, subject: String, message_id: String, date: i64) -> OutgoingMail {
    OutgoingMail {
        from: app.config.mail.from.clone(),
        to: vec![],
        cc: vec![],
        bcc: vec![],
        subject,
        text: None,
        html: None,
        message_id,
        in_reply_to: None,
        references: vec![],
        list_id: Some(app.config.mail.list_id.clone()).filter(|l| !l.is_empty()),
        list_unsubscribe: None,
        date,
    }
}

/// The confirmation request for one address: addressed to it alone, so nobody learns who
/// else was named, and carrying its own token.
pub fn confirmation(
    app: &App,
    sub: &Subscription,
    recipient: &Recipient,
    token: &str,
    target: &str,
) -> Result<OutgoingMail> {
    let view = ConfirmView {
        server_name: app.config.server.name.clone(),
        target: target.to_string(),
        token: token.to_string(),
        confirm_url: confirm_url(app, sub.id, token),
        expires: utc(sub.confirm_expires),
    };
    let (text, html) = app
        .templates
        .render_confirm(&view)
        .map_err(Error::internal)?;
    let index = sub
        .recipients
        .iter()
        .position(|r| r.address == recipient.address)
        .unwrap_or(0);
    let mut m = base_mail(
        app,
        format!("Confirm your subscription on {}", app.config.server.name),
        format!(
            "subscription.{}.confirm.{index}.{}@{}",
            sub.id,
            app.uuid,
            id_domain(app)
        ),
        sub.created,
    );
    m.to = vec![recipient.address.clone()];
    m.text = Some(text);
    m.html = Some(html);
    Ok(m)
}

/// Queues a message in the durable outbox, in the caller's batch.
pub fn enqueue(w: &mut Writer, app: &App, mail: &OutgoingMail) -> Result<()> {
    let _ = app;
    let id = w.next_id("sub-outbox")?;
    w.put(key("sub-outbox", &[id]), mail)
}

/// How one change reads in a notification.
fn describe_change(r: &impl Read, e: &IssueEvent) -> Result<String> {
    Ok(match &e.kind {
        EventKind::Created { name } => format!("created as \"{name}\""),
        EventKind::Renamed { old, .. } => format!("renamed from \"{old}\""),
        EventKind::ValueSet {
            attribute,
            old,
            new,
        } => {
            let name = types::attribute(r, *attribute as i64)?
                .map(|a| a.name)
                .unwrap_or_else(|| "(deleted attribute)".into());
            let show = |v: &str| {
                if v.is_empty() {
                    "(empty)".to_string()
                } else {
                    v.to_string()
                }
            };
            format!("{name}: {} → {}", show(old), show(new))
        }
        EventKind::Commented => "comment added".into(),
        EventKind::Attached { name } => format!("file \"{name}\" attached"),
    })
}

/// Builds the notification of `stamps` for subscription `id`, or `None` when there is nothing
/// to send: the subscription is gone, expired, or its creator may no longer see the changes
/// (visibility is checked now, at sending time, not when the change was made).
pub fn notification(
    w: &mut Writer,
    app: &App,
    id: u64,
    stamps: &[u64],
    now: i64,
) -> Result<Option<OutgoingMail>> {
    let Some(sub) = subs::get(w, id as i64)? else {
        return Ok(None);
    };
    if sub.status(now) != subs::Status::Active {
        return Ok(None);
    }
    let Some(owner) = users::get(w, sub.owner as i64)?.filter(|u| u.access > users::ACCESS_NONE)
    else {
        return Ok(None);
    };
    let tz = UserTz::parse(&app.config.server.timezone).unwrap_or(UserTz::Offset(0));
    let mut projects_v: Vec<(u64, ProjectView)> = Vec::new();
    let mut count = 0;
    for stamp in stamps {
        let Some(e) = w.get::<IssueEvent>(&key("event", &[*stamp]))? else {
            continue;
        };
        let Some(issue) = issues::get(w, e.issue as i64)? else {
            continue;
        };
        let Some(folder) = projects::folder(w, issue.folder as i64)? else {
            continue;
        };
        let still_targeted = match sub.target {
            Target::Folder(f) => f == folder.id,
            Target::Issue(i) => i == issue.id,
        };
        if !still_targeted || projects::access(w, &owner, folder.project)?.is_none() {
            continue;
        }
        let Some(project) = projects::get(w, folder.project as i64)? else {
            continue;
        };
        let who = users::get(w, e.user as i64)?
            .map(|u| u.name)
            .unwrap_or_else(|| "(unknown)".into());
        let when = DateTime::<Utc>::from_timestamp(e.time, 0)
            .map(|t| tz.to_local(t).format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default();
        let change = ChangeView {
            who,
            when,
            what: describe_change(w, &e)?,
        };
        count += 1;
        let p = match projects_v.iter().position(|(id, _)| *id == project.id) {
            Some(i) => &mut projects_v[i].1,
            None => {
                projects_v.push((
                    project.id,
                    ProjectView {
                        name: project.name.clone(),
                        folders: vec![],
                    },
                ));
                &mut projects_v.last_mut().expect("just pushed").1
            }
        };
        let f = match p.folders.iter().position(|f| f.name == folder.name) {
            Some(i) => &mut p.folders[i],
            None => {
                p.folders.push(FolderView {
                    name: folder.name.clone(),
                    issues: vec![],
                });
                p.folders.last_mut().expect("just pushed")
            }
        };
        match f.issues.iter_mut().find(|i| i.id == issue.id) {
            Some(i) => i.changes.push(change),
            None => f.issues.push(IssueView {
                id: issue.id,
                name: issue.name.clone(),
                url: None,
                changes: vec![change],
            }),
        }
    }
    if count == 0 {
        return Ok(None);
    }
    let expires = now.saturating_add(app.config.subscribe.unsubscribe_token_ttl_secs as i64);
    let token = subs::new_unsubscribe_token(w, id, now, expires)?;
    let unsubscribe = unsubscribe_url(app, id, &token);
    let to = sub.confirmed(Role::To);
    let view = DigestView {
        server_name: app.config.server.name.clone(),
        recipient_name: if to.is_empty() {
            "subscriber".into()
        } else {
            to.join(", ")
        },
        projects: projects_v.into_iter().map(|(_, p)| p).collect(),
        unsubscribe_url: Some(unsubscribe.clone()),
        settings_hint: sub.body.clone(),
    };
    let (text, html) = app
        .templates
        .render_digest(&view)
        .map_err(Error::internal)?;
    let subject = sub.subject.clone().unwrap_or_else(|| {
        let what = match (&view.projects[..], count) {
            ([p], 1) if p.folders.len() == 1 && p.folders[0].issues.len() == 1 => {
                let i = &p.folders[0].issues[0];
                format!("#{} {}", i.id, i.name)
            }
            _ => format!("{count} changes"),
        };
        format!("[{}] {what}", app.config.server.name)
    });
    let last = stamps.last().copied().unwrap_or(0);
    let mut m = base_mail(
        app,
        subject,
        format!("subscription.{id}.{last}.{}@{}", app.uuid, id_domain(app)),
        now,
    );
    m.to = to;
    m.cc = sub.confirmed(Role::Cc);
    m.bcc = sub.confirmed(Role::Bcc);
    m.text = Some(text);
    m.html = Some(html);
    m.list_unsubscribe = Some(unsubscribe);
    Ok(Some(m))
}

/// One delivery pass over the subscriptions with pending changes (at most `limit` of them):
/// each gets one notification, queued in the same batch that clears its pending entries.
/// Returns how many mails were queued.
pub fn pass(w: &mut Writer, app: &App, now: i64, limit: usize) -> Result<usize> {
    let mut sent = 0;
    for (id, stamps) in subs::pending(w, limit)? {
        if let Some(m) = notification(w, app, id, &stamps, now)? {
            enqueue(w, app, &m)?;
            sent += 1;
        }
        subs::clear_pending(w, id)?;
    }
    Ok(sent)
}
