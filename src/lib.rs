//! webissued: a WebIssues 0.8 issue-tracker server over a line-based TCP protocol.
pub mod mail;
