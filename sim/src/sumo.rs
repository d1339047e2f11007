//! SUMO import: floating car data (FCD) as a scenario of traced road users, vehicle types for
//! their footprints, and SUMO's surrogate safety measures (SSM) to compare with.
//!
//! Conversions, because SUMO and the scenario world disagree on both:
//! - SUMO's `x`/`y` mark the centre of the FRONT bumper; the world wants the footprint centre,
//!   so each position moves back by half the length along the heading.
//! - SUMO's `angle` is degrees clockwise from north; the world's yaw is radians
//!   counter-clockwise from East: `yaw = (90 - angle)` in radians.
//! - SUMO's local `x`/`y` metres become the scenario's ENU metres unchanged, with the scenario's
//!   WGS84 origin at SUMO's (0, 0) (a fixed anchor unless given), so reports use SUMO's
//!   coordinates and ids.
//!
//! Files are read as a stream of XML events (quick-xml), so memory grows with the number of
//! samples kept, not with the file. A malformed file is a [`SumoError`] naming the file and the
//! line, never a panic. This module does not read SUMO's network files, geo-referenced FCD
//! (`--fcd-output.geo`, where x/y are longitude/latitude) or containers.

use crate::world::{Actor, Motion, Scenario, Trace, TraceError, TraceSample, TRACE_MAX_GAP_S};
use edge_node::geometry::V2;
use protocol::ObjectClass;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// The WGS84 anchor of SUMO's (0, 0) when none is given.
pub const DEFAULT_ORIGIN: (f64, f64) = (48.137_154, 11.576_124);

/// Accelerations are clamped to this, m/s^2: SUMO reports emergency stops and teleports that a
/// frame could not carry (the wire allows 30 m/s^2).
const MAX_ACCEL_MPS2: f64 = 29.0;

/// Where in a file something was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// 1-based line of the start of the element (or of the markup that failed to parse).
    pub line: u64,
    /// Byte offset from the start of the file.
    pub byte: u64,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {} (byte {})", self.line, self.byte)
    }
}

/// Why a SUMO file could not be imported. Every variant names the file; those about content
/// name the line. The fix is always in the file (or in which file was given), never a retry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SumoError {
    #[error("cannot read {file}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}, {at}: malformed XML: {detail}")]
    Xml {
        file: String,
        at: Position,
        detail: String,
    },
    #[error("{file}, {at}: the file ends inside <{element}>; is it truncated?")]
    Truncated {
        file: String,
        at: Position,
        element: String,
    },
    #[error("{file}, {at}: the root element is <{found}>, expected <{expected}>")]
    UnexpectedRoot {
        file: String,
        at: Position,
        found: String,
        expected: &'static str,
    },
    #[error("{file}, {at}: <{element}> has no {attribute} attribute")]
    MissingAttribute {
        file: String,
        at: Position,
        element: String,
        attribute: &'static str,
    },
    #[error("{file}, {at}: <{element} {attribute}=\"{value}\"> is not a finite number")]
    BadNumber {
        file: String,
        at: Position,
        element: String,
        attribute: &'static str,
        value: String,
    },
    #[error("{file}, {at}: <{element}> outside a <timestep>")]
    OutsideTimestep {
        file: String,
        at: Position,
        element: String,
    },
    #[error("{file}, {at}: {id} goes back in time (to {t_s} s)")]
    TimeGoesBack {
        file: String,
        at: Position,
        id: String,
        t_s: f64,
    },
    #[error("{file}: the trace of {id} is unusable: {source}")]
    BadTrace {
        file: String,
        id: String,
        #[source]
        source: TraceError,
    },
}

/// A `BufRead` that counts the newlines its reader has consumed, so positions can name lines
/// without keeping the file.
struct LineCounting<R> {
    inner: R,
    newlines: u64,
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

impl<R: BufRead> Read for LineCounting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.newlines += count_newlines(&buf[..n]);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for LineCounting<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        // The bytes being consumed are the front of the current buffer, which `fill_buf`
        // returns again without reading.
        if let Ok(buf) = self.inner.fill_buf() {
            self.newlines += count_newlines(&buf[..amt.min(buf.len())]);
        }
        self.inner.consume(amt);
    }
}

/// One element start as the parsers see it.
struct Element {
    /// Local name (no namespace prefix).
    name: String,
    /// Attributes, raw values unescaped.
    attributes: Vec<(String, String)>,
    at: Position,
    /// `<x/>`: no children, no end event follows.
    empty: bool,
}

impl Element {
    fn get(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// What the cursor yields.
enum Item {
    Start(Element),
    End,
    Eof,
}

/// A thin pull parser over quick-xml that tracks lines and open elements, and turns every
/// problem into a [`SumoError`] for `file`.
struct Cursor<R: BufRead> {
    reader: Reader<LineCounting<R>>,
    buf: Vec<u8>,
    file: String,
    open: Vec<(String, Position)>,
}

impl<R: BufRead> Cursor<R> {
    fn new(inner: R, file: &str) -> Self {
        let mut reader = Reader::from_reader(LineCounting { inner, newlines: 0 });
        reader.config_mut().check_end_names = true;
        Self {
            reader,
            buf: Vec::new(),
            file: file.to_string(),
            open: Vec::new(),
        }
    }

    fn position(&self) -> Position {
        Position {
            line: self.reader.get_ref().newlines + 1,
            byte: self.reader.buffer_position(),
        }
    }

    fn depth(&self) -> usize {
        self.open.len()
    }

    fn next(&mut self) -> Result<Item, SumoError> {
        loop {
            let at = self.position();
            self.buf.clear();
            let event = match self.reader.read_event_into(&mut self.buf) {
                Ok(e) => e,
                Err(e) => {
                    return Err(SumoError::Xml {
                        file: self.file.clone(),
                        at: Position {
                            line: at.line,
                            byte: self.reader.error_position(),
                        },
                        detail: e.to_string(),
                    })
                }
            };
            match event {
                Event::Start(e) => {
                    let element = element(&e, at, false, &self.file)?;
                    self.open.push((element.name.clone(), at));
                    return Ok(Item::Start(element));
                }
                Event::Empty(e) => return element(&e, at, true, &self.file).map(Item::Start),
                Event::End(_) => {
                    self.open.pop();
                    return Ok(Item::End);
                }
                Event::Eof => {
                    if let Some((element, _)) = self.open.last() {
                        return Err(SumoError::Truncated {
                            file: self.file.clone(),
                            at: self.position(),
                            element: element.clone(),
                        });
                    }
                    return Ok(Item::Eof);
                }
                // Declarations, comments, whitespace and processing instructions carry nothing.
                _ => continue,
            }
        }
    }

    /// Skips the children of an element just started (not needed for an empty one).
    fn skip_children(&mut self, start: &Element) -> Result<(), SumoError> {
        if start.empty {
            return Ok(());
        }
        let depth = self.depth();
        loop {
            match self.next()? {
                Item::End if self.depth() < depth => return Ok(()),
                Item::Eof => return Ok(()),
                _ => {}
            }
        }
    }

    /// The root element, which must be one of `expected`.
    fn root(&mut self, expected: &'static [&'static str]) -> Result<Element, SumoError> {
        match self.next()? {
            Item::Start(e) if expected.contains(&e.name.as_str()) => Ok(e),
            Item::Start(e) => Err(SumoError::UnexpectedRoot {
                file: self.file.clone(),
                at: e.at,
                found: e.name,
                expected: expected[0],
            }),
            _ => Err(SumoError::Xml {
                file: self.file.clone(),
                at: self.position(),
                detail: "no root element".into(),
            }),
        }
    }

    fn required<'e>(&self, e: &'e Element, attribute: &'static str) -> Result<&'e str, SumoError> {
        e.get(attribute).ok_or_else(|| SumoError::MissingAttribute {
            file: self.file.clone(),
            at: e.at,
            element: e.name.clone(),
            attribute,
        })
    }

    fn number(&self, e: &Element, attribute: &'static str, raw: &str) -> Result<f64, SumoError> {
        raw.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| SumoError::BadNumber {
                file: self.file.clone(),
                at: e.at,
                element: e.name.clone(),
                attribute,
                value: raw.to_string(),
            })
    }

    fn required_number(&self, e: &Element, attribute: &'static str) -> Result<f64, SumoError> {
        let raw = self.required(e, attribute)?;
        self.number(e, attribute, raw)
    }

    /// An optional number; SUMO writes `NA` where a measure is undefined.
    fn optional_number(
        &self,
        e: &Element,
        attribute: &'static str,
    ) -> Result<Option<f64>, SumoError> {
        match e.get(attribute) {
            None | Some("NA") => Ok(None),
            Some(raw) => self.number(e, attribute, raw).map(Some),
        }
    }
}

fn element(e: &BytesStart, at: Position, empty: bool, file: &str) -> Result<Element, SumoError> {
    let xml_error = |detail: String| SumoError::Xml {
        file: file.to_string(),
        at,
        detail,
    };
    let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
    let mut attributes = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| xml_error(format!("in <{name}>: {err}")))?;
        let key = String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned();
        let raw = std::str::from_utf8(&a.value)
            .map_err(|_| xml_error(format!("<{name} {key}> is not UTF-8")))?;
        let value = quick_xml::escape::unescape(raw)
            .map_err(|err| xml_error(format!("<{name} {key}>: {err}")))?
            .into_owned();
        attributes.push((key, value));
    }
    Ok(Element {
        name,
        attributes,
        at,
        empty,
    })
}

fn open(path: &Path) -> Result<BufReader<std::fs::File>, SumoError> {
    std::fs::File::open(path)
        .map(|f| BufReader::with_capacity(1 << 16, f))
        .map_err(|source| SumoError::Io {
            file: path.display().to_string(),
            source,
        })
}

// ------------------------------------------------------------------------------------------
// Vehicle types
// ------------------------------------------------------------------------------------------

/// A `<vType>`: what the import needs of it.
#[derive(Debug, Clone, PartialEq)]
pub struct VType {
    pub id: String,
    pub vclass: Option<String>,
    pub length_m: Option<f64>,
    pub width_m: Option<f64>,
}

/// Vehicle types by id, from one or more files (a later file's type replaces an earlier one's).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VTypes {
    by_id: BTreeMap<String, VType>,
}

impl VTypes {
    /// Every `<vType>` of an `<additional>` or `<routes>` file, at any depth (inside
    /// `<vTypeDistribution>` too).
    pub fn parse(reader: impl BufRead, file: &str) -> Result<Self, SumoError> {
        let mut cursor = Cursor::new(reader, file);
        cursor.root(&["additional", "routes"])?;
        let mut types = Self::default();
        loop {
            match cursor.next()? {
                Item::Start(e) if e.name == "vType" => {
                    let id = cursor.required(&e, "id")?.to_string();
                    let vtype = VType {
                        vclass: e.get("vClass").map(str::to_string),
                        length_m: cursor.optional_number(&e, "length")?,
                        width_m: cursor.optional_number(&e, "width")?,
                        id: id.clone(),
                    };
                    types.by_id.insert(id, vtype);
                    cursor.skip_children(&e)?;
                }
                Item::Start(_) | Item::End => {}
                Item::Eof => return Ok(types),
            }
        }
    }

    pub fn read(path: &Path) -> Result<Self, SumoError> {
        Self::parse(open(path)?, &path.display().to_string())
    }

    pub fn extend(&mut self, other: VTypes) {
        self.by_id.extend(other.by_id);
    }

    pub fn get(&self, id: &str) -> Option<&VType> {
        self.by_id.get(id)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// Which FCD element a road user came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FcdKind {
    Vehicle,
    Person,
}

/// A road user's class and footprint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Footprint {
    pub class: ObjectClass,
    pub length_m: f64,
    pub width_m: f64,
}

/// SUMO's default length and width of a vehicle class (`SUMOVTypeParameter`), and our class.
pub fn vclass_defaults(vclass: &str) -> Footprint {
    use ObjectClass::*;
    let (class, length_m, width_m) = match vclass {
        "passenger" | "private" | "taxi" | "hov" | "vip" | "evehicle" => (Car, 5.0, 1.8),
        "truck" => (Truck, 7.1, 2.4),
        "trailer" => (Truck, 16.5, 2.55),
        "delivery" => (Truck, 6.5, 2.16),
        "bus" => (Bus, 12.0, 2.5),
        "coach" => (Bus, 14.0, 2.6),
        "motorcycle" => (Motorcycle, 2.2, 0.9),
        "moped" => (Motorcycle, 2.1, 0.78),
        "bicycle" => (Bicycle, 1.6, 0.65),
        "pedestrian" => (Pedestrian, 0.215, 0.478),
        "emergency" => (Unknown, 6.5, 2.16),
        _ => (Unknown, 5.0, 1.8),
    };
    Footprint {
        class,
        length_m,
        width_m,
    }
}

/// The footprint of a road user of type `vtype` (if known): its vClass's defaults (passenger
/// for a vehicle, pedestrian for a person when the type names none), overridden by the type's
/// own length and width.
pub fn footprint(vtype: Option<&VType>, kind: FcdKind) -> Footprint {
    let default_vclass = match kind {
        FcdKind::Vehicle => "passenger",
        FcdKind::Person => "pedestrian",
    };
    let vclass = vtype
        .and_then(|t| t.vclass.as_deref())
        .unwrap_or(default_vclass);
    let mut f = vclass_defaults(vclass);
    if let Some(t) = vtype {
        f.length_m = t.length_m.unwrap_or(f.length_m);
        f.width_m = t.width_m.unwrap_or(f.width_m);
    }
    f
}

// ------------------------------------------------------------------------------------------
// Floating car data
// ------------------------------------------------------------------------------------------

/// One FCD record as SUMO wrote it (front bumper, compass angle).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FcdRecord {
    pub t_s: f64,
    pub x: f64,
    pub y: f64,
    /// Degrees clockwise from north.
    pub angle_deg: f64,
    pub speed_mps: f64,
    pub accel_mps2: Option<f64>,
}

/// Every record of one road user, in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct FcdTrack {
    pub id: String,
    pub kind: FcdKind,
    /// The `type` of its first record (SUMO's default type ids when absent).
    pub type_id: String,
    pub records: Vec<FcdRecord>,
}

/// The road users of an FCD export, in order of first appearance, keeping the records with
/// `start_s <= time <= end_s`.
pub fn parse_fcd(
    reader: impl BufRead,
    file: &str,
    start_s: f64,
    end_s: f64,
) -> Result<Vec<FcdTrack>, SumoError> {
    let mut cursor = Cursor::new(reader, file);
    cursor.root(&["fcd-export"])?;
    let mut tracks: Vec<FcdTrack> = Vec::new();
    let mut index: HashMap<(FcdKind, String), usize> = HashMap::new();
    // The time of the open <timestep>, and the depth at which it was opened.
    let mut timestep: Option<(f64, usize)> = None;
    loop {
        let e = match cursor.next()? {
            Item::Start(e) => e,
            Item::End => {
                if timestep.is_some_and(|(_, depth)| cursor.depth() < depth) {
                    timestep = None;
                }
                continue;
            }
            Item::Eof => return Ok(tracks),
        };
        let kind = match e.name.as_str() {
            "timestep" => {
                let t = cursor.required_number(&e, "time")?;
                timestep = (!e.empty).then_some((t, cursor.depth()));
                continue;
            }
            "vehicle" => FcdKind::Vehicle,
            "person" => FcdKind::Person,
            _ => {
                cursor.skip_children(&e)?;
                continue;
            }
        };
        let Some((t_s, _)) = timestep else {
            return Err(SumoError::OutsideTimestep {
                file: file.to_string(),
                at: e.at,
                element: e.name,
            });
        };
        let id = cursor.required(&e, "id")?.to_string();
        let record = FcdRecord {
            t_s,
            x: cursor.required_number(&e, "x")?,
            y: cursor.required_number(&e, "y")?,
            angle_deg: cursor.required_number(&e, "angle")?,
            speed_mps: cursor.optional_number(&e, "speed")?.unwrap_or(0.0),
            accel_mps2: cursor.optional_number(&e, "acceleration")?,
        };
        cursor.skip_children(&e)?;
        if !(start_s..=end_s).contains(&t_s) {
            continue;
        }
        let slot = *index.entry((kind, id.clone())).or_insert_with(|| {
            let default_type = match kind {
                FcdKind::Vehicle => "DEFAULT_VEHTYPE",
                FcdKind::Person => "DEFAULT_PEDTYPE",
            };
            tracks.push(FcdTrack {
                id: id.clone(),
                kind,
                type_id: e.get("type").unwrap_or(default_type).to_string(),
                records: Vec::new(),
            });
            tracks.len() - 1
        });
        let records = &mut tracks[slot].records;
        if records.last().is_some_and(|last| last.t_s >= t_s) {
            return Err(SumoError::TimeGoesBack {
                file: file.to_string(),
                at: e.at,
                id,
                t_s,
            });
        }
        records.push(record);
    }
}

/// `yaw` (radians counter-clockwise from East) of a SUMO angle (degrees clockwise from north).
pub fn yaw_of_angle(angle_deg: f64) -> f64 {
    crate::world::wrap_angle((90.0 - angle_deg).to_radians())
}

/// The footprint centre of a road user whose front bumper is at `(x, y)`, heading `yaw`.
pub fn centre_of_front(x: f64, y: f64, yaw: f64, length_m: f64) -> V2 {
    V2::new(x, y) - V2::new(yaw.cos(), yaw.sin()) * (length_m / 2.0)
}

/// How a trace becomes a scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportOptions {
    pub name: String,
    /// WGS84 anchor of SUMO's (0, 0).
    pub origin: (f64, f64),
    /// The share of vehicles that run an agent (see [`Scenario::with_connected_share`]).
    pub connected_share: f64,
    /// Picks the connected vehicles.
    pub seed: u64,
    /// SUMO time that becomes the scenario's 0, seconds.
    pub start_s: f64,
    /// Last SUMO time to import, seconds.
    pub end_s: f64,
}

impl ImportOptions {
    pub fn new(name: impl Into<String>, seed: u64) -> Self {
        Self {
            name: name.into(),
            origin: DEFAULT_ORIGIN,
            connected_share: 1.0,
            seed,
            start_s: 0.0,
            end_s: f64::INFINITY,
        }
    }
}

/// What the import made of the files, for a person to check.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportSummary {
    pub vehicles: usize,
    pub persons: usize,
    pub records: usize,
    /// Type ids the FCD uses that no vType file defines (SUMO's defaults were used).
    pub types_missing: Vec<String>,
}

/// Turns FCD tracks into a scenario of traced actors. Scenario time 0 is SUMO time
/// `opts.start_s`; the scenario lasts until the last record.
pub fn scenario_from_tracks(
    tracks: &[FcdTrack],
    vtypes: &VTypes,
    opts: &ImportOptions,
    file: &str,
) -> Result<(Scenario, ImportSummary), SumoError> {
    let mut summary = ImportSummary::default();
    let mut actors = Vec::with_capacity(tracks.len());
    let mut end_s: f64 = 0.0;
    for track in tracks {
        if track.records.is_empty() {
            continue;
        }
        let vtype = vtypes.get(&track.type_id);
        if vtype.is_none() && !summary.types_missing.contains(&track.type_id) {
            summary.types_missing.push(track.type_id.clone());
        }
        let f = footprint(vtype, track.kind);
        match track.kind {
            FcdKind::Vehicle => summary.vehicles += 1,
            FcdKind::Person => summary.persons += 1,
        }
        summary.records += track.records.len();
        let samples = trace_samples(&track.records, f.length_m, opts.start_s);
        end_s = end_s.max(samples.last().map_or(0.0, |s| s.t_s));
        let trace = Trace::new(samples, TRACE_MAX_GAP_S).map_err(|source| SumoError::BadTrace {
            file: file.to_string(),
            id: track.id.clone(),
            source,
        })?;
        actors.push(Actor {
            id: track.id.clone(),
            class: f.class,
            length_m: f.length_m,
            width_m: f.width_m,
            connected: false,
            motion: Motion::Trace(trace),
        });
    }
    let scenario = Scenario {
        name: opts.name.clone(),
        origin: opts.origin,
        duration_s: end_s,
        actors,
        roads: Vec::new(),
    }
    .with_connected_share(opts.connected_share, opts.seed);
    Ok((scenario, summary))
}

/// Converts records to samples: centre of the footprint, yaw, and an acceleration (SUMO's
/// where it gave one, else the change of speed to the next record).
fn trace_samples(records: &[FcdRecord], length_m: f64, start_s: f64) -> Vec<TraceSample> {
    records
        .iter()
        .enumerate()
        .map(|(k, r)| {
            let yaw = yaw_of_angle(r.angle_deg);
            let accel = r.accel_mps2.unwrap_or_else(|| {
                let (a, b) = match (k.checked_sub(1), records.get(k + 1)) {
                    (_, Some(next)) => (r, next),
                    (Some(prev), None) => (&records[prev], r),
                    (None, None) => return 0.0,
                };
                (b.speed_mps - a.speed_mps) / (b.t_s - a.t_s)
            });
            TraceSample {
                t_s: r.t_s - start_s,
                pos: centre_of_front(r.x, r.y, yaw, length_m),
                yaw,
                speed_mps: r.speed_mps.max(0.0),
                accel_mps2: accel.clamp(-MAX_ACCEL_MPS2, MAX_ACCEL_MPS2),
            }
        })
        .collect()
}

/// Reads an FCD file and any number of vType files into a scenario.
pub fn import(
    fcd: &Path,
    vtype_files: &[impl AsRef<Path>],
    opts: &ImportOptions,
) -> Result<(Scenario, ImportSummary), SumoError> {
    let mut vtypes = VTypes::default();
    for path in vtype_files {
        vtypes.extend(VTypes::read(path.as_ref())?);
    }
    let file = fcd.display().to_string();
    let tracks = parse_fcd(open(fcd)?, &file, opts.start_s, opts.end_s)?;
    scenario_from_tracks(&tracks, &vtypes, opts, &file)
}

// ------------------------------------------------------------------------------------------
// Surrogate safety measures
// ------------------------------------------------------------------------------------------

/// One `<conflict>` of SUMO's SSM device (each encounter appears once per vehicle as ego).
#[derive(Debug, Clone, PartialEq)]
pub struct SsmConflict {
    pub begin_s: f64,
    pub end_s: f64,
    pub ego: String,
    pub foe: String,
    /// The least time to collision and when it occurred, if SSM computed one.
    pub min_ttc: Option<SsmMeasure>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SsmMeasure {
    pub t_s: f64,
    pub value: f64,
}

/// Every `<conflict>` of an `<SSMLog>`.
pub fn parse_ssm(reader: impl BufRead, file: &str) -> Result<Vec<SsmConflict>, SumoError> {
    let mut cursor = Cursor::new(reader, file);
    cursor.root(&["SSMLog"])?;
    let mut out: Vec<SsmConflict> = Vec::new();
    let mut open_conflict: Option<usize> = None;
    loop {
        match cursor.next()? {
            Item::Start(e) if e.name == "conflict" => {
                out.push(SsmConflict {
                    begin_s: cursor.required_number(&e, "begin")?,
                    end_s: cursor.required_number(&e, "end")?,
                    ego: cursor.required(&e, "ego")?.to_string(),
                    foe: cursor.required(&e, "foe")?.to_string(),
                    min_ttc: None,
                });
                open_conflict = (!e.empty).then_some(cursor.depth());
            }
            Item::Start(e) if e.name == "minTTC" => {
                let Some(conflict) = open_conflict.and_then(|_| out.last_mut()) else {
                    cursor.skip_children(&e)?;
                    continue;
                };
                let time = cursor.optional_number(&e, "time")?;
                let value = cursor.optional_number(&e, "value")?;
                conflict.min_ttc = time
                    .zip(value)
                    .map(|(t_s, value)| SsmMeasure { t_s, value });
                cursor.skip_children(&e)?;
            }
            Item::Start(e) => cursor.skip_children(&e)?,
            Item::End => {
                if open_conflict.is_some_and(|depth| cursor.depth() < depth) {
                    open_conflict = None;
                }
            }
            Item::Eof => return Ok(out),
        }
    }
}

pub fn read_ssm(path: &Path) -> Result<Vec<SsmConflict>, SumoError> {
    parse_ssm(open(path)?, &path.display().to_string())
}

/// The unordered pairs whose SSM minimum TTC is under `threshold_s`, each once.
pub fn ssm_pairs_below(conflicts: &[SsmConflict], threshold_s: f64) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = conflicts
        .iter()
        .filter(|c| c.min_ttc.is_some_and(|m| m.value < threshold_s))
        .map(|c| {
            if c.ego <= c.foe {
                (c.ego.clone(), c.foe.clone())
            } else {
                (c.foe.clone(), c.ego.clone())
            }
        })
        .collect();
    pairs.sort();
    pairs.dedup();
    pairs
}

#[cfg(test)]
mod tests;
