//! Cross-crate integration tests of v2e live in `tests/integration/`, one test binary with a
//! module per area. This library is empty on purpose.
