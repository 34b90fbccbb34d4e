//! The memory all connections together may hold for literals (uploads being received).
//!
//! A literal takes its announced size from the budget before its first byte is read and
//! gives it back once its command has run, so many slow or simultaneous uploads cannot
//! together exhaust the server's memory; a literal that does not fit is refused at once
//! and its bytes are skipped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone)]
pub struct LiteralBudget {
    /// Bytes in all; `u64::MAX` when the budget is off.
    total: u64,
    used: Arc<AtomicU64>,
}

/// Bytes taken from a [`LiteralBudget`]; given back on drop.
#[derive(Debug)]
pub struct Held {
    bytes: u64,
    used: Arc<AtomicU64>,
}

impl LiteralBudget {
    /// `total` 0 means no budget.
    pub fn new(total: u64) -> Self {
        LiteralBudget {
            total: if total == 0 { u64::MAX } else { total },
            used: Arc::default(),
        }
    }

    /// Takes `bytes`, or None when they would exceed the budget.
    pub fn take(&self, bytes: u64) -> Option<Held> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&n| n <= self.total)
            })
            .ok()?;
        Some(Held {
            bytes,
            used: self.used.clone(),
        })
    }

    /// Bytes currently taken.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_up_to_the_total_and_gives_back_on_drop() {
        let b = LiteralBudget::new(100);
        let a = b.take(60).unwrap();
        assert!(b.take(41).is_none());
        let c = b.take(40).unwrap();
        assert_eq!(b.used(), 100);
        drop(a);
        assert_eq!(b.used(), 40);
        assert!(b.take(60).is_some());
        drop(c);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn zero_means_no_budget() {
        let b = LiteralBudget::new(0);
        let _a = b.take(u64::MAX / 2).unwrap();
        assert!(b.take(u64::MAX / 2).is_some());
    }
}
