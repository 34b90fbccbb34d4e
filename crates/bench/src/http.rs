//! The HTTP transport for the load generator: each queued command line becomes one
//! keep-alive `POST /` with a multipart `command` part (as WebIssues clients send it), and
//! each response is framed by its `Content-Length`; `Set-Cookie` keeps the session.

use super::conn::ReplyBytes;
use bytes::BytesMut;
use memchr::memmem;
use std::io;

const BOUNDARY: &str = "benchBoundary0123456789";

/// Turns `lines` (command lines, each ending CRLF) into requests appended to `out`.
pub fn requests(lines: &[u8], cookie: Option<&str>, out: &mut Vec<u8>) {
    for line in lines.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let head =
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"command\"\r\n\r\n");
        let tail = format!("\r\n--{BOUNDARY}--\r\n");
        let len = head.len() + line.len() + tail.len();
        out.extend_from_slice(b"POST / HTTP/1.1\r\nHost: bench\r\n");
        if let Some(c) = cookie {
            out.extend_from_slice(b"Cookie: WebIssuesSID=");
            out.extend_from_slice(c.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(
            format!(
                "Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len}\r\n\r\n"
            )
            .as_bytes(),
        );
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(line);
        out.extend_from_slice(tail.as_bytes());
    }
}

/// Takes one complete response from `buf`: its body as the reply (lines without the
/// trailing CRLF), noting a session cookie it sets.
pub fn reply(buf: &mut BytesMut, cookie: &mut Option<String>) -> io::Result<Option<ReplyBytes>> {
    let Some(end) = memmem::find(buf, b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| io::Error::other("bad header"))?;
    let mut len = None;
    let status_ok = head.starts_with("HTTP/1.1 200");
    let mut set = None;
    for line in head.split("\r\n").skip(1) {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("content-length") {
            len = v.parse::<usize>().ok();
        } else if k.eq_ignore_ascii_case("set-cookie") {
            set = v
                .split(';')
                .next()
                .and_then(|p| p.strip_prefix("WebIssuesSID="))
                .map(str::to_string);
        }
    }
    let len = len.ok_or_else(|| io::Error::other("response without Content-Length"))?;
    if buf.len() < end + 4 + len {
        return Ok(None);
    }
    if let Some(s) = set {
        *cookie = (!s.is_empty()).then_some(s);
    }
    let _ = buf.split_to(end + 4);
    let mut body = buf.split_to(len);
    if body.ends_with(b"\r\n") {
        body.truncate(len - 2);
    }
    let error = !status_ok || body.starts_with(b"ERROR ");
    Ok(Some(ReplyBytes { body, error }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies() {
        let mut out = Vec::new();
        requests(b"HELLO\r\nLIST PROJECTS\r\n", Some("ab"), &mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("POST / HTTP/1.1").count(), 2);
        assert!(text.contains("Cookie: WebIssuesSID=ab\r\n"));
        assert!(text.contains("\r\n\r\nLIST PROJECTS\r\n--"));
        let mut b = BytesMut::from(
            &b"HTTP/1.1 200 OK\r\nset-cookie: WebIssuesSID=xy; Path=/\r\ncontent-length: 10\r\n\r\nUSER 1 2\r\nHTTP/1.1 200 OK\r\ncontent-length: 4"[..],
        );
        let mut cookie = None;
        let r = reply(&mut b, &mut cookie).unwrap().unwrap();
        assert_eq!(r.text(), "USER 1 2");
        assert_eq!(cookie.as_deref(), Some("xy"));
        assert!(reply(&mut b, &mut cookie).unwrap().is_none());
        b.extend_from_slice(b"\r\n\r\nOK\r\n");
        assert_eq!(reply(&mut b, &mut cookie).unwrap().unwrap().text(), "OK");
    }
}
