use super::*;
use edge_node::net::ProcessingFigures;

fn reading(received: u64, rejected: &[(&'static str, u64)], dropped: u64) -> EdgeStatsReply {
    EdgeStatsReply {
        edge: "ext".into(),
        time_us: 0,
        frames: EdgeStats {
            frames_received: received,
            frames_accepted: received - rejected.iter().map(|(_, n)| n).sum::<u64>(),
            frames_rejected: rejected
                .iter()
                .map(|(k, n)| (Cow::Owned(k.to_string()), *n))
                .collect(),
            observations: 6 * received,
            ..EdgeStats::default()
        },
        frames_dropped: dropped,
        alerts_published: 0,
        alerts_failed: 0,
        maps_published: 0,
        clock_queries: 0,
        processing_us: ProcessingFigures {
            n: received,
            p50: 60.0,
            p99: 120.0,
            max: 300.0,
        },
        stage_us: BTreeMap::new(),
        area: None,
    }
}

#[test]
fn counters_are_the_difference_of_two_readings() {
    let before = reading(1000, &[("too_old", 3), ("duplicate", 1)], 2);
    let after = reading(
        1160,
        &[("too_old", 5), ("duplicate", 1), ("from_future", 4)],
        2,
    );
    let run = RunCounters::between(&before, &after).unwrap();
    assert_eq!(run.frames.frames_received, 160);
    assert_eq!(run.frames.frames_accepted, 160 - 6);
    assert_eq!(run.frames.observations, 6 * 160);
    assert_eq!(run.frames_dropped, 0);
    // A reason with no rejection during the run is left out; one new in the run is kept.
    let reasons: Vec<(&str, u64)> = run
        .frames
        .frames_rejected
        .iter()
        .map(|(k, n)| (k.as_ref(), *n))
        .collect();
    assert_eq!(reasons, [("from_future", 4), ("too_old", 2)]);
}

#[test]
fn a_counter_that_went_down_means_the_edge_restarted() {
    let before = reading(1000, &[], 0);
    let after = reading(40, &[], 0);
    let err = RunCounters::between(&before, &after).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("frames_received went from 1000") && msg.contains("restarted"),
        "{msg}"
    );
    // A rejection reason that disappeared, too.
    let before = reading(1000, &[("too_old", 3)], 0);
    let after = reading(1100, &[], 0);
    let msg = RunCounters::between(&before, &after)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("frames_rejected.too_old went from 3"), "{msg}");
}

#[test]
fn coverage_is_checked_in_the_edge_s_frame_and_names_the_figures() {
    let scenario = Scenario::demo();
    let geo = Geo::new(scenario.origin);
    let extent = scenario.extent_m();
    let here = EdgeArea {
        origin_lat_deg: scenario.origin.0,
        origin_lon_deg: scenario.origin.1,
        radius_m: 500.0,
    };
    let reach = check_coverage(&scenario, &geo, "ext", &here).unwrap();
    assert!((reach - extent).abs() < 0.01, "{reach} vs {extent}");

    // An edge 2 km east of the junction.
    let far = geo.to_geodetic(edge_node::geometry::V2::new(2000.0, 0.0));
    let away = EdgeArea {
        origin_lat_deg: far.lat_deg,
        origin_lon_deg: far.lon_deg,
        radius_m: 500.0,
    };
    let err = check_coverage(&scenario, &geo, "ext", &away).unwrap_err();
    let EdgeTargetError::OutOfArea {
        reach_m, offset_m, ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert!((offset_m - 2000.0).abs() < 1.0, "{err}");
    assert!(
        *reach_m > 2000.0 && *reach_m <= 2000.0 + extent + 1.0,
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("covers 500 m around")
            && msg.contains("--origin 48.137154,11.576124")
            && msg.contains("--radius-m of at least 500"),
        "{msg}"
    );
}

#[test]
fn a_directory_without_a_ca_is_refused_and_left_without_one() {
    let dir = std::env::temp_dir().join(format!("v2e-sim-no-ca-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let err = open_edge_pki(&dir).unwrap_err();
    assert!(matches!(err, EdgeTargetError::NoCa { .. }), "{err:?}");
    assert!(err.to_string().contains("--data-dir"), "{err}");
    assert!(!dir.join("pki").join("ca.pem").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
