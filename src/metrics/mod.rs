//! Counters and histograms for `GET /metrics` (Prometheus text format 0.0.4,
//! protocol-spec/metrics.md).
//!
//! One process-wide registry: the code that counts (connections, commands, the committer,
//! the checkpointer, the notification pass) bumps it without knowing whether anyone reads
//! it. Per-command figures are only gathered with `[server] metrics = true`, so a server
//! without the endpoint pays one relaxed load per command; the rest are a few atomics per
//! flush, per connection or per pass.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Upper bounds (seconds) of the command latency and fsync histograms.
const SECONDS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Upper bounds of the batches-per-flush histogram.
const BATCHES: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0];
/// Distinct command names kept; later ones are counted as `OTHER` (names come only from
/// lines that parsed, so this never fills in practice).
const MAX_NAMES: usize = 100;

/// A cumulative histogram with fixed bounds.
#[derive(Debug)]
struct Histogram<const N: usize> {
    bounds: &'static [f64; N],
    counts: [AtomicU64; N],
    count: AtomicU64,
    /// Sum in millionths (µs for durations).
    sum_micros: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    fn new(bounds: &'static [f64; N]) -> Self {
        Histogram {
            bounds,
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    fn observe(&self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.counts[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add((v * 1e6) as u64, Relaxed);
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            cumulative += c.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

#[derive(Debug)]
struct CommandStats {
    ok: u64,
    error: u64,
    latency: Histogram<14>,
}

/// The registry.
#[derive(Debug)]
pub struct Metrics {
    enabled: AtomicBool,
    tcp_open: AtomicU64,
    tcp_accepted: AtomicU64,
    commands: Mutex<HashMap<String, CommandStats>>,
    flushes: AtomicU64,
    flushed_batches: AtomicU64,
    flushed_bytes: AtomicU64,
    batch_sizes: Histogram<10>,
    fsync: Histogram<14>,
    folded_seq: AtomicU64,
    checkpoints: AtomicU64,
    passes: AtomicU64,
    pass_seconds: Histogram<14>,
    mails_sent: AtomicU64,
    mails_failed: AtomicU64,
}

/// The process's registry.
pub fn global() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(|| Metrics {
        enabled: AtomicBool::new(false),
        tcp_open: AtomicU64::new(0),
        tcp_accepted: AtomicU64::new(0),
        commands: Mutex::new(HashMap::new()),
        flushes: AtomicU64::new(0),
        flushed_batches: AtomicU64::new(0),
        flushed_bytes: AtomicU64::new(0),
        batch_sizes: Histogram::new(&BATCHES),
        fsync: Histogram::new(&SECONDS),
        folded_seq: AtomicU64::new(0),
        checkpoints: AtomicU64::new(0),
        passes: AtomicU64::new(0),
        pass_seconds: Histogram::new(&SECONDS),
        mails_sent: AtomicU64::new(0),
        mails_failed: AtomicU64::new(0),
    })
}

/// The verb of a command line: its leading upper-case words (one or two).
pub fn verb(line: &[u8]) -> &str {
    let mut end = 0;
    let mut words = 0;
    while words < 2 {
        let rest = &line[end..];
        let n = rest.iter().take_while(|b| b.is_ascii_uppercase()).count();
        if n == 0 {
            break;
        }
        end += n;
        words += 1;
        if line.get(end) == Some(&b' ') && line.get(end + 1).is_some_and(|b| b.is_ascii_uppercase())
        {
            end += 1;
        } else {
            break;
        }
    }
    std::str::from_utf8(&line[..end]).unwrap_or("").trim_end()
}

impl Metrics {
    /// Turns on the per-command figures (`[server] metrics = true`).
    pub fn enable(&self) {
        self.enabled.store(true, Relaxed);
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Relaxed)
    }

    pub fn connection_opened(&self) {
        self.tcp_accepted.fetch_add(1, Relaxed);
        self.tcp_open.fetch_add(1, Relaxed);
    }

    pub fn connection_closed(&self) {
        self.tcp_open.fetch_sub(1, Relaxed);
    }

    /// A command answered: its verb, whether the reply was an error, how long it took.
    pub fn command(&self, verb: &str, error: bool, took: Duration) {
        let Ok(mut m) = self.commands.lock() else {
            return;
        };
        let verb = if m.contains_key(verb) || m.len() < MAX_NAMES {
            verb
        } else {
            "OTHER"
        };
        let s = match m.get_mut(verb) {
            Some(s) => s,
            None => m.entry(verb.to_string()).or_insert(CommandStats {
                ok: 0,
                error: 0,
                latency: Histogram::new(&SECONDS),
            }),
        };
        if error {
            s.error += 1;
        } else {
            s.ok += 1;
        }
        s.latency.observe(took.as_secs_f64());
    }

    /// One group-commit flush: `batches` writes made durable by one fsync of `bytes`.
    pub fn flushed(&self, batches: usize, bytes: usize, fsync: Duration) {
        self.flushes.fetch_add(1, Relaxed);
        self.flushed_batches.fetch_add(batches as u64, Relaxed);
        self.flushed_bytes.fetch_add(bytes as u64, Relaxed);
        self.batch_sizes.observe(batches as f64);
        self.fsync.observe(fsync.as_secs_f64());
    }

    /// sled holds every batch up to `seq` (read at start-up).
    pub fn folded(&self, seq: u64) {
        self.folded_seq.fetch_max(seq, Relaxed);
    }

    /// A log file was folded into sled, up to batch `seq`.
    pub fn checkpointed(&self, seq: u64) {
        self.folded(seq);
        self.checkpoints.fetch_add(1, Relaxed);
    }

    /// A digest pass finished.
    pub fn pass(&self, took: Duration) {
        self.passes.fetch_add(1, Relaxed);
        self.pass_seconds.observe(took.as_secs_f64());
    }

    pub fn mail(&self, sent: bool) {
        if sent {
            self.mails_sent.fetch_add(1, Relaxed);
        } else {
            self.mails_failed.fetch_add(1, Relaxed);
        }
    }

    /// The exposition text; `state` holds the figures read from the store at scrape time.
    pub fn render(&self, state: &State) -> String {
        let mut out = String::with_capacity(8192);
        let head = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
        };
        head(
            &mut out,
            "webissued_connections",
            "gauge",
            "Open connections by listener.",
        );
        let _ = writeln!(
            out,
            "webissued_connections{{listener=\"tcp\"}} {}",
            self.tcp_open.load(Relaxed)
        );
        head(
            &mut out,
            "webissued_connections_accepted_total",
            "counter",
            "Connections accepted by listener.",
        );
        let _ = writeln!(
            out,
            "webissued_connections_accepted_total{{listener=\"tcp\"}} {}",
            self.tcp_accepted.load(Relaxed)
        );
        head(
            &mut out,
            "webissued_commands_total",
            "counter",
            "Commands answered, by verb and outcome (ok, or error for an ERROR reply).",
        );
        let commands = self.commands.lock().map(|m| {
            let mut v: Vec<(String, u64, u64)> =
                m.iter().map(|(k, s)| (k.clone(), s.ok, s.error)).collect();
            v.sort();
            v
        });
        for (name, ok, error) in commands.iter().flatten() {
            let _ = writeln!(
                out,
                "webissued_commands_total{{command=\"{name}\",outcome=\"ok\"}} {ok}"
            );
            let _ = writeln!(
                out,
                "webissued_commands_total{{command=\"{name}\",outcome=\"error\"}} {error}"
            );
        }
        head(
            &mut out,
            "webissued_command_duration_seconds",
            "histogram",
            "Time to run a command and build its reply (a write's wait for durability is in webissued_fsync_seconds).",
        );
        if let Ok(m) = self.commands.lock() {
            let mut names: Vec<&String> = m.keys().collect();
            names.sort();
            for name in names {
                m[name].latency.write(
                    &mut out,
                    "webissued_command_duration_seconds",
                    &format!("command=\"{name}\""),
                );
            }
        }
        head(
            &mut out,
            "webissued_durable_flushes_total",
            "counter",
            "Group-commit flushes (one fdatasync each).",
        );
        let _ = writeln!(
            out,
            "webissued_durable_flushes_total {}",
            self.flushes.load(Relaxed)
        );
        head(
            &mut out,
            "webissued_durable_batches_total",
            "counter",
            "Write batches made durable.",
        );
        let _ = writeln!(
            out,
            "webissued_durable_batches_total {}",
            self.flushed_batches.load(Relaxed)
        );
        head(
            &mut out,
            "webissued_durable_bytes_total",
            "counter",
            "Bytes written to the log.",
        );
        let _ = writeln!(
            out,
            "webissued_durable_bytes_total {}",
            self.flushed_bytes.load(Relaxed)
        );
        head(
            &mut out,
            "webissued_durable_batches_per_flush",
            "histogram",
            "Write batches made durable by one flush.",
        );
        self.batch_sizes
            .write(&mut out, "webissued_durable_batches_per_flush", "");
        head(
            &mut out,
            "webissued_fsync_seconds",
            "histogram",
            "Time of each log write and fdatasync.",
        );
        self.fsync.write(&mut out, "webissued_fsync_seconds", "");
        head(
            &mut out,
            "webissued_log_backlog_bytes",
            "gauge",
            "Closed log files not yet checkpointed into sled, in bytes.",
        );
        let _ = writeln!(out, "webissued_log_backlog_bytes {}", state.backlog_bytes);
        head(
            &mut out,
            "webissued_log_files",
            "gauge",
            "Log files on disk (the open one included).",
        );
        let _ = writeln!(out, "webissued_log_files {}", state.log_files);
        head(
            &mut out,
            "webissued_checkpoint_lag_batches",
            "gauge",
            "Batches applied but not yet folded into sled.",
        );
        let lag = state
            .last_applied
            .saturating_sub(self.folded_seq.load(Relaxed));
        let _ = writeln!(out, "webissued_checkpoint_lag_batches {lag}");
        head(
            &mut out,
            "webissued_checkpoints_total",
            "counter",
            "Log files folded into sled.",
        );
        let _ = writeln!(
            out,
            "webissued_checkpoints_total {}",
            self.checkpoints.load(Relaxed)
        );
        head(
            &mut out,
            "webissued_outbox_depth",
            "gauge",
            "Messages in the outbox, by state.",
        );
        let _ = writeln!(
            out,
            "webissued_outbox_depth{{state=\"queued\"}} {}",
            state.outbox_queued
        );
        let _ = writeln!(
            out,
            "webissued_outbox_depth{{state=\"failed\"}} {}",
            state.outbox_failed
        );
        head(
            &mut out,
            "webissued_outbox_oldest_age_seconds",
            "gauge",
            "Age of the oldest queued message (0 when none).",
        );
        let _ = writeln!(
            out,
            "webissued_outbox_oldest_age_seconds {}",
            state.outbox_oldest_age
        );
        head(
            &mut out,
            "webissued_notification_passes_total",
            "counter",
            "Digest passes run.",
        );
        let _ = writeln!(
            out,
            "webissued_notification_passes_total {}",
            self.passes.load(Relaxed)
        );
        head(
            &mut out,
            "webissued_notification_pass_seconds",
            "histogram",
            "Duration of each digest pass.",
        );
        self.pass_seconds
            .write(&mut out, "webissued_notification_pass_seconds", "");
        head(
            &mut out,
            "webissued_mails_total",
            "counter",
            "Mails handed to the transport, by result (sent, or failed for a refused or failed attempt).",
        );
        let _ = writeln!(
            out,
            "webissued_mails_total{{result=\"sent\"}} {}",
            self.mails_sent.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "webissued_mails_total{{result=\"failed\"}} {}",
            self.mails_failed.load(Relaxed)
        );
        out
    }
}

/// Figures read at scrape time.
#[derive(Debug, Default)]
pub struct State {
    pub backlog_bytes: u64,
    pub log_files: u64,
    pub last_applied: u64,
    pub outbox_queued: u64,
    pub outbox_failed: u64,
    pub outbox_oldest_age: i64,
}

#[cfg(test)]
mod tests {
    #[test]
    fn verbs_are_the_leading_upper_case_words() {
        assert_eq!(super::verb(b"LIST ISSUES 1 0"), "LIST ISSUES");
        assert_eq!(super::verb(b"HELLO"), "HELLO");
        assert_eq!(super::verb(b"LOGIN 'a' 'b'"), "LOGIN");
        assert_eq!(super::verb(b"BACKUP 'X'"), "BACKUP");
        assert_eq!(super::verb(b"ADD USER 'A' 'B' 'c'"), "ADD USER");
    }
}
