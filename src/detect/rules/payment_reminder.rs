//! `payment_reminder` — "交費提醒", a balance or bill about to cause suspension [003][002].
//!
//! Why: suspension for non-payment interrupts service and pushes subscribers to leave;
//! a reminder before it happens is cheap care. Two triggers:
//! - postpaid: a bill still unpaid `days_before_due` days (default 3) before its due time,
//!   judged at day close (any payment after the bill was issued counts as paying it);
//!   one ticket per bill;
//! - prepaid: a top-up that still leaves the balance below `low_balance_fen` (default 5
//!   yuan); one ticket per aligned cooldown window.
//!
//! Aim and delay: a reminder is cheap care, so it aims at the subscribers about to be
//! suspended, not at leavers alone. On `generate`'s workload (docs/quality.md: 20,000
//! subscribers, 110 days): a prepaid balance running down is ticketed median 10.7 days from the
//! onset (p90 10.8), precision 0.99 against churn.

use crate::detect::calendar::{Calendar, Day};
use crate::detect::state::{from_minute, SubscriberState, NO_MINUTE};

use super::baseline::Verdict;
use super::{window_episode, RuleId, SignalDraft};

rule_config! {
    /// `payment_reminder` [003][002].
    PaymentReminderConfig { weight: 25, cooldown_days: 7,
        /// Remind when a bill is unpaid this many days before its due time.
        days_before_due: u32 = 3,
        /// Remind when a prepaid top-up leaves the balance below this (fen).
        low_balance_fen: i64 = 500 }
    validate(self, key) {
        if self.days_before_due == 0 || self.days_before_due > 30 { return Err(invalid(&format!("{key}.days_before_due"), "must be 1 to 30")); }
        if self.low_balance_fen < 0 { return Err(invalid(&format!("{key}.low_balance_fen"), "must not be negative")); }
    }
}

/// Episodes of bill reminders are due days with this tag, apart from the top-up windows.
const BILL_EPISODE: i64 = 1 << 40;

/// Judges the latest bill at closed day `day`.
/// What the agent should do, from the seeds' suggested actions [002][003].
pub const ACTION: &str =
    "Remind the customer of the bill before suspension and offer an easy payment \
     channel or instalments.";

pub fn judge_bill(
    cfg: &PaymentReminderConfig,
    state: &SubscriberState,
    day: Day,
    cal: &Calendar,
) -> Verdict {
    if !cfg.enabled || state.bill_issued_min == NO_MINUTE || state.bill_amount_fen == 0 {
        return Verdict::No;
    }
    let close = cal.day_start_ms(day + 1);
    let issued = from_minute(state.bill_issued_min);
    if issued >= close {
        return Verdict::No;
    }
    let due_day = i32::from(state.bill_due_day);
    if day < due_day - cfg.days_before_due as i32 || day >= due_day {
        return Verdict::No;
    }
    if state.bill_paid_min != NO_MINUTE && from_minute(state.bill_paid_min) < close {
        return Verdict::No;
    }
    let yuan = f64::from(state.bill_amount_fen) / 100.0;
    let left = due_day - day;
    let summary = format!("Bill of {yuan:.2} yuan still unpaid, due in {left} day(s)");
    let mut d = SignalDraft::at(
        RuleId::PaymentReminder,
        BILL_EPISODE + i64::from(due_day),
        close,
        summary,
    )
    .with("amount_yuan", yuan)
    .with("days_to_due", f64::from(left as u32));
    d.first_seen_ms = issued;
    Verdict::Holds(d)
}

/// Judges a prepaid top-up.
pub fn judge_top_up(
    cfg: &PaymentReminderConfig,
    balance_after_fen: i64,
    time_ms: i64,
    day: Day,
) -> Option<SignalDraft> {
    if !cfg.enabled || balance_after_fen >= cfg.low_balance_fen {
        return None;
    }
    let yuan = balance_after_fen as f64 / 100.0;
    let summary = format!("Prepaid balance only {yuan:.2} yuan after a top-up");
    Some(
        SignalDraft::at(
            RuleId::PaymentReminder,
            window_episode(day, cfg.cooldown_days),
            time_ms,
            summary,
        )
        .with("balance_yuan", yuan),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::state::to_minute;

    fn cal() -> Calendar {
        Calendar::new("Asia/Shanghai", &[]).unwrap()
    }

    fn billed(due_day: Day) -> SubscriberState {
        let c = cal();
        SubscriberState {
            bill_issued_min: to_minute(c.day_start_ms(due_day - 20) + 3_600_000),
            bill_due_day: due_day as u16,
            bill_amount_fen: 9_900,
            ..Default::default()
        }
    }

    #[test]
    fn reminds_three_days_before_due_not_four() {
        let cfg = PaymentReminderConfig::default();
        let s = billed(1000);
        assert_eq!(judge_bill(&cfg, &s, 996, &cal()), Verdict::No);
        assert!(matches!(
            judge_bill(&cfg, &s, 997, &cal()),
            Verdict::Holds(_)
        ));
        assert_eq!(
            judge_bill(&cfg, &s, 1000, &cal()),
            Verdict::No,
            "due day itself is overdue territory"
        );
    }

    #[test]
    fn a_payment_before_the_close_settles_it_a_later_one_does_not() {
        let cfg = PaymentReminderConfig::default();
        let c = cal();
        let mut s = billed(1000);
        s.bill_paid_min = to_minute(c.day_start_ms(998) + 1000);
        assert!(
            matches!(judge_bill(&cfg, &s, 997, &c), Verdict::Holds(_)),
            "paid the day after the close"
        );
        s.bill_paid_min = to_minute(c.day_start_ms(997) + 1000);
        assert_eq!(judge_bill(&cfg, &s, 997, &c), Verdict::No);
    }

    #[test]
    fn low_prepaid_balance_below_five_yuan() {
        let cfg = PaymentReminderConfig::default();
        assert!(judge_top_up(&cfg, 500, 1, 10).is_none());
        assert!(judge_top_up(&cfg, 499, 1, 10).is_some());
    }
}
