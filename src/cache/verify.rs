//! `cache verify`: every file of a cache folder fully checked (in parallel), and the
//! catalog checked against the files, so that a bad file is named before anything trusts it.

use super::{Catalog, DayCache, Verify, list_day_files};
use crate::error::Result;
use rayon::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Serialize)]
pub struct BadFile {
    pub path: PathBuf,
    pub reason: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifyReport {
    pub files: usize,
    pub bytes: u64,
    pub bad: Vec<BadFile>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.bad.is_empty()
    }
}

/// What opening one file found: (bytes, symbol, date, rows) or why it is bad.
type FileCheck = (
    PathBuf,
    std::result::Result<(u64, String, chrono::NaiveDate, u64), String>,
);

/// Checks every `*.simday` under `dir` and the catalog's agreement with them.
pub fn verify_dir(dir: &Path) -> Result<VerifyReport> {
    let catalog = Catalog::load_existing(dir)?;
    let files = list_day_files(dir)?;
    let results: Vec<FileCheck> = files
        .par_iter()
        .map(|p| {
            let r = DayCache::open_with(p, Verify::Full)
                .map(|c| {
                    (
                        c.file_len() as u64,
                        c.meta().symbol.clone(),
                        c.meta().date,
                        c.meta().rows,
                    )
                })
                .map_err(|e| e.to_string());
            (p.clone(), r)
        })
        .collect();
    let mut report = VerifyReport {
        files: files.len(),
        ..VerifyReport::default()
    };
    let mut seen = std::collections::BTreeSet::new();
    for (path, r) in results {
        match r {
            Ok((bytes, symbol, date, rows)) => {
                report.bytes += bytes;
                match catalog.get(&symbol, date) {
                    None => report.bad.push(BadFile {
                        path,
                        reason: "not listed in catalog.json (rebuild the cache to list it)".into(),
                    }),
                    Some(e) if e.rows != rows || dir.join(&e.file) != path => {
                        report.bad.push(BadFile {
                            path,
                            reason: format!(
                                "catalog.json says {} rows at {}, the file has {rows}",
                                e.rows,
                                e.file.display()
                            ),
                        })
                    }
                    Some(_) => {
                        seen.insert((symbol, date));
                    }
                }
            }
            Err(reason) => report.bad.push(BadFile { path, reason }),
        }
    }
    for ((symbol, date), e) in &catalog.entries {
        let path = dir.join(&e.file);
        if !path.exists() {
            report.bad.push(BadFile {
                path,
                reason: format!("listed in catalog.json for {symbol} {date} but missing"),
            });
        }
    }
    Ok(report)
}
