//! Environment scenarios shared by the parity and GPU conformance tests: configs that
//! exercise every reward kind and execution rule, and real and synthetic days (with halts).

use sim_train::bars::BarSize;
use sim_train::env::{DayData, DaySelection, EnvConfig, EnvParams, load_days};
use std::path::Path;
use std::sync::Arc;

pub fn days_of(cache: &Path, p: &EnvParams) -> Vec<Arc<DayData>> {
    load_days(cache, &DaySelection::default(), p).unwrap()
}

/// Real days: SPY 1 s bars with quotes, and 1 m bars of three symbols.
pub fn real_days(test: &str, dir: &Path, p: &EnvParams) -> Option<Vec<Arc<DayData>>> {
    let s1 = super::lean_cache(test, BarSize::S1, &["SPY"], &dir.join("s1"))?;
    let m1 = super::lean_cache(test, BarSize::M1, &["SPY", "AIG", "BAC"], &dir.join("m1"))?;
    let mut days = days_of(&s1, p);
    assert!(
        days.iter().any(|d| d.bars.iter().any(|b| b.has_quote())),
        "SPY 1 s has quotes"
    );
    days.extend(days_of(&m1, p));
    Some(days)
}

pub fn synth_days(dir: &Path, p: &EnvParams, bar: &str) -> Vec<Arc<DayData>> {
    let cache = super::synth_cache(
        dir,
        &[
            "synth.symbols=3",
            "synth.days=3",
            &format!("synth.bar=\"{bar}\""),
            "synth.halt_prob=0.5",
            "synth.momentum_share=0.5",
        ],
    );
    days_of(&cache, p)
}

pub fn params(edit: impl FnOnce(&mut EnvConfig)) -> Arc<EnvParams> {
    let mut c = EnvConfig {
        start_times: ["09:30:00", "10:00:00", "12:30:00", "15:58:00"]
            .map(String::from)
            .to_vec(),
        ..EnvConfig::default()
    };
    edit(&mut c);
    Arc::new(EnvParams::from_config(&c).unwrap())
}

/// The variants the parity and conformance tests run (`env::conformance::variants`):
/// every reward kind, latency, cancel, loss limits, truncation, a feature subset.
pub fn variants() -> Vec<(&'static str, Arc<EnvParams>)> {
    sim_train::env::conformance::variants()
        .into_iter()
        .map(|(label, c)| (label, Arc::new(EnvParams::from_config(&c).unwrap())))
        .collect()
}
