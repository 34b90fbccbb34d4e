//! The protocol error table: every `ERROR code 'message'` the server can send, in one place.
//!
//! Codes 300–302 and 340 are confirmed WebIssues 0.8 codes; the other 3xx numbers follow the
//! 1.0 order (see protocol-spec/errors.md). Clients act on the code and only show the message.

use std::borrow::Cow;
use std::fmt;

/// Defines [`Code`] with its number and standard message from one table.
macro_rules! codes {
    ($($name:ident = $number:literal, $message:literal;)*) => {
        /// An error code with its standard message.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code { $($name,)* }

        impl Code {
            /// Every code, for the spec table test.
            pub const ALL: &[Code] = &[$(Code::$name,)*];

            /// The numeric code sent on the wire.
            pub fn number(self) -> u16 {
                match self { $(Code::$name => $number,)* }
            }

            /// The standard message for the code.
            pub fn message(self) -> &'static str {
                match self { $(Code::$name => $message,)* }
            }
        }
    };
}

codes! {
    LoginRequired = 300, "Login Required";
    AccessDenied = 301, "Access Denied";
    IncorrectLogin = 302, "Incorrect Login";
    UnknownProject = 303, "Unknown Project";
    UnknownFolder = 304, "Unknown Folder";
    UnknownIssue = 305, "Unknown Issue";
    UnknownAttachment = 306, "Unknown Attachment";
    UnknownUser = 307, "Unknown User";
    UnknownType = 308, "Unknown Type";
    UnknownAttribute = 309, "Unknown Attribute";
    UnknownSubscription = 310, "Unknown Subscription";
    UnknownMessage = 311, "Unknown Message";
    ProjectExists = 320, "Project Already Exists";
    FolderExists = 321, "Folder Already Exists";
    UserExists = 322, "User Already Exists";
    TypeExists = 323, "Type Already Exists";
    AttributeExists = 324, "Attribute Already Exists";
    CannotDeleteProject = 330, "Cannot Delete Project";
    CannotDeleteFolder = 331, "Cannot Delete Folder";
    CannotDeleteType = 332, "Cannot Delete Type";
    InvalidString = 340, "Invalid String";
    InvalidAccess = 341, "Invalid Access Level";
    InvalidValue = 342, "Invalid Value";
    InvalidDefinition = 343, "Invalid Definition";
    InvalidPreference = 344, "Invalid Preference";
    InvalidToken = 345, "Invalid Token";
    TooManyAttempts = 350, "Too Many Attempts";
    SyntaxError = 400, "Syntax Error";
    UnknownCommand = 401, "Unknown Command";
    InvalidArguments = 402, "Invalid Arguments";
    UploadError = 403, "Upload Error";
    IdleTimeout = 408, "Idle Timeout";
    ServerError = 500, "Server Error";
    TooManyConnections = 503, "Too Many Connections";
}

/// A protocol error: a code, and optionally a detail appended to the standard message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: Code,
    pub detail: Option<Cow<'static, str>>,
}

impl Error {
    pub fn new(code: Code) -> Self {
        Error { code, detail: None }
    }

    /// An error whose message says more than the code's standard text. The detail must not
    /// repeat another project's data: it reaches whoever sent the command.
    pub fn with(code: Code, detail: impl Into<Cow<'static, str>>) -> Self {
        Error {
            code,
            detail: Some(detail.into()),
        }
    }

    /// An internal failure; the cause goes to the log, not to the client.
    pub fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Error::new(Code::ServerError)
    }

    /// The message text sent after the code.
    pub fn message(&self) -> String {
        match &self.detail {
            Some(d) => format!("{}: {}", self.code.message(), d),
            None => self.code.message().to_string(),
        }
    }
}

impl From<Code> for Error {
    fn from(code: Code) -> Self {
        Error::new(code)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code.number(), self.message())
    }
}

impl std::error::Error for Error {}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        Error::internal(e)
    }
}

impl From<postcard::Error> for Error {
    fn from(e: postcard::Error) -> Self {
        Error::internal(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::internal(e)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Client text quoted in an error message: control characters escaped and the length capped
/// at `max` characters, so echoed input can neither break a reply line nor flood it.
pub fn printable(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique() {
        let numbers: HashSet<u16> = Code::ALL.iter().map(|c| c.number()).collect();
        assert_eq!(numbers.len(), Code::ALL.len());
    }

    /// protocol-spec/errors.md lists every code with its standard message.
    #[test]
    fn spec_table_matches() {
        let spec = include_str!("../protocol-spec/errors.md");
        for code in Code::ALL {
            let row = format!("| {} | {} |", code.number(), code.message());
            assert!(spec.contains(&row), "errors.md lacks {row}");
        }
    }

    #[test]
    fn detail_is_appended() {
        let e = Error::with(Code::SyntaxError, "unbalanced quote");
        assert_eq!(e.message(), "Syntax Error: unbalanced quote");
        assert_eq!(e.to_string(), "400 Syntax Error: unbalanced quote");
    }
}
