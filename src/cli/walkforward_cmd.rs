//! `sim-train walk-forward`: plan, run (one shard, or all), merge. A sweep trains its
//! units, so the command is built with the `torch` feature; without it only its arguments
//! are (the command then says it needs libtorch).

#[cfg(feature = "torch")]
use crate::config::Resolved;
#[cfg(feature = "torch")]
use crate::error::{Error, Result};
#[cfg(feature = "torch")]
use crate::walkforward::{self, Outcome, Plan};
use clap::{Args, Subcommand};
#[cfg(feature = "torch")]
use std::path::Path;
use std::path::PathBuf;
#[cfg(feature = "torch")]
use std::time::Instant;

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct WalkForwardArgs {
    #[command(subcommand)]
    pub command: Option<WalkForwardCommand>,
    /// Plan dir: plan the sweep of `[walkforward]` into it, run every unit here, merge.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Day cache (default: walkforward.cache).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Print the merged report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum WalkForwardCommand {
    /// Write the plan (universe, folds, units) into a plan dir; nothing is trained.
    Plan {
        #[arg(long)]
        out: PathBuf,
        /// Day cache (default: walkforward.cache).
        #[arg(long)]
        cache: Option<PathBuf>,
        /// Print the plan as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Run one shard's units (finished units are skipped).
    Run {
        #[arg(long)]
        plan: PathBuf,
        /// This shard and the number of shards, I/N with 0 ≤ I < N (default: from
        /// SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX).
        #[arg(long, value_parser = parse_shard, conflicts_with = "shards")]
        shard: Option<(usize, usize)>,
        /// The number of shards when the index comes from the environment (default:
        /// SLURM_ARRAY_TASK_COUNT).
        #[arg(long)]
        shards: Option<usize>,
    },
    /// Merge the finished units into report/ (tables, charts, report.html).
    Merge {
        #[arg(long)]
        plan: PathBuf,
        /// Print the report as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

fn parse_shard(s: &str) -> std::result::Result<(usize, usize), String> {
    let bad = || format!("--shard {s}: expected I/N with 0 <= I < N, e.g. 0/3");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (
        i.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

/// The shard from the flags or the scheduler's environment.
#[cfg(feature = "torch")]
fn pick_shard(
    shard: Option<(usize, usize)>,
    shards: Option<usize>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(usize, usize)> {
    if let Some(s) = shard {
        return Ok(s);
    }
    let num = |name: &str| -> Result<Option<usize>> {
        env(name)
            .map(|v| {
                v.trim().parse::<usize>().map_err(|_| {
                    Error::Usage(format!("{name}={v}: expected a non-negative integer"))
                })
            })
            .transpose()
    };
    let (index, from) = if let Some(i) = num("SLURM_ARRAY_TASK_ID")? {
        (
            i - num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0).min(i),
            "SLURM_ARRAY_TASK_ID",
        )
    } else if let Some(i) = num("JOB_COMPLETION_INDEX")? {
        (i, "JOB_COMPLETION_INDEX")
    } else {
        return Err(Error::Usage(
            "walk-forward run needs its shard: pass --shard I/N, or run it as a Slurm array task (SLURM_ARRAY_TASK_ID) or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX) with --shards N".into(),
        ));
    };
    let count = match shards {
        Some(n) => n,
        None => num("SLURM_ARRAY_TASK_COUNT")?.ok_or_else(|| {
            Error::Usage(format!(
                "the shard index comes from {from}; pass the number of shards with --shards N"
            ))
        })?,
    };
    if count == 0 || index >= count {
        return Err(Error::Usage(format!(
            "shard {index} of {count} (from {from}): the index must be below the number of shards"
        )));
    }
    Ok((index, count))
}

/// Whether the command line named a config of its own (then it must match the plan's).
#[cfg(feature = "torch")]
fn explicit<'a>(global: &crate::cli::GlobalArgs, resolved: &'a Resolved) -> Option<&'a Resolved> {
    (global.config.is_some() || !global.set.is_empty()).then_some(resolved)
}

#[cfg(feature = "torch")]
pub fn run(
    a: &WalkForwardArgs,
    global: &crate::cli::GlobalArgs,
    resolved: &Resolved,
    progress: bool,
) -> Result<i32> {
    match &a.command {
        Some(WalkForwardCommand::Plan { out, cache, json }) => {
            let (plan, _) = plan(out, cache.as_deref(), resolved)?;
            if *json {
                return crate::cli::output::json(&plan);
            }
            Ok(0)
        }
        Some(WalkForwardCommand::Run {
            plan,
            shard,
            shards,
        }) => {
            let (p, r) = walkforward::open_plan(plan, explicit(global, resolved))?;
            let (i, n) = pick_shard(*shard, *shards, &|k| std::env::var(k).ok())?;
            run_shard(plan, &p, &r, i, n, progress)?;
            Ok(0)
        }
        Some(WalkForwardCommand::Merge { plan, json }) => {
            let (p, r) = walkforward::open_plan(plan, explicit(global, resolved))?;
            merge(plan, &p, &r, *json)
        }
        None => {
            let Some(out) = &a.out else {
                return Err(Error::Usage(
                    "walk-forward: pass --out DIR (plan, run every unit, merge), or use `walk-forward plan|run|merge`".into(),
                ));
            };
            let clock = Instant::now();
            let (p, r) = plan(out, a.cache.as_deref(), resolved)?;
            run_shard(out, &p, &r, 0, 1, progress)?;
            let code = merge(out, &p, &r, a.json)?;
            if !a.json {
                let secs = clock.elapsed().as_secs_f64();
                println!(
                    "walk-forward: {} units in {secs:.1} s ({:.0} units/hour end to end)",
                    p.units.len(),
                    p.units.len() as f64 * 3600.0 / secs
                );
            }
            Ok(code)
        }
    }
}

#[cfg(feature = "torch")]
fn plan(out: &Path, cache: Option<&Path>, resolved: &Resolved) -> Result<(Plan, Resolved)> {
    let r = walkforward::sweep_config(resolved, cache)?;
    let plan = walkforward::build_plan(&r)?;
    let fresh = walkforward::write_plan(out, &plan, &r)?;
    let chains = plan
        .units
        .iter()
        .map(|u| u.chain)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    eprintln!(
        "{} {}: {} symbols, {} trading days {} .. {}, {} folds × {} configs × {} seeds = {} units ({} independent chains: up to {} shards have work)",
        if fresh {
            "planned"
        } else {
            "plan unchanged in"
        },
        out.display(),
        plan.candidates.len(),
        plan.days.len(),
        plan.days[0],
        plan.days[plan.days.len() - 1],
        plan.folds.len(),
        plan.configs.len(),
        plan.seeds.len(),
        plan.units.len(),
        chains,
        chains
    );
    Ok((plan, r))
}

#[cfg(feature = "torch")]
fn run_shard(
    dir: &Path,
    plan: &Plan,
    resolved: &Resolved,
    index: usize,
    count: usize,
    progress: bool,
) -> Result<()> {
    crate::learn::run::install_ctrl_c();
    let units = plan.shard(index, count);
    let clock = Instant::now();
    let (mut ran, mut skipped, mut busy) = (0, 0, 0);
    for (k, u) in units.iter().enumerate() {
        let t = Instant::now();
        match walkforward::run_unit(dir, plan, resolved, u, progress)? {
            Outcome::Skipped => {
                skipped += 1;
                eprintln!("[{}/{}] {} already complete", k + 1, units.len(), u.id);
            }
            Outcome::Busy => {
                busy += 1;
                eprintln!(
                    "[{}/{}] {} is being run by another process: left to it",
                    k + 1,
                    units.len(),
                    u.id
                );
            }
            Outcome::Ran => {
                ran += 1;
                eprintln!(
                    "[{}/{}] {} done in {:.1} s",
                    k + 1,
                    units.len(),
                    u.id,
                    t.elapsed().as_secs_f64()
                );
            }
        }
    }
    eprintln!(
        "shard {index}/{count}: {ran} units run, {skipped} already complete, {busy} run by another process, in {:.1} s",
        clock.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(feature = "torch")]
fn merge(dir: &Path, plan: &Plan, resolved: &Resolved, json: bool) -> Result<i32> {
    let m = walkforward::merge(dir, plan, resolved)?;
    if json {
        return super::output::json(&m.report);
    }
    let r = &m.report;
    println!(
        "walk-forward {} .. {}: {} folds, {} units; selected config {}",
        r.first_day, r.last_day, r.folds, r.units, r.selected_config
    );
    let pct = |x: f64| {
        if x.is_finite() {
            format!("{:+.2} %", 100.0 * x)
        } else {
            "-".into()
        }
    };
    let num = |x: f64| {
        if x.is_finite() {
            format!("{x:.2}")
        } else {
            "-".into()
        }
    };
    for c in &r.configs {
        let s = &c.stats;
        println!(
            "  config {:<16} total {:>9}  Sharpe {:>6}  max DD {:>9}  trades {:>6}  win rate {:>9}  {}",
            c.config,
            pct(s.returns.total_return),
            num(s.returns.sharpe),
            pct(s.returns.max_drawdown),
            s.trades,
            pct(s.win_rate),
            if c.promoted {
                "PROMOTED"
            } else {
                "not promoted"
            }
        );
    }
    for (name, s) in &r.baselines {
        println!(
            "  baseline {:<14} total {:>9}  Sharpe {:>6}  max DD {:>9}",
            name,
            pct(s.returns.total_return),
            num(s.returns.sharpe),
            pct(s.returns.max_drawdown)
        );
    }
    match &r.deflated_sharpe.result {
        Some(d) => println!(
            "  deflated Sharpe ratio {:.4} (trials {}, SR0 {:.4})",
            d.dsr, d.trials, d.sr0
        ),
        None => println!("  deflated Sharpe ratio: none ({})", r.deflated_sharpe.note),
    }
    match &r.pbo.result {
        Some(p) => println!("  probability of backtest overfitting {:.3}", p.pbo),
        None => println!("  PBO: none ({})", r.pbo.note),
    }
    println!(
        "report: {} ({} files); compute {:.0} units/hour",
        m.dir.join("report.html").display(),
        m.files.len(),
        m.timing.units_per_hour
    );
    Ok(0)
}

#[cfg(all(test, feature = "torch"))]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn shard_from_flags_and_schedulers() {
        assert_eq!(parse_shard("2/3"), Ok((2, 3)));
        assert!(parse_shard("3/3").is_err());
        assert!(parse_shard("0/0").is_err());
        assert!(parse_shard("1").is_err());
        let none = env_of(&[]);
        assert_eq!(pick_shard(Some((1, 4)), None, &none).unwrap(), (1, 4));
        assert!(pick_shard(None, None, &none).is_err());
        // Slurm: --array=1-3 gives ids 1..3 with MIN 1 and COUNT 3.
        let slurm = env_of(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ]);
        assert_eq!(pick_shard(None, None, &slurm).unwrap(), (2, 3));
        // Kubernetes Indexed Job: the count comes from --shards.
        let k8s = env_of(&[("JOB_COMPLETION_INDEX", "4")]);
        assert!(pick_shard(None, None, &k8s).is_err());
        assert_eq!(pick_shard(None, Some(5), &k8s).unwrap(), (4, 5));
        assert!(pick_shard(None, Some(4), &k8s).is_err());
        let junk = env_of(&[("JOB_COMPLETION_INDEX", "x")]);
        assert!(pick_shard(None, Some(2), &junk).is_err());
    }
}
