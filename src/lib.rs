//! webissued: a WebIssues 0.8 issue-tracker server over a line-based TCP protocol.
//!
//! Layout: `protocol` (pure wire format), `store` (the only code touching sled),
//! `commands` (one module per command family), `server` (sockets, sessions, shutdown).

pub mod error;
pub mod protocol;
