//! Every zenoh key expression v2e uses, in one place.
//!
//! ```text
//! v2e/edge/{edge}/frames/{vehicle}   vehicle -> edge, FeatureFrame
//! v2e/edge/{edge}/alerts/{vehicle}   edge -> vehicle, Alert
//! v2e/edge/{edge}/map                edge -> anyone, SituationMap at 10 Hz
//! v2e/edge/{edge}/clock              queryable: ClockRequest -> ClockReply
//! v2e/edge/{edge}/coverage           liveliness token + queryable
//! v2e/edge/{edge}/status             edge status
//! v2e/models/announce                cloud -> edges, release announcements
//! ```
//! Edge ids are short names of `[a-z0-9-]`; vehicle ids are decimal numbers.

use crate::VehicleId;

pub const MODELS_ANNOUNCE: &str = "v2e/models/announce";

/// Whether `edge` is usable as one chunk of a key expression.
pub fn is_valid_edge_id(edge: &str) -> bool {
    !edge.is_empty()
        && edge.len() <= 64
        && edge
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

pub fn frames(edge: &str, vehicle: VehicleId) -> String {
    format!("v2e/edge/{edge}/frames/{vehicle}")
}

/// Every vehicle's frames at one edge.
pub fn all_frames(edge: &str) -> String {
    format!("v2e/edge/{edge}/frames/*")
}

pub fn alerts(edge: &str, vehicle: VehicleId) -> String {
    format!("v2e/edge/{edge}/alerts/{vehicle}")
}

pub fn map(edge: &str) -> String {
    format!("v2e/edge/{edge}/map")
}

pub fn clock(edge: &str) -> String {
    format!("v2e/edge/{edge}/clock")
}

pub fn coverage(edge: &str) -> String {
    format!("v2e/edge/{edge}/coverage")
}

pub fn status(edge: &str) -> String {
    format!("v2e/edge/{edge}/status")
}

/// The vehicle id at the end of a frames key of `edge`, or `None` if the key is not one.
pub fn parse_frames_key(edge: &str, key: &str) -> Option<VehicleId> {
    let rest = key.strip_prefix("v2e/edge/")?.strip_prefix(edge)?;
    let id = rest.strip_prefix("/frames/")?;
    // One spelling per id: no sign, no leading zero.
    let canonical = id == "0" || !id.starts_with('0');
    if id.is_empty() || !canonical || !id.bytes().all(|b| b.is_ascii_digit()) || id.len() > 10 {
        return None;
    }
    id.parse().ok().map(VehicleId)
}

/// The name a vehicle's certificate carries, which is how the edge knows who is connected.
pub fn vehicle_cert_name(vehicle: VehicleId) -> String {
    format!("vehicle-{vehicle}")
}
