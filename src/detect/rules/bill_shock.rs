//! `bill_shock` — a new subscriber's first bill is more than double the plan's fee.
//!
//! Why: a first bill far above what the customer was sold is a classic early-life churn
//! trigger; China Telecom Guangdong's programme targets "first bill more than double the
//! plan's expected amount" [002]. The first bill is the latest bill when it was issued
//! within `FIRST_BILL_DAYS` of activation (from the CRM profile); the plan fee comes from the
//! latest plan change. Judged at the close of the day the bill was issued, on the profile
//! and plan as they stood at the end of that day, so no later or late-arriving event can
//! change the verdict; once per bill.
//!
//! Aim and delay: a first bill above double the fee is a fact, not a chance, so the only false
//! alarm it can raise is a new subscriber who pays it and stays. The delay is the wait for the
//! first bill. On `generate`'s workload (docs/quality.md: 20,000 subscribers, 110 days): median
//! 21 days from activation (p90 29), precision 0.96.

use crate::detect::calendar::{Calendar, Day};
use crate::detect::state::{from_minute, SubscriberState, NO_MINUTE};

use super::baseline::{round2, Verdict};
use super::{RuleId, SignalDraft};

rule_config! {
    /// `bill_shock` [002].
    BillShockConfig { weight: 45, cooldown_days: 28,
        /// Fire when the first bill exceeds this multiple of the plan's monthly fee.
        max_ratio: f64 = 2.0 }
    validate(self, key) {
        if !(self.max_ratio.is_finite() && self.max_ratio > 1.0) { return Err(invalid(&format!("{key}.max_ratio"), "must be greater than 1")); }
    }
}

/// A bill issued this many days after activation or fewer is the first bill.
pub const FIRST_BILL_DAYS: i32 = 62;

/// Judges the latest bill at the close of `day`, if it was issued that day.
/// What the agent should do, from the seeds' suggested actions [002][003].
pub const ACTION: &str =
    "The first bill is far above the plan: explain the charges and move the customer \
     to a plan that fits.";

pub fn judge(cfg: &BillShockConfig, state: &SubscriberState, day: Day, cal: &Calendar) -> Verdict {
    if !cfg.enabled
        || state.activated_day == 0
        || state.plan_fee_yuan == 0
        || state.bill_issued_min == NO_MINUTE
    {
        return Verdict::No;
    }
    let issued_ms = from_minute(state.bill_issued_min);
    let issued = cal.day_of(issued_ms);
    let activated = i32::from(state.activated_day);
    if issued != day || issued < activated || issued - activated > FIRST_BILL_DAYS {
        return Verdict::No;
    }
    let fee = f64::from(state.plan_fee_yuan);
    let bill = f64::from(state.bill_amount_fen) / 100.0;
    if bill <= cfg.max_ratio * fee {
        return Verdict::No;
    }
    let summary = format!(
        "First bill {bill:.2} yuan is {:.1}x the {fee:.0}-yuan plan",
        bill / fee
    );
    Verdict::Holds(
        SignalDraft::at(RuleId::BillShock, i64::from(day), issued_ms, summary)
            .with("bill_yuan", round2(bill))
            .with("plan_fee_yuan", fee)
            .with("ratio", round2(bill / fee)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::state::to_minute;

    fn cal() -> Calendar {
        Calendar::new("Asia/Shanghai", &[]).unwrap()
    }

    fn billed(activated: Day, issued: Day, amount_fen: u32) -> SubscriberState {
        SubscriberState {
            activated_day: activated as u16,
            plan_fee_yuan: 58,
            bill_issued_min: to_minute(cal().day_start_ms(issued) + 3_600_000),
            bill_amount_fen: amount_fen,
            ..Default::default()
        }
    }

    #[test]
    fn more_than_double_fires_exactly_double_does_not() {
        let cfg = BillShockConfig::default();
        assert_eq!(
            judge(&cfg, &billed(1000, 1030, 11_600), 1030, &cal()),
            Verdict::No
        );
        assert!(matches!(
            judge(&cfg, &billed(1000, 1030, 11_601), 1030, &cal()),
            Verdict::Holds(_)
        ));
    }

    #[test]
    fn only_the_first_bill_counts() {
        let cfg = BillShockConfig::default();
        assert!(matches!(
            judge(&cfg, &billed(1000, 1062, 50_000), 1062, &cal()),
            Verdict::Holds(_)
        ));
        assert_eq!(
            judge(&cfg, &billed(1000, 1063, 50_000), 1063, &cal()),
            Verdict::No
        );
        let unknown = SubscriberState {
            activated_day: 0,
            ..billed(1000, 1030, 50_000)
        };
        assert_eq!(judge(&cfg, &unknown, 1030, &cal()), Verdict::No);
    }

    #[test]
    fn judged_only_on_the_day_of_issue() {
        let cfg = BillShockConfig::default();
        assert_eq!(
            judge(&cfg, &billed(1000, 1030, 50_000), 1031, &cal()),
            Verdict::No
        );
    }
}
