//! The scanner sampler's day loader: an index day and its lookback, through the
//! background [`crate::env::preload::Preloader`].

use super::index::{FileStamp, Index};
use crate::env::preload::DayLoader;
use crate::env::{DayData, EnvParams};
use crate::error::{Error, Result};
use std::sync::Arc;

/// A day as the CPU environments use it, with its lookback.
#[derive(Debug)]
pub struct LoadedDay {
    pub day: Arc<DayData>,
    /// The symbol's previous trading day, when it is cached and inside the sampled range.
    pub lookback: Option<Arc<DayData>>,
}

/// Loads days of an index from their cache files for the CPU environments.
pub struct CpuLoader {
    params: Arc<EnvParams>,
    /// Per index day: its file as scanned.
    files: Vec<FileStamp>,
    symbols: Vec<String>,
    dates: Vec<chrono::NaiveDate>,
    /// Per index day: the index day id of its lookback (None: no lookback).
    lookback: Vec<Option<u32>>,
}

impl CpuLoader {
    /// `lookback[k]` names day k's lookback day (see [`super::Sampler`]).
    pub fn new(idx: &Index, params: Arc<EnvParams>, lookback: Vec<Option<u32>>) -> CpuLoader {
        CpuLoader {
            params,
            files: idx
                .days
                .iter()
                .map(|d| FileStamp {
                    path: d.path.clone().into(),
                    len: d.file_len,
                    mtime_ns: d.file_mtime_ns,
                })
                .collect(),
            symbols: idx.days.iter().map(|d| d.symbol.clone()).collect(),
            dates: idx.days.iter().map(|d| d.date).collect(),
            lookback,
        }
    }

    fn load_one(&self, id: u32) -> Result<DayData> {
        let f = &self.files[id as usize];
        let now = FileStamp::of(&f.path).map_err(|_| {
            Error::NotFound(format!(
                "{} {}: the index names {}, which no longer exists; rescan with `sim-train scan`",
                self.symbols[id as usize],
                self.dates[id as usize],
                f.path.display()
            ))
        })?;
        if now.len != f.len || now.mtime_ns != f.mtime_ns {
            return Err(Error::Data(format!(
                "{}: changed since the index was built (the index describes the old file); rescan with `sim-train scan`",
                f.path.display()
            )));
        }
        DayData::open(&f.path, &self.params)
    }
}

impl DayLoader for CpuLoader {
    type Day = LoadedDay;
    fn load(&self, id: u32, resident: &dyn Fn(u32) -> Option<Arc<LoadedDay>>) -> Result<LoadedDay> {
        let day = Arc::new(self.load_one(id)?);
        let lookback = match self.lookback.get(id as usize).copied().flatten() {
            Some(prev) => Some(match resident(prev) {
                Some(d) => d.day.clone(),
                None => Arc::new(self.load_one(prev)?),
            }),
            None => None,
        };
        Ok(LoadedDay { day, lookback })
    }
}
