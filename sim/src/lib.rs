//! The v2e simulator: a seeded scenario world, perception of connected vehicles, drivers that
//! run real agents against a real edge, and scoring with the definitions in [`score`].

pub mod live;
pub mod perception;
pub mod report;
pub mod rng;
pub mod score;
pub mod world;
