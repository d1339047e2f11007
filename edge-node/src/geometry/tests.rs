use super::*;
use std::f64::consts::FRAC_PI_2;

fn car(x: f64, y: f64, yaw: f64, speed: f64) -> Mover {
    Mover {
        center: V2::new(x, y),
        yaw,
        length: 4.0,
        width: 2.0,
        velocity: V2::new(yaw.cos(), yaw.sin()) * speed,
    }
}

fn check(a: Mover, b: Mover, horizon: f64, ttc: Option<f64>, gap: f64) {
    let e = encounter(&a, &b, horizon);
    match (e.ttc_s, ttc) {
        (Some(got), Some(want)) => assert!((got - want).abs() < 1e-6, "ttc {got} != {want}"),
        (got, want) => assert_eq!(got, want, "{e:?}"),
    }
    assert!(
        (e.min_gap_m - gap).abs() < 1e-3,
        "gap {} != {gap}: {e:?}",
        e.min_gap_m
    );
    // Symmetric in its arguments.
    let r = encounter(&b, &a, horizon);
    assert_eq!(r.ttc_s.is_some(), e.ttc_s.is_some());
    assert!((r.min_gap_m - e.min_gap_m).abs() < 1e-3);
}

#[test]
fn head_on_collision_time_is_gap_over_closing_speed() {
    // Fronts 20 m apart, closing at 20 m/s.
    check(
        car(0.0, 0.0, 0.0, 10.0),
        car(24.0, 0.0, std::f64::consts::PI, 10.0),
        5.0,
        Some(1.0),
        0.0,
    );
}

#[test]
fn rear_end_collision() {
    // 10 m between bumpers, closing at 5 m/s.
    check(
        car(0.0, 0.0, 0.0, 15.0),
        car(14.0, 0.0, 0.0, 10.0),
        5.0,
        Some(2.0),
        0.0,
    );
}

#[test]
fn parallel_lanes_never_touch() {
    // Side by side, 3.5 m between centres: 1.5 m gap, forever.
    check(
        car(0.0, 0.0, 0.0, 10.0),
        car(-30.0, 3.5, 0.0, 20.0),
        5.0,
        None,
        1.5,
    );
}

#[test]
fn crossing_paths_that_meet_at_the_junction() {
    // Both 30 m from the crossing point at 10 m/s: they touch a little before t = 3 s.
    let e = encounter(
        &car(-30.0, 0.0, 0.0, 10.0),
        &car(0.0, -30.0, FRAC_PI_2, 10.0),
        5.0,
    );
    let t = e.ttc_s.expect("collision");
    // a spans x in [-32 + 10t, -28 + 10t] on y in [-1, 1]; b spans y in [-32 + 10t, -28 + 10t]
    // on x in [-1, 1]. Both intervals first overlap at -28 + 10t = -1, t = 2.7 s.
    assert!((t - 2.7).abs() < 1e-6, "{t}");
    assert!(e.conflict_point.norm() < 3.0);
}

#[test]
fn crossing_paths_with_a_time_gap_miss() {
    // b arrives 2 s after a has left.
    let e = encounter(
        &car(-30.0, 0.0, 0.0, 10.0),
        &car(0.0, -50.0, FRAC_PI_2, 10.0),
        8.0,
    );
    assert_eq!(e.ttc_s, None);
    assert!(e.min_gap_m > 5.0, "{e:?}");
}

#[test]
fn overlapping_footprints_collide_now() {
    check(
        car(0.0, 0.0, 0.0, 0.0),
        car(1.0, 0.5, 0.3, 0.0),
        5.0,
        Some(0.0),
        0.0,
    );
}

#[test]
fn beyond_the_horizon_is_no_collision() {
    check(
        car(0.0, 0.0, 0.0, 10.0),
        car(104.0, 0.0, std::f64::consts::PI, 10.0),
        4.0,
        None,
        20.0,
    );
}

#[test]
fn standing_objects_keep_their_gap() {
    check(
        car(0.0, 0.0, 0.0, 0.0),
        car(10.0, 0.0, 0.0, 0.0),
        5.0,
        None,
        6.0,
    );
}

#[test]
fn the_circle_prefilter_never_rules_out_a_collision() {
    // Sweep many encounters: whenever the exact test finds contact, the prefilter allows it.
    let mut n_contact = 0;
    for i in 0..40 {
        for j in 0..40 {
            let a = car(-30.0 + i as f64, 0.0, 0.0, 10.0);
            let b = car(
                0.0,
                -40.0 + j as f64 * 2.0,
                FRAC_PI_2 + 0.05 * j as f64,
                8.0,
            );
            let e = encounter(&a, &b, 5.0);
            if e.ttc_s.is_some() {
                n_contact += 1;
                assert!(may_meet(&a, &b, 5.0), "{a:?} {b:?}");
            }
            // The gap is the true least gap: sampled gaps are never smaller.
            for k in 0..=50 {
                let t = k as f64 * 0.1;
                let g = encounter(&a.at(t), &b.at(t), 0.0).min_gap_m;
                assert!(g >= e.min_gap_m - 1e-6, "t {t}: {g} < {}", e.min_gap_m);
            }
        }
    }
    assert!(n_contact > 50);
}

/// The Minkowski difference as the convex hull of the 16 corner differences (Andrew's
/// monotone chain): the plain definition that the edge merge replaces.
fn hull_of_differences(a: &Mover, b: &Mover) -> Vec<V2> {
    let mut pts: Vec<V2> = b
        .corners()
        .iter()
        .flat_map(|pb| a.corners().map(|pa| pb - pa))
        .collect();
    pts.sort_by(|p, q| p.x.total_cmp(&q.x).then(p.y.total_cmp(&q.y)));
    pts.dedup();
    let cross = |o: &V2, a: &V2, b: &V2| (a - o).perp(&(b - o));
    let mut hull: Vec<V2> = Vec::new();
    for pass in [pts.clone(), pts.iter().rev().copied().collect()] {
        let start = hull.len();
        for p in pass {
            while hull.len() >= start + 2
                && cross(&hull[hull.len() - 2], &hull[hull.len() - 1], &p) <= 0.0
            {
                hull.pop();
            }
            hull.push(p);
        }
        hull.pop();
    }
    hull
}

fn area(poly: &[V2]) -> f64 {
    (0..poly.len())
        .map(|k| poly[k].perp(&poly[(k + 1) % poly.len()]))
        .sum::<f64>()
        / 2.0
}

#[test]
fn the_edge_merge_gives_the_hull_of_the_corner_differences() {
    let mut rng = crate::rng::Rng::new(11);
    let mut u = move || rng.uniform();
    // Random footprints and headings, and the common exact cases: equal and right-angled yaws.
    for k in 0..20_000 {
        let yaw = |u: f64| match k % 3 {
            0 => (u * 4.0).floor() * FRAC_PI_2,
            _ => u * 2.0 * std::f64::consts::PI - std::f64::consts::PI,
        };
        let mover = |u: &mut dyn FnMut() -> f64| Mover {
            center: V2::new(u() * 40.0 - 20.0, u() * 40.0 - 20.0),
            yaw: yaw(u()),
            length: 0.2 + u() * 12.0,
            width: 0.2 + u() * 2.5,
            velocity: V2::new(u() * 30.0 - 15.0, u() * 30.0 - 15.0),
        };
        let (a, b) = (mover(&mut u), mover(&mut u));
        let merged = minkowski_difference(&a, &b);
        let hull = hull_of_differences(&a, &b);
        assert!(merged.len() <= 8 && merged.len() >= 3, "{a:?} {b:?}");
        assert!(
            (area(&merged) - area(&hull)).abs() <= 1e-9 * area(&hull).max(1.0),
            "areas {} vs {}: {a:?} {b:?}",
            area(&merged),
            area(&hull)
        );
        // The same boundary: every vertex of each lies on the other's boundary. (Vertices
        // can differ where two edges are parallel up to rounding, e.g. yaws a quarter turn
        // apart: one side keeps a point in the middle of a straight edge, the other does not.)
        let on_boundary = |v: &V2, poly: &[V2]| {
            (0..poly.len())
                .any(|k| point_segment(v, &poly[k], &poly[(k + 1) % poly.len()]).0 < 1e-9)
        };
        for h in &hull {
            assert!(on_boundary(h, &merged), "{h} is off the merge: {a:?} {b:?}");
        }
        for v in merged.iter() {
            assert!(on_boundary(v, &hull), "{v} is off the hull: {a:?} {b:?}");
        }
        // Convex and counter-clockwise.
        let n = merged.len();
        for i in 0..n {
            let (p, q, r) = (merged[i], merged[(i + 1) % n], merged[(i + 2) % n]);
            assert!(
                (q - p).perp(&(r - q)) > -1e-9,
                "not convex at {i}: {a:?} {b:?}"
            );
        }
        // And the time to collision is the one the hull gives.
        let v = a.velocity - b.velocity;
        let (got, want) = (ray_entry(&merged, &v), ray_entry(&hull, &v));
        match (got, want) {
            (Some(g), Some(w)) => assert!((g - w).abs() < 1e-9, "{g} vs {w}: {a:?} {b:?}"),
            _ => assert_eq!(got.is_some(), want.is_some(), "{a:?} {b:?}"),
        }
    }
}
