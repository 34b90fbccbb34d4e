//! Email notifications (protocol-spec/notifications.md): the digest pass and the outbox
//! worker. When a digest is due is [`crate::schedule`].

pub mod digest;
pub mod report;
pub mod service;
pub mod stop_link;

pub use service::{Channel, Notifier};
