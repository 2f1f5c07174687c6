//! TensorBoard event files: scalar training curves that `tensorboard --logdir` shows.
//!
//! A file is a sequence of TFRecords, each holding one `tensorboard.Event` protocol buffer
//! (`tensorboard/compat/proto/event.proto` and `summary.proto`; the few messages and fields
//! used here are declared below with their field numbers). A record is
//! - the data's length, u64 little-endian;
//! - the masked CRC-32C of those 8 bytes, u32 little-endian;
//! - the data;
//! - the masked CRC-32C of the data, u32 little-endian;
//!
//! where masking is `((crc >> 15) | (crc << 17)) + 0xa282ead8` (wrapping). The first
//! record of a file is an event with `file_version = "brain.Event:2"`.
//!
//! Files are named `events.out.tfevents.<unix seconds, 10 digits>.<host>.<pid>.<counter>`,
//! like TensorBoard's own writer. TensorBoard reads every file in a folder whose name holds
//! `tfevents`, in name order, so a resumed run writes a new file into the same folder (see
//! [`EventWriter::create`] and [`EventWriter::restart`]).

use prost::Message;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The `file_version` of the first event of every file.
const FILE_VERSION: &str = "brain.Event:2";

/// How every event file's name begins.
const PREFIX: &str = "events.out.tfevents.";

/// `tensorboard.Event`: fields 1, 2 and the `what` cases 3, 5 and 7 only.
#[derive(Clone, PartialEq, prost::Message)]
struct Event {
    #[prost(double, tag = "1")]
    wall_time: f64,
    #[prost(int64, tag = "2")]
    step: i64,
    #[prost(oneof = "What", tags = "3, 5, 7")]
    what: Option<What>,
}

/// `tensorboard.Event.what`.
#[derive(Clone, PartialEq, prost::Oneof)]
enum What {
    #[prost(string, tag = "3")]
    FileVersion(String),
    #[prost(message, tag = "5")]
    Summary(Summary),
    #[prost(message, tag = "7")]
    SessionLog(SessionLog),
}

/// `tensorboard.Summary`.
#[derive(Clone, PartialEq, prost::Message)]
struct Summary {
    #[prost(message, repeated, tag = "1")]
    value: Vec<Value>,
}

/// `tensorboard.Summary.Value`: the tag and the `simple_value` case only.
#[derive(Clone, PartialEq, prost::Message)]
struct Value {
    #[prost(string, tag = "1")]
    tag: String,
    #[prost(oneof = "Kind", tags = "2")]
    value: Option<Kind>,
}

/// `tensorboard.Summary.Value.value`.
#[derive(Clone, PartialEq, prost::Oneof)]
enum Kind {
    #[prost(float, tag = "2")]
    SimpleValue(f32),
}

/// `tensorboard.SessionLog`: the status only.
#[derive(Clone, PartialEq, prost::Message)]
struct SessionLog {
    #[prost(int32, tag = "1")]
    status: i32,
}

/// `tensorboard.SessionLog.SessionStatus.START`.
const SESSION_START: i32 = 1;

/// Distinguishes the files one process creates within the same second.
static NEXT_FILE: AtomicU64 = AtomicU64::new(0);

/// The masked CRC-32C of `data` that TFRecords store.
fn masked_crc(data: &[u8]) -> u32 {
    mask(crc32c::crc32c(data))
}

/// TFRecord's masking of a CRC (rotate right by 15 bits, add a constant).
fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Writes `data` as one TFRecord.
fn write_record(out: &mut impl Write, data: &[u8]) -> io::Result<()> {
    let len = (data.len() as u64).to_le_bytes();
    out.write_all(&len)?;
    out.write_all(&masked_crc(&len).to_le_bytes())?;
    out.write_all(data)?;
    out.write_all(&masked_crc(data).to_le_bytes())
}

/// Seconds since the Unix epoch, now: the `wall_time` TensorBoard expects.
pub fn wall_time_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// This machine's name as a file name part (`localhost` when it cannot be read).
fn hostname() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let name: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

/// An open TensorBoard event file that scalars are appended to.
///
/// Writes are buffered: they reach the file on [`flush`](EventWriter::flush) and when the
/// writer is dropped (where an error is lost: call `flush` to see it). Records are written
/// whole or, after an I/O error, possibly in part; TensorBoard ignores a truncated last
/// record.
pub struct EventWriter {
    out: BufWriter<File>,
    path: PathBuf,
}

impl EventWriter {
    /// Creates `dir` (and its parents) if needed and a new event file in it, and writes
    /// and flushes the file's `file_version` record. The new file's name sorts after every
    /// event file already in `dir` (its seconds field is now, or one past the largest
    /// there when that is not earlier), so TensorBoard reads it last. Never overwrites a
    /// file.
    pub fn create(dir: &Path) -> io::Result<EventWriter> {
        std::fs::create_dir_all(dir)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut secs = now;
        for entry in std::fs::read_dir(dir)? {
            let name = entry?.file_name();
            let taken = name
                .to_str()
                .and_then(|n| n.strip_prefix(PREFIX))
                .and_then(|rest| rest.get(..10))
                .and_then(|digits| digits.parse::<u64>().ok());
            if let Some(t) = taken {
                secs = secs.max(t + 1);
            }
        }
        let (host, pid) = (hostname(), std::process::id());
        let mut tries = 0;
        let (file, path) = loop {
            let n = NEXT_FILE.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!("{PREFIX}{secs:010}.{host}.{pid}.{n}"));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => break (f, path),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 1000 => {
                    tries += 1;
                }
                Err(e) => return Err(e),
            }
        };
        let mut w = EventWriter {
            out: BufWriter::new(file),
            path,
        };
        w.write_event(&Event {
            wall_time: wall_time_now(),
            step: 0,
            what: Some(What::FileVersion(FILE_VERSION.into())),
        })?;
        w.flush()?;
        Ok(w)
    }

    /// The file this writer appends to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event holding one scalar: `value` under `tag` at `step`. The value is
    /// stored as an f32 (rounded to nearest; beyond the f32 range it becomes ±inf). NaN and
    /// ±inf are written as they are. `wall_time` is in seconds since the Unix epoch
    /// ([`wall_time_now`]) and must be finite: TensorBoard's data server drops events
    /// whose wall time is not.
    pub fn scalar(&mut self, tag: &str, step: i64, value: f64, wall_time: f64) -> io::Result<()> {
        self.scalars(step, wall_time, &[(tag, value)])
    }

    /// Appends one event holding every `(tag, value)` of `values` at `step`, as
    /// [`scalar`](EventWriter::scalar) stores each; writes nothing when `values` is empty.
    pub fn scalars(&mut self, step: i64, wall_time: f64, values: &[(&str, f64)]) -> io::Result<()> {
        if values.is_empty() {
            return Ok(());
        }
        let value = values
            .iter()
            .map(|&(tag, v)| Value {
                tag: tag.into(),
                value: Some(Kind::SimpleValue(v as f32)),
            })
            .collect();
        self.write_event(&Event {
            wall_time,
            step,
            what: Some(What::Summary(Summary { value })),
        })
    }

    /// Appends a restart marker (`SessionLog` START) at `step`: TensorBoard's Python
    /// reader (`EventAccumulator`) then discards the events of every tag with step ≥
    /// `step` read before the marker, i.e. from this folder's earlier files. A run resumed
    /// from a checkpoint taken at global step `s` calls this with `s + 1` right after
    /// [`create`](EventWriter::create), so the steps it redoes replace those that the
    /// interrupted process wrote past the checkpoint instead of appearing twice.
    /// (TensorBoard's data server ignores the marker; it drops a tag's later points when
    /// an earlier step of that tag comes again, which the redone steps do.)
    pub fn restart(&mut self, step: i64, wall_time: f64) -> io::Result<()> {
        self.write_event(&Event {
            wall_time,
            step,
            what: Some(What::SessionLog(SessionLog {
                status: SESSION_START,
            })),
        })
    }

    /// Writes everything buffered to the file (no fsync).
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn write_event(&mut self, event: &Event) -> io::Result<()> {
        write_record(&mut self.out, &event.encode_to_vec())
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh, empty folder under the system's temporary folder, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            static N: AtomicU64 = AtomicU64::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!("tb-test-{name}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Reads a file's records, checking both CRCs of each, and decodes their events.
    fn read_events(path: &Path) -> Vec<Event> {
        let bytes = std::fs::read(path).unwrap();
        let mut at = 0;
        let mut events = Vec::new();
        while at < bytes.len() {
            let len_bytes = &bytes[at..at + 8];
            let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
            let len_crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
            assert_eq!(len_crc, masked_crc(len_bytes), "length CRC at {at}");
            let data = &bytes[at + 12..at + 12 + len];
            let data_crc =
                u32::from_le_bytes(bytes[at + 12 + len..at + 16 + len].try_into().unwrap());
            assert_eq!(data_crc, masked_crc(data), "data CRC at {at}");
            events.push(Event::decode(data).unwrap());
            at += 16 + len;
        }
        assert_eq!(at, bytes.len(), "no trailing bytes");
        events
    }

    fn event_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
    }

    #[test]
    fn crc32c_and_masking_match_published_values() {
        // CRC-32C check value (the CRC catalogue's "123456789").
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        // RFC 3720 (iSCSI) B.4: 32 zero bytes.
        assert_eq!(crc32c::crc32c(&[0u8; 32]), 0x8a91_36aa);
        // By hand: 0xe3069283 rotated right by 15 is 0x2507c60d; + 0xa282ead8 = 0xc78ab0e5
        // (TensorBoard's Python `masked_crc32c(b"123456789")` gives the same).
        assert_eq!(mask(0xe306_9283), 0xc78a_b0e5);
        assert_eq!(masked_crc(b"123456789"), 0xc78a_b0e5);
        // The masking wraps: 0xffffffff rotates to itself, + 0xa282ead8 - 2^32.
        assert_eq!(mask(0xffff_ffff), 0xa282_ead7);
        // A real TensorFlow record (`Event(file_version="CRC test, one two")`), as quoted
        // in TensorBoard's data server (tensorboard/data/server/masked_crc.rs).
        assert_eq!(masked_crc(b"\x1a\x11CRC test, one two"), 0x5794_d08a);
    }

    #[test]
    fn events_encode_to_the_hand_written_bytes() {
        // file_version event: wall_time (field 1, fixed64) 1.5, step 0 omitted,
        // file_version (field 3, length-delimited).
        let ev = Event {
            wall_time: 1.5,
            step: 0,
            what: Some(What::FileVersion(FILE_VERSION.into())),
        };
        let mut want = vec![0x09, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f, 0x1a, 13];
        want.extend_from_slice(b"brain.Event:2");
        assert_eq!(ev.encode_to_vec(), want);

        // Summary event: step (field 2, varint) 7, summary (field 5) holding one value
        // (field 1) with tag (field 1) "a" and simple_value (field 2, fixed32) 0.25.
        let ev = Event {
            wall_time: 0.0,
            step: 7,
            what: Some(What::Summary(Summary {
                value: vec![Value {
                    tag: "a".into(),
                    value: Some(Kind::SimpleValue(0.25)),
                }],
            })),
        };
        let want = [
            0x10, 7, 0x2a, 10, 0x0a, 8, 0x0a, 1, b'a', 0x15, 0x00, 0x00, 0x80, 0x3e,
        ];
        assert_eq!(ev.encode_to_vec(), want);

        // SessionLog START at step 3: session_log is field 7, its status field 1.
        let ev = Event {
            wall_time: 0.0,
            step: 3,
            what: Some(What::SessionLog(SessionLog {
                status: SESSION_START,
            })),
        };
        assert_eq!(ev.encode_to_vec(), [0x10, 3, 0x3a, 2, 0x08, 1]);
    }

    #[test]
    fn a_record_is_framed_byte_for_byte() {
        let data = b"\x1a\x11CRC test, one two";
        let mut out = Vec::new();
        write_record(&mut out, data).unwrap();
        let mut want = Vec::new();
        want.extend_from_slice(&[19, 0, 0, 0, 0, 0, 0, 0]);
        want.extend_from_slice(&masked_crc(&[19, 0, 0, 0, 0, 0, 0, 0]).to_le_bytes());
        want.extend_from_slice(data);
        want.extend_from_slice(&[0x8a, 0xd0, 0x94, 0x57]);
        assert_eq!(out, want);
        assert_eq!(out.len(), 8 + 4 + 19 + 4);
    }

    #[test]
    fn written_events_read_back() {
        let dir = TempDir::new("roundtrip");
        let tb = dir.0.join("run").join("tb");
        let mut w = EventWriter::create(&tb).unwrap();
        let name = w.path().file_name().unwrap().to_str().unwrap().to_owned();
        let parts: Vec<&str> = name.split('.').collect();
        assert!(name.starts_with("events.out.tfevents."), "{name}");
        assert_eq!(parts[3].len(), 10, "{name}");
        assert_eq!(parts[parts.len() - 2], std::process::id().to_string());
        w.scalar("losses/value_loss", 128, 0.5, 1000.25).unwrap();
        w.scalars(
            256,
            1001.5,
            &[
                ("a", 0.1),
                ("b", f64::NAN),
                ("c", f64::INFINITY),
                ("d", 1e300),
            ],
        )
        .unwrap();
        w.scalars(300, 1002.0, &[]).unwrap();
        w.restart(257, 1003.0).unwrap();
        let path = w.path().to_path_buf();
        drop(w);

        let events = read_events(&path);
        assert_eq!(events.len(), 4);
        assert_eq!(events[0].step, 0);
        assert_eq!(events[0].what, Some(What::FileVersion(FILE_VERSION.into())));
        assert!(events[0].wall_time > 1.6e9);
        let scalar = |tag: &str, v: f32| Value {
            tag: tag.into(),
            value: Some(Kind::SimpleValue(v)),
        };
        assert_eq!(
            events[1],
            Event {
                wall_time: 1000.25,
                step: 128,
                what: Some(What::Summary(Summary {
                    value: vec![scalar("losses/value_loss", 0.5)],
                })),
            }
        );
        assert_eq!((events[2].wall_time, events[2].step), (1001.5, 256));
        let Some(What::Summary(s)) = &events[2].what else {
            panic!("not a summary: {:?}", events[2]);
        };
        let got: Vec<(&str, f32)> = s
            .value
            .iter()
            .map(|v| match v.value {
                Some(Kind::SimpleValue(x)) => (v.tag.as_str(), x),
                None => panic!("no value"),
            })
            .collect();
        assert_eq!(got[0], ("a", 0.1f32));
        assert!(got[1].0 == "b" && got[1].1.is_nan());
        assert_eq!(got[2], ("c", f32::INFINITY));
        assert_eq!(got[3], ("d", f32::INFINITY));
        assert_eq!(
            events[3],
            Event {
                wall_time: 1003.0,
                step: 257,
                what: Some(What::SessionLog(SessionLog {
                    status: SESSION_START
                })),
            }
        );
    }

    #[test]
    fn flush_makes_events_readable_while_the_writer_is_open() {
        let dir = TempDir::new("flush");
        let mut w = EventWriter::create(&dir.0).unwrap();
        assert_eq!(
            read_events(w.path()).len(),
            1,
            "file_version is on disk at once"
        );
        w.scalar("x", 1, 1.0, 1.0).unwrap();
        w.flush().unwrap();
        assert_eq!(read_events(w.path()).len(), 2);
    }

    #[test]
    fn a_new_file_sorts_after_the_folder_s_event_files() {
        let dir = TempDir::new("order");
        let a = EventWriter::create(&dir.0).unwrap();
        let b = EventWriter::create(&dir.0).unwrap();
        assert!(a.path() < b.path(), "{:?} {:?}", a.path(), b.path());
        // A file from a later second (another machine's clock): the next one still sorts
        // after it.
        let future = dir.0.join(format!("{PREFIX}9000000000.otherhost.1.0"));
        std::fs::write(&future, b"").unwrap();
        let c = EventWriter::create(&dir.0).unwrap();
        assert!(future.as_path() < c.path(), "{:?}", c.path());
        let name = c.path().file_name().unwrap().to_str().unwrap().to_owned();
        assert!(name.starts_with(&format!("{PREFIX}9000000001.")), "{name}");
        let files = event_files(&dir.0);
        assert_eq!(files, [a.path(), b.path(), &future, c.path()]);
        assert!(hostname().chars().all(|c| c != '/' && !c.is_whitespace()));
    }
}
