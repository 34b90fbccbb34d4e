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
}

pub fn main(tool: Tool) -> std::process::ExitCode {
    let result = match tool {
        Tool::Export { data } => crate::dump::export_dir(&data),
        Tool::Import { data } => crate::dump::import_dir(&data),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("webissued: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
