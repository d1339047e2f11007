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
