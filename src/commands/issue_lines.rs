//! The `I` and `V` lines of recently listed issues, encoded once and shared by all
//! connections: every client refresh runs LIST ISSUES on its folders, and those that
//! refresh after the same change ask for the same issues.
//!
//! An entry holds for one stamp of its issue: every change of an issue or of its values
//! moves the stamp. DELETE ATTRIBUTE removes values without moving stamps, so an entry
//! also names the store's attribute generation it was made under.

use std::collections::HashMap;
use std::sync::Mutex;

/// Shards, so the two worker threads rarely wait on one lock.
const SHARDS: usize = 16;
/// Entries per shard; a full shard starts over (about 100 bytes an entry: at most a few MB).
const SHARD_ENTRIES: usize = 4096;

struct Entry {
    stamp: u64,
    generation: u64,
    /// The `I` line, then the `V` lines from `split` on.
    bytes: Box<[u8]>,
    split: usize,
}

pub struct IssueLines {
    shards: Vec<Mutex<HashMap<u64, Entry>>>,
}

impl Default for IssueLines {
    fn default() -> Self {
        IssueLines {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

impl IssueLines {
    fn shard(&self, issue: u64) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        // A poisoned shard holds plain bytes, still whole: go on with it.
        self.shards[issue as usize % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Appends the issue's `I` line to `i` and its `V` lines to `v` if they are cached for
    /// this stamp and generation; false (nothing appended) otherwise.
    pub fn copy(
        &self,
        issue: u64,
        stamp: u64,
        generation: u64,
        i: &mut Vec<u8>,
        v: &mut Vec<u8>,
    ) -> bool {
        let shard = self.shard(issue);
        match shard.get(&issue) {
            Some(e) if e.stamp == stamp && e.generation == generation => {
                i.extend_from_slice(&e.bytes[..e.split]);
                v.extend_from_slice(&e.bytes[e.split..]);
                true
            }
            _ => false,
        }
    }

    /// Keeps the lines of one issue version: `i_line` and `v_lines` as LIST ISSUES sends them.
    pub fn keep(&self, issue: u64, stamp: u64, generation: u64, i_line: &[u8], v_lines: &[u8]) {
        let mut bytes = Vec::with_capacity(i_line.len() + v_lines.len());
        bytes.extend_from_slice(i_line);
        bytes.extend_from_slice(v_lines);
        let entry = Entry {
            stamp,
            generation,
            bytes: bytes.into_boxed_slice(),
            split: i_line.len(),
        };
        let mut shard = self.shard(issue);
        if shard.len() >= SHARD_ENTRIES && !shard.contains_key(&issue) {
            shard.clear();
        }
        shard.insert(issue, entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_holds_for_its_stamp_and_generation_only() {
        let c = IssueLines::default();
        c.keep(7, 100, 0, b"I 7\n", b"V 1 7 'x'\n");
        let (mut i, mut v) = (Vec::new(), Vec::new());
        assert!(c.copy(7, 100, 0, &mut i, &mut v));
        assert_eq!((&i[..], &v[..]), (&b"I 7\n"[..], &b"V 1 7 'x'\n"[..]));
        assert!(!c.copy(7, 101, 0, &mut i, &mut v), "a newer stamp");
        assert!(
            !c.copy(7, 100, 1, &mut i, &mut v),
            "an attribute was deleted"
        );
        assert!(!c.copy(8, 100, 0, &mut i, &mut v), "another issue");
        assert_eq!(i.len(), 4, "a miss appends nothing");
    }

    #[test]
    fn a_full_shard_starts_over() {
        let c = IssueLines::default();
        let ids: Vec<u64> = (0..=SHARD_ENTRIES as u64)
            .map(|n| n * SHARDS as u64)
            .collect();
        for &id in &ids {
            c.keep(id, 1, 0, b"I\n", b"");
        }
        let (mut i, mut v) = (Vec::new(), Vec::new());
        assert!(c.copy(*ids.last().unwrap(), 1, 0, &mut i, &mut v));
        assert!(!c.copy(ids[0], 1, 0, &mut i, &mut v));
        assert!(c.shard(0).len() <= SHARD_ENTRIES);
    }
}
