//! Hardening of the data directory and the log, against the real server binary.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::Server;

/// A second server on the same data directory refuses to start, names the directory and
/// the PID holding it, exits non-zero within a second, and the first keeps its writes.
#[test]
fn second_server_on_one_data_directory_is_refused() {
    let mut s = Server::start();
    let mut admin = s.admin();
    let id = admin.id("ADD USER 'first' 'First Writer' 'pw123456'");
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_webissued"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .arg("--data")
        .arg(s.data_dir())
        .env("WEBISSUED_ADMIN_PASSWORD", "other")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "second server started: {stderr}");
    assert!(took < Duration::from_secs(1), "took {took:?} to refuse");
    assert!(
        stderr.contains(&s.data_dir().display().to_string()),
        "directory not named: {stderr}"
    );
    assert!(
        stderr.contains(&format!("process {}", s.pid())),
        "holder's PID not named: {stderr}"
    );
    // The first server still serves and its acknowledged write survives a restart.
    assert!(admin.send("LIST USERS")[0].starts_with("U 1 "));
    s.restart();
    let mut admin = s.admin();
    let users = admin.send("LIST USERS");
    assert!(
        users
            .iter()
            .any(|l| l.starts_with(&format!("U {id} 'first'"))),
        "{users:?}"
    );
}

/// The data directory's log files (`wal/*.log`), oldest first.
fn log_files(data: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(data.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

/// Start offsets of the records of a log file's bytes (header: length u32, crc u32, seq u64).
fn record_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut at = 0;
    while at + 16 <= bytes.len() && bytes[at..at + 16].iter().any(|&b| b != 0) {
        starts.push(at);
        at += 16 + u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    }
    starts
}

/// Runs `webissued serve` on `data` and waits (up to 30 s) for it to exit on its own:
/// (exit code, stderr, time taken). Panics if it keeps running.
fn serve_until_exit(data: &std::path::Path) -> (Option<i32>, String, Duration) {
    let err_path = data.parent().unwrap().join("refused.log");
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_webissued"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .arg("--data")
        .arg(data)
        .env("WEBISSUED_ADMIN_PASSWORD", support::ADMIN_PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let took = started.elapsed();
            return (
                status.code(),
                std::fs::read_to_string(&err_path).unwrap(),
                took,
            );
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the server did not exit: {}",
                std::fs::read_to_string(&err_path).unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A folder with one issue; returns the issue id.
fn one_issue(admin: &mut support::Client) -> i64 {
    let t = admin.id("ADD TYPE 'Bug'");
    let p = admin.id("ADD PROJECT 'Storage'");
    let f = admin.id(&format!("ADD FOLDER {p} {t} 'Bugs'"));
    admin.id(&format!("ADD ISSUE {f} 'the issue'"))
}

/// The texts of the issue's comments.
fn comment_texts(c: &mut support::Client, issue: i64) -> Vec<String> {
    c.send(&format!("GET DETAILS {issue} 0"))
        .into_iter()
        .filter(|l| l.starts_with("C "))
        .filter_map(|l| l.split('\'').nth(1).map(str::to_string))
        .collect()
}

/// One flipped bit in a closed log file (60 acknowledged comments, the 16th damaged): the
/// server refuses to start, naming the file and the damaged record's offset, and keeps the
/// file; `webissued salvage` keeps the 15 comments before the damage, sets the file aside,
/// says what was lost, and the server then starts and takes writes that survive kill -9.
#[test]
fn a_damaged_closed_log_file_stops_the_start_until_salvaged() {
    let mut s = Server::start();
    let mut admin = s.admin();
    let issue = one_issue(&mut admin);
    for i in 0..60 {
        admin.id(&format!("ADD COMMENT {issue} 'comment-{i:03}'"));
    }
    s.kill9();
    let data = s.data_dir();
    let files = log_files(&data);
    let newest = files.last().unwrap().clone();
    let mut bytes = std::fs::read(&newest).unwrap();
    let marker = b"comment-015";
    let at = bytes
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("the comment's record");
    let record = *record_starts(&bytes)
        .iter()
        .rfind(|&&start| start <= at)
        .unwrap();
    bytes[at] ^= 0x04; // one bit
    std::fs::write(&newest, &bytes).unwrap();
    // A newer (empty) file, as right after a rotation: the damaged one is closed.
    let generation =
        u64::from_str_radix(newest.file_stem().unwrap().to_str().unwrap(), 16).unwrap();
    let next = data
        .join("wal")
        .join(format!("{:016x}.log", generation + 1));
    std::fs::write(&next, b"").unwrap();

    let (code, stderr, took) = serve_until_exit(&data);
    assert_ne!(code, Some(0), "started on a damaged log: {stderr}");
    let refusal = stderr
        .lines()
        .find(|l| l.starts_with("webissued: damaged log file"))
        .unwrap_or_else(|| panic!("no refusal line: {stderr}"));
    assert!(refusal.contains(&newest.display().to_string()), "{refusal}");
    assert!(refusal.contains(&format!("at byte {record} ")), "{refusal}");
    assert!(refusal.contains("webissued salvage"), "{refusal}");
    println!("refused in {took:?}: {refusal}");
    assert_eq!(
        std::fs::read(&newest).unwrap(),
        bytes,
        "the damaged file is kept as it was"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_webissued"))
        .arg("salvage")
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "salvage failed: {report} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
    assert!(report.contains("recovered"), "{report}");
    let lost: u64 = report
        .split(" acknowledged batches lost")
        .next()
        .and_then(|l| l.rsplit(char::is_whitespace).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no lost count: {report}"));
    assert_eq!(lost, 45, "comments 15..59, one batch each: {report}");
    let kept = std::path::PathBuf::from(format!("{}.damaged", newest.display()));
    assert_eq!(std::fs::read(&kept).unwrap(), bytes, "damaged copy kept");
    assert!(!next.exists(), "the file after the damage is moved aside");

    s.restart();
    let mut admin = s.admin();
    let want: Vec<String> = (0..15).map(|i| format!("comment-{i:03}")).collect();
    assert_eq!(comment_texts(&mut admin, issue), want);
    admin.id(&format!("ADD COMMENT {issue} 'after salvage'"));
    s.restart();
    let mut admin = s.admin();
    let texts = comment_texts(&mut admin, issue);
    assert_eq!(texts.len(), 16);
    assert_eq!(texts.last().unwrap(), "after salvage");
}

/// A torn tail of the newest file (a crash during its last flush) is a normal recovery,
/// also after a second crash, when that file is no longer the newest.
#[test]
fn a_torn_tail_of_the_newest_log_file_still_recovers() {
    let mut s = Server::start();
    let mut admin = s.admin();
    let issue = one_issue(&mut admin);
    for i in 0..10 {
        admin.id(&format!("ADD COMMENT {issue} 'comment-{i:03}'"));
    }
    s.kill9();
    let newest = log_files(&s.data_dir()).pop().unwrap();
    let bytes = std::fs::read(&newest).unwrap();
    let last = *record_starts(&bytes).last().unwrap();
    std::fs::write(&newest, &bytes[..last + 20]).unwrap();
    s.restart();
    let mut admin = s.admin();
    let texts = comment_texts(&mut admin, issue);
    let want: Vec<String> = (0..9).map(|i| format!("comment-{i:03}")).collect();
    assert_eq!(texts, want, "everything but the torn record");
    admin.id(&format!("ADD COMMENT {issue} 'after the crash'"));
    s.restart();
    let mut admin = s.admin();
    let texts = comment_texts(&mut admin, issue);
    assert_eq!(texts.last().unwrap(), "after the crash", "{}", s.log());
    assert!(!s.log().contains("damaged"), "{}", s.log());
}
