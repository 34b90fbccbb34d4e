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

/// The keyword sequences the parser accepts (`["LIST", "USERS"] =>` arms of command.rs).
fn parser_commands() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/protocol/command.rs");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let inner = l.trim().strip_prefix("[\"")?;
            let end = inner.find("\"] =>")?;
            Some(inner[..end].split("\", \"").collect::<Vec<_>>().join(" "))
        })
        .collect()
}

#[test]
fn help_knows_every_command_and_every_402_names_its_signature() {
    let parsed = parser_commands();
    assert!(parsed.len() >= 50, "{parsed:?}");
    let table: Vec<&str> = webissued::protocol::help::COMMANDS
        .iter()
        .map(|e| e.name)
        .collect();
    for name in &parsed {
        assert!(table.contains(&name.as_str()), "HELP lacks {name}");
    }
    for name in &table {
        assert!(
            parsed.iter().any(|p| p == name),
            "HELP has {name}, the parser not"
        );
    }
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
