//! The edge's per-frame pipeline as a sans-IO value.
//!
//! `handle_frame(now, key vehicle, bytes)`: decode -> validate -> ordering checks -> edge ENU ->
//! associate and blend into tracks -> candidate pairs from the R-tree -> footprint TTC ->
//! alert state machine -> alerts queued for `poll_alert`. Alerts come out of the call that
//! handled the frame that changed the picture, not at the next tick.
//! `handle_tick(now)`: ages tracks and alerts out, and makes a situation map for `poll_map`.
//!
//! Both have a `_probed` form that tells a [`StageProbe`] as each [`Stage`] starts, so that a
//! driver can time the stages with its own clock; the probe sees the work, it never changes it.
//!
//! Invariant: nothing here reads a clock, opens a socket or spawns a thread; `now` is always an
//! argument, so the simulator can run it in virtual time and the same inputs give the same
//! outputs, with or without a probe.

use crate::alerts::{AlertMachine, AlertParams, Transition};
use crate::geometry::{encounter, may_meet, time_to_collision, Mover, V2};
use crate::tracks::{Observation, Track, TrackId, TrackParams, TrackStore};
use nalgebra::Vector3;
use protocol::units::yaw_to_u8;
use protocol::{
    Alert, AlertKind, DecodeError, EnuFrame, FeatureFrame, FrameWindow, GeoPoint, Geodetic,
    MapTrack, Message, Severity, SituationMap, TrackInfo, ValidatedFrame, ValidationError,
    VehicleId,
};
use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};

/// Frames carry no velocity uncertainty (v1); these are the assumed values: odometry for a
/// vehicle's own speed, and a typical radar/camera tracker for its detections.
pub const EGO_VELOCITY_SIGMA_MPS: f64 = 0.1;
pub const DETECTION_VELOCITY_SIGMA_MPS: f64 = 0.5;

#[derive(Debug, Clone)]
pub struct EdgeConfig {
    pub edge_id: String,
    /// The origin of the edge's ENU frame and the centre of its coverage area.
    pub origin: Geodetic,
    /// Observations and tracks farther than this from the origin are dropped, metres.
    pub radius_m: f64,
    pub window: FrameWindow,
    pub tracks: TrackParams,
    pub alerts: AlertParams,
    /// A confirmed track no source has reported for this long is dropped, microseconds.
    pub track_timeout_us: i64,
    /// A tentative track (seen in one frame only) is dropped after this, microseconds.
    pub tentative_timeout_us: i64,
    /// Situation map period, microseconds (10 Hz).
    pub map_period_us: i64,
}

impl EdgeConfig {
    pub fn new(edge_id: impl Into<String>, origin: Geodetic) -> Self {
        Self {
            edge_id: edge_id.into(),
            origin,
            radius_m: 500.0,
            window: FrameWindow::default(),
            tracks: TrackParams::default(),
            alerts: AlertParams::default(),
            track_timeout_us: 1_000_000,
            tentative_timeout_us: 500_000,
            map_period_us: 100_000,
        }
    }
}

/// Why a frame was not applied. Every variant is counted under its [`Rejected::reason`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejected {
    #[error("undecodable frame: {0}")]
    Decode(#[from] DecodeError),
    #[error("invalid frame: {0}")]
    Invalid(#[from] ValidationError),
    #[error("frame names vehicle {in_frame} but was published on the key of vehicle {on_key}")]
    KeyMismatch {
        on_key: VehicleId,
        in_frame: VehicleId,
    },
    /// Policy: a second copy of a frame (same source, sequence and capture time) is dropped.
    #[error("duplicate of frame {seq} from vehicle {vehicle}")]
    Duplicate { vehicle: VehicleId, seq: u32 },
    /// Policy (walking skeleton): a frame captured before the latest one applied from the same
    /// source is dropped, since a newer picture of the same source is already in the tracks.
    #[error("frame {seq} from vehicle {vehicle} is older than one already applied")]
    OutOfOrder { vehicle: VehicleId, seq: u32 },
}

impl Rejected {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Decode(e) => e.reason(),
            Self::Invalid(e) => e.reason(),
            Self::KeyMismatch { .. } => "key_mismatch",
            Self::Duplicate { .. } => "duplicate",
            Self::OutOfOrder { .. } => "out_of_order",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EdgeStats {
    pub frames_received: u64,
    pub frames_accepted: u64,
    /// Rejected frames by reason ([`Rejected::reason`]; borrowed when counted here, owned when
    /// read back from the stats key).
    pub frames_rejected: BTreeMap<Cow<'static, str>, u64>,
    pub observations: u64,
    /// Observations dropped because they lie outside the coverage area.
    pub observations_out_of_area: u64,
    pub tracks_created: u64,
    pub tracks_expired: u64,
    pub tracks_left_area: u64,
    /// Duplicate tracks of one road user merged into one.
    pub tracks_merged: u64,
    pub pairs_evaluated: u64,
    pub alerts_raised: u64,
    pub alerts_refreshed: u64,
    pub alerts_cleared: u64,
}

impl EdgeStats {
    pub fn frames_rejected_total(&self) -> u64 {
        self.frames_rejected.values().sum()
    }
}

/// A stage of the pipeline, in the order a frame (the first seven) or a tick (the last three)
/// goes through them. An accepted frame goes through all seven frame stages; a rejected one
/// stops after `Decode` or `Validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// Frame: decoding the bytes and checking the vehicle id against the key.
    Decode,
    /// Frame: physical ranges, the capture-time window, duplicate and ordering checks.
    Validate,
    /// Frame: the sender's position and objects into the edge's ENU frame; the area filter.
    Convert,
    /// Frame: time alignment, gating, assignment and fusion into tracks
    /// (`TrackStore::observe_frame`; alignment happens inside gating and fusion, so it is not
    /// a stage of its own).
    Associate,
    /// Frame: merging duplicate tracks among those the frame touched, and clearing their
    /// alerts.
    MergeDuplicates,
    /// Frame: candidate pairs from the R-tree, footprint TTC and the alert state machine.
    Conflicts,
    /// Frame: collision probability and alert messages for the pairs whose state changed.
    Alerts,
    /// Tick: expiry of tracks, and clears for their pairs and for stale pairs.
    TickExpire,
    /// Tick: the once-a-second duplicate check over every track (nothing in other ticks).
    TickMerge,
    /// Tick: the situation map, when one is due.
    TickMap,
}

impl Stage {
    pub const ALL: [Stage; 10] = [
        Stage::Decode,
        Stage::Validate,
        Stage::Convert,
        Stage::Associate,
        Stage::MergeDuplicates,
        Stage::Conflicts,
        Stage::Alerts,
        Stage::TickExpire,
        Stage::TickMerge,
        Stage::TickMap,
    ];

    /// The stage's stable name, as reports and the stats key spell it.
    pub const fn name(self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::Validate => "validate",
            Stage::Convert => "convert",
            Stage::Associate => "associate",
            Stage::MergeDuplicates => "merge_duplicates",
            Stage::Conflicts => "conflicts",
            Stage::Alerts => "alerts",
            Stage::TickExpire => "tick_expire",
            Stage::TickMerge => "tick_merge",
            Stage::TickMap => "tick_map",
        }
    }

    /// The position of the stage in [`Stage::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// Told by the core where its work is, so that a driver can time it: `enter` as each stage
/// starts (ending the previous one), `finish` once as the `handle_*_probed` call ends. The
/// core's outputs never depend on the probe.
pub trait StageProbe {
    fn enter(&mut self, stage: Stage);
    fn finish(&mut self);
}

/// The probe of the plain `handle_frame` and `handle_tick`: does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProbe;

impl StageProbe for NoProbe {
    fn enter(&mut self, _: Stage) {}
    fn finish(&mut self) {}
}

/// What one accepted frame did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameOutcome {
    pub tracks_touched: usize,
    pub alerts_queued: usize,
}

#[derive(Debug, Clone, Copy)]
struct SourceState {
    last_seq: u32,
    last_capture_us: i64,
}

pub struct EdgeCore {
    config: EdgeConfig,
    frame: EnuFrame,
    tracks: TrackStore,
    alerts: AlertMachine,
    sources: BTreeMap<VehicleId, SourceState>,
    out_alerts: VecDeque<Alert>,
    out_map: Option<SituationMap>,
    next_map_us: Option<i64>,
    next_merge_us: Option<i64>,
    stats: EdgeStats,
}

impl EdgeCore {
    pub fn new(config: EdgeConfig) -> Self {
        Self {
            frame: EnuFrame::new(config.origin),
            tracks: TrackStore::new(config.tracks),
            alerts: AlertMachine::new(config.alerts),
            sources: BTreeMap::new(),
            out_alerts: VecDeque::new(),
            out_map: None,
            next_map_us: None,
            next_merge_us: None,
            stats: EdgeStats::default(),
            config,
        }
    }

    pub fn config(&self) -> &EdgeConfig {
        &self.config
    }

    pub fn stats(&self) -> &EdgeStats {
        &self.stats
    }

    pub fn tracks(&self) -> &TrackStore {
        &self.tracks
    }

    /// Handles the bytes published on the frames key of `on_key`; a frame naming another
    /// vehicle is refused. (The key is not yet tied to the publisher's certificate name: see
    /// the known gaps in docs/ARCHITECTURE.md.) Rejections are counted and returned; nothing
    /// accepted before is lost.
    pub fn handle_frame(
        &mut self,
        now_us: i64,
        on_key: VehicleId,
        bytes: &[u8],
    ) -> Result<FrameOutcome, Rejected> {
        self.handle_frame_probed(now_us, on_key, bytes, &mut NoProbe)
    }

    /// [`EdgeCore::handle_frame`], telling `probe` as each [`Stage`] starts.
    pub fn handle_frame_probed(
        &mut self,
        now_us: i64,
        on_key: VehicleId,
        bytes: &[u8],
        probe: &mut dyn StageProbe,
    ) -> Result<FrameOutcome, Rejected> {
        self.stats.frames_received += 1;
        let result = self.apply(now_us, on_key, bytes, probe);
        match &result {
            Ok(_) => self.stats.frames_accepted += 1,
            Err(e) => {
                *self
                    .stats
                    .frames_rejected
                    .entry(Cow::Borrowed(e.reason()))
                    .or_default() += 1
            }
        }
        probe.finish();
        result
    }

    fn apply(
        &mut self,
        now_us: i64,
        on_key: VehicleId,
        bytes: &[u8],
        probe: &mut dyn StageProbe,
    ) -> Result<FrameOutcome, Rejected> {
        probe.enter(Stage::Decode);
        let frame = FeatureFrame::decode(bytes)?;
        if frame.vehicle != on_key {
            return Err(Rejected::KeyMismatch {
                on_key,
                in_frame: frame.vehicle,
            });
        }
        probe.enter(Stage::Validate);
        let frame = ValidatedFrame::new(frame, now_us, &self.config.window)?;
        let f = frame.frame();
        if let Some(src) = self.sources.get(&f.vehicle) {
            if src.last_seq == f.seq && src.last_capture_us == f.capture_us {
                return Err(Rejected::Duplicate {
                    vehicle: f.vehicle,
                    seq: f.seq,
                });
            }
            if f.capture_us < src.last_capture_us {
                return Err(Rejected::OutOfOrder {
                    vehicle: f.vehicle,
                    seq: f.seq,
                });
            }
        }
        self.sources.insert(
            f.vehicle,
            SourceState {
                last_seq: f.seq,
                last_capture_us: f.capture_us,
            },
        );
        probe.enter(Stage::Convert);
        let observations = self.observations(&frame);
        probe.enter(Stage::Associate);
        let update = self.tracks.observe_frame(&observations);
        self.stats.tracks_created += update.created as u64;
        let mut touched = update.touched;
        probe.enter(Stage::MergeDuplicates);
        let before = self.out_alerts.len();
        // Duplicates are merged before conflicts are looked for, so a road user seen twice is
        // never taken for two road users in the same place.
        let merged = self.tracks.merge_duplicates_of(&touched, f.capture_us);
        if !merged.is_empty() {
            self.stats.tracks_merged += merged.len() as u64;
            for (_, keep) in &merged {
                touched.push(*keep);
            }
            let removed: Vec<Track> = merged.into_iter().map(|(t, _)| t).collect();
            touched.retain(|id| !removed.iter().any(|t| t.id == *id));
            touched.sort_unstable();
            touched.dedup();
            self.clear_alerts_of(now_us, &removed);
        }
        probe.enter(Stage::Conflicts);
        let transitions = self.evaluate_conflicts(now_us, f.capture_us, &touched);
        probe.enter(Stage::Alerts);
        for t in transitions {
            self.emit_transition(now_us, t);
        }
        Ok(FrameOutcome {
            tracks_touched: touched.len(),
            alerts_queued: self.out_alerts.len() - before,
        })
    }

    /// Converts the frame into observations in the edge's frame, without those outside the
    /// area (counted).
    fn observations(&mut self, frame: &ValidatedFrame) -> Vec<Observation> {
        let f = frame.frame();
        let ego_geo = f.ego.position.to_geodetic();
        let sender = EnuFrame::new(ego_geo);
        let ego_enu = self.frame.to_enu(&ego_geo);
        let ego_pos = V2::new(ego_enu.x, ego_enu.y);
        // Rotating the sender's East axis gives the angle between the two frames' axes.
        let east = self.frame.rotate_from(&sender, [1.0, 0.0]);
        let axes_angle = east[1].atan2(east[0]);
        let rotate = |v: [f64; 2]| V2::from(self.frame.rotate_from(&sender, v));
        let clock_sigma_s = f.clock_uncertainty_us as f64 * 1e-6;

        let ego_vel = rotate(f.ego.velocity_mps());
        let mut observations = Vec::with_capacity(f.objects.len() + 1);
        observations.push(Observation {
            source: f.vehicle,
            local_id: None,
            class: protocol::ObjectClass::Car,
            t_us: f.capture_us,
            pos: ego_pos,
            vel: ego_vel,
            yaw: f.ego.yaw_rad() + axes_angle,
            length: f.ego.length_m(),
            width: f.ego.width_m(),
            yaw_rate: Some(f.ego.yaw_rate_radps()),
            sigma_m: f.ego.position_sigma_m(),
            sender_sigma_m: f.ego.position_sigma_m(),
            vel_sigma_mps: EGO_VELOCITY_SIGMA_MPS,
            clock_sigma_s,
            confidence: 1.0,
        });
        for o in &f.objects {
            let vel = rotate(o.velocity_mps());
            observations.push(Observation {
                source: f.vehicle,
                local_id: Some(o.id),
                class: o.class,
                t_us: f.capture_us,
                pos: ego_pos + rotate(o.offset_m()),
                vel,
                yaw: o.yaw_rad() + axes_angle,
                length: o.length_m(),
                width: o.width_m(),
                yaw_rate: None,
                // The sender's own position error moves everything it reports.
                sigma_m: o.sigma.m().hypot(f.ego.position_sigma_m()),
                sender_sigma_m: f.ego.position_sigma_m(),
                vel_sigma_mps: DETECTION_VELOCITY_SIGMA_MPS,
                clock_sigma_s,
                confidence: o.confidence.fraction(),
            });
        }
        self.stats.observations += observations.len() as u64;
        let radius = self.config.radius_m;
        let n_before = observations.len();
        observations.retain(|o| o.pos.norm() <= radius);
        self.stats.observations_out_of_area += (n_before - observations.len()) as u64;
        observations
    }

    /// Runs the TTC and the alert state machine for each candidate pair of the touched
    /// tracks; returns the transitions, in pair order, for [`EdgeCore::emit_transition`].
    fn evaluate_conflicts(
        &mut self,
        now_us: i64,
        t_eval_us: i64,
        touched: &[TrackId],
    ) -> Vec<PairTransition> {
        let horizon_s = self.config.tracks.horizon_s;
        let mut pairs: Vec<(TrackId, TrackId)> = Vec::new();
        for &a in touched {
            if !self.tracks.get(a).is_some_and(|t| t.confirmed) {
                continue;
            }
            pairs.extend(
                self.tracks
                    .candidates(a)
                    .into_iter()
                    .map(|b| (a.min(b), a.max(b))),
            );
        }
        pairs.sort_unstable();
        pairs.dedup();
        let mut transitions = Vec::new();
        for pair in pairs {
            let (Some(ta), Some(tb)) = (self.tracks.get(pair.0), self.tracks.get(pair.1)) else {
                continue;
            };
            if ta.vehicle.is_none() && tb.vehicle.is_none() {
                continue; // nobody to warn
            }
            self.stats.pairs_evaluated += 1;
            let (ma, mb) = (ta.mover_at(t_eval_us), tb.mover_at(t_eval_us));
            let ttc_s = may_meet(&ma, &mb, horizon_s)
                .then(|| time_to_collision(&ma, &mb, horizon_s))
                .flatten();
            let Some(transition) = self.alerts.evaluate(now_us, pair.0, pair.1, ttc_s) else {
                continue;
            };
            transitions.push(PairTransition {
                transition,
                pair,
                movers: (ma, mb),
                t_eval_us,
            });
        }
        transitions
    }

    /// Queues the alerts of one transition that [`EdgeCore::evaluate_conflicts`] found.
    fn emit_transition(&mut self, now_us: i64, t: PairTransition) {
        let horizon_s = self.config.tracks.horizon_s;
        // Nothing removes tracks between the evaluation and here.
        let (Some(ta), Some(tb)) = (self.tracks.get(t.pair.0), self.tracks.get(t.pair.1)) else {
            return;
        };
        let (ma, mb) = t.movers;
        let enc = encounter(&ma, &mb, horizon_s);
        let probability =
            collision_probability(&ma, &mb, ta.sigma_m().hypot(tb.sigma_m()), horizon_s);
        let (ta, tb) = (ta.clone(), tb.clone());
        let conflict = Conflict {
            ttc_s: enc.ttc_s,
            point: enc.conflict_point,
            probability,
            trigger_capture_us: t.t_eval_us,
        };
        self.emit(now_us, t.transition, &ta, &tb, &conflict);
    }

    /// Queues the alert for each connected party of the pair.
    fn emit(&mut self, now_us: i64, transition: Transition, a: &Track, b: &Track, c: &Conflict) {
        let (kind, alert_id) = match transition {
            Transition::Raise { alert_id } => (AlertKind::Raise, alert_id),
            Transition::Refresh { alert_id } => (AlertKind::Refresh, alert_id),
            Transition::Clear { alert_id } => (AlertKind::Clear, alert_id),
        };
        for (me, other) in [(a, b), (b, a)] {
            let Some(target) = me.vehicle else { continue };
            let ttc_ms = match (kind, c.ttc_s) {
                (AlertKind::Clear, _) | (_, None) => u32::MAX,
                (_, Some(t)) => (t * 1000.0).round() as u32,
            };
            let severity = match c.ttc_s {
                Some(t) if t <= 1.5 => Severity::High,
                Some(t) if t <= 3.0 => Severity::Medium,
                _ => Severity::Low,
            };
            self.out_alerts.push_back(Alert {
                kind,
                alert_id,
                target,
                other: self.track_info(other, c.trigger_capture_us),
                ttc_ms,
                conflict_point: self.geo(c.point),
                probability_pct: (c.probability * 100.0).round() as u8,
                severity,
                trigger_capture_us: c.trigger_capture_us,
                issued_us: now_us,
            });
            match kind {
                AlertKind::Raise => self.stats.alerts_raised += 1,
                AlertKind::Refresh => self.stats.alerts_refreshed += 1,
                AlertKind::Clear => self.stats.alerts_cleared += 1,
            }
        }
    }

    fn geo(&self, p: V2) -> GeoPoint {
        self.frame
            .to_geodetic(&Vector3::new(p.x, p.y, 0.0))
            .to_point()
    }

    fn track_info(&self, t: &Track, at_us: i64) -> TrackInfo {
        let m = t.mover_at(at_us);
        TrackInfo {
            track_id: t.id,
            vehicle: t.vehicle,
            class: t.class,
            position: self.geo(m.center),
            velocity_cms: cms(t.vel()),
            yaw: yaw_to_u8("yaw", t.yaw).unwrap_or(0),
            length_dm: dm(t.length),
            width_dm: dm(t.width),
        }
    }

    /// Ages out tracks and alerts, and makes the situation map when one is due.
    pub fn handle_tick(&mut self, now_us: i64) {
        self.handle_tick_probed(now_us, &mut NoProbe);
    }

    /// [`EdgeCore::handle_tick`], telling `probe` as each [`Stage`] starts.
    pub fn handle_tick_probed(&mut self, now_us: i64, probe: &mut dyn StageProbe) {
        probe.enter(Stage::TickExpire);
        let radius = self.config.radius_m;
        let before = now_us - self.config.track_timeout_us;
        let tentative_before = now_us - self.config.tentative_timeout_us;
        let removed = self
            .tracks
            .expire(now_us, before, tentative_before, |p| p.norm() > radius);
        for t in &removed {
            if t.last_update_us < before || (!t.confirmed && t.last_update_us < tentative_before) {
                self.stats.tracks_expired += 1;
            } else {
                self.stats.tracks_left_area += 1;
            }
        }

        self.clear_alerts_of(now_us, &removed);
        probe.enter(Stage::TickMerge);
        if self.next_merge_us.is_none_or(|t| now_us >= t) {
            let merged = self.tracks.merge_duplicates(now_us);
            self.stats.tracks_merged += merged.len() as u64;
            let removed: Vec<Track> = merged.into_iter().map(|(t, _)| t).collect();
            self.clear_alerts_of(now_us, &removed);
            self.next_merge_us = Some(now_us + 1_000_000);
        }
        probe.enter(Stage::TickMap);
        // A driver's timer fires about once a period, sometimes a little early: a map is due
        // from a tenth of a period before its slot, and the slots stay on a grid, so that
        // maps keep their rate instead of skipping every tick that came early.
        let period = self.config.map_period_us;
        let due = self.next_map_us.is_none_or(|t| now_us >= t - period / 10);
        if due {
            self.out_map = Some(self.situation_map(now_us));
            self.next_map_us = Some(match self.next_map_us {
                Some(slot) if now_us - slot < period => slot + period,
                // The first map, or the ticks fell a period behind: a new grid from now.
                _ => now_us + period,
            });
        }
        probe.finish();
    }

    /// Clears the alerts of pairs that involve one of the `removed` tracks, and of pairs no
    /// frame has shown in conflict for the clear time.
    fn clear_alerts_of(&mut self, now_us: i64, removed: &[Track]) {
        let gone: Vec<TrackId> = removed.iter().map(|t| t.id).collect();
        for ((a, b), alert_id) in self.alerts.expire(now_us, &gone) {
            let find = |id| {
                removed
                    .iter()
                    .find(|t| t.id == id)
                    .or_else(|| self.tracks.get(id))
                    .cloned()
            };
            if let (Some(ta), Some(tb)) = (find(a), find(b)) {
                let conflict = Conflict {
                    ttc_s: None,
                    point: (ta.mover_at(now_us).center + tb.mover_at(now_us).center) / 2.0,
                    probability: 0.0,
                    trigger_capture_us: now_us,
                };
                self.emit(now_us, Transition::Clear { alert_id }, &ta, &tb, &conflict);
            }
        }
    }

    /// The tracks predicted to `now_us`.
    pub fn situation_map(&self, now_us: i64) -> SituationMap {
        SituationMap {
            edge: self.config.edge_id.clone(),
            time_us: now_us,
            origin: self.config.origin.to_point(),
            tracks: self
                .tracks
                .confirmed()
                .take(protocol::map::MAX_TRACKS)
                .map(|t| {
                    let c = t.mover_at(now_us).center;
                    MapTrack {
                        track_id: t.id,
                        vehicle: t.vehicle,
                        class: t.class,
                        offset_cm: [(c.x * 100.0).round() as i32, (c.y * 100.0).round() as i32],
                        velocity_cms: cms(t.vel()),
                        yaw: yaw_to_u8("yaw", t.yaw).unwrap_or(0),
                        length_dm: dm(t.length),
                        width_dm: dm(t.width),
                    }
                })
                .collect(),
        }
    }

    pub fn poll_alert(&mut self) -> Option<Alert> {
        self.out_alerts.pop_front()
    }

    pub fn poll_map(&mut self) -> Option<SituationMap> {
        self.out_map.take()
    }
}

/// A change of a pair's alert state, found in [`Stage::Conflicts`] and turned into messages
/// in [`Stage::Alerts`].
struct PairTransition {
    transition: Transition,
    /// Lower id first.
    pair: (TrackId, TrackId),
    /// Both tracks predicted to `t_eval_us`.
    movers: (Mover, Mover),
    t_eval_us: i64,
}

struct Conflict {
    ttc_s: Option<f64>,
    point: V2,
    probability: f64,
    trigger_capture_us: i64,
}

/// The share of nine relative-position perturbations (the nominal one and eight at one sigma
/// around it) for which the footprints still collide within the horizon.
fn collision_probability(a: &Mover, b: &Mover, sigma_m: f64, horizon_s: f64) -> f64 {
    const D: f64 = std::f64::consts::FRAC_1_SQRT_2;
    let offsets = [
        (0.0, 0.0),
        (1.0, 0.0),
        (-1.0, 0.0),
        (0.0, 1.0),
        (0.0, -1.0),
        (D, D),
        (D, -D),
        (-D, D),
        (-D, -D),
    ];
    let hits = offsets
        .iter()
        .filter(|(dx, dy)| {
            let shifted = Mover {
                center: b.center + V2::new(*dx, *dy) * sigma_m,
                ..*b
            };
            time_to_collision(a, &shifted, horizon_s).is_some()
        })
        .count();
    hits as f64 / offsets.len() as f64
}

fn cms(v: V2) -> [i16; 2] {
    let c = |x: f64| (x * 100.0).round().clamp(i16::MIN as f64, i16::MAX as f64) as i16;
    [c(v.x), c(v.y)]
}

fn dm(m: f64) -> u8 {
    (m * 10.0).round().clamp(1.0, 255.0) as u8
}

#[cfg(test)]
mod tests;
