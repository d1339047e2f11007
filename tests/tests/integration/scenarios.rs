//! Every built-in scenario in fast mode, read as a table: which conflicts there are, whether
//! each is warned at least a second ahead, and whether anything else was alerted.

use sim::fast::{run_fast, FastOptions};
use sim::world::Scenario;

struct Case {
    scenario: Scenario,
    /// The scripted conflicts, as (a, b) pairs in the scoring's order.
    conflicts: &'static [(&'static str, &'static str)],
    /// Whether each must be warned at least `MIN_LEAD_S` ahead.
    warned_in_time: bool,
}

const MIN_LEAD_S: f64 = 1.0;

#[test]
fn built_in_scenarios_are_warned_in_time_when_a_party_is_connected() {
    let cases = [
        Case {
            scenario: Scenario::demo(),
            conflicts: &[("v1", "v2")],
            warned_in_time: true,
        },
        // Car b sees the pedestrian behind the van; the edge warns car a in time.
        Case {
            scenario: Scenario::hidden_pedestrian(true),
            conflicts: &[("a", "ped")],
            warned_in_time: true,
        },
        // Only car a is connected: it sees the pedestrian itself, too late.
        Case {
            scenario: Scenario::hidden_pedestrian(false),
            conflicts: &[("a", "ped")],
            warned_in_time: false,
        },
    ];
    for case in cases {
        let name = case.scenario.name.clone();
        for seed in [1, 2, 3] {
            let run = run_fast(&case.scenario, &FastOptions::new(seed)).expect("the run completes");
            let found: Vec<(&str, &str)> = run
                .score
                .conflicts
                .iter()
                .map(|c| (c.a.as_str(), c.b.as_str()))
                .collect();
            assert_eq!(found, case.conflicts, "{name} seed {seed}");
            for c in &run.score.conflicts {
                let lead = c.warned_at_s.map(|t| c.moment_s - t);
                let in_time = lead.is_some_and(|l| l >= MIN_LEAD_S);
                assert_eq!(
                    in_time, case.warned_in_time,
                    "{name} seed {seed}: {}-{} lead {lead:?}",
                    c.a, c.b
                );
            }
            assert_eq!(run.report.false_alarms, 0, "{name} seed {seed}");
        }
    }
}

#[test]
fn the_demo_is_still_warned_in_time_over_a_lossy_jittery_link_with_drifting_clocks() {
    for seed in [1, 2, 3] {
        let mut opts = FastOptions::new(seed);
        opts.link.jitter_us = 5_000;
        opts.link.loss = 0.05;
        opts.max_clock_drift_ppm = 50.0;
        opts.sensor.miss = 0.1;
        opts.sensor.false_positives = 0.5;
        let run = run_fast(&Scenario::demo(), &opts).expect("the run completes");
        let r = &run.report;
        // The link lost frames, and the agents' clock sync absorbed the drift: nothing arrived
        // outside the edge's time window.
        assert!(r.frames_received < r.frames_sent, "seed {seed}: {r:?}");
        assert_eq!(r.frames_rejected, 0, "seed {seed}");
        let c = &run.score.conflicts[0];
        let lead = c.warned_at_s.map(|t| c.moment_s - t);
        assert!(
            lead.is_some_and(|l| l >= MIN_LEAD_S),
            "seed {seed}: lead {lead:?}"
        );
        // Injected false detections can be confirmed by a second one nearby and alarm (seed 2
        // raises one about a phantom in v5's lane): counted, not asserted away.
        println!("seed {seed}: {} false alarms", r.false_alarms);
    }
}
