//! Event time for one partition: each input's own progress, the clock days close on, and
//! the calendar days it has closed.
//!
//! **Per input.** CDRs and account events reach the broker on their own topics, each at
//! its own pace: after a broker failover one topic's backlog can come seconds before the
//! other's. So each input keeps its own progress (the newest event time it delivered), and
//! a record is late only against its own input's progress (older by more than the allowed
//! lateness) or because its day is already closed; never because another input got ahead.
//!
//! **Days close on the slowest input that still counts.** The adapter, which holds the
//! wall clock and knows which inputs are idle, may *hold* the clock at the progress of the
//! slowest input that is not idle ([`Watermark::hold`]): a day then closes only once that
//! input, too, is an allowed lateness past its end (Flink's watermark alignment). Without a
//! hold (`replay`, whose merged files hold no surprise) days close on the newest event
//! seen, as a single input's would. A day *closes* once the clock's watermark passes its
//! end, and never more than [`OPEN_DAYS`] days stay open (a DST day can make 48 hours span
//! four calendar days): the state per subscriber stays fixed-size, which is why the
//! adapter keeps inputs ahead within the open days of a held clock
//! ([`Watermark::fits_ahead`]) rather than letting them force days closed.
//!
//! The clock moves only with event time: a record, an idle partition's
//! [`Watermark::advance_idle`] decided by the adapter, or the end of a bounded input. Kept
//! apart from the engine so the rule "what is late, what is closed" reads in one place.

use std::ops::RangeInclusive;

use super::calendar::{Calendar, Day};
use super::state::OPEN_DAYS;

/// The inputs with an event-time clock of their own (outcomes do not move event time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Cdr = 0,
    Account = 1,
}

/// How many [`Input`]s there are.
pub const INPUTS: usize = 2;

/// Progress not yet seen.
const NONE: i64 = i64::MIN;

/// The per-input progress, the clock and the days it closed.
#[derive(Debug, Clone)]
pub struct Watermark {
    lateness_ms: i64,
    /// The newest event time over every input (or moved on to while idle).
    newest_ms: i64,
    /// Per input, the newest event time it delivered ([`NONE`] before its first).
    input_ms: [i64; INPUTS],
    /// The adapter's hold: no day closes past this clock's watermark.
    hold_ms: Option<i64>,
    /// Every day up to and including this one is closed (`None` before the first event).
    closed_through: Option<Day>,
    /// The first day observed (records up to the lateness before the first event).
    observed_from: Day,
}

/// What a snapshot saves: the newest event time, the last closed day, the first day
/// observed and each input's progress.
pub(crate) type Parts = (i64, Option<Day>, Day, [i64; INPUTS]);

impl Watermark {
    pub fn new(lateness_ms: i64) -> Watermark {
        Watermark {
            lateness_ms,
            newest_ms: NONE,
            input_ms: [NONE; INPUTS],
            hold_ms: None,
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

    /// The newest event time `input` delivered, `None` before its first record.
    pub fn input_ms(&self, input: Input) -> Option<i64> {
        let t = self.input_ms[input as usize];
        (t != NONE).then_some(t)
    }

    /// The clock days close on, minus the allowed lateness; `None` before the first event.
    pub fn watermark_ms(&self) -> Option<i64> {
        self.newest_ms().map(|t| self.clock(t) - self.lateness_ms)
    }

    /// The last closed day, `None` before the first event.
    pub fn closed_through(&self) -> Option<Day> {
        self.closed_through
    }

    /// The first day this partition observed: no rule judges days before it.
    pub fn observed_from(&self) -> Day {
        self.observed_from
    }

    /// Whether a record of `input` at `t` (on `day`) is too late to count: older than its
    /// own input's progress by more than the lateness, or on a closed day. The first
    /// record starts the clock and is never late.
    pub fn admit_is_late(&mut self, t: i64, day: Day, input: Input, cal: &Calendar) -> bool {
        if self.closed_through.is_none() {
            self.newest_ms = t;
            let target = self.close_target(cal);
            self.closed_through = Some(target);
            self.observed_from = target + 1;
        }
        let closed = self.closed_through.unwrap_or(Day::MIN);
        t < self.input_ms[input as usize].saturating_sub(self.lateness_ms) || day <= closed
    }

    /// Notes a record of `input` at `t`; the days that must close now (possibly none).
    pub fn advance(&mut self, t: i64, input: Input, cal: &Calendar) -> Option<RangeInclusive<Day>> {
        let own = &mut self.input_ms[input as usize];
        *own = (*own).max(t);
        self.closed_through?;
        if t <= self.newest_ms {
            return None;
        }
        self.newest_ms = t;
        self.close_through(self.close_target(cal))
    }

    /// Moves the newest event time on to `t` with no record, for a partition whose inputs
    /// are all idle (the adapter decides `t`); `None` if `t` is not newer or no event came.
    pub fn advance_idle(&mut self, t: i64, cal: &Calendar) -> Option<RangeInclusive<Day>> {
        if self.closed_through.is_none() || t <= self.newest_ms {
            return None;
        }
        self.newest_ms = t;
        self.close_through(self.close_target(cal))
    }

    /// Holds the clock at `hold` (the progress of the slowest input that still counts), or
    /// lets it follow the newest event (`None`); the days that close now (possibly none).
    pub fn hold(&mut self, hold: Option<i64>, cal: &Calendar) -> Option<RangeInclusive<Day>> {
        self.hold_ms = hold;
        self.closed_through?;
        self.close_through(self.close_target(cal))
    }

    /// Whether a record at `t` can be taken while the clock is held at `hold` without
    /// running more than the allowed lateness ahead of it, or forcing a day closed before
    /// its time (past the [`OPEN_DAYS`] the state keeps).
    pub fn fits_ahead(&self, t: i64, hold: i64, cal: &Calendar) -> bool {
        let held_closed = cal.day_of(hold.saturating_sub(self.lateness_ms)) - 1;
        t <= hold.saturating_add(self.lateness_ms)
            && cal.day_of(t) - OPEN_DAYS as i32 <= held_closed
    }

    /// End of input: every day up to the newest event's own day closes.
    pub fn finish(&mut self, cal: &Calendar) -> Option<RangeInclusive<Day>> {
        self.closed_through?;
        self.hold_ms = None;
        self.close_through(cal.day_of(self.newest_ms))
    }

    fn clock(&self, newest: i64) -> i64 {
        self.hold_ms.map_or(newest, |h| h.min(newest))
    }

    /// The last day that must be closed: the clock's watermark's day minus one, and never
    /// more than [`OPEN_DAYS`] days open.
    fn close_target(&self, cal: &Calendar) -> Day {
        let by_watermark = cal.day_of(self.clock(self.newest_ms) - self.lateness_ms) - 1;
        by_watermark.max(cal.day_of(self.newest_ms) - OPEN_DAYS as i32)
    }

    /// What a snapshot saves (the lateness comes from the config, the hold from the
    /// adapter).
    pub(crate) fn parts(&self) -> Parts {
        (
            self.newest_ms,
            self.closed_through,
            self.observed_from,
            self.input_ms,
        )
    }

    /// Restores [`Watermark::parts`].
    pub(crate) fn restore(&mut self, (newest_ms, closed_through, observed_from, input_ms): Parts) {
        self.newest_ms = newest_ms;
        self.closed_through = closed_through;
        self.observed_from = observed_from;
        self.input_ms = input_ms;
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
        assert!(!w.admit_is_late(t0, 1000, Input::Cdr, &cal));
        assert_eq!(w.advance(t0, Input::Cdr, &cal), None);
        assert_eq!(w.closed_through(), Some(997));
        assert_eq!(w.observed_from(), 998);
        // Two days on, the watermark is day 1000 at noon: days 998 and 999 close.
        assert_eq!(w.advance(t0 + 48 * HOUR, Input::Cdr, &cal), Some(998..=999));
        assert!(w.admit_is_late(cal.day_start_ms(998) + HOUR, 998, Input::Cdr, &cal));
        assert!(!w.admit_is_late(t0, 1000, Input::Cdr, &cal));
        // Not newer: nothing moves.
        assert_eq!(w.advance(t0, Input::Cdr, &cal), None);
        // End of input closes the newest event's day too.
        assert_eq!(w.finish(&cal), Some(1000..=1002));
    }

    #[test]
    fn a_record_is_late_against_its_own_input_and_days_close_on_the_held_clock() {
        let cal = Calendar::new("UTC", &[]).unwrap();
        let mut w = Watermark::new(6 * HOUR);
        let t0 = cal.day_start_ms(1000) + 12 * HOUR;
        assert!(!w.admit_is_late(t0, 1000, Input::Account, &cal));
        w.advance(t0, Input::Account, &cal);
        assert_eq!(w.closed_through(), Some(999));
        // The adapter holds the clock at the account input's progress; CDRs run ahead.
        assert_eq!(w.hold(Some(t0), &cal), None);
        assert!(w.fits_ahead(t0 + 6 * HOUR, t0, &cal));
        assert!(
            !w.fits_ahead(t0 + 7 * HOUR, t0, &cal),
            "more than the lateness ahead"
        );
        let ahead = t0 + 20 * HOUR;
        assert!(!w.admit_is_late(ahead, 1001, Input::Cdr, &cal));
        assert_eq!(
            w.advance(ahead, Input::Cdr, &cal),
            None,
            "day 1000 stays open"
        );
        // An account record an hour after its input's progress is not late, although the
        // CDRs are 20 hours ahead; a CDR as old is, against its own input.
        assert!(!w.admit_is_late(t0 + HOUR, 1000, Input::Account, &cal));
        assert!(w.admit_is_late(t0 + HOUR, 1000, Input::Cdr, &cal));
        assert!(w.admit_is_late(t0 - 7 * HOUR, 1000, Input::Account, &cal));
        assert_eq!(w.input_ms(Input::Account), Some(t0));
        // Released (the account input went idle): days close on the newest event.
        assert_eq!(w.hold(None, &cal), Some(1000..=1000));
        assert!(w.admit_is_late(t0 + HOUR, 1000, Input::Account, &cal));
    }

    #[test]
    fn open_days_stay_bounded_whatever_the_hold() {
        let cal = Calendar::new("UTC", &[]).unwrap();
        let mut w = Watermark::new(48 * HOUR);
        let t0 = cal.day_start_ms(1000) + 12 * HOUR;
        w.admit_is_late(t0, 1000, Input::Account, &cal);
        w.advance(t0, Input::Account, &cal);
        w.hold(Some(t0), &cal);
        // Within the day of the held clock a CDR fits; on the next day it would need a
        // fourth open day.
        assert!(w.fits_ahead(cal.day_start_ms(1001) - 1, t0, &cal));
        assert!(!w.fits_ahead(cal.day_start_ms(1001), t0, &cal));
        let far = t0 + 4 * 24 * HOUR;
        assert_eq!(w.advance(far, Input::Cdr, &cal), Some(998..=1001), "forced");
    }
}
