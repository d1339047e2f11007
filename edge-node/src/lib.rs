//! The v2e roadside edge node.
//!
//! [`core::EdgeCore`] is the whole per-frame pipeline as a sans-IO value: it takes frame bytes
//! and the current time, and hands back alerts and situation maps through `poll_*` methods.
//! [`net`] is the thin zenoh driver around it, and the only module that knows about zenoh.
//! [`pki`] makes the embedded default's certificates.

pub mod alerts;
pub mod assignment;
pub mod core;
pub mod geometry;
pub mod histogram;
pub mod net;
pub mod pki;
pub mod quality;
pub mod rng;
pub mod tracks;
