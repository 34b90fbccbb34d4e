//! Email notifications end to end: the real server, real SMTP (aiosmtpd) and a real
//! `sendmail` (exim), driven through the protocol; `RUN NOTIFICATIONS` replaces sleeping.

mod support;

use std::time::{Duration, Instant};
use support::mail::{self, SmtpSink};
use support::{Client, Server};

/// A server mailing through SMTP on `port`, with passes only on request.
fn smtp_server(port: u16, extra: &str) -> Server {
    Server::start_with(&format!(
        "[mail]\ntransport = \"smtp\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\n\
         from = \"Tracker <tracker@example.org>\"\ntimeout_secs = 5\n\
         [notify]\ninterval_secs = 3600\nmin_interval_secs = 0\n{extra}"
    ))
}

/// Project 1 'Website' with folder 1 'Bugs'; users 2..=1+n ('u2', 'u3', …) are members,
/// have `u<id>@example.org` as e-mail (set by the admin: confirmed) and watch the folder. Returns the admin's client.
fn setup(server: &Server, n: usize) -> Client {
    let mut admin = server.admin();
    assert_eq!(admin.id("ADD PROJECT 'Website'"), 1);
    assert_eq!(admin.id("ADD FOLDER 1 1 'Bugs'"), 1);
    for i in 0..n {
        let id = admin.id(&format!("ADD USER 'u{}' 'User {}' 'pw'", i + 2, i + 2));
        assert_eq!(admin.one(&format!("GRANT MEMBER {id} 1 1")), "OK");
        // Set by the administrator, so confirmed without a mail (notifications.md).
        assert_eq!(
            admin.one(&format!("SET PREFERENCE {id} 'email' 'u{id}@example.org'")),
            "OK"
        );
        let mut c = server.connect();
        c.login(&format!("u{id}"), "pw");
        assert_eq!(c.one("NOTIFY FOLDER 1 1"), "OK");
    }
    admin
}

fn run(admin: &mut Client) -> String {
    admin.one("RUN NOTIFICATIONS")
}

#[test]
fn an_immediate_watcher_gets_one_threaded_mail_and_not_their_own_changes() {
    let sink = SmtpSink::start();
    let server = smtp_server(sink.port, "");
    let mut admin = setup(&server, 1);
    let issue = admin.id("ADD ISSUE 1 'Login page broken'");
    admin.id(&format!("ADD COMMENT {issue} 'Steps'"));
    admin.id(&format!("RENAME ISSUE {issue} 'Login page blank'"));
    assert_eq!(run(&mut admin), "PASS 1 1 1 0 0");
    let files = sink.wait_for_messages(1);
    assert_eq!(files.len(), 1);
    let m = mail::inspect(&files[0]);
    assert_eq!(m.one("X-RcptTo"), "u2@example.org");
    assert_eq!(m.one("Subject"), "[Website] #1 Login page blank");
    assert_eq!(m.one("Message-ID"), "<digest-2-3@example.org>");
    assert_eq!(m.one("In-Reply-To"), "<issue-1@example.org>");
    assert_eq!(m.one("References"), "<issue-1@example.org>");
    assert_eq!(m.one("List-Id"), "<webissued.localhost>");
    assert!(!m.one("Date").is_empty());
    let types: Vec<&str> = m.parts.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["text/plain", "text/html"], "both parts by default");
    let text = &m.parts[0].1;
    assert!(text.contains("Hello User 2"), "{text}");
    assert!(text.contains("== Website / Bugs =="), "{text}");
    assert_eq!(
        text.matches("#1 Login page blank").count(),
        1,
        "collapsed: {text}"
    );
    assert!(text.contains("Administrator: created the issue"), "{text}");
    assert!(
        text.contains("Administrator: commented:\n      | Steps"),
        "{text}"
    );
    assert!(
        text.contains("renamed it from \"Login page broken\""),
        "{text}"
    );

    // Nothing left: a second pass sends nothing.
    assert_eq!(run(&mut admin), "PASS 0 0 0 0 0");

    // The watcher's own change is not mailed ...
    let mut u2 = server.connect();
    u2.login("u2", "pw");
    u2.id("ADD COMMENT 1 'my own words'");
    assert_eq!(run(&mut admin), "PASS 0 0 0 0 0");
    // ... unless they ask for it.
    assert_eq!(u2.one("SET PREFERENCE 2 'notify-own-changes' '1'"), "OK");
    u2.id("ADD COMMENT 1 'my own words again'");
    assert_eq!(run(&mut admin), "PASS 1 1 1 0 0");
    let files = sink.wait_for_messages(2);
    assert_eq!(files.len(), 2);
    assert_eq!(admin.send("LIST OUTBOX"), ["NULL"]);
}

#[test]
fn notify_format_picks_the_parts() {
    let sink = SmtpSink::start();
    let server = smtp_server(sink.port, "");
    let mut admin = setup(&server, 3);
    for (user, format) in [(2, "text"), (3, "html"), (4, "both")] {
        assert_eq!(
            admin.one(&format!("SET PREFERENCE {user} 'notify-format' '{format}'")),
            "OK"
        );
    }
    admin.id("ADD ISSUE 1 'Ünïcode <b>name</b>'");
    assert_eq!(run(&mut admin), "PASS 3 3 3 0 0");
    let files = sink.wait_for_messages(3);
    assert_eq!(files.len(), 3);
    let mut seen = Vec::new();
    for f in &files {
        let m = mail::inspect(f);
        assert_eq!(m.one("Subject"), "[Website] #1 Ünïcode <b>name</b>");
        let types: Vec<String> = m.parts.iter().map(|(t, _)| t.clone()).collect();
        if let Some((_, html)) = m.parts.iter().find(|(t, _)| t == "text/html") {
            assert!(html.contains("Ünïcode &lt;b&gt;name&lt;"), "{html}");
            assert!(!html.contains("<b>name"), "escaped: {html}");
        }
        seen.push((m.one("X-RcptTo").to_string(), types));
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            ("u2@example.org".to_string(), vec!["text/plain".to_string()]),
            ("u3@example.org".to_string(), vec!["text/html".to_string()]),
            (
                "u4@example.org".to_string(),
                vec!["text/plain".to_string(), "text/html".to_string()]
            ),
        ]
    );
}

#[test]
fn a_watcher_who_loses_membership_gets_nothing() {
    let sink = SmtpSink::start();
    let server = smtp_server(sink.port, "");
    let mut admin = setup(&server, 2);
    admin.id("ADD ISSUE 1 'Secret'");
    let preview = admin.send("PREVIEW NOTIFICATIONS 2");
    assert_eq!(preview.len(), 2, "{preview:?}");
    assert_eq!(preview[1], "N 1 1 1 1 'Secret'");
    assert_eq!(admin.one("GRANT MEMBER 2 1 0"), "OK");
    let preview = admin.send("PREVIEW NOTIFICATIONS 2");
    assert_eq!(preview.len(), 1, "only the D line: {preview:?}");
    // User 3 still gets theirs; user 2's pending change is dropped.
    assert_eq!(run(&mut admin), "PASS 2 1 1 0 0");
    let files = sink.wait_for_messages(1);
    assert_eq!(files.len(), 1);
    assert_eq!(mail::inspect(&files[0]).one("X-RcptTo"), "u3@example.org");
    assert_eq!(admin.send("PREVIEW NOTIFICATIONS 2"), ["NULL"]);
    // Changes made while not a member never become pending.
    admin.id("ADD COMMENT 1 'still secret'");
    assert_eq!(admin.send("PREVIEW NOTIFICATIONS 2"), ["NULL"]);
}

#[test]
fn mail_queued_while_smtp_is_down_arrives_exactly_once_after_a_restart() {
    let port = mail::free_port();
    let mut server = smtp_server(port, "retry_base_secs = 1\nretry_max_secs = 1\n");
    let mut admin = setup(&server, 1);
    admin.id("ADD ISSUE 1 'Queued while down'");
    assert_eq!(run(&mut admin), "PASS 1 1 0 1 0");
    let outbox = admin.send("LIST OUTBOX");
    assert_eq!(outbox.len(), 2, "{outbox:?}");
    // Connection refused is an outage: the transport's breaker line comes first.
    assert!(
        support_glob("T '*' * 1 'transient mail failure: *'", &outbox[0]),
        "{outbox:?}"
    );
    assert!(
        support_glob(
            "O 1 2 'queued' 1 * 'u2@example.org' '[Website] #1 Queued while down' 'transient mail failure: *'",
            &outbox[1]
        ),
        "{outbox:?}"
    );
    // A kill -9 keeps the queued message; the restarted server resumes and, once the
    // SMTP server is up, the worker's own retry delivers it.
    server.restart();
    let sink = SmtpSink::start_on(port);
    let files = sink.wait_for_messages(1);
    assert_eq!(files.len(), 1, "server log:\n{}", server.log());
    let mut admin = server.admin();
    let deadline = Instant::now() + Duration::from_secs(5);
    while admin.send("LIST OUTBOX") != ["NULL"] {
        assert!(Instant::now() < deadline, "outbox not emptied");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(run(&mut admin), "PASS 0 0 0 0 0");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(sink.wait_for_messages(2).len(), 1, "sent exactly once");
    let m = mail::inspect(&files[0]);
    assert_eq!(m.one("Message-ID"), "<digest-2-1@example.org>");
}

#[test]
fn a_rejected_message_is_kept_as_failed() {
    let smtp = mail::ScriptedSmtp::start("550 5.1.1 no such user");
    let server = smtp_server(smtp.port, "");
    let mut admin = setup(&server, 1);
    admin.id("ADD ISSUE 1 'Bounces'");
    assert_eq!(run(&mut admin), "PASS 1 1 0 0 1");
    let outbox = admin.send("LIST OUTBOX");
    assert!(
        support_glob(
            "O 1 2 'failed' 1 * 'permanent mail failure: *550*'",
            &outbox[0]
        ),
        "{outbox:?}"
    );
    assert_eq!(run(&mut admin), "PASS 0 0 0 0 0", "not retried");
}

#[test]
fn sendmail_delivers_a_digest_into_the_mailbox() {
    mail::require_exim();
    let server = Server::start_with(
        "[mail]\ntransport = \"sendmail\"\nsendmail_command = \"/usr/sbin/sendmail\"\n\
         from = \"tracker@example.org\"\n[notify]\ninterval_secs = 3600\n",
    );
    let mut admin = setup(&server, 1);
    assert_eq!(
        admin.one("SET PREFERENCE 2 'email' 'mailtest@localhost'"),
        "OK"
    );
    let tag = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    admin.id(&format!("ADD ISSUE 1 'Via sendmail {tag}'"));
    assert_eq!(run(&mut admin), "PASS 1 1 1 0 0");
    let mbox = mail::wait_for_mbox(mail::MAILTEST_USER, &format!("Via sendmail {tag}"));
    assert!(mbox.contains("List-Id: <webissued.localhost>"));
}

#[test]
fn with_notify_disabled_the_commands_are_unknown_and_nothing_is_mailed() {
    let sink = SmtpSink::start();
    let server = Server::start_with(&format!(
        "[mail]\ntransport = \"smtp\"\nsmtp_port = {}\n[notify]\nenabled = false\n",
        sink.port
    ));
    let mut admin = server.admin();
    assert_eq!(admin.send("LIST FEATURES"), ["F 'help'"]);
    assert_eq!(admin.id("ADD PROJECT 'Website'"), 1);
    assert_eq!(admin.id("ADD FOLDER 1 1 'Bugs'"), 1);
    for cmd in [
        "LIST NOTIFICATIONS",
        "NOTIFY FOLDER 1 1",
        "NOTIFY ISSUE 1 1",
        "PREVIEW NOTIFICATIONS 1",
        "RUN NOTIFICATIONS",
        "LIST OUTBOX",
        "RETRY OUTBOX 1",
        "DELETE OUTBOX 1",
    ] {
        let r = admin.one(cmd);
        assert!(r.starts_with("ERROR 401 "), "{cmd}: {r}");
    }
    assert_eq!(admin.one("SET PREFERENCE 1 'email' 'a@example.org'"), "OK");
    assert!(
        admin
            .one("SET PREFERENCE 1 'notify-frequency' 'IMMEDIATELY'")
            .starts_with("ERROR 344 ")
    );
    admin.id("ADD ISSUE 1 'Quiet'");
    std::thread::sleep(Duration::from_millis(500));
    assert!(sink.wait_for_messages(0).is_empty());
}

fn support_glob(pattern: &str, text: &str) -> bool {
    webissued_conformance::glob_match(pattern, text)
}
