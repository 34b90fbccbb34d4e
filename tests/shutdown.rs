//! The shutdown order (src/shutdown.rs, protocol-spec/configuration.md "Shutdown"), against
//! the real binary: at SIGTERM both listeners stop accepting, a write begun on either
//! transport is read to its end, answered and durable, idle connections close at once, and a
//! stalled client holds the exit no longer than `[server] shutdown_secs`.

mod support;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};
use support::{ADMIN_PASSWORD, Client, Server};

fn sigterm(server: &Server) {
    let ok = Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -TERM failed");
}

/// Waits until connecting to `addr` is refused (the listener closed its socket).
fn wait_refused(addr: SocketAddr, what: &str) {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(addr) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => return,
            _ if Instant::now() > until => panic!("{what} still accepts after SIGTERM"),
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// A raw HTTP/1.1 connection to the listener (the WebIssues 0.8 transport, urlencoded form).
struct Http {
    conn: BufReader<TcpStream>,
    cookie: Option<String>,
}

impl Http {
    fn connect(addr: SocketAddr) -> Http {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Http {
            conn: BufReader::new(s),
            cookie: None,
        }
    }

    /// The request head and the form body of `command` (spaces as `+`, quotes escaped).
    fn request(&self, command: &str) -> (String, Vec<u8>) {
        let body =
            format!("command={}", command.replace('\'', "%27").replace(' ', "+")).into_bytes();
        let mut head = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\n",
            body.len()
        );
        if let Some(c) = &self.cookie {
            head.push_str(&format!("Cookie: WebIssuesSID={c}\r\n"));
        }
        head.push_str("\r\n");
        (head, body)
    }

    fn write(&mut self, bytes: &[u8]) {
        self.conn.get_mut().write_all(bytes).unwrap();
    }

    /// Status and body of the next response; the session cookie is kept.
    fn response(&mut self) -> (u16, String) {
        let mut status = String::new();
        self.conn.read_line(&mut status).unwrap();
        let code = status
            .split(' ')
            .nth(1)
            .unwrap_or_else(|| panic!("bad status line {status:?}"))
            .parse()
            .unwrap();
        let mut len = 0;
        loop {
            let mut line = String::new();
            self.conn.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (k, v) = line.split_once(':').unwrap();
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                len = v.parse().unwrap();
            }
            if k.eq_ignore_ascii_case("set-cookie")
                && let Some(c) = v.strip_prefix("WebIssuesSID=")
            {
                self.cookie = Some(c.split(';').next().unwrap().to_string());
            }
        }
        let mut body = vec![0; len];
        self.conn.read_exact(&mut body).unwrap();
        (code, String::from_utf8(body).unwrap())
    }

    fn send(&mut self, command: &str) -> String {
        let (head, body) = self.request(command);
        self.write(head.as_bytes());
        self.write(&body);
        let (code, text) = self.response();
        assert_eq!(code, 200, "{command}: {text}");
        text
    }
}

/// Lets the server read what was just sent before the signal comes (it reads at once; this
/// only covers a busy machine).
fn settle() {
    std::thread::sleep(Duration::from_millis(500));
}

#[test]
fn writes_in_flight_on_both_transports_are_answered_and_durable_and_new_connections_refused() {
    let mut server = Server::start();
    let http_addr = server.http_addr();
    let mut tcp = server.admin();
    let mut http = Http::connect(http_addr);
    assert!(
        http.send(&format!("LOGIN 'admin' '{ADMIN_PASSWORD}'"))
            .starts_with("USER "),
        "HTTP login"
    );
    // An idle logged-in connection on each transport must not hold the stop either.
    let mut idle_tcp = server.admin();
    let mut idle_http = Http::connect(http_addr);
    idle_http.send("HELLO");

    // Each write is half sent when the signal comes.
    tcp.write_raw(b"ADD PROJECT 'over");
    let (head, body) = http.request("ADD PROJECT 'over http'");
    http.write(head.as_bytes());
    http.write(&body[..body.len() / 2]);
    settle();
    sigterm(&server);

    wait_refused(server.addr, "the TCP listener");
    wait_refused(http_addr, "the HTTP listener");
    // Idle connections are closed without waiting for the deadline.
    assert!(idle_tcp.is_closed(), "idle TCP connection left open");
    let mut rest = Vec::new();
    idle_http
        .conn
        .read_to_end(&mut rest)
        .expect("idle HTTP connection closed");
    assert!(rest.is_empty(), "idle HTTP connection got {rest:?}");

    // The rest of each write arrives after the listeners closed: both are answered.
    tcp.write_raw(b" tcp'\n");
    let tcp_reply = tcp.read_reply().join("\n");
    http.write(&body[body.len() / 2..]);
    let (code, http_reply) = http.response();
    assert_eq!(code, 200, "{http_reply}");
    let tcp_id: i64 = tcp_reply
        .strip_prefix("ID ")
        .unwrap_or_else(|| panic!("TCP write answered {tcp_reply:?}"))
        .parse()
        .unwrap();
    let http_id: i64 = http_reply
        .trim_end()
        .strip_prefix("ID ")
        .unwrap_or_else(|| panic!("HTTP write answered {http_reply:?}"))
        .parse()
        .unwrap();
    assert!(
        tcp.is_closed(),
        "the TCP connection stays open after its reply"
    );
    assert_eq!(server.terminate(), Some(0), "{}", server.log());
    assert!(
        server.log().contains("stopped (connections drained"),
        "{}",
        server.log()
    );

    server.restart();
    let projects = server.admin().send("LIST PROJECTS");
    assert!(
        projects.contains(&format!("P {tcp_id} 'over tcp'")),
        "{projects:?}"
    );
    assert!(
        projects.contains(&format!("P {http_id} 'over http'")),
        "{projects:?}"
    );
}

#[test]
fn a_stalled_client_holds_the_exit_no_longer_than_the_deadline() {
    let mut server = Server::start_with("[server]\nshutdown_secs = 2\n");
    let http_addr = server.http_addr();
    let mut written = server.admin();
    let id = written.id("ADD PROJECT 'before'");
    // One client on each transport starts a command and never finishes it.
    let mut tcp = server.admin();
    tcp.write_raw(b"ADD PROJECT 'never fin");
    let mut http = Http::connect(http_addr);
    let (head, body) = http.request("HELLO");
    http.write(head.as_bytes());
    http.write(&body[..3]);
    settle();
    let signalled = Instant::now();
    sigterm(&server);
    assert_eq!(server.terminate(), Some(0), "{}", server.log());
    let took = signalled.elapsed();
    // It waited for them (the deadline, 2 s), and not much longer.
    assert!(took >= Duration::from_millis(1900), "exited after {took:?}");
    assert!(took < Duration::from_secs(6), "exited after {took:?}");
    assert!(server.log().contains("were cut"), "{}", server.log());
    assert!(
        tcp.try_read_reply().is_none(),
        "the cut command was answered"
    );

    server.restart();
    let projects = server.admin().send("LIST PROJECTS");
    assert!(
        projects.contains(&format!("P {id} 'before'")),
        "{projects:?}"
    );
    assert!(
        !projects.iter().any(|p| p.contains("never")),
        "{projects:?}"
    );
}

#[test]
fn without_busy_connections_the_stop_is_immediate() {
    let mut server = Server::start();
    let _idle = server.admin();
    let mut client = Client::connect(server.addr);
    assert!(client.one("HELLO").starts_with("SERVER "));
    let signalled = Instant::now();
    sigterm(&server);
    assert_eq!(server.terminate(), Some(0), "{}", server.log());
    let took = signalled.elapsed();
    // The deadline is 10 s by default: an idle client must not make the exit wait for it.
    assert!(took < Duration::from_secs(3), "exited after {took:?}");
}
