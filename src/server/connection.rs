//! One connection: read frames, run commands in order, hold each reply until its write is
//! durable, and write replies in the order the commands came.
//!
//! Commands already buffered (pipelined) are run together and their replies wait for one
//! durable point, so a pipelining client shares one flush across its batch.

use crate::app::App;
use crate::commands::{self, Cx, Session};
use crate::error::{Code, Error};
use crate::protocol::{Frame, LineCodec, Progress, Reply, parse_command};
use futures::{FutureExt, SinkExt, StreamExt};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::codec::Framed;
use tracing::Instrument;

/// Most commands run before their replies are written (bounds memory per connection).
const MAX_BATCH: usize = 64;

pub async fn serve(
    app: Arc<App>,
    stream: TcpStream,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
) {
    let span = tracing::info_span!("conn", %peer);
    run(app, stream, peer, stop).instrument(span).await
}

async fn run(app: Arc<App>, stream: TcpStream, peer: SocketAddr, mut stop: watch::Receiver<bool>) {
    let cfg = &app.config.server;
    let limits = &app.config.limits;
    let codec = LineCodec::new(cfg.max_line_bytes, cfg.max_attachment_bytes);
    let mut framed = Framed::new(stream, codec);
    let mut session = Session::new(peer);
    let idle = Duration::from_secs(cfg.idle_timeout_secs.max(1));
    let line_limit = secs_or_off(limits.line_timeout_secs);
    let write_limit = secs_or_off(limits.write_timeout_secs);
    tracing::debug!("connected");
    loop {
        let first = match next_frame(&mut framed, idle, line_limit, &mut stop).await {
            Wait::Frame(frame) => frame,
            Wait::Closed | Wait::Stop => break,
            Wait::IdleTimeout => {
                tracing::info!("idle timeout");
                send_last(&mut framed, Error::new(Code::IdleTimeout)).await;
                break;
            }
            Wait::LineTimeout => {
                let secs = limits.line_timeout_secs;
                tracing::warn!(
                    limit_secs = secs,
                    "line timeout: client too slow to finish a line"
                );
                let detail = format!("line not finished within {secs} s");
                send_last(&mut framed, Error::with(Code::IdleTimeout, detail)).await;
                break;
            }
        };
        let mut replies = Vec::new();
        let mut durable_at = 0;
        let mut eof = false;
        let mut frame = Some(first);
        while let Some(f) = frame.take() {
            let mut cx = Cx {
                app: &app,
                session: &mut session,
                wrote: 0,
            };
            replies.push(process(&mut cx, f).await);
            durable_at = durable_at.max(cx.wrote);
            if session.quit || replies.len() >= MAX_BATCH {
                break;
            }
            match framed.next().now_or_never() {
                Some(Some(Ok(f))) => frame = Some(f),
                Some(None) | Some(Some(Err(_))) => eof = true,
                None => {}
            }
        }
        app.store.durable(durable_at).await;
        // A client that pipelines without reading fills its socket buffer; the write then
        // waits here, blocking this connection only (it reads nothing meanwhile, so TCP
        // pushes back on the client), and the write limit closes it if it never reads.
        let write = async {
            for reply in replies {
                framed.feed(reply).await?;
            }
            framed.flush().await
        };
        match with_limit(write_limit, write).await {
            Some(Ok(())) => {}
            Some(Err(_)) => return,
            None => {
                tracing::warn!(
                    limit_secs = limits.write_timeout_secs,
                    "write timeout: client does not read its replies"
                );
                return;
            }
        }
        if session.quit || eof {
            break;
        }
    }
    let _ = framed.get_mut().shutdown().await;
    tracing::debug!("closed");
}

fn secs_or_off(secs: u64) -> Option<Duration> {
    (secs > 0).then(|| Duration::from_secs(secs))
}

/// Runs `f` within `limit` (None: no limit); None when the time ran out.
async fn with_limit<T>(limit: Option<Duration>, f: impl Future<Output = T>) -> Option<T> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, f).await.ok(),
        None => Some(f.await),
    }
}

/// Sends a closing error, giving up quickly if the client does not read.
async fn send_last(framed: &mut Framed<TcpStream, LineCodec>, e: Error) {
    let _ = tokio::time::timeout(Duration::from_secs(5), framed.send(Reply::Error(e))).await;
}

/// How waiting for the next command ended.
enum Wait {
    Frame(Frame),
    Closed,
    Stop,
    IdleTimeout,
    LineTimeout,
}

/// Waits for the next whole frame, enforcing the idle limit (no command for `idle`) and
/// the line limit (a started line must end within `line`; a literal must not stall that
/// long, so large uploads on slow links still pass).
///
/// The codec reports only whole frames, so partial progress is sampled on a timer tick.
/// `Framed::next` is cancel-safe (bytes read stay in its buffer), so the select loses
/// nothing when the tick wins.
async fn next_frame(
    framed: &mut Framed<TcpStream, LineCodec>,
    idle: Duration,
    line: Option<Duration>,
    stop: &mut watch::Receiver<bool>,
) -> Wait {
    let idle_deadline = Instant::now() + idle;
    let tick = line.map_or(idle, |l| {
        (l / 4).clamp(Duration::from_millis(100), Duration::from_secs(5))
    });
    let mut since: Option<(Progress, Instant)> = None;
    loop {
        let wake = (Instant::now() + tick).min(idle_deadline);
        tokio::select! {
            next = framed.next() => return match next {
                None => Wait::Closed,
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "read failed");
                    Wait::Closed
                }
                Some(Ok(frame)) => Wait::Frame(frame),
            },
            _ = tokio::time::sleep_until(wake) => {}
            _ = stop.changed() => return Wait::Stop,
        }
        let now = Instant::now();
        if now >= idle_deadline {
            return Wait::IdleTimeout;
        }
        let Some(limit) = line else { continue };
        let progress = framed.codec().progress(framed.read_buffer());
        // Same progress as at the last tick keeps the clock: a line's start stays, and a
        // literal's clock restarts whenever bytes arrived (its remaining count changed).
        since = match since {
            _ if progress == Progress::Idle => None,
            Some((p, t)) if p == progress => Some((p, t)),
            _ => Some((progress, now)),
        };
        if since.is_some_and(|(_, t)| now.duration_since(t) >= limit) {
            return Wait::LineTimeout;
        }
    }
}

async fn process(cx: &mut Cx<'_>, frame: Frame) -> Reply {
    let parsed = match frame {
        Frame::Line(line) => parse_command(&line, None),
        Frame::WithData(line, data) => parse_command(&line, Some(data)),
        Frame::TooLong => {
            tracing::info!(
                limit = cx.app.config.server.max_line_bytes,
                "line too long: skipped"
            );
            Err(Error::with(Code::SyntaxError, "line too long"))
        }
        Frame::DataTooLarge(size) => Err(Error::with(
            Code::UploadError,
            format!(
                "{size} bytes is more than the limit of {}",
                cx.app.config.server.max_attachment_bytes
            ),
        )),
    };
    match parsed {
        Ok(cmd) => {
            let span = tracing::debug_span!("cmd", name = command_name(&cmd));
            commands::execute(cx, cmd).instrument(span).await
        }
        Err(e) => Reply::Error(e),
    }
}

/// The verb alone, for logs (arguments may hold passwords).
fn command_name(cmd: &crate::protocol::Command) -> String {
    let dbg = format!("{cmd:?}");
    dbg.split([' ', '{']).next().unwrap_or("").to_string()
}

/// Answers a connection over the limit with one error and closes it.
pub async fn refuse(mut stream: TcpStream, detail: Option<&'static str>) {
    let e = match detail {
        Some(d) => Error::with(Code::TooManyConnections, d),
        None => Error::new(Code::TooManyConnections),
    };
    let bytes = Reply::Error(e).to_bytes();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(&bytes)).await;
    let _ = stream.shutdown().await;
}
