//! What every front end does around one command, whatever its dialect or transport (the
//! TCP connection, the 0.8 and 1.1 HTTP endpoints, the HTTP pages): run a framed 0.8
//! command ([`process`]), and hold its answer until what it wrote or read is durable
//! ([`Rests`]), answering the log failure's `500` when that was discarded instead. Also
//! what both listeners share: the memory budget for literals being received
//! ([`LiteralBudget`]) and the per-address connection cap ([`PerIp`]).

mod budget;
mod per_ip;

pub use budget::{Held, LiteralBudget};
pub use per_ip::{PerIp, PerIpSlot};

use crate::commands::{self, Cx};
use crate::error::{Code, Error};
use crate::protocol::{Frame, Reply, parse_command};
use crate::store::Store;
use std::time::Instant;
use tracing::Instrument;

/// Taken before a command runs: every batch settled by then was on disk (or discarded)
/// before anything the command reads.
#[derive(Debug, Clone, Copy)]
pub struct Start {
    settled_before: u64,
}

/// What one reply rests on: its own batch (a write), or every batch applied by the time it
/// was built (a read), so it shows nothing that is not on disk.
#[derive(Debug, Clone, Copy)]
pub struct Rests {
    settled_before: u64,
    needs: u64,
    wrote: bool,
}

impl Start {
    pub fn now(store: &Store) -> Start {
        Start {
            settled_before: store.settled(),
        }
    }

    /// The command ran; `wrote` is its batch's sequence (0: it wrote nothing). A read costs
    /// a load and a compare when nothing is in flight.
    pub fn rests(self, store: &Store, wrote: u64) -> Rests {
        Rests {
            settled_before: self.settled_before,
            needs: if wrote > 0 {
                wrote
            } else {
                store.last_applied()
            },
            wrote: wrote > 0,
        }
    }
}

impl Rests {
    /// A write already made (an HTTP page's), batch `seq`.
    pub fn write(seq: u64) -> Rests {
        Rests {
            settled_before: 0,
            needs: seq,
            wrote: true,
        }
    }

    /// The sequence that must be durable before the reply leaves (replies of one batch of
    /// pipelined commands wait once, for the largest).
    pub fn needs(&self) -> u64 {
        self.needs
    }

    /// Once [`Rests::needs`] is settled: whether the reply rests on a batch the log could not
    /// take (its own write was undone, or a read may have shown such a batch). One atomic
    /// load while nothing was ever discarded.
    pub fn lost(&self, store: &Store) -> bool {
        if self.wrote {
            store.discarded_in(self.needs, self.needs)
        } else {
            store.discarded_in(self.settled_before + 1, self.needs)
        }
    }

    /// Waits until what the reply rests on is settled; false when it was discarded, and
    /// the reply must become the failure's error ([`Store::failure_error`]).
    pub async fn settle(&self, store: &Store) -> bool {
        store.durable(self.needs).await;
        !self.lost(store)
    }
}

/// Runs one framed command and waits until its reply may leave: the whole per-command
/// path of a front end that answers one command at a time (the 0.8 HTTP endpoint).
pub async fn run_durable(cx: &mut Cx<'_>, frame: Frame) -> Reply {
    let start = Start::now(&cx.shared.store);
    let reply = process(cx, frame).await;
    let store = &cx.shared.store;
    if start.rests(store, cx.wrote).settle(store).await {
        reply
    } else {
        Reply::Error(store.failure_error())
    }
}

/// Runs one framed command: the path every transport shares (TCP lines, HTTP requests),
/// counted in the metrics when they are on. The caller waits for durability ([`Rests`]).
pub async fn process(cx: &mut Cx<'_>, frame: Frame) -> Reply {
    let m = crate::metrics::global();
    if !m.enabled() {
        return run_command(cx, frame).await;
    }
    let verb = match &frame {
        Frame::Line(l) | Frame::WithData(l, _) => crate::metrics::verb(l).to_string(),
        _ => String::new(),
    };
    let started = Instant::now();
    let reply = run_command(cx, frame).await;
    let error = matches!(reply, Reply::Error(_));
    // Names of unknown commands are not kept: they would be the client's to choose.
    let verb = match &reply {
        Reply::Error(e) if e.code == Code::UnknownCommand => "UNKNOWN",
        _ if verb.is_empty() => "INVALID",
        _ => &verb,
    };
    m.command(verb, error, started.elapsed());
    reply
}

async fn run_command(cx: &mut Cx<'_>, frame: Frame) -> Reply {
    let parsed = match frame {
        Frame::Line(line) => parse_command(&line, None),
        Frame::WithData(line, data) => parse_command(&line, Some(data)),
        // Admitted or refused by the connection before its bytes are read.
        Frame::Literal(..) => Err(Error::new(Code::ServerError)),
        Frame::TooLong => {
            tracing::info!(
                limit = cx.shared.config.server.max_line_bytes,
                "line too long: skipped"
            );
            Err(Error::with(Code::SyntaxError, "line too long"))
        }
        Frame::DataTooLarge(size) => Err(Error::with(
            Code::UploadError,
            format!(
                "{size} bytes is more than the limit of {}",
                cx.shared.config.server.max_attachment_bytes
            ),
        )),
    };
    match parsed {
        Ok(cmd) => {
            // HELLO and QUIT are answered while the store is still loading at start-up.
            if !matches!(
                cmd,
                crate::protocol::Command::Hello | crate::protocol::Command::Quit
            ) {
                cx.shared.store.ready().await;
            }
            let span = tracing::debug_span!("cmd", name = cmd.name());
            commands::execute(cx, cmd).instrument(span).await
        }
        Err(e) => Reply::Error(e),
    }
}
