//! Fusion quality against ground truth: several noisy observers, a seeded generator, the core
//! driven in virtual time. Figures are printed (`cargo test -p edge-node --test edge --
//! --nocapture`) and recorded in docs/benchmarks.md.

use edge_node::core::{EdgeConfig, EdgeCore};
use edge_node::quality::FusionMeter;
use edge_node::rng::Rng;
use nalgebra::{Vector2, Vector3};
use protocol::{
    EgoSi, EgoState, EnuFrame, FeatureFrame, Geodetic, Message, ObjectClass, ObjectSi,
    PerceivedObject, VehicleId,
};

type V2 = Vector2<f64>;
const T0: i64 = 1_800_000_000_000_000;

/// A road user moving on a circle arc (turn rate 0 = straight line).
#[derive(Clone, Copy)]
struct Mover {
    p0: V2,
    speed: f64,
    heading0: f64,
    turn: f64,
    class: ObjectClass,
}

impl Mover {
    fn at(&self, t: f64) -> (V2, V2, f64) {
        let h = self.heading0 + self.turn * t;
        let pos = if self.turn.abs() < 1e-9 {
            self.p0 + V2::new(h.cos(), h.sin()) * self.speed * t
        } else {
            self.p0
                + V2::new(
                    (h.sin() - self.heading0.sin()) / self.turn,
                    (self.heading0.cos() - h.cos()) / self.turn,
                ) * self.speed
        };
        (pos, V2::new(h.cos(), h.sin()) * self.speed, h)
    }
}

struct Quality {
    fused_rmse_m: f64,
    best_single_rmse_m: f64,
    duplicate_ratio: f64,
    id_switches_per_object_min: f64,
    object_seconds: f64,
}

/// `n_observers` connected vehicles with different noise levels and `n_others` unconnected
/// road users in a 200 m square, for `seconds`.
fn run(seed: u64, n_observers: usize, n_others: usize, seconds: f64) -> Quality {
    let mut rng = Rng::new(seed);
    let origin = Geodetic::new(48.137154, 11.576124, 0.0);
    let enu = EnuFrame::new(origin);
    let mut core = EdgeCore::new(EdgeConfig::new("quality", origin));
    let mut movers = Vec::new();
    for i in 0..n_observers + n_others {
        let vehicle = i < n_observers || rng.uniform() < 0.5;
        movers.push(Mover {
            p0: V2::new(rng.uniform() * 160.0 - 80.0, rng.uniform() * 160.0 - 80.0),
            speed: if vehicle {
                4.0 + 8.0 * rng.uniform()
            } else {
                1.0 + rng.uniform()
            },
            heading0: rng.uniform() * std::f64::consts::TAU,
            turn: if rng.uniform() < 0.3 {
                (rng.uniform() - 0.5) * 0.2
            } else {
                0.0
            },
            class: if vehicle {
                ObjectClass::Car
            } else {
                ObjectClass::Pedestrian
            },
        });
    }
    let sigmas: Vec<f64> = (0..n_observers).map(|k| 0.3 + 0.15 * k as f64).collect();
    let clock_err_us: Vec<i64> = (0..n_observers)
        .map(|_| ((rng.uniform() - 0.5) * 4_000.0) as i64)
        .collect();
    let range = 80.0;

    // Tracks and each observer's own detections against the truth (the same meter the
    // simulator's report uses).
    let mut meter = FusionMeter::new(0.1);
    let steps = (seconds * 10.0) as usize;
    for step in 0..steps {
        for k in 0..n_observers {
            let t_true = step as f64 * 0.1 + k as f64 * 0.1 / n_observers as f64;
            let capture = T0 + (t_true * 1e6) as i64;
            let (me, vel, heading) = movers[k].at(t_true);
            let gnss = V2::new(rng.normal(), rng.normal()) * 0.2;
            let g = enu.to_geodetic(&Vector3::new(me.x + gnss.x, me.y + gnss.y, 0.0));
            let mut objects = Vec::new();
            for (j, m) in movers.iter().enumerate() {
                let (p, v, h) = m.at(t_true);
                if j == k || (p - me).norm() > range {
                    continue;
                }
                let noise = V2::new(rng.normal(), rng.normal()) * sigmas[k];
                meter.detection(k, p + noise + gnss, p);
                // Measured relative to where the vehicle really is, reported relative to where
                // its GNSS says it is: every object it reports shares the GNSS error.
                let off = p + noise - me;
                let (l, w) = m.class.default_size_dm();
                objects.push(
                    PerceivedObject::from_si(
                        j as u16,
                        &ObjectSi {
                            class: m.class,
                            offset_m: [off.x, off.y],
                            velocity_mps: [v.x + 0.2 * rng.normal(), v.y + 0.2 * rng.normal()],
                            yaw_rad: h,
                            length_m: l as f64 / 10.0,
                            width_m: w as f64 / 10.0,
                            sigma_m: sigmas[k],
                            confidence: 0.9,
                        },
                    )
                    .unwrap(),
                );
            }
            let frame = FeatureFrame {
                vehicle: VehicleId(k as u32 + 1),
                seq: step as u32,
                // The vehicle's clock is off by a little; it says so.
                capture_us: capture + clock_err_us[k],
                clock_uncertainty_us: 2_500,
                ego: EgoState::from_si(&EgoSi {
                    lat_deg: g.lat_deg,
                    lon_deg: g.lon_deg,
                    speed_mps: vel.norm(),
                    yaw_rad: heading,
                    yaw_rate_radps: movers[k].turn,
                    accel_mps2: 0.0,
                    length_m: 4.5,
                    width_m: 1.8,
                    position_sigma_m: 0.2,
                })
                .unwrap(),
                objects,
            };
            core.handle_frame(
                capture + 8_000,
                VehicleId(k as u32 + 1),
                &frame.encode().unwrap(),
            )
            .expect("accepted");
            while core.poll_alert().is_some() {}
        }
        let t_eval = (step as f64 + 1.0) * 0.1;
        let now = T0 + (t_eval * 1e6) as i64;
        core.handle_tick(now);
        if step < 10 {
            continue; // let tracks confirm
        }
        let tracks: Vec<(u32, V2)> = core
            .tracks()
            .confirmed()
            .map(|t| (t.id, t.mover_at(now).center))
            .collect();
        let truth: Vec<(usize, V2)> = movers
            .iter()
            .enumerate()
            .map(|(j, m)| (j, m.at(t_eval).0))
            .filter(|(j, p)| {
                *j < n_observers
                    || (0..n_observers).any(|k| (movers[k].at(t_eval).0 - p).norm() <= range)
            })
            .collect();
        meter.sample(&truth, &tracks);
    }
    let r = meter.report();
    Quality {
        fused_rmse_m: r.position_rmse_m,
        best_single_rmse_m: r.best_single_observer_rmse_m,
        duplicate_ratio: r.duplicate_track_ratio,
        id_switches_per_object_min: r.id_switches_per_object_min,
        object_seconds: r.object_seconds,
    }
}

#[test]
fn fused_tracks_beat_the_best_single_observer_without_duplicates() {
    for seed in [1, 2, 3, 4, 5] {
        let q = run(seed, 6, 24, 30.0);
        println!(
            "seed {seed}: fused RMSE {:.3} m, best single observer {:.3} m, duplicates {:.3} %, \
             {:.2} id switches per object-minute over {:.0} object-seconds",
            q.fused_rmse_m,
            q.best_single_rmse_m,
            q.duplicate_ratio * 100.0,
            q.id_switches_per_object_min,
            q.object_seconds
        );
        assert!(q.fused_rmse_m < q.best_single_rmse_m, "seed {seed}");
        assert!(
            q.duplicate_ratio < 0.01,
            "seed {seed}: {}",
            q.duplicate_ratio
        );
        assert!(q.id_switches_per_object_min < 1.0, "seed {seed}");
    }
}

#[test]
fn the_same_inputs_give_the_same_tracks() {
    let a = run(9, 4, 10, 5.0);
    let b = run(9, 4, 10, 5.0);
    assert_eq!(a.fused_rmse_m.to_bits(), b.fused_rmse_m.to_bits());
    assert_eq!(
        a.id_switches_per_object_min.to_bits(),
        b.id_switches_per_object_min.to_bits()
    );
}
