//! Walk-forward evaluation. So far: the fold arithmetic ([`folds`]); sweeps, sharding and
//! reports build on it.

pub mod folds;

pub use folds::{Fold, FoldSpec, Window, audit_csv, make_folds};
