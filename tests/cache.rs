//! Day cache format: round trip, zero-copy typed columns, the clock index, and refusal of
//! every kind of damage (truncation, flipped bytes, foreign files, stale features) by the
//! reader and by `sim-train cache verify`.

mod common;

use chrono::NaiveDate;
use sim_train::bars::{BarSize, Halt, Price, Quotes, RawDay};
use sim_train::cache::catalog::CatalogEntry;
use sim_train::cache::format::{COLUMN_ALIGN, SessionTimes};
use sim_train::cache::{
    CacheError, Catalog, ClockSpec, DayCache, DayInfo, FLAG_SUSPECT, day_path, write_day,
};
use sim_train::clock;
use sim_train::features::{FEATURE_NAMES, FEATURE_SET, FEATURE_VERSION, N_FEATURES};
use std::path::{Path, PathBuf};

fn date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2013, 10, 7).unwrap()
}

/// A sparse 1-second day: a bar every 7 seconds from 09:30 for 2000 bars, with quotes.
fn sample_day() -> (RawDay, Vec<Vec<f32>>, DayInfo) {
    let mut d = RawDay::new("SPY", date(), BarSize::S1, "unit-test");
    let mut q = Quotes::default();
    for i in 0..2000i64 {
        let px = Price::from_dollars(167.0 + (i as f64 * 0.01).sin());
        d.push(
            clock::utc_ns(date(), 34_200 + 7 * i),
            px,
            Price(px.0 + 10_000_000),
            Price(px.0 - 10_000_000),
            px,
            (100 + i) as u64,
        );
        q.bid.push(Price(px.0 - 5_000_000));
        q.ask.push(Price(px.0 + 5_000_000));
        q.bid_size.push(300);
        q.ask_size.push(400);
    }
    d.quotes = Some(q);
    d.transactions = Some((0..2000).collect());
    d.halts = vec![Halt {
        start_ns: clock::utc_ns(date(), 40_000),
        end_ns: clock::utc_ns(date(), 40_300),
    }];
    let feats: Vec<Vec<f32>> = (0..N_FEATURES)
        .map(|k| (0..2000).map(|i| (k * 10_000 + i) as f32 * 0.5).collect())
        .collect();
    let info = DayInfo {
        session: SessionTimes {
            pre_open_sec: 14_400,
            open_sec: 34_200,
            close_sec: 57_600,
            post_close_sec: 72_000,
            early_close: false,
        },
        utc_offset_sec: clock::ny_offset_secs(date()),
        source: "test".into(),
        adjust: "none".into(),
        feature_set: FEATURE_SET.into(),
        feature_version: FEATURE_VERSION,
        prev_close: Some(Price::from_dollars(168.5)),
        clock: ClockSpec {
            first_slot_sec: 14_400,
            slot_secs: 1,
            n_slots: 57_600,
        },
        cleaning: "causal".into(),
    };
    (d, feats, info)
}

/// A `flags` column with the suspect bit on every 7th bar.
fn sample_flags(n: usize) -> Vec<u32> {
    (0..n)
        .map(|i| if i % 7 == 3 { FLAG_SUSPECT } else { 0 })
        .collect()
}

fn write_sample(dir: &Path) -> PathBuf {
    let (d, f, info) = sample_day();
    let path = day_path(dir, "SPY", date());
    let (meta, bytes) = write_day(
        &path,
        &d,
        Some(&sample_flags(d.len())),
        &FEATURE_NAMES,
        &f,
        &info,
    )
    .unwrap();
    let mut cat = Catalog::default();
    cat.upsert(CatalogEntry::from_meta(
        &meta,
        bytes,
        path.strip_prefix(dir).unwrap().to_path_buf(),
        d.ts_ns.first().copied(),
        d.ts_ns.last().copied(),
    ));
    cat.save(dir).unwrap();
    path
}

#[test]
fn round_trip_is_exact_and_zero_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_sample(dir.path());
    let (d, f, _) = sample_day();
    let c = DayCache::open(&path).unwrap();
    assert_eq!(c.rows(), 2000);
    assert_eq!(c.ts_ns(), &d.ts_ns[..]);
    assert_eq!(c.opens(), &d.open[..]);
    assert_eq!(c.highs(), &d.high[..]);
    assert_eq!(c.lows(), &d.low[..]);
    assert_eq!(c.closes(), &d.close[..]);
    assert_eq!(c.volumes(), &d.volume[..]);
    assert_eq!(
        c.transactions().unwrap(),
        &d.transactions.as_ref().unwrap()[..]
    );
    let q = d.quotes.as_ref().unwrap();
    assert_eq!(c.bid().unwrap(), &q.bid[..]);
    assert_eq!(c.ask_size().unwrap(), &q.ask_size[..]);
    assert!(c.vwap().is_none());
    assert_eq!(c.flags().unwrap(), &sample_flags(2000)[..]);
    assert_eq!(c.meta().cleaning.as_deref(), Some("causal"));
    for (k, name) in FEATURE_NAMES.iter().enumerate() {
        assert_eq!(c.feature(k), &f[k][..]);
        assert_eq!(c.feature_by_name(name).unwrap(), &f[k][..]);
    }
    assert_eq!(c.meta().prev_close, Some(Price::from_dollars(168.5)));
    assert_eq!(c.meta().halts, d.halts);
    // Zero-copy: the slices point into the map, each column 256-byte aligned.
    for name in ["ts_ns", "close", "ret_1", "clock_index"] {
        let b = c.column_bytes(name).unwrap();
        assert_eq!(b.as_ptr() as usize % COLUMN_ALIGN, 0, "{name}");
    }
    // The clock: 09:30:00 → row 0; 09:30:06 → row 0; 09:30:07 → row 1; 03:59 → none.
    let ck = c.clock();
    assert_eq!(ck.latest_at_or_before(34_200), Some(0));
    assert_eq!(ck.latest_at_or_before(34_206), Some(0));
    assert_eq!(ck.latest_at_or_before(34_207), Some(1));
    assert_eq!(ck.exact(34_208), None);
    assert_eq!(ck.latest_at_or_before(14_000), None);
    assert_eq!(ck.latest_at_or_before(80_000), Some(1999));
    for row in [0usize, 1, 999, 1999] {
        assert_eq!(ck.exact(c.sec_of_day(row)), Some(row as u32));
    }
}

fn expect_err(path: &Path) -> CacheError {
    match DayCache::open(path) {
        Ok(_) => panic!("{} opened despite damage", path.display()),
        Err(e) => {
            assert_eq!(e.path(), path, "error must name the file: {e}");
            assert!(e.to_string().contains(&path.display().to_string()), "{e}");
            e
        }
    }
}

#[test]
fn truncation_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_sample(dir.path());
    let len = std::fs::metadata(&path).unwrap().len();
    for cut in [len - 1, len / 2, 100, 40, 3, 0] {
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(cut).unwrap();
        let e = expect_err(&path);
        assert!(
            matches!(e, CacheError::Truncated { .. }),
            "cut at {cut}: expected Truncated, got {e}"
        );
    }
}

#[test]
fn every_flipped_region_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_sample(dir.path());
    let good = std::fs::read(&path).unwrap();
    let c = DayCache::open(&path).unwrap();
    // Header fields, metadata, and one byte inside every column.
    let mut offsets: Vec<usize> = vec![9, 17, 30, 45, 50, 64, 100, 300];
    let ds = u64::from_le_bytes(good[32..40].try_into().unwrap()) as usize; // data_start
    for col in &c.meta().columns {
        offsets.push(ds + col.offset as usize + (col.byte_len() as usize / 2));
    }
    drop(c);
    for off in offsets {
        let mut bad = good.clone();
        bad[off] ^= 0x10;
        std::fs::write(&path, &bad).unwrap();
        let e = expect_err(&path);
        assert!(
            matches!(
                e,
                CacheError::Checksum { .. }
                    | CacheError::Version { .. }
                    | CacheError::BadMagic { .. }
            ),
            "flip at {off}: {e}"
        );
    }
    std::fs::write(&path, &good).unwrap();
    DayCache::open(&path).unwrap();
}

#[test]
fn foreign_and_stale_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_sample(dir.path());
    let good = std::fs::read(&path).unwrap();
    let mut foreign = good.clone();
    foreign[0..8].copy_from_slice(b"PAR1\0\0\0\0");
    std::fs::write(&path, &foreign).unwrap();
    assert!(matches!(expect_err(&path), CacheError::BadMagic { .. }));
    std::fs::write(&path, b"symbol,date\nSPY,2013-10-07\n").unwrap();
    assert!(matches!(expect_err(&path), CacheError::BadMagic { .. }));

    // A day written with another feature version is refused as stale, not misread.
    let (d, f, mut info) = sample_day();
    info.feature_version = FEATURE_VERSION + 1;
    write_day(&path, &d, None, &FEATURE_NAMES, &f, &info).unwrap();
    let e = expect_err(&path);
    assert!(matches!(e, CacheError::Stale { .. }), "{e}");
    assert!(e.to_string().contains("rebuild"), "{e}");
}

#[test]
fn verify_command_names_each_bad_file_and_exits_4() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_sample(dir.path());
    common::sim_train()
        .args(["cache", "verify", "--cache"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(
            predicates::str::contains("verified 1 files").and(predicates::str::contains("0 bad")),
        );

    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 300] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    common::sim_train()
        .args(["cache", "verify", "--cache"])
        .arg(dir.path())
        .assert()
        .code(4)
        .stdout(
            predicates::str::contains(format!("BAD {}", path.display()))
                .and(predicates::str::contains("checksum")),
        );

    // inspect of the damaged day fails with one line naming the file.
    common::sim_train()
        .args([
            "cache",
            "inspect",
            "--symbol",
            "SPY",
            "--date",
            "2013-10-07",
            "--cache",
        ])
        .arg(dir.path())
        .assert()
        .code(4)
        .stderr(predicates::str::contains(path.display().to_string()));

    // A listed file that disappeared is reported too.
    std::fs::remove_file(&path).unwrap();
    common::sim_train()
        .args(["cache", "verify", "--cache"])
        .arg(dir.path())
        .assert()
        .code(4)
        .stdout(predicates::str::contains("missing"));
}

use predicates::prelude::PredicateBooleanExt;

/// Regression: outputs were created 0600 (tempfile's mode survived the rename), so a
/// cache shared on a cluster was unreadable to other users.
#[cfg(unix)]
#[test]
fn written_files_are_readable_as_the_umask_allows() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = write_sample(dir.path());
    // SAFETY: umask only swaps the process's file-creation mask; it is read and restored.
    let umask = unsafe {
        let m = libc::umask(0o022);
        libc::umask(m);
        m
    } as u32;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644 & !umask, "{}", path.display());
    let json = dir.path().join("x.json");
    sim_train::util::fs::write_atomic(&json, b"{}").unwrap();
    assert_eq!(
        std::fs::metadata(&json).unwrap().permissions().mode() & 0o777,
        0o644 & !umask
    );
}
