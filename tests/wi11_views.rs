//! WebIssues 1.1 views, alerts and subscriptions: the transcripts of tests/wi11/views/
//! (recorded from the reference server 1.1.5 on a fresh install) replayed against a fresh
//! webissued, the installer's default views, and alert mail delivered through the 0.8
//! digest engine (immediate and summary, across a DST change).

mod support;

use std::net::SocketAddr;
use support::Server;
use support::mail::{self, SmtpSink};
use support::wi11::{post, replay};

fn transcripts(dir: &str) -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    files
}

/// Views, view settings, alerts and subscriptions, success and error paths, replay as
/// the reference answered (or as documented in protocol-spec/webissues-1.1.md).
#[test]
fn view_and_alert_transcripts_replay_identically() {
    let mut s = Server::start_with(
        "[server]\ninitial_data = \"none\"\nname = \"WI11 Test\"\nmax_attachment_bytes = 1048576\n",
    );
    let addr = s.http_addr();
    let files = transcripts("tests/wi11/views");
    assert_eq!(files.len(), 5);
    let (total, overridden, diffs) = replay(addr, &files, false);
    eprintln!(
        "{total} commands replayed, {} differ, {overridden} with a documented webissued answer",
        diffs.len()
    );
    assert!(total >= 110, "{total}");
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

/// `initial_data = "webissues"` installs the reference installer's public views and view
/// settings too: its LIST TYPES now matches in full, V and S lines included.
#[test]
fn initial_data_webissues_has_the_installer_views() {
    let mut server = Server::start_with(
        "[server]\ninitial_data = \"webissues\"\nmax_attachment_bytes = 1048576\n",
    );
    let addr = server.http_addr();
    let file =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/wi11/initial/webissues.txt");
    let (total, _, diffs) = replay(addr, &[file], false);
    assert!(total >= 15);
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

/// One 1.1 command in the session held by `jar`; the reply lines.
fn call(addr: SocketAddr, jar: &mut Option<String>, command: &str) -> Vec<String> {
    post(addr, jar, command, None).lines()
}

/// Alerts and subscriptions set over 1.1 are the watches 0.8 shows, and their mail goes
/// through the digest engine into a real SMTP mailbox: an immediate alert at the next
/// pass, a summary alert (Europe/Warsaw, every hour) held for its next full hour.
#[test]
fn alert_mail_goes_through_the_digest_engine() {
    let sink = SmtpSink::start();
    let mut server = Server::start_with(&format!(
        "[server]\ninitial_data = \"none\"\n\
         [mail]\ntransport = \"smtp\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\n\
         from = \"Tracker <tracker@example.org>\"\ntimeout_secs = 5\n\
         [notify]\ninterval_secs = 3600\nmin_interval_secs = 0\n",
        sink.port
    ));
    let addr = server.http_addr();
    let mut admin = server.admin();
    assert_eq!(admin.id("ADD TYPE 'Bugs'"), 1);
    assert_eq!(admin.id("ADD PROJECT 'Website'"), 1);
    assert_eq!(admin.id("ADD FOLDER 1 1 'Bugs'"), 1);
    for u in [2, 3] {
        assert_eq!(admin.id(&format!("ADD USER 'u{u}' 'User {u}' 'pw'")), u);
        assert_eq!(admin.one(&format!("GRANT MEMBER {u} 1 1")), "OK");
        assert_eq!(
            admin.one(&format!("SET PREFERENCE {u} 'email' 'u{u}@example.org'")),
            "OK"
        );
    }
    assert_eq!(
        admin.one("SET PREFERENCE 3 'timezone' 'Europe/Warsaw'"),
        "OK"
    );

    // u2: an immediate alert on the folder is 0.8's folder watch.
    let mut j2 = None;
    call(addr, &mut j2, "LOGIN 'u2' 'pw'");
    let settings = call(addr, &mut j2, "GET SETTINGS");
    assert!(settings.contains(&"S 'email_enabled' '1'".to_string()));
    assert_eq!(call(addr, &mut j2, "ADD ALERT 1 0 1 '' '' 0"), ["ID 1"]);
    let mut u2 = server.connect();
    u2.login("u2", "pw");
    assert_eq!(u2.send("LIST NOTIFICATIONS"), ["F 1"]);

    // u3: a summary of notifications every day at every hour.
    let mut j3 = None;
    call(addr, &mut j3, "LOGIN 'u3' 'pw'");
    let hours = (0..24).map(|h| h.to_string()).collect::<Vec<_>>().join(",");
    assert_eq!(
        call(
            addr,
            &mut j3,
            &format!("ADD ALERT 1 0 2 '0,1,2,3,4,5,6' '{hours}' 0")
        ),
        ["ID 2"]
    );
    let mut u3 = server.connect();
    u3.login("u3", "pw");
    assert_eq!(
        u3.send("LIST NOTIFICATIONS"),
        ["NULL"],
        "a summary is no 0.8 watch"
    );

    let issue = admin.id("ADD ISSUE 1 'Checkout fails'");
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert_eq!(admin.one("RUN NOTIFICATIONS"), "PASS 1 1 1 0 0");
    let files = sink.wait_for_messages(1);
    assert_eq!(files.len(), 1);
    let m = mail::inspect(&files[0]);
    assert_eq!(m.one("X-RcptTo"), "u2@example.org");
    assert_eq!(m.one("Subject"), "[Website] #1 Checkout fails");
    assert!(m.parts[0].1.contains("Hello User 2"), "{:?}", m.parts);

    // u3's change waits for the next full hour (Warsaw is a whole number of hours off UTC).
    let preview = admin.send("PREVIEW NOTIFICATIONS 3");
    let due: i64 = preview[0].split(' ').nth(1).unwrap().parse().unwrap();
    assert!(preview[0].starts_with("D "), "{preview:?}");
    assert_eq!(due % 3600, 0, "{preview:?}");
    assert!(due > before - 5 && due <= before + 3600, "{due} {before}");
    assert!(
        preview
            .iter()
            .any(|l| l.starts_with(&format!("N {issue} 1 "))),
        "{preview:?}"
    );
    assert_eq!(admin.one("RUN NOTIFICATIONS"), "PASS 0 0 0 0 0");

    // Subscriptions: 1.1's ADD SUBSCRIPTION is 0.8's issue watch, and back.
    assert_eq!(
        call(addr, &mut j3, &format!("ADD SUBSCRIPTION {issue}")),
        ["ID 1"]
    );
    assert_eq!(u3.send("LIST NOTIFICATIONS"), [format!("I {issue}")]);
    assert_eq!(u3.one(&format!("NOTIFY ISSUE {issue} 0")), "OK");
    let states = call(addr, &mut j3, "LIST STATES 0");
    assert!(states[0].ends_with(" 0 0"), "unsubscribed: {states:?}");
    assert_eq!(
        call(addr, &mut j3, "DELETE SUBSCRIPTION 1"),
        ["ERROR 364 'Unknown Subscription'"]
    );

    // 0.8's NOTIFY FOLDER 1 0 deletes u2's alert; NOTIFY FOLDER 1 1 makes a new one.
    assert_eq!(u2.one("NOTIFY FOLDER 1 0"), "OK");
    let listed = call(addr, &mut j2, "LIST PROJECTS");
    assert!(!listed.iter().any(|l| l.starts_with("A ")), "{listed:?}");
    assert_eq!(u2.one("NOTIFY FOLDER 1 1"), "OK");
    let listed = call(addr, &mut j2, "LIST PROJECTS");
    assert!(
        listed.contains(&"A 3 1 0 0 1 '' '' 0".to_string()),
        "{listed:?}"
    );
}

/// Personal alerts and subscriptions share `[limits] max_watches_per_user` with 0.8's
/// watches (they are the same records); one more answers `321 Invalid Value`.
#[test]
fn alerts_and_subscriptions_count_against_the_watch_limit() {
    let mut server = Server::start_with(
        "[server]\ninitial_data = \"none\"\n[limits]\nmax_watches_per_user = 2\n",
    );
    let addr = server.http_addr();
    let mut admin = server.admin();
    admin.id("ADD TYPE 'Bugs'");
    admin.id("ADD PROJECT 'P'");
    for f in ["A", "B", "C"] {
        admin.id(&format!("ADD FOLDER 1 1 '{f}'"));
    }
    let issue = admin.id("ADD ISSUE 1 'x'");
    let mut jar = None;
    call(addr, &mut jar, "LOGIN 'admin' 'secret'");
    assert_eq!(call(addr, &mut jar, "ADD ALERT 1 0 0 '' '' 0"), ["ID 1"]);
    assert_eq!(call(addr, &mut jar, "ADD ALERT 2 0 1 '' '' 0"), ["ID 2"]);
    let full = ["ERROR 321 'Invalid Value'"];
    assert_eq!(call(addr, &mut jar, "ADD ALERT 3 0 1 '' '' 0"), full);
    assert_eq!(
        call(addr, &mut jar, &format!("ADD SUBSCRIPTION {issue}")),
        full
    );
    // 0.8 counts the same records: the 1.1 immediate alert on folder 2 is its one watch.
    assert_eq!(admin.send("LIST NOTIFICATIONS"), ["F 2"]);
    // Public alerts are the administrators' and not counted.
    assert_eq!(call(addr, &mut jar, "ADD ALERT 3 0 1 '' '' 1"), ["ID 3"]);
    assert_eq!(call(addr, &mut jar, "DELETE ALERT 1"), ["OK"]);
    assert_eq!(
        call(addr, &mut jar, &format!("ADD SUBSCRIPTION {issue}")),
        ["ID 1"]
    );
}

/// Deleting a folder deletes its alerts; deleting a type its views, settings and global
/// alerts (0.8's DELETE FOLDER / DELETE TYPE, seen from 1.1).
#[test]
fn deletions_take_views_and_alerts_along() {
    let mut server = Server::start_with("[server]\ninitial_data = \"none\"\n");
    let addr = server.http_addr();
    let mut admin = server.admin();
    admin.id("ADD TYPE 'Bugs'");
    admin.id("ADD PROJECT 'P'");
    admin.id("ADD FOLDER 1 1 'F'");
    let mut jar = None;
    call(addr, &mut jar, "LOGIN 'admin' 'secret'");
    assert_eq!(
        call(
            addr,
            &mut jar,
            "ADD VIEW 1 'All' 'VIEW columns=\"1,0\" sort-column=1' 1"
        ),
        ["ID 1"]
    );
    assert_eq!(
        call(addr, &mut jar, "SET VIEW SETTING 1 'initial_view' '1'"),
        ["OK"]
    );
    assert_eq!(call(addr, &mut jar, "ADD ALERT 1 1 1 '' '' 0"), ["ID 1"]);
    assert_eq!(call(addr, &mut jar, "ADD ALERT 1 0 1 '' '' 0"), ["ID 2"]);
    assert_eq!(
        call(addr, &mut jar, "ADD GLOBAL ALERT 1 0 0 '' '' 0"),
        ["ID 3"]
    );
    assert_eq!(admin.send("LIST NOTIFICATIONS"), ["F 1"]);
    assert_eq!(admin.one("DELETE FOLDER 1"), "OK");
    assert_eq!(admin.send("LIST NOTIFICATIONS"), ["NULL"]);
    let listed = call(addr, &mut jar, "LIST PROJECTS");
    assert_eq!(listed, ["P 1 'P' 0 0", "A 3 0 1 0 0 '' '' 0"]);
    assert_eq!(admin.one("DELETE TYPE 1"), "OK");
    assert_eq!(call(addr, &mut jar, "LIST PROJECTS"), ["P 1 'P' 0 0"]);
    assert_eq!(call(addr, &mut jar, "LIST TYPES"), ["NULL"]);
    assert_eq!(
        call(addr, &mut jar, "DELETE VIEW 1"),
        ["ERROR 340 'Unknown View'"]
    );
}
