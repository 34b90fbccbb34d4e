//! The digest pass at scale: 100 000 users, all members with an address and pending
//! changes, of whom 1 000 (then 10 000) are due. Shows that a pass costs per due user, not
//! per user in the database.
//!
//! `cargo run --release --example notify_pass_bench [users] [due...]`

use std::time::Instant;
use webissued::config::NotifyConfig;
use webissued::mail::MailConfig;
use webissued::notify::Notifier;
use webissued::store::notify::{self as n, PREF_EMAIL, PREF_FREQUENCY, Watch};
use webissued::store::{EventKind, IssueEvent, Read, Store, issues, key, projects, users};

const ISSUES: u64 = 2_000;
const CHANGES_PER_USER: u64 = 3;

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers"))
        .collect();
    let total = args.first().copied().unwrap_or(100_000);
    let dues: Vec<u64> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        vec![1_000, 10_000]
    };
    for due in dues {
        bench(total, due);
    }
}

fn bench(total: u64, due: u64) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("data"), 256 << 20).unwrap();
    let mail = MailConfig {
        file_dir: dir.path().join("mail"),
        ..MailConfig::default()
    };
    let notifier = Notifier::new(&NotifyConfig::default(), &mail, "Bench", "+0000").unwrap();
    let cfg = notifier.fanout.clone();
    let now = 1_700_000_000i64;
    let setup = Instant::now();
    store
        .write(|w| {
            users::insert(w, "admin", "Admin", users::ACCESS_ADMIN, "x".into())?;
            projects::insert(w, "Project")?;
            projects::insert_folder(w, 1, 1, "Folder")?;
            for i in 1..=ISSUES {
                let stamp = w.next_stamp()?;
                let issue = issues::Issue {
                    id: stamp,
                    folder: 1,
                    name: format!("Issue number {i}"),
                    stamp,
                    created: now - 600,
                    created_by: 1,
                    modified: now - 600,
                    modified_by: 1,
                };
                w.put(key("issue", &[stamp]), &issue)?;
                w.record_event(&IssueEvent {
                    stamp,
                    issue: stamp,
                    folder: 1,
                    project: 1,
                    user: 1,
                    time: now - 600,
                    kind: EventKind::Commented,
                })?;
            }
            Ok(())
        })
        .unwrap();
    // Users 2..: members with an address, watching the folder, with pending changes. The
    // first `due` are IMMEDIATELY (due now); the rest DAILY at 23:59 (due tonight).
    let chunk = 5_000;
    let mut made = 0;
    while made < total {
        let end = (made + chunk).min(total);
        store
            .write(|w| {
                for i in made..end {
                    let id =
                        users::insert(w, &format!("u{i}"), &format!("User {i}"), 1, "x".into())?;
                    projects::set_member(w, 1, id, 1)?;
                    let email = format!("u{i}@example.org");
                    n::set_pref(w, id, PREF_EMAIL, &email, now)?;
                    // Digests go only to confirmed addresses (as an administrator sets them).
                    webissued::subscribe::email::mark_confirmed(w, id, &email)?;
                    if i >= due {
                        n::set_pref(w, id, PREF_FREQUENCY, "DAILY time=\"23:59\"", now)?;
                    }
                    n::set_watch(w, id, Watch::Folder(1), true)?;
                    for c in 0..CHANGES_PER_USER {
                        let stamp = 1 + (i * CHANGES_PER_USER + c) % ISSUES;
                        n::add_pending(w, id, stamp, now - 60, &cfg)?;
                    }
                }
                Ok(())
            })
            .unwrap();
        made = end;
    }
    store.flush_now().unwrap();
    // What a running server does itself once writes pause (store::mem).
    store.compact_now().unwrap();
    let due_now = store
        .read(|r| Ok(n::due_users(r, now, usize::MAX)?.len()))
        .unwrap();
    eprintln!(
        "setup: {total} users ({due_now} due), {} s",
        setup.elapsed().as_secs_f64().round()
    );
    assert_eq!(due_now as u64, due);

    if std::env::var("PROBE").is_ok() {
        let due_list = store.read(|r| n::due_users(r, now, usize::MAX)).unwrap();
        let t = Instant::now();
        let mut digests = Vec::new();
        for (_, u) in &due_list {
            digests.push(
                store
                    .read(|r| webissued::notify::digest::build(r, *u, &cfg))
                    .unwrap(),
            );
        }
        eprintln!("build {:?}", t.elapsed());
        let t = Instant::now();
        let templates = webissued::mail::Templates::new(None).unwrap();
        for d in &digests {
            webissued::notify::digest::render(d, &templates, &mail, "Bench", now).unwrap();
        }
        eprintln!("render {:?}", t.elapsed());
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let (start, cpu_start) = (Instant::now(), thread_cpu());
    let stats = notifier.run_pass(&store, now).unwrap();
    let (pass, pass_cpu) = (start.elapsed(), thread_cpu() - cpu_start);
    assert_eq!(stats.queued as u64, due);
    let start = Instant::now();
    let empty = notifier.run_pass(&store, now + 1).unwrap();
    let idle = start.elapsed();
    assert_eq!(empty.users, 0);
    let queued = store.read(|r| Ok(n::outbox_all(r)?.len())).unwrap();
    assert_eq!(queued as u64, due);
    let left = store.read(|r| Ok(r.scan_raw(b"due/")?.len())).unwrap();
    println!(
        "users {total:>7}  due {due:>6}  pass {:>8.1} ms, CPU {:.1} ms  ({:.0} µs CPU per due user, \
         {} changes each)  next pass with nothing due {:.3} ms  not-due users left in the index \
         {left}  load average {}",
        pass.as_secs_f64() * 1e3,
        pass_cpu * 1e3,
        pass_cpu * 1e6 / due as f64,
        CHANGES_PER_USER,
        idle.as_secs_f64() * 1e3,
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    );
}

/// CPU seconds this thread has used: the pass runs on it alone, so this is the pass's own
/// cost, which a busy host (or the checkpoint thread folding the setup) does not inflate
/// the way it does the wall time.
fn thread_cpu() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}
