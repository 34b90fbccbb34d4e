//! The real desktop client (Debian's `webissues` 1.1.5, under Xvfb) driven through one
//! dialog of each family with xdotool: administration (Add Project with a description;
//! Modify Attribute with its Attribute Details dialog), Move Issue, Delete Issue, a personal
//! view (Add Personal View with columns and sort order) and an alert (Manage Alerts / Add
//! Personal Alert, a summary on chosen days and hours, tied to that view). After each step
//! the store is checked over the protocol (0.8 over TCP, 1.1 over HTTP). The client reaches
//! the server through a small recording proxy in this file, so every command it sent and
//! every reply it got is known: the test waits for replies instead of sleeping, and fails
//! on any `ERROR` reply.
//!
//! Coordinates: the client opens its main window at 0,0 in 1024x720 on a display without a
//! window manager; buttons of its ribbon are clicked where they are drawn, controls inside
//! a dialog relative to the dialog's position. Whatever is clicked is confirmed by what the
//! client then sends (e.g. `GET DETAILS 2 …` for the issue row clicked). On failure a
//! screenshot of the display, the windows and the client's command log are printed.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::Server;
use support::wi11::{DesktopClient, on_path, post};

/// One request of the client and the server's reply, as the proxy saw them.
#[derive(Clone, Debug)]
struct Exchange {
    command: String,
    reply: String,
}

/// The command and the first lines of its reply.
impl std::fmt::Display for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let lines: Vec<&str> = self.reply.lines().collect();
        write!(f, "> {}", self.command)?;
        for l in lines.iter().take(4) {
            write!(f, "\n  {l}")?;
        }
        if lines.len() > 4 {
            write!(f, "\n  ({} lines more)", lines.len() - 4)?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct ProxyState {
    log: Vec<Exchange>,
    in_flight: usize,
    last: Option<Instant>,
}

/// Forwards the client's HTTP requests to the server one connection each, recording the
/// `command` field and the reply body.
struct Proxy {
    addr: SocketAddr,
    state: Arc<Mutex<ProxyState>>,
}

impl Proxy {
    fn start(server: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(ProxyState::default()));
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || {
                    let _ = forward(conn, server, &st);
                });
            }
        });
        Proxy { addr, state }
    }

    fn log(&self) -> Vec<Exchange> {
        self.state.lock().unwrap().log.clone()
    }

    /// Whether no request is in flight and none came for `quiet`.
    fn idle(&self, quiet: Duration) -> bool {
        let s = self.state.lock().unwrap();
        s.in_flight == 0 && s.last.is_none_or(|t| t.elapsed() >= quiet)
    }
}

/// Reads one request from the client, sends it to the server with `Connection: close`,
/// and answers the client with the reply re-framed by Content-Length (then closes: the
/// client opens a new connection for its next request).
fn forward(conn: TcpStream, server: SocketAddr, st: &Mutex<ProxyState>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut head = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if !lower.starts_with("connection:") && !lower.starts_with("keep-alive:") {
            head.push(line);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let command = command_field(&body);
    {
        let mut s = st.lock().unwrap();
        s.in_flight += 1;
        s.last = Some(Instant::now());
    }
    let result = upstream(server, &head, &body);
    let reply_text = match &result {
        Ok(Upstream {
            status,
            headers,
            payload,
        }) => {
            let text = headers.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case("content-type") && v.starts_with("text/plain")
            });
            if !status.contains(" 200") {
                format!("HTTP {status}")
            } else if text {
                String::from_utf8_lossy(payload).into_owned()
            } else {
                format!("<{} bytes>", payload.len())
            }
        }
        Err(e) => format!("proxy: {e}"),
    };
    {
        let mut s = st.lock().unwrap();
        s.in_flight -= 1;
        s.last = Some(Instant::now());
        s.log.push(Exchange {
            command,
            reply: reply_text,
        });
    }
    let Upstream {
        status,
        headers,
        payload,
    } = result?;
    let mut out = format!("{status}\r\n");
    for (k, v) in &headers {
        let k_lower = k.to_ascii_lowercase();
        if ![
            "connection",
            "content-length",
            "transfer-encoding",
            "keep-alive",
        ]
        .contains(&k_lower.as_str())
        {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        payload.len()
    ));
    let mut conn = conn;
    conn.write_all(out.as_bytes())?;
    conn.write_all(&payload)?;
    conn.flush()
}

/// The server's reply to a forwarded request, its body de-chunked.
struct Upstream {
    status: String,
    headers: Vec<(String, String)>,
    payload: Vec<u8>,
}

/// Sends one request (head lines without Connection, and the body) to the server.
fn upstream(server: SocketAddr, head: &[String], body: &[u8]) -> std::io::Result<Upstream> {
    let mut up = TcpStream::connect(server)?;
    let mut out = head.concat().into_bytes();
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(body);
    up.write_all(&out)?;
    let mut raw = Vec::new();
    up.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(std::io::ErrorKind::InvalidData)?;
    let text = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut payload = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
    {
        payload = dechunk(&payload);
    }
    Ok(Upstream {
        status,
        headers,
        payload,
    })
}

/// The `command` part of the client's multipart form (the whole body when not found).
fn command_field(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let Some(at) = text.find("name=\"command\"") else {
        return text.into_owned();
    };
    let rest = &text[at..];
    let Some(start) = rest.find("\r\n\r\n") else {
        return text.into_owned();
    };
    let value = &rest[start + 4..];
    value[..value.find("\r\n--").unwrap_or(value.len())].to_string()
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = b.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&b[..end]).unwrap_or("0");
        let n = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap_or(0);
        if n == 0 || b.len() < end + 2 + n {
            break;
        }
        out.extend_from_slice(&b[end + 2..end + 2 + n]);
        b = &b[(end + 4 + n).min(b.len())..];
    }
    out
}

const MAIN_SUFFIX: &str = " - WebIssues Desktop Client";

/// xdotool on the client's display, the proxy's log, and the failure report.
struct Gui<'a> {
    display: String,
    proxy: &'a Proxy,
    shots: PathBuf,
}

impl Gui<'_> {
    fn run(&self, program: &str, args: &[&str]) -> (bool, String) {
        let out = std::process::Command::new(program)
            .args(args)
            .env("DISPLAY", &self.display)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        )
    }

    fn xdo(&self, args: &[&str]) -> String {
        let (ok, out) = self.run("xdotool", args);
        assert!(ok, "xdotool {args:?} failed");
        out
    }

    /// The visible windows with a name: (id, name).
    fn windows(&self) -> Vec<(String, String)> {
        let (_, ids) = self.run("xdotool", &["search", "--onlyvisible", "--name", "."]);
        ids.lines()
            .filter_map(|id| {
                let (ok, name) = self.run("xdotool", &["getwindowname", id]);
                (ok && !name.is_empty()).then(|| (id.to_string(), name))
            })
            .collect()
    }

    fn names(&self) -> Vec<String> {
        self.windows().into_iter().map(|(_, n)| n).collect()
    }

    /// The main window's title: "<folder or project> - <server> - WebIssues Desktop Client".
    fn title(&self) -> String {
        self.names()
            .into_iter()
            .find(|n| n.ends_with(MAIN_SUFFIX))
            .unwrap_or_default()
    }

    fn wait<T>(&self, what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = f() {
                return v;
            }
            self.no_error_replies();
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits for the window named exactly `name`; returns its id and its position.
    fn window(&self, name: &str) -> (String, i32, i32) {
        let id = self.wait(&format!("the window {name:?}"), 20, || {
            self.windows()
                .into_iter()
                .find(|(_, n)| n == name)
                .map(|(id, _)| id)
        });
        let geometry = self.xdo(&["getwindowgeometry", &id]);
        let pos = geometry
            .lines()
            .find_map(|l| l.trim().strip_prefix("Position: "))
            .and_then(|p| p.split(' ').next())
            .and_then(|p| p.split_once(','))
            .map(|(x, y)| (x.parse().unwrap(), y.parse().unwrap()))
            .unwrap_or_else(|| panic!("geometry of {name}: {geometry}"));
        // Keystrokes go to the focused window (there is no window manager to give it).
        self.xdo(&["windowfocus", "--sync", &id]);
        std::thread::sleep(Duration::from_millis(300));
        (id, pos.0, pos.1)
    }

    fn gone(&self, name: &str) {
        self.wait(&format!("the window {name:?} to close"), 20, || {
            (!self.names().iter().any(|n| n == name)).then_some(())
        });
    }

    /// Only the main window is left: no dialog and no message box.
    fn only_main_window(&self) {
        let names = self.names();
        assert!(
            names.len() == 1 && names[0].ends_with(MAIN_SUFFIX),
            "windows left: {names:?}"
        );
    }

    fn click(&self, x: i32, y: i32) {
        self.xdo(&["mousemove", &x.to_string(), &y.to_string(), "click", "1"]);
        std::thread::sleep(Duration::from_millis(300));
    }

    fn key(&self, keys: &[&str]) {
        let mut args = vec!["key", "--delay", "50"];
        args.extend_from_slice(keys);
        self.xdo(&args);
        std::thread::sleep(Duration::from_millis(200));
    }

    fn type_text(&self, text: &str) {
        self.xdo(&["type", "--delay", "20", text]);
    }

    /// The number of exchanges so far, to wait for what comes after.
    fn mark(&self) -> usize {
        self.proxy.log().len()
    }

    /// Waits for a command starting with `prefix` sent after `mark`; returns its reply.
    fn reply_to(&self, mark: usize, prefix: &str) -> String {
        self.wait(&format!("the client to send {prefix:?}"), 30, || {
            self.proxy.log()[mark..]
                .iter()
                .find(|e| e.command.starts_with(prefix))
                .map(|e| e.reply.trim_end().to_string())
        })
    }

    /// Waits until the client has had its replies and sent nothing for a moment.
    fn settle(&self) {
        self.wait("the client to be idle", 30, || {
            self.proxy.idle(Duration::from_millis(800)).then_some(())
        });
    }

    fn no_error_replies(&self) {
        let errors: Vec<Exchange> = self
            .proxy
            .log()
            .into_iter()
            .filter(|e| e.reply.starts_with("ERROR"))
            .collect();
        assert!(
            errors.is_empty(),
            "the client got error replies: {errors:?}"
        );
        let broken: Vec<Exchange> = self
            .proxy
            .log()
            .into_iter()
            .filter(|e| e.reply.starts_with("HTTP ") || e.reply.starts_with("proxy: "))
            .collect();
        assert!(broken.is_empty(), "failed requests: {broken:?}");
    }

    /// Selects a folder of project Demo in the projects tree with the keyboard, starting
    /// from the "All Projects" row (the first row); confirmed by the window title.
    fn select_folder(&self, folder: &str) {
        self.click(80, 124);
        let want = format!("{folder} - ");
        let mut expanded = false;
        for _ in 0..8 {
            if self.title().starts_with(&want) {
                return;
            }
            if self.title().starts_with("Demo - ") && !expanded {
                // Expands Demo, or moves to its first folder when already expanded.
                self.key(&["Right"]);
                expanded = true;
            } else {
                self.key(&["Down"]);
            }
            std::thread::sleep(Duration::from_millis(600));
        }
        panic!("folder {folder} not selected: title {:?}", self.title());
    }

    /// Clicks the `row`th issue (0-based) of the list; `issue` must be the one opened.
    fn open_issue(&self, row: i32, issue: i64) {
        let m = self.mark();
        self.click(600, 155 + 19 * row);
        let reply = self.reply_to(m, &format!("GET DETAILS {issue} "));
        assert!(reply.starts_with("I "), "GET DETAILS {issue}: {reply}");
        self.settle();
    }
}

/// On a panic: a screenshot, the visible windows and the client's last commands.
impl Drop for Gui<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let _ = std::fs::create_dir_all(&self.shots);
        let shot = self.shots.join("failure.png");
        let (ok, _) = self.run("import", &["-window", "root", &shot.to_string_lossy()]);
        if !ok {
            let xwd = self.shots.join("failure.xwd");
            self.run("xwd", &["-root", "-out", &xwd.to_string_lossy()]);
        }
        eprintln!("screenshot in {}", self.shots.display());
        eprintln!("windows: {:?}", self.names());
        let log = self.proxy.log();
        for e in &log[log.len().saturating_sub(40)..] {
            eprintln!("{e}");
        }
    }
}

/// 1.1 as the administrator, in a session of its own.
fn ask(addr: SocketAddr, command: &str) -> Vec<String> {
    let mut jar = None;
    let login = post(addr, &mut jar, "LOGIN 'admin' 'secret'", None).lines();
    assert!(login[0].starts_with("U "), "{login:?}");
    post(addr, &mut jar, command, None).lines()
}

/// The client's cached issues as "id:folder" pairs, from a copy of its database (the
/// client holds it locked).
fn cached_issues(desktop: &DesktopClient) -> String {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import glob,shutil,sqlite3,sys\n\
             for db in glob.glob(sys.argv[1] + '/*/cache.db'):\n\
             \x20   shutil.copy(db, sys.argv[1] + '/copy.db')\n\
             \x20   c = sqlite3.connect(sys.argv[1] + '/copy.db')\n\
             \x20   print(' '.join('%d:%d' % r for r in c.execute('select issue_id, folder_id from issues order by issue_id')))",
        )
        .arg(desktop.path("cache"))
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    )
}

fn id(reply: &str) -> i64 {
    reply
        .strip_prefix("ID ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("expected ID, got {reply:?}"))
}

#[test]
fn the_real_client_adds_a_project_moves_deletes_and_keeps_a_view_and_an_alert() {
    if !["webissues", "Xvfb", "xdotool", "python3"]
        .iter()
        .all(|c| on_path(c))
    {
        eprintln!("skipped: webissues, Xvfb, xdotool or python3 not installed");
        return;
    }
    let started = Instant::now();
    let mut server = Server::start_with("[server]\ninitial_data = \"none\"\nname = \"GUI Test\"\n");
    let http = server.http_addr();
    let mut jar = None;
    for c in [
        "LOGIN 'admin' 'secret'",
        "ADD TYPE 'Bugs'",
        "ADD ATTRIBUTE 1 'Status' 'ENUM items={\"Active\",\"Closed\"} default=\"Active\" required=1'",
        "ADD ATTRIBUTE 1 'Version' 'TEXT default=\"1.0\" required=1'",
        "ADD PROJECT 'Demo'",
        "ADD FOLDER 1 1 'Bugs'",
        "ADD FOLDER 1 1 'More bugs'",
        "ADD ISSUE 1 'Stays'",
        "ADD ISSUE 1 'Moves'",
        "ADD ISSUE 1 'Goes'",
    ] {
        let r = post(http, &mut jar, c, None).lines();
        assert!(!r[0].starts_with("ERROR"), "{c}: {r:?}");
    }
    let hello = post(http, &mut None, "HELLO", None).lines()[0].clone();
    let uuid = hello.split('\'').nth(3).unwrap().to_string();
    let proxy = Proxy::start(http);
    let desktop = DesktopClient::start(proxy.addr, &uuid, "admin", "secret", 350);
    let gui = Gui {
        display: desktop.display.clone(),
        proxy: &proxy,
        shots: std::env::temp_dir().join(format!("wi11-gui-{}", std::process::id())),
    };
    let mut tcp = server.admin();

    // Login (with the stored password, at start-up) and the initial load.
    gui.wait("the main window", 30, || {
        gui.title()
            .ends_with(&format!("GUI Test{MAIN_SUFFIX}"))
            .then_some(())
    });
    assert!(gui.reply_to(0, "LOGIN ").starts_with("U 1 "));
    gui.reply_to(0, "LIST ISSUES 1 ");
    gui.settle();
    gui.only_main_window();

    // Administration: Add Project, with a description.
    gui.click(80, 124);
    let m = gui.mark();
    gui.click(33, 35);
    let (_, x, y) = gui.window("Add Project");
    gui.click(x + 340, y + 268);
    gui.type_text("Made in the dialog.");
    gui.click(x + 390, y + 64);
    gui.type_text("Desktop Project");
    gui.key(&["Return"]);
    let project = id(&gui.reply_to(m, "ADD PROJECT 'Desktop Project'"));
    let d = gui.reply_to(m, &format!("ADD PROJECT DESCRIPTION {project} "));
    assert!(d.starts_with("ID "), "{d}");
    gui.gone("Add Project");
    gui.settle();
    gui.only_main_window();
    let projects = tcp.send("LIST PROJECTS");
    assert!(
        projects.iter().any(|l| l.contains("'Desktop Project'")),
        "0.8 LIST PROJECTS: {projects:?}"
    );
    let summary = ask(http, &format!("GET SUMMARY {project} 0"));
    assert_eq!(summary.len(), 2, "{summary:?}");
    assert!(
        summary[1].starts_with(&format!("D {project} 'Made in the dialog.' 1 ")),
        "{summary:?}"
    );

    // Move Issue: "Moves" (#2, second row) from Bugs to More bugs.
    gui.select_folder("Bugs");
    gui.settle();
    gui.open_issue(1, 2);
    let m = gui.mark();
    gui.click(380, 21);
    gui.window("Move Issue");
    gui.key(&["Down"]);
    gui.key(&["Return"]);
    let reply = gui.reply_to(m, "MOVE ISSUE 2 2");
    assert!(reply.starts_with("ID "), "{reply}");
    gui.gone("Move Issue");
    gui.settle();
    gui.only_main_window();
    let more = tcp.send("LIST ISSUES 2 0");
    assert!(more.iter().any(|l| l.contains("'Moves'")), "{more:?}");
    let bugs = tcp.send("LIST ISSUES 1 0");
    assert!(!bugs.iter().any(|l| l.contains("'Moves'")), "{bugs:?}");

    // Delete Issue: "Goes" (#3, now the second row), confirmed.
    gui.open_issue(1, 3);
    let m = gui.mark();
    gui.click(385, 51);
    gui.window("Delete Issue");
    gui.key(&["Return"]);
    let reply = gui.reply_to(m, "DELETE ISSUE 3");
    assert!(reply.starts_with("ID "), "{reply}");
    gui.gone("Delete Issue");
    gui.settle();
    gui.only_main_window();
    assert_eq!(tcp.one("GET DETAILS 3 0"), "ERROR 305 'Unknown Issue'");
    let bugs = tcp.send("LIST ISSUES 1 0");
    assert!(bugs.iter().any(|l| l.contains("'Stays'")), "{bugs:?}");

    // A personal view: name, descending sort, the "Modified By" column left out.
    gui.click(600, 240);
    let m = gui.mark();
    gui.click(695, 21);
    let (_, x, y) = gui.window("Add Personal View");
    gui.type_text("Newest first");
    gui.key(&["alt+d"]);
    gui.click(x + 49, y + 323);
    gui.key(&["Return"]);
    let view = id(&gui.reply_to(m, "ADD VIEW 1 'Newest first' "));
    gui.gone("Add Personal View");
    gui.settle();
    gui.only_main_window();
    let types = ask(http, "LIST TYPES");
    let want =
        format!("V {view} 1 'Newest first' 'VIEW columns=\"1,0,4\" sort-column=1 sort-desc=1' 0");
    assert!(types.contains(&want), "{want} not in {types:?}");

    // An alert on More bugs: that view, a summary on Mondays at 8:00.
    gui.select_folder("More bugs");
    gui.settle();
    gui.click(500, 40);
    let (_, x, y) = gui.window("Manage Alerts");
    let m = gui.mark();
    gui.click(x + 50, y + 64);
    let (_, ax, ay) = gui.window("Add Personal Alert");
    gui.click(ax + 150, ay + 64);
    std::thread::sleep(Duration::from_millis(500));
    gui.key(&["Down", "Return"]);
    gui.key(&["alt+s"]);
    gui.click(ax + 108, ay + 360);
    gui.click(ax + 28, ay + 451);
    gui.key(&["Return"]);
    let alert = id(&gui.reply_to(m, &format!("ADD ALERT 2 {view} 2 '1' '8' 0")));
    gui.gone("Add Personal Alert");
    gui.settle();
    gui.click(x + 630, y + 378);
    gui.gone("Manage Alerts");
    gui.settle();
    gui.only_main_window();
    let projects = ask(http, "LIST PROJECTS");
    let want = format!("A {alert} 2 0 {view} 2 '1' '8' 0");
    assert!(projects.contains(&want), "{want} not in {projects:?}");

    gui.no_error_replies();
    // The client accepted the refreshes after its writes: its cache holds the moved issue
    // in More bugs and not the deleted one.
    gui.wait("the cache to hold issues 1:1 2:2 (id:folder)", 20, || {
        (cached_issues(&desktop) == "1:1 2:2").then_some(())
    });

    // Administration again, last (its window stays over the main one): Modify Attribute
    // and its Attribute Details dialog, multi-line with a maximum length (answered 322
    // before the server took 1.1's definition keys).
    gui.click(80, 124);
    gui.click(750, 51);
    gui.window("Issue Types - WebIssues Desktop Client");
    gui.click(60, 124);
    gui.key(&["Right"]);
    gui.key(&["Down", "Down"]);
    let m = gui.mark();
    gui.click(232, 40);
    let (_, x, y) = gui.window("Modify Attribute");
    gui.click(x + 378, y + 95);
    let (_, dx, dy) = gui.window("Attribute Details");
    gui.click(dx + 16, dy + 63);
    gui.click(dx + 260, dy + 133);
    gui.type_text("40");
    gui.key(&["Return"]);
    gui.gone("Attribute Details");
    gui.click(x + 264, y + 264);
    let reply = gui.reply_to(m, "MODIFY ATTRIBUTE 2 ");
    assert_eq!(reply, "OK");
    gui.gone("Modify Attribute");
    gui.settle();
    let types = ask(http, "LIST TYPES");
    let want =
        "A 2 1 'Version' 'TEXT default=\"1.0\" max-length=40 multi-line=1 required=1'".to_string();
    assert!(types.contains(&want), "{want} not in {types:?}");
    gui.no_error_replies();

    assert!(
        !server.log().contains(" ERROR "),
        "server log: {}",
        server.log()
    );
    for e in proxy.log() {
        eprintln!("{e}");
    }
    eprintln!(
        "{} exchanges in {:.1}s",
        proxy.log().len(),
        started.elapsed().as_secs_f64()
    );
    drop(tcp);
    server.terminate();
}

/// What the client's Attribute Details dialog writes (found driving it: its MODIFY
/// ATTRIBUTE with `multi-line=1` answered 322), and the 1.1 codes of the values it allows.
#[test]
fn the_attribute_details_dialogs_definitions_are_accepted() {
    let mut server = Server::start_with("[server]\ninitial_data = \"none\"\n");
    let http = server.http_addr();
    let mut jar = None;
    let mut send = |c: &str| post(http, &mut jar, c, None).lines().join("\n");
    for (c, want) in [
        ("LOGIN 'admin' 'secret'", "U 1 'Administrator' 2"),
        ("ADD TYPE 'Bugs'", "ID 1"),
        (
            "ADD ATTRIBUTE 1 'Version' 'TEXT default=\"1.0\" required=1'",
            "ID 1",
        ),
        (
            "MODIFY ATTRIBUTE 1 'TEXT default=\"1.0\" max-length=40 multi-line=1 required=1'",
            "OK",
        ),
        (
            "ADD ATTRIBUTE 1 'Labels' 'ENUM items={\"ui\",\"docs\"} multi-select=1'",
            "ID 2",
        ),
        ("ADD ATTRIBUTE 1 'Code' 'TEXT min-length=3'", "ID 3"),
        ("ADD ATTRIBUTE 1 'Cost' 'NUMERIC decimal=2 strip=1'", "ID 4"),
        ("ADD ATTRIBUTE 1 'Due' 'DATETIME time=1 local=1'", "ID 5"),
        ("ADD ATTRIBUTE 1 'Team' 'USER multi-select=1'", "ID 6"),
        (
            "ADD ATTRIBUTE 1 'Bad' 'DATETIME local=1'",
            "ERROR 322 'Invalid Definition'",
        ),
        ("ADD PROJECT 'P'", "ID 1"),
        ("ADD FOLDER 1 1 'F'", "ID 1"),
        ("ADD ISSUE 1 'I'", "ID 1"),
        ("SET VALUE 1 2 'docs, ui'", "ID 2"),
        ("SET VALUE 1 2 'docs,ui'", "ERROR 332 'Invalid Format'"),
        ("SET VALUE 1 2 'ui, ui'", "ERROR 337 'Duplicate Items'"),
        ("SET VALUE 1 3 'ab'", "ERROR 326 'String Too Short'"),
        ("SET VALUE 1 1 'two\\nlines'", "ERROR 319 'Invalid String'"),
        ("SET VALUE 1 6 'Administrator'", "ID 3"),
    ] {
        assert_eq!(send(c), want, "{c}");
    }
    // 0.8 reads the same values.
    let got = server.admin().send("LIST ISSUES 1 0");
    assert!(got.contains(&"V 2 1 'docs, ui'".to_string()), "{got:?}");
    server.terminate();
}
