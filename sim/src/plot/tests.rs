use super::*;
use crate::world::Scenario;

/// A fresh directory for one test's charts: `$V2E_PLOT_DIR/NAME` when that variable is set
/// (kept, to look at), else a unique directory under the system's temporary one, removed when
/// the guard drops.
struct OutDir {
    path: PathBuf,
    keep: bool,
}

impl OutDir {
    fn new(name: &str) -> Self {
        if let Some(base) = std::env::var_os("V2E_PLOT_DIR") {
            return Self {
                path: PathBuf::from(base).join(name),
                keep: true,
            };
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path =
            std::env::temp_dir().join(format!("v2e-plot-{name}-{}-{nanos}", std::process::id()));
        Self { path, keep: false }
    }
}

impl Drop for OutDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The width and height a PNG's IHDR chunk declares (bytes 16..24, after the signature and the
/// chunk's length and type), after checking the signature.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).expect("the PNG was written");
    assert!(
        bytes.len() > 24,
        "{} is too short for a PNG",
        path.display()
    );
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    (be(16), be(20))
}

fn svg_text(path: &Path) -> String {
    std::fs::read_to_string(path).expect("the SVG was written")
}

/// Checks both files of chart `name` in `dir`: the PNG's size and that the SVG has each of
/// `texts`.
fn check(dir: &Path, name: &str, size: (u32, u32), texts: &[&str]) {
    assert_eq!(png_size(&dir.join(format!("{name}.png"))), size);
    let svg = svg_text(&dir.join(format!("{name}.svg")));
    assert!(
        svg.starts_with("<svg"),
        "not an SVG: {}",
        &svg[..svg.len().min(80)]
    );
    for t in texts {
        assert!(svg.contains(t), "{name}.svg lacks {t:?}");
    }
}

/// A spread of latencies like a fast-mode run's: most near 20 ms, a tail to 80 ms.
fn latencies() -> Vec<f64> {
    (0..400)
        .map(|i| {
            let u = (i as f64 + 0.5) / 400.0;
            12.0 + 10.0 * u + 60.0 * u.powi(12)
        })
        .collect()
}

#[test]
fn latency_cdf_writes_both_files_with_quantiles() {
    let out = OutDir::new("latency");
    latency_cdf(&out.path, &latencies()).expect("drawn");
    let p99 = quantile(&latencies(), 0.99);
    check(
        &out.path,
        "latency_cdf",
        (1000, 700),
        &[
            "End-to-end alert latency",
            "p50 = ",
            &format!("p99 = {} ms", tick((p99 * 10.0).round() / 10.0)),
            "end-to-end latency (ms)",
            "400 alerts",
        ],
    );
}

#[test]
fn lead_time_histogram_marks_the_least_useful_lead_and_unwarned() {
    let out = OutDir::new("lead");
    let leads: Vec<f64> = (0..40).map(|i| 0.3 + (i as f64 * 0.37) % 4.2).collect();
    lead_time_histogram(&out.path, &leads, 1.0, 3).expect("drawn");
    check(
        &out.path,
        "lead_time",
        (1000, 700),
        &[
            "Warning lead time",
            "never warned: 3",
            "40 of 43 true conflicts warned",
            "least useful lead, 1 s",
        ],
    );
}

/// Roads of a four-way junction like the demo's: two 7 m carriageways, a crosswalk on each
/// arm, a stop line across each incoming lane.
fn junction_roads() -> Vec<Surface> {
    let strip = |kind, points: &[(f64, f64)], width_m| Surface {
        kind,
        centerline: points.iter().map(|&(x, y)| V2::new(x, y)).collect(),
        width_m,
    };
    vec![
        strip(
            SurfaceKind::Carriageway,
            &[(-200.0, 0.0), (200.0, 0.0)],
            7.0,
        ),
        strip(
            SurfaceKind::Carriageway,
            &[(0.0, -200.0), (0.0, 200.0)],
            7.0,
        ),
        strip(SurfaceKind::Crosswalk, &[(-6.0, -3.5), (-6.0, 3.5)], 3.0),
        strip(SurfaceKind::Crosswalk, &[(6.0, -3.5), (6.0, 3.5)], 3.0),
        strip(SurfaceKind::Crosswalk, &[(-3.5, -6.0), (3.5, -6.0)], 3.0),
        strip(SurfaceKind::Crosswalk, &[(-3.5, 6.0), (3.5, 6.0)], 3.0),
        strip(SurfaceKind::StopLine, &[(-8.0, -3.5), (-8.0, 0.0)], 0.4),
        strip(SurfaceKind::StopLine, &[(8.0, 0.0), (8.0, 3.5)], 0.4),
        strip(SurfaceKind::StopLine, &[(0.0, -8.0), (3.5, -8.0)], 0.4),
        strip(SurfaceKind::StopLine, &[(-3.5, 8.0), (0.0, 8.0)], 0.4),
    ]
}

/// The demo at 5.5 s with its roads, tracks a little off the truth for the connected cars
/// and the pedestrian, and the v1-v2 alert.
fn demo_snapshot() -> MapSnapshot {
    let mut scenario = Scenario::demo();
    scenario.roads = junction_roads();
    let t_s = 5.5;
    let tracks = scenario
        .actors
        .iter()
        .filter(|a| a.connected || a.id == "ped1")
        .enumerate()
        .filter_map(|(k, a)| {
            let s = a.state(t_s)?;
            Some(Footprint {
                center: s.pos + V2::new(0.4, -0.3),
                yaw: s.yaw + 0.05,
                length: a.length_m,
                width: a.width_m,
                label: format!("#{}", k + 1),
            })
        })
        .collect();
    MapSnapshot::from_world(
        &scenario,
        t_s,
        tracks,
        &[("v1".into(), "v2".into()), ("v1".into(), "nobody".into())],
        Some((V2::new(0.0, -5.0), 30.0)),
    )
}

#[test]
fn map_snapshot_draws_truth_tracks_and_alerts() {
    let snapshot = demo_snapshot();
    assert_eq!(
        snapshot.alert_links.len(),
        1,
        "the unknown actor draws no link"
    );
    assert_eq!(snapshot.truth.len(), Scenario::demo().actors.len());
    let out = OutDir::new("map");
    map_snapshot(&out.path, &snapshot).expect("drawn");
    check(
        &out.path,
        "map_snapshot",
        (1000, 1000),
        &["demo-junction at t = 5.5 s", "v1", "ped1", "#1", "east (m)"],
    );
}

#[test]
fn map_snapshot_without_focus_fits_the_road_users() {
    let mut snapshot = demo_snapshot();
    snapshot.focus = None;
    let (centre, half) = snapshot.view();
    for a in &snapshot.truth {
        let d = a.footprint.center - centre;
        assert!(
            d.x.abs() < half && d.y.abs() < half,
            "{} is outside",
            a.footprint.label
        );
    }
    let out = OutDir::new("map-fit");
    map_snapshot(&out.path, &snapshot).expect("drawn");
    check(&out.path, "map_snapshot", (1000, 1000), &["v5"]);
}

#[test]
fn scenario_summary_has_a_bar_per_scenario() {
    let rows = vec![
        SummaryRow {
            scenario: "demo-junction".into(),
            recall: 1.0,
            true_conflicts: 1,
            false_alarms_per_vehicle_hour: 0.0,
        },
        SummaryRow {
            scenario: "hidden-pedestrian".into(),
            recall: 1.0,
            true_conflicts: 1,
            false_alarms_per_vehicle_hour: 12.5,
        },
        SummaryRow {
            scenario: "hidden-pedestrian-ego-only".into(),
            recall: 0.0,
            true_conflicts: 1,
            false_alarms_per_vehicle_hour: 0.0,
        },
        SummaryRow {
            scenario: "sumo-grid-with-a-rather-long-name-indeed-x4".into(),
            recall: 0.83,
            true_conflicts: 6,
            false_alarms_per_vehicle_hour: 3.2,
        },
        SummaryRow {
            scenario: "quiet-street".into(),
            recall: 1.0,
            true_conflicts: 0,
            false_alarms_per_vehicle_hour: 1.1,
        },
    ];
    let out = OutDir::new("summary");
    scenario_summary(&out.path, &rows).expect("drawn");
    check(
        &out.path,
        "summary",
        (1000, 700),
        &[
            "Recall and false alarms per scenario",
            "hidden-pedestrian-ego-only",
            "sumo-grid-with-a-rather-long-na…",
            "0.83 of 6",
            "12.5 / h",
            "no true conflicts",
        ],
    );
}

#[test]
fn empty_input_draws_an_empty_chart() {
    let out = OutDir::new("empty");
    latency_cdf(&out.path, &[]).expect("drawn");
    check(&out.path, "latency_cdf", (1000, 700), &["no data"]);
    lead_time_histogram(&out.path, &[], 1.0, 0).expect("drawn");
    check(&out.path, "lead_time", (1000, 700), &["no data"]);
    lead_time_histogram(&out.path, &[f64::NAN], f64::NAN, 2).expect("drawn");
    check(&out.path, "lead_time", (1000, 700), &["2 never warned"]);
    map_snapshot(
        &out.path,
        &MapSnapshot {
            title: "nothing".into(),
            t_s: 0.0,
            roads: Vec::new(),
            truth: Vec::new(),
            tracks: Vec::new(),
            alert_links: Vec::new(),
            focus: None,
        },
    )
    .expect("drawn");
    check(&out.path, "map_snapshot", (1000, 1000), &["no data"]);
    scenario_summary(&out.path, &[]).expect("drawn");
    check(&out.path, "summary", (1000, 700), &["no data"]);
}

#[test]
fn a_single_value_and_non_finite_values_do_not_break_the_axes() {
    let out = OutDir::new("degenerate");
    latency_cdf(&out.path, &[0.0, f64::INFINITY, f64::NAN]).expect("drawn");
    check(&out.path, "latency_cdf", (1000, 700), &["p99 = 0 ms"]);
    lead_time_histogram(&out.path, &[-0.3, 7.9], 1.0, 0).expect("drawn");
    let one = MapSnapshot {
        focus: Some((V2::zeros(), f64::NAN)),
        ..demo_snapshot()
    };
    map_snapshot(&out.path, &one).expect("drawn");
}

#[test]
fn an_unwritable_directory_names_the_path() {
    let out = OutDir::new("unwritable");
    std::fs::create_dir_all(&out.path).expect("temp dir");
    // A file where the directory should be.
    let blocker = out.path.join("blocker");
    std::fs::write(&blocker, b"").expect("temp file");
    let err = latency_cdf(&blocker, &latencies()).expect_err("not a directory");
    assert!(matches!(err, PlotError::CreateDir { .. }), "{err:?}");
    assert!(err.to_string().contains("blocker"), "{err}");
}

#[test]
fn zebra_stripes_alternate_along_the_crossing() {
    let line = [V2::new(0.0, 0.0), V2::new(0.0, 2.2)];
    let stripes = zebra_polygons(&line, 3.0);
    // Stripes at 0-0.5, 1-1.5 and 2-2.2 m.
    assert_eq!(stripes.len(), 3);
    assert!((stripes[1][0].y - 1.0).abs() < 1e-9);
    assert!((stripes[2][1].y - 2.2).abs() < 1e-9);
}

#[test]
fn ticks_have_no_trailing_zeros() {
    assert_eq!(tick(10.0), "10");
    assert_eq!(tick(0.25), "0.25");
    assert_eq!(tick(-0.0001), "0");
    assert_eq!(nice_ceil(83.0), "100".parse::<f64>().unwrap());
    assert_eq!(nice_ceil(0.0), 1.0);
}

#[test]
fn shapes_are_clipped_to_the_view_not_clamped() {
    let view = Viewport {
        lo: V2::new(-10.0, -10.0),
        hi: V2::new(10.0, 10.0),
    };
    // A diagonal strip from far outside to the centre keeps its direction inside the view.
    let clipped = view.clip_polygon(&[
        V2::new(-100.0, -101.0),
        V2::new(0.0, -1.0),
        V2::new(0.0, 1.0),
        V2::new(-100.0, -99.0),
    ]);
    assert!(clipped.iter().all(|p| view.contains(*p)), "{clipped:?}");
    // It enters through the left edge at y = -11 + 1 = -10 .. -9 (clamping would put it in
    // the corner instead).
    let on_left: Vec<&V2> = clipped.iter().filter(|p| p.x == -10.0).collect();
    assert!(!on_left.is_empty(), "{clipped:?}");
    assert!(
        on_left.iter().all(|p| (-10.0..=-9.0).contains(&p.y)),
        "{clipped:?}"
    );
    let outside = [V2::new(20.0, 0.0), V2::new(30.0, 0.0), V2::new(25.0, 5.0)];
    assert!(view.clip_polygon(&outside).is_empty());
    let (a, b) = view
        .clip_segment(V2::new(-20.0, 0.0), V2::new(20.0, 10.0))
        .expect("crosses the view");
    assert!((a - V2::new(-10.0, 2.5)).norm() < 1e-9);
    assert!((b - V2::new(10.0, 7.5)).norm() < 1e-9);
    assert_eq!(
        view.clip_segment(V2::new(-20.0, 11.0), V2::new(20.0, 11.0)),
        None
    );
}

#[test]
fn scenario_summary_names_every_row_of_a_long_table() {
    let rows: Vec<SummaryRow> = (0..30)
        .map(|k| SummaryRow {
            scenario: format!("scenario-{k:02}"),
            recall: k as f64 / 29.0,
            true_conflicts: k,
            false_alarms_per_vehicle_hour: k as f64 * 0.7,
        })
        .collect();
    let out = OutDir::new("summary-long");
    scenario_summary(&out.path, &rows).expect("drawn");
    let names: Vec<String> = rows.iter().map(|r| r.scenario.clone()).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    check(&out.path, "summary", (1000, 700), &names);
}
