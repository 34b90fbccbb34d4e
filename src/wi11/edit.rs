//! 1.1's edits and deletions of comments, files and descriptions, MOVE ISSUE and DELETE
//! ISSUE, over [`crate::store::removal`]. Codes and no-op replies follow the reference
//! (tests/wi11/21-issues.txt): an unchanged comment or description is `NULL`, an
//! unchanged file `ID 0`.

use super::command::Cmd11;
use super::handlers::{
    FILE_DESCRIPTION_MAX, FILE_NAME_MAX, R, TEXT_MAX, check_name, check_text, text_format,
};
use super::reply::{Code11, Reply11};
use crate::commands::Cx;
use crate::store::issues::{self, Issue, Row};
use crate::store::projects::{self, Folder};
use crate::store::users::{ACCESS_ADMIN, User};
use crate::store::{Read, descriptions, removal};

pub async fn run(cx: &mut Cx<'_>, cmd: Cmd11) -> R {
    use Cmd11 as C;
    let me = cx.user()?;
    match cmd {
        C::MoveIssue { issue, folder } => cx.write(|w| {
            let (mut i, from) = issues::visible(w, &me, issue)?;
            if !padmin(w, &me, &from)? {
                return Ok(Err(Code11::AccessDenied));
            }
            let (to, access) = projects::visible_folder(w, &me, folder)?;
            if to.id == from.id {
                return Ok(Ok(Reply11::Null));
            }
            if access != ACCESS_ADMIN {
                return Ok(Err(Code11::AccessDenied));
            }
            if to.type_id != from.type_id {
                // The reference accepts it (and keeps values of the other type): not us.
                return Ok(Err(Code11::InvalidValue));
            }
            let stamp = removal::move_issue(w, &mut i, &from, &to, me.id)?;
            Ok(Ok(Reply11::Id(stamp as i64)))
        })?,
        C::DeleteIssue { issue } => cx.write(|w| {
            let (i, f) = issues::visible(w, &me, issue)?;
            if !padmin(w, &me, &f)? {
                return Ok(Err(Code11::AccessDenied));
            }
            let stamp = removal::delete_issue(w, &i, &f, me.id)?;
            Ok(Ok(Reply11::Id(stamp as i64)))
        })?,
        C::EditComment {
            comment,
            text,
            format,
        } => cx.write(|w| {
            let Some((mut i, f, Row::Comment(c))) = item(w, &me, comment)? else {
                return Ok(Err(Code11::UnknownComment));
            };
            if c.user != me.id && !padmin(w, &me, &f)? {
                return Ok(Err(Code11::AccessDenied));
            }
            if let Err(e) = check_text(&text, TEXT_MAX) {
                return Ok(Err(e));
            }
            let format = match text_format(format) {
                Ok(v) => v,
                Err(e) => return Ok(Err(e)),
            };
            if c.text == text && descriptions::comment_format(w, c.id)? == format {
                return Ok(Ok(Reply11::Null));
            }
            let id = c.id;
            let new = Row::Comment(issues::Comment { text, ..c });
            let stamp = removal::edit_row(w, &mut i, &f, new, me.id, "edited a comment")?;
            if format == 0 {
                w.remove(crate::store::key("comment-format", &[id]));
            }
            descriptions::set_comment_format(w, id, format)?;
            Ok(Ok(Reply11::Id(stamp as i64)))
        })?,
        C::DeleteComment { comment } => cx.write(|w| {
            let author = |r: &Row| match r {
                Row::Comment(c) => Some(c.user),
                _ => None,
            };
            delete_own(
                w,
                &me,
                comment,
                author,
                Code11::UnknownComment,
                "deleted a comment",
            )
        })?,
        C::EditAttachment {
            file,
            name,
            description,
        } => cx.write(|w| {
            let Some((mut i, f, Row::Attachment(a))) = item(w, &me, file)? else {
                return Ok(Err(Code11::UnknownFile));
            };
            if a.user != me.id && !padmin(w, &me, &f)? {
                return Ok(Err(Code11::AccessDenied));
            }
            if let Err(e) = check_name(&name, FILE_NAME_MAX) {
                return Ok(Err(e));
            }
            if !description.is_empty()
                && let Err(e) = check_name(&description, FILE_DESCRIPTION_MAX)
            {
                return Ok(Err(e));
            }
            if a.name == name && a.description == description {
                // The reference's quirk: `ID 0`, not NULL.
                return Ok(Ok(Reply11::Id(0)));
            }
            let new = Row::Attachment(issues::Attachment {
                name,
                description,
                ..a
            });
            let stamp = removal::edit_row(w, &mut i, &f, new, me.id, "edited a file")?;
            Ok(Ok(Reply11::Id(stamp as i64)))
        })?,
        C::DeleteAttachment { file } => cx.write(|w| {
            let author = |r: &Row| match r {
                Row::Attachment(a) => Some(a.user),
                _ => None,
            };
            delete_own(w, &me, file, author, Code11::UnknownFile, "deleted a file")
        })?,
        C::EditDescription {
            issue,
            text,
            format,
        } => cx.write(|w| {
            let (mut i, f) = issues::visible(w, &me, issue)?;
            if i.created_by != me.id && !padmin(w, &me, &f)? {
                return Ok(Err(Code11::AccessDenied));
            }
            if let Err(e) = check_text(&text, TEXT_MAX) {
                return Ok(Err(e));
            }
            let format = match text_format(format) {
                Ok(v) => v,
                Err(e) => return Ok(Err(e)),
            };
            let Some(old) = descriptions::get(w, i.id)? else {
                return Ok(Err(Code11::UnknownDescription));
            };
            Ok(Ok(
                match removal::edit_description(w, &mut i, &f, &old, text, format, me.id)? {
                    Some(stamp) => Reply11::Id(stamp as i64),
                    None => Reply11::Null,
                },
            ))
        })?,
        C::DeleteDescription { issue } => cx.write(|w| {
            let (mut i, f) = issues::visible(w, &me, issue)?;
            if i.created_by != me.id && !padmin(w, &me, &f)? {
                return Ok(Err(Code11::AccessDenied));
            }
            if descriptions::get(w, i.id)?.is_none() {
                return Ok(Err(Code11::UnknownDescription));
            }
            let stamp = removal::delete_description(w, &mut i, &f, me.id)?;
            Ok(Ok(Reply11::Id(stamp as i64)))
        })?,
        _ => Err(Code11::UnknownCommand),
    }
}

/// Whether `me` administers the folder's project (system administrators do).
/// DELETE COMMENT and DELETE ATTACHMENT: the row's author (`author` also says whether the
/// id names a row of the right kind) or a project administrator removes it.
fn delete_own(
    w: &mut crate::store::Writer,
    me: &User,
    id: i64,
    author: impl Fn(&Row) -> Option<u64>,
    unknown: Code11,
    what: &str,
) -> crate::error::Result<Result<Reply11, Code11>> {
    let Some((mut i, f, row)) = item(w, me, id)? else {
        return Ok(Err(unknown));
    };
    let Some(by) = author(&row) else {
        return Ok(Err(unknown));
    };
    if by != me.id && !padmin(w, me, &f)? {
        return Ok(Err(Code11::AccessDenied));
    }
    let stamp = removal::delete_row(w, &mut i, &f, &row, me.id, what)?;
    Ok(Ok(Reply11::Id(stamp as i64)))
}

fn padmin(r: &impl Read, me: &User, f: &Folder) -> crate::error::Result<bool> {
    Ok(projects::folder_access(r, me, f.project)? == Some(ACCESS_ADMIN))
}

/// The comment or file `id` with its issue and folder, if the caller can see it.
fn item(r: &impl Read, me: &User, id: i64) -> crate::error::Result<Option<(Issue, Folder, Row)>> {
    let Some(issue) = issues::owner_of_item(r, id)? else {
        return Ok(None);
    };
    if issue as i64 == id {
        return Ok(None);
    }
    let Ok((i, f)) = issues::visible(r, me, issue as i64) else {
        return Ok(None);
    };
    Ok(removal::row(r, issue, id as u64)?.map(|row| (i, f, row)))
}
