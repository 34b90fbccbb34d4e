//! webissued: a WebIssues 0.8 issue-tracker server over a line-based TCP protocol.

pub mod attributes;
pub mod email_address;
pub mod notify;
pub mod protocol;
pub mod subscribe;
