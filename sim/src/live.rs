//! Live mode: a real edge node and one real agent per connected vehicle, each with its own
//! zenoh session over QUIC with mutual TLS on loopback, in real time.

use crate::perception::{perceive, Geo, SensorModel};
use crate::report::{Measured, Report};
use crate::rng::Rng;
use crate::score::{score, true_conflicts, AlertEvent, Score};
use crate::world::Scenario;
use anyhow::{bail, Context};
use edge_node::core::EdgeConfig;
use edge_node::net::{EdgeNetConfig, EdgeNode};
use edge_node::pki::Pki;
use protocol::{AlertKind, Geodetic, VehicleId};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use vehicle_agent::{Agent, AgentNetConfig, LocalClock, ReceivedAlert, TlsFiles};

#[derive(Debug, Clone)]
pub struct LiveOptions {
    pub seed: u64,
    /// Where the certificates are made (`DIR/pki`) and the report goes.
    pub out: PathBuf,
    pub sensor: SensorModel,
    pub edge_id: String,
    /// Each vehicle's clock is offset from the edge's by a draw in +-this, µs; the agents'
    /// clock sync has to absorb it.
    pub max_clock_offset_us: i64,
}

impl LiveOptions {
    pub fn new(out: PathBuf, seed: u64) -> Self {
        Self {
            seed,
            out,
            sensor: SensorModel::default(),
            edge_id: "demo".into(),
            max_clock_offset_us: 50_000,
        }
    }
}

pub struct RunResult {
    pub report: Report,
    pub score: Score,
    pub alerts: Vec<AlertEvent>,
}

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
    let geo = Arc::new(Geo::new(scenario.origin));
    let start_us = system_us();
    let scenario_arc = Arc::new(scenario.clone());
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
                    if let Err(e) = agent.push(&p).await {
                        refused += 1;
                        tracing::warn!("{}: {e}", scenario.actors[i].id);
                    }
                }
                step += 1;
            }
            refused
        }));
    }
    let mut refused = 0;
    for d in drivers {
        refused += d.await.context("a vehicle driver panicked")?;
    }
    // Let the last alerts arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;

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
    let edge_stats = edge.shutdown().await;
    measured.frames_received = edge_stats.core.frames_received;
    measured.frames_rejected = edge_stats.core.frames_rejected_total();
    measured.rejected_by_reason = edge_stats
        .core
        .frames_rejected
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    measured.processing_p50_us = edge_stats.processing_us.quantile(0.5);
    measured.processing_p99_us = edge_stats.processing_us.quantile(0.99);
    if refused > 0 {
        bail!("{refused} perception cycles were refused by the agents");
    }
    if edge_stats.frames_dropped > 0 {
        tracing::warn!("the edge dropped {} frames", edge_stats.frames_dropped);
    }
    if !edge_stats.core.frames_rejected.is_empty() {
        tracing::warn!("frames rejected: {:?}", edge_stats.core.frames_rejected);
    }

    let mut alerts = Vec::new();
    while let Ok((i, a)) = alert_rx.try_recv() {
        alerts.push(alert_event(scenario, &geo, start_us, i, &a));
    }
    alerts.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    let score = score(true_conflicts(scenario), &alerts);
    let report = Report::new(scenario, opts.seed, "live", &measured, &score, &alerts);
    report
        .write(&opts.out, &alerts)
        .context("writing the report")?;
    Ok(RunResult {
        report,
        score,
        alerts,
    })
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
        Some(v) => scenario
            .actors
            .get(v.0 as usize - 1)
            .map(|actor| actor.id.clone()),
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
