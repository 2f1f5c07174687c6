//! The US-equity trading calendar: which days trade, and when each day's pre-market,
//! regular and after-hours sessions begin and end.
//!
//! Ingestion uses it to know which symbol-days to expect and where a day's bars belong,
//! validation to spot missing or out-of-session bars, features to look back N trading days,
//! and the simulator to know when a session opens and closes. Times are seconds since
//! New York midnight of the trading day, the same clock as [`crate::clock`] and the caches.
//!
//! Hours: pre-market 04:00, regular session 09:30–16:00, after-hours until 20:00. On an
//! early-close day (a scheduled half day) the regular session ends at 13:00 and after-hours
//! ends at 17:00: the venues keep their four-hour late session after the early close.
//!
//! Two sources build the same [`Calendar`]:
//! - [`Calendar::us_equity`]: NYSE rules (recurring holidays with their weekend observance,
//!   the 13:00 half days, and the one-off closures since 1998). They reproduce every
//!   holiday and early close of LEAN's reference table, 1998-2028 (`tests/calendar.rs`),
//!   and add three days LEAN lacks: the 13:00 closes of 1998-11-27 and 1998-12-24 and the
//!   noon open of 2002-09-11. Earlier years apply the same modern rules and lack the
//!   pre-1998 one-off closures; future years are a projection that cannot know future
//!   one-off closures.
//! - [`Calendar::from_lean_market_hours`]: LEAN's `market-hours/equity-usa.json` (or its whole
//!   `market-hours-database.json`), for runs that must match LEAN exactly.
//!
//! Lookups are per symbol-day, so every day of a range of years is classified once at
//! construction (four bytes of table per day, a sorted list of trading days for stepping);
//! a lookup is an index, stepping N trading days is a binary search.

use crate::clock;
use crate::error::{Error, IoContext, Result};
use chrono::{Datelike, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::{Range, RangeInclusive};
use std::path::Path;
use std::sync::OnceLock;

/// Pre-market opens at 04:00 New York time.
pub const PRE_OPEN_SEC: u32 = 4 * 3600;
/// The regular session opens at 09:30.
pub const OPEN_SEC: u32 = 9 * 3600 + 30 * 60;
/// The regular session closes at 16:00.
pub const CLOSE_SEC: u32 = 16 * 3600;
/// After-hours trading ends at 20:00.
pub const POST_CLOSE_SEC: u32 = 20 * 3600;
/// The regular session closes at 13:00 on early-close days.
pub const EARLY_CLOSE_SEC: u32 = 13 * 3600;
/// After-hours trading ends at 17:00 on early-close days.
pub const EARLY_POST_CLOSE_SEC: u32 = 17 * 3600;

/// One trading day's session boundaries, in seconds since New York midnight of `date`.
///
/// Bars are stamped with their start, so a bar starting at second `s` belongs to the
/// regular session iff `open_sec <= s < close_sec`, and to the extended (pre-market +
/// regular + after-hours) session iff `pre_open_sec <= s < post_close_sec`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The trading day (New York date).
    pub date: NaiveDate,
    /// Pre-market opens (04:00).
    pub pre_open_sec: u32,
    /// The regular session opens (09:30; later on a late-open day).
    pub open_sec: u32,
    /// The regular session closes (16:00; 13:00 on an early-close day).
    pub close_sec: u32,
    /// After-hours trading ends (20:00; 17:00 on an early-close day).
    pub post_close_sec: u32,
    /// The regular session closes early (a scheduled half day).
    pub early_close: bool,
}

/// Which part of a day a second falls in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Before pre-market or after after-hours.
    Closed,
    /// `pre_open_sec <= s < open_sec`.
    PreMarket,
    /// `open_sec <= s < close_sec`.
    Regular,
    /// `close_sec <= s < post_close_sec`.
    PostMarket,
}

impl Session {
    /// Length of the regular session in seconds (23,400 on a full day, 12,600 on a half day).
    pub fn regular_secs(&self) -> u32 {
        // Saturating: a deserialized Session is not validated.
        self.close_sec.saturating_sub(self.open_sec)
    }

    /// Length of the extended session (pre-market through after-hours) in seconds.
    pub fn extended_secs(&self) -> u32 {
        self.post_close_sec.saturating_sub(self.pre_open_sec)
    }

    /// Whether second-of-day `sec` (a bar start) lies in the regular session. Takes `i64`
    /// because [`clock::sec_of_day`] is negative or past 86,400 for other days' timestamps.
    pub fn contains_regular(&self, sec: i64) -> bool {
        i64::from(self.open_sec) <= sec && sec < i64::from(self.close_sec)
    }

    /// Whether second-of-day `sec` (a bar start) lies in pre-market, regular or after-hours.
    pub fn contains_extended(&self, sec: i64) -> bool {
        i64::from(self.pre_open_sec) <= sec && sec < i64::from(self.post_close_sec)
    }

    /// The phase second-of-day `sec` falls in.
    pub fn phase(&self, sec: i64) -> Phase {
        if !self.contains_extended(sec) {
            Phase::Closed
        } else if sec < i64::from(self.open_sec) {
            Phase::PreMarket
        } else if sec < i64::from(self.close_sec) {
            Phase::Regular
        } else {
            Phase::PostMarket
        }
    }

    /// The regular session as UTC nanoseconds, `open..close`.
    pub fn regular_utc_ns(&self) -> Range<i64> {
        let offset = clock::ny_offset_secs(self.date);
        clock::utc_ns_with_offset(self.date, self.open_sec.into(), offset)
            ..clock::utc_ns_with_offset(self.date, self.close_sec.into(), offset)
    }

    /// The extended session as UTC nanoseconds, `pre_open..post_close`.
    pub fn extended_utc_ns(&self) -> Range<i64> {
        let offset = clock::ny_offset_secs(self.date);
        clock::utc_ns_with_offset(self.date, self.pre_open_sec.into(), offset)
            ..clock::utc_ns_with_offset(self.date, self.post_close_sec.into(), offset)
    }
}

/// A day's hours without its date: what the per-day table stores (by palette index).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Hours {
    pre_open: u32,
    open: u32,
    close: u32,
    post_close: u32,
    early_close: bool,
}

impl Hours {
    const REGULAR: Hours = Hours {
        pre_open: PRE_OPEN_SEC,
        open: OPEN_SEC,
        close: CLOSE_SEC,
        post_close: POST_CLOSE_SEC,
        early_close: false,
    };

    /// Closes the regular session at `close`; after-hours keeps its length (16:00–20:00
    /// becomes 13:00–17:00), which is what the venues do on half days.
    fn with_early_close(self, close: u32) -> Hours {
        Hours {
            close,
            post_close: close + (self.post_close - self.close),
            early_close: true,
            ..self
        }
    }

    /// Opens the regular session at `open`; pre-market still starts at its usual time
    /// (a schedule without pre-market starts trading at the late open).
    fn with_late_open(self, open: u32) -> Hours {
        let pre_open = if self.pre_open == self.open {
            open
        } else {
            self.pre_open
        };
        Hours {
            pre_open,
            open,
            ..self
        }
    }

    fn session(self, date: NaiveDate) -> Session {
        Session {
            date,
            pre_open_sec: self.pre_open,
            open_sec: self.open,
            close_sec: self.close,
            post_close_sec: self.post_close,
            early_close: self.early_close,
        }
    }
}

// ---------------------------------------------------------------------------------------
// NYSE rules
// ---------------------------------------------------------------------------------------

/// Years the rule calendar classifies at construction; other years are evaluated on the fly.
const RULE_YEARS: RangeInclusive<i32> = 1970..=2100;

/// Full-day closures that no recurring rule produces, since 1998 (source: NYSE closings
/// history, as compiled in pandas_market_calendars' `holidays_nyse.py`).
const SPECIAL_CLOSURES: [(i32, u32, u32); 10] = [
    // September 11 attacks: closed Tuesday through Friday.
    (2001, 9, 11),
    (2001, 9, 12),
    (2001, 9, 13),
    (2001, 9, 14),
    // National day of mourning for President Reagan.
    (2004, 6, 11),
    // National day of mourning for President Ford.
    (2007, 1, 2),
    // Hurricane Sandy.
    (2012, 10, 29),
    (2012, 10, 30),
    // National day of mourning for President George H. W. Bush.
    (2018, 12, 5),
    // National day of mourning for President Carter.
    (2025, 1, 9),
];

/// One-off 13:00 closes: the Fridays after Christmas 1997 and 2003 (Christmas on Thursday;
/// other such Fridays were full days).
const SPECIAL_EARLY_CLOSES: [(i32, u32, u32); 2] = [(1997, 12, 26), (2003, 12, 26)];

/// One-off late opens of the regular session that moved it by more than a few minutes:
/// the first anniversary of September 11 opened at noon. (The one-to-three-minute delays
/// for moments of silence, e.g. 2004-06-07 09:32, are not modelled.)
const SPECIAL_LATE_OPENS: [(i32, u32, u32, u32); 1] = [(2002, 9, 11, 12 * 3600)];

fn ymd(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, month, day)
}

fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The weekday NYSE closes for a fixed-date holiday: Saturday moves to Friday, Sunday to
/// Monday.
fn observed(date: Option<NaiveDate>) -> Option<NaiveDate> {
    let date = date?;
    match date.weekday() {
        Weekday::Sat => date.pred_opt(),
        Weekday::Sun => date.succ_opt(),
        _ => Some(date),
    }
}

/// The `n`-th `weekday` of a month (1-based).
fn nth_weekday(year: i32, month: u32, weekday: Weekday, n: u8) -> Option<NaiveDate> {
    NaiveDate::from_weekday_of_month_opt(year, month, weekday, n)
}

fn last_weekday(year: i32, month: u32, weekday: Weekday) -> Option<NaiveDate> {
    nth_weekday(year, month, weekday, 5).or_else(|| nth_weekday(year, month, weekday, 4))
}

/// Western (Gregorian) Easter Sunday by the anonymous Gregorian computus (Meeus/Jones/
/// Butcher).
fn easter(year: i32) -> Option<NaiveDate> {
    let y = i64::from(year);
    let a = y.rem_euclid(19);
    let b = y.div_euclid(100);
    let c = y.rem_euclid(100);
    let (d, e) = (b.div_euclid(4), b.rem_euclid(4));
    let f = (b + 8).div_euclid(25);
    let g = (b - f + 1).div_euclid(3);
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let (i, k) = (c.div_euclid(4), c.rem_euclid(4));
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l).div_euclid(451);
    let n = h + l - 7 * m + 114;
    ymd(
        year,
        u32::try_from(n / 31).ok()?,
        u32::try_from(n % 31 + 1).ok()?,
    )
}

/// One year's rule-made holidays and half days, computed without allocating.
struct YearRules {
    holidays: [Option<NaiveDate>; 10],
    early_closes: [Option<NaiveDate>; 4],
}

impl YearRules {
    fn new(year: i32) -> YearRules {
        // New Year's Day on a Saturday is not observed: NYSE stays open on Friday Dec 31
        // (its rule 7.2), so only the Sunday -> Monday move applies.
        let new_year = ymd(year, 1, 1).and_then(|d| match d.weekday() {
            Weekday::Sat => None,
            Weekday::Sun => d.succ_opt(),
            _ => Some(d),
        });
        let thanksgiving = nth_weekday(year, 11, Weekday::Thu, 4);
        let holidays = [
            new_year,
            // Martin Luther King Jr. Day: NYSE first closed for it in 1998.
            nth_weekday(year, 1, Weekday::Mon, 3).filter(|_| year >= 1998),
            // Washington's Birthday (Presidents' Day).
            nth_weekday(year, 2, Weekday::Mon, 3),
            // Good Friday.
            easter(year).and_then(|e| e.checked_sub_days(chrono::Days::new(2))),
            // Memorial Day.
            last_weekday(year, 5, Weekday::Mon),
            // Juneteenth: first observed by NYSE in 2022 (open on 2021-06-18).
            observed(ymd(year, 6, 19)).filter(|_| year >= 2022),
            observed(ymd(year, 7, 4)),
            // Labor Day.
            nth_weekday(year, 9, Weekday::Mon, 1),
            thanksgiving,
            observed(ymd(year, 12, 25)),
        ];

        // The 13:00 half days, as NYSE has scheduled them since the 1990s.
        let july3 = ymd(year, 7, 3).filter(|d| match d.weekday() {
            // July 4 on Tuesday, Wednesday or Friday.
            Weekday::Mon | Weekday::Tue | Weekday::Thu => year >= 1995,
            // July 4 on Thursday: the half day was the Wednesday before from 2013 on...
            Weekday::Wed => year >= 2013,
            _ => false,
        });
        // ...and the Friday after until 2012 (2002-07-05).
        let july5 = ymd(year, 7, 5).filter(|d| d.weekday() == Weekday::Fri && year <= 2012);
        // The day after Thanksgiving closes at 13:00 since 1993.
        let black_friday = thanksgiving
            .and_then(|t| t.succ_opt())
            .filter(|_| year >= 1993);
        // Christmas Eve on Monday to Thursday (a Friday Dec 24 is the observed holiday when
        // Christmas falls on Saturday). At 13:00 since 1993; earlier years closed at 14:00.
        let christmas_eve = ymd(year, 12, 24)
            .filter(|d| !matches!(d.weekday(), Weekday::Fri | Weekday::Sat | Weekday::Sun))
            .filter(|_| year >= 1993);
        YearRules {
            holidays,
            early_closes: [july3, july5, black_friday, christmas_eve],
        }
    }

    fn hours(&self, date: NaiveDate) -> Option<Hours> {
        let ymd = (date.year(), date.month(), date.day());
        if is_weekend(date)
            || self.holidays.contains(&Some(date))
            || SPECIAL_CLOSURES.contains(&ymd)
        {
            return None;
        }
        let mut hours = Hours::REGULAR;
        if let Some(&(.., open)) = SPECIAL_LATE_OPENS
            .iter()
            .find(|(y, m, d, _)| (*y, *m, *d) == ymd)
        {
            hours = hours.with_late_open(open);
        }
        if self.early_closes.contains(&Some(date)) || SPECIAL_EARLY_CLOSES.contains(&ymd) {
            hours = hours.with_early_close(EARLY_CLOSE_SEC);
        }
        Some(hours)
    }
}

// ---------------------------------------------------------------------------------------
// The calendar
// ---------------------------------------------------------------------------------------

/// How days outside the precomputed table are classified.
#[derive(Clone, Debug)]
enum Beyond {
    /// Evaluate the NYSE rules for the day.
    Rules,
    /// Only the weekly schedule (Monday = 0), as LEAN does past the end of its table.
    Weekly([Option<Hours>; 7]),
}

/// A trading calendar: which days trade and each trading day's [`Session`].
///
/// Build it once ([`Calendar::us_equity`] or [`Calendar::from_lean_market_hours`]) and share
/// it; lookups are cheap, construction classifies every day of the covered years.
#[derive(Clone, Debug)]
pub struct Calendar {
    /// The first day of the table (January 1 of the first covered year).
    first: NaiveDate,
    /// Per day from `first`: 0 = no trading, `k` = `palette[k - 1]`.
    codes: Vec<u32>,
    /// The distinct day hours in the table (a handful).
    palette: Vec<Hours>,
    /// The table's trading days, ascending: stepping is a binary search in here.
    trading: Vec<NaiveDate>,
    beyond: Beyond,
}

impl Default for Calendar {
    fn default() -> Calendar {
        Calendar::us_equity()
    }
}

/// Accumulates the per-day table, one consecutive day at a time.
struct TableBuilder {
    first: NaiveDate,
    codes: Vec<u32>,
    palette: Vec<Hours>,
    palette_index: HashMap<Hours, u32>,
    trading: Vec<NaiveDate>,
}

impl TableBuilder {
    fn new(first: NaiveDate, days: usize) -> TableBuilder {
        TableBuilder {
            first,
            codes: Vec::with_capacity(days),
            palette: Vec::new(),
            palette_index: HashMap::new(),
            trading: Vec::with_capacity(days * 5 / 7 + 1),
        }
    }

    /// Appends the next day.
    fn push(&mut self, date: NaiveDate, hours: Option<Hours>) {
        let code = match hours {
            None => 0,
            Some(h) => {
                self.trading.push(date);
                match self.palette_index.get(&h) {
                    Some(&code) => code,
                    None => {
                        self.palette.push(h);
                        // At most one palette entry per day, and tables span at most a few
                        // hundred years (`RULE_YEARS`, `LEAN_YEARS`): fits in u32.
                        let code = self.palette.len() as u32;
                        self.palette_index.insert(h, code);
                        code
                    }
                }
            }
        };
        self.codes.push(code);
    }

    fn finish(self, beyond: Beyond) -> Calendar {
        Calendar {
            first: self.first,
            codes: self.codes,
            palette: self.palette,
            trading: self.trading,
            beyond,
        }
    }
}

/// The days of `years`, or none when the range is empty or outside chrono's dates.
fn days_of(years: &RangeInclusive<i32>) -> Option<(NaiveDate, NaiveDate)> {
    let first = ymd(*years.start(), 1, 1)?;
    let last = ymd(*years.end(), 12, 31)?;
    (first <= last).then_some((first, last))
}

impl Calendar {
    /// The US-equity calendar from NYSE rules (see the module docs for what they cover).
    /// Construction takes about a millisecond; [`Calendar::us_equity_shared`] builds it once.
    pub fn us_equity() -> Calendar {
        Calendar::from_rules(RULE_YEARS)
    }

    /// The rule calendar, built on first use and shared by the whole process.
    pub fn us_equity_shared() -> &'static Calendar {
        static SHARED: OnceLock<Calendar> = OnceLock::new();
        SHARED.get_or_init(Calendar::us_equity)
    }

    /// The rule calendar with `years` precomputed (tests shrink it to exercise the
    /// on-the-fly path).
    fn from_rules(years: RangeInclusive<i32>) -> Calendar {
        let Some((first, last)) = days_of(&years) else {
            return TableBuilder::new(NaiveDate::default(), 0).finish(Beyond::Rules);
        };
        let days = usize::try_from((last - first).num_days() + 1).unwrap_or(0);
        let mut table = TableBuilder::new(first, days);
        for year in years {
            let rules = YearRules::new(year);
            let (Some(jan1), Some(dec31)) = (ymd(year, 1, 1), ymd(year, 12, 31)) else {
                continue;
            };
            for date in jan1.iter_days().take_while(|d| *d <= dec31) {
                table.push(date, rules.hours(date));
            }
        }
        table.finish(Beyond::Rules)
    }

    /// The calendar of LEAN's market-hours file: `market-hours/equity-usa.json` or the
    /// whole `market-hours-database.json`, entry `"Equity-usa-[*]"` (its weekly schedule
    /// of premarket / market / postmarket segments, `holidays` as `M/D/YYYY`,
    /// `earlyCloses` and `lateOpens` as `{"M/D/YYYY": "HH:MM:SS"}`).
    ///
    /// An early close ends after-hours as long after it as usual (13:00 gives 17:00, as in
    /// the rule calendar), a late open keeps pre-market's start, a holiday wins over an
    /// early close on the same day, and entries on days the weekly schedule has closed
    /// (LEAN lists a Sunday, 12/24/2017) are ignored. Outside the years the file lists, only
    /// the weekly schedule applies (see [`Calendar::covered_years`]).
    pub fn from_lean_market_hours(path: &Path) -> Result<Calendar> {
        let bytes = std::fs::read(path).at(path)?;
        let bad = |detail: String| Error::input(path, detail);
        let mut file: LeanFile =
            serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&bytes))
                .map_err(|e| bad(format!("not LEAN market-hours JSON: {e}")))?;
        let entry = file.entries.remove(LEAN_ENTRY).ok_or_else(|| {
            bad(format!(
                "no entries.\"{LEAN_ENTRY}\"; expected LEAN's market-hours/equity-usa.json \
                 or market-hours-database.json"
            ))
        })?;
        let entry: LeanEntry = serde_path_to_error::deserialize(entry).map_err(|e| {
            let at = e.path().to_string();
            let at = if at == "." {
                String::new()
            } else {
                format!(".{at}")
            };
            bad(format!("{FIELD}{at}: {}", e.inner()))
        })?;
        Ok(LeanPlan::validate(entry).map_err(bad)?.build())
    }

    /// Whether the market has a regular session on `date`.
    pub fn is_trading_day(&self, date: NaiveDate) -> bool {
        self.hours(date).is_some()
    }

    /// The session of `date`, or `None` when the market is closed that day.
    pub fn session(&self, date: NaiveDate) -> Option<Session> {
        self.hours(date).map(|h| h.session(date))
    }

    /// The trading day strictly before `date` (Monday gives Friday, unless Friday was a
    /// holiday).
    pub fn prev_trading_day(&self, date: NaiveDate) -> NaiveDate {
        self.trading_days_back(date, 1)
    }

    /// The trading day strictly after `date`.
    pub fn next_trading_day(&self, date: NaiveDate) -> NaiveDate {
        self.trading_days_forward(date, 1)
    }

    /// The trading day `n` trading days before `date`: `n = 1` is
    /// [`Calendar::prev_trading_day`], `n = 0` is `date` itself (trading day or not).
    /// Saturates at chrono's earliest date (year -262,143), which nothing real reaches.
    pub fn trading_days_back(&self, date: NaiveDate, n: usize) -> NaiveDate {
        let mut day = date;
        let mut left = n;
        while left > 0 {
            if self.first < day && self.table_index(day.pred_opt().unwrap_or(day)).is_some() {
                // `before` trading days of the table lie strictly before `day`.
                let before = self.trading.partition_point(|&t| t < day);
                if before >= left {
                    return self.trading.get(before - left).copied().unwrap_or(day);
                }
                left -= before;
                day = self.first;
            }
            match day.pred_opt() {
                Some(prev) => day = prev,
                None => return day,
            }
            if self.is_trading_day(day) {
                left -= 1;
            }
        }
        day
    }

    /// The trading day `n` trading days after `date` (`n = 1` is
    /// [`Calendar::next_trading_day`], `n = 0` is `date`). Saturates at chrono's last date.
    pub fn trading_days_forward(&self, date: NaiveDate, n: usize) -> NaiveDate {
        let mut day = date;
        let mut left = n;
        while left > 0 {
            if let Some(last) = self.trading.last()
                && day < *last
                && self.table_index(day.succ_opt().unwrap_or(day)).is_some()
            {
                // Trading days of the table strictly after `day` start at `at_or_before`.
                let at_or_before = self.trading.partition_point(|&t| t <= day);
                let after = self.trading.len() - at_or_before;
                if after >= left {
                    return self
                        .trading
                        .get(at_or_before + left - 1)
                        .copied()
                        .unwrap_or(day);
                }
                left -= after;
                day = *last;
            }
            match day.succ_opt() {
                Some(next) => day = next,
                None => return day,
            }
            if self.is_trading_day(day) {
                left -= 1;
            }
        }
        day
    }

    /// The trading days from `from` to `to`, both inclusive (empty when `from > to`).
    pub fn trading_days(&self, from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
        from.iter_days()
            .take_while(|d| *d <= to)
            .filter(|d| self.is_trading_day(*d))
            .collect()
    }

    /// The years classified at construction, if any. For the rule calendar, other years
    /// are evaluated from the rules on the fly (same answers, slower); for a LEAN table,
    /// other years get only the weekly schedule, since the file says nothing about them.
    pub fn covered_years(&self) -> Option<RangeInclusive<i32>> {
        let last = self
            .first
            .checked_add_days(chrono::Days::new(self.codes.len().checked_sub(1)? as u64))?;
        Some(self.first.year()..=last.year())
    }

    fn table_index(&self, date: NaiveDate) -> Option<usize> {
        usize::try_from((date - self.first).num_days())
            .ok()
            .filter(|&i| i < self.codes.len())
    }

    fn hours(&self, date: NaiveDate) -> Option<Hours> {
        match self.table_index(date) {
            Some(i) => {
                let code = *self.codes.get(i)?;
                self.palette.get((code as usize).checked_sub(1)?).copied()
            }
            None => match &self.beyond {
                Beyond::Rules => YearRules::new(date.year()).hours(date),
                Beyond::Weekly(week) => week
                    .get(date.weekday().num_days_from_monday() as usize)
                    .copied()
                    .flatten(),
            },
        }
    }
}

// ---------------------------------------------------------------------------------------
// LEAN market-hours files
// ---------------------------------------------------------------------------------------

/// The entry of LEAN's market-hours database that describes US equities.
const LEAN_ENTRY: &str = "Equity-usa-[*]";
/// The entry's path, prefixed to field names in error messages.
const FIELD: &str = "entries.\"Equity-usa-[*]\"";
/// Dates a LEAN file may name: bounds the table's size before it is allocated.
const LEAN_YEARS: RangeInclusive<i32> = 1900..=2199;
/// Weekday field names, Monday first (chrono's `num_days_from_monday`).
const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

#[derive(Deserialize)]
struct LeanFile {
    entries: BTreeMap<String, serde_json::Value>,
}

// Unknown keys (`dataTimeZone`, `bankHolidays`, ...) are LEAN's business: not denied.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeanEntry {
    #[serde(default)]
    exchange_time_zone: Option<String>,
    #[serde(default)]
    monday: Vec<LeanSegment>,
    #[serde(default)]
    tuesday: Vec<LeanSegment>,
    #[serde(default)]
    wednesday: Vec<LeanSegment>,
    #[serde(default)]
    thursday: Vec<LeanSegment>,
    #[serde(default)]
    friday: Vec<LeanSegment>,
    #[serde(default)]
    saturday: Vec<LeanSegment>,
    #[serde(default)]
    sunday: Vec<LeanSegment>,
    #[serde(default)]
    holidays: Vec<String>,
    #[serde(default)]
    early_closes: BTreeMap<String, String>,
    #[serde(default)]
    late_opens: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct LeanSegment {
    start: String,
    end: String,
    state: String,
}

/// A validated LEAN entry, ready to be expanded into the per-day table.
struct LeanPlan {
    weekly: [Option<Hours>; 7],
    holidays: HashSet<NaiveDate>,
    early_closes: HashMap<NaiveDate, u32>,
    late_opens: HashMap<NaiveDate, u32>,
    years: Option<RangeInclusive<i32>>,
}

/// `M/D/YYYY` (leading zeros allowed, as in LEAN's `12/05/2018`).
fn parse_lean_date(s: &str) -> Option<NaiveDate> {
    let mut parts = s.trim().split('/');
    let month = parts.next()?.parse().ok()?;
    let day = parts.next()?.parse().ok()?;
    let year = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    ymd(year, month, day)
}

/// A .NET `TimeSpan` of at most one day: `HH:MM:SS`, or `1.00:00:00` for midnight at the
/// end of the day.
fn parse_lean_time(s: &str) -> Option<u32> {
    let s = s.trim();
    let (days, hms) = match s.split_once('.') {
        Some((d, rest)) => (d.parse::<u32>().ok()?, rest),
        None => (0, s),
    };
    let mut parts = hms.split(':');
    let mut field = |max: u32| -> Option<u32> {
        let p = parts.next()?;
        let v = p.parse::<u32>().ok()?;
        (p.len() == 2 && v < max).then_some(v)
    };
    let (h, m, sec) = (field(24)?, field(60)?, field(60)?);
    if parts.next().is_some() {
        return None;
    }
    let total = days.checked_mul(86_400)? + h * 3600 + m * 60 + sec;
    (total <= 86_400).then_some(total)
}

fn lean_date(field: &str, s: &str) -> Result<NaiveDate, String> {
    let date = parse_lean_date(s).ok_or_else(|| {
        format!("{FIELD}.{field}: '{s}' is not a date; expected M/D/YYYY like 7/3/2013")
    })?;
    if !LEAN_YEARS.contains(&date.year()) {
        return Err(format!(
            "{FIELD}.{field}: '{s}' is outside {}-{}; fix the year",
            LEAN_YEARS.start(),
            LEAN_YEARS.end()
        ));
    }
    Ok(date)
}

fn lean_time(field: &str, s: &str) -> Result<u32, String> {
    parse_lean_time(s).ok_or_else(|| {
        format!("{FIELD}.{field}: '{s}' is not a time of day; expected HH:MM:SS like 13:00:00")
    })
}

/// One weekday's segments as hours, `None` when the day has no session.
fn lean_day(name: &str, segments: &[LeanSegment]) -> Result<Option<Hours>, String> {
    let mut market: Option<(u32, u32)> = None;
    let mut pre: Option<u32> = None;
    let mut post: Option<u32> = None;
    for (i, seg) in segments.iter().enumerate() {
        let at = format!("{name}[{i}]");
        let start = lean_time(&format!("{at}.start"), &seg.start)?;
        let end = lean_time(&format!("{at}.end"), &seg.end)?;
        if start >= end {
            return Err(format!(
                "{FIELD}.{at}: start {} is not before end {}; fix the segment",
                seg.start, seg.end
            ));
        }
        match seg.state.as_str() {
            "market" if market.is_some() => {
                return Err(format!(
                    "{FIELD}.{at}: a second 'market' segment; only one regular session per \
                     day is supported"
                ));
            }
            "market" => market = Some((start, end)),
            "premarket" => pre = Some(pre.map_or(start, |p| p.min(start))),
            "postmarket" => post = Some(post.map_or(end, |p| p.max(end))),
            "closed" => {}
            other => {
                return Err(format!(
                    "{FIELD}.{at}.state: '{other}' is not premarket, market, postmarket or \
                     closed"
                ));
            }
        }
    }
    let Some((open, close)) = market else {
        if pre.is_some() || post.is_some() {
            return Err(format!(
                "{FIELD}.{name}: extended-hours segments without a 'market' segment; add \
                 the regular session or remove them"
            ));
        }
        return Ok(None);
    };
    let pre_open = pre.unwrap_or(open);
    let post_close = post.unwrap_or(close);
    if pre_open > open || post_close < close {
        return Err(format!(
            "{FIELD}.{name}: premarket must start before and postmarket end after the \
             'market' segment"
        ));
    }
    Ok(Some(Hours {
        pre_open,
        open,
        close,
        post_close,
        early_close: false,
    }))
}

impl LeanPlan {
    fn validate(entry: LeanEntry) -> Result<LeanPlan, String> {
        if let Some(tz) = &entry.exchange_time_zone
            && tz != "America/New_York"
        {
            return Err(format!(
                "{FIELD}.exchangeTimeZone: '{tz}'; only America/New_York is supported"
            ));
        }
        let days = [
            &entry.monday,
            &entry.tuesday,
            &entry.wednesday,
            &entry.thursday,
            &entry.friday,
            &entry.saturday,
            &entry.sunday,
        ];
        let mut weekly = [None; 7];
        for ((slot, name), segments) in weekly.iter_mut().zip(WEEKDAYS).zip(days) {
            *slot = lean_day(name, segments)?;
        }
        if weekly.iter().all(Option::is_none) {
            return Err(format!(
                "{FIELD}: no weekday has a 'market' segment; the weekly schedule is empty"
            ));
        }

        let mut holidays = HashSet::new();
        for (i, s) in entry.holidays.iter().enumerate() {
            holidays.insert(lean_date(&format!("holidays[{i}]"), s)?);
        }
        let mut early_closes = HashMap::new();
        for (key, value) in &entry.early_closes {
            let field = format!("earlyCloses.\"{key}\"");
            let date = lean_date(&field, key)?;
            early_closes.insert(date, lean_time(&field, value)?);
        }
        let mut late_opens = HashMap::new();
        for (key, value) in &entry.late_opens {
            let field = format!("lateOpens.\"{key}\"");
            let date = lean_date(&field, key)?;
            late_opens.insert(date, lean_time(&field, value)?);
        }

        // Each special day must leave a non-empty regular session.
        for date in early_closes.keys().chain(late_opens.keys()) {
            let Some(normal) = weekly
                .get(date.weekday().num_days_from_monday() as usize)
                .copied()
                .flatten()
            else {
                continue;
            };
            if holidays.contains(date) {
                continue;
            }
            let key = format!("{}/{}/{}", date.month(), date.day(), date.year());
            let open = late_opens.get(date).copied().unwrap_or(normal.open);
            if let Some(&late) = late_opens.get(date)
                && (late <= normal.open || late >= normal.close)
            {
                return Err(format!(
                    "{FIELD}.lateOpens.\"{key}\": {} is not after the usual open {} and \
                     before the close",
                    clock::hms(late.into()),
                    clock::hms(normal.open.into())
                ));
            }
            if let Some(&early) = early_closes.get(date)
                && (early >= normal.close || early <= open)
            {
                return Err(format!(
                    "{FIELD}.earlyCloses.\"{key}\": {} is not before the usual close {} and \
                     after the open {}",
                    clock::hms(early.into()),
                    clock::hms(normal.close.into()),
                    clock::hms(open.into())
                ));
            }
        }

        let years = holidays
            .iter()
            .chain(early_closes.keys())
            .chain(late_opens.keys())
            .map(|d| d.year())
            .fold(None, |acc: Option<(i32, i32)>, y| {
                Some(acc.map_or((y, y), |(lo, hi)| (lo.min(y), hi.max(y))))
            })
            .map(|(lo, hi)| lo..=hi);
        Ok(LeanPlan {
            weekly,
            holidays,
            early_closes,
            late_opens,
            years,
        })
    }

    fn hours(&self, date: NaiveDate) -> Option<Hours> {
        let mut hours = self
            .weekly
            .get(date.weekday().num_days_from_monday() as usize)
            .copied()
            .flatten()?;
        if self.holidays.contains(&date) {
            return None;
        }
        if let Some(&open) = self.late_opens.get(&date) {
            hours = hours.with_late_open(open);
        }
        if let Some(&close) = self.early_closes.get(&date) {
            hours = hours.with_early_close(close);
        }
        Some(hours)
    }

    fn build(self) -> Calendar {
        let beyond = Beyond::Weekly(self.weekly);
        let Some((first, last)) = self.years.as_ref().and_then(days_of) else {
            return TableBuilder::new(NaiveDate::default(), 0).finish(beyond);
        };
        let days = usize::try_from((last - first).num_days() + 1).unwrap_or(0);
        let mut table = TableBuilder::new(first, days);
        for date in first.iter_days().take_while(|d| *d <= last) {
            table.push(date, self.hours(date));
        }
        table.finish(beyond)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn easter_matches_published_dates() {
        // Published Western Easter Sundays, including the extremes (Mar 22, Apr 25).
        for (y, m, day) in [
            (1818, 3, 22),
            (1943, 4, 25),
            (2000, 4, 23),
            (2008, 3, 23),
            (2011, 4, 24),
            (2019, 4, 21),
            (2024, 3, 31),
            (2025, 4, 20),
            (2038, 4, 25),
            (2285, 3, 22),
        ] {
            assert_eq!(easter(y), Some(d(y, m, day)), "{y}");
        }
    }

    #[test]
    fn half_day_after_hours_end_at_17() {
        let h = Hours::REGULAR.with_early_close(EARLY_CLOSE_SEC);
        assert_eq!(
            (h.close, h.post_close),
            (EARLY_CLOSE_SEC, EARLY_POST_CLOSE_SEC)
        );
        assert_eq!(EARLY_POST_CLOSE_SEC, 17 * 3600);
        assert!(h.early_close);
    }

    #[test]
    fn on_the_fly_rules_equal_the_precomputed_table() {
        // Precompute only 2000-2001: every other day goes through `Beyond::Rules`.
        let narrow = Calendar::from_rules(2000..=2001);
        let wide = Calendar::us_equity();
        for date in d(1985, 1, 1)
            .iter_days()
            .take_while(|x| *x <= d(2035, 12, 31))
        {
            assert_eq!(narrow.session(date), wide.session(date), "{date}");
        }
        // Stepping across the table's edges, both ways, agrees too.
        for (date, n) in [
            (d(2000, 1, 10), 30),
            (d(2002, 1, 10), 30),
            (d(2002, 1, 10), 600),
            (d(1999, 12, 20), 600),
            (d(2001, 12, 20), 30),
        ] {
            assert_eq!(
                narrow.trading_days_back(date, n),
                wide.trading_days_back(date, n)
            );
            assert_eq!(
                narrow.trading_days_forward(date, n),
                wide.trading_days_forward(date, n)
            );
        }
        assert_eq!(narrow.covered_years(), Some(2000..=2001));
        assert_eq!(wide.covered_years(), Some(RULE_YEARS));
    }

    #[test]
    fn lean_dates_and_times_parse_strictly() {
        assert_eq!(parse_lean_date("12/05/2018"), Some(d(2018, 12, 5)));
        assert_eq!(parse_lean_date("7/3/2013"), Some(d(2013, 7, 3)));
        for bad in [
            "2013-07-03",
            "13/1/2020",
            "2/30/2020",
            "7/3",
            "7/3/2013/1",
            "",
        ] {
            assert_eq!(parse_lean_date(bad), None, "{bad}");
        }
        assert_eq!(parse_lean_time("13:00:00"), Some(46_800));
        assert_eq!(parse_lean_time("09:30:00"), Some(34_200));
        assert_eq!(parse_lean_time("1.00:00:00"), Some(86_400));
        for bad in [
            "25:00:00",
            "9:30:00",
            "13:00",
            "13:60:00",
            "1.00:00:01",
            "x",
        ] {
            assert_eq!(parse_lean_time(bad), None, "{bad}");
        }
    }
}
