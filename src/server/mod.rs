//! The protocol listener: accepts connections up to the limit and runs one task per
//! connection. When to stop accepting and how long connections get to finish is decided by
//! `crate::shutdown`.

mod connection;
mod pace;
mod send;

use crate::app::App;
use crate::drain::Connections;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

/// Accepts on `listener` until `stop` turns true, then closes the listening socket (new
/// connections are refused) and returns the open connections, for the shutdown to drain.
pub async fn accept(
    app: Arc<App>,
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
) -> Connections {
    let limit = Arc::new(Semaphore::new(app.config.server.max_connections));
    let per_ip = crate::front::PerIp::new(app.config.limits.max_connections_per_ip);
    let budget = crate::front::LiteralBudget::new(app.config.limits.literal_memory_bytes);
    let mut open = Connections::default();
    loop {
        tokio::select! {
            _ = async { drop(stop.wait_for(|s| *s).await) } => break,
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
                let Ok(permit) = limit.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "connection refused: too many connections");
                    open.spawn(connection::refuse(stream, None));
                    continue;
                };
                let Some(per_ip) = per_ip.acquire(peer.ip()) else {
                    tracing::warn!(%peer, "connection refused: too many connections from this address");
                    open.spawn(connection::refuse(stream, Some("from this address")));
                    continue;
                };
                let app = app.clone();
                let stop = open.stop_flag();
                let budget = budget.clone();
                crate::metrics::global().connection_opened();
                open.spawn(async move {
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
    open
}
