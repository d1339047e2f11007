use super::*;
use nalgebra::Vector3;
use protocol::{EgoSi, EgoState, ObjectClass, ObjectSi, PerceivedObject};
use std::collections::BTreeSet;

const T0: i64 = 1_800_000_000_000_000;

fn origin() -> Geodetic {
    Geodetic::new(48.137154, 11.576124, 0.0)
}

fn core() -> EdgeCore {
    EdgeCore::new(EdgeConfig::new("test", origin()))
}

/// A road user in the edge's ENU frame.
#[derive(Clone, Copy)]
struct Body {
    pos: [f64; 2],
    vel: [f64; 2],
}

impl Body {
    fn at(&self, t_s: f64) -> Body {
        Body {
            pos: [
                self.pos[0] + self.vel[0] * t_s,
                self.pos[1] + self.vel[1] * t_s,
            ],
            vel: self.vel,
        }
    }
    fn yaw(&self) -> f64 {
        self.vel[1].atan2(self.vel[0])
    }
}

/// Encodes the frame `vehicle` would send at `t_s` about itself (`me`) and `seen` objects.
fn frame(vehicle: u32, seq: u32, t_s: f64, me: Body, seen: &[(u16, ObjectClass, Body)]) -> Vec<u8> {
    let enu = EnuFrame::new(origin());
    let g = enu.to_geodetic(&Vector3::new(me.pos[0], me.pos[1], 0.0));
    let sender = EnuFrame::new(g.to_point().to_geodetic());
    let me_enu = enu.to_enu(&g.to_point().to_geodetic());
    let objects = seen
        .iter()
        .map(|(id, class, b)| {
            let off = [b.pos[0] - me_enu.x, b.pos[1] - me_enu.y];
            let off = sender.rotate_from(&enu, off);
            let (l, w) = class.default_size_dm();
            PerceivedObject::from_si(
                *id,
                &ObjectSi {
                    class: *class,
                    offset_m: off,
                    velocity_mps: b.vel,
                    yaw_rad: if b.vel == [0.0, 0.0] { 0.0 } else { b.yaw() },
                    length_m: l as f64 / 10.0,
                    width_m: w as f64 / 10.0,
                    sigma_m: 0.3,
                    confidence: 0.9,
                },
            )
            .unwrap()
        })
        .collect();
    FeatureFrame {
        vehicle: VehicleId(vehicle),
        seq,
        capture_us: T0 + (t_s * 1e6) as i64,
        clock_uncertainty_us: 500,
        ego: EgoState::from_si(&EgoSi {
            lat_deg: g.lat_deg,
            lon_deg: g.lon_deg,
            speed_mps: me.vel[0].hypot(me.vel[1]),
            yaw_rad: me.yaw(),
            yaw_rate_radps: 0.0,
            accel_mps2: 0.0,
            length_m: 4.5,
            width_m: 1.8,
            position_sigma_m: 0.3,
        })
        .unwrap(),
        objects,
    }
    .encode()
    .unwrap()
}

fn now(t_s: f64) -> i64 {
    T0 + (t_s * 1e6) as i64 + 2_000
}

fn drain(core: &mut EdgeCore) -> Vec<Alert> {
    std::iter::from_fn(|| core.poll_alert()).collect()
}

/// Vehicles 1 and 2 drive at 10 m/s towards a crossing 40 m ahead of each; 3 and 4 drive
/// side by side on parallel lanes. Frames at 10 Hz for `seconds`. Returns all alerts.
fn run_crossing_and_parallel(seconds: f64) -> (EdgeCore, Vec<(f64, Alert)>) {
    let bodies = [
        (
            1,
            Body {
                pos: [-40.0, 0.0],
                vel: [10.0, 0.0],
            },
        ),
        (
            2,
            Body {
                pos: [0.0, -40.0],
                vel: [0.0, 10.0],
            },
        ),
        (
            3,
            Body {
                pos: [-60.0, 100.0],
                vel: [12.0, 0.0],
            },
        ),
        (
            4,
            Body {
                pos: [-60.0, 103.5],
                vel: [12.0, 0.0],
            },
        ),
    ];
    let mut core = core();
    let mut alerts = Vec::new();
    let steps = (seconds * 10.0) as u32;
    for step in 0..steps {
        let t = step as f64 / 10.0;
        for (i, (id, b)) in bodies.iter().enumerate() {
            let t = t + i as f64 * 0.02;
            let bytes = frame(*id, step, t, b.at(t), &[]);
            core.handle_frame(now(t), VehicleId(*id), &bytes).unwrap();
            alerts.extend(drain(&mut core).into_iter().map(|a| (t, a)));
        }
        core.handle_tick(now(t + 0.09));
        alerts.extend(drain(&mut core).into_iter().map(|a| (t, a)));
    }
    (core, alerts)
}

#[test]
fn crossing_vehicles_are_both_warned_before_the_conflict_and_parallel_ones_are_not() {
    let (core, alerts) = run_crossing_and_parallel(3.0);
    let raises: Vec<&(f64, Alert)> = alerts
        .iter()
        .filter(|(_, a)| a.kind == AlertKind::Raise)
        .collect();
    let mut targets: Vec<u32> = raises.iter().map(|(_, a)| a.target.0).collect();
    targets.sort();
    assert_eq!(targets, vec![1, 2], "{alerts:#?}");
    for (t, a) in &raises {
        // The footprints would touch at about 3.7 s; warned well before.
        assert!(*t < 1.5, "raised at {t}");
        assert!(a.ttc_ms <= 3000);
        let other = a.other.vehicle.unwrap().0;
        assert_eq!(other, 3 - a.target.0);
        assert_eq!(a.alert_id, raises[0].1.alert_id);
    }
    assert_eq!(core.tracks().len(), 4);
    assert_eq!(core.stats().frames_rejected_total(), 0);
}

#[test]
fn alerts_come_out_of_the_frame_that_changes_the_picture() {
    let mut core = core();
    let a = Body {
        pos: [-20.0, 0.0],
        vel: [10.0, 0.0],
    };
    let b = Body {
        pos: [0.0, -20.0],
        vel: [0.0, 10.0],
    };
    core.handle_frame(now(0.0), VehicleId(1), &frame(1, 0, 0.0, a, &[]))
        .unwrap();
    assert!(drain(&mut core).is_empty());
    let out = core
        .handle_frame(now(0.01), VehicleId(2), &frame(2, 0, 0.01, b.at(0.01), &[]))
        .unwrap();
    assert_eq!(out.alerts_queued, 2);
    let alerts = drain(&mut core);
    assert!(alerts.iter().all(|a| a.kind == AlertKind::Raise
        && a.trigger_capture_us == T0 + 10_000
        && a.severity >= Severity::Medium
        && a.probability_pct > 50));
}

#[test]
fn a_vehicle_seen_by_another_is_one_track_and_an_unconnected_pedestrian_is_warned_about() {
    let mut core = core();
    let car1 = Body {
        pos: [-30.0, -1.8],
        vel: [10.0, 0.0],
    };
    let car2 = Body {
        pos: [10.0, 1.8],
        vel: [-8.0, 0.0],
    };
    // A pedestrian stepping onto car 1's lane, 2.5 s ahead of it; only car 2 sees them.
    let ped = Body {
        pos: [-5.0, -5.0],
        vel: [0.0, 1.4],
    };
    let mut alerts = Vec::new();
    for step in 0..5u32 {
        let t = step as f64 * 0.1;
        let f1 = frame(1, step, t, car1.at(t), &[(7, ObjectClass::Car, car2.at(t))]);
        let f2 = frame(
            2,
            step,
            t + 0.03,
            car2.at(t + 0.03),
            &[
                (3, ObjectClass::Car, car1.at(t + 0.03)),
                (4, ObjectClass::Pedestrian, ped.at(t + 0.03)),
            ],
        );
        core.handle_frame(now(t), VehicleId(1), &f1).unwrap();
        core.handle_frame(now(t + 0.03), VehicleId(2), &f2).unwrap();
        alerts.extend(drain(&mut core));
    }
    assert_eq!(
        core.tracks().len(),
        3,
        "{:#?}",
        core.tracks().iter().collect::<Vec<_>>()
    );
    let ped_alert = alerts
        .iter()
        .find(|a| a.kind == AlertKind::Raise && a.other.class == ObjectClass::Pedestrian)
        .expect("car 1 is warned about the pedestrian it cannot see");
    assert_eq!(ped_alert.target, VehicleId(1));
    assert_eq!(ped_alert.other.vehicle, None);
}

#[test]
fn a_resolved_conflict_is_cleared_after_the_hold_time() {
    let mut core = core();
    let a = Body {
        pos: [-20.0, 0.0],
        vel: [10.0, 0.0],
    };
    let b = Body {
        pos: [0.0, -20.0],
        vel: [0.0, 10.0],
    };
    let mut kinds = Vec::new();
    for step in 0..20u32 {
        let t = step as f64 * 0.1;
        // Vehicle 2 stops dead at 0.4 s, 16 m short of the crossing.
        let b_now = if t < 0.4 {
            b.at(t)
        } else {
            Body {
                pos: b.at(0.4).pos,
                vel: [0.0, 0.0],
            }
        };
        let a_now = if t < 0.4 {
            a.at(t)
        } else {
            Body {
                pos: a.at(t).pos,
                vel: [10.0, 0.0],
            }
        };
        core.handle_frame(now(t), VehicleId(1), &frame(1, step, t, a_now, &[]))
            .unwrap();
        core.handle_frame(
            now(t + 0.01),
            VehicleId(2),
            &frame(2, step, t + 0.01, b_now, &[]),
        )
        .unwrap();
        core.handle_tick(now(t + 0.05));
        kinds.extend(
            drain(&mut core)
                .into_iter()
                .filter(|x| x.target == VehicleId(1))
                .map(|x| (step, x.kind)),
        );
    }
    assert_eq!(kinds.first().map(|k| k.1), Some(AlertKind::Raise));
    let clear = kinds
        .iter()
        .find(|k| k.1 == AlertKind::Clear)
        .expect("cleared");
    // Out of conflict from step 4; the clear follows the 500 ms hold.
    assert!((8..=10).contains(&clear.0), "{kinds:?}");
    assert_eq!(kinds.last().unwrap().1, AlertKind::Clear);
}

#[test]
fn bad_duplicate_and_out_of_order_frames_are_counted_and_lose_nothing() {
    let mut core = core();
    let a = Body {
        pos: [0.0, 0.0],
        vel: [5.0, 0.0],
    };
    let good = frame(
        1,
        10,
        0.0,
        a,
        &[(
            1,
            ObjectClass::Pedestrian,
            Body {
                pos: [5.0, 5.0],
                vel: [0.0, 0.0],
            },
        )],
    );
    core.handle_frame(now(0.0), VehicleId(1), &good).unwrap();
    let cases: Vec<(Vec<u8>, VehicleId, &str)> = vec![
        (good.clone(), VehicleId(1), "duplicate"),
        (frame(1, 9, -0.1, a, &[]), VehicleId(1), "out_of_order"),
        (frame(1, 11, 0.1, a, &[]), VehicleId(2), "key_mismatch"),
        (
            vec![1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            VehicleId(1),
            "bad_varint",
        ),
        (vec![], VehicleId(1), "empty"),
        (good[..good.len() - 2].to_vec(), VehicleId(1), "truncated"),
        (frame(1, 12, -0.5, a, &[]), VehicleId(1), "too_old"),
    ];
    for (bytes, key, reason) in &cases {
        let err = core.handle_frame(now(0.0), *key, bytes).unwrap_err();
        assert_eq!(err.reason(), *reason);
    }
    let s = core.stats();
    assert_eq!(s.frames_received, 1 + cases.len() as u64);
    assert_eq!(s.frames_accepted, 1);
    assert_eq!(s.frames_rejected_total(), cases.len() as u64);
    assert_eq!(s.frames_rejected["duplicate"], 1);
    assert_eq!(
        core.tracks().len(),
        2,
        "the accepted frame's tracks are still there"
    );
}

#[test]
fn ticks_expire_silent_tracks_and_publish_the_map_at_10_hz() {
    let mut core = core();
    let a = Body {
        pos: [0.0, 0.0],
        vel: [5.0, 0.0],
    };
    core.handle_frame(now(0.0), VehicleId(1), &frame(1, 0, 0.0, a, &[]))
        .unwrap();
    let mut maps = 0;
    for ms in (0..1500).step_by(20) {
        core.handle_tick(now(ms as f64 / 1000.0));
        if let Some(map) = core.poll_map() {
            maps += 1;
            if ms == 500 {
                assert_eq!(map.tracks.len(), 1);
                // Predicted to the map time: about 2.5 m east.
                assert!((map.tracks[0].offset_cm[0] - 250).abs() < 10, "{map:?}");
            }
        }
    }
    assert_eq!(maps, 15);
    assert_eq!(core.tracks().len(), 0);
    assert_eq!(core.stats().tracks_expired, 1);
}

#[test]
fn observations_outside_the_area_are_dropped_and_counted() {
    let mut core = core();
    let far = Body {
        pos: [520.0, 0.0],
        vel: [0.0, 0.0],
    };
    let near = Body {
        pos: [480.0, 0.0],
        vel: [0.0, 0.0],
    };
    core.handle_frame(
        now(0.0),
        VehicleId(1),
        &frame(1, 0, 0.0, near, &[(1, ObjectClass::Car, far)]),
    )
    .unwrap();
    assert_eq!(core.stats().observations_out_of_area, 1);
    assert_eq!(core.tracks().len(), 1);
}

#[test]
fn same_inputs_give_the_same_alerts() {
    let (_, a) = run_crossing_and_parallel(2.0);
    let (_, b) = run_crossing_and_parallel(2.0);
    assert!(!a.is_empty());
    assert_eq!(a, b);
}

/// What a probe is told: `Some(stage)` for `enter`, `None` for `finish`.
#[derive(Default)]
struct Recorder {
    events: Vec<Option<Stage>>,
}

impl Recorder {
    fn take(&mut self) -> Vec<Option<Stage>> {
        std::mem::take(&mut self.events)
    }
}

impl StageProbe for Recorder {
    fn enter(&mut self, stage: Stage) {
        self.events.push(Some(stage));
    }
    fn finish(&mut self) {
        self.events.push(None);
    }
}

#[test]
fn stages_are_listed_in_pipeline_order_with_distinct_names() {
    let names: BTreeSet<&str> = Stage::ALL.iter().map(|s| s.name()).collect();
    assert_eq!(names.len(), Stage::ALL.len());
    for (i, s) in Stage::ALL.iter().enumerate() {
        assert_eq!(s.index(), i);
    }
}

#[test]
fn the_probe_sees_every_stage_of_a_frame_and_of_a_tick_in_order() {
    let mut core = core();
    let mut probe = Recorder::default();
    let a = Body {
        pos: [0.0, 0.0],
        vel: [5.0, 0.0],
    };
    let walker = Body {
        pos: [5.0, 5.0],
        vel: [0.0, 1.0],
    };
    let good = frame(1, 0, 0.0, a, &[(1, ObjectClass::Pedestrian, walker)]);
    core.handle_frame_probed(now(0.0), VehicleId(1), &good, &mut probe)
        .unwrap();
    let frame_stages: Vec<Option<Stage>> = Stage::ALL[..7]
        .iter()
        .copied()
        .map(Some)
        .chain([None])
        .collect();
    assert_eq!(probe.take(), frame_stages);

    // A rejected frame stops at the stage that refused it, and the pass still finishes.
    core.handle_frame_probed(now(0.0), VehicleId(1), &good, &mut probe)
        .unwrap_err();
    assert_eq!(
        probe.take(),
        [Some(Stage::Decode), Some(Stage::Validate), None]
    );
    core.handle_frame_probed(now(0.0), VehicleId(1), &[], &mut probe)
        .unwrap_err();
    assert_eq!(probe.take(), [Some(Stage::Decode), None]);

    core.handle_tick_probed(now(0.1), &mut probe);
    assert_eq!(
        probe.take(),
        [
            Some(Stage::TickExpire),
            Some(Stage::TickMerge),
            Some(Stage::TickMap),
            None
        ]
    );
}

/// Everything the core puts out for the crossing and parallel cars, with an unconnected
/// pedestrian that two of them see, for 5 s: alerts, maps and counters.
fn crossing_outputs(probe: &mut dyn StageProbe) -> (Vec<Alert>, Vec<SituationMap>, EdgeStats) {
    let cars = [
        (1, [-40.0, 0.0], [10.0, 0.0]),
        (2, [0.0, -40.0], [0.0, 10.0]),
        (3, [-60.0, 100.0], [12.0, 0.0]),
        (4, [-60.0, 103.5], [12.0, 0.0]),
    ]
    .map(|(id, pos, vel)| (id, Body { pos, vel }));
    let walker = Body {
        pos: [-30.0, 95.0],
        vel: [1.0, 0.0],
    };
    let mut core = core();
    let (mut alerts, mut maps) = (Vec::new(), Vec::new());
    for step in 0..50u32 {
        let t = step as f64 / 10.0;
        for (i, (id, b)) in cars.iter().enumerate() {
            let t = t + i as f64 * 0.02;
            let seen: Vec<(u16, ObjectClass, Body)> = match id {
                3 => vec![
                    (1, ObjectClass::Car, cars[3].1.at(t)),
                    (2, ObjectClass::Pedestrian, walker.at(t)),
                ],
                4 => vec![(7, ObjectClass::Pedestrian, walker.at(t))],
                _ => vec![],
            };
            let bytes = frame(*id, step, t, b.at(t), &seen);
            core.handle_frame_probed(now(t), VehicleId(*id), &bytes, probe)
                .unwrap();
            alerts.extend(drain(&mut core));
        }
        core.handle_tick_probed(now(t + 0.09), probe);
        alerts.extend(drain(&mut core));
        maps.extend(core.poll_map());
    }
    (alerts, maps, core.stats().clone())
}

#[test]
fn the_outputs_do_not_depend_on_the_probe() {
    let plain = crossing_outputs(&mut NoProbe);
    let mut probe = Recorder::default();
    let probed = crossing_outputs(&mut probe);
    assert!(plain.0.iter().any(|a| a.kind == AlertKind::Raise));
    assert_eq!(plain.1.len(), 50);
    assert_eq!(plain, probed);
    // 200 frames through seven stages and 50 ticks through three, each pass finished.
    let finishes = probe.events.iter().filter(|e| e.is_none()).count();
    assert_eq!(finishes, 250);
    assert_eq!(probe.events.len(), 200 * 8 + 50 * 4);
}

#[test]
fn a_timer_that_fires_a_little_early_or_late_still_gets_a_map_every_tick() {
    let mut core = core();
    // Ticks 97 to 103 ms apart, as a real timer's; 100 ticks make 100 maps.
    let mut t_us = T0;
    let mut maps = 0;
    for k in 0..100 {
        core.handle_tick(t_us);
        maps += core.poll_map().is_some() as u32;
        t_us += 100_000 + [-3_000, 2_000, -1_000, 3_000][k % 4];
    }
    assert_eq!(maps, 100);
    // Ticks twice as often still give 10 Hz.
    let mut core = self::core();
    let maps = (0..100)
        .filter(|k| {
            core.handle_tick(T0 + k * 50_000);
            core.poll_map().is_some()
        })
        .count();
    assert_eq!(maps, 50);
}
