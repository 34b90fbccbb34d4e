//! Secret tokens for confirm and unsubscribe links.
//!
//! A token is 128 random bits written as 32 lowercase hex digits (safe in URLs, mail bodies
//! and protocol strings without escaping). Only its SHA-256 is stored, so a copy of the
//! database confirms or cancels nothing; comparisons of hashes are constant-time so that
//! response timing does not reveal how much of a guess was right.

use ring::digest::{SHA256, digest};
use subtle::ConstantTimeEq;

/// The SHA-256 of a token, as stored.
pub type TokenHash = [u8; 32];

/// A fresh random token and its hash.
pub fn generate() -> (String, TokenHash) {
    let bytes: [u8; 16] = rand::random();
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let hash = hash(&token);
    (token, hash)
}

/// The stored form of `token`. Any string may be hashed: a malformed token simply matches
/// nothing.
pub fn hash(token: &str) -> TokenHash {
    let d = digest(&SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Whether `token` hashes to `stored`, in time independent of where they differ.
pub fn matches(token: &str, stored: &TokenHash) -> bool {
    hash(token).ct_eq(stored).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_128_bit_hex_and_distinct() {
        let (a, ha) = generate();
        let (b, hb) = generate();
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
        assert_ne!(ha, hb);
        assert!(matches(&a, &ha));
        assert!(!matches(&b, &ha));
        assert!(!matches("", &ha));
        assert!(!matches(&a.to_uppercase(), &ha));
    }

    #[test]
    fn hash_is_sha256() {
        let h = hash("abc");
        assert_eq!(
            h[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "SHA-256('abc') starts with ba7816bf"
        );
    }
}
