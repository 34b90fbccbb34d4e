//! `mailto:` URIs (RFC 6068) naming the outside addresses of an e-mail subscription.
//!
//! A subscriber URI is untrusted text that ends up in mail headers, so this parser is
//! strict where the RFC leaves room: every address must pass [`is_valid_email`], only the
//! `to`, `cc`, `bcc`, `subject` and `body` fields exist, no decoded control character may
//! reach an address or the subject (`%0D%0A` header injection), and sizes are capped.

use std::fmt;
use std::str::FromStr;

use crate::email_address::is_valid_email;

/// At most this many addresses in `to`, `cc` and `bcc` together, so one subscription can't
/// turn the server into a mass mailer.
pub const MAX_ADDRESSES: usize = 20;
/// The longest subject, in characters.
pub const MAX_SUBJECT_CHARS: usize = 200;
/// The longest body, in characters.
pub const MAX_BODY_CHARS: usize = 4000;

/// A parsed `mailto:` URI, percent-decoded. `subject` and `body` are `None` when absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mailto {
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub subject: Option<String>,
    pub body: Option<String>,
}

/// Why a `mailto:` URI was rejected. The messages quote client text only after escaping
/// control characters and cutting it short, so they are safe to put in an `ERROR` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailtoError {
    NotMailto,
    /// `mailto://…`: an authority has no meaning for mail and usually means a typo.
    HasAuthority,
    HasFragment,
    /// A raw control character in the URI itself.
    InvalidCharacter,
    InvalidEscape,
    InvalidUtf8,
    MalformedField(String),
    UnknownField(String),
    DuplicateField(&'static str),
    EmptyAddress,
    InvalidAddress(String),
    TooManyAddresses,
    NoRecipient,
    ControlInSubject,
    ControlInBody,
    SubjectTooLong,
    BodyTooLong,
}

impl fmt::Display for MailtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid mailto URI: ")?;
        match self {
            MailtoError::NotMailto => f.write_str("it must start with 'mailto:'"),
            MailtoError::HasAuthority => f.write_str("use 'mailto:address', not 'mailto://'"),
            MailtoError::HasFragment => f.write_str("a '#' fragment is not allowed"),
            MailtoError::InvalidCharacter => {
                f.write_str("control characters must be percent-encoded")
            }
            MailtoError::InvalidEscape => {
                f.write_str("'%' must be followed by two hexadecimal digits")
            }
            MailtoError::InvalidUtf8 => f.write_str("percent-encoded text is not valid UTF-8"),
            MailtoError::MalformedField(field) => {
                write!(
                    f,
                    "header field '{}' has no '='",
                    crate::error::printable(field, 60)
                )
            }
            MailtoError::UnknownField(name) => write!(
                f,
                "unknown header field '{}' (allowed: to, cc, bcc, subject, body)",
                crate::error::printable(name, 60)
            ),
            MailtoError::DuplicateField(name) => write!(f, "'{name}' given more than once"),
            MailtoError::EmptyAddress => f.write_str("empty address in a list"),
            MailtoError::InvalidAddress(a) => {
                write!(
                    f,
                    "invalid e-mail address '{}'",
                    crate::error::printable(a, 60)
                )
            }
            MailtoError::TooManyAddresses => {
                write!(f, "more than {MAX_ADDRESSES} addresses")
            }
            MailtoError::NoRecipient => f.write_str("no 'to' address"),
            MailtoError::ControlInSubject => {
                f.write_str("the subject contains a line break or control character")
            }
            MailtoError::ControlInBody => f.write_str("the body contains a control character"),
            MailtoError::SubjectTooLong => {
                write!(
                    f,
                    "the subject is longer than {MAX_SUBJECT_CHARS} characters"
                )
            }
            MailtoError::BodyTooLong => {
                write!(f, "the body is longer than {MAX_BODY_CHARS} characters")
            }
        }
    }
}

impl std::error::Error for MailtoError {}

/// Decodes `%hh` escapes; the result must be UTF-8.
fn percent_decode(s: &str) -> Result<String, MailtoError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(MailtoError::InvalidEscape)?;
            let hex = std::str::from_utf8(hex).map_err(|_| MailtoError::InvalidEscape)?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(MailtoError::InvalidEscape);
            }
            out.push(u8::from_str_radix(hex, 16).map_err(|_| MailtoError::InvalidEscape)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| MailtoError::InvalidUtf8)
}

impl Mailto {
    /// Parses `mailto:to1,to2?cc=…&bcc=…&subject=…&body=…` (scheme and field names are
    /// case-insensitive). At least one `to` address is required.
    pub fn parse(uri: &str) -> Result<Mailto, MailtoError> {
        let scheme = uri.get(..7).ok_or(MailtoError::NotMailto)?;
        if !scheme.eq_ignore_ascii_case("mailto:") {
            return Err(MailtoError::NotMailto);
        }
        let rest = &uri[7..];
        if rest.starts_with("//") {
            return Err(MailtoError::HasAuthority);
        }
        if rest.contains('#') {
            return Err(MailtoError::HasFragment);
        }
        if rest.chars().any(char::is_control) {
            return Err(MailtoError::InvalidCharacter);
        }
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };

        let mut m = Mailto::default();
        let mut count = 0;
        add_addresses(&mut m.to, &mut count, &percent_decode(path)?)?;
        for field in query.into_iter().flat_map(|q| q.split('&')) {
            if field.is_empty() {
                continue;
            }
            let (name, value) = field
                .split_once('=')
                .ok_or_else(|| MailtoError::MalformedField(field.to_owned()))?;
            let name = percent_decode(name)?.to_ascii_lowercase();
            let value = percent_decode(value)?;
            match name.as_str() {
                "to" => add_addresses(&mut m.to, &mut count, &value)?,
                "cc" => add_addresses(&mut m.cc, &mut count, &value)?,
                "bcc" => add_addresses(&mut m.bcc, &mut count, &value)?,
                "subject" => {
                    if value.chars().any(char::is_control) {
                        return Err(MailtoError::ControlInSubject);
                    }
                    if value.chars().count() > MAX_SUBJECT_CHARS {
                        return Err(MailtoError::SubjectTooLong);
                    }
                    set_once(&mut m.subject, "subject", value)?;
                }
                "body" => {
                    // Line breaks are the point of a body (RFC 6068 encodes them as %0D%0A).
                    if value
                        .chars()
                        .any(|c| c.is_control() && !matches!(c, '\r' | '\n' | '\t'))
                    {
                        return Err(MailtoError::ControlInBody);
                    }
                    if value.chars().count() > MAX_BODY_CHARS {
                        return Err(MailtoError::BodyTooLong);
                    }
                    set_once(&mut m.body, "body", value)?;
                }
                _ => return Err(MailtoError::UnknownField(name)),
            }
        }
        if m.to.is_empty() {
            return Err(MailtoError::NoRecipient);
        }
        Ok(m)
    }

    /// Every address, `to` first.
    pub fn addresses(&self) -> impl Iterator<Item = &str> {
        self.to
            .iter()
            .chain(&self.cc)
            .chain(&self.bcc)
            .map(String::as_str)
    }
}

impl FromStr for Mailto {
    type Err = MailtoError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mailto::parse(s)
    }
}

/// Adds a decoded comma-separated list; an empty list adds nothing, an empty item is an error.
fn add_addresses(
    list: &mut Vec<String>,
    count: &mut usize,
    value: &str,
) -> Result<(), MailtoError> {
    if value.is_empty() {
        return Ok(());
    }
    for address in value.split(',') {
        if address.is_empty() {
            return Err(MailtoError::EmptyAddress);
        }
        if !is_valid_email(address) {
            return Err(MailtoError::InvalidAddress(address.to_owned()));
        }
        *count += 1;
        if *count > MAX_ADDRESSES {
            return Err(MailtoError::TooManyAddresses);
        }
        list.push(address.to_owned());
    }
    Ok(())
}

/// `subject` and `body` once only: with two, which one the subscriber meant is a guess.
fn set_once(
    slot: &mut Option<String>,
    name: &'static str,
    value: String,
) -> Result<(), MailtoError> {
    if slot.is_some() {
        return Err(MailtoError::DuplicateField(name));
    }
    *slot = Some(value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> Result<Mailto, MailtoError> {
        Mailto::parse(s)
    }

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn simple_and_full() {
        assert_eq!(
            p("mailto:john@example.com").unwrap(),
            Mailto {
                to: strs(&["john@example.com"]),
                ..Mailto::default()
            }
        );
        let m = p(
            "MailTo:a@x.org,b@y.org?To=c@z.org&CC=d@x.org,e@x.org&bcc=f@x.org\
                   &Subject=Issue%20%231%3A%20zaż%C3%B3łć&body=line%201%0D%0Aline%202",
        )
        .unwrap();
        assert_eq!(m.to, strs(&["a@x.org", "b@y.org", "c@z.org"]));
        assert_eq!(m.cc, strs(&["d@x.org", "e@x.org"]));
        assert_eq!(m.bcc, strs(&["f@x.org"]));
        assert_eq!(m.subject.as_deref(), Some("Issue #1: zażółć"));
        assert_eq!(m.body.as_deref(), Some("line 1\r\nline 2"));
        assert_eq!(m.addresses().count(), 6);
    }

    #[test]
    fn to_only_in_fields_and_encoded_addresses() {
        let m = p("mailto:?to=a@x.org").unwrap();
        assert_eq!(m.to, strs(&["a@x.org"]));
        let m = p("mailto:a%2Bb%40x.org").unwrap();
        assert_eq!(m.to, strs(&["a+b@x.org"]));
        // '+' is literal in mailto, not a space.
        assert_eq!(
            p("mailto:a+b@x.org?subject=a+b")
                .unwrap()
                .subject
                .as_deref(),
            Some("a+b")
        );
        // Empty optional fields and stray '&' are harmless.
        let m = p("mailto:a@x.org?cc=&subject=&&body=").unwrap();
        assert_eq!(m.cc, Vec::<String>::new());
        assert_eq!(m.subject.as_deref(), Some(""));
    }

    #[test]
    fn rejections() {
        use MailtoError::*;
        let cases: &[(&str, MailtoError)] = &[
            ("", NotMailto),
            ("mailto", NotMailto),
            ("http://x.org", NotMailto),
            ("mailtoa@x.org", NotMailto),
            ("mailto://a@x.org", HasAuthority),
            ("mailto:a@x.org#frag", HasFragment),
            (
                "mailto:a@x.org?subject=a\r\nBcc: e@vil.org",
                InvalidCharacter,
            ),
            ("mailto:a@x.org?subject=%0", InvalidEscape),
            ("mailto:a@x.org?subject=%zz", InvalidEscape),
            ("mailto:a@x.org?subject=%", InvalidEscape),
            ("mailto:a@x.org?subject=%+1", InvalidEscape),
            ("mailto:a@x.org?subject=%C3%28", InvalidUtf8),
            ("mailto:a@x.org?subject=%FF", InvalidUtf8),
            ("mailto:a@x.org?subject", MalformedField("subject".into())),
            ("mailto:a@x.org?from=b@x.org", UnknownField("from".into())),
            (
                "mailto:a@x.org?In-Reply-To=x",
                UnknownField("in-reply-to".into()),
            ),
            (
                "mailto:a@x.org?subject=a&subject=b",
                DuplicateField("subject"),
            ),
            ("mailto:a@x.org?body=a&BODY=b", DuplicateField("body")),
            ("mailto:a@x.org,", EmptyAddress),
            ("mailto:a@x.org,,b@x.org", EmptyAddress),
            ("mailto:?cc=a@x.org,", EmptyAddress),
            ("mailto:john", InvalidAddress("john".into())),
            (
                "mailto:a@x.org,%20b@x.org",
                InvalidAddress(" b@x.org".into()),
            ),
            (
                "mailto:a@x.org%0D%0ABcc:e@vil.org",
                InvalidAddress("a@x.org\r\nBcc:e@vil.org".into()),
            ),
            ("mailto:%3Ca@x.org%3E", InvalidAddress("<a@x.org>".into())),
            ("mailto:", NoRecipient),
            ("mailto:?cc=a@x.org", NoRecipient),
            ("mailto:?subject=hi", NoRecipient),
            (
                "mailto:a@x.org?subject=hi%0D%0ABcc:%20e@vil.org",
                ControlInSubject,
            ),
            ("mailto:a@x.org?subject=a%09b", ControlInSubject),
            ("mailto:a@x.org?subject=a%C2%85b", ControlInSubject),
            ("mailto:a@x.org?body=a%00b", ControlInBody),
            ("mailto:a@x.org?body=a%1Bb", ControlInBody),
        ];
        for (uri, expected) in cases {
            assert_eq!(p(uri).as_ref(), Err(expected), "{uri:?}");
        }
    }

    #[test]
    fn limits() {
        let list = |n: usize| {
            (0..n)
                .map(|i| format!("u{i}@x.org"))
                .collect::<Vec<_>>()
                .join(",")
        };
        assert_eq!(p(&format!("mailto:{}", list(20))).unwrap().to.len(), 20);
        assert_eq!(
            p(&format!("mailto:{}", list(21))),
            Err(MailtoError::TooManyAddresses)
        );
        assert_eq!(
            p(&format!("mailto:{}?cc=a@x.org", list(20))),
            Err(MailtoError::TooManyAddresses)
        );
        assert_eq!(
            p(&format!("mailto:a@x.org?bcc={}", list(20))),
            Err(MailtoError::TooManyAddresses)
        );
        let subject = "ż".repeat(200);
        assert_eq!(
            p(&format!("mailto:a@x.org?subject={subject}"))
                .unwrap()
                .subject,
            Some(subject.clone())
        );
        assert_eq!(
            p(&format!("mailto:a@x.org?subject={subject}a")),
            Err(MailtoError::SubjectTooLong)
        );
        let body = "b".repeat(4000);
        assert!(p(&format!("mailto:a@x.org?body={body}")).is_ok());
        assert_eq!(
            p(&format!("mailto:a@x.org?body={body}b")),
            Err(MailtoError::BodyTooLong)
        );
    }

    #[test]
    fn messages_are_safe_to_echo() {
        let e = p("mailto:a@x.org%0D%0ABcc:e@vil.org").unwrap_err();
        let msg = e.to_string();
        assert!(!msg.chars().any(char::is_control), "{msg:?}");
        assert_eq!(
            msg,
            "invalid mailto URI: invalid e-mail address 'a@x.org\\r\\nBcc:e@vil.org'"
        );
        let e = p("mailto:a@x.org?X-Evil%0A=1").unwrap_err();
        assert!(!e.to_string().chars().any(char::is_control));
        assert!(e.to_string().contains("x-evil\\n"));
        let e = p(&format!("mailto:a@x.org?{}=1", "h".repeat(1000))).unwrap_err();
        assert!(e.to_string().len() < 200);
    }

    proptest! {
        #[test]
        fn never_panics(s in any::<String>()) {
            let _ = Mailto::parse(&s);
        }

        #[test]
        fn never_panics_near_grammar(s in "mailto:[a-z@.,%0-9A-F?&=]{0,30}") {
            let _ = Mailto::parse(&s);
        }

        /// Whatever is accepted is safe to put in headers and within the limits.
        #[test]
        fn accepted_is_safe(rest in "[a-c@.,%0-9ADF?&=]{0,30}", field in "(to|cc|subject|body)") {
            let uri = format!("mailto:a@x.org?{field}={rest}");
            if let Ok(m) = Mailto::parse(&uri) {
                prop_assert!(m.addresses().all(is_valid_email));
                prop_assert!(m.addresses().count() <= MAX_ADDRESSES);
                prop_assert!(!m.subject.unwrap_or_default().chars().any(char::is_control));
            }
            if let Err(e) = Mailto::parse(&uri) {
                prop_assert!(!e.to_string().chars().any(char::is_control));
            }
        }
    }
}
