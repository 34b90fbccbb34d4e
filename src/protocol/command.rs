//! The typed command set: one variant per verb, arguments typed and strings validated here,
//! once, so handlers receive only well-formed input (protocol-spec/grammar.md, tracker.md, system-and-users.md).

use super::help::{Entry, Who};
use super::token::{self, Arg};
use crate::error::{Code, Error};
use bytes::Bytes;

/// Ids, stamps and flags as sent by the client. Negative ids are valid syntax; they name no
/// object, so handlers answer them with the matching "unknown" error.
pub type Id = i64;

/// What an argument of a table row is on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Int,
    Str,
    /// A string that may be left out (last).
    OptStr,
    /// The literal after the line: no argument on the line.
    Data,
}

macro_rules! field_type {
    (Int) => { Id };
    (OptKey) => { Option<String> };
    (Data) => { Bytes };
    ($kind:ident) => { String };
}

macro_rules! shape {
    (Int) => {
        Shape::Int
    };
    (OptKey) => {
        Shape::OptStr
    };
    (Data) => {
        Shape::Data
    };
    ($kind:ident) => {
        Shape::Str
    };
}

macro_rules! take {
    ($a:ident, $literal:ident, Int) => {
        $a.int()?
    };
    ($a:ident, $literal:ident, OptKey) => {
        $a.opt_str(Kind::Key)?
    };
    ($a:ident, $literal:ident, Data) => {
        $literal.clone().ok_or_else(|| {
            Error::with(
                Code::UploadError,
                "no data: end the line with {size} and send size bytes after it",
            )
        })?
    };
    ($a:ident, $literal:ident, $kind:ident) => {
        $a.str(Kind::$kind)?
    };
}

macro_rules! feature {
    (none) => {
        None
    };
    ($feature:ident) => {
        Some(stringify!($feature))
    };
}

/// The keywords as one name: `"LIST" "USERS"` gives `"LIST USERS"`.
macro_rules! join {
    ($first:literal $($rest:literal)*) => { concat!($first $(, " ", $rest)*) };
}

/// The enum, one variant per row; rows without arguments are unit variants (matched
/// elsewhere as `Command::Hello {}` or `Command::Hello`).
macro_rules! command_enum {
    (@acc [$($done:tt)*]) => {
        /// One 0.8 command with its arguments checked ([`super::table`]).
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Command { $($done)* }
    };
    (@acc [$($done:tt)*] $variant:ident () $($rest:tt)*) => {
        command_enum!(@acc [$($done)* $variant,] $($rest)*);
    };
    (@acc [$($done:tt)*] $variant:ident ($($field:ident : $kind:ident),+) $($rest:tt)*) => {
        command_enum!(@acc [$($done)* $variant { $($field: field_type!($kind)),+ },] $($rest)*);
    };
}

/// Everything the codec derives from the table: the enum, the parser, names and HELP rows.
macro_rules! codec_items {
    ($(
        $variant:ident [$($kw:literal)+] ($($field:ident : $kind:ident),*) $mode:ident $handler:path;
        $who:ident $feature:ident $sig:literal $sentence:literal;
    )*) => {
        command_enum!(@acc [] $($variant ($($field : $kind),*))*);

        impl Command {
            /// The command's keywords, e.g. `"LIST USERS"` (for logs and metrics: arguments
            /// may hold passwords).
            pub fn name(&self) -> &'static str {
                match self {
                    $(Command::$variant { .. } => join!($($kw)+),)*
                }
            }

            /// Who may run it.
            pub fn who(&self) -> Who {
                match self {
                    $(Command::$variant { .. } => Who::$who,)*
                }
            }
        }

        /// Parses the arguments of the command named by `keywords`.
        fn parse_args(
            keywords: &[&str],
            a: &mut Args,
            literal: &Option<Bytes>,
        ) -> Result<Command, Error> {
            match keywords {
                $([$($kw),+] => {
                    a.sig(&[$(shape!($kind)),*])?;
                    Ok(Command::$variant { $($field: take!(a, literal, $kind)),* })
                })*
                _ => Err(Error::new(Code::UnknownCommand)),
            }
        }

        /// Every command, in the order of protocol-spec/ (HELP lists them in this order).
        pub const COMMANDS: &[Entry] = &[$(Entry {
            name: join!($($kw)+),
            signature: $sig,
            who: Who::$who,
            feature: feature!($feature),
            sentence: $sentence,
        },)*];
    };
}

crate::command_table!(codec_items);

impl Command {
    /// Whether the command may run before LOGIN.
    pub fn is_anonymous(&self) -> bool {
        self.who() == Who::Anyone
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
    let cmd = parse_args(&tokens.keywords, &mut a, &literal).map_err(|mut e| {
        // Every 402 says what the command expects (protocol-spec/errors.md).
        if e.code == Code::InvalidArguments
            && let Some(sig) = super::help::signature(&tokens.keywords)
        {
            let detail = e.detail.take().unwrap_or_default();
            e.detail = Some(format!("{detail}; usage: {sig}").into());
        }
        e
    })?;
    if has_literal && !matches!(cmd, Command::AddAttachment { .. }) {
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

    /// Checks the arguments against the row's shapes; 402 when they do not match.
    fn sig(&mut self, shapes: &[Shape]) -> Result<(), Error> {
        let on_line = shapes.iter().filter(|s| **s != Shape::Data);
        let most = on_line.clone().count();
        let least = on_line.filter(|s| **s != Shape::OptStr).count();
        let n = self.all.len();
        if n < least || n > most {
            let expected = if n < least { least } else { most };
            return Err(Error::with(
                Code::InvalidArguments,
                format!("expected {expected} argument(s), got {n}"),
            ));
        }
        for (arg, shape) in self.all.iter().zip(shapes) {
            match (arg, shape) {
                (Arg::Int(i), Shape::Int) => {
                    if i32::try_from(*i).is_err() {
                        return Err(Error::with(Code::InvalidArguments, "integer out of range"));
                    }
                }
                (Arg::Str(_), Shape::Str | Shape::OptStr) => {}
                _ => {
                    return Err(Error::with(Code::InvalidArguments, "wrong argument type"));
                }
            }
        }
        self.args = std::mem::take(&mut self.all).into_iter();
        Ok(())
    }

    // `sig` has checked count and types, so the mismatch arms below are never taken;
    // they answer 402 rather than panic.
    fn int(&mut self) -> Result<i64, Error> {
        match self.args.next() {
            Some(Arg::Int(i)) => Ok(i),
            _ => Err(Error::with(Code::InvalidArguments, "wrong argument type")),
        }
    }

    fn str(&mut self, kind: Kind) -> Result<String, Error> {
        match self.args.next() {
            Some(Arg::Str(s)) => kind.check(s),
            _ => Err(Error::with(Code::InvalidArguments, "wrong argument type")),
        }
    }

    /// An optional last string: `None` when the line ends before it.
    fn opt_str(&mut self, kind: Kind) -> Result<Option<String>, Error> {
        match self.args.next() {
            Some(Arg::Str(s)) => kind.check(s).map(Some),
            None => Ok(None),
            _ => Err(Error::with(Code::InvalidArguments, "wrong argument type")),
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
