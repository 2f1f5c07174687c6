//! The live journal: append-only, one record per input line of a stream, bad bar,
//! command, decision, rejection, order, broker rejection, fill and state change, each flushed to the OS before the loop goes on and fsynced per record or
//! in groups ([`Journal::sync`]), so that after a crash at any moment the state is
//! rebuilt from it.
//!
//! A record is one line: its JSON, a tab, and the XXH3-64 of the JSON in hex. Records
//! are numbered from 1 without gaps. [`Journal::open`] reads every record back:
//! - a **damaged tail** (the last line cut by a crash, or not ending in a newline, or
//!   failing its checksum) is reported in [`Opened::damaged_tail`], not trusted, and cut
//!   off before new records are appended;
//! - damage **before** the tail (a bad record followed by good ones, or a gap in the
//!   numbering) is an error: the file was altered, and nothing is rebuilt from it.
//!
//! [`Book`] folds the fills back into positions, realized P&L and costs.

use crate::error::{Error, IoContext, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, Seek, Write};
use std::path::{Path, PathBuf};

/// What happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A trading day begins at this equity.
    Day {
        date: chrono::NaiveDate,
        equity: f64,
    },
    /// The policy's decision on a bar.
    Decision {
        symbol: String,
        action: usize,
        target: i64,
    },
    /// The risk manager changed a decision's target.
    Rejection {
        symbol: String,
        requested: i64,
        allowed: i64,
        reasons: Vec<String>,
    },
    /// An order sent to the broker.
    Order {
        symbol: String,
        id: u64,
        shares: i64,
    },
    /// The broker would not take an order.
    OrderRejected {
        symbol: String,
        id: u64,
        reason: String,
    },
    /// A (partial) fill: signed shares at a price, with its costs.
    Fill {
        symbol: String,
        order: u64,
        shares: i64,
        price: f64,
        cost: f64,
    },
    /// A stream's line, as received (journaled before it is looked at).
    Input { line: String },
    /// A stream's line refused: nothing is traded on it.
    BadBar { symbol: String, reason: String },
    /// An operator's command (kill switch, reduce-only, resume) and where it came from.
    Command {
        command: super::control::Command,
        source: String,
    },
    /// The trading state changed.
    State {
        from: super::risk::TradingState,
        to: super::risk::TradingState,
        reason: String,
    },
}

/// One journal record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    pub ts_ns: i64,
    #[serde(flatten)]
    pub event: Event,
}

/// A damaged tail that was cut off.
#[derive(Clone, Debug, PartialEq)]
pub struct DamagedTail {
    /// Byte offset where the good records end.
    pub offset: u64,
    /// Bytes dropped.
    pub bytes: u64,
    pub why: String,
}

/// An open journal, ready to append.
pub struct Journal {
    path: PathBuf,
    file: std::fs::File,
    next_seq: u64,
    fsync: bool,
    /// A failed write could not be undone.
    broken: bool,
}

/// What [`Journal::open`] found.
pub struct Opened {
    pub journal: Journal,
    /// Every trusted record, in order.
    pub records: Vec<Record>,
    pub damaged_tail: Option<DamagedTail>,
}

fn checksum(json: &str) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(json.as_bytes()))
}

/// Parses one line (without its newline) into a record, or says why not.
fn parse_line(line: &[u8]) -> std::result::Result<Record, String> {
    let text = std::str::from_utf8(line).map_err(|_| "not UTF-8".to_string())?;
    let (json, sum) = text
        .rsplit_once('\t')
        .ok_or_else(|| "no checksum".to_string())?;
    if checksum(json) != sum {
        return Err("checksum mismatch".into());
    }
    serde_json::from_str(json).map_err(|e| format!("not a record: {e}"))
}

impl Journal {
    /// Opens (or creates) the journal at `path`, reads back its records and cuts off a
    /// damaged tail (reported). `fsync`: sync every record to disk (else flush to the OS).
    pub fn open(path: &Path, fsync: bool) -> Result<Opened> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).at(dir)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .at(path)?;
        let mut records: Vec<Record> = Vec::new();
        let mut good_end = 0u64;
        let mut damage: Option<(u64, String)> = None;
        {
            let mut reader = std::io::BufReader::new(&file);
            let mut line = Vec::new();
            let mut offset = 0u64;
            loop {
                line.clear();
                let n = reader.read_until(b'\n', &mut line).at(path)? as u64;
                if n == 0 {
                    break;
                }
                let complete = line.last() == Some(&b'\n');
                let body = if complete {
                    &line[..line.len() - 1]
                } else {
                    &line[..]
                };
                let parsed = if complete {
                    parse_line(body)
                } else {
                    Err("the last line is incomplete".into())
                };
                match (parsed, &damage) {
                    (Ok(r), None) => {
                        let want = records.last().map_or(1, |p| p.seq + 1);
                        if r.seq != want {
                            return Err(Error::input(
                                path,
                                format!(
                                    "record {} at byte {offset} where record {want} was due: the journal was altered; nothing is rebuilt from it",
                                    r.seq
                                ),
                            ));
                        }
                        records.push(r);
                        good_end = offset + n;
                    }
                    (Ok(r), Some((at, why))) => {
                        return Err(Error::input(
                            path,
                            format!(
                                "damaged record at byte {at} ({why}) followed by good record {}: the journal was altered; nothing is rebuilt from it",
                                r.seq
                            ),
                        ));
                    }
                    (Err(why), None) => damage = Some((offset, why)),
                    (Err(_), Some(_)) => {}
                }
                offset += n;
            }
        }
        let len = file.metadata().at(path)?.len();
        let damaged_tail = damage.map(|(at, why)| DamagedTail {
            offset: good_end,
            bytes: len - good_end,
            why: format!("{why} (at byte {at})"),
        });
        if let Some(d) = &damaged_tail {
            tracing::warn!(
                path = %path.display(),
                offset = d.offset,
                bytes = d.bytes,
                "journal: damaged tail not trusted, cut off: {}",
                d.why
            );
            file.set_len(good_end).at(path)?;
            file.sync_all().at(path)?;
        }
        file.seek(std::io::SeekFrom::End(0)).at(path)?;
        let next_seq = records.last().map_or(1, |r| r.seq + 1);
        Ok(Opened {
            journal: Journal {
                path: path.to_path_buf(),
                file,
                next_seq,
                fsync,
                broken: false,
            },
            records,
            damaged_tail,
        })
    }

    /// Appends `event` at `ts_ns`; returns the record once it is written (and synced).
    /// A failed write is undone (the file is cut back to where the record began), so a
    /// later append cannot glue onto a fragment; if even that fails, the journal refuses
    /// every further append.
    pub fn append(&mut self, ts_ns: i64, event: Event) -> Result<Record> {
        if self.broken {
            return Err(Error::input(
                &self.path,
                "an earlier write failed and could not be undone: reopen the journal",
            ));
        }
        let record = Record {
            seq: self.next_seq,
            ts_ns,
            event,
        };
        let json = serde_json::to_string(&record).expect("a record serializes");
        let line = format!("{json}\t{}\n", checksum(&json));
        let start = self.file.metadata().at(&self.path)?.len();
        let written = self
            .file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.flush())
            .and_then(|()| {
                if self.fsync {
                    self.file.sync_data()
                } else {
                    Ok(())
                }
            });
        if let Err(e) = written {
            if self.file.set_len(start).is_err() {
                self.broken = true;
            }
            return Err(Error::io(&self.path, e));
        }
        self.next_seq += 1;
        Ok(record)
    }

    /// Makes every record appended so far durable (a group commit for journals opened
    /// without per-record fsync).
    pub fn sync(&mut self) -> Result<()> {
        self.file.sync_data().at(&self.path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// One symbol's position with its average entry price.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Position {
    pub shares: i64,
    pub avg_price: f64,
}

/// Positions, realized P&L and costs folded from fills.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Book {
    pub positions: BTreeMap<String, Position>,
    /// Realized P&L before costs, dollars.
    pub realized: f64,
    pub costs: f64,
}

impl Book {
    /// Folds every fill of `records`.
    pub fn from_records(records: &[Record]) -> Book {
        let mut book = Book::default();
        for r in records {
            if let Event::Fill {
                symbol,
                shares,
                price,
                cost,
                ..
            } = &r.event
            {
                book.fill(symbol, *shares, *price, *cost);
            }
        }
        book
    }

    /// A fill of `shares` (signed) at `price`: closing shares realize against the average
    /// entry price; opening shares move it.
    pub fn fill(&mut self, symbol: &str, shares: i64, price: f64, cost: f64) {
        let p = self.positions.entry(symbol.to_string()).or_default();
        self.costs += cost;
        let closing = if p.shares.signum() * shares.signum() < 0 {
            shares.abs().min(p.shares.abs())
        } else {
            0
        };
        if closing > 0 {
            self.realized += closing as f64 * (price - p.avg_price) * p.shares.signum() as f64;
        }
        let after = p.shares + shares;
        if after == 0 {
            p.avg_price = 0.0;
        } else if after.signum() != p.shares.signum() {
            // Flipped (or opened from flat): the remainder opens at this price.
            p.avg_price = price;
        } else if after.abs() > p.shares.abs() {
            let added = (after.abs() - p.shares.abs()) as f64;
            p.avg_price =
                (p.avg_price * p.shares.abs() as f64 + price * added) / after.abs() as f64;
        }
        p.shares = after;
        if p.shares == 0 {
            self.positions.remove(symbol);
        }
    }
}
