//! The `sim-train` command line: argument definitions and dispatch. Commands are thin:
//! they resolve the config, call the library, and print. Errors come back as
//! [`crate::Error`]; [`main`] prints one line and returns its exit code.
//!
//! Built without the `torch` feature, the commands that train or run a checkpoint
//! (`pipeline`, `train`, `export`, `walk-forward`, `bench train`, `bench sweep`, `eval` of
//! a checkpoint) are still listed and parsed, and fail with [`Error::NeedsTorch`] (exit 2).

mod backtest_cmd;
mod cache_cmd;
mod live_cmd;
mod other;
mod scan_cmd;
mod train_cmd;
mod walkforward_cmd;

use crate::adjust::AdjustMode;
use crate::bars::BarSize;
use crate::config::JoinKind;
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
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
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
    /// Feature columns in each observation (the first K of feature set v1; default:
    /// env.features).
    #[arg(long)]
    pub obs_features: Option<usize>,
    /// Cache to step over (default: a synthetic one of bench.symbols × bench.days).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Instruction set of the CPU step: baseline | avx2 | avx512 (default: the widest
    /// this CPU runs; every level computes the same bits).
    #[arg(long)]
    pub simd: Option<String>,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct BenchCacheArgs {
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Synthetic symbols (default: bench.symbols).
    #[arg(long)]
    pub symbols: Option<usize>,
    /// Trading days (default: bench.days).
    #[arg(long)]
    pub days: Option<usize>,
    /// Bar size (default: bench.bar).
    #[arg(long)]
    pub bar: Option<BarSize>,
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

/// Parses the command line, runs the command and returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let verbosity = if cli.global.quiet {
        -1
    } else {
        cli.global.verbose as i8
    };
    logging::init(cli.global.log_format, verbosity);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    let resolved = crate::config::load(cli.global.config.as_deref(), &cli.global.set)?;
    tracing::debug!(layers = ?resolved.layers, "config resolved:\n{}", resolved.to_toml());
    let progress = !cli.global.quiet;
    match cli.command {
        #[cfg(feature = "torch")]
        Command::Pipeline(a) => other::pipeline(&a, &resolved, progress),
        #[cfg(not(feature = "torch"))]
        Command::Pipeline(_) => needs_torch("pipeline"),
        Command::Synth(a) => other::synth(&a, &resolved),
        Command::Cache(c) => cache_cmd::run(c, &resolved, progress),
        Command::Align(a) => other::align_cmd(&a, &resolved),
        Command::Bench(BenchCommand::Cache(a)) => other::bench_cache(&a, &resolved),
        Command::Bench(BenchCommand::Env(a)) => other::bench_env(&a, &resolved),
        #[cfg(feature = "torch")]
        Command::Bench(BenchCommand::Train(a)) => other::bench_train(&a, &resolved),
        #[cfg(not(feature = "torch"))]
        Command::Bench(BenchCommand::Train(_)) => needs_torch("bench train"),
        Command::Calendar(a) => other::calendar(&a, &resolved),
        Command::Backtest(a) => backtest_cmd::run(&a, &resolved),
        #[cfg(feature = "torch")]
        Command::Train(a) => train_cmd::run(&a, &cli.global, progress),
        #[cfg(not(feature = "torch"))]
        Command::Train(_) => needs_torch("train"),
        Command::Plot(a) => train_cmd::plot(&a, &resolved),
        Command::Eval(a) => train_cmd::eval(&a),
        #[cfg(feature = "torch")]
        Command::Export(a) => train_cmd::export(&a),
        #[cfg(not(feature = "torch"))]
        Command::Export(_) => needs_torch("export"),
        Command::Policy(c) => live_cmd::policy(&c),
        Command::Live(a) => live_cmd::live(&a, &resolved),
        Command::Scan(a) => scan_cmd::scan(&a, &resolved, progress),
        Command::Index(c) => scan_cmd::index(c),
        #[cfg(feature = "torch")]
        Command::WalkForward(a) => walkforward_cmd::run(&a, &cli.global, &resolved, progress),
        #[cfg(not(feature = "torch"))]
        Command::WalkForward(_) => needs_torch("walk-forward"),
        Command::Bench(BenchCommand::Scan(a)) => scan_cmd::bench_scan(&a, &resolved),
        #[cfg(feature = "torch")]
        Command::Bench(BenchCommand::Sweep(a)) => other::bench_sweep(&a, &resolved),
        #[cfg(not(feature = "torch"))]
        Command::Bench(BenchCommand::Sweep(_)) => needs_torch("bench sweep"),
        Command::Bench(BenchCommand::Live(a)) => other::bench_live(&a, &resolved),
        Command::Config => {
            print!("{}", resolved.to_toml());
            Ok(0)
        }
    }
}

/// A command that trains or runs a checkpoint, in a binary built without the `torch`
/// feature: it stays listed (its arguments parse) and fails with one line saying so.
#[cfg(not(feature = "torch"))]
fn needs_torch(command: &str) -> Result<i32> {
    Err(Error::NeedsTorch(format!("`sim-train {command}`")))
}
