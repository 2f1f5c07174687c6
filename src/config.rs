//! Layered configuration: the embedded `config/default.toml`, then an optional named file
//! (`--config FILE`), then `--set section.key=value` overrides, in that order.
//!
//! Every layer is checked on its own against the typed structs (unknown keys and values of
//! the wrong type are refused with the key and the file that holds it), then merged, then
//! validated as a whole ([`Config::validate`]) so impossible values name their key and the
//! layer that set it. The resolved config is saved beside every output (`config.resolved.toml`).

use crate::adjust::AdjustMode;
use crate::bars::BarSize;
use crate::error::{Error, IoContext, Result};
use crate::ingest::table::TableSpec;
use crate::synth::SynthParams;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The documented defaults, embedded so the binary works from any folder.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");
/// File name of the resolved config saved beside outputs.
pub const RESOLVED_FILE: &str = "config.resolved.toml";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub synth: SynthParams,
    pub ingest: IngestConfig,
    pub features: FeaturesConfig,
    pub calendar: CalendarConfig,
    pub align: AlignConfig,
    pub env: crate::env::EnvConfig,
    pub backtest: BacktestConfig,
    pub bench: BenchConfig,
    pub train: crate::learn::TrainConfig,
    pub pipeline: PipelineConfig,
    pub scan: crate::scan::ScanConfig,
    pub sampler: crate::scan::SamplerConfig,
    pub preload: crate::env::PreloadConfig,
    pub walkforward: crate::walkforward::WalkForwardConfig,
    pub live: crate::live::LiveConfig,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Corporate-action adjustment when `--adjust` is not given.
    pub adjust: AdjustMode,
    /// Folder of LEAN-format factor files for sources other than LEAN (LEAN uses its own).
    pub factor_files: Option<PathBuf>,
    pub validation: ValidationConfig,
    pub table: TableSpec,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            adjust: AdjustMode::None,
            factor_files: None,
            validation: ValidationConfig::default(),
            table: TableSpec::default(),
        }
    }
}

/// What to do when a symbol-day shows a problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Repair the bars (documented per problem) and keep the day.
    Fix,
    /// Leave the whole symbol-day out of the cache.
    DropDay,
    /// Stop the build with an error naming the symbol-day.
    Fail,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationConfig {
    /// Opt-in, off by default: remove isolated spikes judged with the bar *after* them in
    /// view ([`crate::validate::Problem::Outlier`]). A live feed cannot know the next bar,
    /// so a cache cleaned this way differs from what the live loop sees; the build summary
    /// and the cache's metadata say so. The default cleaning is causal: suspect prints are
    /// flagged ([`crate::validate::PrintCheck`]), never removed.
    pub lookahead_outliers: bool,
    /// With `lookahead_outliers`: a bar is an outlier when its log return and the next one
    /// both exceed this many robust standard deviations in opposite directions and the
    /// price comes back (a bad print).
    pub outlier_z: f64,
    /// Report a gap when the regular session has no bar for longer than this, seconds.
    pub max_gap_secs: u32,
    pub policy: PolicyConfig,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        ValidationConfig {
            lookahead_outliers: false,
            outlier_z: 12.0,
            max_gap_secs: 900,
            policy: PolicyConfig::default(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    pub unsorted: Policy,
    pub duplicate: Policy,
    pub non_positive: Policy,
    pub high_low: Policy,
    pub ohlc: Policy,
    pub outlier: Policy,
    pub outside_session: Policy,
    pub gap: Policy,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            unsorted: Policy::Fix,
            duplicate: Policy::Fix,
            non_positive: Policy::Fix,
            high_low: Policy::Fix,
            ohlc: Policy::Fix,
            outlier: Policy::Fix,
            outside_session: Policy::Fix,
            gap: Policy::Fix,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeaturesConfig {
    /// Trading days read before `--from` so indicators are warm at the first cached bar.
    pub warmup_days: u32,
    /// The symbol the cross-sectional features (`rel_ret_*`, `bench_corr_60`) are
    /// computed against; "" for none. A cache build reads and writes it with the other
    /// symbols.
    pub benchmark: String,
}

impl Default for FeaturesConfig {
    fn default() -> Self {
        FeaturesConfig {
            warmup_days: 5,
            benchmark: "SPY".into(),
        }
    }
}

impl FeaturesConfig {
    /// The benchmark symbol, upper-cased, or `None` when unset.
    pub fn benchmark(&self) -> Option<String> {
        let b = self.benchmark.trim();
        (!b.is_empty()).then(|| b.to_ascii_uppercase())
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CalendarConfig {
    /// A LEAN `market-hours/equity-usa.json` to use instead of the built-in NYSE rules.
    pub market_hours_file: Option<PathBuf>,
}

/// How symbols are joined on a common clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum JoinKind {
    /// Only clock times where every symbol has a bar.
    Inner,
    /// Every clock time where any symbol has a bar; missing values are empty (NaN).
    Outer,
    /// As outer, with each symbol's last value carried forward.
    Ffill,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlignConfig {
    pub how: JoinKind,
    /// Columns to align: bar fields (open, high, low, close, volume) or feature names.
    pub columns: Vec<String>,
    /// Report a value whose robust z-score against its symbol's column exceeds this.
    pub outlier_z: f64,
}

impl Default for AlignConfig {
    fn default() -> Self {
        AlignConfig {
            how: JoinKind::Ffill,
            columns: vec!["close".into(), "volume".into()],
            outlier_z: 12.0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BacktestConfig {
    /// Trading periods per year used to annualize daily returns (√ of it for volatility).
    pub periods_per_year: f64,
    /// Risk-free return per day, subtracted in the Sharpe and Sortino ratios.
    pub risk_free: f64,
    /// Time (NY, HH:MM:SS) of the first decision of each backtest day.
    pub start_time: String,
    /// `sma-cross` baseline: fast moving average of closes, bars.
    pub sma_fast: u32,
    /// `sma-cross` baseline: slow moving average of closes, bars.
    pub sma_slow: u32,
    /// `vwap-revert` baseline: enter against a move when the close is this fraction away
    /// from the session VWAP.
    pub vwap_entry: f64,
    /// `vwap-revert` baseline: exit when the close is back within this fraction of VWAP.
    pub vwap_exit: f64,
}

impl Default for BacktestConfig {
    fn default() -> Self {
        BacktestConfig {
            periods_per_year: 252.0,
            risk_free: 0.0,
            start_time: "09:30:00".into(),
            sma_fast: 20,
            sma_slow: 60,
            vwap_entry: 0.003,
            vwap_exit: 0.0005,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BenchConfig {
    /// Synthetic symbols built by `bench cache` and `bench env` (without `--cache`).
    pub symbols: usize,
    /// Trading days per symbol built by `bench cache` and `bench env`.
    pub days: usize,
    /// Bar size built by `bench cache` and `bench env`.
    pub bar: BarSize,
    /// Random clock-time lookups timed.
    pub lookups: usize,
    /// Passes over the column for the scan and memcpy figures (the best pass counts).
    pub scan_repeats: usize,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            symbols: 20,
            days: 10,
            bar: BarSize::S1,
            lookups: 2_000_000,
            scan_repeats: 30,
        }
    }
}

/// `sim-train pipeline` (the main command): what the training and evaluation stages do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    /// The last this many trading days of the universe are held out: training never sees
    /// them, the evaluation runs on them.
    pub holdout_days: usize,
    /// Environment steps of the pipeline's training run (overrides train.total_steps).
    pub train_steps: u64,
    /// Train on the scanner index's curriculum sampler (else on env.start_times).
    pub use_index: bool,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            holdout_days: 5,
            train_steps: 1_000_000,
            use_index: true,
        }
    }
}

impl Config {
    /// Checks values that types alone cannot; errors name the key.
    pub fn validate(&self) -> std::result::Result<(), String> {
        self.synth.validate()?;
        crate::env::EnvParams::from_config(&self.env)?;
        let bt = &self.backtest;
        if !(bt.periods_per_year.is_finite() && bt.periods_per_year > 0.0) {
            return Err(format!(
                "backtest.periods_per_year = {}: must be a positive number",
                bt.periods_per_year
            ));
        }
        if !bt.risk_free.is_finite() {
            return Err(format!(
                "backtest.risk_free = {}: must be a number",
                bt.risk_free
            ));
        }
        crate::env::params::parse_hms(&bt.start_time)
            .map_err(|e| format!("backtest.start_time: {e}"))?;
        if bt.sma_fast == 0 || bt.sma_fast >= bt.sma_slow {
            return Err(format!(
                "backtest.sma_fast = {}: must be at least 1 and below backtest.sma_slow = {}",
                bt.sma_fast, bt.sma_slow
            ));
        }
        if !(bt.vwap_exit >= 0.0 && bt.vwap_entry > bt.vwap_exit && bt.vwap_entry.is_finite()) {
            return Err(format!(
                "backtest.vwap_entry = {}: must be above backtest.vwap_exit = {} (and both non-negative)",
                bt.vwap_entry, bt.vwap_exit
            ));
        }
        let v = &self.ingest.validation;
        if !(v.outlier_z.is_finite() && v.outlier_z > 0.0) {
            return Err(format!(
                "ingest.validation.outlier_z = {}: must be a positive number",
                v.outlier_z
            ));
        }
        if !(self.align.outlier_z.is_finite() && self.align.outlier_z > 0.0) {
            return Err(format!(
                "align.outlier_z = {}: must be a positive number",
                self.align.outlier_z
            ));
        }
        if self.align.columns.is_empty() {
            return Err(
                "align.columns is empty: name at least one column, e.g. [\"close\"]".into(),
            );
        }
        self.train.validate()?;
        if self.pipeline.holdout_days == 0 || self.pipeline.train_steps == 0 {
            return Err("pipeline.holdout_days and pipeline.train_steps must be at least 1".into());
        }
        crate::scan::config::check(&self.scan, &self.sampler, &self.preload)?;
        self.walkforward.validate()?;
        self.live.risk.validate()?;
        self.live.watchdog.validate()?;
        let b = &self.bench;
        if b.symbols == 0 || b.days == 0 || b.lookups == 0 || b.scan_repeats == 0 {
            return Err("bench.symbols, bench.days, bench.lookups and bench.scan_repeats must be at least 1".into());
        }
        Ok(())
    }
}

/// A resolved configuration and where each value came from.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub config: Config,
    /// The layers applied, in order ("default", a file path, "--set k=v"...).
    pub layers: Vec<String>,
    /// For each dotted key set by a layer other than the default, that layer.
    pub origins: BTreeMap<String, String>,
    merged: toml::Table,
}

impl Resolved {
    /// The resolved config as TOML.
    pub fn to_toml(&self) -> String {
        let mut s = String::from("# Resolved sim-train configuration. Layers, in order:\n");
        for l in &self.layers {
            s.push_str(&format!("#   {l}\n"));
        }
        s.push('\n');
        s.push_str(&toml::to_string_pretty(&self.merged).unwrap_or_default());
        s
    }

    /// Saves the resolved config as `<dir>/config.resolved.toml` (atomically).
    pub fn save_beside(&self, dir: &Path) -> Result<PathBuf> {
        let path = dir.join(RESOLVED_FILE);
        crate::util::fs::write_atomic(&path, self.to_toml().as_bytes())?;
        Ok(path)
    }
}

/// Resolves the layers: embedded default, `named` file, then `sets` (`a.b=value`).
pub fn load(named: Option<&Path>, sets: &[String]) -> Result<Resolved> {
    let mut merged = parse_layer(DEFAULT_TOML, "config/default.toml (embedded)")?;
    let mut layers = vec!["config/default.toml (embedded)".to_string()];
    let mut origins = BTreeMap::new();
    if let Some(named) = named {
        let path = resolve_named(named)?;
        let label = path.display().to_string();
        let text = std::fs::read_to_string(&path).at(&path)?;
        let table = parse_layer(&text, &label)?;
        record_origins(&table, "", &label, &mut origins);
        merge(&mut merged, table);
        layers.push(label);
    }
    apply_sets(merged, layers, origins, sets)
}

/// Layers `sets` over an already merged table, then checks and validates the result.
fn apply_sets(
    mut merged: toml::Table,
    mut layers: Vec<String>,
    mut origins: BTreeMap<String, String>,
    sets: &[String],
) -> Result<Resolved> {
    for set in sets {
        let label = format!("--set {set}");
        let (key, value) = parse_set(set)?;
        let mut layer = toml::Table::new();
        insert_dotted(&mut layer, &key, value)
            .map_err(|e| Error::Config(format!("{label}: {e}")))?;
        check_layer(&layer, &label)?;
        record_origins(&layer, "", &label, &mut origins);
        merge(&mut merged, layer);
        layers.push(label);
    }
    let config = check_layer(&merged, "resolved config")?;
    if let Err(msg) = config.validate() {
        let key = msg.split([' ', ',']).next().unwrap_or("");
        let origin = origins
            .get(key)
            .cloned()
            .unwrap_or_else(|| "config/default.toml".to_string());
        return Err(Error::Config(format!("{msg} (set in {origin})")));
    }
    Ok(Resolved {
        config,
        layers,
        origins,
        merged,
    })
}

impl Resolved {
    /// This config with more `section.key=value` layers on top (as if given last on the
    /// command line), checked and validated again.
    pub fn with_sets(&self, sets: &[String]) -> Result<Resolved> {
        apply_sets(
            self.merged.clone(),
            self.layers.clone(),
            self.origins.clone(),
            sets,
        )
    }
}

/// `--config fast` means `config/fast.toml`; anything with a separator or extension is a path.
fn resolve_named(named: &Path) -> Result<PathBuf> {
    if named.is_file() {
        return Ok(named.to_path_buf());
    }
    let s = named.to_string_lossy();
    if !s.contains('/') && named.extension().is_none() {
        let p = Path::new("config").join(format!("{s}.toml"));
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(Error::Config(format!(
        "{}: no such config file (give a path, or a name of a file in config/)",
        named.display()
    )))
}

fn parse_layer(text: &str, label: &str) -> Result<toml::Table> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        Error::Config(format!("{label}: {}", one_line(&e.to_string())))
    })?;
    check_layer(&table, label)?;
    Ok(table)
}

/// Deserializes one layer on its own, so an unknown key or a bad type names its layer.
fn check_layer(table: &toml::Table, label: &str) -> Result<Config> {
    let de = toml::Value::Table(table.clone());
    serde_path_to_error::deserialize::<_, Config>(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = one_line(&e.into_inner().to_string());
        if path.is_empty() || path == "." {
            Error::Config(format!("{label}: {inner}"))
        } else {
            Error::Config(format!("{label}: key `{path}`: {inner}"))
        }
    })
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn parse_set(set: &str) -> Result<(String, toml::Value)> {
    let Some((key, raw)) = set.split_once('=') else {
        return Err(Error::Config(format!(
            "--set {set}: expected section.key=value, e.g. --set synth.seed=7"
        )));
    };
    let key = key.trim().to_string();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(Error::Config(format!("--set {set}: empty key")));
    }
    let raw = raw.trim();
    // A TOML value when it parses as one (numbers, booleans, arrays, quoted strings),
    // otherwise the raw text as a string (`--set ingest.adjust=split`).
    let value = format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    Ok((key, value))
}

fn insert_dotted(
    table: &mut toml::Table,
    key: &str,
    value: toml::Value,
) -> std::result::Result<(), String> {
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().expect("non-empty key");
    let mut t = table;
    for p in parts {
        let entry = t
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{p}` is not a section"))?;
    }
    t.insert(last.to_string(), value);
    Ok(())
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn record_origins(
    table: &toml::Table,
    prefix: &str,
    label: &str,
    out: &mut BTreeMap<String, String>,
) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => record_origins(t, &key, label, out),
            _ => {
                out.insert(key, label.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_toml_documents_exactly_the_defaults() {
        // The shipped file must agree with the code's defaults, field for field.
        let r = load(None, &[]).unwrap();
        assert_eq!(r.config, Config::default());
    }

    #[test]
    fn every_default_key_has_a_doc_comment() {
        let mut prev = "";
        for line in DEFAULT_TOML.lines() {
            let t = line.trim();
            if !t.is_empty() && !t.starts_with('#') && !t.starts_with('[') {
                assert!(
                    prev.starts_with('#'),
                    "undocumented key in default.toml: {t}"
                );
            }
            prev = t;
        }
    }

    #[test]
    fn set_overrides_and_types() {
        let r = load(
            None,
            &[
                "features.warmup_days=9".into(),
                "ingest.adjust=split".into(),
                "ingest.validation.policy.gap=drop-day".into(),
            ],
        )
        .unwrap();
        assert_eq!(r.config.features.warmup_days, 9);
        assert_eq!(r.config.ingest.adjust, AdjustMode::Split);
        assert_eq!(r.config.ingest.validation.policy.gap, Policy::DropDay);
        assert_eq!(
            r.origins["features.warmup_days"],
            "--set features.warmup_days=9"
        );
        assert!(r.to_toml().contains("warmup_days = 9"));
    }

    #[test]
    fn unknown_key_names_key_and_layer() {
        let e = load(None, &["features.warmup_dayz=3".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--set features.warmup_dayz=3"), "{e}");
        assert!(e.contains("warmup_dayz"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("mine.toml");
        std::fs::write(&f, "[features]\nwarmup_days = 3\n[bogus]\nx = 1\n").unwrap();
        let e = load(Some(&f), &[]).unwrap_err().to_string();
        assert!(e.contains("mine.toml") && e.contains("bogus"), "{e}");
    }

    #[test]
    fn bad_values_name_key_and_origin() {
        let e = load(None, &["features.warmup_days=-1".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("features.warmup_days"), "{e}");
        let e = load(None, &["ingest.validation.outlier_z=0".into()])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ingest.validation.outlier_z") && e.contains("--set"),
            "{e}"
        );
        let e = load(None, &["ingest.validation.policy.gap=maybe".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("policy.gap"), "{e}");
        let e = load(Some(Path::new("no/such/file.toml")), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no/such/file.toml"), "{e}");
        assert!(load(None, &["nokey".into()]).is_err());
    }
}
