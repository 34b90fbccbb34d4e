//! The in-memory copy of every record: a packed, sorted base, and an ordered overlay of
//! what was written since.
//!
//! The base keeps keys and values in byte slabs with an offset per record (about 8 bytes of
//! overhead per record instead of two heap blocks and a tree slot), in segments of about
//! 8 MiB of consecutive keys ([`Base`]), so a store of millions of records loads fast and
//! stays small. Writes go to the overlay, where a removal is kept as a tombstone. When the
//! overlay grows, a compaction freezes it (later writes start a new overlay; reads see base,
//! frozen and new overlay), merges the frozen overlay into the segments it touches without
//! any lock ([`run_job`]; the others are shared), and swaps the new base in: the write lock
//! is only held for the freeze and the swap, constant time both. Keys compare in 8-byte
//! words (the layout of [`super::keys`] puts big-endian ids after short prefixes).

use super::groups::{FAMILIES, Groups, group_of};
use super::stamps::Stamps;
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

/// Transparent huge pages for the base's arrays. A lookup touches a handful of places
/// spread over a slab of hundreds of megabytes, so with 4 KiB pages nearly every one is a
/// TLB miss, and under virtualisation a page walk reads up to 24 page-table entries; with
/// 2 MiB pages the TLB covers the whole slab. Linux only, advice only: where the kernel
/// declines (THP `never`, no free huge pages) nothing changes.
mod huge_pages {
    const HUGE: usize = 2 << 20;

    /// The whole 2 MiB pages inside the vector's allocation.
    fn span<T>(v: &Vec<T>) -> Option<(*mut libc::c_void, usize)> {
        let start = v.as_ptr() as usize;
        let end = start + v.capacity() * std::mem::size_of::<T>();
        let (from, to) = (start.next_multiple_of(HUGE), end / HUGE * HUGE);
        (to > from).then(|| (from as *mut libc::c_void, to - from))
    }

    /// Asks for huge pages where the vector's untouched pages fault in.
    pub fn advise<T>(v: &Vec<T>) {
        #[cfg(target_os = "linux")]
        if let Some((at, len)) = span(v) {
            // SAFETY: the range lies inside the vector's own allocation; the advice changes
            // how it is backed, not its contents.
            unsafe { libc::madvise(at, len, libc::MADV_HUGEPAGE) };
        }
    }

    /// [`advise`], and moves pages already written into huge pages now (`MADV_COLLAPSE`,
    /// Linux 6.1; older kernels refuse it and khugepaged does it in its own time).
    pub fn collapse<T>(v: &Vec<T>) {
        #[cfg(target_os = "linux")]
        if let Some((at, len)) = span(v) {
            const MADV_COLLAPSE: libc::c_int = 25;
            // SAFETY: as in `advise`; a collapse copies pages, the contents stay the same.
            unsafe {
                libc::madvise(at, len, libc::MADV_HUGEPAGE);
                libc::madvise(at, len, MADV_COLLAPSE);
            }
        }
    }
}

/// Lexicographic byte order, 8 bytes at a time.
#[inline]
pub fn compare(a: &[u8], b: &[u8]) -> Ordering {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let x = u64::from_be_bytes(a[i..i + 8].try_into().unwrap());
        let y = u64::from_be_bytes(b[i..i + 8].try_into().unwrap());
        if x != y {
            return x.cmp(&y);
        }
        i += 8;
    }
    while i < n {
        if a[i] != b[i] {
            return a[i].cmp(&b[i]);
        }
        i += 1;
    }
    a.len().cmp(&b.len())
}

/// A borrowed key with [`compare`]'s order, for lookups in the overlay.
#[repr(transparent)]
#[derive(PartialEq, Eq)]
pub struct KeyRef([u8]);

impl KeyRef {
    pub fn new(bytes: &[u8]) -> &KeyRef {
        // SAFETY: KeyRef is a transparent wrapper around [u8], so the layouts are the same.
        unsafe { &*(bytes as *const [u8] as *const KeyRef) }
    }
}

impl Ord for KeyRef {
    fn cmp(&self, other: &Self) -> Ordering {
        compare(&self.0, &other.0)
    }
}

impl PartialOrd for KeyRef {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// An owned key of the overlay. Keys of up to [`INLINE`] bytes (nearly every key of
/// [`super::keys`]) are kept inside the tree's nodes, zero-padded: a search compares them
/// as four big-endian words and the length, without following a pointer or looping over
/// bytes (the overlay's inserts were the largest part of a durable write's instructions).
/// Longer keys are boxed and compare byte by byte.
pub struct Key(KeyBytes);

/// `folder-stamp/<folder>/<stamp>` is 30 bytes; 32 hold every key of [`super::keys`] but
/// the string-keyed indexes of long names.
const INLINE: usize = 32;

enum KeyBytes {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

/// The zero-padded bytes as words: with the length as a tie-break, their order is the
/// bytes' lexicographic order (a key and its zero-extension differ only in length).
#[inline]
fn words(b: &[u8; INLINE]) -> [u64; 4] {
    let w = |i: usize| u64::from_be_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
    [w(0), w(1), w(2), w(3)]
}

impl Key {
    /// Takes `key`'s bytes in; a long key keeps its allocation.
    pub fn new(key: Vec<u8>) -> Key {
        match Key::probe(&key) {
            Some(k) => k,
            None => Key(KeyBytes::Heap(key.into_boxed_slice())),
        }
    }

    /// An inline key to search with, when `key` is short enough to be one.
    #[inline]
    pub fn probe(key: &[u8]) -> Option<Key> {
        (key.len() <= INLINE).then(|| {
            let mut bytes = [0; INLINE];
            bytes[..key.len()].copy_from_slice(key);
            Key(KeyBytes::Inline {
                len: key.len() as u8,
                bytes,
            })
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            KeyBytes::Inline { len, bytes } => &bytes[..*len as usize],
            KeyBytes::Heap(b) => b,
        }
    }
}

impl Clone for Key {
    fn clone(&self) -> Key {
        Key(match &self.0 {
            KeyBytes::Inline { len, bytes } => KeyBytes::Inline {
                len: *len,
                bytes: *bytes,
            },
            KeyBytes::Heap(b) => KeyBytes::Heap(b.clone()),
        })
    }
}

impl Borrow<KeyRef> for Key {
    fn borrow(&self) -> &KeyRef {
        KeyRef::new(self.as_bytes())
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Key {}

impl Ord for Key {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        match (&self.0, &other.0) {
            (KeyBytes::Inline { len: a, bytes: x }, KeyBytes::Inline { len: b, bytes: y }) => {
                words(x).cmp(&words(y)).then(a.cmp(b))
            }
            _ => compare(self.as_bytes(), other.as_bytes()),
        }
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The entry of `key` in an overlay, searched with an inline key when it is short.
#[inline]
fn find<'a>(layer: &'a Overlay, key: &[u8]) -> Option<&'a Option<Box<[u8]>>> {
    match Key::probe(key) {
        Some(k) => layer.get(&k),
        None => layer.get(KeyRef::new(key)),
    }
}

/// Records in key order, packed: each is `key length u16 LE | value length u32 LE | key |
/// value` in `slab`, found through `offsets`. `fences` holds the first 32 bytes of the first
/// key of every block of [`BLOCK`] records, and `top` every [`GROUP`]th fence: a search
/// runs over `top` (small enough to stay in the CPU cache), then one group of fences, and
/// ends within one or two blocks of the slab.
#[derive(Default)]
pub struct Packed {
    slab: Vec<u8>,
    offsets: Vec<u64>,
    fences: Vec<Fence>,
    top: Vec<Fence>,
}

const BLOCK: usize = 16;
/// Fences per entry of `top`: 2 million records make 2 000 entries (64 KB), where one
/// level of 125 000 fences (4 MB) cost a cache miss at most steps of every lookup.
const GROUP: usize = 64;

/// The first 32 bytes of a key (zero-padded) as two numbers, compared in that order: a < b
/// implies prefix(a) <= prefix(b). 32 bytes hold the whole of most keys of [`super::keys`]
/// (`folder-stamp/<folder>/<stamp>` is 30): with 16, every key under a prefix of 13 or more
/// characters shared its fence with the others (the ids' high bytes are zeros), so a search
/// among the 100 000 `folder-stamp/` keys fell back to a binary search over all of them.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
struct Fence(u128, u128);

#[inline]
fn prefix(key: &[u8]) -> Fence {
    let mut b = [0u8; 32];
    let n = key.len().min(32);
    b[..n].copy_from_slice(&key[..n]);
    let (hi, lo) = b.split_at(16);
    Fence(
        u128::from_be_bytes(hi.try_into().unwrap()),
        u128::from_be_bytes(lo.try_into().unwrap()),
    )
}

impl Packed {
    /// Appends a record; keys must come in ascending order.
    pub fn push(&mut self, key: &[u8], value: &[u8]) {
        debug_assert!(
            self.offsets.last().is_none_or(|_| {
                compare(self.key(self.offsets.len() - 1), key) == Ordering::Less
            })
        );
        self.offsets.push(self.slab.len() as u64);
        self.slab
            .extend_from_slice(&(key.len() as u16).to_le_bytes());
        self.slab
            .extend_from_slice(&(value.len() as u32).to_le_bytes());
        self.slab.extend_from_slice(key);
        self.slab.extend_from_slice(value);
    }

    /// Appends all of `other`, whose keys all follow this one's.
    pub fn append(&mut self, other: Packed) {
        let base = self.slab.len() as u64;
        self.slab.extend_from_slice(&other.slab);
        self.offsets
            .extend(other.offsets.into_iter().map(|o| o + base));
    }

    /// Appends a run of records already packed as [`Packed::push`] packs them (a
    /// checkpoint chunk), in key order after those held. Fails on bytes that do not parse.
    pub fn push_packed(&mut self, bytes: &[u8]) -> Result<(), String> {
        let base = self.slab.len();
        let mut at = 0;
        while at < bytes.len() {
            if bytes.len() - at < 6 {
                return Err(format!("a record header cut at byte {at}"));
            }
            let klen = u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize;
            let vlen = u32::from_le_bytes(bytes[at + 2..at + 6].try_into().unwrap()) as usize;
            if bytes.len() - at - 6 < klen + vlen {
                return Err(format!("a record cut at byte {at}"));
            }
            self.offsets.push((base + at) as u64);
            at += 6 + klen + vlen;
        }
        self.slab.extend_from_slice(bytes);
        Ok(())
    }

    /// Room for `bytes` more of slab and `records` more offsets.
    pub fn reserve(&mut self, bytes: usize, records: usize) {
        self.slab.reserve_exact(bytes);
        self.offsets.reserve_exact(records);
    }

    /// The indexes of the records within the bounds.
    pub fn index_range(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> std::ops::Range<usize> {
        let from = self.lower(lower);
        from..self.upper(upper).max(from)
    }

    /// The packed bytes of records `r` (as [`Packed::push_packed`] takes them).
    pub fn span(&self, r: std::ops::Range<usize>) -> &[u8] {
        if r.is_empty() {
            return &[];
        }
        let end = self
            .offsets
            .get(r.end)
            .map_or(self.slab.len(), |&o| o as usize);
        &self.slab[self.offsets[r.start] as usize..end]
    }

    /// The key of record `i`.
    pub fn key_at(&self, i: usize) -> &[u8] {
        self.key(i)
    }

    /// The key and value of record `i`.
    pub fn entry_at(&self, i: usize) -> (&[u8], &[u8]) {
        self.entry(i)
    }

    /// Frees spare capacity and builds the search fences (after the last push).
    pub fn seal(&mut self) {
        self.slab.shrink_to_fit();
        self.offsets.shrink_to_fit();
        self.fences = (0..self.len())
            .step_by(BLOCK)
            .map(|i| prefix(self.key(i)))
            .collect();
        self.top = self.fences.iter().step_by(GROUP).copied().collect();
        huge_pages::collapse(&self.slab);
        huge_pages::collapse(&self.offsets);
        huge_pages::collapse(&self.fences);
    }

    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    fn entry(&self, i: usize) -> (&[u8], &[u8]) {
        let at = self.offsets[i] as usize;
        let klen = u16::from_le_bytes([self.slab[at], self.slab[at + 1]]) as usize;
        let vlen = u32::from_le_bytes(self.slab[at + 2..at + 6].try_into().unwrap()) as usize;
        let key = &self.slab[at + 6..at + 6 + klen];
        (key, &self.slab[at + 6 + klen..at + 6 + klen + vlen])
    }

    fn key(&self, i: usize) -> &[u8] {
        self.entry(i).0
    }

    /// Index of the first record not before `bound`.
    fn lower(&self, bound: Bound<&[u8]>) -> usize {
        match bound {
            Bound::Unbounded => 0,
            Bound::Included(k) => self.count_below(k, false),
            Bound::Excluded(k) => self.count_below(k, true),
        }
    }

    /// Index of the first record past `bound`.
    fn upper(&self, bound: Bound<&[u8]>) -> usize {
        match bound {
            Bound::Unbounded => self.len(),
            Bound::Included(k) => self.count_below(k, true),
            Bound::Excluded(k) => self.count_below(k, false),
        }
    }

    /// The number of records with keys below `k` (or equal to it, with `or_equal`).
    fn count_below(&self, k: &[u8], or_equal: bool) -> usize {
        let p = prefix(k);
        // Blocks before `from` start below k; blocks from `to` on start above it.
        let (from, to) = self.fence_range(p);
        let (mut lo, mut hi) = (from.saturating_sub(1) * BLOCK, (to * BLOCK).min(self.len()));
        while lo < hi {
            let mid = (lo + hi) / 2;
            let below = match compare(self.key(mid), k) {
                Ordering::Less => true,
                Ordering::Equal => or_equal,
                Ordering::Greater => false,
            };
            if below {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The first fence not below `p`, and the first above it.
    fn fence_range(&self, p: Fence) -> (usize, usize) {
        let f = &self.fences;
        // top[t - 1] < p <= top[t]: the first fence not below p is in group t - 1 or is
        // the first of group t.
        let t = self.top.partition_point(|x| *x < p);
        let group = t.saturating_sub(1) * GROUP..(t * GROUP).min(f.len());
        let from = group.start + f[group].partition_point(|x| *x < p);
        // Fences equal to p are few unless many keys share their first 32 bytes: gallop.
        let mut step = 1;
        while from + step <= f.len() && f[from + step - 1] <= p {
            step *= 2;
        }
        let span = from + step / 2..(from + step).min(f.len());
        let to = span.start + f[span].partition_point(|x| *x <= p);
        (from, to)
    }

    fn get(&self, key: &[u8]) -> Option<&[u8]> {
        let i = self.count_below(key, false);
        (i < self.len())
            .then(|| self.entry(i))
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}

/// A segment is cut at this many bytes of records when a merge makes it larger than
/// [`SEGMENT_MAX`]: a merge copies only the segments the overlay touches, and writes gather
/// at the ends of key families (new ids, new events), so during a bulk load a merge copies a
/// few tails rather than the whole base, and memory holds little beside the base.
const SEGMENT_TARGET: usize = 8 << 20;
const SEGMENT_MAX: usize = 2 * SEGMENT_TARGET;

/// Every record of the base, in [`Packed`] segments of consecutive key ranges (each holds
/// at least one record). A segment covers the keys from its first one up to the next
/// segment's first (the first segment also every key below it).
#[derive(Default)]
pub struct Base {
    segments: Vec<Arc<Packed>>,
    /// The index of each segment's first record among all records.
    starts: Vec<usize>,
    len: usize,
}

impl Base {
    /// A base of segments in key order, all sealed and none empty.
    fn from_segments(segments: Vec<Arc<Packed>>) -> Base {
        let mut starts = Vec::with_capacity(segments.len());
        let mut len = 0;
        for s in &segments {
            debug_assert!(!s.is_empty());
            starts.push(len);
            len += s.len();
        }
        Base {
            segments,
            starts,
            len,
        }
    }

    /// A base of one segment holding `p`'s records.
    pub fn from_packed(mut p: Packed) -> Base {
        p.seal();
        let segments = (!p.is_empty()).then(|| Arc::new(p));
        Base::from_segments(segments.into_iter().collect())
    }

    /// Builds a base from chunks of packed records in key order ([`Packed::push_packed`]),
    /// cutting segments near [`SEGMENT_TARGET`] bytes.
    pub fn build() -> BaseBuilder {
        BaseBuilder::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The segments and their bytes.
    pub fn shape(&self) -> (usize, usize) {
        let bytes = self.segments.iter().map(|s| s.slab.len()).sum();
        (self.segments.len(), bytes)
    }

    /// The segment whose range holds `key`.
    fn locate(&self, key: &[u8]) -> usize {
        self.segments
            .partition_point(|s| compare(s.key(0), key) != Ordering::Greater)
            .saturating_sub(1)
    }

    /// The segment holding record `i`, and `i` within it.
    fn at(&self, i: usize) -> (usize, usize) {
        let s = self.starts.partition_point(|&x| x <= i) - 1;
        (s, i - self.starts[s])
    }

    pub fn entry(&self, i: usize) -> (&[u8], &[u8]) {
        let (s, j) = self.at(i);
        self.segments[s].entry(j)
    }

    pub fn key_at(&self, i: usize) -> &[u8] {
        self.entry(i).0
    }

    /// The packed size of record `i`.
    pub fn record_len(&self, i: usize) -> usize {
        let (s, j) = self.at(i);
        self.segments[s].span(j..j + 1).len()
    }

    /// The number of records with keys below `k` (or equal to it, with `or_equal`).
    fn count_below(&self, k: &[u8], or_equal: bool) -> usize {
        if self.segments.is_empty() {
            return 0;
        }
        let s = self.locate(k);
        self.starts[s] + self.segments[s].count_below(k, or_equal)
    }

    fn lower(&self, bound: Bound<&[u8]>) -> usize {
        match bound {
            Bound::Unbounded => 0,
            Bound::Included(k) => self.count_below(k, false),
            Bound::Excluded(k) => self.count_below(k, true),
        }
    }

    fn upper(&self, bound: Bound<&[u8]>) -> usize {
        match bound {
            Bound::Unbounded => self.len,
            Bound::Included(k) => self.count_below(k, true),
            Bound::Excluded(k) => self.count_below(k, false),
        }
    }

    /// The indexes of the records within the bounds.
    pub fn index_range(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> std::ops::Range<usize> {
        let from = self.lower(lower);
        from..self.upper(upper).max(from)
    }

    /// The packed bytes of records `r` (as [`Packed::push_packed`] takes them), copied only
    /// when they lie in more than one segment.
    pub fn span(&self, r: std::ops::Range<usize>) -> std::borrow::Cow<'_, [u8]> {
        if r.is_empty() {
            return std::borrow::Cow::Borrowed(&[]);
        }
        let (s, j) = self.at(r.start);
        let (t, k) = self.at(r.end - 1);
        if s == t {
            return std::borrow::Cow::Borrowed(self.segments[s].span(j..k + 1));
        }
        let mut out = self.segments[s].span(j..self.segments[s].len()).to_vec();
        for seg in &self.segments[s + 1..t] {
            out.extend_from_slice(seg.span(0..seg.len()));
        }
        out.extend_from_slice(self.segments[t].span(0..k + 1));
        std::borrow::Cow::Owned(out)
    }

    fn get(&self, key: &[u8]) -> Option<&[u8]> {
        if self.segments.is_empty() {
            return None;
        }
        self.segments[self.locate(key)].get(key)
    }

    /// Records `r`, in order, walking the segments.
    fn iter(&self, r: std::ops::Range<usize>) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        let (mut s, mut j) = if r.is_empty() {
            (0, 0)
        } else {
            self.at(r.start)
        };
        r.map(move |_| {
            while j >= self.segments[s].len() {
                (s, j) = (s + 1, 0);
            }
            j += 1;
            self.segments[s].entry(j - 1)
        })
    }
}

/// The sizes of the segments [`BaseBuilder::push_packed`] makes of chunks of these sizes.
pub fn segment_sizes(chunks: impl Iterator<Item = usize>) -> Vec<usize> {
    let mut out = Vec::new();
    let mut cur = 0;
    for n in chunks {
        cur += n;
        if cur >= SEGMENT_TARGET {
            out.push(std::mem::take(&mut cur));
        }
    }
    if cur > 0 {
        out.push(cur);
    }
    out
}

/// Builds a [`Base`] from packed records in key order.
#[derive(Default)]
pub struct BaseBuilder {
    done: Vec<Arc<Packed>>,
    current: Packed,
}

impl BaseBuilder {
    /// Appends records packed as [`Packed::push_packed`] takes them.
    pub fn push_packed(&mut self, bytes: &[u8]) -> Result<(), String> {
        if self.current.slab.is_empty() {
            self.current
                .reserve(SEGMENT_TARGET + bytes.len(), SEGMENT_TARGET / 64);
        }
        self.current.push_packed(bytes)?;
        if self.current.slab.len() >= SEGMENT_TARGET {
            self.cut();
        }
        Ok(())
    }

    /// Appends a whole segment of records packed as [`Packed::push_packed`] takes them,
    /// keeping its allocation.
    pub fn push_slab(&mut self, slab: Vec<u8>) -> Result<(), String> {
        self.cut();
        let mut p = Packed::default();
        p.offsets.reserve_exact(slab.len() / 64);
        let mut at = 0;
        while at < slab.len() {
            if slab.len() - at < 6 {
                return Err(format!("a record header cut at byte {at}"));
            }
            let klen = u16::from_le_bytes([slab[at], slab[at + 1]]) as usize;
            let vlen = u32::from_le_bytes(slab[at + 2..at + 6].try_into().unwrap()) as usize;
            if slab.len() - at - 6 < klen + vlen {
                return Err(format!("a record cut at byte {at}"));
            }
            p.offsets.push(at as u64);
            at += 6 + klen + vlen;
        }
        p.slab = slab;
        self.current = p;
        self.cut();
        Ok(())
    }

    fn cut(&mut self) {
        let mut p = std::mem::take(&mut self.current);
        if !p.is_empty() {
            p.seal();
            self.done.push(Arc::new(p));
        }
    }

    /// The last record's key.
    pub fn last_key(&self) -> Option<&[u8]> {
        match self.current.len() {
            0 => self.done.last().map(|p| p.key(p.len() - 1)),
            n => Some(self.current.key(n - 1)),
        }
    }

    pub fn finish(mut self) -> Base {
        self.cut();
        Base::from_segments(self.done)
    }
}

/// Writes since the base was made, in key order: the value, `None` for a removal.
pub type Overlay = BTreeMap<Key, Option<Box<[u8]>>>;

/// What a compaction needs: the base and the frozen overlay it merges into a new base.
pub type Job = (Arc<Base>, Arc<Overlay>);

/// A compaction starts once the overlay holds 1/`OVERLAY_SHARE` as many records as the base.
/// Each one copies the whole base, so under a steady write load their cost falls with a
/// larger overlay, while the overlay's searches get only a little deeper: in 8 s
/// durable-write runs at 100 000 issues the `compact` thread took 94–110 ticks at 1/8,
/// 88–106 at 1/4 and 66–97 at 1/2, and writes/s rose by 8–10 % from 1/4 to 1/2
/// (BENCHMARKS.md). An overlay record takes more memory than a packed one (a tree slot and
/// a heap block): peak memory under those runs went from 314 to 373 MB.
const OVERLAY_SHARE: usize = 2;

/// ...but never more than this many: a merge copies only the segments it touches, so a
/// larger overlay saves little, and its records cost more memory than packed ones (a bulk
/// load let it grow to half of a base of 13 million records, about a gigabyte).
const OVERLAY_CAP: usize = 500_000;

/// Every record: the packed base, the overlay being merged into a new base (if a compaction
/// runs), and the overlay of later writes. Reads look in that order backwards.
#[derive(Default)]
pub struct Mem {
    base: Arc<Base>,
    frozen: Option<Arc<Overlay>>,
    overlay: Overlay,
    /// The newest batch applied.
    last_seq: u64,
    /// Which groups of the sparse key families hold keys ([`Mem::known_empty`]).
    groups: Groups,
    /// The last stamp and the folder stamps, derived from the keys ([`super::stamps`]).
    stamps: Stamps,
    /// How to take back the writes of batches not yet durable, oldest first
    /// ([`Mem::rollback`]).
    undo: std::collections::VecDeque<Undo>,
    /// Set by [`Mem::compact_now`]: writes reached the base without the checkpointer seeing
    /// their keys ([`Mem::take_unseen_merge`]).
    unseen_merge: bool,
}

/// What a key held in the overlay before a batch wrote it.
struct Undo {
    seq: u64,
    key: Key,
    /// None: the overlay had no entry (the layers below hold the old value, and removing the
    /// overlay's entry brings it back). Some: the entry to put back (None in it: absent).
    was: Option<Option<Box<[u8]>>>,
}

impl Mem {
    /// A store holding `base`'s records (tests, tools).
    pub fn new(base: Packed) -> Mem {
        Mem::with_base(Base::from_packed(base))
    }

    /// A store holding `base`'s records (the load).
    pub fn with_base(base: Base) -> Mem {
        let mut mem = Mem {
            base: Arc::new(base),
            ..Mem::default()
        };
        let mut groups = Groups::default();
        let mut stamps = Stamps::default();
        let base = &mem.base;
        if let Some(v) = base.get(b"ctr/stamp") {
            stamps.observe(b"ctr/stamp", Some(v));
        }
        // Event keys sort in stamp order ('0' follows '/'): the last one is the newest.
        if let Some(i) = base.count_below(b"event0", false).checked_sub(1) {
            let (k, v) = base.entry(i);
            stamps.observe(k, Some(v));
        }
        let from = base.count_below(b"folder-stamp/", false);
        for (k, v) in base.iter(from..base.len()) {
            if !k.starts_with(b"folder-stamp/") {
                break;
            }
            stamps.observe(k, Some(v));
        }
        mem.stamps = stamps;
        for family in FAMILIES {
            let prefix = format!("{family}/");
            for (k, _) in mem
                .range(Bound::Included(prefix.as_bytes()), Bound::Unbounded)
                .take_while(|(k, _)| k.starts_with(prefix.as_bytes()))
            {
                groups.add(k);
            }
        }
        mem.groups = groups;
        mem
    }

    /// True when no key starts with `prefix`, known without a search: `prefix` lies within
    /// an empty group of a sparse key family ([`super::groups`]). False: search.
    pub fn known_empty(&self, prefix: &[u8]) -> bool {
        self.groups.known_empty(prefix)
    }

    /// Whether the overlay has grown enough that merging it into the base pays: it holds
    /// `min` records and half the base ([`OVERLAY_SHARE`]), or, when writes have
    /// paused (`quiet`), a thousand records (reads then search the base alone). Never
    /// while one runs.
    pub fn wants_compaction(&self, min: usize, quiet: bool) -> bool {
        let n = self.overlay.len();
        self.frozen.is_none()
            && (n
                >= (self.base.len() / OVERLAY_SHARE)
                    .min(OVERLAY_CAP)
                    .max(min.max(1))
                || (quiet && n >= 1000.min(min.max(1))))
    }

    /// The newest batch applied.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Starts a compaction: the overlay becomes read-only (reads still see it) and later
    /// writes start a new one. Constant time, so the write lock is held only for a moment.
    pub fn freeze(&mut self) -> Option<Job> {
        if self.frozen.is_some() {
            return None;
        }
        self.pin_undo();
        let frozen = Arc::new(std::mem::take(&mut self.overlay));
        self.frozen = Some(frozen.clone());
        Some((self.base.clone(), frozen))
    }

    /// The base, when it holds every record (no overlay, no compaction under way).
    pub fn whole_base(&self) -> Option<Arc<Base>> {
        (self.frozen.is_none() && self.overlay.is_empty()).then(|| self.base.clone())
    }

    /// Whether writes were merged by [`Mem::compact_now`] since the last call: the
    /// checkpoint then cannot tell which of its chunks they changed.
    pub fn take_unseen_merge(&mut self) -> bool {
        std::mem::take(&mut self.unseen_merge)
    }

    /// The keys written since the base was made (the frozen overlay's and the overlay's).
    pub fn written_keys(&self) -> impl Iterator<Item = &[u8]> {
        let frozen = self.frozen.iter().flat_map(|f| f.keys());
        frozen.chain(self.overlay.keys()).map(Key::as_bytes)
    }

    /// Merges everything into the base in place (start-up, tools after a bulk load).
    pub fn compact_now(&mut self) {
        self.unseen_merge |= self.frozen.is_some() || !self.overlay.is_empty();
        self.pin_undo();
        let step = self.frozen.take().map(|f| compact(&self.base, &f));
        let merged = compact(step.as_ref().unwrap_or(&self.base), &self.overlay);
        self.overlay.clear();
        self.base = Arc::new(merged);
    }

    /// Ends the compaction of `job` with `merged` (made by [`compact`] from it). Returns
    /// what was replaced, for the caller to free after releasing its lock; None, installing
    /// nothing, when [`Mem::compact_now`] replaced the job's base meanwhile.
    pub fn install(&mut self, job: &Job, merged: Arc<Base>) -> Option<impl Send + use<>> {
        let current = self.frozen.as_ref().is_some_and(|f| Arc::ptr_eq(f, &job.1));
        if !Arc::ptr_eq(&self.base, &job.0) || !current {
            return None;
        }
        let old = std::mem::replace(&mut self.base, merged);
        Some((old, self.frozen.take()))
    }

    /// Records in the base and in the overlays (tombstones included).
    pub fn sizes(&self) -> (usize, usize) {
        let frozen = self.frozen.as_ref().map_or(0, |f| f.len());
        (self.base.len(), self.overlay.len() + frozen)
    }

    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        for layer in [Some(&self.overlay), self.frozen.as_deref()]
            .into_iter()
            .flatten()
        {
            if !layer.is_empty()
                && let Some(e) = find(layer, key)
            {
                return e.as_deref();
            }
        }
        self.base.get(key)
    }

    /// The last stamp and the folder stamps.
    pub fn stamps(&self) -> &Stamps {
        &self.stamps
    }

    /// Writes `key` in batch `seq` (`None`: removes it).
    pub fn write(&mut self, seq: u64, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.last_seq = self.last_seq.max(seq);
        self.stamps.observe(&key, value.as_deref());
        if group_of(&key).is_some() {
            let was = self.get(&key).is_some();
            self.groups.changed(&key, was, value.is_some());
        }
        // A removal always leaves a tombstone: the key may be in a lower layer.
        self.overlay
            .insert(Key::new(key), value.map(Vec::into_boxed_slice));
    }

    /// [`Mem::write`], remembering how to take the write back until [`Mem::forget_undo`]
    /// says its batch is durable. Costs a key copy; the replaced overlay entry, which would
    /// be freed here, is kept instead.
    pub fn write_undoable(&mut self, seq: u64, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.last_seq = self.last_seq.max(seq);
        self.stamps.observe(&key, value.as_deref());
        if group_of(&key).is_some() {
            let was = self.get(&key).is_some();
            self.groups.changed(&key, was, value.is_some());
        }
        let key = Key::new(key);
        let undo_key = key.clone();
        let was = self.overlay.insert(key, value.map(Vec::into_boxed_slice));
        self.undo.push_back(Undo {
            seq,
            key: undo_key,
            was,
        });
    }

    /// Drops what [`Mem::rollback`] would need for batches up to `settled`.
    #[inline]
    pub fn forget_undo(&mut self, settled: u64) {
        while self.undo.front().is_some_and(|u| u.seq <= settled) {
            self.undo.pop_front();
        }
    }

    /// Before the overlay moves down (a freeze or a merge), writes whose old value lies
    /// below it get that value spelled out: removing the overlay's entry would no longer
    /// bring it back.
    fn pin_undo(&mut self) {
        let Mem {
            undo, frozen, base, ..
        } = self;
        for u in undo.iter_mut().filter(|u| u.was.is_none()) {
            let below = match frozen.as_deref().and_then(|f| find(f, u.key.as_bytes())) {
                Some(e) => e.clone(),
                None => base.get(u.key.as_bytes()).map(Box::from),
            };
            u.was = Some(below);
        }
    }

    /// Takes back every write of the batches after `settled`, newest first, so the data is
    /// what the durable batches made it; the stamps are derived again from the keys.
    pub fn rollback(&mut self, settled: u64) {
        while self.undo.back().is_some_and(|u| u.seq > settled) {
            let u = self.undo.pop_back().expect("checked");
            let bytes = u.key.as_bytes().to_vec();
            let now = self.get(&bytes).is_some();
            match u.was {
                Some(entry) => {
                    self.overlay.insert(u.key, entry);
                }
                None => {
                    self.overlay.remove(&u.key);
                }
            }
            if group_of(&bytes).is_some() {
                let is = self.get(&bytes).is_some();
                self.groups.changed(&bytes, now, is);
            }
        }
        self.stamps = self.derive_stamps();
    }

    /// The stamps as the keys give them (the load does the same from the base alone).
    fn derive_stamps(&self) -> Stamps {
        let mut stamps = Stamps::default();
        if let Some(v) = self.get(b"ctr/stamp") {
            stamps.observe(b"ctr/stamp", Some(v));
        }
        let events = self
            .range(
                Bound::Included(&b"event/"[..]),
                Bound::Excluded(&b"event0"[..]),
            )
            .last();
        if let Some((k, v)) = events {
            stamps.observe(k, Some(v));
        }
        for (k, v) in self
            .range(Bound::Included(&b"folder-stamp/"[..]), Bound::Unbounded)
            .take_while(|(k, _)| k.starts_with(b"folder-stamp/"))
        {
            stamps.observe(k, Some(v));
        }
        stamps
    }

    /// Records with keys within the bounds, in key order (none when the bounds cross).
    pub fn range<'a>(
        &'a self,
        start: Bound<&'a [u8]>,
        end: Bound<&'a [u8]>,
    ) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        let crossed = match (start, end) {
            (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
                match compare(a, b) {
                    Ordering::Greater => true,
                    Ordering::Equal => {
                        !matches!((start, end), (Bound::Included(_), Bound::Included(_)))
                    }
                    Ordering::Less => false,
                }
            }
            _ => false,
        };
        let first = self.base.lower(start);
        let last = if crossed {
            first
        } else {
            self.base.upper(end).max(first)
        };
        let base = self.base.iter(first..last).map(|(k, v)| (k, Some(v)));
        let layer = move |o: Option<&'a Overlay>| {
            let map = |b: Bound<&'a [u8]>| match b {
                Bound::Included(k) => Bound::Included(KeyRef::new(k)),
                Bound::Excluded(k) => Bound::Excluded(KeyRef::new(k)),
                Bound::Unbounded => Bound::Unbounded,
            };
            // Short bounds search as inline keys (word compares), long ones as bytes.
            let probe = |b: Bound<&[u8]>| match b {
                Bound::Included(k) => Key::probe(k).map(Bound::Included),
                Bound::Excluded(k) => Key::probe(k).map(Bound::Excluded),
                Bound::Unbounded => Some(Bound::Unbounded),
            };
            o.filter(|_| !crossed)
                .map(|o| match (probe(start), probe(end)) {
                    (Some(a), Some(b)) => o.range::<Key, _>((a, b)),
                    _ => o.range::<KeyRef, _>((map(start), map(end))),
                })
                .into_iter()
                .flatten()
                .map(|(k, e)| (k.as_bytes(), e.as_deref()))
        };
        let lower = Merge::new(base, layer(self.frozen.as_deref()));
        Merge::new(lower, layer(Some(&self.overlay))).filter_map(|(k, v)| Some((k, v?)))
    }
}

/// Merges two ordered sources of (key, value or removal); `high` wins on equal keys.
struct Merge<'a, L: Iterator, H: Iterator> {
    low: std::iter::Peekable<L>,
    high: std::iter::Peekable<H>,
    _keys: std::marker::PhantomData<&'a [u8]>,
}

type Item<'a> = (&'a [u8], Option<&'a [u8]>);

impl<'a, L: Iterator<Item = Item<'a>>, H: Iterator<Item = Item<'a>>> Merge<'a, L, H> {
    fn new(low: L, high: H) -> Self {
        Merge {
            low: low.peekable(),
            high: high.peekable(),
            _keys: std::marker::PhantomData,
        }
    }
}

impl<'a, L: Iterator<Item = Item<'a>>, H: Iterator<Item = Item<'a>>> Iterator for Merge<'a, L, H> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let order = match (self.low.peek(), self.high.peek()) {
            (None, None) => return None,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((l, _)), Some((h, _))) => compare(l, h),
        };
        match order {
            Ordering::Less => self.low.next(),
            Ordering::Equal => {
                self.low.next();
                self.high.next()
            }
            Ordering::Greater => self.high.next(),
        }
    }
}

/// A new base: `base` with the writes of `overlay` applied. Segments the overlay does not
/// touch are shared, the others merged anew (and cut when they grew past [`SEGMENT_MAX`]).
/// Runs without any lock.
fn compact(base: &Base, overlay: &Overlay) -> Base {
    let mut out: Vec<Arc<Packed>> = Vec::with_capacity(base.segments.len() + 1);
    let n = base.segments.len().max(1);
    for s in 0..n {
        let lower = match s {
            0 => Bound::Unbounded,
            _ => Bound::Included(KeyRef::new(base.segments[s].key(0))),
        };
        let upper = match base.segments.get(s + 1) {
            Some(next) => Bound::Excluded(KeyRef::new(next.key(0))),
            None => Bound::Unbounded,
        };
        let mut writes = overlay.range::<KeyRef, _>((lower, upper)).peekable();
        let seg = base.segments.get(s);
        if writes.peek().is_none() {
            out.extend(seg.cloned());
            continue;
        }
        let empty = Packed::default();
        let seg: &Packed = seg.map_or(&empty, |a| a);
        let writes: Vec<(&[u8], Option<&[u8]>)> =
            writes.map(|(k, e)| (k.as_bytes(), e.as_deref())).collect();
        merge_segment(seg, &writes, &mut out);
    }
    Base::from_segments(out)
}

/// `seg` with `writes` applied, as one segment or, past [`SEGMENT_MAX`], several of about
/// [`SEGMENT_TARGET`] bytes; none when nothing is left.
fn merge_segment(seg: &Packed, writes: &[(&[u8], Option<&[u8]>)], out: &mut Vec<Arc<Packed>>) {
    // Room for everything the writes may add, so the slab never grows by copying itself.
    let added: usize = writes
        .iter()
        .filter_map(|(k, v)| Some(6 + k.len() + v.as_ref()?.len()))
        .sum();
    let total = seg.slab.len() + added;
    let piece = if total > SEGMENT_MAX {
        SEGMENT_TARGET
    } else {
        usize::MAX
    };
    let fresh = |bytes: usize, records: usize| {
        let p = Packed {
            slab: Vec::with_capacity(bytes),
            offsets: Vec::with_capacity(records),
            ..Packed::default()
        };
        // Advised before the first write, the pages fault in huge: seal has nothing to copy.
        huge_pages::advise(&p.slab);
        huge_pages::advise(&p.offsets);
        p
    };
    let per_record = total / (seg.len() + writes.len()).max(1) + 1;
    let room = total.min(piece.saturating_add(64 << 10));
    let mut cur = fresh(room, room / per_record + 16);
    let all = (0..seg.len()).map(|i| {
        let (k, v) = seg.entry(i);
        (k, Some(v))
    });
    for (k, v) in Merge::new(all, writes.iter().copied()) {
        let Some(v) = v else { continue };
        if cur.slab.len() >= piece {
            cur.seal();
            out.push(Arc::new(std::mem::replace(
                &mut cur,
                fresh(room, room / per_record + 16),
            )));
        }
        cur.push(k, v);
    }
    if !cur.is_empty() {
        cur.seal();
        out.push(Arc::new(cur));
    }
}

/// Runs a compaction job: the new base for [`Mem::install`].
pub fn run_job(job: &Job) -> Base {
    compact(&job.0, &job.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_compaction_overtaken_by_another_installs_nothing() {
        let mut mem = Mem::new(Packed::default());
        mem.write(1, b"a".to_vec(), Some(b"1".to_vec()));
        let slow = mem.freeze().unwrap();
        assert!(mem.freeze().is_none(), "one compaction at a time");
        mem.write(2, b"b".to_vec(), Some(b"2".to_vec()));
        mem.compact_now();
        mem.write(3, b"c".to_vec(), Some(b"3".to_vec()));
        let merged = run_job(&slow);
        assert!(mem.install(&slow, Arc::new(merged)).is_none());
        for (k, v) in [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")] {
            assert_eq!(mem.get(k), Some(&v[..]));
        }
    }

    fn dump(mem: &Mem) -> Vec<(Vec<u8>, Vec<u8>)> {
        mem.range(Bound::Unbounded, Bound::Unbounded)
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect()
    }

    /// Batches after the durable point are taken back exactly, across a freeze, a
    /// compaction's install and a merge, with removals, rewrites and long keys, and the
    /// stamps follow.
    #[test]
    fn a_rollback_restores_the_durable_state() {
        let long = vec![b'k'; 40];
        let mut base = Packed::default();
        base.push(b"a", b"base-a");
        base.push(b"event/\0\0\0\0\0\0\0\x05", b"e");
        base.push(b"z", b"base-z");
        let mut mem = Mem::new(base);
        mem.write_undoable(1, b"b".to_vec(), Some(b"1".to_vec()));
        mem.write_undoable(1, long.clone(), Some(b"long".to_vec()));
        mem.forget_undo(1);
        let durable = dump(&mem);
        let stamp = mem.stamps().last();
        // Not durable: rewrites, removals (of the base's key and of an overlay key),
        // a new event, then a freeze, more writes, an install and a merge.
        mem.write_undoable(2, b"a".to_vec(), Some(b"2".to_vec()));
        mem.write_undoable(2, b"b".to_vec(), None);
        mem.write_undoable(3, b"z".to_vec(), None);
        mem.write_undoable(3, key_event(9), Some(b"e".to_vec()));
        let job = mem.freeze().unwrap();
        mem.write_undoable(4, b"a".to_vec(), Some(b"4".to_vec()));
        mem.write_undoable(4, long.clone(), None);
        mem.write_undoable(4, b"c".to_vec(), Some(b"4".to_vec()));
        let merged = run_job(&job);
        assert!(mem.install(&job, Arc::new(merged)).is_some());
        mem.write_undoable(5, b"z".to_vec(), Some(b"5".to_vec()));
        mem.compact_now();
        mem.write_undoable(6, b"b".to_vec(), Some(b"6".to_vec()));
        assert_eq!(mem.stamps().last(), 9);
        mem.rollback(1);
        assert_eq!(dump(&mem), durable);
        assert_eq!(mem.stamps().last(), stamp);
        // And a partial one: batches up to 3 stay.
        mem.write_undoable(7, b"a".to_vec(), Some(b"7".to_vec()));
        let kept = dump(&mem);
        mem.write_undoable(8, b"a".to_vec(), None);
        mem.write_undoable(8, b"q".to_vec(), Some(b"8".to_vec()));
        mem.rollback(7);
        assert_eq!(dump(&mem), kept);
    }

    fn key_event(stamp: u64) -> Vec<u8> {
        let mut k = b"event/".to_vec();
        k.extend_from_slice(&stamp.to_be_bytes());
        k
    }

    #[test]
    fn keys_kept_inline_and_boxed_sort_as_bytes() {
        // Lengths on both sides of INLINE, sharing long prefixes, written in scrambled order.
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for len in INLINE - 3..INLINE + 4 {
            for last in [0u8, 1, 255] {
                let mut k = vec![b'k'; len];
                k[len - 1] = last;
                keys.push(k);
            }
        }
        let mut mem = Mem::new(Packed::default());
        for (i, k) in keys
            .iter()
            .enumerate()
            .rev()
            .step_by(2)
            .chain(keys.iter().enumerate().skip(1).step_by(2))
        {
            mem.write(i as u64 + 1, k.clone(), Some(vec![i as u8]));
        }
        keys.sort();
        keys.dedup();
        let got: Vec<Vec<u8>> = mem
            .range(Bound::Unbounded, Bound::Unbounded)
            .map(|(k, _)| k.to_vec())
            .collect();
        assert_eq!(got, keys);
        for k in &keys {
            assert!(mem.get(k).is_some(), "{k:?}");
        }
        assert_eq!(mem.get(&[b'k'; INLINE + 4]), None);
    }

    #[test]
    fn searches_over_many_blocks_find_every_bound() {
        // Keys sharing their first 32 bytes (equal fences) among others, over many groups.
        let mut keys: Vec<Vec<u8>> = (0..6000u32)
            .map(|i| {
                let mut k = if i % 3 == 0 {
                    b"attr-value/000000000000000000000000".to_vec()
                } else {
                    b"row/".to_vec()
                };
                k.extend_from_slice(&i.to_be_bytes());
                k
            })
            .collect();
        keys.sort();
        let mut packed = Packed::default();
        for k in &keys {
            packed.push(k, b"v");
        }
        packed.seal();
        let mut probes = keys.clone();
        probes.extend([
            vec![],
            b"a".to_vec(),
            b"attr-value/000000000000000000000000".to_vec(),
            b"attr-value/000000000000000000000001".to_vec(),
            b"row/".to_vec(),
            b"zzz".to_vec(),
        ]);
        for k in keys.iter().step_by(7) {
            let mut after = k.clone();
            after.push(0);
            probes.push(after);
        }
        for p in &probes {
            let below = keys.partition_point(|k| k < p);
            let through = keys.partition_point(|k| k <= p);
            assert_eq!(packed.count_below(p, false), below, "{p:?}");
            assert_eq!(packed.count_below(p, true), through, "{p:?}");
        }
    }

    /// A base of many small segments: writes in several of them, removals emptying one,
    /// and compactions that share the untouched segments read like one ordered map.
    #[test]
    fn segments_merge_only_where_written_and_read_like_one_map() {
        let key = |i: u32| format!("k/{i:05}").into_bytes();
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut segments = Vec::new();
        for s in 0..10u32 {
            let mut p = Packed::default();
            for i in s * 10..s * 10 + 10 {
                p.push(&key(i), b"v");
                model.insert(key(i), b"v".to_vec());
            }
            p.seal();
            segments.push(Arc::new(p));
        }
        let mut mem = Mem::with_base(Base::from_segments(segments));
        let mut seq = 0;
        let mut write =
            |mem: &mut Mem, model: &mut BTreeMap<_, _>, k: Vec<u8>, v: Option<&[u8]>| {
                seq += 1;
                mem.write(seq, k.clone(), v.map(|v| v.to_vec()));
                match v {
                    Some(v) => model.insert(k, v.to_vec()),
                    None => model.remove(&k),
                };
            };
        // Segment 3 emptied, segment 5 rewritten, keys before the first and after the last.
        for i in 30..40 {
            write(&mut mem, &mut model, key(i), None);
        }
        write(&mut mem, &mut model, key(55), Some(b"w"));
        write(&mut mem, &mut model, b"a".to_vec(), Some(b"first"));
        write(&mut mem, &mut model, key(500), Some(b"last"));
        let job = mem.freeze().unwrap();
        let merged = Arc::new(run_job(&job));
        for untouched in [1, 2, 4, 6, 7, 8] {
            assert!(
                merged
                    .segments
                    .iter()
                    .any(|s| Arc::ptr_eq(s, &job.0.segments[untouched])),
                "segment {untouched} copied"
            );
        }
        assert!(mem.install(&job, merged).is_some());
        write(&mut mem, &mut model, key(31), Some(b"back"));
        mem.compact_now();
        assert_eq!(mem.sizes(), (model.len(), 0));
        let all: Vec<(Vec<u8>, Vec<u8>)> = mem
            .range(Bound::Unbounded, Bound::Unbounded)
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect();
        assert_eq!(all, model.clone().into_iter().collect::<Vec<_>>());
        for (k, v) in &model {
            assert_eq!(mem.get(k), Some(&v[..]));
        }
        let from = key(28);
        let to = key(57);
        let got: Vec<Vec<u8>> = mem
            .range(Bound::Included(&from[..]), Bound::Excluded(&to[..]))
            .map(|(k, _)| k.to_vec())
            .collect();
        let want: Vec<Vec<u8>> = model.range(from..to).map(|(k, _)| k.clone()).collect();
        assert_eq!(got, want);
        let span = mem.base.span(0..mem.base.len());
        let mut again = Packed::default();
        again.push_packed(&span).unwrap();
        assert_eq!(again.len(), model.len());
    }

    proptest! {
        #[test]
        fn compare_is_byte_order(a in proptest::collection::vec(any::<u8>(), 0..24),
                                 b in proptest::collection::vec(any::<u8>(), 0..24)) {
            prop_assert_eq!(compare(&a, &b), a.cmp(&b));
        }

        /// Inline and boxed keys, zero bytes and lengths around [`INLINE`] included, order
        /// as their bytes do.
        #[test]
        fn keys_order_as_bytes(a in proptest::collection::vec(0u8..3, 0..40),
                               b in proptest::collection::vec(0u8..3, 0..40)) {
            prop_assert_eq!(Key::new(a.clone()).cmp(&Key::new(b.clone())), a.cmp(&b));
        }

        /// Any base plus any writes reads back like one ordered map holding the same.
        #[test]
        fn base_and_overlay_read_like_one_map(
            base in proptest::collection::btree_map(proptest::collection::vec(0u8..4, 0..4), any::<u8>(), 0..100),
            writes in proptest::collection::vec((proptest::collection::vec(0u8..4, 0..4), proptest::option::of(any::<u8>())), 0..30),
            lo in proptest::collection::vec(0u8..4, 0..3),
            hi in proptest::collection::vec(0u8..4, 0..3),
            compact_midway in any::<bool>(),
        ) {
            let mut pending = None;
            let mut packed = Packed::default();
            for (k, v) in &base {
                packed.push(k, &[*v]);
            }
            let mut mem = Mem::new(packed);
            let mut model: BTreeMap<Vec<u8>, Vec<u8>> =
                base.iter().map(|(k, v)| (k.clone(), vec![*v])).collect();
            let half = writes.len() / 2;
            for (seq, (k, v)) in writes.into_iter().enumerate() {
                if seq == half && compact_midway {
                    // A compaction of what was written so far, installed later: reads in
                    // between see three layers.
                    let job = mem.freeze().unwrap();
                    pending = Some((run_job(&job), job));
                }
                if seq == half + 2 && let Some((merged, job)) = pending.take() {
                    assert!(mem.install(&job, Arc::new(merged)).is_some());
                }
                match v {
                    Some(v) => {
                        mem.write(seq as u64 + 1, k.clone(), Some(vec![v]));
                        model.insert(k, vec![v]);
                    }
                    None => {
                        mem.write(seq as u64 + 1, k.clone(), None);
                        model.remove(&k);
                    }
                }
            }
            // Checked while a compaction is under way (three layers) and after it ends.
            for round in 0..2 {
                if round == 1 && let Some((merged, job)) = pending.take() {
                    assert!(mem.install(&job, Arc::new(merged)).is_some());
                }
                for k in model.keys() {
                    prop_assert_eq!(mem.get(k), model.get(k).map(|v| &v[..]));
                }
                prop_assert_eq!(mem.get(b"\x09"), None);
                let all: Vec<(Vec<u8>, Vec<u8>)> = mem
                    .range(Bound::Unbounded, Bound::Unbounded)
                    .map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .collect();
                prop_assert_eq!(&all, &model.clone().into_iter().collect::<Vec<_>>());
                for (start, end) in [
                    (Bound::Included(&lo[..]), Bound::Excluded(&hi[..])),
                    (Bound::Excluded(&lo[..]), Bound::Included(&hi[..])),
                    (Bound::Included(&lo[..]), Bound::Unbounded),
                ] {
                    let got: Vec<Vec<u8>> = mem.range(start, end).map(|(k, _)| k.to_vec()).collect();
                    let crossed = matches!((start, end), (Bound::Included(a), Bound::Excluded(b)) | (Bound::Excluded(a), Bound::Included(b)) if a >= b);
                    let want: Vec<Vec<u8>> = if crossed {
                        Vec::new()
                    } else {
                        model.range::<[u8], _>((start, end)).map(|(k, _)| k.clone()).collect()
                    };
                    prop_assert_eq!(got, want);
                }
            }
        }
    }
}
