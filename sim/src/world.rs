//! The scenario world: road users moving along scripted paths or replaying recorded traces,
//! in the scenario's own ENU metres. Ground truth is a pure function of time, so any mode can
//! sample it at any instant; a traced road user is absent outside its trace, and every consumer
//! (perception, scoring, the drivers) asks [`Actor::state`] and skips absent ones.

use crate::rng::Rng;
use edge_node::geometry::{Mover, V2};
use protocol::ObjectClass;

/// A speed keyframe: from `t_s` on the speed moves linearly to the next keyframe's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeedKey {
    pub t_s: f64,
    pub speed_mps: f64,
}

/// One recorded state of a traced road user: its footprint centre, heading and speed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceSample {
    /// Scenario time, seconds.
    pub t_s: f64,
    /// Centre of the footprint, scenario ENU metres.
    pub pos: V2,
    /// Radians counter-clockwise from East.
    pub yaw: f64,
    pub speed_mps: f64,
    pub accel_mps2: f64,
}

/// Why samples do not make a [`Trace`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    #[error("a trace needs at least one sample")]
    Empty,
    #[error("sample {index} at {t_s} s is not after the one before it")]
    NotIncreasing { index: usize, t_s: f64 },
    #[error("sample {index} has a value that is not a finite number")]
    NotFinite { index: usize },
}

/// A recorded motion: samples in strictly increasing time. Between two samples no more than
/// `max_gap_s` apart, position, speed and acceleration are interpolated linearly and yaw along
/// the shorter arc; before the first sample, after the last and inside longer gaps the road
/// user is absent (it has not entered the scene yet, has left it, or was teleported).
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    samples: Vec<TraceSample>,
    max_gap_s: f64,
}

/// The default [`Trace::max_gap_s`]: ten SUMO steps of 0.1 s.
pub const TRACE_MAX_GAP_S: f64 = 1.0;

impl Trace {
    pub fn new(samples: Vec<TraceSample>, max_gap_s: f64) -> Result<Self, TraceError> {
        if samples.is_empty() {
            return Err(TraceError::Empty);
        }
        for (index, s) in samples.iter().enumerate() {
            let finite = [s.t_s, s.pos.x, s.pos.y, s.yaw, s.speed_mps, s.accel_mps2];
            if !finite.iter().all(|v| v.is_finite()) {
                return Err(TraceError::NotFinite { index });
            }
            if index > 0 && s.t_s <= samples[index - 1].t_s {
                return Err(TraceError::NotIncreasing { index, t_s: s.t_s });
            }
        }
        Ok(Self { samples, max_gap_s })
    }

    pub fn samples(&self) -> &[TraceSample] {
        &self.samples
    }

    pub fn max_gap_s(&self) -> f64 {
        self.max_gap_s
    }

    /// The first and last sample times.
    pub fn span(&self) -> (f64, f64) {
        let first = self.samples.first().expect("a trace is never empty");
        let last = self.samples.last().expect("a trace is never empty");
        (first.t_s, last.t_s)
    }

    fn state(&self, t_s: f64) -> Option<State> {
        let k = self.first_at_or_after(t_s);
        let b = self.samples.get(k)?;
        let (sample, yaw) = if b.t_s == t_s {
            (*b, b.yaw)
        } else {
            let a = self.samples.get(k.checked_sub(1)?)?;
            if b.t_s - a.t_s > self.max_gap_s {
                return None;
            }
            let f = (t_s - a.t_s) / (b.t_s - a.t_s);
            let lerp = |x: f64, y: f64| x + (y - x) * f;
            let turn = wrap_angle(b.yaw - a.yaw);
            let sample = TraceSample {
                t_s,
                pos: a.pos + (b.pos - a.pos) * f,
                yaw: a.yaw,
                speed_mps: lerp(a.speed_mps, b.speed_mps),
                accel_mps2: lerp(a.accel_mps2, b.accel_mps2),
            };
            (sample, wrap_angle(a.yaw + turn * f))
        };
        let dir = V2::new(yaw.cos(), yaw.sin());
        Some(State {
            pos: sample.pos,
            vel: dir * sample.speed_mps,
            yaw,
            speed: sample.speed_mps,
            accel: sample.accel_mps2,
        })
    }

    /// The index of the first sample at or after `t_s` (`samples.len()` if none), as a binary
    /// search gives it. Samples usually come at a simulator's fixed step, so the index an even
    /// spacing predicts is checked first (with its neighbours, for rounding): this is called
    /// for every road user a sensor looks at, and the search's cache misses were a fifth of a
    /// dense fast run.
    fn first_at_or_after(&self, t_s: f64) -> usize {
        let s = &self.samples;
        let n = s.len();
        let (first, last) = (s[0].t_s, s[n - 1].t_s);
        if t_s.is_nan() || t_s <= first {
            return 0;
        }
        if t_s > last {
            return n;
        }
        // Here n >= 2 and first < t_s <= last, so the answer is in 1..n.
        let guess = ((t_s - first) / (last - first) * (n - 1) as f64).ceil();
        let guess = (guess as usize).clamp(1, n - 1);
        let fits = |k: usize| (1..n).contains(&k) && s[k - 1].t_s < t_s && s[k].t_s >= t_s;
        [guess, guess - 1, guess + 1]
            .into_iter()
            .find(|&k| fits(k))
            .unwrap_or_else(|| s.partition_point(|x| x.t_s < t_s))
    }

    fn translated(&self, by: V2) -> Self {
        let mut t = self.clone();
        for s in &mut t.samples {
            s.pos += by;
        }
        t
    }
}

/// `a` in `(-pi, pi]`.
pub fn wrap_angle(a: f64) -> f64 {
    use std::f64::consts::{PI, TAU};
    let r = a.rem_euclid(TAU);
    if r > PI {
        r - TAU
    } else {
        r
    }
}

/// How a road user moves.
#[derive(Debug, Clone, PartialEq)]
pub enum Motion {
    /// Along a polyline path with a speed profile; present at every instant (past the end of
    /// the path the last segment continues straight).
    Scripted { path: Vec<V2>, speed: Vec<SpeedKey> },
    /// A recorded trace (SUMO's FCD, say); present only while the trace covers the instant.
    Trace(Trace),
}

/// One road user: how it moves and its footprint.
#[derive(Debug, Clone, PartialEq)]
pub struct Actor {
    /// The scenario's id, used in reports (`v1`, `ped1`, SUMO's own ids).
    pub id: String,
    pub class: ObjectClass,
    pub length_m: f64,
    pub width_m: f64,
    /// Whether the actor runs a v2e agent.
    pub connected: bool,
    pub motion: Motion,
}

/// An actor's true state at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct State {
    pub pos: V2,
    pub vel: V2,
    pub yaw: f64,
    pub speed: f64,
    pub accel: f64,
}

/// Distance travelled along the path by `t_s` (the integral of the piecewise-linear speed; before
/// the first keyframe the road user moves at that keyframe's speed).
fn distance(speed: &[SpeedKey], t_s: f64) -> f64 {
    // Before the first keyframe, at its speed.
    if let Some(first) = speed.first().filter(|k| t_s < k.t_s) {
        return first.speed_mps * (t_s - first.t_s);
    }
    let mut s = 0.0;
    for w in speed.windows(2) {
        let (a, b) = (w[0], w[1]);
        if t_s <= a.t_s {
            break;
        }
        let end = t_s.min(b.t_s);
        let dt = end - a.t_s;
        let slope = (b.speed_mps - a.speed_mps) / (b.t_s - a.t_s);
        s += a.speed_mps * dt + 0.5 * slope * dt * dt;
    }
    if let Some(last) = speed.last() {
        if t_s > last.t_s {
            s += last.speed_mps * (t_s - last.t_s);
        }
    }
    s
}

fn speed_accel(speed: &[SpeedKey], t_s: f64) -> (f64, f64) {
    if let Some(first) = speed.first().filter(|k| t_s < k.t_s) {
        return (first.speed_mps, 0.0);
    }
    for w in speed.windows(2) {
        let (a, b) = (w[0], w[1]);
        if t_s >= a.t_s && t_s < b.t_s {
            let slope = (b.speed_mps - a.speed_mps) / (b.t_s - a.t_s);
            return (a.speed_mps + slope * (t_s - a.t_s), slope);
        }
    }
    let last = speed.last().map_or(0.0, |k| k.speed_mps);
    (last, 0.0)
}

/// The point at arc length `s` and the direction of travel there; past the end of the path the
/// last segment continues straight.
fn along(path: &[V2], s: f64) -> (V2, V2) {
    let mut left = s;
    for (i, w) in path.windows(2).enumerate() {
        let seg = w[1] - w[0];
        let len = seg.norm();
        if len == 0.0 {
            continue;
        }
        let dir = seg / len;
        if left <= len || i + 2 == path.len() {
            return (w[0] + dir * left, dir);
        }
        left -= len;
    }
    (path[0], V2::new(1.0, 0.0))
}

impl Actor {
    /// The true state at `t_s`, or `None` while the actor is not in the scene.
    pub fn state(&self, t_s: f64) -> Option<State> {
        match &self.motion {
            Motion::Scripted { path, speed } => {
                let (pos, dir) = along(path, distance(speed, t_s));
                let (speed, accel) = speed_accel(speed, t_s);
                Some(State {
                    pos,
                    vel: dir * speed,
                    yaw: dir.y.atan2(dir.x),
                    speed,
                    accel,
                })
            }
            Motion::Trace(trace) => trace.state(t_s),
        }
    }

    pub fn is_present(&self, t_s: f64) -> bool {
        self.state(t_s).is_some()
    }

    /// The first and last instants the actor may be present (infinite for scripted motion).
    pub fn span(&self) -> (f64, f64) {
        match &self.motion {
            Motion::Scripted { .. } => (f64::NEG_INFINITY, f64::INFINITY),
            Motion::Trace(trace) => trace.span(),
        }
    }

    /// The footprint at `t_s` with its constant-velocity prediction, if present.
    pub fn mover(&self, t_s: f64) -> Option<Mover> {
        self.state(t_s).map(|s| self.mover_at_state(&s))
    }

    /// The footprint of this actor in state `s` (one of its own states).
    pub fn mover_at_state(&self, s: &State) -> Mover {
        Mover {
            center: s.pos,
            yaw: s.yaw,
            length: self.length_m,
            width: self.width_m,
            velocity: s.vel,
        }
    }

    /// A bound on how fast the actor's centre moves, m/s: the largest keyframe speed, or for a
    /// trace the largest of its speeds and of the displacement rates between samples (SUMO's
    /// speed and its positions need not agree exactly).
    pub fn max_speed_mps(&self) -> f64 {
        match &self.motion {
            Motion::Scripted { speed, .. } => {
                speed.iter().map(|k| k.speed_mps.abs()).fold(0.0, f64::max)
            }
            Motion::Trace(trace) => {
                let s = trace.samples();
                let speeds = s.iter().map(|x| x.speed_mps.abs());
                let rates = s.windows(2).filter_map(|w| {
                    let dt = w[1].t_s - w[0].t_s;
                    (dt <= trace.max_gap_s()).then(|| (w[1].pos - w[0].pos).norm() / dt)
                });
                speeds.chain(rates).fold(0.0, f64::max)
            }
        }
    }

    fn translated(&self, by: V2) -> Self {
        let motion = match &self.motion {
            Motion::Scripted { path, speed } => Motion::Scripted {
                path: path.iter().map(|p| p + by).collect(),
                speed: speed.clone(),
            },
            Motion::Trace(trace) => Motion::Trace(trace.translated(by)),
        };
        Self {
            motion,
            ..self.clone()
        }
    }
}

/// What a strip of road surface is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SurfaceKind {
    /// Where vehicles drive.
    Carriageway,
    /// A pedestrian crossing.
    Crosswalk,
    /// A stop line (drawn across a lane at a signal or a give-way).
    StopLine,
}

/// A strip of road surface, for pictures: a centre polyline and its width. The world's motion
/// does not read it; road users follow their own paths.
#[derive(Debug, Clone, PartialEq)]
pub struct Surface {
    pub kind: SurfaceKind,
    pub centerline: Vec<V2>,
    pub width_m: f64,
}

/// A complete scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    /// WGS84 anchor of the scenario's ENU frame (also the edge's origin).
    pub origin: (f64, f64),
    pub duration_s: f64,
    pub actors: Vec<Actor>,
    /// The road surface, for pictures (empty for SUMO traces, which carry no network).
    pub roads: Vec<Surface>,
}

impl Actor {
    /// A connected 4.5 x 1.8 m car along `path` (metres) with `speed` keyframes (s, m/s).
    pub fn car(id: &str, path: &[(f64, f64)], speed: &[(f64, f64)]) -> Actor {
        Actor {
            id: id.into(),
            class: ObjectClass::Car,
            length_m: 4.5,
            width_m: 1.8,
            connected: true,
            motion: Motion::Scripted {
                path: path.iter().map(|&(x, y)| V2::new(x, y)).collect(),
                speed: speed
                    .iter()
                    .map(|&(t_s, speed_mps)| SpeedKey { t_s, speed_mps })
                    .collect(),
            },
        }
    }
}

impl Scenario {
    /// The built-in demo (`sim/scenarios/demo.toml`): a four-way junction with eight connected
    /// cars, one crossing conflict between `v1` and `v2`, every other encounter safe.
    pub fn demo() -> Self {
        Self::built_in("demo")
    }

    /// A pedestrian steps out from behind a parked van into the path of car `a`; oncoming `b`
    /// sees them (`sim/scenarios/hidden-pedestrian.toml`). With `b_connected` the edge warns
    /// `a` early from `b`'s view; without it (`hidden-pedestrian-ego-only.toml`), `a`'s own
    /// view comes too late.
    pub fn hidden_pedestrian(b_connected: bool) -> Self {
        Self::built_in(if b_connected {
            "hidden-pedestrian"
        } else {
            "hidden-pedestrian-ego-only"
        })
    }

    /// A built-in scenario without random traffic, which needs no seed.
    fn built_in(name: &str) -> Self {
        crate::scenario_file::built_in(name, 0, Default::default())
            .unwrap_or_else(|e| panic!("the built-in scenario {name} is broken: {e}"))
            .scenario
    }

    /// Seconds connected vehicles spend in the scene over the run.
    pub fn connected_vehicle_seconds(&self) -> f64 {
        self.actors
            .iter()
            .filter(|a| a.connected)
            .map(|a| {
                let (first, last) = a.span();
                (last.min(self.duration_s) - first.max(0.0)).max(0.0)
            })
            .sum()
    }

    pub fn n_connected(&self) -> usize {
        self.actors.iter().filter(|a| a.connected).count()
    }

    pub fn n_vehicles(&self) -> usize {
        self.actors.iter().filter(|a| a.class.is_vehicle()).count()
    }

    /// The farthest any road user comes from the origin during the run, metres (sampled every
    /// 0.1 s and at every trace sample).
    pub fn extent_m(&self) -> f64 {
        let n_steps = (self.duration_s / 0.1).ceil().max(0.0) as usize;
        let mut far: f64 = 0.0;
        for a in &self.actors {
            for k in 0..=n_steps {
                if let Some(s) = a.state((k as f64 * 0.1).min(self.duration_s)) {
                    far = far.max(s.pos.norm());
                }
            }
            if let Motion::Trace(t) = &a.motion {
                for s in t.samples() {
                    if (0.0..=self.duration_s).contains(&s.t_s) {
                        far = far.max(s.pos.norm());
                    }
                }
            }
        }
        far
    }

    /// The same scenario ending at `duration_s` if that is sooner.
    pub fn truncated(mut self, duration_s: f64) -> Self {
        self.duration_s = self.duration_s.min(duration_s.max(0.0));
        self
    }

    /// Makes a share of the vehicles connected and the rest not, chosen from `seed`: exactly
    /// `round(share * vehicles)` of them, ranked by a seeded hash of their ids, so the choice does
    /// not depend on the order of the actors. Pedestrians and cyclists never carry an agent.
    pub fn with_connected_share(mut self, share: f64, seed: u64) -> Self {
        let share = share.clamp(0.0, 1.0);
        let mut ranked: Vec<(u64, usize)> = self
            .actors
            .iter()
            .enumerate()
            .filter(|(_, a)| a.class.is_vehicle())
            .map(|(i, a)| (Rng::new(seed).fork(fnv1a(a.id.as_bytes())).next_u64(), i))
            .collect();
        ranked.sort_unstable();
        let n_connected = (share * ranked.len() as f64).round() as usize;
        for a in &mut self.actors {
            a.connected = false;
        }
        for &(_, i) in ranked.iter().take(n_connected) {
            self.actors[i].connected = true;
        }
        self
    }

    /// `n` copies of the scenario side by side on a square grid, far enough apart that no
    /// road user of one copy comes within `separation_m` of another copy's. Copy 0 keeps the
    /// ids; copy `k` appends `~k`. Meant for load tests: the picture at each copy is the same,
    /// the edge and the simulator carry `n` times the traffic.
    pub fn copies(&self, n: usize, separation_m: f64) -> Self {
        let n = n.max(1);
        if n == 1 {
            return self.clone();
        }
        let pitch = 2.0 * self.extent_m() + separation_m;
        let columns = (n as f64).sqrt().ceil() as usize;
        let rows = n.div_ceil(columns);
        // Centre the grid on the origin so the edge's coverage stays compact.
        let offset = |k: usize| {
            let (col, row) = ((k % columns) as f64, (k / columns) as f64);
            V2::new(
                (col - (columns - 1) as f64 / 2.0) * pitch,
                (row - (rows - 1) as f64 / 2.0) * pitch,
            )
        };
        let mut actors = Vec::with_capacity(self.actors.len() * n);
        for k in 0..n {
            for a in &self.actors {
                let mut copy = a.translated(offset(k));
                if k > 0 {
                    copy.id = format!("{}~{k}", a.id);
                }
                actors.push(copy);
            }
        }
        let roads = (0..n)
            .flat_map(|k| {
                self.roads.iter().map(move |r| Surface {
                    centerline: r.centerline.iter().map(|p| p + offset(k)).collect(),
                    ..r.clone()
                })
            })
            .collect();
        Self {
            name: format!("{}-x{n}", self.name),
            actors,
            roads,
            ..self.clone()
        }
    }
}

/// FNV-1a: a stable 64-bit hash of bytes (std's hashers may change between releases).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests;
