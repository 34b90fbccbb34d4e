//! 1.1 replies: data lines, `NULL`, `OK`, `ID n`, `ERROR code 'Message'`, and the 1.1 error
//! table. Lines end in CR LF; unlike 0.8 no empty line closes a reply (the HTTP body does).

use super::token::write_string;
use crate::error::Code;

/// Defines [`Code11`] with the number and fixed message of each 1.1 error.
macro_rules! codes11 {
    ($($name:ident = $number:literal, $message:literal;)*) => {
        /// A 1.1 error: its code and its fixed English message (never a detail).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Code11 { $($name,)* }

        impl Code11 {
            pub const ALL: &[Code11] = &[$(Code11::$name,)*];
            pub fn number(self) -> u16 {
                match self { $(Code11::$name => $number,)* }
            }
            pub fn message(self) -> &'static str {
                match self { $(Code11::$name => $message,)* }
            }
        }
    };
}

codes11! {
    LoginRequired = 300, "Login Required";
    AccessDenied = 301, "Access Denied";
    IncorrectLogin = 302, "Incorrect Login";
    UnknownProject = 303, "Unknown Project";
    UnknownFolder = 304, "Unknown Folder";
    UnknownIssue = 305, "Unknown Issue";
    UnknownFile = 306, "Unknown File";
    UnknownUser = 307, "Unknown User";
    UnknownType = 308, "Unknown Type";
    UnknownAttribute = 309, "Unknown Attribute";
    ProjectExists = 311, "Project Already Exists";
    FolderExists = 312, "Folder Already Exists";
    UserExists = 313, "User Already Exists";
    TypeExists = 314, "Type Already Exists";
    AttributeExists = 315, "Attribute Already Exists";
    CannotDeleteProject = 316, "Cannot Delete Project";
    CannotDeleteFolder = 317, "Cannot Delete Folder";
    CannotDeleteType = 318, "Cannot Delete Type";
    InvalidString = 319, "Invalid String";
    InvalidAccess = 320, "Invalid Access Level";
    InvalidValue = 321, "Invalid Value";
    InvalidDefinition = 322, "Invalid Definition";
    InvalidPreference = 323, "Invalid Preference";
    InvalidSetting = 324, "Invalid Setting";
    InvalidEmail = 335, "Invalid Email";
    EmailExists = 358, "Email Already Exists";
    EmptyValue = 325, "Empty Value";
    StringTooShort = 326, "String Too Short";
    StringTooLong = 327, "String Too Long";
    NumberTooLittle = 328, "Number Too Little";
    NumberTooGreat = 329, "Number Too Great";
    InvalidFormat = 332, "Invalid Format";
    InvalidDate = 333, "Invalid Date";
    NoMatchingItem = 336, "No Matching Item";
    DuplicateItems = 337, "Duplicate Items";
    IncompatibleType = 339, "Incompatible Type";
    UnknownComment = 350, "Unknown Comment";
    CannotDeleteAttribute = 351, "Cannot Delete Attribute";
    MustChangePassword = 352, "Must Change Password";
    UnknownDescription = 361, "Unknown Description";
    ItemNotFound = 354, "Item Not Found";
    UnknownView = 340, "Unknown View";
    UnknownColumn = 341, "Unknown Column";
    ViewExists = 342, "View Already Exists";
    MissingColumn = 343, "Missing Column";
    MissingAttribute = 344, "Missing Attribute";
    UnknownAlert = 347, "Unknown Alert";
    AlertExists = 348, "Alert Already Exists";
    InvalidAlertEmail = 349, "Invalid Alert Email";
    UnknownSubscription = 364, "Unknown Subscription";
    SubscriptionExists = 365, "SubscriptionAlreadyExists";
    CannotReusePassword = 353, "Cannot Reuse Password";
    DescriptionExists = 362, "Description Already Exists";
    InvalidTextFormat = 363, "Invalid Text Format";
    SyntaxError = 400, "Syntax Error";
    UnknownCommand = 401, "Unknown Command";
    InvalidArguments = 402, "Invalid Arguments";
    UploadError = 403, "Upload Error";
    ServerError = 500, "Server Error";
}

impl Code11 {
    /// The 1.1 code for an error of the shared command layer (0.8 numbering).
    pub fn from_08(code: Code) -> Code11 {
        use Code11 as N;
        match code {
            Code::LoginRequired => N::LoginRequired,
            Code::AccessDenied => N::AccessDenied,
            // 1.1 has no throttle code: a throttled login is an incorrect one.
            Code::IncorrectLogin | Code::TooManyAttempts => N::IncorrectLogin,
            Code::UnknownProject => N::UnknownProject,
            Code::UnknownFolder => N::UnknownFolder,
            Code::UnknownIssue => N::UnknownIssue,
            Code::UnknownAttachment => N::UnknownFile,
            Code::UnknownUser => N::UnknownUser,
            Code::UnknownType => N::UnknownType,
            Code::UnknownAttribute => N::UnknownAttribute,
            Code::ProjectExists => N::ProjectExists,
            Code::FolderExists => N::FolderExists,
            Code::UserExists => N::UserExists,
            Code::TypeExists => N::TypeExists,
            Code::AttributeExists => N::AttributeExists,
            Code::CannotDeleteProject => N::CannotDeleteProject,
            Code::CannotDeleteFolder => N::CannotDeleteFolder,
            Code::CannotDeleteType => N::CannotDeleteType,
            Code::InvalidString => N::InvalidString,
            Code::InvalidAccess => N::InvalidAccess,
            Code::InvalidValue => N::InvalidValue,
            Code::InvalidDefinition => N::InvalidDefinition,
            Code::InvalidPreference => N::InvalidPreference,
            Code::SyntaxError => N::SyntaxError,
            Code::UnknownCommand => N::UnknownCommand,
            Code::InvalidArguments => N::InvalidArguments,
            Code::UploadError => N::UploadError,
            _ => N::ServerError,
        }
    }
}

impl From<crate::error::Error> for Code11 {
    fn from(e: crate::error::Error) -> Self {
        if e.code == Code::ServerError {
            tracing::warn!(error = %e.message(), "1.1 command failed");
        }
        Code11::from_08(e.code)
    }
}

/// A 1.1 reply body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply11 {
    Null,
    Ok,
    Id(i64),
    Error(Code11),
    /// Data lines, each ending in CR LF; empty is sent as `NULL`.
    Lines(Vec<u8>),
    /// GET ATTACHMENT: the raw bytes, sent as `application/octet-stream`.
    File {
        name: String,
        data: bytes::Bytes,
    },
    /// GET ATTACHMENT of a large file: sent from the open file in pieces, as on the 0.8
    /// routes, never held whole.
    Stream {
        name: String,
        body: crate::protocol::FileBody,
    },
}

impl From<Code11> for Reply11 {
    fn from(c: Code11) -> Self {
        Reply11::Error(c)
    }
}

impl Reply11 {
    /// The text body (for [`Reply11::File`] and [`Reply11::Stream`], the file's bytes).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Reply11::Null => b"NULL\r\n".to_vec(),
            Reply11::Ok => b"OK\r\n".to_vec(),
            Reply11::Id(id) => format!("ID {id}\r\n").into_bytes(),
            Reply11::Error(c) => {
                let mut out = format!("ERROR {} ", c.number()).into_bytes();
                write_string(&mut out, c.message());
                out.extend_from_slice(b"\r\n");
                out
            }
            Reply11::Lines(l) if l.is_empty() => b"NULL\r\n".to_vec(),
            Reply11::Lines(l) => l.clone(),
            Reply11::File { data, .. } => data.to_vec(),
            Reply11::Stream { body, .. } => {
                let mut data = vec![0; body.size as usize];
                match std::os::unix::fs::FileExt::read_exact_at(&*body.file, &mut data, 0) {
                    Ok(()) => data,
                    Err(_) => Vec::new(),
                }
            }
        }
    }
}

/// Writes one data line into a reply buffer.
pub struct Out<'a>(&'a mut Vec<u8>);

impl<'a> Out<'a> {
    pub fn line(out: &'a mut Vec<u8>, keyword: &str) -> Self {
        out.extend_from_slice(keyword.as_bytes());
        Out(out)
    }
    pub fn int(self, i: impl Into<i64>) -> Self {
        self.0.push(b' ');
        self.0.extend_from_slice(i.into().to_string().as_bytes());
        self
    }
    pub fn str(self, s: &str) -> Self {
        self.0.push(b' ');
        write_string(self.0, s);
        self
    }
    pub fn end(self) {
        self.0.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_encode_as_the_reference() {
        let mut numbers: Vec<u16> = Code11::ALL.iter().map(|c| c.number()).collect();
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(numbers.len(), Code11::ALL.len());
        assert_eq!(
            Reply11::Error(Code11::UnknownFile).encode(),
            b"ERROR 306 'Unknown File'\r\n"
        );
        assert_eq!(Reply11::Lines(Vec::new()).encode(), b"NULL\r\n");
        let mut l = Vec::new();
        Out::line(&mut l, "C").int(6).str("a\tb\n'c'").int(0).end();
        assert_eq!(l, b"C 6 'a\\tb\\n\\'c\\'' 0\r\n");
    }
}
