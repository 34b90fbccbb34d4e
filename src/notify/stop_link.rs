//! The one-click link at the foot of a digest that stops a user's notification mail.
//!
//! The token is an HMAC of the user id and the address the mail went to, under a secret
//! made once and kept in the store: nothing per mail is stored, a link stops working once
//! the address changes, and a guessed URL names no user.

use crate::error::Result;
use crate::store::{Read, Store, key_str};
use ring::hmac;

const SECRET: (&str, &str) = ("meta", "digest-stop-secret");

/// The signing key, made on first use (its write is durable before any mail that uses it:
/// batches become durable in order).
pub fn key(store: &Store) -> Result<hmac::Key> {
    let k = key_str(SECRET.0, SECRET.1);
    if let Some(secret) = store.read(|r| r.get::<Vec<u8>>(&k))? {
        return Ok(hmac::Key::new(hmac::HMAC_SHA256, &secret));
    }
    let fresh: [u8; 32] = rand::random();
    let (secret, _) = store.write(|w| match w.get::<Vec<u8>>(&k)? {
        Some(s) => Ok(s),
        None => {
            w.put(k.clone(), &fresh.to_vec())?;
            Ok(fresh.to_vec())
        }
    })?;
    Ok(hmac::Key::new(hmac::HMAC_SHA256, &secret))
}

/// The key when one was ever made (the pages only check links).
pub fn existing_key(r: &impl Read) -> Result<Option<hmac::Key>> {
    Ok(r.get::<Vec<u8>>(&key_str(SECRET.0, SECRET.1))?
        .map(|s| hmac::Key::new(hmac::HMAC_SHA256, &s)))
}

/// The token of `user`'s link while their address is `email`: 128 bits, hex.
pub fn token(key: &hmac::Key, user: u64, email: &str) -> String {
    let tag = hmac::sign(key, format!("stop-digest\0{user}\0{email}").as_bytes());
    tag.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `token` is the current token of `user` with address `email` (constant time).
pub fn valid(key: &hmac::Key, user: u64, email: &str, token: &str) -> bool {
    use subtle::ConstantTimeEq;
    let want = self::token(key, user, email);
    want.len() == token.len() && bool::from(want.as_bytes().ct_eq(token.as_bytes()))
}

/// `BASE/digest/USER/stop?token=…`
pub fn url(base: &str, user: u64, token: &str) -> String {
    format!("{base}/digest/{user}/stop?token={token}")
}
