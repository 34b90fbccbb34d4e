//! A log-linear latency histogram in the style of HdrHistogram: 64 linear sub-buckets per
//! power of two, so any recorded value is reported within 1/64 (about 1.6 %) of itself, in
//! a fixed 30 KB array that merges by addition.

/// Sub-bucket bits: each power of two is split into 2^6 = 64 equal buckets.
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// Enough buckets for any `u64` value.
const BUCKETS: usize = ((64 - SUB_BITS as usize) << SUB_BITS) + (2 * SUB as usize);

#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

/// Values below 2·SUB get a bucket each; above, the bucket keeps the top SUB_BITS+1 bits.
fn index(v: u64) -> usize {
    if v < 2 * SUB {
        return v as usize;
    }
    let shift = 63 - v.leading_zeros() - SUB_BITS;
    ((shift as u64) << SUB_BITS) as usize + (v >> shift) as usize
}

/// The highest value that falls into bucket `i`.
fn upper(i: usize) -> u64 {
    if i < 2 * SUB as usize {
        return i as u64;
    }
    let shift = (i >> SUB_BITS) as u32 - 1;
    let mantissa = (i as u64 & (SUB - 1)) + SUB;
    // u128: the top bucket's edge is 2^64 - 1, and 2^64 does not fit a u64.
    ((((mantissa + 1) as u128) << shift) - 1).min(u64::MAX as u128) as u64
}

impl Histogram {
    pub fn record(&mut self, v: u64) {
        self.counts[index(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0.0–1.0), as the upper edge of its bucket (capped at max).
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper(i).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_tight() {
        for v in (0..100_000u64).chain([u64::MAX / 3, u64::MAX]) {
            let i = index(v);
            assert!(upper(i) >= v, "{v} above its bucket {i}");
            if i > 0 {
                assert!(upper(i - 1) < v, "{v} belongs to a lower bucket");
            }
            assert!((upper(i) - v) as f64 <= v as f64 / SUB as f64, "{v}");
        }
        assert!(index(u64::MAX) < BUCKETS);
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        for v in 1..=1000 {
            h.record(v * 1000);
        }
        let p50 = h.quantile(0.5) as f64;
        assert!((p50 - 500_000.0).abs() / 500_000.0 < 0.02, "{p50}");
        assert_eq!(h.quantile(1.0), 1_000_000);
        let mut other = Histogram::default();
        other.record(5);
        h.merge(&other);
        assert_eq!(h.count(), 1001);
        assert_eq!(h.quantile(0.0), 5);
    }
}
