//! The protocol error table: every `ERROR code 'message'` the server can send, in one place.
//!
//! Codes 300–302 and 340 are confirmed WebIssues 0.8 codes; the other 3xx numbers follow the
//! 1.0 order (see protocol-spec/errors.md). Clients act on the code and only show the message.

use std::borrow::Cow;
use std::fmt;

/// An error code with its standard message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    LoginRequired,
    AccessDenied,
    IncorrectLogin,
    UnknownProject,
    UnknownFolder,
    UnknownIssue,
    UnknownAttachment,
    UnknownUser,
    UnknownType,
    UnknownAttribute,
    UnknownSubscription,
    ProjectExists,
    FolderExists,
    UserExists,
    TypeExists,
    AttributeExists,
    CannotDeleteProject,
    CannotDeleteFolder,
    CannotDeleteType,
    InvalidString,
    InvalidAccess,
    InvalidValue,
    InvalidDefinition,
    InvalidPreference,
    InvalidToken,
    TooManyAttempts,
    SyntaxError,
    UnknownCommand,
    InvalidArguments,
    UploadError,
    IdleTimeout,
    ServerError,
    TooManyConnections,
}

impl Code {
    /// The numeric code sent on the wire.
    pub fn number(self) -> u16 {
        use Code::*;
        match self {
            LoginRequired => 300,
            AccessDenied => 301,
            IncorrectLogin => 302,
            UnknownProject => 303,
            UnknownFolder => 304,
            UnknownIssue => 305,
            UnknownAttachment => 306,
            UnknownUser => 307,
            UnknownType => 308,
            UnknownAttribute => 309,
            UnknownSubscription => 310,
            ProjectExists => 320,
            FolderExists => 321,
            UserExists => 322,
            TypeExists => 323,
            AttributeExists => 324,
            CannotDeleteProject => 330,
            CannotDeleteFolder => 331,
            CannotDeleteType => 332,
            InvalidString => 340,
            InvalidAccess => 341,
            InvalidValue => 342,
            InvalidDefinition => 343,
            InvalidPreference => 344,
            InvalidToken => 345,
            TooManyAttempts => 350,
            SyntaxError => 400,
            UnknownCommand => 401,
            InvalidArguments => 402,
            UploadError => 403,
            IdleTimeout => 408,
            ServerError => 500,
            TooManyConnections => 503,
        }
    }

    /// The standard message for the code.
    pub fn message(self) -> &'static str {
        use Code::*;
        match self {
            LoginRequired => "Login Required",
            AccessDenied => "Access Denied",
            IncorrectLogin => "Incorrect Login",
            UnknownProject => "Unknown Project",
            UnknownFolder => "Unknown Folder",
            UnknownIssue => "Unknown Issue",
            UnknownAttachment => "Unknown Attachment",
            UnknownUser => "Unknown User",
            UnknownType => "Unknown Type",
            UnknownAttribute => "Unknown Attribute",
            UnknownSubscription => "Unknown Subscription",
            ProjectExists => "Project Already Exists",
            FolderExists => "Folder Already Exists",
            UserExists => "User Already Exists",
            TypeExists => "Type Already Exists",
            AttributeExists => "Attribute Already Exists",
            CannotDeleteProject => "Cannot Delete Project",
            CannotDeleteFolder => "Cannot Delete Folder",
            CannotDeleteType => "Cannot Delete Type",
            InvalidString => "Invalid String",
            InvalidAccess => "Invalid Access Level",
            InvalidValue => "Invalid Value",
            InvalidDefinition => "Invalid Definition",
            InvalidPreference => "Invalid Preference",
            InvalidToken => "Invalid Token",
            TooManyAttempts => "Too Many Attempts",
            SyntaxError => "Syntax Error",
            UnknownCommand => "Unknown Command",
            InvalidArguments => "Invalid Arguments",
            UploadError => "Upload Error",
            IdleTimeout => "Idle Timeout",
            ServerError => "Server Error",
            TooManyConnections => "Too Many Connections",
        }
    }

    /// Every code, for the spec table test.
    pub const ALL: [Code; 33] = {
        use Code::*;
        [
            LoginRequired,
            AccessDenied,
            IncorrectLogin,
            UnknownProject,
            UnknownFolder,
            UnknownIssue,
            UnknownAttachment,
            UnknownUser,
            UnknownType,
            UnknownAttribute,
            UnknownSubscription,
            ProjectExists,
            FolderExists,
            UserExists,
            TypeExists,
            AttributeExists,
            CannotDeleteProject,
            CannotDeleteFolder,
            CannotDeleteType,
            InvalidString,
            InvalidAccess,
            InvalidValue,
            InvalidDefinition,
            InvalidPreference,
            InvalidToken,
            TooManyAttempts,
            SyntaxError,
            UnknownCommand,
            InvalidArguments,
            UploadError,
            IdleTimeout,
            ServerError,
            TooManyConnections,
        ]
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique() {
        let numbers: HashSet<u16> = Code::ALL.iter().map(|c| c.number()).collect();
        assert_eq!(numbers.len(), Code::ALL.len());
    }

    #[test]
    fn detail_is_appended() {
        let e = Error::with(Code::SyntaxError, "unbalanced quote");
        assert_eq!(e.message(), "Syntax Error: unbalanced quote");
        assert_eq!(e.to_string(), "400 Syntax Error: unbalanced quote");
    }
}
