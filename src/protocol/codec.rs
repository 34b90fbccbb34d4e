//! Framing: splits the byte stream into command lines (LF or CRLF), enforces the line
//! limit, and reads byte-count literals (`... {size}` then `size` raw bytes) for uploads.
//!
//! An over-long line is skipped to its end and reported once as [`Frame::TooLong`], so the
//! connection stays usable and pipelined commands after it keep their order.
//!
//! A gated codec ([`LineCodec::gated`]) does not buffer a literal on its own: it reports the
//! announcing line as [`Frame::Literal`] and reads the bytes only once the caller accepts
//! them, so a literal the server would refuse (before LOGIN, on a command that takes none,
//! over the memory budget) is skipped without ever being held in memory.

use super::reply::Reply;
use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A command line without its line ending.
    Line(Bytes),
    /// A command line that announced a literal, and the literal's bytes.
    WithData(Bytes, Bytes),
    /// A line longer than the limit (skipped).
    TooLong,
    /// A literal larger than the limit (its bytes were skipped); carries the announced size.
    DataTooLarge(u64),
    /// Gated codecs only: a line announcing a literal of this many bytes (within the
    /// limit), none of them read yet. The caller answers with
    /// [`LineCodec::accept_literal`] or [`LineCodec::refuse_literal`] before decoding on.
    Literal(Bytes, u64),
}

#[derive(Debug)]
enum State {
    /// Looking for the end of a line; `scanned` bytes are known to hold no LF.
    Line { scanned: usize, skipping: bool },
    /// A literal announced by `line` awaits the caller's decision (gated codecs).
    Pending { line: Bytes, size: u64 },
    /// Reading `remaining` literal bytes after `line`.
    Data { line: Bytes, remaining: usize },
    /// Discarding `remaining` bytes of a literal; `report`: answer [`Frame::DataTooLarge`]
    /// at its end (a refused literal was answered when it was announced).
    Discard {
        remaining: u64,
        size: u64,
        report: bool,
    },
}

#[derive(Debug)]
pub struct LineCodec {
    max_line: usize,
    max_data: u64,
    gated: bool,
    state: State,
}

impl LineCodec {
    pub fn new(max_line: usize, max_data: u64) -> Self {
        LineCodec {
            max_line,
            max_data,
            gated: false,
            state: State::Line {
                scanned: 0,
                skipping: false,
            },
        }
    }

    /// Reports each literal within the limit as [`Frame::Literal`] instead of reading it.
    pub fn gated(mut self) -> Self {
        self.gated = true;
        self
    }

    /// Reads the pending literal's bytes; its line then comes as [`Frame::WithData`].
    pub fn accept_literal(&mut self) {
        if let State::Pending { line, size } = &mut self.state {
            let line = std::mem::take(line);
            self.state = State::Data {
                line,
                remaining: *size as usize,
            };
        }
    }

    /// Skips the pending literal's bytes without keeping them; no frame reports its end.
    pub fn refuse_literal(&mut self) {
        if let State::Pending { size, .. } = self.state {
            self.state = State::Discard {
                remaining: size,
                size,
                report: false,
            };
        }
    }

    /// Whether the codec is part-way through a frame (a started line or literal).
    pub fn mid_frame(&self, buf: &BytesMut) -> bool {
        self.progress(buf) != Progress::Idle
    }

    /// What the codec is in the middle of, for the connection's time limits.
    pub fn progress(&self, buf: &BytesMut) -> Progress {
        match self.state {
            State::Line { skipping, .. } if skipping || !buf.is_empty() => Progress::Line,
            State::Line { .. } => Progress::Idle,
            State::Pending { size, .. } => Progress::Literal(size),
            State::Data { remaining, .. } => {
                Progress::Literal(remaining.saturating_sub(buf.len()) as u64)
            }
            State::Discard { remaining, .. } => Progress::Literal(remaining),
        }
    }
}

/// Where the codec is between reads (see [`LineCodec::progress`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Between frames, nothing buffered.
    Idle,
    /// Part of a command line has arrived (or an over-long one is being skipped).
    Line,
    /// A literal is being read; carries the bytes still to come, which shrink as it moves.
    Literal(u64),
}

/// Finds a trailing ` {digits}` literal marker, returning the line before it and the size.
pub fn literal_marker(line: &[u8]) -> Option<(usize, u64)> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if open == 0 || line[open - 1] != b' ' {
        return None;
    }
    let size = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some((open - 1, size))
}

impl Decoder for LineCodec {
    type Item = Frame;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, Self::Error> {
        loop {
            match &mut self.state {
                State::Line { scanned, skipping } => {
                    let Some(pos) = buf[*scanned..].iter().position(|&b| b == b'\n') else {
                        // `max_line + 1`: a line of exactly `max_line` bytes may have its
                        // CR here and its LF in the next read; it is not too long yet.
                        if buf.len() > self.max_line + 1 {
                            // Keep nothing of an over-long line; report it at its end.
                            buf.clear();
                            *skipping = true;
                            *scanned = 0;
                        } else {
                            *scanned = buf.len();
                        }
                        return Ok(None);
                    };
                    let end = *scanned + pos;
                    let was_skipping = *skipping;
                    self.state = State::Line {
                        scanned: 0,
                        skipping: false,
                    };
                    let mut line = buf.split_to(end + 1).freeze();
                    line.truncate(end);
                    if line.last() == Some(&b'\r') {
                        line.truncate(end - 1);
                    }
                    if was_skipping || line.len() > self.max_line {
                        return Ok(Some(Frame::TooLong));
                    }
                    if line.is_empty() {
                        continue; // blank lines are ignored: telnet users press Enter
                    }
                    match literal_marker(&line) {
                        None => return Ok(Some(Frame::Line(line))),
                        Some((cut, size)) => {
                            line.truncate(cut);
                            if size > self.max_data {
                                self.state = State::Discard {
                                    remaining: size,
                                    size,
                                    report: true,
                                };
                            } else if self.gated {
                                self.state = State::Pending {
                                    line: line.clone(),
                                    size,
                                };
                                return Ok(Some(Frame::Literal(line, size)));
                            } else {
                                let remaining = size as usize;
                                self.state = State::Data { line, remaining };
                            }
                        }
                    }
                }
                // Not answered: the safe default is not to buffer it.
                State::Pending { .. } => self.refuse_literal(),
                State::Data { line, remaining } => {
                    if buf.len() < *remaining {
                        // Room for the whole literal, so it is read in place.
                        buf.reserve(*remaining - buf.len());
                        return Ok(None);
                    }
                    let data = buf.split_to(*remaining).freeze();
                    let line = std::mem::take(line);
                    self.state = State::Line {
                        scanned: 0,
                        skipping: false,
                    };
                    return Ok(Some(Frame::WithData(line, data)));
                }
                State::Discard {
                    remaining,
                    size,
                    report,
                } => {
                    let n = (*remaining).min(buf.len() as u64);
                    buf.advance(n as usize);
                    *remaining -= n;
                    if *remaining > 0 {
                        return Ok(None);
                    }
                    let (size, report) = (*size, *report);
                    self.state = State::Line {
                        scanned: 0,
                        skipping: false,
                    };
                    if report {
                        return Ok(Some(Frame::DataTooLarge(size)));
                    }
                }
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, Self::Error> {
        if let Some(frame) = self.decode(buf)? {
            return Ok(Some(frame));
        }
        // A last line without a line ending (e.g. `printf 'HELLO' | nc`) still counts.
        if let State::Line { skipping, .. } = self.state {
            if skipping {
                // The rest of the buffer is the tail of the over-long line, not a command.
                buf.clear();
                self.state = State::Line {
                    scanned: 0,
                    skipping: false,
                };
                return Ok(Some(Frame::TooLong));
            }
            if !buf.is_empty() {
                buf.extend_from_slice(b"\n");
                return self.decode(buf);
            }
        }
        Ok(None)
    }
}

impl Encoder<Reply> for LineCodec {
    type Error = std::io::Error;

    fn encode(&mut self, reply: Reply, dst: &mut BytesMut) -> Result<(), Self::Error> {
        let mut out = Vec::new();
        reply.encode(&mut out);
        dst.extend_from_slice(&out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frames(codec: &mut LineCodec, input: &[u8]) -> Vec<Frame> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(f) = codec.decode(&mut buf).unwrap() {
            out.push(f);
        }
        out
    }

    fn line(s: &str) -> Frame {
        Frame::Line(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn lf_crlf_and_blank_lines() {
        let mut c = LineCodec::new(100, 100);
        assert_eq!(
            frames(&mut c, b"HELLO\r\n\r\nLIST USERS\nQUI"),
            vec![line("HELLO"), line("LIST USERS")]
        );
    }

    #[test]
    fn too_long_line_is_skipped_and_reported_once() {
        let mut c = LineCodec::new(10, 100);
        let mut buf = BytesMut::from(&b"AAAAAAAAAAAAAAAAAAAA"[..]);
        assert_eq!(c.decode(&mut buf).unwrap(), None);
        assert!(buf.is_empty(), "an over-long line is not buffered");
        buf.extend_from_slice(b"BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB\nHELLO\n");
        assert_eq!(c.decode(&mut buf).unwrap(), Some(Frame::TooLong));
        assert_eq!(c.decode(&mut buf).unwrap(), Some(line("HELLO")));
    }

    /// Found with the codec fuzz check: a line of exactly the limit whose CR and LF arrive
    /// in different reads was reported too long.
    #[test]
    fn line_at_the_limit_with_crlf_split_across_reads() {
        let mut c = LineCodec::new(4, 100);
        let mut buf = BytesMut::from(&b"AAAA\r"[..]);
        assert_eq!(c.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"\n");
        assert_eq!(c.decode(&mut buf).unwrap(), Some(line("AAAA")));
    }

    /// Found by the codec fuzz target: at EOF, the tail of an over-long line (bytes that
    /// arrived after the codec began skipping it) was decoded as one more command.
    #[test]
    fn tail_of_an_over_long_line_at_eof_is_not_a_command() {
        let mut c = LineCodec::new(4, 100);
        let mut buf = BytesMut::from(&b"AAAAAAAAAA"[..]);
        assert_eq!(c.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"QUIT");
        assert_eq!(c.decode(&mut buf).unwrap(), None);
        assert_eq!(c.decode_eof(&mut buf).unwrap(), Some(Frame::TooLong));
        assert_eq!(c.decode_eof(&mut buf).unwrap(), None);
    }

    #[test]
    fn literal_is_read_by_count() {
        let mut c = LineCodec::new(100, 100);
        let got = frames(
            &mut c,
            b"ADD ATTACHMENT 1 'a' 'b' {7}\na\r\n\r\nbc\nHELLO\n",
        );
        assert_eq!(
            got,
            vec![
                Frame::WithData(
                    Bytes::from_static(b"ADD ATTACHMENT 1 'a' 'b'"),
                    Bytes::from_static(b"a\r\n\r\nbc")
                ),
                line("HELLO")
            ]
        );
    }

    #[test]
    fn literal_over_limit_is_discarded() {
        let mut c = LineCodec::new(100, 4);
        let got = frames(&mut c, b"ADD ATTACHMENT 1 'a' 'b' {6}\nabcdef\nHELLO\n");
        assert_eq!(got, vec![Frame::DataTooLarge(6), line("HELLO")]);
    }

    #[test]
    fn braces_inside_strings_are_not_literals() {
        let mut c = LineCodec::new(100, 100);
        assert_eq!(
            frames(&mut c, b"ADD COMMENT 1 'x {3}'\n"),
            vec![line("ADD COMMENT 1 'x {3}'")]
        );
    }

    #[test]
    fn last_line_without_newline_at_eof() {
        let mut c = LineCodec::new(100, 100);
        let mut buf = BytesMut::from(&b"HELLO"[..]);
        assert_eq!(c.decode(&mut buf).unwrap(), None);
        assert_eq!(c.decode_eof(&mut buf).unwrap(), Some(line("HELLO")));
    }

    /// Decodes with a gated codec, accepting literals of an even size and refusing others.
    fn gated_frames(c: &mut LineCodec, buf: &mut BytesMut, out: &mut Vec<Frame>) {
        while let Some(f) = c.decode(buf).unwrap() {
            if let Frame::Literal(_, size) = f {
                if size % 2 == 0 {
                    c.accept_literal();
                } else {
                    c.refuse_literal();
                }
            }
            out.push(f);
        }
    }

    #[test]
    fn gated_literal_is_announced_before_its_bytes_are_read() {
        let mut c = LineCodec::new(100, 100).gated();
        let mut buf = BytesMut::from(
            &b"ADD ATTACHMENT 1 'a' '' {4}
ab"[..],
        );
        assert_eq!(
            c.decode(&mut buf).unwrap(),
            Some(Frame::Literal(
                Bytes::from_static(b"ADD ATTACHMENT 1 'a' ''"),
                4
            ))
        );
        assert_eq!(&buf[..], b"ab", "nothing of the literal is consumed yet");
        c.accept_literal();
        assert_eq!(c.decode(&mut buf).unwrap(), None);
        assert_eq!(c.progress(&buf), Progress::Literal(2));
        buf.extend_from_slice(
            b"cdHELLO
",
        );
        assert_eq!(
            c.decode(&mut buf).unwrap(),
            Some(Frame::WithData(
                Bytes::from_static(b"ADD ATTACHMENT 1 'a' ''"),
                Bytes::from_static(b"abcd")
            ))
        );
        assert_eq!(c.decode(&mut buf).unwrap(), Some(line("HELLO")));
    }

    #[test]
    fn refused_literal_is_skipped_without_being_buffered() {
        let mut c = LineCodec::new(100, 1 << 20).gated();
        let mut buf = BytesMut::from(
            &b"HELLO {100000}
"[..],
        );
        assert!(matches!(
            c.decode(&mut buf).unwrap(),
            Some(Frame::Literal(_, 100000))
        ));
        c.refuse_literal();
        for _ in 0..99 {
            buf.extend_from_slice(&[b'x'; 1000]);
            assert_eq!(c.decode(&mut buf).unwrap(), None);
            assert!(buf.is_empty(), "refused bytes are dropped as they come");
        }
        assert_eq!(c.progress(&buf), Progress::Literal(1000));
        buf.extend_from_slice(&[b'x'; 1000]);
        buf.extend_from_slice(
            b"HELLO
",
        );
        assert_eq!(c.decode(&mut buf).unwrap(), Some(line("HELLO")));
    }

    #[test]
    fn an_unanswered_literal_is_refused() {
        let mut c = LineCodec::new(100, 100).gated();
        let mut buf = BytesMut::from(
            &b"HELLO {3}
abcHELLO
"[..],
        );
        assert!(matches!(
            c.decode(&mut buf).unwrap(),
            Some(Frame::Literal(..))
        ));
        assert_eq!(c.decode(&mut buf).unwrap(), Some(line("HELLO")));
    }

    proptest! {
        /// A gated codec gives the same frames however the bytes are cut into reads.
        #[test]
        fn gated_chunking_does_not_matter(
            input in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'{'), Just(b'}'), Just(b' '), Just(b'1'), Just(b'2'), Just(b'A'), any::<u8>()], 0..300),
            cut in 1usize..40,
        ) {
            let mut whole = LineCodec::new(20, 8).gated();
            let mut expected = Vec::new();
            gated_frames(&mut whole, &mut BytesMut::from(&input[..]), &mut expected);
            let mut c = LineCodec::new(20, 8).gated();
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for chunk in input.chunks(cut) {
                buf.extend_from_slice(chunk);
                gated_frames(&mut c, &mut buf, &mut got);
                prop_assert!(buf.len() <= 21, "{} bytes buffered", buf.len());
            }
            prop_assert_eq!(got, expected);
        }

        /// Feeding the same bytes in any chunking yields the same frames.
        #[test]
        fn chunking_does_not_matter(
            input in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'{'), Just(b'}'), Just(b' '), Just(b'1'), Just(b'A'), any::<u8>()], 0..300),
            cut in 1usize..40,
        ) {
            let mut whole = LineCodec::new(20, 8);
            let expected = frames(&mut whole, &input);
            let mut c = LineCodec::new(20, 8);
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for chunk in input.chunks(cut) {
                buf.extend_from_slice(chunk);
                while let Some(f) = c.decode(&mut buf).unwrap() { got.push(f); }
            }
            prop_assert_eq!(got, expected);
        }
    }
}
