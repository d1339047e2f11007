//! A fixed-size histogram of non-negative integers (microseconds, usually) with about 3 %
//! relative precision: memory stays flat however long an edge runs.
//!
//! Also the drivers' per-stage timing of the edge core: [`StageTimer`] is the [`StageProbe`]
//! that reads the monotonic clock at each stage boundary, and [`StageTimes`] keeps one
//! histogram per [`Stage`]. The core itself never reads a clock; the drivers do, through these.

use crate::core::{Stage, StageProbe};
use std::collections::BTreeMap;
use std::time::Instant;

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

/// Per-stage figures of the edge core, µs per pass through the stage (a frame, or a tick).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StageFigures {
    pub p50: f64,
    pub p99: f64,
    /// The stage's share of the time spent in all stages (frames and ticks together); the
    /// shares of one breakdown sum to 1.
    pub share: f64,
}

/// The time each [`Stage`] took, one fixed-size histogram per stage (nanoseconds, so that
/// stages of a microsecond or two keep their 3 % precision) plus the exact total per stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageTimes {
    per_stage: [Histogram; Stage::ALL.len()],
    total_ns: [u64; Stage::ALL.len()],
}

impl Default for StageTimes {
    fn default() -> Self {
        Self {
            per_stage: std::array::from_fn(|_| Histogram::default()),
            total_ns: [0; Stage::ALL.len()],
        }
    }
}

impl StageTimes {
    pub fn record(&mut self, stage: Stage, ns: u64) {
        self.per_stage[stage.index()].record(ns);
        self.total_ns[stage.index()] += ns;
    }

    /// How many passes through `stage` were recorded.
    pub fn count(&self, stage: Stage) -> u64 {
        self.per_stage[stage.index()].len()
    }

    /// p50, p99 (µs) and share of each stage that was entered at least once, by
    /// [`Stage::name`]; empty when nothing was recorded.
    pub fn figures(&self) -> BTreeMap<String, StageFigures> {
        let total: u64 = self.total_ns.iter().sum();
        Stage::ALL
            .iter()
            .filter(|s| self.count(**s) > 0)
            .map(|&s| {
                let h = &self.per_stage[s.index()];
                let us = |q: f64| (h.quantile(q)).round() / 1000.0;
                let figures = StageFigures {
                    p50: us(0.5),
                    p99: us(0.99),
                    share: if total == 0 {
                        0.0
                    } else {
                        self.total_ns[s.index()] as f64 / total as f64
                    },
                };
                (s.name().to_string(), figures)
            })
            .collect()
    }
}

/// The drivers' [`StageProbe`]: one `Instant::now()` per stage boundary (tens of nanoseconds;
/// ten a frame at most), each stage's time recorded as it ends.
#[derive(Debug, Clone, Default)]
pub struct StageTimer {
    times: StageTimes,
    current: Option<(Stage, Instant)>,
}

impl StageTimer {
    pub fn times(&self) -> &StageTimes {
        &self.times
    }
}

impl StageProbe for StageTimer {
    fn enter(&mut self, stage: Stage) {
        let now = Instant::now();
        if let Some((previous, since)) = self.current.replace((stage, now)) {
            let ns = now.saturating_duration_since(since).as_nanos();
            self.times.record(previous, ns as u64);
        }
    }

    fn finish(&mut self) {
        if let Some((stage, since)) = self.current.take() {
            self.times.record(stage, since.elapsed().as_nanos() as u64);
        }
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

    #[test]
    fn stage_figures_are_in_microseconds_with_shares_that_sum_to_one() {
        let mut t = StageTimes::default();
        for _ in 0..10 {
            t.record(Stage::Decode, 2_000);
            t.record(Stage::Associate, 6_000);
        }
        let f = t.figures();
        assert_eq!(f.keys().collect::<Vec<_>>(), ["associate", "decode"]);
        assert!((f["decode"].p50 - 2.0).abs() < 2.0 * 0.035, "{f:?}");
        assert!((f["associate"].p99 - 6.0).abs() < 6.0 * 0.035, "{f:?}");
        assert!((f["decode"].share - 0.25).abs() < 1e-12);
        assert!((f["associate"].share - 0.75).abs() < 1e-12);
        assert!(StageTimes::default().figures().is_empty());
    }

    #[test]
    fn the_timer_charges_each_stage_until_the_next_one_starts() {
        let mut timer = StageTimer::default();
        timer.enter(Stage::Decode);
        timer.enter(Stage::Validate);
        timer.finish();
        timer.finish(); // a second finish records nothing
        assert_eq!(timer.times().count(Stage::Decode), 1);
        assert_eq!(timer.times().count(Stage::Validate), 1);
        assert_eq!(timer.times().count(Stage::Convert), 0);
    }
}
