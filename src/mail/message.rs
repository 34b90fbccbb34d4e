//! The outbox's unit of work and its conversion to MIME.
//!
//! [`OutgoingMail`] (defined with the outbox records, `store::outbox`) holds only strings
//! and numbers so it can be stored durably and sent later, possibly several times after
//! transient failures. Conversion to a
//! `lettre::Message` is deterministic apart from MIME boundaries: the caller chooses the
//! Message-ID and the date, so a retried message is the same message to its recipients.
//!
//! Every header goes through lettre: addresses are parsed into `Mailbox`es, text is
//! RFC 2047-encoded and folded by lettre, and the few values we format ourselves (ids,
//! URLs) are validated first. Anything containing CR or LF is refused, so no value taken
//! from users can start a header of its own.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lettre::Message;
use lettre::message::header::{Header, HeaderName, HeaderValue, InReplyTo, MessageId, References};
use lettre::message::{Mailbox, MultiPart, SinglePart};

pub use crate::store::outbox::OutgoingMail;

/// Why an [`OutgoingMail`] could not become a MIME message. None of these get better by
/// retrying: the outbox should record them as permanent failures.
#[derive(Debug)]
pub enum MailError {
    /// An address did not parse as an RFC 5322 mailbox.
    InvalidAddress { field: &'static str, value: String },
    /// A header value was refused (line break, bad id or URL).
    InvalidHeader {
        header: &'static str,
        reason: &'static str,
    },
    /// Neither a text nor an HTML body.
    NoBody,
    /// No recipient in to, cc or bcc.
    NoRecipient,
    /// lettre refused to assemble the message.
    Build(lettre::error::Error),
    /// The mail configuration cannot work (reported when building a `Mailer`).
    Config(String),
}

impl fmt::Display for MailError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MailError::InvalidAddress { field, value } => {
                write!(f, "invalid address in {field}: {value:?}")
            }
            MailError::InvalidHeader { header, reason } => {
                write!(f, "invalid {header} header: {reason}")
            }
            MailError::NoBody => f.write_str("message has neither a text nor an HTML body"),
            MailError::NoRecipient => f.write_str("message has no recipient"),
            MailError::Build(e) => write!(f, "cannot build message: {e}"),
            MailError::Config(msg) => write!(f, "mail configuration: {msg}"),
        }
    }
}

impl std::error::Error for MailError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MailError::Build(e) => Some(e),
            _ => None,
        }
    }
}

/// Declares a header whose value we have already validated; lettre still encodes and
/// folds it, so it is never written raw.
macro_rules! validated_header {
    ($ty:ident, $name:literal) => {
        #[derive(Clone, Debug)]
        struct $ty(String);

        impl Header for $ty {
            fn name() -> HeaderName {
                HeaderName::new_from_ascii_str($name)
            }

            fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
                Ok(Self(s.to_owned()))
            }

            fn display(&self) -> HeaderValue {
                HeaderValue::new(Self::name(), self.0.clone())
            }
        }
    };
}

validated_header!(ListId, "List-Id");
validated_header!(ListUnsubscribe, "List-Unsubscribe");
validated_header!(ListUnsubscribePost, "List-Unsubscribe-Post");

fn reject_line_breaks(header: &'static str, value: &str) -> Result<(), MailError> {
    if value.contains(['\r', '\n']) {
        return Err(MailError::InvalidHeader {
            header,
            reason: "contains a line break",
        });
    }
    Ok(())
}

/// Checks an id that we wrap in angle brackets (msg-id, list-id): printable ASCII only, no
/// spaces or brackets, so the bracketed form is one token that needs no encoding.
fn bracketed_id(header: &'static str, id: &str, need_at: bool) -> Result<String, MailError> {
    reject_line_breaks(header, id)?;
    let bad = |reason| Err(MailError::InvalidHeader { header, reason });
    if id.is_empty() {
        return bad("empty id");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_graphic() && !b"<>\"\\()[],;:".contains(&b))
    {
        return bad("id must be printable ASCII without spaces, brackets or quotes");
    }
    if need_at && (id.matches('@').count() != 1 || id.starts_with('@') || id.ends_with('@')) {
        return bad("message id must look like left@right");
    }
    if !need_at && id.contains('@') {
        return bad("list id must not contain @");
    }
    Ok(format!("<{id}>"))
}

fn unsubscribe_url(url: &str) -> Result<String, MailError> {
    const H: &str = "List-Unsubscribe";
    reject_line_breaks(H, url)?;
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return Err(MailError::InvalidHeader {
            header: H,
            reason: "one-click unsubscribe needs an http(s) URL",
        });
    }
    if !url
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
    {
        return Err(MailError::InvalidHeader {
            header: H,
            reason: "URL must be printable ASCII without spaces or angle brackets",
        });
    }
    Ok(format!("<{url}>"))
}

fn mailbox(field: &'static str, value: &str) -> Result<Mailbox, MailError> {
    // lettre's parser requires the whole input to be one mailbox; the explicit line-break
    // check keeps that guarantee from depending on its whitespace rules.
    if value.contains(['\r', '\n']) {
        return Err(MailError::InvalidAddress {
            field,
            value: value.to_owned(),
        });
    }
    let mut m: Mailbox = value.parse().map_err(|_| MailError::InvalidAddress {
        field,
        value: value.to_owned(),
    })?;
    m.name = m.name.map(|n| header_text(&n));
    Ok(m)
}

/// Whether a character may change how the text around it is shown: bidirectional
/// embeddings, overrides and isolates (U+202E shows `gpj.exe` as `exe.jpg`) and the marks.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Text that becomes a header (subjects, display names), made inert: bidi controls are
/// dropped, line and paragraph separators (U+2028, U+2029) and other control characters
/// become spaces, and `=?` gets a U+200B ZERO WIDTH SPACE between its two characters, so
/// nothing the user typed is ever read as an RFC 2047 encoded word: the word is encoded by
/// lettre instead and shows as typed. CR and LF are refused before this is called.
pub fn header_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_bidi_control(c) {
            continue;
        }
        if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
            out.push(' ');
            continue;
        }
        if c == '?' && out.ends_with('=') {
            out.push('\u{200B}');
        }
        out.push(c);
    }
    out
}

fn unix_to_system_time(secs: i64) -> SystemTime {
    let magnitude = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

impl OutgoingMail {
    /// Builds the MIME message: `multipart/alternative` (text first, then HTML) when both
    /// bodies are present, a single part otherwise.
    pub fn to_message(&self) -> Result<Message, MailError> {
        let mut builder = Message::builder()
            .from(mailbox("from", &self.from)?)
            .date(unix_to_system_time(self.date));
        for addr in &self.to {
            builder = builder.to(mailbox("to", addr)?);
        }
        for addr in &self.cc {
            builder = builder.cc(mailbox("cc", addr)?);
        }
        for addr in &self.bcc {
            builder = builder.bcc(mailbox("bcc", addr)?);
        }
        if self.to.is_empty()
            && self.cc.is_empty()
            && self.bcc.is_empty()
            && self.envelope.is_empty()
        {
            return Err(MailError::NoRecipient);
        }

        if !self.envelope.is_empty() {
            let from = mailbox("from", &self.from)?.email;
            let to = self
                .envelope
                .iter()
                .map(|a| mailbox("envelope", a).map(|m| m.email))
                .collect::<Result<Vec<_>, _>>()?;
            let envelope =
                lettre::address::Envelope::new(Some(from), to).map_err(MailError::Build)?;
            builder = builder.envelope(envelope);
        }

        reject_line_breaks("Subject", &self.subject)?;
        builder = builder
            .subject(header_text(&self.subject))
            .header(MessageId::from(bracketed_id(
                "Message-ID",
                &self.message_id,
                true,
            )?));
        if let Some(parent) = &self.in_reply_to {
            builder = builder.header(InReplyTo::from(bracketed_id("In-Reply-To", parent, true)?));
        }
        if !self.references.is_empty() {
            let ids = self
                .references
                .iter()
                .map(|id| bracketed_id("References", id, true))
                .collect::<Result<Vec<_>, _>>()?;
            builder = builder.header(References::from(ids.join(" ")));
        }
        if let Some(list_id) = &self.list_id {
            builder = builder.header(ListId(bracketed_id("List-Id", list_id, false)?));
        }
        if let Some(url) = &self.list_unsubscribe {
            builder = builder
                .header(ListUnsubscribe(unsubscribe_url(url)?))
                .header(ListUnsubscribePost("List-Unsubscribe=One-Click".into()));
        }

        let built = match (&self.text, &self.html) {
            (Some(text), Some(html)) => builder.multipart(MultiPart::alternative_plain_html(
                text.clone(),
                html.clone(),
            )),
            (Some(text), None) => builder.singlepart(SinglePart::plain(text.clone())),
            (None, Some(html)) => builder.singlepart(SinglePart::html(html.clone())),
            (None, None) => return Err(MailError::NoBody),
        };
        built.map_err(MailError::Build)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> OutgoingMail {
        OutgoingMail {
            from: "Tracker <tracker@example.org>".into(),
            to: vec!["Zoë Ångström <zoe@example.org>".into()],
            cc: vec!["cc@example.org".into()],
            bcc: vec!["hidden@example.org".into()],
            subject: "[Website] Änderungen: Bug #42 «crash»".into(),
            text: Some("Hello Zoë,\nissue #42 changed.\n".into()),
            html: Some("<p>Hello Zoë,</p><p>issue #42 changed.</p>".into()),
            message_id: "digest.7.1700000000@webissued.localhost".into(),
            in_reply_to: Some("issue.42@webissued.localhost".into()),
            references: vec![
                "issue.42@webissued.localhost".into(),
                "digest.7.1699990000@webissued.localhost".into(),
            ],
            list_id: Some("website.webissued.localhost".into()),
            list_unsubscribe: Some("https://tracker.example.org/unsubscribe?t=abc123".into()),
            date: 1_700_000_000,
            envelope: vec![],
        }
    }

    fn formatted(mail: &OutgoingMail) -> String {
        String::from_utf8(mail.to_message().unwrap().formatted()).unwrap()
    }

    /// The header block only (everything before the first empty line), unfolded.
    fn headers(raw: &str) -> String {
        let head = raw.split("\r\n\r\n").next().unwrap();
        head.replace("\r\n ", " ").replace("\r\n\t", " ")
    }

    fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
        head.split("\r\n").find_map(|line| {
            let (n, v) = line.split_once(": ")?;
            n.eq_ignore_ascii_case(name).then_some(v)
        })
    }

    #[test]
    fn non_ascii_subject_and_names_are_encoded() {
        let raw = formatted(&sample());
        assert!(
            raw.is_ascii(),
            "headers and bodies must be 7-bit on the wire"
        );
        let head = headers(&raw);
        let subject = header(&head, "Subject").unwrap();
        assert!(
            subject.contains("=?utf-8?"),
            "subject not RFC 2047 encoded: {subject}"
        );
        let to = header(&head, "To").unwrap();
        assert!(
            to.contains("=?utf-8?") && to.contains("<zoe@example.org>"),
            "{to}"
        );
        assert_eq!(header(&head, "Cc"), Some("cc@example.org"));
        assert_eq!(header(&head, "Bcc"), None, "Bcc must not be in the headers");
        assert_eq!(
            header(&head, "Date"),
            Some("Tue, 14 Nov 2023 22:13:20 +0000")
        );
    }

    #[test]
    fn threading_and_list_headers() {
        let raw = formatted(&sample());
        let head = headers(&raw);
        assert_eq!(
            header(&head, "Message-ID"),
            Some("<digest.7.1700000000@webissued.localhost>")
        );
        assert_eq!(
            header(&head, "In-Reply-To"),
            Some("<issue.42@webissued.localhost>")
        );
        assert_eq!(
            header(&head, "References"),
            Some("<issue.42@webissued.localhost> <digest.7.1699990000@webissued.localhost>")
        );
        assert_eq!(
            header(&head, "List-Id"),
            Some("<website.webissued.localhost>")
        );
        assert_eq!(
            header(&head, "List-Unsubscribe"),
            Some("<https://tracker.example.org/unsubscribe?t=abc123>")
        );
        assert_eq!(
            header(&head, "List-Unsubscribe-Post"),
            Some("List-Unsubscribe=One-Click")
        );
    }

    #[test]
    fn optional_headers_are_absent_when_unset() {
        let mut mail = sample();
        mail.in_reply_to = None;
        mail.references.clear();
        mail.list_id = None;
        mail.list_unsubscribe = None;
        let head = headers(&formatted(&mail));
        for name in [
            "In-Reply-To",
            "References",
            "List-Id",
            "List-Unsubscribe",
            "List-Unsubscribe-Post",
        ] {
            assert_eq!(header(&head, name), None, "{name} should be absent");
        }
        assert!(header(&head, "Message-ID").is_some());
    }

    #[test]
    fn both_bodies_make_multipart_alternative_text_first() {
        let raw = formatted(&sample());
        let head = headers(&raw);
        let ctype = header(&head, "Content-Type").unwrap();
        assert!(ctype.starts_with("multipart/alternative;"), "{ctype}");
        let boundary = ctype
            .split("boundary=\"")
            .nth(1)
            .unwrap()
            .trim_end_matches('"');
        let parts: Vec<&str> = raw.split(&format!("--{boundary}")).collect();
        // preamble, text part, html part, closing "--"
        assert_eq!(parts.len(), 4, "{raw}");
        assert!(parts[1].contains("Content-Type: text/plain; charset=utf-8"));
        assert!(parts[2].contains("Content-Type: text/html; charset=utf-8"));
        assert!(parts[3].starts_with("--"));
    }

    #[test]
    fn one_body_makes_a_single_part() {
        let mut mail = sample();
        mail.html = None;
        let head = headers(&formatted(&mail));
        assert_eq!(
            header(&head, "Content-Type"),
            Some("text/plain; charset=utf-8")
        );

        mail.html = Some("<p>only html</p>".into());
        mail.text = None;
        let raw = formatted(&mail);
        assert_eq!(
            header(&headers(&raw), "Content-Type"),
            Some("text/html; charset=utf-8")
        );
        assert!(raw.contains("<p>only html</p>"));

        mail.html = None;
        assert!(matches!(mail.to_message(), Err(MailError::NoBody)));
    }

    #[test]
    fn header_injection_is_rejected() {
        let mut mail = sample();
        mail.subject = "Hello\r\nBcc: victim@example.net".into();
        assert!(matches!(
            mail.to_message(),
            Err(MailError::InvalidHeader {
                header: "Subject",
                ..
            })
        ));

        let mut mail = sample();
        mail.to = vec!["a@example.org\nBcc: victim@example.net".into()];
        assert!(matches!(
            mail.to_message(),
            Err(MailError::InvalidAddress { field: "to", .. })
        ));

        let mut mail = sample();
        mail.from = "Evil\r\nX-Injected: 1 <a@example.org>".into();
        assert!(matches!(
            mail.to_message(),
            Err(MailError::InvalidAddress { field: "from", .. })
        ));

        let mut mail = sample();
        mail.list_unsubscribe = Some("https://x.example/u\r\nX-Injected: 1".into());
        assert!(matches!(
            mail.to_message(),
            Err(MailError::InvalidHeader {
                header: "List-Unsubscribe",
                ..
            })
        ));

        let mut mail = sample();
        mail.references = vec!["a@b\nX-Injected: 1".into()];
        assert!(matches!(
            mail.to_message(),
            Err(MailError::InvalidHeader {
                header: "References",
                ..
            })
        ));

        let mut mail = sample();
        mail.message_id = "x@y>\r\nX-Injected: <1".into();
        assert!(mail.to_message().is_err());
    }

    #[test]
    fn malformed_values_are_rejected() {
        type Case = (fn(&mut OutgoingMail), &'static str);
        let cases: Vec<Case> = vec![
            (|m| m.to = vec!["not an address".into()], "to"),
            (|m| m.cc = vec!["a@example.org, b@example.org".into()], "cc"),
            (|m| m.bcc = vec!["<>".into()], "bcc"),
            (|m| m.message_id = "no-at-sign".into(), "Message-ID"),
            (|m| m.message_id = "<x@y>".into(), "Message-ID"),
            (|m| m.in_reply_to = Some("a b@c".into()), "In-Reply-To"),
            (|m| m.list_id = Some("with space".into()), "List-Id"),
            (
                |m| m.list_unsubscribe = Some("javascript:alert(1)".into()),
                "List-Unsubscribe",
            ),
            (
                |m| m.list_unsubscribe = Some("https://x.example/a b".into()),
                "List-Unsubscribe",
            ),
        ];
        for (mutate, what) in cases {
            let mut mail = sample();
            mutate(&mut mail);
            let err = mail.to_message().expect_err(what);
            assert!(err.to_string().contains(what), "{what}: {err}");
        }

        let mut mail = sample();
        mail.to.clear();
        mail.cc.clear();
        mail.bcc.clear();
        assert!(matches!(mail.to_message(), Err(MailError::NoRecipient)));
    }

    #[test]
    fn envelope_includes_cc_and_bcc() {
        let msg = sample().to_message().unwrap();
        let rcpt: Vec<String> = msg.envelope().to().iter().map(|a| a.to_string()).collect();
        assert_eq!(
            rcpt,
            ["zoe@example.org", "cc@example.org", "hidden@example.org"]
        );
        assert_eq!(
            msg.envelope().from().map(|a| a.to_string()).as_deref(),
            Some("tracker@example.org")
        );
    }

    #[test]
    fn an_explicit_envelope_replaces_the_header_recipients() {
        let mut mail = sample();
        mail.bcc.clear();
        mail.envelope = vec!["hidden@example.org".into()];
        let msg = mail.to_message().unwrap();
        let rcpt: Vec<String> = msg.envelope().to().iter().map(|a| a.to_string()).collect();
        assert_eq!(rcpt, ["hidden@example.org"]);
        let head = headers(&String::from_utf8(msg.formatted()).unwrap());
        assert_eq!(header(&head, "Cc"), Some("cc@example.org"));
        assert_eq!(header(&head, "Bcc"), None);
        // A copy for a Bcc recipient alone (no confirmed To or Cc) has no destination header.
        mail.to.clear();
        mail.cc.clear();
        let msg = mail.to_message().unwrap();
        assert_eq!(msg.envelope().to().len(), 1);
        let head = headers(&String::from_utf8(msg.formatted()).unwrap());
        assert_eq!(header(&head, "To"), None);
    }

    #[test]
    fn header_text_defuses_encoded_words_bidi_and_separators() {
        assert_eq!(
            header_text("a =?utf-8?b?SGk=?= b"),
            "a =\u{200B}?utf-8?b?SGk=\u{200B}?= b"
        );
        assert_eq!(header_text("x\u{202E}gpj.exe\u{2066}"), "xgpj.exe");
        assert_eq!(header_text("a\u{2028}b\u{2029}c\u{0007}d"), "a b c d");
        let mut mail = sample();
        mail.subject = "=?utf-8?b?SGFja2Vk?=".into();
        mail.to = vec!["\"\u{202E}evil\" <zoe@example.org>".into()];
        let head = headers(&formatted(&mail));
        let subject = header(&head, "Subject").unwrap();
        assert!(
            subject.starts_with("=?utf-8?b?") && !subject.contains("SGFja2Vk"),
            "the word is encoded by us, not passed through: {subject}"
        );
        assert!(
            !head.contains("4oCu"),
            "U+202E (base64 4oCu) in a display name"
        );
    }

    #[test]
    fn stored_form_round_trips() {
        let mail = sample();
        let bytes = postcard::to_allocvec(&mail).unwrap();
        let back: OutgoingMail = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, mail);
        // The envelope is stored apart, so the layout is that of earlier versions.
        let mut copy = mail.clone();
        copy.envelope = vec!["one@example.org".into()];
        assert_eq!(postcard::to_allocvec(&copy).unwrap(), bytes);
    }
}
