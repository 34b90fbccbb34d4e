//! A WebIssues 1.1 client for tests: one request per connection, exactly as the desktop
//! client sends it (multipart `command`/`file`, the WebIssuesSID cookie), and the replay of
//! transcripts recorded from the reference server.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use webissued::wi11::transcript;

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.body)
            .split("\r\n")
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    }
}

/// One request as the 1.1.5 client makes it; `jar` holds the WebIssuesSID cookie.
pub fn post(
    addr: SocketAddr,
    jar: &mut Option<String>,
    command: &str,
    file: Option<&[u8]>,
) -> Response {
    let boundary = "nextPart-Ab3dE6gH9jK2";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"command\"\r\n\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(command.as_bytes());
    body.extend_from_slice(b"\r\n");
    if let Some(f) = file {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"file\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(f);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let accept = if command.starts_with("GET ATTACHMENT") {
        "application/octet-stream,*/*"
    } else {
        "text/plain,*/*"
    };
    let cookie = jar
        .as_ref()
        .map(|c| format!("Cookie: WebIssuesSID={c}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST /server/webissues/handler.php HTTP/1.1\r\nHost: {addr}\r\n\
         User-Agent: Mozilla/5.0 (X11; Linux) WebIssues/1.1.5 Qt/5.15.8\r\nAccept: {accept}\r\n\
         {cookie}Content-Type: multipart/form-data; boundary={boundary}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    for (k, v) in &headers {
        if k.eq_ignore_ascii_case("set-cookie") && v.starts_with("WebIssuesSID=") {
            let value = v["WebIssuesSID=".len()..].split(';').next().unwrap();
            *jar = if value.is_empty() || v.contains("Max-Age=0") {
                None
            } else {
                Some(value.to_string())
            };
        }
    }
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let end = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..end]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[end + 2..end + 2 + n]);
        b = &b[end + 4 + n..];
    }
}

/// Replays transcript files in order against the server at `addr`, each file in a
/// session of its own; returns (commands, documented overrides, differences).
/// `without_views` leaves LIST TYPES' `V` and `S` lines (views are not served) out of the
/// reference's replies.
pub fn replay(
    addr: SocketAddr,
    files: &[std::path::PathBuf],
    without_views: bool,
) -> (usize, usize, Vec<String>) {
    let (mut total, mut overridden, mut diffs) = (0, 0, Vec::new());
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let exchanges = transcript::parse(&std::fs::read_to_string(path).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut jar = None;
        for e in exchanges {
            total += 1;
            let r = post(addr, &mut jar, &e.command, e.file.as_deref());
            assert_eq!(r.status, 200, "{name}:{} {}", e.line, e.command);
            assert_eq!(r.header("x-webissues-version"), Some("1.1"));
            assert_eq!(r.header("x-webissues-server"), None);
            if let Some(expected) = &e.binary {
                assert!(
                    r.header("content-type")
                        .is_some_and(|c| c.starts_with("application/octet-stream")),
                    "{name}:{} binary reply",
                    e.line
                );
                if &r.body != expected {
                    diffs.push(format!(
                        "{name}:{} {}: binary body differs",
                        e.line, e.command
                    ));
                }
                continue;
            }
            assert!(
                r.header("content-type")
                    .is_some_and(|c| c.starts_with("text/plain")),
                "{name}:{} text reply",
                e.line
            );
            let command = e.command.split(' ').take(2).collect::<Vec<_>>().join(" ");
            let command = if e.command == "HELLO" {
                "HELLO".into()
            } else {
                command
            };
            let mut expected = match &e.webissued {
                Some(w) => {
                    overridden += 1;
                    w.clone()
                }
                None => e.reply.clone(),
            };
            if without_views && command == "LIST TYPES" {
                expected.retain(|l| !l.starts_with("V ") && !l.starts_with("S "));
            }
            let want = transcript::normalise(&command, &expected);
            let got = transcript::normalise(&command, &r.lines());
            if want != got {
                diffs.push(format!(
                    "{name}:{} {}\n  reference: {want:?}\n  webissued: {got:?}",
                    e.line, e.command
                ));
            }
        }
    }
    (total, overridden, diffs)
}

/// Whether `cmd` is an executable file on PATH (the desktop-client tests skip without it).
pub fn on_path(cmd: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
}

/// Kills a child started here (by its own handle) when the test ends.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The real WebIssues desktop client 1.1.5 under its own Xvfb display, with a profile
/// (tests/support/wi11_client_profile.py) that logs in to `addr` at start-up. Both end
/// with the value.
pub struct DesktopClient {
    // Fields drop in order: the client before its display, the directory last.
    _client: Killed,
    _xvfb: Killed,
    /// The X display, e.g. `:173`, for xdotool.
    pub display: String,
    dir: tempfile::TempDir,
}

impl DesktopClient {
    /// `uuid` is the server's (HELLO); `first_display` is where the search for a free
    /// display number starts, so tests in different binaries pick different ones.
    pub fn start(
        addr: SocketAddr,
        uuid: &str,
        login: &str,
        password: &str,
        first_display: u32,
    ) -> DesktopClient {
        let dir = tempfile::tempdir().unwrap();
        let p = |s: &str| dir.path().join(s);
        for d in ["home", "runtime"] {
            std::fs::create_dir_all(p(d)).unwrap();
        }
        let profile = std::process::Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/support/wi11_client_profile.py"
            ))
            .arg(p("data"))
            .arg(format!("http://{addr}/"))
            .args(["WI11 Test", uuid, login, password])
            .status()
            .unwrap();
        assert!(profile.success());
        let display = (first_display..first_display + 100)
            .map(|n| format!(":{n}"))
            .find(|d| !std::path::Path::new(&format!("/tmp/.X11-unix/X{}", &d[1..])).exists())
            .unwrap();
        let xvfb = Killed(
            std::process::Command::new("Xvfb")
                .args([&display, "-screen", "0", "1280x900x24", "-nolisten", "tcp"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        std::thread::sleep(std::time::Duration::from_secs(1));
        let client = Killed(
            std::process::Command::new("webissues")
                .arg("-data")
                .arg(p("data"))
                .arg("-cache")
                .arg(p("cache"))
                .arg("-shared")
                .arg(p("shared"))
                .env("DISPLAY", &display)
                .env("HOME", p("home"))
                .env("XDG_RUNTIME_DIR", p("runtime"))
                .env("QT_QPA_PLATFORM", "xcb")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        DesktopClient {
            _client: client,
            _xvfb: xvfb,
            display,
            dir,
        }
    }

    /// A path in the client's own directory (`data`, `cache`, `shared`, `home`).
    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}
