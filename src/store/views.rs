//! 1.1 views and view settings (protocol-spec/webissues-1.1.md, "Views").
//!
//! `view/<id>` holds a [`View`]; `view-settings/<type>` the type's settings in the order
//! they were first set. Names are unique among a type's public views and among one user's
//! personal views of a type; the check scans the type's views (a handful per type).

use super::{Read, Writer, key};
use crate::error::Result;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    pub id: u64,
    pub type_id: u64,
    pub name: String,
    /// `VIEW columns=… sort-column=… [sort-desc=1] [filters={…}]`, verbatim.
    pub definition: String,
    /// The owner of a personal view; `None` for a public one.
    pub owner: Option<u64>,
}

pub fn get(r: &impl Read, id: i64) -> Result<Option<View>> {
    if id <= 0 {
        return Ok(None);
    }
    r.get(&key("view", &[id as u64]))
}

pub fn all(r: &impl Read) -> Result<Vec<View>> {
    Ok(r.scan::<View>(b"view/")?
        .into_iter()
        .map(|(_, v)| v)
        .collect())
}

/// The views of one scope: public (`None`) or one user's personal views, by the
/// `view-by/<owner or 0>/<id>` index, so no command reads other users' views.
pub fn of(r: &impl Read, owner: Option<u64>) -> Result<Vec<View>> {
    let mut out = Vec::new();
    for (k, _) in r.scan_raw(&key("view-by", &[owner.unwrap_or(0)]))? {
        if let Some(v) = get(r, super::keys::id_at("view-by", &k, 1) as i64)? {
            out.push(v);
        }
    }
    Ok(out)
}

/// The view as `user` may address it: public views and the user's own personal views.
pub fn visible(r: &impl Read, user: u64, id: i64) -> Result<Option<View>> {
    Ok(get(r, id)?.filter(|v| v.owner.is_none_or(|o| o == user)))
}

/// Whether another view of the same scope (public, or the same owner) has `name`.
pub fn name_taken(r: &impl Read, v: &View, name: &str) -> Result<bool> {
    Ok(of(r, v.owner)?
        .iter()
        .any(|o| o.id != v.id && o.type_id == v.type_id && o.name == name))
}

pub fn put(w: &mut Writer, v: &View) -> Result<()> {
    if let Some(old) = get(w, v.id as i64)? {
        w.remove(key("view-by", &[old.owner.unwrap_or(0), v.id]));
    }
    w.put(key("view-by", &[v.owner.unwrap_or(0), v.id]), &())?;
    w.put(key("view", &[v.id]), v)
}

pub fn insert(
    w: &mut Writer,
    type_id: u64,
    name: &str,
    definition: &str,
    owner: Option<u64>,
) -> Result<u64> {
    let id = w.next_id("view")?;
    put(
        w,
        &View {
            id,
            type_id,
            name: name.into(),
            definition: definition.into(),
            owner,
        },
    )?;
    Ok(id)
}

/// Deletes a view, the alerts tied to it and an `initial_view` setting naming it.
pub fn delete(w: &mut Writer, v: &View) -> Result<()> {
    w.remove(key("view", &[v.id]));
    w.remove(key("view-by", &[v.owner.unwrap_or(0), v.id]));
    for a in super::alerts::all(w)? {
        if a.view == v.id {
            super::alerts::delete(w, &a)?;
        }
    }
    if setting(w, v.type_id, "initial_view")?.as_deref() == Some(v.id.to_string().as_str()) {
        set_setting(w, v.type_id, "initial_view", "")?;
    }
    Ok(())
}

/// The settings of a type (`attribute_order`, `default_view`, `initial_view`).
pub fn settings(r: &impl Read, type_id: u64) -> Result<Vec<(String, String)>> {
    Ok(r.get(&key("view-settings", &[type_id]))?
        .unwrap_or_default())
}

pub fn setting(r: &impl Read, type_id: u64, name: &str) -> Result<Option<String>> {
    Ok(settings(r, type_id)?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v))
}

/// Sets (an empty value removes) a setting; `false` when nothing changed.
pub fn set_setting(w: &mut Writer, type_id: u64, name: &str, value: &str) -> Result<bool> {
    let mut all = settings(w, type_id)?;
    let old = all.iter().position(|(k, _)| k == name);
    match (old, value.is_empty()) {
        (Some(i), _) if all[i].1 == value => return Ok(false),
        (None, true) => return Ok(false),
        (Some(i), true) => {
            all.remove(i);
        }
        (Some(i), false) => all[i].1 = value.into(),
        (None, false) => all.push((name.into(), value.into())),
    }
    if all.is_empty() {
        w.remove(key("view-settings", &[type_id]));
        Ok(true)
    } else {
        w.put(key("view-settings", &[type_id]), &all)?;
        Ok(true)
    }
}

/// Removes the views and settings of a deleted type.
pub fn delete_type(w: &mut Writer, type_id: u64) -> Result<()> {
    for v in all(w)? {
        if v.type_id == type_id {
            delete(w, &v)?;
        }
    }
    w.remove(key("view-settings", &[type_id]));
    Ok(())
}
