//! Event time for one partition: the newest event time seen, the watermark one allowed
//! lateness behind it, and the calendar days it has closed.
//!
//! A record older than the watermark, or on a day already closed, is late: rejected and
//! counted, never folded in silently. A day *closes* once the watermark passes its end, and
//! never more than [`OPEN_DAYS`] days stay open (a DST day can make 48 hours span four
//! calendar days). The clock moves only with event time: a record, an idle source's
//! [`Watermark::advance`] decided by the adapter, or the end of a bounded input. Kept apart
//! from the engine so the rule "what is late, what is closed" reads in one place.

use std::ops::RangeInclusive;

use super::calendar::{Calendar, Day};
use super::state::OPEN_DAYS;

/// The watermark and the days it closed.
#[derive(Debug, Clone)]
pub struct Watermark {
    lateness_ms: i64,
    newest_ms: i64,
    /// Every day up to and including this one is closed (`None` before the first event).
    closed_through: Option<Day>,
    /// The first day observed (records up to the lateness before the first event).
    observed_from: Day,
}

impl Watermark {
    pub fn new(lateness_ms: i64) -> Watermark {
        Watermark {
            lateness_ms,
            newest_ms: i64::MIN,
            closed_through: None,
            observed_from: Day::MIN,
        }
    }

    pub fn lateness_ms(&self) -> i64 {
        self.lateness_ms
    }

    /// The newest event time seen (or advanced to), `None` before the first event.
    pub fn newest_ms(&self) -> Option<i64> {
        self.closed_through.map(|_| self.newest_ms)
    }

    /// Newest event time minus the allowed lateness, `None` before the first event.
    pub fn watermark_ms(&self) -> Option<i64> {
        self.newest_ms().map(|t| t - self.lateness_ms)
    }

    /// The last closed day, `None` before the first event.
    pub fn closed_through(&self) -> Option<Day> {
        self.closed_through
    }

    /// The first day this partition observed: no rule judges days before it.
    pub fn observed_from(&self) -> Day {
        self.observed_from
    }

    /// Whether a record at `t` (on `day`) is too late to count; the first record starts
    /// the clock and is never late.
    pub fn admit_is_late(&mut self, t: i64, day: Day, cal: &Calendar) -> bool {
        if self.closed_through.is_none() {
            self.newest_ms = t;
            let target = self.close_target(cal);
            self.closed_through = Some(target);
            self.observed_from = target + 1;
        }
        let closed = self.closed_through.unwrap_or(Day::MIN);
        t < self.newest_ms.saturating_sub(self.lateness_ms) || day <= closed
    }

    /// Moves the newest event time on to `t`; the days that must close now (possibly none),
    /// or `None` if `t` is not newer or no event came yet.
    pub fn advance(&mut self, t: i64, cal: &Calendar) -> Option<RangeInclusive<Day>> {
        if self.closed_through.is_none() || t <= self.newest_ms {
            return None;
        }
        self.newest_ms = t;
        self.close_through(self.close_target(cal))
    }

    /// End of input: every day up to the newest event's own day closes.
    pub fn finish(&mut self, cal: &Calendar) -> Option<RangeInclusive<Day>> {
        self.closed_through?;
        self.close_through(cal.day_of(self.newest_ms))
    }

    /// The last day that must be closed: the watermark's day minus one, and never more
    /// than [`OPEN_DAYS`] days open.
    fn close_target(&self, cal: &Calendar) -> Day {
        let by_watermark = cal.day_of(self.newest_ms - self.lateness_ms) - 1;
        by_watermark.max(cal.day_of(self.newest_ms) - OPEN_DAYS as i32)
    }

    /// What a snapshot saves: the newest event time, the last closed day and the first
    /// day observed (the lateness comes from the config).
    pub(crate) fn parts(&self) -> (i64, Option<Day>, Day) {
        (self.newest_ms, self.closed_through, self.observed_from)
    }

    /// Restores [`Watermark::parts`].
    pub(crate) fn restore(
        &mut self,
        newest_ms: i64,
        closed_through: Option<Day>,
        observed_from: Day,
    ) {
        self.newest_ms = newest_ms;
        self.closed_through = closed_through;
        self.observed_from = observed_from;
    }

    /// Marks the days up to `target` closed and returns those newly closed.
    fn close_through(&mut self, target: Day) -> Option<RangeInclusive<Day>> {
        let closed = self.closed_through?;
        if closed >= target {
            return None;
        }
        self.closed_through = Some(target);
        Some(closed + 1..=target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    #[test]
    fn days_close_one_lateness_behind_the_newest_event_and_late_records_are_refused() {
        let cal = Calendar::new("UTC", &[]).unwrap();
        let mut w = Watermark::new(48 * HOUR);
        let t0 = cal.day_start_ms(1000) + 12 * HOUR;
        assert!(!w.admit_is_late(t0, 1000, &cal));
        assert_eq!(w.closed_through(), Some(997));
        assert_eq!(w.observed_from(), 998);
        // Two days on, the watermark is day 1000 at noon: days 998 and 999 close.
        assert_eq!(w.advance(t0 + 48 * HOUR, &cal), Some(998..=999));
        assert!(w.admit_is_late(cal.day_start_ms(998) + HOUR, 998, &cal));
        assert!(!w.admit_is_late(t0, 1000, &cal));
        // Not newer: nothing moves.
        assert_eq!(w.advance(t0, &cal), None);
        // End of input closes the newest event's day too.
        assert_eq!(w.finish(&cal), Some(1000..=1002));
    }
}
