//! The `options` argument of SUBSCRIBE and how it combines with the `mailto:` URI.
//!
//! Options use the metadata part of the attribute-definition grammar
//! (`subject="Alarm" cc="a@example.com"`, or `cc={"a@x.org","b@x.org"}`) and override the
//! URI field by field. Only `subject`, `body`, `cc` and `bcc` exist: no `from` (Zaqar let
//! subscribers choose the sender) and no `to` (the recipient is the subscriber URI itself).
//! Options pass the same checks as the URI, so neither is a way around the other's.

use super::mailto::{MAX_ADDRESSES, MAX_BODY_CHARS, MAX_SUBJECT_CHARS, Mailto};
use crate::email_address::is_valid_email;
use crate::protocol::definition::{MetaValue, parse_definition};
use crate::store::subscriptions::Role;

/// Where a subscription's mail goes and what it says, after options are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Unique addresses (compared case-insensitively), each with the first role it had.
    pub recipients: Vec<(String, Role)>,
    pub subject: Option<String>,
    pub body: Option<String>,
}

/// Parses the options and applies them over the URI. Errors are client-safe messages.
pub fn resolve(mailto: Mailto, options: &str) -> Result<Delivery, String> {
    let mut m = mailto;
    if !options.trim().is_empty() {
        const PREFIX: &str = "OPTIONS ";
        let def =
            parse_definition(&format!("{PREFIX}{}", options.trim())).map_err(|e| match e {
                crate::protocol::definition::DefinitionError::Syntax { position } => format!(
                    "invalid options: syntax error at character {}",
                    position.saturating_sub(PREFIX.len())
                ),
                other => format!(
                    "invalid options: {}",
                    other.to_string().replace("definition: ", "")
                ),
            })?;
        for (k, v) in def.meta {
            match k.as_str() {
                "subject" => {
                    let s = string(&k, v)?;
                    if s.chars().any(char::is_control) {
                        return Err(
                            "invalid options: the subject contains a line break or control character"
                                .into(),
                        );
                    }
                    if s.chars().count() > MAX_SUBJECT_CHARS {
                        return Err(format!(
                            "invalid options: the subject is longer than {MAX_SUBJECT_CHARS} characters"
                        ));
                    }
                    m.subject = Some(s);
                }
                "body" => {
                    let s = string(&k, v)?;
                    if s.chars()
                        .any(|c| c.is_control() && !matches!(c, '\n' | '\t'))
                    {
                        return Err("invalid options: the body contains a control character".into());
                    }
                    if s.chars().count() > MAX_BODY_CHARS {
                        return Err(format!(
                            "invalid options: the body is longer than {MAX_BODY_CHARS} characters"
                        ));
                    }
                    m.body = Some(s);
                }
                "cc" => m.cc = addresses(v)?,
                "bcc" => m.bcc = addresses(v)?,
                _ => {
                    return Err(format!(
                        "invalid options: unknown option '{k}' (allowed: subject, body, cc, bcc)"
                    ));
                }
            }
        }
    }
    let mut recipients: Vec<(String, Role)> = Vec::new();
    for (list, role) in [(&m.to, Role::To), (&m.cc, Role::Cc), (&m.bcc, Role::Bcc)] {
        for a in list {
            if !recipients.iter().any(|(b, _)| b.eq_ignore_ascii_case(a)) {
                recipients.push((a.clone(), role));
            }
        }
    }
    if recipients.len() > MAX_ADDRESSES {
        return Err(format!("more than {MAX_ADDRESSES} addresses"));
    }
    Ok(Delivery {
        recipients,
        subject: m.subject.filter(|s| !s.is_empty()),
        body: m.body.filter(|s| !s.is_empty()),
    })
}

fn string(key: &str, v: MetaValue) -> Result<String, String> {
    match v {
        MetaValue::Str(s) => Ok(s),
        _ => Err(format!("invalid options: '{key}' must be a string")),
    }
}

/// `"a@x.org"`, `"a@x.org,b@x.org"` or `{"a@x.org","b@x.org"}`; `""` clears the list.
fn addresses(v: MetaValue) -> Result<Vec<String>, String> {
    let items: Vec<String> = match v {
        MetaValue::Str(s) if s.is_empty() => return Ok(Vec::new()),
        MetaValue::Str(s) => s.split(',').map(|a| a.trim().to_string()).collect(),
        MetaValue::Array(a) => a,
        MetaValue::Int(_) => return Err("invalid options: an address list must be a string".into()),
    };
    for a in &items {
        if !is_valid_email(a) {
            let shown: String = a.chars().take(60).flat_map(char::escape_default).collect();
            return Err(format!("invalid options: invalid e-mail address '{shown}'"));
        }
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(uri: &str, options: &str) -> Result<Delivery, String> {
        resolve(Mailto::parse(uri).unwrap(), options)
    }

    #[test]
    fn options_override_the_uri() {
        let d = r(
            "mailto:a@x.org?subject=From%20URI&cc=b@x.org",
            r#"subject="Alarm" bcc={"c@x.org","d@x.org"}"#,
        )
        .unwrap();
        assert_eq!(d.subject.as_deref(), Some("Alarm"));
        assert_eq!(
            d.recipients,
            vec![
                ("a@x.org".into(), Role::To),
                ("b@x.org".into(), Role::Cc),
                ("c@x.org".into(), Role::Bcc),
                ("d@x.org".into(), Role::Bcc),
            ]
        );
        let d = r("mailto:a@x.org?cc=b@x.org", r#"cc="""#).unwrap();
        assert_eq!(d.recipients.len(), 1);
        let d = r("mailto:a@x.org,A@X.org?cc=a@x.org", "").unwrap();
        assert_eq!(d.recipients, vec![("a@x.org".into(), Role::To)]);
    }

    #[test]
    fn bad_options_are_refused() {
        for (options, needle) in [
            (r#"from="boss@x.org""#, "unknown option 'from'"),
            (r#"to="b@x.org""#, "unknown option 'to'"),
            (r#"subject="a" subject="b""#, "duplicate key"),
            (r#"cc="not an address""#, "invalid e-mail address"),
            (
                r#"cc="a@x.org%0D%0ABcc: x@y.org""#,
                "invalid e-mail address",
            ),
            ("subject=1", "must be a string"),
            ("subject=", "syntax error at character 8"),
            (r#"subject="a" bad"#, "syntax error at character 15"),
        ] {
            let e = r("mailto:a@x.org", options).unwrap_err();
            assert!(e.contains(needle), "{options}: {e}");
        }
    }
}
