//! The mail layer against real mail servers: aiosmtpd for SMTP, exim's `sendmail` for
//! local delivery, and a scripted SMTP server for 4yz/5yz replies.
//!
//! Needs `scripts/mail-servers.sh` to have been run once; without it these tests fail.

mod support;

use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::mail::{ScriptedSmtp, SmtpSink, inspect, wait_for_mbox};
use webissued::mail::{
    ChangeView, DigestView, FolderView, IssueView, MailConfig, Mailer, OutgoingMail, ProjectView,
    SendErrorKind, SmtpTls, Templates, TransportKind,
};

fn smtp_mailer(port: u16, timeout_secs: u64) -> Mailer {
    Mailer::new(&MailConfig {
        transport: TransportKind::Smtp,
        smtp_host: "127.0.0.1".into(),
        smtp_port: port,
        smtp_tls: SmtpTls::None,
        timeout_secs,
        ..MailConfig::default()
    })
    .unwrap()
}

/// A digest rendered by the real templates, so the whole build path is exercised.
fn digest_mail(to: &str, subject: &str, message_id: &str) -> OutgoingMail {
    let view = DigestView {
        server_name: "Test Tracker".into(),
        recipient_name: "Zoë".into(),
        projects: vec![ProjectView {
            name: "Website".into(),
            folders: vec![FolderView {
                name: "Bugs".into(),
                issues: vec![IssueView {
                    id: 42,
                    name: "Crash <on> save".into(),
                    url: Some("https://tracker.example/issue/42".into()),
                    changes: vec![ChangeView {
                        who: "Ann".into(),
                        when: "2026-11-23 14:05".into(),
                        what: "Severity: Low → High".into(),
                        detail: Vec::new(),
                    }],
                }],
            }],
        }],
        unsubscribe_url: Some("https://tracker.example/unsubscribe?t=abc".into()),
        settings_hint: None,
        footer: Vec::new(),
    };
    let (text, html) = Templates::new(None).unwrap().render_digest(&view).unwrap();
    OutgoingMail {
        from: "Test Tracker <tracker@example.org>".into(),
        to: vec![to.into()],
        cc: vec![],
        bcc: vec![],
        subject: subject.into(),
        text: Some(text),
        html: Some(html),
        message_id: message_id.into(),
        in_reply_to: Some("issue.42@tracker.example".into()),
        references: vec!["issue.42@tracker.example".into()],
        list_id: Some("website.tracker.example".into()),
        list_unsubscribe: Some("https://tracker.example/unsubscribe?t=abc".into()),
        date: 1_795_000_000,
        envelope: vec![],
    }
}

fn unique() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{nanos}", std::process::id())
}

/// (a) SMTP to aiosmtpd: the message a mail client would see, and the SMTP envelope.
#[tokio::test]
async fn smtp_delivers_multipart_digest_with_list_headers_and_envelope() {
    let sink = SmtpSink::start();
    let mut mail = digest_mail(
        "Zoë Ångström <zoe@example.org>",
        "[Website] Änderungen: #42 «Crash»",
        "digest.7.1795000000@tracker.example",
    );
    mail.cc = vec!["Carl <carl@example.org>".into()];
    mail.bcc = vec!["archive@example.org".into()];

    smtp_mailer(sink.port, 10)
        .send(&mail.to_message().unwrap())
        .await
        .unwrap();

    let files = sink.wait_for_messages(1);
    assert_eq!(files.len(), 1, "expected exactly one delivered message");
    let got = inspect(&files[0]);

    assert_eq!(got.one("Subject"), mail.subject);
    assert_eq!(got.one("From"), "Test Tracker <tracker@example.org>");
    assert_eq!(got.one("To"), "Zoë Ångström <zoe@example.org>");
    assert_eq!(got.one("Cc"), "Carl <carl@example.org>");
    assert!(got.all("Bcc").is_empty(), "Bcc header leaked: {got:#?}");
    for (name, value) in &got.headers {
        if name != "X-RcptTo" {
            assert!(
                !value.contains("archive@"),
                "bcc address in {name}: {value}"
            );
        }
    }
    assert_eq!(
        got.one("Message-ID"),
        "<digest.7.1795000000@tracker.example>"
    );
    assert_eq!(got.one("In-Reply-To"), "<issue.42@tracker.example>");
    assert_eq!(got.one("References"), "<issue.42@tracker.example>");
    assert_eq!(got.one("List-Id"), "<website.tracker.example>");
    assert_eq!(
        got.one("List-Unsubscribe"),
        "<https://tracker.example/unsubscribe?t=abc>"
    );
    assert_eq!(
        got.one("List-Unsubscribe-Post"),
        "List-Unsubscribe=One-Click"
    );

    // The envelope, as recorded by aiosmtpd.
    assert_eq!(got.one("X-MailFrom"), "tracker@example.org");
    let rcpt: Vec<&str> = got.one("X-RcptTo").split(", ").collect();
    assert_eq!(
        rcpt,
        ["zoe@example.org", "carl@example.org", "archive@example.org"]
    );

    // multipart/alternative with the text part first, both decoding to what we rendered.
    assert_eq!(got.one("Content-Type-Main"), "multipart/alternative");
    let types: Vec<&str> = got.parts.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["text/plain", "text/html"]);
    assert_eq!(
        got.parts[0].1.trim_end(),
        mail.text.as_deref().unwrap().trim_end()
    );
    assert!(got.parts[0].1.contains("#42 Crash <on> save"));
    assert!(got.parts[0].1.contains("Severity: Low → High"));
    assert!(got.parts[1].1.contains("Crash &lt;on&gt; save"));
    assert!(got.parts[1].1.contains("Hello Zoë,"));
}

/// Clones of a mailer share the SMTP pool; consecutive sends all arrive.
#[tokio::test]
async fn smtp_pool_delivers_consecutive_messages() {
    let sink = SmtpSink::start();
    let mailer = smtp_mailer(sink.port, 10);
    let clone = mailer.clone();
    for (i, m) in [&mailer, &clone, &mailer].into_iter().enumerate() {
        let mut mail = digest_mail(
            "u@example.org",
            &format!("msg {i}"),
            &format!("m{i}@t.example"),
        );
        mail.html = None;
        m.send(&mail.to_message().unwrap()).await.unwrap();
    }
    let files = sink.wait_for_messages(3);
    let mut subjects: Vec<String> = files
        .iter()
        .map(|f| inspect(f).one("Subject").to_owned())
        .collect();
    subjects.sort();
    assert_eq!(subjects, ["msg 0", "msg 1", "msg 2"]);
}

/// (b) exim's sendmail delivers locally without a daemon; the message lands in the mbox.
#[tokio::test]
async fn sendmail_delivers_to_local_mbox() {
    support::mail::require_exim();
    let tag = unique();
    let subject = format!("webissued sendmail test {tag}");
    let message_id = format!("sendmail.{tag}@tracker.example");
    let mut mail = digest_mail("mailtest@localhost", &subject, &message_id);
    mail.from = "tracker@example.org".into();

    let mailer = Mailer::new(&MailConfig {
        transport: TransportKind::Sendmail,
        sendmail_command: support::mail::SENDMAIL.into(),
        ..MailConfig::default()
    })
    .unwrap();
    mailer.send(&mail.to_message().unwrap()).await.unwrap();

    let mbox = wait_for_mbox(support::mail::MAILTEST_USER, &subject);
    let ours = mbox
        .split("\nFrom ")
        .find(|m| m.contains(&subject))
        .unwrap();
    assert!(
        ours.contains(&format!("Message-ID: <{message_id}>")),
        "{ours}"
    );
    assert!(ours.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
    assert!(ours.contains("Content-Type: multipart/alternative"));
}

/// (c) Nothing listening: connection refused must be retried, not dropped.
#[tokio::test]
async fn smtp_connection_refused_is_transient() {
    let port = support::mail::free_port();
    let err = smtp_mailer(port, 5)
        .send(
            &digest_mail("u@example.org", "x", "refused@t.example")
                .to_message()
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, SendErrorKind::Transient, "{err}");
}

/// (c) A server that accepts the connection but never greets: the configured timeout ends
/// the attempt as transient.
#[tokio::test]
async fn smtp_silent_server_times_out_as_transient() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let started = Instant::now();
    let err = smtp_mailer(port, 1)
        .send(
            &digest_mail("u@example.org", "x", "silent@t.example")
                .to_message()
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, SendErrorKind::Transient, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "timeout not applied"
    );
    drop(listener);
}

/// (c) SMTP 4yz to RCPT is transient, 5yz is permanent.
#[tokio::test]
async fn smtp_reply_codes_are_classified() {
    support::mail::require_aiosmtpd(); // the scripted server needs /usr/bin/python3 too
    let mail = digest_mail("u@example.org", "x", "codes@t.example")
        .to_message()
        .unwrap();

    let busy = ScriptedSmtp::start("450 4.2.1 mailbox busy, try later");
    let err = smtp_mailer(busy.port, 5).send(&mail).await.unwrap_err();
    assert_eq!(err.kind, SendErrorKind::Transient, "{err}");
    assert!(err.detail.contains("mailbox busy"), "{err}");

    let gone = ScriptedSmtp::start("550 5.1.1 no such user");
    let err = smtp_mailer(gone.port, 5).send(&mail).await.unwrap_err();
    assert_eq!(err.kind, SendErrorKind::Permanent, "{err}");
    assert!(err.detail.contains("no such user"), "{err}");
}
