//! Mail that cannot be turned into a weapon (issue 21, items 6, 7, 8 and 14), against the
//! real server, a real SMTP server (aiosmtpd) and the real HTTP pages:
//!
//! - confirmation mails are budgeted per address (case and `+tags` folded) and per user, in
//!   the store, so SUBSCRIBE/DELETE loops and URI variants send at most the limit;
//! - a user's `email` preference is confirmed by the address before any digest goes to it;
//! - each recipient of a subscription mail has its own unsubscribe link, whose page names
//!   that address only;
//! - encoded words, bidi overrides and line separators typed into names never reach a
//!   subject as such (checked with Python's own MIME parser).
//!
//! Ids: users 1 admin, 2 ann (member of project 1); project 1 "Web", folder 1 "Bugs".

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::mail::{Inspected, SmtpSink, inspect};
use support::{Client, Server};

struct World {
    server: Server,
    sink: SmtpSink,
    admin: Client,
    ann: Client,
    seen: usize,
}

fn world() -> World {
    let sink = SmtpSink::start();
    let server = Server::start_with(&format!(
        "[mail]\ntransport = \"smtp\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\n\
         from = \"Tracker <tracker@example.org>\"\n\
         [notify]\ninterval_secs = 3600\nmin_interval_secs = 0\n",
        sink.port
    ));
    let mut admin = server.admin();
    assert_eq!(admin.id("ADD USER 'ann' 'Ann' 'pw'"), 2);
    assert_eq!(admin.id("ADD PROJECT 'Web'"), 1);
    assert_eq!(admin.one("GRANT MEMBER 2 1 1"), "OK");
    assert_eq!(admin.id("ADD FOLDER 1 1 'Bugs'"), 1);
    let mut ann = server.connect();
    ann.login("ann", "pw");
    World {
        server,
        sink,
        admin,
        ann,
        seen: 0,
    }
}

impl World {
    /// Runs a pass and the outbox; returns the messages that arrived since last time.
    fn run(&mut self) -> Vec<Inspected> {
        let r = self.admin.one("RUN NOTIFICATIONS");
        assert!(r.starts_with("PASS "), "{r}");
        let queued: usize = r.split(' ').nth(2).unwrap().parse().unwrap();
        self.new_mail(queued)
    }

    /// Waits for `at_least` new messages, and a moment longer, so that "no more than N"
    /// is a real observation.
    fn new_mail(&mut self, at_least: usize) -> Vec<Inspected> {
        self.sink.wait_for_messages(self.seen + at_least);
        std::thread::sleep(Duration::from_millis(500));
        let files = self.sink.wait_for_messages(self.seen + at_least);
        let new: Vec<PathBuf> = files[self.seen.min(files.len())..].to_vec();
        self.seen = files.len();
        new.iter().map(|p| inspect(p)).collect()
    }
}

fn text(m: &Inspected) -> &str {
    &m.parts
        .iter()
        .find(|(t, _)| t == "text/plain")
        .expect("a text part")
        .1
}

fn rcpt(m: &Inspected) -> Vec<String> {
    let mut v: Vec<String> = m
        .one("X-RcptTo")
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    v.sort();
    v
}

fn token_of(m: &Inspected) -> String {
    let t = text(m);
    let at = t.find("this token: ").expect("token in mail") + "this token: ".len();
    t[at..at + 32].to_string()
}

/// The path and query of the first link under `prefix` in the text part.
fn link(m: &Inspected, prefix: &str) -> String {
    let t = text(m);
    let at = t.find(prefix).expect("link in mail");
    t[at..].split_whitespace().next().unwrap().to_string()
}

fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, body.to_string())
}

fn prefs(c: &mut Client, user: i64) -> Vec<String> {
    c.send(&format!("LIST PREFERENCES {user}"))
}

const LIMITED: &str = "ERROR 350 'Too Many Attempts: ";

#[test]
fn subscribe_delete_loop_sends_at_most_the_limit() {
    let mut w = world();
    let started = Instant::now();
    let (mut made, mut refused) = (0, 0);
    for _ in 0..100 {
        let r = w
            .ann
            .one("SUBSCRIBE FOLDER 1 'mailto:victim@example.org' 0 ''");
        if let Some(id) = r.strip_prefix("ID ") {
            made += 1;
            assert_eq!(w.ann.one(&format!("DELETE SUBSCRIPTION {id}")), "OK");
        } else {
            assert!(r.starts_with(LIMITED), "{r}");
            assert!(
                r.contains("victim@example.org") && r.contains("try again later"),
                "{r}"
            );
            refused += 1;
        }
    }
    let mails = w.new_mail(3);
    eprintln!(
        "SUBSCRIBE/DELETE x100: {made} accepted, {refused} refused, {} mails in {:?}",
        mails.len(),
        started.elapsed()
    );
    assert_eq!((made, refused), (3, 97));
    assert_eq!(mails.len(), 3, "at most the limit reaches the victim");
    // The budget lives in the store: a restart does not give it back either.
    w.server.restart();
    let mut ann = w.server.connect();
    ann.login("ann", "pw");
    let r = ann.one("SUBSCRIBE FOLDER 1 'mailto:victim@example.org' 0 ''");
    assert!(r.starts_with(LIMITED), "{r}");
}

#[test]
fn uri_variants_and_other_users_share_one_budget_per_address() {
    let mut w = world();
    let mut made = 0;
    for i in 0..99 {
        // Case, +tags, query fields and options: 99 different subscriptions, one mailbox.
        let line = format!(
            "SUBSCRIBE FOLDER 1 'mailto:ViCtim+{i}@Example.ORG?subject=v{i}' {} 'body=\"{i}\"'",
            i % 7
        );
        let r = w.ann.one(&line);
        if r.starts_with("ID ") {
            made += 1;
        } else {
            assert!(r.starts_with(LIMITED), "{line}: {r}");
        }
    }
    // Another user (the administrator) is held by the same per-address budget.
    let r = w
        .admin
        .one("SUBSCRIBE FOLDER 1 'mailto:victim@example.org' 0 ''");
    assert!(r.starts_with(LIMITED), "{r}");
    let mails = w.new_mail(3);
    eprintln!("99 URI variants: {made} accepted, {} mails", mails.len());
    assert_eq!(made, 3);
    assert_eq!(mails.len(), 3);

    // The per-user budget (20 by default): distinct addresses, one user.
    let mut made = 0;
    let mut last = String::new();
    for i in 0..25 {
        last = w.ann.one(&format!(
            "SUBSCRIBE FOLDER 1 'mailto:person{i}@example.org' 0 ''"
        ));
        if last.starts_with("ID ") {
            made += 1;
        }
    }
    assert_eq!(made, 20 - 3, "ann had already caused 3 mails");
    assert!(
        last.starts_with(LIMITED) && last.contains("at most 20 confirmation mails"),
        "{last}"
    );
    assert_eq!(w.new_mail(17).len(), 17);
}

#[test]
fn confirmation_subject_carries_no_attacker_text() {
    let mut w = world();
    let issue = w
        .ann
        .id("ADD ISSUE 1 'URGENT: your account is locked, call +1 555 0100'");
    w.ann.id(&format!(
        "SUBSCRIBE ISSUE {issue} 'mailto:x@example.org?subject=Pay%20now' 0 ''"
    ));
    let m = &w.new_mail(1)[0];
    assert_eq!(m.one("Subject"), "Confirm your subscription on webissued");
    assert!(
        text(m).contains("URGENT"),
        "the body says what is asked, quoted"
    );
}

#[test]
fn email_preference_is_confirmed_before_any_digest() {
    let mut w = world();
    let addr = w.server.http_addr();
    assert_eq!(w.ann.one("NOTIFY FOLDER 1 1"), "OK");
    assert_eq!(
        w.ann.one("SET PREFERENCE 2 'email' 'ann@example.org'"),
        "OK"
    );
    let confirm = w.new_mail(1);
    assert_eq!(confirm.len(), 1);
    let m = &confirm[0];
    assert_eq!(rcpt(m), ["ann@example.org"]);
    assert_eq!(m.one("Subject"), "Confirm your e-mail address on webissued");
    let path = link(m, "/email/");
    assert!(path.starts_with("/email/2/confirm?token="), "{path}");
    assert_eq!(
        prefs(&mut w.ann, 2),
        [
            "P 'email' 'ann@example.org'",
            "P 'email-status' 'unconfirmed'"
        ]
    );
    // Setting it again sends nothing more; the status cannot be set by hand.
    assert_eq!(
        w.ann.one("SET PREFERENCE 2 'email' 'ann@example.org'"),
        "OK"
    );
    assert!(
        w.ann
            .one("SET PREFERENCE 2 'email-status' 'confirmed'")
            .starts_with("ERROR 344 ")
    );

    // Unconfirmed: a change sends no digest.
    w.admin.id("ADD ISSUE 1 'Before confirming'");
    assert!(w.run().is_empty(), "no digest to an unconfirmed address");

    // The page: GET shows the address and changes nothing, POST confirms.
    let (status, page) = http(addr, "GET", &path);
    assert_eq!(status, 200);
    assert!(page.contains("ann@example.org") && page.contains("method=\"post\""));
    assert!(prefs(&mut w.ann, 2).contains(&"P 'email-status' 'unconfirmed'".to_string()));
    let (status, page) = http(addr, "POST", &path);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("E-mail address confirmed"));
    assert!(prefs(&mut w.ann, 2).contains(&"P 'email-status' 'confirmed'".to_string()));
    assert_eq!(http(addr, "POST", &path).0, 404, "a used link is dead");

    w.admin.id("ADD ISSUE 1 'After confirming'");
    let digests = w.run();
    assert_eq!(digests.len(), 1);
    assert_eq!(rcpt(&digests[0]), ["ann@example.org"]);
    assert!(text(&digests[0]).contains("After confirming"));

    // A changed address confirms again (here by protocol, with the token); until then
    // nothing goes to either address.
    assert_eq!(
        w.ann.one("SET PREFERENCE 2 'email' 'ann@elsewhere.org'"),
        "OK"
    );
    let m = &w.new_mail(1)[0];
    assert_eq!(rcpt(m), ["ann@elsewhere.org"]);
    let token = token_of(m);
    w.admin.id("ADD ISSUE 1 'While changing'");
    assert!(w.run().is_empty());
    assert!(
        w.ann
            .one(&format!("CONFIRM EMAIL 2 '{}'", "0".repeat(32)))
            .starts_with("ERROR 345 ")
    );
    assert_eq!(w.ann.one(&format!("CONFIRM EMAIL 2 '{token}'")), "OK");
    w.admin.id("ADD ISSUE 1 'At the new address'");
    let digests = w.run();
    assert_eq!(digests.len(), 1);
    assert_eq!(rcpt(&digests[0]), ["ann@elsewhere.org"]);

    // An administrator setting someone's address is trusted: confirmed, no mail.
    assert_eq!(
        w.admin
            .one("SET PREFERENCE 2 'email' 'ann@corp.example.org'"),
        "OK"
    );
    assert!(prefs(&mut w.ann, 2).contains(&"P 'email-status' 'confirmed'".to_string()));
    assert!(w.new_mail(0).is_empty());
}

#[test]
fn email_preference_toggling_is_held_by_the_same_budget() {
    let mut w = world();
    let mut to_victim = 0;
    let mut last = String::new();
    for i in 0..10 {
        last = w.ann.one("SET PREFERENCE 2 'email' 'Victim@example.org'");
        if last == "OK" {
            to_victim += 1;
        } else {
            break;
        }
        assert_eq!(
            w.ann
                .one(&format!("SET PREFERENCE 2 'email' 'me{i}@example.org'")),
            "OK"
        );
    }
    assert_eq!(to_victim, 3);
    assert!(last.starts_with(LIMITED), "{last}");
    // The refused change changed nothing.
    assert_eq!(prefs(&mut w.ann, 2)[0], "P 'email' 'me2@example.org'");
    let mails = w.new_mail(6);
    let victim = mails
        .iter()
        .filter(|m| rcpt(m)[0].to_lowercase() == "victim@example.org")
        .count();
    eprintln!("email toggling x10: {victim} mails to the victim");
    assert_eq!(victim, 3);
    assert_eq!(mails.len(), 6);
}

#[test]
fn each_recipient_gets_its_own_unsubscribe_link_naming_only_itself() {
    let mut w = world();
    let addr = w.server.http_addr();
    w.ann
        .id("SUBSCRIBE FOLDER 1 'mailto:team@example.org?bcc=secret@example.org' 0 ''");
    let confirmations = w.new_mail(2);
    let token_for = |who: &str| {
        token_of(
            confirmations
                .iter()
                .find(|m| rcpt(m) == [who])
                .expect("a confirmation per address"),
        )
    };
    let (team_token, secret_token) = (
        token_for("team@example.org"),
        token_for("secret@example.org"),
    );
    // Only the Bcc address confirmed: its copy has no To at all, and still arrives.
    assert_eq!(
        w.ann
            .one(&format!("CONFIRM SUBSCRIPTION 1 '{secret_token}'")),
        "OK"
    );
    w.ann.id("ADD ISSUE 1 'Bcc only'");
    let mails = w.run();
    assert_eq!(mails.len(), 1);
    assert_eq!(rcpt(&mails[0]), ["secret@example.org"]);
    assert!(mails[0].all("To").is_empty() && mails[0].all("Bcc").is_empty());
    assert_eq!(
        w.ann.one(&format!("CONFIRM SUBSCRIPTION 1 '{team_token}'")),
        "OK"
    );
    w.ann.id("ADD ISSUE 1 'Disclosure'");
    let mails = w.run();
    assert_eq!(mails.len(), 2);
    let mut links = std::collections::HashMap::new();
    for m in &mails {
        assert_eq!(m.one("To"), "team@example.org");
        assert!(m.all("Bcc").is_empty());
        let url = m
            .one("List-Unsubscribe")
            .trim_matches(['<', '>'])
            .to_string();
        links.insert(
            rcpt(m)[0].clone(),
            url[url.find("/subscriptions/").unwrap()..].to_string(),
        );
    }
    let (team, secret) = (&links["team@example.org"], &links["secret@example.org"]);
    assert_ne!(team, secret, "one token per recipient");
    let (status, page) = http(addr, "GET", team);
    assert_eq!(status, 200);
    assert!(
        page.contains("team@example.org") && !page.contains("secret@"),
        "{page}"
    );
    let (status, page) = http(addr, "GET", secret);
    assert_eq!(status, 200);
    assert!(
        page.contains("secret@example.org") && !page.contains("team@"),
        "{page}"
    );
    assert!(page.contains("folder Bugs in project Web"));
    // The Bcc recipient leaves alone; the team still gets the mail.
    assert_eq!(http(addr, "POST", secret).0, 200);
    w.ann.id("ADD ISSUE 1 'After'");
    let mails = w.run();
    assert_eq!(mails.len(), 1);
    assert_eq!(rcpt(&mails[0]), ["team@example.org"]);
}

#[test]
fn encoded_words_bidi_and_line_separators_never_reach_a_subject() {
    let mut w = world();
    // "SGFja2Vk" is base64 for "Hacked"; U+202E would show "gpj.exe" as "exe.jpg".
    let name = "=?utf-8?b?SGFja2Vk?= \u{202E}gpj.exe\u{2028}Bcc: x \u{2029}end";
    let issue = w.ann.id(&format!("ADD ISSUE 1 '{name}'"));
    w.ann.id(&format!(
        "SUBSCRIBE ISSUE {issue} 'mailto:s@example.org' 0 ''"
    ));
    let t = token_of(&w.new_mail(1)[0]);
    assert_eq!(w.ann.one(&format!("CONFIRM SUBSCRIPTION 1 '{t}'")), "OK");
    // A watcher's digest too, whose subject comes from another builder.
    assert_eq!(
        w.admin.one("SET PREFERENCE 2 'email' 'ann@example.org'"),
        "OK"
    );
    assert_eq!(w.ann.one(&format!("NOTIFY ISSUE {issue} 1")), "OK");
    w.admin.id(&format!("ADD COMMENT {issue} 'x'"));
    let mails = w.run();
    assert_eq!(mails.len(), 2);
    for m in &mails {
        let subject = m.one("Subject");
        eprintln!("delivered subject: {subject:?}");
        assert!(subject.contains("gpj.exe"), "{subject:?}");
        assert!(
            !subject.contains("Hacked"),
            "encoded word decoded: {subject:?}"
        );
        assert!(
            subject.contains("utf-8?b?SGFja2Vk?="),
            "shown as typed: {subject:?}"
        );
        for c in ['\u{202E}', '\u{2028}', '\u{2029}', '\r', '\n'] {
            assert!(!subject.contains(c), "{c:?} in {subject:?}");
        }
        assert!(m.all("Bcc").is_empty());
    }
}

/// A server with the notify feature but without subscriptions still serves the email page.
#[test]
fn email_confirmation_works_without_the_subscribe_feature() {
    let sink = SmtpSink::start();
    let mut server = Server::start_with(&format!(
        "[mail]\ntransport = \"smtp\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\n\
         [notify]\ninterval_secs = 3600\n[subscribe]\nenabled = false\n",
        sink.port
    ));
    let mut admin = server.admin();
    admin.id("ADD USER 'ann' 'Ann' 'pw'");
    let mut ann = server.connect();
    ann.login("ann", "pw");
    assert_eq!(ann.one("SET PREFERENCE 2 'email' 'ann@example.org'"), "OK");
    let m = inspect(&sink.wait_for_messages(1)[0]);
    let path = link(&m, "/email/");
    let (status, _) = http(server.http_addr(), "POST", &path);
    assert_eq!(status, 200);
    assert!(prefs(&mut ann, 2).contains(&"P 'email-status' 'confirmed'".to_string()));
}
