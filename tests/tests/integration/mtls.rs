//! Mutual TLS: a vehicle whose certificate comes from another CA is refused, and says why on
//! its side; a vehicle of the right CA connects.

use edge_node::core::EdgeConfig;
use edge_node::net::{EdgeNetConfig, EdgeNode};
use edge_node::pki::Pki;
use protocol::{Geodetic, VehicleId};
use vehicle_agent::{Agent, AgentNetConfig, TlsFiles};

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_ca_is_refused_with_a_clear_error() {
    let dir = crate::scratch_dir("mtls");
    let ours = Pki::open_or_create(&dir.join("ours")).unwrap();
    let theirs = Pki::open_or_create(&dir.join("theirs")).unwrap();
    let endpoint = format!("quic/127.0.0.1:{}", free_port());
    let edge = EdgeNode::start(EdgeNetConfig::new(
        EdgeConfig::new("mtls", Geodetic::new(48.0, 11.0, 0.0)),
        vec![endpoint.clone()],
        ours.edge("mtls").unwrap(),
    ))
    .await
    .unwrap();

    let connect = |ca, files: edge_node::pki::CertFiles| {
        let tls = TlsFiles {
            ca,
            cert: files.cert,
            key: files.key,
        };
        Agent::connect(AgentNetConfig::new(VehicleId(1), "mtls", &endpoint, tls))
    };
    let our_ca = ours.vehicle(VehicleId(1)).unwrap().ca;

    // A certificate from another CA, even one that trusts the edge's CA, is refused.
    let err = connect(our_ca.clone(), theirs.vehicle(VehicleId(1)).unwrap())
        .await
        .err()
        .expect("the edge refuses a foreign certificate");
    let msg = err.to_string();
    assert!(
        msg.contains(&endpoint) && msg.contains("signed by the edge's CA"),
        "{msg}"
    );

    // A vehicle that trusts only another CA refuses the edge.
    let their_ca = theirs.vehicle(VehicleId(1)).unwrap().ca;
    assert!(connect(their_ca, ours.vehicle(VehicleId(1)).unwrap())
        .await
        .is_err());

    // The right certificate connects and synchronises its clock.
    let (agent, _alerts) = connect(our_ca, ours.vehicle(VehicleId(1)).unwrap())
        .await
        .expect("a vehicle of the edge's CA connects");
    let estimate = agent.clock_estimate().expect("clock synchronised");
    assert!(estimate.offset_us.abs() < 5_000, "{estimate:?}");
    agent.close().await;
    let stats = edge.shutdown().await;
    assert!(stats.clock_queries >= 8);
    let _ = std::fs::remove_dir_all(dir);
}
