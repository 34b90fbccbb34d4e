//! The data-directory subcommands of `webissued`: export, import, check and backup.

use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum Tool {
    /// Write the whole data directory as a text dump on stdout (protocol-spec/dump.md).
    /// No server may hold the directory; export a BACKUP of a running one instead.
    Export {
        #[arg(long)]
        data: PathBuf,
    },
    /// Build a new data directory from a dump on stdin.
    Import {
        #[arg(long)]
        data: PathBuf,
    },
    /// Check every index against the records it points to (no server may hold DIR).
    Check {
        #[arg(long)]
        data: PathBuf,
    },
    /// Ask a running server for an online BACKUP into its backup directory.
    Backup {
        /// The server's protocol address.
        #[arg(long, default_value = "127.0.0.1:4080")]
        server: String,
        /// Name of the copy under `[server] backup_dir`.
        #[arg(long)]
        name: String,
        /// A server administrator's login; the password comes from
        /// WEBISSUED_ADMIN_PASSWORD.
        #[arg(long, default_value = "admin")]
        login: String,
    },
}

pub fn main(tool: Tool) -> std::process::ExitCode {
    let result = match tool {
        Tool::Export { data } => crate::dump::export_dir(&data),
        Tool::Import { data } => crate::dump::import_dir(&data),
        Tool::Check { data } => crate::check::check_dir(&data),
        Tool::Backup {
            server,
            name,
            login,
        } => backup(&server, &name, &login),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("webissued: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A protocol string argument.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Logs in and sends BACKUP; the reply's first line tells.
fn backup(server: &str, name: &str, login: &str) -> Result<(), String> {
    use std::io::{BufRead, Write};
    let password = std::env::var("WEBISSUED_ADMIN_PASSWORD")
        .map_err(|_| "set WEBISSUED_ADMIN_PASSWORD to the administrator's password".to_string())?;
    let stream = std::net::TcpStream::connect(server)
        .map_err(|e| format!("cannot connect to {server}: {e}"))?;
    let mut out = stream.try_clone().map_err(|e| e.to_string())?;
    write!(
        out,
        "LOGIN {} {}\nBACKUP {}\nQUIT\n",
        quote(login),
        quote(&password),
        quote(name)
    )
    .map_err(|e| e.to_string())?;
    let mut replies = Vec::new();
    let mut current = String::new();
    for line in std::io::BufReader::new(stream).lines() {
        let line = line.map_err(|e| e.to_string())?;
        if line.is_empty() {
            replies.push(std::mem::take(&mut current));
            if replies.len() == 2 {
                break;
            }
        } else if current.is_empty() {
            current = line;
        }
    }
    match replies.as_slice() {
        [l, b] if !l.starts_with("ERROR") && b == "OK" => {
            eprintln!("webissued: backup {name} written");
            Ok(())
        }
        [l, _] if l.starts_with("ERROR") => Err(format!("login failed: {l}")),
        [_, b] => Err(format!("backup failed: {b}")),
        _ => Err("the server closed the connection".into()),
    }
}
