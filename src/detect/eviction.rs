//! Who leaves the subscriber table, and when: the rule that keeps memory bounded.
//!
//! Without it every number ever seen would stay for good, and a partition's memory would
//! grow with the numbers that pass through it (ports-out, deactivated and recycled lines,
//! silent SIMs), not with the base it serves. Two kinds of subscriber are evicted when a day
//! closes (event time, so replay and live agree):
//!
//! - **churned** ones, `engine.churned_eviction_days` closed days after their churn day:
//!   the grace lets the call center's outcomes for their tickets still land; a record dated
//!   before the eviction is applied or rejected as late by the watermark, so none is lost;
//!   one holding a record of a day still open waits until none is (its data would be lost);
//! - **idle** ones, with no record for `engine.idle_eviction_days` closed days. The horizon
//!   is longer than anything a rule looks back at past a subscriber's last record: the
//!   35-day history, and a month-close rule judging the month after the last record's month
//!   (up to 62 days later), so silence and zero-spend tickets still come out. Hence the
//!   minimum, [`MIN_IDLE_EVICTION_DAYS`].
//!
//! **Arrival order.** A day close sees the records of the open days that have already
//! arrived: a subscriber holding one is kept (it is not idle; a churned one waits), one whose
//! record arrives after the close starts afresh. So for a subscriber whose records resume
//! within the lateness of its eviction day, tickets can depend on arrival order, the one
//! exception to the engine's order independence.
//!
//! An evicted number that comes back starts afresh, as a new subscriber (a recycled number
//! is one). What it loses is what the CRM had told us about it (plan, profile, contract end).
//!
//! After a restore the last-seen day is rebuilt from the state ([`last_trace`]): the newest
//! day with usage in the history or the open days, and dated account facts (bills, payments,
//! contract updates, churn, first sight). Account events that leave no date behind (a plan
//! or profile change) are not seen, so a subscriber with no usage for 35 days may then be
//! evicted up to `idle_eviction_days - 35` days early.

use super::calendar::Day;
use super::state::{OpenDay, SubscriberState, HISTORY_DAYS, NO_MINUTE, OPEN_DAYS};

/// The smallest non-zero `engine.idle_eviction_days`: longer than a month-close rule can
/// look back past a subscriber's last record (the rest of a 31-day month and the next).
pub const MIN_IDLE_EVICTION_DAYS: u32 = 63;

/// Why a subscriber was evicted (the metric's `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Churned,
    Idle,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Churned => "churned",
            Reason::Idle => "idle",
        }
    }
}

/// The two horizons, in closed days (0 = that kind is never evicted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Horizons {
    pub idle_days: u32,
    pub churned_days: u32,
}

/// Whether a subscriber whose newest record is of `last_seen` is evicted once `day` closes.
pub fn due(h: Horizons, st: &SubscriberState, last_seen: Day, day: Day) -> Option<Reason> {
    let past = |since: Day, horizon: u32| horizon > 0 && day - since >= horizon as i32;
    let quiet = last_seen <= day;
    if st.churned_day != 0 && quiet && past(Day::from(st.churned_day), h.churned_days) {
        return Some(Reason::Churned);
    }
    if last_seen != 0 && past(last_seen, h.idle_days) {
        return Some(Reason::Idle);
    }
    None
}

/// The newest day the state shows a record of, once `closed` is closed, and never before
/// `closed - HISTORY_DAYS` (older records leave no trace). `day_of_minute` turns the
/// state's minute fields into days.
pub fn last_trace(st: &SubscriberState, closed: Day, day_of_minute: impl Fn(u32) -> Day) -> Day {
    let mut last = closed - HISTORY_DAYS as i32;
    let open = (closed + 1..=closed + OPEN_DAYS as i32)
        .rev()
        .find(|&d| st.open[d.rem_euclid(OPEN_DAYS as i32) as usize] != OpenDay::default());
    let used = (closed + 1 - HISTORY_DAYS as i32..=closed)
        .rev()
        .find(|&d| {
            *st.closed(d) != Default::default() || st.called_on(d) || st.forwarded_offnet_on(d)
        });
    last = last.max(open.or(used).unwrap_or(last));
    for m in [st.bill_issued_min, st.bill_paid_min] {
        if m != NO_MINUTE {
            last = last.max(day_of_minute(m));
        }
    }
    for d in [st.churned_day, st.contract_set_day] {
        last = last.max(Day::from(d));
    }
    if st.first_day != u16::MAX {
        last = last.max(Day::from(st.first_day));
    }
    last.min(closed + OPEN_DAYS as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Horizons = Horizons {
        idle_days: 90,
        churned_days: 7,
    };

    #[test]
    fn idle_is_evicted_on_the_horizon_day_not_before() {
        let st = SubscriberState::default();
        assert_eq!(due(H, &st, 1_000, 1_089), None);
        assert_eq!(due(H, &st, 1_000, 1_090), Some(Reason::Idle));
        let off = Horizons { idle_days: 0, ..H };
        assert_eq!(due(off, &st, 1_000, 9_000), None);
        assert_eq!(due(H, &st, 0, 9_000), None, "never seen: not judged");
    }

    #[test]
    fn churned_wait_out_their_grace() {
        let st = SubscriberState {
            churned_day: 2_000,
            ..Default::default()
        };
        assert_eq!(due(H, &st, 2_000, 2_006), None);
        assert_eq!(due(H, &st, 2_000, 2_007), Some(Reason::Churned));
        assert_eq!(due(H, &st, 2_010, 1_999), None, "churn day still open");
        assert_eq!(
            due(H, &st, 2_008, 2_007),
            None,
            "a record of an open day waits"
        );
        assert_eq!(due(H, &st, 2_008, 2_008), Some(Reason::Churned));
        let off = Horizons {
            churned_days: 0,
            ..H
        };
        assert_eq!(due(off, &st, 2_000, 2_007), None);
        assert_eq!(due(off, &st, 2_000, 2_090), Some(Reason::Idle));
    }

    #[test]
    fn the_last_trace_is_the_newest_usage_or_dated_fact() {
        let closed = 20_000;
        let mut st = SubscriberState::default();
        assert_eq!(
            last_trace(&st, closed, |_| 0),
            closed - 35,
            "no trace: the floor"
        );
        st.first_day = 19_900;
        st.add_voice(19_990, 60, true);
        st.close_day(19_990);
        assert_eq!(last_trace(&st, closed, |_| 0), 19_990);
        st.bill_paid_min = 7;
        assert_eq!(last_trace(&st, closed, |_| 19_995), 19_995);
        st.add_sms(closed + 2, false);
        assert_eq!(last_trace(&st, closed, |_| 0), closed + 2);
    }
}
