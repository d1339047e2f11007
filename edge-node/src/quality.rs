//! Fusion quality against ground truth, for the fusion test and the simulator's fast mode: how
//! far the edge's
//! confirmed tracks are from the road users they stand for, against how far the best single
//! vehicle's own detections are; how often a road user has a second track; how often its track
//! id changes.
//!
//! At every sample, true road users (present, and connected or within sensor range of a
//! connected vehicle) are matched one to one to confirmed tracks within 3 m, nearest first. A
//! duplicate is a further track within 1.5 m of a matched road user that is nearer to it than
//! to any other road user.

use crate::geometry::V2;
use serde::Serialize;
use std::collections::BTreeMap;

const MATCH_M: f64 = 3.0;
const DUPLICATE_M: f64 = 1.5;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FusionReport {
    pub position_rmse_m: f64,
    pub best_single_observer_rmse_m: f64,
    pub duplicate_track_ratio: f64,
    pub id_switches_per_object_min: f64,
    /// Road-user time the figures cover, seconds.
    pub object_seconds: f64,
}

#[derive(Debug, Default)]
pub struct FusionMeter {
    /// Per observer: sum of squared detection errors and their count.
    single: BTreeMap<usize, (f64, u64)>,
    fused_sq: f64,
    fused_n: u64,
    object_samples: u64,
    duplicate_samples: u64,
    last_track: BTreeMap<usize, u32>,
    switches: u64,
    sample_period_s: f64,
}

impl FusionMeter {
    pub fn new(sample_period_s: f64) -> Self {
        Self {
            sample_period_s,
            ..Default::default()
        }
    }

    /// One detection by `observer` of the road user truly at `truth`, reported at `reported`.
    pub fn detection(&mut self, observer: usize, reported: V2, truth: V2) {
        let e = self.single.entry(observer).or_default();
        e.0 += (reported - truth).norm_squared();
        e.1 += 1;
    }

    /// One sample: `truth` (actor index, position) and confirmed `tracks` (id, position), both
    /// in the scenario's frame at the same instant.
    pub fn sample(&mut self, truth: &[(usize, V2)], tracks: &[(u32, V2)]) {
        // Both sides sorted by x, so that each search looks only at a strip around its point
        // (a sample of a few hundred road users would otherwise be a few hundred thousand
        // distances); the pairs are then put in a fixed order, so the result is the same.
        let by_x = |points: &mut Vec<(f64, usize)>| {
            points.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        };
        let mut track_x: Vec<(f64, usize)> = tracks
            .iter()
            .enumerate()
            .map(|(k, (_, c))| (c.x, k))
            .collect();
        let mut truth_x: Vec<(f64, usize)> = truth
            .iter()
            .enumerate()
            .map(|(k, (_, p))| (p.x, k))
            .collect();
        by_x(&mut track_x);
        by_x(&mut truth_x);
        let strip = |sorted: &[(f64, usize)], x: f64, half: f64| -> std::ops::Range<usize> {
            let lo = sorted.partition_point(|e| e.0 < x - half);
            let hi = sorted.partition_point(|e| e.0 <= x + half);
            lo..hi.max(lo)
        };
        let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
        for (ti, (_, p)) in truth.iter().enumerate() {
            for &(_, ki) in &track_x[strip(&track_x, p.x, MATCH_M)] {
                let d = (tracks[ki].1 - p).norm();
                if d < MATCH_M {
                    pairs.push((d, ti, ki));
                }
            }
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then((a.1, a.2).cmp(&(b.1, b.2))));
        let (mut truth_used, mut track_used) =
            (vec![false; truth.len()], vec![false; tracks.len()]);
        for &(d, ti, ki) in &pairs {
            if truth_used[ti] || track_used[ki] {
                continue;
            }
            (truth_used[ti], track_used[ki]) = (true, true);
            self.fused_sq += d * d;
            self.fused_n += 1;
            let id = tracks[ki].0;
            if self
                .last_track
                .insert(truth[ti].0, id)
                .is_some_and(|prev| prev != id)
            {
                self.switches += 1;
            }
        }
        self.object_samples += truth.len() as u64;
        for (ti, (_, p)) in truth.iter().enumerate() {
            let duplicate = truth_used[ti]
                && track_x[strip(&track_x, p.x, DUPLICATE_M)]
                    .iter()
                    .any(|&(_, ki)| {
                        let c = tracks[ki].1;
                        let d = (c - p).norm();
                        // Nearer to this road user than to any other: only road users
                        // within `d` of the track can be nearer.
                        !track_used[ki]
                            && d < DUPLICATE_M
                            && truth_x[strip(&truth_x, c.x, d)]
                                .iter()
                                .all(|&(_, qi)| (c - truth[qi].1).norm() >= d)
                    });
            self.duplicate_samples += duplicate as u64;
        }
    }

    pub fn report(&self) -> FusionReport {
        let rmse = |sq: f64, n: u64| if n == 0 { 0.0 } else { (sq / n as f64).sqrt() };
        let object_min = self.object_samples as f64 * self.sample_period_s / 60.0;
        FusionReport {
            position_rmse_m: rmse(self.fused_sq, self.fused_n),
            best_single_observer_rmse_m: self
                .single
                .values()
                .filter(|(_, n)| *n > 0)
                .map(|(sq, n)| rmse(*sq, *n))
                .fold(f64::INFINITY, f64::min)
                .min(f64::MAX),
            duplicate_track_ratio: if self.object_samples == 0 {
                0.0
            } else {
                self.duplicate_samples as f64 / self.object_samples as f64
            },
            id_switches_per_object_min: if object_min > 0.0 {
                self.switches as f64 / object_min
            } else {
                0.0
            },
            object_seconds: object_min * 60.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_duplicates_and_switches() {
        let mut m = FusionMeter::new(0.1);
        let truth = [(0, V2::new(0.0, 0.0)), (1, V2::new(10.0, 0.0))];
        m.sample(&truth, &[(1, V2::new(0.3, 0.0)), (2, V2::new(10.0, 0.4))]);
        // Road user 0 now has a second track 1 m away, and road user 1's id changed.
        m.sample(
            &truth,
            &[
                (1, V2::new(0.3, 0.0)),
                (3, V2::new(1.0, 0.0)),
                (4, V2::new(10.0, 0.4)),
            ],
        );
        m.detection(7, V2::new(0.5, 0.0), V2::new(0.0, 0.0));
        let r = m.report();
        assert!(
            (r.position_rmse_m - (0.125f64).sqrt()).abs() < 1e-9,
            "{r:?}"
        );
        assert_eq!(r.duplicate_track_ratio, 0.25);
        assert!((r.id_switches_per_object_min - 1.0 / (4.0 * 0.1 / 60.0)).abs() < 1e-9);
        assert_eq!(r.best_single_observer_rmse_m, 0.5);
    }
}
