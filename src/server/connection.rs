//! One connection: read frames, run commands in order, hold each reply until its write is
//! durable, and write replies in the order the commands came.
//!
//! Commands already buffered (pipelined) are run together and their replies wait for one
//! durable point, so a pipelining client shares one flush across its batch.

use crate::app::App;
use crate::commands::{self, Cx, Session};
use crate::error::{Code, Error};
use crate::protocol::{Frame, LineCodec, Reply, parse_command};
use futures::{FutureExt, SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
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
    let codec = LineCodec::new(cfg.max_line_bytes, cfg.max_attachment_bytes);
    let mut framed = Framed::new(stream, codec);
    let mut session = Session::new(peer);
    let idle = Duration::from_secs(cfg.idle_timeout_secs.max(1));
    tracing::debug!("connected");
    loop {
        let first = tokio::select! {
            next = tokio::time::timeout(idle, framed.next()) => match next {
                Err(_) => {
                    tracing::info!("idle timeout");
                    let _ = framed.send(Reply::Error(Error::new(Code::IdleTimeout))).await;
                    break;
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    tracing::debug!(error = %e, "read failed");
                    break;
                }
                Ok(Some(Ok(frame))) => frame,
            },
            _ = stop.changed() => break,
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
        for reply in replies {
            if framed.feed(reply).await.is_err() {
                return;
            }
        }
        if framed.flush().await.is_err() || session.quit || eof {
            break;
        }
    }
    let _ = framed.get_mut().shutdown().await;
    tracing::debug!("closed");
}

async fn process(cx: &mut Cx<'_>, frame: Frame) -> Reply {
    let parsed = match frame {
        Frame::Line(line) => parse_command(&line, None),
        Frame::WithData(line, data) => parse_command(&line, Some(data)),
        Frame::TooLong => Err(Error::with(Code::SyntaxError, "line too long")),
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
pub async fn refuse(mut stream: TcpStream) {
    let bytes = Reply::Error(Error::new(Code::TooManyConnections)).to_bytes();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(&bytes)).await;
    let _ = stream.shutdown().await;
}
