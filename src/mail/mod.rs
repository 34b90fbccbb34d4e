//! Outgoing mail: configuration, message building, templates and transports.
//!
//! The layer is split so that the durable outbox can sit between building and sending:
//! the digest pass renders templates ([`templates`]) into an [`OutgoingMail`] (plain data,
//! serialisable, stored in the outbox), and the outbox worker later turns it into a
//! `lettre::Message` ([`OutgoingMail::to_message`]) and hands it to a [`Mailer`], whose
//! [`SendError`] says whether to retry (transient) or give up (permanent).

pub mod config;
pub mod message;
pub mod templates;
pub mod transport;

pub use config::{MailConfig, SmtpTls, TransportKind};
pub use message::{MailError, OutgoingMail};
pub use templates::{
    ChangeView, ConfirmView, DigestView, FolderView, IssueView, ProjectView, TemplateError,
    Templates,
};
pub use transport::{Mailer, SendError, SendErrorKind};
