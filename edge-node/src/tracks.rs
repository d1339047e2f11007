//! Tracks: the edge's road users, one per real object however many vehicles report it, held in
//! an R-tree of swept envelopes.
//!
//! Per frame ([`TrackStore::observe_frame`]):
//! 1. **Time alignment.** Every observation and every candidate track are brought to a common
//!    time: observations with constant velocity, or constant turn rate where the sender gave a
//!    yaw rate (its own report); covariances grow with the prediction age (white acceleration
//!    noise) and with the sender's clock uncertainty times the object's speed.
//! 2. **Gating.** Candidate tracks come from an R-tree probe around each observation (never an
//!    all-pairs loop); a pair is gated when the squared Mahalanobis distance of the positions is
//!    within the chi-square 95 % bound for two degrees of freedom (5.99) and the classes are
//!    compatible. A vehicle's own report goes to the track bound to it.
//! 3. **Assignment.** Gated pairs form clusters (connected components); each cluster is solved
//!    optimally with the Hungarian method, where leaving an observation unassigned (a new
//!    track) costs the gate. The source's previous choice for the same local id gets a small
//!    bonus, so ids stay stable when two candidates are equally good.
//! 4. **Fusion.** Track and observation are fused by split covariance intersection: each
//!    covariance is a part that may be correlated with other estimates in unknown ways (a
//!    sender's own GNSS and clock error, shared by everything it reports, frame after frame)
//!    plus a part that is independent (a detection's own noise, the process noise). The
//!    independent parts add information as in a Kalman filter, the correlated parts are
//!    intersected, so the result stays consistent whatever the correlation, while noise that
//!    really is independent still averages out. The weight minimises the trace of the fused
//!    position covariance. Across time the track is a constant-velocity filter: predict with
//!    process noise, then fuse.
//! 5. **Life cycle.** A track born from a vehicle's own report is confirmed at once; one born
//!    from detections is tentative until a second frame (from any vehicle; from another
//!    vehicle if the first detection's confidence was under 0.5) confirms it, and
//!    dies if none does within `tentative_timeout_us`. Confirmed tracks die after
//!    `track_timeout_us` without an update (see `EdgeConfig`). Ids are never reused. Two
//!    confirmed tracks that gate with each other are merged into the older one at each tick.
//!
//! Only confirmed tracks take part in conflicts and the situation map.

use crate::assignment::hungarian;
use crate::geometry::{time_to_collision, Mover, V2};
use nalgebra::{Matrix2, Vector2, Vector4};
use protocol::{ObjectClass, VehicleId};
use rstar::{Envelope, RTree, RTreeObject, AABB};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

pub type TrackId = u32;
type M2 = Matrix2<f64>;
type V4 = Vector4<f64>;

/// Detections below this confidence start tracks that only another sender can confirm.
pub const DOUBTFUL_CONFIDENCE: f64 = 0.5;

/// The chi-square 95 % quantile for two degrees of freedom.
pub const GATE_CHI2_95: f64 = 5.991;

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
    /// Known for a vehicle's report of itself; used for constant-turn-rate alignment.
    pub yaw_rate: Option<f64>,
    pub length: f64,
    pub width: f64,
    /// One sigma of the position, metres (isotropic), all errors included.
    pub sigma_m: f64,
    /// The part of `sigma_m` that is the sender's own position error (shared by everything it
    /// reports); for a vehicle's report of itself, all of it.
    pub sender_sigma_m: f64,
    /// One sigma of each velocity component, m/s.
    pub vel_sigma_mps: f64,
    /// The sender's clock uncertainty, seconds: a timing error becomes a position error of
    /// speed times this.
    pub clock_sigma_s: f64,
    /// The sender's confidence in the detection, 0 to 1 (1 for its report of itself).
    pub confidence: f64,
}

impl Observation {
    fn state(&self) -> V4 {
        V4::new(self.pos.x, self.pos.y, self.vel.x, self.vel.y)
    }

    /// The covariance split into a part that may be correlated with other estimates (`dep`:
    /// the sender's own position error and clock error, which every object it reports
    /// shares, frame after frame) and a part that is independent of everything else (`ind`:
    /// the detection's own noise).
    fn covariance(&self) -> Split {
        let clock_var = (self.vel.norm() * self.clock_sigma_s).powi(2);
        let (dep_pos, ind_pos) = match self.local_id {
            None => (self.sigma_m.powi(2) + clock_var, 0.0),
            Some(_) => (
                self.sender_sigma_m.powi(2) + clock_var,
                (self.sigma_m.powi(2) - self.sender_sigma_m.powi(2)).max(1e-4),
            ),
        };
        Split {
            dep: M2::new(dep_pos, 0.0, 0.0, 0.0),
            ind: M2::new(ind_pos, 0.0, 0.0, self.vel_sigma_mps.powi(2)),
        }
    }

    /// The observation predicted to `t_us`: constant turn rate where the yaw rate is known,
    /// else constant velocity; the covariance grows with the age.
    fn aligned(&self, t_us: i64, accel_noise: f64) -> (V4, Split) {
        let dt = (t_us - self.t_us) as f64 * 1e-6;
        let mut x = self.state();
        match self.yaw_rate.filter(|w| w.abs() > 1e-3) {
            Some(w) => {
                let (speed, heading) = (self.vel.norm(), self.vel.y.atan2(self.vel.x));
                let h1 = heading + w * dt;
                x[0] += speed / w * (h1.sin() - heading.sin());
                x[1] += speed / w * (heading.cos() - h1.cos());
                x[2] = speed * h1.cos();
                x[3] = speed * h1.sin();
            }
            None => {
                x[0] += self.vel.x * dt;
                x[1] += self.vel.y * dt;
            }
        }
        (x, self.covariance().predicted(dt, accel_noise))
    }
}

/// A covariance as the sum of a possibly correlated and an independent part (split
/// covariance intersection).
///
/// Each part is the 2 x 2 covariance of one axis's (position, velocity), and it serves both
/// axes: positions and velocities are reported with isotropic errors (one sigma each, see the
/// protocol), the motion model treats East and North alike and never couples them, so the full
/// 4 x 4 covariance of (x, y, vx, vy) is this block twice, with nothing between the axes. Every
/// operation below keeps that form, which makes the filter four times cheaper than 4 x 4
/// algebra with the same result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Split {
    pub dep: M2,
    pub ind: M2,
}

impl Split {
    pub fn total(&self) -> M2 {
        self.dep + self.ind
    }

    /// Constant-velocity prediction over `dt`; the process noise is independent of anything
    /// else.
    fn predicted(&self, dt: f64, accel_noise: f64) -> Split {
        let (f, q) = cv_model(dt, accel_noise);
        Split {
            dep: f * self.dep * f.transpose(),
            ind: f * self.ind * f.transpose() + q,
        }
    }
}

/// Constant-velocity transition of one axis's (position, velocity) and white-acceleration
/// process noise over `dt` seconds.
fn cv_model(dt: f64, accel_noise: f64) -> (M2, M2) {
    let q = accel_noise * accel_noise;
    let (dt2, dt3, dt4) = (dt * dt, dt.abs().powi(3), dt.powi(4));
    let cross = q * dt3 / 2.0 * dt.signum();
    (
        M2::new(1.0, dt, 0.0, 1.0),
        M2::new(q * dt4 / 4.0, cross, cross, q * dt2),
    )
}

/// The weight of split covariance intersection that minimises the trace of the fused position
/// covariance. With one axis's position variances (`d` correlated, `i` independent), the fused
/// position information is `w / (da + ia w) + (1 - w) / (db + ib (1 - w))`, which is concave
/// in `w`; its maximum, where the derivatives `da / (da + ia w)^2` and
/// `db / (db + ib (1 - w))^2` are equal, has a closed form.
fn split_weight(a: &Split, b: &Split) -> f64 {
    const EDGE: f64 = 1e-3;
    let (da, ia, db, ib) = (a.dep[(0, 0)], a.ind[(0, 0)], b.dep[(0, 0)], b.ind[(0, 0)]);
    if da <= 1e-12 || db <= 1e-12 {
        return 0.5; // nothing correlated on one side: any weight gives the same result
    }
    let (sa, sb) = (da.sqrt(), db.sqrt());
    let den = sb * ia + sa * ib;
    let w = if den > 1e-12 {
        (sa * (db + ib) - sb * da) / den
    } else if da <= db {
        1.0 // no independent parts: plain covariance intersection picks the better side
    } else {
        0.0
    };
    w.clamp(EDGE, 1.0 - EDGE)
}

/// Split covariance intersection (Julier and Uhlmann 2001) of two estimates: the independent
/// parts add information as in a Kalman update, the possibly correlated parts are intersected,
/// so the result is consistent whatever their correlation. The weight minimises the fused
/// position covariance's trace.
fn split_intersection(xa: &V4, a: &Split, xb: &V4, b: &Split) -> Option<(V4, Split)> {
    let w = split_weight(a, b);
    let p1 = a.dep / w + a.ind;
    let p2 = b.dep / (1.0 - w) + b.ind;
    let (i1, i2) = (p1.try_inverse()?, p2.try_inverse()?);
    let p = (i1 + i2).try_inverse()?;
    let axis = |x: &V4, k: usize| Vector2::new(x[k], x[k + 2]);
    let fuse = |k: usize| p * (i1 * axis(xa, k) + i2 * axis(xb, k));
    let (ex, ny) = (fuse(0), fuse(1));
    let x = V4::new(ex[0], ny[0], ex[1], ny[1]);
    let ind = p * (i1 * a.ind * i1 + i2 * b.ind * i2) * p;
    let sym = |m: M2| (m + m.transpose()) * 0.5;
    let (p, ind) = (sym(p), sym(ind));
    // Rounding must not leave a negative correlated part; a non-finite result (degenerate
    // inputs) is refused and the track keeps its previous state.
    let dep = (p - ind).map(|v| if v.abs() < 1e-12 { 0.0 } else { v });
    let ok = x.iter().chain(p.iter()).all(|v| v.is_finite()) && (0..2).all(|k| dep[(k, k)] >= 0.0);
    ok.then_some((x, Split { dep, ind: p - dep }))
}

#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    pub id: TrackId,
    pub class: ObjectClass,
    /// The connected vehicle this track is, once that vehicle has reported itself.
    pub vehicle: Option<VehicleId>,
    /// Time of the state, µs.
    pub t_us: i64,
    x: V4,
    p: Split,
    pub yaw: f64,
    pub length: f64,
    pub width: f64,
    pub last_update_us: i64,
    pub born_us: i64,
    born_from: VehicleId,
    /// Born from a detection its sender was unsure of: only another sender confirms it.
    born_doubtful: bool,
    pub confirmed: bool,
    envelope: Entry,
}

impl Track {
    pub fn pos(&self) -> V2 {
        V2::new(self.x[0], self.x[1])
    }

    pub fn vel(&self) -> V2 {
        V2::new(self.x[2], self.x[3])
    }

    /// One sigma of the position on each axis, metres.
    pub fn sigma_m(&self) -> f64 {
        self.p.total()[(0, 0)].sqrt()
    }

    pub fn mover_at(&self, t_us: i64) -> Mover {
        Mover {
            center: self.pos() + self.vel() * ((t_us - self.t_us) as f64 * 1e-6),
            yaw: self.yaw,
            length: self.length,
            width: self.width,
            velocity: self.vel(),
        }
    }

    fn predicted(&self, t_us: i64, accel_noise: f64) -> (V4, Split) {
        let dt = (t_us - self.t_us) as f64 * 1e-6;
        let x = self.x;
        let moved = V4::new(x[0] + x[2] * dt, x[1] + x[3] * dt, x[2], x[3]);
        (moved, self.p.predicted(dt, accel_noise))
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
    /// Margin added around envelopes, metres, so that probes find tracks whose footprint edge
    /// is near.
    pub gate_m: f64,
    /// How far ahead envelopes reach (the conflict horizon), seconds.
    pub horizon_s: f64,
    /// How far back envelopes reach, for frames that arrive a little late, seconds.
    pub lookback_s: f64,
    /// White acceleration noise of the motion model, m/s^2.
    pub accel_noise: f64,
    /// Squared Mahalanobis gate.
    pub gate_chi2: f64,
    /// How much cheaper it is for an observation to continue the track its source fed last time.
    pub memory_bonus: f64,
    /// Squared Mahalanobis distance under which two tracks moving alike are one road user.
    pub merge_chi2: f64,
}

impl Default for TrackParams {
    fn default() -> Self {
        Self {
            gate_m: 2.5,
            horizon_s: 5.0,
            lookback_s: 0.3,
            accel_noise: 3.0,
            gate_chi2: GATE_CHI2_95,
            memory_bonus: 2.0,
            // The chi-square 99 % bound: looser than the association gate, because each
            // source's memory keeps feeding its own copy of a road user once one exists.
            merge_chi2: 9.21,
        }
    }
}

/// What one frame did to the tracks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameUpdate {
    /// Tracks the frame updated or created, in id order.
    pub touched: Vec<TrackId>,
    pub created: usize,
}

#[derive(Debug, Default)]
pub struct TrackStore {
    params: TrackParams,
    next_id: TrackId,
    /// Looked up for every R-tree hit (many per observation), so a hash map with a cheap
    /// hash; whatever reaches the outputs iterates it in id order ([`TrackStore::iter`]).
    tracks: HashMap<TrackId, Track, BuildHasherDefault<IdHasher>>,
    tree: RTree<Entry>,
    by_vehicle: BTreeMap<VehicleId, TrackId>,
    /// (source, local object id) -> track fed by it last time. A hash map: only looked up and
    /// swept, never iterated in an order that reaches the outputs.
    memory: HashMap<(VehicleId, u16), TrackId>,
}

impl TrackStore {
    pub fn new(params: TrackParams) -> Self {
        Self {
            params,
            next_id: 1,
            ..Default::default()
        }
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

    /// Every track, tentative ones too, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &Track> {
        let mut all: Vec<&Track> = self.tracks.values().collect();
        all.sort_unstable_by_key(|t| t.id);
        all.into_iter()
    }

    /// Confirmed tracks in id order.
    pub fn confirmed(&self) -> impl Iterator<Item = &Track> {
        self.iter().filter(|t| t.confirmed)
    }

    /// The swept envelope reaching `ahead_s` into the future.
    fn envelope(&self, t: &Track, ahead_s: f64) -> AABB<[f64; 2]> {
        let p = self.params;
        let (pos, vel) = (t.pos(), t.vel());
        let a = pos - vel * p.lookback_s;
        let b = pos + vel * ahead_s;
        let r =
            (t.length * t.length + t.width * t.width).sqrt() / 2.0 + p.gate_m + 3.0 * t.sigma_m();
        AABB::from_corners(
            [a.x.min(b.x) - r, a.y.min(b.y) - r],
            [a.x.max(b.x) + r, a.y.max(b.y) + r],
        )
    }

    /// Keeps the track's R-tree entry covering its swept footprint over the horizon. Entries
    /// reach `REINDEX_SLACK_S` further than needed and a margin wider on every side (for the
    /// heading's and the covariance's wobble from one update to the next, which swings the far
    /// end of a 5 s sweep by a metre or so), so a track that keeps its course is moved in the
    /// tree about once a second rather than at every update: removal from an R-tree is the
    /// costliest thing it does.
    fn reindex(&mut self, id: TrackId) {
        const REINDEX_SLACK_S: f64 = 1.0;
        let Some(track) = self.tracks.get(&id) else {
            return;
        };
        let horizon_s = self.params.horizon_s;
        let needed = self.envelope(track, horizon_s);
        let margin = 1.0 + 0.05 * track.vel().norm() * horizon_s;
        let fresh = self.envelope(track, horizon_s + REINDEX_SLACK_S);
        let fresh = AABB::from_corners(
            [fresh.lower()[0] - margin, fresh.lower()[1] - margin],
            [fresh.upper()[0] + margin, fresh.upper()[1] + margin],
        );
        let old = track.envelope;
        let covered = old.aabb.contains_envelope(&needed);
        let oversized = old.aabb.area() > 2.0 * fresh.area();
        if covered && !oversized {
            return;
        }
        let entry = Entry { id, aabb: fresh };
        self.tree.remove(&old);
        self.tree.insert(entry);
        self.tracks.get_mut(&id).expect("present").envelope = entry;
    }

    /// Confirmed tracks whose swept envelope meets `id`'s, in id order. The probe is the
    /// track's own envelope as needed now (not its roomier R-tree entry), so that the slack
    /// of the entries does not add pairs: it still finds every pair whose needed envelopes
    /// meet, since every entry covers its track's needed envelope.
    pub fn candidates(&self, id: TrackId) -> Vec<TrackId> {
        let Some(track) = self.tracks.get(&id) else {
            return vec![];
        };
        let probe = self.envelope(track, self.params.horizon_s);
        let mut ids: Vec<TrackId> = self
            .tree
            .locate_in_envelope_intersecting(&probe)
            .map(|e| e.id)
            .filter(|other| *other != id && self.tracks[other].confirmed)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Whether `track`'s predicted centre is within `r` metres of `obs`: a cheap test before the
    /// Mahalanobis distance, since R-tree probes against swept envelopes return every track
    /// whose next seconds pass nearby.
    fn near(&self, obs: &Observation, track: &Track, r: f64) -> bool {
        (track.mover_at(obs.t_us).center - obs.pos).norm_squared() <= r * r
    }

    /// Squared Mahalanobis distance between an aligned observation and a track predicted to
    /// the observation's time.
    fn distance2(&self, obs: &Observation, track: &Track) -> Option<f64> {
        let (xo, po) = obs.aligned(obs.t_us, self.params.accel_noise);
        let (xt, pt) = track.predicted(obs.t_us, self.params.accel_noise);
        let y = V2::new(xo[0] - xt[0], xo[1] - xt[1]);
        position_distance2(&y, &po, &pt)
    }

    /// Feeds every observation of one frame in: ego report first, then the detections,
    /// assigned cluster by cluster. Returns what was touched.
    pub fn observe_frame(&mut self, observations: &[Observation]) -> FrameUpdate {
        let mut update = FrameUpdate::default();
        // A frame holds tens of observations: small sorted vectors beat tree sets here.
        let mut taken: Vec<TrackId> = Vec::with_capacity(observations.len());
        for obs in observations.iter().filter(|o| o.local_id.is_none()) {
            let id = match self.ego_track(obs) {
                Some(id) => {
                    self.update(id, obs);
                    id
                }
                None => {
                    update.created += 1;
                    self.create(obs)
                }
            };
            taken.push(id);
        }
        taken.sort_unstable();
        taken.dedup();
        let detections: Vec<&Observation> = observations
            .iter()
            .filter(|o| o.local_id.is_some())
            .collect();
        let mut own_tracks: Vec<TrackId> = detections
            .iter()
            .filter_map(|o| self.by_vehicle.get(&o.source).copied())
            .collect();
        own_tracks.sort_unstable();
        own_tracks.dedup();

        // Gated (observation, track, cost) pairs.
        let mut pairs: Vec<(usize, TrackId, f64)> = Vec::new();
        for (i, obs) in detections.iter().enumerate() {
            let r = 3.0 * obs.sigma_m + self.params.gate_m;
            let probe = AABB::from_corners(
                [obs.pos.x - r, obs.pos.y - r],
                [obs.pos.x + r, obs.pos.y + r],
            );
            let remembered = obs
                .local_id
                .and_then(|l| self.memory.get(&(obs.source, l)).copied());
            for e in self.tree.locate_in_envelope_intersecting(&probe) {
                let t = &self.tracks[&e.id];
                if own_tracks.binary_search(&e.id).is_ok()
                    || taken.binary_search(&e.id).is_ok()
                    || !compatible(t.class, obs.class)
                    || !self.near(obs, t, r + 3.0 * t.sigma_m())
                {
                    continue;
                }
                let Some(d2) = self.distance2(obs, t) else {
                    continue;
                };
                if d2 <= self.params.gate_chi2 {
                    let bonus = if remembered == Some(e.id) {
                        self.params.memory_bonus
                    } else {
                        0.0
                    };
                    pairs.push((i, e.id, (d2 - bonus).max(0.0)));
                }
            }
        }
        pairs.sort_by_key(|p| (p.0, p.1));

        let assigned = self.assign(detections.len(), &pairs);
        for (i, obs) in detections.iter().enumerate() {
            let id = match assigned[i] {
                Some(id) => {
                    self.update(id, obs);
                    id
                }
                None => {
                    update.created += 1;
                    self.create(obs)
                }
            };
            if let Some(local) = obs.local_id {
                self.memory.insert((obs.source, local), id);
            }
            taken.push(id);
        }
        taken.sort_unstable();
        taken.dedup();
        update.touched = taken;
        update
    }

    /// The track a vehicle's own report belongs to: its bound track, or else the unbound
    /// track other vehicles' detections of it started.
    fn ego_track(&self, obs: &Observation) -> Option<TrackId> {
        if let Some(id) = self.by_vehicle.get(&obs.source) {
            return Some(*id);
        }
        let r = 3.0 * obs.sigma_m + self.params.gate_m;
        let probe = AABB::from_corners(
            [obs.pos.x - r, obs.pos.y - r],
            [obs.pos.x + r, obs.pos.y + r],
        );
        self.tree
            .locate_in_envelope_intersecting(&probe)
            .filter_map(|e| {
                let t = &self.tracks[&e.id];
                if t.vehicle.is_some()
                    || !compatible(t.class, ObjectClass::Car)
                    || !self.near(obs, t, r + 3.0 * t.sigma_m())
                {
                    return None;
                }
                let d2 = self.distance2(obs, t)?;
                (d2 <= self.params.gate_chi2).then_some((d2, e.id))
            })
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
            .map(|(_, id)| id)
    }

    /// Optimal assignment within each connected cluster of gated pairs.
    fn assign(&self, n_obs: usize, pairs: &[(usize, TrackId, f64)]) -> Vec<Option<TrackId>> {
        let mut result = vec![None; n_obs];
        if pairs.is_empty() {
            return result;
        }
        // Union-find over observations (0..n) and tracks (n.. by index in `track_ids`).
        let track_ids: Vec<TrackId> = {
            let mut v: Vec<TrackId> = pairs.iter().map(|p| p.1).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let t_index = |id: TrackId| n_obs + track_ids.binary_search(&id).expect("listed");
        let mut parent: Vec<usize> = (0..n_obs + track_ids.len()).collect();
        fn find(parent: &mut [usize], mut i: usize) -> usize {
            while parent[i] != i {
                parent[i] = parent[parent[i]];
                i = parent[i];
            }
            i
        }
        for &(i, id, _) in pairs {
            let (a, b) = (find(&mut parent, i), find(&mut parent, t_index(id)));
            parent[a.max(b)] = a.min(b);
        }
        let mut clusters: BTreeMap<usize, (Vec<usize>, Vec<TrackId>)> = BTreeMap::new();
        for &(i, _, _) in pairs {
            let root = find(&mut parent, i);
            let c = clusters.entry(root).or_default();
            if !c.0.contains(&i) {
                c.0.push(i);
            }
        }
        for &id in &track_ids {
            let root = find(&mut parent, t_index(id));
            clusters.entry(root).or_default().1.push(id);
        }
        let gate = self.params.gate_chi2;
        for (obs, tracks) in clusters.values() {
            // Most clusters are one observation and the one track it gates with.
            if let ([i], [id]) = (obs.as_slice(), tracks.as_slice()) {
                let c = pairs
                    .iter()
                    .find(|p| p.0 == *i)
                    .map_or(f64::INFINITY, |p| p.2);
                if c <= gate {
                    result[*i] = Some(*id);
                }
                continue;
            }
            // Columns: the tracks, then one "new track" column per observation at the gate's
            // cost, so the solver may leave any observation unassigned.
            let (n, m) = (obs.len(), tracks.len() + obs.len());
            let mut cost = vec![gate * 4.0; n * m];
            for r in 0..n {
                cost[r * m + tracks.len() + r] = gate;
            }
            for &(i, id, c) in pairs {
                if let (Some(r), Some(col)) = (
                    obs.iter().position(|&o| o == i),
                    tracks.iter().position(|&t| t == id),
                ) {
                    cost[r * m + col] = c;
                }
            }
            for (r, col) in hungarian(n, m, &cost).into_iter().enumerate() {
                if col < tracks.len() && cost[r * m + col] <= gate {
                    result[obs[r]] = Some(tracks[col]);
                }
            }
        }
        result
    }

    fn create(&mut self, obs: &Observation) -> TrackId {
        let id = self.next_id;
        self.next_id = self.next_id.checked_add(1).expect("2^32 tracks");
        let is_ego = obs.local_id.is_none();
        if is_ego {
            self.by_vehicle.insert(obs.source, id);
        }
        let track = Track {
            id,
            class: if is_ego && !obs.class.is_vehicle() {
                ObjectClass::Car
            } else {
                obs.class
            },
            vehicle: is_ego.then_some(obs.source),
            t_us: obs.t_us,
            x: obs.state(),
            p: obs.covariance(),
            yaw: obs.yaw,
            length: obs.length,
            width: obs.width,
            last_update_us: obs.t_us,
            born_us: obs.t_us,
            born_from: obs.source,
            born_doubtful: obs.confidence < DOUBTFUL_CONFIDENCE,
            // A vehicle's report of itself needs no confirmation; detections do.
            confirmed: is_ego,
            envelope: Entry {
                id,
                aabb: AABB::from_point([obs.pos.x, obs.pos.y]),
            },
        };
        self.tree.insert(track.envelope);
        self.tracks.insert(id, track);
        self.reindex(id);
        id
    }

    fn update(&mut self, id: TrackId, obs: &Observation) {
        let accel_noise = self.params.accel_noise;
        let track = self.tracks.get_mut(&id).expect("assigned tracks exist");
        let is_ego = obs.local_id.is_none();
        if is_ego {
            track.vehicle = Some(obs.source);
            track.confirmed = true;
            self.by_vehicle.insert(obs.source, id);
        }
        // Bring both to the later of the two times, then intersect.
        let t = obs.t_us.max(track.t_us);
        let (xt, pt) = track.predicted(t, accel_noise);
        let (xo, po) = obs.aligned(t, accel_noise);
        if let Some((x, p)) = split_intersection(&xt, &pt, &xo, &po) {
            track.x = x;
            track.p = p;
            track.t_us = t;
        }
        // A second frame (a later capture, or another vehicle) confirms a detection's track.
        let another_sender = obs.source != track.born_from;
        if another_sender || (obs.t_us != track.born_us && !track.born_doubtful) {
            track.confirmed = true;
        }
        // Shape and heading from the most precise source: a vehicle's own report wins.
        if is_ego || track.vehicle.is_none() {
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

    /// Merges confirmed tracks that gate with each other into the older one (a connected
    /// vehicle's track wins over an unbound one); returns the removed tracks with the id each
    /// was merged into.
    pub fn merge_duplicates(&mut self, now_us: i64) -> Vec<(Track, TrackId)> {
        let ids: Vec<TrackId> = self.confirmed().map(|t| t.id).collect();
        self.merge_duplicates_of(&ids, now_us)
    }

    /// [`TrackStore::merge_duplicates`] for the tracks `ids` (and the tracks they duplicate)
    /// only: the edge runs it on the tracks a frame touched, before it looks for conflicts, so
    /// a duplicate is never mistaken for a road user in the same place.
    pub fn merge_duplicates_of(&mut self, ids: &[TrackId], now_us: i64) -> Vec<(Track, TrackId)> {
        let accel_noise = self.params.accel_noise;
        let mut merged = Vec::new();
        let mut gone: BTreeSet<TrackId> = BTreeSet::new();
        for &a in ids {
            if gone.contains(&a) {
                continue;
            }
            let Some(ta) = self.tracks.get(&a).filter(|t| t.confirmed) else {
                continue;
            };
            let (xa, pa) = ta.predicted(now_us, accel_noise);
            let r = 3.0 * ta.sigma_m() + self.params.gate_m;
            let probe = AABB::from_corners([xa[0] - r, xa[1] - r], [xa[0] + r, xa[1] + r]);
            let mut dups: Vec<TrackId> = Vec::new();
            for e in self.tree.locate_in_envelope_intersecting(&probe) {
                let b = e.id;
                if b == a || gone.contains(&b) {
                    continue;
                }
                let tb = &self.tracks[&b];
                let cb = tb.mover_at(now_us).center;
                if !tb.confirmed
                    || !compatible(ta.class, tb.class)
                    || (ta.vehicle.is_some() && tb.vehicle.is_some())
                    || (cb.x - xa[0]).abs() > r + 3.0 * tb.sigma_m()
                    || (cb.y - xa[1]).abs() > r + 3.0 * tb.sigma_m()
                {
                    continue;
                }
                let (xb, pb) = tb.predicted(now_us, accel_noise);
                let y = V2::new(xa[0] - xb[0], xa[1] - xb[1]);
                let v = V2::new(xa[2] - xb[2], xa[3] - xb[3]);
                let gated =
                    position_distance2(&y, &pa, &pb).is_some_and(|d2| d2 <= self.params.merge_chi2);
                // Two road users cannot stand in each other's footprint: overlapping footprints
                // moving alike are one road user seen twice, whatever the covariances.
                let overlapping = y.norm() < (ta.width + tb.width) / 2.0
                    || time_to_collision(&ta.mover_at(now_us), &tb.mover_at(now_us), 0.0).is_some();
                // Two road users side by side at different speeds are not one.
                if (gated || overlapping) && v.norm() < 2.0 {
                    dups.push(b);
                }
            }
            dups.sort_unstable();
            for b in dups {
                // Keep the connected vehicle's track, else the older one.
                let (keep, drop) = match (ta.vehicle.is_some(), self.tracks[&b].vehicle.is_some()) {
                    (false, true) => (b, a),
                    (true, false) => (a, b),
                    _ => (a.min(b), a.max(b)),
                };
                if gone.contains(&drop) || gone.contains(&keep) {
                    continue;
                }
                gone.insert(drop);
                merged.push((drop, keep));
            }
        }
        let mut removed = Vec::with_capacity(merged.len());
        for (drop, keep) in merged {
            let Some(t) = self.tracks.remove(&drop) else {
                continue;
            };
            self.tree.remove(&t.envelope);
            if let Some(v) = t.vehicle {
                self.by_vehicle.insert(v, keep);
                if let Some(k) = self.tracks.get_mut(&keep) {
                    k.vehicle = Some(v);
                }
            }
            // Memory entries naming `drop` are left to lapse: they match no track any more,
            // and `expire` sweeps them.
            removed.push((t, keep));
        }
        removed
    }

    /// Removes tracks not updated since `before_us` (`tentative_before_us` for tentative ones)
    /// and those `outside` says are out of the area (given the track's predicted centre at
    /// `now_us`); returns them in id order.
    pub fn expire(
        &mut self,
        now_us: i64,
        before_us: i64,
        tentative_before_us: i64,
        outside: impl Fn(V2) -> bool,
    ) -> Vec<Track> {
        let dead: Vec<TrackId> = self
            .iter()
            .filter(|t| {
                let limit = if t.confirmed {
                    before_us
                } else {
                    tentative_before_us
                };
                t.last_update_us < limit || outside(t.mover_at(now_us).center)
            })
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

/// Squared Mahalanobis distance of a position difference `y` between two estimates with
/// covariances `a` and `b` (the same variance on both axes, nothing between them).
fn position_distance2(y: &V2, a: &Split, b: &Split) -> Option<f64> {
    let s = a.total()[(0, 0)] + b.total()[(0, 0)];
    (s > 0.0 && s.is_finite()).then(|| y.norm_squared() / s)
}

/// The hash of a track id: ids count up from 1, so a multiplication by an odd constant
/// (Fibonacci hashing) spreads them over the table's high and low bits alike; far cheaper than
/// the default SipHash, and ids come from the edge itself, not from the network.
#[derive(Debug, Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn split(dep: f64, ind: f64) -> Split {
        Split {
            dep: M2::new(dep, 0.0, 0.0, 0.0),
            ind: M2::new(ind, 0.0, 0.0, 0.25),
        }
    }

    #[test]
    fn split_intersection_adds_independent_information_only() {
        let xa = V4::new(0.0, 0.0, 10.0, 0.0);
        let xb = V4::new(1.0, -1.0, 10.0, 0.0);
        // Wholly correlated parts: plain covariance intersection, a convex combination that
        // claims no more certainty than either input.
        let (x, p) = split_intersection(&xa, &split(1.0, 0.0), &xb, &split(1.0, 0.0)).unwrap();
        assert!(
            (0.0..=1.0).contains(&x[0]) && (x[0] + x[1]).abs() < 1e-9,
            "{x}"
        );
        assert!((p.total()[(0, 0)] - 1.0).abs() < 1e-6);
        // Wholly independent parts: the Kalman result, variance halved.
        let (_, p) = split_intersection(&xa, &split(0.0, 1.0), &xb, &split(0.0, 1.0)).unwrap();
        assert!((p.total()[(0, 0)] - 0.5).abs() < 1e-6);
        assert!(p.dep.norm() < 1e-6);
        // Mixed: in between, and never below the independent-only bound.
        let (_, p) = split_intersection(&xa, &split(0.5, 0.5), &xb, &split(0.5, 0.5)).unwrap();
        let v = p.total()[(0, 0)];
        assert!(v > 0.5 && v < 1.0, "{v}");
    }

    #[test]
    fn the_closed_form_weight_is_the_best_one() {
        // The fused position variance for a weight, written out as in split_intersection.
        let fused = |a: &Split, b: &Split, w: f64| {
            let p1 = a.dep[(0, 0)] / w + a.ind[(0, 0)];
            let p2 = b.dep[(0, 0)] / (1.0 - w) + b.ind[(0, 0)];
            1.0 / (1.0 / p1 + 1.0 / p2)
        };
        for (a, b) in [
            (split(1.0, 0.2), split(0.3, 2.0)),
            (split(0.04, 0.5), split(2.0, 0.01)),
            (split(1.0, 0.0), split(4.0, 0.0)),
            (split(0.5, 0.5), split(0.5, 0.5)),
        ] {
            let w = split_weight(&a, &b);
            let best = (1..1000)
                .map(|k| fused(&a, &b, k as f64 / 1000.0))
                .fold(f64::INFINITY, f64::min);
            assert!(fused(&a, &b, w) <= best + 1e-9, "{a:?} {b:?}: w {w}");
        }
    }

    fn detection(source: u32, t_us: i64, x: f64, confidence: f64) -> Observation {
        Observation {
            source: VehicleId(source),
            local_id: Some(7),
            class: ObjectClass::Unknown,
            t_us,
            pos: V2::new(x, 0.0),
            vel: V2::new(0.0, 0.0),
            yaw: 0.0,
            yaw_rate: None,
            length: 1.0,
            width: 1.0,
            sigma_m: 0.3,
            sender_sigma_m: 0.2,
            vel_sigma_mps: 0.5,
            clock_sigma_s: 0.0,
            confidence,
        }
    }

    #[test]
    fn a_doubtful_detection_needs_another_sender_to_become_a_track() {
        for (confidence, second_sender, confirmed) in
            [(0.9, 1, true), (0.3, 1, false), (0.3, 2, true)]
        {
            let mut store = TrackStore::new(TrackParams::default());
            store.observe_frame(&[detection(1, 0, 10.0, confidence)]);
            store.observe_frame(&[detection(second_sender, 100_000, 10.05, confidence)]);
            assert_eq!(store.len(), 1);
            assert_eq!(
                store.confirmed().count() == 1,
                confirmed,
                "confidence {confidence}, second frame from {second_sender}"
            );
        }
    }

    #[test]
    fn constant_turn_rate_alignment_follows_the_arc() {
        // A quarter circle of radius 10 m at 10 m/s with a yaw rate of 1 rad/s takes pi/2 s.
        let obs = Observation {
            source: VehicleId(1),
            local_id: None,
            class: ObjectClass::Car,
            t_us: 0,
            pos: V2::new(0.0, 0.0),
            vel: V2::new(10.0, 0.0),
            yaw: 0.0,
            yaw_rate: Some(1.0),
            length: 4.5,
            width: 1.8,
            sigma_m: 0.3,
            sender_sigma_m: 0.3,
            vel_sigma_mps: 0.1,
            clock_sigma_s: 0.0,
            confidence: 1.0,
        };
        let t = (std::f64::consts::FRAC_PI_2 * 1e6) as i64;
        let (x, p) = obs.aligned(t, 3.0);
        assert!(
            (x[0] - 10.0).abs() < 1e-3 && (x[1] - 10.0).abs() < 1e-3,
            "{x}"
        );
        assert!(x[2].abs() < 1e-3 && (x[3] - 10.0).abs() < 1e-3);
        assert!(
            p.total()[(0, 0)] > obs.covariance().total()[(0, 0)],
            "uncertainty grows with age"
        );
    }
}
