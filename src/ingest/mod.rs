//! Ingest: turning vendor files (or the synthetic generator) into [`RawDay`]s.
//!
//! Every source implements [`Source`]: it lists the dates it has for a [`Selection`] and
//! loads all selected symbols of one date at a time. The cache builder walks dates in
//! order (features warm up across days of the same symbol) and parallelizes over symbols
//! and files, so a source never holds more than one date's bars per call.

use crate::bars::{BarSize, RawDay};
use crate::error::Result;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

pub mod dbn;
pub mod lean;
pub mod synth;
pub mod table;
pub mod ticks;

/// Which data a build asks a source for.
#[derive(Clone, Debug)]
pub struct Selection {
    /// Only these symbols (upper-case), or all.
    pub symbols: Option<BTreeSet<String>>,
    /// First date to load (the build's `--from` minus the feature warm-up days), inclusive.
    pub from: Option<NaiveDate>,
    /// Last date to load, inclusive.
    pub to: Option<NaiveDate>,
    /// Bar resolution to load.
    pub bar: BarSize,
}

impl Selection {
    pub fn all(bar: BarSize) -> Selection {
        Selection {
            symbols: None,
            from: None,
            to: None,
            bar,
        }
    }
    pub fn wants_symbol(&self, symbol: &str) -> bool {
        self.symbols
            .as_ref()
            .is_none_or(|s| s.contains(&symbol.to_ascii_uppercase()))
    }
    pub fn wants_date(&self, date: NaiveDate) -> bool {
        self.from.is_none_or(|f| date >= f) && self.to.is_none_or(|t| date <= t)
    }
}

/// The kinds of input `cache build --source` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// QuantConnect LEAN equity folder (`equity/usa/<res>/...`).
    Lean,
    /// Databento DBN files (`.dbn`, `.dbn.zst`), a file or a folder of them.
    Dbn,
    /// Polygon minute-aggregate flat files (`.csv`, `.csv.gz`).
    Polygon,
    /// Generic CSV, columns named in `[ingest.table]`.
    Csv,
    /// Generic Parquet, columns named in `[ingest.table]`.
    Parquet,
    /// The seeded synthetic generator (a `synth` output folder, or the `[synth]` config).
    Synth,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Lean => "lean",
            SourceKind::Dbn => "dbn",
            SourceKind::Polygon => "polygon",
            SourceKind::Csv => "csv",
            SourceKind::Parquet => "parquet",
            SourceKind::Synth => "synth",
        }
    }
}

/// A provider of raw bars, one date at a time.
pub trait Source: Send + Sync {
    /// Short name recorded in every cache built from it (`lean`, `dbn`, ...).
    fn name(&self) -> &'static str;
    /// Dates that have data for the selection, ascending, without duplicates.
    fn dates(&self) -> Result<Vec<NaiveDate>>;
    /// Every selected symbol's bars on `date`, one [`RawDay`] per symbol. Bars may be
    /// unsorted or duplicated (validation deals with that); prices are raw (unadjusted).
    fn load_date(&self, date: NaiveDate) -> Result<Vec<RawDay>>;
}
