//! Which edge a live run talks to, and how the runner reads an edge it did not start.
//!
//! An external edge (an `edge-node run` process given by address) is shared: its counters are
//! cumulative over its lifetime, over earlier runs and over vehicles that are not the
//! simulator's. The runner reads its stats key before the agents connect and after they close
//! and reports the difference ([`RunCounters::between`]). Quantiles cannot be differenced, so
//! the processing and stage times of such a run cover the edge's whole lifetime, and the report
//! says so (`edge.timing_covers` in `report.json`).
//!
//! What this module deliberately does not do: start, stop or configure an external edge, or
//! make a CA for it. The certificates come from the edge's own data directory, whose CA must
//! already exist ([`open_edge_pki`]); a CA made here would not be the one the edge trusts.

use crate::perception::Geo;
use crate::world::Scenario;
use edge_node::core::EdgeStats;
use edge_node::net::{EdgeArea, EdgeMonitor, EdgeNetError, EdgeStatsReply};
use edge_node::pki::{CertFiles, Pki, PkiError};
use protocol::{EnuFrame, Geodetic};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The edge of a live run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdgeTarget {
    /// An `EdgeNode` started in this process for the run, on a free loopback port, with a CA
    /// made under `{out}/pki`, and shut down after it.
    InProcess,
    /// An edge that runs already, reached at `endpoint` (a zenoh endpoint such as
    /// `quic/127.0.0.1:7447`). `data_dir` is the edge's data directory (the `--data-dir` of
    /// `edge-node run`): the CA there signs the certificates of the simulator's sessions, which
    /// are made in `{data_dir}/pki` like those of `edge-node pki --vehicles`.
    External { endpoint: String, data_dir: PathBuf },
}

impl EdgeTarget {
    /// `in_process` or `external`, as `report.json` names it.
    pub fn kind(&self) -> &'static str {
        match self {
            EdgeTarget::InProcess => "in_process",
            EdgeTarget::External { .. } => "external",
        }
    }
}

/// How long the runner waits for its session to an external edge to open. A QUIC handshake
/// on a working link takes milliseconds; with nothing listening, zenoh gives up only after
/// about 10 s.
pub const CONNECT_WAIT: Duration = Duration::from_secs(5);

/// How long one stats query waits for its answer.
pub const STATS_WAIT: Duration = Duration::from_secs(2);

/// Tries per stats reading: a query that finds the edge's queue of queries full is answered
/// with an error, and the next one may get through.
const STATS_TRIES: u32 = 3;

/// Why a live run could not use the edge it was given. Every variant names the endpoint,
/// directory or figures concerned; none is transient except [`EdgeTargetError::NoStats`] on a
/// very busy edge, so the operator has to fix what the message names rather than retry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EdgeTargetError {
    /// The data directory has no CA: it is not the edge's data directory.
    #[error(
        "there is no CA at {}: the PKI directory (--pki) must be the edge's data directory \
         (the --data-dir of edge-node run), where the edge made its CA",
        ca.display()
    )]
    NoCa { ca: PathBuf },
    /// The CA is there but a certificate could not be loaded or issued.
    #[error("the certificates in {}: {error}", dir.display())]
    Pki { dir: PathBuf, error: PkiError },
    /// The session did not open within [`CONNECT_WAIT`].
    #[error(
        "no connection to the edge at {endpoint} within {} s: check that edge-node runs there \
         and that the endpoint is one of its --listen endpoints (address, port, quic/)",
        waited.as_secs_f64()
    )]
    Unreachable { endpoint: String, waited: Duration },
    /// The session was refused: no edge there, or certificates from another CA.
    #[error(
        "{error}; check that edge-node runs at {endpoint} and that the PKI directory is the \
         edge's data directory, so that both sides trust the same CA"
    )]
    Connect {
        endpoint: String,
        error: EdgeNetError,
    },
    /// The session opened but nothing answered on the stats key.
    #[error(
        "the edge at {endpoint} gave no statistics on {key} in {tries} tries of up to {} s \
         each (last: {detail}): check that {edge_id:?} is the edge's --edge-id (a query for an \
         id no edge serves fails at once)",
        wait_each.as_secs_f64()
    )]
    NoStats {
        endpoint: String,
        edge_id: String,
        key: String,
        tries: u32,
        wait_each: Duration,
        detail: String,
    },
    /// Some road users of the scenario would be outside the edge's area, so the edge would drop
    /// what is reported about them.
    #[error(
        "the edge {edge_id} covers {radius_m:.0} m around {origin_lat},{origin_lon}, but the \
         scenario's road users come up to {reach_m:.0} m from there (the scenario's origin \
         {scenario_lat},{scenario_lon} is {offset_m:.0} m from the edge's): start the edge with \
         --origin {scenario_lat},{scenario_lon} and a --radius-m of at least {needed_radius_m:.0}"
    )]
    OutOfArea {
        edge_id: String,
        origin_lat: f64,
        origin_lon: f64,
        radius_m: f64,
        reach_m: f64,
        scenario_lat: f64,
        scenario_lon: f64,
        offset_m: f64,
        /// A radius around the scenario's origin that holds every road user, with a margin.
        needed_radius_m: f64,
    },
    /// A counter was lower after the run than before: the edge restarted in between.
    #[error(
        "the edge's {field} went from {before} before the run to {after} after it: the edge \
         restarted during the run, so the run's figures cannot be told from its lifetime's"
    )]
    CountersWentBack {
        field: String,
        before: u64,
        after: u64,
    },
}

/// The CA of an existing edge's data directory; refuses to make one.
pub fn open_edge_pki(data_dir: &Path) -> Result<Pki, EdgeTargetError> {
    let ca = data_dir.join("pki").join("ca.pem");
    if !ca.is_file() {
        return Err(EdgeTargetError::NoCa { ca });
    }
    Pki::open_or_create(data_dir).map_err(|error| EdgeTargetError::Pki {
        dir: data_dir.join("pki"),
        error,
    })
}

/// Opens a monitor session to the edge at `endpoint`, giving up after `wait`.
///
/// zenoh opens a session partly inside `block_in_place`, which a timeout around the same task
/// cannot interrupt, so the session opens in a task of its own and the timeout runs here. A
/// session that opens after the timeout is closed when that task ends.
pub async fn connect_monitor(
    endpoint: &str,
    edge_id: &str,
    tls: &CertFiles,
    wait: Duration,
) -> Result<EdgeMonitor, EdgeTargetError> {
    let opening = {
        let (endpoint, edge_id, tls) = (endpoint.to_string(), edge_id.to_string(), tls.clone());
        tokio::spawn(async move { EdgeMonitor::connect(&endpoint, &edge_id, &tls).await })
    };
    let abort = opening.abort_handle();
    match tokio::time::timeout(wait, opening).await {
        Ok(Ok(Ok(monitor))) => Ok(monitor),
        Ok(Ok(Err(error))) => Err(EdgeTargetError::Connect {
            endpoint: endpoint.to_string(),
            error,
        }),
        Ok(Err(join)) => Err(EdgeTargetError::Connect {
            endpoint: endpoint.to_string(),
            error: EdgeNetError::Connect {
                endpoint: endpoint.to_string(),
                detail: format!("the task opening the session failed: {join}"),
            },
        }),
        Err(_) => {
            abort.abort();
            Err(EdgeTargetError::Unreachable {
                endpoint: endpoint.to_string(),
                waited: wait,
            })
        }
    }
}

/// One reading of an edge's stats key.
#[derive(Debug, Clone)]
pub struct StatsReading {
    pub stats: EdgeStatsReply,
    /// The edge's clock minus this machine's, µs: `time_us` of the answer against the middle
    /// of the query's round trip. 0 when the difference is within half the round trip, which
    /// is all an edge sharing this machine's clock can show.
    pub clock_offset_us: i64,
}

/// Reads the edge's stats key, with a few tries; `now_us` is this machine's clock.
pub async fn read_stats(
    monitor: &EdgeMonitor,
    endpoint: &str,
    edge_id: &str,
    now_us: impl Fn() -> i64,
) -> Result<StatsReading, EdgeTargetError> {
    let mut last = None;
    for _ in 0..STATS_TRIES {
        let sent_us = now_us();
        match monitor.stats(STATS_WAIT).await {
            Ok(stats) => {
                let back_us = now_us();
                let offset = stats.time_us - (sent_us + back_us) / 2;
                let uncertainty = (back_us - sent_us) / 2;
                let clock_offset_us = if offset.abs() <= uncertainty {
                    0
                } else {
                    offset
                };
                return Ok(StatsReading {
                    stats,
                    clock_offset_us,
                });
            }
            Err(e) => {
                tracing::debug!("stats query to {endpoint}: {e}");
                last = Some(e);
            }
        }
    }
    Err(EdgeTargetError::NoStats {
        endpoint: endpoint.to_string(),
        edge_id: edge_id.to_string(),
        key: edge_node::net::stats_key(edge_id),
        tries: STATS_TRIES,
        wait_each: STATS_WAIT,
        detail: last.map(|e| e.to_string()).unwrap_or_default(),
    })
}

/// What the edge counted during one run: the difference of two readings of its stats key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunCounters {
    /// The core's counters; rejection reasons with no rejection in the run are left out.
    pub frames: EdgeStats,
    pub frames_dropped: u64,
    pub alerts_published: u64,
    pub alerts_failed: u64,
    pub maps_published: u64,
    pub clock_queries: u64,
}

impl RunCounters {
    /// `after` minus `before`, counter by counter; an error if any counter went down (the edge
    /// restarted in between).
    pub fn between(
        before: &EdgeStatsReply,
        after: &EdgeStatsReply,
    ) -> Result<Self, EdgeTargetError> {
        let diff = |field: &str, before: u64, after: u64| {
            after
                .checked_sub(before)
                .ok_or_else(|| EdgeTargetError::CountersWentBack {
                    field: field.to_string(),
                    before,
                    after,
                })
        };
        let (b, a) = (&before.frames, &after.frames);
        let mut frames_rejected = BTreeMap::new();
        for (reason, n_before) in &b.frames_rejected {
            if !a.frames_rejected.contains_key(reason) {
                diff(&format!("frames_rejected.{reason}"), *n_before, 0)?;
            }
        }
        for (reason, n_after) in &a.frames_rejected {
            let n_before = b.frames_rejected.get(reason).copied().unwrap_or(0);
            let n = diff(&format!("frames_rejected.{reason}"), n_before, *n_after)?;
            if n > 0 {
                frames_rejected.insert(Cow::Owned(reason.to_string()), n);
            }
        }
        Ok(Self {
            frames: EdgeStats {
                frames_received: diff("frames_received", b.frames_received, a.frames_received)?,
                frames_accepted: diff("frames_accepted", b.frames_accepted, a.frames_accepted)?,
                frames_rejected,
                observations: diff("observations", b.observations, a.observations)?,
                observations_out_of_area: diff(
                    "observations_out_of_area",
                    b.observations_out_of_area,
                    a.observations_out_of_area,
                )?,
                tracks_created: diff("tracks_created", b.tracks_created, a.tracks_created)?,
                tracks_expired: diff("tracks_expired", b.tracks_expired, a.tracks_expired)?,
                tracks_left_area: diff("tracks_left_area", b.tracks_left_area, a.tracks_left_area)?,
                tracks_merged: diff("tracks_merged", b.tracks_merged, a.tracks_merged)?,
                pairs_evaluated: diff("pairs_evaluated", b.pairs_evaluated, a.pairs_evaluated)?,
                alerts_raised: diff("alerts_raised", b.alerts_raised, a.alerts_raised)?,
                alerts_refreshed: diff("alerts_refreshed", b.alerts_refreshed, a.alerts_refreshed)?,
                alerts_cleared: diff("alerts_cleared", b.alerts_cleared, a.alerts_cleared)?,
            },
            frames_dropped: diff(
                "frames_dropped",
                before.frames_dropped,
                after.frames_dropped,
            )?,
            alerts_published: diff(
                "alerts_published",
                before.alerts_published,
                after.alerts_published,
            )?,
            alerts_failed: diff("alerts_failed", before.alerts_failed, after.alerts_failed)?,
            maps_published: diff(
                "maps_published",
                before.maps_published,
                after.maps_published,
            )?,
            clock_queries: diff("clock_queries", before.clock_queries, after.clock_queries)?,
        })
    }
}

/// The farthest any road user of `scenario` comes from `point` during the run, metres,
/// measured in the ENU frame of `point` as an edge with that origin measures it (sampled
/// every 0.1 s).
pub fn reach_from(scenario: &Scenario, geo: &Geo, point: Geodetic) -> f64 {
    let frame = EnuFrame::new(point);
    let n_steps = (scenario.duration_s / 0.1).ceil().max(0.0) as usize;
    let mut far: f64 = 0.0;
    for actor in &scenario.actors {
        for k in 0..=n_steps {
            let t_s = (k as f64 * 0.1).min(scenario.duration_s);
            if let Some(state) = actor.state(t_s) {
                let at = frame.to_enu(&geo.to_geodetic(state.pos));
                far = far.max(at.x.hypot(at.y));
            }
        }
    }
    far
}

/// Checks that the edge's area holds every road user of the scenario; returns how far they
/// come from the edge's origin.
pub fn check_coverage(
    scenario: &Scenario,
    geo: &Geo,
    edge_id: &str,
    area: &EdgeArea,
) -> Result<f64, EdgeTargetError> {
    let origin = Geodetic::new(area.origin_lat_deg, area.origin_lon_deg, 0.0);
    let reach_m = reach_from(scenario, geo, origin);
    if reach_m <= area.radius_m {
        return Ok(reach_m);
    }
    let offset = geo.to_local(&origin);
    Err(EdgeTargetError::OutOfArea {
        edge_id: edge_id.to_string(),
        origin_lat: area.origin_lat_deg,
        origin_lon: area.origin_lon_deg,
        radius_m: area.radius_m,
        reach_m,
        scenario_lat: scenario.origin.0,
        scenario_lon: scenario.origin.1,
        offset_m: offset.norm(),
        needed_radius_m: (scenario.extent_m() + 50.0).max(500.0).ceil(),
    })
}

#[cfg(test)]
mod tests;
