//! `overdue_bill` — "逾期未交話費", an overdue unpaid bill [003].
//!
//! Why: an unpaid bill leads to suspension, and a suspended subscriber is one step from
//! leaving; the care work-order catalogue raises a ticket on the billing system's overdue
//! notice [003]. One ticket per billing period.
//!
//! Withdrawn (`paid`) once payments made after the notice add up to its amount (see
//! [`crate::detect::withdraw`]).
//!
//! Aim and delay: the billing system's notice is a fact, so no false alarm is aimed at beyond a
//! subscriber who pays late and stays. The delay is the billing system's. On `generate`'s
//! workload (docs/quality.md: 20,000 subscribers, 110 days): median 24 days from the bill's
//! issue (p90 24), precision 1.00; `payment_reminder` reaches the same subscribers a week
//! earlier.

use crate::detect::event::Period;

use super::{RuleId, SignalDraft};

rule_config! {
    /// `overdue_bill` [003].
    OverdueBillConfig { weight: 55, cooldown_days: 28 }
    validate(self, key) {}
}

/// What the agent should do, from the seeds' suggested actions [002][003].
pub const ACTION: &str =
    "Remind the customer of the bill before suspension and offer an easy payment \
     channel or instalments.";

pub fn judge(
    cfg: &OverdueBillConfig,
    period: Period,
    amount_fen: i64,
    days_overdue: u32,
    time_ms: i64,
) -> Option<SignalDraft> {
    if !cfg.enabled {
        return None;
    }
    let yuan = amount_fen as f64 / 100.0;
    let summary = format!("Bill for {period} of {yuan:.2} yuan is {days_overdue} days overdue");
    Some(
        SignalDraft::at(RuleId::OverdueBill, i64::from(period.0), time_ms, summary)
            .with("amount_yuan", yuan)
            .with("days_overdue", f64::from(days_overdue)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overdue_notice_fires_once_per_period() {
        let cfg = OverdueBillConfig::default();
        let p = Period::parse("2026-04").unwrap();
        let a = judge(&cfg, p, 12_800, 5, 1).unwrap();
        let b = judge(&cfg, p, 12_800, 12, 2).unwrap();
        assert_eq!(a.episode, b.episode);
        assert_eq!(a.evidence[0], ("amount_yuan", 128.0));
        assert!(judge(
            &OverdueBillConfig {
                enabled: false,
                ..cfg
            },
            p,
            1,
            1,
            1
        )
        .is_none());
    }
}
