//! One connection: read frames, run commands in order, hold each reply until its write is
//! durable, and write replies in the order the commands came.
//!
//! Commands already received (pipelined) run together and their replies wait for one
//! durable point, so a pipelining client shares one flush across its batch. The read buffer
//! is released while a connection waits idle, so thousands of idle connections cost little
//! memory.
//!
//! A literal is read only once its command line has been checked (logged in, a command
//! that takes data, room in the [`LiteralBudget`]); otherwise it is answered at once and
//! its bytes are skipped unread. A batch's replies are bounded by bytes, and a large
//! attachment is streamed from its file after them.

use super::pace::Pace;
use super::send::{Cut, Writer};
use crate::app::App;
use crate::commands::{Cx, Session};
use crate::error::{Code, Error};
use crate::front::{Held, LiteralBudget, Rests, Start, process};
use crate::protocol::{Frame, LineCodec, Progress, Reply, parse_command};
use bytes::{Bytes, BytesMut};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use tokio_util::codec::Decoder;
use tracing::Instrument;

/// Most commands run before their replies are written (so one pipelining connection
/// does not keep its thread from others for long).
const MAX_BATCH: usize = 64;
/// A batch ends once its replies hold this many bytes: what bounds reply memory per
/// connection (plus one reply; a large attachment is streamed, not held).
const MAX_OUT: usize = 256 * 1024;
/// Most bytes taken from the socket per read.
const READ_CHUNK: usize = 4096;
/// A buffer grown past this (a large upload or a long line) is released once empty.
const KEEP_BUFFER: usize = 64 * 1024;

pub async fn serve(
    app: Arc<App>,
    budget: LiteralBudget,
    stream: TcpStream,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
) {
    let span = tracing::info_span!("conn", %peer);
    run(app, budget, stream, peer, stop).instrument(span).await
}

/// Why the read loop ended.
enum Input {
    Data,
    Eof,
    Idle,
    /// A started line did not end within the line limit, or a literal stalled.
    LineTimeout,
    Stop,
}

async fn run(
    app: Arc<App>,
    budget: LiteralBudget,
    mut stream: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) {
    let cfg = &app.config.server;
    let mut codec = LineCodec::new(cfg.max_line_bytes, cfg.max_attachment_bytes).gated();
    let mut session = Session::new(peer);
    let idle = Duration::from_secs(cfg.idle_timeout_secs.max(1));
    let limits = &app.config.limits;
    let line_limit = secs_or_off(limits.line_timeout_secs);
    let write_limit = secs_or_off(limits.write_timeout_secs);
    let min_rate = limits.min_transfer_bytes_per_sec;
    // What the codec was part-way through after the last read, and its deadline.
    let mut partial: Option<Partial> = None;
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut deps: Vec<(usize, Rests)> = Vec::new();
    // The budget held for the literal being read.
    let mut held: Option<Held> = None;
    let mut eof = false;
    // Armed once per connection and re-armed only when they fire: a new timer and a new
    // stop listener for every read cost about a tenth of a small command's CPU.
    let idle_timer = tokio::time::sleep(idle);
    tokio::pin!(idle_timer);
    // Fused: after the stop it stays pending while a begun command is read to its end.
    let stopped = futures::FutureExt::fuse(stop.changed());
    tokio::pin!(stopped);
    let mut stopping = false;
    tracing::debug!("connected");
    loop {
        // Run every complete command already received, up to the batch limit.
        let mut durable_at = 0;
        let mut ran = 0;
        let mut file = None;
        let discards = app.store.discards();
        deps.clear();
        while ran < MAX_BATCH && out.len() < MAX_OUT && file.is_none() && !session.quit {
            let frame = match if eof {
                codec.decode_eof(&mut buf)
            } else {
                codec.decode(&mut buf)
            } {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "framing failed");
                    return;
                }
            };
            let start = Start::now(&app.store);
            let mut cx = Cx {
                shared: &app,
                session: &mut session,
                wrote: 0,
                me: None,
            };
            let reply = match frame {
                Frame::Literal(line, size) => match admit(&mut cx, &budget, &line, size) {
                    Ok(h) => {
                        held.replace(h);
                        codec.accept_literal();
                        continue; // its command runs once the bytes are in
                    }
                    Err(e) => {
                        codec.refuse_literal();
                        Reply::Error(e)
                    }
                },
                Frame::WithData(..) => {
                    let reply = process(&mut cx, frame).await;
                    drop(held.take()); // the data was dropped with the command
                    if buf.capacity() > KEEP_BUFFER {
                        // Still shares the literal's allocation: let that go now.
                        buf = BytesMut::from(&buf[..]);
                    }
                    reply
                }
                frame => process(&mut cx, frame).await,
            };
            let rests = start.rests(&app.store, cx.wrote);
            durable_at = durable_at.max(rests.needs());
            ran += 1;
            match reply {
                Reply::File(body) => {
                    out.extend_from_slice(&body.header());
                    file = Some(body);
                }
                reply => reply.encode(&mut out),
            }
            deps.push((out.len(), rests));
        }
        // Stopped before the buffered input ran out: decode on before reading again.
        let more = ran == MAX_BATCH || out.len() >= MAX_OUT || file.is_some();
        if !out.is_empty() {
            app.store.durable(durable_at).await;
            if app.store.discards() != discards {
                let (fixed, last_kept) = replace_discarded(&app, &out, &deps);
                out = fixed;
                if !last_kept {
                    file = None; // a streamed body belongs to the last reply
                }
            }
            // A client that pipelines without reading fills its socket buffer; the write
            // then waits here, blocking this connection only (it reads nothing meanwhile,
            // so TCP pushes back on the client), and the write limit closes it once it
            // stops taking bytes.
            let mut w = Writer::new(&stream, write_limit, min_rate);
            let mut sent = w.write(&out).await;
            if let (Ok(()), Some(body)) = (&sent, &file) {
                sent = w.file(body).await;
            }
            match sent {
                Ok(()) => {}
                Err(Cut::Io(e)) => {
                    tracing::debug!(error = %e, "write failed: client gone");
                    return;
                }
                Err(Cut::File(e)) => {
                    tracing::error!(error = %e, "reading an attachment file failed");
                    return;
                }
                Err(Cut::Stalled) => {
                    tracing::warn!(
                        limit_secs = limits.write_timeout_secs,
                        min_bytes_per_sec = min_rate,
                        "write timeout: client does not read its replies"
                    );
                    return;
                }
            }
            out.clear();
            if out.capacity() > KEEP_BUFFER {
                out = Vec::new();
            }
        }
        if session.quit || (eof && ran == 0) {
            break;
        }
        if more {
            continue;
        }
        if stopping && !codec.mid_frame(&buf) {
            break; // the begun command has its reply
        }
        if buf.is_empty() && buf.capacity() > 0 {
            buf = BytesMut::new(); // hold no buffer while idle
        }
        partial = line_limit.and_then(|window| {
            track_partial(partial, codec.progress(&buf), ran > 0, window, min_rate)
        });
        let line_deadline = partial.map(|p| p.deadline());
        let waits = Waits {
            idle,
            idle_timer: idle_timer.as_mut(),
            line_deadline,
            stopped: stopped.as_mut(),
        };
        match read_more(&stream, &mut buf, waits).await {
            Input::Data => {}
            Input::Eof => eof = true,
            Input::Idle => {
                tracing::debug!("idle timeout");
                send_last(&mut stream, Error::new(Code::IdleTimeout)).await;
                break;
            }
            Input::LineTimeout if matches!(partial, Some(Partial::Literal(..))) => {
                let secs = limits.line_timeout_secs;
                tracing::warn!(
                    limit_secs = secs,
                    min_bytes_per_sec = min_rate,
                    "literal timeout: data stalled"
                );
                let detail = if min_rate == 0 {
                    format!("data stalled for {secs} s")
                } else {
                    format!("data stalled: under {min_rate} bytes/s, or none for {secs} s")
                };
                send_last(&mut stream, Error::with(Code::IdleTimeout, detail)).await;
                break;
            }
            Input::LineTimeout => {
                let secs = limits.line_timeout_secs;
                tracing::warn!(
                    limit_secs = secs,
                    "line timeout: client too slow to finish a line"
                );
                let detail = format!("line not finished within {secs} s");
                send_last(&mut stream, Error::with(Code::IdleTimeout, detail)).await;
                break;
            }
            // Shutdown: a command partly received is read to its end and answered first.
            Input::Stop if codec.mid_frame(&buf) => stopping = true,
            Input::Stop => break,
        }
    }
    let _ = stream.shutdown().await;
    tracing::debug!("closed");
}

/// Replies after the log could not be written: a write whose batch was discarded, and any
/// other reply that may have read a discarded batch, become the failure's `ERROR 500`.
/// Also says whether the last reply was kept.
/// `deps` holds where each reply ends in `out` and what it rests on.
fn replace_discarded(app: &App, out: &[u8], deps: &[(usize, Rests)]) -> (Vec<u8>, bool) {
    let mut fixed = Vec::with_capacity(out.len());
    let mut start = 0;
    let mut kept = true;
    for &(end, rests) in deps {
        let lost = rests.lost(&app.store);
        if lost {
            Reply::Error(app.store.failure_error()).encode(&mut fixed);
        } else {
            fixed.extend_from_slice(&out[start..end]);
        }
        kept = !lost;
        start = end;
    }
    (fixed, kept)
}

/// What the codec is part-way through between reads, with its deadline.
#[derive(Debug, Clone, Copy)]
enum Partial {
    /// A command line: its deadline stays put while bytes trickle in, so a slow-drip
    /// client cannot hold a connection forever.
    Line(Instant),
    /// A literal (bytes still to come): cut off only when it stalls.
    Literal(u64, Pace),
}

impl Partial {
    fn deadline(&self) -> Instant {
        match self {
            Partial::Line(at) => *at,
            Partial::Literal(_, pace) => pace.deadline(),
        }
    }
}

/// Starts a new clock when a frame completed or a new one began; a literal that moved on
/// earns time by its pace.
fn track_partial(
    before: Option<Partial>,
    now_at: Progress,
    frame_done: bool,
    window: Duration,
    min_rate: u64,
) -> Option<Partial> {
    match (before, now_at) {
        (_, Progress::Idle) => None,
        (Some(p @ Partial::Line(_)), Progress::Line) if !frame_done => Some(p),
        (_, Progress::Line) => Some(Partial::Line(Instant::now() + window)),
        (Some(Partial::Literal(left, mut pace)), Progress::Literal(rest))
            if !frame_done && rest <= left =>
        {
            pace.moved(Instant::now(), left - rest);
            Some(Partial::Literal(rest, pace))
        }
        (_, Progress::Literal(rest)) => Some(Partial::Literal(
            rest,
            Pace::start(Instant::now(), window, min_rate),
        )),
    }
}

fn secs_or_off(secs: u64) -> Option<Duration> {
    (secs > 0).then(|| Duration::from_secs(secs))
}

/// Sends a closing error, giving up quickly if the client does not read.
async fn send_last(stream: &mut TcpStream, e: Error) {
    let bytes = Reply::Error(e).to_bytes();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(&bytes)).await;
}

/// What a read may end on besides bytes.
struct Waits<'a, S> {
    idle: Duration,
    /// Fires at some point at or before the idle deadline; re-armed when early.
    idle_timer: Pin<&'a mut Sleep>,
    line_deadline: Option<Instant>,
    stopped: Pin<&'a mut S>,
}

/// Waits for bytes (allocating the buffer only once some arrive), the idle limit (counted
/// from now), the line deadline, or stop.
async fn read_more<S: Future>(stream: &TcpStream, buf: &mut BytesMut, w: Waits<'_, S>) -> Input {
    let Waits {
        idle,
        mut idle_timer,
        line_deadline,
        mut stopped,
    } = w;
    let idle_at = Instant::now() + idle;
    let wait = async {
        loop {
            if stream.readable().await.is_err() {
                return Input::Eof;
            }
            match read_now(stream, buf) {
                Ok(0) => return Input::Eof,
                Ok(_) => return Input::Data,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => return Input::Eof,
            }
        }
    };
    tokio::pin!(wait);
    loop {
        let line_timeout = async {
            match line_deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            r = &mut wait => return r,
            _ = idle_timer.as_mut() => {
                if Instant::now() >= idle_at {
                    return Input::Idle;
                }
                idle_timer.as_mut().reset(idle_at);
            }
            _ = line_timeout => return Input::LineTimeout,
            _ = stopped.as_mut() => return Input::Stop,
        }
    }
}

/// Reads what the socket holds (up to [`READ_CHUNK`]) through a stack buffer, so `buf`
/// grows only by what arrived: a fixed-size buffer per read left every idle connection's
/// heap fragmented (6.8 KB a connection against 2.7 KB with exact sizes, 10 000
/// connections).
///
/// A read that fills less than it offered emptied the socket, so the socket is marked not
/// ready at once: otherwise the next read would be a system call that only learns so (a
/// third of the calls a small command made). Data that arrives afterwards wakes the
/// socket again, as the readiness is cleared only if no wake-up came in between.
fn read_now(stream: &TcpStream, buf: &mut BytesMut) -> std::io::Result<usize> {
    let mut got = None;
    let r = stream.try_io(Interest::READABLE, || {
        let (n, offered) = read_once(stream, buf)?;
        got = Some(n);
        if n > 0 && n < offered {
            Err(std::io::ErrorKind::WouldBlock.into())
        } else {
            Ok(n)
        }
    });
    match (r, got) {
        (_, Some(n)) => Ok(n),
        (r, None) => r,
    }
}

/// One read into `buf`: the bytes read and how many were offered.
fn read_once(stream: &TcpStream, buf: &mut BytesMut) -> std::io::Result<(usize, usize)> {
    let spare = buf.capacity() - buf.len();
    if spare >= READ_CHUNK {
        return Ok((stream.try_read_buf(buf)?, spare)); // a large frame on its way: in place
    }
    // Not zeroed first: the read writes the bytes that are then copied.
    let mut chunk = [std::mem::MaybeUninit::<u8>::uninit(); READ_CHUNK];
    let mut free: &mut [std::mem::MaybeUninit<u8>] = &mut chunk;
    let n = stream.try_read_buf(&mut free)?;
    // SAFETY: try_read_buf initialised the first n bytes of `chunk` (BufMut advanced past them).
    let read = unsafe { std::slice::from_raw_parts(chunk.as_ptr().cast::<u8>(), n) };
    buf.extend_from_slice(read);
    Ok((n, READ_CHUNK))
}

/// Decides, before any of its bytes are read, whether a literal is worth buffering: its
/// line must parse as a command that takes data, from a logged-in user, and its size must
/// fit in the budget. The error answers the command; the bytes are then skipped.
fn admit(cx: &mut Cx<'_>, budget: &LiteralBudget, line: &[u8], size: u64) -> Result<Held, Error> {
    parse_command(line, Some(Bytes::new()))?;
    cx.user()?;
    budget.take(size).ok_or_else(|| {
        tracing::warn!(
            size,
            in_use = budget.used(),
            "literal refused: memory budget spent"
        );
        Error::with(
            Code::UploadError,
            "the server is receiving too many uploads; try again later",
        )
    })
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
