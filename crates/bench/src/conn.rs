//! A client connection for load generation: buffered writes of whole command lines, and
//! reply framing for both webissued (lines up to the empty line) and Redis (RESP), so one
//! client measures both servers the same way.

use bytes::BytesMut;
use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    WebIssues,
    Redis,
    /// WebIssues over HTTP (protocol-spec/http.md): one keep-alive POST per command.
    Http,
}

pub struct Conn {
    stream: TcpStream,
    dialect: Dialect,
    rbuf: BytesMut,
    /// Bytes of `rbuf` known to hold no reply end, so long replies are scanned once.
    scanned: usize,
    /// Commands queued by [`Conn::push`], sent by [`Conn::flush`].
    pub wbuf: Vec<u8>,
    /// HTTP: the session cookie, and the requests made from `wbuf`.
    cookie: Option<String>,
    requests: Vec<u8>,
}

/// One framed reply.
#[derive(Debug)]
pub struct ReplyBytes {
    /// The reply without its framing (webissued: lines joined by CRLF, no closing empty line).
    pub body: BytesMut,
    pub error: bool,
}

impl ReplyBytes {
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or("")
    }

    /// The reply's lines (webissued).
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.text().split("\r\n").filter(|l| !l.is_empty())
    }

    /// The id of an `ID n` reply.
    pub fn id(&self) -> Option<i64> {
        self.text().strip_prefix("ID ")?.trim().parse().ok()
    }
}

impl Conn {
    pub async fn connect(addr: &str, dialect: Dialect) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            dialect,
            rbuf: BytesMut::with_capacity(16 * 1024),
            scanned: 0,
            wbuf: Vec::with_capacity(4 * 1024),
            cookie: None,
            requests: Vec::new(),
        })
    }

    /// Queues one command line (the line ending is added here).
    pub fn push(&mut self, line: &[u8]) {
        self.wbuf.extend_from_slice(line);
        self.wbuf.extend_from_slice(b"\r\n");
    }

    pub async fn flush(&mut self) -> io::Result<()> {
        if self.dialect == Dialect::Http && !self.wbuf.is_empty() {
            self.requests.clear();
            super::http::requests(&self.wbuf, self.cookie.as_deref(), &mut self.requests);
            self.stream.write_all(&self.requests).await?;
            self.wbuf.clear();
        } else if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Takes one complete reply from the buffer, if there is one.
    pub fn try_reply(&mut self) -> io::Result<Option<ReplyBytes>> {
        match self.dialect {
            Dialect::WebIssues => Ok(webissues_reply(&mut self.rbuf, &mut self.scanned)),
            Dialect::Redis => resp_reply(&mut self.rbuf),
            Dialect::Http => super::http::reply(&mut self.rbuf, &mut self.cookie),
        }
    }

    /// Reads more bytes from the socket; an EOF is an error (a reply was still expected).
    pub async fn fill(&mut self) -> io::Result<()> {
        self.rbuf.reserve(16 * 1024);
        if self.stream.read_buf(&mut self.rbuf).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        Ok(())
    }

    /// Waits for the next reply.
    pub async fn reply(&mut self) -> io::Result<ReplyBytes> {
        loop {
            if let Some(r) = self.try_reply()? {
                return Ok(r);
            }
            self.fill().await?;
        }
    }

    /// Sends one command and waits for its reply.
    pub async fn call(&mut self, line: &[u8]) -> io::Result<ReplyBytes> {
        self.push(line);
        self.flush().await?;
        self.reply().await
    }

    /// Logs in; fails unless the server answers `USER …`.
    pub async fn login(&mut self, login: &str, password: &str) -> io::Result<()> {
        let mut line = b"LOGIN ".to_vec();
        webissued::protocol::token::write_string(&mut line, login);
        line.push(b' ');
        webissued::protocol::token::write_string(&mut line, password);
        let mut r = self.call(&line).await?;
        // The server runs few password checks at once (`[limits] login_pending_*`): many
        // connections logging in together are told to retry.
        for _ in 0..60 {
            if !r.text().contains("logins in progress") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            r = self.call(&line).await?;
        }
        if r.text().starts_with("USER ") {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "LOGIN {login} answered {}",
                r.text()
            )))
        }
    }

    /// Sends `cmds` keeping at most `depth` in flight, and returns the replies in order.
    pub async fn pipeline(
        &mut self,
        cmds: impl IntoIterator<Item = Vec<u8>>,
        depth: usize,
    ) -> io::Result<Vec<ReplyBytes>> {
        let mut cmds = cmds.into_iter().peekable();
        let mut out = Vec::new();
        let mut inflight = 0;
        while cmds.peek().is_some() || inflight > 0 {
            while inflight < depth.max(1)
                && let Some(c) = cmds.next()
            {
                self.push(&c);
                inflight += 1;
            }
            self.flush().await?;
            out.push(self.reply().await?);
            inflight -= 1;
            while inflight > 0
                && let Some(r) = self.try_reply()?
            {
                out.push(r);
                inflight -= 1;
            }
        }
        Ok(out)
    }
}

/// A webissued reply ends with an empty line; no reply line is empty, so the first
/// `\n\r\n` in the buffer ends the first reply (found with memchr's vector search: the
/// client shares the machine's two cores with the server, and LIST PROJECTS replies run to
/// kilobytes).
fn webissues_reply(buf: &mut BytesMut, scanned: &mut usize) -> Option<ReplyBytes> {
    static END: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\n\r\n"));
    let Some(end) = END.find(&buf[*scanned..]).map(|i| *scanned + i) else {
        // The last two bytes may start an end that the next read completes.
        *scanned = buf.len().saturating_sub(2);
        return None;
    };
    *scanned = 0;
    let mut body = buf.split_to(end + 3);
    body.truncate(end.saturating_sub(1));
    let error = body.starts_with(b"ERROR ");
    Some(ReplyBytes { body, error })
}

/// A RESP reply: `+`/`-`/`:` lines, `$n` bulk strings (`$-1` nil) and `*n` arrays of those.
fn resp_reply(buf: &mut BytesMut) -> io::Result<Option<ReplyBytes>> {
    let Some(len) = resp_len(buf, 0)? else {
        return Ok(None);
    };
    let body = buf.split_to(len);
    let error = body.first() == Some(&b'-');
    Ok(Some(ReplyBytes { body, error }))
}

/// The length of the RESP value starting at `at`, when it is complete.
fn resp_len(buf: &[u8], at: usize) -> io::Result<Option<usize>> {
    let Some(nl) = buf[at..].iter().position(|&b| b == b'\n') else {
        return Ok(None);
    };
    let line_end = at + nl + 1;
    let head = &buf[at..line_end];
    let number = || -> io::Result<i64> {
        std::str::from_utf8(&head[1..])
            .ok()
            .and_then(|s| s.trim_end().parse().ok())
            .ok_or_else(|| io::Error::other("malformed RESP length"))
    };
    match head.first() {
        Some(b'+' | b'-' | b':') => Ok(Some(line_end - at)),
        Some(b'$') => {
            let n = number()?;
            if n < 0 {
                return Ok(Some(line_end - at));
            }
            let end = line_end + n as usize + 2;
            Ok((buf.len() >= end).then_some(end - at))
        }
        Some(b'*') => {
            let mut pos = line_end;
            for _ in 0..number()?.max(0) {
                match resp_len(buf, pos)? {
                    Some(n) => pos += n,
                    None => return Ok(None),
                }
            }
            Ok(Some(pos - at))
        }
        _ => Err(io::Error::other("unexpected RESP reply")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webissues_framing() {
        let mut b = BytesMut::from(
            &b"OK\r\n\r\nP 1 'a'\r\nF 2 1 'b' 1 0\r\n\r\nERROR 300 'x'\r\n\r\nID"[..],
        );
        let s = &mut 0;
        let r = webissues_reply(&mut b, s).unwrap();
        assert_eq!(r.text(), "OK");
        let r = webissues_reply(&mut b, s).unwrap();
        assert_eq!(r.lines().collect::<Vec<_>>(), ["P 1 'a'", "F 2 1 'b' 1 0"]);
        assert!(webissues_reply(&mut b, s).unwrap().error);
        assert!(webissues_reply(&mut b, s).is_none());
        assert_eq!(&b[..], b"ID");
        // A reply end split across reads is still found.
        b.extend_from_slice(b" 5\r\n\r");
        assert!(webissues_reply(&mut b, s).is_none());
        b.extend_from_slice(b"\n");
        assert_eq!(webissues_reply(&mut b, s).unwrap().id(), Some(5));
    }

    #[test]
    fn resp_framing() {
        let mut b = BytesMut::from(
            &b"+OK\r\n$3\r\nabc\r\n$-1\r\n-ERR x\r\n*2\r\n$1\r\na\r\n:5\r\n$4\r\nab"[..],
        );
        assert_eq!(resp_reply(&mut b).unwrap().unwrap().text(), "+OK\r\n");
        assert_eq!(resp_reply(&mut b).unwrap().unwrap().text(), "$3\r\nabc\r\n");
        assert_eq!(resp_reply(&mut b).unwrap().unwrap().text(), "$-1\r\n");
        assert!(resp_reply(&mut b).unwrap().unwrap().error);
        assert_eq!(
            resp_reply(&mut b).unwrap().unwrap().text(),
            "*2\r\n$1\r\na\r\n:5\r\n"
        );
        assert!(resp_reply(&mut b).unwrap().is_none());
    }
}
