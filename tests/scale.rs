//! Export and import, online backup and `check`, and the metrics endpoint (issue: a
//! million issues). The large-scale figures come from scripts/scale, not from here.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use support::{ADMIN_PASSWORD, Client, Server, ok, tool};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_webissued"))
}

/// Sends `line {size}` followed by the bytes.
fn attach(c: &mut Client, line: &str, data: &[u8]) -> Vec<String> {
    let mut bytes = format!("{line} {{{}}}\n", data.len()).into_bytes();
    bytes.extend_from_slice(data);
    c.write_raw(&bytes);
    c.read_reply()
}

/// Users, a project, folders, issues with values, comments and a binary attachment,
/// preferences and watches.
fn populate(server: &Server) -> (Vec<u8>, String) {
    let mut admin = server.admin();
    assert_eq!(admin.id("ADD USER 'alice' 'Alice Adams' 'alicepw'"), 2);
    assert_eq!(admin.id("ADD PROJECT 'Backend'"), 1);
    assert_eq!(admin.one("GRANT MEMBER 2 1 2"), "OK");
    assert_eq!(admin.id("ADD FOLDER 1 1 'Bugs'"), 1);
    let mut alice = server.connect();
    alice.login("alice", "alicepw");
    for i in 1..=20 {
        let id = alice.id(&format!("ADD ISSUE 1 'Issue {i} \\'quoted\\''"));
        let r = alice.one(&format!("ADD COMMENT {id} 'line 1\\nline 2 ü'"));
        assert!(r.starts_with("ID "), "{r}");
    }
    let binary: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let r = attach(&mut alice, "ADD ATTACHMENT 1 'dump.bin' 'bytes'", &binary);
    let file = r[0].strip_prefix("ID ").expect("attachment id").to_string();
    assert_eq!(
        alice.one("SET PREFERENCE 2 'email' 'alice@example.org'"),
        "OK"
    );
    assert_eq!(alice.one("NOTIFY FOLDER 1 1"), "OK");
    (binary, file)
}

#[test]
fn export_import_round_trip_is_byte_identical_and_serves() {
    let mut server = Server::start();
    let (binary, file) = populate(&server);
    let data = server.data_dir();
    // The directory is locked while the server runs.
    let refused = tool(&["export"], &data, b"");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("in use"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(server.terminate(), Some(0));

    let first = ok(tool(&["export"], &data, b""));
    let text = String::from_utf8(first.clone()).expect("the dump is text");
    assert!(text.starts_with("webissued-dump 1\n"));
    assert!(text.lines().all(|l| !l.contains('\r')));
    assert!(text.lines().last().unwrap().starts_with("end "));
    assert!(text.contains("\nr user-login/alice :"), "users are records");
    assert!(text.contains("\nf "), "the attachment is in the dump");

    let copy = tempfile::tempdir().unwrap();
    let new = copy.path().join("data");
    ok(tool(&["import"], &new, &first));
    // Import refuses a directory that already has data.
    assert!(!tool(&["import"], &new, &first).status.success());
    let second = ok(tool(&["export"], &new, b""));
    assert!(first == second, "second export differs from the first");

    // A cut dump is refused rather than half imported.
    let cut = copy.path().join("cut");
    assert!(
        !tool(&["import"], &cut, &first[..first.len() / 2])
            .status
            .success()
    );

    // The imported directory serves the same data, passwords included.
    let imported = start_on(&new);
    let mut alice = Client::connect(imported.1);
    alice.login("alice", "alicepw");
    alice.write_raw(format!("GET ATTACHMENT {file}\n").as_bytes());
    let mut head = String::new();
    let mut reader = std::io::BufReader::new(alice.stream().try_clone().unwrap());
    std::io::BufRead::read_line(&mut reader, &mut head).unwrap();
    assert_eq!(head.trim_end(), format!("DATA {}", binary.len()));
    let mut body = vec![0; binary.len()];
    std::io::Read::read_exact(&mut reader, &mut body).unwrap();
    assert!(body == binary, "attachment bytes differ after import");
    let mut rest = String::new();
    std::io::BufRead::read_line(&mut reader, &mut rest).unwrap();
    std::io::BufRead::read_line(&mut reader, &mut rest).unwrap();
    let mut alice = Client::connect(imported.1);
    alice.login("alice", "alicepw");
    let issues = alice.send("LIST ISSUES 1 0");
    assert_eq!(issues.iter().filter(|l| l.starts_with("I ")).count(), 20);
    assert!(alice.one("ADD ISSUE 1 'after import'").starts_with("ID "));
}

/// A server on `data` (the test's own directory), killed when dropped.
struct Running(std::process::Child, std::net::SocketAddr);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_on(data: &Path) -> Running {
    start_on_with(data, "")
}

fn start_on_with(data: &Path, config: &str) -> Running {
    use std::io::BufRead;
    let conf = data.with_extension("toml");
    std::fs::write(&conf, config).unwrap();
    let mut child = bin()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .arg("--data")
        .arg(data)
        .arg("--config")
        .arg(&conf)
        .env("WEBISSUED_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let line = lines.next().unwrap().unwrap();
    let addr = line
        .strip_prefix("webissued listening on ")
        .unwrap()
        .parse()
        .unwrap();
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
    Running(child, addr)
}

fn check(data: &Path) -> Output {
    tool(&["check"], data, b"")
}

#[test]
fn check_finds_a_missing_index_entry() {
    let mut server = Server::start();
    populate(&server);
    let data = server.data_dir();
    assert_eq!(server.terminate(), Some(0));
    let out = check(&data);
    assert!(
        out.status.success(),
        "a server's own data passes: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(": 0 problems"));

    // The same data without alice's login index entry.
    let dump = String::from_utf8(ok(tool(&["export"], &data, b""))).unwrap();
    let mut lines: Vec<&str> = dump.lines().collect();
    let before = lines.len();
    lines.retain(|l| !l.starts_with("r user-login/alice "));
    assert_eq!(lines.len(), before - 1);
    let end = lines.pop().unwrap();
    let mut counts: Vec<u64> = end[4..].split(' ').map(|n| n.parse().unwrap()).collect();
    counts[0] -= 1;
    let end = format!("end {} {} {}", counts[0], counts[1], counts[2]);
    lines.push(&end);
    let broken = lines.join("\n") + "\n";
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("data");
    ok(tool(&["import"], &bad, broken.as_bytes()));
    let out = check(&bad);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("user-login/alice missing"), "{text}");
}

#[test]
fn backup_under_write_load_is_consistent_and_complete() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    let server = Server::start_with(&format!(
        "[server]\nbackup_dir = {:?}\ncheckpoint_wal_mb = 1\n",
        backups.display().to_string()
    ));
    populate(&server);
    // Enough data for the checkpoint and several log files to exist.
    let mut admin = server.admin();
    for i in 0..300 {
        admin.id(&format!("ADD ISSUE 1 'seed {i} {}'", "x".repeat(60)));
    }
    // Writers add issues until told to stop; each keeps what was acknowledged, when.
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<(std::time::Instant, u64)>>> = Arc::default();
    let slowest = Arc::new(Mutex::new(std::time::Duration::ZERO));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (stop, acked, slowest) = (stop.clone(), acked.clone(), slowest.clone());
            let mut c = server.admin();
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let sent = std::time::Instant::now();
                    let id = c.id(&format!("ADD ISSUE 1 'load {w} {n}'")) as u64;
                    let took = sent.elapsed();
                    let mut s = slowest.lock().unwrap();
                    *s = (*s).max(took);
                    acked.lock().unwrap().push((std::time::Instant::now(), id));
                }
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let sent = std::time::Instant::now();
    let out = bin()
        .args([
            "backup",
            "--server",
            &server.addr.to_string(),
            "--name",
            "b1",
        ])
        .env("WEBISSUED_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .output()
        .unwrap();
    let done = std::time::Instant::now();
    ok(out);
    std::thread::sleep(std::time::Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let before: Vec<u64> = acked
        .iter()
        .filter(|(t, _)| *t < sent)
        .map(|(_, id)| *id)
        .collect();
    let during = acked
        .iter()
        .filter(|(t, _)| *t >= sent && *t <= done)
        .count();
    let slowest = *slowest.lock().unwrap();
    println!(
        "backup took {:?}; {} writes acknowledged before it, {during} during it; slowest write {slowest:?}",
        done - sent,
        before.len()
    );
    assert!(!before.is_empty());
    assert!(
        slowest < std::time::Duration::from_secs(1),
        "a write waited {slowest:?}"
    );
    // A second backup of the same name is refused.
    let again = bin()
        .args([
            "backup",
            "--server",
            &server.addr.to_string(),
            "--name",
            "b1",
        ])
        .env("WEBISSUED_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .output()
        .unwrap();
    assert!(!again.status.success());
    // Non-administrators may not.
    let mut c = server.connect();
    c.login("alice", "alicepw");
    assert!(c.one("BACKUP 'x'").starts_with("ERROR 301"));
    drop(server);

    let copy = backups.join("b1");
    let out = check(&copy);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let restored = start_on(&copy);
    let mut admin = Client::connect(restored.1);
    admin.login("admin", ADMIN_PASSWORD);
    let listed: std::collections::HashSet<u64> = admin
        .send("LIST ISSUES 1 0")
        .iter()
        .filter_map(|l| l.strip_prefix("I "))
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect();
    let missing: Vec<&u64> = before.iter().filter(|id| !listed.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged before the backup, missing: {missing:?}"
    );
}

/// `GET path` over plain HTTP/1.1; the status code and the body.
fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_string)
        })
        .unwrap_or_default();
    (status, content_type, body.to_string())
}

/// A sample: its name, labels and value.
type Sample = (String, Vec<(String, String)>, f64);

/// A strict reader of the Prometheus text format 0.0.4: every sample line is
/// `name{label="value",...} number`, every family has HELP and TYPE before its samples,
/// histogram buckets are cumulative and end with `le="+Inf"` equal to `_count`.
/// Returns (family, labels, value) of each sample.
fn parse_exposition(text: &str) -> Vec<Sample> {
    let mut types: std::collections::HashMap<String, String> = Default::default();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, name, what) = (parts.next().unwrap(), parts.next().unwrap(), parts.next());
            match kind {
                "HELP" => assert!(what.is_some_and(|h| !h.is_empty()), "{line}"),
                "TYPE" => {
                    let t = what.unwrap();
                    assert!(["counter", "gauge", "histogram"].contains(&t), "{line}");
                    assert!(
                        types.insert(name.to_string(), t.to_string()).is_none(),
                        "{line}"
                    );
                }
                _ => panic!("bad comment {line:?}"),
            }
            continue;
        }
        assert!(!line.is_empty(), "empty line in the exposition");
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => {
                let l = l.strip_suffix('}').unwrap_or_else(|| panic!("{line:?}"));
                let labels = l
                    .split(',')
                    .map(|kv| {
                        let (k, v) = kv.split_once('=').unwrap();
                        let v = v
                            .strip_prefix('"')
                            .and_then(|v| v.strip_suffix('"'))
                            .unwrap();
                        assert!(!v.contains('"') && !v.contains('\\'), "{line:?}");
                        (k.to_string(), v.to_string())
                    })
                    .collect();
                (n.to_string(), labels)
            }
            None => (series.to_string(), Vec::new()),
        };
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line:?}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(&name)
            .to_string();
        assert!(types.contains_key(&family), "no TYPE before {line:?}");
        samples.push((name, labels, value));
    }
    // Buckets rise and end at the count.
    let mut last: Option<Sample> = None;
    for (name, labels, v) in &samples {
        if let Some(base) = name.strip_suffix("_bucket") {
            let others: Vec<_> = labels.iter().filter(|(k, _)| k != "le").cloned().collect();
            if let Some((n, l, prev)) = &last
                && n == base
                && *l == others
            {
                assert!(v >= prev, "buckets of {base} fall");
            }
            if labels.iter().any(|(k, v)| k == "le" && v == "+Inf") {
                let count = samples
                    .iter()
                    .find(|(n, l, _)| *n == format!("{base}_count") && *l == others)
                    .unwrap();
                assert_eq!(count.2, *v, "{base}: +Inf bucket differs from _count");
            }
            last = Some((base.to_string(), others, *v));
        }
    }
    samples
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(a, b)| a == k && b == v))
        })
        .unwrap_or_else(|| panic!("no sample {name} {labels:?}"))
        .2
}

#[test]
fn metrics_are_off_by_default_and_parse_when_on() {
    let mut off = Server::start_with("[subscribe]\nenabled = true\n");
    let (status, _, _) = http_get(off.http_addr(), "/metrics");
    assert_eq!(status, 404);

    let mut server = Server::start_with("[server]\nmetrics = true\n");
    populate(&server);
    let mut c = server.admin();
    assert!(c.one("LIST ISSUES 999 0").starts_with("ERROR"));
    assert!(c.one("FROB NICATE").starts_with("ERROR 401"));
    let (status, content_type, body) = http_get(server.http_addr(), "/metrics");
    assert_eq!(status, 200, "{body}");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let samples = parse_exposition(&body);
    assert!(value(&samples, "webissued_connections", &[("listener", "tcp")]) >= 1.0);
    assert!(
        value(
            &samples,
            "webissued_connections_accepted_total",
            &[("listener", "tcp")]
        ) >= 3.0
    );
    assert_eq!(
        value(
            &samples,
            "webissued_commands_total",
            &[("command", "ADD ISSUE"), ("outcome", "ok")]
        ),
        20.0
    );
    assert_eq!(
        value(
            &samples,
            "webissued_commands_total",
            &[("command", "LIST ISSUES"), ("outcome", "error")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            "webissued_commands_total",
            &[("command", "UNKNOWN"), ("outcome", "error")]
        ),
        1.0
    );
    assert!(
        !body.contains("FROB"),
        "unknown verbs are not kept as names"
    );
    assert_eq!(
        value(
            &samples,
            "webissued_command_duration_seconds_count",
            &[("command", "ADD ISSUE")]
        ),
        20.0
    );
    let batches = value(&samples, "webissued_durable_batches_total", &[]);
    assert!(batches >= 40.0, "{batches}");
    assert!(value(&samples, "webissued_durable_flushes_total", &[]) >= 1.0);
    assert!(value(&samples, "webissued_fsync_seconds_count", &[]) >= 1.0);
    for name in [
        "webissued_log_backlog_bytes",
        "webissued_checkpoint_lag_batches",
        "webissued_outbox_oldest_age_seconds",
        "webissued_notification_passes_total",
    ] {
        value(&samples, name, &[]);
    }
    value(&samples, "webissued_outbox_depth", &[("state", "queued")]);
    value(&samples, "webissued_mails_total", &[("result", "sent")]);

    // Python's prometheus_client parser reads it too (scripts/test-deps.d/prometheus.sh).
    // Debian's interpreter, where the apt package puts the module.
    let interpreter = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let python = Command::new(interpreter)
        .args([
            "-c",
            "import sys\nfrom prometheus_client.parser import text_string_to_metric_families as p\n\
             fams = list(p(sys.stdin.read()))\n\
             print(len(fams), sum(len(f.samples) for f in fams))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut python) = python else {
        panic!("python3 is needed (scripts/test installs it)");
    };
    {
        use std::io::Write;
        python
            .stdin
            .take()
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
    }
    let out = python.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client refused the exposition: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let counts = String::from_utf8_lossy(&out.stdout);
    let mut counts = counts
        .split_whitespace()
        .map(|n| n.parse::<usize>().unwrap());
    let families = body.lines().filter(|l| l.starts_with("# TYPE ")).count();
    assert_eq!(counts.next(), Some(families));
    assert_eq!(counts.next(), Some(samples.len()));
}
