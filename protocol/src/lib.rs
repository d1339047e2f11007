//! The v2e wire protocol: message types and their codec, key expressions, geodesy and clock-sync
//! maths.
//!
//! Invariant: this crate depends on no async runtime and does no IO. Every other crate depends on
//! it, the in-vehicle agent too, so it stays small and portable.
//!
//! Every message on the wire is `[FORMAT_VERSION, kind, postcard body]`. A decoder rejects an
//! unknown version or a kind other than the one it expects with a typed [`DecodeError`] before it
//! looks at the body. Decoding is structural only; the physical checks (ranges, the timestamp
//! window) happen when a [`FeatureFrame`] becomes a [`ValidatedFrame`]. `docs/protocol.md` is the
//! specification and the golden vectors under `protocol/tests/data` pin it.

pub mod alert;
pub mod clock;
pub mod codec;
pub mod frame;
pub mod geo;
pub mod keys;
pub mod map;
/// A fixed example frame used by tests, benches and docs; not part of the protocol.
#[doc(hidden)]
pub mod sample;
pub mod units;
pub mod validate;

pub use alert::{Alert, AlertKind, Severity, TrackInfo};
pub use clock::{ClockEstimate, ClockEstimator, ClockReply, ClockRequest, ClockSample};
pub use codec::{DecodeError, EncodeError, Message, MessageKind, FORMAT_VERSION, MAX_MESSAGE_LEN};
pub use frame::{
    EgoSi, EgoState, FeatureFrame, ObjectClass, ObjectSi, PerceivedObject, MAX_OBJECTS,
};
pub use geo::{EnuFrame, GeoPoint, Geodetic};
pub use map::{MapTrack, SituationMap};
pub use units::{Confidence, Sigma};
pub use validate::{FrameWindow, ValidatedFrame, ValidationError};

/// A vehicle's identity: the number in its certificate name (`vehicle-{id}`) and in its keys.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct VehicleId(pub u32);

impl std::fmt::Display for VehicleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}
