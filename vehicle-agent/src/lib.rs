//! The v2e in-vehicle agent.
//!
//! [`core::AgentCore`] turns object lists and the ego pose into feature frames stamped in the
//! edge's time base, keeps the clock-offset estimate, and decodes alerts; it is sans-IO like
//! every v2e core. [`net`] is the zenoh driver that an embedding application (or the
//! `vehicle-agent` binary, or the simulator) uses: push perception in, receive alerts out.

pub mod core;
pub mod net;

pub use crate::core::{AgentCore, AgentError, AgentStats, ObjectReport, Perception, ReceivedAlert};
pub use crate::net::{Agent, AgentNetConfig, LocalClock, TlsFiles};
