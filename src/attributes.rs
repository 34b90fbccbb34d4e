//! Typed attribute definitions (reference §6.2) and attribute value validation (§6.3).
//!
//! The definition string itself is stored and echoed verbatim by the server; this module
//! only decides whether it is acceptable and what it means, and turns a value sent by a
//! client into the normalised text that is stored, listed and written into the history.

use std::cmp::Ordering;
use std::fmt;

use chrono::NaiveDate;

use crate::protocol::definition::{DefinitionError, MetaValue, parse_definition};

/// The longest attribute value, in characters (§5.1).
pub const MAX_VALUE_LENGTH: usize = 80;
/// The largest `decimal` accepted for NUMERIC (1.0's limit).
pub const MAX_DECIMAL: u8 = 6;

/// What an attribute holds, with the type-specific metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeKind {
    /// `min_length` 0 is none. 1.1's `multi-line=1` is accepted and changes nothing here:
    /// values stay single-line (protocol-spec/attributes.md).
    Text {
        max_length: usize,
        min_length: usize,
    },
    /// `multi_select`: a value is items joined by `", "`. The lengths apply to an editable,
    /// single-select list only (1.1's keys; 0 and [`MAX_VALUE_LENGTH`] when absent).
    Enum {
        items: Vec<String>,
        editable: bool,
        multi_select: bool,
        min_length: usize,
        max_length: usize,
    },
    /// `min` and `max` are kept in normalised form (see [`AttributeDef::validate_value`]).
    Numeric {
        min: Option<String>,
        max: Option<String>,
        decimal: u8,
    },
    DateTime {
        time: bool,
    },
    User {
        member: bool,
        multi_select: bool,
    },
}

/// A parsed, checked attribute definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeDef {
    pub kind: AttributeKind,
    pub required: bool,
    /// The initial value for new issues, already normalised; `""` for none.
    pub default: String,
}

/// Why a definition is invalid; shown to the client as *invalid definition*.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefError {
    Syntax(DefinitionError),
    UnknownType(String),
    /// A key that the type does not know; rejected so typos don't pass silently.
    UnknownKey {
        kind: String,
        key: String,
    },
    WrongValueKind {
        key: String,
        expected: &'static str,
    },
    /// A value of the right kind but out of range, e.g. `max-length=0` or `required=2`.
    InvalidMetadata {
        key: String,
        reason: String,
    },
    MissingItems,
    EmptyItems,
    DuplicateItem(String),
    InvalidItem {
        item: String,
        reason: ValueError,
    },
    /// `required=1` needs a non-empty default, else new issues could never be created.
    RequiredWithoutDefault,
    InvalidDefault(ValueError),
}

impl fmt::Display for DefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DefError::Syntax(e) => write!(f, "{e}"),
            DefError::UnknownType(t) => write!(f, "invalid definition: unknown type '{t}'"),
            DefError::UnknownKey { kind, key } => {
                write!(f, "invalid definition: unknown key '{key}' for type {kind}")
            }
            DefError::WrongValueKind { key, expected } => {
                write!(f, "invalid definition: '{key}' must be {expected}")
            }
            DefError::InvalidMetadata { key, reason } => {
                write!(f, "invalid definition: '{key}' {reason}")
            }
            DefError::MissingItems => write!(f, "invalid definition: ENUM requires 'items'"),
            DefError::EmptyItems => write!(f, "invalid definition: 'items' may not be empty"),
            DefError::DuplicateItem(item) => {
                write!(
                    f,
                    "invalid definition: duplicate item '{}'",
                    crate::error::printable(item, 40)
                )
            }
            DefError::InvalidItem { item, reason } => write!(
                f,
                "invalid definition: item '{}': {reason}",
                crate::error::printable(item, 40)
            ),
            DefError::RequiredWithoutDefault => write!(
                f,
                "invalid definition: a required attribute needs a non-empty default"
            ),
            DefError::InvalidDefault(e) => write!(f, "invalid definition: default value: {e}"),
        }
    }
}

impl std::error::Error for DefError {}

impl From<DefinitionError> for DefError {
    fn from(e: DefinitionError) -> Self {
        DefError::Syntax(e)
    }
}

/// Why a value is not acceptable for an attribute; shown as *invalid value* (342).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueError {
    TooLong {
        max: usize,
    },
    TooShort {
        min: usize,
    },
    /// A multi-select value that is not items joined by `", "`.
    InvalidList,
    /// A multi-select value naming an item twice.
    DuplicateItem,
    /// A line break, TAB or other control character: values are single-line text.
    InvalidCharacter,
    Required,
    NotAnItem,
    NotANumber,
    TooManyDecimals {
        decimal: u8,
    },
    BelowMinimum(String),
    AboveMaximum(String),
    InvalidDate,
    TimeRequired,
    UnknownUser,
    NotAMember,
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueError::TooLong { max } => write!(f, "value longer than {max} characters"),
            ValueError::TooShort { min } => write!(f, "value shorter than {min} characters"),
            ValueError::InvalidList => write!(f, "value is not a list of items joined by \", \""),
            ValueError::DuplicateItem => write!(f, "value names an item twice"),
            ValueError::InvalidCharacter => {
                write!(f, "value contains a line break or control character")
            }
            ValueError::Required => write!(f, "value is required"),
            ValueError::NotAnItem => write!(f, "value is not one of the allowed items"),
            ValueError::NotANumber => write!(f, "value is not a number"),
            ValueError::TooManyDecimals { decimal } => {
                write!(f, "number has more than {decimal} decimal places")
            }
            ValueError::BelowMinimum(min) => write!(f, "number is less than {min}"),
            ValueError::AboveMaximum(max) => write!(f, "number is greater than {max}"),
            ValueError::InvalidDate => write!(f, "value is not a valid date"),
            ValueError::TimeRequired => write!(f, "value must be a date and time"),
            ValueError::UnknownUser => write!(f, "value is not the name of a user"),
            ValueError::NotAMember => write!(f, "user is not a member of the project"),
        }
    }
}

impl std::error::Error for ValueError {}

/// Rule 1 of §6.3, common to every type: ≤ 80 characters, one line, no TAB.
fn check_basic(value: &str) -> Result<(), ValueError> {
    if value.chars().count() > MAX_VALUE_LENGTH {
        return Err(ValueError::TooLong {
            max: MAX_VALUE_LENGTH,
        });
    }
    if value.chars().any(char::is_control) {
        return Err(ValueError::InvalidCharacter);
    }
    Ok(())
}

/// A multi-select value's items: `", "`-joined, none empty or padded, none twice (the form
/// the 1.1 client sends; `a,b` is not a list).
fn list(value: &str) -> Result<Vec<&str>, ValueError> {
    let parts: Vec<&str> = value.split(", ").collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || p.contains(',') || p.trim() != *p)
    {
        return Err(ValueError::InvalidList);
    }
    if parts
        .iter()
        .enumerate()
        .any(|(i, p)| parts[..i].contains(p))
    {
        return Err(ValueError::DuplicateItem);
    }
    Ok(parts)
}

/// A fixed-point number in normalised form: no leading zeros in `int`, never negative zero.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    int: String,
    frac: String,
}

impl Decimal {
    /// Parses `-?digits[.digits]`, padding the fraction to `decimal` digits. Rejecting a longer
    /// fraction (instead of rounding) keeps the stored value exactly what the user typed.
    fn parse(s: &str, decimal: u8) -> Result<Decimal, ValueError> {
        let (negative, rest) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (int, frac) = match rest.split_once('.') {
            Some((i, f)) => (i, f),
            None => (rest, ""),
        };
        let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(int) || (rest.contains('.') && !all_digits(frac)) {
            return Err(ValueError::NotANumber);
        }
        let decimal = usize::from(decimal);
        if frac.len() > decimal {
            return Err(ValueError::TooManyDecimals {
                decimal: decimal as u8,
            });
        }
        let int = int.trim_start_matches('0');
        let int = if int.is_empty() { "0" } else { int };
        let mut frac = frac.to_owned();
        while frac.len() < decimal {
            frac.push('0');
        }
        let is_zero = int == "0" && frac.bytes().all(|b| b == b'0');
        Ok(Decimal {
            negative: negative && !is_zero,
            int: int.to_owned(),
            frac,
        })
    }

    /// Compares the magnitudes digit by digit: values may have up to 80 digits, far beyond
    /// any integer or float type. Both sides must have the same fraction length.
    fn cmp_magnitude(&self, other: &Decimal) -> Ordering {
        self.int
            .len()
            .cmp(&other.int.len())
            .then_with(|| self.int.cmp(&other.int))
            .then_with(|| self.frac.cmp(&other.frac))
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.cmp_magnitude(other),
            (true, true) => other.cmp_magnitude(self),
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.negative {
            f.write_str("-")?;
        }
        f.write_str(&self.int)?;
        if !self.frac.is_empty() {
            write!(f, ".{}", self.frac)?;
        }
        Ok(())
    }
}

/// Parses `yyyy-mm-dd` or `yyyy-mm-dd hh:mm` with exact digit counts; returns whether a time
/// part was present, or `None` when the text is not a real date (and time).
fn parse_datetime(s: &str) -> Option<bool> {
    fn num(s: &str, len: usize) -> Option<u32> {
        if s.len() == len && s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    }
    let (date, time) = match s.split_once(' ') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut parts = date.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let year = i32::try_from(num(y, 4)?).ok()?;
    NaiveDate::from_ymd_opt(year, num(m, 2)?, num(d, 2)?)?;
    if let Some(t) = time {
        let (h, mi) = t.split_once(':')?;
        if num(h, 2)? > 23 || num(mi, 2)? > 59 {
            return None;
        }
    }
    Some(time.is_some())
}

fn flag(key: &str, v: &MetaValue) -> Result<bool, DefError> {
    match v {
        MetaValue::Int(0) => Ok(false),
        MetaValue::Int(1) => Ok(true),
        MetaValue::Int(_) => Err(DefError::InvalidMetadata {
            key: key.to_owned(),
            reason: "must be 0 or 1".to_owned(),
        }),
        _ => Err(DefError::WrongValueKind {
            key: key.to_owned(),
            expected: "an integer",
        }),
    }
}

fn int_in(key: &str, v: &MetaValue, lo: i64, hi: i64) -> Result<i64, DefError> {
    match v {
        MetaValue::Int(n) if (lo..=hi).contains(n) => Ok(*n),
        MetaValue::Int(_) => Err(DefError::InvalidMetadata {
            key: key.to_owned(),
            reason: format!("must be between {lo} and {hi}"),
        }),
        _ => Err(DefError::WrongValueKind {
            key: key.to_owned(),
            expected: "an integer",
        }),
    }
}

fn text<'a>(key: &str, v: &'a MetaValue) -> Result<&'a str, DefError> {
    match v {
        MetaValue::Str(s) => Ok(s),
        _ => Err(DefError::WrongValueKind {
            key: key.to_owned(),
            expected: "a string",
        }),
    }
}

/// Parsed attribute definitions by their text. ADD ISSUE and SET VALUE need the definition
/// of every attribute they touch, and parsing it each time was about 6 % of a write's CPU.
/// Keyed by the text itself, so a changed definition is simply another entry.
#[derive(Default)]
pub struct DefinitionCache(
    std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<AttributeDef>>>,
);

/// Entries kept at most: definitions are few, but each MODIFY ATTRIBUTE adds one.
const DEFINITIONS_KEPT: usize = 4096;

impl DefinitionCache {
    /// [`AttributeDef::parse`], once per distinct text.
    pub fn parse(&self, def: &str) -> Result<std::sync::Arc<AttributeDef>, DefError> {
        if let Some(d) = self.0.lock().unwrap_or_else(|e| e.into_inner()).get(def) {
            return Ok(d.clone());
        }
        let parsed = std::sync::Arc::new(AttributeDef::parse(def)?);
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= DEFINITIONS_KEPT {
            map.clear();
        }
        map.insert(def.to_string(), parsed.clone());
        Ok(parsed)
    }
}

impl AttributeDef {
    /// Parses and checks a definition (§6.2 and rule 8 of §6.3).
    ///
    /// A USER default is checked only for form here, since this function knows no users;
    /// the server should call [`AttributeDef::parse_with_users`] instead when it can.
    pub fn parse(def: &str) -> Result<AttributeDef, DefError> {
        Self::parse_with_users(def, &|_, _| true)
    }

    /// Like [`AttributeDef::parse`], checking a USER default with `user_ok` (which should
    /// accept any existing user: a default has no project context, §6.3 rule 8).
    pub fn parse_with_users(
        def: &str,
        user_ok: &dyn Fn(&str, bool) -> bool,
    ) -> Result<AttributeDef, DefError> {
        let parsed = parse_definition(def)?;
        let mut required = false;
        let mut default = String::new();
        let mut max_length = None;
        let mut min_length = None;
        let mut items = None;
        let mut editable = false;
        let mut multi_select = false;
        // 1.1's display hints: checked, stored verbatim, no effect on values.
        let (mut strip, mut local) = (false, false);
        let mut min = None;
        let mut max = None;
        let mut decimal = 0u8;
        let mut time = false;
        let mut member = false;

        let kind = parsed.kind.as_str();
        if !matches!(kind, "TEXT" | "ENUM" | "NUMERIC" | "DATETIME" | "USER") {
            return Err(DefError::UnknownType(parsed.kind.clone()));
        }
        for (key, v) in &parsed.meta {
            match (kind, key.as_str()) {
                (_, "required") => required = flag(key, v)?,
                (_, "default") => default = text(key, v)?.to_owned(),
                ("TEXT" | "ENUM", "max-length") => {
                    max_length = Some(int_in(key, v, 1, MAX_VALUE_LENGTH as i64)? as usize)
                }
                ("TEXT" | "ENUM", "min-length") => {
                    min_length = Some(int_in(key, v, 1, MAX_VALUE_LENGTH as i64)? as usize)
                }
                ("TEXT", "multi-line") => {
                    flag(key, v)?;
                }
                ("ENUM" | "USER", "multi-select") => multi_select = flag(key, v)?,
                ("NUMERIC", "strip") => strip = flag(key, v)?,
                ("DATETIME", "local") => local = flag(key, v)?,
                ("ENUM", "items") => match v {
                    MetaValue::Array(a) => items = Some(a.clone()),
                    _ => {
                        return Err(DefError::WrongValueKind {
                            key: key.clone(),
                            expected: "an array",
                        });
                    }
                },
                ("ENUM", "editable") => editable = flag(key, v)?,
                ("NUMERIC", "min-value") => min = Some(text(key, v)?),
                ("NUMERIC", "max-value") => max = Some(text(key, v)?),
                ("NUMERIC", "decimal") => decimal = int_in(key, v, 0, MAX_DECIMAL.into())? as u8,
                ("DATETIME", "time") => time = flag(key, v)?,
                // [M] spells it `member`, the 0.8 Java client and 1.0 `members` (§6.2).
                ("USER", "member" | "members") => member = flag(key, v)?,
                _ => {
                    return Err(DefError::UnknownKey {
                        kind: parsed.kind.clone(),
                        key: key.clone(),
                    });
                }
            }
        }
        // `member` and `members` together would be a duplicate in all but spelling.
        if parsed.get("member").is_some() && parsed.get("members").is_some() {
            return Err(DefError::InvalidMetadata {
                key: "members".to_owned(),
                reason: "duplicates 'member'".to_owned(),
            });
        }

        let invalid = |key: &str, reason: &str| DefError::InvalidMetadata {
            key: key.to_owned(),
            reason: reason.to_owned(),
        };
        if let (Some(lo), Some(hi)) = (min_length, max_length)
            && lo > hi
        {
            return Err(invalid("min-length", "is greater than 'max-length'"));
        }
        if kind == "ENUM"
            && (min_length.is_some() || max_length.is_some())
            && (!editable || multi_select)
        {
            let key = if min_length.is_some() {
                "min-length"
            } else {
                "max-length"
            };
            return Err(invalid(key, "needs editable=1 without multi-select=1"));
        }
        if strip && decimal == 0 {
            return Err(invalid("strip", "needs decimal above 0"));
        }
        if local && !time {
            return Err(invalid("local", "needs time=1"));
        }
        let kind = match kind {
            "TEXT" => AttributeKind::Text {
                max_length: max_length.unwrap_or(MAX_VALUE_LENGTH),
                min_length: min_length.unwrap_or(0),
            },
            "ENUM" => {
                let items = items.ok_or(DefError::MissingItems)?;
                if items.is_empty() {
                    return Err(DefError::EmptyItems);
                }
                for (i, item) in items.iter().enumerate() {
                    let bad = |reason| DefError::InvalidItem {
                        item: item.clone(),
                        reason,
                    };
                    check_basic(item).map_err(bad)?;
                    if item.is_empty() {
                        return Err(bad(ValueError::Required));
                    }
                    if items[..i].contains(item) {
                        return Err(DefError::DuplicateItem(item.clone()));
                    }
                    if multi_select && item.contains(',') {
                        return Err(bad(ValueError::InvalidList));
                    }
                }
                AttributeKind::Enum {
                    items,
                    editable,
                    multi_select,
                    min_length: min_length.unwrap_or(0),
                    max_length: max_length.unwrap_or(MAX_VALUE_LENGTH),
                }
            }
            "NUMERIC" => {
                let bound = |key: &str, v: Option<&str>| -> Result<Option<Decimal>, DefError> {
                    v.map(|s| {
                        Decimal::parse(s, decimal).map_err(|e| DefError::InvalidMetadata {
                            key: key.to_owned(),
                            reason: format!("is invalid: {e}"),
                        })
                    })
                    .transpose()
                };
                let min = bound("min-value", min)?;
                let max = bound("max-value", max)?;
                if let (Some(lo), Some(hi)) = (&min, &max)
                    && lo > hi
                {
                    return Err(DefError::InvalidMetadata {
                        key: "min-value".to_owned(),
                        reason: "is greater than 'max-value'".to_owned(),
                    });
                }
                AttributeKind::Numeric {
                    min: min.map(|d| d.to_string()),
                    max: max.map(|d| d.to_string()),
                    decimal,
                }
            }
            "DATETIME" => AttributeKind::DateTime { time },
            _ => AttributeKind::User {
                member,
                multi_select,
            },
        };

        let mut attr = AttributeDef {
            kind,
            required,
            default: String::new(),
        };
        if required && default.is_empty() {
            return Err(DefError::RequiredWithoutDefault);
        }
        // A default has no project, so `member=1` can't apply to it.
        let default_user_ok = |name: &str, _member: bool| user_ok(name, false);
        attr.default = attr
            .validate_value(&default, &default_user_ok)
            .map_err(DefError::InvalidDefault)?;
        Ok(attr)
    }

    /// Checks `value` against this definition and returns the text to store.
    ///
    /// Only NUMERIC values change: leading zeros are stripped and the fraction is padded to
    /// `decimal` digits, as 0.8 did. `user_ok(name, must_be_member)` answers whether `name`
    /// is the display name of an acceptable user (a project member when asked).
    pub fn validate_value(
        &self,
        value: &str,
        user_ok: &dyn Fn(&str, bool) -> bool,
    ) -> Result<String, ValueError> {
        check_basic(value)?;
        if value.is_empty() {
            return if self.required {
                Err(ValueError::Required)
            } else {
                Ok(String::new())
            };
        }
        let lengths = |min: usize, max: usize| {
            let n = value.chars().count();
            if n > max {
                Err(ValueError::TooLong { max })
            } else if n < min {
                Err(ValueError::TooShort { min })
            } else {
                Ok(())
            }
        };
        match &self.kind {
            AttributeKind::Text {
                max_length,
                min_length,
            } => lengths(*min_length, *max_length)?,
            AttributeKind::Enum {
                items,
                editable,
                multi_select,
                min_length,
                max_length,
            } => {
                let parts = if *multi_select {
                    list(value)?
                } else {
                    lengths(*min_length, *max_length)?;
                    vec![value]
                };
                if !editable && !parts.iter().all(|p| items.iter().any(|i| i == p)) {
                    return Err(ValueError::NotAnItem);
                }
            }
            AttributeKind::Numeric { min, max, decimal } => {
                let v = Decimal::parse(value, *decimal)?;
                // Bounds were normalised with the same `decimal`, so they re-parse.
                let bound = |b: &Option<String>| {
                    b.as_deref().and_then(|b| Decimal::parse(b, *decimal).ok())
                };
                if let Some(lo) = bound(min)
                    && v < lo
                {
                    return Err(ValueError::BelowMinimum(lo.to_string()));
                }
                if let Some(hi) = bound(max)
                    && v > hi
                {
                    return Err(ValueError::AboveMaximum(hi.to_string()));
                }
                let normalised = v.to_string();
                if normalised.chars().count() > MAX_VALUE_LENGTH {
                    return Err(ValueError::TooLong {
                        max: MAX_VALUE_LENGTH,
                    });
                }
                return Ok(normalised);
            }
            AttributeKind::DateTime { time } => match parse_datetime(value) {
                None => return Err(ValueError::InvalidDate),
                Some(false) if *time => return Err(ValueError::TimeRequired),
                Some(_) => {}
            },
            AttributeKind::User {
                member,
                multi_select,
            } => {
                let parts = if *multi_select {
                    list(value)?
                } else {
                    vec![value]
                };
                for name in parts {
                    if !user_ok(name, *member) {
                        return Err(if *member && user_ok(name, false) {
                            ValueError::NotAMember
                        } else {
                            ValueError::UnknownUser
                        });
                    }
                }
            }
        }
        Ok(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_definition_cache_parses_each_text_once() {
        let cache = DefinitionCache::default();
        let a = cache
            .parse("ENUM items={\"a\",\"b\"} default=\"a\"")
            .unwrap();
        let again = cache
            .parse("ENUM items={\"a\",\"b\"} default=\"a\"")
            .unwrap();
        assert!(std::sync::Arc::ptr_eq(&a, &again));
        let b = cache
            .parse("ENUM items={\"a\",\"b\"} default=\"b\"")
            .unwrap();
        assert_eq!((a.default.as_str(), b.default.as_str()), ("a", "b"));
        assert!(cache.parse("NOSUCHTYPE").is_err());
        for i in 0..DEFINITIONS_KEPT + 10 {
            cache.parse(&format!("NUMERIC min-value=\"{i}\"")).unwrap();
        }
        assert!(cache.0.lock().unwrap().len() <= DEFINITIONS_KEPT);
    }

    fn any_user(_: &str, _: bool) -> bool {
        true
    }

    /// Users "Alice" (member) and "Bob" (not a member of the project).
    fn users(name: &str, member: bool) -> bool {
        name == "Alice" || (name == "Bob" && !member)
    }

    fn def(s: &str) -> AttributeDef {
        AttributeDef::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn ok(d: &AttributeDef, v: &str) -> String {
        d.validate_value(v, &users)
            .unwrap_or_else(|e| panic!("{v:?}: {e}"))
    }

    fn err(d: &AttributeDef, v: &str) -> ValueError {
        d.validate_value(v, &users).unwrap_err()
    }

    #[test]
    fn text_defaults_and_limits() {
        let d = def("TEXT");
        assert_eq!(
            d,
            AttributeDef {
                kind: AttributeKind::Text {
                    max_length: 80,
                    min_length: 0
                },
                required: false,
                default: String::new()
            }
        );
        assert_eq!(ok(&d, ""), "");
        assert_eq!(ok(&d, &"x".repeat(80)), "x".repeat(80));
        assert_eq!(err(&d, &"x".repeat(81)), ValueError::TooLong { max: 80 });
        assert_eq!(ok(&d, &"ż".repeat(80)), "ż".repeat(80), "counts characters");
        assert_eq!(err(&d, "a\nb"), ValueError::InvalidCharacter);
        assert_eq!(err(&d, "a\tb"), ValueError::InvalidCharacter);
        assert_eq!(err(&d, "a\rb"), ValueError::InvalidCharacter);
        assert_eq!(err(&d, "a\u{7f}"), ValueError::InvalidCharacter);

        let d = def("TEXT max-length=3 required=1 default=\"abc\"");
        assert!(d.required);
        assert_eq!(d.default, "abc");
        assert_eq!(ok(&d, "xyz"), "xyz");
        assert_eq!(err(&d, "wxyz"), ValueError::TooLong { max: 3 });
        assert_eq!(err(&d, ""), ValueError::Required);
    }

    #[test]
    fn definition_errors() {
        let e = |s: &str| AttributeDef::parse(s).unwrap_err();
        assert!(matches!(e("TEXT max-length"), DefError::Syntax(_)));
        assert_eq!(e("FLOAT"), DefError::UnknownType("FLOAT".into()));
        assert!(matches!(e("TEXT items={}"), DefError::UnknownKey { .. }));
        assert!(matches!(e("USER time=1"), DefError::UnknownKey { .. }));
        assert!(matches!(
            e("TEXT max-length=0"),
            DefError::InvalidMetadata { .. }
        ));
        assert!(matches!(
            e("TEXT max-length=81"),
            DefError::InvalidMetadata { .. }
        ));
        assert!(matches!(
            e("TEXT max-length=\"5\""),
            DefError::WrongValueKind { .. }
        ));
        assert!(matches!(
            e("TEXT required=2"),
            DefError::InvalidMetadata { .. }
        ));
        assert!(matches!(
            e("TEXT required=\"1\""),
            DefError::WrongValueKind { .. }
        ));
        assert!(matches!(
            e("TEXT default=1"),
            DefError::WrongValueKind { .. }
        ));
        assert!(matches!(
            e("TEXT default={\"a\"}"),
            DefError::WrongValueKind { .. }
        ));
        assert_eq!(e("TEXT required=1"), DefError::RequiredWithoutDefault);
        assert_eq!(
            e("TEXT max-length=2 default=\"abc\""),
            DefError::InvalidDefault(ValueError::TooLong { max: 2 })
        );
        assert_eq!(
            e("TEXT default=\"a\nb\""),
            DefError::InvalidDefault(ValueError::InvalidCharacter)
        );
        assert_eq!(
            e("TEXT max-length=1 max-length=2"),
            DefError::Syntax(DefinitionError::DuplicateKey("max-length".into()))
        );
        assert_eq!(
            e("TEXT colour=1").to_string(),
            "invalid definition: unknown key 'colour' for type TEXT"
        );
    }

    #[test]
    fn enums() {
        let d = def(r#"ENUM items={"Low","Medium","High"} default="Medium" required=1"#);
        assert_eq!(d.default, "Medium");
        assert_eq!(ok(&d, "High"), "High");
        assert_eq!(err(&d, "high"), ValueError::NotAnItem);
        assert_eq!(err(&d, ""), ValueError::Required);
        let d = def(r#"ENUM items={"a"} editable=1"#);
        assert_eq!(ok(&d, "anything"), "anything");

        let e = |s: &str| AttributeDef::parse(s).unwrap_err();
        assert_eq!(e("ENUM"), DefError::MissingItems);
        assert_eq!(e("ENUM editable=1"), DefError::MissingItems);
        assert_eq!(e("ENUM items={}"), DefError::EmptyItems);
        assert!(matches!(
            e("ENUM items=\"a\""),
            DefError::WrongValueKind { .. }
        ));
        assert_eq!(
            e(r#"ENUM items={"a","b","a"}"#),
            DefError::DuplicateItem("a".into())
        );
        assert!(matches!(
            e(r#"ENUM items={"a",""}"#),
            DefError::InvalidItem { .. }
        ));
        let long = format!(r#"ENUM items={{"{}"}}"#, "x".repeat(81));
        assert!(matches!(e(&long), DefError::InvalidItem { .. }));
        let ctl = e("ENUM items={\"a\u{1}b\"}");
        assert!(matches!(ctl, DefError::InvalidItem { .. }));
        assert!(!ctl.to_string().contains('\u{1}'), "no raw control chars");
        assert_eq!(
            e(r#"ENUM items={"a"} default="b""#),
            DefError::InvalidDefault(ValueError::NotAnItem)
        );
    }

    #[test]
    fn numeric_normalisation() {
        let d = def("NUMERIC");
        assert_eq!(ok(&d, "007"), "7");
        assert_eq!(ok(&d, "0"), "0");
        assert_eq!(ok(&d, "000"), "0");
        assert_eq!(ok(&d, "-0"), "0");
        assert_eq!(ok(&d, "-12"), "-12");
        assert_eq!(err(&d, "1.5"), ValueError::TooManyDecimals { decimal: 0 });
        for bad in [
            "+1", "1.", ".5", "-", "--1", "1e3", " 1", "1 ", "1,5", "½", "١",
        ] {
            assert_eq!(err(&d, bad), ValueError::NotANumber, "{bad:?}");
        }

        let d = def("NUMERIC decimal=2");
        assert_eq!(ok(&d, "1.5"), "1.50");
        assert_eq!(ok(&d, "01.05"), "1.05");
        assert_eq!(ok(&d, "3"), "3.00");
        assert_eq!(ok(&d, "-0.00"), "0.00");
        assert_eq!(ok(&d, "-0.01"), "-0.01");
        assert_eq!(err(&d, "1.505"), ValueError::TooManyDecimals { decimal: 2 });
        assert_eq!(err(&d, "1.500"), ValueError::TooManyDecimals { decimal: 2 });

        // 79 digits fit as typed but not once padded to 6 decimals.
        let d = def("NUMERIC decimal=6");
        assert_eq!(err(&d, &"9".repeat(79)), ValueError::TooLong { max: 80 });
        assert_eq!(
            ok(&d, &"9".repeat(73)),
            format!("{}.000000", "9".repeat(73))
        );
    }

    #[test]
    fn numeric_bounds() {
        let d = def(r#"NUMERIC decimal=1 min-value="-10" max-value="0010.5""#);
        assert_eq!(
            d.kind,
            AttributeKind::Numeric {
                min: Some("-10.0".into()),
                max: Some("10.5".into()),
                decimal: 1
            }
        );
        assert_eq!(ok(&d, "-10"), "-10.0");
        assert_eq!(ok(&d, "10.5"), "10.5");
        assert_eq!(ok(&d, "-9.9"), "-9.9");
        assert_eq!(err(&d, "-10.1"), ValueError::BelowMinimum("-10.0".into()));
        assert_eq!(err(&d, "10.6"), ValueError::AboveMaximum("10.5".into()));
        assert_eq!(err(&d, "100"), ValueError::AboveMaximum("10.5".into()));
        assert_eq!(err(&d, "-100"), ValueError::BelowMinimum("-10.0".into()));

        // Far beyond i64/i128/f64 precision: compared digit by digit.
        let big = "1".repeat(60);
        let d = def(&format!(r#"NUMERIC min-value="{big}0" max-value="{big}1""#));
        assert_eq!(ok(&d, &format!("{big}0")), format!("{big}0"));
        assert_eq!(ok(&d, &format!("{big}1")), format!("{big}1"));
        assert!(matches!(
            err(&d, &format!("{big}2")),
            ValueError::AboveMaximum(_)
        ));
        assert!(matches!(err(&d, &big), ValueError::BelowMinimum(_)));

        let d = def(r#"NUMERIC min-value="5" default="7" required=1"#);
        assert_eq!(d.default, "7");
        let e = |s: &str| AttributeDef::parse(s).unwrap_err();
        assert!(matches!(
            e(r#"NUMERIC min-value="2" max-value="1""#),
            DefError::InvalidMetadata { .. }
        ));
        assert!(matches!(
            e(r#"NUMERIC min-value="1.5""#),
            DefError::InvalidMetadata { .. }
        ));
        assert!(matches!(
            e(r#"NUMERIC max-value="x""#),
            DefError::InvalidMetadata { .. }
        ));
        assert!(matches!(
            e("NUMERIC min-value=1"),
            DefError::WrongValueKind { .. }
        ));
        assert!(matches!(
            e("NUMERIC decimal=7"),
            DefError::InvalidMetadata { .. }
        ));
        assert!(matches!(
            e("NUMERIC decimal=-1"),
            DefError::InvalidMetadata { .. }
        ));
        assert_eq!(
            e(r#"NUMERIC min-value="5" default="4""#),
            DefError::InvalidDefault(ValueError::BelowMinimum("5".into()))
        );
        assert!(
            def(r#"NUMERIC min-value="-0" max-value="0""#)
                .validate_value("0", &any_user)
                .is_ok()
        );
    }

    #[test]
    fn datetimes() {
        let d = def("DATETIME");
        assert_eq!(ok(&d, "2024-02-29"), "2024-02-29");
        assert_eq!(ok(&d, "2024-02-29 23:59"), "2024-02-29 23:59");
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-1-01",
            "24-01-01",
            "2024-01-01 24:00",
            "2024-01-01 12:60",
            "2024-01-01 1:00",
            "2024-01-01 12:00:00",
            "2024-01-01T12:00",
            "2024-01-01  12:00",
            "2024-01-01-01",
            "+024-01-01",
            "today",
        ] {
            assert_eq!(err(&d, bad), ValueError::InvalidDate, "{bad:?}");
        }
        let d = def("DATETIME time=1");
        assert_eq!(ok(&d, "2024-06-01 08:30"), "2024-06-01 08:30");
        assert_eq!(err(&d, "2024-06-01"), ValueError::TimeRequired);
        assert!(matches!(
            AttributeDef::parse("DATETIME time=1 default=\"2024-06-01\"").unwrap_err(),
            DefError::InvalidDefault(ValueError::TimeRequired)
        ));
    }

    /// The keys the 1.1 client's Attribute Details dialog writes (its MODIFY ATTRIBUTE
    /// with `multi-line=1` was refused with 322 before).
    #[test]
    fn the_1_1_detail_keys() {
        let d = def(r#"TEXT default="1.0" max-length=40 multi-line=1 required=1"#);
        assert_eq!(
            d.kind,
            AttributeKind::Text {
                max_length: 40,
                min_length: 0
            }
        );
        assert_eq!(
            err(&d, "a\nb"),
            ValueError::InvalidCharacter,
            "still one line"
        );
        let d = def("TEXT min-length=3 max-length=5");
        assert_eq!(err(&d, "ab"), ValueError::TooShort { min: 3 });
        assert_eq!(ok(&d, "abc"), "abc");
        assert_eq!(ok(&d, ""), "", "empty is no value, not too short");
        assert_eq!(err(&d, "abcdef"), ValueError::TooLong { max: 5 });

        let d = def(r#"ENUM items={"ui","docs","core"} multi-select=1"#);
        assert_eq!(ok(&d, "ui"), "ui");
        assert_eq!(ok(&d, "docs, ui"), "docs, ui");
        assert_eq!(err(&d, "ui,docs"), ValueError::InvalidList);
        assert_eq!(err(&d, "ui, "), ValueError::InvalidList);
        assert_eq!(err(&d, "ui, ui"), ValueError::DuplicateItem);
        assert_eq!(err(&d, "ui, web"), ValueError::NotAnItem);
        let d = def(r#"ENUM items={"a"} editable=1 min-length=2 max-length=4"#);
        assert_eq!(ok(&d, "abc"), "abc");
        assert_eq!(err(&d, "x"), ValueError::TooShort { min: 2 });
        assert_eq!(err(&d, "abcde"), ValueError::TooLong { max: 4 });

        assert_eq!(ok(&def("USER multi-select=1"), "Bob, Alice"), "Bob, Alice");
        let d = def("USER members=1 multi-select=1");
        assert_eq!(err(&d, "Alice, Bob"), ValueError::NotAMember);
        assert_eq!(err(&d, "Alice, Alice"), ValueError::DuplicateItem);

        assert_eq!(ok(&def("NUMERIC decimal=2 strip=1"), "1.50"), "1.50");
        assert_eq!(
            ok(&def("DATETIME time=1 local=1"), "2024-01-02 03:04"),
            "2024-01-02 03:04"
        );

        let e = |s: &str| AttributeDef::parse(s).unwrap_err();
        for bad in [
            "TEXT min-length=5 max-length=3",
            "TEXT min-length=0",
            "TEXT multi-line=2",
            r#"ENUM items={"a"} max-length=5"#,
            r#"ENUM items={"a"} editable=1 multi-select=1 min-length=1"#,
            "NUMERIC strip=1",
            "DATETIME local=1",
        ] {
            assert!(matches!(e(bad), DefError::InvalidMetadata { .. }), "{bad}");
        }
        assert!(matches!(
            e(r#"ENUM items={"a,b"} multi-select=1"#),
            DefError::InvalidItem { .. }
        ));
        assert!(matches!(
            e("NUMERIC multi-select=1"),
            DefError::UnknownKey { .. }
        ));
        assert!(matches!(e("DATETIME strip=1"), DefError::UnknownKey { .. }));
    }

    #[test]
    fn users_and_member_spellings() {
        let d = def("USER");
        assert_eq!(ok(&d, "Alice"), "Alice");
        assert_eq!(ok(&d, "Bob"), "Bob");
        assert_eq!(err(&d, "Carol"), ValueError::UnknownUser);
        for spelling in ["member", "members"] {
            let d = def(&format!("USER {spelling}=1"));
            assert_eq!(
                d.kind,
                AttributeKind::User {
                    member: true,
                    multi_select: false
                }
            );
            assert_eq!(ok(&d, "Alice"), "Alice");
            assert_eq!(err(&d, "Bob"), ValueError::NotAMember);
            assert_eq!(err(&d, "Carol"), ValueError::UnknownUser);
        }
        assert!(AttributeDef::parse("USER member=1 members=1").is_err());

        // A default is checked without project context: Bob is fine even with member=1.
        let d = AttributeDef::parse_with_users("USER member=1 default=\"Bob\"", &users).unwrap();
        assert_eq!(d.default, "Bob");
        assert_eq!(
            AttributeDef::parse_with_users("USER default=\"Carol\"", &users).unwrap_err(),
            DefError::InvalidDefault(ValueError::UnknownUser)
        );
        // Without a user list only the form is checked.
        assert_eq!(def("USER default=\"Carol\"").default, "Carol");
    }

    #[test]
    fn decimal_order_is_numeric() {
        let p = |s| Decimal::parse(s, 2).unwrap();
        let mut v = [
            p("10"),
            p("-1.5"),
            p("0"),
            p("-10"),
            p("2.25"),
            p("-0.01"),
            p("9.99"),
        ];
        v.sort();
        let out: Vec<String> = v.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            out,
            ["-10.00", "-1.50", "-0.01", "0.00", "2.25", "9.99", "10.00"]
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = AttributeDef::parse(&s);
        }

        #[test]
        fn parse_never_panics_on_plausible(
            kind in "(TEXT|ENUM|NUMERIC|DATETIME|USER|X)",
            meta in proptest::collection::vec(
                ("(required|default|max-length|items|editable|min-value|max-value|decimal|time|member|members)",
                 r#"(-?[0-9]{1,3}|"[-0-9.a ]{0,6}"|\{"[a-c]{0,2}"(,"[a-c]{0,2}"){0,2}\})"#),
                0..5),
        ) {
            let mut s = kind;
            for (k, v) in meta {
                s.push_str(&format!(" {k}={v}"));
            }
            let _ = AttributeDef::parse(&s);
        }

        #[test]
        fn validate_never_panics(
            d in "(TEXT|ENUM items=\\{\"a\"\\}|NUMERIC decimal=2 min-value=\"-5\" max-value=\"5\"|DATETIME|USER member=1)",
            v in any::<String>(),
        ) {
            let d = AttributeDef::parse(&d).unwrap();
            let _ = d.validate_value(&v, &users);
        }

        #[test]
        fn numeric_is_idempotent_and_ordered(
            decimal in 0u8..=6,
            a in "-?[0-9]{1,40}(\\.[0-9]{0,6})?",
            b in "-?[0-9]{1,40}(\\.[0-9]{0,6})?",
        ) {
            let d = AttributeDef::parse(&format!("NUMERIC decimal={decimal}")).unwrap();
            if let Ok(n) = d.validate_value(&a, &any_user) {
                prop_assert_eq!(d.validate_value(&n, &any_user), Ok(n.clone()));
                // Numeric order agrees with f64 order wherever f64 can tell them apart.
                if let Ok(m) = d.validate_value(&b, &any_user) {
                    let (x, y): (f64, f64) = (n.parse().unwrap(), m.parse().unwrap());
                    let (dx, dy) = (Decimal::parse(&n, decimal).unwrap(), Decimal::parse(&m, decimal).unwrap());
                    if (x - y).abs() > 1e-6 * x.abs().max(y.abs()).max(1.0) {
                        prop_assert_eq!(dx.cmp(&dy), x.partial_cmp(&y).unwrap());
                    }
                    if n == m { prop_assert_eq!(dx.cmp(&dy), Ordering::Equal); }
                }
            }
        }
    }
}
