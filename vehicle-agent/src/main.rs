use anyhow::{bail, Context};
use clap::Parser;
use protocol::{AlertKind, VehicleId};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use vehicle_agent::{Agent, AgentNetConfig, Perception, ReceivedAlert, TlsFiles};

/// The v2e vehicle agent: reads perception as NDJSON (one object list and ego pose per line,
/// see docs/operations.md), publishes frames to the edge at up to 10 Hz, and prints the alerts
/// it receives as NDJSON on stdout.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[arg(long)]
    vehicle: u32,
    #[arg(long, default_value = "edge")]
    edge_id: String,
    /// The edge's zenoh endpoint.
    #[arg(long, default_value = "quic/127.0.0.1:7447")]
    connect: String,
    /// Where `edge-node pki` put the certificates; --ca/--cert/--key override single files.
    #[arg(long, default_value = "v2e-data")]
    data_dir: PathBuf,
    #[arg(long)]
    ca: Option<PathBuf>,
    #[arg(long)]
    cert: Option<PathBuf>,
    #[arg(long)]
    key: Option<PathBuf>,
    /// Perception NDJSON file, or - for stdin.
    #[arg(long, default_value = "-")]
    input: String,
    /// After the input ends, how long to keep listening for alerts.
    #[arg(long, default_value_t = 1.0)]
    linger_s: f64,
}

/// One input line: a perception cycle, optionally with `t_s`, the time after the start at
/// which to send it (for replaying a recording at its own pace).
#[derive(Deserialize)]
struct InputLine {
    #[serde(default)]
    t_s: Option<f64>,
    #[serde(flatten)]
    perception: Perception,
}

fn alert_json(r: &ReceivedAlert) -> serde_json::Value {
    let a = &r.alert;
    serde_json::json!({
        "t_us": r.received_edge_us,
        "kind": match a.kind { AlertKind::Raise => "raise", AlertKind::Refresh => "refresh", AlertKind::Clear => "clear" },
        "alert_id": a.alert_id,
        "other": {
            "track_id": a.other.track_id,
            "vehicle": a.other.vehicle.map(|v| v.0),
            "class": a.other.class,
            "lat_deg": a.other.position.lat_deg(),
            "lon_deg": a.other.position.lon_deg(),
            "velocity_mps": [a.other.velocity_cms[0] as f64 / 100.0, a.other.velocity_cms[1] as f64 / 100.0],
        },
        "ttc_s": (a.ttc_ms != u32::MAX).then_some(a.ttc_ms as f64 / 1000.0),
        "probability": a.probability_pct as f64 / 100.0,
        "severity": a.severity,
        "conflict_point": [a.conflict_point.lat_deg(), a.conflict_point.lon_deg()],
        "latency_ms": r.latency_us as f64 / 1000.0,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let vehicle = VehicleId(cli.vehicle);
    let pki = cli.data_dir.join("pki");
    let name = protocol::keys::vehicle_cert_name(vehicle);
    let tls = TlsFiles {
        ca: cli.ca.unwrap_or_else(|| pki.join("ca.pem")),
        cert: cli.cert.unwrap_or_else(|| pki.join(format!("{name}.pem"))),
        key: cli.key.unwrap_or_else(|| pki.join(format!("{name}.key"))),
    };
    let config = AgentNetConfig::new(vehicle, &cli.edge_id, &cli.connect, tls);
    let (agent, mut alerts) = Agent::connect(config).await?;
    let printer = tokio::spawn(async move {
        while let Some(a) = alerts.recv().await {
            println!("{}", alert_json(&a));
        }
    });

    let reader: Box<dyn tokio::io::AsyncRead + Unpin + Send> = if cli.input == "-" {
        Box::new(tokio::io::stdin())
    } else {
        Box::new(
            tokio::fs::File::open(&cli.input)
                .await
                .with_context(|| format!("opening {}", cli.input))?,
        )
    };
    let mut lines = BufReader::new(reader).lines();
    let start = Instant::now();
    let (mut n_lines, mut n_records, mut n_bad) = (0u64, 0u64, 0u64);
    while let Some(line) = lines.next_line().await.context("reading the input")? {
        n_lines += 1;
        if line.trim().is_empty() {
            continue;
        }
        n_records += 1;
        let parsed: InputLine = match serde_json::from_str(&line) {
            Ok(p) => p,
            Err(e) => {
                n_bad += 1;
                eprintln!("line {n_lines}: not a perception record: {e}");
                continue;
            }
        };
        if let Some(t_s) = parsed.t_s.filter(|t| t.is_finite() && *t >= 0.0) {
            tokio::time::sleep_until((start + Duration::from_secs_f64(t_s)).into()).await;
        }
        if let Err(e) = agent.push(&parsed.perception).await {
            n_bad += 1;
            eprintln!("line {n_lines}: {e}");
        }
    }
    tokio::time::sleep(Duration::from_secs_f64(cli.linger_s.max(0.0))).await;
    let stats = agent.stats();
    agent.close().await;
    printer.abort();
    eprintln!(
        "{}",
        serde_json::json!({"lines": n_lines, "refused_lines": n_bad, "agent": stats})
    );
    if n_bad > 0 && n_bad == n_records {
        bail!("no input line was accepted");
    }
    Ok(())
}
