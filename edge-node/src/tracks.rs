//! Tracks: the edge's road users, one per real object however many vehicles report it, held in
//! an R-tree of swept envelopes.
//!
//! This is the walking skeleton's association: nearest compatible track within a distance gate,
//! with a per-source memory of which local object id fed which track, and inverse-variance
//! blending of positions and velocities. It deliberately does not do optimal assignment,
//! covariance intersection or track confirmation yet.

use crate::geometry::{Mover, V2};
use protocol::{ObjectClass, VehicleId};
use rstar::{RTree, RTreeObject, AABB};
use std::collections::BTreeMap;

pub type TrackId = u32;

/// One observation of a road user, already in the edge's ENU frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    pub source: VehicleId,
    /// `None` for the source's report of itself.
    pub local_id: Option<u16>,
    pub class: ObjectClass,
    pub t_us: i64,
    pub pos: V2,
    pub vel: V2,
    pub yaw: f64,
    pub length: f64,
    pub width: f64,
    pub sigma_m: f64,
    /// One sigma of each velocity component, m/s.
    pub vel_sigma_mps: f64,
}

impl Observation {
    fn predicted(&self, t_us: i64) -> V2 {
        self.pos + self.vel * ((t_us - self.t_us) as f64 * 1e-6)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    pub id: TrackId,
    pub class: ObjectClass,
    /// The connected vehicle this track is, once that vehicle has reported itself.
    pub vehicle: Option<VehicleId>,
    /// State at `t_us`.
    pub t_us: i64,
    pub pos: V2,
    pub vel: V2,
    pub yaw: f64,
    pub length: f64,
    pub width: f64,
    pub sigma_m: f64,
    pub vel_sigma_mps: f64,
    pub last_update_us: i64,
    envelope: Entry,
}

impl Track {
    pub fn mover_at(&self, t_us: i64) -> Mover {
        Mover {
            center: self.pos + self.vel * ((t_us - self.t_us) as f64 * 1e-6),
            yaw: self.yaw,
            length: self.length,
            width: self.width,
            velocity: self.vel,
        }
    }

    /// Position uncertainty after predicting to `t_us`, growing with the prediction age.
    fn sigma_at(&self, t_us: i64, accel_noise: f64) -> f64 {
        let dt = ((t_us - self.t_us).abs() as f64) * 1e-6;
        self.sigma_m.hypot(0.5 * accel_noise * dt * dt + 0.5 * dt)
    }

    fn vel_sigma_at(&self, t_us: i64, accel_noise: f64) -> f64 {
        let dt = ((t_us - self.t_us).abs() as f64) * 1e-6;
        self.vel_sigma_mps.hypot(accel_noise * dt)
    }
}

/// An R-tree entry: a track's swept footprint from a little before its state time to the end of
/// the prediction horizon.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    id: TrackId,
    aabb: AABB<[f64; 2]>,
}

impl RTreeObject for Entry {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        self.aabb
    }
}

#[derive(Debug, Clone, Copy)]
pub struct TrackParams {
    /// Association gate on centre distance, metres, widened by 3 sigma of both sides.
    pub gate_m: f64,
    /// How far ahead envelopes reach (the conflict horizon), seconds.
    pub horizon_s: f64,
    /// How far back envelopes reach, for frames that arrive a little late, seconds.
    pub lookback_s: f64,
    /// Acceleration noise for uncertainty growth, m/s^2.
    pub accel_noise: f64,
}

impl Default for TrackParams {
    fn default() -> Self {
        Self {
            gate_m: 2.5,
            horizon_s: 5.0,
            lookback_s: 0.3,
            accel_noise: 3.0,
        }
    }
}

#[derive(Debug, Default)]
pub struct TrackStore {
    params: TrackParams,
    next_id: TrackId,
    tracks: BTreeMap<TrackId, Track>,
    tree: RTree<Entry>,
    by_vehicle: BTreeMap<VehicleId, TrackId>,
    /// (source, local object id) -> track fed by it last time.
    memory: BTreeMap<(VehicleId, u16), TrackId>,
}

impl TrackStore {
    pub fn new(params: TrackParams) -> Self {
        Self {
            params,
            next_id: 1,
            ..Default::default()
        }
    }

    fn params(&self) -> TrackParams {
        self.params
    }

    pub fn get(&self, id: TrackId) -> Option<&Track> {
        self.tracks.get(&id)
    }

    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Track> {
        self.tracks.values()
    }

    pub fn track_of_vehicle(&self, vehicle: VehicleId) -> Option<TrackId> {
        self.by_vehicle.get(&vehicle).copied()
    }

    fn envelope(&self, pos: V2, vel: V2, radius: f64) -> AABB<[f64; 2]> {
        let p = self.params();
        let a = pos - vel * p.lookback_s;
        let b = pos + vel * p.horizon_s;
        let r = radius + p.gate_m;
        AABB::from_corners(
            [a.x.min(b.x) - r, a.y.min(b.y) - r],
            [a.x.max(b.x) + r, a.y.max(b.y) + r],
        )
    }

    fn reindex(&mut self, id: TrackId) {
        let Some(track) = self.tracks.get(&id) else {
            return;
        };
        let radius = track.length.hypot(track.width) / 2.0;
        let entry = Entry {
            id,
            aabb: self.envelope(track.pos, track.vel, radius),
        };
        let old = track.envelope;
        self.tree.remove(&old);
        self.tree.insert(entry);
        self.tracks.get_mut(&id).expect("present").envelope = entry;
    }

    /// Tracks whose swept envelope meets `id`'s, in id order.
    pub fn candidates(&self, id: TrackId) -> Vec<TrackId> {
        let Some(track) = self.tracks.get(&id) else {
            return vec![];
        };
        let mut ids: Vec<TrackId> = self
            .tree
            .locate_in_envelope_intersecting(&track.envelope.aabb)
            .map(|e| e.id)
            .filter(|other| *other != id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Feeds one observation in; returns the track it updated or created.
    /// `taken` holds tracks this source's frame has already fed, which it may not feed twice.
    pub fn observe(&mut self, obs: &Observation, taken: &[TrackId]) -> TrackId {
        let id = self
            .associate(obs, taken)
            .unwrap_or_else(|| self.create(obs));
        self.update(id, obs);
        if let Some(local) = obs.local_id {
            self.memory.insert((obs.source, local), id);
        }
        id
    }

    fn associate(&self, obs: &Observation, taken: &[TrackId]) -> Option<TrackId> {
        let p = self.params();
        let own_track = self.by_vehicle.get(&obs.source).copied();
        let is_ego = obs.local_id.is_none();
        if is_ego && own_track.is_some() {
            return own_track;
        }
        // A vehicle's first report of itself may find the track other vehicles' detections of
        // it started; it may not take another connected vehicle's track.
        let usable = |id: TrackId| {
            Some(id) != own_track
                && !taken.contains(&id)
                && (!is_ego || self.tracks.get(&id).is_some_and(|t| t.vehicle.is_none()))
        };
        let gate_for =
            |t: &Track| p.gate_m + 3.0 * t.sigma_at(obs.t_us, p.accel_noise).hypot(obs.sigma_m);
        // The track this source's object fed last time, if it still fits.
        if let Some(&id) = obs.local_id.and_then(|l| self.memory.get(&(obs.source, l))) {
            if let Some(t) = self.tracks.get(&id).filter(|_| usable(id)) {
                let d = (t.mover_at(obs.t_us).center - obs.pos).norm();
                if d <= 2.0 * gate_for(t) {
                    return Some(id);
                }
            }
        }
        let probe = AABB::from_point([obs.pos.x, obs.pos.y]);
        let mut best: Option<(f64, TrackId)> = None;
        for e in self.tree.locate_in_envelope_intersecting(&probe) {
            let Some(t) = self.tracks.get(&e.id) else {
                continue;
            };
            if !usable(e.id) || !compatible(t.class, obs.class) {
                continue;
            }
            let d = (t.mover_at(obs.t_us).center - obs.pos).norm();
            if d <= gate_for(t) && best.is_none_or(|(bd, bid)| (d, e.id) < (bd, bid)) {
                best = Some((d, e.id));
            }
        }
        best.map(|(_, id)| id)
    }

    fn create(&mut self, obs: &Observation) -> TrackId {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let track = Track {
            id,
            class: obs.class,
            vehicle: None,
            t_us: obs.t_us,
            pos: obs.pos,
            vel: obs.vel,
            yaw: obs.yaw,
            length: obs.length,
            width: obs.width,
            sigma_m: obs.sigma_m,
            vel_sigma_mps: obs.vel_sigma_mps,
            last_update_us: obs.t_us,
            envelope: Entry {
                id,
                aabb: AABB::from_point([obs.pos.x, obs.pos.y]),
            },
        };
        self.tree.insert(track.envelope);
        self.tracks.insert(id, track);
        id
    }

    fn update(&mut self, id: TrackId, obs: &Observation) {
        let accel_noise = self.params().accel_noise;
        let track = self.tracks.get_mut(&id).expect("associated tracks exist");
        let is_ego = obs.local_id.is_none();
        if is_ego {
            track.vehicle = Some(obs.source);
            self.by_vehicle.insert(obs.source, id);
        }
        // Bring both to the later of the two times.
        let t = obs.t_us.max(track.t_us);
        let obs_pos = obs.predicted(t);
        let track_pos = track.mover_at(t).center;
        let track_sigma = track.sigma_at(t, accel_noise);
        // Inverse-variance blending, position and velocity each with their own variances: a
        // vehicle's own report (GNSS position, odometry speed) outweighs other vehicles'
        // detections of it, and a track follows a braking vehicle without lag.
        let blend = |track_sigma: f64, obs_sigma: f64| {
            let (w_trk, w_obs) = (track_sigma.max(1e-3).powi(-2), obs_sigma.max(1e-3).powi(-2));
            (w_obs / (w_obs + w_trk), (1.0 / (w_obs + w_trk)).sqrt())
        };
        let (k, sigma) = blend(track_sigma, obs.sigma_m);
        let (kv, vel_sigma) = blend(track.vel_sigma_at(t, accel_noise), obs.vel_sigma_mps);
        track.pos = track_pos + (obs_pos - track_pos) * k;
        track.vel = track.vel + (obs.vel - track.vel) * kv;
        track.sigma_m = sigma;
        track.vel_sigma_mps = vel_sigma;
        track.t_us = t;
        if is_ego || k >= 0.5 {
            track.yaw = obs.yaw;
            track.length = obs.length;
            track.width = obs.width;
        }
        if !is_ego && (track.vehicle.is_none() || obs.class.is_vehicle()) {
            track.class = obs.class;
        } else if is_ego && !track.class.is_vehicle() {
            track.class = ObjectClass::Car;
        }
        track.last_update_us = track.last_update_us.max(obs.t_us);
        self.reindex(id);
    }

    /// Removes tracks not updated since `before_us` and those `outside` says are out of the
    /// area (given the track's predicted centre at `now_us`); returns them in id order.
    pub fn expire(
        &mut self,
        now_us: i64,
        before_us: i64,
        outside: impl Fn(V2) -> bool,
    ) -> Vec<Track> {
        let dead: Vec<TrackId> = self
            .tracks
            .values()
            .filter(|t| t.last_update_us < before_us || outside(t.mover_at(now_us).center))
            .map(|t| t.id)
            .collect();
        let mut removed = Vec::with_capacity(dead.len());
        for id in dead {
            let Some(t) = self.tracks.remove(&id) else {
                continue;
            };
            self.tree.remove(&t.envelope);
            if let Some(v) = t.vehicle {
                if self.by_vehicle.get(&v) == Some(&id) {
                    self.by_vehicle.remove(&v);
                }
            }
            removed.push(t);
        }
        if !removed.is_empty() {
            self.memory.retain(|_, id| self.tracks.contains_key(id));
        }
        removed
    }
}

/// Vehicle classes may be confused with each other and anything with `Unknown`; vulnerable road
/// users only with themselves.
fn compatible(a: ObjectClass, b: ObjectClass) -> bool {
    a == b
        || a == ObjectClass::Unknown
        || b == ObjectClass::Unknown
        || (a.is_vehicle() && b.is_vehicle())
}
