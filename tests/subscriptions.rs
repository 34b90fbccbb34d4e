//! E-mail subscriptions end to end: the real server, a real SMTP server (aiosmtpd), the
//! confirm and unsubscribe pages over real HTTP, and Debian's headless chromium.
//!
//! Ids: users 1 admin, 2 ann (member of project 1), 3 eve (no membership); project 1 "Web",
//! folder 1 "Bugs". `RUN NOTIFICATIONS` runs a pass and the outbox at once, so nothing sleeps
//! for the timer.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::mail::{Inspected, SmtpSink, inspect};
use support::{Client, Server};

struct World {
    server: Server,
    sink: SmtpSink,
    admin: Client,
    ann: Client,
    eve: Client,
    /// Messages already looked at.
    seen: usize,
}

fn world(extra: &str) -> World {
    let sink = SmtpSink::start();
    let server = Server::start_with(&format!(
        "[mail]\ntransport = \"smtp\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\n\
         from = \"Tracker <tracker@example.org>\"\n\
         [notify]\ninterval_secs = 3600\n{extra}",
        sink.port
    ));
    let mut admin = server.admin();
    assert_eq!(admin.id("ADD USER 'ann' 'Ann' 'pw'"), 2);
    assert_eq!(admin.id("ADD USER 'eve' 'Eve' 'pw'"), 3);
    assert_eq!(admin.id("ADD PROJECT 'Web'"), 1);
    assert_eq!(admin.one("GRANT MEMBER 2 1 1"), "OK");
    assert_eq!(admin.id("ADD FOLDER 1 1 'Bugs'"), 1);
    let mut ann = server.connect();
    ann.login("ann", "pw");
    let mut eve = server.connect();
    eve.login("eve", "pw");
    World {
        server,
        sink,
        admin,
        ann,
        eve,
        seen: 0,
    }
}

impl World {
    /// Runs a pass and the outbox, and returns the messages that arrived since last time.
    fn run(&mut self) -> Vec<Inspected> {
        let r = self.admin.one("RUN NOTIFICATIONS");
        assert!(r.starts_with("PASS "), "{r}");
        let queued: usize = r.split(' ').nth(2).unwrap().parse().unwrap();
        self.new_mail(queued)
    }

    /// Waits for `at_least` new messages (confirmations leave on their own, without a pass).
    fn new_mail(&mut self, at_least: usize) -> Vec<Inspected> {
        let mut files = self.sink.wait_for_messages(self.seen + at_least);
        if at_least == 0 {
            // Give a stray message a moment to show up, so "nothing sent" means something.
            std::thread::sleep(Duration::from_millis(300));
            files = self.sink.wait_for_messages(self.seen);
        }
        let new: Vec<PathBuf> = files[self.seen.min(files.len())..].to_vec();
        self.seen = files.len();
        new.iter().map(|p| inspect(p)).collect()
    }

    fn http(&mut self) -> SocketAddr {
        self.server.http_addr()
    }
}

fn text(m: &Inspected) -> &str {
    &m.parts
        .iter()
        .find(|(t, _)| t == "text/plain")
        .expect("a text part")
        .1
}

/// The envelope recipients recorded by aiosmtpd.
fn rcpt(m: &Inspected) -> Vec<String> {
    let mut v: Vec<String> = m
        .one("X-RcptTo")
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    v.sort();
    v
}

/// The 32-hex-digit token after "this token: " in a confirmation mail.
fn token_of(m: &Inspected) -> String {
    let t = text(m);
    let at = t.find("this token: ").expect("token in mail") + "this token: ".len();
    t[at..at + 32].to_string()
}

/// The path and query of the confirm link in a confirmation mail.
fn confirm_path(m: &Inspected) -> String {
    let t = text(m);
    let at = t.find("/subscriptions/").expect("link in mail");
    t[at..].split_whitespace().next().unwrap().to_string()
}

/// A bare HTTP/1.1 request; returns (status, body).
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_string();
    (status, body)
}

fn status_of(c: &mut Client, id: i64) -> String {
    let lines = c.send("LIST SUBSCRIPTIONS");
    let line = lines
        .iter()
        .find(|l| l.starts_with(&format!("S {id} ")))
        .unwrap_or_else(|| panic!("subscription {id} not in {lines:?}"));
    // S id owner folder issue 'subscriber' ttl expires 'status' 'options'
    line.split('\'').nth(3).unwrap().to_string()
}

#[test]
fn subscribe_confirm_deliver_unsubscribe() {
    let mut w = world("");
    let id = w.ann.id(
        "SUBSCRIBE FOLDER 1 'mailto:team@example.org?subject=From%20URI&cc=lead@example.org' 0 \
         'subject=\"Alarm\" bcc=\"audit@example.org\"'",
    );
    assert_eq!(id, 1);
    // Repeating it returns the same subscription and mails nobody again.
    assert_eq!(
        w.ann.id(
            "SUBSCRIBE FOLDER 1 'mailto:team@example.org?subject=From%20URI&cc=lead@example.org' \
             0 'subject=\"Alarm\" bcc=\"audit@example.org\"'"
        ),
        1
    );
    let lines = w.ann.send("LIST SUBSCRIPTIONS");
    assert_eq!(
        lines,
        [
            "S 1 2 1 0 'mailto:team@example.org?subject=From%20URI&cc=lead@example.org' 0 0 \
             'pending' 'subject=\"Alarm\" bcc=\"audit@example.org\"'"
        ]
    );

    // One confirmation per address, each to that address alone, each with its own token.
    let confirmations = w.new_mail(3);
    assert_eq!(confirmations.len(), 3, "{confirmations:#?}");
    let mut by_rcpt = std::collections::HashMap::new();
    for m in &confirmations {
        let r = rcpt(m);
        assert_eq!(r.len(), 1);
        assert_eq!(m.one("To"), r[0]);
        assert!(m.all("Cc").is_empty() && m.all("Bcc").is_empty());
        assert!(m.one("Subject").starts_with("Confirm your subscription"));
        assert!(text(m).contains("folder Bugs in project Web"));
        by_rcpt.insert(r[0].clone(), (token_of(m), confirm_path(m)));
    }
    let (team_token, _) = by_rcpt["team@example.org"].clone();
    let (_, lead_path) = by_rcpt["lead@example.org"].clone();
    let (audit_token, _) = by_rcpt["audit@example.org"].clone();
    assert_ne!(team_token, audit_token);

    // Pending: a change sends nothing.
    w.ann.id("ADD ISSUE 1 'First'");
    assert!(w.run().is_empty());

    // A wrong token changes nothing; the right one confirms that address only.
    assert!(
        w.ann
            .one(&format!("CONFIRM SUBSCRIPTION 1 '{}'", "0".repeat(32)))
            .starts_with("ERROR 345 ")
    );
    assert!(
        w.ann
            .one(&format!("CONFIRM SUBSCRIPTION 1 '{audit_token}x'"))
            .starts_with("ERROR 345 ")
    );
    assert_eq!(status_of(&mut w.ann, 1), "pending");
    assert_eq!(
        w.ann.one(&format!("CONFIRM SUBSCRIPTION 1 '{team_token}'")),
        "OK"
    );
    assert_eq!(status_of(&mut w.ann, 1), "active");
    assert!(
        w.ann
            .one(&format!("CONFIRM SUBSCRIPTION 1 '{team_token}'"))
            .starts_with("ERROR 345 "),
        "a token works once"
    );
    w.ann.id("ADD ISSUE 1 'Second'");
    let mails = w.run();
    assert_eq!(mails.len(), 1);
    assert_eq!(
        rcpt(&mails[0]),
        ["team@example.org"],
        "only confirmed addresses"
    );
    assert!(mails[0].all("Cc").is_empty());

    // The lead confirms with the link: GET shows a page and changes nothing, POST confirms.
    let http_addr = w.http();
    let (status, page) = http(http_addr, "GET", &lead_path, "");
    assert_eq!(status, 200);
    assert!(page.contains("lead@example.org") && page.contains("method=\"post\""));
    w.ann.id("ADD ISSUE 1 'Third'");
    assert_eq!(
        rcpt(&w.run()[0]),
        ["team@example.org"],
        "GET confirmed nothing"
    );
    let (status, page) = http(http_addr, "POST", &lead_path, "");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Subscription confirmed"));
    let (status, _) = http(http_addr, "POST", &lead_path, "");
    assert_eq!(status, 404, "a used link is dead");
    assert_eq!(
        w.ann
            .one(&format!("CONFIRM SUBSCRIPTION 1 '{audit_token}'")),
        "OK"
    );

    // A change reaches everyone with the subject, Cc and Bcc of the subscription: one copy
    // per address, each to that address alone and with its own unsubscribe link.
    let issue = w.ann.id("ADD ISSUE 1 'Crash on save'");
    w.ann.id(&format!("ADD COMMENT {issue} 'Seen it'"));
    let mails = w.run();
    assert_eq!(mails.len(), 3);
    let mut links = std::collections::HashMap::new();
    for m in &mails {
        assert_eq!(m.one("Subject"), "Alarm");
        assert_eq!(m.one("To"), "team@example.org");
        assert_eq!(m.one("Cc"), "lead@example.org");
        assert!(m.all("Bcc").is_empty(), "Bcc stays out of the headers");
        assert!(
            text(m).contains("Crash on save") && text(m).contains("commented:\n      | Seen it")
        );
        assert_eq!(m.one("List-Unsubscribe-Post"), "List-Unsubscribe=One-Click");
        let unsubscribe = m
            .one("List-Unsubscribe")
            .trim_matches(['<', '>'])
            .to_string();
        assert!(text(m).contains(&unsubscribe));
        let path = unsubscribe[unsubscribe.find("/subscriptions/").unwrap()..].to_string();
        let r = rcpt(m);
        assert_eq!(r.len(), 1, "one envelope recipient per copy");
        links.insert(r[0].clone(), path);
    }
    let mut to: Vec<&String> = links.keys().collect();
    to.sort();
    assert_eq!(
        to,
        ["audit@example.org", "lead@example.org", "team@example.org"]
    );
    let path = links["team@example.org"].clone();

    // GET of the unsubscribe link: a page with a button, nothing cancelled.
    let (status, page) = http(http_addr, "GET", &path, "");
    assert_eq!(status, 200);
    assert!(page.contains("Unsubscribe") && page.contains("method=\"post\""));
    assert_eq!(status_of(&mut w.ann, 1), "active");

    // RFC 8058 one-click: a POST stops that address at once; the others still get mail.
    let (status, page) = http(http_addr, "POST", &path, "List-Unsubscribe=One-Click");
    assert_eq!(status, 200, "{page}");
    assert_eq!(status_of(&mut w.ann, 1), "active");
    w.ann.id(&format!("ADD COMMENT {issue} 'Anyone there?'"));
    let mut left: Vec<String> = w.run().iter().flat_map(rcpt).collect();
    left.sort();
    assert_eq!(left, ["audit@example.org", "lead@example.org"]);
    let (status, _) = http(http_addr, "POST", &path, "List-Unsubscribe=One-Click");
    assert_eq!(status, 404);
    // The last address to leave takes the subscription with it.
    for who in ["lead@example.org", "audit@example.org"] {
        let (status, _) = http(http_addr, "POST", &links[who], "");
        assert_eq!(status, 200, "{who}");
    }
    assert_eq!(w.ann.send("LIST SUBSCRIPTIONS"), ["NULL"]);
    w.ann.id(&format!("ADD COMMENT {issue} 'Still there?'"));
    assert!(w.run().is_empty());
}

#[test]
fn bad_requests_get_clear_errors_and_send_nothing() {
    let mut w = world("");
    let r = w.ann.one(
        "SUBSCRIBE FOLDER 1 'mailto:a@example.org?subject=Hi%0D%0ABcc:%20victim@example.org' 0 ''",
    );
    assert!(
        r.starts_with("ERROR 342 ") && r.contains("line break"),
        "{r}"
    );
    let r = w
        .ann
        .one("SUBSCRIBE FOLDER 1 'mailto:a@example.org' 0 'cc=\"b@example.org\\nBcc: c@x.org\"'");
    assert!(r.starts_with("ERROR 340 "), "{r}");
    let r = w
        .ann
        .one("SUBSCRIBE FOLDER 1 'mailto:a@example.org' 0 'from=\"ceo@example.org\"'");
    assert!(
        r.starts_with("ERROR 342 ") && r.contains("unknown option"),
        "{r}"
    );
    let r = w
        .ann
        .one("SUBSCRIBE FOLDER 1 'https://example.org/hook' 0 ''");
    assert!(r.starts_with("ERROR 342 ") && r.contains("mailto:"), "{r}");
    let r = w.ann.one("SUBSCRIBE FOLDER 1 'mailto:a@example.org' -5 ''");
    assert!(r.starts_with("ERROR 342 ") && r.contains("ttl"), "{r}");

    // Outsiders: the folder and the issue do not exist for them.
    let issue = w.ann.id("ADD ISSUE 1 'Private'");
    assert_eq!(
        w.eve
            .one("SUBSCRIBE FOLDER 1 'mailto:eve@example.org' 0 ''"),
        "ERROR 304 'Unknown Folder'"
    );
    assert_eq!(
        w.eve.one(&format!(
            "SUBSCRIBE ISSUE {issue} 'mailto:eve@example.org' 0 ''"
        )),
        "ERROR 305 'Unknown Issue'"
    );
    assert_eq!(
        w.eve
            .one("SUBSCRIBE FOLDER 99 'mailto:eve@example.org' 0 ''"),
        "ERROR 304 'Unknown Folder'"
    );

    // A real subscription of ann's: guessed by eve, it does not exist.
    let id = w.ann.id(&format!(
        "SUBSCRIBE ISSUE {issue} 'mailto:ann@example.org' 0 ''"
    ));
    let mails = w.new_mail(1);
    assert_eq!(mails.len(), 1, "only the one valid subscription mailed");
    let token = token_of(&mails[0]);
    assert_eq!(w.eve.send("LIST SUBSCRIPTIONS"), ["NULL"]);
    for line in [
        format!("CONFIRM SUBSCRIPTION {id} '{token}'"),
        format!("DELETE SUBSCRIPTION {id}"),
        "DELETE SUBSCRIPTION 99".to_string(),
        "CONFIRM SUBSCRIPTION -1 'x'".to_string(),
    ] {
        assert_eq!(
            w.eve.one(&line),
            "ERROR 310 'Unknown Subscription'",
            "{line}"
        );
    }
    assert_eq!(status_of(&mut w.ann, id), "pending");
    // The server admin sees and manages everyone's.
    assert_eq!(w.admin.send("LIST SUBSCRIPTIONS").len(), 1);
    assert_eq!(w.ann.one(&format!("DELETE SUBSCRIPTION {id}")), "OK");
    assert_eq!(
        w.ann.one(&format!("CONFIRM SUBSCRIPTION {id} '{token}'")),
        "ERROR 310 'Unknown Subscription'"
    );
    w.ann.id(&format!("ADD COMMENT {issue} 'x'"));
    assert!(w.run().is_empty(), "nothing after all those errors");
}

#[test]
fn expired_subscriptions_and_tokens_stop() {
    // Lifetimes of 5 s leave room for a loaded machine between SUBSCRIBE and CONFIRM.
    let mut w = world("[subscribe]\nconfirm_token_ttl_secs = 5\n");
    let created = std::time::Instant::now();
    let short = w
        .ann
        .id("SUBSCRIBE FOLDER 1 'mailto:short@example.org' 5 ''");
    let late = w
        .ann
        .id("SUBSCRIBE FOLDER 1 'mailto:late@example.org' 0 ''");
    let mails = w.new_mail(2);
    assert_eq!(mails.len(), 2);
    let token = |to: &str| {
        token_of(
            mails
                .iter()
                .find(|m| m.one("To") == to)
                .expect("confirmation"),
        )
    };
    let (short_token, late_token) = (token("short@example.org"), token("late@example.org"));
    assert_eq!(
        w.ann
            .one(&format!("CONFIRM SUBSCRIPTION {short} '{short_token}'")),
        "OK"
    );
    std::thread::sleep(Duration::from_millis(6100).saturating_sub(created.elapsed()));
    assert_eq!(status_of(&mut w.ann, short), "expired");
    let line = w.ann.send("LIST SUBSCRIPTIONS")[0].clone();
    assert!(
        line.contains(" 5 ") && !line.ends_with(" 0 'expired' ''"),
        "{line}"
    );
    assert_eq!(
        w.ann
            .one(&format!("CONFIRM SUBSCRIPTION {late} '{late_token}'")),
        "ERROR 345 'Invalid Token: the token has expired'"
    );
    assert_eq!(status_of(&mut w.ann, late), "pending");
    w.ann.id("ADD ISSUE 1 'After expiry'");
    assert!(w.run().is_empty(), "expired subscriptions get nothing");
}

#[test]
fn a_creator_who_loses_access_stops_the_mail() {
    let mut w = world("");
    let id = w
        .ann
        .id("SUBSCRIBE FOLDER 1 'mailto:watch@example.org' 0 ''");
    let token = token_of(&w.new_mail(1)[0]);
    assert_eq!(
        w.ann.one(&format!("CONFIRM SUBSCRIPTION {id} '{token}'")),
        "OK"
    );
    w.admin.id("ADD ISSUE 1 'Seen'");
    assert_eq!(w.run().len(), 1);
    assert_eq!(w.admin.one("GRANT MEMBER 2 1 0"), "OK");
    w.admin.id("ADD ISSUE 1 'Not for ann any more'");
    assert!(w.run().is_empty(), "visibility is checked when sending");
}

/// The confirmation mail leaves at once: the timer is an hour away and nobody runs the pass.
#[test]
fn confirmation_mail_leaves_without_waiting_for_the_timer() {
    let mut w = world("");
    let r = w
        .ann
        .send("SUBSCRIBE FOLDER 1 'mailto:team@example.org' 0 ''");
    assert!(r[0].starts_with("ID "), "{r:?}");
    let mails = w.new_mail(1);
    assert_eq!(mails.len(), 1);
    assert!(text(&mails[0]).contains(&token_of(&mails[0])));
}

#[test]
fn disabled_feature_is_unknown() {
    let mut w = world("[subscribe]\nenabled = false\n");
    assert_eq!(w.ann.send("LIST FEATURES"), ["F 'notify'", "F 'help'"]);
    for line in [
        "SUBSCRIBE FOLDER 1 'mailto:a@example.org' 0 ''",
        "LIST SUBSCRIPTIONS",
        "DELETE SUBSCRIPTION 1",
        "CONFIRM SUBSCRIPTION 1 'x'",
    ] {
        assert!(w.ann.one(line).starts_with("ERROR 401 "), "{line}");
    }
}

#[test]
fn pages_escape_what_they_show_and_refuse_bad_links() {
    let mut w = world("");
    assert_eq!(w.admin.id("ADD FOLDER 1 1 '<b>Bugs & \"co\"'"), 2);
    w.ann.id("SUBSCRIBE FOLDER 2 'mailto:x@example.org' 0 ''");
    let m = w.new_mail(1);
    let path = confirm_path(&m[0]);
    let addr = w.http();
    let (status, page) = http(addr, "GET", &path, "");
    assert_eq!(status, 200);
    assert!(
        page.contains("folder &lt;b&gt;Bugs &amp; &quot;co&quot;"),
        "{page}"
    );
    assert!(!page.contains("<b>Bugs"));
    for bad in [
        path.replace("token=", "token=0"),
        "/subscriptions/1/confirm".to_string(),
        "/subscriptions/99/confirm?token=00000000000000000000000000000000".to_string(),
        "/subscriptions/1/unsubscribe?token=<script>".to_string(),
        "/subscriptions/x/confirm?token=1".to_string(),
    ] {
        let (status, page) = http(addr, "GET", &bad, "");
        assert!(status == 404 || status == 400, "{bad}: {status}");
        assert!(!page.contains("<script>"), "{bad}");
        let (status, _) = http(addr, "POST", &bad, "");
        assert!(status == 404 || status == 400, "{bad}: {status}");
    }
    assert_eq!(status_of(&mut w.ann, 1), "pending");
}

// ---------------------------------------------------------------- a real browser

const CHROMIUM: &str = "/usr/bin/chromium";

fn require_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "chromium is missing: run scripts/test-deps.d/chromium.sh (as root)"
    );
}

/// `chromium --dump-dom URL`: the page as a browser (or a mail scanner) renders it.
fn dump_dom(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `tests/support/browser.py`: opens `url` in headless chromium, clicks `click` if given
/// and waits for the page titled `wait_title`; returns the final (title, url, text).
fn browse(
    url: &str,
    click: Option<(&str, &str)>,
    screenshot: Option<&Path>,
) -> (String, String, String) {
    let mut cmd = Command::new(support::mail::PYTHON);
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/browser.py"))
        .arg(url);
    if let Some((id, title)) = click {
        cmd.args(["--click", id, "--wait-title", title]);
    }
    if let Some(p) = screenshot {
        cmd.arg("--screenshot").arg(p);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "browser.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}\t")))
            .unwrap_or_default()
            .to_string()
    };
    (field("title"), field("url"), field("text"))
}

#[test]
fn a_browser_opening_links_changes_nothing_until_the_button() {
    require_chromium();
    let mut w = world("");
    w.ann.id("SUBSCRIBE FOLDER 1 'mailto:ops@example.org' 0 ''");
    let m = w.new_mail(1);
    let url = format!("http://{}{}", w.http(), confirm_path(&m[0]));

    // What a link scanner does: load and render the page. Nothing is confirmed.
    let dom = dump_dom(&url);
    assert!(
        dom.contains("<button type=\"submit\" id=\"go\">Confirm subscription</button>"),
        "{dom}"
    );
    assert!(dom.contains("ops@example.org"));
    let (title, _, text) = browse(&url, None, None);
    assert_eq!(title, "Confirm subscription");
    assert!(text.contains("Nothing is sent until you confirm"), "{text}");
    assert_eq!(status_of(&mut w.ann, 1), "pending");

    // A person clicks the button.
    let shot = w.server.dir().join("confirm.png");
    let (title, after, text) = browse(&url, Some(("go", "Subscription confirmed")), Some(&shot));
    assert_eq!(title, "Subscription confirmed");
    assert!(after.starts_with(&format!("http://{}/subscriptions/1/confirm", w.http())));
    assert!(
        text.contains("ops@example.org will now receive notifications"),
        "{text}"
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 1000);
    assert_eq!(status_of(&mut w.ann, 1), "active");

    // The notification's unsubscribe link, opened and then clicked in the browser.
    w.ann.id("ADD ISSUE 1 'Browser test'");
    let mails = w.run();
    assert_eq!(mails.len(), 1);
    let unsubscribe = mails[0]
        .one("List-Unsubscribe")
        .trim_matches(['<', '>'])
        .to_string();
    let dom = dump_dom(&unsubscribe);
    assert!(dom.contains("id=\"go\">Unsubscribe</button>"), "{dom}");
    assert_eq!(status_of(&mut w.ann, 1), "active");
    let (title, _, _) = browse(&unsubscribe, Some(("go", "Unsubscribed")), None);
    assert_eq!(title, "Unsubscribed");
    assert_eq!(w.ann.send("LIST SUBSCRIPTIONS"), ["NULL"]);
    w.ann.id("ADD ISSUE 1 'After unsubscribing'");
    assert!(w.run().is_empty());
}
