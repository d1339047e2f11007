use super::*;
use protocol::{AlertKind, GeoPoint, ObjectClass, Severity, TrackInfo};

fn ego() -> EgoSi {
    EgoSi {
        lat_deg: 48.1,
        lon_deg: 11.5,
        speed_mps: 10.0,
        yaw_rad: 0.0,
        yaw_rate_radps: 0.0,
        accel_mps2: 0.0,
        length_m: 4.5,
        width_m: 1.8,
        position_sigma_m: 0.3,
    }
}

fn object(id: u64, x: f64) -> ObjectReport {
    ObjectReport {
        id,
        object: ObjectSi {
            class: ObjectClass::Car,
            offset_m: [x, 3.0],
            velocity_mps: [5.0, 0.0],
            yaw_rad: 0.0,
            length_m: 4.5,
            width_m: 1.8,
            sigma_m: 0.4,
            confidence: 0.9,
        },
    }
}

fn perception(ids: &[u64]) -> Perception {
    Perception {
        capture_local_us: None,
        ego: ego(),
        objects: ids.iter().map(|&i| object(i, (i % 50) as f64)).collect(),
    }
}

/// An agent whose clock is 7 ms behind the edge, synchronised over a 400 µs round trip.
fn synced() -> AgentCore {
    let mut a = AgentCore::new(VehicleId(5), 100_000);
    let t1 = 1_000;
    let reply = ClockReply {
        t1_us: t1,
        t2_us: t1 + 7_000 + 200,
        t3_us: t1 + 7_000 + 210,
    };
    a.handle_clock_reply(t1 + 410, &reply.encode().unwrap())
        .unwrap();
    a
}

#[test]
fn frames_wait_for_the_clock_and_are_stamped_in_edge_time() {
    let mut a = AgentCore::new(VehicleId(5), 100_000);
    a.handle_perception(5_000, &perception(&[1])).unwrap();
    assert_eq!(a.poll_frame(5_000), None, "no clock estimate yet");
    let mut a = synced();
    a.handle_perception(5_000, &perception(&[1])).unwrap();
    let f = FeatureFrame::decode(&a.poll_frame(5_000).unwrap()).unwrap();
    assert_eq!(f.vehicle, VehicleId(5));
    assert_eq!(f.capture_us, 5_000 + 7_000);
    assert!(f.clock_uncertainty_us >= 200 && f.clock_uncertainty_us < 300);
}

#[test]
fn frames_are_rate_limited_to_10_hz_and_the_newest_perception_wins() {
    let mut a = synced();
    // A burst of two goes out at once; the third waits for the bucket to refill.
    for (t, n) in [(0, 1), (1_000, 1)] {
        a.handle_perception(t, &perception(&[1])).unwrap();
        assert!(a.poll_frame(t).is_some(), "frame {n}");
    }
    a.handle_perception(40_000, &perception(&[1, 2])).unwrap();
    assert_eq!(a.poll_frame(40_000), None);
    assert_eq!(a.next_frame_at(), Some(100_000));
    a.handle_perception(60_000, &perception(&[1, 2, 3]))
        .unwrap();
    assert_eq!(a.poll_frame(99_999), None);
    let f = FeatureFrame::decode(&a.poll_frame(100_000).unwrap()).unwrap();
    assert_eq!(f.objects.len(), 3);
    assert_eq!(f.seq, 2);
    assert_eq!(a.stats().perceptions_superseded, 1);
    assert_eq!(a.poll_frame(300_000), None, "nothing pending");
}

#[test]
fn a_jittery_10_hz_producer_is_never_held_back_and_a_fast_one_is_held_to_10_hz() {
    let mut a = synced();
    // Pushes every 100 ms +- 3 ms.
    for k in 0..100i64 {
        let t = k * 100_000 + if k % 2 == 0 { 3_000 } else { -3_000 };
        a.handle_perception(t, &perception(&[1])).unwrap();
        assert!(a.poll_frame(t).is_some(), "push {k} held back");
    }
    // Pushes every 20 ms for 10 s, polled at each push: at most 10 Hz plus the burst.
    let mut a = synced();
    let mut sent = 0;
    for k in 0..500i64 {
        let t = k * 20_000;
        a.handle_perception(t, &perception(&[1])).unwrap();
        sent += a.poll_frame(t).is_some() as i64;
    }
    assert!((100..=102).contains(&sent), "{sent}");
}

#[test]
fn object_ids_are_compact_and_recycled_only_after_a_quiet_time() {
    let mut a = synced();
    let ids = |a: &mut AgentCore, t: i64, ext: &[u64]| {
        a.handle_perception(t, &perception(ext)).unwrap();
        let f = FeatureFrame::decode(&a.poll_frame(t).unwrap()).unwrap();
        f.objects.iter().map(|o| o.id).collect::<Vec<_>>()
    };
    assert_eq!(ids(&mut a, 0, &[9_000_001, 9_000_002]), vec![0, 1]);
    assert_eq!(ids(&mut a, 100_000, &[9_000_002, 9_000_003]), vec![1, 2]);
    // 9_000_001 has been gone for less than 2 s: its id 0 is not reused yet.
    assert_eq!(ids(&mut a, 200_000, &[9_000_004]), vec![3]);
    assert_eq!(ids(&mut a, 2_300_000, &[9_000_005]), vec![0]);
}

#[test]
fn bad_perception_is_refused_with_the_field_and_counted() {
    let mut a = synced();
    let mut p = perception(&[1, 2]);
    p.objects[1].object.offset_m[0] = f64::INFINITY;
    let err = a.handle_perception(0, &p).unwrap_err();
    assert!(err.to_string().contains("object.offset_m"), "{err}");
    let err = a.handle_perception(0, &perception(&[4, 4])).unwrap_err();
    assert!(matches!(err, AgentError::DuplicateObjectId(4)));
    assert_eq!(a.stats().perceptions_refused, 2);
    assert_eq!(a.poll_frame(0), None);
}

#[test]
fn alerts_are_decoded_with_their_latency_in_edge_time() {
    let mut a = synced();
    let alert = Alert {
        kind: AlertKind::Raise,
        alert_id: 1,
        target: VehicleId(5),
        other: TrackInfo {
            track_id: 2,
            vehicle: None,
            class: ObjectClass::Pedestrian,
            position: GeoPoint::from_degrees(48.1, 11.5),
            velocity_cms: [0, 100],
            yaw: 64,
            length_dm: 5,
            width_dm: 5,
        },
        ttc_ms: 2000,
        conflict_point: GeoPoint::from_degrees(48.1, 11.5),
        probability_pct: 80,
        severity: Severity::Medium,
        trigger_capture_us: 50_000,
        issued_us: 52_000,
    };
    // Received at local 46,000 = edge 53,000: 3 ms after capture.
    let r = a.handle_alert(46_000, &alert.encode().unwrap()).unwrap();
    assert_eq!(r.latency_us, 3_000);
    assert!(a.handle_alert(0, &[1, 2, 3]).is_err());
    assert_eq!(a.stats().alerts_refused, 1);
}
