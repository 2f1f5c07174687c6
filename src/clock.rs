//! New York wall-clock time. US equity data is stamped either in New York local time
//! (LEAN) or in UTC (Databento, Polygon); the cache keeps UTC nanoseconds and indexes bars
//! by *seconds since New York midnight* of the trading day.
//!
//! DST switches happen at 02:00 local, outside every session (04:00–20:00), so one UTC
//! offset per trading day (taken at noon) converts every bar of that day exactly.

use chrono::{DateTime, NaiveDate, NaiveTime, Offset, TimeZone};
use chrono_tz::Tz;

/// The exchange time zone of US equities.
pub const NY: Tz = chrono_tz::America::New_York;

pub const NS_PER_SEC: i64 = 1_000_000_000;
pub const SECS_PER_DAY: i64 = 86_400;

/// New York's UTC offset in seconds on `date` (e.g. -14400 in summer, -18000 in winter).
pub fn ny_offset_secs(date: NaiveDate) -> i32 {
    let noon = date.and_time(NaiveTime::from_hms_opt(12, 0, 0).expect("valid time"));
    NY.offset_from_utc_datetime(&(noon - chrono::Duration::hours(5)))
        .fix()
        .local_minus_utc()
}

/// UTC nanoseconds of `sec_of_day` seconds after New York midnight on `date`.
pub fn utc_ns(date: NaiveDate, sec_of_day: i64) -> i64 {
    utc_ns_with_offset(date, sec_of_day, ny_offset_secs(date))
}

/// As [`utc_ns`], with the day's offset already known (hot paths compute it once per day).
pub fn utc_ns_with_offset(date: NaiveDate, sec_of_day: i64, offset_secs: i32) -> i64 {
    let midnight = date
        .and_hms_opt(0, 0, 0)
        .expect("valid time")
        .and_utc()
        .timestamp();
    (midnight + sec_of_day - offset_secs as i64) * NS_PER_SEC
}

/// Seconds since New York midnight of `date` for a UTC timestamp (may be negative or past
/// 86400 when the timestamp belongs to another day).
pub fn sec_of_day(ts_ns: i64, date: NaiveDate, offset_secs: i32) -> i64 {
    let midnight = date
        .and_hms_opt(0, 0, 0)
        .expect("valid time")
        .and_utc()
        .timestamp();
    ts_ns.div_euclid(NS_PER_SEC) + offset_secs as i64 - midnight
}

/// The New York local date-time of a UTC timestamp.
pub fn ny_datetime(ts_ns: i64) -> DateTime<Tz> {
    NY.timestamp_nanos(ts_ns)
}

/// The New York calendar date and seconds since its midnight for a UTC timestamp.
pub fn ny_date_sec(ts_ns: i64) -> (NaiveDate, i64) {
    let dt = ny_datetime(ts_ns);
    let date = dt.date_naive();
    (date, sec_of_day(ts_ns, date, ny_offset_secs(date)))
}

/// ISO-8601 with the New York offset, e.g. `2013-10-07T09:30:00-04:00`.
pub fn iso_ny(ts_ns: i64) -> String {
    let dt = ny_datetime(ts_ns);
    if ts_ns.rem_euclid(NS_PER_SEC) == 0 {
        dt.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
    } else {
        dt.format("%Y-%m-%dT%H:%M:%S%.9f%:z").to_string()
    }
}

/// `HH:MM:SS` for seconds since midnight.
pub fn hms(sec_of_day: i64) -> String {
    let s = sec_of_day.rem_euclid(SECS_PER_DAY);
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn offsets_follow_dst() {
        assert_eq!(ny_offset_secs(d(2013, 10, 7)), -4 * 3600);
        assert_eq!(ny_offset_secs(d(2014, 1, 7)), -5 * 3600);
        // 2023-03-12 is the spring-forward Sunday; the Monday after is EDT.
        assert_eq!(ny_offset_secs(d(2023, 3, 13)), -4 * 3600);
        assert_eq!(ny_offset_secs(d(2023, 3, 10)), -5 * 3600);
    }

    #[test]
    fn open_2013_10_07_is_13_30_utc() {
        // 09:30 EDT = 13:30 UTC = 1381152600 s.
        let ns = utc_ns(d(2013, 10, 7), 9 * 3600 + 1800);
        assert_eq!(ns, 1_381_152_600 * NS_PER_SEC);
        assert_eq!(ny_date_sec(ns), (d(2013, 10, 7), 34_200));
        assert_eq!(iso_ny(ns), "2013-10-07T09:30:00-04:00");
        assert_eq!(hms(34_200), "09:30:00");
    }
}
