//! Time limits on transfers that allow slowness but not a stall: a literal being received
//! or a reply being sent is cut off only when it stops making progress, never for its total
//! duration (the rule of Apache's mod_reqtimeout `MinRate`).
//!
//! A transfer starts with `window` of time. Each byte moved earns `1 / min_rate` s more,
//! but the deadline never lies more than `window` ahead of the last progress, so credit
//! saved by a fast start cannot buy a long stall. A transfer at `min_rate` or faster never
//! times out; one byte now and then (slower than `min_rate`) times out about `window` after
//! it started; a stalled one times out `window` after its last byte. `min_rate` 0: any
//! byte restarts the window.

use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct Pace {
    window: Duration,
    min_rate: u64,
    deadline: Instant,
}

impl Pace {
    pub fn start(now: Instant, window: Duration, min_rate: u64) -> Self {
        Pace {
            window,
            min_rate,
            deadline: now + window,
        }
    }

    /// Records `bytes` moved at `now`.
    pub fn moved(&mut self, now: Instant, bytes: u64) {
        if bytes == 0 {
            return;
        }
        let cap = now + self.window;
        self.deadline = if self.min_rate == 0 {
            cap
        } else {
            let earned = Duration::from_secs_f64(bytes as f64 / self.min_rate as f64);
            (self.deadline + earned.min(self.window)).min(cap)
        };
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn steady_transfer_at_the_rate_never_times_out() {
        let t0 = Instant::now();
        let mut p = Pace::start(t0, 10 * S, 1000);
        for i in 1..=100u32 {
            let now = t0 + i * S;
            p.moved(now, 1000);
            assert!(p.deadline() > now + 9 * S, "second {i}");
        }
    }

    #[test]
    fn a_drip_times_out_about_a_window_after_the_start() {
        let t0 = Instant::now();
        let mut p = Pace::start(t0, 60 * S, 1024);
        for i in 1..=59u32 {
            p.moved(t0 + i * S, 1);
        }
        assert!(p.deadline() < t0 + 61 * S, "{:?}", p.deadline() - t0);
    }

    #[test]
    fn credit_from_a_fast_start_buys_no_more_than_a_window() {
        let t0 = Instant::now();
        let mut p = Pace::start(t0, 5 * S, 1000);
        p.moved(t0 + S, 1_000_000);
        assert_eq!(p.deadline(), t0 + 6 * S);
    }

    #[test]
    fn rate_zero_restarts_the_window_on_any_byte() {
        let t0 = Instant::now();
        let mut p = Pace::start(t0, 5 * S, 0);
        p.moved(t0 + 4 * S, 1);
        assert_eq!(p.deadline(), t0 + 9 * S);
        p.moved(t0 + 5 * S, 0);
        assert_eq!(p.deadline(), t0 + 9 * S);
    }
}
