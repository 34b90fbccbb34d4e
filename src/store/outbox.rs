//! The outbox's payload: a message as plain data (strings and numbers), stored durably
//! until the transport accepts it. Building it is `notify` and `subscribe`'s business, turning
//! it into MIME is `mail`'s (`OutgoingMail::to_message`).

use serde::{Deserialize, Serialize};

/// A message waiting to be sent, in a form the outbox can store.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct OutgoingMail {
    /// `addr@host` or `Display Name <addr@host>`.
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    /// Envelope recipients that never appear in the headers.
    pub bcc: Vec<String>,
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
    /// Stable id without angle brackets (`digest.42.17@host`), chosen by the caller so a
    /// retried message keeps its identity and replies thread correctly.
    pub message_id: String,
    /// Id of the message this one follows (without angle brackets).
    pub in_reply_to: Option<String>,
    /// Thread ancestors, oldest first (without angle brackets).
    pub references: Vec<String>,
    /// `List-Id` identifier (RFC 2919) without angle brackets, e.g. `webissued.localhost`.
    pub list_id: Option<String>,
    /// One-click unsubscribe URL (RFC 2369 / RFC 8058).
    pub list_unsubscribe: Option<String>,
    /// `Date:` as Unix seconds.
    pub date: i64,
    /// When not empty, the only envelope recipients (instead of To, Cc and Bcc): one copy of
    /// a subscription's mail per recipient, each with its own unsubscribe link, while the
    /// headers still show the same To and Cc. Not part of the stored form: the outbox keeps
    /// it under a key of its own (`store::notify`), so entries of older versions still read.
    #[serde(skip)]
    pub envelope: Vec<String>,
}
