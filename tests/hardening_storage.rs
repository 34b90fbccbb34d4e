//! Hardening of the data directory and the log, against the real server binary.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::Server;

/// A second server on the same data directory refuses to start, names the directory and
/// the PID holding it, exits non-zero within a second, and the first keeps its writes.
#[test]
fn second_server_on_one_data_directory_is_refused() {
    let mut s = Server::start();
    let mut admin = s.admin();
    let id = admin.id("ADD USER 'first' 'First Writer' 'pw123456'");
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_webissued"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .arg("--data")
        .arg(s.data_dir())
        .env("WEBISSUED_ADMIN_PASSWORD", "other")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "second server started: {stderr}");
    assert!(took < Duration::from_secs(1), "took {took:?} to refuse");
    assert!(
        stderr.contains(&s.data_dir().display().to_string()),
        "directory not named: {stderr}"
    );
    assert!(
        stderr.contains(&format!("process {}", s.pid())),
        "holder's PID not named: {stderr}"
    );
    // The first server still serves and its acknowledged write survives a restart.
    assert!(admin.send("LIST USERS")[0].starts_with("U 1 "));
    s.restart();
    let mut admin = s.admin();
    let users = admin.send("LIST USERS");
    assert!(
        users
            .iter()
            .any(|l| l.starts_with(&format!("U {id} 'first'"))),
        "{users:?}"
    );
}

/// The data directory's log files (`wal/*.log`), oldest first.
fn log_files(data: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(data.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

/// Start offsets of the records of a log file's bytes (header: length u32, crc u32, seq u64).
fn record_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut at = 0;
    while at + 16 <= bytes.len() && bytes[at..at + 16].iter().any(|&b| b != 0) {
        starts.push(at);
        at += 16 + u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    }
    starts
}

/// Runs `webissued serve` on `data` and waits (up to 30 s) for it to exit on its own:
/// (exit code, stderr, time taken). Panics if it keeps running.
fn serve_until_exit(data: &std::path::Path) -> (Option<i32>, String, Duration) {
    let err_path = data.parent().unwrap().join("refused.log");
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_webissued"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .arg("--data")
        .arg(data)
        .env("WEBISSUED_ADMIN_PASSWORD", support::ADMIN_PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let took = started.elapsed();
            return (
                status.code(),
                std::fs::read_to_string(&err_path).unwrap(),
                took,
            );
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the server did not exit: {}",
                std::fs::read_to_string(&err_path).unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A folder with one issue; returns the issue id.
fn one_issue(admin: &mut support::Client) -> i64 {
    let t = admin.id("ADD TYPE 'Bug'");
    let p = admin.id("ADD PROJECT 'Storage'");
    let f = admin.id(&format!("ADD FOLDER {p} {t} 'Bugs'"));
    admin.id(&format!("ADD ISSUE {f} 'the issue'"))
}

/// The texts of the issue's comments.
fn comment_texts(c: &mut support::Client, issue: i64) -> Vec<String> {
    c.send(&format!("GET DETAILS {issue} 0"))
        .into_iter()
        .filter(|l| l.starts_with("C "))
        .filter_map(|l| l.split('\'').nth(1).map(str::to_string))
        .collect()
}

/// One flipped bit in a closed log file (60 acknowledged comments, the 16th damaged): the
/// server refuses to start, naming the file and the damaged record's offset, and keeps the
/// file; `webissued salvage` keeps the 15 comments before the damage, sets the file aside,
/// says what was lost, and the server then starts and takes writes that survive kill -9.
#[test]
fn a_damaged_closed_log_file_stops_the_start_until_salvaged() {
    let mut s = Server::start();
    let mut admin = s.admin();
    let issue = one_issue(&mut admin);
    for i in 0..60 {
        admin.id(&format!("ADD COMMENT {issue} 'comment-{i:03}'"));
    }
    // Never beside a running server: salvage takes the data directory's lock.
    let out = Command::new(env!("CARGO_BIN_EXE_webissued"))
        .arg("salvage")
        .arg("--data")
        .arg(s.data_dir())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("in use"),
        "{stderr}"
    );
    s.kill9();
    let data = s.data_dir();
    let files = log_files(&data);
    let newest = files.last().unwrap().clone();
    let mut bytes = std::fs::read(&newest).unwrap();
    let marker = b"comment-015";
    let at = bytes
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("the comment's record");
    let record = *record_starts(&bytes)
        .iter()
        .rfind(|&&start| start <= at)
        .unwrap();
    bytes[at] ^= 0x04; // one bit
    std::fs::write(&newest, &bytes).unwrap();
    // A newer (empty) file, as right after a rotation: the damaged one is closed.
    let generation =
        u64::from_str_radix(newest.file_stem().unwrap().to_str().unwrap(), 16).unwrap();
    let next = data
        .join("wal")
        .join(format!("{:016x}.log", generation + 1));
    std::fs::write(&next, b"").unwrap();

    let (code, stderr, took) = serve_until_exit(&data);
    assert_ne!(code, Some(0), "started on a damaged log: {stderr}");
    let refusal = stderr
        .lines()
        .find(|l| l.starts_with("webissued: damaged log file"))
        .unwrap_or_else(|| panic!("no refusal line: {stderr}"));
    assert!(refusal.contains(&newest.display().to_string()), "{refusal}");
    assert!(refusal.contains(&format!("at byte {record} ")), "{refusal}");
    assert!(refusal.contains("webissued salvage"), "{refusal}");
    println!("refused in {took:?}: {refusal}");
    assert_eq!(
        std::fs::read(&newest).unwrap(),
        bytes,
        "the damaged file is kept as it was"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_webissued"))
        .arg("salvage")
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "salvage failed: {report} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
    assert!(report.contains("recovered"), "{report}");
    let lost: u64 = report
        .split(" acknowledged batches lost")
        .next()
        .and_then(|l| l.rsplit(char::is_whitespace).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no lost count: {report}"));
    assert_eq!(lost, 45, "comments 15..59, one batch each: {report}");
    let kept = std::path::PathBuf::from(format!("{}.damaged", newest.display()));
    assert_eq!(std::fs::read(&kept).unwrap(), bytes, "damaged copy kept");
    assert!(!next.exists(), "the file after the damage is moved aside");

    // Salvage again: nothing left to do.
    let out = Command::new(env!("CARGO_BIN_EXE_webissued"))
        .arg("salvage")
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    let again = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && again.contains("no damage"),
        "{again}"
    );

    s.restart();
    let mut admin = s.admin();
    let want: Vec<String> = (0..15).map(|i| format!("comment-{i:03}")).collect();
    assert_eq!(comment_texts(&mut admin, issue), want);
    admin.id(&format!("ADD COMMENT {issue} 'after salvage'"));
    s.restart();
    let mut admin = s.admin();
    let texts = comment_texts(&mut admin, issue);
    assert_eq!(texts.len(), 16);
    assert_eq!(texts.last().unwrap(), "after salvage");
}

/// A torn tail of the newest file (a crash during its last flush) is a normal recovery,
/// also after a second crash, when that file is no longer the newest.
#[test]
fn a_torn_tail_of_the_newest_log_file_still_recovers() {
    let mut s = Server::start();
    let mut admin = s.admin();
    let issue = one_issue(&mut admin);
    for i in 0..10 {
        admin.id(&format!("ADD COMMENT {issue} 'comment-{i:03}'"));
    }
    s.kill9();
    let newest = log_files(&s.data_dir()).pop().unwrap();
    let bytes = std::fs::read(&newest).unwrap();
    let last = *record_starts(&bytes).last().unwrap();
    std::fs::write(&newest, &bytes[..last + 20]).unwrap();
    s.restart();
    let mut admin = s.admin();
    let texts = comment_texts(&mut admin, issue);
    let want: Vec<String> = (0..9).map(|i| format!("comment-{i:03}")).collect();
    assert_eq!(texts, want, "everything but the torn record");
    admin.id(&format!("ADD COMMENT {issue} 'after the crash'"));
    s.restart();
    let mut admin = s.admin();
    let texts = comment_texts(&mut admin, issue);
    assert_eq!(texts.last().unwrap(), "after the crash", "{}", s.log());
    assert!(!s.log().contains("damaged"), "{}", s.log());
}

/// A tmpfs of `size` mounted at `dir`, unmounted (lazily) when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &std::path::Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A server on `data` (config `webissued.toml` and log `server.log` in `outside`); killed
/// with SIGKILL when dropped.
struct OnDir {
    child: std::process::Child,
    addr: std::net::SocketAddr,
}

impl OnDir {
    fn start(data: &std::path::Path, outside: &std::path::Path) -> OnDir {
        use std::io::BufRead;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(outside.join("server.log"))
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_webissued"))
            .args(["serve", "--config"])
            .arg(outside.join("webissued.toml"))
            .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
            .arg("--data")
            .arg(data)
            .env("WEBISSUED_ADMIN_PASSWORD", support::ADMIN_PASSWORD)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let line = lines.next().expect("server output").unwrap();
        let addr = line
            .strip_prefix("webissued listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        OnDir { child, addr }
    }

    fn admin(&self) -> support::Client {
        let mut c = support::Client::connect(self.addr);
        c.login("admin", support::ADMIN_PASSWORD);
        c
    }
}

impl Drop for OnDir {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fills the file system holding `dir` with `dir/filler` until a write fails.
fn fill_disk(dir: &std::path::Path) -> u64 {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("filler")).unwrap();
    let chunk = vec![0x5au8; 64 << 10];
    let mut written = 0;
    while f.write_all(&chunk).is_ok() {
        written += chunk.len() as u64;
    }
    let _ = f.sync_all();
    written
}

/// Disk full (a 48 MiB tmpfs the test mounts, then fills): the writer gets `ERROR 500 '…disk
/// full…'` within seconds instead of waiting forever, reads go on being served, no reply
/// ever shows a comment that was not acknowledged (a reader polls GET DETAILS throughout),
/// later writes are refused at once; once space is freed writes resume by themselves, and
/// everything acknowledged survives kill -9 and a restart.
#[test]
fn a_full_disk_fails_writes_quickly_keeps_reads_and_recovers() {
    let root = tempfile::tempdir().unwrap();
    let mnt = root.path().join("mnt");
    let _fs = match Tmpfs::mount(&mnt, "48m") {
        Ok(fs) => fs,
        Err(e) => {
            println!(
                "SKIPPED a_full_disk_fails_writes_quickly_keeps_reads_and_recovers: cannot mount a tmpfs ({e}); run as root to test disk full"
            );
            return;
        }
    };
    let data = mnt.join("data");
    // Small log files, so the writes soon need a new one.
    std::fs::write(
        root.path().join("webissued.toml"),
        "[server]\ncheckpoint_wal_mb = 1\n",
    )
    .unwrap();
    let server = OnDir::start(&data, root.path());
    let log = || std::fs::read_to_string(root.path().join("server.log")).unwrap_or_default();
    let mut admin = server.admin();
    let issue = one_issue(&mut admin);
    let mut acked: Vec<String> = Vec::new();
    for i in 0..20 {
        let text = format!("before-{i}");
        admin.id(&format!("ADD COMMENT {issue} '{text}'"));
        acked.push(text);
    }
    // Past the first log file: its successors are prepared (filled with zeros) ahead, so
    // the writes while the disk is full first use that room, then fail.
    let pad = "x".repeat(16 << 10);
    for i in 0..80 {
        let text = format!("early-{i}");
        admin.id(&format!("ADD COMMENT {issue} '{text} {pad}'"));
        acked.push(text);
    }
    std::thread::sleep(Duration::from_millis(300));
    let filled = fill_disk(&mnt);
    println!("disk filled with {} MiB", filled >> 20);

    // A reader polling the issue all along: what it sees.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        let mut c = server.admin();
        std::thread::spawn(move || {
            let (mut seen, mut replies, mut errors) = (std::collections::HashSet::new(), 0, 0);
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                let reply = c.send(&format!("GET DETAILS {issue} 0"));
                replies += 1;
                if reply[0].starts_with("ERROR") {
                    errors += 1;
                    continue;
                }
                for l in reply.iter().filter(|l| l.starts_with("C ")) {
                    let text = l.split('\'').nth(1).unwrap().to_string();
                    seen.insert(text.split(' ').next().unwrap().to_string());
                }
            }
            (seen, replies, errors)
        })
    };

    // A second writer with short comments, so more than one batch is in flight.
    let parallel = {
        let mut c = server.admin();
        std::thread::spawn(move || {
            let (mut acked, mut failed) = (Vec::new(), Vec::new());
            for i in 0..100_000 {
                let text = format!("par-{i}");
                let reply = c.one(&format!("ADD COMMENT {issue} '{text}'"));
                if reply.starts_with("ID ") {
                    acked.push(text);
                } else {
                    assert!(reply.contains("disk full"), "{reply}");
                    failed.push(text);
                    break;
                }
            }
            (acked, failed)
        })
    };
    // Comments of 16 KB until one fails; then on, while the server may still find room
    // (a log file prepared before the disk filled lets writes resume), until they have
    // failed for 1.5 s in a row (three probes).
    let mut failed = Vec::new();
    let (mut slowest, mut first_error) = (Duration::ZERO, None);
    let (mut in_a_row, mut refused_in, mut row_since) = (0, Duration::ZERO, None);
    for i in 0..5000 {
        let text = format!("during-{i}");
        let started = Instant::now();
        let reply = admin.one(&format!("ADD COMMENT {issue} '{text} {pad}'"));
        let took = started.elapsed();
        slowest = slowest.max(took);
        if reply.starts_with("ID ") {
            acked.push(text);
            (in_a_row, row_since) = (0, None);
            continue;
        }
        assert!(
            reply.starts_with("ERROR 500 ") && reply.contains("disk full"),
            "{reply}"
        );
        assert!(took < Duration::from_secs(5), "took {took:?} to fail");
        if first_error.is_none() {
            println!("write {i} answered {reply:?} after {took:?}");
            first_error = Some(took);
        }
        failed.push(text);
        refused_in = took;
        in_a_row += 1;
        let since = *row_since.get_or_insert(started);
        if in_a_row >= 3 && since.elapsed() >= Duration::from_millis(1500) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        in_a_row >= 3,
        "writes kept succeeding on a full disk: {}",
        log()
    );
    let (par_acked, par_failed) = parallel.join().unwrap();
    assert_eq!(
        par_failed.len(),
        1,
        "the parallel writer stopped at its error"
    );
    failed.extend(par_failed);
    let mut expect_sets: std::collections::HashSet<String> = acked.iter().cloned().collect();
    expect_sets.extend(par_acked.iter().cloned());
    // Once the log is known to be full, writes are refused at once (a checkpoint that
    // removes a folded file may give room back meanwhile: no write is tried here).
    assert!(refused_in < Duration::from_secs(1), "{refused_in:?}");
    // Reads answer.
    let mut other = server.admin();
    let started = Instant::now();
    let texts: Vec<String> = comment_texts(&mut other, issue)
        .into_iter()
        .map(|t| t.split(' ').next().unwrap().to_string())
        .collect();
    let read_in = started.elapsed();
    let shown: std::collections::HashSet<String> = texts.iter().cloned().collect();
    assert_eq!(shown.len(), texts.len());
    assert_eq!(
        shown, expect_sets,
        "reads show exactly the acknowledged comments"
    );
    assert!(other.send("LIST PROJECTS")[0].starts_with("P "));
    stop.store(true, std::sync::atomic::Ordering::Release);
    let (seen, replies, read_errors) = reader.join().unwrap();
    for text in &seen {
        assert!(
            expect_sets.contains(text),
            "a reply showed {text}, never acknowledged"
        );
    }
    for text in &failed {
        assert!(
            !seen.contains(text) && !shown.contains(text),
            "{text} shown"
        );
    }
    println!(
        "while full: {} large and {} small writes acknowledged, slowest {slowest:?}; refused in {refused_in:?}; read in {read_in:?}; poller: {replies} replies, {read_errors} ERROR",
        acked.len() - 100,
        par_acked.len()
    );

    // Space comes back: writes resume by themselves.
    std::fs::remove_file(mnt.join("filler")).unwrap();
    let freed = Instant::now();
    let recovered = loop {
        let reply = admin.one(&format!("ADD COMMENT {issue} 'after-space'"));
        if reply.starts_with("ID ") {
            acked.push("after-space".into());
            break freed.elapsed();
        }
        assert!(
            freed.elapsed() < Duration::from_secs(10),
            "no recovery: {reply} {}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    println!("writes resumed {recovered:?} after space was freed");
    for l in log().lines() {
        if l.contains("writes resume") || l.contains("discarded and taken back") {
            println!("server: {}", l.split("webissued::").nth(1).unwrap_or(l));
        }
    }
    for i in 0..5 {
        let text = format!("later-{i}");
        admin.id(&format!("ADD COMMENT {issue} '{text}'"));
        acked.push(text);
    }
    // Everything acknowledged survives kill -9.
    drop(server);
    let server = OnDir::start(&data, root.path());
    let mut admin = server.admin();
    let texts: Vec<String> = comment_texts(&mut admin, issue)
        .into_iter()
        .map(|t| t.split(' ').next().unwrap().to_string())
        .collect();
    expect_sets.extend(acked.iter().cloned());
    let shown: std::collections::HashSet<String> = texts.iter().cloned().collect();
    assert_eq!(shown.len(), texts.len());
    assert_eq!(shown, expect_sets, "{}", log());
    // The large writer's comments in its order (ids increase).
    let large: Vec<&String> = texts.iter().filter(|t| !t.starts_with("par-")).collect();
    assert_eq!(large, acked.iter().collect::<Vec<_>>());
    admin.id(&format!("ADD COMMENT {issue} 'after restart'"));
    drop(server);
    drop(_fs);
}
