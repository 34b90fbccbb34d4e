//! E-mail subscriptions for outside addresses (protocol-spec/subscriptions.md): the
//! `mailto:` and options parsers, and the delivery of pending changes.

pub mod email;
pub mod mail;
pub mod mailto;
pub mod options;
pub mod rate;
