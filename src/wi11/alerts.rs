//! 1.1 alerts and issue subscriptions over the one notification model of
//! [`crate::store::alerts`] (protocol-spec/webissues-1.1.md "Alerts",
//! protocol-spec/notifications.md "One model for 0.8 and 1.1").

use super::reply::{Code11, Out, Reply11};
use super::views::{ViewCmd, int_list, write11};
use crate::commands::Cx;
use crate::store::alerts::{self, Alert};
use crate::store::users::{ACCESS_ADMIN, User};
use crate::store::{Read, issues, projects, types, views};

type R = Result<Reply11, Code11>;

pub fn run(cx: &mut Cx, cmd: ViewCmd) -> R {
    let me = cx.user()?;
    let limit = match cx.shared.config.limits.max_watches_per_user {
        0 => usize::MAX,
        n => n,
    };
    match cmd {
        ViewCmd::AddAlert {
            global,
            target,
            view,
            email,
            days,
            hours,
            public,
        } => write11(cx, |w| {
            Ok(add_alert(
                w,
                &me,
                global,
                target,
                view,
                email,
                days,
                hours,
                public != 0,
                limit,
            ))
        }),
        ViewCmd::ModifyAlert {
            alert,
            email,
            days,
            hours,
        } => write11(cx, |w| {
            let mut a = match editable(w, &me, alert)? {
                Ok(a) => a,
                Err(e) => return Ok(Err(e)),
            };
            if let Err(e) = check_email(email, &days, &hours) {
                return Ok(Err(e));
            }
            if (a.email as i64, a.days.as_str(), a.hours.as_str())
                == (email, days.as_str(), hours.as_str())
            {
                return Ok(Ok(Reply11::Null));
            }
            (a.email, a.days, a.hours) = (email as u8, days, hours);
            alerts::put(w, &a)?;
            Ok(Ok(Reply11::Ok))
        }),
        ViewCmd::DeleteAlert { alert } => write11(cx, |w| {
            let a = match editable(w, &me, alert)? {
                Ok(a) => a,
                Err(e) => return Ok(Err(e)),
            };
            alerts::delete(w, &a)?;
            Ok(Ok(Reply11::Ok))
        }),
        ViewCmd::AddSubscription { issue } => write11(cx, |w| {
            let Ok((i, _)) = issues::visible(w, &me, issue) else {
                return Ok(Err(Code11::UnknownIssue));
            };
            if alerts::subscription(w, me.id, i.id)?.is_some() {
                return Ok(Err(Code11::SubscriptionExists));
            }
            if alerts::of(w, Some(me.id))?.len() + alerts::subscriptions_of(w, me.id)? >= limit {
                return Ok(Err(Code11::InvalidValue));
            }
            let id = alerts::set_subscription(w, me.id, i.id, true)?.unwrap_or(0);
            Ok(Ok(Reply11::Id(id as i64)))
        }),
        ViewCmd::DeleteSubscription { subscription } => {
            write11(cx, |w| match alerts::subscription_by_id(w, subscription)? {
                Some((user, issue)) if user == me.id => {
                    alerts::set_subscription(w, user, issue, false)?;
                    Ok(Ok(Reply11::Ok))
                }
                _ => Ok(Err(Code11::UnknownSubscription)),
            })
        }
        _ => Err(Code11::UnknownCommand),
    }
}

/// `alertEmail` 0–3; summaries (2, 3) need days (0–6) and hours (0–23), the others none.
fn check_email(email: i64, days: &str, hours: &str) -> Result<(), Code11> {
    if !(0..=3).contains(&email) {
        return Err(Code11::InvalidAlertEmail);
    }
    if email < 2 {
        if !days.is_empty() || !hours.is_empty() {
            return Err(Code11::InvalidValue);
        }
        return Ok(());
    }
    for (list, max) in [(days, 6), (hours, 23)] {
        if list.is_empty() {
            return Err(Code11::EmptyValue);
        }
        let items = int_list(list)?;
        if items.iter().any(|&x| x > max) {
            return Err(Code11::NumberTooGreat);
        }
        if items
            .iter()
            .enumerate()
            .any(|(i, x)| items[..i].contains(x))
        {
            return Err(Code11::DuplicateItems);
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn add_alert(
    w: &mut crate::store::Writer,
    me: &User,
    global: bool,
    target: i64,
    view: i64,
    email: i64,
    days: String,
    hours: String,
    public: bool,
    limit: usize,
) -> Result<Reply11, Code11> {
    let (folder, type_id) = if global {
        let t = types::get(w, target)?.ok_or(Code11::UnknownType)?;
        if public && me.access != ACCESS_ADMIN {
            return Err(Code11::AccessDenied);
        }
        (0, t.id)
    } else {
        let (f, access) =
            projects::visible_folder(w, me, target).map_err(|_| Code11::UnknownFolder)?;
        // A public folder alert needs a project administrator.
        if public && access < ACCESS_ADMIN {
            return Err(Code11::AccessDenied);
        }
        (f.id, f.type_id)
    };
    let view = match view {
        0 => 0,
        v => match views::visible(w, me.id, v)? {
            Some(v) if v.type_id == type_id && (!public || v.owner.is_none()) => v.id,
            _ => return Err(Code11::UnknownView),
        },
    };
    check_email(email, &days, &hours)?;
    let same = |a: &Alert| {
        a.folder == folder && a.type_id == (type_id * u64::from(global)) && a.view == view
    };
    let public_ones = alerts::of(w, None)?;
    let mine = alerts::of(w, Some(me.id))?;
    if public_ones.iter().any(same) || (!public && mine.iter().any(same)) {
        return Err(Code11::AlertExists);
    }
    if public {
        // A public alert replaces everybody's personal alert on the same folder and view.
        for a in alerts::all(w)?.iter().filter(|a| same(a)) {
            alerts::delete(w, a)?;
        }
    } else if mine.len() + alerts::subscriptions_of(w, me.id)? >= limit {
        // Personal alerts and subscriptions are watches: one budget.
        return Err(Code11::InvalidValue);
    }
    let id = w.next_id("alert")?;
    alerts::put(
        w,
        &Alert {
            id,
            owner: (!public).then_some(me.id),
            folder,
            type_id: if global { type_id } else { 0 },
            view,
            email: email as u8,
            days,
            hours,
        },
    )?;
    Ok(Reply11::Id(id as i64))
}

/// The alert the caller may change: their own, or a public one for an administrator
/// (1.1.5 lets any member change a public alert for everybody; webissued does not).
fn editable(r: &impl Read, me: &User, id: i64) -> crate::error::Result<Result<Alert, Code11>> {
    let Some(a) = alerts::get(r, id)? else {
        return Ok(Err(Code11::UnknownAlert));
    };
    Ok(match a.owner {
        Some(o) if o == me.id => Ok(a),
        Some(_) => Err(Code11::UnknownAlert),
        None if me.access == ACCESS_ADMIN => Ok(a),
        None if visible(r, me, &a)? => Err(Code11::AccessDenied),
        None => Err(Code11::UnknownAlert),
    })
}

/// Whether the alert's folder (or for a global alert, its type) is visible to `me`.
fn visible(r: &impl Read, me: &User, a: &Alert) -> crate::error::Result<bool> {
    if a.folder == 0 {
        return Ok(types::get(r, a.type_id as i64)?.is_some());
    }
    Ok(projects::visible_folder(r, me, a.folder as i64).is_ok())
}

/// LIST PROJECTS' `A` lines: the caller's alerts and the public ones, on visible folders.
pub fn list_lines(r: &impl Read, me: &User, out: &mut Vec<u8>) -> crate::error::Result<()> {
    for a in alerts::of(r, None)?
        .into_iter()
        .chain(alerts::of(r, Some(me.id))?)
    {
        if !visible(r, me, &a)? {
            continue;
        }
        Out::line(out, "A")
            .int(a.id as i64)
            .int(a.folder as i64)
            .int(a.type_id as i64)
            .int(a.view as i64)
            .int(a.email)
            .str(&a.days)
            .str(&a.hours)
            .int(i64::from(a.owner.is_none()))
            .end();
    }
    Ok(())
}
