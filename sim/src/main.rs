use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use sim::scenario_file::{Loaded, Overrides, BUILT_IN};
use std::path::{Path, PathBuf};

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
    /// Runs a scenario (a built-in one by name, or a TOML file) or a SUMO trace, in fast mode
    /// (agent and edge cores in virtual time, deterministic) or live mode (real agents and
    /// edge over zenoh/QUIC, real time). Writes report.json, alerts.ndjson and the pictures.
    Run(Box<RunArgs>),
    /// Lists the built-in scenarios.
    Scenarios,
    /// Runs every built-in scenario in fast mode, each into its own directory, and writes
    /// summary.json and the recall and false-alarm chart (summary.png, summary.svg).
    Suite {
        #[arg(long, default_value = "out/suite")]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Args)]
#[command(group = clap::ArgGroup::new("mode").required(true).args(["fast", "live"]))]
#[command(group = clap::ArgGroup::new("source").required(true).args(["scenario", "sumo_fcd"]))]
struct RunArgs {
    /// A built-in scenario's name (`sim scenarios` lists them) or a scenario TOML file.
    #[arg(value_name = "SCENARIO")]
    scenario: Option<String>,
    /// Random vehicles entering during the run, instead of the scenario's `traffic.vehicles`.
    #[arg(long, value_name = "N")]
    vehicles: Option<usize>,
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
    /// every vehicle of a SUMO trace; a scenario's own choice (for a layout with random
    /// traffic it replaces `traffic.connected_share`; scripted conflicts keep theirs).
    #[arg(long, value_name = "X")]
    connected_share: Option<f64>,
    /// Agent and edge cores in-process in virtual time; same seed, same report.
    #[arg(long)]
    fast: bool,
    /// Real agents and a real edge over zenoh/QUIC with mutual TLS, in real time: an edge
    /// started for the run on loopback, or the one given by --edge.
    #[arg(long)]
    live: bool,
    /// Live mode: run against the edge-node listening at this zenoh endpoint (e.g.
    /// quic/127.0.0.1:7447) instead of starting one. Its counters are differenced over the
    /// run; its processing times cover its lifetime.
    #[arg(long, value_name = "ENDPOINT", conflicts_with = "fast")]
    edge: Option<String>,
    /// The --edge-id of the edge given by --edge [default: edge, as edge-node's].
    #[arg(long, value_name = "ID", requires = "edge", conflicts_with = "fast")]
    edge_id: Option<String>,
    /// The data directory of the edge given by --edge (its --data-dir), whose CA signs the
    /// simulator's certificates, made there [default: v2e-data, as edge-node's].
    #[arg(long, value_name = "DIR", requires = "edge", conflicts_with = "fast")]
    pki: Option<PathBuf>,
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

/// A built-in scenario by name, or a scenario file by path.
fn load_scenario(name: &str, seed: u64, overrides: Overrides) -> anyhow::Result<Loaded> {
    if BUILT_IN.iter().any(|(n, _)| *n == name) {
        return Ok(sim::scenario_file::built_in(name, seed, overrides)?);
    }
    let path = Path::new(name);
    if path.extension().is_some_and(|e| e == "toml") || path.exists() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the scenario file {}", path.display()))?;
        return Ok(sim::scenario_file::load(name, &text, seed, overrides)?);
    }
    Ok(sim::scenario_file::built_in(name, seed, overrides)?)
}

fn scenario_of(args: &RunArgs) -> anyhow::Result<Loaded> {
    if let Some(share) = args.connected_share {
        if !(0.0..=1.0).contains(&share) {
            bail!("--connected-share must be between 0 and 1, not {share}");
        }
    }
    let mut loaded = match (&args.scenario, &args.sumo_fcd) {
        (Some(name), None) => load_scenario(
            name,
            args.seed,
            Overrides {
                vehicles: args.vehicles,
                connected_share: args.connected_share,
            },
        )?,
        (None, Some(fcd)) => {
            if args.vehicles.is_some() {
                bail!("--vehicles scales generated traffic; a SUMO trace has its own");
            }
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
            Loaded {
                scenario,
                description: String::new(),
                scripted: Vec::new(),
                notes: Vec::new(),
            }
        }
        _ => bail!("give either a SCENARIO or --sumo-fcd, not both"),
    };
    for note in &loaded.notes {
        println!("  note: {note}");
    }
    if let Some(d) = args.duration {
        loaded.scenario = loaded.scenario.truncated(d);
    }
    if args.copies > 1 {
        // Copies stay out of each other's sensor range by a wide margin.
        loaded.scenario = loaded.scenario.copies(args.copies, 200.0);
    }
    Ok(loaded)
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

/// The scenario's true conflicts, and the one the map snapshot shows (drawn at its moment).
fn snapshot_conflict(
    loaded: &Loaded,
) -> (
    Vec<sim::score::TrueConflict>,
    Option<sim::score::TrueConflict>,
) {
    let conflicts = sim::score::true_conflicts(&loaded.scenario);
    let shown = sim::pictures::conflict_to_show(&conflicts, &loaded.scripted).cloned();
    (conflicts, shown)
}

/// What a run left for the pictures.
struct RunOutcome {
    score: sim::score::Score,
    alerts: Vec<sim::score::AlertEvent>,
    snapshot_tracks: Option<Vec<sim::report::TrackBox>>,
}

impl From<sim::fast::FastResult> for RunOutcome {
    fn from(r: sim::fast::FastResult) -> Self {
        Self {
            score: r.score,
            alerts: r.alerts,
            snapshot_tracks: r.snapshot_tracks,
        }
    }
}

fn write_pictures(
    out: &Path,
    loaded: &Loaded,
    shown: Option<&sim::score::TrueConflict>,
    outcome: &RunOutcome,
) -> anyhow::Result<()> {
    let snapshot = shown.zip(outcome.snapshot_tracks.as_deref());
    sim::pictures::write(
        out,
        &loaded.scenario,
        &outcome.score,
        &outcome.alerts,
        snapshot,
    )
    .context("drawing the pictures")?;
    println!(
        "pictures: latency_cdf, lead_time{} (.png and .svg) in {}",
        if snapshot.is_some() {
            ", map_snapshot"
        } else {
            ""
        },
        out.display()
    );
    Ok(())
}

fn fast_options(args: &RunArgs) -> anyhow::Result<sim::fast::FastOptions> {
    let mut opts = sim::fast::FastOptions::new(args.seed);
    opts.out = Some(args.out.clone());
    opts.max_clock_offset_us = (args.max_clock_offset_ms * 1000.0) as i64;
    opts.link.one_way_latency_us = (args.link_latency_ms * 1000.0).round() as i64;
    opts.link.jitter_us = (args.link_jitter_ms.max(0.0) * 1000.0).round() as i64;
    opts.link.loss = args.link_loss;
    opts.max_clock_drift_ppm = args.max_clock_drift_ppm.abs();
    opts.sensor = args.sensor()?;
    Ok(opts)
}

/// Runs `loaded` in fast mode and prints what a person wants to see.
fn run_fast(
    loaded: &Loaded,
    mut opts: sim::fast::FastOptions,
) -> anyhow::Result<(sim::fast::FastResult, Option<sim::score::TrueConflict>)> {
    let scenario = &loaded.scenario;
    let (conflicts, shown) = snapshot_conflict(loaded);
    opts.snapshot_at_s = shown.as_ref().map(|c| c.moment_s);
    opts.true_conflicts = Some(conflicts);
    opts.progress = true;
    println!(
        "running {} in fast mode ({:.0} s of virtual time): {} connected vehicles",
        scenario.name,
        scenario.duration_s,
        scenario.n_connected()
    );
    let r = sim::fast::run_fast(scenario, &opts).context("the fast run did not complete")?;
    // The console shows the measured edge processing time, which report.json leaves out.
    let mut shown_report = r.report.clone();
    shown_report.edge_processing_us.p50 = r.timing.edge_processing_us.p50;
    shown_report.edge_processing_us.p99 = r.timing.edge_processing_us.p99;
    println!("{}", shown_report.summary(&r.score));
    println!(
        "  {:.2} s of wall time: {:.0}x real time",
        r.timing.wall_s, r.timing.speedup
    );
    Ok((r, shown))
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let loaded = scenario_of(&args)?;
    if args.fast {
        let (r, shown) = run_fast(&loaded, fast_options(&args)?)?;
        println!(
            "wrote {}, {} and {}",
            args.out.join("report.json").display(),
            args.out.join("alerts.ndjson").display(),
            args.out.join("timing.json").display()
        );
        let outcome = RunOutcome::from(r);
        write_pictures(&args.out, &loaded, shown.as_ref(), &outcome)?;
    } else {
        let mut opts = sim::live::LiveOptions::new(args.out.clone(), args.seed);
        opts.max_clock_offset_us = (args.max_clock_offset_ms * 1000.0) as i64;
        opts.sensor = args.sensor()?;
        if let Some(endpoint) = &args.edge {
            if !endpoint.contains('/') {
                bail!("--edge {endpoint:?} is not a zenoh endpoint: write it as quic/HOST:PORT");
            }
            opts.edge = sim::live::EdgeTarget::External {
                endpoint: endpoint.clone(),
                data_dir: args.pki.clone().unwrap_or_else(|| "v2e-data".into()),
            };
            opts.edge_id = args.edge_id.clone().unwrap_or_else(|| "edge".into());
        }
        run_live(&loaded, opts).await?;
    }
    Ok(())
}

/// Runs `loaded` live and prints what a person wants to see.
async fn run_live(loaded: &Loaded, mut opts: sim::live::LiveOptions) -> anyhow::Result<()> {
    let scenario = &loaded.scenario;
    let (_, shown) = snapshot_conflict(loaded);
    opts.snapshot_at_s = shown.as_ref().map(|c| c.moment_s);
    let against = match &opts.edge {
        sim::live::EdgeTarget::InProcess => String::new(),
        sim::live::EdgeTarget::External { endpoint, .. } => {
            format!(", against the edge {} at {endpoint}", opts.edge_id)
        }
    };
    println!(
        "running {} in real time ({:.0} s): {} connected vehicles over zenoh/QUIC with mutual TLS{against}",
        scenario.name,
        scenario.duration_s,
        scenario.n_connected()
    );
    let mut progress = sim::progress::Progress::new(scenario.name.clone(), scenario.duration_s);
    let started = std::time::Instant::now();
    let run = sim::live::run_live(scenario, &opts);
    tokio::pin!(run);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
    let result = loop {
        tokio::select! {
            r = &mut run => break r,
            _ = tick.tick() => progress.update(started.elapsed().as_secs_f64().min(scenario.duration_s)),
        }
    };
    progress.finish();
    let result =
        result.with_context(|| format!("the live run of {} did not complete", scenario.name))?;
    println!("{}", result.report.summary(&result.score));
    println!(
        "wrote {} and {}",
        opts.out.join("report.json").display(),
        opts.out.join("alerts.ndjson").display()
    );
    let outcome = RunOutcome {
        score: result.score,
        alerts: result.alerts,
        snapshot_tracks: result.snapshot_tracks,
    };
    write_pictures(&opts.out, loaded, shown.as_ref(), &outcome)
}

/// Every built-in scenario in fast mode, then the summary table and chart.
fn suite(out: &Path, seed: u64) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for (name, _) in BUILT_IN {
        let loaded = sim::scenario_file::built_in(name, seed, Overrides::default())?;
        let dir = out.join(name);
        let mut opts = sim::fast::FastOptions::new(seed);
        opts.out = Some(dir.clone());
        let (r, shown) = run_fast(&loaded, opts)?;
        rows.push(sim::plot::SummaryRow {
            scenario: name.to_string(),
            recall: r.report.recall,
            true_conflicts: r.report.true_conflicts,
            false_alarms_per_vehicle_hour: r.report.false_alarms_per_vehicle_hour,
        });
        write_pictures(&dir, &loaded, shown.as_ref(), &RunOutcome::from(r))?;
        println!();
    }
    std::fs::create_dir_all(out)?;
    std::fs::write(
        out.join("summary.json"),
        serde_json::to_string_pretty(&rows)? + "\n",
    )?;
    sim::plot::scenario_summary(out, &rows).context("drawing the summary")?;
    println!(
        "{:<28} {:>7} {:>9} {:>12}",
        "scenario", "recall", "conflicts", "FA/veh-hour"
    );
    for r in &rows {
        println!(
            "{:<28} {:>7.2} {:>9} {:>12.1}",
            r.scenario, r.recall, r.true_conflicts, r.false_alarms_per_vehicle_hour
        );
    }
    println!(
        "wrote summary.json and summary.png/.svg in {}",
        out.display()
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let command = Cli::parse().command;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let result = runtime.block_on(run_command(command));
    // A zenoh session still opening to an unreachable edge (zenoh gives up only after about
    // 10 s, inside a blocking call) must not hold up the error message and the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    result
}

async fn run_command(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Demo {
            out,
            seed,
            max_clock_offset_ms,
        } => {
            let mut opts = sim::live::LiveOptions::new(out, seed);
            opts.max_clock_offset_us = (max_clock_offset_ms * 1000.0) as i64;
            let loaded = sim::scenario_file::built_in("demo", seed, Overrides::default())?;
            run_live(&loaded, opts).await
        }
        Command::Run(args) => run(*args).await,
        Command::Scenarios => {
            for (name, _) in BUILT_IN {
                let loaded = sim::scenario_file::built_in(name, 1, Overrides::default())?;
                println!("{name:<28} {}", loaded.description);
            }
            Ok(())
        }
        Command::Suite { out, seed } => suite(&out, seed),
    }
}
