//! The typed command set: one variant per verb, arguments typed and strings validated here,
//! once, so handlers receive only well-formed input (protocol-spec/grammar.md, tracker.md, system-and-users.md).

use super::token::{self, Arg};
use crate::error::{Code, Error};
use bytes::Bytes;

/// Ids, stamps and flags as sent by the client. Negative ids are valid syntax; they name no
/// object, so handlers answer them with the matching "unknown" error.
pub type Id = i64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Hello,
    Login {
        login: String,
        password: String,
    },
    Quit,
    /// `HELP` or `HELP 'COMMAND NAME'` (extension `help`).
    Help {
        name: Option<String>,
    },
    ListFeatures,
    ListUsers,
    AddUser {
        login: String,
        name: String,
        password: String,
    },
    SetPassword {
        user: Id,
        password: String,
    },
    RenameUser {
        user: Id,
        name: String,
    },
    GrantUser {
        user: Id,
        access: i64,
    },
    GrantMember {
        user: Id,
        project: Id,
        access: i64,
    },
    ListTypes,
    AddType {
        name: String,
    },
    RenameType {
        type_id: Id,
        name: String,
    },
    DeleteType {
        type_id: Id,
    },
    AddAttribute {
        type_id: Id,
        name: String,
        definition: String,
    },
    RenameAttribute {
        attribute: Id,
        name: String,
    },
    ModifyAttribute {
        attribute: Id,
        definition: String,
    },
    DeleteAttribute {
        attribute: Id,
    },
    ListProjects,
    AddProject {
        name: String,
    },
    RenameProject {
        project: Id,
        name: String,
    },
    DeleteProject {
        project: Id,
    },
    AddFolder {
        project: Id,
        type_id: Id,
        name: String,
    },
    RenameFolder {
        folder: Id,
        name: String,
    },
    DeleteFolder {
        folder: Id,
    },
    ListIssues {
        folder: Id,
        since: i64,
    },
    GetDetails {
        issue: Id,
        since: i64,
    },
    AddIssue {
        folder: Id,
        name: String,
    },
    RenameIssue {
        issue: Id,
        name: String,
    },
    SetValue {
        issue: Id,
        attribute: Id,
        value: String,
    },
    AddComment {
        issue: Id,
        text: String,
    },
    AddAttachment {
        issue: Id,
        name: String,
        description: String,
        data: Bytes,
    },
    GetAttachment {
        attachment: Id,
    },
    FindItem {
        item: Id,
    },
    ListPreferences {
        user: Id,
    },
    SetPreference {
        user: Id,
        name: String,
        value: String,
    },
    ListNotifications,
    NotifyFolder {
        folder: Id,
        status: i64,
    },
    NotifyIssue {
        issue: Id,
        status: i64,
    },
    PreviewNotifications {
        user: Id,
    },
    RunNotifications,
    ListOutbox,
    RetryOutbox {
        message: Id,
    },
    DeleteOutbox {
        message: Id,
    },
    SubscribeFolder {
        folder: Id,
        subscriber: String,
        ttl: i64,
        options: String,
    },
    SubscribeIssue {
        issue: Id,
        subscriber: String,
        ttl: i64,
        options: String,
    },
    ListSubscriptions,
    DeleteSubscription {
        subscription: Id,
    },
    ConfirmSubscription {
        subscription: Id,
        token: String,
    },
    ConfirmEmail {
        user: Id,
        token: String,
    },
}

impl Command {
    /// Whether the command may run before LOGIN.
    pub fn is_anonymous(&self) -> bool {
        matches!(
            self,
            Command::Hello | Command::Login { .. } | Command::Quit | Command::Help { .. }
        )
    }
}

/// The rules a string argument must meet (protocol-spec/grammar.md, "String kinds").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Logins and names of users, types, attributes, projects, folders and files: 1–40
    /// characters on one line, no TAB; trailing spaces are stripped first.
    Name,
    /// Issue names: 1–80 characters, one line, no TAB; trailing spaces stripped.
    IssueName,
    /// Attribute values and descriptions: 0–80 characters, one line, no TAB.
    Value,
    /// Comments: 1–65 536 characters; LF and TAB allowed.
    Text,
    /// Passwords: 1–128 characters, one line.
    Password,
    /// Attribute definitions, subscriber URIs, subscription options: 0–4096, one line.
    Definition,
    /// Preference names and tokens: 0–128 characters, one line.
    Key,
    /// Preference values: 0–65 536 characters; LF allowed.
    PrefValue,
}

impl Kind {
    fn limits(self) -> (usize, usize, bool, bool) {
        // (min chars, max chars, LF allowed, TAB allowed)
        match self {
            Kind::Name => (1, 40, false, false),
            Kind::IssueName => (1, 80, false, false),
            Kind::Value => (0, 80, false, false),
            Kind::Text => (1, 65_536, true, true),
            Kind::Password => (1, 128, false, true),
            Kind::Definition => (0, 4096, false, false),
            Kind::Key => (0, 128, false, false),
            Kind::PrefValue => (0, 65_536, true, true),
        }
    }

    /// Checks (and for names normalises) a string argument.
    pub fn check(self, mut s: String) -> Result<String, Error> {
        if matches!(self, Kind::Name | Kind::IssueName) {
            let trimmed = s.trim_end_matches(' ').len();
            s.truncate(trimmed);
        }
        let (min, max, lf, tab) = self.limits();
        let mut count = 0usize;
        for c in s.chars() {
            count += 1;
            if (c == '\n' && !lf) || (c == '\t' && !tab) {
                return Err(Error::with(
                    Code::InvalidString,
                    "line break or tab not allowed here",
                ));
            }
        }
        if count < min {
            return Err(Error::with(Code::InvalidString, "empty string"));
        }
        if count > max {
            return Err(Error::with(
                Code::InvalidString,
                format!("longer than {max} characters"),
            ));
        }
        Ok(s)
    }
}

/// Checks a raw line (without its line ending) and turns it into a command.
///
/// The order of checks is the order of the error table: encoding and control characters
/// (340), syntax (400), command name (401), argument count and types (402), strings (340).
pub fn parse_command(raw: &[u8], literal: Option<Bytes>) -> Result<Command, Error> {
    let text =
        std::str::from_utf8(raw).map_err(|_| Error::with(Code::InvalidString, "invalid UTF-8"))?;
    if text.chars().any(|c| c != '\t' && c.is_control()) {
        return Err(Error::with(Code::InvalidString, "control character"));
    }
    let tokens = token::line_at(text)
        .map_err(|(e, at)| Error::with(Code::SyntaxError, format!("{e} at character {at}")))?;
    let mut a = Args::new(tokens.args);
    let has_literal = literal.is_some();
    use Command as C;
    let cmd = match tokens.keywords.as_slice() {
        ["HELLO"] => a.sig("").map(|_| C::Hello),
        ["QUIT"] => a.sig("").map(|_| C::Quit),
        ["HELP"] => match a.all.len() {
            0 => Ok(C::Help { name: None }),
            _ => a.sig("s").and_then(|_| {
                Ok(C::Help {
                    name: Some(a.str(Kind::Key)?),
                })
            }),
        },
        ["LOGIN"] => a.sig("ss").and_then(|_| {
            Ok(C::Login {
                login: a.str(Kind::Name)?,
                password: a.str(Kind::Password)?,
            })
        }),
        ["LIST", "FEATURES"] => a.sig("").map(|_| C::ListFeatures),
        ["LIST", "USERS"] => a.sig("").map(|_| C::ListUsers),
        ["ADD", "USER"] => a.sig("sss").and_then(|_| {
            Ok(C::AddUser {
                login: a.str(Kind::Name)?,
                name: a.str(Kind::Name)?,
                password: a.str(Kind::Password)?,
            })
        }),
        ["SET", "PASSWORD"] => a.sig("is").and_then(|_| {
            Ok(C::SetPassword {
                user: a.int(),
                password: a.str(Kind::Password)?,
            })
        }),
        ["RENAME", "USER"] => a.sig("is").and_then(|_| {
            Ok(C::RenameUser {
                user: a.int(),
                name: a.str(Kind::Name)?,
            })
        }),
        ["GRANT", "USER"] => a.sig("ii").map(|_| C::GrantUser {
            user: a.int(),
            access: a.int(),
        }),
        ["GRANT", "MEMBER"] => a.sig("iii").map(|_| C::GrantMember {
            user: a.int(),
            project: a.int(),
            access: a.int(),
        }),
        ["LIST", "TYPES"] => a.sig("").map(|_| C::ListTypes),
        ["ADD", "TYPE"] => a.sig("s").and_then(|_| {
            Ok(C::AddType {
                name: a.str(Kind::Name)?,
            })
        }),
        ["RENAME", "TYPE"] => a.sig("is").and_then(|_| {
            Ok(C::RenameType {
                type_id: a.int(),
                name: a.str(Kind::Name)?,
            })
        }),
        ["DELETE", "TYPE"] => a.sig("i").map(|_| C::DeleteType { type_id: a.int() }),
        ["ADD", "ATTRIBUTE"] => a.sig("iss").and_then(|_| {
            Ok(C::AddAttribute {
                type_id: a.int(),
                name: a.str(Kind::Name)?,
                definition: a.str(Kind::Definition)?,
            })
        }),
        ["RENAME", "ATTRIBUTE"] => a.sig("is").and_then(|_| {
            Ok(C::RenameAttribute {
                attribute: a.int(),
                name: a.str(Kind::Name)?,
            })
        }),
        ["MODIFY", "ATTRIBUTE"] => a.sig("is").and_then(|_| {
            Ok(C::ModifyAttribute {
                attribute: a.int(),
                definition: a.str(Kind::Definition)?,
            })
        }),
        ["DELETE", "ATTRIBUTE"] => a
            .sig("i")
            .map(|_| C::DeleteAttribute { attribute: a.int() }),
        ["LIST", "PROJECTS"] => a.sig("").map(|_| C::ListProjects),
        ["ADD", "PROJECT"] => a.sig("s").and_then(|_| {
            Ok(C::AddProject {
                name: a.str(Kind::Name)?,
            })
        }),
        ["RENAME", "PROJECT"] => a.sig("is").and_then(|_| {
            Ok(C::RenameProject {
                project: a.int(),
                name: a.str(Kind::Name)?,
            })
        }),
        ["DELETE", "PROJECT"] => a.sig("i").map(|_| C::DeleteProject { project: a.int() }),
        ["ADD", "FOLDER"] => a.sig("iis").and_then(|_| {
            Ok(C::AddFolder {
                project: a.int(),
                type_id: a.int(),
                name: a.str(Kind::Name)?,
            })
        }),
        ["RENAME", "FOLDER"] => a.sig("is").and_then(|_| {
            Ok(C::RenameFolder {
                folder: a.int(),
                name: a.str(Kind::Name)?,
            })
        }),
        ["DELETE", "FOLDER"] => a.sig("i").map(|_| C::DeleteFolder { folder: a.int() }),
        ["LIST", "ISSUES"] => a.sig("ii").map(|_| C::ListIssues {
            folder: a.int(),
            since: a.int(),
        }),
        ["GET", "DETAILS"] => a.sig("ii").map(|_| C::GetDetails {
            issue: a.int(),
            since: a.int(),
        }),
        ["ADD", "ISSUE"] => a.sig("is").and_then(|_| {
            Ok(C::AddIssue {
                folder: a.int(),
                name: a.str(Kind::IssueName)?,
            })
        }),
        ["RENAME", "ISSUE"] => a.sig("is").and_then(|_| {
            Ok(C::RenameIssue {
                issue: a.int(),
                name: a.str(Kind::IssueName)?,
            })
        }),
        ["SET", "VALUE"] => a.sig("iis").and_then(|_| {
            Ok(C::SetValue {
                issue: a.int(),
                attribute: a.int(),
                value: a.str(Kind::Value)?,
            })
        }),
        ["ADD", "COMMENT"] => a.sig("is").and_then(|_| {
            Ok(C::AddComment {
                issue: a.int(),
                text: a.str(Kind::Text)?,
            })
        }),
        ["ADD", "ATTACHMENT"] => a.sig("iss").and_then(|_| {
            let issue = a.int();
            let name = a.str(Kind::Name)?;
            let description = a.str(Kind::Value)?;
            let data = literal.clone().ok_or_else(|| {
                Error::with(
                    Code::UploadError,
                    "no data: end the line with {size} and send size bytes after it",
                )
            })?;
            Ok(C::AddAttachment {
                issue,
                name,
                description,
                data,
            })
        }),
        ["GET", "ATTACHMENT"] => a.sig("i").map(|_| C::GetAttachment {
            attachment: a.int(),
        }),
        ["FIND", "ITEM"] => a.sig("i").map(|_| C::FindItem { item: a.int() }),
        ["LIST", "PREFERENCES"] => a.sig("i").map(|_| C::ListPreferences { user: a.int() }),
        ["SET", "PREFERENCE"] => a.sig("iss").and_then(|_| {
            Ok(C::SetPreference {
                user: a.int(),
                name: a.str(Kind::Key)?,
                value: a.str(Kind::PrefValue)?,
            })
        }),
        ["LIST", "NOTIFICATIONS"] => a.sig("").map(|_| C::ListNotifications),
        ["NOTIFY", "FOLDER"] => a.sig("ii").map(|_| C::NotifyFolder {
            folder: a.int(),
            status: a.int(),
        }),
        ["NOTIFY", "ISSUE"] => a.sig("ii").map(|_| C::NotifyIssue {
            issue: a.int(),
            status: a.int(),
        }),
        ["PREVIEW", "NOTIFICATIONS"] => a
            .sig("i")
            .map(|_| C::PreviewNotifications { user: a.int() }),
        ["RUN", "NOTIFICATIONS"] => a.sig("").map(|_| C::RunNotifications),
        ["LIST", "OUTBOX"] => a.sig("").map(|_| C::ListOutbox),
        ["RETRY", "OUTBOX"] => a.sig("i").map(|_| C::RetryOutbox { message: a.int() }),
        ["DELETE", "OUTBOX"] => a.sig("i").map(|_| C::DeleteOutbox { message: a.int() }),
        ["SUBSCRIBE", "FOLDER"] => a.sig("isis").and_then(|_| {
            Ok(C::SubscribeFolder {
                folder: a.int(),
                subscriber: a.str(Kind::Definition)?,
                ttl: a.int(),
                options: a.str(Kind::Definition)?,
            })
        }),
        ["SUBSCRIBE", "ISSUE"] => a.sig("isis").and_then(|_| {
            Ok(C::SubscribeIssue {
                issue: a.int(),
                subscriber: a.str(Kind::Definition)?,
                ttl: a.int(),
                options: a.str(Kind::Definition)?,
            })
        }),
        ["LIST", "SUBSCRIPTIONS"] => a.sig("").map(|_| C::ListSubscriptions),
        ["DELETE", "SUBSCRIPTION"] => a.sig("i").map(|_| C::DeleteSubscription {
            subscription: a.int(),
        }),
        ["CONFIRM", "SUBSCRIPTION"] => a.sig("is").and_then(|_| {
            Ok(C::ConfirmSubscription {
                subscription: a.int(),
                token: a.str(Kind::Key)?,
            })
        }),
        ["CONFIRM", "EMAIL"] => a.sig("is").and_then(|_| {
            Ok(C::ConfirmEmail {
                user: a.int(),
                token: a.str(Kind::Key)?,
            })
        }),
        _ => Err(Error::new(Code::UnknownCommand)),
    }
    .map_err(|mut e| {
        // Every 402 says what the command expects (protocol-spec/errors.md).
        if e.code == Code::InvalidArguments
            && let Some(sig) = super::help::signature(&tokens.keywords)
        {
            let detail = e.detail.take().unwrap_or_default();
            e.detail = Some(format!("{detail}; usage: {sig}").into());
        }
        e
    })?;
    if has_literal && !matches!(cmd, C::AddAttachment { .. }) {
        return Err(Error::with(
            Code::InvalidArguments,
            "only ADD ATTACHMENT takes data",
        ));
    }
    Ok(cmd)
}

/// A cursor over the arguments, used after `sig` has checked count and types.
struct Args {
    args: std::vec::IntoIter<Arg>,
    all: Vec<Arg>,
}

impl Args {
    fn new(all: Vec<Arg>) -> Self {
        Args {
            args: Vec::new().into_iter(),
            all,
        }
    }

    /// Checks the signature (`i` integer, `s` string); 402 when it does not match.
    fn sig(&mut self, sig: &str) -> Result<(), Error> {
        if self.all.len() != sig.len() {
            return Err(Error::with(
                Code::InvalidArguments,
                format!("expected {} argument(s), got {}", sig.len(), self.all.len()),
            ));
        }
        for (arg, kind) in self.all.iter().zip(sig.bytes()) {
            match (arg, kind) {
                (Arg::Int(i), b'i') => {
                    if i32::try_from(*i).is_err() {
                        return Err(Error::with(Code::InvalidArguments, "integer out of range"));
                    }
                }
                (Arg::Str(_), b's') => {}
                _ => {
                    return Err(Error::with(Code::InvalidArguments, "wrong argument type"));
                }
            }
        }
        self.args = std::mem::take(&mut self.all).into_iter();
        Ok(())
    }

    fn int(&mut self) -> i64 {
        match self.args.next() {
            Some(Arg::Int(i)) => i,
            _ => unreachable!("signature checked"),
        }
    }

    fn str(&mut self, kind: Kind) -> Result<String, Error> {
        match self.args.next() {
            Some(Arg::Str(s)) => kind.check(s),
            _ => unreachable!("signature checked"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(s: &str) -> Result<Command, Error> {
        parse_command(s.as_bytes(), None)
    }

    fn code(s: &[u8]) -> u16 {
        parse_command(s, None).unwrap_err().code.number()
    }

    #[test]
    fn commands_parse() {
        assert_eq!(parse("HELLO"), Ok(Command::Hello));
        assert_eq!(
            parse("LOGIN 'admin' 'secret'"),
            Ok(Command::Login {
                login: "admin".into(),
                password: "secret".into()
            })
        );
        assert_eq!(
            parse("GRANT MEMBER 2 1 1"),
            Ok(Command::GrantMember {
                user: 2,
                project: 1,
                access: 1
            })
        );
        assert_eq!(
            parse("ADD USER 'jsmith  ' 'John Smith' 'pass123'"),
            Ok(Command::AddUser {
                login: "jsmith".into(),
                name: "John Smith".into(),
                password: "pass123".into()
            })
        );
        assert_eq!(
            parse("RETRY OUTBOX 7"),
            Ok(Command::RetryOutbox { message: 7 })
        );
        assert_eq!(
            parse("DELETE OUTBOX -1"),
            Ok(Command::DeleteOutbox { message: -1 })
        );
    }

    #[test]
    fn error_codes_follow_the_table() {
        assert_eq!(code(b"FROB"), 401);
        assert_eq!(code(b"LIST USERS 1"), 402);
        assert_eq!(code(b"LOGIN 'a'"), 402);
        assert_eq!(code(b"LOGIN 1 2"), 402);
        assert_eq!(code(b"GRANT USER 1 99999999999"), 402);
        assert_eq!(code(b"LOGIN 'a"), 400);
        assert_eq!(code(b"LOGIN 'a\\x' 'b'"), 400);
        assert_eq!(code(b"LOGIN '\xff' 'b'"), 340);
        assert_eq!(code(b"LOGIN 'a\x01' 'b'"), 340);
        assert_eq!(code(b"ADD USER '' 'n' 'p'"), 340);
        assert_eq!(code(b"ADD USER 'a\\nb' 'n' 'p'"), 340);
        let long = format!("ADD TYPE '{}'", "x".repeat(41));
        assert_eq!(code(long.as_bytes()), 340);
        let ok = format!("ADD TYPE '{}'", "é".repeat(40));
        assert!(parse(&ok).is_ok(), "lengths count characters");
        assert_eq!(code(b"ADD ATTACHMENT 1 'a' 'b'"), 403);
        assert_eq!(code(b"RETRY OUTBOX"), 402);
        assert_eq!(code(b"DELETE OUTBOX 'x'"), 402);
    }

    #[test]
    fn literal_only_for_attachments() {
        let data = Bytes::from_static(b"abc");
        let c = parse_command(b"ADD ATTACHMENT 1 'f.txt' ''", Some(data.clone())).unwrap();
        assert!(matches!(c, Command::AddAttachment { data: d, .. } if d == data));
        let e = parse_command(b"HELLO", Some(data)).unwrap_err();
        assert_eq!(e.code, Code::InvalidArguments);
    }

    proptest! {
        #[test]
        fn no_bytes_panic(input in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_command(&input, None);
        }

        #[test]
        fn no_command_like_text_panics(input in "(LIST|ADD|SET|GET|HELLO|LOGIN) ?[A-Z]{0,12}( (-?[0-9]{1,12}|'[^']{0,10}'))*") {
            let _ = parse(&input);
        }
    }
}
