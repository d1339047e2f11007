//! Pictures of a run, for people: the end-to-end latency CDF, the warning lead-time histogram, a
//! top-down map snapshot of one instant and a per-scenario summary. Each chart is written twice
//! into a directory, as `NAME.png` (to look at) and `NAME.svg` (to put in a document).
//!
//! Text is drawn with DejaVu Sans, embedded in the binary (`sim/assets/`, licence beside it) and
//! rasterised by plotters' `ab_glyph` backend, so a PNG has its labels on a machine without
//! fontconfig, freetype or any installed font. The SVG files name the family `sans-serif` and
//! leave drawing the text to the viewer; plotters still measures text with the embedded font to
//! lay the chart out.
//!
//! This module computes no statistic that a report does not already have: p50 and p99 are
//! [`crate::score::quantile`], the nearest-rank definition `report.json` uses. It does not decide
//! where charts go (the caller passes the directory) nor when to draw them. Empty input draws
//! an empty chart with a note saying so, never an error; values that are not finite numbers
//! are left out.

use crate::score::quantile;
use crate::world::{Scenario, Surface, SurfaceKind};
use edge_node::geometry::V2;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use protocol::ObjectClass;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Why a chart was not written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlotError {
    /// The output directory does not exist and could not be created.
    #[error("cannot create the chart directory {}", dir.display())]
    CreateDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Drawing or writing one file failed: an IO error (the disk, permissions) or, for a PNG,
    /// the encoder's. Files written before it are complete; this one may be partial.
    #[error("cannot write the chart {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The embedded font did not parse. A defect of the build, not of the input.
    #[error("the embedded chart font could not be loaded")]
    Font,
}

/// DejaVu Sans (Bitstream Vera licence, `sim/assets/LICENSE-DejaVu`).
static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// The family every text of a chart uses; plotters' own defaults use the same name.
const FONT: &str = "sans-serif";

/// Registers the embedded font with plotters once per process (its font table is global).
fn ensure_font() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(PlotError::Font)
    }
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// One chart: a file stem, a size in pixels, and how to draw it on any plotters backend.
trait Chart {
    const NAME: &'static str;
    const SIZE: (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>;
}

/// Draws `chart` into `dir/NAME.png` and `dir/NAME.svg`, creating `dir` if needed.
fn render<C: Chart>(dir: &Path, chart: &C) -> Result<(), PlotError> {
    ensure_font()?;
    std::fs::create_dir_all(dir).map_err(|source| PlotError::CreateDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    let png = dir.join(format!("{}.png", C::NAME));
    {
        let root = BitMapBackend::new(&png, C::SIZE).into_drawing_area();
        chart
            .draw(&root)
            .and_then(|()| root.present())
            .map_err(|e| write_error(&png, e))?;
    }
    let svg = dir.join(format!("{}.svg", C::NAME));
    let root = SVGBackend::new(&svg, C::SIZE).into_drawing_area();
    chart
        .draw(&root)
        .and_then(|()| root.present())
        .map_err(|e| write_error(&svg, e))
}

fn write_error<E>(path: &Path, e: DrawingAreaErrorKind<E>) -> PlotError
where
    E: std::error::Error + Send + Sync + 'static,
{
    PlotError::Write {
        path: path.to_path_buf(),
        source: Box::new(e),
    }
}

/// Writes `latency_cdf.{png,svg}`: the empirical CDF of end-to-end alert latency (capture of the
/// triggering frame to receipt at the vehicle), milliseconds, with p50 and p99 marked.
pub fn latency_cdf(dir: &Path, latencies_ms: &[f64]) -> Result<(), PlotError> {
    render(dir, &LatencyCdf { latencies_ms })
}

/// Writes `lead_time.{png,svg}`: a histogram of warning lead times (moment of closest approach
/// minus receipt of the first raise alert) in 0.25 s bins, a vertical line at `min_lead_s` (the
/// least lead a driver can act on; bars below it are coloured as too late), and how many true
/// conflicts were never warned (`unwarned`), which have no lead time to plot.
pub fn lead_time_histogram(
    dir: &Path,
    lead_times_s: &[f64],
    min_lead_s: f64,
    unwarned: usize,
) -> Result<(), PlotError> {
    render(
        dir,
        &LeadTimes {
            lead_times_s,
            min_lead_s,
            unwarned,
        },
    )
}

/// Writes `map_snapshot.{png,svg}`: the road surface, the true footprints, the edge's tracks and
/// the alerted pairs at one instant, top-down in the scenario's ENU metres at equal scale.
pub fn map_snapshot(dir: &Path, snapshot: &MapSnapshot) -> Result<(), PlotError> {
    render(dir, snapshot)
}

/// Writes `summary.{png,svg}`: recall and false alarms per vehicle-hour for each scenario, as
/// two panels of horizontal bars in the order of `rows` (first at the top).
pub fn scenario_summary(dir: &Path, rows: &[SummaryRow]) -> Result<(), PlotError> {
    render(dir, &Summary { rows })
}

// ---------------------------------------------------------------------------------------------
// Shared pieces.

const TITLE_PX: u32 = 30;
const SUBTITLE_PX: u32 = 18;
const AXIS_DESC_PX: u32 = 20;
const TICK_PX: u32 = 16;
const NOTE_PX: u32 = 16;

fn text_style(px: u32, colour: RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    (FONT, px).into_font().color(&colour).pos(Pos::new(h, v))
}

/// Draws a title and a one-line subtitle across the top of `root` and returns the area below.
fn title_block<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    subtitle: &str,
) -> Result<DrawingArea<DB, Shift>, DrawingAreaErrorKind<DB::ErrorType>> {
    let (width, _) = root.dim_in_pixel();
    let centre = (width / 2) as i32;
    root.draw(&Text::new(
        title.to_string(),
        (centre, 12),
        text_style(TITLE_PX, BLACK, HPos::Center, VPos::Top),
    ))?;
    root.draw(&Text::new(
        subtitle.to_string(),
        (centre, 12 + TITLE_PX as i32 + 8),
        text_style(SUBTITLE_PX, RGBColor(80, 80, 80), HPos::Center, VPos::Top),
    ))?;
    let (_, below) = root.split_vertically(12 + TITLE_PX + 8 + SUBTITLE_PX + 10);
    Ok(below)
}

/// A tick label without trailing zeros: `0.25`, `10`, `-3.5`.
fn tick(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

/// The finite values of `v`, sorted.
fn finite_sorted(v: &[f64]) -> Vec<f64> {
    let mut out: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    out.sort_by(f64::total_cmp);
    out
}

/// A round number at or above `v` (1, 2, 2.5 or 5 times a power of ten), for axis ends; 1 for
/// anything that is not a positive finite number.
fn nice_ceil(v: f64) -> f64 {
    if !v.is_finite() || v <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|&c| c >= v)
        .unwrap_or(10.0 * magnitude)
}

fn grey(level: u8) -> RGBColor {
    RGBColor(level, level, level)
}

// ---------------------------------------------------------------------------------------------
// Latency CDF.

struct LatencyCdf<'a> {
    latencies_ms: &'a [f64],
}

impl Chart for LatencyCdf<'_> {
    const NAME: &'static str = "latency_cdf";
    const SIZE: (u32, u32) = (1000, 700);

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let v = finite_sorted(self.latencies_ms);
        let subtitle = match v.len() {
            0 => "no alerts received".to_string(),
            n => format!(
                "{} received; capture of the triggering frame to receipt",
                plural(n, "alert", "alerts")
            ),
        };
        let area = title_block(root, "End-to-end alert latency", &subtitle)?;
        let x_min = v.first().map_or(0.0, |&m| m.min(0.0));
        let x_max = v.last().map_or(100.0, |&m| nice_ceil(m * 1.05));
        let mut chart = ChartBuilder::on(&area)
            .margin(20)
            .margin_right(40)
            .x_label_area_size(60)
            .y_label_area_size(80)
            .build_cartesian_2d(x_min..x_max, 0.0..1.0)?;
        chart
            .configure_mesh()
            .x_desc("end-to-end latency (ms)")
            .y_desc("fraction of alerts (CDF)")
            .axis_desc_style((FONT, AXIS_DESC_PX))
            .label_style((FONT, TICK_PX))
            .x_label_formatter(&|x| tick(*x))
            .y_label_formatter(&|y| tick(*y))
            .light_line_style(TRANSPARENT)
            .bold_line_style(grey(215))
            .draw()?;

        if v.is_empty() {
            chart.plotting_area().draw(&Text::new(
                "no data",
                ((x_min + x_max) / 2.0, 0.5),
                text_style(TITLE_PX, grey(120), HPos::Center, VPos::Center),
            ))?;
            return Ok(());
        }

        let n = v.len() as f64;
        let mut steps = Vec::with_capacity(2 * v.len() + 2);
        steps.push((x_min, 0.0));
        for (i, &x) in v.iter().enumerate() {
            steps.push((x, i as f64 / n));
            steps.push((x, (i + 1) as f64 / n));
        }
        steps.push((x_max, 1.0));
        let curve = RGBColor(31, 119, 180);
        chart.draw_series(LineSeries::new(steps, curve.stroke_width(2)))?;

        // Labels go to the right of and below each marker: right of the marker the CDF is
        // already above the marker's level, so that corner is always clear of the curve.
        for (name, q, colour) in [
            ("p50", 0.50, RGBColor(44, 160, 44)),
            ("p99", 0.99, RGBColor(214, 39, 40)),
        ] {
            let x = quantile(&v, q);
            chart.draw_series(std::iter::once(DashedPathElement::new(
                vec![(x, 0.0), (x, q)],
                6,
                4,
                colour.stroke_width(2),
            )))?;
            chart.draw_series(std::iter::once(
                EmptyElement::at((x, q))
                    + Circle::new((0, 0), 5, colour.filled())
                    + Text::new(
                        format!("{name} = {} ms", tick((x * 10.0).round() / 10.0)),
                        (10, 6),
                        text_style(NOTE_PX, colour, HPos::Left, VPos::Top),
                    ),
            ))?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Lead-time histogram.

struct LeadTimes<'a> {
    lead_times_s: &'a [f64],
    min_lead_s: f64,
    unwarned: usize,
}

/// Width of a lead-time bin, seconds.
const LEAD_BIN_S: f64 = 0.25;
/// The histogram shows at most this many bins (a minute); longer lead times, which a TTC
/// horizon of a few seconds does not produce, are counted in the last bin.
const MAX_LEAD_BINS: usize = 240;

impl Chart for LeadTimes<'_> {
    const NAME: &'static str = "lead_time";
    const SIZE: (u32, u32) = (1000, 700);

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let v = finite_sorted(self.lead_times_s);
        let min_lead = if self.min_lead_s.is_finite() {
            self.min_lead_s.clamp(0.0, 30.0)
        } else {
            0.0
        };
        let n_conflicts = v.len() + self.unwarned;
        let subtitle = format!(
            "{} of {} warned; never warned: {}",
            v.len(),
            plural(n_conflicts, "true conflict", "true conflicts"),
            self.unwarned
        );
        let area = title_block(root, "Warning lead time", &subtitle)?;

        let bin = |x: f64| (x / LEAD_BIN_S).floor();
        // Lead times are positive by definition; the axis stretches to 10 s below zero at most
        // for anything else, and values beyond either end count in the end bins.
        let lo = v
            .first()
            .map_or(0.0, |&m| bin(m.min(0.0)) * LEAD_BIN_S)
            .max(-10.0);
        let hi = v
            .last()
            .map_or(0.0, |&m| (bin(m) + 1.0) * LEAD_BIN_S)
            .max(min_lead + 1.0)
            .max(3.0)
            .min(lo + MAX_LEAD_BINS as f64 * LEAD_BIN_S);
        let n_bins = ((hi - lo) / LEAD_BIN_S).round().max(1.0) as usize;
        let mut counts = vec![0u32; n_bins];
        for &x in &v {
            let k = ((bin(x) * LEAD_BIN_S - lo) / LEAD_BIN_S).round();
            counts[(k.max(0.0) as usize).min(n_bins - 1)] += 1;
        }
        let top = counts.iter().copied().max().unwrap_or(0);
        // Room above the tallest bar for the legend.
        let y_max = ((top as f64 * 1.3).ceil() as u32).max(top + 1).max(4);

        let mut chart = ChartBuilder::on(&area)
            .margin(20)
            .margin_right(40)
            .x_label_area_size(60)
            .y_label_area_size(80)
            .build_cartesian_2d(lo..hi, 0u32..y_max)?;
        chart
            .configure_mesh()
            .x_desc("lead time: closest approach minus alert receipt (s)")
            .y_desc("true conflicts")
            .axis_desc_style((FONT, AXIS_DESC_PX))
            .label_style((FONT, TICK_PX))
            .x_label_formatter(&|x| tick(*x))
            .y_label_formatter(&|y| y.to_string())
            .disable_x_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(grey(215))
            .draw()?;

        let late = RGBColor(255, 127, 14);
        let timely = RGBColor(31, 119, 180);
        let bar = |k: usize| lo + k as f64 * LEAD_BIN_S;
        let bars = |is_late: bool| {
            counts
                .iter()
                .enumerate()
                .filter(move |&(k, &c)| c > 0 && (bar(k) + LEAD_BIN_S <= min_lead) == is_late)
                .map(move |(k, &c)| {
                    let colour = if is_late { late } else { timely };
                    let mut r =
                        Rectangle::new([(bar(k), 0), (bar(k) + LEAD_BIN_S, c)], colour.filled());
                    r.set_margin(0, 0, 1, 1);
                    r
                })
        };
        chart
            .draw_series(bars(true))?
            .label(format!("warned under {} s ahead", tick(min_lead)))
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], late.filled()));
        chart
            .draw_series(bars(false))?
            .label(format!("warned {} s or more ahead", tick(min_lead)))
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], timely.filled()));
        let red = RGBColor(214, 39, 40);
        chart
            .draw_series(std::iter::once(DashedPathElement::new(
                vec![(min_lead, 0), (min_lead, y_max)],
                8,
                5,
                red.stroke_width(2),
            )))?
            .label(format!("least useful lead, {} s", tick(min_lead)))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], red.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((FONT, NOTE_PX))
            .background_style(WHITE.mix(0.9))
            .border_style(grey(180))
            .draw()?;

        if v.is_empty() {
            let note = if self.unwarned == 0 {
                "no data: no true conflicts".to_string()
            } else {
                format!("no warned conflicts ({} never warned)", self.unwarned)
            };
            chart.plotting_area().draw(&Text::new(
                note,
                ((lo + hi) / 2.0, y_max / 2),
                text_style(TITLE_PX, grey(120), HPos::Center, VPos::Center),
            ))?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Map snapshot.

/// A rectangle on the map: a road user's footprint or an edge track.
#[derive(Debug, Clone, PartialEq)]
pub struct Footprint {
    /// Centre, scenario ENU metres.
    pub center: V2,
    /// Radians counter-clockwise from East.
    pub yaw: f64,
    /// Metres along the heading.
    pub length: f64,
    /// Metres across the heading.
    pub width: f64,
    /// Drawn beside the rectangle: the actor's id or the track's.
    pub label: String,
}

impl Footprint {
    /// The four corners, counter-clockwise.
    fn corners(&self) -> [V2; 4] {
        let along = V2::new(self.yaw.cos(), self.yaw.sin()) * (self.length / 2.0);
        let across = V2::new(-self.yaw.sin(), self.yaw.cos()) * (self.width / 2.0);
        let c = self.center;
        [
            c + along + across,
            c - along + across,
            c - along - across,
            c + along - across,
        ]
    }

    fn is_finite(&self) -> bool {
        [
            self.center.x,
            self.center.y,
            self.yaw,
            self.length,
            self.width,
        ]
        .iter()
        .all(|v| v.is_finite())
    }
}

/// A road user's true footprint, with what the map colours it by.
#[derive(Debug, Clone, PartialEq)]
pub struct TruthActor {
    pub footprint: Footprint,
    pub class: ObjectClass,
    /// Whether it runs a v2e agent: drawn solid, otherwise pale.
    pub connected: bool,
}

/// Everything one map picture shows: ground truth, what the edge believed and which pairs it
/// alerted, at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct MapSnapshot {
    /// The scenario's name; the picture's title adds the time.
    pub title: String,
    /// Scenario time of the snapshot, seconds.
    pub t_s: f64,
    pub roads: Vec<Surface>,
    pub truth: Vec<TruthActor>,
    /// The edge's tracks, each labelled with its track id.
    pub tracks: Vec<Footprint>,
    /// One line per alerted pair, between the two true centres.
    pub alert_links: Vec<(V2, V2)>,
    /// The centre and half-width (metres) of the square to show; `None` fits the road users,
    /// tracks and alerts (or, if there are none, the roads).
    pub focus: Option<(V2, f64)>,
}

impl MapSnapshot {
    /// The snapshot of `scenario` at `t_s`: every actor present then (absent ones are skipped)
    /// and the scenario's roads, plus the edge's `tracks` and links for `alert_pairs` of actor
    /// ids. A pair naming an actor that is unknown or absent at `t_s` draws no link.
    pub fn from_world(
        scenario: &Scenario,
        t_s: f64,
        tracks: Vec<Footprint>,
        alert_pairs: &[(String, String)],
        focus: Option<(V2, f64)>,
    ) -> Self {
        let truth = scenario
            .actors
            .iter()
            .filter_map(|a| {
                let state = a.state(t_s)?;
                Some(TruthActor {
                    footprint: Footprint {
                        center: state.pos,
                        yaw: state.yaw,
                        length: a.length_m,
                        width: a.width_m,
                        label: a.id.clone(),
                    },
                    class: a.class,
                    connected: a.connected,
                })
            })
            .collect();
        let centre = |id: &str| {
            scenario
                .actors
                .iter()
                .find(|a| a.id == id)
                .and_then(|a| a.state(t_s))
                .map(|s| s.pos)
        };
        let alert_links = alert_pairs
            .iter()
            .filter_map(|(a, b)| Some((centre(a)?, centre(b)?)))
            .collect();
        Self {
            title: scenario.name.clone(),
            t_s,
            roads: scenario.roads.clone(),
            truth,
            tracks,
            alert_links,
            focus,
        }
    }

    /// The square (centre, half-width) the picture shows before it is widened to the plot's
    /// aspect ratio.
    fn view(&self) -> (V2, f64) {
        if let Some((c, half)) = self.focus {
            if c.x.is_finite() && c.y.is_finite() && half.is_finite() && half > 0.0 {
                return (c, half);
            }
        }
        let mut points: Vec<V2> = self
            .truth
            .iter()
            .map(|a| &a.footprint)
            .chain(&self.tracks)
            .filter(|f| f.is_finite())
            .flat_map(|f| f.corners())
            .chain(self.alert_links.iter().flat_map(|&(a, b)| [a, b]))
            .collect();
        if points.is_empty() {
            points = self
                .roads
                .iter()
                .flat_map(|r| r.centerline.iter().copied())
                .collect();
        }
        points.retain(|p| p.x.is_finite() && p.y.is_finite());
        if points.is_empty() {
            return (V2::zeros(), 25.0);
        }
        let (mut lo, mut hi) = (points[0], points[0]);
        for p in &points {
            lo = lo.inf(p);
            hi = hi.sup(p);
        }
        let half = ((hi - lo).max() / 2.0 * 1.1 + 5.0).max(10.0);
        ((lo + hi) / 2.0, half)
    }
}

/// Colours of road users by class: solid for connected ones, pale for the rest.
fn class_colour(class: ObjectClass) -> RGBColor {
    match class {
        ObjectClass::Car => RGBColor(31, 119, 180),
        ObjectClass::Truck | ObjectClass::Bus => RGBColor(148, 103, 189),
        ObjectClass::Motorcycle | ObjectClass::Bicycle => RGBColor(44, 160, 44),
        ObjectClass::Pedestrian => RGBColor(255, 127, 14),
        ObjectClass::Unknown => grey(120),
    }
}

fn class_name(class: ObjectClass) -> &'static str {
    match class {
        ObjectClass::Car => "car",
        ObjectClass::Truck | ObjectClass::Bus => "truck or bus",
        ObjectClass::Motorcycle | ObjectClass::Bicycle => "two-wheeler",
        ObjectClass::Pedestrian => "pedestrian",
        ObjectClass::Unknown => "unknown",
    }
}

/// Paler: mixed with white.
fn pale(c: RGBColor) -> RGBColor {
    let mix = |v: u8| ((v as u16 + 3 * 255) / 4) as u8;
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}

const ROAD: RGBColor = RGBColor(185, 185, 185);
const GROUND: RGBColor = RGBColor(236, 240, 230);
const TRACK: RGBColor = RGBColor(170, 0, 170);
const ALERT: RGBColor = RGBColor(214, 39, 40);
/// Crosswalk stripes and their gaps, metres along the walking direction.
const ZEBRA_STRIPE_M: f64 = 0.5;

/// The quadrilaterals (and joint discs) covering a strip of `width` around `line`.
fn strip_polygons(line: &[V2], width: f64) -> Vec<Vec<V2>> {
    let half = width / 2.0;
    let mut out = Vec::new();
    for w in line.windows(2) {
        let d = w[1] - w[0];
        let len = d.norm();
        if len.is_nan() || len <= 0.0 {
            continue;
        }
        let n = V2::new(-d.y, d.x) / len * half;
        out.push(vec![w[0] + n, w[1] + n, w[1] - n, w[0] - n]);
    }
    // Round joints, so bends show no notches.
    if line.len() > 2 {
        for &p in &line[1..line.len() - 1] {
            out.push(
                (0..16)
                    .map(|k| {
                        let a = k as f64 / 16.0 * std::f64::consts::TAU;
                        p + V2::new(a.cos(), a.sin()) * half
                    })
                    .collect(),
            );
        }
    }
    out
}

/// Zebra stripes: slices of the strip, `ZEBRA_STRIPE_M` long along `line`, every other one.
fn zebra_polygons(line: &[V2], width: f64) -> Vec<Vec<V2>> {
    let half = width / 2.0;
    let mut out = Vec::new();
    let mut s0 = 0.0; // arc length at the start of the segment
    for w in line.windows(2) {
        let d = w[1] - w[0];
        let len = d.norm();
        if len.is_nan() || len <= 0.0 {
            continue;
        }
        let dir = d / len;
        let n = V2::new(-dir.y, dir.x) * half;
        // Stripes start at arc lengths 0, 2z, 4z, ... of the whole line.
        let period = 2.0 * ZEBRA_STRIPE_M;
        let mut k = (s0 / period).floor();
        while k * period < s0 + len {
            let a = (k * period - s0).max(0.0);
            let b = (k * period + ZEBRA_STRIPE_M - s0).min(len);
            if b > a {
                let (pa, pb) = (w[0] + dir * a, w[0] + dir * b);
                out.push(vec![pa + n, pb + n, pb - n, pa - n]);
            }
            k += 1.0;
        }
        s0 += len;
    }
    out
}

fn xy(p: V2) -> (f64, f64) {
    (p.x, p.y)
}

/// The rectangle of the world a map shows. plotters clamps each point outside its plot to the
/// border, which bends any shape that crosses it, so shapes are clipped to this first.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Viewport {
    lo: V2,
    hi: V2,
}

impl Viewport {
    fn contains(&self, p: V2) -> bool {
        (self.lo.x..=self.hi.x).contains(&p.x) && (self.lo.y..=self.hi.y).contains(&p.y)
    }

    /// The part of a convex or concave `polygon` inside the view (Sutherland-Hodgman; a
    /// concave polygon may keep zero-width bridges along the border, invisible when filled).
    fn clip_polygon(&self, polygon: &[V2]) -> Vec<V2> {
        // Each edge of the view as (axis, bound, keep the side above the bound).
        let edges = [
            (0, self.lo.x, true),
            (0, self.hi.x, false),
            (1, self.lo.y, true),
            (1, self.hi.y, false),
        ];
        let mut out = polygon.to_vec();
        for (axis, bound, above) in edges {
            let inside = |p: &V2| {
                if above {
                    p[axis] >= bound
                } else {
                    p[axis] <= bound
                }
            };
            let input = std::mem::take(&mut out);
            for (k, &b) in input.iter().enumerate() {
                let a = input[(k + input.len() - 1) % input.len()];
                let cross = || a + (b - a) * ((bound - a[axis]) / (b[axis] - a[axis]));
                match (inside(&a), inside(&b)) {
                    (true, true) => out.push(b),
                    (true, false) => out.push(cross()),
                    (false, true) => {
                        out.push(cross());
                        out.push(b);
                    }
                    (false, false) => {}
                }
            }
        }
        out
    }

    /// The part of segment `a`-`b` inside the view (Liang-Barsky), if any.
    fn clip_segment(&self, a: V2, b: V2) -> Option<(V2, V2)> {
        let d = b - a;
        let (mut t0, mut t1) = (0.0_f64, 1.0_f64);
        for (p, q) in [
            (-d.x, a.x - self.lo.x),
            (d.x, self.hi.x - a.x),
            (-d.y, a.y - self.lo.y),
            (d.y, self.hi.y - a.y),
        ] {
            if p == 0.0 {
                if q < 0.0 {
                    return None;
                }
            } else {
                let t = q / p;
                if p < 0.0 {
                    t0 = t0.max(t);
                } else {
                    t1 = t1.min(t);
                }
            }
        }
        (t0 <= t1).then(|| (a + d * t0, a + d * t1))
    }

    /// The visible pieces of an open polyline.
    fn clip_polyline(&self, line: &[V2]) -> Vec<(V2, V2)> {
        line.windows(2)
            .filter_map(|w| self.clip_segment(w[0], w[1]))
            .collect()
    }
}

/// The bounding box corners (lower-left, upper-right) of a footprint.
fn bounds(f: &Footprint) -> (V2, V2) {
    let c = f.corners();
    let lo = c.iter().fold(c[0], |m, p| m.inf(p));
    let hi = c.iter().fold(c[0], |m, p| m.sup(p));
    (lo, hi)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

const LABEL_PX: u32 = 14;
/// Corners of a bounding box to try for a label, as (right, up).
const UPPER_FIRST: [(bool, bool); 4] = [(true, true), (false, true), (true, false), (false, false)];
const LOWER_FIRST: [(bool, bool); 4] = [(false, false), (true, false), (false, true), (true, true)];

/// A label's extent in backend pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PixelBox {
    x0: i32,
    y0: i32,
    x1: i32,
    y1: i32,
}

impl PixelBox {
    fn overlaps(&self, other: &PixelBox) -> bool {
        self.x0 < other.x1 && other.x0 < self.x1 && self.y0 < other.y1 && other.y0 < self.y1
    }
}

/// Footprints smaller than this many pixels also get a dot, so a pedestrian stays visible on
/// a wide view.
const MIN_FOOTPRINT_PX: f64 = 6.0;

impl Chart for MapSnapshot {
    const NAME: &'static str = "map_snapshot";
    const SIZE: (u32, u32) = (1000, 1000);

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let truth: Vec<&TruthActor> = self
            .truth
            .iter()
            .filter(|a| a.footprint.is_finite())
            .collect();
        let tracks: Vec<&Footprint> = self.tracks.iter().filter(|f| f.is_finite()).collect();
        let n_connected = truth.iter().filter(|a| a.connected).count();
        let title = format!("{} at t = {:.1} s", self.title, self.t_s);
        let subtitle = format!(
            "{} ({n_connected} connected), {}, {}",
            plural(truth.len(), "road user", "road users"),
            plural(tracks.len(), "edge track", "edge tracks"),
            plural(self.alert_links.len(), "alerted pair", "alerted pairs"),
        );
        let area = title_block(root, &title, &subtitle)?;
        let (plot_area, legend_area) = {
            let (_, h) = area.dim_in_pixel();
            area.split_vertically(h.saturating_sub(50))
        };

        // Equal scale: widen the shorter side of the view to the plot's aspect ratio. The plot
        // size is measured from a first, undrawn layout of the same builder settings.
        let (centre, half) = self.view();
        let layout = |x: std::ops::Range<f64>, y: std::ops::Range<f64>| {
            ChartBuilder::on(&plot_area)
                .margin(10)
                .margin_right(30)
                .x_label_area_size(55)
                .y_label_area_size(75)
                .build_cartesian_2d(x, y)
        };
        let (pw, ph) = layout(0.0..1.0, 0.0..1.0)?.plotting_area().dim_in_pixel();
        let (pw, ph) = (pw.max(1) as f64, ph.max(1) as f64);
        let (hx, hy) = if pw >= ph {
            (half * pw / ph, half)
        } else {
            (half, half * ph / pw)
        };
        let px_per_m = pw / (2.0 * hx);
        let view = Viewport {
            lo: centre - V2::new(hx, hy),
            hi: centre + V2::new(hx, hy),
        };
        let mut chart = layout(view.lo.x..view.hi.x, view.lo.y..view.hi.y)?;
        chart.plotting_area().fill(&GROUND)?;
        chart
            .configure_mesh()
            .x_desc("east (m)")
            .y_desc("north (m)")
            .axis_desc_style((FONT, AXIS_DESC_PX))
            .label_style((FONT, TICK_PX))
            .x_label_formatter(&|x| tick(*x))
            .y_label_formatter(&|y| tick(*y))
            .light_line_style(TRANSPARENT)
            .bold_line_style(WHITE.mix(0.5))
            .draw()?;

        let area = chart.plotting_area();
        let fill = |points: Vec<V2>, colour: RGBColor| {
            let clipped = view.clip_polygon(&points);
            (clipped.len() >= 3).then(|| {
                Polygon::new(
                    clipped.into_iter().map(xy).collect::<Vec<_>>(),
                    colour.filled(),
                )
            })
        };
        let stroke = |line: &[V2], style: ShapeStyle| {
            view.clip_polyline(line)
                .into_iter()
                .map(move |(a, b)| PathElement::new(vec![xy(a), xy(b)], style))
        };
        for kind in [
            SurfaceKind::Carriageway,
            SurfaceKind::Crosswalk,
            SurfaceKind::StopLine,
        ] {
            for road in self.roads.iter().filter(|r| r.kind == kind) {
                let line: Vec<V2> = road
                    .centerline
                    .iter()
                    .copied()
                    .filter(|p| p.x.is_finite() && p.y.is_finite())
                    .collect();
                let width = if road.width_m.is_finite() {
                    road.width_m.max(0.0)
                } else {
                    0.0
                };
                match kind {
                    SurfaceKind::Carriageway => {
                        for p in strip_polygons(&line, width) {
                            if let Some(p) = fill(p, ROAD) {
                                area.draw(&p)?;
                            }
                        }
                    }
                    SurfaceKind::Crosswalk => {
                        for p in zebra_polygons(&line, width) {
                            if let Some(p) = fill(p, WHITE) {
                                area.draw(&p)?;
                            }
                        }
                    }
                    SurfaceKind::StopLine => {
                        for p in strip_polygons(&line, width) {
                            if let Some(p) = fill(p, WHITE) {
                                area.draw(&p)?;
                            }
                        }
                        // At least 3 px, so a stop line shows at any zoom.
                        for e in stroke(&line, WHITE.stroke_width(3)) {
                            area.draw(&e)?;
                        }
                    }
                }
            }
        }

        for &(a, b) in &self.alert_links {
            for e in stroke(&[a, b], ALERT.mix(0.85).stroke_width(4)) {
                area.draw(&e)?;
            }
        }

        for actor in &truth {
            let colour = class_colour(actor.class);
            let body = if actor.connected {
                colour
            } else {
                pale(colour)
            };
            let corners = actor.footprint.corners();
            if let Some(p) = fill(corners.to_vec(), body) {
                area.draw(&p)?;
            }
            let mut outline = corners.to_vec();
            outline.push(corners[0]);
            for e in stroke(&outline, colour.stroke_width(1)) {
                area.draw(&e)?;
            }
            let size_px = actor.footprint.length.max(actor.footprint.width) * px_per_m;
            if size_px < MIN_FOOTPRINT_PX && view.contains(actor.footprint.center) {
                area.draw(&Circle::new(xy(actor.footprint.center), 3, colour.filled()))?;
            }
        }
        for track in &tracks {
            let mut outline = track.corners().to_vec();
            outline.push(outline[0]);
            for e in stroke(&outline, TRACK.stroke_width(2)) {
                area.draw(&e)?;
            }
        }
        // Labels last, above everything and outside their rectangles, at the first corner of
        // the bounding box where the text overlaps no label drawn before: actors' ids try the
        // upper corners first, tracks' ids the lower ones, so an actor and the track on it
        // label different corners. A label with no free corner is left out (a crowded view
        // reads better with a `focus`).
        let label_font = (FONT, LABEL_PX).into_font();
        let mut placed: Vec<PixelBox> = Vec::new();
        let labels = truth
            .iter()
            .map(|a| (&a.footprint, BLACK, UPPER_FIRST))
            .chain(tracks.iter().map(|&t| (t, TRACK, LOWER_FIRST)));
        for (footprint, colour, corners) in labels {
            if !view.contains(footprint.center) || footprint.label.is_empty() {
                continue;
            }
            let (w, h) = area.estimate_text_size(&footprint.label, &label_font.clone().into())?;
            let (lo, hi) = bounds(footprint);
            for (right, up) in corners {
                let corner = V2::new(
                    if right { hi.x } else { lo.x },
                    if up { hi.y } else { lo.y },
                );
                let (ax, ay) = area.map_coordinate(&xy(corner));
                let (w, h) = (w as i32, h as i32);
                let x0 = if right { ax + 1 } else { ax - 1 - w };
                let y0 = if up { ay - 1 - h } else { ay + 1 };
                let candidate = PixelBox {
                    x0,
                    y0,
                    x1: x0 + w,
                    y1: y0 + h,
                };
                if placed.iter().any(|p| p.overlaps(&candidate)) {
                    continue;
                }
                placed.push(candidate);
                let style = text_style(
                    LABEL_PX,
                    colour,
                    if right { HPos::Left } else { HPos::Right },
                    if up { VPos::Bottom } else { VPos::Top },
                );
                let offset = (if right { 1 } else { -1 }, if up { -1 } else { 1 });
                area.draw(
                    &(EmptyElement::at(xy(corner))
                        + Text::new(footprint.label.clone(), offset, style)),
                )?;
                break;
            }
        }

        if truth.is_empty() && tracks.is_empty() && self.roads.is_empty() {
            area.draw(&Text::new(
                "no data",
                xy(centre),
                text_style(TITLE_PX, grey(120), HPos::Center, VPos::Center),
            ))?;
        }

        // The legend, in its own strip below the plot so it never hides a road user.
        let mut classes: Vec<ObjectClass> = Vec::new();
        for a in &truth {
            if !classes
                .iter()
                .any(|&c| class_name(c) == class_name(a.class))
            {
                classes.push(a.class);
            }
        }
        let mut x = 85;
        let y = 25;
        let label = |x: i32, s: &str| {
            Text::new(
                s.to_string(),
                (x, y),
                text_style(NOTE_PX, BLACK, HPos::Left, VPos::Center),
            )
        };
        let advance = |s: &str| -> Result<i32, DrawingAreaErrorKind<DB::ErrorType>> {
            let (w, _) = legend_area.estimate_text_size(s, &(FONT, NOTE_PX).into_font().into())?;
            Ok(w as i32 + 24)
        };
        for c in classes {
            let colour = class_colour(c);
            legend_area.draw(&Rectangle::new(
                [(x, y - 7), (x + 14, y + 7)],
                colour.filled(),
            ))?;
            legend_area.draw(&label(x + 20, class_name(c)))?;
            x += 20 + advance(class_name(c))?;
        }
        let pale_note = "pale: not connected";
        legend_area.draw(&Rectangle::new(
            [(x, y - 7), (x + 14, y + 7)],
            pale(class_colour(ObjectClass::Car)).filled(),
        ))?;
        legend_area.draw(&label(x + 20, pale_note))?;
        x += 20 + advance(pale_note)?;
        legend_area.draw(&Rectangle::new(
            [(x, y - 7), (x + 14, y + 7)],
            TRACK.stroke_width(2),
        ))?;
        legend_area.draw(&label(x + 20, "edge track"))?;
        x += 20 + advance("edge track")?;
        legend_area.draw(&PathElement::new(
            vec![(x, y), (x + 20, y)],
            ALERT.stroke_width(4),
        ))?;
        legend_area.draw(&label(x + 26, "alert"))?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Scenario summary.

/// One scenario's line of the summary chart, from its `report.json` (and of `summary.json`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SummaryRow {
    pub scenario: String,
    /// Warned true conflicts over true conflicts, 0..1 (1 when there are none).
    pub recall: f64,
    pub true_conflicts: usize,
    pub false_alarms_per_vehicle_hour: f64,
}

struct Summary<'a> {
    rows: &'a [SummaryRow],
}

/// Scenario names longer than this are shortened with an ellipsis.
const MAX_NAME_CHARS: usize = 32;

fn short_name(name: &str) -> String {
    if name.chars().count() <= MAX_NAME_CHARS {
        name.to_string()
    } else {
        let mut s: String = name.chars().take(MAX_NAME_CHARS - 1).collect();
        s.push('…');
        s
    }
}

impl Chart for Summary<'_> {
    const NAME: &'static str = "summary";
    const SIZE: (u32, u32) = (1000, 700);

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let rows = self.rows;
        let subtitle = match rows.len() {
            0 => "no scenarios".to_string(),
            n => format!(
                "{}; recall is 1 by definition where there is no true conflict",
                plural(n, "scenario", "scenarios")
            ),
        };
        let area = title_block(root, "Recall and false alarms per scenario", &subtitle)?;
        let names: Vec<String> = rows.iter().map(|r| short_name(&r.scenario)).collect();
        let tick_font: TextStyle = (FONT, TICK_PX).into_font().into();
        let mut name_px = 40;
        for n in &names {
            name_px = name_px.max(area.estimate_text_size(n, &tick_font)?.0 + 20);
        }
        let (width, _) = area.dim_in_pixel();
        let name_px = name_px.min(width * 2 / 5);
        // Both panels get the same plot width; the left one also holds the names.
        let panel_px = (width - name_px) / 2;
        let (left, right) = area.split_horizontally(name_px + panel_px);

        // Row i is centred on y = n-1-i, so the first row is at the top; its name is the tick
        // label there (plotters' ticks on this axis fall on the integers: one step per row).
        let n = rows.len().max(1);
        let row_y = |i: usize| (n - 1 - i) as f64;
        let y_range = -0.5..n as f64 - 0.5;
        let name_at = |y: f64| {
            let from_bottom = y.round();
            if (y - from_bottom).abs() > 1e-6 || from_bottom < 0.0 {
                return String::new();
            }
            n.checked_sub(1 + from_bottom as usize)
                .and_then(|i| names.get(i))
                .cloned()
                .unwrap_or_default()
        };
        // Text inside and beside the bars shrinks with the rows, down to 10 px for a long table
        // (the plot is the area less about 100 px of margins and x labels).
        let row_px = (area.dim_in_pixel().1 as f64 - 100.0) / n as f64;
        let row_text_px = (row_px * 0.7).clamp(10.0, NOTE_PX as f64) as u32;
        let name_text_px = (row_px * 0.85).clamp(10.0, TICK_PX as f64) as u32;
        let fa_max = nice_ceil(
            rows.iter()
                .map(|r| r.false_alarms_per_vehicle_hour)
                .filter(|v| v.is_finite())
                .fold(0.0, f64::max)
                * 1.05,
        );

        let mut recall = ChartBuilder::on(&left)
            .margin(20)
            .margin_right(15)
            .x_label_area_size(60)
            .y_label_area_size(name_px)
            .build_cartesian_2d(0.0..1.0, y_range.clone())?;
        recall
            .configure_mesh()
            .x_desc("recall: warned / true conflicts")
            .axis_desc_style((FONT, AXIS_DESC_PX))
            .label_style((FONT, TICK_PX))
            .x_label_formatter(&|x| tick(*x))
            .y_labels(n)
            .y_label_style((FONT, name_text_px))
            .y_label_formatter(&|y| name_at(*y))
            .disable_y_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(grey(215))
            .draw()?;

        let mut fa = ChartBuilder::on(&right)
            .margin(20)
            .margin_left(5)
            .margin_right(30)
            .x_label_area_size(60)
            .y_label_area_size(10)
            .build_cartesian_2d(0.0..fa_max, y_range)?;
        fa.configure_mesh()
            .x_desc("false alarms per connected-vehicle hour")
            .axis_desc_style((FONT, AXIS_DESC_PX))
            .label_style((FONT, TICK_PX))
            .x_label_formatter(&|x| tick(*x))
            .y_labels(n)
            .y_label_formatter(&|_| String::new())
            .disable_y_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(grey(215))
            .draw()?;

        if rows.is_empty() {
            for (panel, x_mid) in [(&recall, 0.5), (&fa, fa_max / 2.0)] {
                panel.plotting_area().draw(&Text::new(
                    "no data",
                    (x_mid, 0.0),
                    text_style(TITLE_PX, grey(120), HPos::Center, VPos::Center),
                ))?;
            }
            return Ok(());
        }

        let blue = RGBColor(31, 119, 180);
        let orange = RGBColor(255, 127, 14);
        for (i, row) in rows.iter().enumerate() {
            let (y0, y1, centre) = (row_y(i) - 0.35, row_y(i) + 0.35, row_y(i));

            let value = if row.recall.is_finite() {
                row.recall.clamp(0.0, 1.0)
            } else {
                0.0
            };
            if row.true_conflicts == 0 {
                recall.plotting_area().draw(&Text::new(
                    "no true conflicts",
                    (0.01, centre),
                    text_style(row_text_px, grey(110), HPos::Left, VPos::Center),
                ))?;
            } else {
                recall
                    .plotting_area()
                    .draw(&Rectangle::new([(0.0, y0), (value, y1)], blue.filled()))?;
                let note = format!("{value:.2} of {}", row.true_conflicts);
                recall
                    .plotting_area()
                    .draw(&bar_note(note, value, 1.0, centre, row_text_px))?;
            }

            let value = row.false_alarms_per_vehicle_hour;
            if value.is_finite() {
                fa.plotting_area().draw(&Rectangle::new(
                    [(0.0, y0), (value.clamp(0.0, fa_max), y1)],
                    orange.filled(),
                ))?;
                let note = format!("{value:.1} / h");
                fa.plotting_area()
                    .draw(&bar_note(note, value, fa_max, centre, row_text_px))?;
            } else {
                fa.plotting_area().draw(&Text::new(
                    "not a number",
                    (0.01 * fa_max, centre),
                    text_style(row_text_px, grey(110), HPos::Left, VPos::Center),
                ))?;
            }
        }
        Ok(())
    }
}

/// A bar's value written inside its end (white) when the bar is long, else just after it.
fn bar_note(
    note: String,
    value: f64,
    axis_max: f64,
    y: f64,
    px: u32,
) -> Text<'static, (f64, f64), String> {
    if value > 0.3 * axis_max {
        Text::new(
            note,
            (value.min(axis_max) - 0.01 * axis_max, y),
            text_style(px, WHITE, HPos::Right, VPos::Center),
        )
    } else {
        Text::new(
            note,
            (value.max(0.0) + 0.01 * axis_max, y),
            text_style(px, BLACK, HPos::Left, VPos::Center),
        )
    }
}

#[cfg(test)]
mod tests;
