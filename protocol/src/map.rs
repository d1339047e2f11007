//! `SituationMap`: the edge's tracks at one instant, published at 10 Hz.

use crate::codec::{EncodeError, Message, MessageKind};
use crate::{GeoPoint, ObjectClass, VehicleId};
use serde::{Deserialize, Serialize};

/// The most tracks one map message carries.
pub const MAX_TRACKS: usize = 8192;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SituationMap {
    pub edge: String,
    pub time_us: i64,
    /// The edge's origin; track offsets are East/North centimetres from it.
    pub origin: GeoPoint,
    pub tracks: Vec<MapTrack>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapTrack {
    pub track_id: u32,
    pub vehicle: Option<VehicleId>,
    pub class: ObjectClass,
    pub offset_cm: [i32; 2],
    pub velocity_cms: [i16; 2],
    pub yaw: u8,
    pub length_dm: u8,
    pub width_dm: u8,
}

impl Message for SituationMap {
    const KIND: MessageKind = MessageKind::SituationMap;

    fn check_encodable(&self) -> Result<(), EncodeError> {
        if self.tracks.len() > MAX_TRACKS {
            return Err(EncodeError::TooMany {
                what: "tracks in a map",
                count: self.tracks.len(),
                max: MAX_TRACKS,
            });
        }
        Ok(())
    }
}
