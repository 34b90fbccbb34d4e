//! The HTTP accept loop: open connections are capped in total and per address (more get
//! `503` and are closed at once), a request's headers must arrive within
//! `http_header_timeout_secs` (which also ends idle keep-alive connections), and its body
//! must not stall for longer than `http_body_timeout_secs`. Without these, sockets that
//! send half a request and stop hold a descriptor each until the process has none left.

use crate::app::App;
use crate::drain::Connections;
use crate::front::PerIp;
use axum::Router;
use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Sleep;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Accepts on `listener` until `stop` turns true, then closes the listening socket and
/// returns the open connections, for the shutdown to drain (a request in flight is
/// answered, an idle keep-alive connection closes).
pub async fn accept(
    app: Arc<App>,
    listener: TcpListener,
    router: Router,
    mut stop: watch::Receiver<bool>,
) -> Connections {
    let limits = &app.config.limits;
    let total = Arc::new(Semaphore::new(limits.http_max_connections.max(1)));
    let per_ip = PerIp::new(limits.http_max_connections_per_ip);
    let header_timeout = secs_or_off(limits.http_header_timeout_secs);
    let body_timeout = secs_or_off(limits.http_body_timeout_secs);
    let mut open = Connections::default();
    loop {
        tokio::select! {
            _ = async { drop(stop.wait_for(|s| *s).await) } => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "http accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = total.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "http connection refused: too many connections");
                    refuse(stream);
                    continue;
                };
                let Some(slot) = per_ip.acquire(peer.ip()) else {
                    tracing::warn!(%peer, "http connection refused: too many connections from this address");
                    refuse(stream);
                    continue;
                };
                let router = router.clone();
                let stop = open.stop_flag();
                let tls = app.tls.clone();
                open.spawn(async move {
                    let limits = (header_timeout, body_timeout);
                    match tls {
                        // HTTPS: the handshake runs here, under the connection's slot.
                        Some(tls) => {
                            if let Some(s) = tls.handshake(stream, true).await {
                                connection(s, peer, router, limits, stop).await;
                            }
                        }
                        None => connection(stream, peer, router, limits, stop).await,
                    }
                    drop((permit, slot));
                });
            }
        }
    }
    drop(listener);
    open
}

/// Serves one connection (plain or TLS) until it ends or the drain starts; then hyper
/// finishes the request in flight, if any, and closes (the drain's deadline bounds it).
async fn connection<IO>(
    io: IO,
    peer: std::net::SocketAddr,
    router: Router,
    (header_timeout, body_timeout): (Option<Duration>, Option<Duration>),
    mut stop: watch::Receiver<bool>,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let mut req = req.map(|b| Body::new(StallLimit::new(b, body_timeout)));
        // The client's address, for the login throttle and logs (WebIssues transport).
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(super::webissues::Peer(peer)));
        tower_service::Service::call(&mut router.clone(), req)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "http connection ended");
            }
        }
        _ = async { drop(stop.wait_for(|s| *s).await) } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

fn secs_or_off(secs: u64) -> Option<Duration> {
    (secs > 0).then(|| Duration::from_secs(secs))
}

/// Answers `503` if the socket takes it at once, and closes: no task, no waiting. What
/// the client already sent is read first, so that closing does not reset the connection
/// and lose the answer.
fn refuse(stream: TcpStream) {
    let mut sink = [0u8; 4096];
    let _ = stream.try_read(&mut sink);
    let _ = stream.try_write(
        b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    );
}

/// A request body that fails when no frame arrives for `limit`; the clock restarts with
/// each frame, so a slow but steady upload is not cut off.
struct StallLimit<B> {
    inner: B,
    limit: Option<Duration>,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl<B> StallLimit<B> {
    fn new(inner: B, limit: Option<Duration>) -> Self {
        StallLimit {
            inner,
            limit,
            sleep: None,
        }
    }
}

impl<B> http_body::Body for StallLimit<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(r) => {
                this.sleep = None;
                Poll::Ready(r.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let Some(limit) = this.limit else {
                    return Poll::Pending;
                };
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                if sleep.as_mut().poll(cx).is_ready() {
                    this.sleep = None;
                    tracing::warn!(
                        limit_secs = limit.as_secs(),
                        "http request body stalled: closed"
                    );
                    return Poll::Ready(Some(Err("request body stalled".into())));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Yields a frame every `every`, `left` times, then ends; or never, with `every` None.
    struct Drip {
        every: Option<Duration>,
        left: usize,
        sleep: Option<Pin<Box<Sleep>>>,
    }

    impl http_body::Body for Drip {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            let Some(every) = self.every else {
                return Poll::Pending;
            };
            if self.left == 0 {
                return Poll::Ready(None);
            }
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(every)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.sleep = None;
            self.left -= 1;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"x")))))
        }
    }

    async fn drain(
        body: impl http_body::Body<Error = BoxError> + Unpin,
    ) -> Result<usize, BoxError> {
        let mut body = body;
        let mut frames = 0;
        while let Some(f) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            f?;
            frames += 1;
        }
        Ok(frames)
    }

    #[tokio::test]
    async fn a_stalled_body_fails_and_a_slow_steady_one_does_not() {
        let limit = Some(Duration::from_millis(100));
        let never = Drip {
            every: None,
            left: 1,
            sleep: None,
        };
        let started = std::time::Instant::now();
        assert!(drain(StallLimit::new(never, limit)).await.is_err());
        assert!(started.elapsed() >= Duration::from_millis(100));
        // Ten frames 40 ms apart take 400 ms in all, four times the limit: no stall.
        let steady = Drip {
            every: Some(Duration::from_millis(40)),
            left: 10,
            sleep: None,
        };
        assert_eq!(drain(StallLimit::new(steady, limit)).await.unwrap(), 10);
    }
}
