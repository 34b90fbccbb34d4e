//! webissued: a WebIssues 0.8 issue-tracker server over a line-based TCP protocol.
//!
//! Layout: `protocol` (pure wire format), `store` (the only code touching sled),
//! `commands` (one module per command family), `server` (sockets, sessions, shutdown),
//! `app` (shared state), `config` (TOML with defaults), `attributes` (attribute
//! definitions and values), `notify` (digest schedules), `subscribe` (outside email
//! subscriptions), `mail` (messages, transports, templates).

pub mod admin;
pub mod app;
pub mod attributes;
pub mod bench;
pub mod commands;
pub mod config;
pub mod conformance;
pub mod datadir;
pub mod email_address;
pub mod error;
pub mod fdlimit;
#[doc(hidden)]
pub mod fuzz_checks;
pub mod http;
pub mod mail;
pub mod notify;
pub mod password;
pub mod protocol;
pub mod server;
pub mod sessions;
pub mod startup;
pub mod store;
pub mod subscribe;
pub mod tls;
pub mod wi11;
