//! The `sim-train` command line: argument definitions and dispatch. Commands are thin:
//! they resolve the config, call the library, and print. Errors come back as
//! [`crate::Error`]; [`main`] prints one line and returns its exit code.
//!
//! The commands that train or run a checkpoint (`pipeline`, `train`, `export`,
//! `walk-forward`, `bench train`, `bench sweep`, `eval` of a checkpoint:
//! [`TorchCommands`]) need libtorch, which takes half a second and half a gigabyte to load.
//! Built with the `torch` feature the binary runs them itself (`sim-train-torch`, and a
//! plain `cargo build`'s `sim-train`). Built without it (the `sim-train` of
//! `scripts/run.sh`, which starts in milliseconds) it lists and parses them, and hands them
//! to `sim-train-torch` beside it (`src/cli/companion.rs`); without one they fail with
//! [`Error::NeedsTorch`] (exit 2).

mod backtest_cmd;
mod cache_cmd;
#[cfg(not(feature = "torch"))]
mod companion;
mod live_cmd;
mod other;
mod output;
mod scan_cmd;
#[cfg(feature = "torch")]
mod torch;
mod train_cmd;
mod walkforward_cmd;

use crate::adjust::AdjustMode;
use crate::bars::BarSize;
use crate::config::{JoinKind, Resolved};
use crate::error::{Error, Result};
use crate::ingest::SourceKind;
use crate::logging::{self, LogFormat};
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "sim-train", version, about = "GPU-first simulator and trainer for intraday trading agents", long_about = None)]
#[cfg_attr(
    not(feature = "torch"),
    command(
        after_help = "This is the lean build (no libtorch): pipeline, train, export, walk-forward, bench train, bench sweep and eval of a checkpoint need a build with default features."
    )
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// Config file layered over config/default.toml (a path, or a name in config/).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Override one config key, e.g. --set synth.seed=7 (repeatable; applied last).
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "pretty")]
    pub log_format: LogFormat,
    /// More logging (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only warnings and errors; no progress bars.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the main job on the embedded default: synthetic universe → day caches → summary.
    Pipeline(PipelineArgs),
    /// Generate a seeded synthetic universe (spec + ground truth) into a folder.
    Synth(SynthArgs),
    /// Build, list, inspect, export and verify day caches.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Align several symbols of one day on a common clock (columns prefixed by symbol).
    Align(AlignArgs),
    /// Throughput benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Check this host's GPU stack (libtorch, CUDA driver and device, NVRTC, wgpu), run
    /// the GPU conformance checks built into the binary on every backend that opens, and
    /// on a CUDA device benchmark the environments and the learner; one JSON report on
    /// stdout, progress on stderr. Exits 6 without a CUDA device, 1 when a check fails.
    Doctor(DoctorArgs),
    /// List trading sessions (holidays, early closes) between two dates.
    Calendar(CalendarArgs),
    /// Print the resolved configuration (defaults, --config, --set).
    Config,
    /// Run a target-position file or a baseline through the execution model; write
    /// report.json, equity.csv and trades.csv.
    Backtest(backtest_cmd::BacktestArgs),
    /// Train a PPO-LSTM agent (market or sanity environments) into a run dir, or resume one.
    Train(train_cmd::TrainArgs),
    /// Draw a run's training curves (SVG) from its metrics.jsonl.
    Plot(train_cmd::PlotArgs),
    /// Evaluate a trained policy (a checkpoint, or an exported bundle) on chosen days
    /// against baselines on the same days: reports and paired t-statistics of daily
    /// returns.
    Eval(train_cmd::EvalArgs),
    /// Export a checkpoint as a policy bundle (safetensors weights, manifest, config,
    /// content hash) that runs without libtorch.
    Export(train_cmd::ExportArgs),
    /// Policy bundles.
    #[command(subcommand)]
    Policy(live_cmd::PolicyCommand),
    /// Run a policy bundle live: a bar feed (a replay of cached days, or JSON bars on
    /// stdin or loopback TCP) through the policy, the risk manager and the paper broker,
    /// journaled; continues after a restart; metrics and commands on loopback.
    Live(live_cmd::LiveArgs),
    /// Scan cached days into an index of day metrics and reset points (days.parquet,
    /// resets.parquet); incremental.
    Scan(scan_cmd::ScanArgs),
    /// Query a scanner index.
    #[command(subcommand)]
    Index(scan_cmd::IndexCommand),
    /// Walk-forward sweep over dates, symbols, configs and seeds, out of sample: plan,
    /// run (sharded across machines), merge into tables, gates, diagnostics and an HTML
    /// report; `--out DIR` alone does all three here.
    WalkForward(walkforward_cmd::WalkForwardArgs),
}

/// The days a command runs on: symbols and a date range.
#[derive(Args, Debug, Clone)]
pub struct DaysArgs {
    /// Symbols, comma-separated (default: every cached symbol).
    #[arg(long, value_delimiter = ',')]
    pub symbols: Option<Vec<String>>,
    /// First day (inclusive), e.g. the first held-out day.
    #[arg(long, value_parser = parse_date)]
    pub from: Option<chrono::NaiveDate>,
    /// Last day (inclusive).
    #[arg(long, value_parser = parse_date)]
    pub to: Option<chrono::NaiveDate>,
}

impl DaysArgs {
    /// The selection (symbols upper-cased); an empty date range is a usage error.
    pub fn selection(&self) -> Result<crate::env::DaySelection> {
        if let (Some(f), Some(t)) = (self.from, self.to)
            && f > t
        {
            return Err(Error::Usage(format!(
                "--from {f} is after --to {t}: give a non-empty date range"
            )));
        }
        Ok(crate::env::DaySelection {
            symbols: self.symbols.as_ref().map(|s| {
                s.iter()
                    .map(|x| x.trim().to_ascii_uppercase())
                    .filter(|x| !x.is_empty())
                    .collect()
            }),
            from: self.from,
            to: self.to,
        })
    }
}

#[derive(Args, Debug)]
pub struct PipelineArgs {
    /// Output folder (synthetic spec, caches, reports).
    #[arg(long, default_value = "data/pipeline")]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct SynthArgs {
    /// Output folder for synth.json (the spec) and truth.json (the ground truth).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of symbols (default: synth.symbols).
    #[arg(long)]
    pub symbols: Option<usize>,
    /// Number of trading days (default: synth.days).
    #[arg(long)]
    pub days: Option<usize>,
    /// Bar size, 1s or 1m (default: synth.bar).
    #[arg(long)]
    pub bar: Option<BarSize>,
    /// Seed (default: synth.seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// First trading day, YYYY-MM-DD (default: synth.start).
    #[arg(long, value_parser = parse_date)]
    pub start: Option<NaiveDate>,
}

#[derive(Subcommand, Debug)]
pub enum CacheCommand {
    /// Ingest vendor files (or the synthetic generator) into day caches.
    Build(BuildArgs),
    /// List what a cache folder holds.
    Ls {
        #[arg(long)]
        cache: PathBuf,
        /// Print every entry as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one symbol-day: header, columns, first and last bars, feature ranges.
    Inspect {
        #[arg(long)]
        cache: PathBuf,
        #[arg(long)]
        symbol: String,
        #[arg(long, value_parser = parse_date)]
        date: NaiveDate,
        #[arg(long)]
        json: bool,
    },
    /// Write one symbol-day as CSV or Parquet: ts, OHLCV and every feature.
    Export {
        #[arg(long)]
        cache: PathBuf,
        #[arg(long)]
        symbol: String,
        #[arg(long, value_parser = parse_date)]
        date: NaiveDate,
        #[arg(long, value_enum)]
        format: ExportFormat,
        #[arg(long)]
        out: PathBuf,
    },
    /// Check every file of a cache folder (and its catalog); exit 4 if any is bad.
    Verify {
        #[arg(long)]
        cache: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Csv,
    Parquet,
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    #[arg(long, value_enum)]
    pub source: SourceKind,
    /// Input file or folder (for synth: a `sim-train synth` folder; omit to use [synth]).
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Cache folder to create or extend.
    #[arg(long)]
    pub cache: PathBuf,
    /// Only these symbols, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub symbols: Option<Vec<String>>,
    #[arg(long, value_parser = parse_date)]
    pub from: Option<NaiveDate>,
    #[arg(long, value_parser = parse_date)]
    pub to: Option<NaiveDate>,
    /// Bar size (default 1m; synth: the spec's).
    #[arg(long)]
    pub bar: Option<BarSize>,
    /// Corporate-action adjustment (default: ingest.adjust).
    #[arg(long, value_enum)]
    pub adjust: Option<AdjustMode>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct AlignArgs {
    #[arg(long)]
    pub cache: PathBuf,
    /// Symbols to align, comma-separated (at least two).
    #[arg(long, value_delimiter = ',', required = true)]
    pub symbols: Vec<String>,
    #[arg(long, value_parser = parse_date)]
    pub date: NaiveDate,
    /// Join kind (default: align.how).
    #[arg(long, value_enum)]
    pub how: Option<JoinKind>,
    /// Columns, comma-separated (default: align.columns).
    #[arg(long, value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
    /// Output file (.csv or .parquet).
    #[arg(long)]
    pub out: PathBuf,
    /// Print the per-symbol report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Cache build, column scan vs memcpy, and clock lookup throughput.
    Cache(BenchCacheArgs),
    /// Environment steps per second of a backend, random actions, observations written.
    Env(BenchEnvArgs),
    /// PPO-LSTM training steps per second end to end, split into env / inference / learn.
    Train(BenchTrainArgs),
    /// Scanner, index load, sampler draws and preloader waits.
    Scan(scan_cmd::BenchScanArgs),
    /// A whole walk-forward sweep over a synthetic universe: units per hour.
    Sweep(BenchSweepArgs),
    /// Decision latency of the live loop over a replay, one core: p50 / p99 per decision
    /// and per bar of every symbol.
    Live(BenchLiveArgs),
}

#[derive(Args, Debug)]
pub struct BenchLiveArgs {
    /// Synthetic symbols.
    #[arg(long, default_value_t = 1)]
    pub symbols: usize,
    /// Trading days.
    #[arg(long, default_value_t = 1)]
    pub days: usize,
    #[arg(long, default_value = "1m")]
    pub bar: BarSize,
    /// fsync the journal once per bar (as `live` does by default).
    #[arg(long)]
    pub fsync: bool,
    /// Feed the bars as JSON lines through the stream path (parsing and features
    /// computed per bar), as `--feed stdin` does, instead of replaying the cache.
    #[arg(long)]
    pub stream: bool,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct BenchSweepArgs {
    /// Synthetic symbols.
    #[arg(long, default_value_t = 4)]
    pub symbols: usize,
    /// Trading days (10 train + 1 purge + 5 test per fold, folds 6 days apart).
    #[arg(long, default_value_t = 40)]
    pub days: usize,
    #[arg(long, default_value = "1m")]
    pub bar: BarSize,
    /// Seeds per fold.
    #[arg(long, default_value_t = 2)]
    pub seeds: usize,
    /// Environment steps each unit trains for.
    #[arg(long, default_value_t = 65536)]
    pub unit_steps: u64,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct BenchTrainArgs {
    /// Device of the policy and learner.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: crate::learn::DeviceChoice,
    /// Environment backend (cuda with --device cuda: zero-copy, on one GPU).
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: crate::env::Backend,
    /// Number of environments.
    #[arg(long, default_value_t = 1024)]
    pub envs: usize,
    /// Rollout length T.
    #[arg(long, default_value_t = 64)]
    pub steps: usize,
    /// Updates timed (after one warm-up update).
    #[arg(long, default_value_t = 3)]
    pub updates: usize,
    /// Cache to train over (default: a synthetic one of bench.symbols × bench.days).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    #[command(flatten)]
    pub universe: UniverseArgs,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// Environments of each `bench env --backend cuda` run (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [65_536usize, 262_144])]
    pub envs: Vec<usize>,
    /// Batch steps of each `bench env` run.
    #[arg(long, default_value_t = 1_000)]
    pub steps: usize,
    /// Environments of each `bench train --device cuda --backend cuda` run
    /// (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [4_096usize, 65_536])]
    pub train_envs: Vec<usize>,
    /// Environments of each conformance case.
    #[arg(long, default_value_t = 515)]
    pub conformance_envs: usize,
    /// Steps of each conformance case.
    #[arg(long, default_value_t = 1_000)]
    pub conformance_steps: usize,
}

#[derive(Args, Debug)]
pub struct BenchEnvArgs {
    /// Environment backend.
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: crate::env::Backend,
    /// Number of environments stepped together.
    #[arg(long, default_value_t = 4096)]
    pub envs: usize,
    /// Batch steps timed.
    #[arg(long, default_value_t = 2000)]
    pub steps: usize,
    /// Feature columns in each observation (the first K of feature set v2; default:
    /// env.features).
    #[arg(long)]
    pub obs_features: Option<usize>,
    /// Cache to step over (default: a synthetic one of bench.symbols × bench.days).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    #[command(flatten)]
    pub universe: UniverseArgs,
    /// Instruction set of the CPU step: baseline | avx2 | avx512 (default: the widest
    /// this CPU runs; every level computes the same bits).
    #[arg(long)]
    pub simd: Option<String>,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// The synthetic universe a benchmark builds (`bench cache`, `bench scan`, and `bench
/// env` / `bench train` when given no `--cache`).
#[derive(Args, Debug, Clone, Copy)]
pub struct UniverseArgs {
    /// Synthetic symbols (default: bench.symbols).
    #[arg(long)]
    pub symbols: Option<usize>,
    /// Trading days per symbol (default: bench.days).
    #[arg(long)]
    pub days: Option<usize>,
    /// Bar size (default: bench.bar).
    #[arg(long)]
    pub bar: Option<BarSize>,
}

impl UniverseArgs {
    /// (symbols, days, bar): these, else `[bench]`'s.
    pub fn sizes(&self, b: &crate::config::BenchConfig) -> (usize, usize, BarSize) {
        (
            self.symbols.unwrap_or(b.symbols),
            self.days.unwrap_or(b.days),
            self.bar.unwrap_or(b.bar),
        )
    }

    /// `resolved` with these sizes in `[bench]`.
    pub fn apply(&self, resolved: &Resolved) -> Resolved {
        let mut r = resolved.clone();
        let b = &mut r.config.bench;
        (b.symbols, b.days, b.bar) = self.sizes(b);
        r
    }
}

#[derive(Args, Debug)]
pub struct BenchCacheArgs {
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub universe: UniverseArgs,
    /// Work folder (default: a temporary folder, removed afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct CalendarArgs {
    #[arg(long, value_parser = parse_date)]
    pub from: NaiveDate,
    #[arg(long, value_parser = parse_date)]
    pub to: NaiveDate,
    #[arg(long)]
    pub json: bool,
}

fn parse_date(s: &str) -> std::result::Result<NaiveDate, String> {
    crate::bars::parse_date(s)
}

/// The commands that run libtorch (they train, or load a checkpoint), as a binary runs
/// them: in process when it links libtorch ([`torch::InProcess`], the `torch` feature),
/// refused otherwise ([`Lean`]). [`run`] dispatches every command the same way in every
/// build and calls these through the trait, so the feature gate sits in one place.
///
/// The `sim-train` that `scripts/build.sh` builds links no libtorch (it is built without
/// the `torch` feature), so that every other command starts in milliseconds; [`main`]
/// hands these commands to `sim-train-torch`, the same front end built with the feature,
/// before doing anything else (see `src/cli/companion.rs`), so [`Lean`]'s refusals are only met
/// where that hand-over is bypassed.
pub trait TorchCommands {
    fn pipeline(&self, _: &PipelineArgs, _: &Resolved, _progress: bool) -> Result<i32> {
        needs_torch("`sim-train pipeline`")
    }
    fn train(&self, _: &train_cmd::TrainArgs, _: &GlobalArgs, _progress: bool) -> Result<i32> {
        needs_torch("`sim-train train`")
    }
    fn eval_checkpoint(&self, _: &train_cmd::EvalArgs) -> Result<i32> {
        needs_torch(
            "`sim-train eval` of a checkpoint (--run-dir, --checkpoint; an exported bundle, --policy BUNDLE, runs without it)",
        )
    }
    fn export(&self, _: &train_cmd::ExportArgs) -> Result<i32> {
        needs_torch("`sim-train export`")
    }
    fn walk_forward(
        &self,
        _: &walkforward_cmd::WalkForwardArgs,
        _: &GlobalArgs,
        _: &Resolved,
        _progress: bool,
    ) -> Result<i32> {
        needs_torch("`sim-train walk-forward`")
    }
    fn bench_train(&self, _: &BenchTrainArgs, _: &Resolved) -> Result<i32> {
        needs_torch("`sim-train bench train`")
    }
    fn bench_sweep(&self, _: &BenchSweepArgs, _: &Resolved) -> Result<i32> {
        needs_torch("`sim-train bench sweep`")
    }
    fn doctor(&self, _: &DoctorArgs, _: &Resolved) -> Result<i32> {
        needs_torch("`sim-train doctor`")
    }
}

/// A binary without libtorch: every command of [`TorchCommands`] is refused.
pub struct Lean;

impl TorchCommands for Lean {}

fn needs_torch(what: &str) -> Result<i32> {
    Err(Error::NeedsTorch(format!(
        "{what} needs libtorch: this binary was built without the torch feature; build it with default features (cargo build --release)"
    )))
}

impl Command {
    /// The command's words, e.g. "bench train".
    pub fn name(&self) -> &'static str {
        match self {
            Command::Pipeline(_) => "pipeline",
            Command::Synth(_) => "synth",
            Command::Cache(_) => "cache",
            Command::Align(_) => "align",
            Command::Bench(b) => match b {
                BenchCommand::Cache(_) => "bench cache",
                BenchCommand::Env(_) => "bench env",
                BenchCommand::Train(_) => "bench train",
                BenchCommand::Scan(_) => "bench scan",
                BenchCommand::Sweep(_) => "bench sweep",
                BenchCommand::Live(_) => "bench live",
            },
            Command::Doctor(_) => "doctor",
            Command::Calendar(_) => "calendar",
            Command::Config => "config",
            Command::Backtest(_) => "backtest",
            Command::Train(_) => "train",
            Command::Plot(_) => "plot",
            Command::Eval(_) => "eval",
            Command::Export(_) => "export",
            Command::Policy(_) => "policy",
            Command::Live(_) => "live",
            Command::Scan(_) => "scan",
            Command::Index(_) => "index",
            Command::WalkForward(_) => "walk-forward",
        }
    }

    /// Whether the command runs libtorch: the ones [`TorchCommands`] lists.
    pub fn needs_torch(&self) -> bool {
        match self {
            Command::Pipeline(_)
            | Command::Train(_)
            | Command::Export(_)
            | Command::WalkForward(_)
            | Command::Doctor(_)
            | Command::Bench(BenchCommand::Train(_) | BenchCommand::Sweep(_)) => true,
            Command::Eval(a) => a.policy.is_none(),
            _ => false,
        }
    }
}

/// Sets up the process before anything else runs; call it first in `main`.
///
/// - A CLI whose output is piped into `head` ends quietly when the pipe closes, as Unix
///   tools do, instead of panicking on the failed write (Rust ignores SIGPIPE).
/// - A binary with libtorch clears the hand-over marker (`companion`'s
///   `SIM_TRAIN_HANDED_OVER`).
/// - Without a display server, Mesa's Vulkan device-selection layer (which only picks the
///   GPU a display runs on) tries to reach one when wgpu lists adapters, and libwayland
///   prints `error: XDG_RUNTIME_DIR is invalid or not set` on stderr. The layer's own
///   switch, `NODEVICE_SELECT=1`, turns it off when neither `WAYLAND_DISPLAY` nor
///   `DISPLAY` is set and the user has not set it.
///
/// # Safety
/// Must be called while the process has a single thread (it changes the signal
/// disposition and the environment).
pub unsafe fn init_process() {
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE has no memory-safety
    // preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // A binary with libtorch runs what it is handed: the marker stops loops between
    // binaries without it, and must not reach the processes this one starts.
    #[cfg(feature = "torch")]
    // SAFETY: the caller guarantees no other thread exists to read the environment.
    unsafe {
        std::env::remove_var("SIM_TRAIN_HANDED_OVER")
    };
    let unset = |k: &str| std::env::var_os(k).is_none_or(|v| v.is_empty());
    if unset("NODEVICE_SELECT") && unset("WAYLAND_DISPLAY") && unset("DISPLAY") {
        // SAFETY: the caller guarantees no other thread exists to read the environment.
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
}

/// Parses the command line and runs the command; returns the process exit code. Built
/// without the `torch` feature, a command that runs libtorch is handed to
/// `sim-train-torch` instead (`companion::exec`).
pub fn main() -> i32 {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    #[cfg(feature = "torch")]
    return start(cli, &torch::InProcess);
    #[cfg(not(feature = "torch"))]
    {
        if cli.command.needs_torch() {
            // Only returns when the companion cannot be started.
            let e = companion::exec(&cli.command);
            eprintln!("error: {e}");
            return e.exit_code();
        }
        start(cli, &Lean)
    }
}

/// The parsed command line, or the exit code after clap printed help, the version (0) or
/// why the arguments are wrong (2).
fn parse() -> std::result::Result<Cli, i32> {
    Cli::try_parse().map_err(|e| {
        let _ = e.print();
        if e.use_stderr() { 2 } else { 0 }
    })
}

fn start(cli: Cli, torch: &dyn TorchCommands) -> i32 {
    let verbosity = if cli.global.quiet {
        -1
    } else {
        cli.global.verbose as i8
    };
    logging::init(cli.global.log_format, verbosity);
    match run(cli, torch) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

fn run(cli: Cli, torch: &dyn TorchCommands) -> Result<i32> {
    let resolved = crate::config::load(cli.global.config.as_deref(), &cli.global.set)?;
    tracing::debug!(layers = ?resolved.layers, "config resolved:\n{}", resolved.to_toml());
    let progress = !cli.global.quiet;
    let global = &cli.global;
    match cli.command {
        Command::Pipeline(a) => torch.pipeline(&a, &resolved, progress),
        Command::Synth(a) => other::synth(&a, &resolved),
        Command::Cache(c) => cache_cmd::run(c, &resolved, progress),
        Command::Align(a) => other::align_cmd(&a, &resolved),
        Command::Bench(BenchCommand::Cache(a)) => other::bench_cache(&a, &resolved),
        Command::Bench(BenchCommand::Env(a)) => other::bench_env(&a, &resolved),
        Command::Bench(BenchCommand::Train(a)) => torch.bench_train(&a, &resolved),
        Command::Doctor(a) => torch.doctor(&a, &resolved),
        Command::Calendar(a) => other::calendar(&a, &resolved),
        Command::Backtest(a) => backtest_cmd::run(&a, &resolved),
        Command::Train(a) => torch.train(&a, global, progress),
        Command::Plot(a) => train_cmd::plot(&a, &resolved),
        Command::Eval(a) => match &a.policy {
            Some(bundle) => train_cmd::eval_bundle(&a, bundle),
            None => torch.eval_checkpoint(&a),
        },
        Command::Export(a) => torch.export(&a),
        Command::Policy(c) => live_cmd::policy(&c),
        Command::Live(a) => live_cmd::live(&a, &resolved),
        Command::Scan(a) => scan_cmd::scan(&a, &resolved, progress),
        Command::Index(c) => scan_cmd::index(c),
        Command::WalkForward(a) => torch.walk_forward(&a, global, &resolved, progress),
        Command::Bench(BenchCommand::Scan(a)) => scan_cmd::bench_scan(&a, &resolved),
        Command::Bench(BenchCommand::Sweep(a)) => torch.bench_sweep(&a, &resolved),
        Command::Bench(BenchCommand::Live(a)) => other::bench_live(&a, &resolved),
        Command::Config => {
            print!("{}", resolved.to_toml());
            Ok(0)
        }
    }
}
