use super::*;
use std::f64::consts::PI;

fn sample(t_s: f64, x: f64, y: f64, yaw: f64, speed_mps: f64) -> TraceSample {
    TraceSample {
        t_s,
        pos: V2::new(x, y),
        yaw,
        speed_mps,
        accel_mps2: 0.0,
    }
}

fn traced(samples: Vec<TraceSample>) -> Actor {
    Actor {
        id: "t".into(),
        class: ObjectClass::Car,
        length_m: 4.5,
        width_m: 1.8,
        connected: true,
        motion: Motion::Trace(Trace::new(samples, TRACE_MAX_GAP_S).expect("a valid trace")),
    }
}

#[test]
fn scripted_motion_is_unchanged_and_always_present() {
    let demo = Scenario::demo();
    let v1 = &demo.actors[0];
    let s = v1.state(0.0).expect("scripted actors are always present");
    assert_eq!(s.pos, V2::new(-80.0, -1.75));
    let s = v1.state(10.0).expect("present");
    assert!((s.pos - V2::new(40.0, -1.75)).norm() < 1e-9, "{s:?}");
    assert_eq!(s.speed, 12.0);
    // v2 brakes from 10 m/s at 5.3 s to a stop at 6.75 s.
    let v2 = demo.actors[1].state(6.0).expect("present");
    assert!((v2.accel - (-10.0 / 1.45)).abs() < 1e-9, "{v2:?}");
    assert!(v1.state(-5.0).is_some() && v1.state(1e6).is_some());
}

#[test]
fn a_trace_interpolates_position_and_takes_the_short_way_round() {
    // Heading from just under +pi to just over -pi: a small left turn across the cut.
    let a = traced(vec![
        sample(1.0, 0.0, 0.0, PI - 0.1, 10.0),
        sample(1.1, -1.0, 0.2, -PI + 0.1, 12.0),
    ]);
    let s = a.state(1.05).expect("present between samples");
    assert!((s.pos - V2::new(-0.5, 0.1)).norm() < 1e-12, "{s:?}");
    assert!(
        (s.yaw.abs() - PI).abs() < 1e-9,
        "yaw {} should be +-pi",
        s.yaw
    );
    assert!((s.speed - 11.0).abs() < 1e-12);
    assert!((s.vel.norm() - 11.0).abs() < 1e-12 && s.vel.x < 0.0);
    // Exactly on the samples.
    assert_eq!(a.state(1.0).map(|s| s.pos), Some(V2::new(0.0, 0.0)));
    assert_eq!(a.state(1.1).map(|s| s.pos), Some(V2::new(-1.0, 0.2)));
}

#[test]
fn a_trace_is_absent_outside_its_samples_and_in_long_gaps() {
    let a = traced(vec![
        sample(1.0, 0.0, 0.0, 0.0, 10.0),
        sample(1.1, 1.0, 0.0, 0.0, 10.0),
        sample(5.0, 40.0, 0.0, 0.0, 10.0),
    ]);
    assert!(a.state(0.99).is_none());
    assert!(a.state(1.0).is_some());
    assert!(a.state(1.1).is_some());
    assert!(a.state(3.0).is_none(), "a 3.9 s gap is not interpolated");
    assert!(a.state(5.0).is_some());
    assert!(a.state(5.01).is_none());
    assert!(a.mover(5.01).is_none());
    assert_eq!(a.span(), (1.0, 5.0));
    assert!((a.max_speed_mps() - 10.0).abs() < 1e-9);
}

#[test]
fn a_trace_refuses_unordered_or_empty_samples() {
    assert_eq!(Trace::new(vec![], 1.0), Err(TraceError::Empty));
    let unordered = vec![
        sample(1.0, 0.0, 0.0, 0.0, 1.0),
        sample(1.0, 0.0, 0.0, 0.0, 1.0),
    ];
    assert!(matches!(
        Trace::new(unordered, 1.0),
        Err(TraceError::NotIncreasing { index: 1, .. })
    ));
    let nan = vec![sample(1.0, f64::NAN, 0.0, 0.0, 1.0)];
    assert_eq!(
        Trace::new(nan, 1.0),
        Err(TraceError::NotFinite { index: 0 })
    );
}

#[test]
fn wrap_angle_lands_in_the_half_open_interval() {
    assert!((wrap_angle(3.0 * PI) - PI).abs() < 1e-12);
    assert!((wrap_angle(-PI) - PI).abs() < 1e-12);
    assert!((wrap_angle(-0.5) + 0.5).abs() < 1e-12);
    assert!((wrap_angle(2.0 * PI + 0.25) - 0.25).abs() < 1e-12);
}

#[test]
fn connected_share_picks_an_exact_seeded_subset_of_vehicles() {
    let demo = Scenario::demo(); // nine vehicles (one parked) and a pedestrian
    let half = demo.clone().with_connected_share(0.5, 7);
    assert_eq!(half.n_connected(), 5, "round(0.5 * 9)");
    assert!(!half.actors.iter().any(|a| a.id == "ped1" && a.connected));
    let again = demo.clone().with_connected_share(0.5, 7);
    assert_eq!(half, again, "the same seed picks the same vehicles");
    let other_seed = demo.clone().with_connected_share(0.5, 8);
    assert_eq!(other_seed.n_connected(), 5);
    assert_eq!(demo.clone().with_connected_share(1.0, 1).n_connected(), 9);
    assert_eq!(demo.with_connected_share(0.0, 1).n_connected(), 0);
}

#[test]
fn copies_are_far_apart_and_keep_their_ids_apart() {
    let demo = Scenario::demo();
    let many = demo.copies(4, 200.0);
    assert_eq!(many.actors.len(), 4 * demo.actors.len());
    assert_eq!(many.n_connected(), 4 * demo.n_connected());
    assert_eq!(many.actors[0].id, "v1");
    assert_eq!(many.actors[demo.actors.len()].id, "v1~1");
    // The same road user in two copies is at least the separation apart all the time.
    for t in [0.0, 5.0, 10.0, 14.0] {
        let a = many.actors[0].state(t).expect("present").pos;
        let b = many.actors[demo.actors.len()]
            .state(t)
            .expect("present")
            .pos;
        assert!((a - b).norm() >= 2.0 * demo.extent_m() + 200.0 - 1e-9);
    }
    assert!(demo.extent_m() > 100.0 && demo.extent_m() < 200.0);
}

#[test]
fn the_sample_lookup_agrees_with_a_binary_search() {
    // Even steps (a simulator's), steps with rounding in them, and irregular ones with gaps.
    let mut rng = crate::rng::Rng::new(5);
    let mut layouts: Vec<Vec<f64>> = vec![
        (0..1200).map(|k| -30.0 + k as f64 * 0.1).collect(),
        (0..50).map(|k| 3.0 + k as f64 / 3.0).collect(),
        vec![7.25],
    ];
    let mut t = 0.0;
    layouts.push(
        (0..300)
            .map(|_| {
                t += 0.01 + rng.uniform() * if rng.uniform() < 0.05 { 5.0 } else { 0.2 };
                t
            })
            .collect(),
    );
    for times in layouts {
        let trace = Trace::new(
            times.iter().map(|&t| sample(t, t, 0.0, 0.0, 1.0)).collect(),
            TRACE_MAX_GAP_S,
        )
        .expect("valid");
        let (first, last) = trace.span();
        let mut probes: Vec<f64> = times.clone();
        probes.extend([first - 1.0, last + 1.0, f64::NAN]);
        probes.extend((0..2000).map(|_| first - 0.5 + rng.uniform() * (last - first + 1.0)));
        for t in probes {
            let expected = trace.samples.partition_point(|x| x.t_s < t);
            assert_eq!(trace.first_at_or_after(t), expected, "t = {t}");
        }
    }
}
