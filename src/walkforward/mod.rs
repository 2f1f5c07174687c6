//! Walk-forward sweeps: folds over trading days ([`folds`]), a plan of independent units
//! (fold × config × seed, [`plan`]) that shards run anywhere ([`unit`]), and a merge into
//! out-of-sample tables, promotion gates, overfitting diagnostics and an HTML report
//! ([`merge`]).

pub mod charts;
pub mod config;
pub mod folds;
pub mod html;
pub mod merge;
pub mod plan;
mod tables;
pub mod unit;

pub use config::{Gates, Variant, WalkForwardConfig};
pub use folds::{Fold, FoldSpec, Window, audit_csv, make_folds};
pub use merge::{Merged, WalkForwardReport, merge};
pub use plan::{Plan, Unit, build_plan, open_plan, read_plan, sweep_config, write_plan};
pub use unit::{Outcome, UnitResult, run_unit};
