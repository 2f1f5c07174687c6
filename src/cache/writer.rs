//! Writing one day cache atomically: temporary file in the target folder, fsync, rename.
//! A reader therefore sees either the previous complete file or the new complete file,
//! never a half-written one, whatever happens to the process in between.

use super::CacheError;
use super::format::{
    COLUMN_ALIGN, ColumnMeta, DType, FORMAT_VERSION, HEADER_LEN, Header, Meta, SessionTimes,
    align_up, checksum, col,
};
use super::index::{ClockSpec, build_groups};
use crate::bars::{Halt, Price, RawDay};
use crate::clock;
use std::io::Write;
use std::path::Path;

/// Day-level facts the writer records beside the bars.
#[derive(Clone, Debug)]
pub struct DayInfo {
    pub session: SessionTimes,
    pub utc_offset_sec: i32,
    pub source: String,
    pub adjust: String,
    pub feature_set: String,
    pub feature_version: u32,
    pub prev_close: Option<Price>,
    pub clock: ClockSpec,
    /// [`Meta::cleaning`].
    pub cleaning: String,
}

fn bytes_of<T: bytemuck::Pod>(v: &[T]) -> &[u8] {
    bytemuck::cast_slice(v)
}

/// Writes `day` (validated: sorted, one bar per clock slot) with its per-bar `flags`
/// (when known) and feature columns to `path`. Returns the metadata written and the file
/// size.
pub fn write_day(
    path: &Path,
    day: &RawDay,
    flags: Option<&[u32]>,
    feature_names: &[&str],
    features: &[Vec<f32>],
    info: &DayInfo,
) -> Result<(Meta, u64), CacheError> {
    let corrupt = |detail: String| CacheError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let rows = day.len();
    if features.len() != feature_names.len()
        || features.iter().any(|f| f.len() != rows)
        || flags.is_some_and(|f| f.len() != rows)
    {
        return Err(corrupt(
            "feature columns do not match the bars (internal error)".into(),
        ));
    }
    // The clock index: slot of every bar on the session clock.
    let slots: Vec<u32> = if info.clock.n_slots == 1 {
        vec![0; rows.min(1)]
    } else {
        day.ts_ns
            .iter()
            .map(|&ts| {
                let sec = clock::sec_of_day(ts, day.date, info.utc_offset_sec);
                info.clock.slot_of(sec).unwrap_or(u32::MAX)
            })
            .collect()
    };
    if info.clock.n_slots == 1 && rows > 1 {
        return Err(corrupt(format!(
            "{rows} daily bars for one day (internal error)"
        )));
    }
    let groups = build_groups(&info.clock, &slots).map_err(|i| {
        corrupt(format!(
            "bar {i} is off the session clock or out of order (internal error)"
        ))
    })?;

    let mut cols: Vec<(&str, DType, &[u8], u64)> = vec![
        (col::TS_NS, DType::I64, bytes_of(&day.ts_ns), rows as u64),
        (col::OPEN, DType::I64, bytes_of(&day.open), rows as u64),
        (col::HIGH, DType::I64, bytes_of(&day.high), rows as u64),
        (col::LOW, DType::I64, bytes_of(&day.low), rows as u64),
        (col::CLOSE, DType::I64, bytes_of(&day.close), rows as u64),
        (col::VOLUME, DType::U64, bytes_of(&day.volume), rows as u64),
    ];
    if let Some(v) = &day.vwap {
        cols.push((col::VWAP, DType::I64, bytes_of(v), rows as u64));
    }
    if let Some(v) = &day.transactions {
        cols.push((col::TRANSACTIONS, DType::U32, bytes_of(v), rows as u64));
    }
    if let Some(q) = &day.quotes {
        cols.push((col::BID, DType::I64, bytes_of(&q.bid), rows as u64));
        cols.push((col::ASK, DType::I64, bytes_of(&q.ask), rows as u64));
        cols.push((
            col::BID_SIZE,
            DType::U64,
            bytes_of(&q.bid_size),
            rows as u64,
        ));
        cols.push((
            col::ASK_SIZE,
            DType::U64,
            bytes_of(&q.ask_size),
            rows as u64,
        ));
    }
    if let Some(f) = &day.flow {
        cols.push((
            col::BUY_VOLUME,
            DType::U64,
            bytes_of(&f.buy_volume),
            rows as u64,
        ));
        cols.push((
            col::SELL_VOLUME,
            DType::U64,
            bytes_of(&f.sell_volume),
            rows as u64,
        ));
    }
    if let Some(f) = flags {
        cols.push((col::FLAGS, DType::U32, bytes_of(f), rows as u64));
    }
    for (name, f) in feature_names.iter().zip(features) {
        cols.push((name, DType::F32, bytes_of(f), rows as u64));
    }
    cols.push((
        col::CLOCK,
        DType::U32,
        bytes_of(&groups),
        groups.len() as u64 * 4,
    ));
    for (name, dtype, bytes, len) in &cols {
        if bytes.len() as u64 != len * dtype.size() as u64 {
            return Err(corrupt(format!(
                "column {name} has {} bytes for {len} rows (internal error)",
                bytes.len()
            )));
        }
    }

    let mut offset = 0u64;
    let mut columns = Vec::with_capacity(cols.len());
    for (name, dtype, bytes, len) in &cols {
        columns.push(ColumnMeta {
            name: name.to_string(),
            dtype: *dtype,
            offset,
            len: *len,
            checksum: checksum(bytes),
        });
        offset = align_up(offset + bytes.len() as u64, COLUMN_ALIGN as u64);
    }
    let data_len = offset;
    let meta = Meta {
        symbol: day.symbol.clone(),
        date: day.date,
        bar: day
            .bar
            .ok_or_else(|| corrupt("bar size unknown (internal error)".into()))?,
        rows: rows as u64,
        session: info.session,
        utc_offset_sec: info.utc_offset_sec,
        source: info.source.clone(),
        origin: day.origin.clone(),
        adjust: info.adjust.clone(),
        feature_set: info.feature_set.clone(),
        feature_version: info.feature_version,
        prev_close: info.prev_close,
        halts: day.halts.clone(),
        cleaning: Some(info.cleaning.clone()),
        clock: info.clock,
        columns,
        created_by: format!("sim-train {}", env!("CARGO_PKG_VERSION")),
    };
    let meta_json = serde_json::to_vec(&meta).map_err(|e| corrupt(format!("metadata: {e}")))?;
    let data_start = align_up((HEADER_LEN + meta_json.len()) as u64, COLUMN_ALIGN as u64);
    let file_len = data_start + data_len;
    let header = Header {
        version: FORMAT_VERSION,
        meta_len: meta_json.len() as u64,
        meta_checksum: checksum(&meta_json),
        data_start,
        file_len,
    };

    let io = |e: std::io::Error| CacheError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = crate::util::fs::temp_in(dir).map_err(io)?;
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        let zeros = [0u8; COLUMN_ALIGN];
        w.write_all(&header.encode()).map_err(io)?;
        w.write_all(&meta_json).map_err(io)?;
        w.write_all(&zeros[..(data_start as usize - HEADER_LEN - meta_json.len())])
            .map_err(io)?;
        let mut written = 0u64;
        for (_, _, bytes, _) in &cols {
            w.write_all(bytes).map_err(io)?;
            written += bytes.len() as u64;
            let pad = align_up(written, COLUMN_ALIGN as u64) - written;
            w.write_all(&zeros[..pad as usize]).map_err(io)?;
            written += pad;
        }
        w.flush().map_err(io)?;
    }
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok((meta, file_len))
}

/// Halts as seconds-of-day spans, for display.
pub fn halt_secs(halts: &[Halt], date: chrono::NaiveDate, utc_offset_sec: i32) -> Vec<[i64; 2]> {
    halts
        .iter()
        .map(|h| {
            [
                clock::sec_of_day(h.start_ns, date, utc_offset_sec),
                clock::sec_of_day(h.end_ns, date, utc_offset_sec),
            ]
        })
        .collect()
}
