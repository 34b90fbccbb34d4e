//! The typed 1.1 commands webissued serves, their signatures (`i` integer, `s` string,
//! `a` the uploaded file) and the parse from [`Tokens`]: an unknown name is `401`, a
//! wrong argument list `402`.

use super::reply::Code11;
use super::token::{Arg, Tokens, write_string};
use bytes::Bytes;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd11 {
    Hello,
    Login {
        login: String,
        password: String,
    },
    GetSettings,
    ListUsers,
    ListTypes,
    ListProjects,
    ListStates {
        since: i64,
    },
    ListIssues {
        folder: i64,
        since: i64,
    },
    GetDetails {
        issue: i64,
        since: i64,
        mark_read: i64,
    },
    GetSummary {
        project: i64,
        since: i64,
    },
    GetAttachment {
        file: i64,
    },
    SetIssueRead {
        issue: i64,
        read: i64,
    },
    SetFolderRead {
        folder: i64,
        read: i64,
    },
    FindItem {
        item: i64,
    },
    AddIssue {
        folder: i64,
        name: String,
    },
    SetValue {
        issue: i64,
        attribute: i64,
        value: String,
    },
    AddDescription {
        issue: i64,
        text: String,
        format: i64,
    },
    AddComment {
        issue: i64,
        text: String,
        format: i64,
    },
    AddAttachment {
        issue: i64,
        name: String,
        description: String,
        data: Bytes,
    },
    RenameIssue {
        issue: i64,
        name: String,
    },
    // Administration, with the same meaning as in 0.8 (served by the shared handlers).
    ChangePassword {
        password: String,
        new_password: String,
    },
    SetPassword {
        user: i64,
        password: String,
        temporary: i64,
    },
    AddUser {
        login: String,
        name: String,
        password: String,
        temporary: i64,
    },
    RenameUser {
        user: i64,
        name: String,
    },
    GrantUser {
        user: i64,
        access: i64,
    },
    GrantMember {
        user: i64,
        project: i64,
        access: i64,
    },
    AddType {
        name: String,
    },
    AddAttribute {
        type_id: i64,
        name: String,
        definition: String,
    },
    AddProject {
        name: String,
    },
    RenameProject {
        project: i64,
        name: String,
    },
    AddFolder {
        project: i64,
        type_id: i64,
        name: String,
    },
    RenameFolder {
        folder: i64,
        name: String,
    },
    /// Views, alerts and subscriptions ([`super::views::ViewCmd`]).
    Views(super::views::ViewCmd),
    /// Administration and issue edits of 1.1 alone (super::admin, super::edit).
    LoginNew {
        login: String,
        password: String,
        new_password: String,
    },
    RenameType {
        type_id: i64,
        name: String,
    },
    DeleteType {
        type_id: i64,
        force: i64,
    },
    RenameAttribute {
        attribute: i64,
        name: String,
    },
    ModifyAttribute {
        attribute: i64,
        definition: String,
    },
    DeleteAttribute {
        attribute: i64,
        force: i64,
    },
    DeleteProject {
        project: i64,
        force: i64,
    },
    DeleteFolder {
        folder: i64,
        force: i64,
    },
    MoveFolder {
        folder: i64,
        project: i64,
    },
    MoveIssue {
        issue: i64,
        folder: i64,
    },
    DeleteIssue {
        issue: i64,
    },
    EditComment {
        comment: i64,
        text: String,
        format: i64,
    },
    DeleteComment {
        comment: i64,
    },
    EditAttachment {
        file: i64,
        name: String,
        description: String,
    },
    DeleteAttachment {
        file: i64,
    },
    EditDescription {
        issue: i64,
        text: String,
        format: i64,
    },
    DeleteDescription {
        issue: i64,
    },
    SetProjectAccess {
        project: i64,
        public: i64,
    },
    ArchiveProject {
        project: i64,
    },
    AddProjectDescription {
        project: i64,
        text: String,
        format: i64,
    },
    EditProjectDescription {
        project: i64,
        text: String,
        format: i64,
    },
    DeleteProjectDescription {
        project: i64,
    },
}

/// Name and signature of every command served.
pub const SIGNATURES: &[(&str, &str)] = &[
    ("HELLO", ""),
    ("LOGIN", "ss"),
    ("GET SETTINGS", ""),
    ("LIST USERS", ""),
    ("LIST TYPES", ""),
    ("LIST PROJECTS", ""),
    ("LIST STATES", "i"),
    ("LIST ISSUES", "ii"),
    ("GET DETAILS", "iii"),
    ("GET SUMMARY", "ii"),
    ("GET ATTACHMENT", "i"),
    ("SET ISSUE READ", "ii"),
    ("SET FOLDER READ", "ii"),
    ("FIND ITEM", "i"),
    ("ADD ISSUE", "is"),
    ("SET VALUE", "iis"),
    ("ADD DESCRIPTION", "isi"),
    ("ADD COMMENT", "isi"),
    ("ADD ATTACHMENT", "issa"),
    ("RENAME ISSUE", "is"),
    ("CHANGE PASSWORD", "ss"),
    ("SET PASSWORD", "isi"),
    ("ADD USER", "sssi"),
    ("RENAME USER", "is"),
    ("GRANT USER", "ii"),
    ("GRANT MEMBER", "iii"),
    ("ADD TYPE", "s"),
    ("ADD ATTRIBUTE", "iss"),
    ("ADD PROJECT", "s"),
    ("RENAME PROJECT", "is"),
    ("ADD FOLDER", "iis"),
    ("RENAME FOLDER", "is"),
    ("LOGIN NEW", "sss"),
    ("RENAME TYPE", "is"),
    ("DELETE TYPE", "ii"),
    ("RENAME ATTRIBUTE", "is"),
    ("MODIFY ATTRIBUTE", "is"),
    ("DELETE ATTRIBUTE", "ii"),
    ("DELETE PROJECT", "ii"),
    ("DELETE FOLDER", "ii"),
    ("MOVE FOLDER", "ii"),
    ("MOVE ISSUE", "ii"),
    ("DELETE ISSUE", "i"),
    ("EDIT COMMENT", "isi"),
    ("DELETE COMMENT", "i"),
    ("EDIT ATTACHMENT", "iss"),
    ("DELETE ATTACHMENT", "i"),
    ("EDIT DESCRIPTION", "isi"),
    ("DELETE DESCRIPTION", "i"),
    ("SET PROJECT ACCESS", "ii"),
    ("ARCHIVE PROJECT", "i"),
    ("ADD PROJECT DESCRIPTION", "isi"),
    ("EDIT PROJECT DESCRIPTION", "isi"),
    ("DELETE PROJECT DESCRIPTION", "i"),
];

impl Cmd11 {
    /// Commands that need no login.
    pub fn is_anonymous(&self) -> bool {
        matches!(
            self,
            Cmd11::Hello | Cmd11::Login { .. } | Cmd11::LoginNew { .. }
        )
    }
}

/// Checks name (401) and signature (402) and builds the command.
pub fn parse(t: Tokens) -> Result<Cmd11, Code11> {
    let sig = SIGNATURES
        .iter()
        .chain(super::views::SIGNATURES)
        .find(|(n, _)| *n == t.name)
        .map(|(_, s)| *s)
        .ok_or(Code11::UnknownCommand)?;
    let matches = sig.len() == t.args.len()
        && sig.bytes().zip(&t.args).all(|(k, a)| {
            matches!(
                (k, a),
                (b'i', Arg::Int(_)) | (b's', Arg::Str(_)) | (b'a', Arg::File(_))
            )
        });
    if !matches {
        return Err(Code11::InvalidArguments);
    }
    if let Some(v) = super::views::build(&t.name, &t.args) {
        return Ok(Cmd11::Views(v));
    }
    build(&t.name, Args(t.args.into_iter()))
}

/// The arguments of a checked signature, taken in order.
struct Args(std::vec::IntoIter<Arg>);

impl Args {
    fn i(&mut self) -> i64 {
        match self.0.next() {
            Some(Arg::Int(v)) => v,
            _ => 0,
        }
    }
    fn s(&mut self) -> String {
        match self.0.next() {
            Some(Arg::Str(v)) => v,
            _ => String::new(),
        }
    }
    fn a(&mut self) -> Bytes {
        match self.0.next() {
            Some(Arg::File(v)) => v,
            _ => Bytes::new(),
        }
    }
}

fn build(name: &str, mut a: Args) -> Result<Cmd11, Code11> {
    use Cmd11 as C;
    Ok(match name {
        "HELLO" => C::Hello,
        "LOGIN" => C::Login {
            login: a.s(),
            password: a.s(),
        },
        "GET SETTINGS" => C::GetSettings,
        "LIST USERS" => C::ListUsers,
        "LIST TYPES" => C::ListTypes,
        "LIST PROJECTS" => C::ListProjects,
        "LIST STATES" => C::ListStates { since: a.i() },
        "LIST ISSUES" => C::ListIssues {
            folder: a.i(),
            since: a.i(),
        },
        "GET DETAILS" => C::GetDetails {
            issue: a.i(),
            since: a.i(),
            mark_read: a.i(),
        },
        "GET SUMMARY" => C::GetSummary {
            project: a.i(),
            since: a.i(),
        },
        "GET ATTACHMENT" => C::GetAttachment { file: a.i() },
        "SET ISSUE READ" => C::SetIssueRead {
            issue: a.i(),
            read: a.i(),
        },
        "SET FOLDER READ" => C::SetFolderRead {
            folder: a.i(),
            read: a.i(),
        },
        "FIND ITEM" => C::FindItem { item: a.i() },
        "ADD ISSUE" => C::AddIssue {
            folder: a.i(),
            name: a.s(),
        },
        "SET VALUE" => C::SetValue {
            issue: a.i(),
            attribute: a.i(),
            value: a.s(),
        },
        "ADD DESCRIPTION" => C::AddDescription {
            issue: a.i(),
            text: a.s(),
            format: a.i(),
        },
        "ADD COMMENT" => C::AddComment {
            issue: a.i(),
            text: a.s(),
            format: a.i(),
        },
        "ADD ATTACHMENT" => C::AddAttachment {
            issue: a.i(),
            name: a.s(),
            description: a.s(),
            data: a.a(),
        },
        "RENAME ISSUE" => C::RenameIssue {
            issue: a.i(),
            name: a.s(),
        },
        "CHANGE PASSWORD" => C::ChangePassword {
            password: a.s(),
            new_password: a.s(),
        },
        "SET PASSWORD" => C::SetPassword {
            user: a.i(),
            password: a.s(),
            temporary: a.i(),
        },
        "ADD USER" => C::AddUser {
            login: a.s(),
            name: a.s(),
            password: a.s(),
            temporary: a.i(),
        },
        "RENAME USER" => C::RenameUser {
            user: a.i(),
            name: a.s(),
        },
        "GRANT USER" => C::GrantUser {
            user: a.i(),
            access: a.i(),
        },
        "GRANT MEMBER" => C::GrantMember {
            user: a.i(),
            project: a.i(),
            access: a.i(),
        },
        "ADD TYPE" => C::AddType { name: a.s() },
        "ADD ATTRIBUTE" => C::AddAttribute {
            type_id: a.i(),
            name: a.s(),
            definition: a.s(),
        },
        "ADD PROJECT" => C::AddProject { name: a.s() },
        "RENAME PROJECT" => C::RenameProject {
            project: a.i(),
            name: a.s(),
        },
        "ADD FOLDER" => C::AddFolder {
            project: a.i(),
            type_id: a.i(),
            name: a.s(),
        },
        "LOGIN NEW" => C::LoginNew {
            login: a.s(),
            password: a.s(),
            new_password: a.s(),
        },
        "RENAME TYPE" => C::RenameType {
            type_id: a.i(),
            name: a.s(),
        },
        "DELETE TYPE" => C::DeleteType {
            type_id: a.i(),
            force: a.i(),
        },
        "RENAME ATTRIBUTE" => C::RenameAttribute {
            attribute: a.i(),
            name: a.s(),
        },
        "MODIFY ATTRIBUTE" => C::ModifyAttribute {
            attribute: a.i(),
            definition: a.s(),
        },
        "DELETE ATTRIBUTE" => C::DeleteAttribute {
            attribute: a.i(),
            force: a.i(),
        },
        "DELETE PROJECT" => C::DeleteProject {
            project: a.i(),
            force: a.i(),
        },
        "DELETE FOLDER" => C::DeleteFolder {
            folder: a.i(),
            force: a.i(),
        },
        "MOVE FOLDER" => C::MoveFolder {
            folder: a.i(),
            project: a.i(),
        },
        "MOVE ISSUE" => C::MoveIssue {
            issue: a.i(),
            folder: a.i(),
        },
        "DELETE ISSUE" => C::DeleteIssue { issue: a.i() },
        "EDIT COMMENT" => C::EditComment {
            comment: a.i(),
            text: a.s(),
            format: a.i(),
        },
        "DELETE COMMENT" => C::DeleteComment { comment: a.i() },
        "EDIT ATTACHMENT" => C::EditAttachment {
            file: a.i(),
            name: a.s(),
            description: a.s(),
        },
        "DELETE ATTACHMENT" => C::DeleteAttachment { file: a.i() },
        "EDIT DESCRIPTION" => C::EditDescription {
            issue: a.i(),
            text: a.s(),
            format: a.i(),
        },
        "DELETE DESCRIPTION" => C::DeleteDescription { issue: a.i() },
        "SET PROJECT ACCESS" => C::SetProjectAccess {
            project: a.i(),
            public: a.i(),
        },
        "ARCHIVE PROJECT" => C::ArchiveProject { project: a.i() },
        "ADD PROJECT DESCRIPTION" => C::AddProjectDescription {
            project: a.i(),
            text: a.s(),
            format: a.i(),
        },
        "EDIT PROJECT DESCRIPTION" => C::EditProjectDescription {
            project: a.i(),
            text: a.s(),
            format: a.i(),
        },
        "DELETE PROJECT DESCRIPTION" => C::DeleteProjectDescription { project: a.i() },
        "RENAME FOLDER" => C::RenameFolder {
            folder: a.i(),
            name: a.s(),
        },
        _ => return Err(Code11::UnknownCommand),
    })
}

impl Cmd11 {
    /// The command line (and upload) the client would send for this command.
    pub fn encode(&self) -> (String, Option<Bytes>) {
        use Cmd11 as C;
        let mut line = Vec::new();
        let mut file = None;
        let (name, args): (&str, Vec<Arg>) = match self.clone() {
            C::Hello => ("HELLO", vec![]),
            C::Views(v) => v.encode(),
            C::Login { login, password } => ("LOGIN", vec![Arg::Str(login), Arg::Str(password)]),
            C::GetSettings => ("GET SETTINGS", vec![]),
            C::ListUsers => ("LIST USERS", vec![]),
            C::ListTypes => ("LIST TYPES", vec![]),
            C::ListProjects => ("LIST PROJECTS", vec![]),
            C::ListStates { since } => ("LIST STATES", vec![Arg::Int(since)]),
            C::ListIssues { folder, since } => {
                ("LIST ISSUES", vec![Arg::Int(folder), Arg::Int(since)])
            }
            C::GetDetails {
                issue,
                since,
                mark_read,
            } => (
                "GET DETAILS",
                vec![Arg::Int(issue), Arg::Int(since), Arg::Int(mark_read)],
            ),
            C::GetSummary { project, since } => {
                ("GET SUMMARY", vec![Arg::Int(project), Arg::Int(since)])
            }
            C::GetAttachment { file } => ("GET ATTACHMENT", vec![Arg::Int(file)]),
            C::SetIssueRead { issue, read } => {
                ("SET ISSUE READ", vec![Arg::Int(issue), Arg::Int(read)])
            }
            C::SetFolderRead { folder, read } => {
                ("SET FOLDER READ", vec![Arg::Int(folder), Arg::Int(read)])
            }
            C::FindItem { item } => ("FIND ITEM", vec![Arg::Int(item)]),
            C::AddIssue { folder, name } => ("ADD ISSUE", vec![Arg::Int(folder), Arg::Str(name)]),
            C::SetValue {
                issue,
                attribute,
                value,
            } => (
                "SET VALUE",
                vec![Arg::Int(issue), Arg::Int(attribute), Arg::Str(value)],
            ),
            C::AddDescription {
                issue,
                text,
                format,
            } => (
                "ADD DESCRIPTION",
                vec![Arg::Int(issue), Arg::Str(text), Arg::Int(format)],
            ),
            C::AddComment {
                issue,
                text,
                format,
            } => (
                "ADD COMMENT",
                vec![Arg::Int(issue), Arg::Str(text), Arg::Int(format)],
            ),
            C::AddAttachment {
                issue,
                name,
                description,
                data,
            } => {
                file = Some(data);
                (
                    "ADD ATTACHMENT",
                    vec![Arg::Int(issue), Arg::Str(name), Arg::Str(description)],
                )
            }
            C::RenameIssue { issue, name } => {
                ("RENAME ISSUE", vec![Arg::Int(issue), Arg::Str(name)])
            }
            C::ChangePassword {
                password,
                new_password,
            } => (
                "CHANGE PASSWORD",
                vec![Arg::Str(password), Arg::Str(new_password)],
            ),
            C::SetPassword {
                user,
                password,
                temporary,
            } => (
                "SET PASSWORD",
                vec![Arg::Int(user), Arg::Str(password), Arg::Int(temporary)],
            ),
            C::AddUser {
                login,
                name,
                password,
                temporary,
            } => (
                "ADD USER",
                vec![
                    Arg::Str(login),
                    Arg::Str(name),
                    Arg::Str(password),
                    Arg::Int(temporary),
                ],
            ),
            C::RenameUser { user, name } => ("RENAME USER", vec![Arg::Int(user), Arg::Str(name)]),
            C::GrantUser { user, access } => ("GRANT USER", vec![Arg::Int(user), Arg::Int(access)]),
            C::GrantMember {
                user,
                project,
                access,
            } => (
                "GRANT MEMBER",
                vec![Arg::Int(user), Arg::Int(project), Arg::Int(access)],
            ),
            C::AddType { name } => ("ADD TYPE", vec![Arg::Str(name)]),
            C::AddAttribute {
                type_id,
                name,
                definition,
            } => (
                "ADD ATTRIBUTE",
                vec![Arg::Int(type_id), Arg::Str(name), Arg::Str(definition)],
            ),
            C::AddProject { name } => ("ADD PROJECT", vec![Arg::Str(name)]),
            C::RenameProject { project, name } => {
                ("RENAME PROJECT", vec![Arg::Int(project), Arg::Str(name)])
            }
            C::AddFolder {
                project,
                type_id,
                name,
            } => (
                "ADD FOLDER",
                vec![Arg::Int(project), Arg::Int(type_id), Arg::Str(name)],
            ),
            C::RenameFolder { folder, name } => {
                ("RENAME FOLDER", vec![Arg::Int(folder), Arg::Str(name)])
            }
            C::LoginNew {
                login,
                password,
                new_password,
            } => (
                "LOGIN NEW",
                vec![Arg::Str(login), Arg::Str(password), Arg::Str(new_password)],
            ),
            C::RenameType { type_id, name } => {
                ("RENAME TYPE", vec![Arg::Int(type_id), Arg::Str(name)])
            }
            C::DeleteType { type_id, force } => {
                ("DELETE TYPE", vec![Arg::Int(type_id), Arg::Int(force)])
            }
            C::RenameAttribute { attribute, name } => (
                "RENAME ATTRIBUTE",
                vec![Arg::Int(attribute), Arg::Str(name)],
            ),
            C::ModifyAttribute {
                attribute,
                definition,
            } => (
                "MODIFY ATTRIBUTE",
                vec![Arg::Int(attribute), Arg::Str(definition)],
            ),
            C::DeleteAttribute { attribute, force } => (
                "DELETE ATTRIBUTE",
                vec![Arg::Int(attribute), Arg::Int(force)],
            ),
            C::DeleteProject { project, force } => {
                ("DELETE PROJECT", vec![Arg::Int(project), Arg::Int(force)])
            }
            C::DeleteFolder { folder, force } => {
                ("DELETE FOLDER", vec![Arg::Int(folder), Arg::Int(force)])
            }
            C::MoveFolder { folder, project } => {
                ("MOVE FOLDER", vec![Arg::Int(folder), Arg::Int(project)])
            }
            C::MoveIssue { issue, folder } => {
                ("MOVE ISSUE", vec![Arg::Int(issue), Arg::Int(folder)])
            }
            C::DeleteIssue { issue } => ("DELETE ISSUE", vec![Arg::Int(issue)]),
            C::EditComment {
                comment,
                text,
                format,
            } => (
                "EDIT COMMENT",
                vec![Arg::Int(comment), Arg::Str(text), Arg::Int(format)],
            ),
            C::DeleteComment { comment } => ("DELETE COMMENT", vec![Arg::Int(comment)]),
            C::EditAttachment {
                file,
                name,
                description,
            } => (
                "EDIT ATTACHMENT",
                vec![Arg::Int(file), Arg::Str(name), Arg::Str(description)],
            ),
            C::DeleteAttachment { file } => ("DELETE ATTACHMENT", vec![Arg::Int(file)]),
            C::EditDescription {
                issue,
                text,
                format,
            } => (
                "EDIT DESCRIPTION",
                vec![Arg::Int(issue), Arg::Str(text), Arg::Int(format)],
            ),
            C::DeleteDescription { issue } => ("DELETE DESCRIPTION", vec![Arg::Int(issue)]),
            C::SetProjectAccess { project, public } => (
                "SET PROJECT ACCESS",
                vec![Arg::Int(project), Arg::Int(public)],
            ),
            C::ArchiveProject { project } => ("ARCHIVE PROJECT", vec![Arg::Int(project)]),
            C::AddProjectDescription {
                project,
                text,
                format,
            } => (
                "ADD PROJECT DESCRIPTION",
                vec![Arg::Int(project), Arg::Str(text), Arg::Int(format)],
            ),
            C::EditProjectDescription {
                project,
                text,
                format,
            } => (
                "EDIT PROJECT DESCRIPTION",
                vec![Arg::Int(project), Arg::Str(text), Arg::Int(format)],
            ),
            C::DeleteProjectDescription { project } => {
                ("DELETE PROJECT DESCRIPTION", vec![Arg::Int(project)])
            }
        };
        line.extend_from_slice(name.as_bytes());
        for a in args {
            line.push(b' ');
            match a {
                Arg::Int(v) => line.extend_from_slice(v.to_string().as_bytes()),
                Arg::Str(s) => write_string(&mut line, &s),
                Arg::File(_) => {}
            }
        }
        (String::from_utf8(line).unwrap_or_default(), file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wi11::token::tokenize;

    fn run(line: &str) -> Result<Cmd11, Code11> {
        parse(tokenize(Some(line.as_bytes()), None)?)
    }

    #[test]
    fn names_then_signatures() {
        assert_eq!(run("FOO BAR"), Err(Code11::UnknownCommand));
        assert_eq!(run("LIST USERS 1"), Err(Code11::InvalidArguments));
        assert_eq!(run("LIST 5 USERS"), Err(Code11::InvalidArguments));
        assert_eq!(run("GET DETAILS 'x' 0 0"), Err(Code11::InvalidArguments));
        // ADD ATTACHMENT without its file part, and a file sent with another command.
        assert_eq!(
            run("ADD ATTACHMENT 1 'a' ''"),
            Err(Code11::InvalidArguments)
        );
        let f = Bytes::from_static(b"x");
        assert_eq!(
            parse(tokenize(Some(b"LIST USERS"), Some(&f)).unwrap()),
            Err(Code11::InvalidArguments)
        );
        assert_eq!(
            run("GET DETAILS 7 0 1"),
            Ok(Cmd11::GetDetails {
                issue: 7,
                since: 0,
                mark_read: 1
            })
        );
    }

    #[test]
    fn every_command_round_trips() {
        let file = Bytes::from_static(b"\x00bytes");
        let samples = vec![
            Cmd11::Hello,
            Cmd11::Login {
                login: "a'b".into(),
                password: "p\\w".into(),
            },
            Cmd11::GetSettings,
            Cmd11::ListUsers,
            Cmd11::ListTypes,
            Cmd11::ListProjects,
            Cmd11::ListStates { since: 3 },
            Cmd11::ListIssues {
                folder: 1,
                since: -2,
            },
            Cmd11::GetDetails {
                issue: 1,
                since: 2,
                mark_read: 1,
            },
            Cmd11::GetSummary {
                project: 1,
                since: 0,
            },
            Cmd11::GetAttachment { file: 8 },
            Cmd11::SetIssueRead { issue: 1, read: 0 },
            Cmd11::SetFolderRead { folder: 1, read: 9 },
            Cmd11::FindItem { item: 6 },
            Cmd11::AddIssue {
                folder: 1,
                name: "Bug".into(),
            },
            Cmd11::SetValue {
                issue: 1,
                attribute: 2,
                value: "x\ty".into(),
            },
            Cmd11::AddDescription {
                issue: 1,
                text: "a\nb".into(),
                format: 1,
            },
            Cmd11::AddComment {
                issue: 1,
                text: "c".into(),
                format: 0,
            },
            Cmd11::AddAttachment {
                issue: 1,
                name: "f".into(),
                description: "".into(),
                data: file,
            },
            Cmd11::RenameIssue {
                issue: 1,
                name: "n".into(),
            },
            Cmd11::ChangePassword {
                password: "old".into(),
                new_password: "new".into(),
            },
            Cmd11::SetPassword {
                user: 2,
                password: "p".into(),
                temporary: 0,
            },
            Cmd11::AddUser {
                login: "l".into(),
                name: "n".into(),
                password: "p".into(),
                temporary: 0,
            },
            Cmd11::RenameUser {
                user: 2,
                name: "n".into(),
            },
            Cmd11::GrantUser { user: 2, access: 0 },
            Cmd11::GrantMember {
                user: 2,
                project: 1,
                access: 1,
            },
            Cmd11::AddType { name: "T".into() },
            Cmd11::AddAttribute {
                type_id: 1,
                name: "A".into(),
                definition: "TEXT".into(),
            },
            Cmd11::AddProject { name: "P".into() },
            Cmd11::RenameProject {
                project: 1,
                name: "Q".into(),
            },
            Cmd11::AddFolder {
                project: 1,
                type_id: 1,
                name: "F".into(),
            },
            Cmd11::RenameFolder {
                folder: 1,
                name: "G".into(),
            },
            Cmd11::LoginNew {
                login: "l".into(),
                password: "o'ld".into(),
                new_password: "n\\ew".into(),
            },
            Cmd11::RenameType {
                type_id: 1,
                name: "T".into(),
            },
            Cmd11::DeleteType {
                type_id: 1,
                force: 1,
            },
            Cmd11::RenameAttribute {
                attribute: 2,
                name: "A".into(),
            },
            Cmd11::ModifyAttribute {
                attribute: 2,
                definition: "ENUM items={\"a\"}".into(),
            },
            Cmd11::DeleteAttribute {
                attribute: 2,
                force: 0,
            },
            Cmd11::DeleteProject {
                project: 3,
                force: 1,
            },
            Cmd11::DeleteFolder {
                folder: 4,
                force: 0,
            },
            Cmd11::MoveFolder {
                folder: 4,
                project: 5,
            },
            Cmd11::MoveIssue {
                issue: 6,
                folder: 7,
            },
            Cmd11::DeleteIssue { issue: 6 },
            Cmd11::EditComment {
                comment: 8,
                text: "a\nb".into(),
                format: 1,
            },
            Cmd11::DeleteComment { comment: 8 },
            Cmd11::EditAttachment {
                file: 9,
                name: "f".into(),
                description: String::new(),
            },
            Cmd11::DeleteAttachment { file: 9 },
            Cmd11::EditDescription {
                issue: 6,
                text: "d".into(),
                format: 0,
            },
            Cmd11::DeleteDescription { issue: 6 },
            Cmd11::SetProjectAccess {
                project: 3,
                public: 1,
            },
            Cmd11::ArchiveProject { project: 3 },
            Cmd11::AddProjectDescription {
                project: 3,
                text: "p".into(),
                format: 1,
            },
            Cmd11::EditProjectDescription {
                project: 3,
                text: "q".into(),
                format: 0,
            },
            Cmd11::DeleteProjectDescription { project: 3 },
        ];
        assert_eq!(samples.len(), SIGNATURES.len(), "one sample per command");
        for c in samples {
            let (line, file) = c.encode();
            let back = parse(tokenize(Some(line.as_bytes()), file.as_ref()).unwrap()).unwrap();
            assert_eq!(back, c, "{line}");
        }
    }
}
