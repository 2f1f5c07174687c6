//! `sim-train backtest`: a positions file (`--positions`) or a baseline (`--baseline`)
//! through the execution model ([`crate::backtest`]); writes `report.json`, `equity.csv`,
//! `trades.csv` and `config.resolved.toml` into `--out` once the whole run succeeded, and
//! prints a short summary (or, with `--json`, the report).

use crate::backtest::{self, Baseline};
use crate::config::Resolved;
use crate::env::DaySelection;
use crate::error::{Error, Result};
use chrono::NaiveDate;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("schedule").required(true).args(["positions", "baseline"])))]
pub struct BacktestArgs {
    /// Cache folder to trade on.
    #[arg(long)]
    pub cache: PathBuf,
    /// Target positions: a .csv or .parquet file with columns symbol, ts, target.
    #[arg(long, value_name = "FILE")]
    pub positions: Option<PathBuf>,
    /// A built-in strategy instead of a positions file (parameters in [backtest]).
    #[arg(long, value_enum)]
    pub baseline: Option<Baseline>,
    /// Output folder for report.json, equity.csv, trades.csv and config.resolved.toml.
    #[arg(long)]
    pub out: PathBuf,
    /// Baselines only: these symbols, comma-separated (default: every cached symbol).
    #[arg(long, value_delimiter = ',', conflicts_with = "positions")]
    pub symbols: Option<Vec<String>>,
    /// Baselines only: first date, YYYY-MM-DD.
    #[arg(long, value_parser = super::parse_date, conflicts_with = "positions")]
    pub from: Option<NaiveDate>,
    /// Baselines only: last date, YYYY-MM-DD.
    #[arg(long, value_parser = super::parse_date, conflicts_with = "positions")]
    pub to: Option<NaiveDate>,
    /// Print report.json's content on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: &BacktestArgs, resolved: &Resolved) -> Result<i32> {
    let config = &resolved.config;
    let result = match (&a.positions, a.baseline) {
        (Some(file), None) => backtest::run_positions(&a.cache, file, config)?,
        (None, Some(baseline)) => {
            if let (Some(from), Some(to)) = (a.from, a.to)
                && from > to
            {
                return Err(Error::Usage(format!(
                    "--from {from} is after --to {to}: give a non-empty date range"
                )));
            }
            let sel = DaySelection {
                symbols: a.symbols.as_ref().map(|s| {
                    s.iter()
                        .map(|x| x.trim().to_ascii_uppercase())
                        .filter(|x| !x.is_empty())
                        .collect()
                }),
                from: a.from,
                to: a.to,
            };
            backtest::run_baseline(&a.cache, baseline, &sel, config)?
        }
        _ => {
            return Err(Error::Usage(
                "give exactly one of --positions FILE and --baseline NAME".into(),
            ));
        }
    };
    result.write(&a.out, resolved)?;
    if a.json {
        println!("{}", result.report_json());
    } else {
        print!("{}", result.summary(Some(&a.out)));
    }
    Ok(0)
}
