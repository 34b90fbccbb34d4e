//! Real mail servers for integration tests: an aiosmtpd sink started per test on a free
//! loopback port, a scripted SMTP responder for error replies, and exim's `sendmail`.
//!
//! Missing tools make the tests fail (never skip) with a pointer to
//! `scripts/mail-servers.sh`, so a CI image without them cannot pass by accident.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's python with python3-aiosmtpd; `python3` on PATH may be another interpreter.
pub const PYTHON: &str = "/usr/bin/python3";
pub const SENDMAIL: &str = "/usr/sbin/sendmail";
/// The local user whose mbox exim's sendmail delivers to.
pub const MAILTEST_USER: &str = "mailtest";

fn missing(what: &str) -> ! {
    panic!(
        "{what} is missing: run scripts/mail-servers.sh (as root) to install the test mail servers"
    );
}

/// Fails the test unless aiosmtpd can be imported by Debian's python.
pub fn require_aiosmtpd() {
    let ok = Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        missing("python3-aiosmtpd (/usr/bin/python3 -c 'import aiosmtpd')");
    }
}

/// Fails the test unless exim's sendmail and the `mailtest` user exist.
pub fn require_exim() {
    if !Path::new("/usr/sbin/exim4").exists() || !Path::new(SENDMAIL).exists() {
        missing("exim4-daemon-light (/usr/sbin/exim4, /usr/sbin/sendmail)");
    }
    let user = Command::new("id")
        .arg(MAILTEST_USER)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !user {
        missing("the local user mailtest");
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn support_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(name)
}

/// A child process killed when the test ends, even by panic.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before listening on {port}: {status}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("{what} did not listen on port {port} within 10 s");
}

/// aiosmtpd with the Maildir handler: each accepted message lands in `maildir/new/` with
/// the envelope recorded in `X-MailFrom` and `X-RcptTo` headers.
pub struct SmtpSink {
    pub port: u16,
    pub maildir: PathBuf,
    _dir: tempfile::TempDir,
    _child: Guard,
}

impl SmtpSink {
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    /// A sink on a given port (e.g. one a server was configured with while nothing listened).
    pub fn start_on(port: u16) -> Self {
        require_aiosmtpd();
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("maildir");
        let mut child = Command::new(PYTHON)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start aiosmtpd: {e}"));
        wait_for_port(port, &mut child, "aiosmtpd");
        SmtpSink {
            port,
            maildir,
            _dir: dir,
            _child: Guard(child),
        }
    }

    /// Paths of the delivered messages, waiting up to 5 s for at least `n` of them.
    pub fn wait_for_messages(&self, n: usize) -> Vec<PathBuf> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut files: Vec<PathBuf> = std::fs::read_dir(self.maildir.join("new"))
                .map(|rd| rd.map(|e| e.unwrap().path()).collect())
                .unwrap_or_default();
            if files.len() >= n || Instant::now() > deadline {
                files.sort_by_key(|p| arrival(p));
                return files;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

/// Where a message came in the sink's order: Python's Maildir names files
/// `<seconds>.M<microseconds>P<pid>Q<count>.<host>` with a count that goes up by one per
/// message, while the microseconds have no fixed width (so names do not sort by time).
fn arrival(path: &std::path::Path) -> (u64, String) {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let count = name
        .split_once('Q')
        .and_then(|(_, rest)| rest.split('.').next())
        .and_then(|q| q.parse().ok())
        .unwrap_or(u64::MAX);
    (count, name)
}

/// `tests/support/smtp_reply.py`: an SMTP server answering every RCPT TO with `rcpt_reply`
/// and logging each RCPT TO it saw.
pub struct ScriptedSmtp {
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
    _child: Guard,
}

impl ScriptedSmtp {
    pub fn start(rcpt_reply: &str) -> Self {
        Self::start_on(free_port(), rcpt_reply)
    }

    /// A scripted server on a given port (e.g. where an [`SmtpSink`] will take over later).
    pub fn start_on(port: u16, rcpt_reply: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("rcpt.log");
        let mut child = Command::new(PYTHON)
            .arg(support_file("smtp_reply.py"))
            .arg(port.to_string())
            .arg(rcpt_reply)
            .arg(&log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start smtp_reply.py: {e}"));
        wait_for_port(port, &mut child, "smtp_reply.py");
        ScriptedSmtp {
            port,
            log,
            _dir: dir,
            _child: Guard(child),
        }
    }

    /// Unix times (seconds, fractional) of the RCPT TO commands answered so far.
    pub fn rcpt_times(&self) -> Vec<f64> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').next()?.parse().ok())
            .collect()
    }
}

/// A message as decoded by Python's `email` package (see `inspect_mail.py`).
#[derive(Debug)]
pub struct Inspected {
    pub headers: Vec<(String, String)>,
    /// (content type, decoded body) of each leaf part, in order.
    pub parts: Vec<(String, String)>,
}

impl Inspected {
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The single value of a header; panics if it is missing or repeated.
    pub fn one(&self, name: &str) -> &str {
        match self.all(name).as_slice() {
            [v] => v,
            other => panic!("expected one {name} header, got {other:?} in {self:#?}"),
        }
    }
}

pub fn inspect(path: &Path) -> Inspected {
    let out = Command::new(PYTHON)
        .arg(support_file("inspect_mail.py"))
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "inspect_mail.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut result = Inspected {
        headers: vec![],
        parts: vec![],
    };
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let mut fields = line.splitn(3, '\t');
        let (kind, a, b) = (
            fields.next().unwrap(),
            fields.next().unwrap().to_owned(),
            fields.next().unwrap_or("").to_owned(),
        );
        match kind {
            "header" => result.headers.push((a, b)),
            "part" => result.parts.push((a, b.replace("\\n", "\n"))),
            _ => panic!("unexpected line from inspect_mail.py: {line}"),
        }
    }
    result
}

/// Polls `/var/mail/<user>` until it contains `needle` (exim delivers within ~0.2 s).
pub fn wait_for_mbox(user: &str, needle: &str) -> String {
    let path = Path::new("/var/mail").join(user);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mbox = std::fs::read(&path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        if mbox.contains(needle) {
            return mbox;
        }
        if Instant::now() > deadline {
            panic!(
                "{needle:?} did not reach {} within 10 s (see /var/log/exim4/mainlog)",
                path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
