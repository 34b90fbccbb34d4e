//! Login throttling: after too many failed logins from one IP address, or for one login
//! name, within a window, LOGIN answers 350 for a lockout period without checking the
//! password. Per address stops one client guessing many accounts; per account stops many
//! addresses guessing one. Password checks (argon2) are expensive, so refusing early also
//! keeps a brute-force client from saturating the CPU.
//!
//! The state lives in memory: a restart forgets it, which only helps an attacker who can
//! restart the server anyway.

use crate::config::LimitsConfig;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Tables beyond this many entries drop the ones no longer counting, so a client trying
/// millions of login names cannot grow memory without bound.
const MAX_TRACKED: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    window_start: Instant,
    locked_until: Option<Instant>,
}

/// Failure counts per key (an address or a login name).
#[derive(Debug)]
struct Table<K> {
    max: u32,
    entries: HashMap<K, Failures>,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new(max: u32) -> Self {
        Table {
            max,
            entries: HashMap::new(),
        }
    }

    fn locked(&self, key: &K, now: Instant) -> bool {
        self.entries
            .get(key)
            .and_then(|f| f.locked_until)
            .is_some_and(|until| now < until)
    }

    /// Counts a failure; returns true when this failure starts a lockout.
    fn fail(&mut self, key: &K, now: Instant, window: Duration, lockout: Duration) -> bool {
        if self.max == 0 {
            return false;
        }
        if self.entries.len() >= MAX_TRACKED && !self.entries.contains_key(key) {
            self.prune(now, window);
        }
        let f = self.entries.entry(key.clone()).or_insert(Failures {
            count: 0,
            window_start: now,
            locked_until: None,
        });
        if now.duration_since(f.window_start) > window {
            f.count = 0;
            f.window_start = now;
        }
        f.count += 1;
        if f.count >= self.max {
            f.count = 0;
            f.window_start = now;
            f.locked_until = Some(now + lockout);
            return true;
        }
        false
    }

    fn forget(&mut self, key: &K) {
        self.entries.remove(key);
    }

    /// Drops entries that neither lock nor count any more; if that is not enough (a flood
    /// inside one window), drops the unlocked ones too, keeping every lockout.
    fn prune(&mut self, now: Instant, window: Duration) {
        let live = |f: &Failures| {
            f.locked_until.is_some_and(|u| now < u) || now.duration_since(f.window_start) <= window
        };
        self.entries.retain(|_, f| live(f));
        if self.entries.len() >= MAX_TRACKED {
            self.entries
                .retain(|_, f| f.locked_until.is_some_and(|u| now < u));
        }
    }
}

/// Why a login attempt is refused before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttled {
    Address,
    Account,
}

#[derive(Debug)]
pub struct LoginThrottle {
    window: Duration,
    lockout: Duration,
    tables: Mutex<(Table<IpAddr>, Table<String>)>,
}

impl LoginThrottle {
    pub fn new(limits: &LimitsConfig) -> Self {
        LoginThrottle {
            window: Duration::from_secs(limits.login_window_secs),
            lockout: Duration::from_secs(limits.login_lockout_secs),
            tables: Mutex::new((
                Table::new(limits.login_failures_per_ip),
                Table::new(limits.login_failures_per_account),
            )),
        }
    }

    /// Whether a login attempt may go on to the password check.
    pub fn check(&self, ip: IpAddr, login: &str) -> Result<(), Throttled> {
        let now = Instant::now();
        let tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        if tables.0.locked(&ip, now) {
            return Err(Throttled::Address);
        }
        if tables.1.locked(&login.to_string(), now) {
            return Err(Throttled::Account);
        }
        Ok(())
    }

    /// Records a failed login (unknown names count too, so a lockout does not reveal
    /// which names exist). Logs when a lockout starts.
    pub fn failed(&self, ip: IpAddr, login: &str) {
        let now = Instant::now();
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        if tables.0.fail(&ip, now, self.window, self.lockout) {
            tracing::warn!(%ip, lockout_secs = self.lockout.as_secs(), "login throttled: too many failures from this address");
        }
        if tables
            .1
            .fail(&login.to_string(), now, self.window, self.lockout)
        {
            tracing::warn!(%login, lockout_secs = self.lockout.as_secs(), "login throttled: too many failures for this account");
        }
    }

    /// A successful login clears the account's failures: its owner knows the password.
    /// The address keeps its count, so one valid account cannot be used to reset guessing.
    pub fn succeeded(&self, login: &str) {
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        tables.1.forget(&login.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_ip: u32, per_account: u32) -> LimitsConfig {
        LimitsConfig {
            login_failures_per_ip: per_ip,
            login_failures_per_account: per_account,
            ..LimitsConfig::default()
        }
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn account_locks_after_its_limit_for_every_address() {
        let t = LoginThrottle::new(&limits(100, 3));
        for _ in 0..2 {
            t.failed(A, "bob");
        }
        assert_eq!(t.check(A, "bob"), Ok(()));
        t.failed(B, "bob");
        assert_eq!(t.check(A, "bob"), Err(Throttled::Account));
        assert_eq!(t.check(B, "bob"), Err(Throttled::Account));
        assert_eq!(t.check(A, "alice"), Ok(()));
    }

    #[test]
    fn address_locks_for_every_account() {
        let t = LoginThrottle::new(&limits(3, 100));
        for name in ["a", "b", "c"] {
            t.failed(A, name);
        }
        assert_eq!(t.check(A, "d"), Err(Throttled::Address));
        assert_eq!(t.check(B, "d"), Ok(()));
    }

    #[test]
    fn success_clears_the_account_and_zero_disables() {
        let t = LoginThrottle::new(&limits(0, 2));
        t.failed(A, "bob");
        t.succeeded("bob");
        t.failed(A, "bob");
        assert_eq!(t.check(A, "bob"), Ok(()));
        for _ in 0..1000 {
            t.failed(A, "x");
        }
        assert_eq!(t.check(A, "y"), Ok(()), "per-address limit 0 is off");
    }

    #[test]
    fn lockout_ends() {
        let t = LoginThrottle::new(&LimitsConfig {
            login_lockout_secs: 0,
            ..limits(1, 1)
        });
        t.failed(A, "bob");
        assert_eq!(t.check(A, "bob"), Ok(()));
    }

    #[test]
    fn many_names_stay_bounded() {
        let mut table = Table::new(5);
        let now = Instant::now();
        let w = Duration::from_secs(60);
        for i in 0..(MAX_TRACKED + 10) {
            table.fail(&i.to_string(), now, w, w);
        }
        assert!(table.entries.len() <= MAX_TRACKED);
    }
}
