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
                println!(
                    "{}",
                    serde_json::to_string_pretty(&b.manifest).expect("serializes")
                );
            } else {
                print!("{}", b.describe());
            }
            Ok(0)
        }
    }
}

#[derive(Args, Debug)]
pub struct LiveArgs {
    /// The policy bundle (`sim-train export`).
    #[arg(long, value_name = "BUNDLE")]
    pub policy: PathBuf,
    /// The bar feed: `replay:CACHE_DIR` (cached days, bar by bar in time order).
    #[arg(long)]
    pub feed: String,
    /// The broker: `paper` (the simulator's execution model).
    #[arg(long, default_value = "paper")]
    pub broker: String,
    /// The journal (created, or continued after a restart).
    #[arg(long)]
    pub journal: PathBuf,
    #[command(flatten)]
    pub days: DaysArgs,
    /// The kill switch: when this file exists, flatten everything and halt.
    #[arg(long)]
    pub kill_file: Option<PathBuf>,
    /// Flush journal records to the OS without the per-bar fsync (faster; survives a
    /// process crash, not a power loss).
    #[arg(long)]
    pub no_fsync: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn live(a: &LiveArgs, resolved: &Resolved) -> Result<i32> {
    let Some(cache) = a.feed.strip_prefix("replay:") else {
        return Err(Error::Usage(format!(
            "--feed {}: the feeds are replay:CACHE_DIR (streams from stdin or a socket are not built yet)",
            a.feed
        )));
    };
    if a.broker != "paper" {
        return Err(Error::Usage(format!(
            "--broker {}: the brokers are paper (the simulator's execution model)",
            a.broker
        )));
    }
    let s = crate::live::replay::replay(&crate::live::replay::ReplayRequest {
        bundle: a.policy.clone(),
        cache: PathBuf::from(cache),
        selection: a.days.selection()?,
        journal: a.journal.clone(),
        fsync: !a.no_fsync,
        risk: resolved.config.live.risk.clone(),
        kill_file: a.kill_file.clone(),
    })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s).expect("serializes"));
        return Ok(0);
    }
    if let Some(t) = &s.damaged_tail {
        println!("journal: a damaged tail was cut off ({t})");
    }
    println!(
        "live replay: {} days, {} decisions, {} rejections, {} orders, {} fills, {} state changes; journal {} ({} records checked, {} appended)",
        s.days,
        s.decisions,
        s.rejections,
        s.orders,
        s.fills,
        s.state_changes,
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
