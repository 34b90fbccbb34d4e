//! LIST TYPES, ADD/RENAME/DELETE TYPE, ADD/RENAME/MODIFY/DELETE ATTRIBUTE.
//!
//! Types are global and visible to every user; changing them is for server administrators,
//! so the 301 check comes before any lookup.

use super::Cx;
use crate::attributes::{AttributeDef, DefError};
use crate::error::{Code, Error, Result};
use crate::protocol::{Line, Reply};
use crate::store::{Read, issues, types, users};

pub fn list_types(cx: &mut Cx) -> Result<Reply> {
    cx.user()?;
    cx.read(|r| {
        let mut lines: Vec<Line> = types::all(r)?
            .into_iter()
            .map(|t| Line::new("T").int(t.id as i64).str(t.name))
            .collect();
        lines.extend(types::all_attributes(r)?.into_iter().map(|a| {
            Line::new("A")
                .int(a.id as i64)
                .int(a.type_id as i64)
                .str(a.name)
                .str(a.definition)
        }));
        Ok(Reply::Lines(lines))
    })
}

pub fn add_type(cx: &mut Cx, name: String) -> Result<Reply> {
    cx.admin()?;
    let id = cx.write(|w| types::insert(w, &name))?;
    Ok(Reply::Id(id as i64))
}

pub fn rename_type(cx: &mut Cx, type_id: i64, name: String) -> Result<Reply> {
    cx.admin()?;
    let changed = cx.write(|w| types::rename(w, type_id, &name))?;
    Ok(if changed { Reply::Ok } else { Reply::Null })
}

pub fn delete_type(cx: &mut Cx, type_id: i64) -> Result<Reply> {
    cx.admin()?;
    cx.write(|w| types::delete(w, type_id))?;
    Ok(Reply::Ok)
}

/// Parses a definition the way the server stores it: a USER default must name an existing
/// user (there is no project context for defaults).
pub fn check_definition(r: &impl Read, definition: &str) -> Result<AttributeDef> {
    AttributeDef::parse_with_users(definition, &|name, _| {
        matches!(users::id_by_name(r, name), Ok(Some(_)))
    })
    .map_err(definition_error)
}

fn definition_error(e: DefError) -> Error {
    let text = e.to_string();
    let detail = text
        .strip_prefix("invalid definition: ")
        .unwrap_or(&text)
        .to_string();
    Error::with(Code::InvalidDefinition, detail)
}

pub fn add_attribute(cx: &mut Cx, type_id: i64, name: String, definition: String) -> Result<Reply> {
    cx.admin()?;
    let id = cx.write(|w| {
        types::require(w, type_id)?;
        check_definition(w, &definition)?;
        types::insert_attribute(w, type_id, &name, &definition)
    })?;
    Ok(Reply::Id(id as i64))
}

pub fn rename_attribute(cx: &mut Cx, attribute: i64, name: String) -> Result<Reply> {
    cx.admin()?;
    cx.write(|w| {
        let old = types::require_attribute(w, attribute)?;
        if old.name == name {
            return Ok(Reply::Null);
        }
        let new = types::Attribute {
            name,
            ..old.clone()
        };
        types::update_attribute(w, &old, &new)?;
        Ok(Reply::Ok)
    })
}

/// Any valid definition may replace the old one, even of another kind; stored values are
/// kept as they are and only new values are checked against it (protocol-spec/tracker.md).
pub fn modify_attribute(cx: &mut Cx, attribute: i64, definition: String) -> Result<Reply> {
    cx.admin()?;
    cx.write(|w| {
        let old = types::require_attribute(w, attribute)?;
        check_definition(w, &definition)?;
        if old.definition == definition {
            return Ok(Reply::Null);
        }
        let new = types::Attribute {
            definition,
            ..old.clone()
        };
        types::update_attribute(w, &old, &new)?;
        Ok(Reply::Ok)
    })
}

pub fn delete_attribute(cx: &mut Cx, attribute: i64) -> Result<Reply> {
    cx.admin()?;
    cx.write(|w| {
        let a = types::require_attribute(w, attribute)?;
        issues::forget_attribute(w, a.id)?;
        types::delete_attribute(w, &a)
    })?;
    Ok(Reply::Ok)
}

#[cfg(test)]
mod tests {
    /// The types `initial_data = "webissues"` creates pass the check of ADD ATTRIBUTE.
    #[test]
    fn every_installer_definition_is_valid() {
        for (_, attributes) in crate::store::installer_types::TYPES {
            for (name, def) in attributes {
                crate::attributes::AttributeDef::parse(def)
                    .unwrap_or_else(|e| panic!("{name}: {def}: {e}"));
            }
        }
    }
}
