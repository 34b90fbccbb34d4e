//! The checkpoint kept in sled as large sorted chunks (protocol-spec/storage.md): restarts
//! after many checkpoints, kill -9 while checkpoints run, and data directories of the first
//! layout (one sled key per record), which open and are converted.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{Client, Server};
use webissued::store::{checkpoint, chunks};

/// Small log files and a small backlog: checkpoints run every megabyte of log.
const SMALL: &str = "[server]\ncheckpoint_wal_mb = 1\ncheckpoint_backlog_mb = 1\n";

fn export(data: &Path) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_webissued"))
        .args(["export", "--data"])
        .arg(data)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "export: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn check(data: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_webissued"))
        .args(["check", "--data"])
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "check: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Checkpoints the server's log reports that wrote chunks.
fn checkpoints(server: &Server) -> usize {
    server
        .log()
        .lines()
        .filter(|l| l.contains("checkpoint") && l.contains("up_to"))
        .count()
}

fn wait_for_checkpoints(server: &Server, more_than: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = checkpoints(server);
        if n > more_than {
            return n;
        }
        assert!(Instant::now() < deadline, "no checkpoint: {}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn comment_texts(c: &mut Client, issue: i64) -> Vec<String> {
    c.send(&format!("GET DETAILS {issue} 0"))
        .into_iter()
        .filter(|l| l.starts_with("C "))
        .map(|l| l.split('\'').nth(1).unwrap().to_string())
        .collect()
}

/// Issues, values, renames (keys moved: removals) and long comments, over several rounds
/// that each end with a checkpoint.
fn write_rounds(server: &Server, rounds: std::ops::Range<usize>) {
    let mut admin = server.admin();
    if admin
        .send("LIST PROJECTS")
        .iter()
        .all(|l| !l.starts_with("P "))
    {
        assert_eq!(admin.id("ADD PROJECT 'Chunks'"), 1);
        assert_eq!(admin.id("ADD FOLDER 1 1 'Bugs'"), 1);
    }
    let pad = "x".repeat(8 << 10);
    for round in rounds {
        let before = checkpoints(server);
        for i in 0..40 {
            let issue = admin.id(&format!("ADD ISSUE 1 'round {round} issue {i}'"));
            for c in 0..4 {
                admin.id(&format!("ADD COMMENT {issue} 'r{round}i{i}c{c} {pad}'"));
            }
            let r = admin.one(&format!("RENAME ISSUE {issue} 'renamed-{round}-{i}'"));
            assert!(!r.starts_with("ERROR"), "{r}");
            admin.one(&format!("SET VALUE {issue} 1 'Active'"));
        }
        admin.id(&format!("ADD USER 'u{round}' 'User {round}' 'pw'"));
        wait_for_checkpoints(server, before);
    }
}

/// After many checkpoints, a kill -9 (the log replayed on top of the chunks) and a clean
/// stop (a last checkpoint, no log left) give the same export, which `check` passes.
#[test]
fn restarts_after_many_checkpoints_export_the_same() {
    let mut server = Server::start_with(SMALL);
    write_rounds(&server, 0..6);
    assert!(checkpoints(&server) >= 6, "{}", server.log());
    server.kill9();
    let after_kill = export(&server.data_dir());
    server.restart();
    write_rounds(&server, 6..8);
    let mut admin = server.admin();
    let issue = admin.id("ADD ISSUE 1 'last-one'");
    drop(admin);
    assert_eq!(server.terminate(), Some(0));
    // The clean stop's last checkpoint leaves no log record to replay.
    let wal = server.data_dir().join("wal");
    let left: u64 = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert_eq!(left, 0, "log bytes left after a clean stop");
    let clean = export(&server.data_dir());
    let again = export(&server.data_dir());
    assert_eq!(clean, again, "two exports of a stopped directory differ");
    assert!(clean.len() > after_kill.len());
    check(&server.data_dir());
    let text = String::from_utf8_lossy(&clean);
    assert!(text.contains("last-one"));
    // The state after the kill is a prefix of history: its issues are all still there.
    let kill_text = String::from_utf8_lossy(&after_kill);
    for name in ["renamed-5-39", "renamed-0-0", "r5i39c3"] {
        assert!(kill_text.contains(name), "{name} lost by kill -9");
        assert!(text.contains(name), "{name} lost");
    }
    server.restart();
    let mut admin = server.admin();
    assert_eq!(
        admin.send(&format!("GET DETAILS {issue} 0"))[0]
            .split('\'')
            .nth(1),
        Some("last-one")
    );
}

/// Writers adding long comments while the server is killed at moments spread over its
/// checkpoints: every acknowledged comment is there after each restart.
#[test]
fn kill9_while_checkpoints_run_loses_nothing_acknowledged() {
    let mut server = Server::start_with(SMALL);
    let mut admin = server.admin();
    assert_eq!(admin.id("ADD PROJECT 'Chunks'"), 1);
    assert_eq!(admin.id("ADD FOLDER 1 1 'Bugs'"), 1);
    let issue = admin.id("ADD ISSUE 1 'target'");
    drop(admin);
    let mut acked: Vec<String> = Vec::new();
    let seed = support::seed_from_env("CHUNKS_SEED");
    let pad = "y".repeat(12 << 10);
    for round in 0..5u64 {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let (addr, stop, pad) = (server.addr, stop.clone(), pad.clone());
                std::thread::spawn(move || {
                    let mut c = Client::connect(addr);
                    c.login("admin", support::ADMIN_PASSWORD);
                    let mut mine = Vec::new();
                    let mut i = 0;
                    while !stop.load(std::sync::atomic::Ordering::Acquire) {
                        let text = format!("k{round}w{w}n{i}");
                        c.write_raw(format!("ADD COMMENT {issue} '{text} {pad}'\n").as_bytes());
                        match c.try_read_reply() {
                            Some(r) if r[0].starts_with("ID ") => mine.push(text),
                            _ => break,
                        }
                        i += 1;
                    }
                    mine
                })
            })
            .collect();
        // Killed between 1 and 3 s in: several checkpoints of 1 MiB files each.
        let wait = 1000 + (seed.wrapping_mul(round + 7) % 2000);
        std::thread::sleep(Duration::from_millis(wait));
        server.kill9();
        stop.store(true, std::sync::atomic::Ordering::Release);
        for w in writers {
            acked.extend(w.join().unwrap());
        }
        server.restart();
        let mut c = server.admin();
        let shown: std::collections::HashSet<String> = comment_texts(&mut c, issue)
            .into_iter()
            .map(|t| t.split(' ').next().unwrap().to_string())
            .collect();
        for t in &acked {
            assert!(shown.contains(t), "round {round}: {t} lost; seed {seed}");
        }
    }
    assert!(checkpoints(&server) > 0, "{}", server.log());
    server.kill9();
    check(&server.data_dir());
}

/// A data directory whose sled holds the first layout (one key per record in the tree
/// `data`, the folded sequence under `~checkpoint`), with log records not folded yet, opens
/// with everything; its first checkpoint converts it to chunks and drops the old tree.
#[test]
fn a_one_key_per_record_directory_opens_and_is_converted() {
    let mut server = Server::start_with(SMALL);
    write_rounds(&server, 0..2);
    let mut admin = server.admin();
    let issue = admin.id("ADD ISSUE 1 'before-the-conversion'");
    drop(admin);
    assert_eq!(server.terminate(), Some(0));
    let data = server.data_dir();
    let original = export(&data);

    // Rewrite db/ in the first layout, from the chunks.
    let db_dir = data.join("db");
    let (records, folded) = {
        let (db, tree) = checkpoint::open_sled(&db_dir, 1 << 20).unwrap();
        let folded = checkpoint::folded_seq(&db, &tree).unwrap();
        let (packed, _) = chunks::load(&tree).unwrap().unwrap();
        let records: Vec<(Vec<u8>, Vec<u8>)> = (0..packed.len())
            .map(|i| {
                let (k, v) = packed.entry(i);
                (k.to_vec(), v.to_vec())
            })
            .collect();
        (records, folded)
    };
    assert!(records.len() > 100);
    std::fs::remove_dir_all(&db_dir).unwrap();
    {
        let db = sled::Config::new().path(&db_dir).open().unwrap();
        let tree = db.open_tree(chunks::OLD_TREE).unwrap();
        for (k, v) in &records {
            tree.insert(&k[..], &v[..]).unwrap();
        }
        tree.insert(chunks::OLD_CHECKPOINT, &folded.to_be_bytes()[..])
            .unwrap();
        db.flush().unwrap();
    }

    // Opens with everything, takes writes, and converts.
    let before = checkpoints(&server);
    server.restart();
    let mut admin = server.admin();
    assert_eq!(
        admin.send(&format!("GET DETAILS {issue} 0"))[0]
            .split('\'')
            .nth(1),
        Some("before-the-conversion")
    );
    let after = admin.id("ADD ISSUE 1 'after-the-conversion'");
    drop(admin);
    wait_for_checkpoints(&server, before);
    assert!(
        server
            .log()
            .contains("the old one-key-per-record layout was removed"),
        "{}",
        server.log()
    );
    server.kill9();
    {
        let (db, tree) = checkpoint::open_sled(&db_dir, 1 << 20).unwrap();
        assert!(chunks::old_tree(&db).unwrap().is_none(), "old tree left");
        assert!(chunks::manifest(&tree).unwrap().is_some());
    }
    let converted = export(&data);
    let text = String::from_utf8_lossy(&converted);
    assert!(text.contains("after-the-conversion"));
    // Everything of the original is there, byte for byte, besides the new issue's lines.
    let new_lines: std::collections::BTreeSet<&str> = text.lines().collect();
    for line in String::from_utf8_lossy(&original).lines() {
        if !line.starts_with("r ") || line.starts_with("r ctr/") {
            continue; // the counts and counters moved with the new issue
        }
        assert!(new_lines.contains(line), "lost: {line}");
    }
    check(&data);
    server.restart();
    let mut admin = server.admin();
    assert!(admin.send(&format!("GET DETAILS {after} 0"))[0].contains("after-the-conversion"));
}
