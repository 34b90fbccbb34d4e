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
