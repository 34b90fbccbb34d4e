//! `webissued-bench`: the load generator and its helpers (seeding, idle connections,
//! start-up time), a crate of its own so that the server binary carries none of it. It speaks the protocol through the project's own token writer and
//! reply-line tokenizer, and Redis's inline protocol, so both servers are measured by the
//! same client (scripts/bench runs the whole comparison).

pub mod conn;
pub mod histogram;
pub mod http;
pub mod load;
pub mod model;
pub mod seed;

use clap::{Args, Parser, Subcommand};
use conn::{Conn, Dialect};
use load::{LoadConfig, Mix, Outcome};
use std::io::{self, BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "webissued-bench",
    version,
    about = "Load generator and benchmark helpers for webissued (scripts/bench runs the full comparison)"
)]
pub struct Cli {
    #[command(subcommand)]
    cmd: BenchCmd,
}

/// Where the server is and who logs in (password default: $WEBISSUED_ADMIN_PASSWORD, else
/// "secret", the test servers' password).
#[derive(Args, Clone)]
struct Target {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:4080")]
    addr: String,
    #[arg(long, default_value = "admin")]
    login: String,
    #[arg(long)]
    password: Option<String>,
}

impl Target {
    fn password(&self) -> String {
        self.password.clone().unwrap_or_else(|| {
            std::env::var("WEBISSUED_ADMIN_PASSWORD").unwrap_or_else(|_| "secret".into())
        })
    }
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Run a mix of commands and report ops/s and latency percentiles.
    Run {
        #[command(flatten)]
        target: Target,
        #[arg(long, value_enum, default_value = "read")]
        mix: Mix,
        /// Concurrent connections.
        #[arg(short = 'c', long, default_value_t = 50)]
        connections: usize,
        /// Commands in flight per connection (1: no pipelining).
        #[arg(short = 'd', long, default_value_t = 1)]
        depth: usize,
        /// Seconds to run.
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        /// Client threads (1, like redis-benchmark, leaves the other core to the server).
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Key space for the Redis mixes.
        #[arg(long, default_value_t = 100_000)]
        keys: u64,
        /// Also report the server's CPU time per operation (from /proc): a cost figure
        /// that other load on the machine disturbs far less than ops/s.
        #[arg(long)]
        server_pid: Option<u32>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Fill the server with a realistic data set over the protocol.
    Seed {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 50)]
        users: usize,
        #[arg(long, default_value_t = 20)]
        projects: usize,
        #[arg(long, default_value_t = 5)]
        folders_per_project: usize,
        #[arg(long, default_value_t = 100_000)]
        issues: usize,
        #[arg(long, default_value_t = 1)]
        values_per_issue: usize,
        #[arg(long, default_value_t = 1)]
        comments_per_issue: usize,
        #[arg(short = 'c', long, default_value_t = 8)]
        connections: usize,
        #[arg(short = 'd', long, default_value_t = 64)]
        depth: usize,
    },
    /// Open N logged-in connections and leave them idle; with --server-pid, print the
    /// server's resident memory and exit, else hold them until killed.
    Idle {
        #[command(flatten)]
        target: Target,
        #[arg(short = 'c', long, default_value_t = 10_000)]
        connections: usize,
        /// Logins in flight at once (each costs the server an argon2 verification).
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Connect without logging in.
        #[arg(long)]
        no_login: bool,
        #[arg(long)]
        server_pid: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// Start `webissued serve` on a data directory and time it to the first answered HELLO.
    Startup {
        /// Data directory (already seeded).
        #[arg(long)]
        data: PathBuf,
        /// The server binary [default: `webissued` beside this program].
        #[arg(long, value_name = "FILE")]
        server: Option<PathBuf>,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[arg(long)]
        json: bool,
    },
}

/// Runs the command, printing to stdout; errors go to stderr.
pub fn main(cli: Cli) -> ExitCode {
    match run(cli, &mut io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("webissued-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the command, writing its report to `out` (tests read it from there); ERROR
/// replies during a run are an error.
pub fn run(cli: Cli, out: &mut dyn Write) -> io::Result<()> {
    match cli.cmd {
        BenchCmd::Run {
            target,
            mix,
            connections,
            depth,
            duration,
            threads,
            keys,
            server_pid,
            json,
        } => {
            let cfg = LoadConfig {
                password: target.password(),
                addr: target.addr,
                login: target.login,
                mix,
                connections: connections.max(1),
                depth: depth.max(1),
                duration: Duration::from_secs_f64(duration),
                keys,
                server_pid,
            };
            let (c, d) = (cfg.connections, cfg.depth);
            runtime(threads)
                .and_then(|rt| rt.block_on(load::run(cfg)))
                .and_then(|o| print_outcome(out, mix, c, d, &o, json))
                .and_then(|errors| {
                    if errors == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::other(format!(
                            "{errors} commands answered ERROR"
                        )))
                    }
                })
        }
        BenchCmd::Seed {
            target,
            users,
            projects,
            folders_per_project,
            issues,
            values_per_issue,
            comments_per_issue,
            connections,
            depth,
        } => {
            let cfg = seed::SeedConfig {
                password: target.password(),
                addr: target.addr,
                login: target.login,
                users,
                projects,
                folders_per_project,
                issues,
                values_per_issue,
                comments_per_issue,
                connections,
                depth,
            };
            runtime(2).and_then(|rt| rt.block_on(seed::seed(&cfg)).map(|_| ()))
        }
        BenchCmd::Idle {
            target,
            connections,
            concurrency,
            no_login,
            server_pid,
            json,
        } => runtime(2).and_then(|rt| {
            rt.block_on(idle(
                &target,
                connections,
                concurrency,
                !no_login,
                server_pid,
                json,
                out,
            ))
        }),
        BenchCmd::Startup {
            data,
            server,
            runs,
            json,
        } => {
            let server = match server {
                Some(s) => s,
                None => std::env::current_exe()?.with_file_name("webissued"),
            };
            startup(&server, &data, runs, json, out)
        }
    }
}

fn runtime(threads: usize) -> io::Result<tokio::runtime::Runtime> {
    if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Prints the outcome; returns the number of ERROR replies.
fn print_outcome(
    out: &mut dyn Write,
    mix: Mix,
    connections: usize,
    depth: usize,
    o: &Outcome,
    json: bool,
) -> io::Result<u64> {
    let h = &o.hist;
    let (p50, p99, p999) = (h.quantile(0.5), h.quantile(0.99), h.quantile(0.999));
    let per_op = |cpu: Duration| cpu.as_secs_f64() * 1e6 / o.ops.max(1) as f64;
    let cpu_us = o.server_cpu.map(per_op);
    let client_us = o.client_cpu.map(per_op);
    if json {
        writeln!(
            out,
            "{{\"mix\":\"{}\",\"connections\":{connections},\"depth\":{depth},\"seconds\":{:.3},\
             \"ops\":{},\"ops_per_sec\":{:.1},\"p50_ms\":{:.4},\"p99_ms\":{:.4},\
             \"p999_ms\":{:.4},\"max_ms\":{:.4},\"errors\":{},\"server_cpu_us_per_op\":{},\
             \"client_cpu_us_per_op\":{}}}",
            mix.name(),
            o.elapsed.as_secs_f64(),
            o.ops,
            o.ops_per_sec(),
            ms(p50),
            ms(p99),
            ms(p999),
            ms(h.max()),
            o.errors,
            cpu_us.map_or("null".to_string(), |c| format!("{c:.1}")),
            client_us.map_or("null".to_string(), |c| format!("{c:.1}"))
        )?;
    } else {
        writeln!(
            out,
            "{:<9} c={connections:<4} d={depth:<3} {:>10.0} ops/s  p50 {:.3} ms  p99 {:.3} ms  \
             p99.9 {:.3} ms  max {:.3} ms  ({} ops, {} errors)",
            mix.name(),
            o.ops_per_sec(),
            ms(p50),
            ms(p99),
            ms(p999),
            ms(h.max()),
            o.ops,
            o.errors
        )?;
        if let Some(c) = cpu_us {
            writeln!(out, "          server CPU {c:.1} µs per operation")?;
        }
        if let Some(c) = client_us {
            writeln!(
                out,
                "          client CPU {c:.1} µs per operation (this generator)"
            )?;
        }
    }
    if let Some(e) = &o.first_error {
        eprintln!("first error: {e}");
    }
    Ok(o.errors)
}

/// User plus system CPU time of a process so far, from /proc (clock ticks of 10 ms).
pub fn cpu_time(pid: u32) -> io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Ok(Duration::from_millis(ticks * 10))
}

/// The resident set of a process, in KiB, from /proc.
fn rss_kib(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| io::Error::other("no VmRSS in /proc status"))
}

async fn idle(
    target: &Target,
    connections: usize,
    concurrency: usize,
    login: bool,
    server_pid: Option<u32>,
    json: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    let before = server_pid.map(rss_kib).transpose()?;
    let started = Instant::now();
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (t, pw, limit) = (target.clone(), target.password(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let mut c = Conn::connect(&t.addr, Dialect::WebIssues).await?;
            if login {
                c.login(&t.login, &pw).await?;
            } else {
                c.call(b"HELLO").await?;
            }
            io::Result::Ok(c)
        });
    }
    let mut conns = Vec::with_capacity(connections);
    while let Some(done) = tasks.join_next().await {
        conns.push(done.map_err(io::Error::other)??);
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!("idle: {} connections open in {secs:.1} s", conns.len());
    let Some(pid) = server_pid else {
        writeln!(out, "ready {}", conns.len())?;
        out.flush()?;
        std::future::pending::<()>().await;
        return Ok(());
    };
    // Let the server return the memory of finished logins before reading it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid)?;
    let before = before.unwrap_or(0);
    if json {
        writeln!(
            out,
            "{{\"connections\":{},\"logged_in\":{login},\"rss_before_kib\":{before},\
             \"rss_kib\":{after},\"open_secs\":{secs:.1}}}",
            conns.len()
        )?;
    } else {
        writeln!(
            out,
            "idle: {} {} connections: server RSS {:.1} MB (was {:.1} MB before; {:.1} KB per connection)",
            conns.len(),
            if login { "logged-in" } else { "anonymous" },
            after as f64 / 1024.0,
            before as f64 / 1024.0,
            (after.saturating_sub(before)) as f64 / conns.len().max(1) as f64
        )?;
    }
    Ok(())
}

/// Starts the server on `data` `runs` times and reports the time to "listening", to the
/// first HELLO answered, and to the first answer that needed the data (LIST PROJECTS
/// without a login: its 300 comes once the store is loaded).
fn startup(
    exe: &std::path::Path,
    data: &std::path::Path,
    runs: usize,
    json: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut results = Vec::new();
    for _ in 0..runs.max(1) {
        let t0 = Instant::now();
        let mut child = std::process::Command::new(exe)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--http-listen",
                "127.0.0.1:0",
            ])
            .arg("--data")
            .arg(data)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| io::Error::other(format!("cannot start {}: {e}", exe.display())))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        let mut lines = io::BufReader::new(stdout);
        lines.read_line(&mut line)?;
        let listening = t0.elapsed();
        // Keep reading: a closed pipe would fail the server's later prints.
        std::thread::spawn(move || io::copy(&mut lines, &mut io::sink()));
        let addr = line
            .trim()
            .strip_prefix("webissued listening on ")
            .ok_or_else(|| io::Error::other(format!("unexpected server output {line:?}")))?
            .to_string();
        let (hello, ready) = runtime(1)?.block_on(async {
            let mut c = Conn::connect(&addr, Dialect::WebIssues).await?;
            let r = c.call(b"HELLO").await?;
            if !r.text().starts_with("SERVER ") {
                return Err(io::Error::other(format!("HELLO answered {}", r.text())));
            }
            let hello = t0.elapsed();
            let r = c.call(b"LIST PROJECTS").await?;
            if !r.text().starts_with("ERROR 300") {
                return Err(io::Error::other(format!(
                    "LIST PROJECTS answered {}",
                    r.text()
                )));
            }
            Ok((hello, t0.elapsed()))
        })?;
        // SIGTERM, so the store closes cleanly before the next run.
        let _ = std::process::Command::new("kill")
            .arg(child.id().to_string())
            .status();
        child.wait()?;
        results.push((listening, hello, ready));
    }
    for (listening, hello, ready) in &results {
        let ms = |d: &Duration| d.as_secs_f64() * 1e3;
        if json {
            writeln!(
                out,
                "{{\"listening_ms\":{:.1},\"first_hello_ms\":{:.1},\"data_ready_ms\":{:.1}}}",
                ms(listening),
                ms(hello),
                ms(ready)
            )?;
        } else {
            writeln!(
                out,
                "startup: listening after {:.1} ms, first HELLO answered after {:.1} ms, data loaded after {:.1} ms",
                ms(listening),
                ms(hello),
                ms(ready)
            )?;
        }
    }
    Ok(())
}
