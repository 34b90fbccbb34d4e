//! Password hashing with argon2id (salted, PHC string format).
//!
//! Each hash needs 19 MiB and tens of milliseconds of CPU, so the async entry points run
//! at most one hash per core at a time: a burst of logins queues instead of exhausting
//! memory or the blocking thread pool.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use std::sync::OnceLock;
use tokio::sync::Semaphore;

fn hashing_slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS
        .get_or_init(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())))
}

/// Runs `f` on the blocking pool once a hashing slot is free.
async fn in_slot<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let _slot = hashing_slots()
        .acquire()
        .await
        .expect("semaphore never closed");
    tokio::task::spawn_blocking(f)
        .await
        .expect("password hashing panicked")
}

/// [`hash`] without blocking the async workers.
pub async fn hash_async(password: String) -> String {
    in_slot(move || hash(&password)).await
}

/// [`verify`] without blocking the async workers.
pub async fn verify_async(password: String, hash: String) -> bool {
    in_slot(move || verify(&password, &hash)).await
}

/// Hashes a password into a PHC string (`$argon2id$...`).
pub fn hash(password: &str) -> String {
    Argon2::default()
        .hash_password(password.as_bytes())
        .expect("argon2 with default parameters")
        .to_string()
}

/// Checks a password against a stored hash; a malformed hash never matches.
pub fn verify(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// A hash that matches no password, for timing-equal checks of unknown logins.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash("no user has this password"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn hash_and_verify() {
        let h = super::hash("s3cret");
        assert!(h.starts_with("$argon2id$"));
        assert!(super::verify("s3cret", &h));
        assert!(!super::verify("s3cret!", &h));
        assert!(!super::verify("s3cret", "garbage"));
        assert_ne!(h, super::hash("s3cret"), "salted");
    }
}
