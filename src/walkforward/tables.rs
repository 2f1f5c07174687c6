//! The report's tables, written three ways (CSV, JSON, Parquet) and shown in the HTML page
//! from one definition.

use super::html::Cell;
use crate::error::{Error, Result};
use polars::prelude::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// How a column is typed and shown.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Text,
    Int,
    /// A number shown with this many decimals.
    Num(usize),
    /// A fraction shown as a percentage with this many decimals.
    Pct(usize),
    /// A gate verdict (PASS / FAIL).
    Pass,
}

/// One cell.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    S(String),
    I(i64),
    F(f64),
    B(bool),
}

/// A named table with typed columns.
#[derive(Clone, Debug)]
pub struct Table {
    pub name: String,
    pub columns: Vec<(String, Kind)>,
    pub rows: Vec<Vec<Val>>,
}

impl Table {
    pub fn new(name: &str, columns: Vec<(String, Kind)>) -> Table {
        Table {
            name: name.to_string(),
            columns,
            rows: Vec::new(),
        }
    }

    /// Appends a row (one value per column, of the column's kind).
    pub fn push(&mut self, row: Vec<Val>) {
        debug_assert_eq!(row.len(), self.columns.len(), "table {}", self.name);
        self.rows.push(row);
    }

    /// CSV: a header, then one line per row; numbers in Rust's shortest round-trip form,
    /// missing numbers (NaN) empty, booleans `true`/`false`.
    pub fn csv(&self) -> String {
        let mut s = String::new();
        let header: Vec<String> = self.columns.iter().map(|(n, _)| quote(n)).collect();
        s.push_str(&header.join(","));
        s.push('\n');
        for row in &self.rows {
            let cells: Vec<String> = row
                .iter()
                .map(|v| match v {
                    Val::S(x) => quote(x),
                    Val::I(x) => x.to_string(),
                    Val::F(x) if x.is_finite() => x.to_string(),
                    Val::F(_) => String::new(),
                    Val::B(x) => x.to_string(),
                })
                .collect();
            let _ = writeln!(s, "{}", cells.join(","));
        }
        s
    }

    /// JSON: an array of row objects (missing numbers `null`).
    pub fn json(&self) -> serde_json::Value {
        let rows = self
            .rows
            .iter()
            .map(|row| {
                let mut obj = serde_json::Map::new();
                for ((name, _), v) in self.columns.iter().zip(row) {
                    let value = match v {
                        Val::S(x) => serde_json::Value::from(x.clone()),
                        Val::I(x) => serde_json::Value::from(*x),
                        Val::F(x) if x.is_finite() => serde_json::Value::from(*x),
                        Val::F(_) => serde_json::Value::Null,
                        Val::B(x) => serde_json::Value::from(*x),
                    };
                    obj.insert(name.clone(), value);
                }
                serde_json::Value::Object(obj)
            })
            .collect();
        serde_json::Value::Array(rows)
    }

    /// The table as a polars frame (Parquet output).
    fn frame(&self) -> Result<DataFrame> {
        let mut cols = Vec::with_capacity(self.columns.len());
        for (k, (name, kind)) in self.columns.iter().enumerate() {
            let cells = self.rows.iter().map(|r| &r[k]);
            let col = match kind {
                Kind::Text => Column::new(
                    name.into(),
                    cells
                        .map(|v| match v {
                            Val::S(x) => x.clone(),
                            other => format!("{other:?}"),
                        })
                        .collect::<Vec<String>>(),
                ),
                Kind::Int => Column::new(
                    name.into(),
                    cells
                        .map(|v| match v {
                            Val::I(x) => Some(*x),
                            _ => None,
                        })
                        .collect::<Vec<Option<i64>>>(),
                ),
                Kind::Num(_) | Kind::Pct(_) => Column::new(
                    name.into(),
                    cells
                        .map(|v| match v {
                            Val::F(x) if x.is_finite() => Some(*x),
                            _ => None,
                        })
                        .collect::<Vec<Option<f64>>>(),
                ),
                Kind::Pass => Column::new(
                    name.into(),
                    cells
                        .map(|v| match v {
                            Val::B(x) => Some(*x),
                            _ => None,
                        })
                        .collect::<Vec<Option<bool>>>(),
                ),
            };
            cols.push(col);
        }
        DataFrame::new_infer_height(cols)
            .map_err(|e| Error::Data(format!("building table {}: {e}", self.name)))
    }

    /// Writes `<dir>/<name>.csv`, `.json` and `.parquet`; returns their paths.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        let base = dir.join(&self.name);
        let csv = base.with_extension("csv");
        crate::util::fs::write_atomic(&csv, self.csv().as_bytes())?;
        let json = base.with_extension("json");
        let mut text = serde_json::to_string_pretty(&self.json()).expect("serializes");
        text.push('\n');
        crate::util::fs::write_atomic(&json, text.as_bytes())?;
        let parquet = base.with_extension("parquet");
        let mut df = self.frame()?;
        crate::cache::export::write_frame(&mut df, &parquet, true)?;
        Ok(vec![csv, json, parquet])
    }

    /// The table's cells for the HTML page.
    pub fn cells(&self) -> (Vec<String>, Vec<Vec<Cell>>) {
        let columns = self.columns.iter().map(|(n, _)| n.clone()).collect();
        let rows = self
            .rows
            .iter()
            .map(|row| {
                row.iter()
                    .zip(&self.columns)
                    .map(|(v, (_, kind))| match (v, kind) {
                        (Val::F(x), Kind::Pct(d)) => Cell::Pct(*x, *d),
                        (Val::F(x), Kind::Num(d)) => Cell::Num(*x, *d),
                        (Val::F(x), _) => Cell::Num(*x, 4),
                        (Val::B(x), _) => Cell::Pass(*x),
                        (Val::I(x), _) => Cell::Text(x.to_string()),
                        (Val::S(x), _) => Cell::Text(x.clone()),
                    })
                    .collect()
            })
            .collect();
        (columns, rows)
    }
}

fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
