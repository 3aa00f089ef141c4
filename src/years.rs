//! Year inference for `sfc.exe.log` timestamps, which carry no year.
//!
//! Each file is anchored to a date known to be at or after its last line
//! (the bundle name's date, the archive entry's modification time, or the
//! newest `local.xml` epoch field). The last line takes the anchor's year
//! unless its month and day fall after the anchor, in which case it belongs
//! to the year before. Walking backwards, each place where the month goes
//! up (January back to December) crosses into the previous year.

use std::sync::LazyLock;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime};
use regex::Regex;

use crate::logline::LogStamp;

/// Days a log may run past its anchor, since the anchor can be UTC while
/// the log is in the endpoint's local time.
const ANCHOR_SLACK_DAYS: i64 = 2;

/// Returns the year of each stamp, given in file order, or `None` for an
/// empty list. Stamps out of order within a month (clock changes) do not
/// count as a year change.
pub fn assign_years(stamps: &[LogStamp], anchor: NaiveDate) -> Vec<i32> {
    let Some(last) = stamps.last() else {
        return Vec::new();
    };

    // Year changes seen walking forward: a month lower than the previous
    // stamp's means the log crossed 31 December.
    let mut crossings = Vec::with_capacity(stamps.len());
    let mut count = 0i32;
    for (index, stamp) in stamps.iter().enumerate() {
        if index > 0 && stamp.month < stamps[index - 1].month {
            count += 1;
        }
        crossings.push(count);
    }

    let last_year = year_of_last(last, anchor);
    crossings
        .iter()
        .map(|crossed| last_year - (count - crossed))
        .collect()
}

/// Returns the year of a stamp known to be at most about `anchor`.
fn year_of_last(stamp: &LogStamp, anchor: NaiveDate) -> i32 {
    let limit = anchor + Duration::days(ANCHOR_SLACK_DAYS);
    let same_year = NaiveDate::from_ymd_opt(anchor.year(), stamp.month, stamp.day.min(28))
        .map(|date| date.with_day(stamp.day).unwrap_or(date));
    match same_year {
        Some(date) if date <= limit => anchor.year(),
        // 29 February in a year without one: the stamp belongs to a leap
        // year, so keep the anchor's year unless the date is past the limit.
        None if stamp.month == 2 && stamp.day == 29 => anchor.year(),
        _ => anchor.year() - 1,
    }
}

/// Builds a full local date and time, or `None` for an impossible date.
pub fn to_datetime(stamp: &LogStamp, year: i32) -> Option<NaiveDateTime> {
    NaiveDate::from_ymd_opt(year, stamp.month, stamp.day)?.and_hms_opt(
        stamp.hour,
        stamp.minute,
        stamp.second,
    )
}

/// Finds a date such as `2023_05_18`, `2023-05-18` or `20230518` in a bundle
/// file name.
pub fn date_in_name(name: &str) -> Option<NaiveDate> {
    static DATE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?:^|\D)(20\d\d)[-_.]?(\d\d)[-_.]?(\d\d)(?:\D|$)")
            .expect("constant pattern compiles")
    });
    DATE.captures_iter(name).find_map(|captures| {
        let year = captures[1].parse().ok()?;
        let month = captures[2].parse().ok()?;
        let day = captures[3].parse().ok()?;
        NaiveDate::from_ymd_opt(year, month, day)
    })
}

/// Finds the collection time in a bundle name such as
/// `CiscoAMP_Support_Tool_2023_05_18_21_40_12`: the date, and the time of day
/// when the name has one (midnight otherwise). The time is the endpoint's
/// local time.
pub fn datetime_in_name(name: &str) -> Option<NaiveDateTime> {
    static DATE_TIME: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?:^|\D)(20\d\d)[-_.]?(\d\d)[-_.]?(\d\d)(?:[-_.T ](\d\d)[-_.:]?(\d\d)[-_.:]?(\d\d))?(?:\D|$)")
            .expect("constant pattern compiles")
    });
    DATE_TIME.captures_iter(name).find_map(|captures| {
        let date = NaiveDate::from_ymd_opt(
            captures[1].parse().ok()?,
            captures[2].parse().ok()?,
            captures[3].parse().ok()?,
        )?;
        let number = |index: usize| {
            captures
                .get(index)
                .and_then(|m| m.as_str().parse::<u32>().ok())
        };
        let time = match (number(4), number(5), number(6)) {
            (Some(hour), Some(minute), Some(second)) => date.and_hms_opt(hour, minute, second),
            _ => None,
        };
        time.or_else(|| date.and_hms_opt(0, 0, 0))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stamp(month: u32, day: u32) -> LogStamp {
        LogStamp {
            month,
            day,
            hour: 12,
            minute: 0,
            second: 0,
        }
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    #[test]
    fn same_year_when_before_anchor() {
        assert_eq!(
            assign_years(&[stamp(5, 17), stamp(5, 18)], date(2023, 5, 18)),
            [2023, 2023]
        );
    }

    #[test]
    fn crossing_new_year() {
        let stamps = [stamp(12, 30), stamp(12, 31), stamp(1, 1), stamp(1, 2)];
        assert_eq!(
            assign_years(&stamps, date(2024, 1, 3)),
            [2023, 2023, 2024, 2024]
        );
    }

    #[test]
    fn log_from_last_year() {
        assert_eq!(assign_years(&[stamp(11, 1)], date(2024, 2, 1)), [2023]);
    }

    #[test]
    fn slack_for_time_zones() {
        assert_eq!(assign_years(&[stamp(5, 19)], date(2023, 5, 18)), [2023]);
    }

    #[test]
    fn leap_day_keeps_year() {
        assert_eq!(assign_years(&[stamp(2, 29)], date(2024, 3, 1)), [2024]);
    }

    #[test]
    fn dates_in_bundle_names() {
        assert_eq!(
            date_in_name("CiscoAMP_Support_Tool_2023_05_18_21_40_12.7z"),
            Some(date(2023, 5, 18))
        );
        assert_eq!(
            date_in_name("bundle-2024-01-03.zip"),
            Some(date(2024, 1, 3))
        );
        assert_eq!(date_in_name("amp_20230518.zip"), Some(date(2023, 5, 18)));
        assert_eq!(date_in_name("bundle.zip"), None);
        assert_eq!(date_in_name("v8.1.7.21417.zip"), None);
        let collected = datetime_in_name("CiscoAMP_Support_Tool_2023_05_18_21_40_12.7z")
            .expect("date and time");
        assert_eq!(
            collected.format("%Y-%m-%d %H:%M:%S").to_string(),
            "2023-05-18 21:40:12"
        );
        let midnight = datetime_in_name("bundle-2024-01-03.zip").expect("date");
        assert_eq!(midnight.format("%H:%M:%S").to_string(), "00:00:00");
    }

    proptest! {
        #[test]
        fn years_never_decrease_and_end_near_anchor(
            months in proptest::collection::vec(1u32..=12, 1..50),
            year in 2015i32..2030, month in 1u32..=12, day in 1u32..=28,
        ) {
            let stamps: Vec<LogStamp> = months.iter().map(|m| stamp(*m, 1)).collect();
            let years = assign_years(&stamps, date(year, month, day));
            prop_assert_eq!(years.len(), stamps.len());
            for pair in years.windows(2) {
                prop_assert!(pair[0] <= pair[1]);
            }
            let last = *years.last().expect("non-empty");
            prop_assert!(last == year || last == year - 1);
        }

        #[test]
        fn name_dates_never_panic(name in "\\PC{0,60}") {
            let _ = date_in_name(&name);
        }
    }
}
