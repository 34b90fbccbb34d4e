//! The attribute-definition grammar (reference §6.1).
//!
//! Attribute definitions (`ENUM items={"a","b"} required=1`) and the `notify-frequency`
//! preference (`WEEKLY day=1 time="07:00"`) share this small grammar, so it is parsed here
//! once, into an untyped [`Definition`]; the typed meaning lives with each user
//! (`crate::attributes`, `crate::schedule`).
//!
//! The parsers are named after the grammar rules and quote them, so the code can be checked
//! against the reference line by line.

use std::fmt;

use nom::{
    IResult, Parser,
    branch::alt,
    bytes::complete::{tag, take_while, take_while1},
    character::complete::{char, digit1, none_of, satisfy},
    combinator::{all_consuming, map, map_res, opt, recognize, value as constant},
    multi::{many0, separated_list0},
    sequence::{delimited, preceded, separated_pair},
};

/// An untyped definition: the type keyword and the metadata in the order written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub kind: String,
    pub meta: Vec<(String, MetaValue)>,
}

/// A metadata value: one of the three kinds the grammar knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaValue {
    Int(i64),
    Str(String),
    Array(Vec<String>),
}

impl Definition {
    /// The value of `key`, if present (keys are unique after [`parse_definition`]).
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.meta.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// Why a definition string was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefinitionError {
    /// The text does not follow the grammar; `position` is the character offset where
    /// parsing stopped, to point the user at the mistake.
    Syntax { position: usize },
    /// A key appears twice; which one wins would be a guess, so neither does (1.0 behaviour).
    DuplicateKey(String),
}

impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DefinitionError::Syntax { position } => {
                write!(
                    f,
                    "invalid definition: syntax error at character {position}"
                )
            }
            // Keys are [a-z-]+ by the grammar, so echoing one is safe.
            DefinitionError::DuplicateKey(k) => {
                write!(f, "invalid definition: duplicate key '{k}'")
            }
        }
    }
}

impl std::error::Error for DefinitionError {}

/// Parses a whole definition string, rejecting trailing text and duplicate keys.
pub fn parse_definition(s: &str) -> Result<Definition, DefinitionError> {
    let def = match all_consuming(definition).parse(s) {
        Ok((_, def)) => def,
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => {
            // nom backtracks out of a bad `key=value` to the space before it; the walk
            // finds the character actually at fault inside it.
            let at = fault(s).unwrap_or(s.len() - e.input.len());
            return Err(DefinitionError::Syntax {
                position: s[..at].chars().count(),
            });
        }
        // Only streaming parsers return Incomplete; ours are all `complete`.
        Err(nom::Err::Incomplete(_)) => {
            return Err(DefinitionError::Syntax {
                position: s.chars().count(),
            });
        }
    };
    for (i, (k, _)) in def.meta.iter().enumerate() {
        if def.meta[..i].iter().any(|(other, _)| other == k) {
            return Err(DefinitionError::DuplicateKey(k.clone()));
        }
    }
    Ok(def)
}

/// The byte offset of the first character that breaks the grammar, found by walking it
/// by hand (only after the parser failed); None when the walk finds no fault.
fn fault(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut at = b.iter().take_while(|c| c.is_ascii_uppercase()).count();
    if at == 0 {
        return Some(0);
    }
    while at < b.len() {
        if b[at] != b' ' {
            return Some(at);
        }
        let key_start = at + 1;
        if key_start == b.len() {
            return Some(at);
        }
        if let Ok((rest, _)) = key(&s[key_start..]) {
            at = s.len() - rest.len();
        } else {
            return Some(key_start);
        }
        if b.get(at) != Some(&b'=') {
            return Some(at);
        }
        match value_fault(s, at + 1) {
            Ok(end) => at = end,
            Err(fault) => return Some(fault),
        }
    }
    None
}

/// Walks one `value` starting at byte `at`: Ok(its end) when it is well-formed, Err(the
/// offset of the fault) otherwise.
fn value_fault(s: &str, at: usize) -> Result<usize, usize> {
    let b = s.as_bytes();
    let string_end = |mut i: usize| -> Result<usize, usize> {
        let open = i;
        if b.get(i) != Some(&b'"') {
            return Err(i);
        }
        i += 1;
        loop {
            match b.get(i) {
                None => return Err(open),
                Some(b'"') => return Ok(i + 1),
                Some(b'\\') => match b.get(i + 1) {
                    Some(b'"' | b'\\') => i += 2,
                    _ => return Err(i),
                },
                Some(_) => i += 1,
            }
        }
    };
    match b.get(at) {
        Some(b'-' | b'0'..=b'9') => match integer(&s[at..]) {
            Ok((rest, _)) => Ok(s.len() - rest.len()),
            Err(_) => Err(at),
        },
        Some(b'"') => string_end(at),
        Some(b'{') => {
            let mut i = at + 1;
            if b.get(i) == Some(&b'}') {
                return Ok(i + 1);
            }
            loop {
                i = string_end(i)?;
                match b.get(i) {
                    Some(b',') => i += 1,
                    Some(b'}') => return Ok(i + 1),
                    _ => return Err(i),
                }
            }
        }
        _ => Err(at),
    }
}

/// `definition := TYPE ( ' ' key '=' value )*`
pub fn definition(input: &str) -> IResult<&str, Definition> {
    map(
        (
            type_name,
            many0(preceded(char(' '), separated_pair(key, char('='), value))),
        ),
        |(kind, meta)| Definition {
            kind: kind.to_owned(),
            meta: meta.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        },
    )
    .parse(input)
}

/// `TYPE := [A-Z]+`
pub fn type_name(input: &str) -> IResult<&str, &str> {
    take_while1(|c: char| c.is_ascii_uppercase()).parse(input)
}

/// `key := starts with a lowercase letter; lowercase letters and '-' only`
pub fn key(input: &str) -> IResult<&str, &str> {
    recognize((
        satisfy(|c| c.is_ascii_lowercase()),
        take_while(|c: char| c.is_ascii_lowercase() || c == '-'),
    ))
    .parse(input)
}

/// `value := integer | string | array`
pub fn value(input: &str) -> IResult<&str, MetaValue> {
    alt((
        map(integer, MetaValue::Int),
        map(string, MetaValue::Str),
        map(array, MetaValue::Array),
    ))
    .parse(input)
}

/// `integer := -?[0-9]+`
///
/// A number that does not fit in an `i64` is a syntax error rather than a silent wrap.
pub fn integer(input: &str) -> IResult<&str, i64> {
    map_res(recognize((opt(char('-')), digit1)), str::parse::<i64>).parse(input)
}

/// `string := '"' chars '"'` — inside: `\"` and `\\` escapes (no others in 0.8)
pub fn string(input: &str) -> IResult<&str, String> {
    delimited(
        char('"'),
        map(
            many0(alt((
                preceded(
                    char('\\'),
                    alt((constant('"', char('"')), constant('\\', char('\\')))),
                ),
                none_of("\"\\"),
            ))),
            |chars| chars.into_iter().collect(),
        ),
        char('"'),
    )
    .parse(input)
}

/// `array := '{' [ string ( ',' string )* ] '}'` — no spaces inside
pub fn array(input: &str) -> IResult<&str, Vec<String>> {
    delimited(tag("{"), separated_list0(char(','), string), tag("}")).parse(input)
}

/// Writes `s` as a grammar `string`, escaping exactly what [`string`] unescapes.
fn write_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        if c == '"' || c == '\\' {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("\"")
}

impl fmt::Display for MetaValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetaValue::Int(n) => write!(f, "{n}"),
            MetaValue::Str(s) => write_string(f, s),
            MetaValue::Array(items) => {
                f.write_str("{")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write_string(f, item)?;
                }
                f.write_str("}")
            }
        }
    }
}

/// Re-encodes in the canonical form, so `parse_definition(&d.to_string()) == Ok(d)` for any
/// definition that came out of the parser.
impl fmt::Display for Definition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind)?;
        for (k, v) in &self.meta {
            write!(f, " {k}={v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(x: &str) -> MetaValue {
        MetaValue::Str(x.to_owned())
    }

    #[test]
    fn parses_reference_example() {
        let d =
            parse_definition(r#"ENUM items={"Low","Medium","High"} default="Medium" required=1"#)
                .unwrap();
        assert_eq!(d.kind, "ENUM");
        assert_eq!(
            d.meta,
            vec![
                (
                    "items".into(),
                    MetaValue::Array(vec!["Low".into(), "Medium".into(), "High".into()])
                ),
                ("default".into(), s("Medium")),
                ("required".into(), MetaValue::Int(1)),
            ]
        );
        assert_eq!(d.get("required"), Some(&MetaValue::Int(1)));
        assert_eq!(d.get("nope"), None);
    }

    #[test]
    fn bare_type_and_keys_with_hyphens() {
        assert_eq!(
            parse_definition("TEXT").unwrap(),
            Definition {
                kind: "TEXT".into(),
                meta: vec![]
            }
        );
        let d = parse_definition(r#"NUMERIC min-value="-1.5" decimal=2"#).unwrap();
        assert_eq!(d.get("min-value"), Some(&s("-1.5")));
        assert_eq!(d.get("decimal"), Some(&MetaValue::Int(2)));
    }

    #[test]
    fn integers() {
        assert_eq!(integer("-42 x"), Ok((" x", -42)));
        assert_eq!(integer("007"), Ok(("", 7)));
        assert!(integer("-").is_err());
        assert!(integer("99999999999999999999").is_err());
        assert_eq!(
            parse_definition("TEXT max-length=99999999999999999999"),
            Err(DefinitionError::Syntax { position: 16 })
        );
    }

    #[test]
    fn string_escapes() {
        assert_eq!(string(r#""a\"b\\c""#), Ok(("", r#"a"b\c"#.to_owned())));
        assert_eq!(string(r#""""#), Ok(("", String::new())));
        assert_eq!(string("\"zażółć ✓\""), Ok(("", "zażółć ✓".to_owned())));
        // Only \" and \\ are escapes in 0.8.
        assert!(string(r#""a\nb""#).is_err());
        assert!(string(r#""open"#).is_err());
    }

    #[test]
    fn arrays() {
        assert_eq!(array("{}"), Ok(("", vec![])));
        assert_eq!(array(r#"{"a"}"#), Ok(("", vec!["a".to_owned()])));
        assert_eq!(
            array(r#"{"a,b","c"}"#),
            Ok(("", vec!["a,b".to_owned(), "c".to_owned()]))
        );
        assert!(array(r#"{"a", "b"}"#).is_err(), "no spaces inside");
        assert!(array(r#"{"a",}"#).is_err());
        assert!(array(r#"{1}"#).is_err());
    }

    #[test]
    fn keys() {
        assert_eq!(key("max-length=1"), Ok(("=1", "max-length")));
        assert!(key("-x").is_err());
        assert!(key("Max").is_err());
        assert_eq!(key("a1"), Ok(("1", "a")));
    }

    #[test]
    fn syntax_errors_report_position() {
        let cases = [
            ("", 0),
            ("text", 0),
            ("TEXT ", 4),
            ("TEXT  max-length=1", 5),
            ("TEXT max-length", 15),
            ("TEXT max-length=", 16),
            ("TEXT max-length=1 ", 17),
            ("TEXT max-length=1x", 17),
            ("TEXT Default=\"x\"", 5),
            ("ÉNUM", 0),
            ("ENUM ä=1", 5),
            (r#"ENUM items={"a", "b"}"#, 16),
            (r#"ENUM items={"a",}"#, 16),
            (r#"ENUM items={"a"} default="x"#, 25),
            (r#"TEXT default="a\qb""#, 15),
            ("TEXT max-length=x", 16),
        ];
        for (input, position) in cases {
            assert_eq!(
                parse_definition(input),
                Err(DefinitionError::Syntax { position }),
                "{input:?}"
            );
        }
    }

    #[test]
    fn duplicate_keys_rejected() {
        let e = parse_definition("TEXT max-length=1 max-length=2").unwrap_err();
        assert_eq!(e, DefinitionError::DuplicateKey("max-length".into()));
        assert_eq!(
            e.to_string(),
            "invalid definition: duplicate key 'max-length'"
        );
    }

    #[test]
    fn display_is_canonical() {
        let text = r#"ENUM items={"a\"b","c\\d",""} default="" editable=0 x=-3"#;
        let d = parse_definition(text).unwrap();
        assert_eq!(d.to_string(), text);
    }

    fn arb_key() -> impl Strategy<Value = String> {
        "[a-z][a-z-]{0,8}"
    }

    fn arb_value() -> impl Strategy<Value = MetaValue> {
        prop_oneof![
            any::<i64>().prop_map(MetaValue::Int),
            any::<String>().prop_map(MetaValue::Str),
            proptest::collection::vec(any::<String>(), 0..4).prop_map(MetaValue::Array),
        ]
    }

    fn arb_definition() -> impl Strategy<Value = Definition> {
        (
            "[A-Z]{1,10}",
            proptest::collection::btree_map(arb_key(), arb_value(), 0..6),
        )
            .prop_map(|(kind, meta)| Definition {
                kind,
                meta: meta.into_iter().collect(),
            })
    }

    proptest! {
        #[test]
        fn parse_never_panics(input in any::<String>()) {
            let _ = parse_definition(&input);
        }

        #[test]
        fn parse_never_panics_on_near_grammar(input in r#"[A-Z]{0,3}( [a-z-]{0,3}=?[-0-9"{},\\a ]{0,8}){0,3}"#) {
            let _ = parse_definition(&input);
        }

        #[test]
        fn encode_then_parse_round_trips(d in arb_definition()) {
            let text = d.to_string();
            prop_assert_eq!(parse_definition(&text), Ok(d));
        }

        #[test]
        fn parse_then_encode_is_stable(input in r#"[A-Z]{1,3}( [a-z]{1,3}=(-?[0-9]{1,3}|"[a\\"]{0,3}"|\{("[ab]{0,2}"(,"[ab]{0,2}"){0,2})?\})){0,3}"#) {
            if let Ok(d) = parse_definition(&input) {
                let again = parse_definition(&d.to_string());
                prop_assert_eq!(again, Ok(d));
            }
        }
    }
}
