//! The checkpoint's layout in sled: every record, in large sorted chunks.
//!
//! sled's tree `chunks` holds the records in chunks under `c` + a chunk id (u64, big-endian),
//! and a manifest under `m`: the layout's version, the log sequence the chunks hold every
//! batch up to, the next free chunk id, and the chunks in key order (id, size, first key).
//! A chunk's value is up to [`TARGET`] bytes of records in key order, packed as the
//! in-memory base packs them (`key length u16 LE | value length u32 LE | key | value`): a
//! start copies the chunks into the base, with no per-record sled work or allocation. A
//! chunk covers the keys from its first key up to the next chunk's first key (the first
//! chunk also every key below it), so every key belongs to exactly one chunk.
//!
//! A checkpoint rewrites only the chunks whose range holds keys written since the last one
//! ([`Dirty`]), straight from the in-memory base, under new ids, one sled insert at a time;
//! then one small batch writes the manifest and removes the chunks it replaced. A crash
//! before that batch leaves the old manifest and chunks whole; the new chunks' ids lie at
//! or past its next free id, and the next checkpoint removes them. Chunks that grow past
//! [`TARGET`] are cut in pieces; a short one is merged with the next when both fit in one.
//!
//! Data directories of the first layout (one sled key per record in the tree `data`, and the
//! folded sequence under `~checkpoint`) still open: they are loaded key by key, and the first
//! checkpoint after the start writes every chunk, then drops the old tree.

use super::mem::{Base, Packed, compare};
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

/// sled's key of chunk `id`.
fn chunk_key(id: u64) -> [u8; 9] {
    let mut k = [CHUNK; 9];
    k[1..].copy_from_slice(&id.to_be_bytes());
    k
}

/// Where the chunks are: each one's id, size and first key, in key order; and the folded
/// sequence and next free id of the manifest.
#[derive(Default, Debug, Clone, PartialEq)]
pub struct Index {
    chunks: Vec<Chunk>,
    pub folded: u64,
    next_id: u64,
}

#[derive(Debug, Clone, PartialEq)]
struct Chunk {
    id: u64,
    bytes: usize,
    first: Vec<u8>,
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

    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(24 + self.chunks.len() * 40);
        b.extend_from_slice(&VERSION.to_be_bytes());
        b.extend_from_slice(&self.folded.to_be_bytes());
        b.extend_from_slice(&self.next_id.to_be_bytes());
        b.extend_from_slice(&(self.chunks.len() as u32).to_be_bytes());
        for c in &self.chunks {
            b.extend_from_slice(&c.id.to_be_bytes());
            b.extend_from_slice(&(c.bytes as u32).to_be_bytes());
            b.extend_from_slice(&(c.first.len() as u16).to_be_bytes());
            b.extend_from_slice(&c.first);
        }
        b
    }

    fn decode(b: &[u8]) -> Option<Index> {
        fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
            let (head, rest) = (b.get(..n)?, b.get(n..)?);
            *b = rest;
            Some(head)
        }
        let mut b = b;
        let u64_of = |x: &[u8]| u64::from_be_bytes(x.try_into().unwrap());
        if take(&mut b, 4)? != VERSION.to_be_bytes() {
            return None;
        }
        let folded = u64_of(take(&mut b, 8)?);
        let next_id = u64_of(take(&mut b, 8)?);
        let n = u32::from_be_bytes(take(&mut b, 4)?.try_into().unwrap()) as usize;
        let mut chunks = Vec::with_capacity(n.min(1 << 20));
        for _ in 0..n {
            let id = u64_of(take(&mut b, 8)?);
            let bytes = u32::from_be_bytes(take(&mut b, 4)?.try_into().unwrap()) as usize;
            let len = u16::from_be_bytes(take(&mut b, 2)?.try_into().unwrap()) as usize;
            let first = take(&mut b, len)?.to_vec();
            chunks.push(Chunk { id, bytes, first });
        }
        b.is_empty().then_some(Index {
            chunks,
            folded,
            next_id,
        })
    }
}

/// The chunk layout's manifest; None when the tree has none (a new store, or one of the
/// first layout).
pub fn manifest(tree: &sled::Tree) -> Result<Option<Index>> {
    let Some(v) = tree.get(MANIFEST)? else {
        return Ok(None);
    };
    Index::decode(&v).map(Some).ok_or_else(|| {
        Error::internal(format!(
            "sled's checkpoint manifest is damaged or of an unknown version ({} bytes)",
            v.len()
        ))
    })
}

/// The first layout's tree, when the database has one.
pub fn old_tree(db: &sled::Db) -> Result<Option<sled::Tree>> {
    let exists = db
        .tree_names()
        .iter()
        .any(|n| n.as_ref() == OLD_TREE.as_bytes());
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
    if let Some(index) = manifest(tree)? {
        return Ok(index.folded);
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

/// Chunk `c` of the index, checked against it.
fn read_chunk(tree: &sled::Tree, c: &Chunk) -> Result<sled::IVec> {
    let v = tree
        .get(chunk_key(c.id))?
        .ok_or_else(|| Error::internal(format!("checkpoint chunk {} missing", c.id)))?;
    let first_ok = v.len() >= 6 && {
        let klen = u16::from_le_bytes([v[0], v[1]]) as usize;
        v.get(6..6 + klen) == Some(&c.first[..])
    };
    if v.len() != c.bytes || !first_ok {
        return Err(Error::internal(format!(
            "checkpoint chunk {} does not match the manifest",
            c.id
        )));
    }
    Ok(v)
}

/// One record's value, read from sled without loading the rest (start-up, before the load).
pub fn lookup(db: &sled::Db, tree: &sled::Tree, key: &[u8]) -> Result<Option<Vec<u8>>> {
    let Some(index) = manifest(tree)? else {
        return Ok(match old_tree(db)? {
            Some(old) => old.get(key)?.map(|v| v.to_vec()),
            None => None,
        });
    };
    let Some(c) = index.chunks.get(index.locate(key)) else {
        return Ok(None);
    };
    let v = read_chunk(tree, c)?;
    let mut packed = Packed::default();
    packed.push_packed(&v).map_err(Error::internal)?;
    packed.seal();
    let r = packed.index_range(Bound::Included(key), Bound::Included(key));
    Ok((!r.is_empty()).then(|| packed.entry_at(r.start).1.to_vec()))
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
}

/// What a checkpoint wrote.
#[derive(Debug, Default)]
pub struct Written {
    pub chunks: usize,
    pub bytes: usize,
}

/// Writes the chunks of `dirty` from `base` (the records as of the log sequence `folded`)
/// under new ids, then the manifest, removing the chunks they replace, and makes it all
/// durable (`dir`: sled's directory). Returns the new index; on an error sled holds the
/// old one or the new one, whole, and [`manifest`] tells which.
pub fn checkpoint(
    db: &sled::Db,
    tree: &sled::Tree,
    dir: &Path,
    index: &Index,
    dirty: &Dirty,
    base: &Base,
    folded: u64,
) -> Result<(Index, Written)> {
    // Chunks a crash left past the manifest's next id (not listed, so never read).
    let (from, to) = (chunk_key(index.next_id), [CHUNK + 1]);
    let orphans: Vec<sled::IVec> = tree
        .range(&from[..]..&to[..])
        .keys()
        .collect::<std::result::Result<_, _>>()?;
    for k in orphans {
        tree.remove(k)?;
    }
    let mut next_id = index.next_id;
    let mut removed = Vec::new();
    let mut out = Vec::with_capacity(index.len() + dirty.len());
    let mut written = Written::default();
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
        removed.extend(
            index
                .chunks
                .get(a..(b + 1).min(index.len()))
                .into_iter()
                .flatten()
                .map(|c| c.id),
        );
        for (r, bytes) in pieces {
            let first = base.key_at(r.start).to_vec();
            tree.insert(chunk_key(next_id), &*base.span(r))?;
            out.push(Chunk {
                id: next_id,
                bytes,
                first,
            });
            next_id += 1;
            written.chunks += 1;
            written.bytes += bytes;
        }
        i = b + 1;
    }
    let new = Index {
        chunks: out,
        folded,
        next_id,
    };
    let mut batch = sled::Batch::default();
    for id in removed {
        batch.remove(&chunk_key(id)[..]);
    }
    batch.insert(MANIFEST, new.encode());
    tree.apply_batch(batch)?;
    db.flush()?;
    sync(dir)?;
    Ok((new, written))
}

/// Records `r` of `base` cut into pieces of at most [`TARGET`] bytes (a longer record
/// makes a piece of its own), with their sizes.
fn cut(base: &Base, r: std::ops::Range<usize>) -> Vec<(std::ops::Range<usize>, usize)> {
    let mut pieces = Vec::new();
    let (mut start, mut acc) = (r.start, 0);
    for j in r.clone() {
        let len = base.record_len(j);
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

/// Reads every chunk of the manifest into a base; the index comes back too. None when the
/// tree has no manifest.
///
/// sled keeps large values in blobs of whole tree nodes, several chunks each, and its
/// cache is small: reading the chunks one by one in key order read each node again for
/// each of its chunks (18 s at a million issues). So the tree is scanned in key (id) order,
/// on two threads over halves of the ids, each chunk copied straight to its place in
/// segments sized from the manifest.
pub fn load(tree: &sled::Tree) -> Result<Option<(Base, Index)>> {
    let Some(index) = manifest(tree)? else {
        return Ok(None);
    };
    let ordered = index
        .chunks
        .windows(2)
        .all(|w| compare(&w[0].first, &w[1].first) == std::cmp::Ordering::Less);
    if !ordered {
        return Err(Error::internal("checkpoint manifest out of key order"));
    }
    let mut slabs: Vec<Vec<u8>> = super::mem::segment_sizes(index.chunks.iter().map(|c| c.bytes))
        .into_iter()
        .map(|n| vec![0u8; n])
        .collect();
    {
        // Each chunk's place, in id order.
        let mut places: Vec<(u64, &Chunk, &mut [u8])> = Vec::with_capacity(index.len());
        let mut chunks = index.chunks.iter();
        for slab in &mut slabs {
            let mut rest: &mut [u8] = slab;
            while !rest.is_empty() {
                let c = chunks.next().expect("segments sized from the chunks");
                let (head, tail) = rest.split_at_mut(c.bytes);
                places.push((c.id, c, head));
                rest = tail;
            }
        }
        places.sort_by_key(|p| p.0);
        let half = places.len() / 2;
        let high = places.split_off(half);
        let fill = |places: Vec<(u64, &Chunk, &mut [u8])>| -> Result<()> {
            let (Some(lo), Some(hi)) = (places.first().map(|p| p.0), places.last().map(|p| p.0))
            else {
                return Ok(());
            };
            let mut want = places.into_iter().peekable();
            for r in tree.range(chunk_key(lo)..=chunk_key(hi)) {
                let (k, v) = r?;
                let id = u64::from_be_bytes(k[1..9].try_into().map_err(Error::internal)?);
                let Some((_, c, dest)) = want.next_if(|p| p.0 == id) else {
                    continue; // not in the manifest: an unfinished checkpoint's
                };
                let first_ok = v.len() >= 6 && {
                    let klen = u16::from_le_bytes([v[0], v[1]]) as usize;
                    v.get(6..6 + klen) == Some(&c.first[..])
                };
                if v.len() != c.bytes || !first_ok {
                    return Err(Error::internal(format!(
                        "checkpoint chunk {id} does not match the manifest"
                    )));
                }
                dest.copy_from_slice(&v);
            }
            match want.next() {
                Some((id, _, _)) => Err(Error::internal(format!("checkpoint chunk {id} missing"))),
                None => Ok(()),
            }
        };
        let (low, high) = std::thread::scope(|s| {
            let high = s.spawn(|| fill(high));
            (fill(places), high.join())
        });
        low?;
        high.map_err(|_| Error::internal("load thread panicked"))??;
    }
    let mut base = Base::build();
    for slab in slabs {
        base.push_slab(slab)
            .map_err(|e| Error::internal(format!("checkpoint chunk damaged: {e}")))?;
    }
    Ok(Some((base.finish(), index)))
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
    index: Index,
}

impl BulkWriter {
    pub fn open(dir: &Path) -> Result<BulkWriter> {
        let (db, tree) = super::checkpoint::open_sled(dir, 64 << 20)?;
        Ok(BulkWriter {
            db,
            tree,
            dir: dir.to_path_buf(),
            chunk: Packed::default(),
            index: Index::default(),
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
        let bytes = chunk.span(0..chunk.len());
        let id = self.index.next_id;
        self.tree.insert(chunk_key(id), bytes)?;
        self.index.chunks.push(Chunk {
            id,
            bytes: bytes.len(),
            first: chunk.key_at(0).to_vec(),
        });
        self.index.next_id += 1;
        Ok(())
    }

    /// Writes the last chunk and the manifest and makes everything durable.
    pub fn finish(mut self) -> Result<()> {
        self.write_chunk()?;
        self.tree.insert(MANIFEST, self.index.encode())?;
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

    fn packed(keys: impl Iterator<Item = Vec<u8>>, value: &[u8]) -> Base {
        let mut p = Packed::default();
        for k in keys {
            p.push(&k, value);
        }
        Base::from_packed(p)
    }

    fn key(i: u32) -> Vec<u8> {
        let mut k = b"k/".to_vec();
        k.extend_from_slice(&i.to_be_bytes());
        k
    }

    struct Db {
        dir: tempfile::TempDir,
        db: sled::Db,
        tree: sled::Tree,
    }

    fn db() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let (db, tree) = super::super::checkpoint::open_sled(dir.path(), 1 << 20).unwrap();
        Db { dir, db, tree }
    }

    /// Writes a checkpoint and checks that the chunks read back in order give `base`, each
    /// within its size, and that the tree holds no chunk beside the manifest's.
    fn write(d: &Db, index: &Index, dirty: &Dirty, base: &Base, folded: u64) -> (Index, Written) {
        let (new, written) =
            checkpoint(&d.db, &d.tree, d.dir.path(), index, dirty, base, folded).unwrap();
        let (loaded, loaded_index) = load(&d.tree).unwrap().unwrap();
        assert_eq!(loaded_index, new, "the manifest is the index");
        assert_eq!(loaded.span(0..loaded.len()), base.span(0..base.len()));
        for c in &new.chunks {
            assert!(c.bytes <= TARGET, "{} bytes", c.bytes);
        }
        let stored = d.tree.scan_prefix([CHUNK]).count();
        assert_eq!(stored, new.len(), "replaced chunks are removed");
        (new, written)
    }

    /// Chunks are cut when they grow, rewritten only where keys were written, merged when
    /// they shrink, and removed when emptied; every state loads back to the records.
    #[test]
    fn chunks_split_merge_and_follow_the_records() {
        let d = db();
        let value = vec![7u8; 1000];
        // 3 000 records of about 1 KB: three or four chunks.
        let base = packed((0..3000).map(key), &value);
        let mut dirty = Dirty::default();
        dirty.mark_all(&Index::default());
        let (index, w) = write(&d, &Index::default(), &dirty, &base, 5);
        assert!(w.chunks >= 3);
        assert_eq!(folded_seq(&d.db, &d.tree).unwrap(), 5);
        let n = index.len();

        // New keys at the end touch only the last chunk (and may cut a new one).
        let base2 = packed((0..3100).map(key), &value);
        let mut dirty = Dirty::default();
        let new_keys: Vec<Vec<u8>> = (3000..3100).map(key).collect();
        dirty.mark_sorted(&index, new_keys.iter().map(|k| &k[..]));
        assert_eq!(dirty.len(), 1);
        let (index, w) = write(&d, &index, &dirty, &base2, 6);
        assert!(w.chunks <= 2, "{} chunks rewritten", w.chunks);
        assert!(index.len() >= n);

        // Removing most records of the first two chunks leaves short chunks, merged.
        let kept: Vec<u32> = (0..3100).filter(|i| *i >= 2000 || i % 10 == 0).collect();
        let base3 = packed(kept.iter().map(|&i| key(i)), &value);
        let mut dirty = Dirty::default();
        let removed: Vec<Vec<u8>> = (0..2000).filter(|i| i % 10 != 0).map(key).collect();
        dirty.mark_sorted(&index, removed.iter().map(|k| &k[..]));
        let (index3, _) = write(&d, &index, &dirty, &base3, 7);
        assert!(index3.len() < index.len(), "short chunks merged");

        // Everything removed: no chunk is left, and the manifest is.
        let empty = Base::default();
        let mut dirty = Dirty::default();
        dirty.mark_all(&index3);
        let (index4, _) = write(&d, &index3, &dirty, &empty, 8);
        assert!(index4.is_empty());
        assert_eq!(folded_seq(&d.db, &d.tree).unwrap(), 8);
    }

    /// Chunks written by a checkpoint that never wrote its manifest (a crash) are never
    /// read, and the next checkpoint removes them.
    #[test]
    fn chunks_of_an_unfinished_checkpoint_are_ignored_then_removed() {
        let d = db();
        let base = packed((0..3000).map(key), &[1u8; 1000]);
        let mut dirty = Dirty::default();
        dirty.mark_all(&Index::default());
        let (index, _) = write(&d, &Index::default(), &dirty, &base, 1);
        // A crash after two chunks of the next checkpoint.
        for id in index.next_id..index.next_id + 2 {
            d.tree
                .insert(chunk_key(id), &b"\x05\x00\x01\x00\x00\x00junk!x"[..])
                .unwrap();
        }
        let (loaded, _) = load(&d.tree).unwrap().unwrap();
        assert_eq!(loaded.len(), 3000);
        let base2 = packed((0..3001).map(key), &[1u8; 1000]);
        let mut dirty = Dirty::default();
        dirty.mark_sorted(&index, [&key(3000)[..]].into_iter());
        write(&d, &index, &dirty, &base2, 2);
    }

    #[test]
    fn a_record_is_found_in_its_chunk_before_the_load() {
        let d = db();
        let base = packed((0..3000).map(key), &[1u8; 1000]);
        let mut dirty = Dirty::default();
        dirty.mark_all(&Index::default());
        write(&d, &Index::default(), &dirty, &base, 1);
        for i in [0, 1, 1500, 2999] {
            assert_eq!(
                lookup(&d.db, &d.tree, &key(i)).unwrap(),
                Some(vec![1u8; 1000])
            );
        }
        assert_eq!(lookup(&d.db, &d.tree, &key(3000)).unwrap(), None);
        assert_eq!(lookup(&d.db, &d.tree, b"a").unwrap(), None);
    }
}
