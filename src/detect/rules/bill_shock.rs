//! `bill_shock` — a new subscriber's first bill is more than double the plan's fee.
//!
//! Why: a first bill far above what the customer was sold is a classic early-life churn
//! trigger; China Telecom Guangdong's programme targets "first bill more than double the
//! plan's expected amount" [002]. A bill is the first when its period is the month of
//! activation or the one after (activation from the CRM profile); the plan fee comes from
//! the latest plan change. Once per billing period.

use crate::config::BillShockConfig;
use crate::detect::calendar::month_of_day;
use crate::detect::event::Period;
use crate::detect::state::SubscriberState;

use super::baseline::round2;
use super::{RuleId, SignalDraft};

pub fn judge(cfg: &BillShockConfig, state: &SubscriberState, period: Period, amount_fen: i64, time_ms: i64) -> Option<SignalDraft> {
    if !cfg.enabled || state.activated_day == 0 || state.plan_fee_yuan == 0 {
        return None;
    }
    let activated = month_of_day(i32::from(state.activated_day));
    if period.0 < activated.0 || period.0 > activated.0 + 1 {
        return None;
    }
    let fee = f64::from(state.plan_fee_yuan);
    let bill = amount_fen as f64 / 100.0;
    if bill <= cfg.max_ratio * fee {
        return None;
    }
    let summary = format!("First bill {bill:.2} yuan is {:.1}x the {fee:.0}-yuan plan", bill / fee);
    Some(
        SignalDraft::at(RuleId::BillShock, i64::from(period.0), time_ms, summary)
            .with("bill_yuan", round2(bill))
            .with("plan_fee_yuan", fee)
            .with("ratio", round2(bill / fee)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::calendar::first_day_of_month;

    fn new_subscriber() -> SubscriberState {
        let mut s = SubscriberState::default();
        s.activated_day = first_day_of_month(Period::parse("2026-03").unwrap()) as u16 + 10;
        s.plan_fee_yuan = 58;
        s
    }

    #[test]
    fn more_than_double_fires_exactly_double_does_not() {
        let cfg = BillShockConfig::default();
        let p = Period::parse("2026-03").unwrap();
        assert!(judge(&cfg, &new_subscriber(), p, 11_600, 1).is_none());
        assert!(judge(&cfg, &new_subscriber(), p, 11_601, 1).is_some());
    }

    #[test]
    fn only_the_first_bill_counts() {
        let cfg = BillShockConfig::default();
        assert!(judge(&cfg, &new_subscriber(), Period::parse("2026-04").unwrap(), 50_000, 1).is_some());
        assert!(judge(&cfg, &new_subscriber(), Period::parse("2026-05").unwrap(), 50_000, 1).is_none());
        let unknown = SubscriberState { activated_day: 0, ..new_subscriber() };
        assert!(judge(&cfg, &unknown, Period::parse("2026-03").unwrap(), 50_000, 1).is_none());
    }
}
