//! The request bodies of the WebIssues HTTP transport: `multipart/form-data` (RFC 7578)
//! with a `command` part and, for uploads, a `file` part; or
//! `application/x-www-form-urlencoded` with a `command` field. Other fields are ignored.
//!
//! The body is already in memory (bounded by the transport), so parts are slices of it:
//! an uploaded file is not copied.

use bytes::Bytes;
use memchr::memmem;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Form {
    pub command: Option<Bytes>,
    pub file: Option<Bytes>,
}

/// Reads `body` as the form its `Content-Type` names; the error says what is wrong.
pub fn parse(content_type: Option<&str>, body: Bytes) -> Result<Form, String> {
    let ct = content_type.unwrap_or("");
    let (media, params) = ct.split_once(';').unwrap_or((ct, ""));
    match media.trim().to_ascii_lowercase().as_str() {
        "multipart/form-data" => {
            let boundary = param(params, "boundary").ok_or("multipart body without boundary")?;
            multipart(&boundary, body)
        }
        "application/x-www-form-urlencoded" => Ok(urlencoded(&body)),
        "" => Err("no Content-Type: send multipart/form-data".into()),
        other => Err(format!(
            "Content-Type {other} not understood: send multipart/form-data"
        )),
    }
}

/// A parameter of a header value (`; name=value` or `; name="value"`).
fn param(params: &str, name: &str) -> Option<String> {
    for p in params.split(';') {
        let Some((k, v)) = p.split_once('=') else {
            continue;
        };
        if k.trim().eq_ignore_ascii_case(name) {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            return Some(v.to_string());
        }
    }
    None
}

fn multipart(boundary: &str, body: Bytes) -> Result<Form, String> {
    if boundary.is_empty() || boundary.len() > 200 {
        return Err("multipart boundary empty or too long".into());
    }
    let delimiter = format!("--{boundary}");
    let next = format!("\r\n--{boundary}");
    let finder = memmem::Finder::new(next.as_bytes());
    // The first delimiter may come at the very start (no preamble) or after a preamble.
    let mut pos = if body.starts_with(delimiter.as_bytes()) {
        delimiter.len()
    } else {
        finder
            .find(&body)
            .map(|i| i + next.len())
            .ok_or("multipart body without its boundary")?
    };
    let mut form = Form::default();
    loop {
        // After a delimiter: `--` ends the body, else CRLF then the part's headers.
        let rest = &body[pos..];
        if rest.starts_with(b"--") {
            return Ok(form);
        }
        let after = skip_line_end(rest).ok_or("malformed multipart delimiter line")?;
        let start = pos + after;
        let head_end = memmem::find(&body[start..], b"\r\n\r\n")
            .map(|i| (i, 4))
            .or_else(|| memmem::find(&body[start..], b"\n\n").map(|i| (i, 2)))
            .or_else(|| body[start..].starts_with(b"\r\n").then_some((0, 2)))
            .ok_or("multipart part without the empty line after its headers")?;
        let headers = std::str::from_utf8(&body[start..start + head_end.0])
            .map_err(|_| "multipart part headers are not UTF-8")?;
        let content_start = start + head_end.0 + head_end.1;
        let content_len = finder
            .find(&body[content_start..])
            .ok_or("multipart part without a closing boundary")?;
        let content = body.slice(content_start..content_start + content_len);
        match part_name(headers).as_deref() {
            Some("command") if form.command.is_none() => form.command = Some(content),
            Some("file") if form.file.is_none() => form.file = Some(content),
            Some("command") | Some("file") => {
                return Err("a form field is sent twice: one command per request".into());
            }
            _ => {}
        }
        pos = content_start + content_len + next.len();
    }
}

/// The length of a leading line end (CRLF, or LF alone), allowing spaces before it.
fn skip_line_end(b: &[u8]) -> Option<usize> {
    let spaces = b.iter().take_while(|&&c| c == b' ' || c == b'\t').count();
    let rest = &b[spaces..];
    if rest.starts_with(b"\r\n") {
        Some(spaces + 2)
    } else if rest.starts_with(b"\n") {
        Some(spaces + 1)
    } else {
        None
    }
}

/// The `name` of a part's `Content-Disposition: form-data; name="…"` header.
fn part_name(headers: &str) -> Option<String> {
    headers.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        if !k.trim().eq_ignore_ascii_case("content-disposition") {
            return None;
        }
        let (_, params) = v.split_once(';')?;
        param(params, "name")
    })
}

fn urlencoded(body: &[u8]) -> Form {
    let mut form = Form::default();
    for pair in body.split(|&b| b == b'&') {
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        let slot = match percent_decode(k).as_slice() {
            b"command" => &mut form.command,
            b"file" => &mut form.file,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(Bytes::from(percent_decode(v)));
        }
    }
    form
}

/// `+` is a space and `%XX` a byte; a malformed escape stands for itself.
fn percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() && hex(s[i + 1]).is_some() && hex(s[i + 2]).is_some() => {
                out.push(hex(s[i + 1]).unwrap() * 16 + hex(s[i + 2]).unwrap());
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(s: &str) -> Bytes {
        Bytes::from(s.replace('\n', "\r\n"))
    }

    #[test]
    fn multipart_command_and_file() {
        let b = body(
            "--XyZ\nContent-Disposition: form-data; name=\"command\"\nContent-Type: text/plain; charset=US-ASCII\n\n\
             ADD ATTACHMENT 1 'a' ''\n--XyZ\nContent-Disposition: form-data; name=\"file\"; filename=\"file\"\n\
             Content-Type: application/octet-stream\n\nline1\nline2\n--XyZ--\n",
        );
        let f = parse(Some("multipart/form-data; boundary=XyZ"), b).unwrap();
        assert_eq!(f.command.unwrap(), &b"ADD ATTACHMENT 1 'a' ''"[..]);
        assert_eq!(f.file.unwrap(), &b"line1\r\nline2"[..]);
    }

    #[test]
    fn multipart_quoted_boundary_preamble_and_empty_part() {
        let b = body(
            "preamble\n--b\"c\nContent-Disposition: form-data; name=\"file\"\n\n\n--b\"c\n\
             content-disposition: form-data; name=command\n\nHELLO\n--b\"c--",
        );
        let f = parse(Some("Multipart/Form-Data; boundary=\"b\"c\""), b);
        // A quote inside a quoted boundary is not closed: the parameter is taken literally.
        assert!(f.is_err() || f.unwrap().command.is_some());
        let b = body(
            "--bc\nContent-Disposition: form-data; name=\"file\"\n\n\n--bc\n\
             content-disposition: form-data; name=command\n\nHELLO\n--bc--",
        );
        let f = parse(Some("multipart/form-data; boundary=\"bc\""), b).unwrap();
        assert_eq!(f.command.unwrap(), &b"HELLO"[..]);
        assert_eq!(f.file.unwrap(), &b""[..]);
    }

    #[test]
    fn malformed_bodies_are_errors() {
        let ct = Some("multipart/form-data; boundary=X");
        assert!(parse(ct, body("no boundary here")).is_err());
        assert!(
            parse(
                ct,
                body("--X\nContent-Disposition: form-data; name=\"command\"\n\nHELLO")
            )
            .is_err()
        );
        assert!(parse(Some("multipart/form-data"), body("")).is_err());
        assert!(parse(Some("text/plain"), body("HELLO")).is_err());
        assert!(parse(None, body("HELLO")).is_err());
        let twice = body(
            "--X\nContent-Disposition: form-data; name=\"command\"\n\nHELLO\n--X\n\
             Content-Disposition: form-data; name=\"command\"\n\nQUIT\n--X--\n",
        );
        assert!(parse(ct, twice).is_err());
    }

    proptest::proptest! {
        /// Any body parses or is refused, never panics; a form built by the rules parses
        /// back to its command and file, whatever bytes the file holds.
        #[test]
        fn never_panics_and_round_trips(
            junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            command in "[ -~]{0,60}",
            file in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        ) {
            let _ = parse(Some("multipart/form-data; boundary=b"), Bytes::from(junk.clone()));
            let _ = parse(Some("application/x-www-form-urlencoded"), Bytes::from(junk));
            let boundary = "----b0undary";
            let mut body = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"command\"\r\n\r\n{command}\r\n\
                 --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"file\"\r\n\r\n"
            )
            .into_bytes();
            body.extend_from_slice(&file);
            body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            if !file.windows(boundary.len()).any(|w| w == boundary.as_bytes()) {
                let f = parse(Some(&format!("multipart/form-data; boundary={boundary}")), Bytes::from(body)).unwrap();
                proptest::prop_assert_eq!(f.command.unwrap(), Bytes::from(command));
                proptest::prop_assert_eq!(f.file.unwrap(), Bytes::from(file));
            }
        }
    }

    #[test]
    fn urlencoded_command() {
        let f = parse(
            Some("application/x-www-form-urlencoded"),
            Bytes::from_static(b"x=1&command=LOGIN+%27admin%27+%27p%26w%27&command=QUIT&bad=%zz"),
        )
        .unwrap();
        assert_eq!(f.command.unwrap(), &b"LOGIN 'admin' 'p&w'"[..]);
        assert_eq!(percent_decode(b"%zz%4"), b"%zz%4");
    }
}
