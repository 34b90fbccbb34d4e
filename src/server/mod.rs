//! The protocol listener: accepts connections up to the limit, runs one task per
//! connection, and shuts down gracefully (stop accepting, let commands in flight finish,
//! flush the store).

mod connection;
mod pace;
mod send;

use crate::app::App;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// Serves `listener` until `shutdown` completes, then waits for open connections to finish
/// their current command (at most `grace`) and closes the store.
pub async fn run(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let limit = Arc::new(Semaphore::new(app.config.server.max_connections));
    let per_ip = crate::front::PerIp::new(app.config.limits.max_connections_per_ip);
    let budget = crate::front::LiteralBudget::new(app.config.limits.literal_memory_bytes);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let notify_task = app.spawn_notifier(stop_rx.clone());
    if let Some(tls) = &app.tls {
        crate::tls::reload_on_sighup(tls.clone());
    }
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                // Reap finished connection tasks so the set does not grow without bound.
                while tasks.try_join_next().is_some() {}
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of descriptors and similar: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let Ok(permit) = limit.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "connection refused: too many connections");
                    tasks.spawn(connection::refuse(stream, None));
                    continue;
                };
                let Some(per_ip) = per_ip.acquire(peer.ip()) else {
                    tracing::warn!(%peer, "connection refused: too many connections from this address");
                    tasks.spawn(connection::refuse(stream, Some("from this address")));
                    continue;
                };
                let app = app.clone();
                let stop = stop_rx.clone();
                let budget = budget.clone();
                crate::metrics::global().connection_opened();
                tasks.spawn(async move {
                    match app.tls.clone() {
                        // Implicit TLS: the loop runs on the decrypted side of a relay.
                        Some(tls) => if let Some((plain, relay)) = tls.bridge(stream).await {
                            connection::serve(app, budget, plain, peer, stop).await;
                            relay.finish().await;
                        },
                        None => connection::serve(app, budget, stream, peer, stop).await,
                    }
                    crate::metrics::global().connection_closed();
                    drop((permit, per_ip));
                });
            }
        }
    }
    drop(listener);
    let stopping = std::time::Instant::now();
    tracing::debug!(open = tasks.len(), "shutting down");
    let _ = stop_tx.send(true);
    let grace = std::time::Duration::from_secs(10);
    let _ = tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    // The notification task stops at its next await point; a send in flight may be cut off,
    // and its message stays queued for the next start.
    let abort = notify_task.abort_handle();
    if tokio::time::timeout(std::time::Duration::from_secs(5), notify_task)
        .await
        .is_err()
    {
        abort.abort();
    }
    if let Err(e) = app.store.close() {
        tracing::error!(error = %e, "closing the store failed");
    }
    tracing::info!(
        ms = stopping.elapsed().as_millis() as u64,
        "stopped (connections drained, data durable)"
    );
    Ok(())
}
