//! Invariant checks driven by the fuzz targets (`fuzz/`) and replayed by the regression
//! suite (`tests/fuzz_regressions.rs`), so a crasher found by the fuzzer stays a test that
//! runs on stable with plain `cargo test`.
//!
//! Each function takes arbitrary bytes and panics when an invariant breaks; returning
//! normally means the input was handled correctly (accepted or rejected with an error).

use bytes::{Bytes, BytesMut};
use tokio_util::codec::Decoder;
use webissued::protocol::codec::{Frame, LineCodec};
use webissued::protocol::definition::parse_definition;
use webissued::protocol::token::{self, Arg};
use webissued::protocol::{Reply, parse_command};
use webissued::subscribe::mailto::{MAX_ADDRESSES, MAX_BODY_CHARS, MAX_SUBJECT_CHARS, Mailto};

/// An error reply must be one line (CRLF) and the closing empty line, whatever the input:
/// a stray CR or LF in a message would break every client's framing.
fn assert_one_error_line(e: webissued::error::Error) {
    let bytes = Reply::Error(e).to_bytes();
    let body = bytes
        .strip_suffix(b"\r\n\r\n")
        .expect("an error reply ends with CRLF and the empty line");
    assert!(
        !body.contains(&b'\n') && !body.contains(&b'\r'),
        "line break inside an error reply: {:?}",
        String::from_utf8_lossy(&bytes)
    );
}

/// The command parser: the input is a line, optionally followed by LF and a literal.
/// Never panics; errors encode as one line; a line that tokenizes re-encodes to the same
/// tokens (parse ∘ encode is the identity on tokens).
pub fn command(data: &[u8]) {
    let (line, literal) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], Some(Bytes::copy_from_slice(&data[i + 1..]))),
        None => (data, None),
    };
    if let Err(e) = parse_command(line, literal) {
        assert_one_error_line(e);
    }
    let Ok(text) = std::str::from_utf8(line) else {
        return;
    };
    if text.chars().any(|c| c != '\t' && c.is_control()) {
        return;
    }
    let Ok(tokens) = token::line(text) else {
        return;
    };
    let mut out = tokens.keywords.join(" ").into_bytes();
    for arg in &tokens.args {
        out.push(b' ');
        token::write_arg(&mut out, arg);
    }
    let again = std::str::from_utf8(&out).expect("encoding keeps UTF-8");
    let reparsed = token::line(again).expect("an encoded line tokenizes");
    assert_eq!(reparsed.keywords, tokens.keywords);
    assert_eq!(reparsed.args, tokens.args);
    for arg in &tokens.args {
        if let Arg::Str(s) = arg {
            assert!(!s.contains('\r'), "CR cannot come out of a checked line");
        }
    }
}

/// The attribute-definition parser, and the typed attribute layer on top of it: never
/// panics, a parsed definition re-encodes to text that parses to the same definition, and
/// error messages are one line.
pub fn definition(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_definition(text) {
        Ok(def) => {
            let encoded = def.to_string();
            assert_eq!(
                parse_definition(&encoded).as_ref(),
                Ok(&def),
                "re-encoding changed the definition: {encoded:?}"
            );
        }
        Err(e) => {
            let message = e.to_string();
            assert!(!message.contains(['\r', '\n']), "{message:?}");
        }
    }
    match webissued::attributes::AttributeDef::parse(text) {
        Ok(def) => {
            // Validating a value against any definition must not panic either.
            for value in [
                "",
                "0",
                "-1",
                "1.5",
                "abc",
                "9999999999999999999999",
                "2024-02-30",
            ] {
                let _ = def.validate_value(value, &|_, _| true);
            }
        }
        Err(e) => {
            let message = e.to_string();
            assert!(!message.contains(['\r', '\n']), "{message:?}");
        }
    }
}

/// The `mailto:` parser: never panics; an accepted URI holds 1–20 addresses, no control
/// character in an address or the subject, and sizes within the caps; rejections are one
/// line (they are quoted in ERROR replies).
pub fn mailto(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Mailto::parse(text) {
        Ok(m) => {
            assert!(!m.to.is_empty());
            let count = m.addresses().count();
            assert!(count <= MAX_ADDRESSES, "{count} addresses");
            for a in m.addresses() {
                assert!(webissued::email_address::is_valid_email(a), "{a:?}");
                assert!(!a.chars().any(char::is_control), "{a:?}");
            }
            if let Some(s) = &m.subject {
                assert!(!s.chars().any(char::is_control), "{s:?}");
                assert!(s.chars().count() <= MAX_SUBJECT_CHARS);
            }
            if let Some(b) = &m.body {
                assert!(b.chars().count() <= MAX_BODY_CHARS);
            }
        }
        Err(e) => {
            let message = e.to_string();
            assert!(
                !message.chars().any(char::is_control),
                "control character in {message:?}"
            );
        }
    }
}

/// Decodes `input` fed in chunks of the given sizes (cycled), then at EOF, checking the
/// buffer bound after every call. `gated`: literals are announced, and accepted when their
/// size is even, refused when odd (as the connection does by its own rules).
fn decode_chunked(
    max_line: usize,
    max_data: u64,
    input: &[u8],
    cuts: &[usize],
    gated: bool,
) -> Vec<Frame> {
    let mut codec = LineCodec::new(max_line, max_data);
    if gated {
        codec = codec.gated();
    }
    let answer = |codec: &mut LineCodec, f: &Frame| {
        if let Frame::Literal(_, size) = f {
            if size % 2 == 0 {
                codec.accept_literal();
            } else {
                codec.refuse_literal();
            }
        }
    };
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut rest = input;
    let mut i = 0;
    while !rest.is_empty() {
        let n = cuts[i % cuts.len()].clamp(1, rest.len());
        i += 1;
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        while let Some(f) = codec.decode(&mut buf).expect("decode never fails") {
            answer(&mut codec, &f);
            frames.push(f);
        }
        // Memory per connection is bounded by the limits, not by what the client sends.
        let bound = (max_line + 1).max(max_data as usize);
        assert!(
            buf.len() <= bound,
            "{} bytes buffered, limits {max_line}/{max_data}",
            buf.len()
        );
    }
    while let Some(f) = codec.decode_eof(&mut buf).expect("decode_eof never fails") {
        answer(&mut codec, &f);
        frames.push(f);
    }
    frames
}

/// The codec: the same bytes give the same frames however they are cut into reads, the
/// buffer stays within the limits, and every frame respects them.
///
/// Input layout: byte 0 picks the line limit (1–64), byte 1 the literal limit (0–31), byte
/// 2 the number of read sizes that follow (0–7, each 1–256); the rest is the stream.
pub fn codec(data: &[u8]) {
    let [a, b, c, rest @ ..] = data else {
        return;
    };
    let max_line = usize::from(a % 64) + 1;
    let max_data = u64::from(b % 32);
    let ncuts = usize::from(c % 8).min(rest.len());
    let cuts: Vec<usize> = rest[..ncuts].iter().map(|&x| usize::from(x) + 1).collect();
    let input = &rest[ncuts..];

    for gated in [false, true] {
        let whole = decode_chunked(max_line, max_data, input, &[input.len().max(1)], gated);
        // Byte at a time is the harshest chunking but costs a decode per byte; for longer
        // inputs the fuzzer's own read sizes (which include 1) cover it.
        if input.len() <= 64 {
            let bytewise = decode_chunked(max_line, max_data, input, &[1], gated);
            assert_eq!(bytewise, whole, "byte-at-a-time differs from whole input");
        }
        if !cuts.is_empty() {
            let chunked = decode_chunked(max_line, max_data, input, &cuts, gated);
            assert_eq!(chunked, whole, "chunking {cuts:?} changed the frames");
        }
        check_frames(&whole, max_line, max_data, gated);
    }
}

/// Every frame respects the limits.
fn check_frames(frames: &[Frame], max_line: usize, max_data: u64, gated: bool) {
    for f in frames {
        match f {
            Frame::Line(line) => {
                assert!(!line.is_empty() && line.len() <= max_line);
                assert!(!line.contains(&b'\n'));
            }
            Frame::WithData(line, data) => {
                assert!(line.len() <= max_line && !line.contains(&b'\n'));
                assert!(data.len() as u64 <= max_data);
            }
            Frame::TooLong => {}
            Frame::DataTooLarge(size) => assert!(*size > max_data),
            Frame::Literal(line, size) => {
                assert!(gated, "only gated codecs announce literals");
                assert!(line.len() <= max_line && *size <= max_data);
            }
        }
    }
}
