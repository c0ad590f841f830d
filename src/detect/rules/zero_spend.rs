//! `zero_spend_month` — "當月零話費", a month that closes with no spend [003].
//!
//! Why: an established subscriber whose calendar month ends with zero charge and no
//! outgoing usage (no call, SMS or data) keeps the number but has stopped using it; the care
//! work-order catalogue raises a ticket for it [003]. "Established" means known for at least
//! `min_tenure_days` (default 60) before the month began, so brand-new lines don't fire.
//! Judged at month close in the operator's zone; a second dormant month in a row is the same
//! episode and raises no second ticket.
//!
//! Aim and delay: a whole dormant month is no chance event for an established line, so
//! no false alarm is aimed at beyond the subscriber who parks a line and comes back. The
//! delay is a whole calendar month: on `generate`'s workload (docs/quality.md) median 37
//! days from the onset of the dormancy, precision 0.98. The drop and silence rules reach
//! most of these lines first: the journey's median, any rule, is 13 days (p90 34).

use crate::detect::calendar::{first_day_of_month, Calendar};
use crate::detect::event::Period;
use crate::detect::state::{flag, SubscriberState};

use super::baseline::Verdict;
use super::{RuleId, SignalDraft};

rule_config! {
    /// `zero_spend_month` [003].
    ZeroSpendMonthConfig { weight: 50, cooldown_days: 28,
        /// Days between the subscriber's first record (or activation) and the month's start.
        min_tenure_days: u32 = 60 }
    validate(self, key) {}
}

/// Judges the month that just closed (before the month counters are reset).
/// What the agent should do, from the seeds' suggested actions [002][003].
pub const ACTION: &str =
    "The line has gone quiet: call to learn why usage stopped and offer a better \
     plan or free minutes.";

pub fn judge(
    cfg: &ZeroSpendMonthConfig,
    state: &SubscriberState,
    month: Period,
    cal: &Calendar,
) -> Verdict {
    let first = first_day_of_month(month);
    if !cfg.enabled || !state.known_since(first - cfg.min_tenure_days as i32) {
        return Verdict::No;
    }
    if state.month_charge_fen > 0 || state.has(flag::MONTH_OUTGOING) {
        return Verdict::No;
    }
    let next = first_day_of_month(Period(month.0 + 1));
    let summary = format!("No spend and no outgoing call, SMS or data in {month}");
    let mut d = SignalDraft::at(
        RuleId::ZeroSpendMonth,
        i64::from(month.0),
        cal.day_start_ms(next),
        summary,
    )
    .with("month_spend_yuan", 0.0);
    d.first_seen_ms = cal.day_start_ms(first);
    Verdict::Holds(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::calendar::first_day_of_month;

    fn cal() -> Calendar {
        Calendar::new("Asia/Shanghai", &[]).unwrap()
    }

    #[test]
    fn an_idle_established_month_fires() {
        let m = Period::parse("2026-03").unwrap();
        let mut s = SubscriberState::default();
        s.note_seen(first_day_of_month(m) - 60);
        assert!(matches!(
            judge(&ZeroSpendMonthConfig::default(), &s, m, &cal()),
            Verdict::Holds(_)
        ));
    }

    #[test]
    fn one_fen_or_one_outgoing_sms_is_not_zero() {
        let m = Period::parse("2026-03").unwrap();
        let day = first_day_of_month(m) + 3;
        let mut s = SubscriberState::default();
        s.note_seen(first_day_of_month(m) - 90);
        s.add_charge(day, 1);
        s.close_day(day);
        assert_eq!(
            judge(&ZeroSpendMonthConfig::default(), &s, m, &cal()),
            Verdict::No
        );
        let mut s = SubscriberState::default();
        s.note_seen(first_day_of_month(m) - 90);
        s.add_sms(day, true);
        s.close_day(day);
        assert_eq!(
            judge(&ZeroSpendMonthConfig::default(), &s, m, &cal()),
            Verdict::No
        );
    }

    #[test]
    fn tenure_of_59_days_is_not_established() {
        let m = Period::parse("2026-03").unwrap();
        let mut s = SubscriberState::default();
        s.note_seen(first_day_of_month(m) - 59);
        assert_eq!(
            judge(&ZeroSpendMonthConfig::default(), &s, m, &cal()),
            Verdict::No
        );
    }
}
