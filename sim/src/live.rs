//! Live mode: a real edge node and one real agent per connected vehicle, each with its own
//! zenoh session over QUIC with mutual TLS, in real time.
//!
//! The edge is either started in this process on loopback for the run, or an `edge-node`
//! process given by address ([`EdgeTarget`]). Either way the runner reads it as an outsider
//! would, through an [`EdgeMonitor`] (its own client session): the counters of the report are
//! the difference of two readings of the edge's stats key, one before the agents connect and
//! one after they close ([`RunCounters`]), the per-stage timings come from the second reading,
//! and the fusion figures from the edge's situation maps, each sampled against ground truth at
//! the map's own time. Only starting and shutting down an in-process edge uses its handle.

use crate::fast::{detections_vs_truth, fusion_truth};
use crate::perception::{perceive, Geo, SensorModel};
use crate::report::{EdgeUsed, Measured, Report, TrackBox};
use crate::rng::Rng;
use crate::score::{score, true_conflicts, AlertEvent, Score};
use crate::world::Scenario;
use anyhow::{bail, Context};
use edge_node::core::EdgeConfig;
use edge_node::geometry::V2;
use edge_node::net::{EdgeNetConfig, EdgeNode};
use edge_node::pki::Pki;
use edge_node::quality::FusionMeter;
use nalgebra::Vector3;
use protocol::units::yaw_from_u8;
use protocol::{AlertKind, EnuFrame, Geodetic, SituationMap, VehicleId};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use vehicle_agent::{Agent, AgentNetConfig, LocalClock, ReceivedAlert, TlsFiles};

mod target;
pub use target::{
    check_coverage, open_edge_pki, reach_from, EdgeTarget, EdgeTargetError, RunCounters,
    StatsReading, CONNECT_WAIT, STATS_WAIT,
};

#[derive(Debug, Clone)]
pub struct LiveOptions {
    pub seed: u64,
    /// Where the report goes, and, with an in-process edge, where its certificates are made
    /// (`DIR/pki`).
    pub out: PathBuf,
    pub sensor: SensorModel,
    /// The edge to run against.
    pub edge: EdgeTarget,
    /// The edge's id: the one the in-process edge gets, or the `--edge-id` of an external one.
    pub edge_id: String,
    /// Each vehicle's clock is offset from the edge's by a draw in +-this, µs; the agents'
    /// clock sync has to absorb it.
    pub max_clock_offset_us: i64,
    /// Keep the edge's map message nearest to this instant (run seconds) in
    /// [`RunResult::snapshot_tracks`].
    pub snapshot_at_s: Option<f64>,
}

impl LiveOptions {
    pub fn new(out: PathBuf, seed: u64) -> Self {
        Self {
            seed,
            out,
            sensor: SensorModel::default(),
            edge: EdgeTarget::InProcess,
            edge_id: "demo".into(),
            max_clock_offset_us: 50_000,
            snapshot_at_s: None,
        }
    }
}

pub struct RunResult {
    pub report: Report,
    pub score: Score,
    pub alerts: Vec<AlertEvent>,
    /// The tracks of the edge's map message nearest to [`LiveOptions::snapshot_at_s`], in the
    /// scenario's frame; `None` when not asked for or when no map came.
    pub snapshot_tracks: Option<Vec<TrackBox>>,
}

/// How long the runner waits after the last perception for alerts and maps in flight.
const DRAIN: Duration = Duration::from_millis(300);

/// The simulator's monitor session presents the certificate of vehicle 0, an id no actor has
/// (actors are numbered from 1): the embedded CA issues vehicle and edge certificates only.
const MONITOR_VEHICLE: VehicleId = VehicleId(0);

fn system_us() -> i64 {
    edge_node::net::system_clock()()
}

/// A free UDP port on loopback for the edge's QUIC listener.
fn free_udp_port() -> anyhow::Result<u16> {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").context("binding a probe UDP socket")?;
    Ok(s.local_addr()?.port())
}

/// The vehicle id of the agent of actor `index`.
pub fn vehicle_id(index: usize) -> VehicleId {
    VehicleId(index as u32 + 1)
}

pub async fn run_live(scenario: &Scenario, opts: &LiveOptions) -> anyhow::Result<RunResult> {
    if !protocol::keys::is_valid_edge_id(&opts.edge_id) {
        bail!(
            "edge id {:?} must be 1 to 64 characters of a-z, 0-9 and '-'",
            opts.edge_id
        );
    }
    let geo = Arc::new(Geo::new(scenario.origin));
    // The edge, and the CA it trusts, which signs every session of the run.
    let (pki, endpoint, edge) = match &opts.edge {
        EdgeTarget::InProcess => {
            let pki = Pki::open_or_create(&opts.out).context("making the demo certificates")?;
            let edge_tls = pki.edge(&opts.edge_id)?;
            let endpoint = format!("quic/127.0.0.1:{}", free_udp_port()?);
            let edge = EdgeNode::start(EdgeNetConfig::new(
                edge_config(scenario, &opts.edge_id),
                vec![endpoint.clone()],
                edge_tls,
            ))
            .await
            .context("starting the edge node")?;
            (pki, endpoint, Some(edge))
        }
        EdgeTarget::External { endpoint, data_dir } => {
            (open_edge_pki(data_dir)?, endpoint.clone(), None)
        }
    };
    let monitor_tls = pki.vehicle(MONITOR_VEHICLE)?;
    let mut monitor = target::connect_monitor(&endpoint, &opts.edge_id, &monitor_tls, CONNECT_WAIT)
        .await
        .context("connecting the simulator's monitor session to the edge")?;
    // The edge's counters before the run: an external edge's count everything since it
    // started. This reading also shows that the edge answers, where it is and its clock.
    let before = target::read_stats(&monitor, &endpoint, &opts.edge_id, system_us).await?;
    let scenario_reach_m = match &before.stats.area {
        Some(area) => Some(check_coverage(scenario, &geo, &opts.edge_id, area)?),
        None => {
            tracing::warn!(
                "the edge at {endpoint} does not report its area (an older edge-node): \
                 coverage is checked only by its out-of-area count after the run"
            );
            None
        }
    };
    if before.clock_offset_us != 0 {
        tracing::info!(
            "the edge's clock is {:.1} ms ahead of this machine's: alert and map times are \
             corrected by that",
            before.clock_offset_us as f64 / 1000.0
        );
    }
    let maps = monitor
        .subscribe_maps()
        .await
        .context("subscribing to the edge's map")?;

    // Connect every connected actor's agent, each with its own clock offset.
    let rng = Rng::new(opts.seed);
    let connected: Vec<usize> = (0..scenario.actors.len())
        .filter(|&i| scenario.actors[i].connected)
        .collect();
    let (alert_tx, mut alert_rx) = mpsc::unbounded_channel::<(usize, ReceivedAlert)>();
    let mut agents = Vec::new();
    for &i in &connected {
        let files = pki.vehicle(vehicle_id(i))?;
        let tls = TlsFiles {
            ca: files.ca,
            cert: files.cert,
            key: files.key,
        };
        let offset =
            ((rng.fork(i as u64).uniform() * 2.0 - 1.0) * opts.max_clock_offset_us as f64) as i64;
        let clock: LocalClock = Arc::new(move || system_us() + offset);
        let mut config = AgentNetConfig::new(vehicle_id(i), &opts.edge_id, &endpoint, tls);
        config.clock = clock;
        let (agent, mut rx) = Agent::connect(config)
            .await
            .with_context(|| format!("connecting the agent of {}", scenario.actors[i].id))?;
        let tx = alert_tx.clone();
        tokio::spawn(async move {
            while let Some(a) = rx.recv().await {
                let _ = tx.send((i, a));
            }
        });
        agents.push((i, Arc::new(agent)));
    }
    drop(alert_tx);

    // Drive: each vehicle at 10 Hz, phases spread over the period, in real time.
    let start_us = system_us();
    // The run's 0 s on the edge's clock, the time base of its maps and of the agents' alert
    // and capture times.
    let edge_start_us = start_us + before.clock_offset_us;
    let scenario_arc = Arc::new(scenario.clone());
    let (stop_maps, stop_rx) = oneshot::channel();
    let map_sampler = tokio::spawn(sample_maps(
        maps,
        stop_rx,
        MapSampling {
            scenario: scenario_arc.clone(),
            geo: geo.clone(),
            sensor: opts.sensor,
            start_us: edge_start_us,
            until_s: scenario.duration_s + DRAIN.as_secs_f64(),
            period_s: edge_config(scenario, &opts.edge_id).map_period_us as f64 * 1e-6,
            snapshot_at_s: opts.snapshot_at_s,
        },
    ));
    let mut drivers = Vec::new();
    let n = agents.len().max(1) as u64;
    for (k, (i, agent)) in agents.iter().enumerate() {
        let (i, agent, geo, scenario) = (*i, agent.clone(), geo.clone(), scenario_arc.clone());
        let sensor = opts.sensor;
        let mut rng = rng.fork(1_000 + i as u64);
        let phase_us = k as u64 * 100_000 / n;
        drivers.push(tokio::spawn(async move {
            let mut step = 0u64;
            let mut refused = 0u64;
            let mut detections: Vec<(V2, V2)> = Vec::new();
            loop {
                let due_us = start_us + (phase_us + step * 100_000) as i64;
                let wait = due_us - system_us();
                if wait > 0 {
                    tokio::time::sleep(Duration::from_micros(wait as u64)).await;
                }
                let t_s = (system_us() - start_us) as f64 * 1e-6;
                if t_s > scenario.duration_s {
                    break;
                }
                // A traced vehicle outside its trace is not on the road: no perception.
                if let Some(p) = perceive(&scenario, &geo, &sensor, i, t_s, &mut rng) {
                    detections.extend(detections_vs_truth(&scenario, &geo, t_s, &p));
                    if let Err(e) = agent.push(&p).await {
                        refused += 1;
                        tracing::warn!("{}: {e}", scenario.actors[i].id);
                    }
                }
                step += 1;
            }
            (i, refused, detections)
        }));
    }
    let mut refused = 0;
    let mut detections = Vec::new();
    for d in drivers {
        let (i, r, seen) = d.await.context("a vehicle driver panicked")?;
        refused += r;
        detections.push((i, seen));
    }
    // Let the last alerts and maps arrive.
    tokio::time::sleep(DRAIN).await;

    let mut measured = Measured::default();
    for (_, agent) in &agents {
        let s = agent.stats();
        measured.frames_sent += s.frames_sent;
        measured.object_bytes += s.object_bytes;
        measured.objects_sent += s.objects_sent;
    }
    for (_, agent) in agents {
        if let Ok(agent) = Arc::try_unwrap(agent) {
            agent.close().await;
        }
    }
    // Every frame has been handled by now: the agents are closed and the core's task answers
    // a stats query only between two frames.
    let after = target::read_stats(&monitor, &endpoint, &opts.edge_id, system_us).await;
    let _ = stop_maps.send(());
    let sampled = map_sampler.await.context("the map sampler panicked");
    monitor.close().await;
    if let Some(edge) = edge {
        edge.shutdown().await;
    }
    let after = after.context("reading the edge's statistics after the run")?;
    let counters = RunCounters::between(&before.stats, &after.stats)?;
    let (mut fusion, snapshot_tracks) = sampled?;
    for (i, seen) in detections {
        for (reported, truth) in seen {
            fusion.detection(i, reported, truth);
        }
    }
    let fusion = fusion.report();
    if fusion.object_seconds > 0.0 {
        measured.fusion = Some(fusion);
    } else {
        tracing::warn!("no situation map of the edge came during the run: no fusion figures");
    }
    let core = &counters.frames;
    measured.frames_received = core.frames_received;
    measured.frames_rejected = core.frames_rejected_total();
    measured.rejected_by_reason = core
        .frames_rejected
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    // Quantiles cannot be differenced: an external edge's cover its lifetime, and the
    // report's `edge.timing_covers` says so.
    measured.processing_p50_us = after.stats.processing_us.p50;
    measured.processing_p99_us = after.stats.processing_us.p99;
    measured.stage_us = Some(after.stats.stage_us.clone());
    if refused > 0 {
        bail!("{refused} perception cycles were refused by the agents");
    }
    if counters.frames_dropped > 0 {
        tracing::warn!("the edge dropped {} frames", counters.frames_dropped);
    }
    if !core.frames_rejected.is_empty() {
        tracing::warn!("frames rejected: {:?}", core.frames_rejected);
    }
    if core.observations_out_of_area > 0 {
        tracing::warn!(
            "the edge dropped {} of the run's {} observations as outside its area {:?} \
             (the scenario reaches {:?} m from its origin; on a shared edge, other vehicles' \
             observations count too)",
            core.observations_out_of_area,
            core.observations,
            after.stats.area,
            scenario_reach_m
        );
    }
    if matches!(opts.edge, EdgeTarget::External { .. }) {
        tracing::info!(
            "counters are the run's (differences of the edge's stats before and after it); \
             processing and stage times cover the edge's lifetime ({} frames)",
            after.stats.processing_us.n
        );
    }

    let mut alerts = Vec::new();
    while let Ok((i, a)) = alert_rx.try_recv() {
        alerts.push(alert_event(scenario, &geo, edge_start_us, i, &a));
    }
    alerts.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    let score = score(true_conflicts(scenario), &alerts);
    let mut report = Report::new(scenario, opts.seed, "live", &measured, &score, &alerts);
    report.edge = Some(EdgeUsed {
        kind: opts.edge.kind(),
        id: opts.edge_id.clone(),
        endpoint: endpoint.clone(),
        timing_covers: match opts.edge {
            EdgeTarget::InProcess => "run",
            EdgeTarget::External { .. } => "edge_lifetime",
        },
        timing_frames: after.stats.processing_us.n,
        frames_accepted: core.frames_accepted,
        frames_dropped: counters.frames_dropped,
        observations: core.observations,
        observations_out_of_area: core.observations_out_of_area,
        alerts_published: counters.alerts_published,
        area: after.stats.area,
        scenario_reach_m,
        clock_offset_us: before.clock_offset_us,
    });
    report
        .write(&opts.out, &alerts)
        .context("writing the report")?;
    Ok(RunResult {
        report,
        score,
        alerts,
        snapshot_tracks,
    })
}

/// What [`sample_maps`] needs to score a map against ground truth.
struct MapSampling {
    scenario: Arc<Scenario>,
    geo: Arc<Geo>,
    sensor: SensorModel,
    /// Edge time of the run's 0 s, µs.
    start_us: i64,
    /// Maps later than this (run seconds) are not sampled.
    until_s: f64,
    /// The map period, for the meter's per-minute figures.
    period_s: f64,
    snapshot_at_s: Option<f64>,
}

/// Samples every situation map the edge publishes against the ground truth at the map's own
/// time (`start_us` is on the edge's clock), and keeps the map nearest to the snapshot
/// instant. Ends when told to, after the maps already received.
async fn sample_maps(
    mut maps: mpsc::UnboundedReceiver<SituationMap>,
    mut stop: oneshot::Receiver<()>,
    s: MapSampling,
) -> (FusionMeter, Option<Vec<TrackBox>>) {
    let mut fusion = FusionMeter::new(s.period_s);
    let mut nearest: Option<(f64, SituationMap)> = None;
    let mut handle = |map: SituationMap| {
        let t_s = (map.time_us - s.start_us) as f64 * 1e-6;
        if (0.0..=s.until_s).contains(&t_s) {
            let truth = fusion_truth(&s.scenario, &s.sensor, t_s);
            let tracks: Vec<(u32, V2)> = track_boxes(&map, &s.geo)
                .iter()
                .map(|b| (b.id, b.center))
                .collect();
            fusion.sample(&truth, &tracks);
        }
        if let Some(at) = s.snapshot_at_s {
            let off = (t_s - at).abs();
            if nearest.as_ref().is_none_or(|(best, _)| off < *best) {
                nearest = Some((off, map));
            }
        }
    };
    loop {
        tokio::select! {
            biased;
            map = maps.recv() => match map {
                Some(map) => handle(map),
                None => break,
            },
            _ = &mut stop => {
                while let Ok(map) = maps.try_recv() {
                    handle(map);
                }
                break;
            }
        }
    }
    let snapshot = nearest.map(|(_, map)| track_boxes(&map, &s.geo));
    (fusion, snapshot)
}

/// The tracks of a situation map as boxes in the scenario's frame. The map's offsets are East
/// and North of the origin it names; they are converted through WGS84, so a map from an edge
/// whose origin is not the scenario's comes out right too.
pub fn track_boxes(map: &SituationMap, geo: &Geo) -> Vec<TrackBox> {
    let frame = EnuFrame::new(map.origin.to_geodetic());
    // The angle between the map's axes and the scenario's: zero when they share an origin.
    let east = geo.frame.rotate_from(&frame, [1.0, 0.0]);
    let axes_angle = east[1].atan2(east[0]);
    map.tracks
        .iter()
        .map(|t| {
            let offset = Vector3::new(
                t.offset_cm[0] as f64 / 100.0,
                t.offset_cm[1] as f64 / 100.0,
                0.0,
            );
            TrackBox {
                id: t.track_id,
                center: geo.to_local(&frame.to_geodetic(&offset)),
                yaw: yaw_from_u8(t.yaw) + axes_angle,
                length: t.length_dm as f64 / 10.0,
                width: t.width_dm as f64 / 10.0,
            }
        })
        .collect()
}

/// The edge's configuration for a scenario: its origin is the scenario's, and its coverage
/// reaches every road user of the run (at least the default 500 m).
pub fn edge_config(scenario: &Scenario, edge_id: &str) -> EdgeConfig {
    let origin = Geodetic::new(scenario.origin.0, scenario.origin.1, 0.0);
    let mut config = EdgeConfig::new(edge_id, origin);
    config.radius_m = config.radius_m.max(scenario.extent_m() + 100.0);
    config
}

/// Turns a received alert into the scenario's own ids and coordinates. `start_us` is the
/// edge time of the start of the run.
pub(crate) fn alert_event(
    scenario: &Scenario,
    geo: &Geo,
    start_us: i64,
    receiver: usize,
    r: &ReceivedAlert,
) -> AlertEvent {
    let a = &r.alert;
    let other = match a.other.vehicle {
        // Vehicle ids are actor indices plus 1; on a shared edge, an id of 0 or beyond the
        // actors is a vehicle of someone else's.
        Some(v) => {
            v.0.checked_sub(1)
                .and_then(|k| scenario.actors.get(k as usize))
                .map(|actor| actor.id.clone())
        }
        None => {
            // An unconnected road user: the one nearest to where the edge saw it.
            let t = (a.trigger_capture_us - start_us) as f64 * 1e-6;
            let p = geo.to_local(&a.other.position.to_geodetic());
            scenario
                .actors
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != receiver)
                .filter_map(|(_, actor)| Some(((actor.state(t)?.pos - p).norm(), actor)))
                .filter(|(d, _)| *d < 3.0)
                .min_by(|x, y| x.0.total_cmp(&y.0))
                .map(|(_, actor)| actor.id.clone())
        }
    };
    let cp = geo.to_local(&a.conflict_point.to_geodetic());
    AlertEvent {
        t_s: (r.received_edge_us - start_us) as f64 * 1e-6,
        kind: match a.kind {
            AlertKind::Raise => "raise",
            AlertKind::Refresh => "refresh",
            AlertKind::Clear => "clear",
        },
        vehicle: scenario.actors[receiver].id.clone(),
        other,
        ttc_s: (a.ttc_ms != u32::MAX).then_some(a.ttc_ms as f64 / 1000.0),
        probability: a.probability_pct as f64 / 100.0,
        conflict_point: [
            (cp.x * 100.0).round() / 100.0,
            (cp.y * 100.0).round() / 100.0,
        ],
        latency_ms: r.latency_us as f64 / 1000.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::units::yaw_to_u8;
    use protocol::{MapTrack, ObjectClass};

    #[test]
    fn map_tracks_come_out_in_the_scenario_frame_whatever_the_edge_origin() {
        let geo = Geo::new((48.137154, 11.576124));
        // An edge 300 m east and 200 m north of the scenario's origin.
        let edge_origin = geo.to_geodetic(V2::new(300.0, 200.0));
        let edge_frame = EnuFrame::new(edge_origin.to_point().to_geodetic());
        let truth = V2::new(10.0, -5.0);
        let at_edge = edge_frame.to_enu(&geo.to_geodetic(truth));
        let heading = 0.5;
        let map = SituationMap {
            edge: "e".into(),
            time_us: 0,
            origin: edge_origin.to_point(),
            tracks: vec![MapTrack {
                track_id: 7,
                vehicle: None,
                class: ObjectClass::Car,
                offset_cm: [
                    (at_edge.x * 100.0).round() as i32,
                    (at_edge.y * 100.0).round() as i32,
                ],
                velocity_cms: [0, 0],
                yaw: yaw_to_u8("yaw", heading).unwrap(),
                length_dm: 45,
                width_dm: 18,
            }],
        };
        let boxes = track_boxes(&map, &geo);
        assert_eq!(boxes.len(), 1);
        let b = boxes[0];
        assert_eq!(b.id, 7);
        assert!((b.center - truth).norm() < 0.02, "{b:?}");
        // The yaw code is 1/256 turn; the axes of the two frames differ by a few millidegrees.
        assert!((b.yaw - heading).abs() < 0.013, "{b:?}");
        assert_eq!((b.length, b.width), (4.5, 1.8));
    }
}
