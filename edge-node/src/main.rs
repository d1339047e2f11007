use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use edge_node::core::EdgeConfig;
use edge_node::net::{EdgeNetConfig, EdgeNode};
use edge_node::pki::Pki;
use protocol::{Geodetic, VehicleId};
use std::path::PathBuf;

/// The v2e roadside edge node.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the edge: listens for vehicles on QUIC with mutual TLS, publishes alerts and the
    /// situation map. Makes the CA and its own certificate under DATA_DIR/pki on first run.
    Run {
        #[arg(long, default_value = "v2e-data")]
        data_dir: PathBuf,
        #[arg(long, default_value = "edge")]
        edge_id: String,
        /// zenoh endpoint(s) to listen on.
        #[arg(long, default_value = "quic/127.0.0.1:7447")]
        listen: Vec<String>,
        /// WGS84 origin of the edge's frame and centre of its area, "LAT,LON" in degrees.
        #[arg(long, value_parser = parse_origin, default_value = "48.137154,11.576124")]
        origin: Geodetic,
        /// Radius of the covered area, metres.
        #[arg(long, default_value_t = 500.0)]
        radius_m: f64,
        #[arg(long, default_value_t = 10_000)]
        max_sessions: usize,
    },
    /// Makes (or reuses) the CA, the edge's certificate and certificates for vehicles, under
    /// DATA_DIR/pki, and prints their paths.
    Pki {
        #[arg(long, default_value = "v2e-data")]
        data_dir: PathBuf,
        #[arg(long, default_value = "edge")]
        edge_id: String,
        /// Vehicle ids: a list and ranges, e.g. "1-8,12".
        #[arg(long, default_value = "")]
        vehicles: String,
    },
}

fn parse_origin(s: &str) -> Result<Geodetic, String> {
    let (lat, lon) = s.split_once(',').ok_or("expected LAT,LON")?;
    let lat: f64 = lat.trim().parse().map_err(|e| format!("latitude: {e}"))?;
    let lon: f64 = lon.trim().parse().map_err(|e| format!("longitude: {e}"))?;
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err("latitude must be in -90..90 and longitude in -180..180".into());
    }
    Ok(Geodetic::new(lat, lon, 0.0))
}

fn parse_ids(s: &str) -> Result<Vec<VehicleId>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u32, u32) = (
            a.parse().map_err(|e| format!("{part}: {e}"))?,
            b.parse().map_err(|e| format!("{part}: {e}"))?,
        );
        if b < a || b - a > 100_000 {
            return Err(format!("{part}: not a range of at most 100,000 ids"));
        }
        out.extend((a..=b).map(VehicleId));
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Pki {
            data_dir,
            edge_id,
            vehicles,
        } => {
            let vehicles = parse_ids(&vehicles).map_err(anyhow::Error::msg)?;
            let pki = Pki::open_or_create(&data_dir)?;
            let edge = pki.edge(&edge_id)?;
            println!("ca          {}", edge.ca.display());
            println!(
                "edge-{edge_id}  {} {}",
                edge.cert.display(),
                edge.key.display()
            );
            for v in vehicles {
                let files = pki.vehicle(v)?;
                println!(
                    "vehicle-{v}  {} {}",
                    files.cert.display(),
                    files.key.display()
                );
            }
            Ok(())
        }
        Command::Run {
            data_dir,
            edge_id,
            listen,
            origin,
            radius_m,
            max_sessions,
        } => {
            if !protocol::keys::is_valid_edge_id(&edge_id) {
                bail!("edge id {edge_id:?} must be 1 to 64 characters of a-z, 0-9 and '-'");
            }
            let pki = Pki::open_or_create(&data_dir).context("opening the certificates")?;
            let tls = pki.edge(&edge_id)?;
            let mut core = EdgeConfig::new(&edge_id, origin);
            core.radius_m = radius_m;
            let mut config = EdgeNetConfig::new(core, listen, tls);
            config.max_sessions = max_sessions;
            let node = EdgeNode::start(config).await?;
            tokio::signal::ctrl_c()
                .await
                .context("waiting for Ctrl-C")?;
            let stats = node.shutdown().await;
            eprintln!(
                "{}",
                serde_json::json!({
                    "frames": stats.core,
                    "frames_dropped": stats.frames_dropped,
                    "alerts_published": stats.alerts_published,
                    "alerts_failed": stats.alerts_failed,
                    "processing_us": {
                        "p50": stats.processing_us.quantile(0.5),
                        "p99": stats.processing_us.quantile(0.99),
                    },
                })
            );
            Ok(())
        }
    }
}
