//! webissued: a WebIssues issue-tracker server. The 0.8 dialect over a line-based TCP
//! protocol and over HTTP, the 1.1 dialect over HTTP, one store under both.
//!
//! Layout (ARCHITECTURE.md has the map): `protocol` (the 0.8 wire format, pure), `wi11`
//! (the 1.1 dialect), `http` (the HTTP listener: WebIssues transport and pages), `server`
//! (the TCP listener and connection loop), `commands` (0.8 handlers, one module per family),
//! `front` (what the front ends share: the per-command path and the durable wait),
//! `store` (the only code touching sled and the log), `schedule` (when a digest is due),
//! `notify` (digest passes), `subscribe` (outside email subscriptions), `mail` (messages,
//! transports, templates), `config` and `startup` (configuration and its checks).
//! `scripts/imports` checks that no two modules import each other in a circle. The tools
//! (load generator, conformance runner, fuzz checks) are crates of their own under
//! `crates/`.

pub mod admin;
pub mod app;
pub mod attributes;
pub mod check;
pub mod commands;
pub mod config;
pub mod datadir;
pub mod drain;
pub mod dump;
pub mod email_address;
pub mod error;
pub mod fdlimit;
pub mod front;
pub mod http;
pub mod mail;
pub mod metrics;
pub mod notify;
pub mod password;
pub mod protocol;
pub mod schedule;
pub mod server;
pub mod sessions;
pub mod shutdown;
pub mod startup;
pub mod store;
pub mod subscribe;
pub mod tls;
pub mod tools;
pub mod wi11;
