//! Mail outages and outbox crashes (issue 6): the real server binary, real SMTP servers
//! (aiosmtpd, a scripted responder, a listener that never answers) and a fake `sendmail`,
//! each failure driven through a full notification flow: a user watches a folder, the admin
//! changes an issue, `RUN NOTIFICATIONS`.
//!
//! Retries are shortened (`retry_base_secs = 1`) so the worker's own retries happen within
//! the test; `RUN NOTIFICATIONS` replaces sleeping where it can.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{JoinHandle, sleep};
use std::time::{Duration, Instant};
use support::mail::{self, ScriptedSmtp, SmtpSink};
use support::{Client, Server};

/// A server with the given `[mail]` lines and `[notify]` lines, passes only on request.
fn server(mail: &str, notify: &str) -> Server {
    Server::start_with(&format!(
        "[mail]\nfrom = \"Tracker <tracker@example.org>\"\n{mail}\n\
         [notify]\ninterval_secs = 3600\nmin_interval_secs = 0\n{notify}\n"
    ))
}

/// A server mailing through SMTP on `port` with 1 s retries.
fn smtp_server(port: u16, timeout_secs: u64, notify: &str) -> Server {
    server(
        &format!(
            "transport = \"smtp\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\n\
             timeout_secs = {timeout_secs}"
        ),
        &format!("retry_base_secs = 1\nretry_max_secs = 1\n{notify}"),
    )
}

/// Project 1 with folder 1; users 2..=1+n (`u2`, …) are members with `u<id>@example.org`
/// and watch the folder. Returns the admin's client.
fn setup(server: &Server, n: usize) -> Client {
    let mut admin = server.admin();
    assert_eq!(admin.id("ADD PROJECT 'Website'"), 1);
    assert_eq!(admin.id("ADD FOLDER 1 1 'Bugs'"), 1);
    for i in 0..n {
        let id = admin.id(&format!("ADD USER 'u{}' 'User {}' 'pw'", i + 2, i + 2));
        assert_eq!(admin.one(&format!("GRANT MEMBER {id} 1 1")), "OK");
        // Set by the administrator, so confirmed without a mail (notifications.md).
        let email = format!("SET PREFERENCE {id} 'email' 'u{id}@example.org'");
        assert_eq!(admin.one(&email), "OK");
        let mut c = server.connect();
        c.login(&format!("u{id}"), "pw");
        assert_eq!(c.one("NOTIFY FOLDER 1 1"), "OK");
    }
    admin
}

/// The full flow with one watcher (user 2): setup, then the admin files an issue.
fn one_change(server: &Server) -> Client {
    let mut admin = setup(server, 1);
    admin.id("ADD ISSUE 1 'Outage'");
    admin
}

fn run(admin: &mut Client) -> String {
    admin.one("RUN NOTIFICATIONS")
}

/// One `O` line of `LIST OUTBOX`.
#[derive(Debug, Clone, PartialEq)]
struct Outboxed {
    id: i64,
    user: i64,
    state: String,
    attempts: u32,
    next_attempt: i64,
    to: String,
    last_error: String,
}

/// Splits a reply line into its tokens, unquoting strings.
fn tokens(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c == ' ' {
            chars.next();
        } else if c == '\'' {
            chars.next();
            let mut s = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some('n') => s.push('\n'),
                        Some(e) => s.push(e),
                        None => {}
                    },
                    '\'' => break,
                    c => s.push(c),
                }
            }
            out.push(s);
        } else {
            let mut s = String::new();
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                s.push(c);
                chars.next();
            }
            out.push(s);
        }
    }
    out
}

/// The `O` lines of `LIST OUTBOX` (a leading `T` line, the transport's breaker, skipped).
fn outbox(admin: &mut Client) -> Vec<Outboxed> {
    let lines = admin.send("LIST OUTBOX");
    if lines == ["NULL"] {
        return vec![];
    }
    lines
        .iter()
        .filter(|l| !l.starts_with("T "))
        .map(|l| {
            let t = tokens(l);
            assert_eq!((t.len(), t[0].as_str()), (9, "O"), "{l}");
            Outboxed {
                id: t[1].parse().unwrap(),
                user: t[2].parse().unwrap(),
                state: t[3].clone(),
                attempts: t[4].parse().unwrap(),
                next_attempt: t[5].parse().unwrap(),
                to: t[6].clone(),
                last_error: t[8].clone(),
            }
        })
        .collect()
}

/// The `T 'state' retryAt outages 'lastError'` line of `LIST OUTBOX`, if the breaker is not
/// closed: (state, retryAt, outages, lastError). It can only be the first line.
fn transport(admin: &mut Client) -> Option<(String, i64, u32, String)> {
    let lines = admin.send("LIST OUTBOX");
    assert!(
        lines.iter().skip(1).all(|l| !l.starts_with("T ")),
        "{lines:?}"
    );
    let t = tokens(lines.first()?);
    (t[0] == "T").then(|| {
        assert_eq!(t.len(), 5, "{lines:?}");
        (
            t[1].clone(),
            t[2].parse().unwrap(),
            t[3].parse().unwrap(),
            t[4].clone(),
        )
    })
}

/// The single message in the outbox.
fn only(admin: &mut Client) -> Outboxed {
    let o = outbox(admin);
    assert_eq!(o.len(), 1, "{o:?}");
    o[0].clone()
}

/// Polls `cond` every 50 ms until it holds; panics after `secs` seconds.
fn wait_until(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(Duration::from_millis(50));
    }
}

/// The queued message is retried by the worker on its own, with backoff: waits for `n`
/// attempts and checks it is still queued with a transient error.
fn wait_for_attempts(admin: &mut Client, n: u32, secs: u64) -> Outboxed {
    let mut last = None;
    wait_until(&format!("{n} attempts"), secs, || {
        let o = only(admin);
        let done = o.attempts >= n;
        last = Some(o);
        done
    });
    let o = last.unwrap();
    assert_eq!(o.state, "queued", "{o:?}");
    assert!(
        o.last_error.starts_with("transient mail failure: "),
        "{o:?}"
    );
    o
}

/// After recovery: the message leaves the outbox, and later runs send nothing more, so the
/// mailbox holds it exactly once.
fn delivered_exactly_once(admin: &mut Client, count: impl Fn() -> usize) {
    wait_until("the outbox to empty", 10, || outbox(admin).is_empty());
    assert_eq!(count(), 1);
    // Past any retry time a stale queue entry would have.
    sleep(Duration::from_millis(1200));
    assert_eq!(run(admin), "PASS 0 0 0 0 0");
    assert_eq!(count(), 1, "sent exactly once");
}

fn maildir_count(sink: &SmtpSink) -> usize {
    std::fs::read_dir(sink.maildir.join("new")).map_or(0, |d| d.count())
}

/// Accepts TCP connections and never says anything: an SMTP server that hangs.
struct Blackhole {
    port: u16,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Blackhole {
    fn start() -> Blackhole {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s) = (accepted.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        held.push(stream);
                        a.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        sleep(Duration::from_millis(10));
                    }
                    Err(e) => panic!("blackhole accept: {e}"),
                }
            }
        });
        Blackhole {
            port,
            accepted,
            stop,
            thread: Some(thread),
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Closes the listener and every held connection, freeing the port.
    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        self.stop();
    }
}

// ------------------------------------------------------------------------------- SMTP

#[test]
fn smtp_connection_refused_is_retried_and_delivered_once_the_server_is_up() {
    let port = mail::free_port();
    let server = smtp_server(port, 5, "");
    let mut admin = one_change(&server);
    assert_eq!(run(&mut admin), "PASS 1 1 0 1 0");
    let o = only(&mut admin);
    assert_eq!(
        (o.user, o.attempts, o.to.as_str()),
        (2, 1, "u2@example.org")
    );
    assert!(o.last_error.contains("refused"), "{o:?}");
    wait_for_attempts(&mut admin, 2, 5);

    let sink = SmtpSink::start_on(port);
    delivered_exactly_once(&mut admin, || maildir_count(&sink));
    let m = mail::inspect(&sink.wait_for_messages(1)[0]);
    assert_eq!(m.one("Message-ID"), "<digest-2-1@example.org>");
    assert_eq!(m.one("X-RcptTo"), "u2@example.org");
}

#[test]
fn an_smtp_server_that_never_answers_times_out_and_is_retried() {
    let mut hole = Blackhole::start();
    let port = hole.port;
    let server = smtp_server(port, 1, "");
    let mut admin = one_change(&server);
    let started = Instant::now();
    assert_eq!(run(&mut admin), "PASS 1 1 0 1 0");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "the send gave up after {took:?}, not after the 1 s timeout"
    );
    assert!(hole.accepted() >= 1);
    let o = only(&mut admin);
    assert_eq!(o.attempts, 1, "{o:?}");
    assert!(
        o.last_error.starts_with("transient mail failure: "),
        "{o:?}"
    );
    wait_for_attempts(&mut admin, 2, 6);

    hole.stop();
    let sink = SmtpSink::start_on(port);
    delivered_exactly_once(&mut admin, || maildir_count(&sink));
}

#[test]
fn a_hung_smtp_server_opens_the_breaker_and_held_mail_is_delivered_once_after_recovery() {
    // Three due messages, an SMTP server that accepts and never answers, 1 s send timeout.
    // Without the breaker the run waited out three timeouts and counted an attempt on each.
    let mut hole = Blackhole::start();
    let port = hole.port;
    let server = server(
        &format!(
            "transport = \"smtp\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\ntimeout_secs = 1"
        ),
        "retry_base_secs = 1\nretry_max_secs = 4\nbreaker_base_secs = 2",
    );
    let mut admin = setup(&server, 3);
    admin.id("ADD ISSUE 1 'Hung'");
    let started = Instant::now();
    let before = support_now();
    assert_eq!(run(&mut admin), "PASS 3 3 0 1 0", "one deferred, two held");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(1900),
        "the round stopped after one 1 s timeout, not three: {took:?}"
    );
    assert_eq!(hole.accepted(), 1);
    let o = outbox(&mut admin);
    let attempts: Vec<u32> = o.iter().map(|m| m.attempts).collect();
    assert_eq!(attempts, [1, 0, 0], "{o:?}");
    assert!(o.iter().all(|m| m.state == "queued"), "{o:?}");
    assert!(o[1..].iter().all(|m| m.last_error.is_empty()), "{o:?}");
    let (state, retry_at, outages, error) = transport(&mut admin).expect("a T line");
    assert_eq!((state.as_str(), outages), ("open", 1), "{error}");
    assert!(
        error.starts_with("transient mail failure: "),
        "the outage's error: {error}"
    );
    assert!(
        retry_at >= before + 3 && retry_at <= support_now() + 2,
        "2 s after the failure: {retry_at}"
    );
    // While open, a run tries nothing and answers at once.
    let t = Instant::now();
    assert_eq!(run(&mut admin), "PASS 0 0 0 0 0");
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(
        hole.accepted(),
        1,
        "no connection while the breaker is open"
    );
    assert_eq!(outbox(&mut admin), o, "held messages untouched");

    // The server is replaced by a working one: the worker's probe finds it, the breaker
    // closes and every message goes out, each once.
    hole.stop();
    let sink = SmtpSink::start_on(port);
    wait_until("the outbox to empty", 15, || outbox(&mut admin).is_empty());
    assert_eq!(transport(&mut admin), None, "closed again");
    assert_eq!(admin.send("LIST OUTBOX"), ["NULL"]);
    let files = sink.wait_for_messages(3);
    let mut to: Vec<String> = files
        .iter()
        .map(|f| mail::inspect(f).one("X-RcptTo").to_string())
        .collect();
    to.sort();
    assert_eq!(to, ["u2@example.org", "u3@example.org", "u4@example.org"]);
    sleep(Duration::from_millis(1200));
    assert_eq!(run(&mut admin), "PASS 0 0 0 0 0");
    assert_eq!(maildir_count(&sink), 3, "each sent exactly once");
    let log = server.log();
    assert_eq!(
        log.matches("mail transport unavailable").count(),
        1,
        "one warning per opening:\n{log}"
    );
    assert_eq!(log.matches("outbox resumed").count(), 1, "{log}");
}

#[test]
fn a_message_deleted_while_its_send_hangs_stays_deleted() {
    let hole = Blackhole::start();
    let server = smtp_server(hole.port, 2, "");
    let mut admin = one_change(&server);
    let mut runner = server.admin();
    runner.write_raw(b"RUN NOTIFICATIONS\n");
    wait_until("the worker to connect", 10, || hole.accepted() >= 1);
    let id = only(&mut admin).id;
    assert_eq!(admin.one(&format!("DELETE OUTBOX {id}")), "OK");
    assert_eq!(runner.read_reply(), ["PASS 1 1 0 1 0"]);
    // The timed-out send does not bring the message back.
    assert_eq!(outbox(&mut admin), []);
    assert!(
        transport(&mut admin).is_some(),
        "the timeout still opened the breaker"
    );
}

fn support_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn smtp_451_is_retried_with_backoff_and_delivered_exactly_once_after_recovery() {
    let port = mail::free_port();
    let busy = ScriptedSmtp::start_on(port, "451 4.3.0 try again later");
    let server = smtp_server(port, 5, "");
    let mut admin = one_change(&server);
    assert_eq!(run(&mut admin), "PASS 1 1 0 1 0");
    let o = wait_for_attempts(&mut admin, 2, 5);
    assert!(o.last_error.contains("451"), "{o:?}");
    assert!(busy.rcpt_times().len() >= 2);

    drop(busy);
    let sink = SmtpSink::start_on(port);
    delivered_exactly_once(&mut admin, || maildir_count(&sink));
}

#[test]
fn smtp_5xx_is_kept_as_failed_visible_and_never_retried() {
    let smtp = ScriptedSmtp::start("554 5.7.1 relaying denied");
    let server = smtp_server(smtp.port, 5, "");
    let mut admin = one_change(&server);
    assert_eq!(run(&mut admin), "PASS 1 1 0 0 1");
    let failed = only(&mut admin);
    assert_eq!((failed.state.as_str(), failed.attempts), ("failed", 1));
    assert!(
        failed.last_error.starts_with("permanent mail failure: ")
            && failed.last_error.contains("554"),
        "{failed:?}"
    );
    // Well past the 1 s retry delay, the worker and explicit runs leave it alone.
    for _ in 0..3 {
        sleep(Duration::from_millis(1100));
        assert_eq!(run(&mut admin), "PASS 0 0 0 0 0");
    }
    assert_eq!(only(&mut admin), failed, "unchanged");
    assert_eq!(smtp.rcpt_times().len(), 1, "one attempt reached the server");
    // Other users' mail is not held up by the failed one.
    admin.id("ADD COMMENT 1 'again'");
    assert_eq!(run(&mut admin), "PASS 1 1 0 0 1");
    assert_eq!(outbox(&mut admin).len(), 2);
}

#[test]
fn a_transient_failure_that_never_ends_is_given_up_after_max_attempts() {
    let smtp = ScriptedSmtp::start("421 4.3.2 shutting down");
    let server = server(
        &format!(
            "transport = \"smtp\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\ntimeout_secs = 5",
            smtp.port
        ),
        "retry_base_secs = 1\nretry_max_secs = 2\nmax_attempts = 3",
    );
    let mut admin = one_change(&server);
    assert_eq!(run(&mut admin), "PASS 1 1 0 1 0");
    let mut last = None;
    wait_until("the message to fail", 10, || {
        let o = only(&mut admin);
        let done = o.state == "failed";
        last = Some(o);
        done
    });
    let failed = last.unwrap();
    assert_eq!(failed.attempts, 3, "{failed:?}");
    assert!(
        failed.last_error.starts_with("transient mail failure: ")
            && failed.last_error.contains("421"),
        "the last (transient) answer is kept: {failed:?}"
    );
    let times = smtp.rcpt_times();
    assert_eq!(times.len(), 3, "{times:?}");
    // Backoff doubles: the second delay is 2 s, measured on whole seconds of the worker's clock.
    assert!(times[2] - times[1] > 1.0, "{times:?}");
    // Given up for good: no more attempts after the longest delay has passed twice.
    sleep(Duration::from_secs(4));
    assert_eq!(run(&mut admin), "PASS 0 0 0 0 0");
    assert_eq!(smtp.rcpt_times().len(), 3);
    assert_eq!(only(&mut admin), failed);
}

// --------------------------------------------------------------------------- sendmail

/// A fake `sendmail`: exits with the code in `<dir>/code`; with 0 it stores the message in
/// `<dir>/out/`. Every call is counted in `<dir>/calls`.
struct FakeSendmail {
    dir: tempfile::TempDir,
}

impl FakeSendmail {
    fn new(code: i32) -> FakeSendmail {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("out")).unwrap();
        let f = FakeSendmail { dir };
        f.set_code(code);
        let script = format!(
            "#!/bin/sh\nd='{}'\necho call >> \"$d/calls\"\ncode=$(cat \"$d/code\")\n\
             if [ \"$code\" != 0 ]; then cat >/dev/null; echo \"fake sendmail fails with $code\" >&2; exit \"$code\"; fi\n\
             f=$(mktemp \"$d/out/msg.XXXXXX\") && cat > \"$f\"\n",
            f.dir.path().display()
        );
        // Written by a shell, not by this process: an executable whose write descriptor leaks
        // into a child forked concurrently by another test thread fails with ETXTBSY.
        let status = Command::new("/bin/sh")
            .args(["-c", "printf %s \"$2\" > \"$1\" && chmod 755 \"$1\"", "sh"])
            .arg(f.command())
            .arg(script)
            .status()
            .unwrap();
        assert!(status.success());
        f
    }

    fn command(&self) -> PathBuf {
        self.dir.path().join("sendmail")
    }

    fn set_code(&self, code: i32) {
        let tmp = self.dir.path().join("code.tmp");
        std::fs::write(&tmp, code.to_string()).unwrap();
        std::fs::rename(tmp, self.dir.path().join("code")).unwrap();
    }

    fn calls(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("calls")).map_or(0, |s| s.lines().count())
    }

    fn delivered(&self) -> Vec<PathBuf> {
        read_dir(&self.dir.path().join("out"))
    }

    fn server(&self) -> Server {
        self.server_with("retry_base_secs = 1\nretry_max_secs = 1")
    }

    /// A server using this sendmail, with the given `[notify]` lines.
    fn server_with(&self, notify: &str) -> Server {
        server(
            &format!(
                "transport = \"sendmail\"\nsendmail_command = \"{}\"\ntimeout_secs = 5",
                self.command().display()
            ),
            notify,
        )
    }
}

fn read_dir(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn sendmail_exit_75_is_retried_and_delivers_once_fixed() {
    let sendmail = FakeSendmail::new(75);
    let server = sendmail.server();
    let mut admin = one_change(&server);
    assert_eq!(run(&mut admin), "PASS 1 1 0 1 0");
    let o = only(&mut admin);
    assert!(
        o.last_error.contains("exited 75 (EX_TEMPFAIL)") && o.last_error.contains("fails with 75"),
        "{o:?}"
    );
    wait_for_attempts(&mut admin, 2, 5);
    assert!(sendmail.delivered().is_empty());

    sendmail.set_code(0);
    delivered_exactly_once(&mut admin, || sendmail.delivered().len());
    let text = std::fs::read_to_string(&sendmail.delivered()[0]).unwrap();
    assert!(
        text.contains("Message-ID: <digest-2-1@example.org>"),
        "{text}"
    );
    assert!(sendmail.calls() >= 3, "two failures and the delivery");
}

#[test]
fn sendmail_exit_1_is_kept_as_failed_and_never_retried() {
    let sendmail = FakeSendmail::new(1);
    let server = sendmail.server();
    let mut admin = one_change(&server);
    assert_eq!(run(&mut admin), "PASS 1 1 0 0 1");
    let failed = only(&mut admin);
    assert_eq!((failed.state.as_str(), failed.attempts), ("failed", 1));
    assert!(
        failed.last_error.starts_with("permanent mail failure: ")
            && failed.last_error.contains("exited 1"),
        "{failed:?}"
    );
    // Even once sendmail works again, a failed message stays failed.
    sendmail.set_code(0);
    for _ in 0..3 {
        sleep(Duration::from_millis(1100));
        assert_eq!(run(&mut admin), "PASS 0 0 0 0 0");
    }
    assert_eq!(only(&mut admin), failed);
    assert_eq!(sendmail.calls(), 1);
    assert!(sendmail.delivered().is_empty());
}

// ----------------------------------------------------------- RETRY / DELETE OUTBOX

#[test]
fn retry_outbox_sends_a_failed_smtp_message_again() {
    let port = mail::free_port();
    let smtp = ScriptedSmtp::start_on(port, "554 5.7.1 relaying denied");
    let server = smtp_server(port, 5, "");
    let mut admin = one_change(&server);
    assert_eq!(run(&mut admin), "PASS 1 1 0 0 1");
    let failed = only(&mut admin);
    assert_eq!((failed.state.as_str(), failed.attempts), ("failed", 1));
    drop(smtp);
    let sink = SmtpSink::start_on(port);
    // A failed message stays failed on its own.
    assert_eq!(run(&mut admin), "PASS 0 0 0 0 0");
    assert_eq!(only(&mut admin), failed);
    // RETRY wakes the worker: no RUN NOTIFICATIONS needed.
    assert_eq!(admin.one(&format!("RETRY OUTBOX {}", failed.id)), "OK");
    delivered_exactly_once(&mut admin, || maildir_count(&sink));
    let m = mail::inspect(&sink.wait_for_messages(1)[0]);
    assert_eq!(m.one("Message-ID"), "<digest-2-1@example.org>");
    assert_eq!(
        admin.one(&format!("RETRY OUTBOX {}", failed.id)),
        "ERROR 311 'Unknown Message'",
        "sent messages leave the outbox"
    );
}

#[test]
fn retry_outbox_resets_attempts_and_sends_a_backed_off_message_now() {
    let sendmail = FakeSendmail::new(75);
    // Without RETRY the next attempt would be 10 minutes away.
    let server = sendmail.server_with("retry_base_secs = 600\nretry_max_secs = 600");
    let mut admin = one_change(&server);
    assert_eq!(run(&mut admin), "PASS 1 1 0 1 0");
    let o = only(&mut admin);
    assert_eq!((o.state.as_str(), o.attempts), ("queued", 1));
    assert!(o.next_attempt >= support_now() + 590, "{o:?}");
    // Retried while sendmail still fails: tried at once, and counted from zero again.
    assert_eq!(admin.one(&format!("RETRY OUTBOX {}", o.id)), "OK");
    wait_until("the retried attempt", 5, || sendmail.calls() == 2);
    wait_until("the attempt to be recorded", 5, || {
        only(&mut admin).last_error.contains("exited 75")
    });
    let again = only(&mut admin);
    assert_eq!(
        (again.state.as_str(), again.attempts),
        ("queued", 1),
        "{again:?}"
    );
    sendmail.set_code(0);
    assert_eq!(admin.one(&format!("RETRY OUTBOX {}", o.id)), "OK");
    delivered_exactly_once(&mut admin, || sendmail.delivered().len());
    assert_eq!(sendmail.calls(), 3);
}

#[test]
fn delete_outbox_drops_queued_and_failed_messages_for_good() {
    let sendmail = FakeSendmail::new(1);
    let server = sendmail.server_with("retry_base_secs = 1\nretry_max_secs = 1");
    let mut admin = setup(&server, 2);
    admin.id("ADD ISSUE 1 'Never mind'");
    assert_eq!(run(&mut admin), "PASS 2 2 0 0 2");
    let o = outbox(&mut admin);
    let (queued, failed) = (o[0].id, o[1].id);
    // The first one back in the queue, retried by the worker every second (exit 75).
    sendmail.set_code(75);
    assert_eq!(admin.one(&format!("RETRY OUTBOX {queued}")), "OK");
    wait_until("a retry of the queued message", 5, || {
        let o = outbox(&mut admin);
        o[0].state == "queued" && o[0].attempts >= 1
    });
    assert_eq!(outbox(&mut admin)[1].state, "failed");

    // Only server administrators act on the outbox.
    let mut u2 = server.connect();
    u2.login("u2", "pw");
    for line in [
        format!("RETRY OUTBOX {queued}"),
        format!("DELETE OUTBOX {queued}"),
        "DELETE OUTBOX 999".to_string(),
    ] {
        assert_eq!(u2.one(&line), "ERROR 301 'Access Denied'", "{line}");
    }
    assert_eq!(outbox(&mut admin).len(), 2, "nothing changed");

    for id in [queued, failed] {
        assert_eq!(admin.one(&format!("DELETE OUTBOX {id}")), "OK");
    }
    assert_eq!(admin.send("LIST OUTBOX"), ["NULL"]);
    for line in [
        format!("DELETE OUTBOX {queued}"),
        format!("RETRY OUTBOX {failed}"),
        "RETRY OUTBOX 999".to_string(),
        "DELETE OUTBOX 0".to_string(),
        "RETRY OUTBOX -3".to_string(),
    ] {
        assert_eq!(admin.one(&line), "ERROR 311 'Unknown Message'", "{line}");
    }
    // Never sent, even once sendmail works and well past the 1 s retry delay.
    sleep(Duration::from_millis(200)); // a fake sendmail started just before the DELETE
    let calls = sendmail.calls();
    sendmail.set_code(0);
    sleep(Duration::from_millis(1500));
    assert_eq!(run(&mut admin), "PASS 0 0 0 0 0");
    assert!(sendmail.delivered().is_empty());
    assert_eq!(sendmail.calls(), calls);
}

// ------------------------------------------------------------------ nothing blocks

#[test]
fn stuck_mail_does_not_block_the_protocol_server() {
    let hole = Blackhole::start();
    let server = smtp_server(hole.port, 120, "");
    let mut admin = setup(&server, 3);
    admin.id("ADD ISSUE 1 'Stuck'");
    // This admin's RUN NOTIFICATIONS waits for the worker, which waits for an SMTP greeting
    // that never comes (for up to 120 s).
    let mut stuck = server.admin();
    stuck.write_raw(b"RUN NOTIFICATIONS\n");
    wait_until("the worker to connect", 10, || hole.accepted() >= 1);

    // (command, time from sending it to the end of its reply)
    let mut replies: Vec<(String, Duration)> = Vec::new();
    for round in 0..5 {
        let t = Instant::now();
        let mut c = server.connect();
        let hello = c.send("HELLO");
        assert!(hello[0].starts_with("SERVER "), "{hello:?}");
        replies.push(("connect + HELLO".into(), t.elapsed()));
        let mut timed = |c: &mut Client, line: &str| -> Vec<String> {
            let t = Instant::now();
            let r = c.send(line);
            replies.push((line.to_string(), t.elapsed()));
            r
        };
        let login = timed(&mut c, &format!("LOGIN 'u{}' 'pw'", 2 + round % 3));
        assert!(login[0].starts_with("USER "), "{login:?}");
        let id = timed(&mut c, &format!("ADD ISSUE 1 'While stuck {round}'"));
        assert!(id[0].starts_with("ID "), "{id:?}");
        assert_eq!(timed(&mut c, "NOTIFY FOLDER 1 1"), ["OK"]);
        assert!(timed(&mut admin, "LIST PROJECTS")[0].starts_with("P 1 "));
        // Another watcher has this change pending.
        let other = 2 + (round + 1) % 3;
        let preview = timed(&mut admin, &format!("PREVIEW NOTIFICATIONS {other}"));
        assert!(preview[0].starts_with("D "), "{preview:?}");
        let o = timed(&mut admin, "LIST OUTBOX");
        // The worker is still stuck in its first send.
        assert_eq!(o.len(), 3, "{o:?}");
        assert!(o.iter().all(|l| l.contains("'queued' 0 ")), "{o:?}");
        timed(&mut c, "QUIT");
        sleep(Duration::from_millis(100));
    }
    assert_eq!(hole.accepted(), 1);
    let (line, slowest) = replies.iter().max_by_key(|r| r.1).unwrap().clone();
    assert!(
        slowest < Duration::from_secs(1),
        "{line:?} took {slowest:?} while mail was stuck"
    );
    eprintln!(
        "slowest of {} replies while mail was stuck: {line} in {slowest:?}",
        replies.len()
    );
}

// -------------------------------------------------------------------- crash safety

/// Watchers in the crash test, and kills.
const CRASH_USERS: usize = 30;
const KILLS: usize = 12;

/// A delivered file: (recipient, Message-ID, crash rounds named in its text part).
type Delivered = (String, String, BTreeSet<u32>);

/// (recipient, Message-ID, rounds named in the text part) for every file of a maildir,
/// decoded by Python's `email` package in one run.
fn survey(maildir: &Path) -> Vec<Delivered> {
    let script = r#"
import email, email.policy, os, re, sys
d = sys.argv[1]
for name in sorted(os.listdir(d)):
    with open(os.path.join(d, name), 'rb') as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    text = ''.join(p.get_content() for p in msg.walk() if p.get_content_type() == 'text/plain')
    rounds = sorted(set(re.findall(r'Crash r(\d+)x', text)))
    print('%s\t%s\t%s' % (msg['X-RcptTo'], msg['Message-ID'], ','.join(rounds)))
"#;
    let out = Command::new(mail::PYTHON)
        .args(["-c", script])
        .arg(maildir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let rounds = f[2]
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().unwrap())
                .collect();
            (f[0].to_string(), f[1].to_string(), rounds)
        })
        .collect()
}

/// xorshift64*, seeded from the clock (the seed is printed so a failure can be replayed).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

#[test]
fn the_outbox_survives_sigkill_while_sending() {
    let sink = SmtpSink::start();
    let mut server = smtp_server(sink.port, 5, "");
    let mut admin = setup(&server, CRASH_USERS);
    let count = || maildir_count(&sink);

    // Round 0 without a kill: how long a pass and 30 sends take here.
    admin.id("ADD ISSUE 1 'Crash r0x'");
    let t = Instant::now();
    assert_eq!(
        run(&mut admin),
        format!("PASS {CRASH_USERS} {CRASH_USERS} {CRASH_USERS} 0 0")
    );
    let batch = t.elapsed();
    drop(admin);

    let seed = support::seed_from_env("OUTAGE_SEED");
    let mut rng = Rng(seed);
    // Kill anywhere from before the pass to a little after the batch would have ended.
    let window = (batch.as_millis() as u64 * 5 / 4).max(20);
    let mut mid_batch = 0;
    let mut log = Vec::new();
    for round in 1..=KILLS as u32 {
        let mut admin = server.admin();
        admin.id(&format!("ADD ISSUE 1 'Crash r{round}x'"));
        let before = count();
        admin.write_raw(b"RUN NOTIFICATIONS\n");
        let delay = rng.below(window);
        sleep(Duration::from_millis(delay));
        server.kill9();
        let sent = count() - before;
        if sent > 0 && sent < CRASH_USERS {
            mid_batch += 1;
        }
        log.push(format!("kill {round} after {delay} ms: {sent} sent"));
        server.restart();
    }

    // The last restart resumes; run until nothing is pending or queued.
    let mut admin = server.admin();
    wait_until("the outbox to drain", 30, || {
        run(&mut admin) == "PASS 0 0 0 0 0" && outbox(&mut admin).is_empty()
    });

    let mails = survey(&sink.maildir.join("new"));
    let mut by_id: BTreeMap<&str, Vec<&Delivered>> = BTreeMap::new();
    for m in &mails {
        by_id.entry(m.1.as_str()).or_default().push(m);
    }
    // A repeated Message-ID is the same digest sent again (to the same address, same changes).
    for (id, copies) in &by_id {
        assert!(
            copies
                .iter()
                .all(|c| c.0 == copies[0].0 && c.2 == copies[0].2),
            "{id}: {copies:?}"
        );
    }
    let duplicated = mails.len() - by_id.len();
    // Each change reached each watcher, in exactly one digest.
    let mut lost = Vec::new();
    let mut redigested = Vec::new();
    for user in 2..2 + CRASH_USERS {
        let to = format!("u{user}@example.org");
        for round in 0..=KILLS as u32 {
            let digests = by_id
                .values()
                .filter(|c| c[0].0 == to && c[0].2.contains(&round))
                .count();
            match digests {
                0 => lost.push((user, round)),
                1 => {}
                _ => redigested.push((user, round)),
            }
        }
    }
    let report = format!(
        "seed {seed}, batch of {CRASH_USERS} took {batch:?}, kills {KILLS} ({mid_batch} mid-batch), \
         mails {} ({} distinct), lost {}, duplicated {duplicated}\n{}",
        mails.len(),
        by_id.len(),
        lost.len(),
        log.join("\n")
    );
    eprintln!("{report}");
    assert!(lost.is_empty(), "lost {lost:?}\n{report}");
    assert!(
        redigested.is_empty(),
        "in two digests: {redigested:?}\n{report}"
    );
    // One message is in flight at a time, and its removal is durable before the next send:
    // each kill can duplicate at most the message it interrupted.
    assert!(duplicated <= KILLS, "{report}");
    assert!(
        mid_batch >= 3,
        "too few kills landed while sending\n{report}"
    );
}
