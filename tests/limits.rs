//! Abuse limits over real sockets (protocol-spec/limits.md): login brute force, slow lines,
//! clients that pipeline without reading, connection floods and over-long lines. In each,
//! another client must still be served promptly.

mod support;

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::{ADMIN_PASSWORD, Client, Server};

/// A client connecting from another loopback address, as a different machine would.
fn connect_from(server: &Server, source: [u8; 4]) -> Client {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((source, 0)).into()).unwrap();
    socket.connect(&server.addr.into()).unwrap();
    Client::from_stream(socket.into())
}

/// Another client gets HELLO answered quickly: the server is not stuck on the abuser.
fn assert_responsive(server: &Server) {
    let started = Instant::now();
    let mut c = server.connect();
    assert!(c.one("HELLO").starts_with("SERVER "));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "HELLO took {:?}",
        started.elapsed()
    );
}

fn wait_for_log(server: &Server, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains(text) {
        assert!(
            Instant::now() < deadline,
            "log lacks {text:?}:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn failed_logins_lock_the_account_without_checking_the_password() {
    let server = Server::start_with(
        "[limits]\nlogin_failures_per_account = 3\nlogin_failures_per_ip = 1000\n",
    );
    let mut admin = server.admin();
    admin.id("ADD USER 'bob' 'Bob' 'right'");
    let mut attacker = server.connect();
    for _ in 0..3 {
        assert_eq!(
            attacker.one("LOGIN 'bob' 'wrong'"),
            "ERROR 302 'Incorrect Login'"
        );
    }
    // Locked: even the right password is refused, from any address.
    assert_eq!(
        attacker.one("LOGIN 'bob' 'right'"),
        "ERROR 350 'Too Many Attempts: retry in 300 s'"
    );
    let mut elsewhere = connect_from(&server, [127, 0, 0, 2]);
    assert_eq!(
        elsewhere.one("LOGIN 'bob' 'right'"),
        "ERROR 350 'Too Many Attempts: retry in 300 s'"
    );
    // Unknown names are counted alike, so a lockout does not reveal which names exist.
    for _ in 0..3 {
        attacker.one("LOGIN 'nobody' 'x'");
    }
    assert_eq!(
        attacker.one("LOGIN 'nobody' 'x'"),
        "ERROR 350 'Too Many Attempts: retry in 300 s'"
    );
    // Other accounts are unaffected, and the connection stays usable.
    let mut other = server.connect();
    other.login("admin", ADMIN_PASSWORD);
    assert!(attacker.one("HELLO").starts_with("SERVER "));
    assert_responsive(&server);
    wait_for_log(&server, "too many failures for this account");
}

#[test]
fn failed_logins_lock_the_address_for_every_account() {
    let server = Server::start_with(
        "[limits]\nlogin_failures_per_ip = 3\nlogin_failures_per_account = 1000\n",
    );
    let mut attacker = connect_from(&server, [127, 0, 0, 3]);
    for name in ["a", "b", "c"] {
        assert_eq!(
            attacker.one(&format!("LOGIN '{name}' 'guess'")),
            "ERROR 302 'Incorrect Login'"
        );
    }
    let right = format!("LOGIN 'admin' '{ADMIN_PASSWORD}'");
    assert_eq!(
        attacker.one(&right),
        "ERROR 350 'Too Many Attempts: retry in 300 s'"
    );
    let mut again = connect_from(&server, [127, 0, 0, 3]);
    assert_eq!(
        again.one(&right),
        "ERROR 350 'Too Many Attempts: retry in 300 s'"
    );
    // Another address logs in to the same account.
    let mut legit = server.connect();
    legit.login("admin", ADMIN_PASSWORD);
    assert_responsive(&server);
    wait_for_log(&server, "too many failures from this address");
}

#[test]
fn lockouts_end_after_the_configured_time() {
    let server =
        Server::start_with("[limits]\nlogin_failures_per_account = 2\nlogin_lockout_secs = 1\n");
    let mut c = server.connect();
    c.one("LOGIN 'admin' 'wrong'");
    c.one("LOGIN 'admin' 'wrong'");
    let right = format!("LOGIN 'admin' '{ADMIN_PASSWORD}'");
    assert_eq!(c.one(&right), "ERROR 350 'Too Many Attempts: retry in 1 s'");
    std::thread::sleep(Duration::from_millis(1200));
    assert!(c.one(&right).starts_with("USER "));
}

#[test]
fn a_line_that_never_ends_is_closed_after_the_line_timeout() {
    let server = Server::start_with("[limits]\nline_timeout_secs = 1\n");
    let mut slow = server.connect();
    let started = Instant::now();
    slow.write_raw(b"HEL");
    // Drip more bytes: arriving bytes do not restart a line's clock.
    let mut dripper = slow.stream().try_clone().unwrap();
    let drip = std::thread::spawn(move || {
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(200));
            if dripper.write_all(b"L").is_err() {
                break;
            }
        }
    });
    assert_responsive(&server);
    assert_eq!(
        slow.read_reply(),
        ["ERROR 408 'Idle Timeout: line not finished within 1 s'"]
    );
    assert!(slow.is_closed());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    drip.join().unwrap();
    wait_for_log(&server, "line timeout");
}

#[test]
fn a_literal_may_be_slow_but_not_stall() {
    // Rate 0: any byte is progress (the default rate is tested in hardening_input.rs).
    let server =
        Server::start_with("[limits]\nline_timeout_secs = 1\nmin_transfer_bytes_per_sec = 0\n");
    // 6 bytes over about 2.4 s: slower than the limit in total, but never stalled.
    let mut upload = server.connect();
    upload.write_raw(b"HELLO {6}\n");
    // Refused when announced (HELLO takes no data); the bytes are skipped after.
    let reply = upload.read_reply();
    assert!(reply[0].starts_with("ERROR 402 "), "{reply:?}");
    for b in b"abcdef" {
        std::thread::sleep(Duration::from_millis(400));
        upload.write_raw(&[*b]);
    }
    assert!(upload.one("HELLO").starts_with("SERVER "));
    // A literal that stops arriving is closed.
    let mut stalled = server.connect();
    stalled.write_raw(b"HELLO {6}\nab");
    assert!(stalled.read_reply()[0].starts_with("ERROR 402 "));
    assert_eq!(
        stalled.read_reply(),
        ["ERROR 408 'Idle Timeout: data stalled for 1 s'"]
    );
    assert!(stalled.is_closed());
}

#[test]
fn a_client_that_pipelines_without_reading_blocks_only_itself() {
    let server = Server::start_with("[limits]\nwrite_timeout_secs = 3\n");
    let greedy = server.connect();
    let mut writer = greedy.stream().try_clone().unwrap();
    writer
        .set_write_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // 60 MB of commands (600 MB of replies) that are never read: far more than socket
    // buffers hold, so the writer can only finish if the server kept reading and buffering.
    let flood = std::thread::spawn(move || {
        let batch = "HELLO\n".repeat(10_000);
        let mut sent = 0usize;
        for _ in 0..1000 {
            if writer.write_all(batch.as_bytes()).is_err() {
                break;
            }
            sent += 10_000;
        }
        sent
    });
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..5 {
        assert_responsive(&server);
        std::thread::sleep(Duration::from_millis(200));
    }
    // Memory stays bounded: the server stops reading from a client that does not read.
    let rss = rss_kib(server.pid());
    assert!(rss < 200 * 1024, "server RSS {rss} KiB");
    let sent = flood.join().unwrap();
    eprintln!("pipelining without reading: {sent} commands accepted, server RSS {rss} KiB");
    assert!(
        sent < 10_000_000,
        "the server kept reading from a client that never reads"
    );
    wait_for_log(&server, "write timeout");
    assert_responsive(&server);
    drop(greedy);
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_connection_flood_is_refused_and_held_connections_keep_working() {
    let server = Server::start_with(
        "[server]\nmax_connections = 30\n[limits]\nmax_connections_per_ip = 0\n",
    );
    let mut held: Vec<Client> = (0..30).map(|_| server.connect()).collect();
    assert!(held[0].one("HELLO").starts_with("SERVER "));
    let started = Instant::now();
    let mut refused = 0;
    for _ in 0..300 {
        let mut c = server.connect();
        assert_eq!(c.read_reply(), ["ERROR 503 'Too Many Connections'"]);
        assert!(c.is_closed());
        refused += 1;
    }
    assert_eq!(refused, 300);
    assert!(started.elapsed() < Duration::from_secs(15));
    for c in held.iter_mut().step_by(7) {
        assert!(c.one("HELLO").starts_with("SERVER "));
    }
    // A freed slot is usable again.
    held.pop();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = server.connect();
        match c.try_read_reply_after("HELLO") {
            Some(r) if r[0].starts_with("SERVER ") => break,
            _ => assert!(Instant::now() < deadline, "no slot freed"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_for_log(&server, "too many connections");
}

#[test]
fn one_address_cannot_take_every_connection() {
    let server = Server::start_with("[limits]\nmax_connections_per_ip = 5\n");
    let mut held: Vec<Client> = (0..5)
        .map(|_| connect_from(&server, [127, 0, 0, 4]))
        .collect();
    assert!(held[4].one("HELLO").starts_with("SERVER "));
    let mut sixth = connect_from(&server, [127, 0, 0, 4]);
    assert_eq!(
        sixth.read_reply(),
        ["ERROR 503 'Too Many Connections: from this address'"]
    );
    assert!(sixth.is_closed());
    assert_responsive(&server);
    wait_for_log(&server, "too many connections from this address");
}

#[test]
fn a_multi_megabyte_line_is_rejected_without_buffering_it() {
    let server = Server::start_with("[server]\nmax_line_bytes = 4096\n");
    let mut big = server.connect();
    let mut writer = big.stream().try_clone().unwrap();
    let send = std::thread::spawn(move || {
        let chunk = vec![b'A'; 1 << 20];
        for _ in 0..16 {
            writer.write_all(&chunk).unwrap();
        }
        writer.write_all(b"\nHELLO\n").unwrap();
    });
    assert_responsive(&server);
    assert_eq!(
        big.read_reply(),
        ["ERROR 400 'Syntax Error: line too long'"]
    );
    assert!(big.read_reply()[0].starts_with("SERVER "));
    send.join().unwrap();
    let rss = rss_kib(server.pid());
    assert!(rss < 100 * 1024, "server RSS {rss} KiB");
    wait_for_log(&server, "line too long");
}

trait TryHello {
    fn try_read_reply_after(&mut self, line: &str) -> Option<Vec<String>>;
}

impl TryHello for Client {
    /// Sends `line`, tolerating a server that already closed the connection.
    fn try_read_reply_after(&mut self, line: &str) -> Option<Vec<String>> {
        let _ = (&mut self.stream()).write_all(format!("{line}\n").as_bytes());
        self.try_read_reply()
    }
}

/// Found by the codec fuzz target: when a client closed its sending side right after an
/// over-long line, the part of the line read after the limit was run as a command.
#[test]
fn the_tail_of_an_over_long_line_is_never_run() {
    let server = Server::start_with("[server]\nmax_line_bytes = 1024\n");
    let mut c = server.connect();
    c.write_raw(&[b'A'; 5000]);
    std::thread::sleep(Duration::from_millis(200));
    c.write_raw(b" HELLO");
    std::thread::sleep(Duration::from_millis(200));
    c.stream().shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(c.read_reply(), ["ERROR 400 'Syntax Error: line too long'"]);
    assert_eq!(
        c.try_read_reply(),
        None,
        "the tail was answered as a command"
    );
}
