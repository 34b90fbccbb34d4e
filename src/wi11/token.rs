//! The 1.1 command line: tokens, the check order of the reference tokenizer and its error
//! codes (protocol-spec/webissues-1.1.md, "Command line").
//!
//! Pure: no store, no sockets. [`tokenize`] turns the `command` form field (and the
//! uploaded `file` part) into a command name and typed arguments, or the one error the
//! reference answers for that input.

use super::reply::Code11;
use bytes::Bytes;

/// One argument of a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Int(i64),
    Str(String),
    /// The uploaded `file` part; always the last argument.
    File(Bytes),
}

/// A tokenized command: its keywords joined by single spaces, and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    pub name: String,
    pub args: Vec<Arg>,
}

/// Checks in the reference's order: missing or empty field (400), not UTF-8 or a control
/// character (319), token syntax (400), an empty upload (403). Which name and signature the
/// tokens must have is the caller's check ([`super::command::parse`]).
pub fn tokenize(command: Option<&[u8]>, file: Option<&Bytes>) -> Result<Tokens, Code11> {
    let raw = match command {
        Some(c) if !c.is_empty() => c,
        _ => return Err(Code11::SyntaxError),
    };
    let line = std::str::from_utf8(raw).map_err(|_| Code11::InvalidString)?;
    if line.chars().any(|c| c.is_ascii_control()) {
        return Err(Code11::InvalidString);
    }
    let mut name = String::new();
    let mut args = Vec::new();
    let mut rest = line;
    loop {
        let (token_len, arg) = token(rest)?;
        match arg {
            Token::Keyword(k) => {
                if !name.is_empty() {
                    name.push(' ');
                }
                name.push_str(k);
            }
            Token::Arg(a) => {
                // The first token must be a keyword; later keywords join the name (a quirk
                // of the reference kept: `LIST 5 USERS` is LIST USERS with one argument).
                if name.is_empty() {
                    return Err(Code11::SyntaxError);
                }
                args.push(a);
            }
        }
        rest = &rest[token_len..];
        if rest.is_empty() {
            break;
        }
        // Exactly one space between tokens, none at the end.
        rest = rest.strip_prefix(' ').ok_or(Code11::SyntaxError)?;
        if rest.is_empty() {
            return Err(Code11::SyntaxError);
        }
    }
    if let Some(f) = file {
        if f.is_empty() {
            return Err(Code11::UploadError);
        }
        args.push(Arg::File(f.clone()));
    }
    Ok(Tokens { name, args })
}

enum Token<'a> {
    Keyword(&'a str),
    Arg(Arg),
}

/// The token at the start of `s` and its length in bytes.
fn token(s: &str) -> Result<(usize, Token<'_>), Code11> {
    let b = s.as_bytes();
    match b.first() {
        Some(b'A'..=b'Z') => {
            let n = b.iter().take_while(|c| c.is_ascii_uppercase()).count();
            Ok((n, Token::Keyword(&s[..n])))
        }
        Some(b'-' | b'0'..=b'9') => {
            let sign = usize::from(b[0] == b'-');
            let digits = b[sign..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 {
                return Err(Code11::SyntaxError);
            }
            let n = sign + digits;
            // Out of the 64-bit range is a syntax error (the reference's integer cast
            // would change it); leading zeros are accepted, as there.
            let v: i64 = s[..n].parse().map_err(|_| Code11::SyntaxError)?;
            Ok((n, Token::Arg(Arg::Int(v))))
        }
        Some(b'\'') => {
            let mut out = String::new();
            let mut chars = s.char_indices().skip(1);
            while let Some((i, c)) = chars.next() {
                match c {
                    '\'' => return Ok((i + 1, Token::Arg(Arg::Str(out)))),
                    '\\' => match chars.next() {
                        Some((_, '\'')) => out.push('\''),
                        Some((_, '\\')) => out.push('\\'),
                        Some((_, 'n')) => out.push('\n'),
                        Some((_, 't')) => out.push('\t'),
                        _ => return Err(Code11::SyntaxError),
                    },
                    c => out.push(c),
                }
            }
            Err(Code11::SyntaxError)
        }
        _ => Err(Code11::SyntaxError),
    }
}

/// Appends a string in its 1.1 wire form: quoted, with `'` `\` LF and TAB escaped.
pub fn write_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'\'');
    for &c in s.as_bytes() {
        match c {
            b'\'' => out.extend_from_slice(b"\\'"),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\t' => out.extend_from_slice(b"\\t"),
            c => out.push(c),
        }
    }
    out.push(b'\'');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(s: &str) -> Result<Tokens, Code11> {
        tokenize(Some(s.as_bytes()), None)
    }

    #[test]
    fn the_check_order_of_the_reference() {
        assert_eq!(tokenize(None, None), Err(Code11::SyntaxError));
        assert_eq!(tok(""), Err(Code11::SyntaxError));
        assert_eq!(
            tokenize(Some(b"HELLO '\xff'"), None),
            Err(Code11::InvalidString)
        );
        // A control character wins over a syntax error later in the line.
        assert_eq!(tok("ADD  ISSUE 1 'a\tb'"), Err(Code11::InvalidString));
        for bad in [
            "LIST  USERS",
            "LIST USERS ",
            " HELLO",
            "list users",
            "HELLO 'open",
            "ADD ISSUE 1 'a\\qb'",
            "LIST ISSUES 99999999999999999999 0",
            "5 HELLO",
            "LIST ISSUES - 0",
        ] {
            assert_eq!(tok(bad), Err(Code11::SyntaxError), "{bad}");
        }
        let empty = Bytes::new();
        assert_eq!(
            tokenize(Some(b"ADD ATTACHMENT 1 'a' ''"), Some(&empty)),
            Err(Code11::UploadError)
        );
    }

    #[test]
    fn tokens_and_the_keyword_quirk() {
        let t = tok("LIST 5 USERS").unwrap();
        assert_eq!(t.name, "LIST USERS");
        assert_eq!(t.args, [Arg::Int(5)]);
        let t = tok("ADD COMMENT -3 'it\\'s\\n\\ta \\\\ b' 007").unwrap();
        assert_eq!(t.name, "ADD COMMENT");
        assert_eq!(
            t.args,
            [Arg::Int(-3), Arg::Str("it's\n\ta \\ b".into()), Arg::Int(7)]
        );
        let f = Bytes::from_static(b"data");
        let t = tokenize(Some(b"ADD ATTACHMENT 1 'a' ''"), Some(&f)).unwrap();
        assert_eq!(t.args.last(), Some(&Arg::File(f)));
    }

    proptest::proptest! {
        /// Any bytes get tokens or one of the tokenizer's codes, never a panic; and any
        /// string survives encoding and tokenizing.
        #[test]
        fn arbitrary_input_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let r = tokenize(Some(&bytes), None);
            if let Err(c) = r {
                proptest::prop_assert!(matches!(c, Code11::SyntaxError | Code11::InvalidString));
            }
        }

        #[test]
        fn any_string_round_trips(s in "\\PC*") {
            let mut out = b"X ".to_vec();
            write_string(&mut out, &s);
            if s.chars().any(|c| c.is_ascii_control() && c != '\n' && c != '\t') {
                return Ok(());
            }
            let t = tokenize(Some(&out), None).unwrap();
            proptest::prop_assert_eq!(t.args, vec![Arg::Str(s)]);
        }
    }

    #[test]
    fn strings_round_trip() {
        for s in [
            "",
            "plain",
            "it's",
            "back\\slash",
            "two\nlines\tand tab",
            "Żółw ✓",
        ] {
            let mut out = b"X ".to_vec();
            write_string(&mut out, s);
            let t = tokenize(Some(&out), None).unwrap();
            assert_eq!(t.args, [Arg::Str(s.into())]);
        }
    }
}
