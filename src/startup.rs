//! Start-up checks that run before the server writes anything: the whole configuration is
//! validated first, then the data directory and the listen addresses, so a mistake stops the
//! server with one line naming the file or key and the OS cause, before a data directory is
//! created or an administrator password printed.

use crate::config::Config;
use std::path::Path;

/// Where a setting came from, for error messages: the config file or the default.
#[derive(Debug, Clone)]
pub struct Origin(pub String);

impl Origin {
    pub fn new(config: Option<&Path>) -> Origin {
        Origin(match config {
            Some(p) => p.display().to_string(),
            None => String::new(),
        })
    }

    /// `FILE: `, or nothing when there is no config file.
    fn prefix(&self) -> String {
        if self.0.is_empty() {
            String::new()
        } else {
            format!("{}: ", self.0)
        }
    }
}

/// Loads a config file; a TOML error becomes one line `FILE: line N: message`.
pub fn load(path: &Path) -> Result<Config, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the config file {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|s| format!(" line {}:", text[..s.start].matches('\n').count() + 1))
            .unwrap_or_default();
        let message = e.message().replace('\n', " ");
        format!("{}:{line} {message}", path.display())
    })
}

/// Checks every setting that can be checked without touching the disk.
pub fn check(cfg: &Config, origin: &Origin) -> Result<(), String> {
    let at = |key: &str, what: String| format!("{}{key}: {what}", origin.prefix());
    crate::schedule::UserTz::parse(&cfg.server.timezone).map_err(|e| {
        at(
            "[server] timezone",
            format!("{:?}: {e}", cfg.server.timezone),
        )
    })?;
    check_addr(&cfg.server.listen, "[server] listen (or --listen)", origin)?;
    if cfg.subscribe.enabled || cfg.notify.enabled {
        check_addr(
            &cfg.server.http_listen,
            "[server] http_listen (or --http-listen)",
            origin,
        )?;
    }
    if let Some(url) = &cfg.server.base_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(at(
            "[server] base_url",
            format!("{url:?} does not start with http:// or https://"),
        ));
    }
    if cfg.notify.enabled {
        crate::mail::Templates::new(cfg.notify.templates_dir.as_deref())
            .map_err(|e| at("[notify] templates_dir", e.to_string()))?;
        // The file transport creates its directory: that waits for the disk checks.
        if cfg.mail.transport != crate::mail::TransportKind::File {
            // The SMTP transport registers with a runtime when built.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let _in_runtime = rt.enter();
            crate::mail::Mailer::new(&cfg.mail).map_err(|e| at("[mail]", e.to_string()))?;
        }
        if !cfg.mail.from.contains('@') {
            return Err(at(
                "[mail] from",
                format!("{:?} is not an email address", cfg.mail.from),
            ));
        }
    }
    Ok(())
}

fn check_addr(addr: &str, key: &str, origin: &Origin) -> Result<(), String> {
    use std::net::ToSocketAddrs;
    match addr.to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(_)) => Ok(()),
        Ok(_) => Err(format!(
            "{}{key}: {addr:?} resolves to no address",
            origin.prefix()
        )),
        Err(e) => Err(format!(
            "{}{key}: {addr:?} is not host:port ({e})",
            origin.prefix()
        )),
    }
}

/// Makes sure the server can write where it will: the data directory and the directories
/// inside it, each probed with a file created and removed. Run after the directory lock.
pub fn check_data_dir(dir: &Path) -> Result<(), String> {
    for sub in ["", "db", "wal", "attachments"] {
        let d = dir.join(sub);
        if d.exists() && !d.is_dir() {
            return Err(format!("{} is a file, not a directory", d.display()));
        }
        std::fs::create_dir_all(&d)
            .map_err(|e| format!("cannot create the directory {}: {e}", d.display()))?;
        let probe = d.join(".write-test");
        std::fs::write(&probe, b"")
            .and_then(|()| std::fs::remove_file(&probe))
            .map_err(|e| format!("cannot write in the directory {}: {e}", d.display()))?;
    }
    Ok(())
}

/// Binds a listener (blocking, before the runtime starts), or says why not in one line.
pub fn bind(addr: &str, key: &str) -> Result<std::net::TcpListener, String> {
    let l = std::net::TcpListener::bind(addr).map_err(|e| bind_error(addr, key, e))?;
    l.set_nonblocking(true)
        .map_err(|e| bind_error(addr, key, e))?;
    Ok(l)
}

/// A failed bind, naming the address, the setting it came from and the OS cause.
pub fn bind_error(addr: &str, key: &str, e: std::io::Error) -> String {
    let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
        " (another program, perhaps another webissued, listens there; stop it or choose another port)"
    } else {
        ""
    };
    format!("cannot listen on {addr} ({key}): {e}{hint}")
}
