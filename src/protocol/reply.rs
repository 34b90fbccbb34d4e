//! Replies and their encoding: every reply is one or more CRLF lines and ends with an empty
//! line, so "read until the empty line" frames it (protocol-spec/framing.md).

use super::token::{Arg, write_arg};
use crate::error::Error;
use bytes::Bytes;

/// One data line: a keyword and its arguments, e.g. `U 1 'admin' 'Administrator' 2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub keyword: &'static str,
    pub args: Vec<Arg>,
}

impl Line {
    pub fn new(keyword: &'static str) -> Self {
        Line {
            keyword,
            args: Vec::new(),
        }
    }

    pub fn int(mut self, i: impl Into<i64>) -> Self {
        self.args.push(Arg::Int(i.into()));
        self
    }

    pub fn str(mut self, s: impl Into<String>) -> Self {
        self.args.push(Arg::Str(s.into()));
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Success with nothing to list.
    Null,
    Ok,
    Id(i64),
    Error(Error),
    /// Data lines; an empty list is sent as `NULL`.
    Lines(Vec<Line>),
    /// Data lines already encoded, each ending in CRLF; empty is sent as `NULL`.
    Encoded(Vec<u8>),
    /// Raw bytes (GET ATTACHMENT): `DATA size`, CRLF, the bytes, CRLF, then the empty line.
    Data(Bytes),
    /// Raw bytes sent from an open file, in the wire form of [`Reply::Data`]: the
    /// connection streams them, so a large attachment is never held in memory whole.
    File(FileBody),
}

/// An open file and how many of its bytes a [`Reply::File`] sends.
#[derive(Debug, Clone)]
pub struct FileBody {
    pub file: std::sync::Arc<std::fs::File>,
    pub size: u64,
    /// Its place among the files streamed at once (crate::fdlimit), given back with it.
    pub permit: Option<std::sync::Arc<tokio::sync::OwnedSemaphorePermit>>,
}

impl PartialEq for FileBody {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.file, &other.file) && self.size == other.size
    }
}

impl Eq for FileBody {}

impl FileBody {
    /// The `DATA n` line that comes before the bytes.
    pub fn header(&self) -> Vec<u8> {
        format!("DATA {}\r\n", self.size).into_bytes()
    }

    /// What comes after the bytes: their CRLF and the reply's empty line.
    pub const TRAILER: &'static [u8] = b"\r\n\r\n";
}

impl From<Error> for Reply {
    fn from(e: Error) -> Self {
        Reply::Error(e)
    }
}

/// Writes one data line straight into a reply buffer, without a [`Line`] and its
/// per-field allocations (hot commands build [`Reply::Encoded`] with it).
pub struct LineOut<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> LineOut<'a> {
    pub fn new(out: &'a mut Vec<u8>, keyword: &str) -> Self {
        out.extend_from_slice(keyword.as_bytes());
        LineOut { out }
    }

    pub fn int(self, i: impl Into<i64>) -> Self {
        self.out.push(b' ');
        super::token::write_int(self.out, i.into());
        self
    }

    pub fn str(self, s: &str) -> Self {
        self.out.push(b' ');
        super::token::write_string(self.out, s);
        self
    }

    /// Ends the line (CRLF).
    pub fn end(self) {
        self.out.extend_from_slice(b"\r\n");
    }
}

impl Line {
    /// Appends the line's wire form, CRLF included.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.keyword.as_bytes());
        for arg in &self.args {
            out.push(b' ');
            write_arg(out, arg);
        }
        out.extend_from_slice(b"\r\n");
    }
}

impl Reply {
    /// Appends the wire form of the reply, including the closing empty line.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Null => out.extend_from_slice(b"NULL\r\n"),
            Reply::Ok => out.extend_from_slice(b"OK\r\n"),
            Reply::Id(id) => {
                out.extend_from_slice(b"ID ");
                write_arg(out, &Arg::Int(*id));
                out.extend_from_slice(b"\r\n");
            }
            Reply::Error(e) => {
                out.extend_from_slice(b"ERROR ");
                out.extend_from_slice(e.code.number().to_string().as_bytes());
                out.push(b' ');
                write_arg(out, &Arg::Str(e.message()));
                out.extend_from_slice(b"\r\n");
            }
            Reply::Lines(lines) if lines.is_empty() => out.extend_from_slice(b"NULL\r\n"),
            Reply::Lines(lines) => lines.iter().for_each(|l| l.encode(out)),
            Reply::Encoded(lines) if lines.is_empty() => out.extend_from_slice(b"NULL\r\n"),
            Reply::Encoded(lines) => out.extend_from_slice(lines),
            Reply::Data(bytes) => {
                out.extend_from_slice(format!("DATA {}\r\n", bytes.len()).as_bytes());
                out.extend_from_slice(bytes);
                out.extend_from_slice(b"\r\n");
            }
            Reply::File(body) => {
                // Whole, in memory: only for callers that encode replies to bytes; the
                // connection streams files instead.
                use std::os::unix::fs::FileExt;
                out.extend_from_slice(&body.header());
                let start = out.len();
                out.resize(start + body.size as usize, 0);
                if body.file.read_exact_at(&mut out[start..], 0).is_err() {
                    out.truncate(start); // the file changed under us: framing is lost anyway
                }
                out.extend_from_slice(b"\r\n");
            }
        }
        out.extend_from_slice(b"\r\n");
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;
    use crate::protocol::token;
    use proptest::prelude::*;

    #[test]
    fn simple_replies() {
        assert_eq!(Reply::Ok.to_bytes(), b"OK\r\n\r\n");
        assert_eq!(Reply::Id(7).to_bytes(), b"ID 7\r\n\r\n");
        assert_eq!(Reply::Lines(vec![]).to_bytes(), b"NULL\r\n\r\n");
        assert_eq!(
            Reply::Error(Error::new(Code::LoginRequired)).to_bytes(),
            b"ERROR 300 'Login Required'\r\n\r\n"
        );
    }

    #[test]
    fn lines_are_escaped() {
        let r = Reply::Lines(vec![
            Line::new("U")
                .int(1)
                .str("admin")
                .str("It's \\ a\nb")
                .int(2),
            Line::new("M").int(2).int(1).int(1),
        ]);
        assert_eq!(
            r.to_bytes(),
            b"U 1 'admin' 'It\\'s \\\\ a\\nb' 2\r\nM 2 1 1\r\n\r\n".to_vec()
        );
    }

    #[test]
    fn line_out_writes_what_line_encodes() {
        let line = Line::new("H").int(7).int(-1).str("It's \\ a\nb").str("");
        let mut a = Vec::new();
        line.encode(&mut a);
        let mut b = Vec::new();
        LineOut::new(&mut b, "H")
            .int(7)
            .int(-1)
            .str("It's \\ a\nb")
            .str("")
            .end();
        assert_eq!(a, b);
        assert_eq!(Reply::Encoded(Vec::new()).to_bytes(), b"NULL\r\n\r\n");
        assert_eq!(
            Reply::Encoded(b).to_bytes(),
            Reply::Lines(vec![line]).to_bytes()
        );
    }

    #[test]
    fn data_reply_announces_its_size() {
        let r = Reply::Data(Bytes::from_static(b"a\r\n\r\nb"));
        assert_eq!(r.to_bytes(), b"DATA 6\r\na\r\n\r\nb\r\n\r\n".to_vec());
    }

    proptest! {
        /// A reply line parses back (as a command line) into the same arguments, and no
        /// reply line is ever empty.
        #[test]
        fn reply_lines_round_trip(
            ints in proptest::collection::vec(any::<i32>(), 0..3),
            strs in proptest::collection::vec("[^\\x00-\\x08\\x0b-\\x1f\\x7f]{0,20}", 0..3),
        ) {
            let mut line = Line::new("X");
            for i in &ints { line = line.int(*i); }
            for s in &strs { line = line.str(s.clone()); }
            let bytes = Reply::Lines(vec![line.clone()]).to_bytes();
            let text = std::str::from_utf8(&bytes).unwrap();
            let first = text.strip_suffix("\r\n\r\n").unwrap();
            prop_assert!(!first.contains("\r\n"));
            let t = token::line(first).unwrap();
            prop_assert_eq!(t.args, line.args);
        }
    }
}
