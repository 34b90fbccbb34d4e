//! The mails of a subscription: one confirmation request per address, and the notifications
//! built from pending changes by the delivery pass. Both are queued in the durable outbox in
//! the batch that causes them, so a crash never loses or duplicates one.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::mail::{
    ChangeView, ConfirmView, DigestView, FolderView, IssueView, OutgoingMail, ProjectView,
    Templates,
};
use crate::notify::digest::{id_host, local_time};
use crate::schedule::UserTz;
use crate::store::subscriptions::{self as subs, Recipient, Role, Subscription, Target};
use crate::store::{IssueEvent, Read, Store, Writer, issues, key, notify, projects, users};
use chrono::{DateTime, Utc};

/// What subscription mails are made from: settings fixed at start.
#[derive(Debug, Clone)]
pub struct Context {
    /// Public prefix of links, without a trailing slash.
    pub base_url: String,
    pub server_name: String,
    pub from: String,
    pub list_id: String,
    /// Right-hand side of Message-IDs.
    pub host: String,
    pub confirm_ttl: i64,
    pub unsubscribe_ttl: i64,
    pub server_tz: UserTz,
    /// Most subscriptions one pass delivers to; the rest wait for the next pass.
    pub max_per_pass: usize,
}

impl Context {
    /// `config.server.http_listen` must already be the bound address (see `serve`), so that
    /// links work when listening on port 0 without a `base_url`.
    pub fn new(config: &Config) -> Context {
        let base = match &config.server.base_url {
            Some(u) => u.clone(),
            None => format!("http://{}", config.server.http_listen),
        };
        Context {
            base_url: base.trim_end_matches('/').to_string(),
            server_name: config.server.name.clone(),
            from: config.mail.from.clone(),
            list_id: config.mail.list_id.clone(),
            host: id_host(&config.mail.from),
            confirm_ttl: config.subscribe.confirm_token_ttl_secs.min(i64::MAX as u64) as i64,
            unsubscribe_ttl: config
                .subscribe
                .unsubscribe_token_ttl_secs
                .min(i64::MAX as u64) as i64,
            server_tz: UserTz::parse(&config.server.timezone).unwrap_or(UserTz::Offset(0)),
            max_per_pass: config.notify.max_users_per_pass.max(1),
        }
    }

    /// `/subscriptions/<id>/confirm?token=…`: the GET shows a page, only its POST confirms.
    pub fn confirm_url(&self, id: u64, token: &str) -> String {
        format!("{}/subscriptions/{id}/confirm?token={token}", self.base_url)
    }

    /// `/email/<user>/confirm?token=…`: confirms the `email` preference of a user.
    pub fn email_confirm_url(&self, user: u64, token: &str) -> String {
        format!("{}/email/{user}/confirm?token={token}", self.base_url)
    }

    /// `/subscriptions/<id>/unsubscribe?token=…`: also the RFC 8058 one-click POST target.
    pub fn unsubscribe_url(&self, id: u64, token: &str) -> String {
        format!(
            "{}/subscriptions/{id}/unsubscribe?token={token}",
            self.base_url
        )
    }

    pub(crate) fn mail(&self, subject: String, message_id: String, date: i64) -> OutgoingMail {
        OutgoingMail {
            from: self.from.clone(),
            to: vec![],
            cc: vec![],
            bcc: vec![],
            subject,
            text: None,
            html: None,
            message_id,
            in_reply_to: None,
            references: vec![],
            list_id: Some(self.list_id.clone()).filter(|l| !l.is_empty()),
            list_unsubscribe: None,
            date,
            envelope: vec![],
        }
    }
}

pub(crate) fn utc(t: i64) -> String {
    DateTime::<Utc>::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// The confirmation request for one address: addressed to it alone, so nobody learns who
/// else was named, and carrying its own token. `target` says what is subscribed, in words.
pub fn confirmation(
    ctx: &Context,
    templates: &Templates,
    sub: &Subscription,
    index: usize,
    token: &str,
    target: &str,
) -> Result<OutgoingMail> {
    let recipient: &Recipient = sub
        .recipients
        .get(index)
        .ok_or_else(|| Error::internal("no such recipient"))?;
    let view = ConfirmView {
        server_name: ctx.server_name.clone(),
        target: target.to_string(),
        token: token.to_string(),
        confirm_url: ctx.confirm_url(sub.id, token),
        expires: utc(sub.confirm_expires),
    };
    let (text, html) = templates.render_confirm(&view).map_err(Error::internal)?;
    let mut m = ctx.mail(
        format!("Confirm your subscription on {}", ctx.server_name),
        format!("subscription-{}-confirm-{index}@{}", sub.id, ctx.host),
        sub.created,
    );
    m.to = vec![recipient.address.clone()];
    m.text = Some(text);
    m.html = Some(html);
    Ok(m)
}

/// Queues a message in the notification outbox, in the caller's batch; the outbox entry is
/// attributed to the subscription's creator (LIST OUTBOX).
pub fn enqueue(w: &mut Writer, sub: &Subscription, mail: OutgoingMail, now: i64) -> Result<()> {
    notify::queue_mail(w, sub.owner, mail, now).map(drop)
}

/// Builds the notification of `stamps` for subscription `id`: one copy per confirmed
/// recipient (the same To and Cc headers, the envelope to that address alone, its own
/// unsubscribe token and link), or none when there is nothing to send: the subscription is
/// gone, not active, or its creator may no longer see the changes (visibility is checked
/// now, at sending time, not when the change was made). Creates the tokens as a side effect.
pub fn notification(
    w: &mut Writer,
    ctx: &Context,
    templates: &Templates,
    sub: &Subscription,
    stamps: &[u64],
    now: i64,
) -> Result<Vec<OutgoingMail>> {
    if sub.status(now) != subs::Status::Active {
        return Ok(vec![]);
    }
    let Some(owner) = users::get(w, sub.owner as i64)?.filter(|u| u.access > users::ACCESS_NONE)
    else {
        return Ok(vec![]);
    };
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
        let (what, detail) = crate::notify::digest::describe_event(w, &e)?;
        let change = ChangeView {
            who,
            when: local_time(ctx.server_tz, e.time),
            what,
            detail,
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
        return Ok(vec![]);
    }
    let to = sub.confirmed(Role::To);
    let projects: Vec<ProjectView> = projects_v.into_iter().map(|(_, p)| p).collect();
    let subject = sub.subject.clone().unwrap_or_else(|| {
        let what = match &projects[..] {
            [p] if p.folders.len() == 1 && p.folders[0].issues.len() == 1 => {
                let i = &p.folders[0].issues[0];
                format!("#{} {}", i.id, i.name)
            }
            _ => format!("{count} changes"),
        };
        format!("[{}] {what}", ctx.server_name)
    });
    let last = stamps.last().copied().unwrap_or(0);
    let mut mails = Vec::new();
    for (index, r) in sub.recipients.iter().enumerate() {
        if r.confirmed.is_none() {
            continue;
        }
        let token = subs::new_unsubscribe_token(
            w,
            sub.id,
            &r.address,
            now,
            now.saturating_add(ctx.unsubscribe_ttl),
        )?;
        let unsubscribe = ctx.unsubscribe_url(sub.id, &token);
        let view = DigestView {
            server_name: ctx.server_name.clone(),
            recipient_name: if to.is_empty() {
                "subscriber".into()
            } else {
                to.join(", ")
            },
            projects: projects.clone(),
            unsubscribe_url: Some(unsubscribe.clone()),
            // The `body` of the mailto URI: the subscriber's own note, shown at the foot.
            settings_hint: sub.body.clone(),
            footer: Vec::new(),
        };
        let (text, html) = templates.render_digest(&view).map_err(Error::internal)?;
        let mut m = ctx.mail(
            subject.clone(),
            format!("subscription-{}-{last}-{index}@{}", sub.id, ctx.host),
            now,
        );
        m.to = to.clone();
        m.cc = sub.confirmed(Role::Cc);
        m.envelope = vec![r.address.clone()];
        m.text = Some(text);
        m.html = Some(html);
        m.list_unsubscribe = Some(unsubscribe);
        mails.push(m);
    }
    Ok(mails)
}

impl crate::notify::Channel for Context {
    fn pass(&self, store: &Store, templates: &Templates, now: i64) -> Result<(usize, u64)> {
        pass(store, self, templates, now)
    }
}

/// The subscription part of a digest pass: every subscription with pending changes (at most
/// `max_per_pass`) gets one notification (one mail per confirmed recipient), queued in the
/// same write that clears its pending entries, one write per subscription. Returns (mails queued: one per recipient, last write's
/// sequence).
pub fn pass(store: &Store, ctx: &Context, templates: &Templates, now: i64) -> Result<(usize, u64)> {
    let (mut queued, mut last_seq) = (0, 0);
    let pending = store.read(|r| subs::pending(r, ctx.max_per_pass))?;
    for (id, stamps) in pending {
        let (sent, seq) = store.write(|w| {
            let mut sent = 0;
            if let Some(sub) = subs::get(w, id as i64)? {
                for m in notification(w, ctx, templates, &sub, &stamps, now)? {
                    enqueue(w, &sub, m, now)?;
                    sent += 1;
                }
            }
            for stamp in &stamps {
                subs::clear_one(w, id, *stamp);
            }
            Ok(sent)
        })?;
        queued += sent;
        last_seq = last_seq.max(seq);
    }
    if queued > 0 {
        tracing::debug!(queued, "subscription pass");
    }
    Ok((queued, last_seq))
}
