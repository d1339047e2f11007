//! Every built-in scenario in fast mode, read as a table: each conflict the scenario sets up is
//! a true conflict and is warned at least a second ahead when a party to it is connected, and
//! the hidden pedestrian is warned only thanks to the other car's view.

use sim::fast::{run_fast, FastOptions};
use sim::scenario_file::{built_in, Overrides, BUILT_IN};
use sim::world::Scenario;

const MIN_LEAD_S: f64 = 1.0;

#[test]
fn every_scripted_conflict_is_warned_in_time_when_a_party_is_connected() {
    for (name, _) in BUILT_IN {
        for seed in [1, 2] {
            let loaded = built_in(name, seed, Overrides::default()).expect("loads");
            let run =
                run_fast(&loaded.scenario, &FastOptions::new(seed)).expect("the run completes");
            let r = &run.report;
            println!(
                "{name} seed {seed}: {} vehicles, recall {:.2} ({}/{}), lead p50 {:.2} s, {} false alarms ({:.0} per vehicle-hour), e2e p99 {:.1} ms",
                r.vehicles, r.recall, r.conflicts_warned, r.true_conflicts, r.lead_time_s.p50,
                r.false_alarms, r.false_alarms_per_vehicle_hour, r.e2e_latency_ms.p99
            );
            for s in &loaded.scripted {
                let c = run
                    .score
                    .conflicts
                    .iter()
                    .find(|c| c.a == s.a && c.b == s.b)
                    .unwrap_or_else(|| {
                        panic!(
                            "{name} seed {seed}: {} {}-{} is no true conflict",
                            s.pattern, s.a, s.b
                        )
                    });
                let lead = c.warned_at_s.map(|t| c.moment_s - t);
                println!(
                    "    {} {}-{}: min TTC {:.2} s, lead {lead:?}",
                    s.pattern, s.a, s.b, c.min_ttc_s
                );
                let connected = [&s.a, &s.b].iter().any(|id| {
                    loaded
                        .scenario
                        .actors
                        .iter()
                        .any(|a| &&a.id == id && a.connected)
                });
                // Only car a is connected and sees the pedestrian itself: too late, by design.
                let ego_only = *name == "hidden-pedestrian-ego-only";
                if connected && !ego_only {
                    assert!(
                        lead.is_some_and(|l| l >= MIN_LEAD_S),
                        "{name} seed {seed}: {} {}-{} lead {lead:?}",
                        s.pattern,
                        s.a,
                        s.b
                    );
                }
            }
        }
    }
}

#[test]
fn the_hidden_pedestrian_is_warned_only_thanks_to_the_other_cars_view() {
    for seed in [1, 2, 3] {
        let lead = |scenario: Scenario| {
            let run = run_fast(&scenario, &FastOptions::new(seed)).expect("the run completes");
            assert_eq!(run.report.false_alarms, 0, "{} seed {seed}", scenario.name);
            let c = &run.score.conflicts;
            assert_eq!(c.len(), 1, "{c:?}");
            c[0].warned_at_s.map(|t| c[0].moment_s - t)
        };
        let cooperative = lead(Scenario::hidden_pedestrian(true));
        let ego_only = lead(Scenario::hidden_pedestrian(false));
        assert!(
            cooperative.is_some_and(|l| l >= MIN_LEAD_S),
            "seed {seed}: {cooperative:?}"
        );
        assert!(
            !ego_only.is_some_and(|l| l >= MIN_LEAD_S),
            "seed {seed}: {ego_only:?}"
        );
        // The demo has one conflict and nothing else alerted.
        let demo = run_fast(&Scenario::demo(), &FastOptions::new(seed)).expect("runs");
        assert_eq!(demo.report.false_alarms, 0, "demo seed {seed}");
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
