//! A newcomer's first hour: the offline password reset, start-up errors that name the file or
//! key and the OS cause, HELP, the notification quick start as a member, readable digests and
//! logs (issue 22).

mod support;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use support::{ADMIN_PASSWORD, Server};

fn webissued() -> Command {
    Command::new(env!("CARGO_BIN_EXE_webissued"))
}

/// `webissued admin set-password --data DIR USER` with `stdin` as its standard input.
fn set_password(dir: &std::path::Path, user: &str, stdin: &str) -> Output {
    let mut child = webissued()
        .args(["admin", "set-password", "--data"])
        .arg(dir)
        .arg(user)
        .env_remove("WEBISSUED_ADMIN_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn set_password_is_refused_while_a_server_runs_and_works_once_it_stopped() {
    let mut server = Server::start();
    let data = server.data_dir();
    let out = set_password(&data, "admin", "new-secret\n");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("is in use"), "{err}");
    assert!(err.contains(&format!("process {}", server.pid())), "{err}");
    // The running server still knows the old password.
    server.admin();

    assert_eq!(server.terminate(), Some(0));
    let out = set_password(&data, "admin", "new-secret\n");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = set_password(&data, "nobody", "x\n");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no user with login 'nobody'"),
        "{}",
        stderr(&out)
    );

    server.restart();
    let mut c = server.connect();
    assert_eq!(
        c.one(&format!("LOGIN 'admin' '{ADMIN_PASSWORD}'")),
        "ERROR 302 'Incorrect Login'"
    );
    assert!(c.one("LOGIN 'admin' 'new-secret'").starts_with("USER 1 "));
}

#[test]
fn set_password_takes_the_environment_variable_and_refuses_an_empty_directory() {
    let mut server = Server::start();
    let data = server.data_dir();
    server.terminate();
    let out = webissued()
        .args(["admin", "set-password", "--data"])
        .arg(&data)
        .arg("admin")
        .env("WEBISSUED_ADMIN_PASSWORD", "from-env")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    server.restart();
    server.connect().login("admin", "from-env");

    let empty = tempfile::tempdir().unwrap();
    let out = set_password(empty.path(), "admin", "x\n");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("holds no webissued data"),
        "{}",
        stderr(&out)
    );
}

/// `webissued serve ARGS` expected to fail at start: its stderr, which must be one line.
fn failed_start(args: &[&str], setup: impl FnOnce(&mut Command)) -> String {
    let mut cmd = webissued();
    cmd.arg("serve").args(args).env("RUST_LOG", "info");
    setup(&mut cmd);
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "started: {args:?}");
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    err
}

#[test]
fn a_bad_time_zone_is_named_with_its_file_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("webissued.toml");
    std::fs::write(&cfg, "[server]\ntimezone = \"Mars/Olympus\"\n").unwrap();
    let data = dir.path().join("data");
    let err = failed_start(
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ],
        |c| {
            c.env_remove("WEBISSUED_ADMIN_PASSWORD");
        },
    );
    assert!(err.contains(cfg.to_str().unwrap()), "{err}");
    assert!(err.contains("[server] timezone"), "{err}");
    assert!(err.contains("Mars/Olympus"), "{err}");
    assert!(!err.contains("password"), "{err}");
    assert!(!data.exists(), "the data directory was created");
}

#[test]
fn config_syntax_errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("webissued.toml");
    std::fs::write(&cfg, "[server]\nname = \"x\"\nmax_lines = 5\n").unwrap();
    let err = failed_start(&["--config", cfg.to_str().unwrap()], |_| {});
    assert!(
        err.contains(&format!("{}: line 3:", cfg.display())),
        "{err}"
    );
    assert!(err.contains("max_lines"), "{err}");
}

#[test]
fn a_data_path_that_is_a_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data");
    std::fs::write(&file, b"x").unwrap();
    let err = failed_start(
        &[
            "--data",
            file.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ],
        |_| {},
    );
    assert!(
        err.contains(&format!("{} is a file, not a directory", file.display())),
        "{err}"
    );
}

#[test]
fn a_port_in_use_is_named_with_its_setting_before_anything_is_created() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for (listen, http, key) in [
        (addr.as_str(), "127.0.0.1:0", "[server] listen"),
        ("127.0.0.1:0", addr.as_str(), "[server] http_listen"),
    ] {
        let err = failed_start(
            &[
                "--data",
                data.to_str().unwrap(),
                "--listen",
                listen,
                "--http-listen",
                http,
            ],
            |_| {},
        );
        assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
        assert!(err.contains(key), "{err}");
        assert!(err.contains("Address already in use"), "{err}");
        assert!(!data.exists(), "the data directory was created");
    }
}

/// Permission denied must reach the user with the path. Root is never denied, so as root
/// the server runs as `nobody` (setpriv).
#[test]
fn a_data_directory_without_permission_is_named_with_the_os_cause() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
    let data = dir.path().join("data");
    let root = unsafe { libc_geteuid() } == 0;
    let args = [
        "--data",
        data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
    ];
    let err = if root {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_webissued"))
            .arg("serve")
            .args(args);
        let out = cmd.output().expect("setpriv (util-linux)");
        assert!(!out.status.success());
        stderr(&out)
    } else {
        failed_start(&args, |_| {})
    };
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(data.to_str().unwrap()), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

#[test]
fn help_knows_every_command_and_every_402_names_its_signature() {
    // The parser and HELP both come from the command table: every row must parse.
    assert!(webissued::protocol::help::COMMANDS.len() >= 50);
    let server = Server::start();
    let mut c = server.admin();
    for e in webissued::protocol::help::COMMANDS {
        // Nine integer arguments fit no command.
        let reply = c.one(&format!("{} 1 1 1 1 1 1 1 1 1", e.name));
        let usage = format!("; usage: {}'", e.signature.replace('\'', "\\'"));
        assert!(
            reply.starts_with("ERROR 402 ") && reply.ends_with(&usage),
            "{}: {reply}",
            e.name
        );
        let help = c.send(&format!("HELP '{}'", e.name.to_lowercase()));
        assert_eq!(help.len(), 1, "{help:?}");
        assert!(help[0].starts_with("H '"), "{help:?}");
    }
}

#[test]
fn help_lists_only_what_the_caller_may_use() {
    let server = Server::start_with("[subscribe]\nenabled = false\n");
    let mut anon = server.connect();
    let anon_help = anon.send("HELP");
    assert!(
        anon_help.contains(&"H 'HELLO'".to_string()),
        "{anon_help:?}"
    );
    assert!(!anon_help.iter().any(|l| l.contains("LIST USERS")));
    let mut admin = server.admin();
    let all = admin.send("HELP");
    assert!(all.iter().any(|l| l.starts_with("H 'RUN NOTIFICATIONS")));
    assert!(!all.iter().any(|l| l.contains("SUBSCRIBE")), "feature off");
    assert_eq!(
        admin.one("HELP 'SUBSCRIBE FOLDER'"),
        "ERROR 401 'Unknown Command: no command \\'SUBSCRIBE FOLDER\\'; HELP lists them'"
    );
    admin.id("ADD USER 'pa' 'Project Admin' 'pw'");
    admin.id("ADD PROJECT 'P'");
    admin.one("GRANT MEMBER 2 1 2");
    let mut pa = server.connect();
    pa.login("pa", "pw");
    let theirs = pa.send("HELP");
    assert!(theirs.iter().any(|l| l.starts_with("H 'ADD FOLDER ")));
    assert!(!theirs.iter().any(|l| l.starts_with("H 'ADD USER ")));
    assert!(theirs.len() < all.len() && theirs.len() > anon_help.len());
}

/// The `.eml` files the default (file) transport wrote, oldest first.
fn mail_files(server: &Server) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(server.data_dir().join("mail"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.retain(|p: &std::path::PathBuf| p.extension().is_some_and(|e| e == "eml"));
    files.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    files
}

fn wait_for_mails(server: &Server, n: usize) -> Vec<std::path::PathBuf> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let files = mail_files(server);
        if files.len() >= n {
            return files;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} mail(s) after 15 s, expected {n}: {}",
            files.len(),
            server.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// What the README's netcat section makes: jsmith (user 2), a member of project Website
/// (1) with folder Bugs (1).
fn readme_world(server: &Server) -> support::Client {
    let mut admin = server.admin();
    assert_eq!(admin.id("ADD USER 'jsmith' 'John Smith' 'pass123'"), 2);
    assert_eq!(admin.id("ADD PROJECT 'Website'"), 1);
    // The README's type 2 is Bugs of the default initial data; these servers start with
    // "webissued", where Bugs is type 1.
    let bugs = admin
        .send("LIST TYPES")
        .iter()
        .find_map(|l| {
            l.strip_prefix("T ")?
                .strip_suffix(" 'Bugs'")
                .map(String::from)
        })
        .expect("type Bugs");
    assert_eq!(admin.id(&format!("ADD FOLDER 1 {bugs} 'Bugs'")), 1);
    assert_eq!(admin.one("GRANT MEMBER 2 1 1"), "OK");
    admin
}

/// The README's quick start, as the member it tells the reader to be, with the pass every
/// second instead of every minute.
#[test]
fn the_readme_notification_quick_start_works_for_a_member() {
    let server = Server::start_with("[notify]\ninterval_secs = 1\n");
    let mut admin = readme_world(&server);
    let mut john = server.connect();
    // The README tells the reader their id is the first number LOGIN answers.
    assert_eq!(john.one("LOGIN 'jsmith' 'pass123'"), "USER 2 1");
    assert_eq!(
        john.one("SET PREFERENCE 2 'email' 'john@example.org'"),
        "OK"
    );
    assert_eq!(john.one("NOTIFY FOLDER 1 1"), "OK");
    // The README's confirmation step: the token from the first mail.
    let confirm = std::fs::read_to_string(&wait_for_mails(&server, 1)[0]).unwrap();
    let token = confirm
        .lines()
        .find_map(|l| l.strip_prefix("or give the server this token: "))
        .unwrap_or_else(|| panic!("no token line in {confirm}"))
        .trim();
    assert_eq!(john.one(&format!("CONFIRM EMAIL 2 '{token}'")), "OK");
    assert_eq!(admin.id("ADD ISSUE 1 'Login page returns 500'"), 1);
    admin.id("ADD COMMENT 1 'Stack trace: NullPointerException at Login.java:42'");
    let files = wait_for_mails(&server, 2);
    let digest = files
        .iter()
        .find(|f| {
            !std::fs::read_to_string(f)
                .unwrap()
                .contains("Subject: Confirm")
        })
        .unwrap();
    let m = support::mail::inspect(digest);
    assert_eq!(m.one("To"), "john@example.org");
    assert_eq!(m.one("Subject"), "[Website] #1 Login page returns 500");
    assert!(
        m.parts[0]
            .1
            .contains("NullPointerException at Login.java:42")
    );
    // A second change within the minimum interval (300 s) waits, as the README says.
    admin.one("SET VALUE 1 2 'High'");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(mail_files(&server).len(), 2);
    // PREVIEW shows it due 300 s after the last mail (`D due last`).
    let preview = admin.send("PREVIEW NOTIFICATIONS 2");
    let d: Vec<i64> = preview[0]
        .strip_prefix("D ")
        .unwrap_or_else(|| panic!("{preview:?}"))
        .split(' ')
        .map(|t| t.parse().unwrap())
        .collect();
    assert_eq!(d[0] - d[1], 300, "{preview:?}");
}

/// A minimal HTTP/1.1 request; returns (status, body).
fn http(addr: std::net::SocketAddr, method: &str, path_and_query: &str) -> (u16, String) {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 26\r\n\r\n\
         List-Unsubscribe=One-Click"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_string())
}

#[test]
fn a_digest_says_what_changed_who_when_and_how_to_stop_it() {
    let mut server = Server::start();
    let http_addr = server.http_addr();
    let mut admin = readme_world(&server);
    for line in [
        "SET PREFERENCE 2 'email' 'john@example.org'",
        "SET PREFERENCE 2 'timezone' 'Europe/Warsaw'",
    ] {
        assert_eq!(admin.one(line), "OK");
    }
    let mut john = server.connect();
    john.login("jsmith", "pass123");
    assert_eq!(john.one("NOTIFY FOLDER 1 1"), "OK");

    admin.id("ADD ISSUE 1 'Login page returns 500'");
    let long = format!("  First line <b>bold</b>\\n{}  ", "x".repeat(600));
    admin.id(&format!("ADD COMMENT 1 '{long}'"));
    admin.id("SET VALUE 1 2 'High'");
    admin.write_raw(b"ADD ATTACHMENT 1 'trace.log' 'the log' {2048}\n");
    admin.write_raw(&[b'a'; 2048]);
    assert!(admin.read_reply()[0].starts_with("ID "));
    assert_eq!(admin.one("RUN NOTIFICATIONS"), "PASS 1 1 1 0 0");
    let files = wait_for_mails(&server, 1);
    let m = support::mail::inspect(&files[0]);
    assert_eq!(m.one("Subject"), "[Website] #1 Login page returns 500");
    assert_eq!(m.one("In-Reply-To"), "<issue-1@localhost>");
    let text = &m.parts[0].1;
    for needle in [
        "(Europe/Warsaw), Administrator: created the issue",
        "Administrator: commented:\n      | First line <b>bold</b>\n      | xxxx",
        "changed Severity from \"Medium\" to \"High\"",
        "attached \"trace.log\" (2.0 KiB)",
        "You get this mail because you watch folder 1 \"Bugs\".",
        "SET PREFERENCE 2 'notify-frequency' 'DAILY time=\"08:30\"'",
        "Stop watching: NOTIFY FOLDER 1 0",
        "Stop all these mails: SET PREFERENCE 2 'email' ''",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
    // Trimmed: 500 characters of the comment, marked.
    assert!(
        text.contains(&format!("| {}…", "x".repeat(500 - 22))),
        "{text}"
    );
    assert!(!text.contains(&"x".repeat(520)), "{text}");

    // The HTML part as a browser renders it: the same facts, the markup escaped.
    let html = &m.parts[1].1;
    assert!(
        html.contains("First line &lt;b&gt;bold&lt;&#x2f;b&gt;"),
        "{html}"
    );
    let page = tempfile::Builder::new().suffix(".html").tempfile().unwrap();
    std::fs::write(page.path(), html).unwrap();
    let shown = browser_text(&format!("file://{}", page.path().display()));
    for needle in [
        "commented:",
        "First line <b>bold</b>",
        "changed Severity from \"Medium\" to \"High\"",
        "attached \"trace.log\" (2.0 KiB)",
        "Stop watching: NOTIFY FOLDER 1 0",
        "Stop these mails",
    ] {
        assert!(shown.contains(needle), "{needle:?} not shown:\n{shown}");
    }

    // The one-click stop link: a GET changes nothing, the POST removes the address.
    let stop = m.one("List-Unsubscribe");
    let url = stop.trim_matches(['<', '>']);
    let path = url.split_once(&http_addr.to_string()).unwrap().1;
    assert!(path.starts_with("/digest/2/stop?token="), "{url}");
    let (status, body) = http(http_addr, "GET", path);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("john@example.org"), "{body}");
    assert!(
        admin
            .send("LIST PREFERENCES 2")
            .contains(&"P 'email' 'john@example.org'".to_string())
    );
    let other = if path.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{other}", &path[..path.len() - 1]);
    assert_eq!(http(http_addr, "POST", &forged).0, 404);
    let (status, body) = http(http_addr, "POST", path);
    assert_eq!(status, 200, "{body}");
    assert!(
        !admin
            .send("LIST PREFERENCES 2")
            .iter()
            .any(|l| l.contains("email"))
    );
    // Used: the address is gone, so the link is no longer valid.
    assert_eq!(http(http_addr, "POST", path).0, 404);
}

#[test]
fn a_digest_about_several_issues_counts_them_in_the_subject() {
    let server = Server::start_with("[notify]\nmin_interval_secs = 0\n");
    let mut admin = readme_world(&server);
    assert_eq!(
        admin.one("SET PREFERENCE 2 'email' 'john@example.org'"),
        "OK"
    );
    let mut john = server.connect();
    john.login("jsmith", "pass123");
    assert_eq!(john.one("NOTIFY FOLDER 1 1"), "OK");
    admin.id("ADD ISSUE 1 'First'");
    admin.id("ADD ISSUE 1 'Second'");
    admin.id("ADD COMMENT 2 'more'");
    assert_eq!(admin.one("RUN NOTIFICATIONS"), "PASS 1 1 1 0 0");
    let m = support::mail::inspect(&wait_for_mails(&server, 1)[0]);
    assert_eq!(m.one("Subject"), "[Website] 3 changes in 2 issues");
    assert!(
        m.all("In-Reply-To").is_empty(),
        "no thread for several issues"
    );
    assert!(m.parts[0].1.contains("| more"), "{}", m.parts[0].1);
}

/// The visible text of a page as headless Chromium renders it (tests/support/browser.py).
fn browser_text(url: &str) -> String {
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "chromium is missing: run scripts/test-deps.d/chromium.sh (as root)"
    );
    let out = Command::new(support::mail::PYTHON)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/browser.py"
        ))
        .arg(url)
        .output()
        .unwrap();
    assert!(out.status.success(), "browser.py: {}", stderr(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("text\t"))
        .unwrap_or_default()
        .replace("\\n", "\n")
}

/// Every `C:`/`S:` line of protocol-spec/attributes.md, in order, is one conformance
/// transcript: the documented replies are the server's.
#[test]
fn attribute_examples_in_the_spec_replay() {
    let spec = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/protocol-spec/attributes.md"
    ))
    .unwrap();
    let transcript: String = spec
        .lines()
        .filter(|l| l.starts_with("C: ") || l.starts_with("S: "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(transcript.lines().count() > 100, "{transcript}");
    for kind in ["TEXT", "ENUM", "NUMERIC", "DATETIME", "USER"] {
        assert!(
            spec.contains(&format!("## {kind}")),
            "no section for {kind}"
        );
    }
    let server = Server::start();
    let n = webissued_conformance::run(&server.addr.to_string(), &transcript, ADMIN_PASSWORD)
        .unwrap_or_else(|e| panic!("protocol-spec/attributes.md: {e}"));
    assert!(n > 50, "{n} commands");
}

/// A server started as a user would (no RUST_LOG from the test support), its stderr in a
/// file; returns the child, the protocol and HTTP addresses and the log path.
fn spawn_plain(
    dir: &std::path::Path,
    config: &str,
    rust_log: Option<&str>,
) -> (
    std::process::Child,
    std::net::SocketAddr,
    std::net::SocketAddr,
    std::path::PathBuf,
) {
    use std::io::BufRead;
    let cfg = dir.join("webissued.toml");
    std::fs::write(&cfg, config).unwrap();
    let log = dir.join("server.log");
    let mut cmd = webissued();
    cmd.arg("serve")
        .arg("--config")
        .arg(&cfg)
        .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .arg("--data")
        .arg(dir.join("data"))
        .env("WEBISSUED_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap());
    if let Some(l) = rust_log {
        cmd.env("RUST_LOG", l);
    }
    let mut child = cmd.spawn().unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut addr = |prefix: &str| -> std::net::SocketAddr {
        let line = lines.next().unwrap().unwrap();
        line.strip_prefix(prefix)
            .unwrap_or_else(|| panic!("{line}"))
            .parse()
            .unwrap()
    };
    let a = addr("webissued listening on ");
    let h = addr("webissued http listening on ");
    std::thread::spawn(move || for _ in lines {});
    (child, a, h, log)
}

fn stop(mut child: std::process::Child) {
    Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    child.wait().unwrap();
}

fn info_lines(log: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter(|l| l.contains(" INFO "))
        .map(str::to_string)
        .collect()
}

#[test]
fn default_logs_are_one_info_line_per_start_pass_and_stop() {
    let dir = tempfile::tempdir().unwrap();
    let (child, addr, _, log) = spawn_plain(dir.path(), "", None);
    let mut admin = support::Client::connect(addr);
    admin.login("admin", ADMIN_PASSWORD);
    admin.id("ADD USER 'u' 'U' 'pw'");
    admin.id("ADD PROJECT 'P'");
    admin.id("ADD FOLDER 1 1 'F'");
    admin.one("GRANT MEMBER 2 1 1");
    admin.one("SET PREFERENCE 2 'email' 'u@example.org'");
    let mut u = support::Client::connect(addr);
    for _ in 0..3 {
        u.login("u", "pw");
    }
    u.one("NOTIFY FOLDER 1 1");
    admin.id("ADD ISSUE 1 'I'");
    assert_eq!(admin.one("RUN NOTIFICATIONS"), "PASS 1 1 1 0 0");
    drop((admin, u));
    stop(child);
    let info = info_lines(&log);
    assert_eq!(info.len(), 3, "{info:#?}");
    assert!(info[0].contains("started"), "{info:#?}");
    assert!(info[0].contains(&format!("addr={addr}")), "{info:#?}");
    assert!(info[0].contains("mail=file "), "{info:#?}");
    assert!(
        info[1].contains("notification pass users=1 queued=1"),
        "{info:#?}"
    );
    assert!(info[2].contains("stopped"), "{info:#?}");
    let all = std::fs::read_to_string(&log).unwrap();
    assert!(!all.contains("sled"), "dependencies stay at warn: {all}");
}

#[test]
fn debug_logs_http_requests_without_tokens_and_mail_errors_name_the_peer() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on this port: the SMTP error must say where it tried.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config =
        format!("[mail]\ntransport = \"smtp\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\n");
    let (child, addr, http_addr, log) = spawn_plain(dir.path(), &config, Some("debug"));
    let (status, _) = http(
        http_addr,
        "GET",
        "/subscriptions/1/confirm?token=secret-token-value",
    );
    assert_eq!(status, 404);
    let mut admin = support::Client::connect(addr);
    admin.login("admin", ADMIN_PASSWORD);
    admin.one("SET PREFERENCE 1 'email' 'a@example.org'");
    admin.one("SET PREFERENCE 1 'notify-own-changes' '1'");
    admin.id("ADD PROJECT 'P'");
    admin.id("ADD FOLDER 1 1 'F'");
    admin.one("NOTIFY FOLDER 1 1");
    admin.id("ADD ISSUE 1 'I'");
    admin.one("RUN NOTIFICATIONS");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let outbox = loop {
        let o = admin.send("LIST OUTBOX");
        if o.iter().any(|l| l.contains("failure")) || std::time::Instant::now() > deadline {
            break o;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let peer = format!("smtp 127.0.0.1:{port}: ");
    assert!(outbox.iter().any(|l| l.contains(&peer)), "{outbox:?}");
    drop(admin);
    stop(child);
    let all = std::fs::read_to_string(&log).unwrap();
    let request = all
        .lines()
        .find(|l| l.contains("http request"))
        .unwrap_or_else(|| panic!("no request line: {all}"));
    assert!(request.contains("DEBUG"), "{request}");
    assert!(request.contains("method=GET"), "{request}");
    assert!(
        request.contains("path=/subscriptions/1/confirm"),
        "{request}"
    );
    assert!(request.contains("status=404"), "{request}");
    assert!(
        !all.contains("secret-token-value"),
        "a token reached the log"
    );
    assert!(
        all.lines()
            .any(|l| l.contains(" WARN ") && l.contains(&peer)),
        "{all}"
    );
    assert!(!all.contains("sled::"), "RUST_LOG=debug keeps sled at warn");
}

#[test]
fn serve_help_shows_defaults_environment_and_the_reference() {
    let out = webissued().args(["serve", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "[default: 127.0.0.1:4080]",
        "[default: 127.0.0.1:4081]",
        "[default: ./data]",
        "WEBISSUED_ADMIN_PASSWORD",
        "RUST_LOG",
        "protocol-spec/configuration.md",
    ] {
        assert!(help.contains(needle), "{needle:?} not in:\n{help}");
    }
    let defaults = webissued::config::Config::default();
    assert!(help.contains(&defaults.server.listen));
    assert!(help.contains(&defaults.server.http_listen));
}
