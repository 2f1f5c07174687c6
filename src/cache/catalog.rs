//! `catalog.json`: what a cache folder holds (symbols, dates, rows, sizes, and the settings
//! every file shares), so tools list and select days without opening each file. The
//! catalog is rewritten atomically after every build; `cache verify` checks it against the
//! files.

use super::format::Meta;
use crate::bars::BarSize;
use crate::error::{Error, Result};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const CATALOG_FILE: &str = "catalog.json";

/// Settings that every file in one cache folder shares: mixing them (raw with adjusted
/// prices, 1s with 1m bars, old with new features) would make one folder lie.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheSettings {
    pub bar: BarSize,
    pub adjust: String,
    pub feature_set: String,
    pub feature_version: u32,
    pub format_version: u32,
    /// How the bars were cleaned ([`crate::build::cleaning_of`]): `causal`, or
    /// `lookahead-outliers`, which catalogs written before it was recorded read as (the
    /// look-ahead spike filter was the default then).
    #[serde(default = "lookahead_cleaning")]
    pub cleaning: String,
    /// The symbol the cross-sectional features were computed against (`None`: no
    /// benchmark, or a catalog from before feature set v2).
    #[serde(default)]
    pub benchmark: Option<String>,
}

fn lookahead_cleaning() -> String {
    "lookahead-outliers".into()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CatalogEntry {
    pub symbol: String,
    pub date: NaiveDate,
    pub rows: u64,
    pub bytes: u64,
    /// Path relative to the cache folder.
    pub file: PathBuf,
    pub source: String,
    pub first_ts_ns: Option<i64>,
    pub last_ts_ns: Option<i64>,
    pub halts: usize,
    /// Checksum of the factor file an adjusted day was built with (None when unadjusted):
    /// days of one symbol built with different factor files would be on different scales.
    #[serde(default)]
    pub factor_checksum: Option<u64>,
}

impl CatalogEntry {
    pub fn from_meta(
        meta: &Meta,
        bytes: u64,
        file: PathBuf,
        first_ts_ns: Option<i64>,
        last_ts_ns: Option<i64>,
    ) -> Self {
        CatalogEntry {
            symbol: meta.symbol.clone(),
            date: meta.date,
            rows: meta.rows,
            bytes,
            file,
            source: meta.source.clone(),
            first_ts_ns,
            last_ts_ns,
            halts: meta.halts.len(),
            factor_checksum: None,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    pub settings: Option<CacheSettings>,
    #[serde(with = "entries_as_list")]
    pub entries: BTreeMap<(String, NaiveDate), CatalogEntry>,
}

mod entries_as_list {
    use super::CatalogEntry;
    use chrono::NaiveDate;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    type Map = BTreeMap<(String, NaiveDate), CatalogEntry>;

    pub fn serialize<S: Serializer>(m: &Map, s: S) -> Result<S::Ok, S::Error> {
        let v: Vec<&CatalogEntry> = m.values().collect();
        v.serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Map, D::Error> {
        let v = Vec::<CatalogEntry>::deserialize(d)?;
        Ok(v.into_iter()
            .map(|e| ((e.symbol.clone(), e.date), e))
            .collect())
    }
}

impl Catalog {
    /// Loads `<dir>/catalog.json`; a folder without one has an empty catalog.
    pub fn load(dir: &Path) -> Result<Catalog> {
        let path = dir.join(CATALOG_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::input(
                    &path,
                    format!("unreadable catalog ({e}); rebuild it with `sim-train cache build`"),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Catalog::default()),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Loads the catalog of a folder that must be a cache.
    pub fn load_existing(dir: &Path) -> Result<Catalog> {
        if !dir.join(CATALOG_FILE).is_file() {
            return Err(Error::NotFound(format!(
                "{}: no {CATALOG_FILE}; this is not a cache folder (build one with `sim-train cache build --cache {}`)",
                dir.display(),
                dir.display()
            )));
        }
        let catalog = Catalog::load(dir)?;
        if let Some(s) = &catalog.settings
            && s.cleaning != "causal"
        {
            tracing::warn!(
                "{}: its bars were cleaned with the next bar in view ({}): live trading cannot do that and will see other data; rebuild it with the default causal cleaning",
                dir.display(),
                s.cleaning
            );
        }
        Ok(catalog)
    }

    /// Writes the catalog atomically (temporary file, fsync, rename, fsync of the folder).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| Error::input(dir, e.to_string()))?;
        crate::util::fs::write_atomic(&dir.join(CATALOG_FILE), &json)
    }

    pub fn upsert(&mut self, entry: CatalogEntry) {
        self.entries
            .insert((entry.symbol.clone(), entry.date), entry);
    }

    pub fn symbols(&self) -> Vec<String> {
        let mut s: Vec<String> = self.entries.keys().map(|(s, _)| s.clone()).collect();
        s.dedup();
        s
    }

    pub fn get(&self, symbol: &str, date: NaiveDate) -> Option<&CatalogEntry> {
        self.entries.get(&(symbol.to_string(), date))
    }
}
