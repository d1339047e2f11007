use super::*;
use crate::world::{Actor, Motion, Trace, TraceSample};
use edge_node::geometry::V2;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("v2e-fast-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn the_demo_is_warned_in_time_without_false_alarms() {
    let r = run_fast(&Scenario::demo(), &FastOptions::new(1)).expect("the run completes");
    let c = &r.score.conflicts;
    assert_eq!(c.len(), 1, "{c:?}");
    let lead = c[0].moment_s - c[0].warned_at_s.expect("v1-v2 is warned");
    assert!(lead >= 1.0, "lead time {lead} s");
    assert_eq!(r.report.false_alarms, 0, "{:#?}", r.alerts);
    assert_eq!(r.report.frames_rejected, 0);
    assert_eq!(r.report.mode, "fast");
    // Eight cars at 10 Hz for 14 s (the first frame at each phase, the last before 14 s).
    assert_eq!(r.report.frames_sent, 8 * 140, "{:?}", r.report);
    assert_eq!(r.report.frames_received, r.report.frames_sent);
    // Capture to receipt is two link latencies; the clock sync leaves no error on a symmetric
    // link. (A clear comes from the edge's tick, not from a frame: one latency.)
    let raised = r.alerts.iter().filter(|a| a.kind != "clear");
    assert!(
        raised.clone().all(|a| (a.latency_ms - 4.0).abs() < 0.01),
        "{:#?}",
        r.alerts
    );
    assert!(raised.count() >= 2);
    assert_eq!(r.report.edge_processing_us.p99, 0.0, "wall clock stays out");
    assert!(r.timing.edge_processing_us.p50 > 0.0);
    assert_eq!(r.timing.frames, 8 * 140);
}

#[test]
fn the_same_seed_gives_byte_identical_outputs() {
    let scenario = Scenario::demo();
    let (a, b) = (scratch("det-a"), scratch("det-b"));
    for dir in [&a, &b] {
        let mut opts = FastOptions::new(42);
        opts.out = Some(dir.clone());
        run_fast(&scenario, &opts).expect("the run completes");
    }
    for file in ["report.json", "alerts.ndjson"] {
        let x = std::fs::read(a.join(file)).expect("written");
        let y = std::fs::read(b.join(file)).expect("written");
        assert!(!x.is_empty(), "{file} is empty");
        assert!(x == y, "{file} differs between two runs with the same seed");
    }
    assert!(a.join("timing.json").exists());
    let _ = std::fs::remove_dir_all(a);
    let _ = std::fs::remove_dir_all(b);
}

#[test]
fn the_link_latency_is_a_parameter() {
    let mut opts = FastOptions::new(1);
    opts.link.one_way_latency_us = 10_000;
    let r = run_fast(&Scenario::demo(), &opts).expect("the run completes");
    assert!(!r.alerts.is_empty());
    assert!(
        r.alerts
            .iter()
            .filter(|a| a.kind != "clear")
            .all(|a| (a.latency_ms - 20.0).abs() < 0.01),
        "{:#?}",
        r.alerts
    );
}

/// A car on a straight trace at `speed` from `from` for `t0..t1` seconds, sampled every 0.1 s.
fn traced_car(id: &str, from: (f64, f64), heading: V2, speed: f64, t0: f64, t1: f64) -> Actor {
    let n = ((t1 - t0) / 0.1).round() as usize;
    let samples = (0..=n)
        .map(|k| {
            let t = t0 + k as f64 * 0.1;
            TraceSample {
                t_s: t,
                pos: V2::new(from.0, from.1) + heading * speed * (t - t0),
                yaw: heading.y.atan2(heading.x),
                speed_mps: speed,
                accel_mps2: 0.0,
            }
        })
        .collect();
    Actor {
        id: id.into(),
        class: protocol::ObjectClass::Car,
        length_m: 4.5,
        width_m: 1.8,
        connected: true,
        motion: Motion::Trace(Trace::new(samples, 1.0).expect("valid")),
    }
}

#[test]
fn traced_vehicles_join_late_and_leave_early() {
    // Two cars entering at 2 s and 3 s on crossing paths that meet at about 6 s, and a third
    // that leaves at 4 s.
    let scenario = Scenario {
        name: "late".into(),
        origin: (48.137154, 11.576124),
        duration_s: 8.0,
        actors: vec![
            traced_car("east", (-44.0, -1.75), V2::new(1.0, 0.0), 11.0, 2.0, 8.0),
            traced_car("north", (1.75, -30.0), V2::new(0.0, 1.0), 10.0, 3.0, 8.0),
            traced_car("gone", (-20.0, 60.0), V2::new(1.0, 0.0), 10.0, 0.0, 4.0),
        ],
        roads: Vec::new(),
    };
    let r = run_fast(&scenario, &FastOptions::new(3)).expect("the run completes");
    assert_eq!(r.report.frames_rejected, 0);
    // Frames only while present: about 60 + 50 + 40 (give or take the phase).
    let sent = r.report.frames_sent;
    assert!((145..=153).contains(&sent), "{sent} frames");
    let c = &r.score.conflicts;
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!((c[0].a.as_str(), c[0].b.as_str()), ("east", "north"));
    let warned = c[0].warned_at_s.expect("warned");
    assert!(c[0].moment_s - warned >= 1.0, "{c:?}");
    assert!(warned >= 3.0, "no warning before north appears: {c:?}");
    assert_eq!(r.report.false_alarms, 0);
}

#[test]
fn the_neighbour_grid_never_misses_an_actor_in_range() {
    let scenario = Scenario::demo().copies(4, 50.0);
    let sensor = SensorModel::default();
    let period = 100_000;
    let max_speed = scenario
        .actors
        .iter()
        .map(|a| a.max_speed_mps())
        .fold(0.0, f64::max);
    let mut grid = Neighbours::new(sensor.range_m + max_speed * 0.1 + 1.0);
    let mut got = Vec::new();
    for t_us in (0..14_000_000).step_by(37_000) {
        let t = seconds(t_us);
        grid.refresh(&scenario, t_us / period, period);
        for (me, a) in scenario.actors.iter().enumerate() {
            let Some(p) = a.state(t) else { continue };
            grid.around(p.pos.x, p.pos.y, &mut got);
            for (j, b) in scenario.actors.iter().enumerate() {
                let Some(q) = b.state(t) else { continue };
                if j != me && (q.pos - p.pos).norm() <= sensor.range_m {
                    assert!(got.contains(&j), "t {t}: {} misses {}", a.id, b.id);
                }
            }
        }
    }
}

#[test]
fn stage_timings_go_to_timing_json_and_report_json_keeps_null() {
    let dir = scratch("stages");
    let mut opts = FastOptions::new(1);
    opts.out = Some(dir.clone());
    let r = run_fast(&Scenario::demo(), &opts).expect("the run completes");
    assert_eq!(r.report.edge_stage_us, None);
    let stages = &r.timing.edge_stage_us;
    let names: Vec<&str> = edge_node::core::Stage::ALL
        .iter()
        .map(|s| s.name())
        .collect();
    for name in &names {
        assert!(stages.contains_key(*name), "{name} missing: {stages:?}");
    }
    let share: f64 = stages.values().map(|f| f.share).sum();
    assert!((share - 1.0).abs() < 1e-9, "{stages:?}");
    assert!(stages["associate"].p50 > 0.0);
    let report = std::fs::read_to_string(dir.join("report.json")).expect("written");
    assert!(report.contains("\"edge_stage_us\": null"), "{report}");
    let timing = std::fs::read_to_string(dir.join("timing.json")).expect("written");
    assert!(timing.contains("\"tick_map\""), "{timing}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_snapshot_holds_the_tracks_of_the_first_tick_at_or_after_the_instant() {
    let scenario = Scenario::demo();
    let mut opts = FastOptions::new(1);
    opts.snapshot_at_s = Some(4.95);
    let r = run_fast(&scenario, &opts).expect("the run completes");
    let boxes = r.snapshot_tracks.expect("a snapshot");
    // Ticks fall on whole tenths: the snapshot is that of 5.0 s. Every connected car has a box
    // where it is, of its size and heading.
    for a in scenario.actors.iter().filter(|a| a.connected) {
        let Some(s) = a.state(5.0) else { continue };
        let b = boxes
            .iter()
            .find(|b| (b.center - s.pos).norm() < 1.0)
            .unwrap_or_else(|| panic!("no box at {} ({:?}): {boxes:#?}", a.id, s.pos));
        assert!((b.length - a.length_m).abs() < 0.11 && (b.width - a.width_m).abs() < 0.11);
        if s.speed > 1.0 {
            let turn = (b.yaw - s.yaw).rem_euclid(std::f64::consts::TAU);
            assert!(
                turn.min(std::f64::consts::TAU - turn) < 0.05,
                "{}: {b:?}",
                a.id
            );
        }
    }
    opts.snapshot_at_s = None;
    assert!(run_fast(&scenario, &opts)
        .unwrap()
        .snapshot_tracks
        .is_none());
}
