//! 1.1 alert mail across daylight-saving changes, end to end: the real server binary runs
//! under libfaketime (Debian's `faketime`, installed by scripts/test-deps.d/faketime.sh),
//! its wall clock set by this test through a timestamp file, and the mail is read from a
//! real SMTP mailbox (aiosmtpd). The background notification task (interval 1 s) sends the
//! summaries when the clock runs into their slot; `RUN NOTIFICATIONS` with the clock
//! stopped a second before each slot shows nothing leaves early. Rules:
//! protocol-spec/notifications.md, "One model for 0.8 and 1.1", "Summary reports" and
//! "Schedule".

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::Server;
use support::mail::{self, Inspected, SmtpSink};
use support::wi11::post;

/// libfaketime's multithreaded preload library, wherever Debian put it for this arch.
fn libfaketime() -> PathBuf {
    let found = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("faketime/libfaketimeMT.so.1"))
        .find(|p| p.exists());
    found.unwrap_or_else(|| {
        panic!("libfaketime is missing: run scripts/test-deps.d/faketime.sh (as root)")
    })
}

/// How late after its slot (or change) a mail may be dated: one pass interval, and a
/// loaded machine. A wrong slot would be an hour off or more.
const LATE: i64 = 60;

fn real_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn utc(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp()
}

/// The server's wall clock: libfaketime reads the offset from this file on every call
/// (`FAKETIME_NO_CACHE`); monotonic time stays real, so tokio's timers and the pass
/// interval run at normal speed while the calendar is wherever the test puts it.
struct FakeClock {
    file: PathBuf,
    _dir: tempfile::TempDir,
}

impl FakeClock {
    fn at(start: i64) -> FakeClock {
        let dir = tempfile::tempdir().unwrap();
        let clock = FakeClock {
            file: dir.path().join("faketime"),
            _dir: dir,
        };
        clock.set(start);
        clock
    }

    /// From now on the server's clock reads `t` (Unix seconds) and runs on from there.
    fn set(&self, t: i64) {
        self.write(&format!("{:+}", t - real_now()));
    }

    /// The server's clock stops at `t` until the next [`FakeClock::set`] (an absolute
    /// time without `@` is a frozen clock; the server runs with TZ=UTC).
    fn freeze(&self, t: i64) {
        let at = chrono::DateTime::from_timestamp(t, 0).unwrap();
        self.write(&at.format("%Y-%m-%d %H:%M:%S").to_string());
    }

    /// Written by rename, so the library never reads a half-written file.
    fn write(&self, spec: &str) {
        let tmp = self.file.with_extension("new");
        std::fs::write(&tmp, format!("{spec}\n")).unwrap();
        std::fs::rename(&tmp, &self.file).unwrap();
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("LD_PRELOAD", libfaketime().display().to_string()),
            ("FAKETIME_TIMESTAMP_FILE", self.file.display().to_string()),
            ("FAKETIME_NO_CACHE", "1".into()),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1".into()),
            ("TZ", "UTC".into()),
        ]
    }
}

/// A server mailing through SMTP to `sink`, its clock on `clock`, one pass a second.
fn start(clock: &FakeClock, sink: &SmtpSink) -> Server {
    let env = clock.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Server::start_with_env(
        &format!(
            "[server]\ninitial_data = \"none\"\nname = \"DST Tracker\"\n\
             [mail]\ntransport = \"smtp\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\n\
             from = \"Tracker <tracker@example.org>\"\ntimeout_secs = 5\n\
             [notify]\ninterval_secs = 1\nmin_interval_secs = 0\n",
            sink.port
        ),
        &env,
    )
}

/// One 1.1 command in the session held by `jar`; the reply lines.
fn call(addr: SocketAddr, jar: &mut Option<String>, command: &str) -> Vec<String> {
    post(addr, jar, command, None).lines()
}

/// The mailbox as delivered so far, in arrival order.
struct Mailbox<'a> {
    sink: &'a SmtpSink,
    seen: usize,
}

impl Mailbox<'_> {
    fn files(&self) -> Vec<PathBuf> {
        self.sink.wait_for_messages(0)
    }

    /// The next message, waiting up to `secs` seconds for it.
    fn next(&mut self, secs: u64) -> Inspected {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let files = self.files();
            if files.len() > self.seen {
                self.seen += 1;
                return mail::inspect(&files[self.seen - 1]);
            }
            assert!(
                Instant::now() < deadline,
                "no message {} arrived",
                self.seen + 1
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Nothing beyond what was read has arrived.
    fn assert_quiet(&self, when: &str) {
        let files = self.files();
        assert_eq!(
            files.len(),
            self.seen,
            "unexpected mail {when}: {:?}",
            files[self.seen.min(files.len())..]
                .iter()
                .map(|f| mail::inspect(f).one("Subject").to_string())
                .collect::<Vec<_>>()
        );
    }
}

/// The server ran under libfaketime without an error or warning (a failing clock or timer
/// call would show here).
fn assert_clean_log(server: &Server) {
    let log = server.log();
    assert!(!log.contains(" ERROR ") && !log.contains(" WARN "), "{log}");
}

/// Unix seconds of a mail's `Date:` header (the pass that built it).
fn date(m: &Inspected) -> i64 {
    chrono::DateTime::parse_from_rfc2822(m.one("Date"))
        .unwrap_or_else(|e| panic!("Date {:?}: {e}", m.one("Date")))
        .timestamp()
}

fn body(m: &Inspected) -> &str {
    &m.parts
        .iter()
        .find(|(t, _)| t == "text/plain")
        .expect("a text part")
        .1
}

/// The due time PREVIEW NOTIFICATIONS shows for `user` (`D due last`).
fn due(admin: &mut support::Client, user: u64) -> i64 {
    let preview = admin.send(&format!("PREVIEW NOTIFICATIONS {user}"));
    let d = preview[0]
        .strip_prefix("D ")
        .unwrap_or_else(|| panic!("nothing pending for {user}: {preview:?}"));
    d.split(' ').next().unwrap().parse().unwrap()
}

/// Project "Website", folder 1 "Bugs"; u2 (Europe/Warsaw) has an immediate alert on it and
/// u3 (Europe/Warsaw) a summary alert every day at `hours` local time.
fn setup(server: &mut Server, hours: &str) -> support::Client {
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
        let mut jar = None;
        call(addr, &mut jar, &format!("LOGIN 'u{u}' 'pw'"));
        assert_eq!(
            call(
                addr,
                &mut jar,
                &format!("SET PREFERENCE {u} 'time_zone' 'Europe/Warsaw'")
            ),
            ["OK"]
        );
        let alert = if u == 2 {
            "ADD ALERT 1 0 1 '' '' 0".to_string()
        } else {
            format!("ADD ALERT 1 0 2 '0,1,2,3,4,5,6' '{hours}' 0")
        };
        assert_eq!(call(addr, &mut jar, &alert), [format!("ID {}", u - 1)]);
    }
    admin
}

/// The immediate alert's mail for a change made at `at`: to u2, sent by the next pass.
fn expect_immediate(mailbox: &mut Mailbox, issue: i64, name: &str, at: i64) {
    let m = mailbox.next(5);
    assert_eq!(m.one("X-RcptTo"), "u2@example.org");
    assert_eq!(m.one("Subject"), format!("[Website] #{issue} {name}"));
    let sent = date(&m);
    assert!(
        sent >= at && sent <= at + LATE,
        "sent {sent}, change at {at}"
    );
}

/// Runs a pass with the clock stopped a second before `slot` (nothing for u3 may leave),
/// then lets the server's clock run into the slot by itself: the background pass sends
/// u3's summary, dated at the slot (within [`LATE`] seconds).
fn expect_summary_at(
    clock: &FakeClock,
    admin: &mut support::Client,
    mailbox: &mut Mailbox,
    slot: i64,
) -> Inspected {
    clock.freeze(slot - 1);
    assert!(admin.one("RUN NOTIFICATIONS").starts_with("PASS "));
    mailbox.assert_quiet("before the slot");
    clock.set(slot - 1);
    let m = mailbox.next(LATE as u64);
    assert_eq!(m.one("X-RcptTo"), "u3@example.org");
    let sent = date(&m);
    assert!(
        sent >= slot && sent <= slot + LATE,
        "sent {sent}, slot {slot}"
    );
    m
}

/// Spring forward in Warsaw, 29 March 2026: 02:00 CET becomes 03:00 CEST (01:00 UTC).
/// A summary at 01:00, 02:00 and 08:00 local: 01:00 CET (00:00 UTC); the missing 02:00 at
/// the jump (01:00 UTC), not skipped; 08:00 CEST (06:00 UTC, no longer 07:00).
#[test]
fn summary_alerts_keep_local_hours_when_the_clocks_go_forward() {
    let sink = SmtpSink::start();
    let clock = FakeClock::at(utc("2026-03-28T22:20:00Z"));
    let mut server = start(&clock, &sink);
    let mut admin = setup(&mut server, "1,2,8");
    let mut mailbox = Mailbox {
        sink: &sink,
        seen: 0,
    };

    // 23:20 CET on Saturday: the immediate alert mails at once, the summary waits.
    let t = utc("2026-03-28T22:20:00Z");
    clock.set(t);
    let a = admin.id("ADD ISSUE 1 'Before the change'");
    expect_immediate(&mut mailbox, a, "Before the change", t);
    assert_eq!(due(&mut admin, 3), utc("2026-03-29T00:00:00Z"));
    let m = expect_summary_at(
        &clock,
        &mut admin,
        &mut mailbox,
        utc("2026-03-29T00:00:00Z"),
    );
    assert_eq!(
        m.one("Subject"),
        format!("[Website] #{a} Before the change")
    );
    assert!(
        body(&m).contains("2026-03-28 23:20 (Europe/Warsaw), Administrator: created the issue"),
        "{}",
        body(&m)
    );

    // 01:30 CET: the next slot is 02:00, which does not exist today: at the jump.
    let t = utc("2026-03-29T00:30:00Z");
    clock.set(t);
    let b = admin.id("ADD ISSUE 1 'In the last winter hour'");
    expect_immediate(&mut mailbox, b, "In the last winter hour", t);
    assert_eq!(due(&mut admin, 3), utc("2026-03-29T01:00:00Z"));
    let m = expect_summary_at(
        &clock,
        &mut admin,
        &mut mailbox,
        utc("2026-03-29T01:00:00Z"),
    );
    assert_eq!(
        m.one("Subject"),
        format!("[Website] #{b} In the last winter hour")
    );
    assert!(body(&m).contains("2026-03-29 01:30 (Europe/Warsaw)"));

    // 03:10 CEST: the next slot is 08:00 CEST, 06:00 UTC.
    let t = utc("2026-03-29T01:10:00Z");
    clock.set(t);
    let c = admin.id("ADD ISSUE 1 'Summer time'");
    expect_immediate(&mut mailbox, c, "Summer time", t);
    assert_eq!(due(&mut admin, 3), utc("2026-03-29T06:00:00Z"));
    // 07:00 UTC is 08:00 in winter time; an hour earlier than the slot it is still quiet.
    clock.set(utc("2026-03-29T05:00:00Z"));
    assert!(admin.one("RUN NOTIFICATIONS").starts_with("PASS 0 0 "));
    let m = expect_summary_at(
        &clock,
        &mut admin,
        &mut mailbox,
        utc("2026-03-29T06:00:00Z"),
    );
    assert_eq!(m.one("Subject"), format!("[Website] #{c} Summer time"));
    assert!(body(&m).contains("2026-03-29 03:10 (Europe/Warsaw)"));

    // Each change went out once to each user: nothing more after a few more passes.
    std::thread::sleep(Duration::from_millis(2500));
    mailbox.assert_quiet("after the last summary");
    assert_eq!(admin.send("PREVIEW NOTIFICATIONS 3"), ["NULL"]);
    assert_eq!(admin.send("PREVIEW NOTIFICATIONS 2"), ["NULL"]);
    assert_clean_log(&server);
}

/// Fall back in Warsaw, 25 October 2026: 03:00 CEST becomes 02:00 CET (01:00 UTC), so
/// 02:00 happens twice. A summary at 02:00 and 08:00 local fires at the first 02:00
/// (00:00 UTC), not again at the second (01:00 UTC), then at 08:00 CET (07:00 UTC).
#[test]
fn summary_alerts_fire_once_in_the_doubled_hour_when_the_clocks_go_back() {
    let sink = SmtpSink::start();
    let clock = FakeClock::at(utc("2026-10-24T23:30:00Z"));
    let mut server = start(&clock, &sink);
    let mut admin = setup(&mut server, "2,8");
    let mut mailbox = Mailbox {
        sink: &sink,
        seen: 0,
    };

    // 01:30 CEST: due at the first 02:00 (CEST, 00:00 UTC).
    let t = utc("2026-10-24T23:30:00Z");
    clock.set(t);
    let a = admin.id("ADD ISSUE 1 'Summer night'");
    expect_immediate(&mut mailbox, a, "Summer night", t);
    assert_eq!(due(&mut admin, 3), utc("2026-10-25T00:00:00Z"));
    let m = expect_summary_at(
        &clock,
        &mut admin,
        &mut mailbox,
        utc("2026-10-25T00:00:00Z"),
    );
    assert_eq!(m.one("Subject"), format!("[Website] #{a} Summer night"));
    assert!(body(&m).contains("2026-10-25 01:30 (Europe/Warsaw)"));

    // 02:30 CEST, between the two 02:00s: the second one (01:00 UTC) is not a new slot.
    let t = utc("2026-10-25T00:30:00Z");
    clock.set(t);
    let b = admin.id("ADD ISSUE 1 'Between the two'");
    expect_immediate(&mut mailbox, b, "Between the two", t);
    assert_eq!(due(&mut admin, 3), utc("2026-10-25T07:00:00Z"));
    // Let the clock run through the second 02:00 with passes every second: no mail.
    clock.set(utc("2026-10-25T01:00:00Z") - 2);
    std::thread::sleep(Duration::from_millis(4500));
    assert!(admin.one("RUN NOTIFICATIONS").starts_with("PASS 0 0 "));
    mailbox.assert_quiet("at the second 02:00");
    let m = expect_summary_at(
        &clock,
        &mut admin,
        &mut mailbox,
        utc("2026-10-25T07:00:00Z"),
    );
    assert_eq!(m.one("Subject"), format!("[Website] #{b} Between the two"));
    assert!(body(&m).contains("2026-10-25 02:30 (Europe/Warsaw)"));

    std::thread::sleep(Duration::from_millis(2500));
    mailbox.assert_quiet("after the last summary");
    assert_eq!(admin.send("PREVIEW NOTIFICATIONS 3"), ["NULL"]);
    assert_clean_log(&server);
}

/// Summary reports (`alertEmail` 3) mail the view's full issue list at each chosen hour,
/// changes or not, in the view's order and columns, and make nothing pending. The missing
/// 02:00 of 29 March fires at the jump (01:00 UTC), 09:00 CEST at 07:00 UTC. A filter on
/// an attribute deleted meanwhile is ignored, as the reference ignores it, and its column
/// is left out.
#[test]
fn summary_reports_list_the_view_at_each_chosen_hour() {
    let sink = SmtpSink::start();
    let clock = FakeClock::at(utc("2026-03-28T22:00:00Z"));
    let mut server = start(&clock, &sink);
    let addr = server.http_addr();
    let mut admin = server.admin();
    let mut aj = None;
    call(addr, &mut aj, "LOGIN 'admin' 'secret'");
    for (command, reply) in [
        ("ADD TYPE 'Bugs'", "ID 1"),
        ("ADD ATTRIBUTE 1 'Status' 'TEXT'", "ID 1"),
        ("ADD ATTRIBUTE 1 'Team' 'TEXT'", "ID 2"),
        ("ADD PROJECT 'Website'", "ID 1"),
        ("ADD FOLDER 1 1 'Bugs'", "ID 1"),
        ("ADD USER 'u2' 'User 2' 'pw' 0", "ID 2"),
        ("GRANT MEMBER 2 1 1", "OK"),
        ("SET PREFERENCE 2 'email' 'u2@example.org'", "OK"),
    ] {
        assert_eq!(call(addr, &mut aj, command), [reply], "{command}");
    }
    let mut issues = Vec::new();
    for (name, status, team) in [
        ("Zebra crash", "Active", "web"),
        ("Apple pie", "Closed", "web"),
        ("Mango", "Active", "web"),
        ("Kiwi", "Active", "mobile"),
    ] {
        let id = admin.id(&format!("ADD ISSUE 1 '{name}'"));
        for (attr, value) in [(1, status), (2, team)] {
            let reply = call(addr, &mut aj, &format!("SET VALUE {id} {attr} '{value}'"));
            assert!(reply[0].starts_with("ID "), "{reply:?}");
        }
        issues.push(id);
    }
    let mut jar = None;
    call(addr, &mut jar, "LOGIN 'u2' 'pw'");
    assert_eq!(
        call(
            addr,
            &mut jar,
            "SET PREFERENCE 2 'time_zone' 'Europe/Warsaw'"
        ),
        ["OK"]
    );
    let view = r#"VIEW columns="1,0,1001,1002,5" sort-column=0 filters={"NEQ column=1001 value=\\"Closed\\"","EQ column=1002 value=\\"web\\""}"#;
    assert_eq!(
        call(addr, &mut jar, &format!("ADD VIEW 1 'Open web' '{view}' 0")),
        ["ID 1"]
    );
    assert_eq!(
        call(addr, &mut jar, "ADD ALERT 1 1 3 '0,1,2,3,4,5,6' '2,9' 0"),
        ["ID 1"]
    );
    // The pass that first sees the alert only records it.
    assert!(admin.one("RUN NOTIFICATIONS").starts_with("PASS "));
    let mut mailbox = Mailbox {
        sink: &sink,
        seen: 0,
    };
    let report = |m: &Inspected, slot: i64| {
        assert_eq!(m.one("X-RcptTo"), "u2@example.org");
        let sent = date(m);
        assert!(
            sent >= slot && sent <= slot + LATE,
            "sent {sent}, slot {slot}"
        );
        body(m).to_string()
    };
    let order = |text: &str, names: &[&str]| {
        let at: Vec<usize> = names
            .iter()
            .map(|n| {
                text.find(n)
                    .unwrap_or_else(|| panic!("{n} missing: {text}"))
            })
            .collect();
        assert!(
            at.windows(2).all(|w| w[0] < w[1]),
            "order {names:?}: {text}"
        );
    };

    // 02:00 does not exist on 29 March: the report comes at the jump, 03:00 CEST.
    let slot = utc("2026-03-29T01:00:00Z");
    clock.freeze(slot - 1);
    assert!(admin.one("RUN NOTIFICATIONS").starts_with("PASS "));
    mailbox.assert_quiet("before the first report");
    clock.set(slot - 1);
    let m = mailbox.next(LATE as u64);
    let text = report(&m, slot);
    assert_eq!(m.one("Subject"), "[Website] Bugs - Open web: 2 issues");
    assert!(
        text.contains("this is the report \"Open web\" of Website / Bugs on DST Tracker, 2026-03-29 03:00 (Europe/Warsaw)"),
        "{text}"
    );
    order(
        &text,
        &[
            &format!("#{} Mango", issues[2]),
            &format!("#{} Zebra crash", issues[0]),
        ],
    );
    assert!(
        text.contains("  Status: Active\n  Team: web\n  Modified By: Administrator"),
        "{text}"
    );
    assert!(
        !text.contains("Apple pie") && !text.contains("Kiwi"),
        "{text}"
    );
    assert!(text.contains("MODIFY ALERT 1 3 'days' 'hours'"), "{text}");
    let html = &m.parts.iter().find(|(t, _)| t == "text/html").unwrap().1;
    assert!(
        html.contains("<th style=\"text-align: left; padding: 2px 8px;\">Team</th>"),
        "{html}"
    );

    // A change makes nothing pending for the report's owner (it is no summary of changes);
    // the Team attribute goes, and with it its filter and column.
    let reply = call(
        addr,
        &mut aj,
        &format!("SET VALUE {} 1 'Active'", issues[1]),
    );
    assert!(reply[0].starts_with("ID "), "{reply:?}");
    assert_eq!(admin.send("PREVIEW NOTIFICATIONS 2"), ["NULL"]);
    assert_eq!(call(addr, &mut aj, "DELETE ATTRIBUTE 2 1"), ["OK"]);

    // 09:00 CEST is 07:00 UTC: the next report lists every issue not Closed.
    let slot = utc("2026-03-29T07:00:00Z");
    clock.set(utc("2026-03-29T06:00:00Z") + 5);
    assert!(admin.one("RUN NOTIFICATIONS").starts_with("PASS "));
    mailbox.assert_quiet("at 08:00 CEST");
    let m = {
        clock.freeze(slot - 1);
        assert!(admin.one("RUN NOTIFICATIONS").starts_with("PASS "));
        mailbox.assert_quiet("before the second report");
        clock.set(slot - 1);
        mailbox.next(LATE as u64)
    };
    let text = report(&m, slot);
    assert_eq!(m.one("Subject"), "[Website] Bugs - Open web: 4 issues");
    order(
        &text,
        &[
            &format!("#{} Apple pie", issues[1]),
            &format!("#{} Kiwi", issues[3]),
            &format!("#{} Mango", issues[2]),
            &format!("#{} Zebra crash", issues[0]),
        ],
    );
    assert!(!text.contains("Team"), "{text}");
    assert!(
        text.contains("  Status: Active\n  Modified By: Administrator"),
        "{text}"
    );

    // Once per slot: more passes send nothing until the next chosen hour.
    std::thread::sleep(Duration::from_millis(2500));
    mailbox.assert_quiet("after the second report");
    assert_clean_log(&server);
}
