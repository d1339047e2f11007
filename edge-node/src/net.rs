//! The zenoh driver around [`EdgeCore`]: a router session listening on QUIC with mutual TLS.
//!
//! Frames arrive through a subscriber callback and a channel into one task that owns the core,
//! so the core needs no locks; that task times each frame and each stage of it (a
//! [`StageTimer`] as the core's probe), publishes the alerts the frame produced before it takes
//! the next one, and runs the 10 Hz tick that publishes the map. The clock queryable answers
//! from the callback thread, stamping receipt and reply. Queries on the stats key
//! ([`stats_key`]) go through a channel to the core's task, which answers them between two
//! frames, so the counters of one answer are consistent with each other.
//!
//! [`EdgeMonitor`] is the other side: a client that reads an edge's stats and subscribes to its
//! map, for the simulator's live mode and for dashboards.
//!
//! Invariant: this is the only module of the edge that knows about zenoh.

use crate::core::{EdgeConfig, EdgeCore, EdgeStats};
use crate::histogram::{Histogram, StageFigures, StageTimer, StageTimes};
use crate::pki::CertFiles;
use protocol::{keys, ClockReply, ClockRequest, Message, SituationMap, VehicleId};
use serde::{Deserialize, Serialize};
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use zenoh::Wait;

/// The edge's clock, µs UTC: the time base of the whole area.
pub type EdgeClock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub fn system_clock() -> EdgeClock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0)
    })
}

#[derive(Clone)]
pub struct EdgeNetConfig {
    pub core: EdgeConfig,
    /// zenoh endpoints to listen on, e.g. `quic/127.0.0.1:7447`.
    pub listen: Vec<String>,
    pub tls: CertFiles,
    /// zenoh's default of 1,000 sessions is too few for a busy junction.
    pub max_sessions: usize,
    /// Frames waiting for the core beyond this are dropped and counted.
    pub queue_capacity: usize,
    pub clock: EdgeClock,
}

impl EdgeNetConfig {
    pub fn new(core: EdgeConfig, listen: Vec<String>, tls: CertFiles) -> Self {
        Self {
            core,
            listen,
            tls,
            max_sessions: 10_000,
            queue_capacity: 100_000,
            clock: system_clock(),
        }
    }
}

/// The key on which an edge answers queries for its statistics, as JSON ([`EdgeStatsReply`]).
///
/// `v2e/edge/{edge}/stats`. It is defined here rather than in `protocol::keys` because the
/// reply is JSON for operators and tools, not a message of the wire protocol; it sits next to
/// the protocol's keys and follows their pattern.
pub fn stats_key(edge: &str) -> String {
    format!("v2e/edge/{edge}/stats")
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EdgeNetError {
    #[error("cannot listen on {endpoints:?}: {detail}")]
    Listen {
        endpoints: Vec<String>,
        detail: String,
    },
    /// A monitor could not open its client session: the edge is not reachable there, or the
    /// certificates do not fit (see docs/operations.md, troubleshooting).
    #[error("cannot connect to the edge at {endpoint}: {detail}")]
    Connect { endpoint: String, detail: String },
    /// Nothing answered a query in time: no edge of that id is connected, or it is too busy.
    #[error("no answer on {key}")]
    NoAnswer { key: String },
    /// The answer was an error or not what the key carries.
    #[error("bad answer on {key}: {detail}")]
    BadReply { key: String, detail: String },
    #[error("zenoh: {0}")]
    Zenoh(String),
}

fn zerr(e: impl std::fmt::Display) -> EdgeNetError {
    EdgeNetError::Zenoh(e.to_string())
}

/// A zenoh router configuration: listen on QUIC with mutual TLS, no scouting.
pub fn router_config(
    listen: &[String],
    tls: &CertFiles,
    max_sessions: usize,
) -> Result<zenoh::Config, EdgeNetError> {
    let mut c = zenoh::Config::default();
    let s = |p: &std::path::Path| serde_json::to_string(&p.display().to_string()).expect("str");
    let entries = [
        ("mode", "\"router\"".to_string()),
        (
            "listen/endpoints",
            serde_json::to_string(listen).expect("list"),
        ),
        ("scouting/multicast/enabled", "false".into()),
        ("transport/unicast/max_sessions", max_sessions.to_string()),
        ("transport/link/tls/root_ca_certificate", s(&tls.ca)),
        ("transport/link/tls/listen_certificate", s(&tls.cert)),
        ("transport/link/tls/listen_private_key", s(&tls.key)),
        ("transport/link/tls/enable_mtls", "true".into()),
    ];
    for (k, v) in entries {
        c.insert_json5(k, &v).map_err(zerr)?;
    }
    Ok(c)
}

/// A zenoh client configuration: connect to `endpoint` over QUIC with mutual TLS, no
/// scouting. The files are checked first so that a missing one is named.
pub fn client_config(endpoint: &str, tls: &CertFiles) -> Result<zenoh::Config, EdgeNetError> {
    for path in [&tls.ca, &tls.cert, &tls.key] {
        std::fs::metadata(path).map_err(|e| EdgeNetError::Connect {
            endpoint: endpoint.to_string(),
            detail: format!("cannot read {}: {e}", path.display()),
        })?;
    }
    let mut c = zenoh::Config::default();
    let s = |p: &std::path::Path| serde_json::to_string(&p.display().to_string()).expect("str");
    let entries = [
        ("mode", "\"client\"".to_string()),
        (
            "connect/endpoints",
            serde_json::to_string(&[endpoint]).expect("list"),
        ),
        ("scouting/multicast/enabled", "false".into()),
        ("transport/link/tls/root_ca_certificate", s(&tls.ca)),
        ("transport/link/tls/connect_certificate", s(&tls.cert)),
        ("transport/link/tls/connect_private_key", s(&tls.key)),
        ("transport/link/tls/enable_mtls", "true".into()),
    ];
    for (k, v) in entries {
        c.insert_json5(k, &v).map_err(zerr)?;
    }
    Ok(c)
}

/// What the edge measured, for reports and benchmarks.
#[derive(Debug, Clone, Default)]
pub struct EdgeRunStats {
    pub core: EdgeStats,
    /// Time spent in `handle_frame` plus publishing its alerts, µs.
    pub processing_us: Histogram,
    /// Time spent in each stage of the core, frames and ticks (not publishing).
    pub stage_us: StageTimes,
    /// Frames dropped because the core's queue was full.
    pub frames_dropped: u64,
    pub alerts_published: u64,
    /// Alerts the transport refused (logged each time).
    pub alerts_failed: u64,
    pub maps_published: u64,
    pub clock_queries: u64,
}

impl EdgeRunStats {
    /// The JSON form, as the stats key of the edge configured by `config` answers it.
    pub fn reply(&self, config: &EdgeConfig, time_us: i64) -> EdgeStatsReply {
        let h = &self.processing_us;
        EdgeStatsReply {
            edge: config.edge_id.clone(),
            time_us,
            frames: self.core.clone(),
            frames_dropped: self.frames_dropped,
            alerts_published: self.alerts_published,
            alerts_failed: self.alerts_failed,
            maps_published: self.maps_published,
            clock_queries: self.clock_queries,
            processing_us: ProcessingFigures {
                n: h.len(),
                p50: h.quantile(0.5),
                p99: h.quantile(0.99),
                max: h.max() as f64,
            },
            stage_us: self.stage_us.figures(),
            area: Some(EdgeArea::of(config)),
        }
    }
}

/// The answer on [`stats_key`]: one JSON object. Field names are frozen: later versions add
/// fields and rename none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeStatsReply {
    pub edge: String,
    /// The edge's clock when it answered, µs UTC.
    pub time_us: i64,
    /// The core's counters: frames received, accepted and rejected by reason, tracks, pairs,
    /// alerts.
    pub frames: EdgeStats,
    /// Frames dropped because the core's queue was full.
    pub frames_dropped: u64,
    pub alerts_published: u64,
    pub alerts_failed: u64,
    pub maps_published: u64,
    pub clock_queries: u64,
    /// Per frame, from taking it off the queue to having published its alerts, µs.
    pub processing_us: ProcessingFigures,
    /// Per stage of the core ([`crate::core::Stage::name`]): p50 and p99 per pass (a frame or
    /// a tick) in µs and the share of the core's time; stages never entered are left out.
    pub stage_us: BTreeMap<String, StageFigures>,
    /// The area the edge covers, so that a client can check that its vehicles are inside it.
    /// Always present in answers of this version; `None` only when read from an edge that
    /// predates the field.
    #[serde(default)]
    pub area: Option<EdgeArea>,
}

/// The edge's coverage: a circle around the origin of its ENU frame.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EdgeArea {
    /// WGS84 latitude of the origin, degrees.
    pub origin_lat_deg: f64,
    /// WGS84 longitude of the origin, degrees.
    pub origin_lon_deg: f64,
    /// Observations and tracks farther than this from the origin are dropped, metres.
    pub radius_m: f64,
}

impl EdgeArea {
    pub fn of(config: &EdgeConfig) -> Self {
        Self {
            origin_lat_deg: config.origin.lat_deg,
            origin_lon_deg: config.origin.lon_deg,
            radius_m: config.radius_m,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProcessingFigures {
    /// Frames measured.
    pub n: u64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// The transport's counters, which zenoh's callbacks update and the core's task reads.
#[derive(Clone, Default)]
struct SharedCounters {
    dropped: Arc<AtomicU64>,
    clock_queries: Arc<AtomicU64>,
}

struct Incoming {
    vehicle: VehicleId,
    bytes: Vec<u8>,
}

/// A running edge node. [`EdgeNode::shutdown`] stops it and returns what it measured.
pub struct EdgeNode {
    session: zenoh::Session,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<EdgeRunStats>,
    counters: SharedCounters,
    _subscriber: zenoh::pubsub::Subscriber<()>,
    _clock: zenoh::query::Queryable<()>,
    _stats: zenoh::query::Queryable<()>,
}

/// Stats queries waiting for the core's task; more are refused with an error reply.
const STATS_QUERY_BACKLOG: usize = 64;

impl EdgeNode {
    pub async fn start(config: EdgeNetConfig) -> Result<Self, EdgeNetError> {
        let zconfig = router_config(&config.listen, &config.tls, config.max_sessions)?;
        let session = zenoh::open(zconfig)
            .await
            .map_err(|e| EdgeNetError::Listen {
                endpoints: config.listen.clone(),
                detail: e.to_string(),
            })?;
        let edge = config.core.edge_id.clone();
        let clock = config.clock.clone();

        let (tx, rx) = mpsc::channel::<Incoming>(config.queue_capacity);
        let counters = SharedCounters::default();
        let subscriber = {
            let (edge, dropped) = (edge.clone(), counters.dropped.clone());
            session
                .declare_subscriber(keys::all_frames(&edge))
                .callback(move |sample| {
                    let Some(vehicle) = keys::parse_frames_key(&edge, sample.key_expr().as_str())
                    else {
                        tracing::warn!("ignored a sample on {}", sample.key_expr());
                        return;
                    };
                    let bytes = sample.payload().to_bytes().into_owned();
                    if tx.try_send(Incoming { vehicle, bytes }).is_err() {
                        dropped.fetch_add(1, Ordering::Relaxed);
                    }
                })
                .await
                .map_err(zerr)?
        };

        let queryable = {
            let (clock, queries) = (clock.clone(), counters.clock_queries.clone());
            session
                .declare_queryable(keys::clock(&edge))
                .callback(move |query| {
                    let t2 = clock();
                    queries.fetch_add(1, Ordering::Relaxed);
                    let request = query
                        .payload()
                        .map(|p| p.to_bytes())
                        .ok_or(protocol::DecodeError::Empty)
                        .and_then(|b| ClockRequest::decode(&b));
                    let Ok(request) = request else {
                        let _ = query.reply_err("not a clock request").wait();
                        return;
                    };
                    let reply = ClockReply {
                        t1_us: request.t1_us,
                        t2_us: t2,
                        t3_us: clock(),
                    };
                    let bytes = reply.encode().expect("a clock reply always encodes");
                    if let Err(e) = query.reply(query.key_expr().clone(), bytes).wait() {
                        tracing::debug!("clock reply failed: {e}");
                    }
                })
                .await
                .map_err(zerr)?
        };

        // Stats queries are answered by the core's task, which owns what they ask about.
        let (stats_tx, stats_rx) = mpsc::channel::<zenoh::query::Query>(STATS_QUERY_BACKLOG);
        let stats_queryable = session
            .declare_queryable(stats_key(&edge))
            .callback(move |query| {
                if let Err(e) = stats_tx.try_send(query) {
                    let query = e.into_inner();
                    let _ = query.reply_err("the edge is busy; ask again").wait();
                }
            })
            .await
            .map_err(zerr)?;

        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(run_core(
            session.clone(),
            EdgeCore::new(config.core.clone()),
            clock,
            counters.clone(),
            Inputs {
                frames: rx,
                stats_queries: stats_rx,
                stop: stop_rx,
            },
        ));
        tracing::info!("edge {edge} listening on {:?}", config.listen);
        Ok(Self {
            session,
            stop: Some(stop_tx),
            task,
            counters,
            _subscriber: subscriber,
            _clock: queryable,
            _stats: stats_queryable,
        })
    }

    /// Stops the node and returns its measurements.
    pub async fn shutdown(mut self) -> EdgeRunStats {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let mut stats = (&mut self.task).await.unwrap_or_default();
        self.counters.read_into(&mut stats);
        let _ = self.session.close().await;
        stats
    }
}

impl SharedCounters {
    fn read_into(&self, stats: &mut EdgeRunStats) {
        stats.frames_dropped = self.dropped.load(Ordering::Relaxed);
        stats.clock_queries = self.clock_queries.load(Ordering::Relaxed);
    }
}

/// What the core's task takes in.
struct Inputs {
    frames: mpsc::Receiver<Incoming>,
    stats_queries: mpsc::Receiver<zenoh::query::Query>,
    stop: oneshot::Receiver<()>,
}

async fn run_core(
    session: zenoh::Session,
    mut core: EdgeCore,
    clock: EdgeClock,
    counters: SharedCounters,
    inputs: Inputs,
) -> EdgeRunStats {
    let Inputs {
        frames: mut rx,
        stats_queries: mut queries,
        mut stop,
    } = inputs;
    let edge = core.config().edge_id.clone();
    let mut stats = EdgeRunStats::default();
    let mut stages = StageTimer::default();
    let mut publishers: HashMap<VehicleId, zenoh::pubsub::Publisher<'static>> = HashMap::new();
    let map_publisher = session.declare_publisher(keys::map(&edge)).await.ok();
    // The latest map, for late joiners that query the map key instead of waiting for the next
    // publication.
    let latest_map: Arc<std::sync::Mutex<Option<Vec<u8>>>> = Arc::default();
    let _map_queryable = {
        let latest = latest_map.clone();
        session
            .declare_queryable(keys::map(&edge))
            .callback(move |query| {
                let snapshot = latest.lock().expect("map lock").clone();
                let reply = match snapshot {
                    Some(bytes) => query.reply(query.key_expr().clone(), bytes).wait(),
                    None => query.reply_err("no map yet").wait(),
                };
                if let Err(e) = reply {
                    tracing::debug!("map snapshot reply failed: {e}");
                }
            })
            .await
            .map_err(|e| tracing::warn!("no map snapshot queryable: {e}"))
            .ok()
    };
    let mut tick = tokio::time::interval(Duration::from_micros(
        core.config().map_period_us.max(1_000) as u64,
    ));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            // Stop first, then the tick (so a steady stream of frames cannot starve the map and
            // the ageing of tracks), then stats queries, then frames.
            biased;
            _ = &mut stop => break,
            _ = tick.tick() => {
                core.handle_tick_probed(clock(), &mut stages);
                let (sent, failed) = publish_alerts(&session, &edge, &mut core, &mut publishers).await;
                stats.alerts_published += sent;
                stats.alerts_failed += failed;
                if let Some(map) = core.poll_map() {
                    if let Ok(bytes) = map.encode() {
                        *latest_map.lock().expect("map lock") = Some(bytes.clone());
                        if let Some(publisher) = &map_publisher {
                            if publisher.put(bytes).await.is_ok() {
                                stats.maps_published += 1;
                            }
                        }
                    }
                }
            }
            Some(query) = queries.recv() => {
                stats.core = core.stats().clone();
                stats.stage_us = stages.times().clone();
                counters.read_into(&mut stats);
                let json = serde_json::to_vec(&stats.reply(core.config(), clock()))
                    .expect("the stats serialise");
                if let Err(e) = query.reply(query.key_expr().clone(), json).await {
                    tracing::debug!("stats reply failed: {e}");
                }
            }
            incoming = rx.recv() => {
                let Some(incoming) = incoming else { break };
                let started = Instant::now();
                let outcome =
                    core.handle_frame_probed(clock(), incoming.vehicle, &incoming.bytes, &mut stages);
                if let Err(e) = outcome {
                    tracing::debug!("rejected a frame from {}: {e}", incoming.vehicle);
                }
                let (sent, failed) = publish_alerts(&session, &edge, &mut core, &mut publishers).await;
                stats.alerts_published += sent;
                stats.alerts_failed += failed;
                stats.processing_us.record(started.elapsed().as_micros() as u64);
            }
        }
    }
    stats.core = core.stats().clone();
    stats.stage_us = stages.times().clone();
    stats
}

/// Publishes every alert the core has queued; returns how many went out and how many failed
/// (logged and counted, never silently lost).
async fn publish_alerts(
    session: &zenoh::Session,
    edge: &str,
    core: &mut EdgeCore,
    publishers: &mut HashMap<VehicleId, zenoh::pubsub::Publisher<'static>>,
) -> (u64, u64) {
    let (mut sent, mut failed) = (0, 0);
    while let Some(alert) = core.poll_alert() {
        let publisher = match publishers.entry(alert.target) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let declared = session
                    .declare_publisher(keys::alerts(edge, alert.target))
                    .express(true)
                    .congestion_control(zenoh::qos::CongestionControl::Block)
                    .await;
                match declared {
                    Ok(p) => e.insert(p),
                    Err(err) => {
                        tracing::warn!("cannot publish alerts to {}: {err}", alert.target);
                        failed += 1;
                        continue;
                    }
                }
            }
        };
        let bytes = alert.encode().expect("alerts always encode");
        match publisher.put(bytes).await {
            Ok(()) => sent += 1,
            Err(e) => {
                tracing::warn!("alert to {} not sent: {e}", alert.target);
                failed += 1;
            }
        }
    }
    (sent, failed)
}

/// A client of one edge's public keys: its stats ([`stats_key`]) and its situation map. It
/// publishes nothing. The simulator's live mode reads the edge through one, as a dashboard
/// would; it needs a client certificate from the edge's CA.
pub struct EdgeMonitor {
    session: zenoh::Session,
    edge: String,
    maps: Option<zenoh::pubsub::Subscriber<()>>,
}

impl EdgeMonitor {
    pub async fn connect(
        endpoint: &str,
        edge_id: &str,
        tls: &CertFiles,
    ) -> Result<Self, EdgeNetError> {
        let session = zenoh::open(client_config(endpoint, tls)?)
            .await
            .map_err(|e| EdgeNetError::Connect {
                endpoint: endpoint.to_string(),
                detail: e.to_string(),
            })?;
        Ok(Self {
            session,
            edge: edge_id.to_string(),
            maps: None,
        })
    }

    /// The edge's statistics now, or an error if no answer came within `timeout`.
    pub async fn stats(&self, timeout: Duration) -> Result<EdgeStatsReply, EdgeNetError> {
        let key = stats_key(&self.edge);
        let replies = self
            .session
            .get(&key)
            .timeout(timeout)
            .await
            .map_err(zerr)?;
        let reply = replies
            .recv_async()
            .await
            .map_err(|_| EdgeNetError::NoAnswer { key: key.clone() })?;
        let bad = |detail: String| EdgeNetError::BadReply {
            key: key.clone(),
            detail,
        };
        let sample = reply.result().map_err(|e| {
            bad(e
                .payload()
                .try_to_string()
                .map(|s| s.into_owned())
                .unwrap_or_else(|_| "an error reply".into()))
        })?;
        serde_json::from_slice(&sample.payload().to_bytes()).map_err(|e| bad(e.to_string()))
    }

    /// Every situation map the edge publishes from now on, decoded (undecodable ones are
    /// logged and skipped). The channel is unbounded: the receiver has to keep up with
    /// 10 maps a second. It closes when the monitor closes; a second call replaces the first
    /// subscription.
    pub async fn subscribe_maps(
        &mut self,
    ) -> Result<mpsc::UnboundedReceiver<SituationMap>, EdgeNetError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let subscriber = self
            .session
            .declare_subscriber(keys::map(&self.edge))
            .callback(
                move |sample| match SituationMap::decode(&sample.payload().to_bytes()) {
                    Ok(map) => {
                        let _ = tx.send(map);
                    }
                    Err(e) => tracing::warn!("an undecodable map on {}: {e}", sample.key_expr()),
                },
            )
            .await
            .map_err(zerr)?;
        self.maps = Some(subscriber);
        Ok(rx)
    }

    /// Ends the subscription (its channel closes) and the session.
    pub async fn close(mut self) {
        if let Some(maps) = self.maps.take() {
            let _ = maps.undeclare().await;
        }
        let _ = self.session.close().await;
    }
}
