//! The v2e simulator: a seeded scenario world (scripted or replayed from SUMO traces),
//! perception of connected vehicles, two drivers that run the real agent and edge logic (fast:
//! the sans-IO cores in virtual time; live: real agents and a real edge over zenoh/QUIC), and
//! scoring with the definitions in [`score`].

pub mod fast;
pub mod live;
pub mod perception;
pub mod pictures;
pub mod plot;
pub mod progress;
pub mod report;
pub mod scenario_file;
pub mod score;
pub mod sumo;
pub mod traffic;
pub mod world;

/// The seeded generator every random draw of a run comes from.
pub use edge_node::rng;
