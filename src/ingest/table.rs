//! (in progress) Generic CSV / Parquet (and Polygon flat files) through polars.
use serde::{Deserialize, Serialize};

/// `[ingest.table]` config section.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TableSpec {}
