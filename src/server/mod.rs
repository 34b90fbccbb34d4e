//! The protocol listener: accepts connections up to the limit, runs one task per
//! connection, and shuts down gracefully (stop accepting, let commands in flight finish,
//! flush the store).

mod connection;

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
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let notify_task = tokio::spawn(crate::notify::service::run(app.clone(), stop_rx.clone()));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
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
                match limit.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let app = app.clone();
                        let stop = stop_rx.clone();
                        tasks.spawn(async move {
                            connection::serve(app, stream, peer, stop).await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        tracing::warn!(%peer, "connection refused: too many connections");
                        tasks.spawn(connection::refuse(stream));
                    }
                }
                // Reap finished connection tasks so the set does not grow without bound.
                while tasks.try_join_next().is_some() {}
            }
        }
    }
    drop(listener);
    tracing::info!(open = tasks.len(), "shutting down");
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
    tracing::info!("stopped");
    Ok(())
}
