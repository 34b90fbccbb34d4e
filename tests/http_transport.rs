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
                head.push_str(&format!("Cookie: $Version=0; WebIssuesSID={c}; $Path=/\r\n"));
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
    assert!(lower.contains("content-type: text/plain; charset=utf-8"), "{head}");
    assert!(lower.contains("x-webissues-version: 0.8"), "{head}");
    assert!(lower.contains("x-webissues-server: webissued "), "{head}");
    let text = String::from_utf8(body).unwrap();
    assert!(text.ends_with("\r\n") && !text.ends_with("\r\n\r\n"), "{text:?}");
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
    assert_eq!(c(&format!("LOGIN 'admin' '{ADMIN_PASSWORD}'")), ["USER 1 2"]);
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
    assert_eq!(c("LIST FEATURES"), ["F 'notify'", "F 'subscribe'"]);
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
    assert!(details[0].starts_with("I 1 1 'Crash at start' "), "{details:?}");
    assert!(details.contains(&"V 3 1 'Ann B'".to_string()), "{details:?}");
    assert!(
        details.iter().any(|l| l.starts_with("C 4 1 ") && l.ends_with(" 1 'Seen it.\\nTwice.'")),
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
    let part = format!("file=@{};filename=file;type=application/octet-stream", file.display());
    assert_eq!(
        curl_cmd(&url, &jar, "ADD ATTACHMENT 1 'dump.bin' 'core'", &["-F", &part]),
        ["ID 5"]
    );
    let (status, head, body) = curl(&["-b", jar.to_str().unwrap(), "-F", "command=GET ATTACHMENT 5", &url]);
    assert_eq!(status, 200);
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("content-type: application/octet-stream"), "{head}");
    assert!(lower.contains("content-length: 70000"), "{head}");
    assert!(lower.contains("content-disposition: attachment"), "{head}");
    assert!(lower.contains("x-webissues-version: 0.8"), "{head}");
    assert!(body == upload, "attachment differs after the round trip");
    // Notifications and preferences (feature `notify`), subscriptions (`subscribe`).
    assert_eq!(c("SET PREFERENCE 1 'email' 'admin@example.org'"), ["OK"]);
    assert_eq!(c("LIST PREFERENCES 1"), ["P 'email' 'admin@example.org'"]);
    assert_eq!(c("NOTIFY FOLDER 1 1"), ["OK"]);
    assert_eq!(c("LIST NOTIFICATIONS"), ["F 1"]);
    assert_eq!(c("SUBSCRIBE ISSUE 1 'mailto:team@example.org' 0 ''"), ["ID 1"]);
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
