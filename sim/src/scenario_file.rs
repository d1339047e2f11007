//! Scenario files: TOML that names a road layout with random traffic and conflict patterns,
//! or lists scripted road users, or both. `docs/scenarios.md` documents every field; the
//! built-in scenarios are files under `sim/scenarios/`, compiled in.

use crate::traffic::{self, LayoutKind, Pattern, ScriptedConflict, SignalTiming, TrafficSpec};
use crate::world::{Actor, Motion, Scenario, SpeedKey};
use edge_node::geometry::V2;
use protocol::ObjectClass;
use serde::Deserialize;

/// The scenarios that ship with the simulator: (name, TOML).
pub const BUILT_IN: &[(&str, &str)] = &[
    ("demo", include_str!("../scenarios/demo.toml")),
    (
        "hidden-pedestrian",
        include_str!("../scenarios/hidden-pedestrian.toml"),
    ),
    (
        "hidden-pedestrian-ego-only",
        include_str!("../scenarios/hidden-pedestrian-ego-only.toml"),
    ),
    (
        "signalised-4way",
        include_str!("../scenarios/signalised-4way.toml"),
    ),
    (
        "unsignalised-crossing",
        include_str!("../scenarios/unsignalised-crossing.toml"),
    ),
    ("t-junction", include_str!("../scenarios/t-junction.toml")),
];

const DEFAULT_ORIGIN: [f64; 2] = [48.137_154, 11.576_124];

fn default_origin() -> [f64; 2] {
    DEFAULT_ORIGIN
}

/// A scenario file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub duration_s: f64,
    /// WGS84 latitude and longitude of the scenario's origin (the junction centre).
    #[serde(default = "default_origin")]
    pub origin: [f64; 2],
    pub layout: Option<LayoutKind>,
    #[serde(default)]
    pub signals: SignalTiming,
    #[serde(default)]
    pub traffic: TrafficSpec,
    /// Read as [`ConflictSpec`]s (by hand, for errors that name the pattern).
    #[serde(default, rename = "conflict")]
    pub conflicts: Vec<toml::Table>,
    #[serde(default, rename = "actor")]
    pub actors: Vec<ActorSpec>,
}

/// A `[[conflict]]`: a pattern mixed into the layout's traffic, or (`pattern = "scripted"`)
/// a pair of scripted actors the scenario expects to conflict.
#[derive(Debug, Clone)]
pub enum ConflictSpec {
    Scripted { between: [String; 2] },
    Pattern(Pattern),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptedPair {
    #[allow(dead_code)]
    pattern: String,
    between: [String; 2],
}

impl ConflictSpec {
    fn read(table: &toml::Table) -> Result<Self, toml::de::Error> {
        let value = toml::Value::Table(table.clone());
        if table.get("pattern").and_then(|p| p.as_str()) == Some("scripted") {
            let pair: ScriptedPair = value.try_into()?;
            Ok(ConflictSpec::Scripted {
                between: pair.between,
            })
        } else {
            Ok(ConflictSpec::Pattern(value.try_into()?))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClassName {
    Car,
    Truck,
    Bus,
    Motorcycle,
    Bicycle,
    Pedestrian,
}

impl ClassName {
    fn class(self) -> ObjectClass {
        match self {
            ClassName::Car => ObjectClass::Car,
            ClassName::Truck => ObjectClass::Truck,
            ClassName::Bus => ObjectClass::Bus,
            ClassName::Motorcycle => ObjectClass::Motorcycle,
            ClassName::Bicycle => ObjectClass::Bicycle,
            ClassName::Pedestrian => ObjectClass::Pedestrian,
        }
    }

    /// Length and width when the file gives none, metres.
    fn size(self) -> (f64, f64) {
        match self {
            ClassName::Car => (4.5, 1.8),
            ClassName::Truck => (10.0, 2.5),
            ClassName::Bus => (12.0, 2.5),
            ClassName::Motorcycle => (2.2, 0.8),
            ClassName::Bicycle => (1.8, 0.6),
            ClassName::Pedestrian => (0.5, 0.5),
        }
    }
}

/// An `[[actor]]`: a road user along a polyline with a speed profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorSpec {
    pub id: String,
    pub class: ClassName,
    pub length_m: Option<f64>,
    pub width_m: Option<f64>,
    /// Default: motor vehicles yes, cyclists and pedestrians no.
    pub connected: Option<bool>,
    /// Points `[x, y]` in metres east and north of the origin.
    pub path: Vec<[f64; 2]>,
    /// Keyframes `[t_s, speed_mps]`; between two the speed changes linearly.
    pub speed: Vec<[f64; 2]>,
}

/// Why a scenario file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    #[error("{file}: {source}")]
    Parse {
        file: String,
        source: Box<toml::de::Error>,
    },
    #[error("{file}: {what}")]
    Invalid { file: String, what: String },
    #[error("{file}: {source}")]
    Traffic {
        file: String,
        source: traffic::TrafficError,
    },
    #[error("no built-in scenario is called {name:?} (there are: {known})")]
    Unknown { name: String, known: String },
}

/// A scenario ready to run, with the conflicts it sets up on purpose.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub scenario: Scenario,
    pub description: String,
    pub scripted: Vec<ScriptedConflict>,
    /// What the traffic generator could not do as asked, for the person running it (e.g.
    /// random vehicles left out to keep the conflict patterns' lanes clear).
    pub notes: Vec<String>,
}

/// Changes a run makes to a file's scenario.
#[derive(Debug, Clone, Copy, Default)]
pub struct Overrides {
    /// Random vehicles entering during the run instead of `traffic.vehicles`.
    pub vehicles: Option<usize>,
    /// Share of random vehicles connected instead of `traffic.connected_share`.
    pub connected_share: Option<f64>,
}

fn invalid(file: &str, what: String) -> ScenarioError {
    ScenarioError::Invalid {
        file: file.to_string(),
        what,
    }
}

fn actor(file: &str, a: &ActorSpec) -> Result<Actor, ScenarioError> {
    let bad = |what: &str| invalid(file, format!("actor {:?}: {what}", a.id));
    if a.path.len() < 2 {
        return Err(bad("path needs at least two points"));
    }
    let finite = |v: &[f64; 2]| v.iter().all(|x| x.is_finite());
    if !a.path.iter().all(finite) || !a.speed.iter().all(finite) {
        return Err(bad("every number must be finite"));
    }
    if a.path.windows(2).any(|w| w[0] == w[1]) {
        return Err(bad("two consecutive path points are the same"));
    }
    if a.speed.is_empty() {
        return Err(bad("speed needs at least one [t_s, speed_mps] keyframe"));
    }
    if a.speed.windows(2).any(|w| w[1][0] <= w[0][0]) {
        return Err(bad("speed keyframes must be in increasing time"));
    }
    if a.speed.iter().any(|k| k[1] < 0.0) {
        return Err(bad("speeds cannot be negative"));
    }
    let (length, width) = a.class.size();
    let (length_m, width_m) = (a.length_m.unwrap_or(length), a.width_m.unwrap_or(width));
    if !(length_m > 0.0 && width_m > 0.0 && length_m < 30.0 && width_m < 5.0) {
        return Err(bad("length_m must be in (0, 30) and width_m in (0, 5)"));
    }
    let class = a.class.class();
    Ok(Actor {
        id: a.id.clone(),
        class,
        length_m,
        width_m,
        connected: a
            .connected
            .unwrap_or(class.is_vehicle() && class != ObjectClass::Bicycle),
        motion: Motion::Scripted {
            path: a.path.iter().map(|p| V2::new(p[0], p[1])).collect(),
            speed: a
                .speed
                .iter()
                .map(|k| SpeedKey {
                    t_s: k[0],
                    speed_mps: k[1],
                })
                .collect(),
        },
    })
}

/// Builds the scenario a file describes; random traffic and patterns are drawn from `seed`.
/// `file` names the source in errors.
pub fn load(
    file: &str,
    text: &str,
    seed: u64,
    overrides: Overrides,
) -> Result<Loaded, ScenarioError> {
    let spec: ScenarioFile = toml::from_str(text).map_err(|e| ScenarioError::Parse {
        file: file.to_string(),
        source: Box::new(e),
    })?;
    if !(spec.duration_s.is_finite() && spec.duration_s > 0.0 && spec.duration_s <= 3600.0) {
        return Err(invalid(
            file,
            format!("duration_s must be in (0, 3600], not {}", spec.duration_s),
        ));
    }
    let [lat, lon] = spec.origin;
    if !((-85.0..=85.0).contains(&lat) && (-180.0..=180.0).contains(&lon)) {
        return Err(invalid(
            file,
            format!("origin {lat}, {lon} is not a latitude and longitude"),
        ));
    }
    let mut actors = spec
        .actors
        .iter()
        .map(|a| actor(file, a))
        .collect::<Result<Vec<_>, _>>()?;
    let mut scripted = Vec::new();
    let mut patterns = Vec::new();
    for (k, table) in spec.conflicts.iter().enumerate() {
        let c = ConflictSpec::read(table)
            .map_err(|e| invalid(file, format!("conflict {k}: {}", e.message())))?;
        match &c {
            ConflictSpec::Scripted { between } => {
                let [a, b] = between;
                for id in [a, b] {
                    if !actors.iter().any(|x| &x.id == id) {
                        return Err(invalid(
                            file,
                            format!("scripted conflict names {id:?}, which no [[actor]] is"),
                        ));
                    }
                }
                let (a, b) = if a <= b { (a, b) } else { (b, a) };
                scripted.push(ScriptedConflict {
                    pattern: "scripted".into(),
                    a: a.clone(),
                    b: b.clone(),
                });
            }
            ConflictSpec::Pattern(p) => patterns.push(p.clone()),
        }
    }
    let mut roads = Vec::new();
    let mut notes = Vec::new();
    match spec.layout {
        Some(kind) => {
            let mut traffic = spec.traffic.clone();
            if let Some(n) = overrides.vehicles {
                traffic.vehicles = n;
            }
            if let Some(share) = overrides.connected_share {
                traffic.connected_share = share;
            }
            let g = traffic::generate(
                kind,
                spec.signals,
                &traffic,
                &patterns,
                spec.duration_s,
                seed,
            )
            .map_err(|source| ScenarioError::Traffic {
                file: file.to_string(),
                source,
            })?;
            if g.random_vehicles_left_out > 0 {
                notes.push(format!(
                    "{} of the {} random vehicles and cyclists due during the run were left out \
                     to keep the lanes of {} conflict pattern(s) clear",
                    g.random_vehicles_left_out,
                    g.random_vehicles,
                    patterns.len()
                ));
            }
            actors.extend(g.actors);
            roads = g.roads;
            scripted.extend(g.scripted);
        }
        None if !patterns.is_empty() => {
            return Err(invalid(file, "conflict patterns need a layout".into()));
        }
        None => {}
    }
    let mut seen = std::collections::BTreeSet::new();
    for a in &actors {
        if !seen.insert(a.id.as_str()) {
            return Err(invalid(
                file,
                format!("two road users are called {:?}", a.id),
            ));
        }
    }
    if actors.is_empty() {
        return Err(invalid(file, "the scenario has no road users".into()));
    }
    let mut scenario = Scenario {
        name: spec.name,
        origin: (lat, lon),
        duration_s: spec.duration_s,
        actors,
        roads,
    };
    // Scripted-only scenarios take the share over all their vehicles.
    if spec.layout.is_none() {
        if let Some(share) = overrides.connected_share {
            scenario = scenario.with_connected_share(share, seed);
        }
    }
    Ok(Loaded {
        scenario,
        description: spec.description,
        scripted,
        notes,
    })
}

/// A built-in scenario by name.
pub fn built_in(name: &str, seed: u64, overrides: Overrides) -> Result<Loaded, ScenarioError> {
    let (file, text) =
        BUILT_IN
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| ScenarioError::Unknown {
                name: name.to_string(),
                known: BUILT_IN
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
    load(&format!("sim/scenarios/{file}.toml"), text, seed, overrides)
}

#[cfg(test)]
mod tests;
