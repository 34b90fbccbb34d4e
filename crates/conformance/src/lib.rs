//! Conformance transcripts: a script of command lines and the reply lines expected, run
//! against any server over TCP (`webissued-conformance ADDR FILES…`, scripts/conformance,
//! tests/conformance.rs).
//!
//! Format, one item per line:
//! - `C: line` sends a command line; the `S:` lines after it are its expected reply, without
//!   the closing empty line (checked too). An expected line may use `*` to match any run of
//!   characters (dates, UUIDs).
//! - `D: text` sends `text` as raw bytes right after the previous `C:` line (the data of an
//!   `ADD ATTACHMENT … {size}` literal). A `DATA n` reply shows as `S: DATA n` then
//!   `S: <the bytes as text>`.
//! - `${ADMIN_PASSWORD}` is replaced by the admin password; `#` lines and blank lines are
//!   comments.
//!
//! A transcript assumes a freshly initialised server (ids start at their first values).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

struct Step {
    line_no: usize,
    send: Vec<u8>,
    expect: Vec<String>,
}

fn parse(text: &str, admin_password: &str) -> Result<Vec<Step>, String> {
    let mut steps: Vec<Step> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.replace("${ADMIN_PASSWORD}", admin_password);
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(cmd) = line.strip_prefix("C: ") {
            let mut send = cmd.as_bytes().to_vec();
            send.push(b'\n');
            steps.push(Step {
                line_no: i + 1,
                send,
                expect: Vec::new(),
            });
        } else if let Some(data) = line.strip_prefix("D: ") {
            let step = steps
                .last_mut()
                .ok_or(format!("line {}: D: before any C:", i + 1))?;
            step.send.extend_from_slice(data.as_bytes());
        } else if let Some(reply) = line.strip_prefix("S: ") {
            let step = steps
                .last_mut()
                .ok_or(format!("line {}: S: before any C:", i + 1))?;
            step.expect.push(reply.to_string());
        } else {
            return Err(format!("line {}: expected C:, D:, S: or #", i + 1));
        }
    }
    Ok(steps)
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

fn read_reply(reader: &mut BufReader<TcpStream>) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    loop {
        let mut raw = Vec::new();
        let n = reader
            .read_until(b'\n', &mut raw)
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed".into());
        }
        if !raw.ends_with(b"\r\n") {
            return Err(format!(
                "reply line without CRLF: {:?}",
                String::from_utf8_lossy(&raw)
            ));
        }
        raw.truncate(raw.len() - 2);
        if raw.is_empty() {
            return Ok(lines);
        }
        let text = String::from_utf8(raw).map_err(|_| "reply is not UTF-8".to_string())?;
        if let Some(size) = text.strip_prefix("DATA ") {
            let size: usize = size.parse().map_err(|_| "bad DATA size".to_string())?;
            let mut data = vec![0; size + 2];
            reader.read_exact(&mut data).map_err(|e| e.to_string())?;
            lines.push(text.clone());
            lines.push(String::from_utf8_lossy(&data[..size]).into_owned());
            continue;
        }
        lines.push(text);
    }
}

/// Runs a transcript against `addr`. Returns the number of commands checked, or a message
/// naming the first mismatch.
pub fn run(addr: &str, text: &str, admin_password: &str) -> Result<usize, String> {
    let stream = TcpStream::connect(addr).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    run_with(text, admin_password, |send| {
        reader
            .get_mut()
            .write_all(send)
            .map_err(|e| e.to_string())?;
        read_reply(&mut reader)
    })
}

/// Runs a transcript through `exchange`, which sends one step's bytes (the command line,
/// LF, then any literal data) by some transport and returns the reply lines as TCP shows
/// them (a `DATA n` reply as `DATA n` and the bytes as text).
pub fn run_with(
    text: &str,
    admin_password: &str,
    mut exchange: impl FnMut(&[u8]) -> Result<Vec<String>, String>,
) -> Result<usize, String> {
    let steps = parse(text, admin_password)?;
    for step in &steps {
        let got = exchange(&step.send).map_err(|e| format!("line {}: {e}", step.line_no))?;
        let ok = got.len() == step.expect.len()
            && got.iter().zip(&step.expect).all(|(g, e)| glob_match(e, g));
        if !ok {
            return Err(format!(
                "line {}: {}\n  expected: {:?}\n  got:      {:?}",
                step.line_no,
                String::from_utf8_lossy(&step.send)
                    .lines()
                    .next()
                    .unwrap_or(""),
                step.expect,
                got
            ));
        }
    }
    Ok(steps.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("SERVER 'x' '*'", "SERVER 'x' 'abc-1'"));
        assert!(glob_match(
            "I 1 1 'a' 3 * 1 * 1",
            "I 1 1 'a' 3 1700000000 1 1700000001 1"
        ));
        assert!(!glob_match("I 1 * 2", "I 1 5 3"));
        assert!(glob_match("OK", "OK"));
        assert!(!glob_match("OK", "OKAY"));
    }

    #[test]
    fn transcript_parses() {
        let steps = parse(
            "# c\nC: HELLO\nS: SERVER *\n\nC: ADD ATTACHMENT 1 'a' '' {2}\nD: hi\nS: ID 4\n",
            "pw",
        )
        .unwrap();
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[1].send, b"ADD ATTACHMENT 1 'a' '' {2}\nhi");
        assert!(parse("X: nope", "pw").is_err());
    }
}
