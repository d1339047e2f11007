//! The zenoh driver around [`AgentCore`]: a client session over QUIC with mutual TLS to the edge
//! that covers the vehicle. It publishes frames on the vehicle's frames key, subscribes to its
//! alerts key, and keeps the clock offset fresh against the edge's clock queryable.

use crate::core::{AgentCore, AgentStats, Perception, ReceivedAlert};
use protocol::{keys, VehicleId};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

/// The vehicle's clock in µs. The system clock in a vehicle; the simulator injects offset and
/// drifting clocks.
pub type LocalClock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub fn system_clock() -> LocalClock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0)
    })
}

/// PEM files for mutual TLS: the CA that signed the edge, and this vehicle's certificate (whose
/// name is `vehicle-{id}`) and private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Clone)]
pub struct AgentNetConfig {
    pub vehicle: VehicleId,
    pub edge_id: String,
    /// The edge's zenoh endpoint, e.g. `quic/127.0.0.1:7447`.
    pub connect: String,
    pub tls: TlsFiles,
    pub clock: LocalClock,
    /// Least time between frames, µs (100 ms: 10 Hz).
    pub min_interval_us: i64,
    /// How often the clock offset is refreshed.
    pub clock_sync_period: Duration,
}

impl AgentNetConfig {
    pub fn new(vehicle: VehicleId, edge_id: &str, connect: &str, tls: TlsFiles) -> Self {
        Self {
            vehicle,
            edge_id: edge_id.to_string(),
            connect: connect.to_string(),
            tls,
            clock: system_clock(),
            min_interval_us: 100_000,
            clock_sync_period: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    #[error("cannot read {what} at {path}: {source}")]
    TlsFile {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "could not connect to the edge at {endpoint}: {detail}. The edge refused the \
         connection or is not reachable: check that it is running there, that its certificate \
         names the address used, and that this vehicle's certificate is signed by the edge's CA"
    )]
    Connect { endpoint: String, detail: String },
    #[error(
        "no usable reply to {attempts} clock queries on {key} from the edge at {endpoint}: \
         check the edge id (it is part of every key) and that the edge is running"
    )]
    NoClock {
        endpoint: String,
        key: String,
        attempts: usize,
    },
    #[error("zenoh: {0}")]
    Zenoh(String),
}

fn zerr(e: impl std::fmt::Display) -> NetError {
    NetError::Zenoh(e.to_string())
}

/// A zenoh client configuration: QUIC with mutual TLS to one endpoint, no scouting.
pub fn client_config(connect: &str, tls: &TlsFiles) -> Result<zenoh::Config, NetError> {
    for (what, path) in [
        ("the CA certificate", &tls.ca),
        ("the vehicle certificate", &tls.cert),
        ("the vehicle key", &tls.key),
    ] {
        std::fs::metadata(path).map_err(|source| NetError::TlsFile {
            what,
            path: path.clone(),
            source,
        })?;
    }
    let mut c = zenoh::Config::default();
    let set = |c: &mut zenoh::Config, k: &str, v: String| c.insert_json5(k, &v).map_err(zerr);
    let s = |p: &PathBuf| serde_json::to_string(&p.display().to_string()).expect("a string");
    set(&mut c, "mode", "\"client\"".into())?;
    set(
        &mut c,
        "connect/endpoints",
        serde_json::to_string(&[connect]).expect("a list"),
    )?;
    set(&mut c, "scouting/multicast/enabled", "false".into())?;
    set(&mut c, "transport/link/tls/root_ca_certificate", s(&tls.ca))?;
    set(&mut c, "transport/link/tls/enable_mtls", "true".into())?;
    set(
        &mut c,
        "transport/link/tls/connect_certificate",
        s(&tls.cert),
    )?;
    set(
        &mut c,
        "transport/link/tls/connect_private_key",
        s(&tls.key),
    )?;
    Ok(c)
}

/// A connected agent. Dropping it closes the session's tasks; [`Agent::close`] does it cleanly.
pub struct Agent {
    core: Arc<Mutex<AgentCore>>,
    clock: LocalClock,
    session: zenoh::Session,
    publisher: Arc<zenoh::pubsub::Publisher<'static>>,
    wake_sender: Arc<Notify>,
    tasks: Vec<JoinHandle<()>>,
    _subscriber: zenoh::pubsub::Subscriber<()>,
}

impl Agent {
    /// Connects, synchronises the clock (a burst of exchanges; this also proves the edge is
    /// there, so the first frame is not lost to a half-open session) and starts the background
    /// tasks. Alerts arrive on the returned channel.
    pub async fn connect(
        config: AgentNetConfig,
    ) -> Result<(Self, mpsc::UnboundedReceiver<ReceivedAlert>), NetError> {
        let zconfig = client_config(&config.connect, &config.tls)?;
        let session = zenoh::open(zconfig).await.map_err(|e| NetError::Connect {
            endpoint: config.connect.clone(),
            detail: e.to_string(),
        })?;
        let core = Arc::new(Mutex::new(AgentCore::new(
            config.vehicle,
            config.min_interval_us,
        )));
        let clock = config.clock.clone();

        let (alert_tx, alert_rx) = mpsc::unbounded_channel();
        let subscriber = {
            let (core, clock) = (core.clone(), clock.clone());
            session
                .declare_subscriber(keys::alerts(&config.edge_id, config.vehicle))
                .callback(move |sample| {
                    let bytes = sample.payload().to_bytes();
                    let received = core
                        .lock()
                        .expect("agent lock")
                        .handle_alert(clock(), &bytes);
                    match received {
                        Ok(alert) => {
                            let _ = alert_tx.send(alert);
                        }
                        Err(e) => tracing::warn!("refused an alert: {e}"),
                    }
                })
                .await
                .map_err(zerr)?
        };

        let clock_key = keys::clock(&config.edge_id);
        const ATTEMPTS: usize = 8;
        let mut synced = 0;
        for _ in 0..ATTEMPTS {
            if sync_once(&session, &clock_key, &core, &clock).await {
                synced += 1;
            }
        }
        if synced == 0 {
            return Err(NetError::NoClock {
                endpoint: config.connect.clone(),
                key: clock_key,
                attempts: ATTEMPTS,
            });
        }

        let publisher = Arc::new(
            session
                .declare_publisher(keys::frames(&config.edge_id, config.vehicle))
                .express(true)
                .congestion_control(zenoh::qos::CongestionControl::Block)
                .await
                .map_err(zerr)?,
        );

        let mut tasks = Vec::new();
        tasks.push({
            let (session, core, clock) = (session.clone(), core.clone(), clock.clone());
            let period = config.clock_sync_period;
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(period);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    sync_once(&session, &clock_key, &core, &clock).await;
                }
            })
        });
        // Sends frames the rate limit held back, when it lets them out.
        let wake_sender = Arc::new(Notify::new());
        tasks.push({
            let (core, clock, publisher) = (core.clone(), clock.clone(), publisher.clone());
            let wake = wake_sender.clone();
            tokio::spawn(async move {
                loop {
                    let next = core.lock().expect("agent lock").next_frame_at();
                    match next {
                        None => wake.notified().await,
                        Some(at) => {
                            let wait = (at - clock()).max(0) as u64;
                            tokio::select! {
                                _ = tokio::time::sleep(Duration::from_micros(wait)) => {}
                                _ = wake.notified() => continue,
                            }
                            let frame = core.lock().expect("agent lock").poll_frame(clock());
                            if let Some(bytes) = frame {
                                if let Err(e) = publisher.put(bytes).await {
                                    tracing::warn!("could not publish a frame: {e}");
                                }
                            } else {
                                // Waiting for the clock offset: try again shortly.
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                        }
                    }
                }
            })
        });

        Ok((
            Self {
                core,
                clock,
                session,
                publisher,
                wake_sender,
                tasks,
                _subscriber: subscriber,
            },
            alert_rx,
        ))
    }

    /// Hands a perception cycle to the agent; it goes out at once unless the 10 Hz limit holds
    /// it back, in which case the newest one goes out as soon as allowed.
    pub async fn push(&self, perception: &Perception) -> Result<(), crate::AgentError> {
        let frame = {
            let mut core = self.core.lock().expect("agent lock");
            let now = (self.clock)();
            core.handle_perception(now, perception)?;
            core.poll_frame(now)
        };
        match frame {
            Some(bytes) => {
                if let Err(e) = self.publisher.put(bytes).await {
                    tracing::warn!("could not publish a frame: {e}");
                }
            }
            None => self.wake_sender.notify_one(),
        }
        Ok(())
    }

    pub fn stats(&self) -> AgentStats {
        self.core.lock().expect("agent lock").stats().clone()
    }

    pub fn clock_estimate(&self) -> Option<protocol::ClockEstimate> {
        self.core
            .lock()
            .expect("agent lock")
            .clock_estimate((self.clock)())
    }

    pub async fn close(self) {
        for t in &self.tasks {
            t.abort();
        }
        let _ = self.session.close().await;
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// One clock exchange; whether it produced a sample.
async fn sync_once(
    session: &zenoh::Session,
    key: &str,
    core: &Arc<Mutex<AgentCore>>,
    clock: &LocalClock,
) -> bool {
    let t1 = clock();
    let request = core.lock().expect("agent lock").clock_request(t1);
    let replies = match session
        .get(key)
        .payload(request)
        .timeout(Duration::from_secs(1))
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!("clock query failed: {e}");
            return false;
        }
    };
    while let Ok(reply) = replies.recv_async().await {
        let t4 = clock();
        if let Ok(sample) = reply.result() {
            let bytes = sample.payload().to_bytes();
            return core
                .lock()
                .expect("agent lock")
                .handle_clock_reply(t4, &bytes)
                .unwrap_or(false);
        }
    }
    false
}
