//! The pictures a run leaves beside its report: the latency CDF, the lead-time histogram and a
//! map snapshot at the moment of one conflict (see [`crate::plot`] for the drawing).

use crate::plot::{self, Footprint, MapSnapshot, PlotError};
use crate::report::TrackBox;
use crate::score::{AlertEvent, Score, TrueConflict};
use crate::traffic::ScriptedConflict;
use crate::world::Scenario;
use std::path::Path;

/// The least lead time a warning should give, seconds (the scenario tests' bar).
pub const MIN_LEAD_S: f64 = 1.0;

/// The conflict a map snapshot shows: the first scripted conflict that is a true conflict,
/// else the first true conflict.
pub fn conflict_to_show<'a>(
    conflicts: &'a [TrueConflict],
    scripted: &[ScriptedConflict],
) -> Option<&'a TrueConflict> {
    conflicts
        .iter()
        .find(|c| scripted.iter().any(|s| s.a == c.a && s.b == c.b))
        .or_else(|| conflicts.first())
}

/// The pairs (vehicle, other) whose raise alert is still standing at `t_s`.
fn standing_alerts(alerts: &[AlertEvent], t_s: f64) -> Vec<(String, String)> {
    let mut standing: Vec<(String, String)> = Vec::new();
    for a in alerts.iter().filter(|a| a.t_s <= t_s) {
        let Some(other) = &a.other else { continue };
        let pair = (a.vehicle.clone(), other.clone());
        match a.kind {
            "raise" | "refresh" if !standing.contains(&pair) => standing.push(pair),
            "clear" => standing.retain(|p| p != &pair),
            _ => {}
        }
    }
    standing
}

/// Writes `latency_cdf`, `lead_time` and (when `snapshot` is given: the conflict and the
/// edge's tracks at its moment) `map_snapshot`, each as PNG and SVG, into `dir`.
pub fn write(
    dir: &Path,
    scenario: &Scenario,
    score: &Score,
    alerts: &[AlertEvent],
    snapshot: Option<(&TrueConflict, &[TrackBox])>,
) -> Result<(), PlotError> {
    let latencies: Vec<f64> = alerts.iter().map(|a| a.latency_ms).collect();
    plot::latency_cdf(dir, &latencies)?;
    let unwarned = score.conflicts.len() - score.warned();
    plot::lead_time_histogram(dir, &score.lead_times_s, MIN_LEAD_S, unwarned)?;
    if let Some((conflict, tracks)) = snapshot {
        let t = conflict.moment_s;
        let tracks = tracks
            .iter()
            .map(|b| Footprint {
                center: b.center,
                yaw: b.yaw,
                length: b.length,
                width: b.width,
                label: format!("#{}", b.id),
            })
            .collect();
        let centre = [&conflict.a, &conflict.b]
            .iter()
            .filter_map(|id| scenario.actors.iter().find(|a| &&a.id == id))
            .filter_map(|a| a.state(t))
            .map(|s| s.pos)
            .fold(None, |acc: Option<(edge_node::geometry::V2, usize)>, p| {
                Some(acc.map_or((p, 1), |(sum, n)| (sum + p, n + 1)))
            })
            .map(|(sum, n)| sum / n as f64);
        let snapshot = MapSnapshot::from_world(
            scenario,
            t,
            tracks,
            &standing_alerts(alerts, t),
            centre.map(|c| (c, 40.0)),
        );
        let snapshot = MapSnapshot {
            title: format!(
                "{}: {} and {} at their closest",
                scenario.name, conflict.a, conflict.b
            ),
            ..snapshot
        };
        plot::map_snapshot(dir, &snapshot)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(t_s: f64, kind: &'static str, vehicle: &str, other: &str) -> AlertEvent {
        AlertEvent {
            t_s,
            kind,
            vehicle: vehicle.into(),
            other: Some(other.into()),
            ttc_s: None,
            probability: 1.0,
            conflict_point: [0.0, 0.0],
            latency_ms: 1.0,
        }
    }

    #[test]
    fn an_alert_stands_from_its_raise_until_its_clear() {
        let alerts = [
            alert(1.0, "raise", "a", "b"),
            alert(1.5, "refresh", "a", "b"),
            alert(2.0, "raise", "c", "d"),
            alert(3.0, "clear", "a", "b"),
        ];
        let pair = |x: &str, y: &str| (x.to_string(), y.to_string());
        assert_eq!(standing_alerts(&alerts, 0.5), vec![]);
        assert_eq!(
            standing_alerts(&alerts, 2.5),
            vec![pair("a", "b"), pair("c", "d")]
        );
        assert_eq!(standing_alerts(&alerts, 3.0), vec![pair("c", "d")]);
    }
}
