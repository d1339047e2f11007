use super::*;

fn busy() -> TrafficSpec {
    TrafficSpec {
        vehicles: 40,
        cyclists: 4,
        pedestrians: 8,
        ..Default::default()
    }
}

fn generated(kind: LayoutKind, patterns: &[Pattern], seed: u64) -> Generated {
    generate(kind, SignalTiming::default(), &busy(), patterns, 60.0, seed).expect("generates")
}

#[test]
fn the_same_seed_gives_the_same_traffic_and_another_seed_other_traffic() {
    let a = generated(LayoutKind::TJunction, &[], 5);
    let b = generated(LayoutKind::TJunction, &[], 5);
    let c = generated(LayoutKind::TJunction, &[], 6);
    assert_eq!(a.actors, b.actors);
    assert_ne!(a.actors, c.actors);
}

#[test]
fn random_road_users_never_overlap_and_keep_moving() {
    for kind in [
        LayoutKind::Signalised4Way,
        LayoutKind::UnsignalisedCrossing,
        LayoutKind::TJunction,
    ] {
        let g = generated(kind, &[], 1);
        let movers = |t: f64| -> Vec<(String, Mover)> {
            g.actors
                .iter()
                .filter_map(|a| a.mover(t).map(|m| (a.id.clone(), m)))
                .collect()
        };
        for k in 0..600 {
            let now = movers(k as f64 * 0.1);
            for (i, (a, ma)) in now.iter().enumerate() {
                for (b, mb) in &now[i + 1..] {
                    // Pedestrians may stand and pass close together.
                    if a.starts_with("ped") && b.starts_with("ped") {
                        continue;
                    }
                    let overlap = time_to_collision(ma, mb, 0.0) == Some(0.0);
                    assert!(
                        !overlap,
                        "{kind:?}: {a} and {b} overlap at {:.1} s",
                        k as f64 * 0.1
                    );
                }
            }
        }
        // Nobody blocks the junction: waiting at a stop line for a gap is fine, standing in
        // the box for long is a deadlock.
        for a in g.actors.iter().filter(|a| a.class.is_vehicle()) {
            let in_box = (0..120)
                .filter_map(|k| a.state(k as f64 * 0.5))
                .filter(|s| s.pos.x.abs() < 8.0 && s.pos.y.abs() < 8.0)
                .count();
            assert!(in_box <= 30, "{kind:?}: {} stands in the junction", a.id);
        }
        let vehicles = g.actors.iter().filter(|a| a.class.is_vehicle()).count();
        assert!(vehicles >= 30, "{kind:?}: only {vehicles} vehicles");
    }
}

#[test]
fn patterns_the_layout_cannot_hold_are_refused_by_name() {
    let runner = Pattern::RedLightRunner {
        at_s: 10.0,
        approach: Arm::West,
        connected: Involved::Both,
    };
    let e = generate(
        LayoutKind::UnsignalisedCrossing,
        SignalTiming::default(),
        &busy(),
        &[runner],
        60.0,
        1,
    )
    .unwrap_err();
    assert!(
        matches!(e, TrafficError::NeedsSignals { index: 0, .. }),
        "{e}"
    );
    // No arm to the north for a left turn from the west.
    let left = Pattern::LeftTurn {
        at_s: 10.0,
        approach: Arm::West,
        connected: Involved::Both,
    };
    let e = generate(
        LayoutKind::TJunction,
        SignalTiming::default(),
        &busy(),
        &[left],
        60.0,
        1,
    )
    .unwrap_err();
    assert!(e.to_string().contains("left-turn"), "{e}");
    let spec = TrafficSpec {
        connected_share: 1.5,
        ..busy()
    };
    let e = generate(
        LayoutKind::TJunction,
        SignalTiming::default(),
        &spec,
        &[],
        60.0,
        1,
    );
    assert!(matches!(e, Err(TrafficError::OutOfRange { .. })));
}

#[test]
fn a_left_turner_gives_way_to_oncoming_traffic_unless_scripted_not_to() {
    let layout = Layout::new(LayoutKind::UnsignalisedCrossing, SignalTiming::default());
    let turn = layout.movement_index(Arm::West, Arm::North).unwrap();
    let straight = layout.movement_index(Arm::East, Arm::West).unwrap();
    let plan = |id: &str, mv: usize, spawn_t: f64, give_way: bool| {
        let mut p = car_plan(id.into(), mv, spawn_t, true);
        p.driver.ignore_give_way = !give_way;
        p.driver.emergency = give_way;
        p
    };
    for give_way in [true, false] {
        let oncoming = plan("oncoming", straight, 0.0, true);
        let (c_turn, c_on) = layout.vv[turn][straight].unwrap();
        let arrive = solo_time(&layout, &oncoming, c_on, 60.0).unwrap();
        let mut turner = plan("turner", turn, 0.0, give_way);
        turner.spawn_t = start_to_reach(&layout, &turner, c_turn, arrive - 0.8).unwrap();
        let plans = [oncoming, turner];
        let mut sim = Sim::new(&layout, &plans, &[], &[], (-20.0, 60.0));
        sim.run(-20.0, 40.0);
        let t_on = time_at_arc(&sim.vehicles[0].arcs, c_on).unwrap();
        let t_turn = time_at_arc(&sim.vehicles[1].arcs, c_turn).unwrap();
        if give_way {
            assert!(
                t_turn > t_on,
                "waited: turner {t_turn:.1} s, oncoming {t_on:.1} s"
            );
        } else {
            assert!(
                t_turn < t_on,
                "cut in: turner {t_turn:.1} s, oncoming {t_on:.1} s"
            );
        }
    }
}
