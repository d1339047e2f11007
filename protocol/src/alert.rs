//! `Alert`: what the edge tells a vehicle about a predicted conflict.

use crate::codec::{Message, MessageKind};
use crate::{GeoPoint, ObjectClass, VehicleId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A new conflict: the first message of an alert id.
    Raise,
    /// The same conflict, still active, with updated figures.
    Refresh,
    /// The conflict is over; the last message of an alert id.
    Clear,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
}

/// The other party of a conflict, as the edge tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackInfo {
    pub track_id: u32,
    /// Set when the track is a connected vehicle (its own reports are part of the track).
    pub vehicle: Option<VehicleId>,
    pub class: ObjectClass,
    pub position: GeoPoint,
    /// East and north velocity, cm/s.
    pub velocity_cms: [i16; 2],
    /// Yaw in 1/256 turns counter-clockwise from East.
    pub yaw: u8,
    pub length_dm: u8,
    pub width_dm: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub kind: AlertKind,
    /// Unique per edge for the life of a conflict between two tracks; both vehicles of a pair
    /// receive the same id.
    pub alert_id: u32,
    pub target: VehicleId,
    pub other: TrackInfo,
    /// Predicted time until the footprints touch, milliseconds; `u32::MAX` on a clear.
    pub ttc_ms: u32,
    pub conflict_point: GeoPoint,
    /// 0..=100.
    pub probability_pct: u8,
    pub severity: Severity,
    /// Capture time (edge time base, µs) of the frame whose arrival produced this alert, so the
    /// receiver can measure end-to-end latency.
    pub trigger_capture_us: i64,
    /// When the edge issued it, edge time base, µs.
    pub issued_us: i64,
}

impl Message for Alert {
    const KIND: MessageKind = MessageKind::Alert;
}
