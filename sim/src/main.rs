use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// The v2e simulator.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the built-in junction demo end to end in real time: an edge node and eight vehicle
    /// agents, each with its own zenoh session over QUIC with mutual TLS on loopback.
    Demo {
        /// Where certificates, report.json and alerts.ndjson go.
        #[arg(long, default_value = "out/demo")]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Each vehicle's clock is offset from the edge's by up to this much, which the
        /// agents' clock sync must absorb.
        #[arg(long, default_value_t = 50.0)]
        max_clock_offset_ms: f64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Demo {
            out,
            seed,
            max_clock_offset_ms,
        } => {
            let scenario = sim::world::Scenario::demo();
            let mut opts = sim::live::LiveOptions::new(out.clone(), seed);
            opts.max_clock_offset_us = (max_clock_offset_ms * 1000.0) as i64;
            println!(
                "running {} in real time ({:.0} s): {} connected vehicles over zenoh/QUIC with mutual TLS",
                scenario.name,
                scenario.duration_s,
                scenario.n_connected()
            );
            let result = sim::live::run_live(&scenario, &opts)
                .await
                .context("the demo did not complete")?;
            println!("{}", result.report.summary(&result.score));
            println!(
                "wrote {} and {}",
                out.join("report.json").display(),
                out.join("alerts.ndjson").display()
            );
            Ok(())
        }
    }
}
