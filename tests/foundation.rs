//! The foundation over real sockets: framing, bad input, limits, durability and shutdown.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};
use support::{Client, Server};

#[test]
fn pipelined_commands_are_answered_in_order() {
    let server = Server::start();
    let mut c = server.connect();
    c.write_raw(b"HELLO\r\nLOGIN 'admin' 'secret'\nLIST FEATURES\nADD USER 'a' 'A' 'p'\nADD USER 'b' 'B' 'p'\nFROB\n");
    assert!(c.read_reply()[0].starts_with("SERVER 'webissued' '"));
    assert_eq!(c.read_reply(), ["USER 1 2"]);
    assert_eq!(c.read_reply(), ["F 'notify'", "F 'subscribe'", "F 'help'"]);
    assert_eq!(c.read_reply(), ["ID 2"]);
    assert_eq!(c.read_reply(), ["ID 3"]);
    assert_eq!(c.read_reply(), ["ERROR 401 'Unknown Command'"]);
}

#[test]
fn over_long_line_is_rejected_and_the_connection_stays_usable() {
    let server = Server::start_with("[server]\nmax_line_bytes = 1024\n");
    let mut c = server.admin();
    let long = format!("ADD COMMENT 1 '{}'\n", "x".repeat(3 * 1024 * 1024));
    c.write_raw(long.as_bytes());
    assert_eq!(c.read_reply(), ["ERROR 400 'Syntax Error: line too long'"]);
    assert_eq!(
        c.send("LIST FEATURES"),
        ["F 'notify'", "F 'subscribe'", "F 'help'"]
    );
}

#[test]
fn bad_bytes_get_340_and_the_connection_stays_usable() {
    let server = Server::start();
    let mut c = server.admin();
    c.write_raw(b"ADD USER '\xff\xfe' 'x' 'y'\n");
    assert_eq!(
        c.read_reply(),
        ["ERROR 340 'Invalid String: invalid UTF-8'"]
    );
    c.write_raw(b"ADD USER 'a\x07' 'x' 'y'\n");
    assert_eq!(
        c.read_reply(),
        ["ERROR 340 'Invalid String: control character'"]
    );
    c.write_raw(b"ADD USER 'a\rb' 'x' 'y'\n");
    assert_eq!(
        c.read_reply(),
        ["ERROR 340 'Invalid String: control character'"]
    );
    assert_eq!(c.send("ADD USER 'ok' 'OK' 'pw'"), ["ID 2"]);
}

#[test]
fn blank_lines_are_ignored_and_a_last_line_without_newline_is_answered() {
    let server = Server::start();
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(b"\r\n\nHELLO").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("SERVER 'webissued' '"), "{out:?}");
    assert!(out.ends_with("'\r\n\r\n"), "{out:?}");
    assert_eq!(out.matches("\r\n\r\n").count(), 1);
}

#[test]
fn quit_answers_ok_and_closes() {
    let server = Server::start();
    let mut c = server.connect();
    assert_eq!(c.send("QUIT"), ["OK"]);
    assert!(c.is_closed());
}

#[test]
fn idle_connections_are_closed() {
    let server = Server::start_with("[server]\nidle_timeout_secs = 1\n");
    let mut c = server.connect();
    let start = Instant::now();
    assert_eq!(c.read_reply(), ["ERROR 408 'Idle Timeout'"]);
    assert!(start.elapsed() >= Duration::from_millis(900));
    assert!(c.is_closed());
}

#[test]
fn the_idle_clock_restarts_with_every_command() {
    let server = Server::start_with("[server]\nidle_timeout_secs = 1\n");
    let mut c = server.connect();
    // Commands 0.4 s apart for 2.4 s: past two idle periods counted from the connect.
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(400));
        assert!(c.send("HELLO")[0].starts_with("SERVER"));
    }
    let quiet = Instant::now();
    assert_eq!(c.read_reply(), ["ERROR 408 'Idle Timeout'"]);
    let waited = quiet.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(2500),
        "closed after {waited:?}"
    );
    assert!(c.is_closed());
}

#[test]
fn connections_past_the_limit_get_one_error() {
    let server = Server::start_with("[server]\nmax_connections = 2\n");
    let mut a = server.connect();
    let mut b = server.connect();
    assert_eq!(a.send("LIST FEATURES"), ["ERROR 300 'Login Required'"]);
    assert_eq!(b.send("LIST FEATURES"), ["ERROR 300 'Login Required'"]);
    let mut third = server.connect();
    assert_eq!(third.read_reply(), ["ERROR 503 'Too Many Connections'"]);
    assert!(third.is_closed());
    drop(a);
    // The freed slot is usable again once the server has seen the close.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = server.connect();
        let r = c.send("HELLO");
        if r[0].starts_with("SERVER") {
            break;
        }
        assert!(Instant::now() < deadline, "slot never freed: {r:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(b.send("HELLO")[0].starts_with("SERVER"));
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let mut server = Server::start();
    let mut c = server.admin();
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(c.id(&format!("ADD USER 'user{i}' 'User {i}' 'pw{i}'")));
    }
    assert_eq!(c.send("RENAME USER 2 'Renamed'"), ["OK"]);
    let before = c.send("LIST USERS");
    server.kill9();
    server.restart();
    let mut c = server.admin();
    assert_eq!(c.send("LIST USERS"), before);
    assert_eq!(ids, (2..32).collect::<Vec<_>>());
    // The UUID is kept across restarts.
    let hello1 = c.send("HELLO");
    server.restart();
    assert_eq!(server.connect().send("HELLO"), hello1);
}

#[test]
fn sigterm_exits_cleanly_and_keeps_data() {
    let mut server = Server::start();
    let mut c = server.admin();
    assert_eq!(c.send("ADD USER 'kept' 'Kept' 'pw'"), ["ID 2"]);
    assert_eq!(server.terminate(), Some(0));
    server.restart();
    let mut c = server.admin();
    assert!(
        c.send("LIST USERS")
            .contains(&"U 2 'kept' 'Kept' 1".to_string())
    );
    c.login("kept", "pw");
}

#[test]
fn a_disabled_user_loses_access_at_once() {
    let server = Server::start();
    let mut admin = server.admin();
    admin.id("ADD USER 'bob' 'Bob' 'pw'");
    let mut bob = server.connect();
    bob.login("bob", "pw");
    // A command before the change: the connection has read (and kept) Bob's record.
    assert_eq!(bob.send("LIST USERS").len(), 2);
    assert_eq!(admin.send("GRANT USER 2 0"), ["OK"]);
    assert_eq!(bob.send("LIST USERS"), ["ERROR 300 'Login Required'"]);
    assert_eq!(
        bob.send("LOGIN 'bob' 'pw'"),
        ["ERROR 302 'Incorrect Login'"]
    );
}

#[test]
fn unknown_config_keys_stop_the_server_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[server]\nmax_lines = 5\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_webissued"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--data",
        ])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("max_lines"), "{err}");
}

#[test]
fn first_start_without_password_prints_a_random_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_webissued"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--data",
        ])
        .arg(dir.path().join("data"))
        .env_remove("WEBISSUED_ADMIN_PASSWORD")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let addr: std::net::SocketAddr = line.trim().rsplit(' ').next().unwrap().parse().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let password = err
        .split("created user 'admin' with password '")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .unwrap_or_else(|| panic!("no password in {err}"));
    assert_eq!(password.len(), 16);
    // The printed password works.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_webissued"))
        .args([
            "serve",
            "--listen",
            &addr.to_string(),
            "--http-listen",
            "127.0.0.1:0",
            "--data",
        ])
        .arg(dir.path().join("data"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let mut c = Client::connect(addr);
    c.login("admin", password);
    child.kill().unwrap();
    child.wait().unwrap();
}
