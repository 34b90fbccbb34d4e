//! The 1.1 commands over the shared domain. Reply groups come in the order the 1.1.5
//! client validates (protocol-spec/webissues-1.1.md); within a group, users, projects,
//! folders, types and attributes are sorted by name as the reference does.

use super::command::Cmd11;
use super::reply::{Code11, Out, Reply11};
use crate::attributes::{AttributeKind, ValueError};
use crate::commands::{self, Cx};
use crate::error::Code;
use crate::protocol::{Command, Reply};
use crate::store::issues::{self, Issue, Row};
use crate::store::users::{ACCESS_ADMIN, ACCESS_NONE, User};
use crate::store::{
    EventKind, IssueEvent, Read, descriptions, key, project_meta, projects, read_state, removal,
};
use crate::store::{types, users};
use std::sync::Arc;

pub(super) type R = Result<Reply11, Code11>;

/// Longest names (users, types, attributes, projects, folders) and logins.
pub(super) const NAME_MAX: usize = 40;
/// Longest issue name.
const ISSUE_NAME_MAX: usize = 255;
/// Longest comment or description (`comment_max_length` in GET SETTINGS).
pub(super) const TEXT_MAX: usize = 10_000;
/// Longest file name and file description.
pub(super) const FILE_NAME_MAX: usize = 80;
pub(super) const FILE_DESCRIPTION_MAX: usize = 255;

pub async fn run(cx: &mut Cx<'_>, cmd: Cmd11) -> Reply11 {
    if !cmd.is_anonymous()
        && let Err(e) = cx.user()
    {
        return Reply11::Error(e.into());
    }
    dispatch(cx, cmd).await.unwrap_or_else(Reply11::Error)
}

async fn dispatch(cx: &mut Cx<'_>, cmd: Cmd11) -> R {
    use Cmd11 as C;
    match cmd {
        C::Hello => {
            let mut out = Vec::new();
            Out::line(&mut out, "S")
                .str(&cx.shared.config.server.name)
                .str(&cx.shared.uuid)
                .str(super::SERVER_VERSION)
                .end();
            Ok(Reply11::Lines(out))
        }
        C::Login { login, password } => {
            let u = commands::system::login(cx, login, password).await?;
            drop(u);
            super::admin::refuse_temporary(cx)?;
            let me = cx.user()?;
            let mut out = Vec::new();
            Out::line(&mut out, "U")
                .int(me.id as i64)
                .str(&me.name)
                .int(me.access)
                .end();
            Ok(Reply11::Lines(out))
        }
        C::GetSettings => {
            let mut out = Vec::new();
            super::settings::lines(cx.shared, &mut out);
            Ok(Reply11::Lines(out))
        }
        C::ListUsers => list_users(cx),
        C::ListTypes => list_types(cx),
        C::ListProjects => list_projects(cx),
        C::ListStates { since } => list_states(cx, since),
        C::ListIssues { folder, since } => list_issues(cx, folder, since),
        C::GetDetails {
            issue,
            since,
            mark_read,
        } => get_details(cx, issue, since, mark_read),
        C::GetSummary { project, since } => get_summary(cx, project, since),
        C::GetAttachment { file } => get_attachment(cx, file).await,
        C::SetIssueRead { issue, read } => set_issue_read(cx, issue, read),
        C::SetFolderRead { folder, read } => set_folder_read(cx, folder, read),
        C::FindItem { item } => find_item(cx, item),
        C::AddIssue { folder, name } => {
            let me = cx.user()?;
            cx.read(|r| projects::visible_folder(r, &me, folder))?;
            check_name(&name, ISSUE_NAME_MAX)?;
            shared(cx, Command::AddIssue { folder, name }).await
        }
        C::SetValue {
            issue,
            attribute,
            value,
        } => set_value(cx, issue, attribute, value),
        C::AddDescription {
            issue,
            text,
            format,
        } => add_description(cx, issue, text, format),
        C::AddComment {
            issue,
            text,
            format,
        } => add_comment(cx, issue, text, format),
        C::AddAttachment {
            issue,
            name,
            description,
            data,
        } => {
            let me = cx.user()?;
            cx.read(|r| issues::visible(r, &me, issue))?;
            check_name(&name, FILE_NAME_MAX)?;
            if !description.is_empty() {
                check_name(&description, FILE_DESCRIPTION_MAX)?;
            }
            if data.len() as u64 > cx.shared.config.server.max_attachment_bytes {
                return Err(Code11::UploadError);
            }
            shared(
                cx,
                Command::AddAttachment {
                    issue,
                    name,
                    description,
                    data,
                },
            )
            .await
        }
        C::RenameIssue { issue, name } => {
            let me = cx.user()?;
            cx.read(|r| issues::visible(r, &me, issue))?;
            check_name(&name, ISSUE_NAME_MAX)?;
            shared(cx, Command::RenameIssue { issue, name }).await
        }
        C::ChangePassword {
            password,
            new_password,
        } => change_password(cx, password, new_password).await,
        C::SetPassword {
            user,
            password,
            temporary,
        } => {
            let me = cx.admin()?;
            if me.id as i64 == user {
                // 1.1: an administrator changes their own password with CHANGE PASSWORD.
                return Err(Code11::AccessDenied);
            }
            cx.read(|r| users::require(r, user))?;
            check_name(&password, NAME_MAX)?;
            super::admin::check_flag(temporary)?;
            let done = shared(cx, Command::SetPassword { user, password }).await?;
            super::admin::set_temporary(cx, user, temporary)?;
            Ok(done)
        }
        C::AddUser {
            login,
            name,
            password,
            temporary,
        } => {
            cx.admin()?;
            check_name(&login, NAME_MAX)?;
            check_name(&name, NAME_MAX)?;
            check_name(&password, NAME_MAX)?;
            super::admin::check_flag(temporary)?;
            let done = shared(
                cx,
                Command::AddUser {
                    login,
                    name,
                    password,
                },
            )
            .await?;
            if let Reply11::Id(id) = done {
                super::admin::set_temporary(cx, id, temporary)?;
            }
            Ok(done)
        }
        C::RenameUser { user, name } => {
            check_name(&name, NAME_MAX)?;
            shared(cx, Command::RenameUser { user, name }).await
        }
        C::GrantUser { user, access } => {
            // 1.1: nobody changes their own access level.
            if cx.admin()?.id as i64 == user {
                return Err(Code11::AccessDenied);
            }
            shared(cx, Command::GrantUser { user, access }).await
        }
        C::GrantMember {
            user,
            project,
            access,
        } => {
            shared(
                cx,
                Command::GrantMember {
                    user,
                    project,
                    access,
                },
            )
            .await
        }
        C::AddType { name } => {
            check_name(&name, NAME_MAX)?;
            shared(cx, Command::AddType { name }).await
        }
        C::AddAttribute {
            type_id,
            name,
            definition,
        } => {
            check_name(&name, NAME_MAX)?;
            shared(
                cx,
                Command::AddAttribute {
                    type_id,
                    name,
                    definition,
                },
            )
            .await
        }
        C::AddProject { name } => {
            check_name(&name, NAME_MAX)?;
            shared(cx, Command::AddProject { name }).await
        }
        C::RenameProject { project, name } => {
            check_name(&name, NAME_MAX)?;
            shared(cx, Command::RenameProject { project, name }).await
        }
        C::AddFolder {
            project,
            type_id,
            name,
        } => {
            check_name(&name, NAME_MAX)?;
            shared(
                cx,
                Command::AddFolder {
                    project,
                    type_id,
                    name,
                },
            )
            .await
        }
        C::RenameFolder { folder, name } => {
            check_name(&name, NAME_MAX)?;
            shared(cx, Command::RenameFolder { folder, name }).await
        }
        C::Views(v) => super::views::run(cx, v),
        other => super::admin::run(cx, other).await,
    }
}

/// A command whose meaning 1.1 shares with 0.8, run by the shared handler; its `OK`,
/// `ID` or `NULL` is the same in both dialects, its errors are renumbered.
pub(super) async fn shared(cx: &mut Cx<'_>, cmd: Command) -> R {
    match commands::execute(cx, cmd).await {
        Reply::Null => Ok(Reply11::Null),
        Reply::Ok => Ok(Reply11::Ok),
        Reply::Id(id) => Ok(Reply11::Id(id)),
        Reply::Error(e) => Err(e.into()),
        _ => Err(Code11::ServerError),
    }
}

/// 1.1's single-line string rule: not empty (325), not too long (327), no control
/// character, no leading, trailing or double space (319).
pub fn check_name(s: &str, max: usize) -> Result<(), Code11> {
    if s.is_empty() {
        return Err(Code11::EmptyValue);
    }
    if s.chars().any(|c| c.is_control())
        || s.starts_with(' ')
        || s.ends_with(' ')
        || s.contains("  ")
    {
        return Err(Code11::InvalidString);
    }
    if s.chars().count() > max {
        return Err(Code11::StringTooLong);
    }
    Ok(())
}

/// 1.1's multi-line text rule (comments, descriptions): LF and TAB allowed, no other
/// control character and no trailing space.
pub fn check_text(s: &str, max: usize) -> Result<(), Code11> {
    if s.is_empty() {
        return Err(Code11::EmptyValue);
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') || s.ends_with(' ') {
        return Err(Code11::InvalidString);
    }
    if s.chars().count() > max {
        return Err(Code11::StringTooLong);
    }
    Ok(())
}

pub(super) fn text_format(format: i64) -> Result<u8, Code11> {
    match format {
        0 | 1 => Ok(format as u8),
        _ => Err(Code11::InvalidTextFormat),
    }
}

fn by_name<T>(v: &mut [T], name: impl Fn(&T) -> &str) {
    v.sort_by_cached_key(|t| (name(t).to_lowercase(), name(t).to_string()));
}

fn list_users(cx: &mut Cx) -> R {
    let me = cx.user()?;
    cx.read(|r| {
        let mut all = users::all(r)?;
        by_name(&mut all, |u| &u.name);
        let mut out = Vec::new();
        for u in &all {
            Out::line(&mut out, "U")
                .int(u.id as i64)
                .str(&u.login)
                .str(&u.name)
                .int(u.access)
                .end();
        }
        let mut members = users::memberships(r)?;
        members.sort_by_key(|&(p, u, _)| (u, p));
        for (project, user, access) in members {
            if access > ACCESS_NONE && projects::access(r, &me, project)?.is_some() {
                Out::line(&mut out, "M")
                    .int(user as i64)
                    .int(project as i64)
                    .int(access)
                    .end();
            }
        }
        super::preferences::list_lines(r, &me, &mut out)?;
        Ok(out)
    })
    .map(Reply11::Lines)
    .map_err(Code11::from)
}

fn list_types(cx: &mut Cx) -> R {
    let me = cx.user()?;
    cx.read(|r| {
        let mut all = types::all(r)?;
        by_name(&mut all, |t| &t.name);
        let mut out = Vec::new();
        for t in &all {
            Out::line(&mut out, "T").int(t.id as i64).str(&t.name).end();
        }
        let mut attrs = types::all_attributes(r)?;
        by_name(&mut attrs, |a| &a.name);
        attrs.sort_by_key(|a| a.type_id);
        for a in &attrs {
            Out::line(&mut out, "A")
                .int(a.id as i64)
                .int(a.type_id as i64)
                .str(&a.name)
                .str(&a.definition)
                .end();
        }
        super::views::list_lines(r, me.id, &mut out)?;
        Ok(out)
    })
    .map(Reply11::Lines)
    .map_err(Code11::from)
}

fn list_projects(cx: &mut Cx) -> R {
    let me = cx.user()?;
    cx.read(|r| {
        let mut visible = Vec::new();
        for p in projects::all(r)? {
            if projects::access(r, &me, p.id)?.is_some() {
                visible.push(p);
            }
        }
        by_name(&mut visible, |p| &p.name);
        let mut out = Vec::new();
        for p in &visible {
            project_line(&mut out, r, p)?;
        }
        let mut folders: Vec<_> = projects::all_folders(r)?
            .into_iter()
            .filter(|f| visible.iter().any(|p| p.id == f.project))
            .collect();
        by_name(&mut folders, |f| &f.name);
        for f in &folders {
            Out::line(&mut out, "F")
                .int(f.id as i64)
                .int(f.project as i64)
                .str(&f.name)
                .int(f.type_id as i64)
                .int(r.folder_stamp(f.id) as i64)
                .end();
        }
        super::alerts::list_lines(r, &me, &mut out)?;
        Ok(out)
    })
    .map(Reply11::Lines)
    .map_err(Code11::from)
}

/// `P id 'name' stamp isPublic`: the stamp is the description's last change.
fn project_line(
    out: &mut Vec<u8>,
    r: &impl Read,
    p: &projects::Project,
) -> crate::error::Result<()> {
    Out::line(out, "P")
        .int(p.id as i64)
        .str(&p.name)
        .int(project_meta::stamp(r, p.id)? as i64)
        .int(project_meta::public(r, p.id)? as i64)
        .end();
    Ok(())
}

/// `NULL` unless the project's stamp is newer than `since`; else `P`, then `D` (changed
/// since) or `DX` (deleted since, `since` > 0).
fn get_summary(cx: &mut Cx, project: i64, since: i64) -> R {
    let me = cx.user()?;
    cx.read(|r| {
        let (p, _) = projects::visible(r, &me, project)?;
        let mut out = Vec::new();
        if project_meta::stamp(r, p.id)? as i64 <= since {
            return Ok(Reply11::Null);
        }
        project_line(&mut out, r, &p)?;
        if let Some(d) = project_meta::description(r, p.id)? {
            if d.stamp as i64 > since {
                Out::line(&mut out, "D")
                    .int(p.id as i64)
                    .str(&d.text)
                    .int(d.format)
                    .int(d.time)
                    .int(d.user as i64)
                    .end();
            }
        } else if since > 0
            && let Some(gone) = project_meta::description_gone(r, p.id)?
            && gone as i64 > since
        {
            Out::line(&mut out, "DX").int(p.id as i64).end();
        }
        Ok(Reply11::Lines(out))
    })
    .map_err(Code11::from)
}

fn list_states(cx: &mut Cx, since: i64) -> R {
    let me = cx.user()?;
    cx.read(|r| {
        let mut out = Vec::new();
        for (state, issue, read) in read_state::since(r, me.id, since)? {
            if issues::visible(r, &me, issue as i64).is_ok() {
                Out::line(&mut out, "S")
                    .int(state as i64)
                    .int(issue as i64)
                    .int(read as i64)
                    .int(crate::store::alerts::subscription(r, me.id, issue)?.unwrap_or(0) as i64)
                    .end();
            }
        }
        Ok(out)
    })
    .map(Reply11::Lines)
    .map_err(Code11::from)
}

fn issue_line(out: &mut Vec<u8>, i: &Issue) {
    Out::line(out, "I")
        .int(i.id as i64)
        .int(i.folder as i64)
        .str(&i.name)
        .int(i.stamp as i64)
        .int(i.created)
        .int(i.created_by as i64)
        .int(i.modified)
        .int(i.modified_by as i64)
        .end();
}

fn value_lines(out: &mut Vec<u8>, r: &impl Read, issue: u64) -> crate::error::Result<()> {
    issues::visit_values(r, issue, |a, v| {
        Out::line(out, "V")
            .int(a as i64)
            .int(issue as i64)
            .str(v)
            .end();
        Ok(())
    })
}

/// `F` (exactly one), then `I` and `V` of the issues changed after `since`, then the `X`
/// stubs of issues that left the folder after `since` (store::removal).
/// The `I` and `V` lines are 0.8's, byte for byte (no name or value holds a TAB, the one
/// character 1.1 escapes and 0.8 does not), so 0.8's cache of encoded lines serves both.
fn list_issues(cx: &mut Cx, folder: i64, since: i64) -> R {
    let me = cx.user()?;
    let mut out = Vec::new();
    let changed = cx.read(|r| {
        let (f, _) = projects::visible_folder(r, &me, folder)?;
        let stamp = r.folder_stamp(f.id);
        if stamp as i64 <= since {
            return Ok(false);
        }
        Out::line(&mut out, "F")
            .int(f.id as i64)
            .int(f.project as i64)
            .str(&f.name)
            .int(f.type_id as i64)
            .int(stamp as i64)
            .end();
        Ok(true)
    })?;
    if !changed {
        return Ok(Reply11::Null);
    }
    match commands::issues::list_issues(cx, folder, since)? {
        Reply::Encoded(lines) => out.extend_from_slice(&lines),
        _ => return Err(Code11::ServerError),
    }
    for (issue, to, stamp) in cx.read(|r| removal::folder_stubs(r, folder as u64, since))? {
        Out::line(&mut out, "X")
            .int(issue as i64)
            .int(to as i64)
            .int(stamp as i64)
            .end();
    }
    Ok(Reply11::Lines(out))
}

/// The 13-field history line: `created` is the row's own stamp and time, `modified` its
/// newest edit (the same unless a comment or file was edited).
struct HLine<'a> {
    id: u64,
    issue: u64,
    kind: i64,
    stamp: u64,
    time: i64,
    user: u64,
    mtime: i64,
    muser: u64,
    attr: u64,
    old: &'a str,
    new: &'a str,
    from: u64,
    to: u64,
}

impl HLine<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        Out::line(out, "H")
            .int(self.id as i64)
            .int(self.issue as i64)
            .int(self.kind)
            .int(self.stamp as i64)
            .int(self.time)
            .int(self.user as i64)
            .int(self.mtime)
            .int(self.muser as i64)
            .int(self.attr as i64)
            .str(self.old)
            .str(self.new)
            .int(self.from as i64)
            .int(self.to as i64)
            .end();
    }
}

fn h_plain(id: u64, issue: u64, kind: i64, time: i64, user: u64) -> HLine<'static> {
    HLine {
        id,
        issue,
        kind,
        stamp: id,
        time,
        user,
        mtime: time,
        muser: user,
        attr: 0,
        old: "",
        new: "",
        from: 0,
        to: 0,
    }
}

/// `I`, `V`, `D`/`DX`, `H`, `C`, `A`, `X`, in that order; `NULL` when the issue has not
/// changed since `since`. `mark_read` 1 records the issue as read up to its stamp.
fn get_details(cx: &mut Cx, issue: i64, since: i64, mark_read: i64) -> R {
    let me = cx.user()?;
    let (i, out) = cx.read(|r| {
        let (i, _) = issues::visible(r, &me, issue)?;
        if i.stamp as i64 <= since {
            return Ok((i, Vec::new()));
        }
        let mut out = Vec::new();
        issue_line(&mut out, &i);
        value_lines(&mut out, r, i.id)?;
        if let Some(d) = descriptions::get(r, i.id)? {
            if d.stamp as i64 > since {
                Out::line(&mut out, "D")
                    .int(i.id as i64)
                    .str(&d.text)
                    .int(d.format)
                    .int(d.time)
                    .int(d.user as i64)
                    .end();
            }
        } else if since > 0
            && let Some(gone) = removal::description_gone(r, i.id)?
            && gone as i64 > since
        {
            Out::line(&mut out, "DX").int(i.id as i64).end();
        }
        let (mut comments, mut files) = (Vec::new(), Vec::new());
        if i.id as i64 > since {
            let name = match r.get::<IssueEvent>(&key("event", &[i.id]))? {
                Some(IssueEvent {
                    kind: EventKind::Created { name },
                    ..
                }) => name,
                _ => i.name.clone(),
            };
            HLine {
                new: &name,
                ..h_plain(i.id, i.id, 0, i.created, i.created_by)
            }
            .write(&mut out);
        }
        let mut rows = issues::rows_since(r, i.id, since)?;
        for (id, _) in removal::edited_since(r, i.id, since)? {
            if let Some(row) = removal::row(r, i.id, id)? {
                rows.push(row);
            }
        }
        for row in rows {
            match row {
                Row::Change(c) => {
                    let kind = if c.attribute == 0 { 1 } else { 2 };
                    HLine {
                        attr: c.attribute,
                        old: &c.old,
                        new: &c.new,
                        ..h_plain(c.id, c.issue, kind, c.time, c.user)
                    }
                    .write(&mut out);
                }
                Row::Comment(c) => {
                    edited(r, h_plain(c.id, c.issue, 3, c.time, c.user))?.write(&mut out);
                    Out::line(&mut comments, "C")
                        .int(c.id as i64)
                        .str(&c.text)
                        .int(descriptions::comment_format(r, c.id)?)
                        .end();
                }
                Row::Attachment(a) => {
                    edited(r, h_plain(a.id, a.issue, 4, a.time, a.user))?.write(&mut out);
                    Out::line(&mut files, "A")
                        .int(a.id as i64)
                        .str(&a.name)
                        .int(a.size as i64)
                        .str(&a.description)
                        .end();
                }
            }
        }
        for m in removal::moves_since(r, i.id, since)? {
            HLine {
                from: m.from,
                to: m.to,
                ..h_plain(m.stamp, i.id, 5, m.time, m.user)
            }
            .write(&mut out);
        }
        out.extend_from_slice(&comments);
        out.extend_from_slice(&files);
        for id in removal::gone_since(r, i.id, since)? {
            Out::line(&mut out, "X").int(id as i64).end();
        }
        Ok((i, out))
    })?;
    if mark_read == 1 {
        mark(cx, &me, &i)?;
    }
    Ok(Reply11::Lines(out))
}

/// A comment's or file's history line with its newest edit.
fn edited<'a>(r: &impl Read, h: HLine<'a>) -> crate::error::Result<HLine<'a>> {
    Ok(match removal::edit_of(r, h.issue, h.id)? {
        Some(e) => HLine {
            stamp: e.stamp,
            mtime: e.time,
            muser: e.user,
            ..h
        },
        None => h,
    })
}

/// Records that `me` has read `i` up to its stamp, unless already so.
fn mark(cx: &mut Cx, me: &Arc<User>, i: &Issue) -> Result<(), Code11> {
    cx.write(|w| {
        if read_state::get(w, me.id, i.id)?.map(|s| s.read) != Some(i.stamp) {
            read_state::set(w, me.id, i.id, i.stamp)?;
        }
        Ok(())
    })?;
    Ok(())
}

fn set_issue_read(cx: &mut Cx, issue: i64, read: i64) -> R {
    let me = cx.user()?;
    cx.write(|w| {
        let (i, _) = issues::visible(w, &me, issue)?;
        if read < 0 || read as u64 > i.stamp {
            return Ok(Err(Code11::InvalidValue));
        }
        if read_state::get(w, me.id, i.id)?
            .map(|s| s.read)
            .unwrap_or(0)
            == read as u64
        {
            return Ok(Ok(Reply11::Null));
        }
        Ok(Ok(Reply11::Id(
            read_state::set(w, me.id, i.id, read as u64)? as i64,
        )))
    })?
}

fn set_folder_read(cx: &mut Cx, folder: i64, read: i64) -> R {
    let me = cx.user()?;
    cx.write(|w| {
        let (f, _) = projects::visible_folder(w, &me, folder)?;
        if read < 0 || read as u64 > w.folder_stamp(f.id) {
            return Ok(Err(Code11::InvalidValue));
        }
        // New states in the order of the issues' last changes: the order in which the
        // reference's database returns the rows (updated rows move to its end).
        let mut all = issues::in_folder_since(w, f.id, 0)?;
        all.sort_unstable_by_key(|&(_, stamp)| stamp);
        for (issue, _) in all {
            read_state::set(w, me.id, issue, read as u64)?;
        }
        Ok(Ok(Reply11::Ok))
    })?
}

/// The issue of an issue, comment or file id the caller may see; any other id is
/// `354` (1.1 finds no value changes, renames or descriptions).
fn find_item(cx: &mut Cx, item: i64) -> R {
    let me = cx.user()?;
    cx.read(|r| {
        let Some(issue) = issues::owner_of_item(r, item)? else {
            return Ok(Err(Code11::ItemNotFound));
        };
        if issue as i64 != item {
            match r.get::<Row>(&key("row", &[issue, item as u64]))? {
                Some(Row::Comment(_) | Row::Attachment(_)) => {}
                _ => return Ok(Err(Code11::ItemNotFound)),
            }
        }
        Ok(match issues::visible(r, &me, issue as i64) {
            Ok(_) => Ok(Reply11::Id(issue as i64)),
            Err(_) => Err(Code11::ItemNotFound),
        })
    })?
}

async fn get_attachment(cx: &mut Cx<'_>, file: i64) -> R {
    let me = cx.user()?;
    let name = cx
        .read(|r| {
            if let Some(a) = issues::attachment(r, file)?
                && issues::visible(r, &me, a.issue as i64).is_ok()
            {
                return Ok(Some(a.name));
            }
            Ok(None)
        })?
        .ok_or(Code11::UnknownFile)?;
    // The 0.8 command's body: small files read whole, large ones streamed from the open
    // file under the streamed-files cap (crate::fdlimit).
    match crate::commands::issues::get_attachment(cx, file).await? {
        Reply::Data(data) => Ok(Reply11::File { name, data }),
        Reply::File(body) => Ok(Reply11::Stream { name, body }),
        _ => Err(Code11::ServerError),
    }
}

fn value_error(e: ValueError) -> Code11 {
    match e {
        ValueError::TooLong { .. } => Code11::StringTooLong,
        ValueError::TooShort { .. } => Code11::StringTooShort,
        ValueError::DuplicateItem => Code11::DuplicateItems,
        ValueError::InvalidList => Code11::InvalidFormat,
        ValueError::InvalidCharacter => Code11::InvalidString,
        ValueError::Required => Code11::EmptyValue,
        ValueError::NotAnItem | ValueError::UnknownUser | ValueError::NotAMember => {
            Code11::NoMatchingItem
        }
        ValueError::NotANumber | ValueError::TooManyDecimals { .. } | ValueError::TimeRequired => {
            Code11::InvalidFormat
        }
        ValueError::BelowMinimum(_) => Code11::NumberTooLittle,
        ValueError::AboveMaximum(_) => Code11::NumberTooGreat,
        ValueError::InvalidDate => Code11::InvalidDate,
    }
}

fn set_value(cx: &mut Cx, issue: i64, attribute: i64, value: String) -> R {
    let me = cx.user()?;
    let definitions = &cx.shared.definitions;
    cx.write(|w| {
        let (mut i, f) = issues::visible(w, &me, issue)?;
        let Some(attr) = types::attribute(w, attribute)?.filter(|a| a.type_id == f.type_id) else {
            return Ok(Err(Code11::UnknownAttribute));
        };
        let def = definitions
            .parse(&attr.definition)
            .map_err(crate::error::Error::internal)?;
        let user_ok = |name: &str, member: bool| -> bool {
            match users::id_by_name(w, name) {
                Ok(Some(u)) => {
                    !member || matches!(users::member_access(w, f.project, u), Ok(Some(a)) if a > 0)
                }
                _ => false,
            }
        };
        // 1.1's single-line rule holds for values too; and a number or date must come
        // in its normal form already (`03` or `7.5` for 2 decimals is refused, not
        // rewritten as 0.8 does).
        if !value.is_empty()
            && let Err(c) = check_name(&value, usize::MAX)
        {
            return Ok(Err(c));
        }
        let normal = match def.validate_value(&value, &user_ok) {
            Ok(v) => v,
            Err(e) => return Ok(Err(value_error(e))),
        };
        if normal != value
            && matches!(
                def.kind,
                AttributeKind::Numeric { .. } | AttributeKind::DateTime { .. }
            )
        {
            return Ok(Err(Code11::InvalidFormat));
        }
        let value = normal;
        Ok(Ok(
            match issues::set_value(w, &mut i, &f, attr.id, &value, me.id)? {
                Some(id) => Reply11::Id(id as i64),
                None => Reply11::Null,
            },
        ))
    })?
}

/// The issue's creator or a project administrator may add its description.
fn add_description(cx: &mut Cx, issue: i64, text: String, format: i64) -> R {
    let me = cx.user()?;
    cx.write(|w| {
        let (mut i, f) = issues::visible(w, &me, issue)?;
        let access = projects::folder_access(w, &me, f.project)?.unwrap_or(0);
        if i.created_by != me.id && access != ACCESS_ADMIN {
            return Ok(Err(Code11::AccessDenied));
        }
        if let Err(c) = check_text(&text, TEXT_MAX) {
            return Ok(Err(c));
        }
        let format = match text_format(format) {
            Ok(f) => f,
            Err(c) => return Ok(Err(c)),
        };
        Ok(
            match descriptions::add(w, &mut i, &f, text, format, me.id)? {
                Some(stamp) => Ok(Reply11::Id(stamp as i64)),
                None => Err(Code11::DescriptionExists),
            },
        )
    })?
}

fn add_comment(cx: &mut Cx, issue: i64, text: String, format: i64) -> R {
    let me = cx.user()?;
    cx.write(|w| {
        let (mut i, f) = issues::visible(w, &me, issue)?;
        if let Err(c) = check_text(&text, TEXT_MAX) {
            return Ok(Err(c));
        }
        let format = match text_format(format) {
            Ok(f) => f,
            Err(c) => return Ok(Err(c)),
        };
        let id = issues::add_comment(w, &mut i, &f, text, me.id)?;
        descriptions::set_comment_format(w, id, format)?;
        Ok(Ok(Reply11::Id(id as i64)))
    })?
}

impl From<Code> for Code11 {
    fn from(c: Code) -> Self {
        Code11::from_08(c)
    }
}

/// The caller's own password: the old one must match (302), the new one differ (353).
async fn change_password(cx: &mut Cx<'_>, password: String, new_password: String) -> R {
    let me = cx.user()?;
    check_name(&new_password, NAME_MAX)?;
    if !crate::password::verify_async(password.clone(), me.password.clone()).await {
        return Err(Code11::IncorrectLogin);
    }
    if password == new_password {
        return Err(Code11::CannotReusePassword);
    }
    shared(
        cx,
        Command::SetPassword {
            user: me.id as i64,
            password: new_password,
        },
    )
    .await
}
