//! Transcripts of 1.1 exchanges recorded from the reference server (tests/wi11/*.txt,
//! format in tests/wi11/README.md) and the normaliser that makes two servers' replies
//! comparable: times, the server's name and uuid, the time-zone list and the order of
//! lines within a group are not facts of the protocol.

use super::token::{Arg, tokenize, write_string};

/// One command of a transcript and what the reference answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// Line number of the `C:` line, for messages.
    pub line: usize,
    pub command: String,
    /// The `F:` part uploaded with the command.
    pub file: Option<Vec<u8>>,
    /// The reference's reply lines (`S:`), or its binary body (`B:`).
    pub reply: Vec<String>,
    pub binary: Option<Vec<u8>>,
    /// `W:` lines: webissued's answer where it differs from the reference on purpose
    /// (protocol-spec/webissues-1.1.md says why).
    pub webissued: Option<Vec<String>>,
}

/// The bytes of a 1.1 string literal.
fn literal(s: &str) -> Result<Vec<u8>, String> {
    match tokenize(Some(format!("X {s}").as_bytes()), None) {
        Ok(t) => match t.args.as_slice() {
            [Arg::Str(v)] => Ok(v.clone().into_bytes()),
            _ => Err(format!("not a string literal: {s}")),
        },
        Err(_) => Err(format!("not a string literal: {s}")),
    }
}

pub fn parse(text: &str) -> Result<Vec<Exchange>, String> {
    let mut out: Vec<Exchange> = Vec::new();
    let mut file = None;
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        let (tag, rest) = match line.split_at_checked(2) {
            Some((t, r)) if t.ends_with(':') => (t, r.strip_prefix(' ').unwrap_or(r)),
            _ if line.is_empty() || line.starts_with('#') => continue,
            _ => return Err(format!("line {n}: no tag")),
        };
        let last = out.last_mut();
        match (tag, last) {
            ("F:", _) => file = Some(literal(rest).map_err(|e| format!("line {n}: {e}"))?),
            ("C:", _) => out.push(Exchange {
                line: n,
                command: rest.to_string(),
                file: file.take(),
                reply: Vec::new(),
                binary: None,
                webissued: None,
            }),
            ("S:", Some(e)) => e.reply.push(rest.to_string()),
            ("B:", Some(e)) => {
                e.binary = Some(literal(rest).map_err(|e| format!("line {n}: {e}"))?)
            }
            ("W:", Some(e)) => e
                .webissued
                .get_or_insert_with(Vec::new)
                .push(rest.to_string()),
            _ => return Err(format!("line {n}: unexpected {tag}")),
        }
    }
    Ok(out)
}

/// Positions (0-based, among the arguments) of the Unix times in a reply line.
fn time_fields(keyword: &str) -> &'static [usize] {
    match keyword {
        "I" | "H" => &[4, 6],
        "D" => &[3],
        _ => &[],
    }
}

/// The comparable form of a reply to `command`: times become `<time>`, HELLO's name and
/// uuid `<name>` `<uuid>`, GET SETTINGS' `Z` lines one `Z <zones>` line, and lines of one
/// group (a run of lines with the same keyword) are sorted.
pub fn normalise(command: &str, reply: &[String]) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for raw in reply {
        let Ok(t) = tokenize(Some(raw.as_bytes()), None) else {
            lines.push(raw.clone());
            continue;
        };
        if t.name == "Z" && command == "GET SETTINGS" {
            if lines.last().map(String::as_str) != Some("Z <zones>") {
                lines.push("Z <zones>".into());
            }
            continue;
        }
        let hello = command == "HELLO" && t.name == "S";
        let mut out = t.name.clone().into_bytes();
        for (i, a) in t.args.iter().enumerate() {
            out.push(b' ');
            match a {
                _ if time_fields(&t.name).contains(&i) => out.extend_from_slice(b"<time>"),
                _ if hello && i == 0 => out.extend_from_slice(b"<name>"),
                _ if hello && i == 1 => out.extend_from_slice(b"<uuid>"),
                Arg::Int(v) => out.extend_from_slice(v.to_string().as_bytes()),
                Arg::Str(s) => write_string(&mut out, s),
                Arg::File(_) => {}
            }
        }
        lines.push(String::from_utf8_lossy(&out).into_owned());
    }
    // Sort within each run of one keyword.
    let keyword = |l: &String| l.split(' ').next().unwrap_or("").to_string();
    let mut start = 0;
    while start < lines.len() {
        let k = keyword(&lines[start]);
        let end = (start..lines.len())
            .find(|&j| keyword(&lines[j]) != k)
            .unwrap_or(lines.len());
        lines[start..end].sort();
        start = end;
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcripts_parse_with_files_and_overrides() {
        let t = parse(
            "# c\nC: HELLO\nS: S 'n' 'u' '1.1.5'\n\nF: 'a\\nb'\nC: ADD ATTACHMENT 1 'x' ''\n\
             S: ID 8\nC: GET ATTACHMENT 8\nB: 'a\\nb'\nC: FIND ITEM 6\nS: ERROR 354 'Item Not Found'\nW: ID 1\n",
        )
        .unwrap();
        assert_eq!(t.len(), 4);
        assert_eq!(t[1].file.as_deref(), Some(&b"a\nb"[..]));
        assert_eq!(t[2].binary.as_deref(), Some(&b"a\nb"[..]));
        assert_eq!(t[3].webissued, Some(vec!["ID 1".to_string()]));
        assert!(parse("S: OK\n").is_err(), "a reply before any command");
    }

    #[test]
    fn normalising_hides_times_identity_and_group_order() {
        let a = normalise(
            "GET DETAILS 1 0 0",
            &[
                "I 1 1 'x' 8 100 2 200 2".into(),
                "H 7 1 1 7 100 2 100 2 0 'a' 'b' 0 0".into(),
                "H 1 1 0 1 100 2 100 2 0 '' 'a' 0 0".into(),
            ],
        );
        let b = normalise(
            "GET DETAILS 1 0 0",
            &[
                "I 1 1 'x' 8 300 2 400 2".into(),
                "H 1 1 0 1 300 2 300 2 0 '' 'a' 0 0".into(),
                "H 7 1 1 7 300 2 300 2 0 'a' 'b' 0 0".into(),
            ],
        );
        assert_eq!(a, b);
        assert_eq!(a[0], "I 1 1 'x' 8 <time> 2 <time> 2");
        // A different stamp or value still differs.
        let c = normalise("GET DETAILS 1 0 0", &["I 1 1 'x' 9 300 2 400 2".into()]);
        assert_ne!(a[0], c[0]);
        assert_eq!(
            normalise("HELLO", &["S 'A' 'b' '1.1.5'".into()]),
            ["S <name> <uuid> '1.1.5'"]
        );
        assert_eq!(
            normalise("GET SETTINGS", &["Z 'UTC' 0".into(), "Z 'X/Y' 60".into()]),
            ["Z <zones>"]
        );
    }
}
