//! Email notifications (protocol-spec/notifications.md): schedules, the digest pass, the
//! outbox worker.

pub mod digest;
pub mod report;
pub mod schedule;
pub mod service;
pub mod stop_link;

pub use service::Notifier;
