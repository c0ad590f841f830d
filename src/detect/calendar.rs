//! Operator-local calendar days and months, and the holiday calendar.
//!
//! Every rule speaks in the operator's days ("five consecutive days", "this month"), which
//! are not UTC days: 23:30 UTC is already tomorrow in Shanghai. A [`Day`] is the number of
//! local calendar days since 1970-01-01; DST zones have 23- and 25-hour days and this module
//! is the only place that knows.

use std::cell::Cell;

use chrono::{Datelike, NaiveDate, Offset, TimeZone};
use chrono_tz::Tz;

use super::event::Period;

/// Operator-local calendar days since 1970-01-01.
pub type Day = i32;

const DAYS_CE_TO_EPOCH: i32 = 719_163;

/// Parses "YYYY-MM-DD" or an inclusive range "YYYY-MM-DD..YYYY-MM-DD" into days.
pub fn parse_holiday(s: &str) -> Option<(Day, Day)> {
    let parse = |d: &str| {
        NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d")
            .ok()
            .map(day_of_date)
    };
    match s.split_once("..") {
        Some((a, b)) => {
            let (a, b) = (parse(a)?, parse(b)?);
            (a <= b && b - a <= 366).then_some((a, b))
        }
        None => parse(s).map(|d| (d, d)),
    }
}

/// The day number of a calendar date.
pub fn day_of_date(d: NaiveDate) -> Day {
    d.num_days_from_ce() - DAYS_CE_TO_EPOCH
}

/// The calendar date of a day number.
pub fn date_of_day(day: Day) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(day + DAYS_CE_TO_EPOCH).unwrap_or(NaiveDate::MIN)
}

/// The month (as a [`Period`]) a day falls in.
pub fn month_of_day(day: Day) -> Period {
    let d = date_of_day(day);
    Period((d.year() - 1970) * 12 + d.month0() as i32)
}

/// The first day of a month.
pub fn first_day_of_month(p: Period) -> Day {
    NaiveDate::from_ymd_opt(p.year(), p.month(), 1)
        .map(day_of_date)
        .unwrap_or(0)
}

/// The operator's time zone and holidays.
#[derive(Debug, Clone)]
pub struct Calendar {
    tz: Tz,
    holidays: Vec<(Day, Day)>,
    /// Recently looked-up days: `(start_ms, end_ms, day)`. Records cluster in time (and the
    /// watermark sits a fixed distance behind), so this turns nearly every lookup into a few
    /// comparisons instead of a time-zone computation.
    cache: Cell<[(i64, i64, Day); 4]>,
    next: Cell<usize>,
}

impl Calendar {
    /// `tz` must be a valid IANA name and `holidays` valid entries (config validation checks both).
    pub fn new(tz: &str, holidays: &[String]) -> Option<Calendar> {
        let tz: Tz = tz.parse().ok()?;
        let mut hs = Vec::with_capacity(holidays.len());
        for h in holidays {
            hs.push(parse_holiday(h)?);
        }
        hs.sort_unstable();
        Some(Calendar {
            tz,
            holidays: hs,
            cache: Cell::new([(0, 0, 0); 4]),
            next: Cell::new(0),
        })
    }

    /// The local calendar day of an instant (UTC epoch milliseconds).
    pub fn day_of(&self, ms: i64) -> Day {
        let mut cache = self.cache.get();
        if let Some(&(_, _, day)) = cache
            .iter()
            .find(|(start, end, _)| ms >= *start && ms < *end)
        {
            return day;
        }
        let day = self.compute_day(ms);
        let i = self.next.get();
        cache[i] = (
            self.compute_day_start(day),
            self.compute_day_start(day + 1),
            day,
        );
        self.cache.set(cache);
        self.next.set((i + 1) % cache.len());
        day
    }

    fn compute_day(&self, ms: i64) -> Day {
        let Some(utc) = chrono::DateTime::from_timestamp_millis(ms) else {
            return if ms < 0 { Day::MIN / 2 } else { Day::MAX / 2 };
        };
        let offset = self.tz.offset_from_utc_datetime(&utc.naive_utc()).fix();
        day_of_date((utc.naive_utc() + offset).date())
    }

    /// The instant (UTC ms) a local day begins; where DST skips midnight, the first instant
    /// that exists that day.
    pub fn day_start_ms(&self, day: Day) -> i64 {
        for (start, end, d) in self.cache.get() {
            if d == day && end > start {
                return start;
            }
            if d + 1 == day && end > start {
                return end;
            }
        }
        self.compute_day_start(day)
    }

    fn compute_day_start(&self, day: Day) -> i64 {
        let date = date_of_day(day);
        for hour in 0..3 {
            let Some(naive) = date.and_hms_opt(hour, 0, 0) else {
                continue;
            };
            if let Some(t) = self.tz.from_local_datetime(&naive).earliest() {
                return t.timestamp_millis();
            }
        }
        // Unreachable for real zones; fall back to UTC midnight.
        i64::from(day) * 86_400_000
    }

    /// Whether the day is a configured public holiday.
    pub fn is_holiday(&self, day: Day) -> bool {
        let i = self.holidays.partition_point(|&(start, _)| start <= day);
        i > 0 && self.holidays[i - 1].1 >= day
    }

    /// Whether any day in `first..=last` is a holiday (one binary search).
    pub fn any_holiday(&self, first: Day, last: Day) -> bool {
        // Ranges are sorted by start and do not need to be disjoint: check every range that
        // starts by `last` and could still reach `first`.
        let upto = self.holidays.partition_point(|&(start, _)| start <= last);
        self.holidays[..upto]
            .iter()
            .rev()
            .take_while(|&&(start, _)| start + 366 >= first)
            .any(|&(_, end)| end >= first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn midnight_is_the_operators_not_utcs() {
        let cal = Calendar::new("Asia/Shanghai", &[]).unwrap();
        // 2026-03-01 15:59:59 UTC is 23:59:59 in Shanghai; one second later it is March 2nd.
        let before = cal.day_of(ms("2026-03-01T15:59:59Z"));
        let after = cal.day_of(ms("2026-03-01T16:00:00Z"));
        assert_eq!(date_of_day(before).to_string(), "2026-03-01");
        assert_eq!(date_of_day(after).to_string(), "2026-03-02");
        // The same instants are one UTC day.
        let utc = Calendar::new("UTC", &[]).unwrap();
        assert_eq!(
            utc.day_of(ms("2026-03-01T15:59:59Z")),
            utc.day_of(ms("2026-03-01T16:00:00Z"))
        );
    }

    #[test]
    fn month_end_in_the_operator_zone() {
        let cal = Calendar::new("Asia/Shanghai", &[]).unwrap();
        let d = cal.day_of(ms("2026-01-31T16:30:00Z")); // 00:30 on Feb 1st in Shanghai
        assert_eq!(month_of_day(d).to_string(), "2026-02");
        let d = cal.day_of(ms("2026-01-31T15:30:00Z"));
        assert_eq!(month_of_day(d).to_string(), "2026-01");
        assert_eq!(
            first_day_of_month(Period::parse("2026-02").unwrap()),
            cal.day_of(ms("2026-01-31T16:30:00Z"))
        );
    }

    #[test]
    fn daylight_saving_days_are_23_and_25_hours() {
        let cal = Calendar::new("Europe/Berlin", &[]).unwrap();
        let spring = day_of_date(NaiveDate::from_ymd_opt(2026, 3, 29).unwrap());
        let autumn = day_of_date(NaiveDate::from_ymd_opt(2026, 10, 25).unwrap());
        assert_eq!(
            cal.day_start_ms(spring + 1) - cal.day_start_ms(spring),
            23 * 3_600_000
        );
        assert_eq!(
            cal.day_start_ms(autumn + 1) - cal.day_start_ms(autumn),
            25 * 3_600_000
        );
        // 23:30 local on the long day is still that day.
        assert_eq!(cal.day_of(ms("2026-10-25T22:30:00Z")), autumn);
        assert_eq!(cal.day_of(ms("2026-10-25T23:00:00Z")), autumn + 1);
    }

    #[test]
    fn holidays_are_inclusive_ranges() {
        let cal = Calendar::new(
            "Asia/Shanghai",
            &["2026-02-15..2026-02-23".into(), "2026-05-01".into()],
        )
        .unwrap();
        let d = |s: &str| day_of_date(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap());
        assert!(!cal.is_holiday(d("2026-02-14")));
        assert!(cal.is_holiday(d("2026-02-15")));
        assert!(cal.is_holiday(d("2026-02-23")));
        assert!(!cal.is_holiday(d("2026-02-24")));
        assert!(cal.is_holiday(d("2026-05-01")));
        assert!(parse_holiday("2026-02-30").is_none());
        assert!(parse_holiday("2026-03-01..2026-02-01").is_none());
    }
}
