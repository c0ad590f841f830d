//! `contract_expiry` — "協議到期", the contract ends within two months [003][002][000].
//!
//! Why: a subscriber out of contract can leave for free; the service-marketing trigger
//! fires when the contract has less than 2 months left [003], and the retention programme
//! targets promotions about to expire [002]. Judged at day close with the contract end
//! known from closed days; raised once per contract end date.
//!
//! Withdrawn (`renewed`) once the contract end moves past the one ticketed, more than
//! `days_before_end` away (see [`crate::detect::withdraw`]).
//!
//! Aim and delay: the contract end is a fact, so the only false alarm is a subscriber who
//! renews late or stays out of contract. On `generate`'s workload (docs/quality.md: 20,000
//! subscribers, 110 days): median 1 day from the start of the window (p90 1), the close of its
//! first day; precision 0.97.

use crate::detect::calendar::{Calendar, Day};
use crate::detect::state::SubscriberState;

use super::baseline::Verdict;
use super::{RuleId, SignalDraft};

rule_config! {
    /// `contract_expiry` [003][002].
    ContractExpiryConfig { weight: 35, cooldown_days: 1,
        /// Raise when the contract ends within this many days.
        days_before_end: u32 = 60 }
    validate(self, key) {
        if self.days_before_end == 0 || self.days_before_end > 366 { return Err(invalid(&format!("{key}.days_before_end"), "must be 1 to 366")); }
    }
}

/// What the agent should do, from the seeds' suggested actions [002][003].
pub const ACTION: &str = "The contract ends soon: offer a renewal with a loyalty benefit before a \
                 competitor does.";

pub fn judge(
    cfg: &ContractExpiryConfig,
    state: &SubscriberState,
    day: Day,
    cal: &Calendar,
) -> Verdict {
    let end = i32::from(state.contract_end_day);
    if !cfg.enabled || end == 0 || i32::from(state.contract_set_day) > day {
        return Verdict::No;
    }
    let left = end - day;
    if left <= 0 || left > cfg.days_before_end as i32 {
        return Verdict::No;
    }
    let summary = format!("Contract ends in {left} days");
    let mut d = SignalDraft::at(
        RuleId::ContractExpiry,
        i64::from(end),
        cal.day_start_ms(day + 1),
        summary,
    )
    .with("days_left", f64::from(left as u32));
    d.last_seen_ms = cal.day_start_ms(end);
    Verdict::Holds(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal() -> Calendar {
        Calendar::new("Asia/Shanghai", &[]).unwrap()
    }

    #[test]
    fn sixty_days_left_fires_sixty_one_does_not() {
        let cfg = ContractExpiryConfig::default();
        let s = SubscriberState {
            contract_set_day: 900,
            contract_end_day: 1060,
            ..Default::default()
        };
        assert_eq!(judge(&cfg, &s, 999, &cal()), Verdict::No);
        let Verdict::Holds(d) = judge(&cfg, &s, 1000, &cal()) else {
            panic!("60 days left")
        };
        assert_eq!(d.episode, 1060);
        assert_eq!(judge(&cfg, &s, 1060, &cal()), Verdict::No, "already ended");
    }

    #[test]
    fn an_end_set_on_an_open_day_is_not_used_yet() {
        let cfg = ContractExpiryConfig::default();
        let s = SubscriberState {
            contract_set_day: 1001,
            contract_end_day: 1030,
            ..Default::default()
        };
        assert_eq!(judge(&cfg, &s, 1000, &cal()), Verdict::No);
        assert!(matches!(judge(&cfg, &s, 1001, &cal()), Verdict::Holds(_)));
    }
}
