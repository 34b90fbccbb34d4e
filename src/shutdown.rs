//! A running server from its listeners to its exit, and the one place that says in which
//! order it stops (protocol-spec/configuration.md, "Shutdown"). At SIGTERM or SIGINT:
//!
//! 1. Stop accepting on both listeners: their sockets close, so new connections are
//!    refused.
//! 2. Drain both listeners' connections: each finishes the command or request it has begun
//!    (a partly received one is read to its end), gets its reply once durable, and closes.
//!    `[server] shutdown_secs` after the signal, what is still open is cut.
//! 3. Stop the notifier and its outbox worker: only now, because a command in flight may
//!    still ask it for a run or wake it for a confirmation mail. A send cut off stays queued.
//! 4. Close the store: the log is flushed and its threads end. Nothing waits on the
//!    committer any more, so no reply is left hanging on a stopped one.

use crate::app::App;
use crate::drain::{Connections, Drained};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The notifier gets what is left of the deadline after the drain, and at least this.
const NOTIFIER_LEAST: Duration = Duration::from_secs(1);

/// Serves the protocol listener `tcp` and the HTTP listener `http` until `signal`
/// completes, then stops in the order above.
pub async fn run(app: Arc<App>, tcp: TcpListener, http: TcpListener, signal: impl Future) {
    let (stop_accepting, accept_stop) = watch::channel(false);
    let (notifier_stop, notifier_rx) = watch::channel(false);
    let notifier = app.spawn_notifier(notifier_rx);
    if let Some(tls) = &app.tls {
        crate::tls::reload_on_sighup(tls.clone());
    }
    let tcp = tokio::spawn(crate::server::accept(app.clone(), tcp, accept_stop.clone()));
    let http = tokio::spawn(crate::http::accept(app.clone(), http, accept_stop));

    signal.await;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(app.config.server.shutdown_secs);
    tracing::debug!("stopping");

    // 1. Stop accepting: each accept loop closes its socket and hands over its connections.
    stop_accepting.send_replace(true);
    let (tcp, http) = (open(tcp).await, open(http).await);
    // 2. Drain both at once, under one deadline.
    let (tcp, http) = tokio::join!(tcp.drain(deadline), http.drain(deadline));
    // 3. The notifier and outbox worker.
    notifier_stop.send_replace(true);
    let notifier_deadline = deadline.max(Instant::now() + NOTIFIER_LEAST);
    let abort = notifier.abort_handle();
    if tokio::time::timeout_at(notifier_deadline, notifier)
        .await
        .is_err()
    {
        abort.abort();
        tracing::warn!("notification task cut off at shutdown: a send in flight stays queued");
    }
    // 4. The store.
    if let Err(e) = app.store.close() {
        tracing::error!(error = %e, "closing the store failed");
    }
    log_stopped(started, tcp, http);
}

/// The connections an accept loop handed over (none if it failed).
async fn open(accept: JoinHandle<Connections>) -> Connections {
    accept.await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "accept loop failed");
        Connections::default()
    })
}

fn log_stopped(started: Instant, tcp: Drained, http: Drained) {
    let ms = started.elapsed().as_millis() as u64;
    if tcp.cut + http.cut > 0 {
        tracing::warn!(
            ms,
            tcp_cut = tcp.cut,
            http_cut = http.cut,
            "stopped; connections still busy at the deadline were cut ([server] shutdown_secs), data durable"
        );
    } else {
        tracing::info!(
            ms,
            tcp = tcp.finished,
            http = http.finished,
            "stopped (connections drained, data durable)"
        );
    }
}
