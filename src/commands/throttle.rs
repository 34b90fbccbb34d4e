//! Login throttling: after too many failed logins from one IP address, or for one login
//! name, within a window, LOGIN answers 350 for a lockout period without checking the
//! password. An attempt is counted (reserved) before its password is checked, so
//! simultaneous LOGINs cannot all pass the check before the first failure is counted, and
//! the password checks waiting or running are bounded per address and in total. Per address stops one client guessing many accounts; per account stops many
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
    /// Attempts admitted whose password check has not finished: they count against the
    /// limit already, so simultaneous LOGINs cannot all slip in before the first fails.
    pending: u32,
    window_start: Instant,
    locked_until: Option<Instant>,
}

/// Failure counts per key (an address or a login name).
#[derive(Debug)]
struct Table<K> {
    max: u32,
    entries: HashMap<K, Failures>,
}

/// Why an attempt may not go on, before anything is reserved.
enum Refused {
    /// Locked until then.
    Until(Instant),
    /// The limit is taken up by failures and checks still running.
    InFlight,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new(max: u32) -> Self {
        Table {
            max,
            entries: HashMap::new(),
        }
    }

    /// Whether one more attempt may be admitted for `key` now.
    fn may_admit(&mut self, key: &K, now: Instant, window: Duration) -> Result<(), Refused> {
        if self.max == 0 {
            return Ok(());
        }
        let Some(f) = self.entries.get_mut(key) else {
            return Ok(());
        };
        if let Some(until) = f.locked_until {
            if now < until {
                return Err(Refused::Until(until));
            }
            f.locked_until = None;
        }
        if now.duration_since(f.window_start) > window {
            f.count = 0;
            f.window_start = now;
        }
        if f.count + f.pending >= self.max {
            return Err(Refused::InFlight);
        }
        Ok(())
    }

    /// Counts an admitted attempt as pending (after [`Self::may_admit`] said yes).
    fn reserve(&mut self, key: &K, now: Instant, window: Duration) {
        if self.max == 0 {
            return;
        }
        if self.entries.len() >= MAX_TRACKED && !self.entries.contains_key(key) {
            self.prune(now, window);
        }
        let f = self.entries.entry(key.clone()).or_insert(Failures {
            count: 0,
            pending: 0,
            window_start: now,
            locked_until: None,
        });
        f.pending += 1;
    }

    /// Ends a pending attempt: a failure is counted; returns true when it starts a lockout.
    fn settle(&mut self, key: &K, failed: bool, now: Instant, lockout: Duration) -> bool {
        let Some(f) = self.entries.get_mut(key) else {
            return false;
        };
        f.pending = f.pending.saturating_sub(1);
        if !failed {
            return false;
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

    /// Clears the failures of `key`, keeping the checks still running.
    fn forget(&mut self, key: &K) {
        if let Some(f) = self.entries.get_mut(key) {
            f.count = 0;
            f.locked_until = None;
        }
    }

    /// Drops entries that neither lock nor count any more; if that is not enough (a flood
    /// inside one window), drops the unlocked ones too, keeping every lockout and every
    /// pending check.
    fn prune(&mut self, now: Instant, window: Duration) {
        let locked = |f: &Failures| f.pending > 0 || f.locked_until.is_some_and(|u| now < u);
        self.entries
            .retain(|_, f| locked(f) || now.duration_since(f.window_start) <= window);
        if self.entries.len() >= MAX_TRACKED {
            self.entries.retain(|_, f| locked(f));
        }
    }
}

/// Why a login attempt is refused before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttled {
    Address,
    Account,
    /// The address's or the name's limit is taken up by checks still running.
    InFlight,
    /// Too many password checks already waiting or running, from this address or in all.
    Busy,
}

/// A refused attempt: why, and how long until trying again makes sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub why: Throttled,
    pub retry_after: Duration,
}

impl Refusal {
    /// The `350` error, saying when to retry.
    pub fn error(&self) -> crate::error::Error {
        let secs = self.retry_after.as_secs_f64().ceil().max(1.0) as u64;
        let detail = match self.why {
            Throttled::Address | Throttled::Account => format!("retry in {secs} s"),
            Throttled::InFlight | Throttled::Busy => {
                format!("too many logins in progress; retry in {secs} s")
            }
        };
        crate::error::Error::with(crate::error::Code::TooManyAttempts, detail)
    }
}

/// What a client refused because of checks still running is told to wait.
const IN_FLIGHT_RETRY: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct State {
    ips: Table<IpAddr>,
    accounts: Table<String>,
    /// Password checks admitted and not finished, per address and in all.
    queued: HashMap<IpAddr, usize>,
    queued_total: usize,
}

#[derive(Debug)]
pub struct LoginThrottle {
    window: Duration,
    lockout: Duration,
    queue_per_ip: usize,
    queue_total: usize,
    state: Mutex<State>,
}

/// An admitted login attempt: it holds a pending slot of its address and its login name
/// and a place in the password-check queue until [`Attempt::failed`] or
/// [`Attempt::succeeded`]; dropped without either (the connection went away), it counts
/// as nothing.
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    ip: IpAddr,
    login: String,
    settled: bool,
}

impl LoginThrottle {
    pub fn new(limits: &LimitsConfig) -> Self {
        let off = |n: usize| if n == 0 { usize::MAX } else { n };
        LoginThrottle {
            window: Duration::from_secs(limits.login_window_secs),
            lockout: Duration::from_secs(limits.login_lockout_secs),
            queue_per_ip: off(limits.login_pending_per_ip),
            queue_total: off(limits.login_pending_total),
            state: Mutex::new(State {
                ips: Table::new(limits.login_failures_per_ip),
                accounts: Table::new(limits.login_failures_per_account),
                queued: HashMap::new(),
                queued_total: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a login attempt to the password check, or says why not. Admission and the
    /// reservation happen under one lock, so at most the limit's worth of checks can be
    /// running or counted for an address or a name, however many LOGINs arrive at once.
    pub fn begin(&self, ip: IpAddr, login: &str) -> Result<Attempt<'_>, Refusal> {
        let now = Instant::now();
        let mut st = self.lock();
        let login_key = login.to_string();
        let refusal = |why, r: Refused| match r {
            Refused::Until(until) => Refusal {
                why,
                retry_after: until - now,
            },
            Refused::InFlight => Refusal {
                why: Throttled::InFlight,
                retry_after: IN_FLIGHT_RETRY,
            },
        };
        st.ips
            .may_admit(&ip, now, self.window)
            .map_err(|r| refusal(Throttled::Address, r))?;
        st.accounts
            .may_admit(&login_key, now, self.window)
            .map_err(|r| refusal(Throttled::Account, r))?;
        let mine = st.queued.get(&ip).copied().unwrap_or(0);
        if mine >= self.queue_per_ip || st.queued_total >= self.queue_total {
            return Err(Refusal {
                why: Throttled::Busy,
                retry_after: IN_FLIGHT_RETRY,
            });
        }
        st.ips.reserve(&ip, now, self.window);
        st.accounts.reserve(&login_key, now, self.window);
        *st.queued.entry(ip).or_insert(0) += 1;
        st.queued_total += 1;
        Ok(Attempt {
            throttle: self,
            ip,
            login: login_key,
            settled: false,
        })
    }

    fn settle(&self, ip: IpAddr, login: &str, outcome: Option<bool>) {
        let now = Instant::now();
        let mut st = self.lock();
        if let Some(n) = st.queued.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                st.queued.remove(&ip);
            }
        }
        st.queued_total = st.queued_total.saturating_sub(1);
        let failed = outcome == Some(false);
        let key = login.to_string();
        if st.ips.settle(&ip, failed, now, self.lockout) {
            tracing::warn!(%ip, lockout_secs = self.lockout.as_secs(), "login throttled: too many failures from this address");
        }
        if st.accounts.settle(&key, failed, now, self.lockout) {
            tracing::warn!(%login, lockout_secs = self.lockout.as_secs(), "login throttled: too many failures for this account");
        }
        if outcome == Some(true) {
            // Its owner knows the password. The address keeps its count, so one valid
            // account cannot be used to reset guessing.
            st.accounts.forget(&key);
        }
    }
}

impl Attempt<'_> {
    /// Counts a failed login (unknown names count too, so a lockout does not reveal which
    /// names exist). Logs when a lockout starts.
    pub fn failed(mut self) {
        self.settled = true;
        self.throttle.settle(self.ip, &self.login, Some(false));
    }

    /// A successful login clears the account's failures.
    pub fn succeeded(mut self) {
        self.settled = true;
        self.throttle.settle(self.ip, &self.login, Some(true));
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.throttle.settle(self.ip, &self.login, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_ip: u32, per_account: u32) -> LimitsConfig {
        LimitsConfig {
            login_failures_per_ip: per_ip,
            login_failures_per_account: per_account,
            login_pending_per_ip: 0,
            login_pending_total: 0,
            ..LimitsConfig::default()
        }
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    fn fail(t: &LoginThrottle, ip: IpAddr, login: &str) {
        t.begin(ip, login).unwrap().failed();
    }

    fn why(r: Result<Attempt<'_>, Refusal>) -> Option<Throttled> {
        r.err().map(|r| r.why)
    }

    #[test]
    fn account_locks_after_its_limit_for_every_address() {
        let t = LoginThrottle::new(&limits(100, 3));
        for _ in 0..2 {
            fail(&t, A, "bob");
        }
        assert_eq!(why(t.begin(A, "bob")), None);
        fail(&t, B, "bob");
        let r = t.begin(A, "bob").err().unwrap();
        assert_eq!(r.why, Throttled::Account);
        assert!(r.retry_after > Duration::from_secs(299), "{r:?}");
        assert_eq!(
            r.error().to_string(),
            "350 Too Many Attempts: retry in 300 s"
        );
        assert_eq!(why(t.begin(B, "bob")), Some(Throttled::Account));
        assert_eq!(why(t.begin(A, "alice")), None);
    }

    #[test]
    fn simultaneous_attempts_reserve_the_limit() {
        let t = LoginThrottle::new(&limits(100, 5));
        let held: Vec<_> = (0..5).map(|_| t.begin(A, "bob").unwrap()).collect();
        assert_eq!(why(t.begin(B, "bob")), Some(Throttled::InFlight));
        for a in held {
            a.failed();
        }
        let r = t.begin(A, "bob").err().unwrap();
        assert!(r.retry_after > Duration::from_secs(1), "now locked: {r:?}");
        // An attempt dropped unfinished gives its slot back uncounted.
        let t = LoginThrottle::new(&limits(100, 1));
        drop(t.begin(A, "bob").unwrap());
        assert_eq!(why(t.begin(A, "bob")), None);
    }

    #[test]
    fn the_check_queue_is_bounded_per_address_and_in_all() {
        let t = LoginThrottle::new(&LimitsConfig {
            login_pending_per_ip: 2,
            login_pending_total: 3,
            ..limits(0, 0)
        });
        let a1 = t.begin(A, "x").unwrap();
        let _a2 = t.begin(A, "y").unwrap();
        assert_eq!(why(t.begin(A, "z")), Some(Throttled::Busy));
        let _b1 = t.begin(B, "z").unwrap();
        assert_eq!(why(t.begin(B, "w")), Some(Throttled::Busy), "total");
        a1.failed();
        assert_eq!(why(t.begin(B, "w")), None);
    }

    #[test]
    fn address_locks_for_every_account() {
        let t = LoginThrottle::new(&limits(3, 100));
        for name in ["a", "b", "c"] {
            fail(&t, A, name);
        }
        assert_eq!(why(t.begin(A, "d")), Some(Throttled::Address));
        assert_eq!(why(t.begin(B, "d")), None);
    }

    #[test]
    fn success_clears_the_account_and_zero_disables() {
        let t = LoginThrottle::new(&limits(0, 2));
        fail(&t, A, "bob");
        t.begin(A, "bob").unwrap().succeeded();
        fail(&t, A, "bob");
        assert_eq!(why(t.begin(A, "bob")), None);
        for i in 0..1000 {
            fail(&t, A, &format!("x{i}"));
        }
        assert_eq!(why(t.begin(A, "y")), None, "per-address limit 0 is off");
    }

    #[test]
    fn lockout_ends() {
        let t = LoginThrottle::new(&LimitsConfig {
            login_lockout_secs: 0,
            ..limits(1, 1)
        });
        fail(&t, A, "bob");
        assert_eq!(why(t.begin(A, "bob")), None);
    }

    #[test]
    fn many_names_stay_bounded() {
        let mut table = Table::new(5);
        let now = Instant::now();
        let w = Duration::from_secs(60);
        for i in 0..(MAX_TRACKED + 10) {
            let k = i.to_string();
            table.reserve(&k, now, w);
            table.settle(&k, true, now, w);
        }
        assert!(table.entries.len() <= MAX_TRACKED);
    }
}
