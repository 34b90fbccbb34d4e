//! 1.1's administration beyond 0.8: temporary passwords and LOGIN NEW, the renames,
//! modifications and forced deletions of types, attributes, folders and projects, MOVE
//! FOLDER. Checks and codes follow the reference (tests/wi11/20-admin.txt).

use super::command::Cmd11;
use super::handlers::{NAME_MAX, R, TEXT_MAX, check_name, check_text, shared, text_format};
use super::reply::{Code11, Reply11};
use crate::attributes::AttributeKind;
use crate::commands::{self, Cx};
use crate::protocol::Command;
use crate::store::users::ACCESS_ADMIN;
use crate::store::{Read, key, project_meta, projects, removal, types};

pub async fn run(cx: &mut Cx<'_>, cmd: Cmd11) -> R {
    use Cmd11 as C;
    match cmd {
        C::LoginNew {
            login,
            password,
            new_password,
        } => login_new(cx, login, password, new_password).await,
        C::RenameType { type_id, name } => {
            cx.admin()?;
            check_name(&name, NAME_MAX)?;
            shared(cx, Command::RenameType { type_id, name }).await
        }
        C::DeleteType { type_id, force } => {
            cx.admin()?;
            check_flag(force)?;
            cx.write(|w| {
                let t = types::require(w, type_id)?;
                if force == 1 {
                    for f in projects::all_folders(w)?
                        .into_iter()
                        .filter(|f| f.type_id == t.id)
                    {
                        removal::purge_folder(w, f.id)?;
                        projects::delete_folder(w, &f)?;
                    }
                }
                types::delete(w, type_id)
            })?;
            Ok(Reply11::Ok)
        }
        C::RenameAttribute { attribute, name } => {
            cx.admin()?;
            check_name(&name, NAME_MAX)?;
            shared(cx, Command::RenameAttribute { attribute, name }).await
        }
        C::ModifyAttribute {
            attribute,
            definition,
        } => {
            cx.admin()?;
            let old = cx.read(|r| types::require_attribute(r, attribute))?;
            let defs = &cx.shared.definitions;
            let (Ok(a), Ok(b)) = (defs.parse(&old.definition), defs.parse(&definition)) else {
                // The new one is invalid: the shared handler says why (322).
                return shared(
                    cx,
                    Command::ModifyAttribute {
                        attribute,
                        definition,
                    },
                )
                .await;
            };
            if !compatible(&a.kind, &b.kind) {
                return Err(Code11::IncompatibleType);
            }
            shared(
                cx,
                Command::ModifyAttribute {
                    attribute,
                    definition,
                },
            )
            .await
        }
        C::DeleteAttribute { attribute, force } => {
            cx.admin()?;
            check_flag(force)?;
            let a = cx.read(|r| types::require_attribute(r, attribute))?;
            if force == 0 && cx.read(|r| has_values(r, a.id))? {
                return Err(Code11::CannotDeleteAttribute);
            }
            shared(cx, Command::DeleteAttribute { attribute }).await
        }
        C::DeleteProject { project, force } => {
            let me = cx.admin()?;
            check_flag(force)?;
            cx.write(|w| {
                let (p, _) = projects::visible(w, &me, project)?;
                if force == 1 {
                    for f in projects::folders_of(w, p.id)? {
                        removal::purge_folder(w, f.id)?;
                        projects::delete_folder(w, &f)?;
                    }
                }
                projects::delete(w, &p)
            })?;
            Ok(Reply11::Ok)
        }
        C::DeleteFolder { folder, force } => {
            let me = cx.user()?;
            check_flag(force)?;
            cx.write(|w| {
                let (f, access) = projects::visible_folder(w, &me, folder)?;
                if access != ACCESS_ADMIN {
                    return Ok(Err(Code11::AccessDenied));
                }
                if force == 0 && !crate::store::issues::in_folder_since(w, f.id, 0)?.is_empty() {
                    return Ok(Err(Code11::CannotDeleteFolder));
                }
                // Its issues (with force) and the stubs of those that left it.
                removal::purge_folder(w, f.id)?;
                projects::delete_folder(w, &f)?;
                Ok(Ok(Reply11::Ok))
            })?
        }
        C::MoveFolder { folder, project } => {
            let me = cx.user()?;
            cx.write(|w| {
                let (f, access) = projects::visible_folder(w, &me, folder)?;
                if access != ACCESS_ADMIN {
                    return Ok(Err(Code11::AccessDenied));
                }
                let (p, to) = projects::visible(w, &me, project)?;
                if to != ACCESS_ADMIN {
                    return Ok(Err(Code11::AccessDenied));
                }
                if f.project == p.id {
                    return Ok(Ok(Reply11::Null));
                }
                projects::move_folder(w, f, p.id)?;
                Ok(Ok(Reply11::Ok))
            })?
        }
        C::SetProjectAccess { project, public } => {
            let me = cx.user()?;
            cx.write(|w| {
                let (p, access) = projects::visible(w, &me, project)?;
                if access != ACCESS_ADMIN {
                    return Ok(Err(Code11::AccessDenied));
                }
                if let Err(e) = check_flag(public) {
                    return Ok(Err(e));
                }
                Ok(Ok(if project_meta::set_public(w, p.id, public == 1)? {
                    Reply11::Ok
                } else {
                    Reply11::Null
                }))
            })?
        }
        C::ArchiveProject { project } => {
            let me = cx.admin()?;
            cx.write(|w| {
                let (p, _) = projects::visible(w, &me, project)?;
                project_meta::archive(w, p.id)
            })?;
            Ok(Reply11::Ok)
        }
        C::AddProjectDescription {
            project,
            text,
            format,
        } => project_description(cx, project, Some((text, format)), true),
        C::EditProjectDescription {
            project,
            text,
            format,
        } => project_description(cx, project, Some((text, format)), false),
        C::DeleteProjectDescription { project } => project_description(cx, project, None, false),
        other => super::edit::run(cx, other).await,
    }
}

/// ADD (`add`), EDIT (`text` and not `add`) and DELETE (no `text`) PROJECT DESCRIPTION:
/// rights (303, 301), then the text (325, 319, 327, 363), then whether one exists (362,
/// 361).
fn project_description(cx: &mut Cx, project: i64, text: Option<(String, i64)>, add: bool) -> R {
    let me = cx.user()?;
    cx.write(|w| {
        let (p, access) = projects::visible(w, &me, project)?;
        if access != ACCESS_ADMIN {
            return Ok(Err(Code11::AccessDenied));
        }
        let exists = project_meta::description(w, p.id)?.is_some();
        let Some((text, format)) = text else {
            if !exists {
                return Ok(Err(Code11::UnknownDescription));
            }
            let stamp = project_meta::delete_description(w, p.id, me.id)?;
            return Ok(Ok(Reply11::Id(stamp as i64)));
        };
        if let Err(e) = check_text(&text, TEXT_MAX) {
            return Ok(Err(e));
        }
        let format = match text_format(format) {
            Ok(f) => f,
            Err(e) => return Ok(Err(e)),
        };
        if add && exists {
            return Ok(Err(Code11::DescriptionExists));
        }
        if !add && !exists {
            return Ok(Err(Code11::UnknownDescription));
        }
        Ok(Ok(
            match project_meta::set_description(w, p.id, text, format, me.id)? {
                Some(stamp) => Reply11::Id(stamp as i64),
                None => Reply11::Null,
            },
        ))
    })?
}

/// A 0/1 flag of 1.1 (isTemp, force): 328 below, 329 above.
pub fn check_flag(v: i64) -> Result<(), Code11> {
    match v {
        0 | 1 => Ok(()),
        v if v < 0 => Err(Code11::NumberTooLittle),
        _ => Err(Code11::NumberTooGreat),
    }
}

/// Marks (1) or clears (0) a user's password as temporary: LOGIN answers 352 until LOGIN
/// NEW replaces it.
pub fn set_temporary(cx: &mut Cx, user: i64, temporary: i64) -> Result<(), Code11> {
    cx.write(|w| {
        let k = key("user-temp", &[user as u64]);
        if temporary == 1 {
            w.put(k, &())?;
        } else if w.exists(&k)? {
            w.remove(k);
        }
        Ok(())
    })?;
    Ok(())
}

/// After a successful LOGIN: a temporary password ends the session with 352.
pub fn refuse_temporary(cx: &mut Cx) -> Result<(), Code11> {
    let me = cx.user()?;
    if cx.read(|r| r.exists(&key("user-temp", &[me.id])))? {
        cx.session.user = None;
        return Err(Code11::MustChangePassword);
    }
    Ok(())
}

/// Logs in and replaces the password (any user's, temporary or not, as the reference).
async fn login_new(cx: &mut Cx<'_>, login: String, password: String, new: String) -> R {
    check_name(&new, NAME_MAX)?;
    let same = password == new;
    commands::system::login(cx, login, password).await?;
    if same {
        cx.session.user = None;
        return Err(Code11::CannotReusePassword);
    }
    let me = cx.user()?;
    shared(
        cx,
        Command::SetPassword {
            user: me.id as i64,
            password: new,
        },
    )
    .await?;
    set_temporary(cx, me.id as i64, 0)?;
    let mut out = Vec::new();
    super::reply::Out::line(&mut out, "U")
        .int(me.id as i64)
        .str(&me.name)
        .int(me.access)
        .end();
    Ok(Reply11::Lines(out))
}

/// TEXT, ENUM and USER change into each other; NUMERIC and DATETIME only into themselves.
fn compatible(a: &AttributeKind, b: &AttributeKind) -> bool {
    use AttributeKind as K;
    let class = |k: &AttributeKind| match k {
        K::Numeric { .. } => 1,
        K::DateTime { .. } => 2,
        _ => 0,
    };
    class(a) == class(b)
}

fn has_values(r: &impl Read, attribute: u64) -> crate::error::Result<bool> {
    let mut found = false;
    r.visit(b"value/", &mut |k, _| {
        if crate::store::keys::id_at("value", k, 1) == attribute {
            found = true;
        }
        Ok(())
    })?;
    Ok(found)
}
