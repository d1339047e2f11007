//! Cross-crate tests on real parts: zenoh sessions over QUIC with certificates, on loopback.

mod crossing;
mod external_edge;
mod map;
mod mtls;
mod scenarios;
mod sumo;

/// A fresh directory under the system's temporary directory for one test.
pub fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("v2e-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a scratch directory");
    dir
}
