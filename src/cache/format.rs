//! The on-disk layout of a day cache (`*.simday`), format version 1.
//!
//! ```text
//! offset  size  field
//!      0     8  magic  b"SIMTDAY\0"
//!      8     4  format version (u32 LE)
//!     12     4  reserved (0)
//!     16     8  meta_len: bytes of the JSON metadata that starts at offset 64
//!     24     8  meta_checksum: xxh3-64 of those bytes
//!     32     8  data_start: offset of the first column (multiple of 256)
//!     40     8  file_len: total file length
//!     48     8  header_checksum: xxh3-64 of bytes 0..48
//!     56     8  reserved (0)
//!     64     …  metadata (JSON, [`Meta`])
//! data_start …  columns, each starting at data_start + offset, offsets multiples of 256
//! ```
//!
//! Columns are little-endian arrays of one [`DType`], aligned to 256 bytes so that a
//! slice of the mmap can be reinterpreted in place (bytemuck) and uploaded to a GPU as a
//! storage buffer without reshuffling (wgpu's storage offset alignment is 256). Every
//! column carries its own xxh3-64 checksum; the header and metadata carry theirs, and the
//! header records the file length, so truncation, bit flips and foreign files are refused.

use crate::bars::{BarSize, Halt, Price};
use crate::cache::index::ClockSpec;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

pub const MAGIC: [u8; 8] = *b"SIMTDAY\0";
pub const FORMAT_VERSION: u32 = 1;
pub const HEADER_LEN: usize = 64;
pub const COLUMN_ALIGN: usize = 256;
/// File extension of day caches.
pub const EXTENSION: &str = "simday";

/// Element type of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    I64,
    U64,
    U32,
    F32,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::I64 | DType::U64 => 8,
            DType::U32 | DType::F32 => 4,
        }
    }
}

/// Where a column lives and how to check it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnMeta {
    pub name: String,
    pub dtype: DType,
    /// Byte offset from `data_start`.
    pub offset: u64,
    /// Number of elements.
    pub len: u64,
    /// xxh3-64 of the column's bytes.
    pub checksum: u64,
}

impl ColumnMeta {
    pub fn byte_len(&self) -> u64 {
        self.len * self.dtype.size() as u64
    }
}

/// Session times of the day, seconds since New York midnight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionTimes {
    pub pre_open_sec: u32,
    pub open_sec: u32,
    pub close_sec: u32,
    pub post_close_sec: u32,
    pub early_close: bool,
}

/// Everything about a day cache except its columns' bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    pub symbol: String,
    pub date: NaiveDate,
    pub bar: BarSize,
    pub rows: u64,
    pub session: SessionTimes,
    /// New York's UTC offset that day, seconds.
    pub utc_offset_sec: i32,
    /// Source kind (`lean`, `dbn`, `polygon`, `csv`, `parquet`, `synth`).
    pub source: String,
    /// The file(s) or generator the bars came from.
    pub origin: String,
    /// Corporate-action adjustment applied (`none`, `split`, `split+dividend`).
    pub adjust: String,
    pub feature_set: String,
    pub feature_version: u32,
    /// Previous trading day's regular-session close (the `gap_prev_close` reference).
    pub prev_close: Option<Price>,
    /// Trading halts that day, UTC nanoseconds.
    pub halts: Vec<Halt>,
    /// How the bars were cleaned: `causal` (every rule looks at a bar and earlier ones,
    /// as live does) or `lookahead-outliers` (spikes were removed with the next bar in
    /// view: live will differ). Absent in caches written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleaning: Option<String>,
    pub clock: ClockSpec,
    pub columns: Vec<ColumnMeta>,
    /// `sim-train <version>` that wrote the file.
    pub created_by: String,
}

/// `flags` column bit: the causal bad-print check ([`crate::validate::PrintCheck`])
/// found the bar suspect. The bar is kept as the vendor sent it.
pub const FLAG_SUSPECT: u32 = 1;

/// Names of the fixed columns (features follow under their own names).
pub mod col {
    pub const TS_NS: &str = "ts_ns";
    pub const OPEN: &str = "open";
    pub const HIGH: &str = "high";
    pub const LOW: &str = "low";
    pub const CLOSE: &str = "close";
    pub const VOLUME: &str = "volume";
    pub const VWAP: &str = "vwap";
    pub const TRANSACTIONS: &str = "transactions";
    pub const BID: &str = "bid";
    pub const ASK: &str = "ask";
    pub const BID_SIZE: &str = "bid_size";
    pub const ASK_SIZE: &str = "ask_size";
    /// Per-bar flags, u32: bit [`FLAG_SUSPECT`](super::FLAG_SUSPECT).
    pub const FLAGS: &str = "flags";
    /// Volume initiated by buyers / by sellers (u64), from trade records.
    pub const BUY_VOLUME: &str = "buy_volume";
    pub const SELL_VOLUME: &str = "sell_volume";
    pub const CLOCK: &str = "clock_index";
}

/// The 64-byte fixed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    pub meta_len: u64,
    pub meta_checksum: u64,
    pub data_start: u64,
    pub file_len: u64,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&self.version.to_le_bytes());
        b[16..24].copy_from_slice(&self.meta_len.to_le_bytes());
        b[24..32].copy_from_slice(&self.meta_checksum.to_le_bytes());
        b[32..40].copy_from_slice(&self.data_start.to_le_bytes());
        b[40..48].copy_from_slice(&self.file_len.to_le_bytes());
        let sum = checksum(&b[0..48]);
        b[48..56].copy_from_slice(&sum.to_le_bytes());
        b
    }

    /// Decodes and checks the header; the error says what is wrong.
    pub fn decode(b: &[u8]) -> Result<Header, HeaderError> {
        if b.len() < HEADER_LEN {
            return Err(HeaderError::Short(b.len()));
        }
        if b[0..8] != MAGIC {
            return Err(HeaderError::Magic);
        }
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
        let version = u32::from_le_bytes(b[8..12].try_into().expect("4 bytes"));
        if version != FORMAT_VERSION {
            return Err(HeaderError::Version(version));
        }
        if u64_at(48) != checksum(&b[0..48]) {
            return Err(HeaderError::Checksum);
        }
        Ok(Header {
            version,
            meta_len: u64_at(16),
            meta_checksum: u64_at(24),
            data_start: u64_at(32),
            file_len: u64_at(40),
        })
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum HeaderError {
    Short(usize),
    Magic,
    Version(u32),
    Checksum,
}

/// The checksum used everywhere in the format.
#[inline]
pub fn checksum(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

pub fn align_up(x: u64, align: u64) -> u64 {
    x.div_ceil(align) * align
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_detects_damage() {
        let h = Header {
            version: FORMAT_VERSION,
            meta_len: 1234,
            meta_checksum: 99,
            data_start: 1536,
            file_len: 100_000,
        };
        let b = h.encode();
        assert_eq!(Header::decode(&b), Ok(h));
        let mut flipped = b;
        flipped[20] ^= 1;
        assert_eq!(Header::decode(&flipped), Err(HeaderError::Checksum));
        let mut foreign = b;
        foreign[0] = b'P';
        assert_eq!(Header::decode(&foreign), Err(HeaderError::Magic));
        assert_eq!(Header::decode(&b[..10]), Err(HeaderError::Short(10)));
    }
}
