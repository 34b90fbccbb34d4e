//! The notification machinery of a running server: the digest pass, the outbox worker and
//! the background task that runs both.
//!
//! The pass reads the due index up to `now`, builds and renders each due user's digest
//! outside the write lock, and then, in one write per chunk of 256 users (`PASS_CHUNK`), queues
//! each user's mail in the outbox, removes the pending entries it covered and moves the
//! user's due entry; then each [`Channel`] (subscriptions) queues its own mail. The worker sends queued messages and
//! removes each only after the transport accepted it. Both run in one background task, never
//! on a connection's task; the pass runs on the blocking pool.
//!
//! The worker has a circuit breaker ([`Breaker`]): when a send fails because the mail system
//! cannot be reached at all (connection refused or broken, TLS trouble, no answer within
//! `timeout_secs`: [`crate::mail::SendError::is_outage`]), the round stops there. The other
//! due messages stay queued as they are (no attempt counted), and no message is tried for
//! `breaker_base_secs`, doubled per consecutive outage up to `retry_max_secs`. The first
//! message tried after that is the probe; the first send the transport answers closes the
//! breaker. The state lives in memory (a restart starts closed) and is shown by LIST OUTBOX.

use crate::config::NotifyConfig;
use crate::error::{Error, Result};
use crate::mail::{MailConfig, Mailer, OutgoingMail, Templates};
use crate::notify::digest;
use crate::schedule::UserTz;
use crate::store::Store;
use crate::store::notify::{self as n, FanoutConfig, OutboxState};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, mpsc, oneshot, watch};

/// Users finished per write in a pass.
const PASS_CHUNK: usize = 256;

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassStats {
    /// Due users handled.
    pub users: usize,
    /// Messages queued in the outbox.
    pub queued: usize,
    /// Batch sequence of the last write (to wait for durability).
    pub seq: u64,
}

/// What one run of the outbox worker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendStats {
    pub sent: usize,
    /// Transient failures that will be retried.
    pub deferred: usize,
    /// Messages given up on in this run.
    pub failed: usize,
    /// Due messages not tried because the breaker is (or became) open.
    pub held: usize,
}

/// The outbox worker's circuit breaker (see the module comment).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Breaker {
    /// Consecutive outages since the transport last answered; 0: closed.
    pub failures: u32,
    /// While open: Unix seconds before which no message is tried.
    pub retry_at: i64,
    /// What the transport said at the last outage.
    pub last_error: String,
}

impl Breaker {
    pub fn is_closed(&self) -> bool {
        self.failures == 0
    }

    /// Whether no message may be tried at `now`.
    pub fn holds(&self, now: i64) -> bool {
        !self.is_closed() && now < self.retry_at
    }
}

/// Another kind of mail delivered by each pass, after the digests (e-mail subscriptions,
/// `subscribe::mail`): it queues its mails in the outbox in the batch that consumes its
/// pending entries.
pub trait Channel: Send + Sync {
    /// Returns (mails queued, the sequence of its last write).
    fn pass(&self, store: &Store, templates: &Templates, now: i64) -> Result<(usize, u64)>;
}

/// The report of `RUN NOTIFICATIONS`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunReport {
    pub pass: PassStats,
    pub send: SendStats,
}

pub struct Notifier {
    pub cfg: NotifyConfig,
    pub mail: MailConfig,
    pub fanout: FanoutConfig,
    pub server_name: String,
    pub templates: Templates,
    mailer: Mailer,
    /// One pass at a time.
    pass_lock: std::sync::Mutex<()>,
    /// One outbox run at a time, so a message is never sent by two runs at once.
    send_lock: Mutex<()>,
    requests: mpsc::Sender<oneshot::Sender<Result<RunReport>>>,
    inbox: std::sync::Mutex<Option<mpsc::Receiver<oneshot::Sender<Result<RunReport>>>>>,
    /// Other mail each pass delivers after the digests (subscriptions, when on).
    channels: Vec<Box<dyn Channel>>,
    /// Public prefix of the HTTP pages, when they serve the one-click stop link.
    stop_links: Option<String>,
    /// Wakes the worker when a command queued mail that should leave now.
    wake: tokio::sync::Notify,
    /// The write sequence the queued mail belongs to: the worker waits until it is durable.
    wake_seq: std::sync::atomic::AtomicU64,
    /// The transport's circuit breaker.
    breaker: std::sync::Mutex<Breaker>,
}

impl Notifier {
    /// Compiles the templates and builds the transport; configuration mistakes stop the
    /// server at start.
    pub fn new(
        cfg: &NotifyConfig,
        mail: &MailConfig,
        server_name: &str,
        server_tz: &str,
    ) -> std::result::Result<Notifier, String> {
        let server_tz = UserTz::parse(server_tz)
            .map_err(|e| format!("[server] timezone {server_tz:?}: {e}"))?;
        let templates = Templates::new(cfg.templates_dir.as_deref()).map_err(|e| e.to_string())?;
        let mailer = Mailer::new(mail).map_err(|e| e.to_string())?;
        let (requests, inbox) = mpsc::channel(16);
        Ok(Notifier {
            cfg: cfg.clone(),
            mail: mail.clone(),
            fanout: FanoutConfig {
                min_interval: cfg.min_interval_secs as i64,
                server_tz,
            },
            server_name: server_name.into(),
            templates,
            mailer,
            pass_lock: std::sync::Mutex::new(()),
            send_lock: Mutex::new(()),
            requests,
            inbox: std::sync::Mutex::new(Some(inbox)),
            channels: Vec::new(),
            stop_links: None,
            wake: tokio::sync::Notify::new(),
            wake_seq: std::sync::atomic::AtomicU64::new(0),
            breaker: std::sync::Mutex::new(Breaker::default()),
        })
    }

    /// Adds a channel whose mail each pass queues after the digests.
    pub fn add_channel(&mut self, channel: Box<dyn Channel>) {
        self.channels.push(channel);
    }

    /// Digests carry a one-click stop link to the HTTP pages under `base_url`.
    pub fn enable_stop_links(&mut self, base_url: &str) {
        self.stop_links = Some(base_url.to_string());
    }

    /// The HTTP pages' base URL when mails carry a one-click stop link.
    pub fn stop_links(&self) -> Option<&str> {
        self.stop_links.as_deref()
    }

    /// Where mail goes (`smtp HOST:PORT`, `sendmail PATH`, `file DIR`), for the start line.
    pub fn mail_peer(&self) -> &str {
        self.mailer.peer()
    }

    /// Asks the worker to send queued mail now (e.g. a confirmation mail), once the write
    /// with sequence `seq` that queued it is durable.
    pub fn kick(&self, seq: u64) {
        self.wake_seq
            .fetch_max(seq, std::sync::atomic::Ordering::AcqRel);
        self.wake.notify_one();
    }

    /// Runs one digest pass at `now` (blocking: call it on the blocking pool).
    pub fn run_pass(&self, store: &Store, now: i64) -> Result<PassStats> {
        let _one_at_a_time = self.pass_lock.lock().map_err(Error::internal)?;
        let _timed = PassTimer(std::time::Instant::now());
        let mut stats = PassStats::default();
        let due = store.read(|r| n::due_users(r, now, self.cfg.max_users_per_pass))?;
        let mut stop_key = None;
        // Digests are built and rendered outside the write lock, then each chunk of users is
        // finished in one write: one batch per chunk instead of one per user.
        for chunk in due.chunks(PASS_CHUNK) {
            let mut finished: Vec<(i64, u64, Option<digest::Digest>, Option<OutgoingMail>)> =
                Vec::with_capacity(chunk.len());
            for &(time, user) in chunk {
                let digest = store.read(|r| {
                    if n::state(r, user)?.due != Some(time) {
                        return Ok(None);
                    }
                    digest::build(r, user, &self.fanout).map(Some)
                })?;
                let Some(mut digest) = digest else {
                    finished.push((time, user, None, None));
                    continue;
                };
                // The one-click stop link needs the HTTP pages, which run with subscriptions.
                if let (Some(base_url), Some(email)) = (&self.stop_links, &digest.email)
                    && !digest.issues.is_empty()
                {
                    if stop_key.is_none() {
                        stop_key = Some(super::stop_link::key(store)?);
                    }
                    let key = stop_key.as_ref().expect("just made");
                    let token = super::stop_link::token(key, user, email);
                    digest.stop_url = Some(super::stop_link::url(base_url, user, &token));
                }
                let mail = if digest.issues.is_empty() {
                    None
                } else {
                    match digest::render(
                        &digest,
                        &self.templates,
                        &self.mail,
                        &self.server_name,
                        now,
                    ) {
                        Ok(m) => Some(m),
                        Err(e) => {
                            // Keep the changes pending; the next pass tries again.
                            tracing::error!(user, error = %e, "cannot render digest");
                            continue;
                        }
                    }
                };
                finished.push((time, user, Some(digest), mail));
            }
            let (_, seq) = store.write(|w| {
                for (time, user, digest, mail) in &finished {
                    match digest {
                        // A stale index entry: the user's state points elsewhere.
                        None => {
                            if n::state(w, *user)?.due != Some(*time) {
                                n::drop_due(w, *time, *user);
                            }
                        }
                        Some(d) => {
                            n::finish_user(w, *user, &d.covered, mail.clone(), now, &self.fanout)?;
                        }
                    }
                }
                Ok(())
            })?;
            for (_, _, digest, mail) in &finished {
                stats.users += usize::from(digest.is_some());
                stats.queued += usize::from(mail.is_some());
            }
            stats.seq = stats.seq.max(seq);
        }
        let (queued, seq) = super::report::pass(self, store, now)?;
        stats.queued += queued;
        stats.seq = stats.seq.max(seq);
        for channel in &self.channels {
            let (queued, seq) = channel.pass(store, &self.templates, now)?;
            stats.queued += queued;
            stats.seq = stats.seq.max(seq);
        }
        // One INFO line per pass that did something (digests and subscriptions together).
        if stats.users > 0 || stats.queued > 0 {
            tracing::info!(
                users = stats.users,
                queued = stats.queued,
                "notification pass"
            );
        }
        Ok(stats)
    }

    /// The delay before attempt `attempts + 1` after a transient failure.
    pub fn backoff(&self, attempts: u32) -> i64 {
        let base = self.cfg.retry_base_secs.max(1);
        let factor = 1u64 << attempts.saturating_sub(1).min(30);
        base.saturating_mul(factor)
            .min(self.cfg.retry_max_secs.max(base)) as i64
    }

    /// How long the transport is left alone after its `failures`-th consecutive outage:
    /// `breaker_base_secs`, doubling, capped at `retry_max_secs`.
    pub fn breaker_delay(&self, failures: u32) -> i64 {
        let base = self.cfg.breaker_base_secs.max(1);
        let factor = 1u64 << failures.saturating_sub(1).min(30);
        base.saturating_mul(factor)
            .min(self.cfg.retry_max_secs.max(1)) as i64
    }

    /// The breaker's state now.
    pub fn breaker(&self) -> Breaker {
        self.breaker_lock().clone()
    }

    fn breaker_lock(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends the breaker's wait (an admin asked for a message to be sent now): the next round
    /// tries one message as the probe. A failed probe opens it again, with the next delay.
    pub fn lift_breaker(&self, now: i64) {
        let mut b = self.breaker_lock();
        if b.holds(now) {
            b.retry_at = now;
            tracing::info!(
                failures = b.failures,
                "mail transport backoff lifted by an admin"
            );
        }
    }

    /// An outage at `at`: the breaker opens (again) for the next delay. Logged once per
    /// opening.
    fn open_breaker(&self, at: i64, error: &str) {
        let mut b = self.breaker_lock();
        b.failures = b.failures.saturating_add(1);
        let delay = self.breaker_delay(b.failures);
        b.retry_at = at.saturating_add(delay);
        b.last_error = error.to_string();
        tracing::warn!(
            failures = b.failures,
            retry_in_secs = delay,
            %error,
            "mail transport unavailable: outbox held"
        );
    }

    /// The transport answered: the breaker closes.
    fn close_breaker(&self) {
        let mut b = self.breaker_lock();
        if !b.is_closed() {
            tracing::info!(
                outages = b.failures,
                "mail transport answers again: outbox resumed"
            );
            *b = Breaker::default();
        }
    }

    /// Tries every queued message that is due at `now`, earliest first, unless the breaker
    /// holds the transport; stops at the first outage (see the module comment).
    pub async fn send_due(&self, store: &Store, now: i64) -> Result<SendStats> {
        let _one_at_a_time = self.send_lock.lock().await;
        let started = std::time::Instant::now();
        let mut stats = SendStats::default();
        let ids = store.read(|r| n::outbox_due(r, now, 1000))?;
        if self.breaker().holds(now) {
            stats.held = ids.len();
            return Ok(stats);
        }
        // What we just read may belong to a write that is not on disk yet (a command queued it
        // and is still waiting for its flush): mail never leaves before it is durable.
        store.durable(store.last_applied()).await;
        for (index, &id) in ids.iter().enumerate() {
            let Some(entry) = store.read(|r| n::outbox_entry(r, id))? else {
                continue;
            };
            if entry.state != OutboxState::Queued {
                continue;
            }
            // Errors as (transient, outage, text); `tried`: the message went to the transport.
            let (result, tried) = match entry.mail.to_message() {
                Ok(msg) => (
                    self.mailer
                        .send(&msg)
                        .await
                        .map_err(|e| (e.is_transient(), e.is_outage(), e.to_string())),
                    true,
                ),
                Err(e) => (Err((false, false, e.to_string())), false),
            };
            // The delay counts from this failure, not from the start of the run (which may be
            // a send timeout ago).
            let failed_at = now + started.elapsed().as_secs() as i64;
            let outage = match &result {
                Err((_, true, error)) => Some(error.clone()),
                _ => None,
            };
            // Any answer (even a refusal of this message) shows the transport works.
            let answered = tried && outage.is_none();
            let seq = match result {
                Ok(()) => {
                    stats.sent += 1;
                    crate::metrics::global().mail(true);
                    tracing::debug!(id, user = entry.user, "mail sent");
                    store
                        .write(|w| {
                            if let Some(cur) = n::outbox_entry(w, id)? {
                                n::outbox_remove(w, &cur);
                            }
                            Ok(())
                        })?
                        .1
                }
                Err((transient, _, error)) => {
                    crate::metrics::global().mail(false);
                    let attempts = entry.attempts + 1;
                    let retry = transient && attempts < self.cfg.max_attempts;
                    let mut new = entry.clone();
                    new.attempts = attempts;
                    new.last_error = Some(error.clone());
                    if retry {
                        stats.deferred += 1;
                        new.next_attempt = failed_at + self.backoff(attempts);
                        tracing::warn!(id, attempts, %error, "mail deferred");
                    } else {
                        stats.failed += 1;
                        new.state = OutboxState::Failed;
                        tracing::error!(id, attempts, %error, "mail failed");
                    }
                    store
                        .write(|w| match n::outbox_entry(w, id)? {
                            Some(cur) if cur == entry => n::outbox_update(w, &cur, &new),
                            // Deleted or retried by an admin (DELETE / RETRY OUTBOX) while the
                            // send was under way: the admin's change stands.
                            _ => Ok(()),
                        })?
                        .1
                }
            };
            store.durable(seq).await;
            if let Some(error) = outage {
                self.open_breaker(failed_at, &error);
                stats.held = ids.len() - index - 1;
                break;
            }
            if answered {
                self.close_breaker();
            }
        }
        Ok(stats)
    }

    /// A pass now, then an outbox run: what `RUN NOTIFICATIONS` asks of the background task.
    pub async fn request_run(&self) -> Result<RunReport> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(tx)
            .await
            .map_err(|_| Error::internal("the notification task is not running"))?;
        rx.await
            .map_err(|_| Error::internal("the notification task stopped"))?
    }
}

/// Counts a digest pass and its duration in the metrics when it ends.
struct PassTimer(std::time::Instant);

impl Drop for PassTimer {
    fn drop(&mut self) {
        crate::metrics::global().pass(self.0.elapsed());
    }
}

/// One pass (on the blocking pool) followed by an outbox run.
async fn pass_and_send(store: &Arc<Store>, notifier: &Arc<Notifier>) -> Result<RunReport> {
    let (s, nf) = (store.clone(), notifier.clone());
    let pass = tokio::task::spawn_blocking(move || nf.run_pass(&s, now()))
        .await
        .map_err(Error::internal)??;
    // Queued mail is durable before it is sent.
    store.durable(pass.seq).await;
    let send = notifier.send_due(store, now()).await?;
    Ok(RunReport { pass, send })
}

/// The background task of `notifier` over `store`: a pass every `interval_secs`, the outbox
/// whenever a message is due, and `RUN NOTIFICATIONS` requests; ends when `stop` turns true.
pub async fn run(store: Arc<Store>, notifier: Arc<Notifier>, mut stop: watch::Receiver<bool>) {
    let Some(mut inbox) = notifier.inbox.lock().ok().and_then(|mut i| i.take()) else {
        return;
    };
    store.ready().await;
    let interval = Duration::from_secs(notifier.cfg.interval_secs.max(1));
    let mut next_pass = tokio::time::Instant::now();
    loop {
        if tokio::time::Instant::now() >= next_pass {
            next_pass = tokio::time::Instant::now() + interval;
            if let Err(e) = pass_and_send(&store, &notifier).await {
                tracing::error!(error = %e, "notification pass failed");
            }
        } else if let Err(e) = notifier.send_due(&store, now()).await {
            tracing::error!(error = %e, "outbox run failed");
        }
        // Wake for the next pass or the next retry, whichever comes first.
        let mut wake = next_pass;
        if let Ok(Some(at)) = store.read(|r| n::outbox_next_attempt(r)) {
            // While the breaker holds the transport, nothing is tried before it reopens.
            let breaker = notifier.breaker();
            let at = if breaker.is_closed() {
                at
            } else {
                at.max(breaker.retry_at)
            };
            // At least a short pause, so a message that keeps being due cannot spin the loop.
            let wait =
                Duration::from_secs((at - now()).max(0) as u64).max(Duration::from_millis(50));
            wake = wake.min(tokio::time::Instant::now() + wait);
        }
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            request = inbox.recv() => {
                if let Some(reply) = request {
                    let _ = reply.send(pass_and_send(&store, &notifier).await);
                }
            }
            _ = notifier.wake.notified() => {
                // Mail never leaves before the command that queued it is durable.
                let seq = notifier.wake_seq.load(std::sync::atomic::Ordering::Acquire);
                store.durable(seq).await;
            }
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
    }
    tracing::debug!("notification task stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::notify::{PREF_EMAIL, PREF_FREQUENCY, Watch, set_pref, set_watch};
    use crate::store::users;
    use crate::store::{EventKind, IssueEvent, key};
    use crate::store::{issues, projects};

    struct Fixture {
        _dir: tempfile::TempDir,
        store: Store,
        notifier: Notifier,
    }

    /// User 2 watches folder 1 (project 1) with the given frequency and zone.
    fn fixture(freq: &str, tz: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data"), 1 << 20).unwrap();
        let mail = MailConfig {
            file_dir: dir.path().join("mail"),
            ..MailConfig::default()
        };
        let notifier = Notifier::new(&NotifyConfig::default(), &mail, "Tracker", "+0000").unwrap();
        store.enable_fanout(notifier.fanout.clone());
        store
            .write(|w| {
                users::insert(w, "admin", "Admin", 2, "x".into())?;
                users::insert(w, "ann", "Ann", 1, "x".into())?;
                projects::insert(w, "Web")?;
                projects::insert_folder(w, 1, 1, "Bugs")?;
                projects::set_member(w, 1, 2, 1)?;
                set_pref(w, 2, PREF_EMAIL, "ann@example.org", 0)?;
                crate::store::email::mark_confirmed(w, 2, "ann@example.org")?;
                if !freq.is_empty() {
                    set_pref(w, 2, PREF_FREQUENCY, freq, 0)?;
                }
                if !tz.is_empty() {
                    set_pref(w, 2, crate::store::notify::PREF_TIMEZONE, tz, 0)?;
                }
                set_watch(w, 2, Watch::Folder(1), true)
            })
            .unwrap();
        Fixture {
            _dir: dir,
            store,
            notifier,
        }
    }

    impl Fixture {
        /// Admin changes issue `issue` at `time`.
        fn change(&self, issue: u64, time: i64) {
            self.store
                .write(|w| {
                    let stamp = w.next_stamp()?;
                    let record = issues::Issue {
                        id: issue,
                        folder: 1,
                        name: format!("Issue {issue}"),
                        stamp,
                        created: time,
                        created_by: 1,
                        modified: time,
                        modified_by: 1,
                    };
                    w.put(key("issue", &[issue]), &record)?;
                    w.record_event(&IssueEvent {
                        stamp,
                        issue,
                        folder: 1,
                        project: 1,
                        user: 1,
                        time,
                        kind: EventKind::Commented,
                    })
                })
                .unwrap();
        }

        fn pass(&self, now: i64) -> usize {
            self.notifier.run_pass(&self.store, now).unwrap().queued
        }

        fn outbox(&self) -> Vec<n::OutboxEntry> {
            self.store.read(|r| n::outbox_all(r)).unwrap()
        }
    }

    fn utc(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }

    #[test]
    fn immediately_collapses_changes_and_respects_the_min_interval() {
        let f = fixture("", "");
        let t = utc("2024-03-01T10:00:00Z");
        f.change(1, t);
        f.change(1, t + 1);
        f.change(2, t + 2);
        assert_eq!(f.pass(t - 1), 0, "nothing is due before the change");
        assert_eq!(f.pass(t + 5), 1);
        let out = f.outbox();
        assert_eq!(out.len(), 1);
        let mail = &out[0].mail;
        assert_eq!(mail.subject, "[Web] 3 changes in 2 issues");
        assert_eq!(mail.message_id, "digest-2-3@localhost");
        let text = mail.text.as_deref().unwrap();
        assert_eq!(text.matches("#1 Issue 1").count(), 1, "{text}");
        assert_eq!(text.matches("added a comment").count(), 3, "{text}");
        assert!(text.contains("2024-03-01 10:00 (+0000), Admin"), "{text}");
        assert!(mail.html.is_some());
        // The next change waits for the minimum interval (300 s) after the last mail.
        f.change(1, t + 10);
        assert_eq!(f.pass(t + 200), 0);
        assert_eq!(f.pass(t + 305), 1);
        let out = f.outbox();
        assert_eq!(out[1].mail.subject, "[Web] #1 Issue 1");
        assert_eq!(
            out[1].mail.in_reply_to.as_deref(),
            Some("issue-1@localhost")
        );
        assert_eq!(f.pass(t + 10_000), 0, "nothing left");
    }

    #[test]
    fn daily_waits_for_the_local_time_and_catches_up_once() {
        let f = fixture("DAILY time=\"08:30\"", "+0100");
        // 10:00 local on 1 March: after today's slot, so tomorrow 08:30 local (07:30 UTC).
        f.change(1, utc("2024-03-01T09:00:00Z"));
        assert_eq!(f.pass(utc("2024-03-01T23:00:00Z")), 0);
        assert_eq!(f.pass(utc("2024-03-02T07:29:59Z")), 0);
        assert_eq!(f.pass(utc("2024-03-02T07:30:00Z")), 1);
        // A change on the 2nd; the server is down from the 2nd to the 5th: one mail.
        f.change(1, utc("2024-03-02T12:00:00Z"));
        assert_eq!(f.pass(utc("2024-03-05T15:00:00Z")), 1);
        assert_eq!(f.pass(utc("2024-03-05T15:01:00Z")), 0);
        // The next change waits for the next morning, not for a missed slot.
        f.change(1, utc("2024-03-05T16:00:00Z"));
        assert_eq!(f.pass(utc("2024-03-06T07:00:00Z")), 0);
        assert_eq!(f.pass(utc("2024-03-06T07:31:00Z")), 1);
        assert_eq!(f.outbox().len(), 3);
    }

    #[test]
    fn weekly_follows_the_day_and_daylight_saving() {
        // Mondays 09:00 in Warsaw: CET (+0100) in March until the 31st, CEST (+0200) after.
        let f = fixture("WEEKLY day=1 hour=\"09:00\"", "Europe/Warsaw");
        f.change(1, utc("2024-03-20T12:00:00Z")); // a Wednesday
        assert_eq!(f.pass(utc("2024-03-25T07:59:00Z")), 0);
        assert_eq!(f.pass(utc("2024-03-25T08:00:00Z")), 1);
        f.change(1, utc("2024-03-26T12:00:00Z"));
        assert_eq!(f.pass(utc("2024-04-01T06:59:00Z")), 0);
        assert_eq!(f.pass(utc("2024-04-01T07:00:00Z")), 1, "09:00 CEST");
    }

    #[test]
    fn revoked_membership_sends_nothing() {
        let f = fixture("", "");
        let t = utc("2024-03-01T10:00:00Z");
        f.change(1, t);
        f.store
            .write(|w| {
                w.remove(key("member", &[1, 2]));
                w.remove(key("user-member", &[2, 1]));
                Ok(())
            })
            .unwrap();
        assert_eq!(f.pass(t + 1), 0);
        assert!(f.outbox().is_empty());
        let left = f.store.read(|r| n::pending(r, 2)).unwrap();
        assert!(left.is_empty(), "dropped, not kept forever");
        assert_eq!(f.store.read(|r| n::due_users(r, t + 10, 10)).unwrap(), []);
    }

    #[test]
    fn format_preference_picks_the_parts() {
        let f = fixture("", "");
        f.store
            .write(|w| set_pref(w, 2, crate::store::notify::PREF_FORMAT, "text", 0))
            .unwrap();
        let t = utc("2024-03-01T10:00:00Z");
        f.change(1, t);
        f.pass(t);
        let mail = &f.outbox()[0].mail;
        assert!(mail.text.is_some() && mail.html.is_none());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let f = fixture("", "");
        let b: Vec<i64> = (1..=12).map(|a| f.notifier.backoff(a)).collect();
        assert_eq!(&b[..4], &[60, 120, 240, 480]);
        assert_eq!(b[11], 6 * 3600);
    }

    /// A notifier mailing through SMTP to a port nothing listens on (connection refused: an
    /// outage, at once), with three messages queued at `t`.
    fn refused_fixture(t: i64) -> Fixture {
        let f = fixture("", "");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mail = MailConfig {
            transport: crate::mail::config::TransportKind::Smtp,
            smtp_port: port,
            ..MailConfig::default()
        };
        let cfg = NotifyConfig {
            retry_base_secs: 60,
            retry_max_secs: 3600,
            breaker_base_secs: 30,
            ..NotifyConfig::default()
        };
        let notifier = Notifier::new(&cfg, &mail, "Tracker", "+0000").unwrap();
        let f = Fixture { notifier, ..f };
        f.change(1, t);
        f.pass(t);
        let queued = f.outbox()[0].mail.clone();
        f.store
            .write(|w| {
                n::queue_mail(w, 2, queued.clone(), t)?;
                n::queue_mail(w, 2, queued, t)
            })
            .unwrap();
        f
    }

    fn attempts(f: &Fixture) -> Vec<u32> {
        f.outbox().iter().map(|e| e.attempts).collect()
    }

    #[tokio::test]
    async fn an_outage_stops_the_round_and_holds_the_transport() {
        let t = now();
        let f = refused_fixture(t);
        let nf = &f.notifier;
        let stats = nf.send_due(&f.store, t).await.unwrap();
        assert_eq!((stats.sent, stats.deferred, stats.held), (0, 1, 2));
        assert_eq!(attempts(&f), [1, 0, 0], "the others were not tried");
        let b = nf.breaker();
        assert_eq!(b.failures, 1);
        assert!(b.retry_at >= t + 30 && b.retry_at <= t + 32, "{b:?}");
        assert!(b.last_error.contains("smtp"), "{b:?}");
        // Held: nothing is tried, nothing counted, before the breaker reopens.
        let stats = nf.send_due(&f.store, t + 29).await.unwrap();
        assert_eq!((stats.deferred, stats.held), (0, 2));
        assert_eq!(attempts(&f), [1, 0, 0]);
        // Half-open: one probe (the earliest due message), which fails: open again, doubled.
        let at = b.retry_at;
        let stats = nf.send_due(&f.store, at).await.unwrap();
        assert_eq!((stats.deferred, stats.held), (1, 1));
        assert_eq!(attempts(&f), [1, 1, 0]);
        let b = nf.breaker();
        assert_eq!(b.failures, 2);
        assert!(b.retry_at >= at + 60 && b.retry_at <= at + 62, "{b:?}");
        // An admin's RETRY lifts the wait: the next round probes at once.
        nf.lift_breaker(at + 1);
        assert!(!nf.breaker().holds(at + 1));
        nf.send_due(&f.store, at + 1).await.unwrap();
        assert_eq!(nf.breaker().failures, 3);
        assert_eq!(attempts(&f), [1, 1, 1]);
    }

    #[tokio::test]
    async fn breaker_delay_doubles_up_to_the_retry_cap() {
        let f = refused_fixture(now());
        let d: Vec<i64> = (1..=9).map(|n| f.notifier.breaker_delay(n)).collect();
        assert_eq!(d, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
    }

    #[tokio::test]
    async fn the_outbox_sends_through_the_transport_and_forgets_the_message() {
        let f = fixture("", "");
        let t = now();
        f.change(1, t);
        assert_eq!(f.pass(t), 1);
        let stats = f.notifier.send_due(&f.store, t).await.unwrap();
        assert_eq!(stats.sent, 1);
        assert!(f.outbox().is_empty());
        let files = std::fs::read_dir(f._dir.path().join("mail"))
            .unwrap()
            .count();
        assert_eq!(files, 1);
    }
}
