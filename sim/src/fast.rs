//! Fast mode: every connected vehicle's [`AgentCore`] and one [`EdgeCore`] run in this thread
//! in virtual time, so a run takes as long as the computing does, and the same seed gives the
//! same bytes.
//!
//! The run is an event loop over virtual microseconds: a binary heap of timed events, ties
//! broken by the order they were scheduled in. Per connected vehicle, from 100 ms before it
//! first appears: a burst of clock exchanges with the edge (four timestamps each, through the
//! simulated link), then one a second; perception at 10 Hz at the vehicle's own phase, handed to
//! `handle_perception` and sent as soon as `poll_frame` lets it; the frame reaches
//! `EdgeCore::handle_frame` one link latency later; every alert `poll_alert` returns reaches its
//! target's `handle_alert` one link latency after that. The edge ticks at 10 Hz.
//!
//! Virtual time is edge time: `EPOCH_US` plus microseconds since the start of the run. Each
//! vehicle's clock is edge time plus a seeded offset, which its clock sync has to absorb. The
//! edge's processing takes no virtual time; its wall-clock cost, in all and per pipeline stage
//! (a `StageTimer` as the core's probe), is measured and written to `timing.json`, never to
//! `report.json` (whose `edge_processing_us` is 0 and `edge_stage_us` `null` in fast mode), so
//! that `report.json` and `alerts.ndjson` depend on the seed alone.
//!
//! This module deliberately has no network impairments beyond a fixed one-way latency yet
//! (jitter, loss and clock drift come with the impairment models), and it does not thread:
//! determinism first.

use crate::live::{alert_event, edge_config, track_boxes, vehicle_id};
use crate::perception::{perceive_among, Geo, SensorModel};
use crate::progress::Progress;
use crate::report::{Measured, Report, TrackBox};
use crate::rng::Rng;
use crate::score::{quantile, score, true_conflicts, AlertEvent, Score, TrueConflict};
use crate::world::Scenario;
use anyhow::{bail, Context};
use edge_node::core::EdgeCore;
use edge_node::geometry::V2;
use edge_node::histogram::{StageFigures, StageTimer};
use edge_node::quality::FusionMeter;
use protocol::{ClockReply, ClockRequest, EnuFrame, Geodetic, Message};
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::path::PathBuf;
use std::time::Instant;
use vehicle_agent::{AgentCore, Perception};

/// Edge time at the start of every fast run: 2025-01-01T00:00:00Z, µs.
pub const EPOCH_US: i64 = 1_735_689_600_000_000;

/// The simulated link between each vehicle and the edge, the same both ways: every message
/// takes the latency plus a uniform draw in `0..=jitter_us`, and is lost with probability
/// `loss`. Jitter can reorder a vehicle's frames; the edge then drops the older one, as on a
/// real network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkModel {
    pub one_way_latency_us: i64,
    pub jitter_us: i64,
    pub loss: f64,
}

impl Default for LinkModel {
    fn default() -> Self {
        Self {
            one_way_latency_us: 2_000,
            jitter_us: 0,
            loss: 0.0,
        }
    }
}

/// The link in use: the model, its own seeded stream and what it lost.
struct Link {
    model: LinkModel,
    rng: Rng,
    lost: u64,
}

impl Link {
    /// Queues `event` to arrive after the link's delay, unless the link loses it.
    fn send(&mut self, queue: &mut Queue, now_us: i64, event: Event) {
        let m = self.model;
        if m.loss > 0.0 && self.rng.uniform() < m.loss {
            self.lost += 1;
            return;
        }
        let jitter = if m.jitter_us > 0 {
            (self.rng.uniform() * (m.jitter_us + 1) as f64) as i64
        } else {
            0
        };
        queue.push(now_us + m.one_way_latency_us + jitter, event);
    }
}

#[derive(Debug, Clone)]
pub struct FastOptions {
    pub seed: u64,
    /// Where report.json, alerts.ndjson and timing.json go; nothing is written when `None`.
    pub out: Option<PathBuf>,
    pub sensor: SensorModel,
    pub edge_id: String,
    /// Each vehicle's clock is offset from the edge's by a draw in +-this, µs.
    pub max_clock_offset_us: i64,
    /// Each vehicle's clock runs fast or slow by a draw in +-this, parts per million; the
    /// agents' periodic clock sync has to absorb it.
    pub max_clock_drift_ppm: f64,
    pub link: LinkModel,
    /// Perception period of every vehicle, µs (10 Hz).
    pub perception_period_us: i64,
    /// Clock exchanges before a vehicle starts sending, and the period of those after.
    pub clock_burst: u32,
    pub clock_sync_period_us: i64,
    /// How long after the end of the scenario messages in flight may still arrive, µs.
    pub drain_us: i64,
    /// Keep the edge's tracks of the first tick at or after this instant (run seconds) in
    /// [`FastResult::snapshot_tracks`].
    pub snapshot_at_s: Option<f64>,
    /// The scenario's true conflicts, when the caller has computed them already (to choose
    /// the snapshot's moment): `score::true_conflicts` of the same scenario. Computed when
    /// `None`.
    pub true_conflicts: Option<Vec<TrueConflict>>,
    /// Draw a progress bar on stderr (see [`crate::progress`]: only at a terminal, and only
    /// once a run has taken 2 s of wall time).
    pub progress: bool,
}

impl FastOptions {
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            out: None,
            sensor: SensorModel::default(),
            edge_id: "sim".into(),
            max_clock_offset_us: 50_000,
            max_clock_drift_ppm: 0.0,
            link: LinkModel::default(),
            perception_period_us: 100_000,
            clock_burst: 8,
            clock_sync_period_us: 1_000_000,
            drain_us: 300_000,
            snapshot_at_s: None,
            true_conflicts: None,
            progress: false,
        }
    }
}

/// Wall-clock figures of a fast run: `timing.json`. They vary from run to run and machine to
/// machine, which is why they are kept apart from `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timing {
    pub scenario: String,
    pub virtual_s: f64,
    pub wall_s: f64,
    /// Virtual seconds per wall second.
    pub speedup: f64,
    pub connected_vehicles: usize,
    pub frames: u64,
    /// Wall time of each `EdgeCore::handle_frame` call, µs.
    pub edge_processing_us: TimingQuantiles,
    pub wall_breakdown_s: WallBreakdown,
    /// The edge's wall time per pipeline stage, as `report.json`'s `edge_stage_us` in live
    /// mode: p50 and p99 per pass in µs, and the share of the core's time.
    pub edge_stage_us: BTreeMap<String, StageFigures>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TimingQuantiles {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct WallBreakdown {
    /// Ground truth and sensor model, on the perception thread (it overlaps the rest).
    pub perception: f64,
    /// The event loop waiting for the perception thread.
    pub perception_wait: f64,
    /// `AgentCore` calls: quantising, encoding, clock sync, decoding alerts.
    pub agents: f64,
    pub edge_frames: f64,
    pub edge_ticks: f64,
    /// Fusion samples (the edge's tracks against ground truth, at each tick), true conflicts
    /// and matching alerts to them.
    pub scoring: f64,
}

pub struct FastResult {
    pub report: Report,
    pub score: Score,
    pub alerts: Vec<AlertEvent>,
    pub timing: Timing,
    /// The edge's situation map at the first tick at or after
    /// [`FastOptions::snapshot_at_s`], in the scenario's frame; `None` when not asked for or
    /// after the end of the run.
    pub snapshot_tracks: Option<Vec<TrackBox>>,
}

#[derive(Debug)]
enum Event {
    /// The agent sends a clock request; `then` more follow back to back.
    ClockRequest {
        agent: usize,
        then: u32,
    },
    ClockAtEdge {
        agent: usize,
        bytes: Vec<u8>,
        then: u32,
    },
    ClockReply {
        agent: usize,
        bytes: Vec<u8>,
        then: u32,
    },
    /// The agent gives up waiting for the reply to its request number `request` (the live
    /// agent waits a second) and carries on with its schedule.
    ClockTimeout {
        agent: usize,
        request: u64,
        then: u32,
    },
    Perceive {
        agent: usize,
    },
    /// The rate limit or the missing clock offset held a frame back: try again.
    Flush {
        agent: usize,
    },
    FrameAtEdge {
        agent: usize,
        bytes: Vec<u8>,
    },
    AlertAtAgent {
        agent: usize,
        bytes: Vec<u8>,
    },
    Tick,
}

#[derive(Debug)]
struct Scheduled {
    at_us: i64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at_us, self.seq) == (other.at_us, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at_us, self.seq).cmp(&(other.at_us, other.seq))
    }
}

/// Timed events in order; equal times in the order they were scheduled.
#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
}

impl Queue {
    fn push(&mut self, at_us: i64, event: Event) {
        self.seq += 1;
        self.heap.push(Reverse(Scheduled {
            at_us,
            seq: self.seq,
            event,
        }));
    }

    fn pop_until(&mut self, end_us: i64) -> Option<(i64, Event)> {
        if self.heap.peek()?.0.at_us > end_us {
            return None;
        }
        self.heap.pop().map(|Reverse(s)| (s.at_us, s.event))
    }
}

struct SimAgent {
    actor: usize,
    core: AgentCore,
    /// Vehicle clock minus edge clock at the start, µs.
    offset_us: i64,
    /// How fast the vehicle clock runs against the edge's, parts per million.
    drift_ppm: f64,
    /// Clock requests sent, and whether the latest one has been answered or timed out.
    clock_requests: u64,
    clock_pending: bool,
    /// The last instant the actor may be present, run µs.
    last_present_us: i64,
    flush_pending: bool,
}

impl SimAgent {
    fn local(&self, t_us: i64) -> i64 {
        EPOCH_US + t_us + self.offset_us + (t_us as f64 * self.drift_ppm * 1e-6) as i64
    }
}

/// Which actors could be within sensor range of a point during one perception period: a grid
/// of the actors' positions at the start of the period, with cells large enough that the
/// 3 x 3 cells around a perceiver hold everyone within range of it at any instant of the
/// period. A superset, in actor order, so [`perceive_among`] gives what a full scan would.
struct Neighbours {
    period_idx: i64,
    cell_m: f64,
    cells: HashMap<(i64, i64), Vec<usize>>,
    /// Actors that could be present in the period but are not at its reference instant.
    everywhere: Vec<usize>,
}

impl Neighbours {
    fn new(cell_m: f64) -> Self {
        Self {
            period_idx: i64::MIN,
            cell_m,
            cells: HashMap::new(),
            everywhere: Vec::new(),
        }
    }

    fn cell(&self, x: f64, y: f64) -> (i64, i64) {
        (
            (x / self.cell_m).floor() as i64,
            (y / self.cell_m).floor() as i64,
        )
    }

    fn refresh(&mut self, scenario: &Scenario, period_idx: i64, period_us: i64) {
        if self.period_idx == period_idx {
            return;
        }
        self.period_idx = period_idx;
        self.cells.clear();
        self.everywhere.clear();
        let from = (period_idx * period_us) as f64 * 1e-6;
        let to = ((period_idx + 1) * period_us) as f64 * 1e-6;
        for (i, a) in scenario.actors.iter().enumerate() {
            let (first, last) = a.span();
            if last < from || first > to {
                continue;
            }
            match a.state(from.clamp(first, last)) {
                Some(s) => {
                    let cell = self.cell(s.pos.x, s.pos.y);
                    self.cells.entry(cell).or_default().push(i);
                }
                None => self.everywhere.push(i),
            }
        }
    }

    fn around(&self, x: f64, y: f64, out: &mut Vec<usize>) {
        out.clear();
        let (cx, cy) = self.cell(x, y);
        for dx in -1..=1 {
            for dy in -1..=1 {
                if let Some(v) = self.cells.get(&(cx + dx, cy + dy)) {
                    out.extend_from_slice(v);
                }
            }
        }
        out.extend_from_slice(&self.everywhere);
        out.sort_unstable();
        out.dedup();
    }
}

/// How many perception periods the perception thread may run ahead of the event loop.
const PERCEPTION_WINDOWS_AHEAD: usize = 16;

/// One perception, and where it puts each real road user it reports against where that road
/// user is (for the fusion figures), both worked out on the perception thread.
struct Perceived {
    perception: Perception,
    detections: Vec<(V2, V2)>,
}

/// The perceptions of one period `[index * period, (index + 1) * period)`: (agent, time,
/// perception) in agent order; `None` where the vehicle is in a gap of its trace.
struct Window {
    index: i64,
    perceptions: Vec<(usize, i64, Option<Perceived>)>,
    /// [`fusion_truth`] at the period's start, the instant of the edge tick the fusion
    /// figures sample.
    truth: Vec<(usize, V2)>,
}

/// The event loop's end of the perception thread: what it has received and not used yet.
struct Ahead {
    rx: std::sync::mpsc::Receiver<Window>,
    next_window: i64,
    /// Per agent, its perceptions in time order.
    perceptions: Vec<VecDeque<(i64, Option<Perceived>)>>,
    /// Fusion truth per period, in order.
    truths: VecDeque<(i64, Vec<(usize, V2)>)>,
}

impl Ahead {
    /// Receives every period up to the one holding `t_us`.
    fn fill_to(&mut self, t_us: i64, period: i64) -> anyhow::Result<()> {
        while self.next_window <= t_us.div_euclid(period) {
            let Ok(w) = self.rx.recv() else {
                bail!("the perception thread stopped early");
            };
            for (agent, t, p) in w.perceptions {
                self.perceptions[agent].push_back((t, p));
            }
            self.truths.push_back((w.index, w.truth));
            self.next_window = w.index + 1;
        }
        Ok(())
    }

    /// The fusion truth of the tick at `t_us` (a period's start).
    fn truth_at(&mut self, t_us: i64, period: i64) -> anyhow::Result<Vec<(usize, V2)>> {
        self.fill_to(t_us, period)?;
        let index = t_us.div_euclid(period);
        while self.truths.front().is_some_and(|(i, _)| *i < index) {
            self.truths.pop_front();
        }
        match self.truths.pop_front() {
            Some((i, truth)) if i == index && t_us == index * period => Ok(truth),
            other => bail!(
                "internal: the fusion truth of the tick at {t_us} µs is not there (period {:?})",
                other.map(|o| o.0)
            ),
        }
    }
}

/// The perception thread: every agent's perceptions, period after period, from the agent's
/// first slot (`schedule`) every `period` until the end of the run or its last presence, each
/// with the agent's own noise stream (`streams`), exactly as the event loop would ask for
/// them, and each period's fusion truth until `drain_end_us`. Stops when the loop hangs up.
/// Returns the wall time it spent working, seconds.
#[allow(clippy::too_many_arguments)]
fn perceive_ahead(
    scenario: &Scenario,
    geo: &Geo,
    sensor: &SensorModel,
    actors: &[usize],
    schedule: &[Option<(i64, i64)>],
    mut streams: Vec<Rng>,
    period: i64,
    end_us: i64,
    drain_end_us: i64,
    tx: std::sync::mpsc::SyncSender<Window>,
) -> f64 {
    let max_speed = scenario
        .actors
        .iter()
        .map(|a| a.max_speed_mps())
        .fold(0.0, f64::max);
    let mut neighbours = Neighbours::new(sensor.range_m + max_speed * seconds(period) + 1.0);
    let grid_usable = neighbours.cell_m.is_finite() && neighbours.cell_m > 0.0;
    let all_actors: Vec<usize> = (0..scenario.actors.len()).collect();
    let mut candidates = Vec::new();
    let mut busy_s = 0.0;
    for index in 0..=drain_end_us.div_euclid(period) {
        let started = Instant::now();
        let (from, to) = (index * period, (index + 1) * period);
        let truth = fusion_truth(scenario, sensor, seconds(from));
        let mut perceptions = Vec::new();
        for (agent, slots) in schedule.iter().enumerate() {
            let Some((first, last_present)) = *slots else {
                continue;
            };
            // The agent's one slot in this period, if it has one.
            let t_us = first + ((from - first).max(0) + period - 1) / period * period;
            if t_us >= to || t_us >= end_us || t_us > last_present {
                continue;
            }
            let me = actors[agent];
            let t_s = seconds(t_us);
            let perception = scenario.actors[me].state(t_s).and_then(|state| {
                let among: &[usize] = if grid_usable {
                    neighbours.refresh(scenario, index, period);
                    neighbours.around(state.pos.x, state.pos.y, &mut candidates);
                    &candidates
                } else {
                    &all_actors
                };
                perceive_among(
                    scenario,
                    geo,
                    sensor,
                    me,
                    t_s,
                    among.iter().copied(),
                    &mut streams[agent],
                )
            });
            let perceived = perception.map(|perception| Perceived {
                detections: detections_vs_truth(scenario, geo, t_s, &perception),
                perception,
            });
            perceptions.push((agent, t_us, perceived));
        }
        busy_s += started.elapsed().as_secs_f64();
        let window = Window {
            index,
            perceptions,
            truth,
        };
        if tx.send(window).is_err() {
            break; // the loop is done (or gave up)
        }
    }
    busy_s
}

fn seconds(us: i64) -> f64 {
    us as f64 * 1e-6
}

fn run_us(t_s: f64) -> i64 {
    (t_s * 1e6).round() as i64
}

/// Runs `scenario` in fast mode and, when `opts.out` is set, writes report.json,
/// alerts.ndjson and timing.json there.
pub fn run_fast(scenario: &Scenario, opts: &FastOptions) -> anyhow::Result<FastResult> {
    let wall_start = Instant::now();
    let mut wall = WallBreakdown::default();
    let geo = Geo::new(scenario.origin);
    let mut edge = EdgeCore::new(edge_config(scenario, &opts.edge_id));
    let mut link = Link {
        model: opts.link,
        rng: Rng::new(opts.seed).fork(u64::MAX),
        lost: 0,
    };
    let period = opts.perception_period_us.max(1);
    let end_us = run_us(scenario.duration_s);
    let drain_end_us = end_us + opts.drain_us;

    // One agent per connected actor, each with its clock offset and noise stream drawn from
    // the seed exactly as the live driver draws them.
    let rng = Rng::new(opts.seed);
    let connected: Vec<usize> = (0..scenario.actors.len())
        .filter(|&i| scenario.actors[i].connected)
        .collect();
    let n = connected.len().max(1) as i64;
    let mut agents = Vec::with_capacity(connected.len());
    let mut agent_of_actor = vec![None; scenario.actors.len()];
    let mut queue = Queue::default();
    // Actor -> its first perception slot, µs, and each agent's noise stream, for the
    // perception thread.
    let mut first_slots: HashMap<usize, i64> = HashMap::new();
    let mut streams: Vec<Rng> = Vec::with_capacity(connected.len());
    for (k, &i) in connected.iter().enumerate() {
        let mut clock_rng = rng.fork(i as u64);
        let offset_us =
            ((clock_rng.uniform() * 2.0 - 1.0) * opts.max_clock_offset_us as f64) as i64;
        let drift_ppm = (clock_rng.uniform() * 2.0 - 1.0) * opts.max_clock_drift_ppm;
        let (first, last) = scenario.actors[i].span();
        let first_us = run_us(first.max(0.0));
        let last_us = if last.is_finite() {
            run_us(last)
        } else {
            i64::MAX
        };
        agent_of_actor[i] = Some(agents.len());
        let agent = agents.len();
        streams.push(rng.fork(1_000 + i as u64));
        agents.push(SimAgent {
            actor: i,
            core: AgentCore::new(vehicle_id(i), period),
            offset_us,
            drift_ppm,
            clock_requests: 0,
            clock_pending: false,
            last_present_us: last_us,
            flush_pending: false,
        });
        if first_us > end_us {
            continue;
        }
        // The vehicle connects and synchronises just before it enters the scene, then perceives
        // at its own phase of the 10 Hz cycle.
        queue.push(
            first_us - 100_000,
            Event::ClockRequest {
                agent,
                then: opts.clock_burst.saturating_sub(1),
            },
        );
        let phase = k as i64 * period / n;
        let first_slot = phase + ((first_us - phase).max(0) + period - 1) / period * period;
        queue.push(first_slot, Event::Perceive { agent });
        first_slots.insert(i, first_slot);
    }
    queue.push(0, Event::Tick);

    let mut alerts = Vec::new();
    let mut processing_us = Vec::new();
    let mut fusion = FusionMeter::new(seconds(period));
    let mut stages = StageTimer::default();
    let snapshot_at_us = opts.snapshot_at_s.map(run_us);
    let mut snapshot_tracks = None;
    let mut refused = 0u64;
    let mut undeliverable = 0u64;

    let mut progress = opts
        .progress
        .then(|| Progress::new(scenario.name.clone(), scenario.duration_s));
    // Perception (ground truth and the sensor model) needs nothing the loop computes, so a
    // second thread works it out ahead, period by period, with each agent's own noise stream:
    // the draws, and so the report, are the same as if the loop did it itself.
    let schedule: Vec<Option<(i64, i64)>> = agents
        .iter()
        .map(|a| {
            first_slots
                .get(&a.actor)
                .map(|&first| (first, a.last_present_us))
        })
        .collect();
    let actors: Vec<usize> = agents.iter().map(|a| a.actor).collect();
    let n_agents = agents.len();
    let perception_busy = std::thread::scope(|scope| -> anyhow::Result<f64> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Window>(PERCEPTION_WINDOWS_AHEAD);
        let mut ahead = Ahead {
            rx,
            next_window: 0,
            perceptions: (0..n_agents).map(|_| VecDeque::new()).collect(),
            truths: VecDeque::new(),
        };
        let worker = scope.spawn(|| {
            perceive_ahead(
                scenario,
                &geo,
                &opts.sensor,
                &actors,
                &schedule,
                streams,
                period,
                end_us,
                drain_end_us,
                tx,
            )
        });
        while let Some((t_us, event)) = queue.pop_until(drain_end_us) {
            match event {
                Event::Tick => {
                    if let Some(p) = &mut progress {
                        p.update(seconds(t_us).min(scenario.duration_s));
                    }
                    let started = Instant::now();
                    edge.handle_tick_probed(EPOCH_US + t_us, &mut stages);
                    let map = edge.poll_map();
                    wall.edge_ticks += started.elapsed().as_secs_f64();
                    if snapshot_tracks.is_none() && snapshot_at_us.is_some_and(|at| t_us >= at) {
                        let map = map.unwrap_or_else(|| edge.situation_map(EPOCH_US + t_us));
                        snapshot_tracks = Some(track_boxes(&map, &geo));
                    }
                    let started = Instant::now();
                    let truth = ahead.truth_at(t_us, period)?;
                    wall.perception_wait += started.elapsed().as_secs_f64();
                    let started = Instant::now();
                    sample_fusion(&mut fusion, &truth, &edge, t_us);
                    wall.scoring += started.elapsed().as_secs_f64();
                    route_alerts(
                        &mut edge,
                        &mut queue,
                        &mut link,
                        &agent_of_actor,
                        t_us,
                        &mut undeliverable,
                    );
                    queue.push(t_us + period, Event::Tick);
                }
                Event::ClockRequest { agent, then } => {
                    let a = &mut agents[agent];
                    a.clock_requests += 1;
                    a.clock_pending = true;
                    queue.push(
                        t_us + CLOCK_TIMEOUT_US,
                        Event::ClockTimeout {
                            agent,
                            request: a.clock_requests,
                            then,
                        },
                    );
                    let bytes = a.core.clock_request(a.local(t_us));
                    link.send(&mut queue, t_us, Event::ClockAtEdge { agent, bytes, then });
                }
                Event::ClockAtEdge { agent, bytes, then } => {
                    // What the edge's clock queryable does: stamp receipt and reply.
                    if let Ok(request) = ClockRequest::decode(&bytes) {
                        let now = EPOCH_US + t_us;
                        let reply = ClockReply {
                            t1_us: request.t1_us,
                            t2_us: now,
                            t3_us: now,
                        };
                        let bytes = reply.encode().context("encoding a clock reply")?;
                        link.send(&mut queue, t_us, Event::ClockReply { agent, bytes, then });
                    }
                }
                Event::ClockReply { agent, bytes, then } => {
                    let started = Instant::now();
                    let a = &mut agents[agent];
                    let _ = a.core.handle_clock_reply(a.local(t_us), &bytes);
                    wall.agents += started.elapsed().as_secs_f64();
                    if a.clock_pending {
                        a.clock_pending = false;
                        next_clock_request(&mut queue, a, agent, t_us, then, opts, end_us);
                    }
                }
                Event::ClockTimeout {
                    agent,
                    request,
                    then,
                } => {
                    let a = &mut agents[agent];
                    if a.clock_pending && a.clock_requests == request {
                        a.clock_pending = false;
                        next_clock_request(&mut queue, a, agent, t_us, then, opts, end_us);
                    }
                }
                Event::Perceive { agent } => {
                    let a = &mut agents[agent];
                    // The run covers [0, duration): no perception at its end.
                    if t_us >= end_us || t_us > a.last_present_us {
                        continue;
                    }
                    queue.push(t_us + period, Event::Perceive { agent });
                    let started = Instant::now();
                    ahead.fill_to(t_us, period)?;
                    wall.perception_wait += started.elapsed().as_secs_f64();
                    let actor = &scenario.actors[a.actor];
                    let perception = match ahead.perceptions[agent].pop_front() {
                        Some((t, p)) if t == t_us => p,
                        other => bail!(
                            "internal: {} expected its perception at {t_us} µs, the perception \
                             thread had {:?}",
                            actor.id,
                            other.map(|o| o.0)
                        ),
                    };
                    let Some(Perceived {
                        perception,
                        detections,
                    }) = perception
                    else {
                        continue; // in a gap of its trace
                    };
                    for (reported, truth) in detections {
                        fusion.detection(a.actor, reported, truth);
                    }
                    let started = Instant::now();
                    if let Err(e) = a.core.handle_perception(a.local(t_us), &perception) {
                        refused += 1;
                        tracing::warn!("{}: {e}", actor.id);
                    }
                    wall.agents += started.elapsed().as_secs_f64();
                    send_frame(
                        &mut agents[agent],
                        agent,
                        t_us,
                        &mut link,
                        &mut queue,
                        &mut wall,
                    );
                }
                Event::Flush { agent } => {
                    agents[agent].flush_pending = false;
                    send_frame(
                        &mut agents[agent],
                        agent,
                        t_us,
                        &mut link,
                        &mut queue,
                        &mut wall,
                    );
                }
                Event::FrameAtEdge { agent, bytes } => {
                    let key = vehicle_id(agents[agent].actor);
                    let started = Instant::now();
                    let outcome =
                        edge.handle_frame_probed(EPOCH_US + t_us, key, &bytes, &mut stages);
                    let took = started.elapsed().as_secs_f64();
                    wall.edge_frames += took;
                    processing_us.push(took * 1e6);
                    if let Err(e) = outcome {
                        tracing::debug!("edge rejected a frame of {key}: {e}");
                    }
                    route_alerts(
                        &mut edge,
                        &mut queue,
                        &mut link,
                        &agent_of_actor,
                        t_us,
                        &mut undeliverable,
                    );
                }
                Event::AlertAtAgent { agent, bytes } => {
                    let started = Instant::now();
                    let a = &mut agents[agent];
                    let received = a.core.handle_alert(a.local(t_us), &bytes);
                    wall.agents += started.elapsed().as_secs_f64();
                    match received {
                        Ok(r) => alerts.push(alert_event(scenario, &geo, EPOCH_US, a.actor, &r)),
                        Err(e) => tracing::warn!("an alert was refused: {e}"),
                    }
                }
            }
        }
        drop(ahead);
        worker
            .join()
            .map_err(|_| anyhow::anyhow!("the perception thread panicked"))
    })?;
    wall.perception = perception_busy;
    drop(progress);
    if refused > 0 {
        bail!("{refused} perception cycles were refused by the agents");
    }
    if link.lost > 0 {
        tracing::info!("the simulated link lost {} messages", link.lost);
    }
    if undeliverable > 0 {
        tracing::warn!("{undeliverable} alerts named a vehicle without an agent");
    }

    let mut measured = Measured::default();
    for a in &agents {
        let s = a.core.stats();
        measured.frames_sent += s.frames_sent;
        measured.object_bytes += s.object_bytes;
        measured.objects_sent += s.objects_sent;
    }
    let edge_stats = edge.stats();
    measured.frames_received = edge_stats.frames_received;
    measured.frames_rejected = edge_stats.frames_rejected_total();
    measured.rejected_by_reason = edge_stats
        .frames_rejected
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    measured.fusion = Some(fusion.report());
    if !edge_stats.frames_rejected.is_empty() {
        tracing::warn!("frames rejected: {:?}", edge_stats.frames_rejected);
    }
    // Wall-clock processing times stay out of report.json (see the module docs).
    measured.processing_p50_us = 0.0;
    measured.processing_p99_us = 0.0;

    alerts.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    let started = Instant::now();
    let truth = match &opts.true_conflicts {
        Some(known) => known.clone(),
        None => true_conflicts(scenario),
    };
    let score = score(truth, &alerts);
    wall.scoring += started.elapsed().as_secs_f64();
    let report = Report::new(scenario, opts.seed, "fast", &measured, &score, &alerts);

    let wall_s = wall_start.elapsed().as_secs_f64();
    let timing = Timing {
        scenario: scenario.name.clone(),
        virtual_s: scenario.duration_s,
        wall_s,
        speedup: scenario.duration_s / wall_s.max(1e-9),
        connected_vehicles: agents.len(),
        frames: processing_us.len() as u64,
        edge_processing_us: TimingQuantiles {
            p50: quantile(&processing_us, 0.5),
            p99: quantile(&processing_us, 0.99),
            max: processing_us.iter().copied().fold(0.0, f64::max),
            mean: if processing_us.is_empty() {
                0.0
            } else {
                processing_us.iter().sum::<f64>() / processing_us.len() as f64
            },
        },
        wall_breakdown_s: wall,
        edge_stage_us: stages.times().figures(),
    };
    if let Some(out) = &opts.out {
        report.write(out, &alerts).context("writing the report")?;
        let json = serde_json::to_string_pretty(&timing).context("serialising the timing")?;
        std::fs::write(out.join("timing.json"), json + "\n").context("writing timing.json")?;
    }
    Ok(FastResult {
        report,
        score,
        alerts,
        timing,
        snapshot_tracks,
    })
}

/// Where a perception puts each real road user it reports, against where that road user is,
/// in the scenario's frame. False detections are left out.
pub(crate) fn detections_vs_truth(
    scenario: &Scenario,
    geo: &Geo,
    t_s: f64,
    p: &vehicle_agent::Perception,
) -> Vec<(V2, V2)> {
    let reported = Geodetic::new(p.ego.lat_deg, p.ego.lon_deg, 0.0);
    let sender = EnuFrame::new(reported);
    let ego = geo.to_local(&reported);
    p.objects
        .iter()
        .filter_map(|o| {
            // Real road users have ids 1000 + their index; false detections are far above.
            let i = o.id.checked_sub(1000)? as usize;
            let truth = scenario.actors.get(i)?.state(t_s)?;
            let offset = V2::from(geo.frame.rotate_from(&sender, o.object.offset_m));
            Some((ego + offset, truth.pos))
        })
        .collect()
}

/// One fusion sample: the edge's confirmed tracks against the road users that some connected
/// vehicle is, or could see.
fn sample_fusion(fusion: &mut FusionMeter, truth: &[(usize, V2)], edge: &EdgeCore, t_us: i64) {
    let tracks: Vec<(u32, V2)> = edge
        .tracks()
        .confirmed()
        .map(|t| (t.id, t.mover_at(EPOCH_US + t_us).center))
        .collect();
    fusion.sample(truth, &tracks);
}

/// The road users a fusion sample at `t_s` scores: every connected one, and every other one
/// within sensor range of a connected one; (actor index, true position).
pub(crate) fn fusion_truth(
    scenario: &Scenario,
    sensor: &SensorModel,
    t_s: f64,
) -> Vec<(usize, V2)> {
    let present: Vec<(usize, V2, bool)> = scenario
        .actors
        .iter()
        .enumerate()
        .filter_map(|(i, a)| Some((i, a.state(t_s)?.pos, a.connected)))
        .collect();
    let observers: Vec<V2> = present.iter().filter(|p| p.2).map(|p| p.1).collect();
    present
        .iter()
        .filter(|(_, pos, connected)| {
            *connected || observers.iter().any(|o| (o - pos).norm() <= sensor.range_m)
        })
        .map(|(i, pos, _)| (*i, *pos))
        .collect()
}

/// How long an agent waits for a clock reply before it carries on, as the live agent does.
const CLOCK_TIMEOUT_US: i64 = 1_000_000;

/// The agent's next clock request: the rest of the burst at once, then one a period.
fn next_clock_request(
    queue: &mut Queue,
    a: &SimAgent,
    agent: usize,
    t_us: i64,
    then: u32,
    opts: &FastOptions,
    end_us: i64,
) {
    if then > 0 {
        queue.push(
            t_us,
            Event::ClockRequest {
                agent,
                then: then - 1,
            },
        );
    } else {
        let next = t_us + opts.clock_sync_period_us;
        if next <= end_us.min(a.last_present_us) {
            queue.push(next, Event::ClockRequest { agent, then: 0 });
        }
    }
}

/// Sends the edge's alerts to their targets' agents over the link, from `now_us`.
fn route_alerts(
    edge: &mut EdgeCore,
    queue: &mut Queue,
    link: &mut Link,
    agent_of_actor: &[Option<usize>],
    now_us: i64,
    undeliverable: &mut u64,
) {
    while let Some(alert) = edge.poll_alert() {
        let actor = (alert.target.0 as usize).wrapping_sub(1);
        match (agent_of_actor.get(actor).copied().flatten(), alert.encode()) {
            (Some(agent), Ok(bytes)) => {
                link.send(queue, now_us, Event::AlertAtAgent { agent, bytes })
            }
            _ => *undeliverable += 1,
        }
    }
}

/// Sends the agent's pending frame if the rate limit and the clock allow, else tries again
/// when they may.
fn send_frame(
    a: &mut SimAgent,
    agent: usize,
    t_us: i64,
    link: &mut Link,
    queue: &mut Queue,
    wall: &mut WallBreakdown,
) {
    let started = Instant::now();
    let local = a.local(t_us);
    let frame = a.core.poll_frame(local);
    let next = a.core.next_frame_at();
    wall.agents += started.elapsed().as_secs_f64();
    if let Some(bytes) = frame {
        link.send(queue, t_us, Event::FrameAtEdge { agent, bytes });
        return;
    }
    if a.flush_pending {
        return;
    }
    if let Some(at_local) = next {
        // Wait for the rate limit, or 10 ms for the clock offset (as the live agent does).
        let wait = if at_local > local {
            at_local - local
        } else {
            10_000
        };
        a.flush_pending = true;
        queue.push(t_us + wait, Event::Flush { agent });
    }
}

#[cfg(test)]
mod tests;
