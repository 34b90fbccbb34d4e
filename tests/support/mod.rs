//! The real server for integration tests: the `webissued` binary started on port 0 with a
//! temporary data directory, spoken to over real TCP sockets.
#![allow(dead_code)]

pub mod mail;
pub mod wi11;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The admin password every test server starts with.
pub const ADMIN_PASSWORD: &str = "secret";

pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    config: String,
    /// The HTTP listener (subscription pages), once its line has been read.
    http: Option<SocketAddr>,
    http_line: Option<std::sync::mpsc::Receiver<SocketAddr>>,
    /// Extra environment of the server process (e.g. libfaketime's LD_PRELOAD).
    env: Vec<(String, String)>,
}

/// The 0.8 suites and transcripts expect `initial_data = "webissued"` (type 1 Bugs with
/// Status, Severity, Assigned To), no longer the default: added to `[server]` unless the
/// test's configuration chooses.
fn with_webissued_data(config: &str) -> String {
    if config.contains("initial_data") {
        return format!("{config}\n");
    }
    match config.find("[server]\n") {
        Some(i) => {
            let at = i + "[server]\n".len();
            format!(
                "{}initial_data = \"webissued\"\n{}\n",
                &config[..at],
                &config[at..]
            )
        }
        None => format!("[server]\ninitial_data = \"webissued\"\n{config}\n"),
    }
}

impl Server {
    /// A server with the default configuration (plus `extra_config` TOML, may be empty).
    pub fn start() -> Server {
        Self::start_with("")
    }

    pub fn start_with(extra_config: &str) -> Server {
        Self::start_with_env(extra_config, &[])
    }

    /// As [`Server::start_with`], with extra environment variables for the server process.
    pub fn start_with_env(extra_config: &str, env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Server {
            child: None,
            addr: "127.0.0.1:0".parse().unwrap(),
            dir,
            config: extra_config.to_string(),
            http: None,
            http_line: None,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        s.spawn();
        s
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn spawn(&mut self) {
        let config_path = self.dir.path().join("webissued.toml");
        let data = self.data_dir();
        // Reuse the port on restarts so clients of the test can reconnect to the same address.
        let listen = if self.addr.port() == 0 {
            "127.0.0.1:0".to_string()
        } else {
            self.addr.to_string()
        };
        let http_listen = self
            .http
            .map_or("127.0.0.1:0".to_string(), |a| a.to_string());
        let config = with_webissued_data(&self.config);
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_webissued"))
            .args(["serve", "--config"])
            .arg(&config_path)
            .arg("--listen")
            .arg(&listen)
            .arg("--data")
            .arg(&data)
            .arg("--http-listen")
            .arg(&http_listen)
            .env("WEBISSUED_ADMIN_PASSWORD", ADMIN_PASSWORD)
            // Checkpoints and compactions log at debug; tests/crash.rs counts them.
            .env("RUST_LOG", "warn,webissued=info,webissued::store=debug")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start webissued");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("server exited: {}", self.log()))
            .unwrap();
        let addr = line
            .strip_prefix("webissued listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        self.addr = addr.parse().unwrap();
        // Keep draining stdout so the server never blocks on a full pipe; pass on the HTTP
        // listener's address (printed second, when the subscribe feature is on).
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Some(a) = line.strip_prefix("webissued http listening on ") {
                    let _ = tx.send(a.parse().unwrap());
                }
            }
        });
        self.http_line = Some(rx);
        self.child = Some(child);
    }

    /// The address of the HTTP listener (subscription pages); waits for its stdout line.
    pub fn http_addr(&mut self) -> SocketAddr {
        if let Some(rx) = self.http_line.take() {
            let a = rx
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("no HTTP listener line: {}", self.log()));
            self.http = Some(a);
        }
        self.http.expect("HTTP listener address")
    }

    /// The server's log so far (stderr), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// A client logged in as admin.
    pub fn admin(&self) -> Client {
        let mut c = self.connect();
        c.login("admin", ADMIN_PASSWORD);
        c
    }

    /// SIGKILL: no chance to flush anything that was not already durable.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns the exit status code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        unsafe_kill(c.id(), "TERM");
        let status = c.wait().unwrap();
        status.code()
    }

    /// Starts the server again on the same data directory and port.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }
}

fn unsafe_kill(pid: u32, signal: &str) {
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A protocol client: sends lines, reads replies up to their closing empty line.
pub struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Self::from_stream(TcpStream::connect(addr).unwrap())
    }

    /// A client over an already connected socket (e.g. one bound to another source address).
    pub fn from_stream(stream: TcpStream) -> Client {
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            reader: BufReader::new(stream),
        }
    }

    /// Sends one command line and returns its reply lines (without the empty line).
    pub fn send(&mut self, line: &str) -> Vec<String> {
        self.write_raw(format!("{line}\n").as_bytes());
        self.read_reply()
    }

    /// Sends a command and returns its single reply line.
    pub fn one(&mut self, line: &str) -> String {
        let r = self.send(line);
        assert_eq!(r.len(), 1, "expected one line for {line:?}, got {r:?}");
        r.into_iter().next().unwrap()
    }

    /// The socket, e.g. to clone it for a writer thread or to set timeouts.
    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).unwrap();
    }

    /// Reads one reply: lines up to the empty line. Panics on EOF before it.
    pub fn read_reply(&mut self) -> Vec<String> {
        self.try_read_reply()
            .expect("connection closed before the end of the reply")
    }

    /// Reads one reply, or None when the server closed the connection first.
    pub fn try_read_reply(&mut self) -> Option<Vec<String>> {
        let mut lines = Vec::new();
        loop {
            let mut raw = Vec::new();
            let n = self.reader.read_until(b'\n', &mut raw).ok()?;
            if n == 0 {
                return None;
            }
            assert!(raw.ends_with(b"\r\n"), "reply line without CRLF: {raw:?}");
            raw.truncate(raw.len() - 2);
            if raw.is_empty() {
                return Some(lines);
            }
            if let Some(size) = raw.strip_prefix(b"DATA ") {
                let size: usize = std::str::from_utf8(size).unwrap().parse().unwrap();
                let mut data = vec![0; size + 2];
                self.reader.read_exact(&mut data).unwrap();
                lines.push(format!("DATA {size}"));
                lines.push(String::from_utf8_lossy(&data[..size]).into_owned());
                continue;
            }
            lines.push(String::from_utf8(raw).expect("UTF-8 reply"));
        }
    }

    pub fn login(&mut self, login: &str, password: &str) {
        let r = self.send(&format!("LOGIN '{login}' '{password}'"));
        assert!(r[0].starts_with("USER "), "login {login} failed: {r:?}");
    }

    /// Sends a command expected to create something and returns the id.
    pub fn id(&mut self, line: &str) -> i64 {
        let r = self.one(line);
        r.strip_prefix("ID ")
            .unwrap_or_else(|| panic!("{line:?} answered {r:?}"))
            .parse()
            .unwrap()
    }

    /// Whether the server closed the connection (reads to EOF, up to the timeout).
    pub fn is_closed(&mut self) -> bool {
        let mut rest = Vec::new();
        self.reader.read_to_end(&mut rest).is_ok()
    }
}

/// A random-test seed: from the environment variable `var` when set (to repeat a failing
/// run), else from the clock (odd, so xorshift never starts at zero).
pub fn seed_from_env(var: &str) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        })
}

/// Runs `webissued ARGS --data DATA` (export, import, check, ...) with `input` on stdin.
pub fn tool(args: &[&str], data: &Path, input: &[u8]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_webissued"))
        .args(args)
        .arg("--data")
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// The standard output of a tool run that must have succeeded.
pub fn ok(out: std::process::Output) -> Vec<u8> {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
