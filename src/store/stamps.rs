//! The global stamp and the folder stamps, derived from the keys that carry them instead of
//! stored in records of their own.
//!
//! Every stamp keys an event (`event/<stamp>`, never removed), and every issue sits under its
//! current stamp in `folder-stamp/<folder>/<stamp>`. So the last stamp given out is the
//! highest event key, and a folder's stamp (the stamp of its latest issue change) is the
//! highest stamp ever indexed under the folder: issues never leave their folder. Storing
//! them as well (`ctr/stamp`, the folder record's `stamp`) cost two more records per change,
//! and the rewritten folder record invalidated LIST PROJECTS' cached lines at every write.
//! [`super::mem::Mem`] keeps [`Stamps`] up to date on every write and at load; data written
//! by older versions still holds `ctr/stamp`, which counts as a stamp given out.

use super::groups::IdHasher;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

const EVENT: &[u8] = b"event/";
const FOLDER_STAMP: &[u8] = b"folder-stamp/";
/// Removal stubs of issues that left a folder ([`super::removal`]): they keep its stamp.
const FOLDER_GONE: &[u8] = b"folder-gone/";
const COUNTER: &[u8] = b"ctr/stamp";

/// The newest stamp given out, and each folder's stamp.
#[derive(Default, Clone)]
pub struct Stamps {
    last: u64,
    folders: HashMap<u64, u64, BuildHasherDefault<IdHasher>>,
}

/// The id at `at` in `key`, if 8 bytes follow there.
fn id_at(key: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(key.get(at..at + 8)?.try_into().ok()?))
}

impl Stamps {
    /// The newest stamp given out (0 before the first).
    pub fn last(&self) -> u64 {
        self.last
    }

    /// The stamp of the folder's latest issue change (0 while it has none).
    pub fn folder(&self, folder: u64) -> u64 {
        self.folders.get(&folder).copied().unwrap_or(0)
    }

    /// Takes note of a write of `key` (`value` `None`: a removal). Removals change nothing:
    /// the one removal of a folder's newest stamp comes with a newer one in the same batch,
    /// and DELETE FOLDER refuses a folder that holds issues.
    #[inline]
    pub fn observe(&mut self, key: &[u8], value: Option<&[u8]>) {
        let Some(value) = value else { return };
        match key.first() {
            Some(b'e') if key.len() == EVENT.len() + 8 && key.starts_with(EVENT) => {
                self.taken(id_at(key, EVENT.len()).unwrap_or(0));
            }
            Some(b'f') if key.len() == FOLDER_STAMP.len() + 17 && key.starts_with(FOLDER_STAMP) => {
                let at = FOLDER_STAMP.len();
                if let (Some(folder), Some(stamp)) = (id_at(key, at), id_at(key, at + 9)) {
                    let s = self.folders.entry(folder).or_default();
                    *s = (*s).max(stamp);
                }
            }
            Some(b'f') if key.len() == FOLDER_GONE.len() + 17 && key.starts_with(FOLDER_GONE) => {
                let at = FOLDER_GONE.len();
                if let (Some(folder), Some(stamp)) = (id_at(key, at), id_at(key, at + 9)) {
                    let s = self.folders.entry(folder).or_default();
                    *s = (*s).max(stamp);
                }
            }
            Some(b'c') if key == COUNTER => {
                self.taken(postcard::from_bytes::<u64>(value).unwrap_or(0));
            }
            _ => {}
        }
    }

    /// Takes note that `stamp` was given out.
    pub fn taken(&mut self, stamp: u64) {
        self.last = self.last.max(stamp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::key;

    #[test]
    fn events_and_the_old_counter_give_the_last_stamp() {
        let mut s = Stamps::default();
        s.observe(&key("event", &[7]), Some(b"x"));
        s.observe(&key("event", &[5]), Some(b"x"));
        assert_eq!(s.last(), 7);
        s.observe(COUNTER, Some(&postcard::to_allocvec(&9u64).unwrap()));
        assert_eq!(s.last(), 9);
        // Other keys under the same letters are not stamps.
        s.observe(&key("events", &[100]), Some(b"x"));
        s.observe(b"ctr/stamps", Some(&[100]));
        assert_eq!(s.last(), 9);
    }

    #[test]
    fn a_folder_keeps_its_newest_stamp_through_the_move_of_its_newest_issue() {
        let mut s = Stamps::default();
        s.observe(&key("folder-stamp", &[2, 10]), Some(b"i"));
        s.observe(&key("folder-stamp", &[2, 4]), Some(b"i"));
        s.observe(&key("folder-stamp", &[3, 11]), Some(b"i"));
        assert_eq!((s.folder(2), s.folder(3), s.folder(4)), (10, 11, 0));
        // An issue changes: its old index key goes, a newer one comes.
        s.observe(&key("folder-stamp", &[2, 10]), None);
        s.observe(&key("folder-stamp", &[2, 12]), Some(b"i"));
        assert_eq!(s.folder(2), 12);
    }
}
