//! SUBSCRIBE FOLDER, SUBSCRIBE ISSUE, LIST SUBSCRIPTIONS, DELETE SUBSCRIPTION,
//! CONFIRM SUBSCRIPTION (feature `subscribe`, protocol-spec/subscriptions.md).
//!
//! A subscription of somebody else's is "unknown" (310) to everyone but its creator and
//! server administrators, exactly like an id that does not exist, so ids cannot be probed.

use super::Cx;
use crate::error::{Code, Error, Result};
use crate::mail::Templates;
use crate::protocol::command::Id;
use crate::protocol::{Line, Reply};
use crate::store::issues::now;
use crate::store::subscriptions::{self as subs, Recipient, Subscription, Target};
use crate::store::token;
use crate::store::users::{ACCESS_ADMIN, User};
use crate::store::{Read, issues, projects};
use crate::subscribe::mail::Context;
use crate::subscribe::mailto::Mailto;
use crate::subscribe::{mail, options, rate};

/// The longest TTL accepted: 100 years is "forever" for anyone who did not say 0.
const MAX_TTL: i64 = 100 * 365 * 24 * 3600;

/// The feature switch: without `subscribe` in LIST FEATURES these commands do not exist.
fn enabled<'a>(cx: &Cx<'a>) -> Result<(&'a Context, &'a Templates)> {
    cx.shared.subscriptions().ok_or_else(|| {
        Error::with(
            Code::UnknownCommand,
            "subscriptions are disabled on this server",
        )
    })
}

/// SUBSCRIBE FOLDER.
pub fn subscribe_folder(
    cx: &mut Cx,
    folder: Id,
    subscriber: String,
    ttl: i64,
    options: String,
) -> Result<Reply> {
    subscribe(
        cx,
        Target::Folder(folder.max(0) as u64),
        subscriber,
        ttl,
        options,
    )
}

/// SUBSCRIBE ISSUE.
pub fn subscribe_issue(
    cx: &mut Cx,
    issue: Id,
    subscriber: String,
    ttl: i64,
    options: String,
) -> Result<Reply> {
    subscribe(
        cx,
        Target::Issue(issue.max(0) as u64),
        subscriber,
        ttl,
        options,
    )
}

fn subscribe(
    cx: &mut Cx,
    target: Target,
    subscriber: String,
    ttl: i64,
    options: String,
) -> Result<Reply> {
    let (ctx, templates) = enabled(cx)?;
    let me = cx.user()?;
    // Visibility first: an outsider learns nothing about the URI checks of a folder they
    // cannot see.
    let place = cx.read(|r| describe(r, &me, target))?;
    let mailto =
        Mailto::parse(&subscriber).map_err(|e| Error::with(Code::InvalidValue, e.to_string()))?;
    let delivery =
        options::resolve(mailto, &options).map_err(|e| Error::with(Code::InvalidValue, e))?;
    if !(0..=MAX_TTL).contains(&ttl) {
        return Err(Error::with(
            Code::InvalidValue,
            format!("ttl must be 0 (never expires) to {MAX_TTL} seconds"),
        ));
    }
    let cfg = &cx.shared.config.subscribe;
    let time = now();
    let reply = cx.write(|w| {
        let mine = subs::of_user(w, me.id)?;
        // Repeating a SUBSCRIBE returns the live subscription without mailing anyone again:
        // re-posting must not be a way to flood an address with confirmation requests.
        if let Some(s) = mine.iter().find(|s| {
            s.target == target
                && s.subscriber == subscriber
                && s.options == options
                && s.status(time) != subs::Status::Expired
                && (s.status(time) == subs::Status::Active || time < s.confirm_expires)
        }) {
            return Ok(Reply::Id(s.id as i64));
        }
        if me.access != ACCESS_ADMIN && mine.len() >= cfg.max_per_user {
            return Err(Error::with(
                Code::InvalidValue,
                format!(
                    "at most {} subscriptions per user; delete some first",
                    cfg.max_per_user
                ),
            ));
        }
        let addresses: Vec<String> = delivery.recipients.iter().map(|(a, _)| a.clone()).collect();
        rate::charge(w, cfg, me.id, &addresses, time)?;
        let mut tokens = Vec::new();
        let recipients = delivery
            .recipients
            .iter()
            .map(|(address, role)| {
                let (t, hash) = token::generate();
                tokens.push(t);
                Recipient {
                    address: address.clone(),
                    role: *role,
                    confirm: Some(hash),
                    confirmed: None,
                }
            })
            .collect();
        let sub = Subscription {
            id: 0,
            owner: me.id,
            target,
            subscriber: subscriber.clone(),
            options: options.clone(),
            subject: delivery.subject.clone(),
            body: delivery.body.clone(),
            recipients,
            ttl,
            created: time,
            expires: (ttl > 0).then(|| time + ttl),
            confirm_expires: time.saturating_add(ctx.confirm_ttl),
        };
        let id = subs::insert(w, sub)?;
        let sub = subs::get(w, id as i64)?.ok_or_else(|| Error::internal("lost subscription"))?;
        for (index, token) in tokens.iter().enumerate() {
            let m = mail::confirmation(ctx, templates, &sub, index, token, &place)?;
            mail::enqueue(w, &sub, m, time)?;
        }
        tracing::info!(subscription = id, user = %me.login, "subscription created");
        Ok(Reply::Id(id as i64))
    })?;
    // The confirmation mail leaves now, not at the next timer tick.
    if let Some(n) = &cx.shared.notifier {
        n.kick(cx.wrote);
    }
    Ok(reply)
}

/// What a subscription follows, in words for the confirmation mail; `Unknown Folder` or
/// `Unknown Issue` when `user` may not see it.
fn describe(r: &impl Read, user: &User, target: Target) -> Result<String> {
    match target {
        Target::Folder(f) => {
            let (folder, _) = projects::visible_folder(r, user, f as i64)?;
            let project = projects::get(r, folder.project as i64)?
                .map(|p| p.name)
                .unwrap_or_default();
            Ok(format!("folder {} in project {}", folder.name, project))
        }
        Target::Issue(i) => {
            let (issue, folder) = issues::visible(r, user, i as i64)?;
            Ok(format!(
                "issue #{} \"{}\" in folder {}",
                issue.id, issue.name, folder.name
            ))
        }
    }
}

/// `S id userId folderId issueId 'subscriber' ttl expires 'status' 'options'`: the caller's
/// subscriptions, everyone's for a server administrator.
pub fn list(cx: &mut Cx) -> Result<Reply> {
    enabled(cx)?;
    let me = cx.user()?;
    let time = now();
    let list = cx.read(|r| {
        if me.access == ACCESS_ADMIN {
            subs::all(r)
        } else {
            subs::of_user(r, me.id)
        }
    })?;
    Ok(Reply::Lines(
        list.into_iter()
            .map(|s| {
                let (folder, issue) = match s.target {
                    Target::Folder(f) => (f, 0),
                    Target::Issue(i) => (0, i),
                };
                Line::new("S")
                    .int(s.id as i64)
                    .int(s.owner as i64)
                    .int(folder as i64)
                    .int(issue as i64)
                    .str(s.subscriber.clone())
                    .int(s.ttl)
                    .int(s.expires.unwrap_or(0))
                    .str(s.status(time).as_str())
                    .str(s.options.clone())
            })
            .collect(),
    ))
}

/// The subscription if `user` created it or is a server administrator; else 310.
fn own(r: &impl Read, user: &User, id: i64) -> Result<Subscription> {
    match subs::get(r, id)? {
        Some(s) if s.owner == user.id || user.access == ACCESS_ADMIN => Ok(s),
        _ => Err(Error::new(Code::UnknownSubscription)),
    }
}

pub fn delete(cx: &mut Cx, id: i64) -> Result<Reply> {
    enabled(cx)?;
    let me = cx.user()?;
    cx.write(|w| {
        let s = own(w, &me, id)?;
        subs::delete(w, &s)?;
        Ok(Reply::Ok)
    })
}

pub fn confirm(cx: &mut Cx, id: i64, token: String) -> Result<Reply> {
    enabled(cx)?;
    let me = cx.user()?;
    let time = now();
    cx.write(|w| {
        let mut s = own(w, &me, id)?;
        subs::confirm(&mut s, &token, time)?;
        subs::update(w, &s)?;
        tracing::info!(subscription = id, "subscription confirmed by protocol");
        Ok(Reply::Ok)
    })
}
