//! Two vehicles on crossing paths and two on parallel safe paths, each with its own agent and
//! zenoh session, against a real edge: the crossing pair is warned before the conflict and the
//! safe pair is not.

use sim::live::{run_live, LiveOptions};
use sim::world::{Actor, Scenario};

fn crossing_and_parallel() -> Scenario {
    Scenario {
        name: "crossing-and-parallel".into(),
        origin: (48.137154, 11.576124),
        duration_s: 5.0,
        actors: vec![
            // Both reach the junction at 4 s.
            Actor::car("east", &[(-44.0, -1.75), (100.0, -1.75)], &[(0.0, 11.0)]),
            Actor::car("north", &[(1.75, -40.0), (1.75, 100.0)], &[(0.0, 10.0)]),
            // Side by side in adjacent lanes, 60 m north of the junction.
            Actor::car("left", &[(-50.0, 60.0), (100.0, 60.0)], &[(0.0, 12.0)]),
            Actor::car("right", &[(-50.0, 63.5), (100.0, 63.5)], &[(0.0, 12.0)]),
        ],
        roads: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossing_vehicles_are_warned_before_the_conflict_and_parallel_ones_are_not() {
    let scenario = crossing_and_parallel();
    let out = crate::scratch_dir("crossing");
    let mut opts = LiveOptions::new(out.clone(), 7);
    opts.snapshot_at_s = Some(2.0);
    let result = run_live(&scenario, &opts)
        .await
        .expect("the live run completes");

    let conflicts = &result.score.conflicts;
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    let moment = conflicts[0].moment_s;
    for (me, other) in [("east", "north"), ("north", "east")] {
        let raise = result
            .alerts
            .iter()
            .find(|a| a.kind == "raise" && a.vehicle == me && a.other.as_deref() == Some(other));
        let raise = raise.unwrap_or_else(|| panic!("{me} got no raise: {:#?}", result.alerts));
        assert!(
            raise.t_s < moment - 1.0,
            "{me} warned at {} for {moment}",
            raise.t_s
        );
    }
    for safe in ["left", "right"] {
        assert!(
            !result.alerts.iter().any(|a| a.vehicle == safe),
            "{safe} was alerted: {:#?}",
            result.alerts
        );
    }
    let r = &result.report;
    assert_eq!(r.false_alarms, 0);
    assert_eq!(r.recall, 1.0);
    assert_eq!(r.frames_rejected, 0);
    assert!(r.frames_received >= 4 * 45, "{r:?}");
    // The runner reads the edge as an outsider would: fusion from the maps it publishes,
    // stage timings from its stats key.
    let fusion = r.fusion.expect("fusion figures in live mode");
    assert!(fusion.position_rmse_m < 1.0, "{fusion:?}");
    assert!(fusion.object_seconds > 10.0, "{fusion:?}");
    let stages = r
        .edge_stage_us
        .as_ref()
        .expect("stage timings in live mode");
    assert!(stages.contains_key("associate"), "{stages:?}");
    // The map nearest to 2 s has the four cars where they were then.
    let boxes = result.snapshot_tracks.as_ref().expect("a map snapshot");
    for actor in &scenario.actors {
        let at = actor.state(2.0).expect("present").pos;
        assert!(
            boxes.iter().any(|b| (b.center - at).norm() < 2.0),
            "{} at {at:?}: {boxes:?}",
            actor.id
        );
    }
    assert!(out.join("report.json").exists() && out.join("alerts.ndjson").exists());
    let _ = std::fs::remove_dir_all(out);
}
