//! Sending a built message, with failures classified for the outbox's retry decision.
//!
//! The rule: a failure is [`SendErrorKind::Permanent`] only when the other side said so
//! definitively (an SMTP 5yz reply, or a `sendmail` exit status other than `EX_TEMPFAIL`).
//! Everything else — refused connections, timeouts, TLS trouble, 4yz replies, a `sendmail`
//! that could not be started or was killed, a full disk for the file transport — is
//! [`SendErrorKind::Transient`], because retrying later can succeed and the outbox must not
//! drop mail it could still deliver.
//!
//! Independently of the class, a failure can be an **outage** ([`SendError::outage`]): the
//! mail system as a whole could not be reached (no connection, a connection that broke, TLS
//! trouble, no answer within the timeout, a `sendmail` that cannot be started). Every other
//! message would fail the same way, so the outbox worker stops its round and backs off the
//! whole transport (the circuit breaker in `notify::service`). A failure the other side
//! *answered* (any SMTP reply code, a `sendmail` exit status) is about this message only.
//!
//! `sendmail` is run by this module rather than through lettre's `AsyncSendmailTransport`:
//! lettre 0.11.23 turns both a failed spawn and a non-zero exit into the same
//! `Error::client(stderr)` and drops the exit status, so `EX_TEMPFAIL` (75) could not be told
//! apart from a rejected message. We use the same argument form as lettre
//! (`sendmail -i -f FROM -- RCPT...`), which exim, postfix, dma, msmtp and nullmailer accept.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::{AsyncSmtpTransportBuilder, PoolConfig};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::io::AsyncWriteExt;

use super::config::{MailConfig, SmtpTls, TransportKind};
use super::message::MailError;

/// `EX_TEMPFAIL` from sysexits.h: "temporary failure, try again later".
const EX_TEMPFAIL: i32 = 75;

/// Whether the outbox should try the message again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendErrorKind {
    /// Retry later with backoff.
    Transient,
    /// Record the failure and stop trying.
    Permanent,
}

/// A failed send: its class and a human-readable detail for logs and the admin view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendError {
    pub kind: SendErrorKind,
    pub detail: String,
    /// The transport itself is unreachable (always transient); see the module comment.
    pub outage: bool,
}

impl SendError {
    fn transient(detail: impl Into<String>) -> Self {
        Self {
            kind: SendErrorKind::Transient,
            detail: detail.into(),
            outage: false,
        }
    }

    /// A transient failure of the transport as a whole.
    fn unreachable(detail: impl Into<String>) -> Self {
        Self {
            outage: true,
            ..Self::transient(detail)
        }
    }

    fn permanent(detail: impl Into<String>) -> Self {
        Self {
            kind: SendErrorKind::Permanent,
            detail: detail.into(),
            outage: false,
        }
    }

    /// Whether the mail system as a whole could not be reached (connection, TLS, timeout),
    /// as opposed to a failure it reported for this message.
    pub fn is_outage(&self) -> bool {
        self.outage
    }

    pub fn is_transient(&self) -> bool {
        self.kind == SendErrorKind::Transient
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            SendErrorKind::Transient => "transient",
            SendErrorKind::Permanent => "permanent",
        };
        write!(f, "{kind} mail failure: {}", self.detail)
    }
}

impl std::error::Error for SendError {}

#[derive(Clone)]
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Sendmail(PathBuf),
    File(AsyncFileTransport<Tokio1Executor>),
}

/// The configured mail transport. Cheap to clone: SMTP clones share one connection pool.
#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    timeout: Duration,
    /// `smtp HOST:PORT`, `sendmail PATH` or `file DIR`: every error names it, so a log line
    /// or an outbox entry says which server refused.
    peer: String,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = match &self.transport {
            Transport::Smtp(_) => "smtp".to_owned(),
            Transport::Sendmail(cmd) => format!("sendmail {}", cmd.display()),
            Transport::File(_) => "file".to_owned(),
        };
        f.debug_struct("Mailer")
            .field("transport", &transport)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Mailer {
    /// Builds the transport (creating `file_dir` for the file transport). Nothing is
    /// contacted yet: SMTP connects on the first send, so a mail server that is down at
    /// startup does not stop the issue tracker.
    pub fn new(config: &MailConfig) -> Result<Self, MailError> {
        let timeout = Duration::from_secs(config.timeout_secs.max(1));
        let transport = match config.transport {
            TransportKind::Smtp => Transport::Smtp(smtp_transport(config, timeout)?),
            TransportKind::Sendmail => Transport::Sendmail(config.sendmail_command.clone()),
            TransportKind::File => {
                std::fs::create_dir_all(&config.file_dir).map_err(|e| {
                    MailError::Config(format!(
                        "cannot create file_dir {}: {e}",
                        config.file_dir.display()
                    ))
                })?;
                Transport::File(AsyncFileTransport::new(&config.file_dir))
            }
        };
        let peer = match config.transport {
            TransportKind::Smtp => format!("smtp {}:{}", config.smtp_host, config.smtp_port),
            TransportKind::Sendmail => format!("sendmail {}", config.sendmail_command.display()),
            TransportKind::File => format!("file {}", config.file_dir.display()),
        };
        Ok(Self {
            transport,
            timeout,
            peer,
        })
    }

    /// Sends one message to the recipients of its envelope (To, Cc and Bcc), giving up after
    /// the configured timeout with a transient error.
    pub async fn send(&self, msg: &Message) -> Result<(), SendError> {
        let envelope = msg.envelope();
        let bytes = msg.formatted();
        let attempt = async {
            match &self.transport {
                Transport::Smtp(smtp) => smtp
                    .send_raw(envelope, &bytes)
                    .await
                    .map(drop)
                    .map_err(classify_smtp),
                Transport::Sendmail(command) => run_sendmail(command, envelope, &bytes).await,
                Transport::File(file) => file
                    .send_raw(envelope, &bytes)
                    .await
                    .map(drop)
                    .map_err(|e| SendError::transient(format!("file transport: {e}"))),
            }
        };
        let result = match tokio::time::timeout(self.timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(SendError::unreachable(format!(
                "no answer within {} s",
                self.timeout.as_secs()
            ))),
        };
        result.map_err(|mut e| {
            e.detail = format!("{}: {}", self.peer, e.detail);
            e
        })
    }

    /// `smtp HOST:PORT`, `sendmail PATH` or `file DIR`.
    pub fn peer(&self) -> &str {
        &self.peer
    }
}

fn smtp_transport(
    config: &MailConfig,
    timeout: Duration,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    let host = config.smtp_host.as_str();
    let tls_error = |e| MailError::Config(format!("TLS setup for {host}: {e}"));
    let builder: AsyncSmtpTransportBuilder = match config.smtp_tls {
        SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
        SmtpTls::Starttls => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host).map_err(tls_error)?
        }
        SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(tls_error)?,
    };
    // Per socket operation; the whole send is bounded again in `Mailer::send`.
    let mut builder = builder
        .port(config.smtp_port)
        .timeout(Some(timeout))
        .pool_config(PoolConfig::new());
    match (&config.smtp_username, &config.smtp_password) {
        (Some(user), Some(pass)) => {
            builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        (None, None) => {}
        _ => {
            return Err(MailError::Config(
                "smtp_username and smtp_password must be set together".into(),
            ));
        }
    }
    Ok(builder.build())
}

/// 5yz replies are final; anything else (4yz, network, TLS, protocol trouble) may pass.
/// A failure without a reply code (connection refused or broken, TLS, timeouts, an answer
/// that is not SMTP) means the server could not be talked to at all: an outage.
fn classify_smtp(err: lettre::transport::smtp::Error) -> SendError {
    let detail = format!("smtp: {err}");
    if err.is_permanent() {
        SendError::permanent(detail)
    } else if err.status().is_none() {
        SendError::unreachable(detail)
    } else {
        SendError::transient(detail)
    }
}

async fn run_sendmail(command: &Path, envelope: &Envelope, bytes: &[u8]) -> Result<(), SendError> {
    let mut cmd = tokio::process::Command::new(command);
    cmd.kill_on_drop(true).arg("-i");
    if let Some(from) = envelope.from() {
        cmd.arg("-f").arg(from);
    }
    cmd.arg("--")
        .args(envelope.to())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| SendError::unreachable(format!("cannot run {}: {e}", command.display())))?;

    // Feed stdin while collecting output, so a child that writes a lot to stderr before
    // reading its input cannot deadlock us.
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let feed = async move {
        let result = stdin.write_all(bytes).await;
        drop(stdin);
        result
    };
    let (fed, output) = tokio::join!(feed, child.wait_with_output());
    let output = output
        .map_err(|e| SendError::transient(format!("waiting for {}: {e}", command.display())))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stderr = stderr.trim();

    match output.status.code() {
        // A child that exits 0 without reading all its input did not take the message.
        Some(0) => fed.map_err(|e| {
            SendError::transient(format!(
                "{} exited 0 but did not read the message: {e}",
                command.display()
            ))
        }),
        Some(EX_TEMPFAIL) => Err(SendError::transient(format!(
            "{} exited {EX_TEMPFAIL} (EX_TEMPFAIL): {stderr}",
            command.display()
        ))),
        Some(code) => Err(SendError::permanent(format!(
            "{} exited {code}: {stderr}",
            command.display()
        ))),
        // Killed by a signal (OOM killer, shutdown): nothing says the message was bad.
        None => Err(SendError::transient(format!(
            "{} was killed ({}): {stderr}",
            command.display(),
            output.status
        ))),
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::mail::message::OutgoingMail;

    fn mail() -> OutgoingMail {
        OutgoingMail {
            from: "tracker@example.org".into(),
            to: vec!["a@example.org".into()],
            cc: vec![],
            bcc: vec!["b@example.org".into()],
            subject: "Unit".into(),
            text: Some("body\n".into()),
            html: None,
            message_id: "unit.1@example.org".into(),
            in_reply_to: None,
            references: vec![],
            list_id: None,
            list_unsubscribe: None,
            date: 1_700_000_000,
            envelope: vec![],
        }
    }

    /// Creates an executable script. A shell writes it, not this process: an executable whose
    /// write descriptor leaks into a child forked concurrently by another test thread fails
    /// to start with ETXTBSY.
    fn write_script(path: &Path, content: &str) {
        let status = std::process::Command::new("/bin/sh")
            .args(["-c", "printf %s \"$2\" > \"$1\" && chmod 755 \"$1\"", "sh"])
            .arg(path)
            .arg(content)
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// A fake sendmail: records its arguments and stdin, then exits with `code`.
    fn fake_sendmail(dir: &Path, code: i32) -> PathBuf {
        let path = dir.join(format!("sendmail-{code}"));
        let script = format!(
            "#!/bin/sh\necho \"$@\" > '{d}/args'\ncat > '{d}/stdin'\necho 'fake says hi' >&2\nexit {code}\n",
            d = dir.display()
        );
        write_script(&path, &script);
        path
    }

    fn sendmail_mailer(command: PathBuf) -> Mailer {
        Mailer::new(&MailConfig {
            transport: TransportKind::Sendmail,
            sendmail_command: command,
            ..MailConfig::default()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn file_transport_writes_the_message() {
        let dir = tempfile::tempdir().unwrap();
        let file_dir = dir.path().join("out");
        let mailer = Mailer::new(&MailConfig {
            file_dir: file_dir.clone(),
            ..MailConfig::default()
        })
        .unwrap();
        mailer.send(&mail().to_message().unwrap()).await.unwrap();
        let files: Vec<_> = std::fs::read_dir(&file_dir).unwrap().collect();
        assert_eq!(files.len(), 1);
        let text = std::fs::read_to_string(files[0].as_ref().unwrap().path()).unwrap();
        assert!(text.contains("Message-ID: <unit.1@example.org>"), "{text}");
    }

    #[tokio::test]
    async fn sendmail_gets_envelope_arguments_and_message() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = sendmail_mailer(fake_sendmail(dir.path(), 0));
        mailer.send(&mail().to_message().unwrap()).await.unwrap();
        let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
        assert_eq!(
            args.trim(),
            "-i -f tracker@example.org -- a@example.org b@example.org"
        );
        let stdin = std::fs::read_to_string(dir.path().join("stdin")).unwrap();
        assert!(stdin.contains("Subject: Unit"));
        assert!(
            !stdin.contains("b@example.org"),
            "bcc leaked into the message"
        );
    }

    #[tokio::test]
    async fn sendmail_exit_status_is_classified() {
        let dir = tempfile::tempdir().unwrap();
        let msg = mail().to_message().unwrap();

        let err = sendmail_mailer(fake_sendmail(dir.path(), 75))
            .send(&msg)
            .await
            .unwrap_err();
        assert_eq!(err.kind, SendErrorKind::Transient, "{err}");
        assert!(err.detail.contains("EX_TEMPFAIL") && err.detail.contains("fake says hi"));
        assert!(!err.is_outage(), "sendmail answered: {err}");

        for code in [1, 67, 69, 78] {
            let err = sendmail_mailer(fake_sendmail(dir.path(), code))
                .send(&msg)
                .await
                .unwrap_err();
            assert_eq!(err.kind, SendErrorKind::Permanent, "exit {code}: {err}");
            assert!(err.detail.contains(&format!("exited {code}")), "{err}");
            assert!(!err.is_outage(), "{err}");
        }

        let err = sendmail_mailer(dir.path().join("no-such-sendmail"))
            .send(&msg)
            .await
            .unwrap_err();
        assert_eq!(err.kind, SendErrorKind::Transient, "{err}");
        assert!(err.detail.contains("cannot run"), "{err}");
        assert!(err.is_outage(), "no sendmail to run: {err}");
    }

    #[tokio::test]
    async fn sendmail_killed_by_signal_is_transient() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sendmail-killed");
        write_script(&path, "#!/bin/sh\ncat >/dev/null\nkill -9 $$\n");
        let err = sendmail_mailer(path)
            .send(&mail().to_message().unwrap())
            .await
            .unwrap_err();
        assert_eq!(err.kind, SendErrorKind::Transient, "{err}");
    }

    #[tokio::test]
    async fn timeout_applies_to_sendmail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sendmail-slow");
        write_script(&path, "#!/bin/sh\ncat >/dev/null\nexec sleep 30\n");
        let mailer = Mailer::new(&MailConfig {
            transport: TransportKind::Sendmail,
            sendmail_command: path,
            timeout_secs: 1,
            ..MailConfig::default()
        })
        .unwrap();
        let started = std::time::Instant::now();
        let err = mailer
            .send(&mail().to_message().unwrap())
            .await
            .unwrap_err();
        assert_eq!(err.kind, SendErrorKind::Transient, "{err}");
        assert!(err.detail.contains("no answer within 1 s"), "{err}");
        assert!(err.is_outage(), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn smtp_connection_refused_is_an_outage() {
        // A port that was free a moment ago: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mailer = Mailer::new(&MailConfig {
            transport: TransportKind::Smtp,
            smtp_host: "127.0.0.1".into(),
            smtp_port: port,
            timeout_secs: 5,
            ..MailConfig::default()
        })
        .unwrap();
        let err = mailer
            .send(&mail().to_message().unwrap())
            .await
            .unwrap_err();
        assert_eq!(err.kind, SendErrorKind::Transient, "{err}");
        assert!(err.is_outage(), "{err}");
    }

    #[test]
    fn half_configured_credentials_are_refused() {
        let err = Mailer::new(&MailConfig {
            transport: TransportKind::Smtp,
            smtp_username: Some("u".into()),
            ..MailConfig::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("smtp_password"), "{err}");
    }
}
