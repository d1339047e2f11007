//! `report.json` and `alerts.ndjson`. Field names are frozen: later versions add fields and
//! rename none.

use crate::score::{quantile, AlertEvent, Score};
use edge_node::core::Stage;
use edge_node::geometry::V2;
use edge_node::histogram::StageFigures;
use edge_node::quality::FusionReport;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LeadTimes {
    pub p10: f64,
    pub p50: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Processing {
    pub p50: f64,
    pub p99: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub scenario: String,
    pub seed: u64,
    pub mode: &'static str,
    pub duration_s: f64,
    pub vehicles: usize,
    pub connected_vehicles: usize,
    pub frames_sent: u64,
    pub frames_received: u64,
    pub frames_rejected: u64,
    pub bytes_per_object_mean: f64,
    pub true_conflicts: usize,
    pub conflicts_warned: usize,
    pub recall: f64,
    pub false_alarms: usize,
    pub lead_time_s: LeadTimes,
    pub e2e_latency_ms: Latency,
    pub edge_processing_us: Processing,
    /// Raise alerts for pairs that are not true conflicts, per hour that connected vehicles
    /// spent in the scene.
    pub false_alarms_per_vehicle_hour: f64,
    /// Frames the edge refused, by reason (`docs/protocol.md`, plus `duplicate`,
    /// `out_of_order`, `key_mismatch`).
    pub frames_rejected_by_reason: BTreeMap<String, u64>,
    /// Fusion quality against ground truth. Fast mode samples the edge's tracks at every
    /// tick; live mode samples every situation map the edge publishes, at the map's own time.
    pub fusion: Option<FusionReport>,
    /// The edge's time per pipeline stage, by stage name (`decode`, `validate`, `convert`,
    /// `associate`, `merge_duplicates`, `conflicts`, `alerts`, `tick_expire`, `tick_merge`,
    /// `tick_map`; see `edge_node::core::Stage`): `p50` and `p99` per pass through the stage
    /// (one frame, or one tick) in µs, and `share`, the stage's part of the time spent in all
    /// stages. Live mode only, read from the edge's stats key; `null` in fast mode, whose
    /// wall-clock figures go to `timing.json` so that `report.json` depends on the seed alone.
    pub edge_stage_us: Option<BTreeMap<String, StageFigures>>,
    /// Live mode: which edge the run used and what its figures cover; `null` in fast mode.
    pub edge: Option<EdgeUsed>,
}

/// The edge of a live run, and what the report's edge figures cover.
///
/// The counters of the report (`frames_received`, `frames_rejected`,
/// `frames_rejected_by_reason` and the counters here) are always the run's own: what the edge
/// counted between a reading of its stats key before the agents connected and one after they
/// closed. The processing and stage times (`edge_processing_us`, `edge_stage_us`) are
/// quantiles, which cannot be differenced: [`EdgeUsed::timing_covers`] says what they cover.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EdgeUsed {
    /// `in_process`: started for this run and stopped after it; `external`: an `edge-node`
    /// process given by address, which earlier runs and other vehicles may have used too.
    pub kind: &'static str,
    pub id: String,
    pub endpoint: String,
    /// `run` for an in-process edge; `edge_lifetime` for an external one, whose processing and
    /// stage times include every frame it handled since it started.
    pub timing_covers: &'static str,
    /// Frames the processing times cover.
    pub timing_frames: u64,
    /// The run's frames the edge applied to its tracks.
    pub frames_accepted: u64,
    /// The run's frames dropped at the edge's full queue.
    pub frames_dropped: u64,
    /// Objects plus ego reports in the run's accepted frames.
    pub observations: u64,
    /// Of those, dropped because they lay outside the edge's area.
    pub observations_out_of_area: u64,
    /// Alert messages the edge published during the run.
    pub alerts_published: u64,
    /// The edge's area as its stats key reports it.
    pub area: Option<edge_node::net::EdgeArea>,
    /// The farthest a road user of the scenario comes from the edge's origin, metres; `null`
    /// when the edge does not report its area.
    pub scenario_reach_m: Option<f64>,
    /// The edge's clock minus the simulator's, µs, as measured on a stats query; 0 when
    /// within the measurement's uncertainty (always, for an edge on the same machine).
    pub clock_offset_us: i64,
}

/// A track's footprint at one instant, in the scenario's ENU metres, for pictures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackBox {
    pub id: u32,
    pub center: V2,
    /// Heading, radians counter-clockwise from East.
    pub yaw: f64,
    pub length: f64,
    pub width: f64,
}

/// What a run measured, before it is summarised.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    pub frames_sent: u64,
    pub frames_received: u64,
    pub frames_rejected: u64,
    pub object_bytes: u64,
    pub objects_sent: u64,
    pub processing_p50_us: f64,
    pub processing_p99_us: f64,
    pub rejected_by_reason: BTreeMap<String, u64>,
    pub fusion: Option<FusionReport>,
    pub stage_us: Option<BTreeMap<String, StageFigures>>,
}

impl Report {
    pub fn new(
        scenario: &crate::world::Scenario,
        seed: u64,
        mode: &'static str,
        measured: &Measured,
        score: &Score,
        alerts: &[AlertEvent],
    ) -> Self {
        let latencies: Vec<f64> = alerts.iter().map(|a| a.latency_ms).collect();
        Self {
            scenario: scenario.name.clone(),
            seed,
            mode,
            duration_s: scenario.duration_s,
            vehicles: scenario.n_vehicles(),
            connected_vehicles: scenario.n_connected(),
            frames_sent: measured.frames_sent,
            frames_received: measured.frames_received,
            frames_rejected: measured.frames_rejected,
            bytes_per_object_mean: if measured.objects_sent == 0 {
                0.0
            } else {
                measured.object_bytes as f64 / measured.objects_sent as f64
            },
            true_conflicts: score.conflicts.len(),
            conflicts_warned: score.warned(),
            recall: score.recall(),
            false_alarms: score.false_alarms,
            lead_time_s: LeadTimes {
                p10: quantile(&score.lead_times_s, 0.1),
                p50: quantile(&score.lead_times_s, 0.5),
            },
            e2e_latency_ms: Latency {
                p50: quantile(&latencies, 0.5),
                p99: quantile(&latencies, 0.99),
                max: latencies.iter().copied().fold(0.0, f64::max),
            },
            edge_processing_us: Processing {
                p50: measured.processing_p50_us,
                p99: measured.processing_p99_us,
            },
            false_alarms_per_vehicle_hour: {
                let hours = scenario.connected_vehicle_seconds() / 3600.0;
                if hours > 0.0 {
                    score.false_alarms as f64 / hours
                } else {
                    0.0
                }
            },
            frames_rejected_by_reason: measured.rejected_by_reason.clone(),
            fusion: measured.fusion,
            edge_stage_us: measured.stage_us.clone(),
            edge: None,
        }
    }

    pub fn write(&self, dir: &Path, alerts: &[AlertEvent]) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let json = serde_json::to_string_pretty(self).expect("a report serialises");
        std::fs::write(dir.join("report.json"), json + "\n")?;
        let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("alerts.ndjson"))?);
        for a in alerts {
            serde_json::to_writer(&mut f, a).expect("an alert serialises");
            f.write_all(b"\n")?;
        }
        f.flush()
    }

    /// A few lines for a person.
    pub fn summary(&self, score: &Score) -> String {
        let mut s = format!(
            "{} ({} mode, seed {}): {} vehicles ({} connected) for {:.0} s\n",
            self.scenario,
            self.mode,
            self.seed,
            self.vehicles,
            self.connected_vehicles,
            self.duration_s
        );
        s += &format!(
            "  frames: {} sent, {} received, {} rejected; {:.1} B per object on the wire\n",
            self.frames_sent,
            self.frames_received,
            self.frames_rejected,
            self.bytes_per_object_mean
        );
        for c in &score.conflicts {
            match c.warned_at_s {
                Some(t) => {
                    s += &format!(
                        "  conflict {}-{} at {:.1} s (min TTC {:.2} s): warned at {:.2} s, {:.2} s ahead\n",
                        c.a, c.b, c.moment_s, c.min_ttc_s, t, c.moment_s - t
                    )
                }
                None => {
                    s += &format!(
                        "  conflict {}-{} at {:.1} s (min TTC {:.2} s): NOT warned\n",
                        c.a, c.b, c.moment_s, c.min_ttc_s
                    )
                }
            }
        }
        s += &format!(
            "  recall {:.2} ({} of {}), {} false alarms\n",
            self.recall, self.conflicts_warned, self.true_conflicts, self.false_alarms
        );
        s += &format!(
            "  end-to-end alert latency: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; edge processing p50 {:.0} us, p99 {:.0} us",
            self.e2e_latency_ms.p50,
            self.e2e_latency_ms.p99,
            self.e2e_latency_ms.max,
            self.edge_processing_us.p50,
            self.edge_processing_us.p99
        );
        if let Some(f) = &self.fusion {
            s += &format!(
                "\n  fusion: track RMSE {:.2} m (best single vehicle {:.2} m), {:.1} % duplicate tracks, {:.2} id switches per object-minute",
                f.position_rmse_m,
                f.best_single_observer_rmse_m,
                f.duplicate_track_ratio * 100.0,
                f.id_switches_per_object_min
            );
        }
        if let Some(stages) = &self.edge_stage_us {
            s += &format!("\n  edge stages{}", stage_line(stages));
        }
        if let Some(edge) = self.edge.as_ref().filter(|e| e.timing_covers != "run") {
            s += &format!(
                "\n  edge {} at {} ({}): frame counts are this run's (stats read before and after); \
                 processing and stage times cover the edge's lifetime ({} frames)",
                edge.id, edge.endpoint, edge.kind, edge.timing_frames
            );
        }
        if let Some(edge) = self
            .edge
            .as_ref()
            .filter(|e| e.observations_out_of_area > 0)
        {
            s += &format!(
                "\n  the edge dropped {} of {} observations as outside its area{}",
                edge.observations_out_of_area,
                edge.observations,
                match (&edge.area, edge.scenario_reach_m) {
                    (Some(a), Some(reach)) => format!(
                        " ({:.0} m around {},{}; the scenario reaches {:.0} m from there)",
                        a.radius_m, a.origin_lat_deg, a.origin_lon_deg, reach
                    ),
                    _ => String::new(),
                }
            );
        }
        s
    }
}

/// `: decode p50 1.1 us (1 %), ...` in pipeline order, or nothing when there are no figures.
pub fn stage_line(stages: &BTreeMap<String, StageFigures>) -> String {
    let parts: Vec<String> = Stage::ALL
        .iter()
        .filter_map(|s| {
            let f = stages.get(s.name())?;
            Some(format!(
                "{} p50 {:.1} us ({:.0} %)",
                s.name(),
                f.p50,
                f.share * 100.0
            ))
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join(", "))
    }
}
