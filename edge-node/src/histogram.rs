//! A fixed-size histogram of non-negative integers (microseconds, usually) with about 3 %
//! relative precision: memory stays flat however long an edge runs.

/// Values below 64 have a bucket each; above, each power of two is split into 32 buckets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    counts: Vec<u64>,
    n: u64,
    max: u64,
}

const LINEAR: u64 = 64;
const SUB: u32 = 5; // 2^5 = 32 buckets per power of two

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; Self::index(u64::MAX) + 1],
            n: 0,
            max: 0,
        }
    }
}

impl Histogram {
    fn index(v: u64) -> usize {
        if v < LINEAR {
            return v as usize;
        }
        let e = 63 - v.leading_zeros(); // >= 6
        let mantissa = (v >> (e - SUB)) & ((1 << SUB) - 1);
        (LINEAR + (e as u64 - 6) * (1 << SUB) + mantissa) as usize
    }

    /// The smallest value of bucket `i`.
    fn lower(i: usize) -> u64 {
        let i = i as u64;
        if i < LINEAR {
            return i;
        }
        let e = (i - LINEAR) / (1 << SUB) + 6;
        let mantissa = (i - LINEAR) % (1 << SUB);
        (1 << e) | (mantissa << (e - SUB as u64))
    }

    pub fn record(&mut self, v: u64) {
        self.counts[Self::index(v)] += 1;
        self.n += 1;
        self.max = self.max.max(v);
    }

    pub fn len(&self) -> u64 {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` in `0..=1` (the midpoint of its bucket, capped at the maximum
    /// seen); 0 when empty.
    pub fn quantile(&self, q: f64) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lo, hi) = (Self::lower(i), Self::lower(i + 1));
                return ((lo + hi - 1) as f64 / 2.0).min(self.max as f64);
            }
        }
        self.max as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_precise_to_a_thirty_second() {
        for i in 0..Histogram::index(u64::MAX) {
            assert_eq!(Histogram::index(Histogram::lower(i)), i);
            assert_eq!(Histogram::index(Histogram::lower(i + 1) - 1), i);
            let (lo, hi) = (Histogram::lower(i), Histogram::lower(i + 1));
            assert!(lo < LINEAR || (hi - lo) as f64 / lo as f64 <= 1.0 / 32.0 + 1e-12);
        }
    }

    #[test]
    fn quantiles_of_a_known_distribution() {
        let mut h = Histogram::default();
        for v in 1..=10_000u64 {
            h.record(v);
        }
        for (q, want) in [(0.5, 5_000.0), (0.99, 9_900.0), (1.0, 10_000.0)] {
            let got = h.quantile(q);
            assert!((got - want).abs() / want < 0.035, "q{q}: {got} vs {want}");
        }
        assert_eq!(h.len(), 10_000);
        assert_eq!(Histogram::default().quantile(0.5), 0.0);
    }
}
