//! 1.1 views and view settings (protocol-spec/webissues-1.1.md, "Views"), and the command
//! forms of views, alerts and subscriptions (their handlers are in [`super::alerts`]).

use super::handlers::check_name;
use super::reply::{Code11, Out, Reply11};
use super::token::Arg;
use crate::commands::Cx;
use crate::protocol::definition::{MetaValue, parse_definition};
use crate::store::users::ACCESS_ADMIN;
use crate::store::{Read, types, views};

type R = Result<Reply11, Code11>;

/// Longest view name.
const VIEW_NAME_MAX: usize = 40;
/// Most personal views of one user (protocol-spec/limits.md).
pub const PERSONAL_MAX: usize = 1000;
/// Longest view definition or setting value.
const DEFINITION_MAX: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewCmd {
    AddView {
        type_id: i64,
        name: String,
        definition: String,
        public: i64,
    },
    RenameView {
        view: i64,
        name: String,
    },
    ModifyView {
        view: i64,
        definition: String,
    },
    PublishView {
        view: i64,
        public: i64,
    },
    DeleteView {
        view: i64,
    },
    SetViewSetting {
        type_id: i64,
        key: String,
        value: String,
    },
    /// ADD ALERT (`global` false: `target` is a folder) and ADD GLOBAL ALERT (a type).
    AddAlert {
        global: bool,
        target: i64,
        view: i64,
        email: i64,
        days: String,
        hours: String,
        public: i64,
    },
    ModifyAlert {
        alert: i64,
        email: i64,
        days: String,
        hours: String,
    },
    DeleteAlert {
        alert: i64,
    },
    AddSubscription {
        issue: i64,
    },
    DeleteSubscription {
        subscription: i64,
    },
    SetPreference {
        user: i64,
        key: String,
        value: String,
    },
}

pub const SIGNATURES: &[(&str, &str)] = &[
    ("ADD VIEW", "issi"),
    ("RENAME VIEW", "is"),
    ("MODIFY VIEW", "is"),
    ("PUBLISH VIEW", "ii"),
    ("DELETE VIEW", "i"),
    ("SET VIEW SETTING", "iss"),
    ("ADD ALERT", "iiissi"),
    ("ADD GLOBAL ALERT", "iiissi"),
    ("MODIFY ALERT", "iiss"),
    ("DELETE ALERT", "i"),
    ("ADD SUBSCRIPTION", "i"),
    ("DELETE SUBSCRIPTION", "i"),
    ("SET PREFERENCE", "iss"),
];

/// The command for a name of [`SIGNATURES`] whose arguments were checked.
pub fn build(name: &str, args: &[Arg]) -> Option<ViewCmd> {
    let i = |n: usize| match args.get(n) {
        Some(Arg::Int(v)) => *v,
        _ => 0,
    };
    let s = |n: usize| match args.get(n) {
        Some(Arg::Str(v)) => v.clone(),
        _ => String::new(),
    };
    use ViewCmd as V;
    Some(match name {
        "ADD VIEW" => V::AddView {
            type_id: i(0),
            name: s(1),
            definition: s(2),
            public: i(3),
        },
        "RENAME VIEW" => V::RenameView {
            view: i(0),
            name: s(1),
        },
        "MODIFY VIEW" => V::ModifyView {
            view: i(0),
            definition: s(1),
        },
        "PUBLISH VIEW" => V::PublishView {
            view: i(0),
            public: i(1),
        },
        "DELETE VIEW" => V::DeleteView { view: i(0) },
        "SET VIEW SETTING" => V::SetViewSetting {
            type_id: i(0),
            key: s(1),
            value: s(2),
        },
        "ADD ALERT" | "ADD GLOBAL ALERT" => V::AddAlert {
            global: name == "ADD GLOBAL ALERT",
            target: i(0),
            view: i(1),
            email: i(2),
            days: s(3),
            hours: s(4),
            public: i(5),
        },
        "MODIFY ALERT" => V::ModifyAlert {
            alert: i(0),
            email: i(1),
            days: s(2),
            hours: s(3),
        },
        "DELETE ALERT" => V::DeleteAlert { alert: i(0) },
        "ADD SUBSCRIPTION" => V::AddSubscription { issue: i(0) },
        "DELETE SUBSCRIPTION" => V::DeleteSubscription { subscription: i(0) },
        "SET PREFERENCE" => V::SetPreference {
            user: i(0),
            key: s(1),
            value: s(2),
        },
        _ => return None,
    })
}

impl ViewCmd {
    pub fn encode(self) -> (&'static str, Vec<Arg>) {
        use Arg::{Int as I, Str as S};
        use ViewCmd as V;
        match self {
            V::AddView {
                type_id,
                name,
                definition,
                public,
            } => (
                "ADD VIEW",
                vec![I(type_id), S(name), S(definition), I(public)],
            ),
            V::RenameView { view, name } => ("RENAME VIEW", vec![I(view), S(name)]),
            V::ModifyView { view, definition } => ("MODIFY VIEW", vec![I(view), S(definition)]),
            V::PublishView { view, public } => ("PUBLISH VIEW", vec![I(view), I(public)]),
            V::DeleteView { view } => ("DELETE VIEW", vec![I(view)]),
            V::SetViewSetting {
                type_id,
                key,
                value,
            } => ("SET VIEW SETTING", vec![I(type_id), S(key), S(value)]),
            V::AddAlert {
                global,
                target,
                view,
                email,
                days,
                hours,
                public,
            } => (
                if global {
                    "ADD GLOBAL ALERT"
                } else {
                    "ADD ALERT"
                },
                vec![I(target), I(view), I(email), S(days), S(hours), I(public)],
            ),
            V::ModifyAlert {
                alert,
                email,
                days,
                hours,
            } => ("MODIFY ALERT", vec![I(alert), I(email), S(days), S(hours)]),
            V::DeleteAlert { alert } => ("DELETE ALERT", vec![I(alert)]),
            V::AddSubscription { issue } => ("ADD SUBSCRIPTION", vec![I(issue)]),
            V::DeleteSubscription { subscription } => {
                ("DELETE SUBSCRIPTION", vec![I(subscription)])
            }
            V::SetPreference { user, key, value } => {
                ("SET PREFERENCE", vec![I(user), S(key), S(value)])
            }
        }
    }
}

pub fn run(cx: &mut Cx, cmd: ViewCmd) -> R {
    use ViewCmd as V;
    match cmd {
        V::AddView {
            type_id,
            name,
            definition,
            public,
        } => add_view(cx, type_id, name, definition, public != 0),
        V::RenameView { view, name } => rename_view(cx, view, name),
        V::ModifyView { view, definition } => modify_view(cx, view, definition),
        V::PublishView { view, public } => publish_view(cx, view, public != 0),
        V::DeleteView { view } => delete_view(cx, view),
        V::SetViewSetting {
            type_id,
            key,
            value,
        } => set_view_setting(cx, type_id, key, value),
        V::SetPreference { user, key, value } => super::preferences::set(cx, user, key, value),
        other => super::alerts::run(cx, other),
    }
}

/// Runs a write whose checks answer 1.1 codes: the closure returns `Ok(Err(code))`
/// before it writes anything.
pub fn write11<T>(
    cx: &mut Cx,
    f: impl FnOnce(&mut crate::store::Writer) -> crate::error::Result<Result<T, Code11>>,
) -> Result<T, Code11> {
    cx.write(f).map_err(Code11::from)?
}

/// Checks a view definition against the columns of `type_id` (protocol-spec §5.3):
/// `VIEW columns="1,0,…" sort-column=c [sort-desc=1] [filters={…}]`.
pub fn check_definition(
    r: &impl Read,
    type_id: u64,
    definition: &str,
    filters_allowed: bool,
) -> Result<(), Code11> {
    if definition.chars().count() > DEFINITION_MAX {
        return Err(Code11::StringTooLong);
    }
    let def = parse_definition(definition).map_err(|_| Code11::InvalidDefinition)?;
    if def.kind != "VIEW" {
        return Err(Code11::InvalidDefinition);
    }
    let attributes: Vec<u64> = types::all_attributes(r)?
        .into_iter()
        .filter(|a| a.type_id == type_id)
        .map(|a| a.id)
        .collect();
    let known =
        |c: i64| (0..=5).contains(&c) || (c > 1000 && attributes.contains(&((c - 1000) as u64)));
    let (mut columns, mut sort) = (None, None);
    for (k, v) in &def.meta {
        match (k.as_str(), v) {
            ("columns", MetaValue::Str(c)) => columns = Some(c.clone()),
            ("sort-column", MetaValue::Int(c)) => sort = Some(*c),
            ("sort-desc", MetaValue::Int(0 | 1)) => {}
            ("filters", MetaValue::Array(f)) if filters_allowed => {
                for f in f {
                    let f = parse_definition(f).map_err(|_| Code11::InvalidDefinition)?;
                    let ops = [
                        "EQ", "NEQ", "CON", "BEG", "END", "IN", "GT", "LT", "GTE", "LTE",
                    ];
                    if !ops.contains(&f.kind.as_str()) {
                        return Err(Code11::InvalidDefinition);
                    }
                    match f.get("column") {
                        Some(MetaValue::Int(c)) if known(*c) => {}
                        Some(MetaValue::Int(_)) => return Err(Code11::UnknownColumn),
                        _ => return Err(Code11::InvalidDefinition),
                    }
                    if !matches!(f.get("value"), Some(MetaValue::Str(_))) {
                        return Err(Code11::InvalidDefinition);
                    }
                }
            }
            _ => return Err(Code11::InvalidDefinition),
        }
    }
    let (Some(columns), Some(sort)) = (columns, sort) else {
        return Err(Code11::InvalidDefinition);
    };
    let list = int_list(&columns)?;
    if list.len() < 2 || list[0] != 1 || list[1] != 0 {
        return Err(Code11::MissingColumn);
    }
    for (i, c) in list.iter().enumerate() {
        if list[..i].contains(c) {
            return Err(Code11::DuplicateItems);
        }
        if !known(*c) {
            return Err(Code11::UnknownColumn);
        }
    }
    if !list.contains(&sort) {
        return Err(Code11::UnknownColumn);
    }
    Ok(())
}

/// A comma-separated list of integers (no spaces): anything else is `332`.
pub fn int_list(s: &str) -> Result<Vec<i64>, Code11> {
    s.split(',')
        .map(|x| {
            if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) || x.len() > 9 {
                Err(Code11::InvalidFormat)
            } else {
                x.parse().map_err(|_| Code11::InvalidFormat)
            }
        })
        .collect()
}

fn add_view(cx: &mut Cx, type_id: i64, name: String, definition: String, public: bool) -> R {
    let me = cx.user()?;
    if public && me.access != ACCESS_ADMIN {
        return Err(Code11::AccessDenied);
    }
    check_name(&name, VIEW_NAME_MAX)?;
    let owner = (!public).then_some(me.id);
    write11(cx, |w| {
        let Some(t) = types::get(w, type_id)? else {
            return Ok(Err(Code11::UnknownType));
        };
        if let Err(e) = check_definition(w, t.id, &definition, true) {
            return Ok(Err(e));
        }
        let probe = views::View {
            id: 0,
            type_id: t.id,
            name: String::new(),
            definition: String::new(),
            owner,
        };
        if views::name_taken(w, &probe, &name)? {
            return Ok(Err(Code11::ViewExists));
        }
        if owner.is_some() && views::of(w, owner)?.len() >= PERSONAL_MAX {
            return Ok(Err(Code11::InvalidValue));
        }
        Ok(Ok(Reply11::Id(
            views::insert(w, t.id, &name, &definition, owner)? as i64,
        )))
    })
}

/// The view the caller may change: public views need a system administrator.
fn editable(w: &impl Read, me: &crate::store::users::User, id: i64) -> Result<views::View, Code11> {
    let v = views::visible(w, me.id, id)?.ok_or(Code11::UnknownView)?;
    if v.owner.is_none() && me.access != ACCESS_ADMIN {
        return Err(Code11::AccessDenied);
    }
    Ok(v)
}

fn rename_view(cx: &mut Cx, view: i64, name: String) -> R {
    let me = cx.user()?;
    cx.read(|r| Ok(editable(r, &me, view)))??;
    check_name(&name, VIEW_NAME_MAX)?;
    write11(cx, |w| {
        let mut v = match editable(w, &me, view) {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        if v.name == name {
            return Ok(Ok(Reply11::Null));
        }
        if views::name_taken(w, &v, &name)? {
            return Ok(Err(Code11::ViewExists));
        }
        v.name = name;
        views::put(w, &v)?;
        Ok(Ok(Reply11::Ok))
    })
}

fn modify_view(cx: &mut Cx, view: i64, definition: String) -> R {
    let me = cx.user()?;
    write11(cx, |w| {
        let mut v = match editable(w, &me, view) {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        if let Err(e) = check_definition(w, v.type_id, &definition, true) {
            return Ok(Err(e));
        }
        if v.definition == definition {
            return Ok(Ok(Reply11::Null));
        }
        v.definition = definition;
        views::put(w, &v)?;
        Ok(Ok(Reply11::Ok))
    })
}

fn publish_view(cx: &mut Cx, view: i64, public: bool) -> R {
    let me = cx.user()?;
    write11(cx, |w| {
        let Some(mut v) = views::visible(w, me.id, view)? else {
            return Ok(Err(Code11::UnknownView));
        };
        if me.access != ACCESS_ADMIN {
            return Ok(Err(Code11::AccessDenied));
        }
        if v.owner.is_none() == public {
            return Ok(Ok(Reply11::Null));
        }
        v.owner = (!public).then_some(me.id);
        if views::name_taken(w, &v, &v.name)? {
            return Ok(Err(Code11::ViewExists));
        }
        views::put(w, &v)?;
        Ok(Ok(Reply11::Ok))
    })
}

fn delete_view(cx: &mut Cx, view: i64) -> R {
    let me = cx.user()?;
    write11(cx, |w| {
        let v = match editable(w, &me, view) {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        views::delete(w, &v)?;
        Ok(Ok(Reply11::Ok))
    })
}

fn set_view_setting(cx: &mut Cx, type_id: i64, key: String, value: String) -> R {
    let me = cx.user()?;
    if me.access != ACCESS_ADMIN {
        return Err(Code11::AccessDenied);
    }
    write11(cx, |w| {
        let Some(t) = types::get(w, type_id)? else {
            return Ok(Err(Code11::UnknownType));
        };
        let check = match key.as_str() {
            _ if value.is_empty() => Ok(()),
            "default_view" => check_definition(w, t.id, &value, false),
            "initial_view" => match int_list(&value) {
                Ok(ids) if ids.len() == 1 => match views::get(w, ids[0])? {
                    Some(v) if v.owner.is_none() && v.type_id == t.id => Ok(()),
                    _ => Err(Code11::UnknownView),
                },
                _ => Err(Code11::InvalidFormat),
            },
            "attribute_order" => attribute_order(w, t.id, &value)?,
            _ => Err(Code11::InvalidSetting),
        };
        if !matches!(
            key.as_str(),
            "default_view" | "initial_view" | "attribute_order"
        ) {
            return Ok(Err(Code11::InvalidSetting));
        }
        if let Err(e) = check {
            return Ok(Err(e));
        }
        Ok(Ok(if views::set_setting(w, t.id, &key, &value)? {
            Reply11::Ok
        } else {
            Reply11::Null
        }))
    })
}

/// Every attribute of the type once (337 duplicates, 309 unknown, 344 missing).
fn attribute_order(
    r: &impl Read,
    type_id: u64,
    value: &str,
) -> crate::error::Result<Result<(), Code11>> {
    let ids = match int_list(value) {
        Ok(ids) => ids,
        Err(e) => return Ok(Err(e)),
    };
    let attributes: Vec<i64> = types::all_attributes(r)?
        .into_iter()
        .filter(|a| a.type_id == type_id)
        .map(|a| a.id as i64)
        .collect();
    for (i, id) in ids.iter().enumerate() {
        if ids[..i].contains(id) {
            return Ok(Err(Code11::DuplicateItems));
        }
        if !attributes.contains(id) {
            return Ok(Err(Code11::UnknownAttribute));
        }
    }
    if ids.len() != attributes.len() {
        return Ok(Err(Code11::MissingAttribute));
    }
    Ok(Ok(()))
}

/// LIST TYPES' `V` lines (public views and the caller's own) and `S` lines.
pub fn list_lines(r: &impl Read, me: u64, out: &mut Vec<u8>) -> crate::error::Result<()> {
    let mut all = views::of(r, None)?;
    all.extend(views::of(r, Some(me))?);
    all.sort_by_cached_key(|v| (v.type_id, v.owner.is_some(), v.name.to_lowercase()));
    for v in &all {
        Out::line(out, "V")
            .int(v.id as i64)
            .int(v.type_id as i64)
            .str(&v.name)
            .str(&v.definition)
            .int(i64::from(v.owner.is_none()))
            .end();
    }
    for t in types::all(r)? {
        for (k, v) in views::settings(r, t.id)? {
            Out::line(out, "S").int(t.id as i64).str(&k).str(&v).end();
        }
    }
    Ok(())
}
