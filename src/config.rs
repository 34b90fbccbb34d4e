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
    /// Time zone for users without a `timezone` preference (`+hhmm` or an IANA name).
    pub timezone: String,
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
            timezone: "+0000".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Whether the `notify` feature is offered and notification mail is sent.
    pub enabled: bool,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig { enabled: true }
    }
}

/// Abuse limits (protocol-spec/limits.md). Each one is logged when it triggers. Setting a
/// count or a time to 0 turns that limit off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// A started command line must end within this many seconds, and a literal must not
    /// stall (no byte) for longer; slow-drip clients otherwise hold a connection for free.
    pub line_timeout_secs: u64,
    /// Replies must be taken by the client within this many seconds; a client that sends
    /// but never reads is closed instead of holding its buffers forever.
    pub write_timeout_secs: u64,
    /// Open connections from one IP address before new ones are refused with 503.
    pub max_connections_per_ip: usize,
    /// Failed logins from one IP address within `login_window_secs` before LOGIN from it
    /// answers 350 for `login_lockout_secs`.
    pub login_failures_per_ip: u32,
    /// Failed logins for one login name within the window before that name is locked.
    pub login_failures_per_account: u32,
    pub login_window_secs: u64,
    pub login_lockout_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            line_timeout_secs: 60,
            write_timeout_secs: 60,
            max_connections_per_ip: 256,
            login_failures_per_ip: 20,
            login_failures_per_account: 5,
            login_window_secs: 300,
            login_lockout_secs: 300,
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
