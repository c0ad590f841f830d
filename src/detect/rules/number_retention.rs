//! `number_retention_suspension` — "停機保號", the subscriber parks the number [003].
//!
//! Why: suspending service while keeping the number is the classic step before porting out;
//! the care work-order catalogue raises a ticket on it [003]. The strongest single signal.
//! One ticket per aligned cooldown window.
//!
//! Withdrawn (`resumed`) once the suspension is lifted (see [`crate::detect::withdraw`]).
//!
//! Aim and delay: a parked number is a fact, raised when the CRM event arrives. On `generate`'s
//! workload (docs/quality.md: 20,000 subscribers, 110 days): median 0.6 days from the start of
//! the suspension's day (p90 0.6), precision 1.00.

use crate::detect::calendar::Day;

use super::{window_episode, RuleId, SignalDraft};

rule_config! {
    /// `number_retention_suspension` [003].
    NumberRetentionConfig { weight: 90, cooldown_days: 30 }
    validate(self, key) {}
}

/// What the agent should do, from the seeds' suggested actions [002][003].
pub const ACTION: &str =
    "The number is parked, often the step before porting out: call at once with the \
     strongest retention offer.";

pub fn judge(cfg: &NumberRetentionConfig, time_ms: i64, day: Day) -> Option<SignalDraft> {
    if !cfg.enabled {
        return None;
    }
    let summary = "Suspended service with number retention (parked number)".to_string();
    Some(SignalDraft::at(
        RuleId::NumberRetentionSuspension,
        window_episode(day, cfg.cooldown_days),
        time_ms,
        summary,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_on_a_parked_number() {
        let s = judge(&NumberRetentionConfig::default(), 42, 10).unwrap();
        assert_eq!(s.rule, RuleId::NumberRetentionSuspension);
        assert_eq!(s.raised_ms, 42);
    }
}
