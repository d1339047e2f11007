//! Scoring, with the definitions every report uses (docs/ARCHITECTURE.md repeats them):
//!
//! - A **true conflict** is a pair of road users, at least one of them connected, whose
//!   ground-truth constant-velocity time to collision (between footprints) drops below 1.5 s
//!   at some moment; its **moment** is their time of closest approach.
//! - It is **warned** when a connected party receives a raise alert naming the other before the
//!   moment; **lead time** = moment - receipt time.
//! - A **false alarm** is a raise alert for a pair that is not a true conflict (or whose other
//!   party cannot be resolved to a road user).
//! - **End-to-end latency** = alert receipt time at the vehicle - capture time of the frame that
//!   triggered it.

use crate::world::{Actor, Scenario};
use edge_node::geometry::{encounter, time_to_collision, Mover};
use serde::Serialize;
use std::collections::BTreeMap;

/// The TTC below which a pair is a true conflict, seconds.
pub const TRUE_CONFLICT_TTC_S: f64 = 1.5;
/// Ground truth is sampled this often, seconds.
pub const TRUTH_STEP_S: f64 = 0.05;

/// One alert event as a vehicle received it: a line of `alerts.ndjson`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertEvent {
    /// Receipt time, seconds since the start of the run.
    pub t_s: f64,
    pub kind: &'static str,
    /// Scenario id of the receiver.
    pub vehicle: String,
    /// Scenario id of the other party, if it could be resolved.
    pub other: Option<String>,
    pub ttc_s: Option<f64>,
    pub probability: f64,
    /// In the scenario's own coordinates, metres.
    pub conflict_point: [f64; 2],
    pub latency_ms: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrueConflict {
    pub a: String,
    pub b: String,
    pub min_ttc_s: f64,
    /// Time of closest approach, seconds.
    pub moment_s: f64,
    /// First raise alert for the pair received before the moment, if any.
    pub warned_at_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub conflicts: Vec<TrueConflict>,
    pub false_alarms: usize,
    pub lead_times_s: Vec<f64>,
}

impl Score {
    pub fn warned(&self) -> usize {
        self.conflicts
            .iter()
            .filter(|c| c.warned_at_s.is_some())
            .count()
    }

    /// 1.0 when there is no true conflict to miss.
    pub fn recall(&self) -> f64 {
        if self.conflicts.is_empty() {
            1.0
        } else {
            self.warned() as f64 / self.conflicts.len() as f64
        }
    }
}

fn pair(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

/// Every true conflict of the scenario's ground truth, in actor order.
///
/// Ground truth is sampled every [`TRUTH_STEP_S`] over the run. At each step only pairs that
/// could meet within the threshold are given the footprint test: a pair is a candidate when its
/// centres are within `(|va| + |vb|) * 1.5 s + ra + rb`, and a sort-and-sweep along x finds
/// those without looking at every pair, so a step costs about `n log n` rather than `n^2`. The
/// moment of each conflict (the step of least footprint gap over the whole run, both present)
/// is then found in a second pass over the conflicting pairs only.
pub fn true_conflicts(scenario: &Scenario) -> Vec<TrueConflict> {
    let n_steps = (scenario.duration_s / TRUTH_STEP_S).round() as usize;
    let actors = &scenario.actors;
    let mut min_ttc: BTreeMap<(usize, usize), f64> = BTreeMap::new();
    let mut movers: Vec<Option<Mover>> = vec![None; actors.len()];
    // (x, y, half reach, actor) of the road users present at a step, sorted by x.
    let mut present: Vec<(f64, f64, f64, usize)> = Vec::with_capacity(actors.len());
    for k in 0..=n_steps {
        let t = k as f64 * TRUTH_STEP_S;
        present.clear();
        for (i, a) in actors.iter().enumerate() {
            movers[i] = a.mover(t);
            if let Some(m) = &movers[i] {
                let half = m.velocity.norm() * TRUE_CONFLICT_TTC_S + m.radius();
                present.push((m.center.x, m.center.y, half, i));
            }
        }
        present.sort_by(|p, q| p.0.total_cmp(&q.0).then(p.3.cmp(&q.3)));
        let widest = present.iter().map(|p| p.2).fold(0.0, f64::max);
        // A little slack so that rounding never drops a pair the exact test would keep.
        const SLACK_M: f64 = 1e-6;
        for (n, p) in present.iter().enumerate() {
            for q in &present[n + 1..] {
                if q.0 - p.0 > p.2 + widest + SLACK_M {
                    break;
                }
                if (q.1 - p.1).abs() > p.2 + q.2 + SLACK_M {
                    continue;
                }
                let (i, j) = (p.3.min(q.3), p.3.max(q.3));
                if !actors[i].connected && !actors[j].connected {
                    continue;
                }
                let (Some(ma), Some(mb)) = (&movers[i], &movers[j]) else {
                    continue;
                };
                // Too far apart to meet within the threshold at any plausible speed.
                let reach = (ma.velocity.norm() + mb.velocity.norm()) * TRUE_CONFLICT_TTC_S
                    + ma.radius()
                    + mb.radius();
                if (ma.center - mb.center).norm() > reach {
                    continue;
                }
                if let Some(ttc) = time_to_collision(ma, mb, TRUE_CONFLICT_TTC_S) {
                    let best = min_ttc.entry((i, j)).or_insert(f64::INFINITY);
                    *best = best.min(ttc);
                }
            }
        }
    }
    min_ttc
        .into_iter()
        .filter(|(_, ttc)| *ttc < TRUE_CONFLICT_TTC_S)
        .map(|((i, j), ttc)| {
            let (a, b) = (&actors[i], &actors[j]);
            let (x, y) = pair(&a.id, &b.id);
            TrueConflict {
                a: x,
                b: y,
                min_ttc_s: ttc,
                moment_s: closest_approach(a, b, n_steps),
                warned_at_s: None,
            }
        })
        .collect()
}

/// The first sampled instant of least footprint gap between `a` and `b` while both are present.
fn closest_approach(a: &Actor, b: &Actor, n_steps: usize) -> f64 {
    let (mut min_gap, mut moment) = (f64::INFINITY, 0.0);
    for k in 0..=n_steps {
        let t = k as f64 * TRUTH_STEP_S;
        let (Some(ma), Some(mb)) = (a.mover(t), b.mover(t)) else {
            continue;
        };
        let dist = (ma.center - mb.center).norm();
        let gap = if dist <= ma.radius() + mb.radius() + 0.5 {
            encounter(&ma, &mb, 0.0).min_gap_m
        } else {
            dist - ma.radius() - mb.radius()
        };
        if gap < min_gap {
            (min_gap, moment) = (gap, t);
        }
    }
    moment
}

pub fn score(mut conflicts: Vec<TrueConflict>, alerts: &[AlertEvent]) -> Score {
    let mut first_raise: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    let mut false_alarms = 0;
    for e in alerts.iter().filter(|e| e.kind == "raise") {
        let Some(other) = &e.other else {
            false_alarms += 1;
            continue;
        };
        let key = pair(&e.vehicle, other);
        if conflicts.iter().any(|c| (c.a.clone(), c.b.clone()) == key) {
            first_raise.entry(key).or_default().push(e.t_s);
        } else {
            false_alarms += 1;
        }
    }
    let mut lead_times_s = Vec::new();
    for c in &mut conflicts {
        let key = (c.a.clone(), c.b.clone());
        c.warned_at_s = first_raise.get(&key).and_then(|ts| {
            ts.iter()
                .copied()
                .filter(|t| *t < c.moment_s)
                .reduce(f64::min)
        });
        if let Some(t) = c.warned_at_s {
            lead_times_s.push(c.moment_s - t);
        }
    }
    Score {
        conflicts,
        false_alarms,
        lead_times_s,
    }
}

/// The `q` quantile (nearest rank) of `v`; 0 for an empty set.
pub fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(t_s: f64, kind: &'static str, vehicle: &str, other: Option<&str>) -> AlertEvent {
        AlertEvent {
            t_s,
            kind,
            vehicle: vehicle.into(),
            other: other.map(String::from),
            ttc_s: Some(2.0),
            probability: 1.0,
            conflict_point: [0.0, 0.0],
            latency_ms: 3.0,
        }
    }

    #[test]
    fn the_demo_has_exactly_the_scripted_conflict() {
        let c = true_conflicts(&Scenario::demo());
        assert_eq!(c.len(), 1, "{c:#?}");
        assert_eq!((c[0].a.as_str(), c[0].b.as_str()), ("v1", "v2"));
        assert!(c[0].min_ttc_s < 1.5);
        assert!((6.0..7.5).contains(&c[0].moment_s), "{:?}", c[0]);
    }

    /// The straightforward all-pairs, all-steps definition that [`true_conflicts`] speeds up.
    fn true_conflicts_by_definition(scenario: &Scenario) -> Vec<TrueConflict> {
        let n_steps = (scenario.duration_s / TRUTH_STEP_S).round() as usize;
        let actors = &scenario.actors;
        let mut out = Vec::new();
        for i in 0..actors.len() {
            for j in i + 1..actors.len() {
                let (a, b) = (&actors[i], &actors[j]);
                if !a.connected && !b.connected {
                    continue;
                }
                let mut min_ttc = f64::INFINITY;
                for k in 0..=n_steps {
                    let t = k as f64 * TRUTH_STEP_S;
                    let (Some(ma), Some(mb)) = (a.mover(t), b.mover(t)) else {
                        continue;
                    };
                    if let Some(ttc) = time_to_collision(&ma, &mb, TRUE_CONFLICT_TTC_S) {
                        min_ttc = min_ttc.min(ttc);
                    }
                }
                if min_ttc < TRUE_CONFLICT_TTC_S {
                    let (x, y) = pair(&a.id, &b.id);
                    out.push(TrueConflict {
                        a: x,
                        b: y,
                        min_ttc_s: min_ttc,
                        moment_s: closest_approach(a, b, n_steps),
                        warned_at_s: None,
                    });
                }
            }
        }
        out
    }

    /// Cars crossing a grid of streets at random speeds and times, half of them connected.
    fn random_traffic(seed: u64, n: usize) -> Scenario {
        let mut rng = crate::rng::Rng::new(seed);
        let actors = (0..n)
            .map(|k| {
                let street = (rng.uniform() * 4.0).floor() * 20.0 - 30.0;
                let speed = 5.0 + rng.uniform() * 10.0;
                let start = -60.0 - rng.uniform() * 60.0;
                let path = if k % 2 == 0 {
                    [(start, street), (200.0, street)]
                } else {
                    [(street, start), (street, 200.0)]
                };
                let mut car = Actor::car(&format!("c{k}"), &path, &[(0.0, speed)]);
                car.connected = rng.uniform() < 0.5;
                car
            })
            .collect();
        Scenario {
            name: "random".into(),
            origin: (48.0, 11.0),
            duration_s: 12.0,
            actors,
            roads: Vec::new(),
        }
    }

    #[test]
    fn the_sweep_finds_exactly_what_the_definition_finds() {
        for scenario in [
            Scenario::demo(),
            random_traffic(1, 24),
            random_traffic(2, 24),
        ] {
            let fast = true_conflicts(&scenario);
            assert_eq!(
                fast,
                true_conflicts_by_definition(&scenario),
                "{}",
                scenario.name
            );
        }
        assert!(!true_conflicts(&random_traffic(1, 24)).is_empty());
    }

    #[test]
    fn warnings_before_the_moment_count_and_others_are_false_alarms() {
        let conflicts = vec![TrueConflict {
            a: "a".into(),
            b: "b".into(),
            min_ttc_s: 1.0,
            moment_s: 5.0,
            warned_at_s: None,
        }];
        let alerts = vec![
            event(2.0, "raise", "b", Some("a")),
            event(2.5, "refresh", "b", Some("a")),
            event(6.0, "raise", "a", Some("b")), // after the moment: no lead time
            event(3.0, "raise", "a", Some("c")), // not a conflict
            event(3.0, "raise", "a", None),      // unresolved
        ];
        let s = score(conflicts, &alerts);
        assert_eq!(s.warned(), 1);
        assert_eq!(s.recall(), 1.0);
        assert_eq!(s.lead_times_s, vec![3.0]);
        assert_eq!(s.false_alarms, 2);
    }

    #[test]
    fn nearest_rank_quantiles() {
        let v = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&v, 0.1), 1.0);
        assert_eq!(quantile(&v, 1.0), 5.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }
}
