//! `sim-train policy` and `sim-train live`: the lean side, a bundle and the live loop
//! (no libtorch).

use super::DaysArgs;
use crate::config::Resolved;
use crate::error::{Error, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Verify a bundle (content hash) and print its manifest.
    Inspect {
        /// The bundle folder.
        bundle: PathBuf,
        /// Print the manifest as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn policy(c: &PolicyCommand) -> Result<i32> {
    match c {
        PolicyCommand::Inspect { bundle, json } => {
            let b = crate::bundle::Bundle::open(bundle)?;
            if *json {
                return super::output::json(&b.manifest);
            }
            print!("{}", b.describe());
            Ok(0)
        }
    }
}

#[derive(Args, Debug)]
pub struct LiveArgs {
    /// The policy bundle (`sim-train export`).
    #[arg(long, value_name = "BUNDLE")]
    pub policy: PathBuf,
    /// The bar feed: `replay:CACHE_DIR` (cached days, bar by bar in time order),
    /// `replay:KIND:PATH` (a vendor's files, KIND = lean, dbn, polygon, csv, parquet or
    /// synth, read and validated as `cache build` reads them, fed as a stream), `stdin`
    /// (line-delimited JSON bars) or `tcp:127.0.0.1:PORT` (the same lines from producers
    /// connecting to a loopback port; port 0 picks one and prints it).
    #[arg(long)]
    pub feed: String,
    /// The broker: `paper` (the simulator's execution model).
    #[arg(long, default_value = "paper")]
    pub broker: String,
    /// The journal (created, or continued after a restart).
    #[arg(long)]
    pub journal: PathBuf,
    /// The symbols traded (a stream feed needs them) and, for a replay, the days.
    #[command(flatten)]
    pub days: DaysArgs,
    /// Bar size of a stream's (or a vendor replay's) bars.
    #[arg(long, default_value = "1m")]
    pub bar: crate::bars::BarSize,
    /// Warm a stream's features up on this (unadjusted) cache's days of each symbol before
    /// its first streamed day, as the cache builder warmed them.
    #[arg(long, value_name = "CACHE")]
    pub warmup: Option<PathBuf>,
    /// Replay at this many times real time within a day (default: as fast as possible).
    #[arg(long, value_name = "K")]
    pub pace: Option<f64>,
    /// The kill switch as a file: when it appears, flatten everything and halt.
    #[arg(long)]
    pub kill_file: Option<PathBuf>,
    /// Serve metrics (`GET /metrics`, Prometheus), state (`GET /state`) and commands
    /// (`POST /kill`, `/reduce`, `/resume`) on this loopback address, e.g.
    /// 127.0.0.1:9184.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Flush journal records to the OS without the group fsync (faster; survives a
    /// process crash, not a power loss).
    #[arg(long)]
    pub no_fsync: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn live(a: &LiveArgs, resolved: &Resolved) -> Result<i32> {
    use crate::live::{control, replay, stream};
    if a.broker != "paper" {
        return Err(Error::Usage(format!(
            "--broker {}: the brokers are paper (the simulator's execution model)",
            a.broker
        )));
    }
    if let Some(k) = a.pace
        && !(k.is_finite() && k > 0.0)
    {
        return Err(Error::Usage(format!(
            "--pace {k}: give a positive speed-up (1 = real time, 60 = a minute a second)"
        )));
    }
    let controls = control::Controls::new(a.kill_file.clone(), true);
    if let Some(addr) = &a.listen {
        let bound = control::serve(addr, controls.clone())?;
        println!("endpoint: http://{bound}/metrics");
    }
    let risk = resolved.config.live.risk.clone();
    let stream_request = |symbols: Vec<String>| -> Result<stream::StreamRequest> {
        Ok(stream::StreamRequest {
            bundle: a.policy.clone(),
            symbols,
            bar: a.bar,
            calendar: crate::build::calendar_from(resolved)?,
            journal: a.journal.clone(),
            fsync: !a.no_fsync,
            risk: risk.clone(),
            watchdog: resolved.config.live.watchdog.clone(),
            controls: Some(controls.clone()),
            warmup: a.warmup.clone(),
        })
    };
    let selection = a.days.selection()?;
    let s = if let Some(what) = a.feed.strip_prefix("replay:") {
        let vendor = what.split_once(':').and_then(|(kind, path)| {
            <crate::ingest::SourceKind as clap::ValueEnum>::from_str(kind, true)
                .ok()
                .map(|k| (k, PathBuf::from(path)))
        });
        match vendor {
            Some((kind, input)) => {
                let symbols = selection.symbols.clone().unwrap_or_default();
                if symbols.is_empty() {
                    return Err(Error::Usage(format!(
                        "--feed {}: a replay of {} files needs the symbols it trades: --symbols A,B,…",
                        a.feed,
                        kind.as_str()
                    )));
                }
                stream::replay_vendor(
                    stream_request(symbols)?,
                    &stream::VendorReplay {
                        kind,
                        input,
                        from: selection.from,
                        to: selection.to,
                        pace: a.pace,
                    },
                    resolved,
                )?
            }
            None if a.warmup.is_some() => {
                return Err(Error::Usage(
                    "--warmup applies to streams and vendor replays: a cache replay reads the features its cache holds"
                        .into(),
                ));
            }
            None => replay::replay(&replay::ReplayRequest {
                bundle: a.policy.clone(),
                cache: PathBuf::from(what),
                selection,
                journal: a.journal.clone(),
                fsync: !a.no_fsync,
                risk: risk.clone(),
                watchdog: resolved.config.live.watchdog.clone(),
                pace: a.pace,
                controls: Some(controls.clone()),
            })?,
        }
    } else {
        let source = stream::Source::parse(&a.feed)?;
        if a.pace.is_some() || selection.from.is_some() || selection.to.is_some() {
            return Err(Error::Usage(
                "--pace, --from and --to apply to replay feeds; a stream runs as its bars arrive"
                    .into(),
            ));
        }
        stream::run(
            stream_request(selection.symbols.unwrap_or_default())?,
            &source,
            &|bound| {
                if let Some(b) = bound {
                    use std::io::Write;
                    println!("feed: listening on {b}");
                    let _ = std::io::stdout().flush();
                }
            },
        )?
    };
    if a.json {
        return super::output::json(&s);
    }
    if let Some(t) = &s.damaged_tail {
        println!("journal: a damaged tail was cut off ({t})");
    }
    if s.inputs + s.duplicates > 0 {
        println!(
            "stream: {} lines taken, {} resent lines skipped, {} bad bars refused",
            s.inputs, s.duplicates, s.bad_bars
        );
    }
    println!(
        "live: {} days, {} decisions, {} rejections, {} orders, {} fills, {} commands, {} state changes, state {}; journal {} ({} records checked, {} appended)",
        s.days,
        s.decisions,
        s.rejections,
        s.orders,
        s.fills,
        s.commands,
        s.state_changes,
        s.state,
        a.journal.display(),
        s.verified,
        s.appended
    );
    println!(
        "equity {:.2} (realized {:+.2}, costs {:.2}, {} open positions)",
        s.total_equity, s.realized, s.costs, s.open_positions
    );
    Ok(0)
}
