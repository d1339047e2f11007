//! The situation map: a late joiner queries the latest snapshot and sees the vehicle that
//! reported itself.

use edge_node::core::EdgeConfig;
use edge_node::net::{EdgeNetConfig, EdgeNode};
use edge_node::pki::Pki;
use protocol::{EgoSi, Geodetic, Message, SituationMap, VehicleId};
use std::time::Duration;
use vehicle_agent::{Agent, AgentNetConfig, Perception, TlsFiles};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_joiner_gets_the_latest_map_by_query() {
    let dir = crate::scratch_dir("map");
    let pki = Pki::open_or_create(&dir).unwrap();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("quic/127.0.0.1:{port}");
    let origin = Geodetic::new(48.137154, 11.576124, 0.0);
    let edge = EdgeNode::start(EdgeNetConfig::new(
        EdgeConfig::new("mapped", origin),
        vec![endpoint.clone()],
        pki.edge("mapped").unwrap(),
    ))
    .await
    .unwrap();
    let files = pki.vehicle(VehicleId(4)).unwrap();
    let tls = TlsFiles {
        ca: files.ca,
        cert: files.cert,
        key: files.key,
    };
    let (agent, _alerts) =
        Agent::connect(AgentNetConfig::new(VehicleId(4), "mapped", &endpoint, tls))
            .await
            .unwrap();
    for _ in 0..3 {
        let p = Perception {
            capture_local_us: None,
            ego: EgoSi {
                lat_deg: 48.137154,
                lon_deg: 11.576224,
                speed_mps: 5.0,
                yaw_rad: 0.0,
                yaw_rate_radps: 0.0,
                accel_mps2: 0.0,
                length_m: 4.5,
                width_m: 1.8,
                position_sigma_m: 0.3,
            },
            objects: vec![],
        };
        agent.push(&p).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    // A separate client session, as a dashboard joining late would be.
    let watcher = pki.vehicle(VehicleId(99)).unwrap();
    let config = vehicle_agent::net::client_config(
        &endpoint,
        &TlsFiles {
            ca: watcher.ca,
            cert: watcher.cert,
            key: watcher.key,
        },
    )
    .unwrap();
    let session = zenoh::open(config).await.unwrap();
    let replies = session
        .get(protocol::keys::map("mapped"))
        .timeout(Duration::from_secs(2))
        .await
        .unwrap();
    let reply = replies.recv_async().await.expect("a map snapshot");
    let bytes = reply
        .result()
        .expect("a snapshot, not an error")
        .payload()
        .to_bytes();
    let map = SituationMap::decode(&bytes).unwrap();
    assert_eq!(map.edge, "mapped");
    assert_eq!(map.tracks.len(), 1, "{map:?}");
    assert_eq!(map.tracks[0].vehicle, Some(VehicleId(4)));
    // About 7.4 m east of the origin (0.0001 degrees of longitude at this latitude).
    assert!((map.tracks[0].offset_cm[0] - 745).abs() < 300, "{map:?}");
    session.close().await.unwrap();
    agent.close().await;
    edge.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
