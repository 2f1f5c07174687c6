//! The plan of a walk-forward sweep: its universe, trading days, folds and the list of
//! independent units (fold × config × seed), written once to a plan dir that every shard
//! and the merge read.
//!
//! Plan dir layout:
//! - `plan.json`: the [`Plan`] (hashes of the config and of the cached data it covers,
//!   days, folds with their symbols, units);
//! - `config.resolved.toml`: the config every unit layers its overrides on;
//! - `audit.csv`: the fold audit listing ([`super::audit_csv`]);
//! - `units/<id>/`: a unit's training run, evaluation and, once complete, `result.json`;
//! - `report/`: what `merge` writes.
//!
//! Everything that can make the sweep impossible (an empty universe, folds that do not
//! fit, a plan dir of another config) is an error here, before any training starts.

use super::config::{Variant, WalkForwardConfig};
use super::folds::{Fold, audit_csv, make_folds};
use crate::cache::Catalog;
use crate::config::{RESOLVED_FILE, Resolved};
use crate::error::{Error, IoContext, Result};
use crate::util::fs::write_atomic;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub const PLAN_FILE: &str = "plan.json";
pub const AUDIT_FILE: &str = "audit.csv";
pub const UNITS_DIR: &str = "units";

/// A fold of the plan: its days by role and the symbols it trades.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedFold {
    #[serde(flatten)]
    pub fold: Fold,
    /// The universe of this fold (sorted).
    pub symbols: Vec<String>,
}

/// One independent piece of work: train on a fold's training days with one config and
/// seed, then evaluate out of sample on its test days.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    /// `f<fold>-<config>-s<seed>`: the unit's folder name.
    pub id: String,
    pub fold: usize,
    pub config: String,
    pub seed: u64,
    /// The unit whose final weights this one starts from (`walkforward.warm_start`).
    pub after: Option<String>,
    /// Units of one chain run in order in the same shard; chains are dealt to shards
    /// round-robin.
    pub chain: usize,
}

/// `plan.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub version: String,
    /// Hash of the resolved config's values.
    pub config_hash: String,
    /// Hash of the cache catalog entries of the universe's days (symbol, date, rows,
    /// bytes, first bar): a changed cache is caught before units run on it.
    pub data_hash: String,
    pub cache: PathBuf,
    pub index: Option<PathBuf>,
    /// The universe before any query: the symbols considered.
    pub candidates: Vec<String>,
    /// The trading days of the sweep (a day on which any candidate has cached data).
    pub days: Vec<NaiveDate>,
    pub folds: Vec<PlannedFold>,
    pub configs: Vec<Variant>,
    pub seeds: Vec<u64>,
    pub units: Vec<Unit>,
}

impl Plan {
    /// The chains of units (in plan order) that shard `index` of `count` runs.
    pub fn shard(&self, index: usize, count: usize) -> Vec<&Unit> {
        self.units
            .iter()
            .filter(|u| u.chain % count == index)
            .collect()
    }

    pub fn unit(&self, id: &str) -> Option<&Unit> {
        self.units.iter().find(|u| u.id == id)
    }

    pub fn variant(&self, name: &str) -> Option<&Variant> {
        self.configs.iter().find(|v| v.name == name)
    }
}

/// The sweep's config with `--cache` (when given) folded in, validated.
pub fn sweep_config(resolved: &Resolved, cache: Option<&Path>) -> Result<Resolved> {
    let resolved = match cache {
        Some(c) => resolved.with_sets(&[format!(
            "walkforward.cache={}",
            toml::Value::String(c.display().to_string())
        )])?,
        None => resolved.clone(),
    };
    if resolved.config.walkforward.cache.is_none() {
        return Err(Error::Usage(
            "walk-forward needs a day cache: set walkforward.cache in the config or pass --cache DIR".into(),
        ));
    }
    Ok(resolved)
}

/// Builds the plan of `resolved` (see [`sweep_config`]): universe, days, folds, units.
pub fn build_plan(resolved: &Resolved) -> Result<Plan> {
    let wf = &resolved.config.walkforward;
    let cache = wf.cache.clone().expect("checked by sweep_config");
    let catalog = Catalog::load_existing(&cache)?;
    let known = catalog.symbols();
    let candidates: Vec<String> = if wf.symbols.is_empty() {
        known.clone()
    } else {
        let mut list: Vec<String> = wf.symbols.iter().map(|s| s.to_uppercase()).collect();
        if let Some(s) = list.iter().find(|s| !known.contains(s)) {
            return Err(Error::Config(format!(
                "walkforward.symbols: {s} is not in the cache {} (it has {})",
                cache.display(),
                known.join(", ")
            )));
        }
        list.sort();
        list.dedup();
        list
    };
    let in_range = |d: NaiveDate| wf.from.is_none_or(|f| d >= f) && wf.to.is_none_or(|t| d <= t);
    let entries: Vec<_> = catalog
        .entries
        .values()
        .filter(|e| candidates.contains(&e.symbol) && in_range(e.date))
        .collect();
    let days: Vec<NaiveDate> = entries
        .iter()
        .map(|e| e.date)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if days.is_empty() {
        return Err(Error::NotFound(format!(
            "the universe has no cached days: the cache {} holds nothing for {} between {} and {}",
            cache.display(),
            candidates.join(", "),
            wf.from.map_or("its first day".into(), |d| d.to_string()),
            wf.to.map_or("its last day".into(), |d| d.to_string()),
        )));
    }
    let mut data = String::new();
    for e in &entries {
        data.push_str(&format!(
            "{},{},{},{},{:?}\n",
            e.symbol, e.date, e.rows, e.bytes, e.first_ts_ns
        ));
    }
    let data_hash = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(data.as_bytes()));

    let folds = make_folds(&days, &wf.folds())
        .map_err(|e| Error::Config(format!("walkforward folds: {e}")))?;
    let matches = universe_matches(wf)?;
    let mut planned = Vec::with_capacity(folds.len());
    for fold in folds {
        let (first, last) = (fold.train[0], *fold.train.last().expect("train_days ≥ 1"));
        let symbols: Vec<String> = candidates
            .iter()
            .filter(|s| {
                matches
                    .as_ref()
                    .is_none_or(|m| m.iter().any(|(sym, date)| sym == *s && *date <= last))
            })
            .filter(|s| {
                entries
                    .iter()
                    .any(|e| &e.symbol == *s && e.date >= first && e.date <= last)
            })
            .cloned()
            .collect();
        if symbols.is_empty() {
            return Err(Error::Config(format!(
                "walkforward fold {}: no symbol of the universe {} by its last training day {last}{}",
                fold.index,
                if matches.is_some() {
                    "matches walkforward.query"
                } else {
                    "has cached days"
                },
                if matches.is_some() {
                    ": loosen the query or start the sweep later"
                } else {
                    ""
                }
            )));
        }
        planned.push(PlannedFold { fold, symbols });
    }

    let configs = wf.variants();
    for v in &configs {
        // A bad override is a config error now, not in the middle of the sweep.
        resolved
            .with_sets(&v.set)
            .map_err(|e| Error::Config(format!("walkforward.configs {:?}: {e}", v.name)))?;
    }
    let mut units = Vec::new();
    let per_fold = configs.len() * wf.seeds.len();
    for f in &planned {
        for (c, v) in configs.iter().enumerate() {
            for (s, &seed) in wf.seeds.iter().enumerate() {
                let id = unit_id(f.fold.index, &v.name, seed);
                let after = (wf.warm_start && f.fold.index > 0)
                    .then(|| unit_id(f.fold.index - 1, &v.name, seed));
                let chain = if wf.warm_start {
                    c * wf.seeds.len() + s
                } else {
                    f.fold.index * per_fold + c * wf.seeds.len() + s
                };
                units.push(Unit {
                    id,
                    fold: f.fold.index,
                    config: v.name.clone(),
                    seed,
                    after,
                    chain,
                });
            }
        }
    }
    Ok(Plan {
        version: env!("CARGO_PKG_VERSION").to_string(),
        config_hash: crate::learn::run::config_hash(resolved),
        data_hash,
        cache,
        index: wf.index.clone(),
        candidates,
        days,
        folds: planned,
        configs,
        seeds: wf.seeds.clone(),
        units,
    })
}

fn unit_id(fold: usize, config: &str, seed: u64) -> String {
    format!("f{fold:03}-{config}-s{seed}")
}

/// The (symbol, date) rows of the index that `walkforward.query` selects, if any.
fn universe_matches(wf: &WalkForwardConfig) -> Result<Option<Vec<(String, NaiveDate)>>> {
    let Some(q) = wf.query.as_deref().filter(|q| !q.trim().is_empty()) else {
        return Ok(None);
    };
    let dir = wf.index.as_deref().expect("checked by validate");
    let idx = crate::scan::Index::load(dir)?;
    let rows = crate::scan::query::select(&idx, crate::scan::query::Table::Days, Some(q))
        .map_err(|e| Error::Config(format!("walkforward.query: {e}")))?;
    Ok(Some(
        rows.into_iter()
            .map(|k| (idx.days[k].symbol.clone(), idx.days[k].date))
            .collect(),
    ))
}

/// Writes the plan into `dir` (created if needed). A dir that already holds the same
/// plan is left as it is (its finished units stay valid); one that holds another plan is
/// an error.
pub fn write_plan(dir: &Path, plan: &Plan, resolved: &Resolved) -> Result<bool> {
    let path = dir.join(PLAN_FILE);
    if path.is_file() {
        let old = read_plan(dir)?;
        if old == *plan {
            return Ok(false);
        }
        let what = if old.config_hash != plan.config_hash {
            format!(
                "another config (hash {}, this one {})",
                old.config_hash, plan.config_hash
            )
        } else if old.data_hash != plan.data_hash {
            "other cached data (the cache changed since)".to_string()
        } else if old.version != plan.version {
            format!("sim-train {} (this is {})", old.version, plan.version)
        } else {
            "a different plan".to_string()
        };
        return Err(Error::Usage(format!(
            "{} holds the plan of {what}: use a new --out, or delete it to start over",
            dir.display()
        )));
    }
    if dir.exists() && std::fs::read_dir(dir).at(dir)?.next().is_some() {
        return Err(Error::Usage(format!(
            "{} exists and is not a walk-forward plan dir: use a new --out",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir.join(UNITS_DIR)).at(dir)?;
    resolved.save_beside(dir)?;
    let folds: Vec<Fold> = plan.folds.iter().map(|f| f.fold.clone()).collect();
    write_atomic(&dir.join(AUDIT_FILE), audit_csv(&folds).as_bytes())?;
    let json = serde_json::to_vec_pretty(plan).expect("the plan serializes");
    write_atomic(&path, &json)?;
    Ok(true)
}

/// Reads `dir/plan.json`.
pub fn read_plan(dir: &Path) -> Result<Plan> {
    let path = dir.join(PLAN_FILE);
    if !path.is_file() {
        return Err(Error::Usage(format!(
            "{} is not a walk-forward plan dir (no {PLAN_FILE}): write one with `sim-train walk-forward plan --out DIR`",
            dir.display()
        )));
    }
    let bytes = std::fs::read(&path).at(&path)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::input(&path, format!("unreadable plan: {e}")))
}

/// The plan of `dir` with its config, checked against the plan its config gives on the
/// cache (and index) as they are now and, when the command line named a config
/// (`explicit`), against that config.
pub fn open_plan(dir: &Path, explicit: Option<&Resolved>) -> Result<(Plan, Resolved)> {
    let plan = read_plan(dir)?;
    let resolved = crate::config::load(Some(&dir.join(RESOLVED_FILE)), &[])?;
    let hash = crate::learn::run::config_hash(&resolved);
    if hash != plan.config_hash {
        return Err(Error::input(
            dir.join(RESOLVED_FILE),
            format!(
                "does not match {PLAN_FILE} (config hash {hash}, plan {}): the plan dir was edited or written by another version; plan again into a new dir",
                plan.config_hash
            ),
        ));
    }
    if let Some(given) = explicit {
        let given = sweep_config(given, Some(&plan.cache))?;
        let h = crate::learn::run::config_hash(&given);
        if h != plan.config_hash {
            return Err(Error::Usage(format!(
                "{} is the plan of another config (hash {}, the config given here {h}): run without --config/--set (the plan keeps its own), or plan this config into a new dir",
                dir.display(),
                plan.config_hash
            )));
        }
    }
    // The plan must still be what its config gives on the data as they are now.
    let now = build_plan(&resolved)?;
    if now != plan {
        let what = if now.data_hash != plan.data_hash {
            format!("the cache {} changed since", plan.cache.display())
        } else if now.version != plan.version {
            format!(
                "it was planned by sim-train {} (this is {})",
                plan.version, now.version
            )
        } else if now.folds != plan.folds {
            "its folds' symbols differ (the scanner index behind walkforward.query changed, or plan.json was edited)".to_string()
        } else {
            "plan.json was edited".to_string()
        };
        return Err(Error::Data(format!(
            "the plan in {} no longer matches its config and data: {what}; plan again into a new dir",
            dir.display()
        )));
    }
    Ok((plan, resolved))
}

/// `dir/units/<id>`.
pub fn unit_dir(dir: &Path, id: &str) -> PathBuf {
    dir.join(UNITS_DIR).join(id)
}
