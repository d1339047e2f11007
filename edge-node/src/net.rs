//! The zenoh driver around [`EdgeCore`]: a router session listening on QUIC with mutual TLS.
//!
//! Frames arrive through a subscriber callback and a channel into one task that owns the core,
//! so the core needs no locks; that task times each frame, publishes the alerts the frame
//! produced before it takes the next one, and runs the 10 Hz tick that publishes the map. The
//! clock queryable answers from the callback thread, stamping receipt and reply.
//!
//! Invariant: this is the only module of the edge that knows about zenoh.

use crate::core::{EdgeConfig, EdgeCore, EdgeStats};
use crate::histogram::Histogram;
use crate::pki::CertFiles;
use protocol::{keys, ClockReply, ClockRequest, Message, VehicleId};
use std::collections::hash_map::Entry;
use std::collections::HashMap;
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

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EdgeNetError {
    #[error("cannot listen on {endpoints:?}: {detail}")]
    Listen {
        endpoints: Vec<String>,
        detail: String,
    },
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

/// What the edge measured, for reports and benchmarks.
#[derive(Debug, Clone, Default)]
pub struct EdgeRunStats {
    pub core: EdgeStats,
    /// Time spent in `handle_frame` plus publishing its alerts, µs.
    pub processing_us: Histogram,
    /// Frames dropped because the core's queue was full.
    pub frames_dropped: u64,
    pub alerts_published: u64,
    /// Alerts the transport refused (logged each time).
    pub alerts_failed: u64,
    pub maps_published: u64,
    pub clock_queries: u64,
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
    dropped: Arc<AtomicU64>,
    clock_queries: Arc<AtomicU64>,
    _subscriber: zenoh::pubsub::Subscriber<()>,
    _clock: zenoh::query::Queryable<()>,
}

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
        let dropped = Arc::new(AtomicU64::new(0));
        let subscriber = {
            let (edge, dropped) = (edge.clone(), dropped.clone());
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

        let clock_queries = Arc::new(AtomicU64::new(0));
        let queryable = {
            let (clock, queries) = (clock.clone(), clock_queries.clone());
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

        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(run_core(
            session.clone(),
            EdgeCore::new(config.core.clone()),
            clock,
            rx,
            stop_rx,
        ));
        tracing::info!("edge {edge} listening on {:?}", config.listen);
        Ok(Self {
            session,
            stop: Some(stop_tx),
            task,
            dropped,
            clock_queries,
            _subscriber: subscriber,
            _clock: queryable,
        })
    }

    /// Stops the node and returns its measurements.
    pub async fn shutdown(mut self) -> EdgeRunStats {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let mut stats = (&mut self.task).await.unwrap_or_default();
        stats.frames_dropped = self.dropped.load(Ordering::Relaxed);
        stats.clock_queries = self.clock_queries.load(Ordering::Relaxed);
        let _ = self.session.close().await;
        stats
    }
}

async fn run_core(
    session: zenoh::Session,
    mut core: EdgeCore,
    clock: EdgeClock,
    mut rx: mpsc::Receiver<Incoming>,
    mut stop: oneshot::Receiver<()>,
) -> EdgeRunStats {
    let edge = core.config().edge_id.clone();
    let mut stats = EdgeRunStats::default();
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
            // the ageing of tracks), then frames.
            biased;
            _ = &mut stop => break,
            _ = tick.tick() => {
                core.handle_tick(clock());
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
            incoming = rx.recv() => {
                let Some(incoming) = incoming else { break };
                let started = Instant::now();
                if let Err(e) = core.handle_frame(clock(), incoming.vehicle, &incoming.bytes) {
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
