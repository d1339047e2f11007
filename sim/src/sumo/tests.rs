use super::*;
use std::f64::consts::{FRAC_PI_2, PI};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn import_fixture() -> (Scenario, ImportSummary) {
    import(
        &fixture("three_records.fcd.xml"),
        &[fixture("three_records.vtypes.xml")],
        &ImportOptions::new("three", 1),
    )
    .expect("the fixture imports")
}

fn fcd(body: &str) -> Result<Vec<FcdTrack>, SumoError> {
    parse_fcd(body.as_bytes(), "test.xml", 0.0, f64::INFINITY)
}

fn close(a: V2, b: V2) -> bool {
    (a - b).norm() < 1e-9
}

#[test]
fn compass_angles_become_counter_clockwise_yaw_from_east() {
    for (angle, yaw) in [
        (0.0, FRAC_PI_2),
        (90.0, 0.0),
        (180.0, -FRAC_PI_2),
        (270.0, PI),
        (45.0, PI / 4.0),
        (225.0, -3.0 * PI / 4.0),
        (360.0, FRAC_PI_2),
    ] {
        let got = yaw_of_angle(angle);
        assert!(
            (got - yaw).abs() < 1e-12,
            "angle {angle}: yaw {got}, want {yaw}"
        );
    }
}

#[test]
fn the_fixture_converts_front_bumpers_to_centres() {
    let (s, summary) = import_fixture();
    assert_eq!(summary.vehicles, 2);
    assert_eq!(summary.persons, 1);
    assert_eq!(summary.types_missing, vec!["ped".to_string()]);
    assert_eq!(s.actors.len(), 3);
    assert_eq!(s.duration_s, 0.0);
    assert_eq!(s.origin, DEFAULT_ORIGIN);

    // A 4 m car heading north with its front at (10, 20): centre 2 m south.
    let north = &s.actors[0];
    assert_eq!(
        (north.id.as_str(), north.class),
        ("north", ObjectClass::Car)
    );
    assert_eq!((north.length_m, north.width_m), (4.0, 1.7));
    let st = north.state(0.0).expect("present at its record");
    assert!(close(st.pos, V2::new(10.0, 18.0)), "{st:?}");
    assert!((st.yaw - FRAC_PI_2).abs() < 1e-12);
    assert!(close(st.vel, V2::new(0.0, 10.0)), "{st:?}");

    // A delivery van (SUMO's 6.5 x 2.16 m) heading east with its front at (-5, 3).
    let east = &s.actors[1];
    assert_eq!(east.class, ObjectClass::Truck);
    assert_eq!((east.length_m, east.width_m), (6.5, 2.16));
    let st = east.state(0.0).expect("present");
    assert!(close(st.pos, V2::new(-8.25, 3.0)), "{st:?}");
    assert!(st.yaw.abs() < 1e-12);
    assert_eq!(st.accel, -1.5);

    // A pedestrian of an undefined type: SUMO's 0.215 x 0.478 m, heading south-west.
    let walker = &s.actors[2];
    assert_eq!(walker.class, ObjectClass::Pedestrian);
    assert_eq!((walker.length_m, walker.width_m), (0.215, 0.478));
    let st = walker.state(0.0).expect("present");
    let back = 0.215 / 2.0 / 2f64.sqrt();
    assert!(close(st.pos, V2::new(1.0 + back, 1.0 + back)), "{st:?}");
    assert!((st.yaw + 3.0 * PI / 4.0).abs() < 1e-12);

    // Present only at the one record.
    assert!(north.state(0.05).is_none());
    // Persons never carry an agent; with the default share every vehicle does.
    assert!(north.connected && east.connected && !walker.connected);
}

#[test]
fn vclasses_map_to_object_classes_with_sumo_defaults() {
    use ObjectClass::*;
    for (vclass, class, length, width) in [
        ("passenger", Car, 5.0, 1.8),
        ("taxi", Car, 5.0, 1.8),
        ("private", Car, 5.0, 1.8),
        ("truck", Truck, 7.1, 2.4),
        ("trailer", Truck, 16.5, 2.55),
        ("delivery", Truck, 6.5, 2.16),
        ("bus", Bus, 12.0, 2.5),
        ("coach", Bus, 14.0, 2.6),
        ("motorcycle", Motorcycle, 2.2, 0.9),
        ("moped", Motorcycle, 2.1, 0.78),
        ("bicycle", Bicycle, 1.6, 0.65),
        ("pedestrian", Pedestrian, 0.215, 0.478),
        ("rail", Unknown, 5.0, 1.8),
    ] {
        let f = vclass_defaults(vclass);
        assert_eq!(
            (f.class, f.length_m, f.width_m),
            (class, length, width),
            "{vclass}"
        );
    }
    // Unknown types: a passenger car for a vehicle, a pedestrian for a person.
    let car = footprint(None, FcdKind::Vehicle);
    assert_eq!((car.class, car.length_m, car.width_m), (Car, 5.0, 1.8));
    let ped = footprint(None, FcdKind::Person);
    assert_eq!(
        (ped.class, ped.length_m, ped.width_m),
        (Pedestrian, 0.215, 0.478)
    );
    // A type without a vClass is a passenger car with its own sizes.
    let t = VType {
        id: "t".into(),
        vclass: None,
        length_m: Some(4.2),
        width_m: None,
    };
    let f = footprint(Some(&t), FcdKind::Vehicle);
    assert_eq!((f.class, f.length_m, f.width_m), (Car, 4.2, 1.8));
}

#[test]
fn records_interpolate_between_timesteps_and_keep_sumo_ids() {
    let tracks = fcd(r#"<fcd-export>
        <timestep time="1.0"><vehicle id="a&amp;b" x="0" y="0" angle="90" speed="10"/></timestep>
        <timestep time="1.1"><vehicle id="a&amp;b" x="1" y="0" angle="90" speed="10"/></timestep>
        <timestep time="1.2"/>
    </fcd-export>"#)
    .expect("parses");
    assert_eq!(tracks.len(), 1);
    assert_eq!(tracks[0].id, "a&b");
    assert_eq!(tracks[0].type_id, "DEFAULT_VEHTYPE");
    let (s, _) = scenario_from_tracks(
        &tracks,
        &VTypes::default(),
        &ImportOptions::new("t", 1),
        "t",
    )
    .expect("imports");
    let a = &s.actors[0];
    assert!(a.state(0.99).is_none());
    let mid = a.state(1.05).expect("present between records");
    // 5 m long by default: the centre trails the front bumper by 2.5 m.
    assert!(close(mid.pos, V2::new(-2.0, 0.0)), "{mid:?}");
    assert!(a.state(1.11).is_none());
    // Without SUMO's acceleration it comes from the change of speed.
    assert_eq!(mid.accel, 0.0);
}

#[test]
fn a_time_window_shifts_the_scenario_clock() {
    let body = r#"<fcd-export>
        <timestep time="9.9"><vehicle id="a" x="0" y="0" angle="90" speed="10"/></timestep>
        <timestep time="10.0"><vehicle id="a" x="1" y="0" angle="90" speed="10"/></timestep>
        <timestep time="10.1"><vehicle id="a" x="2" y="0" angle="90" speed="10"/></timestep>
        <timestep time="10.2"><vehicle id="a" x="3" y="0" angle="90" speed="10"/></timestep>
    </fcd-export>"#;
    let tracks = parse_fcd(body.as_bytes(), "t", 10.0, 10.1).expect("parses");
    assert_eq!(tracks[0].records.len(), 2);
    let mut opts = ImportOptions::new("t", 1);
    opts.start_s = 10.0;
    let (s, _) = scenario_from_tracks(&tracks, &VTypes::default(), &opts, "t").expect("imports");
    assert!((s.duration_s - 0.1).abs() < 1e-9);
    let st = s.actors[0]
        .state(0.0)
        .expect("present at the window's start");
    assert!(close(st.pos, V2::new(1.0 - 2.5, 0.0)));
}

#[test]
fn malformed_files_are_typed_errors_with_the_line() {
    let cases: &[(&str, &str, u64)] = &[
        (
            "truncated",
            "<fcd-export>\n<timestep time=\"0\">\n<vehicle id=\"a\" x=\"0\" y=\"0\" angle=\"0\"/>\n",
            4,
        ),
        (
            "bad number",
            "<fcd-export>\n<timestep time=\"0\">\n<vehicle id=\"a\" x=\"zero\" y=\"0\" angle=\"0\"/>\n</timestep></fcd-export>",
            3,
        ),
        (
            "missing attribute",
            "<fcd-export>\n<timestep time=\"0\">\n\n<vehicle id=\"a\" x=\"0\" angle=\"0\"/>\n</timestep></fcd-export>",
            4,
        ),
        (
            "outside a timestep",
            "<fcd-export>\n<vehicle id=\"a\" x=\"0\" y=\"0\" angle=\"0\"/>\n</fcd-export>",
            2,
        ),
        (
            "mismatched end tag",
            "<fcd-export>\n<timestep time=\"0\">\n</fcd-export>",
            3,
        ),
        (
            "broken attribute",
            "<fcd-export>\n<timestep time=\"0\">\n<vehicle id=\"a\" x=0 y=\"0\" angle=\"0\"/>\n</timestep></fcd-export>",
            3,
        ),
        (
            "time goes back",
            "<fcd-export>\n<timestep time=\"1\"><vehicle id=\"a\" x=\"0\" y=\"0\" angle=\"0\"/></timestep>\n<timestep time=\"0.5\"><vehicle id=\"a\" x=\"0\" y=\"0\" angle=\"0\"/></timestep>\n</fcd-export>",
            3,
        ),
        ("wrong root", "<?xml version=\"1.0\"?>\n\n<routes/>", 3),
        ("not xml at all", "\u{0}\u{1}garbage<<<>>", 1),
        ("infinite", "<fcd-export><timestep time=\"inf\"/></fcd-export>", 1),
    ];
    for (what, body, line) in cases {
        let err = fcd(body).expect_err(what);
        let at = match &err {
            SumoError::Xml { at, .. }
            | SumoError::Truncated { at, .. }
            | SumoError::UnexpectedRoot { at, .. }
            | SumoError::MissingAttribute { at, .. }
            | SumoError::BadNumber { at, .. }
            | SumoError::OutsideTimestep { at, .. }
            | SumoError::TimeGoesBack { at, .. } => *at,
            other => panic!("{what}: unexpected {other:?}"),
        };
        assert_eq!(at.line, *line, "{what}: {err}");
        let message = err.to_string();
        assert!(message.starts_with("test.xml, line "), "{what}: {message}");
    }
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let err = import(
        Path::new("/nonexistent/fcd.xml"),
        &[] as &[&Path],
        &ImportOptions::new("x", 1),
    )
    .expect_err("no such file");
    assert!(matches!(err, SumoError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/fcd.xml"), "{err}");
}

#[test]
fn vtypes_come_from_additional_or_routes_files_at_any_depth() {
    let v = VTypes::read(&fixture("three_records.vtypes.xml")).expect("parses");
    assert_eq!(v.len(), 2);
    assert_eq!(v.get("car").and_then(|t| t.length_m), Some(4.0));
    assert_eq!(
        v.get("van").and_then(|t| t.vclass.as_deref()),
        Some("delivery")
    );
    let body = r#"<additional><vType id="bus1" vClass="bus" width="2.55"><param key="k" value="v"/></vType></additional>"#;
    let v = VTypes::parse(body.as_bytes(), "t").expect("parses");
    let f = footprint(v.get("bus1"), FcdKind::Vehicle);
    assert_eq!(
        (f.class, f.length_m, f.width_m),
        (ObjectClass::Bus, 12.0, 2.55)
    );
    let err = VTypes::parse("<fcd-export/>".as_bytes(), "t").expect_err("wrong root");
    assert!(matches!(err, SumoError::UnexpectedRoot { .. }), "{err:?}");
}

#[test]
fn ssm_conflicts_and_their_pairs_below_a_threshold() {
    let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<SSMLog>
    <conflict begin="1.0" end="3.0" ego="b" foe="a">
        <minTTC time="2.0" position="1,2" type="10" value="1.20" speed="5"/>
        <PET time="NA" position="NA" type="NA" value="NA" speed="NA"/>
    </conflict>
    <conflict begin="1.0" end="3.0" ego="a" foe="b">
        <minTTC time="2.0" position="1,2" type="10" value="1.20" speed="5"/>
    </conflict>
    <conflict begin="4.0" end="5.0" ego="c" foe="d">
        <minTTC time="NA" position="NA" type="NA" value="NA" speed="NA"/>
    </conflict>
    <conflict begin="4.0" end="5.0" ego="e" foe="f">
        <minTTC time="4.5" position="1,2" type="10" value="2.9" speed="5"/>
    </conflict>
</SSMLog>"#;
    let c = parse_ssm(body.as_bytes(), "ssm.xml").expect("parses");
    assert_eq!(c.len(), 4);
    assert_eq!(
        c[0].min_ttc,
        Some(SsmMeasure {
            t_s: 2.0,
            value: 1.2
        })
    );
    assert_eq!(c[2].min_ttc, None);
    assert_eq!(
        ssm_pairs_below(&c, 1.5),
        vec![("a".to_string(), "b".to_string())]
    );
    assert_eq!(ssm_pairs_below(&c, 3.0).len(), 2);
}
