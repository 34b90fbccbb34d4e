//! Live-key counts of the sparse key families, so that looking under an empty group costs a
//! hash lookup instead of three ordered searches.
//!
//! Every recorded change looks for watchers and subscriptions of its issue and its folder:
//! four prefix visits per change, nearly always over nothing (in the durable-write mix they
//! were a quarter of a write's instructions). The families below hold few keys, grouped by
//! their first id (`watch-issue/<issue>/<user>` is in group `watch-issue/<issue>`); [`Groups`]
//! knows which groups hold any key, and [`super::mem::Mem`] keeps it up to date on every
//! write.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Families whose keys are `<family>/<id>/...` and that are read by group on hot paths.
pub const FAMILIES: [&str; 4] = ["watch-folder", "watch-issue", "folder-sub", "issue-sub"];

/// How many live keys each non-empty group holds, by (index in [`FAMILIES`], id).
#[derive(Default)]
pub struct Groups(HashMap<Group, u32, BuildHasherDefault<IdHasher>>);

/// A group: the index of its family in [`FAMILIES`] and its first id.
pub type Group = (u8, u64);

/// The group of `key` (`<family>/<8-byte id>...`) if it belongs to one of [`FAMILIES`].
pub fn group_of(key: &[u8]) -> Option<Group> {
    // Families start with 'f', 'i' or 'w': every other key leaves after one comparison.
    if !matches!(key.first(), Some(b'f' | b'i' | b'w')) {
        return None;
    }
    FAMILIES.iter().enumerate().find_map(|(i, family)| {
        let n = family.len();
        (key.len() >= n + 9 && key.starts_with(family.as_bytes()) && key[n] == b'/').then(|| {
            let id = u64::from_be_bytes(key[n + 1..n + 9].try_into().expect("8 bytes"));
            (i as u8, id)
        })
    })
}

/// Hashes a [`Group`] with one multiplication: ids are not chosen by clients (they count
/// up), so SipHash's protection against crafted collisions buys nothing here.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

impl Groups {
    /// Counts a live key (loading).
    pub fn add(&mut self, key: &[u8]) {
        if let Some(g) = group_of(key) {
            *self.0.entry(g).or_default() += 1;
        }
    }

    /// Records a write of `key`: it was live before (`was`) and is live after (`is`).
    pub fn changed(&mut self, key: &[u8], was: bool, is: bool) {
        let Some(g) = group_of(key) else { return };
        match (was, is) {
            (false, true) => *self.0.entry(g).or_default() += 1,
            (true, false) => {
                if let Some(n) = self.0.get_mut(&g) {
                    *n -= 1;
                    if *n == 0 {
                        self.0.remove(&g);
                    }
                }
            }
            _ => {}
        }
    }

    /// True when `prefix` lies within a group (it starts with `<family>/<id>`) that holds
    /// no key, so no key starts with `prefix`; false when the caller must look.
    pub fn known_empty(&self, prefix: &[u8]) -> bool {
        group_of(prefix).is_some_and(|g| !self.0.contains_key(&g))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::keys::key;

    #[test]
    fn groups_follow_their_keys_and_other_prefixes_are_never_known_empty() {
        let mut g = Groups::default();
        let watch = key("watch-issue", &[7, 2]);
        assert!(g.known_empty(&key("watch-issue", &[7])));
        g.changed(&watch, false, true);
        g.changed(&watch, true, true);
        assert!(!g.known_empty(&key("watch-issue", &[7])));
        let mut slash = key("watch-issue", &[7]);
        slash.push(b'/');
        assert!(!g.known_empty(&slash));
        assert!(!g.known_empty(&watch));
        assert!(g.known_empty(&key("watch-issue", &[8])));
        assert!(g.known_empty(&key("watch-issue", &[8, 2])));
        assert!(g.known_empty(&key("watch-folder", &[7])));
        g.changed(&watch, true, false);
        assert!(g.known_empty(&key("watch-issue", &[7])));
        // Wider than a group, or not a sparse family: the caller must look.
        assert!(!g.known_empty(b"watch-issue/"));
        assert!(!g.known_empty(&key("folder-stamp", &[7])));
        assert!(!g.known_empty(&key("issue", &[7])));
    }
}
