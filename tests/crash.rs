//! Crash safety: several connections write while the server is killed with SIGKILL at
//! random moments; after each restart every acknowledged write must be there, and the data
//! must be consistent (ids never reused, indexes matching their rows).
//!
//! Writes: ADD USER (a row, a login index and a name index in one transaction), RENAME
//! USER (a row and a moved name index), ADD ISSUE (an issue, its folder's stamp) and ADD
//! COMMENT (a comment, the issue's and folder's stamps). A write whose reply never arrived
//! may or may not have happened; both are accepted, but not half of it.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{ADMIN_PASSWORD, Client, Server};

const ROUNDS: usize = 22;
const WRITERS: usize = 4;

/// What the test knows about one user it created.
#[derive(Debug, Clone, Default)]
struct Known {
    id: i64,
    /// The name as of the last acknowledged write.
    name: String,
    /// A rename sent but not acknowledged: it may or may not have happened.
    maybe_name: Option<String>,
}

#[derive(Default)]
struct Ledger {
    /// Acknowledged users by login.
    users: BTreeMap<String, Known>,
    /// ADD USER sent without an acknowledgement: the login may or may not exist.
    maybe_added: Vec<String>,
    acknowledged: usize,
    /// Acknowledged issues by name, and ADD ISSUE sent without an acknowledgement.
    issues: BTreeMap<String, i64>,
    maybe_issues: Vec<String>,
    /// Acknowledged comments by text: (comment id, issue id); and unacknowledged ones.
    comments: BTreeMap<String, (i64, i64)>,
    maybe_comments: Vec<String>,
    /// Writes in flight at a kill, and how many of those the server had kept.
    in_flight: usize,
    in_flight_kept: usize,
}

/// A tiny deterministic generator (xorshift), seeded from the clock and printed, so a
/// failing run can be repeated with `CRASH_SEED`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Sends one line and reads its reply, or None once the server is gone.
fn request(c: &mut Client, line: &str) -> Option<String> {
    (&mut c.stream())
        .write_all(format!("{line}\n").as_bytes())
        .ok()?;
    let reply = c.try_read_reply()?;
    Some(reply.into_iter().next().unwrap_or_default())
}

/// One writer connection: adds users and renames them until the server dies.
fn writer(server_addr: std::net::SocketAddr, tag: String, ledger: Arc<Mutex<Ledger>>) {
    let mut c = Client::connect(server_addr);
    if request(&mut c, &format!("LOGIN 'admin' '{ADMIN_PASSWORD}'")).is_none() {
        return;
    }
    let mut mine: Vec<String> = Vec::new();
    let mut my_issues: Vec<i64> = Vec::new();
    let mut last_id = 0;
    let mut last_item = 0;
    for n in 0.. {
        if n % 8 == 1 || n % 8 == 2 || (n % 8 == 3 && my_issues.is_empty()) {
            let name = format!("{tag} issue {n}");
            ledger.lock().unwrap().maybe_issues.push(name.clone());
            let Some(reply) = request(&mut c, &format!("ADD ISSUE {FOLDER} '{name}'")) else {
                return;
            };
            let id = parse_id(&reply, &name);
            assert!(id > last_item, "item ids of one connection increase");
            last_item = id;
            let mut l = ledger.lock().unwrap();
            l.maybe_issues.retain(|x| x != &name);
            l.issues.insert(name, id);
            l.acknowledged += 1;
            my_issues.push(id);
            continue;
        }
        if n % 8 == 3 || n % 8 == 4 {
            let issue = my_issues[n % my_issues.len()];
            let text = format!("{tag} comment {n}");
            ledger.lock().unwrap().maybe_comments.push(text.clone());
            let Some(reply) = request(&mut c, &format!("ADD COMMENT {issue} '{text}'")) else {
                return;
            };
            let id = parse_id(&reply, &text);
            assert!(id > last_item, "item ids of one connection increase");
            last_item = id;
            let mut l = ledger.lock().unwrap();
            l.maybe_comments.retain(|x| x != &text);
            l.comments.insert(text, (id, issue));
            l.acknowledged += 1;
            continue;
        }
        // Mostly renames: ADD USER costs a password hash, and more writes per kill
        // means more chances to be killed mid-write.
        if n % 8 != 0 && !mine.is_empty() {
            let login = mine[n % mine.len()].clone();
            let (id, name) = {
                let mut l = ledger.lock().unwrap();
                let k = l.users.get_mut(&login).unwrap();
                let name = format!("{login} r{n}");
                k.maybe_name = Some(name.clone());
                (k.id, name)
            };
            let Some(reply) = request(&mut c, &format!("RENAME USER {id} '{name}'")) else {
                return;
            };
            assert_eq!(reply, "OK", "RENAME USER {id}");
            let mut l = ledger.lock().unwrap();
            let k = l.users.get_mut(&login).unwrap();
            k.name = name;
            k.maybe_name = None;
            l.acknowledged += 1;
        } else {
            let login = format!("{tag}n{n}");
            ledger.lock().unwrap().maybe_added.push(login.clone());
            let Some(reply) = request(&mut c, &format!("ADD USER '{login}' '{login}' 'pw'")) else {
                return;
            };
            let id = parse_id(&reply, &login);
            assert!(
                id > last_id,
                "ids of one connection increase: {id} after {last_id}"
            );
            last_id = id;
            let mut l = ledger.lock().unwrap();
            l.maybe_added.retain(|x| x != &login);
            let name = login.clone();
            l.users.insert(
                login.clone(),
                Known {
                    id,
                    name,
                    maybe_name: None,
                },
            );
            l.acknowledged += 1;
            mine.push(login);
        }
    }
}

fn parse_id(reply: &str, what: &str) -> i64 {
    reply
        .strip_prefix("ID ")
        .unwrap_or_else(|| panic!("adding {what}: {reply}"))
        .parse()
        .unwrap()
}

/// The folder the writers add issues to (made once, before the first kill).
const FOLDER: i64 = 1;

/// Quoted strings and bare words of a reply line (the test's strings hold no quotes).
fn fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('\'') {
            let end = r.find('\'').unwrap();
            out.push(r[..end].to_string());
            rest = r[end + 1..].trim_start();
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            out.push(rest[..end].to_string());
            rest = rest[end..].trim_start();
        }
    }
    out
}

/// Checks issues and comments: every acknowledged one is there, nothing unknown is, and
/// stamps only grow (a comment's id is at most its issue's stamp, an issue's stamp at most
/// its folder's). Settles the unacknowledged ones to what the server kept.
fn verify_issues(c: &mut Client, ledger: &mut Ledger, max_item: &mut i64) {
    let folder_stamp: i64 = c
        .send("LIST PROJECTS")
        .iter()
        .map(|l| fields(l))
        .find(|f| f[0] == "F" && f[1] == FOLDER.to_string())
        .map(|f| f[5].parse().unwrap())
        .expect("the folder survives");
    let mut issues: HashMap<String, (i64, i64)> = HashMap::new();
    for line in c.send(&format!("LIST ISSUES {FOLDER} 0")) {
        let f = fields(&line);
        if f[0] != "I" {
            continue;
        }
        let (id, stamp): (i64, i64) = (f[1].parse().unwrap(), f[4].parse().unwrap());
        assert_eq!(f[2], FOLDER.to_string());
        assert!(
            stamp >= id && stamp <= folder_stamp,
            "{line} (folder stamp {folder_stamp})"
        );
        assert!(
            issues.insert(f[3].clone(), (id, stamp)).is_none(),
            "{line} twice"
        );
    }
    for (name, id) in &ledger.issues {
        assert_eq!(
            issues.get(name).map(|x| x.0),
            Some(*id),
            "acknowledged issue {name} lost"
        );
    }
    for name in std::mem::take(&mut ledger.maybe_issues) {
        ledger.in_flight += 1;
        if let Some((id, _)) = issues.get(&name) {
            ledger.in_flight_kept += 1;
            ledger.issues.insert(name, *id);
        }
    }
    for name in issues.keys() {
        assert!(ledger.issues.contains_key(name), "unexpected issue {name}");
    }
    // Comments of every issue (GET DETAILS from 0 lists them all).
    let mut comments: HashMap<String, (i64, i64)> = HashMap::new();
    for (id, stamp) in issues.values() {
        for line in c.send(&format!("GET DETAILS {id} 0")) {
            let f = fields(&line);
            if f[0] != "C" {
                continue;
            }
            let (cid, issue): (i64, i64) = (f[1].parse().unwrap(), f[2].parse().unwrap());
            assert_eq!(issue, *id, "{line}");
            assert!(cid > *id && cid <= *stamp, "{line}: issue stamp {stamp}");
            assert!(
                comments.insert(f[5].clone(), (cid, issue)).is_none(),
                "{line} twice"
            );
        }
    }
    for (text, want) in &ledger.comments {
        assert_eq!(
            comments.get(text),
            Some(want),
            "acknowledged comment {text:?} lost"
        );
    }
    for text in std::mem::take(&mut ledger.maybe_comments) {
        ledger.in_flight += 1;
        if let Some(found) = comments.get(&text) {
            ledger.in_flight_kept += 1;
            ledger.comments.insert(text, *found);
        }
    }
    for text in comments.keys() {
        assert!(
            ledger.comments.contains_key(text),
            "unexpected comment {text:?}"
        );
    }
    *max_item = (*max_item).max(folder_stamp);
}

/// `U id 'login' 'name' access` lines of LIST USERS, by login.
fn list_users(c: &mut Client) -> HashMap<String, (i64, String)> {
    let mut out = HashMap::new();
    for line in c.send("LIST USERS") {
        if !line.starts_with("U ") {
            continue;
        }
        let mut parts = line.splitn(3, ' ');
        parts.next();
        let id: i64 = parts.next().unwrap().parse().unwrap();
        let rest = parts.next().unwrap();
        // 'login' 'name' access — the test's logins and names hold no quotes or escapes.
        let fields: Vec<&str> = rest.split('\'').collect();
        let (login, name) = (fields[1].to_string(), fields[3].to_string());
        assert!(
            out.insert(login.clone(), (id, name)).is_none(),
            "{login} twice"
        );
    }
    out
}

/// Checks the restarted server against everything acknowledged so far; settles the
/// unacknowledged writes to whatever the server kept, so later rounds check those too.
fn verify(server: &Server, ledger: &mut Ledger, max_id_seen: &mut i64) {
    let mut c = server.admin();
    let users = list_users(&mut c);
    let mut ids: Vec<i64> = users.values().map(|(id, _)| *id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), users.len(), "two users share an id");
    for (login, k) in ledger.users.iter_mut() {
        let Some((id, name)) = users.get(login) else {
            panic!("acknowledged user {login} (id {}) lost", k.id);
        };
        assert_eq!(*id, k.id, "{login} changed id");
        if k.maybe_name.is_some() {
            ledger.in_flight += 1;
        }
        match &k.maybe_name {
            Some(maybe) if name == maybe => {
                k.name = maybe.clone();
                ledger.in_flight_kept += 1;
            }
            _ => assert_eq!(name, &k.name, "{login}: acknowledged rename lost"),
        }
        k.maybe_name = None;
    }
    for login in std::mem::take(&mut ledger.maybe_added) {
        ledger.in_flight += 1;
        if let Some((id, name)) = users.get(&login) {
            ledger.in_flight_kept += 1;
            ledger.users.insert(
                login.clone(),
                Known {
                    id: *id,
                    name: name.clone(),
                    maybe_name: None,
                },
            );
        }
    }
    // Every user the server has is one the test (or the first start) created.
    for login in users.keys() {
        assert!(
            login == "admin" || ledger.users.contains_key(login),
            "unexpected user {login}"
        );
    }
    *max_id_seen = (*max_id_seen).max(ids.last().copied().unwrap_or(0));
}

#[test]
fn acknowledged_writes_survive_sigkill_at_random_moments() {
    let seed = support::seed_from_env("CRASH_SEED");
    eprintln!("crash test seed {seed} (repeat with CRASH_SEED={seed})");
    let mut rng = Rng(seed);
    let started = Instant::now();
    // Log files are closed every second, so checkpoints (folding the log into sled) run
    // while the writers write and some kills land in the middle of one.
    // The in-memory writes are merged into the packed copy after every 50 records.
    let mut server = Server::start_with("[server]\ncheckpoint_secs = 1\ncompact_min_records = 50");
    let uuid = server.connect().one("HELLO");
    {
        let mut admin = server.admin();
        let t = admin.id("ADD TYPE 'Bug'");
        let p = admin.id("ADD PROJECT 'Crash'");
        assert_eq!(admin.id(&format!("ADD FOLDER {p} {t} 'Bugs'")), FOLDER);
        assert_eq!(admin.one(&format!("GRANT MEMBER 1 {p} 2")), "OK");
    }
    let mut max_item = 0;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut max_id_seen = 0;
    let mut kills = 0;
    for round in 0..ROUNDS {
        let first_id_floor = max_id_seen;
        let item_floor = max_item;
        let (before, before_items) = {
            let l = ledger.lock().unwrap();
            let users: std::collections::HashSet<String> = l.users.keys().cloned().collect();
            let items: std::collections::HashSet<String> =
                l.issues.keys().chain(l.comments.keys()).cloned().collect();
            (users, items)
        };
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let ledger = ledger.clone();
                let addr = server.addr;
                let tag = format!("r{round}w{w}");
                std::thread::spawn(move || writer(addr, tag, ledger))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(200 + rng.below(700)));
        server.kill9();
        kills += 1;
        for w in writers {
            w.join().expect("writer thread");
        }
        server.restart();
        assert_eq!(
            server.connect().one("HELLO"),
            uuid,
            "server identity changed"
        );
        let mut l = ledger.lock().unwrap();
        // Ids given out in this round are above every id that survived earlier rounds:
        // an id is never handed out twice, even when its first owner was acknowledged
        // just before a kill.
        for (login, k) in &l.users {
            if !before.contains(login) {
                assert!(
                    k.id > first_id_floor,
                    "{login} got id {} <= {first_id_floor}",
                    k.id
                );
            }
        }
        for (what, id) in l
            .issues
            .iter()
            .chain(l.comments.iter().map(|(t, (id, _))| (t, id)))
        {
            if *id > item_floor {
                continue;
            }
            let known_before = before_items.contains(what);
            assert!(
                known_before,
                "{what} got id {id} <= {item_floor}, an id handed out twice"
            );
        }
        verify(&server, &mut l, &mut max_id_seen);
        verify_issues(&mut server.admin(), &mut l, &mut max_item);
    }

    // Indexes agree with rows: every surviving login and name is taken; a login whose ADD
    // was lost to a kill left no index entry behind and can be added again.
    let mut admin = server.admin();
    let l = ledger.lock().unwrap();
    for (login, k) in l.users.iter().step_by(7) {
        assert!(
            admin
                .one(&format!("ADD USER '{login}' 'fresh {login}' 'pw'"))
                .starts_with("ERROR 322"),
            "login index of {login} lost"
        );
        assert!(
            admin
                .one(&format!("ADD USER 'fresh{login}' '{}' 'pw'", k.name))
                .starts_with("ERROR 322"),
            "name index of {login} lost"
        );
    }
    let fresh_id = admin.id("ADD USER 'after-all-kills' 'After' 'pw'");
    assert!(
        fresh_id > max_id_seen,
        "id {fresh_id} reused (max seen {max_id_seen})"
    );
    let users = list_users(&mut admin);
    let ids: Vec<i64> = {
        let mut v: Vec<i64> = users.values().map(|(id, _)| *id).collect();
        v.sort();
        v
    };
    let log = std::fs::read_to_string(server.dir().join("server.log")).unwrap_or_default();
    let checkpoints = log
        .lines()
        .filter(|l| l.contains("checkpoint") && l.contains("up_to"))
        .count();
    let compactions = log.lines().filter(|l| l.contains("compacted")).count();
    eprintln!(
        "crash test: {kills} kills survived, {} writes acknowledged, 0 lost; {} writes in \
         flight at a kill ({} kept, the rest cleanly absent); {} users, {} issues, {} \
         comments, {checkpoints} checkpoints, {compactions} compactions, {:?}",
        l.acknowledged,
        l.in_flight,
        l.in_flight_kept,
        ids.len(),
        l.issues.len(),
        l.comments.len(),
        started.elapsed()
    );
    assert!(kills >= 20);
    assert!(l.acknowledged > 0);
    assert!(checkpoints > 0, "no checkpoint ran during the test");
    assert!(compactions > 0, "no compaction ran during the test");
}
