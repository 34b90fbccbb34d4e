//! webissued: a WebIssues 0.8 issue-tracker server over a line-based TCP protocol.
//!
//! Layout: `protocol` (pure wire format), `store` (the only code touching sled),
//! `commands` (one module per command family), `server` (sockets, sessions, shutdown),
//! `app` (shared state), `config` (TOML with defaults), `mail` (messages, transports,
//! templates).

pub mod app;
pub mod commands;
pub mod config;
pub mod error;
pub mod mail;
pub mod password;
pub mod protocol;
pub mod server;
pub mod store;
