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
