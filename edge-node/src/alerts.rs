//! The alert state machine: one per pair of tracks. Raise once when the time to collision drops
//! under the raise threshold, refresh at a bounded rate while it stays there, clear only after
//! the conflict has been gone for a hold time (hysteresis), so a noisy TTC near the threshold
//! does not make alerts flicker.

use crate::tracks::TrackId;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy)]
pub struct AlertParams {
    /// Raise when the predicted time to collision is at most this, seconds.
    pub ttc_raise_s: f64,
    /// A raised alert counts as still in conflict while TTC is at most this, seconds.
    pub ttc_hold_s: f64,
    /// Clear after the pair has been out of conflict this long, microseconds.
    pub clear_after_us: i64,
    /// Send a refresh at most this often while active, microseconds.
    pub refresh_every_us: i64,
}

impl Default for AlertParams {
    fn default() -> Self {
        Self {
            ttc_raise_s: 3.0,
            ttc_hold_s: 4.0,
            clear_after_us: 500_000,
            refresh_every_us: 500_000,
        }
    }
}

/// What the machine decided for one evaluation of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Raise { alert_id: u32 },
    Refresh { alert_id: u32 },
    Clear { alert_id: u32 },
}

#[derive(Debug, Clone, Copy)]
struct Active {
    alert_id: u32,
    last_sent_us: i64,
    last_conflict_us: i64,
}

#[derive(Debug, Default)]
pub struct AlertMachine {
    params: AlertParams,
    next_id: u32,
    active: BTreeMap<(TrackId, TrackId), Active>,
}

fn key(a: TrackId, b: TrackId) -> (TrackId, TrackId) {
    (a.min(b), a.max(b))
}

impl AlertMachine {
    pub fn new(params: AlertParams) -> Self {
        Self {
            params,
            next_id: 1,
            active: BTreeMap::new(),
        }
    }

    pub fn n_active(&self) -> usize {
        self.active.len()
    }

    pub fn is_active(&self, a: TrackId, b: TrackId) -> bool {
        self.active.contains_key(&key(a, b))
    }

    /// Feeds one evaluation of the pair at `now_us`.
    pub fn evaluate(
        &mut self,
        now_us: i64,
        a: TrackId,
        b: TrackId,
        ttc_s: Option<f64>,
    ) -> Option<Transition> {
        let p = self.params;
        let k = key(a, b);
        match self.active.get_mut(&k) {
            None => {
                if ttc_s.is_some_and(|t| t <= p.ttc_raise_s) {
                    let alert_id = self.next_id;
                    self.next_id = self.next_id.wrapping_add(1).max(1);
                    self.active.insert(
                        k,
                        Active {
                            alert_id,
                            last_sent_us: now_us,
                            last_conflict_us: now_us,
                        },
                    );
                    return Some(Transition::Raise { alert_id });
                }
                None
            }
            Some(active) => {
                if ttc_s.is_some_and(|t| t <= p.ttc_hold_s) {
                    active.last_conflict_us = now_us;
                    if now_us - active.last_sent_us >= p.refresh_every_us {
                        active.last_sent_us = now_us;
                        return Some(Transition::Refresh {
                            alert_id: active.alert_id,
                        });
                    }
                    None
                } else if now_us - active.last_conflict_us >= p.clear_after_us {
                    let alert_id = active.alert_id;
                    self.active.remove(&k);
                    Some(Transition::Clear { alert_id })
                } else {
                    None
                }
            }
        }
    }

    /// Clears every active pair that involves a track in `gone`, or that no frame has shown
    /// in conflict for the clear time; returns them.
    pub fn expire(&mut self, now_us: i64, gone: &[TrackId]) -> Vec<((TrackId, TrackId), u32)> {
        let clear_after = self.params.clear_after_us;
        let mut out = Vec::new();
        self.active.retain(|&(a, b), act| {
            let keep = !gone.contains(&a)
                && !gone.contains(&b)
                && now_us - act.last_conflict_us < clear_after;
            if !keep {
                out.push(((a, b), act.alert_id));
            }
            keep
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a sequence of (time ms, ttc) evaluations and lists what came out.
    fn run(steps: &[(i64, Option<f64>)]) -> Vec<(i64, &'static str)> {
        let mut m = AlertMachine::new(AlertParams::default());
        steps
            .iter()
            .filter_map(|&(t_ms, ttc)| {
                m.evaluate(t_ms * 1000, 1, 2, ttc).map(|tr| {
                    let name = match tr {
                        Transition::Raise { .. } => "raise",
                        Transition::Refresh { .. } => "refresh",
                        Transition::Clear { .. } => "clear",
                    };
                    (t_ms, name)
                })
            })
            .collect()
    }

    #[test]
    fn raises_once_refreshes_at_a_bounded_rate_and_clears_with_hysteresis() {
        let steps: Vec<(i64, Option<f64>)> = vec![
            (0, Some(3.5)),   // above the raise threshold: nothing
            (100, Some(2.9)), // raise
            (200, Some(2.8)),
            (300, Some(3.6)), // above raise but under hold: still active, no refresh yet
            (600, Some(2.5)), // 500 ms since the raise: refresh
            (700, None),      // gone, but within the hold time
            (800, Some(3.9)), // back under hold: conflict goes on
            (1200, None),
            (1300, None), // 500 ms after the last conflict: clear
            (1400, Some(3.5)),
            (1500, Some(2.0)), // a new raise
        ];
        assert_eq!(
            run(&steps),
            vec![
                (100, "raise"),
                (600, "refresh"),
                (1300, "clear"),
                (1500, "raise")
            ]
        );
    }

    #[test]
    fn a_flickering_ttc_near_the_threshold_raises_once() {
        let steps: Vec<(i64, Option<f64>)> = (0..20)
            .map(|i| (i * 100, Some(if i % 2 == 0 { 2.95 } else { 3.05 })))
            .collect();
        let out = run(&steps);
        assert_eq!(out.iter().filter(|(_, k)| *k == "raise").count(), 1);
        assert!(!out.iter().any(|(_, k)| *k == "clear"));
    }

    #[test]
    fn pairs_are_unordered_and_expire_with_their_tracks() {
        let mut m = AlertMachine::new(AlertParams::default());
        assert!(matches!(
            m.evaluate(0, 5, 3, Some(1.0)),
            Some(Transition::Raise { .. })
        ));
        assert!(m.is_active(3, 5));
        assert_eq!(m.evaluate(100_000, 3, 5, Some(1.0)), None);
        assert_eq!(m.expire(200_000, &[]).len(), 0);
        assert_eq!(m.expire(200_000, &[5]).len(), 1);
        assert_eq!(m.n_active(), 0);
    }
}
