//! Configuration: TOML, every key has a default, so the server starts without a file.
//! Unknown keys are an error at start, naming the key.

use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub notify: NotifyConfig,
    pub limits: LimitsConfig,
    pub mail: crate::mail::MailConfig,
    pub subscribe: SubscribeConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the protocol listener.
    pub listen: String,
    /// Where sled and attachment files live.
    pub data_dir: PathBuf,
    /// Server name sent by HELLO.
    pub name: String,
    /// Longest accepted command line in bytes; longer lines get ERROR 400 and are skipped.
    pub max_line_bytes: usize,
    /// Largest attachment in bytes; larger uploads get ERROR 403.
    pub max_attachment_bytes: u64,
    /// Connections beyond this get one ERROR 503 line and are closed.
    pub max_connections: usize,
    /// A connection that sends no complete command for this long is closed.
    pub idle_timeout_secs: u64,
    /// At SIGTERM/SIGINT, open connections get this long to finish what they have begun
    /// before they are cut (crate::shutdown has the order).
    pub shutdown_secs: u64,
    /// Time zone for users without a `timezone` preference (`+hhmm` or an IANA name).
    pub timezone: String,
    /// Address of the HTTP listener serving the confirm and unsubscribe pages (only started
    /// when `[subscribe] enabled`).
    pub http_listen: String,
    /// Public prefix of links in mails, e.g. `https://tracker.example.org`. When unset, the
    /// address the HTTP listener actually bound (`http://127.0.0.1:4081` by default).
    pub base_url: Option<String>,
    /// Threads running connections; 0: one per core. With clients on the same machine (a
    /// load generator), fewer threads leave cores to them.
    pub workers: usize,
    /// sled's page cache in MiB. Commands read the in-memory copy of the data; sled is read
    /// at start-up and written at checkpoints.
    pub cache_mb: u64,
    /// The write-ahead log is folded into sled once a log file holds this many MiB...
    pub checkpoint_wal_mb: u64,
    /// ...or is this many seconds old. A closed file is folded once writes pause for a
    /// second, or once closed files hold `checkpoint_backlog_mb`, or after waiting
    /// `checkpoint_secs`.
    pub checkpoint_secs: u64,
    pub checkpoint_backlog_mb: u64,
    /// Writes gathered in memory before they are merged into the packed copy of the data.
    pub compact_min_records: usize,
    /// Where BACKUP writes its copies; unset: `<data_dir>.backups` (protocol-spec/dump.md).
    pub backup_dir: Option<PathBuf>,
    /// Serve `GET /metrics` (Prometheus text) on the HTTP listener (protocol-spec/metrics.md).
    pub metrics: bool,
    /// An HTTP session (WebIssuesSID cookie) unused for this long ends.
    pub http_session_idle_secs: u64,
    /// Most live HTTP sessions; at the limit, a LOGIN ends the least recently used one.
    pub http_max_sessions: usize,
    /// An HTTP request body must arrive completely within this many seconds, however
    /// steadily it drips (`[limits] http_body_timeout_secs` cuts one that stalls).
    pub http_body_max_secs: u64,
    /// PEM certificate chain and private key: with both set, both listeners speak TLS
    /// (re-read on SIGHUP).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// What a new data directory starts with besides the administrator: `"webissues"` (the
    /// 1.1 installer's types, the default), `"webissued"` (the issue type Bugs) or `"none"`.
    /// Existing data directories keep what they have.
    pub initial_data: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:4080".into(),
            data_dir: PathBuf::from("./data"),
            name: "webissued".into(),
            max_line_bytes: 1024 * 1024,
            max_attachment_bytes: 16 * 1024 * 1024,
            max_connections: 20_000,
            idle_timeout_secs: 1800,
            shutdown_secs: 10,
            timezone: "+0000".into(),
            http_listen: "127.0.0.1:4081".into(),
            base_url: None,
            workers: 0,
            cache_mb: 16,
            checkpoint_wal_mb: 8,
            checkpoint_secs: 300,
            checkpoint_backlog_mb: 256,
            compact_min_records: 20_000,
            backup_dir: None,
            metrics: false,
            http_session_idle_secs: 2 * 3600,
            http_max_sessions: 100_000,
            http_body_max_secs: 300,
            tls_cert: None,
            tls_key: None,
            initial_data: "webissues".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Whether the `notify` feature is offered and notification mail is sent.
    pub enabled: bool,
    /// Seconds between two digest passes.
    pub interval_secs: u64,
    /// Least seconds between two mails to one IMMEDIATELY user.
    pub min_interval_secs: u64,
    /// A directory whose `digest.txt` / `digest.html` replace the compiled-in templates.
    pub templates_dir: Option<PathBuf>,
    /// Most users handled by one pass; the rest wait for the next one.
    pub max_users_per_pass: usize,
    /// First retry delay after a transient send failure; doubled per attempt.
    pub retry_base_secs: u64,
    /// Longest retry delay.
    pub retry_max_secs: u64,
    /// Attempts after which a message is marked failed.
    pub max_attempts: u32,
    /// How long the whole transport is left alone after an outage (connection failure or
    /// timeout); doubled per consecutive outage, capped at `retry_max_secs`.
    pub breaker_base_secs: u64,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            enabled: true,
            interval_secs: 60,
            min_interval_secs: 300,
            templates_dir: None,
            max_users_per_pass: 10_000,
            retry_base_secs: 60,
            retry_max_secs: 6 * 3600,
            max_attempts: 20,
            breaker_base_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SubscribeConfig {
    /// Whether the `subscribe` feature is offered (commands, HTTP pages, delivery).
    pub enabled: bool,
    /// How long a confirmation token stays valid.
    pub confirm_token_ttl_secs: u64,
    /// How long the unsubscribe link in a notification keeps working.
    pub unsubscribe_token_ttl_secs: u64,
    /// Most subscriptions one user may have (pending, active or expired); a server
    /// administrator is not limited. Bounds the confirmation mail one account can cause.
    pub max_per_user: usize,
    /// Confirmation mails (subscriptions and `email` preferences) one address may receive
    /// within `confirm_mail_window_secs`, whoever asks; counted in the store, so deleting
    /// and re-subscribing does not reset it. 0 turns the limit off.
    pub confirm_mails_per_address: u32,
    /// Confirmation mails one user may cause within the window (administrators included).
    pub confirm_mails_per_user: u32,
    pub confirm_mail_window_secs: u64,
}

impl Default for SubscribeConfig {
    fn default() -> Self {
        SubscribeConfig {
            enabled: true,
            confirm_token_ttl_secs: 48 * 3600,
            unsubscribe_token_ttl_secs: 180 * 24 * 3600,
            max_per_user: 100,
            confirm_mails_per_address: 3,
            confirm_mails_per_user: 20,
            confirm_mail_window_secs: 24 * 3600,
        }
    }
}

/// Abuse limits (protocol-spec/limits.md). Each one is logged when it triggers. Setting a
/// count or a time to 0 turns that limit off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// A started command line must end within this many seconds, and a literal must not
    /// stall for longer (see `min_transfer_bytes_per_sec`); slow-drip clients otherwise
    /// hold a connection for free.
    pub line_timeout_secs: u64,
    /// Replies must make progress: a reply the client takes no byte of (or takes more
    /// slowly than `min_transfer_bytes_per_sec`) for this many seconds closes the
    /// connection, instead of holding its buffers forever. Slow but steady readers are
    /// never cut off.
    pub write_timeout_secs: u64,
    /// The rate below which a literal or a reply counts as stalled: each byte moved buys
    /// `1 / rate` s, at most one timeout ahead. 0: any byte counts as progress.
    pub min_transfer_bytes_per_sec: u64,
    /// Bytes all connections together may hold for literals being received; a literal
    /// that does not fit is refused (ERROR 403) and skipped unread.
    pub literal_memory_bytes: u64,
    /// Open connections from one IP address before new ones are refused with 503.
    pub max_connections_per_ip: usize,
    /// Failed logins from one IP address within `login_window_secs` before LOGIN from it
    /// answers 350 for `login_lockout_secs`.
    pub login_failures_per_ip: u32,
    /// Failed logins for one login name within the window before that name is locked.
    pub login_failures_per_account: u32,
    pub login_window_secs: u64,
    pub login_lockout_secs: u64,
    /// LOGINs waiting for or running a password check, per address and in total; more
    /// answer 350 at once, so a flood cannot queue hashes ahead of a real login.
    pub login_pending_per_ip: usize,
    pub login_pending_total: usize,
    /// Open HTTP connections, in total (lowered to fit the descriptor limit) and per
    /// address; more get `503` and are closed.
    pub http_max_connections: usize,
    pub http_max_connections_per_ip: usize,
    /// An HTTP request's headers must arrive within this many seconds (also bounds an idle
    /// keep-alive connection), and its body must not stall for longer than the body limit.
    pub http_header_timeout_secs: u64,
    pub http_body_timeout_secs: u64,
    /// What one user may store outside issues: preferences (count, bytes of one value,
    /// bytes of all names and values) and notification watches.
    pub max_preferences_per_user: usize,
    pub max_preference_bytes: usize,
    pub max_preferences_bytes_per_user: usize,
    pub max_watches_per_user: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            line_timeout_secs: 60,
            write_timeout_secs: 60,
            min_transfer_bytes_per_sec: 1024,
            literal_memory_bytes: 256 * 1024 * 1024,
            max_connections_per_ip: 256,
            login_failures_per_ip: 20,
            login_failures_per_account: 5,
            login_window_secs: 300,
            login_lockout_secs: 300,
            login_pending_per_ip: 4,
            login_pending_total: 16,
            http_max_connections: 1024,
            http_max_connections_per_ip: 64,
            http_header_timeout_secs: 10,
            http_body_timeout_secs: 30,
            max_preferences_per_user: 64,
            max_preference_bytes: 4096,
            max_preferences_bytes_per_user: 65536,
            max_watches_per_user: 10_000,
        }
    }
}

impl Config {
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:4080");
        assert!(c.notify.enabled);
        assert!(c.subscribe.enabled);
        assert_eq!(c.subscribe.confirm_token_ttl_secs, 172_800);
        assert_eq!(c.server.http_listen, "127.0.0.1:4081");
        assert_eq!(c.server.base_url, None);
    }

    #[test]
    fn keys_override_defaults() {
        let c = Config::from_toml("[server]\nmax_line_bytes = 64\n").unwrap();
        assert_eq!(c.server.max_line_bytes, 64);
        assert_eq!(c.server.idle_timeout_secs, 1800);
    }

    #[test]
    fn limits_have_defaults_and_reject_unknown_keys() {
        let c = Config::from_toml("[limits]\nlogin_failures_per_account = 3\n").unwrap();
        assert_eq!(c.limits.login_failures_per_account, 3);
        assert_eq!(c.limits.line_timeout_secs, 60);
        let e = Config::from_toml("[limits]\nlogin_failure = 3\n").unwrap_err();
        assert!(e.contains("login_failure"), "{e}");
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = Config::from_toml("[server]\nlisten_adress = 'x'\n").unwrap_err();
        assert!(e.contains("listen_adress"), "{e}");
        let e = Config::from_toml("[sever]\n").unwrap_err();
        assert!(e.contains("sever"), "{e}");
    }
}
