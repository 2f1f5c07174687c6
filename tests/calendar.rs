//! The trading calendar against independent truth: LEAN's real market-hours table (read
//! here with plain `serde_json`, not through the crate's loader) on every holiday and early
//! close it lists, in both directions; dates checked by hand against NYSE announcements;
//! published trading-day counts; stepping properties; and LEAN-file error reporting.

mod common;

use chrono::{Datelike, NaiveDate, Weekday};
use sim_train::calendar::{Calendar, Phase, Session};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");

const H: u32 = 3600;

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn dates(list: &[(i32, u32, u32)]) -> BTreeSet<NaiveDate> {
    list.iter().map(|&(y, m, day)| d(y, m, day)).collect()
}

fn days(years: &RangeInclusive<i32>) -> impl Iterator<Item = NaiveDate> {
    let last = d(*years.end(), 12, 31);
    d(*years.start(), 1, 1)
        .iter_days()
        .take_while(move |x| *x <= last)
}

fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

// ---------------------------------------------------------------------------------------
// LEAN's table, read independently of the crate
// ---------------------------------------------------------------------------------------

/// Early closes NYSE held that LEAN's table lacks: the day after Thanksgiving and Christmas
/// Eve 1998 both closed at 13:00 (NYSE closings history; pandas_market_calendars lists
/// them too). LEAN's table only starts listing early closes in 1999, so no rule that is
/// right for 1998 can reproduce its silence there.
const RULES_ONLY_EARLY_CLOSES: [(i32, u32, u32); 2] = [(1998, 11, 27), (1998, 12, 24)];

/// Rule-calendar days with shifted hours that LEAN's table has no `lateOpens` for: on the
/// first anniversary of September 11 the regular session opened at noon.
const RULES_ONLY_LATE_OPENS: [(i32, u32, u32); 1] = [(2002, 9, 11)];

/// Table holidays on a weekend: New Year's Day on a Saturday, which NYSE does not observe
/// (it trades on Friday Dec 31). Harmless no-ops, listed so a changed table is noticed.
const TABLE_WEEKEND_HOLIDAYS: [(i32, u32, u32); 2] = [(2011, 1, 1), (2022, 1, 1)];

/// Table early closes on a weekend: Christmas Eve 2017 was a Sunday. A no-op.
const TABLE_WEEKEND_EARLY_CLOSES: [(i32, u32, u32); 1] = [(2017, 12, 24)];

struct LeanTable {
    path: PathBuf,
    holidays: BTreeSet<NaiveDate>,
    early_closes: BTreeMap<NaiveDate, String>,
    /// The years the table speaks about.
    years: RangeInclusive<i32>,
}

fn lean_table() -> Option<LeanTable> {
    let path = Path::new(DATA).join("lean/market-hours/equity-usa.json");
    if !path.is_file() {
        common::skip(&path);
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let entry = &json["entries"]["Equity-usa-[*]"];
    let parse = |s: &str| NaiveDate::parse_from_str(s, "%m/%d/%Y").unwrap();
    let holidays: BTreeSet<NaiveDate> = entry["holidays"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| parse(v.as_str().unwrap()))
        .collect();
    let early_closes: BTreeMap<NaiveDate, String> = entry["earlyCloses"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (parse(k), v.as_str().unwrap().to_string()))
        .collect();
    assert!(entry.get("lateOpens").is_none(), "the table grew lateOpens");
    let all_years = holidays.iter().chain(early_closes.keys()).map(|x| x.year());
    let years = all_years.clone().min().unwrap()..=all_years.max().unwrap();
    assert_eq!(
        *years.start(),
        1998,
        "the test's exceptions assume 1998 onward"
    );
    Some(LeanTable {
        path,
        holidays,
        early_closes,
        years,
    })
}

#[test]
fn rules_close_on_exactly_the_lean_table_holidays() {
    let Some(table) = lean_table() else { return };
    let rules = Calendar::us_equity();

    // Table -> rules: every holiday is a non-trading day.
    for &h in &table.holidays {
        assert!(
            !rules.is_trading_day(h),
            "LEAN holiday {h} trades in the rules"
        );
    }
    let weekend: BTreeSet<_> = table
        .holidays
        .iter()
        .copied()
        .filter(|x| is_weekend(*x))
        .collect();
    assert_eq!(weekend, dates(&TABLE_WEEKEND_HOLIDAYS));

    // Rules -> table: every weekday the rules close is a table holiday.
    let mut closed_weekdays = 0;
    for day in days(&table.years).filter(|x| !is_weekend(*x)) {
        if !rules.is_trading_day(day) {
            closed_weekdays += 1;
            assert!(
                table.holidays.contains(&day),
                "rules close {day}, LEAN trades"
            );
        }
    }
    assert_eq!(
        closed_weekdays,
        table.holidays.len() - weekend.len(),
        "some table holidays were counted twice or missed"
    );
}

#[test]
fn rules_half_days_are_exactly_the_lean_table_early_closes() {
    let Some(table) = lean_table() else { return };
    let rules = Calendar::us_equity();
    let rules_only = dates(&RULES_ONLY_EARLY_CLOSES);

    // Table -> rules: every weekday early close is a 13:00 half day with after-hours to 17:00.
    for (&day, close) in &table.early_closes {
        assert_eq!(close, "13:00:00", "{day}");
        if is_weekend(day) {
            assert_eq!(rules.session(day), None);
            continue;
        }
        let s = rules
            .session(day)
            .unwrap_or_else(|| panic!("{day} closed in rules"));
        assert!(s.early_close, "{day} is a full day in the rules");
        assert_eq!((s.close_sec, s.post_close_sec), (13 * H, 17 * H), "{day}");
    }
    let weekend: BTreeSet<_> = table
        .early_closes
        .keys()
        .copied()
        .filter(|x| is_weekend(*x))
        .collect();
    assert_eq!(weekend, dates(&TABLE_WEEKEND_EARLY_CLOSES));

    // Rules -> table: every half day of the rules is in the table, bar the known ones.
    let mut found_rules_only = BTreeSet::new();
    for day in days(&table.years) {
        let Some(s) = rules.session(day) else {
            continue;
        };
        if s.early_close {
            if rules_only.contains(&day) {
                found_rules_only.insert(day);
            } else {
                assert!(
                    table.early_closes.contains_key(&day),
                    "rules half day {day}"
                );
            }
        }
    }
    assert_eq!(found_rules_only, rules_only, "a known exception went away");
}

#[test]
fn lean_file_loads_to_the_rule_calendar() {
    let Some(table) = lean_table() else { return };
    let lean = Calendar::from_lean_market_hours(&table.path).unwrap();
    let rules = Calendar::us_equity();
    assert_eq!(lean.covered_years(), Some(table.years.clone()));

    let exceptions: BTreeSet<_> = dates(&RULES_ONLY_EARLY_CLOSES)
        .union(&dates(&RULES_ONLY_LATE_OPENS))
        .copied()
        .collect();
    for day in days(&table.years) {
        if exceptions.contains(&day) {
            // The file has the plain 09:30-16:00 day there.
            let s = lean.session(day).unwrap();
            assert_eq!(
                (s.open_sec, s.close_sec, s.early_close),
                (34_200, 57_600, false)
            );
            assert_ne!(lean.session(day), rules.session(day));
            continue;
        }
        assert_eq!(lean.session(day), rules.session(day), "{day}");
    }
    // The rules' late open, for the record.
    let s = rules.session(d(2002, 9, 11)).unwrap();
    assert_eq!(
        (s.pre_open_sec, s.open_sec, s.close_sec),
        (4 * H, 12 * H, 16 * H)
    );

    // Stepping agrees as well, including across the known exceptions (300 trading days
    // back from April 1999 stays within the table's years).
    for day in days(&(1999..=2028)).skip(90).step_by(7) {
        assert_eq!(lean.prev_trading_day(day), rules.prev_trading_day(day));
        assert_eq!(
            lean.trading_days_back(day, 300),
            rules.trading_days_back(day, 300)
        );
    }

    // Past the file's last year only LEAN's weekly schedule is known.
    assert!(lean.is_trading_day(d(2030, 12, 25)));
    assert!(!rules.is_trading_day(d(2030, 12, 25)));
    assert!(!lean.is_trading_day(d(2030, 12, 28)), "a Saturday");
}

// ---------------------------------------------------------------------------------------
// Hand-checked dates
// ---------------------------------------------------------------------------------------

#[test]
fn hand_checked_days() {
    let cal = Calendar::us_equity_shared();
    let closed = |y, m, day| assert!(!cal.is_trading_day(d(y, m, day)), "{y}-{m}-{day}");
    let open = |y, m, day| assert!(cal.is_trading_day(d(y, m, day)), "{y}-{m}-{day}");

    // Monday after July 4 (Thursday) 2024 looks back to Friday July 5, which traded.
    assert_eq!(cal.prev_trading_day(d(2024, 7, 8)), d(2024, 7, 5));
    assert_eq!(cal.prev_trading_day(d(2024, 7, 5)), d(2024, 7, 3));
    assert_eq!(cal.next_trading_day(d(2024, 7, 3)), d(2024, 7, 5));
    // A plain Monday looks back to Friday.
    assert_eq!(cal.prev_trading_day(d(2013, 10, 7)), d(2013, 10, 4));
    assert_eq!(cal.trading_days_back(d(2024, 7, 8), 3), d(2024, 7, 2));
    assert_eq!(cal.trading_days_back(d(2024, 7, 8), 0), d(2024, 7, 8));
    assert_eq!(cal.trading_days_forward(d(2024, 7, 2), 3), d(2024, 7, 8));

    // Day after Thanksgiving 2013: 09:30-13:00, after-hours to 17:00.
    let s = cal.session(d(2013, 11, 29)).unwrap();
    assert_eq!(
        s,
        Session {
            date: d(2013, 11, 29),
            pre_open_sec: 4 * H,
            open_sec: 9 * H + 1800,
            close_sec: 13 * H,
            post_close_sec: 17 * H,
            early_close: true,
        }
    );
    // An ordinary day.
    let s = cal.session(d(2013, 10, 7)).unwrap();
    assert_eq!(
        (s.pre_open_sec, s.open_sec, s.close_sec, s.post_close_sec),
        (14_400, 34_200, 57_600, 72_000)
    );
    assert!(!s.early_close);

    closed(2024, 3, 29); // Good Friday
    open(2021, 6, 18); // Juneteenth observed federally in 2021, but NYSE traded
    closed(2022, 6, 20); // first NYSE Juneteenth (June 19 was a Sunday)
    closed(2027, 6, 18); // Juneteenth on Saturday -> Friday
    closed(2012, 10, 29); // Hurricane Sandy
    closed(2012, 10, 30);
    assert_eq!(cal.prev_trading_day(d(2012, 10, 31)), d(2012, 10, 26));
    assert_eq!(cal.next_trading_day(d(2001, 9, 10)), d(2001, 9, 17));
    closed(2025, 1, 9); // President Carter
    closed(2018, 12, 5); // President G. H. W. Bush
    closed(2004, 6, 11); // President Reagan
    closed(2007, 1, 2); // President Ford
    open(1997, 1, 20); // MLK day before NYSE observed it
    closed(1998, 1, 19);

    // New Year's Day on Saturday: no Friday closure, no Monday closure.
    open(2021, 12, 31);
    open(2022, 1, 3);
    open(2010, 12, 31);
    // On Sunday: closed Monday.
    closed(2023, 1, 2);
    closed(2017, 1, 2);
    // July 4 / Christmas on Saturday -> Friday, on Sunday -> Monday.
    closed(2020, 7, 3);
    closed(2021, 7, 5);
    closed(2021, 12, 24);
    closed(2022, 12, 26);

    // July 3 half days, as NYSE schedules them.
    let half = |y, m, day| cal.session(d(y, m, day)).is_some_and(|s| s.early_close);
    assert!(half(2024, 7, 3)); // Wednesday before a Thursday July 4, since 2013
    assert!(half(2002, 7, 5)); // before 2013 it was the Friday after
    assert!(!half(2002, 7, 3));
    assert!(!half(2024, 7, 5));
    assert!(half(2025, 7, 3)); // Thursday before a Friday July 4
    assert!(!half(2022, 7, 1)); // July 4 on Monday: Friday before is a full day
    assert!(half(2024, 12, 24));
    assert!(!half(2023, 12, 22)); // Christmas Eve on Sunday: no half day
    assert!(half(2003, 12, 26)); // one-off Friday after Christmas
    assert!(!half(2008, 12, 26));

    // Christmas week 2024 into 2025.
    assert_eq!(
        cal.trading_days(d(2024, 12, 23), d(2025, 1, 3)),
        vec![
            d(2024, 12, 23),
            d(2024, 12, 24),
            d(2024, 12, 26),
            d(2024, 12, 27),
            d(2024, 12, 30),
            d(2024, 12, 31),
            d(2025, 1, 2),
            d(2025, 1, 3),
        ]
    );
    assert!(cal.trading_days(d(2025, 1, 3), d(2025, 1, 2)).is_empty());
}

#[test]
fn published_trading_day_counts() {
    // NYSE trading days per calendar year, as published.
    let cal = Calendar::us_equity();
    for (year, count) in [
        (2001, 248),
        (2008, 253),
        (2012, 250),
        (2018, 251),
        (2020, 253),
        (2022, 251),
        (2023, 250),
        (2024, 252),
    ] {
        assert_eq!(
            cal.trading_days(d(year, 1, 1), d(year, 12, 31)).len(),
            count,
            "{year}"
        );
    }
}

#[test]
fn stepping_is_consistent_with_classification() {
    let cal = Calendar::us_equity();
    // Around the precomputed years' edges (1970, 2100) too: those steps use the rules.
    for range in [1995..=2030, 1968..=1972, 2099..=2102] {
        let trading = cal.trading_days(d(*range.start(), 1, 1), d(*range.end(), 12, 31));
        let brute: Vec<_> = days(&range).filter(|x| cal.is_trading_day(*x)).collect();
        assert_eq!(trading, brute);
        for pair in trading.windows(2) {
            assert_eq!(cal.next_trading_day(pair[0]), pair[1]);
            assert_eq!(cal.prev_trading_day(pair[1]), pair[0]);
        }
        for day in days(&range)
            .skip(60)
            .step_by(3)
            .take_while(|x| x.year() < *range.end())
        {
            let prev = cal.prev_trading_day(day);
            assert!(prev < day && cal.is_trading_day(prev));
            assert!(
                prev.iter_days()
                    .skip(1)
                    .take_while(|x| *x < day)
                    .all(|x| !cal.is_trading_day(x))
            );
            let next = cal.next_trading_day(day);
            assert!(next > day && cal.is_trading_day(next));
            for n in [0, 1, 2, 5, 21, 40] {
                let mut step = day;
                for _ in 0..n {
                    step = cal.prev_trading_day(step);
                }
                assert_eq!(cal.trading_days_back(day, n), step, "{day} - {n}");
                let mut step = day;
                for _ in 0..n {
                    step = cal.next_trading_day(step);
                }
                assert_eq!(cal.trading_days_forward(day, n), step, "{day} + {n}");
            }
        }
    }
    // A long jump across the table's start equals the count of trading days in between.
    let from = d(1975, 1, 2);
    let n = cal.trading_days(d(1960, 1, 1), d(1975, 1, 1)).len();
    let first = cal.next_trading_day(d(1959, 12, 31));
    assert_eq!(cal.trading_days_back(from, n), first);
    assert_eq!(cal.trading_days_forward(first, n), from);
}

#[test]
fn session_helpers() {
    let cal = Calendar::us_equity();
    let s = cal.session(d(2013, 10, 7)).unwrap();
    assert_eq!(s.regular_secs(), 23_400);
    assert_eq!(s.extended_secs(), 16 * H);
    assert!(s.contains_extended(4 * 3600));
    assert!(!s.contains_extended(4 * 3600 - 1));
    assert!(s.contains_extended(20 * 3600 - 1));
    assert!(!s.contains_extended(20 * 3600));
    assert!(!s.contains_extended(-1));
    assert!(s.contains_regular(34_200) && !s.contains_regular(57_600));
    assert_eq!(s.phase(3 * 3600), Phase::Closed);
    assert_eq!(s.phase(9 * 3600), Phase::PreMarket);
    assert_eq!(s.phase(34_200), Phase::Regular);
    assert_eq!(s.phase(57_600), Phase::PostMarket);
    assert_eq!(s.phase(72_000), Phase::Closed);
    // 09:30 EDT is 13:30 UTC = 1381152600 s; 16:00 EDT is 20:00 UTC.
    let ns = 1_000_000_000i64;
    assert_eq!(
        s.regular_utc_ns(),
        1_381_152_600 * ns..(1_381_152_600 + 23_400) * ns
    );
    // 04:00 EDT = 08:00 UTC; 20:00 EDT = 00:00 UTC the next day.
    assert_eq!(
        s.extended_utc_ns(),
        (1_381_152_600 - 19_800) * ns..(1_381_152_600 + 37_800) * ns
    );
    // Winter: 09:30 EST is 14:30 UTC (2013-11-29 = 1385735400 s at 14:30 UTC).
    let half = cal.session(d(2013, 11, 29)).unwrap();
    assert_eq!(half.regular_utc_ns().start, 1_385_735_400 * ns);
    assert_eq!(half.regular_secs(), 12_600);
    assert_eq!(half.extended_secs(), 13 * H);
    assert_eq!(half.phase(13 * 3600), Phase::PostMarket);
    assert_eq!(half.phase(17 * 3600), Phase::Closed);

    let json = serde_json::to_string(&half).unwrap();
    assert!(json.contains("\"date\":\"2013-11-29\""), "{json}");
    assert_eq!(serde_json::from_str::<Session>(&json).unwrap(), half);
}

// ---------------------------------------------------------------------------------------
// LEAN files written here
// ---------------------------------------------------------------------------------------

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    path
}

const SEGMENTS: &str = r#"[
    {"start": "04:00:00", "end": "09:30:00", "state": "premarket"},
    {"start": "09:30:00", "end": "16:00:00", "state": "market"},
    {"start": "16:00:00", "end": "20:00:00", "state": "postmarket"}]"#;

/// A LEAN entry with the usual Monday-Friday schedule and `extra` fields.
fn entry(extra: &str) -> String {
    format!(
        r#"{{"entries": {{"Equity-usa-[*]": {{
            "exchangeTimeZone": "America/New_York",
            "monday": {SEGMENTS}, "tuesday": {SEGMENTS}, "wednesday": {SEGMENTS},
            "thursday": {SEGMENTS}, "friday": {SEGMENTS}, "saturday": [], "sunday": []
            {extra} }} }} }}"#
    )
}

#[test]
fn lean_file_special_days() {
    let dir = tempfile::tempdir().unwrap();
    // 2024-03-04 is a Monday.
    let path = write(
        &dir,
        "hours.json",
        &entry(
            r#", "holidays": ["3/4/2024", "3/9/2024"],
            "earlyCloses": {"3/5/2024": "14:00:00", "3/4/2024": "13:00:00",
                            "3/10/2024": "13:00:00", "3/7/2024": "13:00:00"},
            "lateOpens": {"3/6/2024": "11:00:00", "3/7/2024": "10:00:00"},
            "bankHolidays": []"#,
        ),
    );
    let cal = Calendar::from_lean_market_hours(&path).unwrap();
    assert_eq!(cal.covered_years(), Some(2024..=2024));
    // A holiday wins over an early close on the same day; weekend entries are no-ops.
    assert_eq!(cal.session(d(2024, 3, 4)), None);
    assert_eq!(cal.session(d(2024, 3, 9)), None);
    assert_eq!(cal.session(d(2024, 3, 10)), None);
    let hours = |day| {
        let s = cal.session(d(2024, 3, day)).unwrap();
        (
            s.pre_open_sec,
            s.open_sec,
            s.close_sec,
            s.post_close_sec,
            s.early_close,
        )
    };
    // Early close at 14:00: after-hours keeps its four hours.
    assert_eq!(hours(5), (4 * H, 9 * H + 1800, 14 * H, 18 * H, true));
    // Late open at 11:00: pre-market still starts at 04:00.
    assert_eq!(hours(6), (4 * H, 11 * H, 16 * H, 20 * H, false));
    assert_eq!(hours(7), (4 * H, 10 * H, 13 * H, 17 * H, true));
    assert_eq!(hours(8), (4 * H, 9 * H + 1800, 16 * H, 20 * H, false));
    assert_eq!(cal.prev_trading_day(d(2024, 3, 5)), d(2024, 3, 1));
    // Outside the listed years the weekly schedule applies.
    assert!(cal.is_trading_day(d(2025, 12, 25)));
    assert!(!cal.is_trading_day(d(2025, 12, 27)));

    // No dated entries at all: the weekly schedule everywhere.
    let path = write(&dir, "weekly.json", &entry(""));
    let cal = Calendar::from_lean_market_hours(&path).unwrap();
    assert_eq!(cal.covered_years(), None);
    assert_eq!(cal.trading_days(d(2024, 3, 1), d(2024, 3, 10)).len(), 6);
    assert_eq!(cal.prev_trading_day(d(2024, 3, 4)), d(2024, 3, 1));
}

/// Asserts that loading `text` fails with one line naming the file and every `needles`.
fn assert_lean_error(text: &str, needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "equity-usa.json", text);
    let err = Calendar::from_lean_market_hours(&path).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    for needle in needles {
        assert!(msg.contains(needle), "'{needle}' missing from: {msg}");
    }
    assert!(!msg.contains('\n'), "{msg}");
    assert_eq!(err.exit_code(), 3, "{msg}");
}

#[test]
fn lean_file_errors_name_the_file_field_and_value() {
    let missing = Path::new("/nonexistent/market-hours/equity-usa.json");
    let err = Calendar::from_lean_market_hours(missing).unwrap_err();
    assert!(
        err.to_string()
            .contains("/nonexistent/market-hours/equity-usa.json")
    );
    assert_eq!(err.exit_code(), 1);

    assert_lean_error("{ \"entries\": ", &["JSON"]);
    assert_lean_error("[1, 2]", &["JSON"]);
    assert_lean_error(
        r#"{"entries": {"Forex-fxcm-[*]": {}}}"#,
        &["Equity-usa-[*]"],
    );
    assert_lean_error(
        r#"{"entries": {"Equity-usa-[*]": {"holidays": "1/1/2020"}}}"#,
        &["holidays", "invalid type"],
    );
    assert_lean_error(
        &entry(r#", "holidays": ["1/1/2020", "2020-01-20"]"#),
        &["holidays[1]", "'2020-01-20'", "M/D/YYYY"],
    );
    assert_lean_error(
        &entry(r#", "holidays": ["1/1/9999"]"#),
        &["holidays[0]", "'1/1/9999'", "1900"],
    );
    assert_lean_error(
        &entry(r#", "earlyCloses": {"7/3/2013": "25:00:00"}"#),
        &["earlyCloses.\"7/3/2013\"", "'25:00:00'", "HH:MM:SS"],
    );
    assert_lean_error(
        &entry(r#", "earlyCloses": {"7/3/2013": "17:00:00"}"#),
        &["earlyCloses.\"7/3/2013\"", "17:00:00", "16:00:00"],
    );
    assert_lean_error(
        &entry(r#", "lateOpens": {"7/3/2013": "08:00:00"}"#),
        &["lateOpens.\"7/3/2013\"", "08:00:00"],
    );
    assert_lean_error(
        r#"{"entries": {"Equity-usa-[*]": {"monday": [], "friday": []}}}"#,
        &["no weekday has a 'market' segment"],
    );
    assert_lean_error(
        r#"{"entries": {"Equity-usa-[*]": {"monday": [
            {"start": "09:30:00", "end": "16:00:00", "state": "open"}]}}}"#,
        &["monday[0].state", "'open'"],
    );
    assert_lean_error(
        r#"{"entries": {"Equity-usa-[*]": {"tuesday": [
            {"start": "16:00:00", "end": "09:30:00", "state": "market"}]}}}"#,
        &["tuesday[0]", "16:00:00", "09:30:00"],
    );
    assert_lean_error(
        r#"{"entries": {"Equity-usa-[*]": {"exchangeTimeZone": "Europe/London",
            "monday": [{"start": "08:00:00", "end": "16:30:00", "state": "market"}]}}}"#,
        &["exchangeTimeZone", "Europe/London"],
    );
}
