//! Tokens of a command line: keywords, integers and quoted strings (protocol-spec/grammar.md).
//!
//! Parsers are named after the grammar rules; each quotes its rule. The input is a line that
//! has already been checked to be UTF-8 without control characters other than TAB.

use nom::{
    IResult, Parser,
    branch::alt,
    bytes::complete::{tag, take_while1},
    character::complete::{char, digit1},
    combinator::{opt, recognize},
    multi::many0,
    sequence::{delimited, preceded},
};

/// An argument of a command, or of a reply line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Int(i64),
    Str(String),
}

/// A tokenized command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens<'a> {
    pub keywords: Vec<&'a str>,
    pub args: Vec<Arg>,
}

/// Why a line does not tokenize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyntaxError {
    Empty,
    BadKeyword,
    UnbalancedQuote,
    BadEscape(char),
    BadArgument,
    KeywordAfterArgument,
    TrailingSpace,
    DoubleSpace,
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyntaxError::Empty => write!(f, "empty command"),
            SyntaxError::BadKeyword => write!(f, "a command starts with upper-case keywords"),
            SyntaxError::UnbalancedQuote => write!(f, "unbalanced quote"),
            SyntaxError::BadEscape(c) if c.is_ascii_graphic() => {
                write!(f, "unknown escape \\{c}")
            }
            SyntaxError::BadEscape(_) => write!(f, "unknown escape"),
            SyntaxError::BadArgument => write!(f, "expected an integer or a 'quoted string'"),
            SyntaxError::KeywordAfterArgument => write!(f, "keyword after an argument"),
            SyntaxError::TrailingSpace => write!(f, "trailing space"),
            SyntaxError::DoubleSpace => write!(f, "two spaces"),
        }
    }
}

/// `keyword = 1*("A"-"Z")`
pub fn keyword(input: &str) -> IResult<&str, &str> {
    take_while1(|c: char| c.is_ascii_uppercase()).parse(input)
}

/// `integer = ["-"] 1*DIGIT`; values beyond i64 saturate (commands reject them as out of range).
pub fn integer(input: &str) -> IResult<&str, i64> {
    recognize((opt(char('-')), digit1))
        .map(|s: &str| {
            s.parse::<i64>().unwrap_or(if s.starts_with('-') {
                i64::MIN
            } else {
                i64::MAX
            })
        })
        .parse(input)
}

/// `string = "'" *(schar / escape) "'"`, `escape = "\" ("'" / "\" / "n" / "t")`
pub fn string(input: &str) -> IResult<&str, Result<String, SyntaxError>> {
    delimited(tag("'"), string_body, tag("'")).parse(input)
}

/// The inside of a string: everything up to the unescaped closing quote, unescaped. Runs
/// between escapes are copied whole (a long comment is one copy, not a push per char).
fn string_body(input: &str) -> IResult<&str, Result<String, SyntaxError>> {
    let mut out = String::new();
    let mut rest = input;
    // No closing quote: reported as an unbalanced quote rather than a parse failure.
    let unbalanced = Ok(("'", Err(SyntaxError::UnbalancedQuote)));
    loop {
        let Some(i) = rest.bytes().position(|b| b == b'\'' || b == b'\\') else {
            return unbalanced;
        };
        out.push_str(&rest[..i]);
        if rest.as_bytes()[i] == b'\'' {
            return Ok((&rest[i..], Ok(out)));
        }
        let escaped = &rest[i + 1..];
        match escaped.chars().next() {
            Some('\'') => out.push('\''),
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => {
                // Skip to the closing quote so the caller can report the escape.
                let after = &escaped[other.len_utf8()..];
                return match after.find('\'') {
                    Some(k) => Ok((&after[k..], Err(SyntaxError::BadEscape(other)))),
                    None => unbalanced,
                };
            }
            None => return unbalanced,
        }
        // Every accepted escape is one ASCII byte.
        rest = &escaped[1..];
    }
}

/// `argument = integer / string`
pub fn argument(input: &str) -> IResult<&str, Result<Arg, SyntaxError>> {
    alt((
        integer.map(|i| Ok(Arg::Int(i))),
        string.map(|s| s.map(Arg::Str)),
    ))
    .parse(input)
}

/// `line = keyword *(SP keyword) *(SP argument)`
pub fn line(input: &str) -> Result<Tokens<'_>, SyntaxError> {
    line_at(input).map_err(|(e, _)| e)
}

/// [`line`], with the character offset (from 0) of the fault in errors, so that the reply
/// can point at it.
pub fn line_at(input: &str) -> Result<Tokens<'_>, (SyntaxError, usize)> {
    let at = |rest: &str| input[..input.len() - rest.len()].chars().count();
    if input.is_empty() {
        return Err((SyntaxError::Empty, 0));
    }
    let (rest, keywords) = (keyword, many0(preceded(char(' '), keyword)))
        .map(|(first, mut more)| {
            more.insert(0, first);
            more
        })
        .parse(input)
        .map_err(|_: nom::Err<nom::error::Error<&str>>| (SyntaxError::BadKeyword, 0))?;
    let mut args = Vec::new();
    let mut rest = rest;
    while !rest.is_empty() {
        let Some(after_space) = rest.strip_prefix(' ') else {
            // Right after the keywords: a keyword with a lower-case letter (`LIST Issues`).
            if args.is_empty() && rest.starts_with(|c: char| c.is_alphabetic()) {
                return Err((SyntaxError::BadKeyword, at(rest)));
            }
            return Err((SyntaxError::BadArgument, at(rest)));
        };
        if after_space.is_empty() {
            return Err((SyntaxError::TrailingSpace, at(rest)));
        }
        if after_space.starts_with(|c: char| c.is_ascii_uppercase()) {
            return Err((SyntaxError::KeywordAfterArgument, at(after_space)));
        }
        if after_space.starts_with(' ') {
            return Err((SyntaxError::DoubleSpace, at(after_space)));
        }
        if args.is_empty() && after_space.starts_with(|c: char| c.is_alphabetic()) {
            return Err((SyntaxError::BadKeyword, at(after_space)));
        }
        if after_space.starts_with('\'') && !after_space[1..].contains('\'') {
            return Err((SyntaxError::UnbalancedQuote, at(after_space)));
        }
        match argument(after_space) {
            Ok((r, Ok(arg))) => {
                args.push(arg);
                rest = r;
            }
            Ok((r, Err(e))) => {
                // An escape error leaves `r` at the closing quote; point at the backslash.
                let pos = match e {
                    SyntaxError::BadEscape(c) => {
                        let arg = &after_space[..after_space.len() - r.len()];
                        let bad = arg.rfind(&format!("\\{c}")).unwrap_or(0);
                        at(&after_space[bad..])
                    }
                    _ => at(after_space),
                };
                return Err((e, pos));
            }
            Err(_) => return Err((SyntaxError::BadArgument, at(after_space))),
        }
    }
    Ok(Tokens { keywords, args })
}

/// Writes a string argument with the escapes of the grammar: `'`, `\` and LF. TAB is sent
/// raw, as 0.8 clients expect.
pub fn write_string(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'\'');
    // Copies the runs between escaped characters in one go.
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'\'' => b"\\'",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escaped);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'\'');
}

/// Writes an integer argument without allocating.
pub fn write_int(out: &mut Vec<u8>, i: i64) {
    // By hand: `write!` through the formatting machinery was 6 % of a LIST ISSUES.
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = i.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[at..]);
}

/// Writes one argument.
pub fn write_arg(out: &mut Vec<u8>, arg: &Arg) {
    match arg {
        Arg::Int(i) => write_int(out, *i),
        Arg::Str(s) => write_string(out, s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(x: &str) -> Arg {
        Arg::Str(x.to_string())
    }

    #[test]
    fn keywords_and_arguments() {
        let t = line("ADD COMMENT 17 'Fixed in r42.\\nIt\\'s done \\\\ ok'").unwrap();
        assert_eq!(t.keywords, vec!["ADD", "COMMENT"]);
        assert_eq!(
            t.args,
            vec![Arg::Int(17), s("Fixed in r42.\nIt's done \\ ok")]
        );
    }

    #[test]
    fn integers_are_written_like_display() {
        for i in [0, 7, -7, 10, 99, 100, 4_294_967_296, i64::MAX, i64::MIN, -1] {
            let mut out = Vec::new();
            write_int(&mut out, i);
            assert_eq!(out, i.to_string().into_bytes());
        }
    }

    #[test]
    fn negative_and_empty() {
        let t = line("LIST ISSUES -1 ''").unwrap();
        assert_eq!(t.args, vec![Arg::Int(-1), s("")]);
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(line("HELLO 'abc"), Err(SyntaxError::UnbalancedQuote));
        assert_eq!(line("X 'a\\qb'"), Err(SyntaxError::BadEscape('q')));
        assert_eq!(line("X 1 Y"), Err(SyntaxError::KeywordAfterArgument));
        assert_eq!(line("X  1"), Err(SyntaxError::DoubleSpace));
        assert_eq!(line("X 1 "), Err(SyntaxError::TrailingSpace));
        assert_eq!(line("hello"), Err(SyntaxError::BadKeyword));
        assert_eq!(line(" HELLO"), Err(SyntaxError::BadKeyword));
        assert_eq!(line("X 'a''b'"), Err(SyntaxError::BadArgument));
        assert_eq!(line("X 1x"), Err(SyntaxError::BadArgument));
        assert_eq!(line(""), Err(SyntaxError::Empty));
        assert_eq!(line("X 'ab\\"), Err(SyntaxError::UnbalancedQuote));
    }

    #[test]
    fn syntax_errors_point_at_the_fault() {
        let cases = [
            ("HELLO ", SyntaxError::TrailingSpace, 5),
            ("X  1", SyntaxError::DoubleSpace, 2),
            ("X 1x", SyntaxError::BadArgument, 3),
            ("X 'ab", SyntaxError::UnbalancedQuote, 2),
            ("X 1 'a\\qb'", SyntaxError::BadEscape('q'), 6),
            ("X 1 Y", SyntaxError::KeywordAfterArgument, 4),
            ("LIST Issues", SyntaxError::BadKeyword, 6),
            ("hello", SyntaxError::BadKeyword, 0),
            ("LIST issues", SyntaxError::BadKeyword, 5),
            ("X 'zażółć' 1x", SyntaxError::BadArgument, 12),
        ];
        for (input, e, pos) in cases {
            assert_eq!(line_at(input).map(|_| ()), Err((e, pos)), "{input:?}");
        }
    }

    #[test]
    fn tab_escape_is_accepted() {
        assert_eq!(line("X 'a\\tb'").unwrap().args, vec![s("a\tb")]);
    }

    #[test]
    fn huge_integer_saturates() {
        let t = line("X 99999999999999999999999").unwrap();
        assert_eq!(t.args, vec![Arg::Int(i64::MAX)]);
    }

    fn encode(args: &[Arg]) -> String {
        let mut out = b"CMD".to_vec();
        for a in args {
            out.push(b' ');
            write_arg(&mut out, a);
        }
        String::from_utf8(out).unwrap()
    }

    proptest! {
        #[test]
        fn no_input_panics(input in "\\PC*") {
            let _ = line(&input);
        }

        #[test]
        fn quoted_soup_does_not_panic(input in "[A-Z ]{0,5}['\\\\a-z0-9 -]{0,30}") {
            let _ = line(&input);
        }

        #[test]
        fn parse_of_encode_is_identity(args in proptest::collection::vec(
            prop_oneof![
                any::<i64>().prop_map(Arg::Int),
                "[^\\x00-\\x08\\x0b-\\x1f\\x7f]{0,20}".prop_map(Arg::Str),
            ], 0..6)) {
            let text = encode(&args);
            let t = line(&text).unwrap();
            prop_assert_eq!(t.keywords, vec!["CMD"]);
            prop_assert_eq!(t.args, args);
        }
    }
}
