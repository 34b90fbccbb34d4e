//! The `[mail]` table of the server configuration.

use std::path::PathBuf;

use serde::Deserialize;

/// How messages leave the server.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// Write each message as an `.eml` file into `file_dir`: the default, so a fresh server
    /// never tries to reach a mail server nobody configured.
    #[default]
    File,
    /// Pipe each message into a local `sendmail`-compatible program.
    Sendmail,
    /// Talk SMTP to `smtp_host:smtp_port`.
    Smtp,
}

/// Transport security for SMTP.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text; meant for a relay on localhost or a test sink.
    #[default]
    None,
    /// Plain connection upgraded with STARTTLS (usually port 587); the upgrade is required.
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

/// Mail settings. Every key has a default so the server starts without a config file.
/// `Debug` is written by hand so that logging the config never prints the SMTP password.
#[derive(Deserialize, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    pub transport: TransportKind,
    /// Envelope sender and `From:` address of every notification.
    pub from: String,
    pub smtp_host: String,
    /// Used as given for every TLS mode; set 465 or 587 yourself when using TLS.
    pub smtp_port: u16,
    pub smtp_tls: SmtpTls,
    /// Authentication is attempted only when both username and password are set.
    pub smtp_username: Option<String>,
    pub smtp_password: Option<String>,
    pub sendmail_command: PathBuf,
    pub file_dir: PathBuf,
    /// Upper bound for one send, whatever the transport, so a stuck MTA cannot stall the
    /// outbox worker.
    pub timeout_secs: u64,
    /// The `List-Id` (RFC 2919) identifier, without angle brackets: lets recipients filter
    /// all notifications from this server.
    pub list_id: String,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            transport: TransportKind::File,
            from: "webissued@localhost".into(),
            smtp_host: "127.0.0.1".into(),
            smtp_port: 25,
            smtp_tls: SmtpTls::None,
            smtp_username: None,
            smtp_password: None,
            sendmail_command: "/usr/sbin/sendmail".into(),
            file_dir: "./data/mail".into(),
            timeout_secs: 30,
            list_id: "webissued.localhost".into(),
        }
    }
}

impl std::fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailConfig")
            .field("transport", &self.transport)
            .field("from", &self.from)
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("smtp_tls", &self.smtp_tls)
            .field("smtp_username", &self.smtp_username)
            .field(
                "smtp_password",
                &self.smtp_password.as_ref().map(|_| "<redacted>"),
            )
            .field("sendmail_command", &self.sendmail_command)
            .field("file_dir", &self.file_dir)
            .field("timeout_secs", &self.timeout_secs)
            .field("list_id", &self.list_id)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_table_gives_defaults() {
        let cfg: MailConfig = toml::from_str("").unwrap();
        assert_eq!(cfg, MailConfig::default());
        assert_eq!(cfg.transport, TransportKind::File);
        assert_eq!(cfg.smtp_port, 25);
        assert_eq!(cfg.timeout_secs, 30);
    }

    #[test]
    fn keys_parse_and_unknown_keys_are_rejected() {
        let cfg: MailConfig = toml::from_str(
            "transport = \"smtp\"\nsmtp_tls = \"starttls\"\nsmtp_port = 587\n\
             smtp_username = \"u\"\nsmtp_password = \"p\"\nfrom = \"t@example.org\"",
        )
        .unwrap();
        assert_eq!(cfg.transport, TransportKind::Smtp);
        assert_eq!(cfg.smtp_tls, SmtpTls::Starttls);
        assert_eq!(cfg.smtp_port, 587);
        assert_eq!(cfg.smtp_username.as_deref(), Some("u"));
        assert_eq!(cfg.from, "t@example.org");
        assert_eq!(cfg.list_id, "webissued.localhost");

        assert!(
            !format!("{cfg:?}").contains("\"p\""),
            "password leaked by Debug"
        );

        let err = toml::from_str::<MailConfig>("smtp_hots = \"x\"").unwrap_err();
        assert!(err.to_string().contains("smtp_hots"), "{err}");
        let err = toml::from_str::<MailConfig>("transport = \"pigeon\"").unwrap_err();
        assert!(err.to_string().contains("pigeon"), "{err}");
    }
}
