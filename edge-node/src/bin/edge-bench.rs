//! Drives the edge core with frames from N vehicles x 10 Hz x up to 30 objects in a dense
//! synthetic area and prints, last, one JSON line with per-frame processing figures.
//!
//! Frames are generated (encoded) outside the timed section; only `handle_frame` and draining
//! the alerts it produced are timed, plus the 10 Hz tick, whose cost is spread over the frames
//! of its period in `frames_per_s_per_core`.
//!
//! `frames_dropped` answers "would one core have kept up in real time?": the measured service
//! times are replayed through a single-server queue with the frames' real arrival times and
//! the edge driver's queue capacity; frames that would find the queue full are dropped.
//! `frames_rejected` counts frames the core refused (none, for this generator).
//!
//! `stage_us` breaks the core's time down by pipeline stage (`edge_node::core::Stage`), timed
//! by a `StageTimer` probe; `--no-stages` runs without the probe, to measure what it costs.
//!
//! `cargo run --release -p edge-node --bin edge-bench -- --vehicles 200 --seconds 20`

use clap::Parser;
use edge_node::core::{EdgeConfig, EdgeCore, NoProbe, Stage, StageProbe};
use edge_node::histogram::{Histogram, StageFigures, StageTimer};
use edge_node::rng::Rng;
use nalgebra::{Vector2, Vector3};
use protocol::{
    EgoSi, EgoState, EnuFrame, FeatureFrame, Geodetic, Message, ObjectClass, ObjectSi,
    PerceivedObject, VehicleId,
};
use rstar::{primitives::GeomWithData, RTree};
use std::time::Instant;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 200)]
    vehicles: usize,
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Objects each vehicle reports (the nearest ones within 80 m).
    #[arg(long, default_value_t = 30)]
    objects: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Capacity of the edge driver's frame queue (`EdgeNetConfig::queue_capacity`).
    #[arg(long, default_value_t = 100_000)]
    queue_capacity: usize,
    /// Run the core without the stage probe (no per-stage figures), to measure its cost.
    #[arg(long)]
    no_stages: bool,
}

#[derive(Clone, Copy)]
struct Actor {
    pos: Vector2<f64>,
    vel: Vector2<f64>,
    class: ObjectClass,
}

/// Vehicles on a grid of two-way roads every 25 m, pedestrians on the pavements; everything
/// wraps around the square so the density stays constant.
fn world(n_vehicles: usize, side: f64, rng: &mut Rng) -> Vec<Actor> {
    let n_roads = (side / 25.0).floor().max(1.0) as usize;
    let mut actors = Vec::new();
    for i in 0..n_vehicles * 2 {
        let vehicle = i < n_vehicles;
        let road = (rng.uniform() * n_roads as f64).floor() * 25.0 - side / 2.0 + 12.5;
        let along = rng.uniform() * side - side / 2.0;
        let dir = if rng.uniform() < 0.5 { 1.0 } else { -1.0 };
        let speed = if vehicle {
            5.0 + 10.0 * rng.uniform()
        } else {
            1.0 + 0.8 * rng.uniform()
        };
        let lane = if vehicle { 1.75 * dir } else { 7.0 * dir };
        let (pos, vel) = if rng.uniform() < 0.5 {
            (
                Vector2::new(along, road - lane),
                Vector2::new(dir * speed, 0.0),
            )
        } else {
            (
                Vector2::new(road + lane, along),
                Vector2::new(0.0, dir * speed),
            )
        };
        let class = if vehicle {
            ObjectClass::Car
        } else {
            ObjectClass::Pedestrian
        };
        actors.push(Actor { pos, vel, class });
    }
    actors
}

/// The last line the bench prints; fields in this order.
#[derive(serde::Serialize)]
struct Summary {
    vehicles: usize,
    frames: u64,
    frames_dropped: u64,
    frames_rejected: u64,
    /// How far behind real time the one core ended, ms (0 when it kept up).
    max_backlog_ms: f64,
    per_frame_us: Quantiles,
    frames_per_s_per_core: f64,
    peak_rss_mb: f64,
    /// Per stage: p50 and p99 per pass in µs and the share of the core's time; empty with
    /// `--no-stages`.
    stage_us: std::collections::BTreeMap<String, StageFigures>,
}

#[derive(serde::Serialize)]
struct Quantiles {
    p50: f64,
    p99: f64,
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let args = Args::parse();
    let mut rng = Rng::new(args.seed);
    let side = ((args.vehicles as f64).sqrt() * 25.0).clamp(100.0, 700.0);
    let mut actors = world(args.vehicles, side, &mut rng);
    let origin = Geodetic::new(48.137154, 11.576124, 0.0);
    let enu = EnuFrame::new(origin);
    let mut core = EdgeCore::new(EdgeConfig::new("bench", origin));
    let t0: i64 = 1_800_000_000_000_000;
    let steps = (args.seconds * 10.0).round() as usize;
    let n = args.vehicles;

    let mut per_frame = Histogram::default();
    let mut stages = StageTimer::default();
    let probe: &mut dyn StageProbe = if args.no_stages {
        &mut NoProbe
    } else {
        &mut stages
    };
    let (mut frames, mut rejected, mut alerts) = (0u64, 0u64, 0u64);
    let mut busy_us = 0.0;
    // The real-time replay: when the one core would be free, and when queued frames finish.
    let mut queue = std::collections::VecDeque::<f64>::new();
    let (mut core_free_at_us, mut dropped) = (0.0f64, 0u64);
    for step in 0..steps {
        // Move the world by one period and index it.
        for a in actors.iter_mut() {
            a.pos += a.vel * 0.1;
            for k in 0..2 {
                if a.pos[k] > side / 2.0 {
                    a.pos[k] -= side;
                } else if a.pos[k] < -side / 2.0 {
                    a.pos[k] += side;
                }
            }
        }
        let tree = RTree::bulk_load(
            actors
                .iter()
                .enumerate()
                .map(|(i, a)| GeomWithData::new([a.pos.x, a.pos.y], i))
                .collect(),
        );
        for v in 0..n {
            // Vehicles report in turn across the period, as they would on air.
            let capture = t0 + step as i64 * 100_000 + (v as i64 * 100_000) / n as i64;
            let me = actors[v];
            let g = enu.to_geodetic(&Vector3::new(me.pos.x, me.pos.y, 0.0));
            let mut objects = Vec::with_capacity(args.objects);
            for near in tree.nearest_neighbor_iter(&[me.pos.x, me.pos.y]) {
                if objects.len() == args.objects {
                    break;
                }
                let o = actors[near.data];
                let d = o.pos - me.pos;
                if near.data == v {
                    continue;
                }
                if d.norm() > 80.0 {
                    break;
                }
                let sigma = 0.15 + 0.004 * d.norm();
                let (l, w) = o.class.default_size_dm();
                let po = PerceivedObject::from_si(
                    objects.len() as u16,
                    &ObjectSi {
                        class: o.class,
                        offset_m: [d.x + sigma * rng.normal(), d.y + sigma * rng.normal()],
                        velocity_mps: [o.vel.x, o.vel.y],
                        yaw_rad: o.vel.y.atan2(o.vel.x),
                        length_m: l as f64 / 10.0,
                        width_m: w as f64 / 10.0,
                        sigma_m: sigma,
                        confidence: 0.9,
                    },
                )
                .expect("in range");
                objects.push(po);
            }
            let frame = FeatureFrame {
                vehicle: VehicleId(v as u32 + 1),
                seq: step as u32,
                capture_us: capture,
                clock_uncertainty_us: 500,
                ego: EgoState::from_si(&EgoSi {
                    lat_deg: g.lat_deg,
                    lon_deg: g.lon_deg,
                    speed_mps: me.vel.norm(),
                    yaw_rad: me.vel.y.atan2(me.vel.x),
                    yaw_rate_radps: 0.0,
                    accel_mps2: 0.0,
                    length_m: 4.5,
                    width_m: 1.8,
                    position_sigma_m: 0.3,
                })
                .expect("in range"),
                objects,
            };
            let bytes = frame.encode().expect("encodes");
            let started = Instant::now();
            let result =
                core.handle_frame_probed(capture + 3_000, VehicleId(v as u32 + 1), &bytes, probe);
            while core.poll_alert().is_some() {
                alerts += 1;
            }
            let us = started.elapsed().as_secs_f64() * 1e6;
            busy_us += us;
            let arrival = (capture + 3_000 - t0) as f64;
            while queue.front().is_some_and(|done| *done <= arrival) {
                queue.pop_front();
            }
            if queue.len() >= args.queue_capacity {
                dropped += 1;
            } else {
                core_free_at_us = core_free_at_us.max(arrival) + us;
                queue.push_back(core_free_at_us);
            }
            per_frame.record(us.round() as u64);
            frames += 1;
            rejected += result.is_err() as u64;
        }
        let started = Instant::now();
        core.handle_tick_probed(t0 + (step as i64 + 1) * 100_000, probe);
        while core.poll_alert().is_some() {
            alerts += 1;
        }
        let _ = core.poll_map();
        let tick_us = started.elapsed().as_secs_f64() * 1e6;
        busy_us += tick_us;
        core_free_at_us += tick_us;
    }
    eprintln!(
        "area {side:.0} m square, {} tracks at the end, {alerts} alert messages, rejected by reason {:?}",
        core.tracks().len(),
        core.stats().frames_rejected
    );
    let stage_us = stages.times().figures();
    for stage in Stage::ALL {
        if let Some(f) = stage_us.get(stage.name()) {
            eprintln!(
                "  {:<17} p50 {:>8.2} us  p99 {:>8.2} us  {:>5.1} % of the core's time",
                stage.name(),
                f.p50,
                f.p99,
                f.share * 100.0
            );
        }
    }
    let summary = Summary {
        vehicles: n,
        frames,
        frames_dropped: dropped,
        frames_rejected: rejected,
        max_backlog_ms: ((core_free_at_us - (steps as f64 * 100_000.0)).max(0.0)) / 1000.0,
        per_frame_us: Quantiles {
            p50: per_frame.quantile(0.5),
            p99: per_frame.quantile(0.99),
        },
        frames_per_s_per_core: frames as f64 / (busy_us * 1e-6),
        peak_rss_mb: peak_rss_mb(),
        stage_us,
    };
    println!("{}", serde_json::to_string(&summary).expect("serialises"));
}
