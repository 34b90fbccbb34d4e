//! The timed run: N connections, each keeping D commands in flight (closed loop), for a
//! fixed duration; latency is measured per command from its send to its reply.

use super::conn::{Conn, Dialect};
use super::histogram::Histogram;
use super::model::Model;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};
use webissued::protocol::token::write_string;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mix {
    /// LIST PROJECTS, LIST ISSUES since a recent stamp, GET DETAILS (a third each).
    Read,
    /// ADD ISSUE, SET VALUE, ADD COMMENT (a third each), each acknowledged when durable.
    Write,
    /// 90 % read, 10 % write.
    Mixed,
    /// HELLO and LIST FEATURES: the protocol path without storage.
    Simple,
    /// One command of the read mix alone, to find which one costs (profiling).
    ListProjects,
    ListIssues,
    GetDetails,
    /// The read mix over the HTTP transport (`--addr` is the HTTP listener): one
    /// keep-alive POST per command.
    HttpRead,
    /// Redis inline `GET k` over a prefilled key space.
    RedisGet,
    /// Redis inline `SET k v`.
    RedisSet,
}

impl Mix {
    pub fn dialect(self) -> Dialect {
        match self {
            Mix::RedisGet | Mix::RedisSet => Dialect::Redis,
            Mix::HttpRead => Dialect::Http,
            _ => Dialect::WebIssues,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mix::Read => "read",
            Mix::Write => "write",
            Mix::Mixed => "mixed",
            Mix::Simple => "simple",
            Mix::ListProjects => "list-projects",
            Mix::ListIssues => "list-issues",
            Mix::GetDetails => "get-details",
            Mix::HttpRead => "http-read",
            Mix::RedisGet => "redis-get",
            Mix::RedisSet => "redis-set",
        }
    }

    fn needs_model(self) -> bool {
        !matches!(self, Mix::Simple | Mix::RedisGet | Mix::RedisSet)
    }
}

pub struct LoadConfig {
    pub addr: String,
    pub mix: Mix,
    pub connections: usize,
    pub depth: usize,
    pub duration: Duration,
    pub login: String,
    pub password: String,
    /// Redis key space.
    pub keys: u64,
    /// The server process, to measure its CPU time during the run.
    pub server_pid: Option<u32>,
}

/// A small xorshift generator: the choice of commands needs speed, not quality.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// Appends the next command of the mix (without line ending) to `out`. A write returns the
/// folder its `ID` reply (the issue's new stamp) is to be recorded in.
fn generate(mix: Mix, m: &Model, rng: &mut Rng, keys: u64, out: &mut Vec<u8>) -> Option<usize> {
    match mix {
        Mix::Simple => {
            if rng.next_u64() & 1 == 0 {
                out.extend_from_slice(b"HELLO");
            } else {
                out.extend_from_slice(b"LIST FEATURES");
            }
        }
        Mix::Read | Mix::HttpRead => read_command(m, rng, None, out),
        Mix::ListIssues => read_command(m, rng, Some(0), out),
        Mix::GetDetails => read_command(m, rng, Some(1), out),
        Mix::ListProjects => read_command(m, rng, Some(2), out),
        Mix::Write => return write_command(m, rng, out),
        Mix::Mixed => {
            if rng.below(10) == 0 {
                return write_command(m, rng, out);
            }
            read_command(m, rng, None, out)
        }
        Mix::RedisGet => {
            let _ = write!(out, "GET k:{}", rng.next_u64() % keys.max(1));
        }
        Mix::RedisSet => {
            let _ = write!(
                out,
                "SET k:{} {}",
                rng.next_u64() % keys.max(1),
                REDIS_VALUE
            );
        }
    }
    None
}

/// 64 bytes, like a short attribute value.
const REDIS_VALUE: &str = "v123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// `kind`: 0 LIST ISSUES, 1 GET DETAILS, 2 LIST PROJECTS; None picks one at random.
fn read_command(m: &Model, rng: &mut Rng, kind: Option<usize>, out: &mut Vec<u8>) {
    match kind.unwrap_or_else(|| rng.below(3)) {
        0 if !m.folders.is_empty() => {
            // A client syncing a folder: only the last few issues are newer than its stamp.
            let f = &m.folders[rng.below(m.folders.len())];
            let since = f.recent_since(|n| rng.below(n));
            let _ = write!(out, "LIST ISSUES {} {since}", f.id);
        }
        1 if !m.issues.is_empty() => {
            let (id, _) = m.issues[rng.below(m.issues.len())];
            let _ = write!(out, "GET DETAILS {id} 0");
        }
        _ => out.extend_from_slice(b"LIST PROJECTS"),
    }
}

/// Returns the index of the folder whose issue the command changes.
fn write_command(m: &Model, rng: &mut Rng, out: &mut Vec<u8>) -> Option<usize> {
    if m.folders.is_empty() {
        out.extend_from_slice(b"LIST PROJECTS");
        return None;
    }
    let choice = if m.issues.is_empty() { 0 } else { rng.below(3) };
    let (issue, folder) = if m.issues.is_empty() {
        (0, rng.below(m.folders.len()))
    } else {
        m.issues[rng.below(m.issues.len())]
    };
    let settable = m.settable.get(&m.folders[folder].type_id);
    match choice {
        0 => {
            let fi = rng.below(m.folders.len());
            let _ = write!(out, "ADD ISSUE {} ", m.folders[fi].id);
            write_string(out, &format!("Bench issue {}", rng.next_u64() % 1_000_000));
            return Some(fi);
        }
        1 if settable.is_some_and(|s| !s.is_empty()) => {
            let attrs = settable.unwrap();
            let a = &attrs[rng.below(attrs.len())];
            let _ = write!(out, "SET VALUE {issue} {} ", a.id);
            write_string(out, &a.values[rng.below(a.values.len())]);
        }
        _ => {
            let _ = write!(out, "ADD COMMENT {issue} ");
            write_string(out, COMMENT);
        }
    }
    Some(folder)
}

const COMMENT: &str = "Reproduced on the staging server.\nSteps: open the page, click 'Save', \
                       wait. It's about 100 bytes.";

#[derive(Default)]
pub struct Outcome {
    pub ops: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub hist: Histogram,
    pub elapsed: Duration,
    /// Server CPU time (user + system) during the timed run.
    pub server_cpu: Option<Duration>,
    /// The generator's own CPU time during the timed run: on a small machine it competes
    /// with the server for the same cores, so it belongs beside the latencies.
    pub client_cpu: Option<Duration>,
}

impl Outcome {
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn merge(&mut self, o: Outcome) {
        self.ops += o.ops;
        self.errors += o.errors;
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
        self.hist.merge(&o.hist);
    }
}

/// Connects and logs in every connection, then runs the mix on all of them at once.
pub async fn run(cfg: LoadConfig) -> io::Result<Outcome> {
    let dialect = cfg.mix.dialect();
    let mut model = Model::default();
    if dialect != Dialect::Redis {
        let mut c = Conn::connect(&cfg.addr, dialect).await?;
        c.login(&cfg.login, &cfg.password).await?;
        if cfg.mix.needs_model() {
            model = Model::discover(&mut c).await?;
            if model.folders.is_empty() {
                return Err(io::Error::other(
                    "no folders on the server: run `webissued-bench seed` first",
                ));
            }
        }
    } else if cfg.mix == Mix::RedisGet {
        prefill_redis(&cfg).await?;
    }
    let model = Arc::new(model);
    let mut conns = Vec::with_capacity(cfg.connections);
    for _ in 0..cfg.connections {
        let mut c = Conn::connect(&cfg.addr, dialect).await?;
        if dialect != Dialect::Redis {
            c.login(&cfg.login, &cfg.password).await?;
        }
        conns.push(c);
    }
    let cpu_before = cfg.server_pid.map(super::cpu_time).transpose()?;
    let own_before = super::cpu_time(std::process::id()).ok();
    let start = Instant::now();
    let deadline = start + cfg.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, conn) in conns.into_iter().enumerate() {
        let model = model.clone();
        let (mix, depth, keys) = (cfg.mix, cfg.depth.max(1), cfg.keys);
        tasks.spawn(async move {
            worker(
                conn,
                mix,
                depth,
                keys,
                &model,
                Rng::new(i as u64 + 1),
                deadline,
            )
            .await
        });
    }
    let mut total = Outcome::default();
    while let Some(done) = tasks.join_next().await {
        total.merge(done.map_err(io::Error::other)??);
    }
    total.elapsed = cfg.duration;
    if let (Some(before), Ok(after)) = (own_before, super::cpu_time(std::process::id())) {
        total.client_cpu = Some(after.saturating_sub(before));
    }
    if let (Some(pid), Some(before)) = (cfg.server_pid, cpu_before) {
        total.server_cpu = Some(super::cpu_time(pid)?.saturating_sub(before));
    }
    Ok(total)
}

/// Sets every key once, so GET finds a value as it would in a warm cache.
async fn prefill_redis(cfg: &LoadConfig) -> io::Result<()> {
    let mut c = Conn::connect(&cfg.addr, Dialect::Redis).await?;
    let cmds = (0..cfg.keys).map(|k| format!("SET k:{k} {REDIS_VALUE}").into_bytes());
    c.pipeline(cmds, 256).await?;
    Ok(())
}

async fn worker(
    mut conn: Conn,
    mix: Mix,
    depth: usize,
    keys: u64,
    model: &Model,
    mut rng: Rng,
    deadline: Instant,
) -> io::Result<Outcome> {
    let mut out = Outcome::default();
    // When each command in flight was sent, and the folder a write's reply advances.
    let mut sent: VecDeque<(Instant, Option<usize>)> = VecDeque::with_capacity(depth);
    loop {
        let now = Instant::now();
        if now < deadline {
            while sent.len() < depth {
                let folder = generate(mix, model, &mut rng, keys, &mut conn.wbuf);
                conn.wbuf.extend_from_slice(b"\r\n");
                sent.push_back((now, folder));
            }
        } else if sent.is_empty() {
            return Ok(out);
        }
        conn.flush().await?;
        let mut got = 0;
        loop {
            match conn.try_reply()? {
                Some(reply) => {
                    got += 1;
                    let now = Instant::now();
                    let (at, folder) = sent.pop_front().unwrap_or((now, None));
                    if let Some(fi) = folder
                        && let Some(stamp) = reply.id()
                    {
                        model.folders[fi].changed(stamp);
                    }
                    // Replies that arrive after the deadline are drained, not counted.
                    if now <= deadline {
                        out.ops += 1;
                        out.hist.record((now - at).as_nanos() as u64);
                        if reply.error {
                            out.errors += 1;
                            if out.first_error.is_none() {
                                out.first_error = Some(reply.text().to_string());
                            }
                        }
                    }
                }
                None if got > 0 || sent.is_empty() => break,
                None => conn.fill().await?,
            }
        }
    }
}
