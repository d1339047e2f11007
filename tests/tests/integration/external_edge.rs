//! `sim run --live --edge`: the live runner against an edge it did not start, given by endpoint,
//! id and data directory, as an `edge-node run` process would be. The edge here is a real
//! `EdgeNode` with its own CA, started apart from the simulator; every session is zenoh over
//! QUIC with mutual TLS on loopback.

use edge_node::core::EdgeConfig;
use edge_node::net::{EdgeNetConfig, EdgeNode};
use edge_node::pki::Pki;
use protocol::Geodetic;
use sim::live::{run_live, EdgeTarget, EdgeTargetError, LiveOptions};
use sim::world::Scenario;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn free_endpoint() -> String {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("quic/127.0.0.1:{port}")
}

/// An edge as `edge-node run --data-dir DIR --edge-id ID --listen ENDPOINT --origin ...` starts
/// it: the CA and its certificate under `DIR/pki`, a 500 m area.
async fn start_edge(data_dir: &Path, edge_id: &str, origin: Geodetic) -> (EdgeNode, String) {
    let pki = Pki::open_or_create(data_dir).unwrap();
    let endpoint = free_endpoint();
    let edge = EdgeNode::start(EdgeNetConfig::new(
        EdgeConfig::new(edge_id, origin),
        vec![endpoint.clone()],
        pki.edge(edge_id).unwrap(),
    ))
    .await
    .unwrap();
    (edge, endpoint)
}

fn external(out: PathBuf, endpoint: &str, data_dir: &Path, edge_id: &str) -> LiveOptions {
    let mut opts = LiveOptions::new(out, 1);
    opts.edge = EdgeTarget::External {
        endpoint: endpoint.to_string(),
        data_dir: data_dir.to_path_buf(),
    };
    opts.edge_id = edge_id.to_string();
    opts
}

fn junction() -> Geodetic {
    let (lat, lon) = Scenario::demo().origin;
    Geodetic::new(lat, lon, 0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_run_against_an_external_edge_reports_the_run_s_own_counters() {
    let dir = crate::scratch_dir("external-edge");
    let data_dir = dir.join("edge-data");
    let (edge, endpoint) = start_edge(&data_dir, "ext", junction()).await;

    // The demo up to just after its conflict (v1-v2, closest at 6.6 s).
    let first = run_live(
        &Scenario::demo().truncated(7.0),
        &external(dir.join("first"), &endpoint, &data_dir, "ext"),
    )
    .await
    .expect("the first run completes");
    let r = &first.report;
    let conflicts = &first.score.conflicts;
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    let lead = conflicts[0].moment_s - conflicts[0].warned_at_s.expect("v1-v2 is warned");
    assert!(lead > 1.0, "{conflicts:?}");
    assert_eq!((r.recall, r.false_alarms), (1.0, 0));
    assert!(r.frames_received > 8 * 50, "{r:?}");
    assert!(r.frames_received <= r.frames_sent, "{r:?}");
    assert_eq!(r.frames_rejected, 0, "{r:?}");
    let used = r.edge.as_ref().expect("the edge block");
    assert_eq!((used.kind, used.id.as_str()), ("external", "ext"));
    assert_eq!(used.endpoint, endpoint);
    assert_eq!(used.timing_covers, "edge_lifetime");
    assert_eq!(used.frames_accepted, r.frames_received);
    assert_eq!(used.observations_out_of_area, 0);
    assert_eq!(
        used.clock_offset_us, 0,
        "the edge shares this machine's clock"
    );
    let area = used.area.expect("the edge reports its area");
    assert_eq!(area.radius_m, 500.0);
    assert!(used.scenario_reach_m.is_some_and(|m| m < area.radius_m));
    let fusion = r.fusion.expect("fusion figures from the edge's maps");
    assert!(fusion.position_rmse_m < 1.0, "{fusion:?}");
    let json = std::fs::read_to_string(dir.join("first").join("report.json")).unwrap();
    assert!(
        json.contains("\"timing_covers\": \"edge_lifetime\""),
        "{json}"
    );

    // A second, shorter run against the same edge counts only its own frames; the processing
    // times cover both runs, as the edge's lifetime.
    let second = run_live(
        &Scenario::demo().truncated(1.5),
        &external(dir.join("second"), &endpoint, &data_dir, "ext"),
    )
    .await
    .expect("the second run completes");
    let s = &second.report;
    assert!(s.frames_received > 0, "{s:?}");
    assert!(s.frames_received <= s.frames_sent, "{s:?}");
    assert!(s.frames_received < r.frames_received, "{s:?}");
    let both = r.frames_received + s.frames_received;
    assert_eq!(s.edge.as_ref().unwrap().timing_frames, both);
    assert!(s
        .summary(&second.score)
        .contains("cover the edge's lifetime"));

    // The edge was not shut down by either run, and counted both.
    let lifetime = edge.shutdown().await;
    assert_eq!(lifetime.core.frames_received, both);
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs the demo's first second with `opts`, which must fail; returns the message, the
/// [`EdgeTargetError`] behind it (debug form) and how long it took.
async fn refusal(opts: LiveOptions) -> (String, String, Duration) {
    let started = Instant::now();
    let err = run_live(&Scenario::demo().truncated(1.0), &opts)
        .await
        .err()
        .expect("refused");
    let elapsed = started.elapsed();
    let cause = err
        .chain()
        .find_map(|e| e.downcast_ref::<EdgeTargetError>())
        .map(|e| format!("{e:?}"))
        .unwrap_or_else(|| panic!("not an EdgeTargetError: {err:?}"));
    (format!("{err:#}"), cause, elapsed)
}

/// The edge-side problems an operator can make: the wrong id, an edge covering another place,
/// a directory that is not the edge's, an endpoint where nothing listens. Each fails before
/// any agent starts, naming what to fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_edge_that_cannot_serve_the_run_is_refused_with_the_figures() {
    let dir = crate::scratch_dir("external-edge-refused");
    let data_dir = dir.join("edge-data");
    // 2 km east of the demo's junction.
    let east = sim::perception::Geo::new(Scenario::demo().origin)
        .to_geodetic(edge_node::geometry::V2::new(2000.0, 0.0));
    let (edge, endpoint) = start_edge(&data_dir, "far", east).await;

    let (msg, cause, _) = refusal(external(dir.join("o1"), &endpoint, &data_dir, "far")).await;
    assert!(cause.starts_with("OutOfArea"), "{cause}");
    assert!(
        msg.contains("covers 500 m around")
            && msg.contains("m from the edge's")
            && msg.contains("--origin 48.137154,11.576124"),
        "{msg}"
    );

    let (msg, cause, _) = refusal(external(dir.join("o2"), &endpoint, &data_dir, "near")).await;
    assert!(cause.starts_with("NoStats"), "{cause}");
    assert!(
        msg.contains("v2e/edge/near/stats") && msg.contains(&endpoint),
        "{msg}"
    );

    let not_the_edge_s = dir.join("elsewhere");
    let (msg, cause, _) =
        refusal(external(dir.join("o3"), &endpoint, &not_the_edge_s, "far")).await;
    assert!(cause.starts_with("NoCa"), "{cause}");
    assert!(msg.contains("--data-dir"), "{msg}");
    assert!(!not_the_edge_s.join("pki").exists(), "no CA is made there");

    // Nothing listens on this port: the runner gives up after its connect wait, not zenoh's.
    let nowhere = free_endpoint();
    let (msg, cause, elapsed) = refusal(external(dir.join("o4"), &nowhere, &data_dir, "far")).await;
    assert!(
        cause.starts_with("Unreachable") || cause.starts_with("Connect"),
        "{cause}"
    );
    assert!(msg.contains(&nowhere), "{msg}");
    assert!(
        elapsed < sim::live::CONNECT_WAIT + Duration::from_secs(2),
        "{elapsed:?}"
    );

    for out in ["o1", "o2", "o3", "o4"] {
        assert!(!dir.join(out).join("report.json").exists());
    }
    let lifetime = edge.shutdown().await;
    assert_eq!(lifetime.core.frames_received, 0, "no run got to its agents");
    let _ = std::fs::remove_dir_all(dir);
}
