use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand, ValueEnum};
use sim::world::Scenario;
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
    /// Runs a built-in scenario or a SUMO trace, in fast mode (agent and edge cores in virtual
    /// time, deterministic) or live mode (real agents and edge over zenoh/QUIC, real time).
    Run(RunArgs),
}

/// The built-in scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BuiltIn {
    /// The four-way junction of `sim demo`: eight connected cars, one crossing conflict.
    Demo,
    /// A pedestrian steps out from behind a parked van in front of car `a`; oncoming car `b`,
    /// connected, sees them.
    HiddenPedestrian,
    /// The same, with only car `a` connected.
    HiddenPedestrianEgoOnly,
}

impl BuiltIn {
    fn scenario(self) -> Scenario {
        match self {
            Self::Demo => Scenario::demo(),
            Self::HiddenPedestrian => Scenario::hidden_pedestrian(true),
            Self::HiddenPedestrianEgoOnly => Scenario::hidden_pedestrian(false),
        }
    }
}

#[derive(Args)]
#[command(group = clap::ArgGroup::new("mode").required(true).args(["fast", "live"]))]
#[command(group = clap::ArgGroup::new("source").required(true).args(["scenario", "sumo_fcd"]))]
struct RunArgs {
    /// A built-in scenario.
    #[arg(value_enum)]
    scenario: Option<BuiltIn>,
    /// Replay a SUMO FCD trace (vehicles and persons) as ground truth.
    #[arg(long, value_name = "FCD.xml")]
    sumo_fcd: Option<PathBuf>,
    /// SUMO vType files for the trace's lengths, widths and classes (repeatable); types they
    /// do not define take SUMO's defaults.
    #[arg(long, value_name = "VTYPES.xml", requires = "sumo_fcd")]
    sumo_vtypes: Vec<PathBuf>,
    /// SUMO time that becomes the run's 0 s, to replay a window of a trace.
    #[arg(long, value_name = "S", default_value_t = 0.0, requires = "sumo_fcd")]
    sumo_start: f64,
    /// Share of vehicles that run an agent, picked from the seed (persons never do). Default:
    /// every vehicle of a SUMO trace; a built-in scenario's own choice.
    #[arg(long, value_name = "X")]
    connected_share: Option<f64>,
    /// Agent and edge cores in-process in virtual time; same seed, same report.
    #[arg(long)]
    fast: bool,
    /// Real agents and a real edge over zenoh/QUIC with mutual TLS on loopback, in real time.
    #[arg(long)]
    live: bool,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where report.json, alerts.ndjson (and timing.json in fast mode) go.
    #[arg(long, default_value = "out/run")]
    out: PathBuf,
    /// End the run after this many seconds (if the scenario lasts longer).
    #[arg(long, value_name = "S")]
    duration: Option<f64>,
    /// Run this many copies of the scenario side by side (far enough apart not to see each
    /// other), for load tests; ids of copy k end in `~k`.
    #[arg(long, value_name = "N", default_value_t = 1)]
    copies: usize,
    /// One-way latency of the simulated link in fast mode, milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 2.0)]
    link_latency_ms: f64,
    /// Each vehicle's clock is offset from the edge's by up to this much.
    #[arg(long, value_name = "MS", default_value_t = 50.0)]
    max_clock_offset_ms: f64,
    /// Fast mode: each message on the simulated link is delayed by up to this much more.
    #[arg(long, value_name = "MS", default_value_t = 0.0)]
    link_jitter_ms: f64,
    /// Fast mode: share of messages the simulated link loses (0 to 1).
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    link_loss: f64,
    /// Fast mode: each vehicle's clock runs fast or slow by up to this many parts per million.
    #[arg(long, value_name = "PPM", default_value_t = 0.0)]
    max_clock_drift_ppm: f64,
    /// Sensor field of view, degrees around the direction of travel.
    #[arg(long, value_name = "DEG", default_value_t = 360.0)]
    fov_deg: f64,
    /// Probability that a sensor misses a visible road user in one frame.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    miss: f64,
    /// Expected false detections per sensor frame.
    #[arg(long, value_name = "N", default_value_t = 0.0)]
    false_positives: f64,
}

impl RunArgs {
    fn sensor(&self) -> anyhow::Result<sim::perception::SensorModel> {
        for (name, p) in [("--miss", self.miss), ("--link-loss", self.link_loss)] {
            if !(0.0..=1.0).contains(&p) {
                bail!("{name} must be between 0 and 1, not {p}");
            }
        }
        let fov_ok = (f64::MIN_POSITIVE..=360.0).contains(&self.fov_deg);
        if !fov_ok || !self.false_positives.is_finite() || self.false_positives < 0.0 {
            bail!("--fov-deg must be in (0, 360] and --false-positives at least 0");
        }
        Ok(sim::perception::SensorModel {
            fov_deg: self.fov_deg,
            miss: self.miss,
            false_positives: self.false_positives,
            ..Default::default()
        })
    }
}

fn scenario_of(args: &RunArgs) -> anyhow::Result<Scenario> {
    if let Some(share) = args.connected_share {
        if !(0.0..=1.0).contains(&share) {
            bail!("--connected-share must be between 0 and 1, not {share}");
        }
    }
    let mut scenario = match (&args.scenario, &args.sumo_fcd) {
        (Some(built_in), None) => {
            let s = built_in.scenario();
            match args.connected_share {
                Some(share) => s.with_connected_share(share, args.seed),
                None => s,
            }
        }
        (None, Some(fcd)) => {
            let mut opts = sim::sumo::ImportOptions::new(trace_name(fcd), args.seed);
            opts.connected_share = args.connected_share.unwrap_or(1.0);
            opts.start_s = args.sumo_start;
            if let Some(d) = args.duration {
                opts.end_s = args.sumo_start + d;
            }
            let (scenario, summary) = sim::sumo::import(fcd, &args.sumo_vtypes, &opts)
                .context("importing the SUMO trace")?;
            println!(
                "imported {}: {} vehicles and {} persons, {} records over {:.1} s",
                fcd.display(),
                summary.vehicles,
                summary.persons,
                summary.records,
                scenario.duration_s
            );
            if !summary.types_missing.is_empty() {
                println!(
                    "  types without a vType (SUMO's defaults used): {}",
                    summary.types_missing.join(", ")
                );
            }
            scenario
        }
        _ => bail!("give either a built-in SCENARIO or --sumo-fcd, not both"),
    };
    if let Some(d) = args.duration {
        scenario = scenario.truncated(d);
    }
    if args.copies > 1 {
        // Copies stay out of each other's sensor range by a wide margin.
        scenario = scenario.copies(args.copies, 200.0);
    }
    Ok(scenario)
}

/// `tls_cross_seed7` for `.../tls_cross_seed7/fcd.xml`, else the file's stem.
fn trace_name(fcd: &std::path::Path) -> String {
    let stem = fcd.file_stem().and_then(|s| s.to_str()).unwrap_or("trace");
    let parent = fcd
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|s| s.to_str());
    match parent {
        Some(dir) if stem == "fcd" => dir.to_string(),
        _ => stem.to_string(),
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let scenario = scenario_of(&args)?;
    let offset_us = (args.max_clock_offset_ms * 1000.0) as i64;
    if args.fast {
        let mut opts = sim::fast::FastOptions::new(args.seed);
        opts.out = Some(args.out.clone());
        opts.max_clock_offset_us = offset_us;
        opts.link.one_way_latency_us = (args.link_latency_ms * 1000.0).round() as i64;
        opts.link.jitter_us = (args.link_jitter_ms.max(0.0) * 1000.0).round() as i64;
        opts.link.loss = args.link_loss;
        opts.max_clock_drift_ppm = args.max_clock_drift_ppm.abs();
        opts.sensor = args.sensor()?;
        println!(
            "running {} in fast mode ({:.0} s of virtual time): {} connected vehicles",
            scenario.name,
            scenario.duration_s,
            scenario.n_connected()
        );
        let r = sim::fast::run_fast(&scenario, &opts).context("the fast run did not complete")?;
        // The console shows the measured edge processing time, which report.json leaves out.
        let mut shown = r.report.clone();
        shown.edge_processing_us.p50 = r.timing.edge_processing_us.p50;
        shown.edge_processing_us.p99 = r.timing.edge_processing_us.p99;
        println!("{}", shown.summary(&r.score));
        println!(
            "  {:.2} s of wall time: {:.0}x real time",
            r.timing.wall_s, r.timing.speedup
        );
        println!(
            "wrote {}, {} and {}",
            args.out.join("report.json").display(),
            args.out.join("alerts.ndjson").display(),
            args.out.join("timing.json").display()
        );
    } else {
        let mut opts = sim::live::LiveOptions::new(args.out.clone(), args.seed);
        opts.max_clock_offset_us = offset_us;
        opts.sensor = args.sensor()?;
        run_live(&scenario, &opts).await?;
    }
    Ok(())
}

/// Runs `scenario` live and prints what a person wants to see.
async fn run_live(scenario: &Scenario, opts: &sim::live::LiveOptions) -> anyhow::Result<()> {
    println!(
        "running {} in real time ({:.0} s): {} connected vehicles over zenoh/QUIC with mutual TLS",
        scenario.name,
        scenario.duration_s,
        scenario.n_connected()
    );
    let result = sim::live::run_live(scenario, opts)
        .await
        .with_context(|| format!("the live run of {} did not complete", scenario.name))?;
    println!("{}", result.report.summary(&result.score));
    println!(
        "wrote {} and {}",
        opts.out.join("report.json").display(),
        opts.out.join("alerts.ndjson").display()
    );
    Ok(())
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
            let mut opts = sim::live::LiveOptions::new(out, seed);
            opts.max_clock_offset_us = (max_clock_offset_ms * 1000.0) as i64;
            run_live(&sim::world::Scenario::demo(), &opts).await?;
            Ok(())
        }
        Command::Run(args) => run(args).await,
    }
}
