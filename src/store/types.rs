//! Issue types and their attributes, with the name indexes that keep names unique (types
//! globally, attributes within their type).

use super::{Read, Writer, key, key_str, keys};
use crate::error::{Code, Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueType {
    pub id: u64,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribute {
    pub id: u64,
    pub type_id: u64,
    pub name: String,
    /// The definition exactly as the client sent it (LIST TYPES echoes it verbatim).
    pub definition: String,
}

pub fn get(r: &impl Read, id: i64) -> Result<Option<IssueType>> {
    if id <= 0 {
        return Ok(None);
    }
    r.get(&key("type", &[id as u64]))
}

/// The type or `Unknown Type`.
pub fn require(r: &impl Read, id: i64) -> Result<IssueType> {
    get(r, id)?.ok_or_else(|| Error::new(Code::UnknownType))
}

pub fn all(r: &impl Read) -> Result<Vec<IssueType>> {
    Ok(r.scan::<IssueType>(b"type/")?
        .into_iter()
        .map(|(_, t)| t)
        .collect())
}

pub fn insert(w: &mut Writer, name: &str) -> Result<u64> {
    if w.exists(&key_str("type-name", name))? {
        return Err(Error::new(Code::TypeExists));
    }
    let id = w.next_id("type")?;
    w.put(key_str("type-name", name), &id)?;
    w.put(
        key("type", &[id]),
        &IssueType {
            id,
            name: name.into(),
        },
    )?;
    Ok(id)
}

/// Renames a type; `false` when the name is unchanged (nothing written).
pub fn rename(w: &mut Writer, id: i64, name: &str) -> Result<bool> {
    let mut t = require(w, id)?;
    if t.name == name {
        return Ok(false);
    }
    if w.exists(&key_str("type-name", name))? {
        return Err(Error::new(Code::TypeExists));
    }
    w.remove(key_str("type-name", &t.name));
    w.put(key_str("type-name", name), &t.id)?;
    t.name = name.into();
    w.put(key("type", &[t.id]), &t)?;
    Ok(true)
}

/// Deletes a type and its attributes. A type still used by a folder cannot go; since values
/// and history live only on issues of such folders, nothing else refers to it then.
pub fn delete(w: &mut Writer, id: i64) -> Result<()> {
    let t = require(w, id)?;
    if w.any(&prefix("type-folder", t.id))? {
        return Err(Error::with(
            Code::CannotDeleteType,
            "folders still use this type",
        ));
    }
    for a in attributes_of(w, t.id)? {
        w.remove(key("attr", &[a.id]));
    }
    w.remove_prefix(&prefix("type-attr", t.id))?;
    w.remove(key_str("type-name", &t.name));
    w.remove(key("type", &[t.id]));
    Ok(())
}

pub fn attribute(r: &impl Read, id: i64) -> Result<Option<Attribute>> {
    if id <= 0 {
        return Ok(None);
    }
    r.get(&key("attr", &[id as u64]))
}

/// The attribute or `Unknown Attribute`.
pub fn require_attribute(r: &impl Read, id: i64) -> Result<Attribute> {
    attribute(r, id)?.ok_or_else(|| Error::new(Code::UnknownAttribute))
}

/// Every attribute of every type, in id order.
pub fn all_attributes(r: &impl Read) -> Result<Vec<Attribute>> {
    Ok(r.scan::<Attribute>(b"attr/")?
        .into_iter()
        .map(|(_, a)| a)
        .collect())
}

/// The attributes of one type, in id order.
pub fn attributes_of(r: &impl Read, type_id: u64) -> Result<Vec<Attribute>> {
    let mut out = Vec::new();
    for (k, _) in r.scan_raw(&prefix("type-attr", type_id))? {
        if let Some(a) = r.get(&key("attr", &[keys::id_at("type-attr", &k, 1)]))? {
            out.push(a);
        }
    }
    Ok(out)
}

fn name_taken(r: &impl Read, type_id: u64, name: &str) -> Result<bool> {
    Ok(attributes_of(r, type_id)?.iter().any(|a| a.name == name))
}

/// Adds an attribute; the caller has checked the definition.
pub fn insert_attribute(w: &mut Writer, type_id: i64, name: &str, definition: &str) -> Result<u64> {
    let t = require(w, type_id)?;
    if name_taken(w, t.id, name)? {
        return Err(Error::new(Code::AttributeExists));
    }
    let id = w.next_id("attr")?;
    let a = Attribute {
        id,
        type_id: t.id,
        name: name.into(),
        definition: definition.into(),
    };
    w.put(key("type-attr", &[t.id, id]), &())?;
    w.put(key("attr", &[id]), &a)?;
    Ok(id)
}

/// Stores a renamed or redefined attribute (name uniqueness checked here).
pub fn update_attribute(w: &mut Writer, old: &Attribute, new: &Attribute) -> Result<()> {
    if old.name != new.name && name_taken(w, old.type_id, &new.name)? {
        return Err(Error::new(Code::AttributeExists));
    }
    w.put(key("attr", &[new.id]), new)
}

/// Removes the attribute record and its index entry (values and history are removed by
/// [`super::issues::forget_attribute`]).
pub fn delete_attribute(w: &mut Writer, a: &Attribute) -> Result<()> {
    w.remove(key("type-attr", &[a.type_id, a.id]));
    w.remove(key("attr", &[a.id]));
    Ok(())
}

/// `name/<id>/`: the prefix of every key under one id.
pub(super) fn prefix(name: &str, id: u64) -> Vec<u8> {
    let mut p = key(name, &[id]);
    p.push(b'/');
    p
}

/// The type every new server starts with, so a fresh install can file bugs at once.
pub fn create_default_types(w: &mut Writer) -> Result<()> {
    let bugs = insert(w, "Bugs")? as i64;
    for (name, def) in DEFAULT_BUG_ATTRIBUTES {
        insert_attribute(w, bugs, name, def)?;
    }
    Ok(())
}

/// Attributes of the predefined "Bugs" type.
pub const DEFAULT_BUG_ATTRIBUTES: [(&str, &str); 3] = [
    (
        "Status",
        r#"ENUM items={"New","Open","Fixed","Closed"} default="New" required=1"#,
    ),
    (
        "Severity",
        r#"ENUM items={"Low","Medium","High","Critical"} default="Medium" required=1"#,
    ),
    ("Assigned To", "USER members=1"),
];
