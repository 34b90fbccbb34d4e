//! Crash safety: several connections write while the server is killed with SIGKILL at
//! random moments; after each restart every acknowledged write must be there, and the data
//! must be consistent (ids never reused, indexes matching their rows).
//!
//! Writes: ADD USER (a row, a login index and a name index in one transaction) and RENAME
//! USER (a row and a moved name index). A write whose reply never arrived may or may not
//! have happened; both are accepted, but not half of it.

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
    let mut last_id = 0;
    for n in 0.. {
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
            let id: i64 = reply
                .strip_prefix("ID ")
                .unwrap_or_else(|| panic!("ADD USER {login}: {reply}"))
                .parse()
                .unwrap();
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
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash test seed {seed} (repeat with CRASH_SEED={seed})");
    let mut rng = Rng(seed);
    let started = Instant::now();
    let mut server = Server::start();
    let uuid = server.connect().one("HELLO");
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut max_id_seen = 0;
    let mut kills = 0;
    for round in 0..ROUNDS {
        let first_id_floor = max_id_seen;
        let before: std::collections::HashSet<String> =
            ledger.lock().unwrap().users.keys().cloned().collect();
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
        verify(&server, &mut l, &mut max_id_seen);
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
    eprintln!(
        "crash test: {kills} kills survived, {} writes acknowledged, 0 lost; {} writes in \
         flight at a kill ({} kept, the rest cleanly absent); {} users, {:?}",
        l.acknowledged,
        l.in_flight,
        l.in_flight_kept,
        ids.len(),
        started.elapsed()
    );
    assert!(kills >= 20);
    assert!(l.acknowledged > 0);
}
