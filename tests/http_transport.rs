//! The WebIssues HTTP transport (protocol-spec/http.md), driven by real clients: curl
//! (multipart, cookie jar), Python's urllib and http.client (tests/support/webissues_http.py),
//! a small raw HTTP/1.1 client here (keep-alive, exact headers), and openssl over TLS.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{ADMIN_PASSWORD, Server};

// ---------------------------------------------------------------------------------------
// A raw HTTP/1.1 client: one keep-alive connection, the cookie kept by hand.

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The text reply's lines; asserts the transport's framing (CRLF lines, no empty line
    /// at the end) and its headers.
    fn lines(&self) -> Vec<String> {
        assert_eq!(self.status, 200);
        assert_eq!(
            self.header("content-type"),
            Some("text/plain; charset=UTF-8")
        );
        self.protocol_headers();
        let text = String::from_utf8(self.body.clone()).expect("UTF-8 reply");
        assert!(text.ends_with("\r\n"), "{text:?}");
        assert!(!text.ends_with("\r\n\r\n"), "trailing empty line: {text:?}");
        text[..text.len() - 2]
            .split("\r\n")
            .map(str::to_string)
            .collect()
    }

    fn one(&self) -> String {
        let l = self.lines();
        assert_eq!(l.len(), 1, "{l:?}");
        l.into_iter().next().unwrap()
    }

    fn protocol_headers(&self) {
        assert_eq!(self.header("x-webissues-version"), Some("0.8"));
        let server = self.header("x-webissues-server").unwrap_or("");
        assert!(server.starts_with("webissued "), "{server:?}");
    }
}

struct Http {
    addr: SocketAddr,
    conn: Option<BufReader<TcpStream>>,
    cookie: Option<String>,
    /// Send the cookie in the RFC 2109 form 0.8 clients use.
    rfc2109: bool,
    /// Connections opened so far (keep-alive check).
    opened: usize,
}

impl Http {
    fn new(addr: SocketAddr) -> Http {
        Http {
            addr,
            conn: None,
            cookie: None,
            rfc2109: false,
            opened: 0,
        }
    }

    fn request(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        if self.conn.is_none() {
            let s = TcpStream::connect(self.addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            self.conn = Some(BufReader::new(s));
            self.opened += 1;
        }
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        if let Some(c) = &self.cookie {
            if self.rfc2109 {
                head.push_str(&format!(
                    "Cookie: $Version=0; WebIssuesSID={c}; $Path=/\r\n"
                ));
            } else {
                head.push_str(&format!("Cookie: WebIssuesSID={c}\r\n"));
            }
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let conn = self.conn.as_mut().unwrap();
        conn.get_mut().write_all(head.as_bytes()).unwrap();
        conn.get_mut().write_all(body).unwrap();
        let resp = read_response(conn);
        if let Some(sc) = resp.header("set-cookie") {
            let value = sc
                .split(';')
                .next()
                .unwrap()
                .strip_prefix("WebIssuesSID=")
                .expect("WebIssuesSID cookie")
                .to_string();
            self.cookie = (!sc.contains("Max-Age=0")).then_some(value);
        }
        if resp
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"))
        {
            self.conn = None;
        }
        resp
    }

    /// One command in a multipart form, with a file part when `file` is given.
    fn post(&mut self, command: &str, file: Option<&[u8]>) -> Resp {
        self.post_to("/", command.as_bytes(), file)
    }

    fn post_to(&mut self, path: &str, command: &[u8], file: Option<&[u8]>) -> Resp {
        let (body, ct) = multipart(command, file);
        self.request("POST", path, &[("Content-Type", &ct)], &body)
    }

    fn send(&mut self, command: &str) -> Vec<String> {
        self.post(command, None).lines()
    }

    fn one(&mut self, command: &str) -> String {
        self.post(command, None).one()
    }

    fn login(&mut self, login: &str, password: &str) {
        let r = self.one(&format!("LOGIN '{login}' '{password}'"));
        assert!(r.starts_with("USER "), "{r}");
    }
}

fn multipart(command: &[u8], file: Option<&[u8]>) -> (Vec<u8>, String) {
    let b = "webissuesTestBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{b}\r\nContent-Disposition: form-data; name=\"command\"\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(command);
    body.extend_from_slice(b"\r\n");
    if let Some(f) = file {
        body.extend_from_slice(
            format!(
                "--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"file\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(f);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{b}--\r\n").as_bytes());
    (body, format!("multipart/form-data; boundary={b}"))
}

fn read_response(conn: &mut BufReader<TcpStream>) -> Resp {
    let mut status_line = String::new();
    conn.read_line(&mut status_line).unwrap();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"))
        .parse()
        .unwrap();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').unwrap();
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let resp = Resp {
        status,
        headers,
        body: Vec::new(),
    };
    let len: usize = resp
        .header("content-length")
        .expect("Content-Length")
        .parse()
        .unwrap();
    let mut body = vec![0; len];
    conn.read_exact(&mut body).unwrap();
    Resp { body, ..resp }
}

/// Every byte value, in a pattern that is not a text file.
fn binary(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if i < 256 { i as u8 } else { x as u8 }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// curl

/// Runs curl (silent, failing on transport errors) and returns (status, headers, body).
fn curl(args: &[&str]) -> (u16, String, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30", "-D", "-", "-o", "-"])
        .args(args)
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let split = out
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers");
    let head = String::from_utf8_lossy(&out.stdout[..split]).into_owned();
    let body = out.stdout[split + 4..].to_vec();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, body)
}

/// curl's reply lines for one command posted with `-F`, cookies in `jar`.
fn curl_cmd(url: &str, jar: &Path, command: &str, extra: &[&str]) -> Vec<String> {
    let jar = jar.to_str().unwrap();
    let field = format!("command={command}");
    let mut args = vec!["-b", jar, "-c", jar, "-F", &field];
    args.extend_from_slice(extra);
    args.push(url);
    let (status, head, body) = curl(&args);
    assert_eq!(status, 200);
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: text/plain; charset=utf-8"),
        "{head}"
    );
    assert!(lower.contains("x-webissues-version: 0.8"), "{head}");
    assert!(lower.contains("x-webissues-server: webissued "), "{head}");
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.ends_with("\r\n") && !text.ends_with("\r\n\r\n"),
        "{text:?}"
    );
    text[..text.len() - 2]
        .split("\r\n")
        .map(str::to_string)
        .collect()
}

#[test]
fn curl_drives_every_command_family_with_a_cookie_jar() {
    let mut server = Server::start();
    let url = format!("http://{}/webissues/", server.http_addr());
    let dir = tempfile::tempdir().unwrap();
    let jar = dir.path().join("cookies.txt");
    let c = |cmd: &str| curl_cmd(&url, &jar, cmd, &[]);
    assert_eq!(c("LIST USERS"), ["ERROR 300 'Login Required'"]);
    let hello = c("HELLO");
    assert!(hello[0].starts_with("SERVER 'webissued' '"), "{hello:?}");
    assert_eq!(
        c(&format!("LOGIN 'admin' '{ADMIN_PASSWORD}'")),
        ["USER 1 2"]
    );
    let cookies = std::fs::read_to_string(&jar).unwrap();
    assert!(cookies.contains("#HttpOnly_"), "{cookies}");
    assert!(cookies.contains("WebIssuesSID"), "{cookies}");
    // Users.
    assert_eq!(c("ADD USER 'ann' 'Ann' 'pw'"), ["ID 2"]);
    assert_eq!(c("SET PASSWORD 2 'pw2'"), ["OK"]);
    assert_eq!(c("RENAME USER 2 'Ann B'"), ["OK"]);
    assert_eq!(c("GRANT USER 2 1"), ["NULL"]); // unchanged
    assert_eq!(
        c("LIST USERS"),
        ["U 1 'admin' 'Administrator' 2", "U 2 'ann' 'Ann B' 1"]
    );
    let features = c("LIST FEATURES");
    assert_eq!(
        features[..2],
        ["F 'notify'", "F 'subscribe'"],
        "{features:?}"
    );
    // Types, with the predefined type's `members=1`.
    let types = c("LIST TYPES");
    assert_eq!(types[3], "A 3 1 'Assigned To' 'USER members=1'");
    assert_eq!(c("ADD TYPE 'Tasks'"), ["ID 2"]);
    assert_eq!(c("RENAME TYPE 2 'Jobs'"), ["OK"]);
    assert_eq!(c("ADD ATTRIBUTE 2 'Owner' 'USER member=1'"), ["ID 4"]);
    assert_eq!(c("ADD ATTRIBUTE 2 'Due' 'DATETIME'"), ["ID 5"]);
    assert_eq!(c("RENAME ATTRIBUTE 5 'Deadline'"), ["OK"]);
    assert_eq!(c("MODIFY ATTRIBUTE 5 'DATETIME time=1'"), ["OK"]);
    assert_eq!(c("DELETE ATTRIBUTE 5"), ["OK"]);
    // Projects, folders, members.
    assert_eq!(c("ADD PROJECT 'Web'"), ["ID 1"]);
    assert_eq!(c("RENAME PROJECT 1 'Website'"), ["OK"]);
    assert_eq!(c("ADD FOLDER 1 1 'Bugs'"), ["ID 1"]);
    assert_eq!(c("ADD FOLDER 1 2 'Jobs'"), ["ID 2"]);
    assert_eq!(c("RENAME FOLDER 2 'Work'"), ["OK"]);
    assert_eq!(c("DELETE FOLDER 2"), ["OK"]);
    assert_eq!(c("DELETE TYPE 2"), ["OK"]);
    assert_eq!(c("GRANT MEMBER 2 1 1"), ["OK"]);
    let projects = c("LIST PROJECTS");
    assert_eq!(projects[0], "P 1 'Website'");
    assert!(projects[1].starts_with("F 1 1 'Bugs' 1 "), "{projects:?}");
    // Issues, values (a member for `members=1`), comments, history.
    assert_eq!(c("ADD ISSUE 1 'Crash on start'"), ["ID 1"]);
    assert_eq!(c("RENAME ISSUE 1 'Crash at start'"), ["ID 2"]);
    assert_eq!(c("SET VALUE 1 3 'Ann B'"), ["ID 3"]);
    let refused = c("SET VALUE 1 3 'Administrator'");
    assert!(refused[0].starts_with("ERROR 342 "), "{refused:?}");
    assert_eq!(c("ADD COMMENT 1 'Seen it.\\nTwice.'"), ["ID 4"]);
    let details = c("GET DETAILS 1 0");
    assert!(
        details[0].starts_with("I 1 1 'Crash at start' "),
        "{details:?}"
    );
    assert!(
        details.contains(&"V 3 1 'Ann B'".to_string()),
        "{details:?}"
    );
    assert!(
        details
            .iter()
            .any(|l| l.starts_with("C 4 1 ") && l.ends_with(" 1 'Seen it.\\nTwice.'")),
        "{details:?}"
    );
    assert!(
        details.iter().any(|l| l.starts_with("H 2 1 ") && l.ends_with(" 0 'Crash on start' 'Crash at start'")),
        "{details:?}"
    );
    assert!(c("LIST ISSUES 1 0")[0].starts_with("I 1 1 'Crash at start' "));
    assert_eq!(c("FIND ITEM 4"), ["ID 1"]);
    // Attachments: a binary file up with curl's file part, and down byte for byte.
    let upload = binary(70_000);
    let file = dir.path().join("upload.bin");
    std::fs::write(&file, &upload).unwrap();
    let part = format!(
        "file=@{};filename=file;type=application/octet-stream",
        file.display()
    );
    assert_eq!(
        curl_cmd(
            &url,
            &jar,
            "ADD ATTACHMENT 1 'dump.bin' 'core'",
            &["-F", &part]
        ),
        ["ID 5"]
    );
    let (status, head, body) = curl(&[
        "-b",
        jar.to_str().unwrap(),
        "-F",
        "command=GET ATTACHMENT 5",
        &url,
    ]);
    assert_eq!(status, 200);
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: application/octet-stream"),
        "{head}"
    );
    assert!(lower.contains("content-length: 70000"), "{head}");
    assert!(
        lower.contains("content-disposition: attachment; filename=\"dump.bin\""),
        "{head}"
    );
    assert!(lower.contains("x-webissues-version: 0.8"), "{head}");
    assert!(body == upload, "attachment differs after the round trip");
    // Notifications and preferences (feature `notify`), subscriptions (`subscribe`).
    assert_eq!(c("SET PREFERENCE 1 'email' 'admin@example.org'"), ["OK"]);
    assert_eq!(c("LIST PREFERENCES 1")[0], "P 'email' 'admin@example.org'");
    assert_eq!(c("NOTIFY FOLDER 1 1"), ["OK"]);
    assert_eq!(c("LIST NOTIFICATIONS"), ["F 1"]);
    assert_eq!(
        c("SUBSCRIBE ISSUE 1 'mailto:team@example.org' 0 ''"),
        ["ID 1"]
    );
    let subs = c("LIST SUBSCRIPTIONS");
    assert!(subs[0].contains("mailto:team@example.org"), "{subs:?}");
    assert_eq!(c("DELETE SUBSCRIPTION 1"), ["OK"]);
    // The same data over TCP: one store under both transports.
    let mut tcp = server.admin();
    assert_eq!(tcp.one("FIND ITEM 5"), "ID 1");
    assert_eq!(tcp.send("GET ATTACHMENT 5")[0], "DATA 70000");
    assert!(c("DELETE PROJECT 1")[0].starts_with("ERROR 330 "));
    // QUIT ends the HTTP session.
    assert_eq!(c("QUIT"), ["OK"]);
    assert_eq!(c("LIST USERS"), ["ERROR 300 'Login Required'"]);
}

// ---------------------------------------------------------------------------------------
// Conformance transcripts over HTTP

/// One transcript step over HTTP, answered as TCP shows it: the raw bytes of a successful
/// GET ATTACHMENT become `DATA n` and the bytes as text.
///
/// The one rule where the transports differ by design: a failed LOGIN ends an HTTP
/// session, while a TCP connection stays logged in. After a failed LOGIN that followed a
/// successful one, the replay logs in again with the last good credentials (checked).
struct Replay {
    http: Http,
    last_login: Option<String>,
    /// Send a `{size}` marker with uploads (both forms are valid).
    marker: bool,
}

impl Replay {
    fn exchange(&mut self, send: &[u8]) -> Result<Vec<String>, String> {
        let nl = send.iter().position(|&b| b == b'\n').unwrap();
        let (mut line, data) = (&send[..nl], &send[nl + 1..]);
        let file = (!data.is_empty() || line.ends_with(b"{0}")).then_some(data);
        if file.is_some() && !self.marker {
            let cut = webissued::protocol::codec::literal_marker(line).unwrap().0;
            line = &line[..cut];
        }
        let resp = self.http.post_to("/", line, file);
        if resp.status != 200 {
            return Err(format!("HTTP status {}", resp.status));
        }
        resp.protocol_headers();
        let lines = if resp.header("content-type") == Some("application/octet-stream") {
            vec![
                format!("DATA {}", resp.body.len()),
                String::from_utf8_lossy(&resp.body).into_owned(),
            ]
        } else {
            resp.lines()
        };
        if line.starts_with(b"LOGIN ") {
            if lines[0].starts_with("USER ") {
                self.last_login = Some(String::from_utf8(line.to_vec()).unwrap());
                assert!(self.http.cookie.is_some(), "LOGIN set no cookie");
            } else if let Some(again) = self.last_login.clone() {
                assert!(self.http.cookie.is_none(), "failed LOGIN left the session");
                assert_eq!(self.http.one("LIST TYPES"), "ERROR 300 'Login Required'");
                let r = self.http.one(&again);
                assert!(r.starts_with("USER "), "{r}");
            }
        }
        Ok(lines)
    }
}

#[test]
fn every_conformance_transcript_gives_the_same_replies_over_http() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "transcripts in {}", dir.display());
    let mut failures = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let mut server = Server::start();
        let mut http = Http::new(server.http_addr());
        // Alternate the cookie form and the upload form between transcripts.
        http.rfc2109 = i % 2 == 0;
        let mut replay = Replay {
            http,
            last_login: None,
            marker: i % 2 == 1,
        };
        let text = std::fs::read_to_string(file).unwrap();
        match webissued_conformance::run_with(&text, ADMIN_PASSWORD, |s| replay.exchange(s)) {
            Ok(n) => eprintln!("{} over HTTP: {n} commands ok", file.display()),
            Err(e) => failures.push(format!("{}: {e}", file.display())),
        }
        assert_eq!(
            replay.http.opened, 1,
            "keep-alive: one connection per transcript"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------
// Sessions and cookies

#[test]
fn session_cookie_rules() {
    let mut server = Server::start();
    let addr = server.http_addr();
    let mut a = Http::new(addr);
    assert_eq!(a.one("LIST USERS"), "ERROR 300 'Login Required'");
    assert!(a.one("HELLO").starts_with("SERVER "));
    // LOGIN sets the cookie: 256 random bits in hex, HttpOnly, Path=/, not Secure on http.
    let r = a.post(&format!("LOGIN 'admin' '{ADMIN_PASSWORD}'"), None);
    assert_eq!(r.one(), "USER 1 2");
    let sc = r.header("set-cookie").unwrap().to_string();
    let sid = a.cookie.clone().unwrap();
    assert_eq!(sid.len(), 64);
    assert!(sid.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(sc.contains("; HttpOnly") && sc.contains("; Path=/"), "{sc}");
    assert!(!sc.contains("Secure"), "{sc}");
    assert_eq!(a.send("LIST USERS")[0], "U 1 'admin' 'Administrator' 2");
    assert!(a.post("LIST USERS", None).header("set-cookie").is_none());
    // The RFC 2109 form of the same cookie.
    a.rfc2109 = true;
    assert_eq!(a.send("LIST USERS")[0], "U 1 'admin' 'Administrator' 2");
    a.rfc2109 = false;
    // A second client has its own session; an unknown SID is no session (and is cleared).
    let mut b = Http::new(addr);
    b.cookie = Some("0".repeat(64));
    let r = b.post("LIST USERS", None);
    assert_eq!(r.one(), "ERROR 300 'Login Required'");
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(a.id_of("ADD USER 'bob' 'Bob' 'pw'"), 2);
    b.login("bob", "pw");
    assert_eq!(b.one("ADD USER 'x' 'X' 'y'"), "ERROR 301 'Access Denied'");
    // A new LOGIN gives a new identifier and ends the old one.
    let old = a.cookie.clone().unwrap();
    a.login("admin", ADMIN_PASSWORD);
    assert_ne!(a.cookie.as_deref(), Some(old.as_str()));
    let mut stale = Http::new(addr);
    stale.cookie = Some(old);
    assert_eq!(stale.one("LIST USERS"), "ERROR 300 'Login Required'");
    // A failed LOGIN ends the session.
    let r = a.post("LOGIN 'admin' 'wrong'", None);
    assert_eq!(r.one(), "ERROR 302 'Incorrect Login'");
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert!(a.cookie.is_none());
    let mut replayed = Http::new(addr);
    replayed.cookie = Some(sid);
    assert_eq!(replayed.one("LIST USERS"), "ERROR 300 'Login Required'");
    // Disabling an account ends its sessions for good: enabling it again does not
    // revive them.
    let mut tcp = server.admin();
    let bob = b.cookie.clone().unwrap();
    assert_eq!(tcp.one("GRANT USER 2 0"), "OK");
    assert_eq!(b.one("LIST USERS"), "ERROR 300 'Login Required'");
    assert!(b.cookie.is_none());
    assert_eq!(tcp.one("GRANT USER 2 1"), "OK");
    b.cookie = Some(bob);
    assert_eq!(b.one("LIST USERS"), "ERROR 300 'Login Required'");
    assert_eq!(tcp.one("GRANT USER 2 0"), "OK");
    // The throttle counts HTTP failures too: the account locks after five.
    for _ in 0..5 {
        assert_eq!(a.one("LOGIN 'admin' 'bad'"), "ERROR 302 'Incorrect Login'");
    }
    let r = a.one(&format!("LOGIN 'admin' '{ADMIN_PASSWORD}'"));
    assert!(r.starts_with("ERROR 350 'Too Many Attempts"), "{r}");
    // ...and the lock holds on the TCP listener too: one throttle under both.
    let mut fresh = server.connect();
    let r = fresh.one(&format!("LOGIN 'admin' '{ADMIN_PASSWORD}'"));
    assert!(r.starts_with("ERROR 350 'Too Many Attempts"), "{r}");
}

impl Http {
    fn id_of(&mut self, command: &str) -> i64 {
        let r = self.one(command);
        r.strip_prefix("ID ")
            .unwrap_or_else(|| panic!("{r}"))
            .parse()
            .unwrap()
    }
}

#[test]
fn secure_cookie_when_the_public_url_is_https() {
    let mut server = Server::start_with("[server]\nbase_url = \"https://tracker.example.org\"\n");
    let mut a = Http::new(server.http_addr());
    let r = a.post(&format!("LOGIN 'admin' '{ADMIN_PASSWORD}'"), None);
    let sc = r.header("set-cookie").unwrap();
    assert!(sc.ends_with("; Secure"), "{sc}");
    // The page at / names the URL to give a client.
    let page = a.request("GET", "/", &[], b"");
    assert_eq!(page.status, 200);
    let html = String::from_utf8(page.body).unwrap();
    assert!(html.contains("https://tracker.example.org/"), "{html}");
    assert!(html.contains("WebIssues 0.8"), "{html}");
}

#[test]
fn sessions_expire_after_the_idle_time() {
    let mut server = Server::start_with("[server]\nhttp_session_idle_secs = 2\n");
    let mut a = Http::new(server.http_addr());
    a.login("admin", ADMIN_PASSWORD);
    // Each use restarts the idle clock.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(1200));
        assert_eq!(a.send("LIST USERS")[0], "U 1 'admin' 'Administrator' 2");
    }
    std::thread::sleep(Duration::from_millis(2300));
    assert_eq!(a.one("LIST USERS"), "ERROR 300 'Login Required'");
    assert!(a.cookie.is_none(), "the expired cookie is cleared");
}

// ---------------------------------------------------------------------------------------
// Errors and bounds

#[test]
fn errors_are_status_200_text_replies() {
    let mut server =
        Server::start_with("[server]\nmax_attachment_bytes = 1000\nmax_line_bytes = 200\n");
    let addr = server.http_addr();
    let mut a = Http::new(addr);
    a.login("admin", ADMIN_PASSWORD);
    // Protocol errors, in the protocol.
    assert_eq!(a.one("FROB"), "ERROR 401 'Unknown Command'");
    assert_eq!(a.one("GET ATTACHMENT 9"), "ERROR 306 'Unknown Attachment'");
    assert!(a.one("ADD PROJECT 'x").starts_with("ERROR 400 "));
    assert!(
        a.one(&format!("ADD PROJECT '{}'", "x".repeat(300)))
            .starts_with("ERROR 400 'Syntax Error: line too long")
    );
    // Forms that carry no command.
    let r = a.request("POST", "/", &[("Content-Type", "text/plain")], b"HELLO");
    assert!(
        r.one()
            .starts_with("ERROR 400 'Syntax Error: Content-Type text/plain"),
        "{:?}",
        r.lines()
    );
    let r = a.request(
        "POST",
        "/",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"other=1",
    );
    assert_eq!(
        r.one(),
        "ERROR 400 'Syntax Error: no command field in the form'"
    );
    let r = a.request(
        "POST",
        "/",
        &[("Content-Type", "multipart/form-data; boundary=zz")],
        b"--zz\r\nContent-Disposition: form-data; name=\"command\"\r\n\r\nHELLO",
    );
    assert!(
        r.one().starts_with("ERROR 400 'Syntax Error: multipart"),
        "{:?}",
        r.lines()
    );
    // The urlencoded form works like multipart.
    let r = a.request(
        "POST",
        "/any/path",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"command=ADD+PROJECT+%27P%C3%B3%26q%27",
    );
    assert_eq!(r.one(), "ID 1");
    assert_eq!(a.send("LIST PROJECTS"), ["P 1 'P\u{f3}&q'"]);
    assert_eq!(a.id_of("ADD FOLDER 1 1 'F'"), 1);
    assert_eq!(a.id_of("ADD ISSUE 1 'I'"), 1);
    // Uploads: the file part's size must match a marker, must exist, and is bounded.
    assert_eq!(
        a.post("ADD ATTACHMENT 1 'a' '' {5}", Some(b"1234")).one(),
        "ERROR 403 'Upload Error: the file part has 4 bytes, the command announced 5'"
    );
    assert!(
        a.post("ADD ATTACHMENT 1 'a' '' {5}", None)
            .one()
            .starts_with("ERROR 403 ")
    );
    assert!(
        a.post("ADD ATTACHMENT 1 'a' ''", None)
            .one()
            .starts_with("ERROR 403 'Upload Error: no data")
    );
    assert_eq!(
        a.post("ADD ATTACHMENT 1 'a' ''", Some(&[7; 1001])).one(),
        "ERROR 403 'Upload Error: 1001 bytes is more than the limit of 1000'"
    );
    assert_eq!(
        a.post("ADD ATTACHMENT 1 'a' '' {1000}", Some(&[7; 1000]))
            .one(),
        "ID 2"
    );
    // A file part beside another command is ignored.
    assert!(a.post("HELLO", Some(b"xyz")).one().starts_with("SERVER "));
    // A body over the limit is refused from its Content-Length, unread, and the
    // connection is closed.
    let huge = vec![b'x'; 200_000];
    let r = a.request(
        "POST",
        "/",
        &[("Content-Type", "multipart/form-data; boundary=q")],
        &huge,
    );
    assert!(
        r.one()
            .starts_with("ERROR 403 'Upload Error: request body larger than the limit of")
    );
    assert!(
        a.conn.is_none(),
        "connection closed after an over-large body"
    );
    // GET: the page at /, 404 elsewhere; the 1.1 handler speaks 1.1 (tests/wi11.rs).
    let page = a.request("GET", "/", &[], b"");
    assert_eq!(page.status, 200);
    page.protocol_headers();
    assert!(String::from_utf8_lossy(&page.body).contains(&format!("http://{addr}/")));
    assert_eq!(a.request("GET", "/nothing", &[], b"").status, 404);
    let r = a.post_to("/server/webissues/handler.php", b"HELLO", None);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-webissues-version"), Some("1.1"));
    let hello = String::from_utf8_lossy(&r.body).into_owned();
    assert!(
        hello.starts_with("S 'webissued' '") && hello.ends_with("' '1.1.5'\r\n"),
        "{hello}"
    );
    server.terminate();
}

#[test]
fn a_stalled_body_times_out() {
    let mut server = Server::start_with("[server]\nhttp_body_max_secs = 1\n");
    let mut s = TcpStream::connect(server.http_addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=q\r\nContent-Length: 100\r\n\r\n--q")
        .unwrap();
    let started = std::time::Instant::now();
    let mut conn = BufReader::new(s);
    let r = read_response(&mut conn);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        r.one(),
        "ERROR 408 'Idle Timeout: request body not received within 1 s'"
    );
    assert_eq!(r.header("connection"), Some("close"));
    // A body that stops altogether meets the listener's stall limit, answered alike.
    let mut server = Server::start_with("[limits]\nhttp_body_timeout_secs = 1\n");
    let mut s = TcpStream::connect(server.http_addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=q\r\nContent-Length: 100\r\n\r\n--q")
        .unwrap();
    let r = read_response(&mut BufReader::new(s));
    assert_eq!(
        r.one(),
        "ERROR 408 'Idle Timeout: request body stalled: no data for 1 s'"
    );
}

// ---------------------------------------------------------------------------------------
// Python's standard library as the client

/// What the Python client saw for one command.
#[derive(Debug, Default)]
struct PyResult {
    status: u16,
    size: usize,
    sha256: String,
    headers: Vec<(String, String)>,
    lines: Vec<String>,
}

impl PyResult {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A Python step: a command, a file to upload, urlencoded or not, where to save the body.
struct Step<'a> {
    command: &'a str,
    file: Option<&'a Path>,
    urlencoded: bool,
    save: Option<&'a Path>,
}

fn step(command: &str) -> Step<'_> {
    Step {
        command,
        file: None,
        urlencoded: false,
        save: None,
    }
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn python(url: &str, steps: &[Step], extra: &[&str]) -> Vec<PyResult> {
    let json = format!(
        "[{}]",
        steps
            .iter()
            .map(|s| {
                let path = |p: Option<&Path>| {
                    p.map_or("null".to_string(), |p| json_str(p.to_str().unwrap()))
                };
                format!(
                    "{{\"command\": {}, \"file\": {}, \"urlencoded\": {}, \"save\": {}}}",
                    json_str(s.command),
                    path(s.file),
                    s.urlencoded,
                    path(s.save)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/webissues_http.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(url)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python client: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut results = Vec::new();
    let mut cur = PyResult::default();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        if let Some(r) = line.strip_prefix("R ") {
            let f: Vec<&str> = r.split(' ').collect();
            cur.status = f[0].parse().unwrap();
            cur.size = f[1].parse().unwrap();
            cur.sha256 = f[2].to_string();
        } else if let Some(h) = line.strip_prefix("H ") {
            let (k, v) = h.split_once(": ").unwrap();
            cur.headers.push((k.to_string(), v.to_string()));
        } else if let Some(l) = line.strip_prefix("L ") {
            cur.lines.push(l.to_string());
        } else if line == "E" {
            results.push(std::mem::take(&mut cur));
        }
    }
    assert_eq!(results.len(), steps.len());
    results
}

fn sha256_hex(b: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, b);
    d.as_ref().iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn python_urllib_and_http_client_with_binary_attachments_both_ways() {
    let mut server = Server::start();
    let url = format!("http://{}/", server.http_addr());
    let dir = tempfile::tempdir().unwrap();
    let up = binary(300_000);
    let up_path = dir.path().join("up.bin");
    std::fs::write(&up_path, &up).unwrap();
    // Set up over TCP, and upload one attachment there, to download over HTTP.
    let mut tcp = server.admin();
    tcp.id("ADD PROJECT 'P'");
    tcp.id("ADD FOLDER 1 1 'F'");
    tcp.id("ADD ISSUE 1 'I'");
    let tcp_bytes = binary(5000);
    tcp.write_raw(b"ADD ATTACHMENT 1 'tcp.bin' 'via tcp' {5000}\n");
    tcp.write_raw(&tcp_bytes);
    assert_eq!(tcp.read_reply(), ["ID 2"]);
    let down_tcp = dir.path().join("down-tcp.bin");
    let down_http = dir.path().join("down-http.bin");
    let login = format!("LOGIN 'admin' '{ADMIN_PASSWORD}'");
    for (mode, extra) in [("urllib", &[][..]), ("http.client", &["--keepalive"][..])] {
        let _ = std::fs::remove_file(&down_http);
        let steps = [
            step("LIST USERS"),
            step(&login),
            Step {
                urlencoded: true,
                ..step("LIST PROJECTS")
            },
            Step {
                file: Some(&up_path),
                ..step("ADD ATTACHMENT 1 'up.bin' 'via http'")
            },
            Step {
                save: Some(&down_tcp),
                ..step("GET ATTACHMENT 2")
            },
            step("GET DETAILS 1 0"),
            step("QUIT"),
            step("LIST USERS"),
        ];
        let r = python(&url, &steps, extra);
        assert!(r.iter().all(|x| x.status == 200), "{mode}: {r:?}");
        assert!(
            r.iter().all(|x| x.header("version") == Some("0.8")),
            "{mode}"
        );
        assert!(
            r.iter().all(|x| x
                .header("server")
                .is_some_and(|s| s.starts_with("webissued "))),
            "{mode}"
        );
        assert_eq!(r[0].lines, ["ERROR 300 'Login Required'"], "{mode}");
        assert_eq!(r[1].lines, ["USER 1 2"], "{mode}");
        assert!(
            r[1].header("set_cookie")
                .unwrap()
                .starts_with("WebIssuesSID=")
        );
        assert_eq!(r[2].lines[0], "P 1 'P'", "{mode}");
        let id = r[3].lines[0].clone();
        assert!(id.starts_with("ID "), "{mode}: {id}");
        assert_eq!(
            r[4].header("content_type"),
            Some("application/octet-stream")
        );
        assert_eq!(
            std::fs::read(&down_tcp).unwrap(),
            tcp_bytes,
            "{mode}: TCP upload, HTTP download"
        );
        assert!(
            r[5].lines
                .iter()
                .any(|l| l.starts_with(&format!("A {} 1 'up.bin' ", &id[3..]))
                    && l.contains(" 300000 'via http'")),
            "{mode}: {:?}",
            r[5].lines
        );
        assert_eq!(r[6].lines, ["OK"]);
        assert_eq!(
            r[7].lines,
            ["ERROR 300 'Login Required'"],
            "{mode}: QUIT ended the session"
        );
        // HTTP upload, downloaded over TCP and over HTTP, byte for byte.
        let tcp_reply = tcp.send(&format!("GET ATTACHMENT {}", &id[3..]));
        assert_eq!(tcp_reply[0], "DATA 300000");
        let again = python(
            &url,
            &[
                step(&login),
                Step {
                    save: Some(&down_http),
                    ..step(&format!("GET ATTACHMENT {}", &id[3..]))
                },
            ],
            extra,
        );
        assert_eq!(again[1].size, 300_000);
        assert_eq!(again[1].sha256, sha256_hex(&up));
        assert!(
            std::fs::read(&down_http).unwrap() == up,
            "{mode}: HTTP upload, HTTP download"
        );
    }
}

// ---------------------------------------------------------------------------------------
// TLS on both listeners

/// A self-signed certificate for 127.0.0.1 made with the openssl CLI.
fn make_cert(dir: &Path, cn: &str) {
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", &format!("/CN={cn}")])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sends `input` through `openssl s_client` to `addr`; returns what it printed.
fn s_client(addr: SocketAddr, ca: &Path, input: &str) -> String {
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &addr.to_string(),
            "-verify_return_error",
        ])
        .arg("-CAfile")
        .arg(ca)
        .arg("-ign_eof")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl s_client");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn tls_on_both_listeners_with_reload_on_sighup() {
    let certs = tempfile::tempdir().unwrap();
    make_cert(certs.path(), "webissued-test-one");
    let ca_one = certs.path().join("ca-one.pem");
    std::fs::copy(certs.path().join("cert.pem"), &ca_one).unwrap();
    let mut server = Server::start_with(&format!(
        "[server]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        certs.path().join("cert.pem").display(),
        certs.path().join("key.pem").display()
    ));
    // The line protocol is implicit TLS: s_client works like nc.
    let out = s_client(
        server.addr,
        &ca_one,
        &format!("HELLO\nLOGIN 'admin' '{ADMIN_PASSWORD}'\nLIST FEATURES\nQUIT\n"),
    );
    assert!(out.contains("SERVER 'webissued' '"), "{out}");
    assert!(out.contains("USER 1 2\r\n\r\n"), "{out}");
    assert!(
        out.contains("F 'notify'\r\nF 'subscribe'\r\n") && out.contains("\r\n\r\nOK\r\n\r\n"),
        "{out}"
    );
    assert!(
        out.contains("CN=webissued-test-one") || out.contains("CN = webissued-test-one"),
        "{out}"
    );
    // Plain text on the TLS port gets no protocol reply.
    let mut plain = TcpStream::connect(server.addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    plain.write_all(b"HELLO\n").unwrap();
    let mut got = Vec::new();
    let _ = plain.read_to_end(&mut got);
    assert!(!String::from_utf8_lossy(&got).contains("SERVER"), "{got:?}");
    // HTTPS with curl (cookie jar) and Python.
    let http = server.http_addr();
    let url = format!("https://127.0.0.1:{}/", http.port());
    let jar = certs.path().join("jar.txt");
    let ca = ca_one.to_str().unwrap();
    let login = curl_cmd(
        &url,
        &jar,
        &format!("LOGIN 'admin' '{ADMIN_PASSWORD}'"),
        &["--cacert", ca],
    );
    assert_eq!(login, ["USER 1 2"]);
    let jar_text = std::fs::read_to_string(&jar).unwrap();
    assert!(
        jar_text.contains("\t/\tTRUE\t"),
        "Secure cookie over TLS: {jar_text}"
    );
    assert_eq!(
        curl_cmd(&url, &jar, "ADD PROJECT 'Secure'", &["--cacert", ca]),
        ["ID 1"]
    );
    let r = python(
        &url,
        &[
            step(&format!("LOGIN 'admin' '{ADMIN_PASSWORD}'")),
            step("LIST PROJECTS"),
        ],
        &["--cafile", ca],
    );
    assert_eq!(r[1].lines, ["P 1 'Secure'"]);
    // A new certificate, loaded on SIGHUP, serves new connections on both listeners.
    make_cert(certs.path(), "webissued-test-two");
    let ca_two = certs.path().join("ca-two.pem");
    std::fs::copy(certs.path().join("cert.pem"), &ca_two).unwrap();
    Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let out = s_client(server.addr, &ca_two, "HELLO\nQUIT\n");
        if out.contains("SERVER 'webissued'") {
            assert!(out.contains("webissued-test-two"), "{out}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no reload: {}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = s_client(
        http,
        &ca_two,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(out.contains("x-webissues-version: 0.8"), "{out}");
    assert!(out.contains("webissued-test-two"), "{out}");
    assert!(
        server.log().contains("tls certificate reloaded"),
        "{}",
        server.log()
    );
    // A broken certificate file on reload keeps the last good one.
    std::fs::write(certs.path().join("cert.pem"), "not a certificate").unwrap();
    Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let out = s_client(server.addr, &ca_two, "HELLO\nQUIT\n");
    assert!(out.contains("SERVER 'webissued'"), "{out}");
    assert!(
        server.log().contains("tls reload failed"),
        "{}",
        server.log()
    );
}

#[test]
fn tls_needs_both_files() {
    let certs = tempfile::tempdir().unwrap();
    make_cert(certs.path(), "x");
    let config = certs.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ntls_cert = \"{}\"\n",
            certs.path().join("cert.pem").display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_webissued"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(&config)
        .arg("--data")
        .arg(certs.path().join("data"))
        .env("WEBISSUED_ADMIN_PASSWORD", "x")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tls_cert and tls_key must be set together"),
        "{err}"
    );
}

/// Sends a chunked body of 80 KiB (more than the 66 736-byte limit below) with `cookie`.
fn chunked_upload(addr: SocketAddr, cookie: Option<&str>) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let cookie = cookie.map_or(String::new(), |c| format!("Cookie: WebIssuesSID={c}\r\n"));
    s.write_all(
        format!(
            "POST / HTTP/1.1\r\nHost: x\r\n{cookie}Content-Type: multipart/form-data; boundary=q\r\n\
             Transfer-Encoding: chunked\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let chunk = [b'z'; 8192];
    for _ in 0..10 {
        if s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .is_err()
            || s.write_all(&chunk).is_err()
            || s.write_all(b"\r\n").is_err()
        {
            break; // the server answered and closed early
        }
    }
    read_response(&mut BufReader::new(s))
}

#[test]
fn a_chunked_body_is_read_only_up_to_the_limit() {
    let mut server =
        Server::start_with("[server]\nmax_attachment_bytes = 1000\nmax_line_bytes = 200\n");
    let addr = server.http_addr();
    // Without a session, no more than a command line's worth (200 + 64 KiB) is taken.
    let r = chunked_upload(addr, None);
    assert_eq!(
        r.one(),
        "ERROR 300 'Login Required: log in before sending more than 65736 bytes'"
    );
    // With one, the whole limit (1000 + 200 + 64 KiB), and no more.
    let mut a = Http::new(addr);
    a.login("admin", ADMIN_PASSWORD);
    let r = chunked_upload(addr, a.cookie.as_deref());
    assert_eq!(
        r.one(),
        "ERROR 403 'Upload Error: request body larger than the limit of 66736 bytes'"
    );
}

#[test]
fn large_bodies_need_a_session_and_room_in_the_upload_budget() {
    let mut server = Server::start_with(
        "[server]\nmax_line_bytes = 1000\n[limits]\nliteral_memory_bytes = 1000000\n",
    );
    let addr = server.http_addr();
    // A 16 MB body without a session is refused from its headers, unread, at once.
    let started = std::time::Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=q\r\n\
          Content-Length: 16000000\r\n\r\n--q\r\n",
    )
    .unwrap();
    let r = read_response(&mut BufReader::new(s));
    assert_eq!(
        r.one(),
        "ERROR 300 'Login Required: log in before sending more than 66536 bytes'"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // Logged in: an 800 000-byte upload in progress holds most of the 1 000 000-byte
    // budget, so a 300 000-byte one is refused at once with a clear error...
    let mut a = Http::new(addr);
    a.login("admin", ADMIN_PASSWORD);
    let cookie = a.cookie.clone().unwrap();
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(
        format!(
            "POST / HTTP/1.1\r\nHost: x\r\nCookie: WebIssuesSID={cookie}\r\n\
             Content-Type: multipart/form-data; boundary=q\r\nContent-Length: 800000\r\n\r\n--q"
        )
        .as_bytes(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (body, ct) = multipart(b"ADD ATTACHMENT 1 'a' ''", Some(&vec![1; 300_000]));
    let r = a.request("POST", "/", &[("Content-Type", &ct)], &body);
    assert_eq!(
        r.one(),
        "ERROR 403 'Upload Error: the server is receiving too many uploads; try again later'"
    );
    // ...and taken once the first one is gone.
    drop(slow);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(a.id_of("ADD PROJECT 'P'"), 1);
    assert_eq!(a.id_of("ADD FOLDER 1 1 'F'"), 1);
    assert_eq!(a.id_of("ADD ISSUE 1 'I'"), 1);
    let r = a.request("POST", "/", &[("Content-Type", &ct)], &body);
    assert_eq!(r.one(), "ID 2");
}

// ---------------------------------------------------------------------------------------
// The load generator's HTTP read mix (scripts/bench measures; this only checks it works)

#[test]
fn bench_http_read_mix_runs_without_errors() {
    let mut server = Server::start();
    // The generator (crates/bench) in this process, from the webissued-bench arguments.
    let bench = |addr: String, args: &[&str]| -> String {
        let target = ["--addr", &addr, "--password", ADMIN_PASSWORD];
        let argv = ["webissued-bench"].iter().chain(args).chain(&target);
        let cli = <webissued_bench::Cli as clap::Parser>::try_parse_from(argv).unwrap();
        let mut out = Vec::new();
        let result = webissued_bench::run(cli, &mut out);
        let stdout = String::from_utf8_lossy(&out).into_owned();
        assert!(result.is_ok(), "{args:?}: {stdout} {result:?}");
        stdout
    };
    bench(
        server.addr.to_string(),
        &[
            "seed",
            "--users",
            "3",
            "--projects",
            "2",
            "--folders-per-project",
            "2",
            "--issues",
            "40",
            "-c",
            "2",
        ],
    );
    let json = bench(
        server.http_addr().to_string(),
        &[
            "run",
            "--mix",
            "http-read",
            "-c",
            "4",
            "--duration",
            "1",
            "--json",
        ],
    );
    assert!(json.contains("\"errors\":0"), "{json}");
    let ops_at = json.find("\"ops\":").map(|i| &json[i + 6..]).unwrap_or("0");
    let ops: u64 = ops_at
        .split([',', '}'])
        .next()
        .unwrap()
        .parse()
        .unwrap_or(0);
    assert!(ops > 10, "{json}");
}

#[test]
fn a_password_change_ends_the_users_other_sessions() {
    let mut server = Server::start();
    let addr = server.http_addr();
    let mut tcp = server.admin();
    assert_eq!(tcp.id("ADD USER 'ann' 'Ann' 'pw'"), 2);
    let (mut one, mut two, mut admin) = (Http::new(addr), Http::new(addr), Http::new(addr));
    one.login("ann", "pw");
    two.login("ann", "pw");
    admin.login("admin", ADMIN_PASSWORD);
    // Another user's record changing leaves Ann's sessions alone.
    assert_eq!(tcp.one("RENAME USER 1 'Root'"), "OK");
    assert!(one.send("LIST USERS")[0].starts_with("U 1 "));
    // Ann changes her password in session one: one stays, two ends.
    assert_eq!(one.one("SET PASSWORD 2 'new'"), "OK");
    assert!(one.send("LIST USERS")[0].starts_with("U 1 "));
    assert_eq!(two.one("LIST USERS"), "ERROR 300 'Login Required'");
    assert!(
        two.cookie.is_none(),
        "the ended session's cookie is cleared"
    );
    // An administrator setting it (over TCP) ends session one as well; theirs stays.
    assert_eq!(tcp.one("SET PASSWORD 2 'newer'"), "OK");
    assert_eq!(one.one("LIST USERS"), "ERROR 300 'Login Required'");
    assert!(admin.send("LIST USERS")[0].starts_with("U 1 "));
    one.login("ann", "newer");
    assert!(one.send("LIST USERS")[0].starts_with("U 1 "));
}

// ---------------------------------------------------------------------------------------
// A full disk: an HTTP client is never told a lost write succeeded

/// A tmpfs of `size` at `dir`, unmounted (lazily) when dropped.
struct Tmpfs(std::path::PathBuf);

/// Kills the server when the test ends, passed or not.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_answers_http_writes_with_500_and_loses_no_acknowledged_one() {
    let root = tempfile::tempdir().unwrap();
    let mnt = root.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=48m", "tmpfs"])
        .arg(&mnt)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !mounted {
        println!("SKIPPED: cannot mount a tmpfs; run as root to test disk full over HTTP");
        return;
    }
    let _fs = Tmpfs(mnt.clone());
    let config = root.path().join("webissued.toml");
    std::fs::write(&config, "[server]\ncheckpoint_wal_mb = 1\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_webissued"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(&config)
        .arg("--data")
        .arg(mnt.join("data"))
        .env("WEBISSUED_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let _child = Killed(child);
    let _tcp = lines.next().unwrap().unwrap();
    let http: SocketAddr = lines
        .next()
        .unwrap()
        .unwrap()
        .strip_prefix("webissued http listening on ")
        .unwrap()
        .parse()
        .unwrap();
    let mut a = Http::new(http);
    a.login("admin", ADMIN_PASSWORD);
    assert_eq!(a.id_of("ADD PROJECT 'P'"), 1);
    assert_eq!(a.id_of("ADD FOLDER 1 1 'F'"), 1);
    assert_eq!(a.id_of("ADD ISSUE 1 'I'"), 1);
    let pad = "x".repeat(16 << 10);
    let mut acked = Vec::new();
    for i in 0..80 {
        assert!(
            a.one(&format!("ADD COMMENT 1 'early-{i} {pad}'"))
                .starts_with("ID ")
        );
        acked.push(format!("early-{i}"));
    }
    std::thread::sleep(Duration::from_millis(300));
    {
        let mut f = std::fs::File::create(mnt.join("filler")).unwrap();
        let chunk = vec![0x5au8; 64 << 10];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }
    // Writes until three in a row have failed: each failure is a 200 with ERROR 500.
    let (mut failed, mut in_a_row) = (Vec::new(), 0);
    for i in 0..5000 {
        let text = format!("during-{i}");
        let started = std::time::Instant::now();
        let r = a.post(&format!("ADD COMMENT 1 '{text} {pad}'"), None);
        let line = r.one();
        if line.starts_with("ID ") {
            acked.push(text);
            in_a_row = 0;
            continue;
        }
        assert!(
            line.starts_with("ERROR 500 ") && line.contains("disk full"),
            "{line}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        failed.push(text);
        in_a_row += 1;
        if in_a_row >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(in_a_row >= 3, "writes kept succeeding on a full disk");
    // Space again: writes resume; every acknowledged comment is there, no refused one.
    std::fs::remove_file(mnt.join("filler")).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = a.one("ADD COMMENT 1 'after'");
        if r.starts_with("ID ") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "writes did not resume: {r}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let details = a.send("GET DETAILS 1 0");
    let texts: Vec<String> = details
        .iter()
        .filter(|l| l.starts_with("C "))
        .map(|l| {
            l.split('\'')
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    for t in &acked {
        assert!(texts.contains(t), "acknowledged {t} is missing");
    }
    for t in &failed {
        assert!(!texts.contains(t), "refused {t} is stored");
    }
}
