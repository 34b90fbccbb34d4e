//! The checkpoint's layout in sled: every record, in large sorted chunks.
//!
//! sled's tree `chunks` holds a manifest under `m` (the layout's version and the log
//! sequence the chunks hold every batch up to) and the records under `c` + the first key of
//! each chunk. A chunk's value is up to [`TARGET`] bytes of records in key order, packed as
//! the in-memory base packs them (`key length u16 LE | value length u32 LE | key | value`):
//! a start copies the chunks into the base, with no per-record sled work or allocation.
//! A chunk covers the keys from its first key up to the next chunk's first key (the first
//! chunk also every key below it), so every key belongs to exactly one chunk.
//!
//! A checkpoint rewrites only the chunks whose range holds keys written since the last one
//! ([`Dirty`]), straight from the in-memory base, with the manifest in the same sled batch:
//! it is atomic. Chunks that grow past [`TARGET`] are cut in pieces; a short one is merged
//! with the next when both fit in one.
//!
//! Data directories of the first layout (one sled key per record in the tree `data`, and the
//! folded sequence under `~checkpoint`) still open: they are loaded key by key, and the first
//! checkpoint after the start writes every chunk, then drops the old tree.

use super::mem::{Packed, compare};
use crate::error::{Error, Result};
use std::collections::BTreeSet;
use std::ops::Bound;
use std::path::Path;

/// sled's tree of the chunks and the manifest.
pub const TREE: &str = "chunks";
/// The tree of the first layout, one key per record.
pub const OLD_TREE: &str = "data";
/// The first layout's key of the folded sequence (sorted after every record key).
pub const OLD_CHECKPOINT: &[u8] = b"~checkpoint";
const MANIFEST: &[u8] = b"m";
const CHUNK: u8 = b'c';
/// The layout version in the manifest.
const VERSION: u32 = 1;
/// The bytes of records a chunk is cut at: large enough that a load costs per byte, not per
/// chunk (a million issues make about 1 200), small enough that a checkpoint during a bulk
/// load rewrites little beside the new records.
pub const TARGET: usize = 1 << 20;

/// sled's key of the chunk starting with `first`.
pub fn chunk_key(first: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(first.len() + 1);
    k.push(CHUNK);
    k.extend_from_slice(first);
    k
}

fn manifest_bytes(folded: u64) -> [u8; 12] {
    let mut b = [0; 12];
    b[..4].copy_from_slice(&VERSION.to_be_bytes());
    b[4..].copy_from_slice(&folded.to_be_bytes());
    b
}

/// The folded sequence of the chunk layout's manifest; None when the tree has none (a new
/// store, or one of the first layout).
pub fn manifest(tree: &sled::Tree) -> Result<Option<u64>> {
    let Some(v) = tree.get(MANIFEST)? else {
        return Ok(None);
    };
    if v.len() != 12 || v[..4] != VERSION.to_be_bytes() {
        return Err(Error::internal(format!(
            "sled's checkpoint manifest is of an unknown version ({} bytes)",
            v.len()
        )));
    }
    Ok(Some(u64::from_be_bytes(v[4..].try_into().unwrap())))
}

/// The first layout's tree, when the database has one.
pub fn old_tree(db: &sled::Db) -> Result<Option<sled::Tree>> {
    let exists = db.tree_names().iter().any(|n| n.as_ref() == OLD_TREE.as_bytes());
    Ok(if exists {
        Some(db.open_tree(OLD_TREE)?)
    } else {
        None
    })
}

/// Whether sled holds the first layout and no manifest of the chunk layout: the next
/// checkpoint converts it.
pub fn is_old_layout(db: &sled::Db, tree: &sled::Tree) -> Result<bool> {
    Ok(manifest(tree)?.is_none() && old_tree(db)?.is_some_and(|t| !t.is_empty()))
}

/// The sequence the checkpoint holds every batch up to, in either layout (0: none).
pub fn folded_seq(db: &sled::Db, tree: &sled::Tree) -> Result<u64> {
    if let Some(f) = manifest(tree)? {
        return Ok(f);
    }
    if let Some(old) = old_tree(db)?
        && let Some(v) = old.get(OLD_CHECKPOINT)?
    {
        return Ok(u64::from_be_bytes(
            v.as_ref().try_into().map_err(Error::internal)?,
        ));
    }
    Ok(0)
}

/// One record's value, read from sled without loading the rest (start-up, before the load).
pub fn lookup(db: &sled::Db, tree: &sled::Tree, key: &[u8]) -> Result<Option<Vec<u8>>> {
    if manifest(tree)?.is_none() {
        return Ok(match old_tree(db)? {
            Some(old) => old.get(key)?.map(|v| v.to_vec()),
            None => None,
        });
    }
    let Some((k, v)) = tree.range(..=chunk_key(key)).next_back().transpose()? else {
        return Ok(None);
    };
    if k.first() != Some(&CHUNK) {
        return Ok(None);
    }
    let mut packed = Packed::default();
    packed.push_packed(&v).map_err(Error::internal)?;
    packed.seal();
    let r = packed.index_range(Bound::Included(key), Bound::Included(key));
    Ok((!r.is_empty()).then(|| {
        let s = packed.span(r);
        s[6 + key.len()..].to_vec()
    }))
}

/// Where the chunks are: the first key and size of each, in key order.
#[derive(Default, Debug, Clone, PartialEq)]
pub struct Index {
    chunks: Vec<Chunk>,
}

#[derive(Debug, Clone, PartialEq)]
struct Chunk {
    first: Vec<u8>,
    bytes: usize,
}

impl Index {
    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Chunk slots: the chunks, or one empty range over every key while there is none.
    fn slots(&self) -> usize {
        self.chunks.len().max(1)
    }

    /// The bytes of every chunk.
    pub fn bytes(&self) -> usize {
        self.chunks.iter().map(|c| c.bytes).sum()
    }

    /// The chunk whose range holds `key`.
    fn locate(&self, key: &[u8]) -> usize {
        self.chunks
            .partition_point(|c| compare(&c.first, key) != std::cmp::Ordering::Greater)
            .saturating_sub(1)
    }
}

/// The chunks holding keys written since the last checkpoint.
#[derive(Default, Debug)]
pub struct Dirty {
    slots: BTreeSet<usize>,
}

impl Dirty {
    /// Marks the chunks of `keys`. Keys mostly in key order (overlays') walk the index
    /// alongside instead of searching it for each.
    pub fn mark_sorted<'a>(&mut self, index: &Index, keys: impl Iterator<Item = &'a [u8]>) {
        let mut at = 0;
        let mut last = None;
        for k in keys {
            let ahead = at + 1 < index.chunks.len()
                && compare(&index.chunks[at + 1].first, k) != std::cmp::Ordering::Greater;
            let behind = at > 0 && compare(k, &index.chunks[at].first) == std::cmp::Ordering::Less;
            if ahead || behind {
                at = index.locate(k);
            }
            if last != Some(at) {
                self.slots.insert(at);
                last = Some(at);
            }
        }
    }

    /// Marks every chunk (a merge the checkpointer did not see; a conversion).
    pub fn mark_all(&mut self, index: &Index) {
        self.slots.extend(0..index.slots());
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Marks the slots of a plan that may not have been applied.
    pub fn mark_slots(&mut self, slots: &[usize]) {
        self.slots.extend(slots);
    }
}

/// A checkpoint ready to apply: the sled batch and the index once it is applied.
pub struct Plan {
    pub batch: sled::Batch,
    pub index: Index,
    /// The old chunk slots it replaces, and the keys it writes: if applying it fails, sled
    /// may hold either side, so the next plan rewrites those slots and removes those keys
    /// unless it writes them again.
    pub touched: Vec<usize>,
    pub inserted: Vec<Vec<u8>>,
    /// Chunks written and their bytes.
    pub written: usize,
    pub written_bytes: usize,
}

/// The chunks of `dirty`, taken from `base` (the records as of the log sequence `folded`),
/// replacing the old ones, and the manifest, as one batch.
pub fn plan(
    index: &Index,
    dirty: &Dirty,
    stale: &BTreeSet<Vec<u8>>,
    base: &Packed,
    folded: u64,
) -> Plan {
    let mut batch = sled::Batch::default();
    for k in stale {
        batch.remove(&k[..]);
    }
    let (mut touched, mut inserted) = (Vec::new(), Vec::new());
    let mut out = Vec::with_capacity(index.len() + dirty.len());
    let (mut written, mut written_bytes) = (0, 0);
    let n = index.chunks.len();
    let is_dirty = |i: usize| dirty.slots.contains(&i);
    let mut i = 0;
    while i < index.slots() {
        if !is_dirty(i) {
            out.extend(index.chunks.get(i).cloned());
            i += 1;
            continue;
        }
        let a = i;
        let mut b = i;
        let pieces = loop {
            while b + 1 < index.slots() && is_dirty(b + 1) {
                b += 1;
            }
            let lower = match a {
                0 => Bound::Unbounded,
                _ => Bound::Included(&index.chunks[a].first[..]),
            };
            let upper = match index.chunks.get(b + 1) {
                Some(next) => Bound::Excluded(&next.first[..]),
                None => Bound::Unbounded,
            };
            let pieces = cut(base, base.index_range(lower, upper));
            // A short last piece takes in the next chunk when both fit in one.
            let tail = pieces.last().map_or(0, |p| p.1);
            match index.chunks.get(b + 1) {
                Some(next) if tail > 0 && tail < TARGET / 2 && tail + next.bytes <= TARGET => {
                    b += 1;
                }
                _ => break pieces,
            }
        };
        touched.extend(a..=b);
        for old in &index.chunks[a.min(n)..(b + 1).min(n)] {
            batch.remove(chunk_key(&old.first));
        }
        for (r, bytes) in pieces {
            let first = base.key_at(r.start).to_vec();
            batch.insert(chunk_key(&first), base.span(r));
            inserted.push(chunk_key(&first));
            out.push(Chunk { first, bytes });
            written += 1;
            written_bytes += bytes;
        }
        i = b + 1;
    }
    batch.insert(MANIFEST, &manifest_bytes(folded)[..]);
    Plan {
        batch,
        index: Index { chunks: out },
        touched,
        inserted,
        written,
        written_bytes,
    }
}

/// Records `r` of `base` cut into pieces of at most [`TARGET`] bytes (a longer record
/// makes a piece of its own), with their sizes.
fn cut(base: &Packed, r: std::ops::Range<usize>) -> Vec<(std::ops::Range<usize>, usize)> {
    let mut pieces = Vec::new();
    let (mut start, mut acc) = (r.start, 0);
    for j in r.clone() {
        let len = base.span(j..j + 1).len();
        if acc > 0 && acc + len > TARGET {
            pieces.push((start..j, acc));
            (start, acc) = (j, 0);
        }
        acc += len;
    }
    if acc > 0 {
        pieces.push((start..r.end, acc));
    }
    pieces
}

/// Reads every chunk into one packed base, and their index. Chunks are read on two threads,
/// then copied once into a slab of their total size.
pub fn load(tree: &sled::Tree) -> Result<(Packed, Index)> {
    /// Where the second thread starts: `event`, `folder-stamp`, `issue` fall below it and
    /// `row`, `value` above, in about equal parts.
    const SPLIT: &[u8] = b"citem";
    fn read(iter: sled::Iter) -> Result<Vec<(sled::IVec, sled::IVec)>> {
        iter.map(|r| Ok(r?)).collect()
    }
    let start = chunk_key(b"");
    let end = [CHUNK + 1];
    let (low, high) = std::thread::scope(|s| {
        let high = s.spawn(|| read(tree.range(SPLIT..&end[..])));
        let low = read(tree.range(&start[..]..SPLIT));
        (low, high.join())
    });
    let mut all = low?;
    all.extend(high.map_err(|_| Error::internal("load thread panicked"))??);
    let total: usize = all.iter().map(|(_, v)| v.len()).sum();
    let mut packed = Packed::default();
    // About 80 bytes a record at the shapes measured; offsets grow as needed past it.
    packed.reserve(total, total / 64);
    let mut index = Index::default();
    for (k, v) in all {
        let first = k[1..].to_vec();
        let before = packed.len();
        packed
            .push_packed(&v)
            .map_err(|e| Error::internal(format!("checkpoint chunk damaged: {e}")))?;
        if packed.len() == before || packed.key_at(before) != first.as_slice() {
            return Err(Error::internal("checkpoint chunk damaged: its key is not its first record's"));
        }
        if before > 0 && compare(packed.key_at(before - 1), &first) != std::cmp::Ordering::Less {
            return Err(Error::internal("checkpoint chunks overlap"));
        }
        index.chunks.push(Chunk {
            first,
            bytes: v.len(),
        });
    }
    Ok((packed, index))
}

/// Makes what sled wrote durable: its log, and the blob files it keeps large values in
/// (sled 0.34 writes those without a sync of its own).
pub fn sync(dir: &Path) -> Result<()> {
    std::fs::File::open(dir.join("db"))?.sync_data()?;
    let blobs = dir.join("blobs");
    if blobs.is_dir() {
        for entry in std::fs::read_dir(&blobs)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                std::fs::File::open(entry.path())?.sync_data()?;
            }
        }
        super::wal::sync_dir(&blobs)?;
    }
    Ok(())
}

/// Writes records in key order straight into an empty checkpoint (`webissued import`), in
/// chunks, with nothing left to replay from a log.
pub struct BulkWriter {
    db: sled::Db,
    tree: sled::Tree,
    dir: std::path::PathBuf,
    chunk: Packed,
}

impl BulkWriter {
    pub fn open(dir: &Path) -> Result<BulkWriter> {
        let (db, tree) = super::checkpoint::open_sled(dir, 16 << 20)?;
        Ok(BulkWriter {
            db,
            tree,
            dir: dir.to_path_buf(),
            chunk: Packed::default(),
        })
    }

    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.chunk.push(key, value);
        if self.chunk.span(0..self.chunk.len()).len() >= TARGET {
            self.write_chunk()?;
        }
        Ok(())
    }

    fn write_chunk(&mut self) -> Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::take(&mut self.chunk);
        self.tree.insert(
            chunk_key(chunk.key_at(0)),
            chunk.span(0..chunk.len()),
        )?;
        Ok(())
    }

    /// Writes the last chunk and the manifest and makes everything durable.
    pub fn finish(mut self) -> Result<()> {
        self.write_chunk()?;
        self.tree.insert(MANIFEST, &manifest_bytes(0)[..])?;
        self.db.flush()?;
        sync(&self.dir)?;
        drop((self.tree, self.db));
        // An opening makes sled snapshot what it replayed, so the next start is quick.
        drop(super::checkpoint::open_sled(&self.dir, 16 << 20)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(keys: impl Iterator<Item = Vec<u8>>, value: &[u8]) -> Packed {
        let mut p = Packed::default();
        for k in keys {
            p.push(&k, value);
        }
        p.seal();
        p
    }

    fn key(i: u32) -> Vec<u8> {
        let mut k = b"k/".to_vec();
        k.extend_from_slice(&i.to_be_bytes());
        k
    }

    /// Applies plans to an in-memory picture of the tree, and checks that the chunks read
    /// back in order give `base`, each within its size.
    fn apply(tree: &sled::Tree, plan: Plan, base: &Packed) -> Index {
        tree.apply_batch(plan.batch).unwrap();
        let (loaded, index) = load(tree).unwrap();
        assert_eq!(index, plan.index, "the index follows the tree");
        assert_eq!(loaded.span(0..loaded.len()), base.span(0..base.len()));
        for c in &index.chunks {
            assert!(c.bytes <= TARGET, "{} bytes", c.bytes);
        }
        index
    }

    /// Chunks are cut when they grow, rewritten only where keys were written, merged when
    /// they shrink, and removed when emptied; every state loads back to the records.
    #[test]
    fn chunks_split_merge_and_follow_the_records() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree(TREE).unwrap();
        let value = vec![7u8; 1000];
        // 3 000 records of about 1 KB: three or four chunks.
        let base = packed((0..3000).map(key), &value);
        let mut dirty = Dirty::default();
        dirty.mark_all(&Index::default());
        let p1 = plan(&Index::default(), &dirty, &BTreeSet::new(), &base, 5);
        assert!(p1.written >= 3);
        let index = apply(&tree, p1, &base);
        assert_eq!(manifest(&tree).unwrap(), Some(5));
        let n = index.len();

        // New keys at the end touch only the last chunk (and may cut a new one).
        let base2 = packed((0..3100).map(key), &value);
        let mut dirty = Dirty::default();
        let new_keys: Vec<Vec<u8>> = (3000..3100).map(key).collect();
        dirty.mark_sorted(&index, new_keys.iter().map(|k| &k[..]));
        assert_eq!(dirty.len(), 1);
        let plan2 = plan(&index, &dirty, &BTreeSet::new(), &base2, 6);
        assert!(plan2.written <= 2, "{} chunks rewritten", plan2.written);
        let index = apply(&tree, plan2, &base2);
        assert!(index.len() >= n);

        // Removing most records of the first two chunks leaves short chunks, merged.
        let kept: Vec<u32> = (0..3100).filter(|i| *i >= 2000 || i % 10 == 0).collect();
        let base3 = packed(kept.iter().map(|&i| key(i)), &value);
        let mut dirty = Dirty::default();
        let removed: Vec<Vec<u8>> = (0..2000).filter(|i| i % 10 != 0).map(key).collect();
        dirty.mark_sorted(&index, removed.iter().map(|k| &k[..]));
        let plan3 = plan(&index, &dirty, &BTreeSet::new(), &base3, 7);
        let index3 = apply(&tree, plan3, &base3);
        assert!(index3.len() < index.len(), "short chunks merged");

        // Everything removed: no chunk is left, and the manifest is.
        let empty = Packed::default();
        let mut dirty = Dirty::default();
        dirty.mark_all(&index3);
        let plan4 = plan(&index3, &dirty, &BTreeSet::new(), &empty, 8);
        let index4 = apply(&tree, plan4, &empty);
        assert!(index4.is_empty());
        assert_eq!(manifest(&tree).unwrap(), Some(8));
    }

    #[test]
    fn a_record_is_found_in_its_chunk_before_the_load() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree(TREE).unwrap();
        let base = packed((0..3000).map(key), &[1u8; 1000]);
        let mut dirty = Dirty::default();
        dirty.mark_all(&Index::default());
        tree.apply_batch(plan(&Index::default(), &dirty, &BTreeSet::new(), &base, 1).batch)
            .unwrap();
        for i in [0, 1, 1500, 2999] {
            assert_eq!(lookup(&db, &tree, &key(i)).unwrap(), Some(vec![1u8; 1000]));
        }
        assert_eq!(lookup(&db, &tree, &key(3000)).unwrap(), None);
        assert_eq!(lookup(&db, &tree, b"a").unwrap(), None);
    }
}
