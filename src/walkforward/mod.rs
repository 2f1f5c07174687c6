//! Walk-forward sweeps: folds over trading days ([`folds`]), a plan of independent units
//! (fold × config × seed, [`plan`]) that shards run anywhere ([`unit`]), and a merge into
//! out-of-sample tables, promotion gates, overfitting diagnostics and an HTML report
//! ([`merge`]).
//!
//! A sweep trains its units, so everything but the `[walkforward]` config section
//! ([`config`]) and the folds it describes is built with the `torch` feature only.

#[cfg(feature = "torch")]
pub mod charts;
pub mod config;
pub mod folds;
#[cfg(feature = "torch")]
pub mod html;
#[cfg(feature = "torch")]
pub mod merge;
#[cfg(feature = "torch")]
pub mod plan;
#[cfg(feature = "torch")]
mod tables;
#[cfg(feature = "torch")]
pub mod unit;

pub use config::{Gates, Variant, WalkForwardConfig};
pub use folds::{Fold, FoldSpec, Window, audit_csv, make_folds};
#[cfg(feature = "torch")]
pub use merge::{Merged, WalkForwardReport, merge};
#[cfg(feature = "torch")]
pub use plan::{Plan, Unit, build_plan, open_plan, read_plan, sweep_config, write_plan};
#[cfg(feature = "torch")]
pub use unit::{Outcome, UnitResult, run_unit};
