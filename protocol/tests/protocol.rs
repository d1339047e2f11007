//! Wire-format tests: golden vectors, round trips, hostile bytes, frame size, geodesy, clock
//! sync and keys. Set `V2E_BLESS=1` to rewrite the golden files after a deliberate format change
//! (and bump `FORMAT_VERSION`).

use proptest::prelude::*;
use protocol::sample::representative_frame;
use protocol::*;
use std::path::PathBuf;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

#[test]
fn representative_frame_meets_the_size_budget() {
    let frame = representative_frame();
    let bytes = frame.encode().unwrap();
    let header = FeatureFrame {
        objects: vec![],
        ..frame.clone()
    }
    .encode()
    .unwrap()
    .len();
    let per_object = (bytes.len() - header) as f64 / frame.objects.len() as f64;
    println!(
        "frame {} B, header {header} B, {per_object:.2} B/object",
        bytes.len()
    );
    assert!(header <= 40, "header {header} B");
    assert!(per_object <= 12.0, "{per_object} B per object");
}

fn sample_alert() -> Alert {
    Alert {
        kind: AlertKind::Raise,
        alert_id: 7,
        target: VehicleId(3),
        other: TrackInfo {
            track_id: 19,
            vehicle: Some(VehicleId(4)),
            class: ObjectClass::Car,
            position: GeoPoint::from_degrees(48.1372, 11.5762),
            velocity_cms: [0, 1100],
            yaw: 64,
            length_dm: 45,
            width_dm: 18,
        },
        ttc_ms: 2_350,
        conflict_point: GeoPoint::from_degrees(48.13725, 11.57615),
        probability_pct: 89,
        severity: Severity::Medium,
        trigger_capture_us: 1_795_000_000_123_456,
        issued_us: 1_795_000_000_125_001,
    }
}

fn sample_map() -> SituationMap {
    SituationMap {
        edge: "junction-1".into(),
        time_us: 1_795_000_000_200_000,
        origin: GeoPoint::from_degrees(48.137154, 11.576124),
        tracks: vec![
            MapTrack {
                track_id: 1,
                vehicle: Some(VehicleId(42)),
                class: ObjectClass::Car,
                offset_cm: [-1250, 180],
                velocity_cms: [1390, 0],
                yaw: 0,
                length_dm: 46,
                width_dm: 18,
            },
            MapTrack {
                track_id: 2,
                vehicle: None,
                class: ObjectClass::Pedestrian,
                offset_cm: [600, 750],
                velocity_cms: [0, 130],
                yaw: 64,
                length_dm: 5,
                width_dm: 5,
            },
        ],
    }
}

/// Compares `bytes` with the golden file `name`, or writes it under `V2E_BLESS=1`.
fn check_golden(name: &str, bytes: &[u8]) {
    let path = data(name);
    if std::env::var_os("V2E_BLESS").is_some() {
        std::fs::write(&path, bytes).unwrap();
    }
    let golden = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        bytes, golden,
        "encoding of {name} changed: bump FORMAT_VERSION"
    );
}

#[test]
fn golden_vectors_pin_the_format() {
    check_golden("frame_v1.bin", &representative_frame().encode().unwrap());
    check_golden("alert_v1.bin", &sample_alert().encode().unwrap());
    check_golden("map_v1.bin", &sample_map().encode().unwrap());
    check_golden(
        "clock_request_v1.bin",
        &ClockRequest { t1_us: 1_000_000 }.encode().unwrap(),
    );
    check_golden(
        "clock_reply_v1.bin",
        &ClockReply {
            t1_us: 1_000_000,
            t2_us: 1_000_450,
            t3_us: 1_000_470,
        }
        .encode()
        .unwrap(),
    );
    // And the golden bytes decode back to the same values.
    let frame = FeatureFrame::decode(&std::fs::read(data("frame_v1.bin")).unwrap()).unwrap();
    assert_eq!(frame, representative_frame());
    let alert = Alert::decode(&std::fs::read(data("alert_v1.bin")).unwrap()).unwrap();
    assert_eq!(alert, sample_alert());
}

/// Malformed inputs kept as files, each with the error it must produce.
#[test]
fn malformed_inputs_give_typed_errors() {
    let good = representative_frame().encode().unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "empty"),
        (
            "version 2",
            [&[2u8][..], &good[1..]].concat(),
            "unsupported_version",
        ),
        (
            "alert bytes as frame",
            sample_alert().encode().unwrap(),
            "wrong_kind",
        ),
        ("cut short", good[..good.len() - 3].to_vec(), "truncated"),
        (
            "trailing byte",
            [&good[..], &[0u8][..]].concat(),
            "trailing_bytes",
        ),
        ("too long", vec![1u8; MAX_MESSAGE_LEN + 1], "too_long"),
    ];
    for (what, bytes, reason) in cases {
        let err = FeatureFrame::decode(&bytes).unwrap_err();
        assert_eq!(err.reason(), reason, "{what}: {err}");
    }
    for entry in std::fs::read_dir(data("malformed")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let expected = name.split('-').next().unwrap();
        let err = FeatureFrame::decode(&std::fs::read(&path).unwrap()).unwrap_err();
        assert_eq!(err.reason(), expected, "{}: {err}", path.display());
    }
}

#[test]
fn reserved_flag_bits_and_unknown_classes_are_refused() {
    let mut frame = representative_frame();
    frame.objects.truncate(1);
    let bytes = frame.encode().unwrap();
    // The one object is a moving car of default size: head, id, 2 + 2 bytes of offset, 2 + 1 of
    // velocity and the quality byte.
    let head_at = bytes.len() - 10;
    assert_eq!(bytes[head_at] & 0x07, ObjectClass::Car as u8);
    for bad in [bytes[head_at] | 0x80, bytes[head_at] | 0x07] {
        let mut b = bytes.clone();
        b[head_at] = bad;
        assert_eq!(FeatureFrame::decode(&b).unwrap_err().reason(), "bad_tag");
    }
}

fn arb_class() -> impl Strategy<Value = ObjectClass> {
    prop::sample::select(ObjectClass::ALL.to_vec())
}

prop_compose! {
    fn arb_object()(
        id in any::<u16>(), class in arb_class(), offset_cm in any::<[i32; 2]>(),
        velocity_cms in prop_oneof![Just([0i16, 0]), any::<[i16; 2]>()], yaw in any::<u8>(),
        length_dm in any::<u8>(), width_dm in any::<u8>(), sigma in 0u8..16, conf in 0u8..16,
        course_yaw in any::<bool>(),
    ) -> PerceivedObject {
        let yaw = match units::course_u8(velocity_cms) {
            Some(c) if course_yaw => c,
            _ => yaw,
        };
        PerceivedObject {
            id, class, offset_cm, velocity_cms, yaw, length_dm, width_dm,
            sigma: Sigma::from_code(sigma).unwrap(),
            confidence: Confidence::from_code(conf).unwrap(),
        }
    }
}

prop_compose! {
    fn arb_frame()(
        vehicle in any::<u32>(), seq in any::<u32>(), capture_us in any::<i64>(),
        clock_uncertainty_us in any::<u32>(), lat_e7 in any::<i32>(), lon_e7 in any::<i32>(),
        speed_cms in any::<u16>(), yaw_ddeg in any::<u16>(), yaw_rate_mrads in any::<i16>(),
        accel_cms2 in any::<i16>(), length_dm in any::<u8>(), width_dm in any::<u8>(),
        position_sigma_cm in any::<u16>(),
        objects in prop::collection::vec(arb_object(), 0..40),
    ) -> FeatureFrame {
        FeatureFrame {
            vehicle: VehicleId(vehicle), seq, capture_us, clock_uncertainty_us,
            ego: EgoState {
                position: GeoPoint { lat_e7, lon_e7 }, speed_cms, yaw_ddeg, yaw_rate_mrads,
                accel_cms2, length_dm, width_dm, position_sigma_cm,
            },
            objects,
        }
    }
}

proptest! {
    #[test]
    fn frames_round_trip(frame in arb_frame()) {
        let bytes = frame.encode().unwrap();
        prop_assert_eq!(FeatureFrame::decode(&bytes).unwrap(), frame);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = FeatureFrame::decode(&bytes);
        let _ = Alert::decode(&bytes);
        let _ = SituationMap::decode(&bytes);
        let _ = ClockRequest::decode(&bytes);
        let _ = ClockReply::decode(&bytes);
    }

    #[test]
    fn valid_prefix_with_arbitrary_body_never_panics(
        kind in 1u8..6, body in prop::collection::vec(any::<u8>(), 0..600)
    ) {
        let bytes = [&[FORMAT_VERSION, kind][..], &body[..]].concat();
        if let Ok(frame) = FeatureFrame::decode(&bytes) {
            let _ = ValidatedFrame::new(frame, 0, &FrameWindow::default());
        }
        let _ = Alert::decode(&bytes);
        let _ = SituationMap::decode(&bytes);
    }

    #[test]
    fn mutated_frames_never_panic(idx in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = representative_frame().encode().unwrap();
        let i = idx.index(bytes.len());
        bytes[i] = byte;
        if let Ok(frame) = FeatureFrame::decode(&bytes) {
            let _ = ValidatedFrame::new(frame, 1_795_000_000_123_456, &FrameWindow::default());
        }
    }

    #[test]
    fn validation_never_panics_on_extreme_times(now in any::<i64>(), capture in any::<i64>()) {
        let mut frame = protocol::sample::representative_frame();
        frame.capture_us = capture;
        let _ = ValidatedFrame::new(frame, now, &FrameWindow::default());
    }

    #[test]
    fn sigma_never_understates(sigma_m in 0.0f64..9.0) {
        let s = Sigma::from_m("sigma", sigma_m).unwrap();
        prop_assert!(s.m() >= sigma_m - 1e-9);
        if s.code() > 0 {
            prop_assert!(Sigma::from_code(s.code() - 1).unwrap().m() < sigma_m);
        }
    }
}

#[test]
fn si_conversion_refuses_non_finite_and_out_of_range() {
    let mut o = ObjectSi {
        class: ObjectClass::Car,
        offset_m: [1.0, 2.0],
        velocity_mps: [3.0, 4.0],
        yaw_rad: 0.9,
        length_m: 4.5,
        width_m: 1.8,
        sigma_m: 0.3,
        confidence: 0.8,
    };
    assert!(PerceivedObject::from_si(1, &o).is_ok());
    o.offset_m[0] = f64::NAN;
    assert_eq!(
        PerceivedObject::from_si(1, &o).unwrap_err(),
        ValidationError::NotFinite {
            field: "object.offset_m"
        }
    );
    o.offset_m[0] = 1.0;
    o.velocity_mps[1] = 400.0; // 40,000 cm/s does not fit an i16
    assert_eq!(
        PerceivedObject::from_si(1, &o).unwrap_err().reason(),
        "out_of_range"
    );
    o.velocity_mps[1] = 4.0;
    o.confidence = 1.5;
    assert!(PerceivedObject::from_si(1, &o).is_err());
}

#[test]
fn validation_checks_ranges_ids_and_the_time_window() {
    let now = representative_frame().capture_us;
    let w = FrameWindow::default();
    let check = |f: FeatureFrame, now: i64| ValidatedFrame::new(f, now, &w).map(|_| ());
    assert!(check(representative_frame(), now).is_ok());

    type Mutation = Box<dyn Fn(&mut FeatureFrame)>;
    let cases: Vec<(&str, Mutation, i64, &str)> = vec![
        ("too old", Box::new(|_| {}), now + 300_001, "too_old"),
        (
            "from the future",
            Box::new(|_| {}),
            now - 20_000 - 851,
            "from_future",
        ),
        (
            "future within uncertainty",
            Box::new(|f| f.clock_uncertainty_us = 5_000),
            now - 24_000,
            "ok",
        ),
        (
            "duplicate id",
            Box::new(|f| f.objects[1].id = f.objects[0].id),
            now,
            "duplicate_object_id",
        ),
        (
            "latitude",
            Box::new(|f| f.ego.position.lat_e7 = 900_000_001),
            now,
            "out_of_range",
        ),
        (
            "ego speed",
            Box::new(|f| f.ego.speed_cms = 10_001),
            now,
            "out_of_range",
        ),
        (
            "ego yaw",
            Box::new(|f| f.ego.yaw_ddeg = 3600),
            now,
            "out_of_range",
        ),
        (
            "zero width",
            Box::new(|f| f.objects[0].width_dm = 0),
            now,
            "out_of_range",
        ),
        (
            "object range",
            Box::new(|f| f.objects[0].offset_cm[1] = 50_001),
            now,
            "out_of_range",
        ),
        (
            "clock uncertainty",
            Box::new(|f| f.clock_uncertainty_us = 100_001),
            now,
            "out_of_range",
        ),
    ];
    for (what, mutate, at, reason) in cases {
        let mut f = representative_frame();
        mutate(&mut f);
        let got = match check(f, at) {
            Ok(()) => "ok",
            Err(e) => e.reason(),
        };
        assert_eq!(got, reason, "{what}");
    }
}

#[test]
fn geodesy_matches_reference_values_within_a_centimetre() {
    let text = std::fs::read_to_string(data("geodesy_reference.csv")).unwrap();
    let mut n = 0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let v: Vec<f64> = line.split(',').map(|s| s.parse().unwrap()).collect();
        let frame = EnuFrame::new(Geodetic::new(v[0], v[1], 0.0));
        let p = Geodetic::new(v[2], v[3], 0.0);
        let enu = frame.to_enu(&p);
        let err = ((enu.x - v[4]).powi(2) + (enu.y - v[5]).powi(2) + (enu.z - v[6]).powi(2)).sqrt();
        assert!(err < 0.01, "{line}: got {enu:?}, error {err} m");
        let back = frame.to_geodetic(&enu);
        assert!((back.lat_deg - v[2]).abs() < 1e-9 && (back.lon_deg - v[3]).abs() < 1e-9);
        assert!(back.alt_m.abs() < 1e-4);
        n += 1;
    }
    assert_eq!(n, 40);
}

#[test]
fn enu_axes_rotate_between_nearby_frames() {
    let a = EnuFrame::new(Geodetic::new(48.0, 11.0, 0.0));
    let b = EnuFrame::new(Geodetic::new(48.01, 11.02, 0.0));
    let v = b.rotate_from(&a, [10.0, 0.0]);
    assert!((v[0].hypot(v[1]) - 10.0).abs() < 1e-5);
    assert!(v[1].abs() < 0.05 && v[1] != 0.0, "{v:?}");
}

#[test]
fn clock_sync_takes_the_fastest_exchange() {
    // The vehicle clock is 5 ms behind the edge; exchanges with 2 ms and 0.4 ms round trips.
    let offset = 5_000;
    let exchange = |t1: i64, up: i64, down: i64| {
        let t2 = t1 + offset + up;
        let t3 = t2 + 30;
        let reply = ClockReply {
            t1_us: t1,
            t2_us: t2,
            t3_us: t3,
        };
        ClockSample::from_exchange(&reply, t3 - offset + down).unwrap()
    };
    let mut est = ClockEstimator::new(8, 100.0);
    assert!(est.estimate(0).is_none());
    est.add(exchange(1_000_000, 1_500, 500)); // asymmetric: offset off by 500 µs
    est.add(exchange(2_000_000, 200, 200));
    let e = est.estimate(2_000_500).unwrap();
    assert_eq!(e.offset_us, offset);
    assert!(e.uncertainty_us >= 200 && e.uncertainty_us < 250, "{e:?}");
    // The asymmetric sample's error lies within its own bound.
    let s = exchange(3_000_000, 1_500, 500);
    assert!((s.offset_us - offset).abs() <= s.delay_us / 2);
    // A negative delay is refused.
    let bad = ClockReply {
        t1_us: 0,
        t2_us: 100,
        t3_us: 50,
    };
    assert!(ClockSample::from_exchange(&bad, 10).is_none());
}

#[test]
fn keys_are_built_and_parsed() {
    assert_eq!(keys::frames("j1", VehicleId(7)), "v2e/edge/j1/frames/7");
    assert_eq!(keys::alerts("j1", VehicleId(7)), "v2e/edge/j1/alerts/7");
    assert_eq!(
        keys::parse_frames_key("j1", "v2e/edge/j1/frames/7"),
        Some(VehicleId(7))
    );
    for bad in [
        "v2e/edge/j2/frames/7",
        "v2e/edge/j1/frames/",
        "v2e/edge/j1/frames/x",
        "v2e/edge/j1/frames/99999999999",
    ] {
        assert_eq!(keys::parse_frames_key("j1", bad), None, "{bad}");
    }
    assert!(keys::is_valid_edge_id("junction-1"));
    assert!(!keys::is_valid_edge_id("J/1"));
}
