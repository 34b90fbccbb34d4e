//! `webissued export` and `webissued import`: the whole data directory as a versioned,
//! line-oriented text dump (protocol-spec/dump.md), and back.
//!
//! The dump holds every record of the store in key order (users with their password
//! hashes, types, projects, issues, history, preferences, watches, subscriptions, outbox:
//! everything is a record) and then every attachment file in name order, so exporting the
//! same data twice gives the same bytes. It depends on nothing of sled's file format: it is
//! also the way from one storage engine (or sled version) to the next.

use crate::error::{Error, Result};
use crate::store::{Read, Store};
use base64::Engine;
use std::io::{BufRead, Write};
use std::path::Path;

/// The first line of every dump; the number is the format version.
pub const HEADER: &str = "webissued-dump 1";

/// Attachment bytes per `d` line (76 base64 characters).
const CHUNK: usize = 57;

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Writes a key or value: bytes `!`..`~` except `%` as they are, any other as `%XX`.
fn escape(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        if (0x21..=0x7e).contains(&b) && b != b'%' {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}

fn hex_digit(d: u8) -> Option<u8> {
    match d {
        b'0'..=b'9' => Some(d - b'0'),
        b'A'..=b'F' => Some(d - b'A' + 10),
        b'a'..=b'f' => Some(d - b'a' + 10),
        _ => None,
    }
}

/// The bytes `escape` wrote, into `out` (cleared first, its capacity kept between lines).
fn unescape_into(b: &[u8], out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = match (b.get(i + 1).copied(), b.get(i + 2).copied()) {
                (Some(h), Some(l)) => hex_digit(h).zip(hex_digit(l)).map(|(h, l)| h << 4 | l),
                _ => None,
            }
            .ok_or_else(|| bad(format!("bad escape in {:?}", String::from_utf8_lossy(b))))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
fn unescape(s: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    unescape_into(s.as_bytes(), &mut out)?;
    Ok(out)
}

fn bad(msg: impl std::fmt::Display) -> Error {
    Error::with(crate::error::Code::ServerError, format!("dump: {msg}"))
}

/// Writes the dump of the store and of its attachment files in `attachments` to `out`.
pub fn export(store: &Store, attachments: &Path, out: &mut impl Write) -> Result<()> {
    writeln!(out, "{HEADER}")?;
    writeln!(
        out,
        "# r KEY :VALUE = one record (key and postcard value, %XX-escaped); \
         f NAME LENGTH + d BASE64 = one attachment file; see protocol-spec/dump.md"
    )?;
    let mut line = Vec::with_capacity(256);
    let mut records = 0u64;
    let mut failed: Option<std::io::Error> = None;
    store.read(|r| {
        r.visit(b"", &mut |k, v| {
            line.clear();
            line.extend_from_slice(b"r ");
            escape(&mut line, k);
            line.extend_from_slice(b" :");
            escape(&mut line, v);
            line.push(b'\n');
            records += 1;
            out.write_all(&line).map_err(|e| {
                let msg = e.to_string();
                failed = Some(e);
                Error::internal(msg)
            })
        })
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    let mut names = Vec::new();
    match std::fs::read_dir(attachments) {
        Ok(dir) => {
            for entry in dir {
                let entry = entry?;
                if entry.file_type()?.is_file() {
                    names.push(entry.file_name().to_string_lossy().into_owned());
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    names.sort();
    let (mut files, mut bytes) = (0u64, 0u64);
    for name in &names {
        let data = std::fs::read(attachments.join(name))?;
        line.clear();
        line.extend_from_slice(b"f ");
        escape(&mut line, name.as_bytes());
        writeln!(out, "{} {}", String::from_utf8_lossy(&line), data.len())?;
        for chunk in data.chunks(CHUNK) {
            writeln!(
                out,
                "d {}",
                base64::engine::general_purpose::STANDARD.encode(chunk)
            )?;
        }
        files += 1;
        bytes += data.len() as u64;
    }
    writeln!(out, "end {records} {files} {bytes}")?;
    out.flush()?;
    Ok(())
}

/// What [`import`] wrote.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub records: u64,
    pub files: u64,
    pub bytes: u64,
}

/// Rebuilds an empty data directory `dir` from a dump: the records go straight into the
/// checkpoint (sled) in sorted chunks, the files into `attachments/`. The dump's closing
/// `end` line must match what was read, so a cut dump is refused, not half imported.
pub fn import(dir: &Path, input: &mut impl BufRead) -> Result<Counts> {
    for sub in ["db", "wal", "attachments"] {
        let p = dir.join(sub);
        if p.exists() && std::fs::read_dir(&p)?.next().is_some() {
            return Err(bad(format!(
                "{} is not empty: import only into a new data directory",
                p.display()
            )));
        }
    }
    let attachments = dir.join("attachments");
    std::fs::create_dir_all(&attachments)?;
    let mut counts = Counts::default();
    // Lines are read into one buffer and records unescaped into two more, all reused: a
    // dump of a million issues is some 13 million lines.
    let mut line = Vec::with_capacity(256);
    let mut next_line = |line: &mut Vec<u8>| -> Result<bool> {
        line.clear();
        if input.read_until(b'\n', line)? == 0 {
            return Ok(false);
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        Ok(true)
    };
    match next_line(&mut line)? {
        true if line == HEADER.as_bytes() => {}
        true => {
            return Err(bad(format!(
                "not a version 1 dump (first line {:?})",
                String::from_utf8_lossy(&line)
            )));
        }
        false => return Err(bad("empty input")),
    }
    let mut records = crate::store::checkpoint::BulkWriter::open(&dir.join("db"))?;
    let mut file: Option<(std::fs::File, String, u64, u64)> = None;
    let mut ended = false;
    let (mut k, mut v, mut last_key) = (Vec::new(), Vec::new(), None::<Vec<u8>>);
    let finish_file = |file: &mut Option<(std::fs::File, String, u64, u64)>| -> Result<()> {
        if let Some((f, name, want, got)) = file.take() {
            if want != got {
                return Err(bad(format!("file {name}: {got} bytes, {want} announced")));
            }
            f.sync_all()?;
        }
        Ok(())
    };
    let mut n = 1u64;
    while next_line(&mut line)? {
        n += 1;
        if ended {
            return Err(bad("text after the end line"));
        }
        let space = line.iter().position(|&b| b == b' ');
        let (tag, rest) = match space {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (&line[..], &[][..]),
        };
        match tag {
            b"#" | b"" => {}
            b"r" => {
                let sep = rest
                    .windows(2)
                    .position(|w| w == b" :")
                    .ok_or_else(|| bad(format!("line {n}: bad record")))?;
                unescape_into(&rest[..sep], &mut k)?;
                unescape_into(&rest[sep + 2..], &mut v)?;
                match &mut last_key {
                    Some(l) if *l >= k => {
                        return Err(bad(format!("line {n}: records out of key order")));
                    }
                    Some(l) => {
                        l.clear();
                        l.extend_from_slice(&k);
                    }
                    None => last_key = Some(k.clone()),
                }
                records.put(&k, &v)?;
                counts.records += 1;
            }
            b"f" => {
                finish_file(&mut file)?;
                let rest = std::str::from_utf8(rest).map_err(bad)?;
                let (name, len) = rest
                    .split_once(' ')
                    .ok_or_else(|| bad(format!("line {n}: bad file line")))?;
                unescape_into(name.as_bytes(), &mut k)?;
                let name = String::from_utf8(k.clone()).map_err(bad)?;
                if name.is_empty() || name.contains('/') || name.starts_with('.') {
                    return Err(bad(format!("bad file name {name:?}")));
                }
                let len: u64 = len.parse().map_err(bad)?;
                let f = std::fs::File::create(attachments.join(&name))?;
                file = Some((f, name, len, 0));
                counts.files += 1;
            }
            b"d" => {
                let Some((f, _, _, got)) = file.as_mut() else {
                    return Err(bad(format!("line {n}: data outside a file")));
                };
                let data = base64::engine::general_purpose::STANDARD
                    .decode(rest)
                    .map_err(bad)?;
                f.write_all(&data)?;
                *got += data.len() as u64;
                counts.bytes += data.len() as u64;
            }
            b"end" => {
                finish_file(&mut file)?;
                let want = format!("{} {} {}", counts.records, counts.files, counts.bytes);
                if rest != want.as_bytes() {
                    return Err(bad(format!(
                        "end line says {}, read {want}",
                        String::from_utf8_lossy(rest)
                    )));
                }
                ended = true;
            }
            other => {
                return Err(bad(format!(
                    "line {n}: unknown tag {:?}",
                    String::from_utf8_lossy(other)
                )));
            }
        }
    }
    if !ended {
        return Err(bad("no end line: the dump is cut short"));
    }
    records.finish()?;
    crate::store::wal::sync_dir(&attachments)?;
    Ok(counts)
}

/// `webissued export --data DIR`: the dump on stdout.
pub fn export_dir(dir: &Path) -> std::result::Result<(), String> {
    let _lock = crate::datadir::lock(dir)?;
    let store = Store::open(dir, 16 << 20).map_err(|e| e.to_string())?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    let result = export(&store, &dir.join("attachments"), &mut out);
    store.close().map_err(|e| e.to_string())?;
    result.map_err(|e| e.to_string())
}

/// `webissued import --data DIR`: a new data directory from the dump on stdin.
pub fn import_dir(dir: &Path) -> std::result::Result<(), String> {
    let _lock = crate::datadir::lock(dir)?;
    let stdin = std::io::stdin();
    let mut input = std::io::BufReader::with_capacity(1 << 20, stdin.lock());
    let counts = import(dir, &mut input).map_err(|e| e.to_string())?;
    eprintln!(
        "webissued: imported {} records and {} files ({} bytes) into {}",
        counts.records,
        counts.files,
        counts.bytes,
        dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let mut out = Vec::new();
        escape(&mut out, &all);
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains(' ') && !text.contains('\n'));
        assert_eq!(unescape(&text).unwrap(), all);
    }

    #[test]
    fn a_dump_reimports_and_exports_the_same_bytes() {
        let a = tempfile::tempdir().unwrap();
        let store = Store::open(a.path(), 1 << 20).unwrap();
        store
            .write(|w| {
                w.put_raw(b"k/\x00\x01".to_vec(), b"v %\n".to_vec());
                w.put_raw(b"user/x".to_vec(), Vec::new());
                Ok(())
            })
            .unwrap();
        store.flush_now().unwrap();
        std::fs::create_dir_all(a.path().join("attachments")).unwrap();
        std::fs::write(a.path().join("attachments/f1"), vec![7u8; 200]).unwrap();
        let mut first = Vec::new();
        export(&store, &a.path().join("attachments"), &mut first).unwrap();
        store.close().unwrap();

        let b = tempfile::tempdir().unwrap();
        let counts = import(b.path(), &mut &first[..]).unwrap();
        assert_eq!(counts.files, 1);
        assert_eq!(counts.bytes, 200);
        let store = Store::open(b.path(), 1 << 20).unwrap();
        let mut second = Vec::new();
        export(&store, &b.path().join("attachments"), &mut second).unwrap();
        store.close().unwrap();
        assert_eq!(
            String::from_utf8(first.clone()).unwrap(),
            String::from_utf8(second).unwrap()
        );
        // A cut dump is refused.
        let c = tempfile::tempdir().unwrap();
        let cut = &first[..first.len() - 10];
        assert!(import(c.path(), &mut &cut[..]).is_err());
    }
}
