//! Writing replies under the write limit: a reply is cut off when it stops making
//! progress ([`Pace`]), never for its total duration, so a slow but steady reader of a
//! large attachment gets all of it while a client that stops reading is closed.

use super::pace::Pace;
use crate::protocol::FileBody;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Bytes of a streamed file read and written at a time: all a streamed reply holds.
const FILE_CHUNK: usize = 64 * 1024;

/// Why a write gave up.
pub enum Cut {
    /// The socket failed (the client went away).
    Io(std::io::Error),
    /// A streamed file could not be read; the reply cannot be finished.
    File(std::io::Error),
    /// No progress within the write limit.
    Stalled,
}

impl From<std::io::Error> for Cut {
    fn from(e: std::io::Error) -> Self {
        Cut::Io(e)
    }
}

/// Writes one batch of replies; the pace starts the first time the socket is full.
pub struct Writer<'a> {
    stream: &'a TcpStream,
    window: Option<Duration>,
    min_rate: u64,
    pace: Option<Pace>,
}

impl<'a> Writer<'a> {
    /// `window` None: no write limit.
    pub fn new(stream: &'a TcpStream, window: Option<Duration>, min_rate: u64) -> Self {
        Writer {
            stream,
            window,
            min_rate,
            pace: None,
        }
    }

    /// Writes all of `bytes`: straight away when the socket takes them (the usual case,
    /// costing no timer), else waiting for room under the pace.
    pub async fn write(&mut self, mut bytes: &[u8]) -> Result<(), Cut> {
        while !bytes.is_empty() {
            match self.stream.try_write(bytes) {
                Ok(0) => return Err(Cut::Io(std::io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    bytes = &bytes[n..];
                    if let Some(p) = &mut self.pace {
                        p.moved(Instant::now(), n as u64);
                    }
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(Cut::Io(e)),
            }
            let Some(window) = self.window else {
                self.stream.writable().await?;
                continue;
            };
            let (rate, now) = (self.min_rate, Instant::now());
            let pace = self
                .pace
                .get_or_insert_with(|| Pace::start(now, window, rate));
            match tokio::time::timeout_at(pace.deadline(), self.stream.writable()).await {
                Ok(r) => r?,
                Err(_) => return Err(Cut::Stalled),
            }
        }
        Ok(())
    }

    /// Streams `body` (its `DATA` line already written) and the reply's end, one chunk in
    /// memory at a time.
    pub async fn file(&mut self, body: &FileBody) -> Result<(), Cut> {
        let mut chunk = Vec::with_capacity(FILE_CHUNK.min(body.size as usize));
        let mut offset = 0;
        while offset < body.size {
            let want = FILE_CHUNK.min((body.size - offset) as usize);
            chunk = read_at(body.file.clone(), offset, want, chunk)
                .await
                .map_err(Cut::File)?;
            self.write(&chunk).await?;
            offset += want as u64;
        }
        self.write(FileBody::TRAILER).await
    }
}

/// Reads exactly `len` bytes at `offset` on the blocking pool (a file read may wait on
/// the disk), reusing `buf`'s allocation.
async fn read_at(
    file: Arc<std::fs::File>,
    offset: u64,
    len: usize,
    mut buf: Vec<u8>,
) -> std::io::Result<Vec<u8>> {
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::FileExt;
        buf.resize(len, 0);
        file.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    })
    .await
    .map_err(std::io::Error::other)?
}
