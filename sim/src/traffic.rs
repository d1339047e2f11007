//! Generated traffic on the built-in road layouts: random vehicles, cyclists and pedestrians
//! with car-following (IDM), signals, give-way rules and crosswalks, plus scripted conflict
//! patterns mixed into it. The traffic is simulated once, when the scenario is built, in 0.1 s
//! steps from a seed, and every road user becomes a recorded [`Trace`]; ground truth stays a
//! pure function of time for the rest of the simulator, and no agent's alert feeds back into
//! how people drive (the drivers here are not connected: they react to what is in front of them
//! and to nothing the edge says).
//!
//! Each pattern is timed by simulating twice: the traffic with the pattern's other road users
//! first, to learn when the victim reaches the conflict point, then with the violator added,
//! sent off so that it arrives there at the same moment. The pattern's lanes are kept free of
//! random vehicles around that time so that nothing in front of either delays them.

pub mod layout;

use crate::rng::Rng;
use crate::world::{Actor, Motion, SpeedKey, Surface, Trace, TraceSample, TRACE_MAX_GAP_S};
use edge_node::geometry::{time_to_collision, Mover, V2};
use layout::{right_of, Polyline, KERB_M, PAVEMENT_M, STOP_LINE_M};
pub use layout::{Arm, Layout, LayoutKind, Light, SignalTiming, Turn};
use protocol::ObjectClass;
use serde::Deserialize;
use std::collections::BTreeMap;

const STEP_S: f64 = 0.1;
/// Traffic starts this long before the run so that the scene is already busy at 0 s.
const WARMUP_S: f64 = 30.0;
const EMERGENCY_DECEL_MPS2: f64 = 8.0;
const MAX_DECEL_MPS2: f64 = 9.0;
/// Half the length of the zone around a conflict point that two give-way parties keep apart.
const ZONE_M: f64 = 2.5;
/// A pattern's lanes are kept free of random traffic from this long before its green (or its
/// time, without signals): a whole red phase, so no queue is left to hold its vehicles up.
const CLEAR_BEFORE_S: f64 = 35.0;
/// How far ahead a driver looks for a vehicle to follow.
const LOOK_AHEAD_M: f64 = 150.0;

/// The random traffic of a scenario.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrafficSpec {
    /// Motor vehicles entering during the run, from random arms to random exits (more enter
    /// during a warm-up before 0 s, at the same rate, so the junction is busy from the start).
    pub vehicles: usize,
    /// Share of those vehicles that are trucks (10 x 2.5 m) rather than cars (4.5 x 1.8 m).
    pub truck_share: f64,
    /// Cyclists entering during the run; they ride in the lane like slow vehicles.
    pub cyclists: usize,
    /// Pedestrians crossing at the crosswalks during the run.
    pub pedestrians: usize,
    /// Share of vehicles that turn, half of them left and half right.
    pub turn_share: f64,
    /// Share of the random motor vehicles that run a v2e agent.
    pub connected_share: f64,
}

impl Default for TrafficSpec {
    fn default() -> Self {
        Self {
            vehicles: 0,
            truck_share: 0.05,
            cyclists: 0,
            pedestrians: 0,
            turn_share: 0.3,
            connected_share: 0.5,
        }
    }
}

/// Which parties of a scripted conflict run an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Involved {
    #[default]
    Both,
    Violator,
    Victim,
    Neither,
}

impl Involved {
    fn violator(self) -> bool {
        matches!(self, Involved::Both | Involved::Violator)
    }
    fn victim(self) -> bool {
        matches!(self, Involved::Both | Involved::Victim)
    }
}

fn west() -> Arm {
    Arm::West
}
fn yes() -> bool {
    true
}
fn three() -> usize {
    3
}
fn seven() -> f64 {
    7.0
}

/// A conflict pattern mixed into the traffic, around `at_s` (the exact moment follows from the
/// signals and the traffic: the first time the pattern can happen at or after `at_s`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "pattern", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Pattern {
    /// A vehicle from `approach` goes straight through its red light into the first vehicle
    /// to leave the queue on the cross street on its right when that street gets green.
    RedLightRunner {
        at_s: f64,
        #[serde(default = "west")]
        approach: Arm,
        #[serde(default)]
        connected: Involved,
    },
    /// A vehicle from `approach` turns left across an oncoming vehicle without giving way.
    LeftTurn {
        at_s: f64,
        #[serde(default = "west")]
        approach: Arm,
        #[serde(default)]
        connected: Involved,
    },
    /// A pedestrian steps out from behind a van parked on the kerb, into the path of a car
    /// that came straight through from `approach` and cannot see them; an oncoming car can.
    HiddenPedestrian {
        at_s: f64,
        #[serde(default = "west")]
        approach: Arm,
        /// Whether the oncoming car, the one that sees the pedestrian, runs an agent.
        #[serde(default = "yes")]
        observer_connected: bool,
    },
    /// A platoon from `approach` goes straight through; past the junction its leader brakes
    /// hard to a stop, and each follower, at 0.8 s headway, reacts a second late.
    PlatoonBraking {
        at_s: f64,
        #[serde(default = "west")]
        approach: Arm,
        #[serde(default = "three")]
        followers: usize,
        #[serde(default = "seven")]
        decel_mps2: f64,
        #[serde(default)]
        connected: Involved,
    },
}

impl Pattern {
    pub fn name(&self) -> &'static str {
        match self {
            Pattern::RedLightRunner { .. } => "red-light-runner",
            Pattern::LeftTurn { .. } => "left-turn",
            Pattern::HiddenPedestrian { .. } => "hidden-pedestrian",
            Pattern::PlatoonBraking { .. } => "platoon-braking",
        }
    }

    fn at_s(&self) -> f64 {
        match self {
            Pattern::RedLightRunner { at_s, .. }
            | Pattern::LeftTurn { at_s, .. }
            | Pattern::HiddenPedestrian { at_s, .. }
            | Pattern::PlatoonBraking { at_s, .. } => *at_s,
        }
    }
}

/// A conflict a scenario sets up on purpose: its two road users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptedConflict {
    pub pattern: String,
    pub a: String,
    pub b: String,
}

/// Why traffic could not be generated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TrafficError {
    #[error("conflict {index} ({pattern}) needs a signalised layout")]
    NeedsSignals { index: usize, pattern: &'static str },
    #[error("conflict {index} ({pattern}) uses the {arm:?} arm, which this layout does not have")]
    NoSuchArm {
        index: usize,
        pattern: &'static str,
        arm: Arm,
    },
    #[error("conflict {index} ({pattern}) could not happen before the run ends ({why})")]
    TooLate {
        index: usize,
        pattern: &'static str,
        why: String,
    },
    #[error("{what} must be {must}, not {value}")]
    OutOfRange {
        what: &'static str,
        must: &'static str,
        value: f64,
    },
}

/// Road users and surface generated for a layout.
#[derive(Debug, Clone)]
pub struct Generated {
    pub actors: Vec<Actor>,
    pub roads: Vec<Surface>,
    pub scripted: Vec<ScriptedConflict>,
    /// Random vehicles and cyclists due to enter during the run (not the warm-up), and how
    /// many of them were left out to keep the conflict patterns' lanes clear.
    pub random_vehicles: usize,
    pub random_vehicles_left_out: usize,
}

/// How a driver behaves.
#[derive(Debug, Clone, Copy)]
struct Driver {
    v0: f64,
    headway_s: f64,
    s0: f64,
    a_max: f64,
    b_comf: f64,
    ignore_signal: bool,
    ignore_give_way: bool,
    /// Brakes hard when something is about to be hit.
    emergency: bool,
    /// Reacts this late to the vehicle in front braking hard.
    reaction_s: Option<f64>,
    /// Brakes hard to a stop once past this arc length, at this deceleration.
    hard_brake: Option<(f64, f64)>,
}

impl Driver {
    fn car(v0: f64) -> Self {
        Self {
            v0,
            headway_s: 1.5,
            s0: 2.0,
            a_max: 1.5,
            b_comf: 2.0,
            ignore_signal: false,
            ignore_give_way: false,
            emergency: true,
            reaction_s: None,
            hard_brake: None,
        }
    }
}

#[derive(Debug, Clone)]
struct VehiclePlan {
    id: String,
    class: ObjectClass,
    length: f64,
    width: f64,
    connected: bool,
    mv: usize,
    spawn_t: f64,
    driver: Driver,
}

#[derive(Debug, Clone)]
struct PedPlan {
    id: String,
    crossing: usize,
    /// Along the pavement to the kerb at the crosswalk, across, and a little beyond.
    path: Polyline,
    /// Where on `path` they wait at the kerb.
    kerb_u: f64,
    spawn_t: f64,
    speed: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    NotYet,
    Active,
    Gone,
}

#[derive(Debug, Clone)]
struct Vehicle {
    phase: Phase,
    s: f64,
    v: f64,
    a: f64,
    braking_since: Option<f64>,
    noticed_at: Option<f64>,
    samples: Vec<TraceSample>,
    /// (t, arc) of every step, for timing patterns.
    arcs: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PedPhase {
    NotYet,
    ToKerb,
    Waiting,
    Crossing,
    Gone,
}

#[derive(Debug, Clone)]
struct Ped {
    phase: PedPhase,
    u: f64,
    samples: Vec<TraceSample>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Seg {
    In(Arm),
    Conn(usize),
    Out(Arm),
}

/// One simulation of a layout's traffic.
struct Sim<'a> {
    layout: &'a Layout,
    plans: &'a [VehiclePlan],
    ped_plans: &'a [PedPlan],
    /// Scripted road users (a parked van, a pedestrian) drivers must not hit.
    extras: &'a [Actor],
    vehicles: Vec<Vehicle>,
    peds: Vec<Ped>,
    record: (f64, f64),
}

fn idm(d: &Driver, v: f64, v0: f64, lead: Option<(f64, f64)>) -> f64 {
    let free = 1.0 - (v / v0.max(0.1)).powi(4);
    match lead {
        None => d.a_max * free,
        Some((gap, v_lead)) => {
            let brake = v * (v - v_lead) / (2.0 * (d.a_max * d.b_comf).sqrt());
            let s_star = d.s0 + (v * d.headway_s + brake).max(0.0);
            d.a_max * (free - (s_star / gap.max(0.1)).powi(2))
        }
    }
}

/// Seconds to cover `d` metres from speed `v` accelerating at `a`.
fn time_to_cover(d: f64, v: f64, a: f64) -> f64 {
    if d <= 0.0 {
        return 0.0;
    }
    (-v + (v * v + 2.0 * a * d).sqrt()) / a
}

/// When a recorded (t, arc) series first reaches `arc`.
fn time_at_arc(arcs: &[(f64, f64)], arc: f64) -> Option<f64> {
    let k = arcs.iter().position(|&(_, s)| s >= arc)?;
    if k == 0 {
        return Some(arcs[0].0);
    }
    let ((t0, s0), (t1, s1)) = (arcs[k - 1], arcs[k]);
    Some(t0 + (t1 - t0) * (arc - s0) / (s1 - s0).max(1e-9))
}

impl<'a> Sim<'a> {
    fn new(
        layout: &'a Layout,
        plans: &'a [VehiclePlan],
        ped_plans: &'a [PedPlan],
        extras: &'a [Actor],
        record: (f64, f64),
    ) -> Self {
        let vehicle = Vehicle {
            phase: Phase::NotYet,
            s: 0.0,
            v: 0.0,
            a: 0.0,
            braking_since: None,
            noticed_at: None,
            samples: Vec::new(),
            arcs: Vec::new(),
        };
        let ped = Ped {
            phase: PedPhase::NotYet,
            u: 0.0,
            samples: Vec::new(),
        };
        Self {
            layout,
            plans,
            ped_plans,
            extras,
            vehicles: vec![vehicle; plans.len()],
            peds: vec![ped; ped_plans.len()],
            record,
        }
    }

    fn run(&mut self, t0: f64, t_end: f64) {
        let n = ((t_end - t0) / STEP_S).ceil() as usize;
        for k in 0..=n {
            let t = t0 + k as f64 * STEP_S;
            self.step(t);
        }
    }

    fn seg(&self, i: usize) -> (Seg, f64) {
        let m = &self.layout.movements[self.plans[i].mv];
        let s = self.vehicles[i].s;
        if s < m.stop_s {
            (Seg::In(m.from), s)
        } else if s < m.exit_s {
            (Seg::Conn(self.plans[i].mv), s - m.stop_s)
        } else {
            (Seg::Out(m.to), s - m.exit_s)
        }
    }

    fn mover(&self, i: usize) -> Mover {
        let p = &self.plans[i];
        let v = &self.vehicles[i];
        let (pos, dir) = self.layout.movements[p.mv].path.at(v.s);
        Mover {
            center: pos,
            yaw: dir.y.atan2(dir.x),
            length: p.length,
            width: p.width,
            velocity: dir * v.v,
        }
    }

    fn step(&mut self, t: f64) {
        let layout = self.layout;
        // Lanes: who is where, sorted along each lane.
        let mut lanes: BTreeMap<Seg, Vec<(f64, usize)>> = BTreeMap::new();
        for i in 0..self.plans.len() {
            if self.vehicles[i].phase == Phase::Active {
                let (seg, c) = self.seg(i);
                lanes.entry(seg).or_default().push((c, i));
            }
        }
        for l in lanes.values_mut() {
            l.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        // Enter those whose time has come, if their lane has room.
        for i in 0..self.plans.len() {
            let p = &self.plans[i];
            if self.vehicles[i].phase != Phase::NotYet || p.spawn_t > t + 1e-9 {
                continue;
            }
            let m = &layout.movements[p.mv];
            let last = lanes
                .get(&Seg::In(m.from))
                .and_then(|l| l.first())
                .map(|&(c, j)| (c - self.plans[j].length / 2.0, self.vehicles[j].v));
            let v = match last {
                Some((rear, _)) if rear < p.length + p.driver.s0 => continue,
                Some((rear, v_lead)) => {
                    // No faster than lets it stop behind the last vehicle comfortably.
                    let gap = rear - p.length - p.driver.s0;
                    p.driver
                        .v0
                        .min(v_lead + (2.0 * p.driver.b_comf * gap).sqrt())
                }
                None => p.driver.v0,
            };
            let veh = &mut self.vehicles[i];
            (veh.phase, veh.s, veh.v) = (Phase::Active, p.length / 2.0, v);
            lanes
                .entry(Seg::In(m.from))
                .or_default()
                .insert(0, (p.length / 2.0, i));
        }
        let accels: Vec<Option<f64>> = (0..self.plans.len())
            .map(|i| (self.vehicles[i].phase == Phase::Active).then(|| self.accel(i, t, &lanes)))
            .collect();
        self.step_peds(t);
        for (i, a) in accels.into_iter().enumerate() {
            let Some(a) = a else { continue };
            let len = layout.movements[self.plans[i].mv].path.len();
            let veh = &mut self.vehicles[i];
            let v1 = (veh.v + a * STEP_S).max(0.0);
            let dt = if a < 0.0 && veh.v + a * STEP_S < 0.0 {
                veh.v / -a
            } else {
                STEP_S
            };
            veh.s += (veh.v + v1) / 2.0 * dt;
            (veh.v, veh.a) = (v1, a);
            if veh.s - self.plans[i].length / 2.0 > len {
                veh.phase = Phase::Gone;
            }
        }
        self.record(t + STEP_S);
    }

    fn record(&mut self, t: f64) {
        let inside = t >= self.record.0 - 1e-9 && t <= self.record.1 + 1e-9;
        for i in 0..self.plans.len() {
            if self.vehicles[i].phase != Phase::Active {
                continue;
            }
            let s = self.vehicles[i].s;
            self.vehicles[i].arcs.push((t, s));
            if inside {
                let m = self.mover(i);
                let veh = &mut self.vehicles[i];
                veh.samples.push(TraceSample {
                    t_s: t,
                    pos: m.center,
                    yaw: m.yaw,
                    speed_mps: veh.v,
                    accel_mps2: veh.a,
                });
            }
        }
        if inside {
            for k in 0..self.ped_plans.len() {
                if !matches!(
                    self.peds[k].phase,
                    PedPhase::ToKerb | PedPhase::Waiting | PedPhase::Crossing
                ) {
                    continue;
                }
                let (pos, mut dir) = self.ped_pose(k);
                let walking = self.peds[k].phase != PedPhase::Waiting;
                if !walking {
                    // Facing the road they are about to cross.
                    dir = self.ped_plans[k].path.at(self.ped_plans[k].kerb_u + 0.5).1;
                }
                let speed = if walking {
                    self.ped_plans[k].speed
                } else {
                    0.0
                };
                self.peds[k].samples.push(TraceSample {
                    t_s: t,
                    pos,
                    yaw: dir.y.atan2(dir.x),
                    speed_mps: speed,
                    accel_mps2: 0.0,
                });
            }
        }
    }

    /// A pedestrian's position and walking direction.
    fn ped_pose(&self, k: usize) -> (V2, V2) {
        self.ped_plans[k].path.at(self.peds[k].u)
    }

    /// Where pedestrian `k` is along the crossing's own arc, and which way along it they walk.
    fn ped_arc(&self, k: usize) -> (f64, f64) {
        let c = &self.layout.crossings[self.ped_plans[k].crossing];
        let (pos, dir) = self.ped_pose(k);
        let (_, along) = c.path.at(0.0);
        (c.path.project(pos).0, dir.dot(&along).signum())
    }

    fn step_peds(&mut self, t: f64) {
        for k in 0..self.ped_plans.len() {
            let plan = &self.ped_plans[k];
            let (len, kerb_u) = (plan.path.len(), plan.kerb_u);
            match self.peds[k].phase {
                PedPhase::NotYet if plan.spawn_t <= t + 1e-9 => {
                    self.peds[k].phase = PedPhase::ToKerb;
                }
                PedPhase::ToKerb => {
                    self.peds[k].u += plan.speed * STEP_S;
                    if self.peds[k].u >= kerb_u {
                        self.peds[k].u = kerb_u;
                        self.peds[k].phase = PedPhase::Waiting;
                    }
                }
                PedPhase::Waiting if self.may_cross(k, t) => {
                    self.peds[k].phase = PedPhase::Crossing;
                }
                PedPhase::Crossing => {
                    self.peds[k].u += plan.speed * STEP_S;
                    if self.peds[k].u >= len {
                        self.peds[k].phase = PedPhase::Gone;
                    }
                }
                _ => {}
            }
        }
    }

    /// Whether pedestrian `k`, waiting at the kerb, steps onto the crossing now: on the walk
    /// signal where there are signals, else when no vehicle would have to brake hard for them.
    fn may_cross(&self, k: usize, t: f64) -> bool {
        let plan = &self.ped_plans[k];
        let c = &self.layout.crossings[plan.crossing];
        let crossing_s = 2.0 * KERB_M / plan.speed + 2.0;
        if let Some(sig) = &self.layout.signals {
            let across = if c.arm.is_east_west() {
                Arm::North
            } else {
                Arm::East
            };
            if sig.light(c.arm, t) != Light::Red || sig.green_left(across, t) < crossing_s {
                return false;
            }
        }
        let pv = &self.layout.pv[plan.crossing];
        (0..self.plans.len()).all(|j| {
            let veh = &self.vehicles[j];
            let Some((_, ms)) = pv[self.plans[j].mv] else {
                return true;
            };
            if veh.phase != Phase::Active {
                return true;
            }
            let half = self.plans[j].length / 2.0;
            let (front, rear) = (veh.s + half, veh.s - half);
            if rear > ms + 1.0 {
                return true;
            }
            if front >= ms - 3.0 {
                return false;
            }
            let tj = (ms - 3.0 - front) / veh.v.max(0.1);
            veh.v < 1.0 || tj > 5.0
        })
    }

    /// The vehicle ahead of `i` along its route: (gap between bumpers, its speed, its
    /// acceleration). A vehicle turning off the same arm is ahead until it has left the lane.
    fn leader(
        &self,
        i: usize,
        lanes: &BTreeMap<Seg, Vec<(f64, usize)>>,
    ) -> Option<(f64, f64, f64)> {
        let p = &self.plans[i];
        let m = &self.layout.movements[p.mv];
        let s = self.vehicles[i].s;
        // (lane, coordinate from which to look, distance from i's centre to the lane's 0).
        let mut lanes_ahead: Vec<(Seg, f64, f64)> = Vec::new();
        let (seg, c) = self.seg(i);
        lanes_ahead.push((seg, c, -c));
        if s < m.exit_s {
            let conn_c = s - m.stop_s;
            for (k, other) in self.layout.movements.iter().enumerate() {
                if other.from == m.from && (k != p.mv || s < m.stop_s) {
                    lanes_ahead.push((Seg::Conn(k), conn_c.max(0.0), m.stop_s - s));
                }
            }
            lanes_ahead.push((Seg::Out(m.to), 0.0, m.exit_s - s));
        }
        let mut best: Option<(f64, usize)> = None;
        for (seg, from, offset) in lanes_ahead {
            let Some(lane) = lanes.get(&seg) else {
                continue;
            };
            let diverging = matches!(seg, Seg::Conn(k) if k != p.mv);
            for &(cj, j) in lane {
                if j == i || cj < from || (cj == from && !matches!(seg, Seg::Out(_))) {
                    continue;
                }
                // Off into another turn: ahead only while still in the lane.
                if diverging && cj - self.plans[j].length / 2.0 > STOP_LINE_M - 6.0 {
                    continue;
                }
                let dist = offset + cj;
                if dist > 0.0 && dist <= LOOK_AHEAD_M && best.is_none_or(|b| dist < b.0) {
                    best = Some((dist, j));
                }
                break;
            }
        }
        best.map(|(dist, j)| {
            let gap = dist - (p.length + self.plans[j].length) / 2.0;
            (gap, self.vehicles[j].v, self.vehicles[j].a)
        })
    }

    /// Whether vehicle `j`, which `i` must give way to at (ci, cj), is in the way: in the zone,
    /// or coming and due there before `i` could clear it with a second to spare.
    fn in_the_way(&self, i: usize, j: usize, ci: f64, cj: f64, t: f64) -> bool {
        let (pi, pj) = (&self.plans[i], &self.plans[j]);
        let (vi, vj) = (&self.vehicles[i], &self.vehicles[j]);
        let half_j = pj.length / 2.0;
        if vj.s - half_j > cj + ZONE_M {
            return false;
        }
        let front_j = vj.s + half_j;
        if front_j >= cj - ZONE_M {
            return true;
        }
        // Held by its own red light: not coming. (Held by giving way to someone else, it may
        // go at any moment.)
        let (mi, mj) = (&self.layout.movements[pi.mv], &self.layout.movements[pj.mv]);
        let red = self
            .layout
            .signals
            .is_some_and(|s| s.light(mj.from, t) != Light::Green);
        if red && front_j <= mj.stop_s + 0.3 {
            return false;
        }
        let tj = time_to_cover(cj - ZONE_M - front_j, vj.v, pj.driver.a_max);
        let ti = time_to_cover(ci + ZONE_M + pi.length / 2.0 - vi.s, vi.v, pi.driver.a_max);
        // The gaps drivers accept: longer to merge in front of someone than to cross.
        let critical_s = if mi.to == mj.to { 6.0 } else { 4.5 };
        tj < (ti + 1.0).max(critical_s)
    }

    fn accel(&mut self, i: usize, t: f64, lanes: &BTreeMap<Seg, Vec<(f64, usize)>>) -> f64 {
        let layout = self.layout;
        let p = &self.plans[i];
        let d = p.driver;
        let m = &layout.movements[p.mv];
        let (s, v) = (self.vehicles[i].s, self.vehicles[i].v);
        let front = s + p.length / 2.0;

        // The scripted hard stop.
        if let Some((at, decel)) = d.hard_brake {
            if s >= at && self.vehicles[i].braking_since.is_none() {
                self.vehicles[i].braking_since = Some(t);
            }
            if let Some(since) = self.vehicles[i].braking_since {
                if v > 0.0 {
                    return -decel;
                }
                // Stays stopped for a few seconds, then drives on.
                if t < since + 6.0 {
                    return 0.0;
                }
            }
        }

        let leader = self.leader(i, lanes);
        // A late reaction to hard braking in front: carry on as before until it sinks in.
        if let (Some(r), Some((_, _, a_lead))) = (d.reaction_s, leader) {
            if a_lead < -3.0 && self.vehicles[i].noticed_at.is_none() {
                self.vehicles[i].noticed_at = Some(t);
            }
            if self.vehicles[i].noticed_at.is_some_and(|n| t < n + r) {
                return 0.0;
            }
        }

        let mut v0 = d.v0;
        if m.turn != Turn::Straight && s < m.exit_s {
            let to_curve = (m.stop_s - front).max(0.0);
            v0 = v0.min((m.turn_speed_mps.powi(2) + 2.0 * d.b_comf * to_curve).sqrt());
        }
        let mut a = idm(&d, v, v0, leader.map(|(gap, vl, _)| (gap, vl)));
        let mut stop_at = |at: f64, max_decel: f64| {
            let gap = at - front;
            if gap > -0.3 && v * v / (2.0 * gap.max(0.05)) <= max_decel {
                a = a.min(idm(&d, v, v0, Some((gap.max(0.05), 0.0))));
            }
        };
        let before_line = front <= m.stop_s + 0.3;
        let mut green = true;
        if let (Some(sig), false, true) = (&layout.signals, d.ignore_signal, before_line) {
            match sig.light(m.from, t) {
                Light::Green => {}
                Light::Yellow => {
                    green = false;
                    stop_at(m.stop_s, 3.5)
                }
                Light::Red => {
                    green = false;
                    stop_at(m.stop_s, MAX_DECEL_MPS2)
                }
            }
        }
        if green && before_line && !d.ignore_give_way {
            let must_wait = (0..self.plans.len()).any(|j| {
                if self.vehicles[j].phase != Phase::Active {
                    return false;
                }
                let Some((ci, cj)) = layout.vv[p.mv][self.plans[j].mv] else {
                    return false;
                };
                layout.gives_way(p.mv, self.plans[j].mv) && self.in_the_way(i, j, ci, cj, t)
            });
            if must_wait {
                stop_at(m.stop_s, 4.5);
            }
        }
        // Pedestrians on a crosswalk ahead have way.
        for k in 0..self.ped_plans.len() {
            if self.peds[k].phase != PedPhase::Crossing {
                continue;
            }
            let Some((cs, ms)) = layout.pv[self.ped_plans[k].crossing][p.mv] else {
                continue;
            };
            let (u, dir) = self.ped_arc(k);
            let cleared = (u - cs) * dir > p.width / 2.0 + 1.0;
            if !cleared && front < ms - 1.0 {
                // Wait behind the stop line rather than in the junction, if there is time.
                if before_line {
                    stop_at(m.stop_s, 4.5);
                }
                stop_at(ms - 2.5, 6.0);
            }
        }
        if d.emergency && self.about_to_hit(i, t) {
            a = a.min(-EMERGENCY_DECEL_MPS2);
        }
        a.clamp(-MAX_DECEL_MPS2, d.a_max)
    }

    /// Whether `i` would hit something ahead of it within a second at the present velocities.
    fn about_to_hit(&self, i: usize, t: f64) -> bool {
        let me = self.mover(i);
        let heading = V2::new(me.yaw.cos(), me.yaw.sin());
        let near = |o: &Mover| {
            let rel = o.center - me.center;
            rel.norm() < 30.0 && rel.dot(&heading) > 0.0 && time_to_collision(&me, o, 1.0).is_some()
        };
        let vehicles = (0..self.plans.len())
            .filter(|&j| j != i && self.vehicles[j].phase == Phase::Active)
            .map(|j| self.mover(j));
        let peds = (0..self.ped_plans.len())
            .filter(|&k| self.peds[k].phase == PedPhase::Crossing)
            .map(|k| {
                let (pos, dir) = self.ped_pose(k);
                Mover {
                    center: pos,
                    yaw: dir.y.atan2(dir.x),
                    length: 0.5,
                    width: 0.5,
                    velocity: dir * self.ped_plans[k].speed,
                }
            });
        let extras = self.extras.iter().filter_map(|a| a.mover(t));
        vehicles.chain(peds).chain(extras).any(|o| near(&o))
    }

    fn vehicle_actor(&self, i: usize) -> Option<Actor> {
        let p = &self.plans[i];
        let trace = Trace::new(self.vehicles[i].samples.clone(), TRACE_MAX_GAP_S).ok()?;
        Some(Actor {
            id: p.id.clone(),
            class: p.class,
            length_m: p.length,
            width_m: p.width,
            connected: p.connected,
            motion: Motion::Trace(trace),
        })
    }

    fn ped_actor(&self, k: usize) -> Option<Actor> {
        let trace = Trace::new(self.peds[k].samples.clone(), TRACE_MAX_GAP_S).ok()?;
        Some(Actor {
            id: self.ped_plans[k].id.clone(),
            class: ObjectClass::Pedestrian,
            length_m: 0.5,
            width_m: 0.5,
            connected: false,
            motion: Motion::Trace(trace),
        })
    }
}

/// How the random traffic is drawn.
fn random_traffic(
    layout: &Layout,
    spec: &TrafficSpec,
    duration_s: f64,
    rng: &Rng,
) -> (Vec<VehiclePlan>, Vec<PedPlan>) {
    let window = |count: usize| {
        // Entries during the run, plus the same rate over the warm-up.
        let rate = count as f64 / duration_s.max(1.0);
        let total = count + (rate * WARMUP_S).round() as usize;
        (total, -WARMUP_S, (duration_s - 5.0).max(0.0))
    };
    let mut plans = Vec::new();
    let (n_vehicles, from_t, to_t) = window(spec.vehicles);
    let (n_cyclists, ..) = window(spec.cyclists);
    let mut r = rng.fork(1);
    for k in 0..n_vehicles + n_cyclists {
        let cyclist = k >= n_vehicles;
        let from =
            layout.arms[(r.uniform() * layout.arms.len() as f64) as usize % layout.arms.len()];
        let exits: Vec<(Arm, f64)> = layout
            .arms
            .iter()
            .filter(|&&a| a != from)
            .map(|&to| {
                let turn = layout.movements[layout.movement_index(from, to).expect("exists")].turn;
                let w = match turn {
                    Turn::Straight => 1.0 - spec.turn_share,
                    _ => spec.turn_share / 2.0,
                };
                (to, w)
            })
            .collect();
        let total: f64 = exits.iter().map(|e| e.1).sum();
        let mut pick = r.uniform() * total;
        let mut to = exits[0].0;
        for (a, w) in &exits {
            if pick < *w {
                to = *a;
                break;
            }
            pick -= w;
        }
        let spawn_t = from_t + r.uniform() * (to_t - from_t);
        // Trucks only go straight on: the corners are too tight for a 10 m footprint, whose
        // rectangle would sweep over the pavement.
        let truck = !cyclist && r.uniform() < spec.truck_share && to == from.opposite();
        let connected = !cyclist && r.uniform() < spec.connected_share;
        let jitter = 1.0 + 0.1 * (2.0 * r.uniform() - 1.0);
        let (id, class, length, width, driver) = if cyclist {
            let mut d = Driver::car(5.5 * jitter);
            d.a_max = 1.0;
            ("bike", ObjectClass::Bicycle, 1.8, 0.6, d)
        } else if truck {
            let mut d = Driver::car(11.0 * jitter);
            d.a_max = 1.0;
            ("truck", ObjectClass::Truck, 10.0, 2.5, d)
        } else {
            (
                "car",
                ObjectClass::Car,
                4.5,
                1.8,
                Driver::car(13.9 * jitter),
            )
        };
        plans.push(VehiclePlan {
            id: format!("{id}{}", k + 1),
            class,
            length,
            width,
            connected,
            mv: layout.movement_index(from, to).expect("exists"),
            spawn_t,
            driver,
        });
    }
    let mut peds = Vec::new();
    let (n_peds, from_t, to_t) = window(spec.pedestrians);
    let mut r = rng.fork(2);
    for k in 0..n_peds {
        let crossing =
            (r.uniform() * layout.crossings.len() as f64) as usize % layout.crossings.len();
        let c = &layout.crossings[crossing];
        let forward = r.uniform() < 0.5;
        // Walking along the pavement towards the junction or away from it, 10 m to the kerb.
        let along = c.arm.outward() * if r.uniform() < 0.5 { 10.0 } else { -6.0 };
        let ends = c.path.points();
        let (near, far) = if forward {
            (ends[0], ends[ends.len() - 1])
        } else {
            (ends[ends.len() - 1], ends[0])
        };
        let across = (far - near).normalize();
        let wait = near + across * (PAVEMENT_M - 0.3);
        let path = Polyline::new(vec![near + along, wait, far + across * 2.0]);
        peds.push(PedPlan {
            id: format!("ped{}", k + 1),
            crossing,
            kerb_u: (wait - near - along).norm(),
            path,
            spawn_t: from_t + r.uniform() * (to_t - from_t),
            speed: 1.2 + 0.3 * r.uniform(),
        });
    }
    (plans, peds)
}

/// Lanes kept free of random vehicles: no route in or out of these arms may be driven during
/// `[from, to]`.
struct Reservation {
    inbound: Vec<Arm>,
    outbound: Vec<Arm>,
    from: f64,
    to: f64,
}

/// A pattern worked out up to what the first pass must tell.
struct Staged {
    index: usize,
    name: &'static str,
    /// Plans the pattern adds whose times are known before any pass.
    fixed: Vec<VehiclePlan>,
    extras: Vec<Actor>,
    /// What is timed against the first pass.
    timed: Option<Timed>,
    scripted: Vec<(String, String)>,
    reservation: Reservation,
}

impl Staged {
    /// Whether a random vehicle entering from `arm` at `spawn_t` comes in behind all of this
    /// pattern's vehicles from that arm, whose entry times are known (no timed vehicle of the
    /// pattern comes from it): it cannot hold them up, so their lane need not be kept clear
    /// of it. Two seconds of margin; the entry rule keeps the gap safe.
    fn enters_behind(&self, arm: Arm, spawn_t: f64, layout: &Layout) -> bool {
        const MARGIN_S: f64 = 2.0;
        let timed_from_arm = match &self.timed {
            Some(Timed::Violator { plan, .. }) => layout.movements[plan.mv].from == arm,
            Some(Timed::HiddenPedestrian { observer, .. }) => {
                layout.movements[observer.mv].from == arm
            }
            None => false,
        };
        let last = self
            .fixed
            .iter()
            .filter(|p| layout.movements[p.mv].from == arm)
            .map(|p| p.spawn_t)
            .fold(f64::NEG_INFINITY, f64::max);
        !timed_from_arm && last.is_finite() && spawn_t > last + MARGIN_S
    }
}

/// Road users timed against where a planned vehicle (the reference) is in the first pass.
enum Timed {
    /// `plan` reaches its arc `arc` `lead_s` before `reference` reaches `reference_arc`.
    Violator {
        plan: VehiclePlan,
        arc: f64,
        lead_s: f64,
        reference: String,
        reference_arc: f64,
    },
    /// The pedestrian steps out when `reference` reaches `reference_arc`; `observer` is
    /// at its arc `observer_arc` then.
    HiddenPedestrian {
        reference: String,
        reference_arc: f64,
        path: Vec<V2>,
        ped_id: String,
        observer: VehiclePlan,
        observer_arc: f64,
    },
}

fn car_plan(id: String, mv: usize, spawn_t: f64, connected: bool) -> VehiclePlan {
    VehiclePlan {
        id,
        class: ObjectClass::Car,
        length: 4.5,
        width: 1.8,
        connected,
        mv,
        spawn_t,
        driver: Driver::car(13.0),
    }
}

/// The time a lone vehicle on `plan`'s route, starting at `spawn_t`, needs to reach `arc`.
fn solo_time(layout: &Layout, plan: &VehiclePlan, arc: f64, until: f64) -> Option<f64> {
    let plans = [plan.clone()];
    let mut sim = Sim::new(layout, &plans, &[], &[], (f64::INFINITY, f64::INFINITY));
    sim.run(plan.spawn_t, until);
    time_at_arc(&sim.vehicles[0].arcs, arc).map(|t| t - plan.spawn_t)
}

/// A plan's start time chosen so that it reaches `arc` at `at` when alone on the road (signals
/// included), found by a few corrections of a free-flow guess.
fn start_to_reach(layout: &Layout, plan: &VehiclePlan, arc: f64, at: f64) -> Option<f64> {
    let mut p = plan.clone();
    p.spawn_t = at - arc / p.driver.v0;
    for _ in 0..4 {
        let took = solo_time(layout, &p, arc, at + 60.0)?;
        let error = p.spawn_t + took - at;
        if error.abs() < 0.02 {
            break;
        }
        p.spawn_t -= error;
    }
    Some(p.spawn_t)
}

fn stage(
    layout: &Layout,
    index: usize,
    pattern: &Pattern,
    seed_tag: usize,
) -> Result<Staged, TrafficError> {
    let name = pattern.name();
    let arm_ok = |arm: Arm| {
        if layout.arms.contains(&arm) {
            Ok(arm)
        } else {
            Err(TrafficError::NoSuchArm {
                index,
                pattern: name,
                arm,
            })
        }
    };
    let mv = |from: Arm, to: Arm| {
        layout
            .movement_index(arm_ok(from)?, arm_ok(to)?)
            .ok_or(TrafficError::NoSuchArm {
                index,
                pattern: name,
                arm: to,
            })
    };
    let tag = seed_tag + 1;
    let at_s = pattern.at_s();
    // When a pattern's own approach next has green (or `at_s` without signals).
    let green_from = |arm: Arm, t: f64| layout.signals.map_or(t, |s| s.next_green(arm, t));
    Ok(match *pattern {
        Pattern::RedLightRunner {
            approach,
            connected,
            ..
        } => {
            if layout.signals.is_none() {
                return Err(TrafficError::NeedsSignals {
                    index,
                    pattern: name,
                });
            }
            let cross = approach.right_of_entry();
            let runner_mv = mv(approach, approach.opposite())?;
            let victim_mv = mv(cross, cross.opposite())?;
            let green = green_from(cross, at_s);
            // The victim waits at the front of its queue when the light turns green.
            let victim = car_plan(
                format!("rlr{tag}-victim"),
                victim_mv,
                green - 25.0,
                connected.victim(),
            );
            let (c_runner, c_victim) =
                layout.vv[runner_mv][victim_mv].expect("crossing flows meet");
            let mut runner = car_plan(
                format!("rlr{tag}-runner"),
                runner_mv,
                0.0,
                connected.violator(),
            );
            runner.driver.v0 = 14.0;
            runner.driver.ignore_signal = true;
            runner.driver.ignore_give_way = true;
            runner.driver.emergency = false;
            let victim_id = victim.id.clone();
            Staged {
                index,
                name,
                fixed: vec![victim],
                extras: Vec::new(),
                scripted: vec![(format!("rlr{tag}-runner"), victim_id.clone())],
                timed: Some(Timed::Violator {
                    plan: runner,
                    arc: c_runner,
                    lead_s: 0.0,
                    reference: victim_id,
                    reference_arc: c_victim,
                }),
                reservation: Reservation {
                    inbound: vec![approach, cross],
                    outbound: vec![],
                    from: green - CLEAR_BEFORE_S,
                    to: green + 5.0,
                },
            }
        }
        Pattern::LeftTurn {
            approach,
            connected,
            ..
        } => {
            let oncoming_from = approach.opposite();
            let left = Arm::ALL
                .into_iter()
                .find(|&a| {
                    layout
                        .movement_index(approach, a)
                        .is_some_and(|m| layout.movements[m].turn == Turn::Left)
                })
                .ok_or(TrafficError::NoSuchArm {
                    index,
                    pattern: name,
                    arm: approach,
                })?;
            let turner_mv = mv(approach, left)?;
            let oncoming_mv = mv(oncoming_from, approach)?;
            let (c_turner, c_oncoming) =
                layout.vv[turner_mv][oncoming_mv].ok_or(TrafficError::NoSuchArm {
                    index,
                    pattern: name,
                    arm: oncoming_from,
                })?;
            // Mid-green, once the queues have gone.
            let meet =
                green_from(approach, at_s) + if layout.signals.is_some() { 12.0 } else { 0.0 };
            let mut oncoming = car_plan(
                format!("lt{tag}-oncoming"),
                oncoming_mv,
                0.0,
                connected.victim(),
            );
            oncoming.spawn_t =
                start_to_reach(layout, &oncoming, c_oncoming, meet).ok_or_else(|| {
                    TrafficError::TooLate {
                        index,
                        pattern: name,
                        why: "the oncoming car cannot reach the junction".into(),
                    }
                })?;
            let mut turner = car_plan(
                format!("lt{tag}-turner"),
                turner_mv,
                0.0,
                connected.violator(),
            );
            turner.driver.ignore_give_way = true;
            turner.driver.emergency = false;
            let victim_id = oncoming.id.clone();
            Staged {
                index,
                name,
                fixed: vec![oncoming],
                extras: Vec::new(),
                scripted: vec![(format!("lt{tag}-turner"), victim_id.clone())],
                // Cuts across just ahead of the oncoming car, which brakes.
                timed: Some(Timed::Violator {
                    plan: turner,
                    arc: c_turner,
                    lead_s: 0.8,
                    reference: victim_id,
                    reference_arc: c_oncoming,
                }),
                reservation: Reservation {
                    inbound: vec![approach, oncoming_from],
                    outbound: vec![approach, left],
                    from: meet - 12.0 - CLEAR_BEFORE_S,
                    to: meet + 5.0,
                },
            }
        }
        Pattern::HiddenPedestrian {
            approach,
            observer_connected,
            ..
        } => {
            let ahead = approach.opposite();
            let car_mv = mv(approach, ahead)?;
            let observer_mv = mv(ahead, approach)?;
            // Through the stop line 3 s into green.
            let through =
                green_from(approach, at_s) + if layout.signals.is_some() { 3.0 } else { 0.0 };
            let m = &layout.movements[car_mv];
            let mut car = car_plan(format!("hp{tag}-car"), car_mv, 0.0, true);
            car.driver.v0 = 10.0;
            car.spawn_t = start_to_reach(layout, &car, m.stop_s, through).ok_or_else(|| {
                TrafficError::TooLate {
                    index,
                    pattern: name,
                    why: "the car cannot reach the junction".into(),
                }
            })?;
            // The van on the kerb of the car's exit lane 40 m past the centre, the pedestrian
            // just in front of it; they step out when the car is 20 m short of their line.
            let e = ahead.outward();
            let r = right_of(e);
            const VAN_M: f64 = 40.0;
            let van_center = e * VAN_M + r * (KERB_M + 1.1);
            let ped_line = e * (VAN_M + 3.5);
            let ped_arc = m.path.project(ped_line + r * 1.75).0;
            let mut van = Actor::car(
                &format!("hp{tag}-van"),
                &[
                    (van_center.x, van_center.y),
                    (van_center.x + e.x, van_center.y + e.y),
                ],
                &[(0.0, 0.0)],
            );
            (van.length_m, van.width_m, van.connected) = (6.0, 2.2, false);
            // The oncoming car that sees them, 18 m beyond their line as they step out.
            let mut observer = car_plan(
                format!("hp{tag}-observer"),
                observer_mv,
                0.0,
                observer_connected,
            );
            observer.driver.v0 = 8.0;
            let observer_arc = layout.movements[observer_mv]
                .path
                .project(ped_line - r * 1.75 + e * 18.0)
                .0;
            let ped_id = format!("hp{tag}-ped");
            Staged {
                index,
                name,
                scripted: vec![(car.id.clone(), ped_id.clone())],
                timed: Some(Timed::HiddenPedestrian {
                    reference: car.id.clone(),
                    reference_arc: ped_arc - 20.5,
                    path: vec![ped_line + r * 5.0, ped_line - r * (KERB_M + 3.0)],
                    ped_id,
                    observer,
                    observer_arc,
                }),
                fixed: vec![car],
                extras: vec![van],
                reservation: Reservation {
                    inbound: vec![approach, ahead],
                    outbound: vec![ahead],
                    from: through - 3.0 - CLEAR_BEFORE_S,
                    to: through + 15.0,
                },
            }
        }
        Pattern::PlatoonBraking {
            approach,
            followers,
            decel_mps2,
            connected,
            ..
        } => {
            if !(1.0..=MAX_DECEL_MPS2).contains(&decel_mps2) {
                return Err(TrafficError::OutOfRange {
                    what: "platoon-braking decel_mps2",
                    must: "between 1 and 9",
                    value: decel_mps2,
                });
            }
            let ahead = approach.opposite();
            let platoon_mv = mv(approach, ahead)?;
            let m = &layout.movements[platoon_mv];
            let through =
                green_from(approach, at_s) + if layout.signals.is_some() { 2.0 } else { 0.0 };
            let mut lead = car_plan(
                format!("pb{tag}-lead"),
                platoon_mv,
                0.0,
                connected.violator(),
            );
            lead.spawn_t = start_to_reach(layout, &lead, m.stop_s, through).ok_or_else(|| {
                TrafficError::TooLate {
                    index,
                    pattern: name,
                    why: "the platoon cannot reach the junction".into(),
                }
            })?;
            // Brakes 60 m past the centre.
            lead.driver.hard_brake = Some((m.exit_s + 48.0, decel_mps2));
            let mut fixed = vec![lead.clone()];
            let mut scripted = Vec::new();
            let spacing_s = (2.0 + 13.0 * 0.8 + 4.5) / 13.0;
            for k in 1..=followers {
                let mut f = car_plan(
                    format!("pb{tag}-f{k}"),
                    platoon_mv,
                    lead.spawn_t + k as f64 * spacing_s,
                    connected.victim(),
                );
                // Keen to close up: with the leader's desired speed, IDM would drift back.
                f.driver.v0 = 17.0;
                f.driver.headway_s = 0.8;
                f.driver.reaction_s = Some(1.0);
                f.driver.emergency = false;
                if k == 1 {
                    // Later follower pairs usually conflict too, but only this one is certain.
                    scripted.push((lead.id.clone(), f.id.clone()));
                }
                fixed.push(f);
            }
            Staged {
                index,
                name,
                fixed,
                extras: Vec::new(),
                timed: None,
                scripted,
                reservation: Reservation {
                    inbound: vec![approach],
                    outbound: vec![ahead],
                    from: through - 3.0 - CLEAR_BEFORE_S,
                    to: through + 15.0,
                },
            }
        }
    })
}

/// Generates the traffic of a layout over `[0, duration_s]` from `seed`.
pub fn generate(
    kind: LayoutKind,
    signals: SignalTiming,
    spec: &TrafficSpec,
    patterns: &[Pattern],
    duration_s: f64,
    seed: u64,
) -> Result<Generated, TrafficError> {
    for (what, value) in [
        ("traffic.truck_share", spec.truck_share),
        ("traffic.turn_share", spec.turn_share),
        ("traffic.connected_share", spec.connected_share),
    ] {
        if !(0.0..=1.0).contains(&value) {
            return Err(TrafficError::OutOfRange {
                what,
                must: "between 0 and 1",
                value,
            });
        }
    }
    for (what, value) in [
        ("signals.green_s", signals.green_s),
        ("signals.yellow_s", signals.yellow_s),
    ] {
        if !(value.is_finite() && value >= 1.0) {
            return Err(TrafficError::OutOfRange {
                what,
                must: "at least 1 s",
                value,
            });
        }
    }
    let layout = Layout::new(kind, signals);
    let rng = Rng::new(seed);
    let (mut plans, mut peds) = random_traffic(&layout, spec, duration_s, &rng);
    let staged: Vec<Staged> = patterns
        .iter()
        .enumerate()
        .map(|(k, p)| stage(&layout, k, p, k))
        .collect::<Result<_, _>>()?;
    let in_run = |plans: &[VehiclePlan]| plans.iter().filter(|p| p.spawn_t >= 0.0).count();
    let random_vehicles = in_run(&plans);
    plans.retain(|p| {
        let m = &layout.movements[p.mv];
        // On the road from its start until it could have driven the route with a
        // few seconds of waiting.
        let gone = p.spawn_t + m.path.len() / p.driver.v0 + 10.0;
        !staged.iter().any(|s| {
            let r = &s.reservation;
            let behind = s.enters_behind(m.from, p.spawn_t, &layout);
            ((r.inbound.contains(&m.from) && !behind) || r.outbound.contains(&m.to))
                && p.spawn_t <= r.to
                && gone >= r.from
        })
    });
    let random_vehicles_left_out = random_vehicles - in_run(&plans);
    // Nor does anyone cross those arms meanwhile and hold the pattern's vehicles up.
    peds.retain(|p| {
        let arm = layout.crossings[p.crossing].arm;
        !staged.iter().any(|s| {
            let r = &s.reservation;
            (r.inbound.contains(&arm) || r.outbound.contains(&arm))
                && (r.from - 10.0..=r.to).contains(&p.spawn_t)
        })
    });
    let mut extras = Vec::new();
    for s in &staged {
        plans.extend(s.fixed.iter().cloned());
        extras.extend(s.extras.iter().cloned());
    }
    let t0 = -WARMUP_S;
    // First pass: where are the reference vehicles of the timed road users?
    if staged.iter().any(|s| s.timed.is_some()) {
        let mut sim = Sim::new(
            &layout,
            &plans,
            &peds,
            &extras,
            (f64::INFINITY, f64::INFINITY),
        );
        sim.run(t0, duration_s);
        let mut added = Vec::new();
        let mut added_extras = Vec::new();
        for s in &staged {
            let Some(timed) = &s.timed else { continue };
            let (Timed::Violator {
                reference,
                reference_arc,
                ..
            }
            | Timed::HiddenPedestrian {
                reference,
                reference_arc,
                ..
            }) = timed;
            let too_late = || TrafficError::TooLate {
                index: s.index,
                pattern: s.name,
                why: format!("{reference} does not get there before {duration_s} s"),
            };
            let v = plans
                .iter()
                .position(|p| &p.id == reference)
                .expect("the reference is planned");
            let meet = time_at_arc(&sim.vehicles[v].arcs, *reference_arc).ok_or_else(too_late)?;
            match timed {
                Timed::Violator {
                    plan, arc, lead_s, ..
                } => {
                    let mut p = plan.clone();
                    p.spawn_t =
                        start_to_reach(&layout, &p, *arc, meet - lead_s).ok_or_else(too_late)?;
                    added.push(p);
                }
                Timed::HiddenPedestrian {
                    path,
                    ped_id,
                    observer,
                    observer_arc,
                    ..
                } => {
                    let mut p = observer.clone();
                    p.spawn_t =
                        start_to_reach(&layout, &p, *observer_arc, meet).ok_or_else(too_late)?;
                    added.push(p);
                    added_extras.push(Actor {
                        id: ped_id.clone(),
                        class: ObjectClass::Pedestrian,
                        length_m: 0.5,
                        width_m: 0.5,
                        connected: false,
                        motion: Motion::Scripted {
                            path: path.clone(),
                            speed: vec![
                                SpeedKey {
                                    t_s: meet,
                                    speed_mps: 0.0,
                                },
                                SpeedKey {
                                    t_s: meet + 0.3,
                                    speed_mps: 1.5,
                                },
                            ],
                        },
                    });
                }
            }
        }
        plans.extend(added);
        extras.extend(added_extras);
    }
    let mut sim = Sim::new(&layout, &plans, &peds, &extras, (0.0, duration_s));
    sim.run(t0, duration_s);
    let mut actors: Vec<Actor> = (0..plans.len())
        .filter_map(|i| sim.vehicle_actor(i))
        .collect();
    actors.extend((0..peds.len()).filter_map(|k| sim.ped_actor(k)));
    actors.extend(extras);
    let scripted = staged
        .iter()
        .flat_map(|s| {
            s.scripted.iter().map(|(a, b)| {
                let (a, b) = if a <= b { (a, b) } else { (b, a) };
                ScriptedConflict {
                    pattern: s.name.to_string(),
                    a: a.clone(),
                    b: b.clone(),
                }
            })
        })
        .collect();
    Ok(Generated {
        actors,
        roads: layout.surfaces(),
        scripted,
        random_vehicles,
        random_vehicles_left_out,
    })
}

#[cfg(test)]
mod tests;
