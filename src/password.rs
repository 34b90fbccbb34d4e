//! Password hashing with argon2id (salted, PHC string format).

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

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
