//! `competitor_care_call` — a call with a competitor's customer-service line lasting more
//! than a minute.
//!
//! Why: a subscriber who spends minutes on the phone with 10086 (China Mobile) or 10000
//! (China Telecom) is being quoted an offer; it is the first item of China Unicom's care
//! work-order catalogue [003] and of the churn-anomaly checklist [000]. Calls made *and*
//! received count (competitors call prospects). Long calls are cut by switches into partial
//! records sharing a call reference; the engine joins them and judges the whole call.
//!
//! Threshold: `min_duration_s` (default 60; the call must be *longer*). One ticket per
//! aligned `cooldown_days` window.
//!
//! Aim and delay: a loyal subscriber seldom spends minutes with a rival's care line, so the
//! rule aims at no false alarm from chance; it raises its ticket once the whole call is known.
//! On `generate`'s workload (docs/quality.md: 20,000 subscribers, 110 days): median 0.8 days
//! from the start of the call's day (p90 0.8), precision 1.00.

use crate::detect::calendar::Day;

use super::{window_episode, RuleId, SignalDraft};

rule_config! {
    /// `competitor_care_call` [003][000].
    CompetitorCareCallConfig { weight: 70, cooldown_days: 7,
        /// The call must last longer than this (joined partial records), seconds.
        min_duration_s: u32 = 60 }
    validate(self, key) {
        if self.min_duration_s == 0 { return Err(invalid(&format!("{key}.min_duration_s"), "must be positive")); }
    }
}

/// A whole call with a competitor's care line (partial records already joined).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CareCall {
    pub start_ms: i64,
    pub duration_s: u32,
    pub outgoing: bool,
}

/// What the agent should do, from the seeds' suggested actions [002][003].
pub const ACTION: &str =
    "Call today: the customer has been talking to a competitor. Ask what offer they \
     were quoted and match it with a retention plan.";

pub fn judge(
    cfg: &CompetitorCareCallConfig,
    call: CareCall,
    day: Day,
    operator: &str,
) -> Option<SignalDraft> {
    if !cfg.enabled || call.duration_s <= cfg.min_duration_s {
        return None;
    }
    let dir = if call.outgoing {
        "Called"
    } else {
        "Was called by"
    };
    let summary = format!(
        "{dir} {operator} customer service for {}m{:02}s",
        call.duration_s / 60,
        call.duration_s % 60
    );
    let mut d = SignalDraft::at(
        RuleId::CompetitorCareCall,
        window_episode(day, cfg.cooldown_days),
        call.start_ms,
        summary,
    )
    .with("duration_s", f64::from(call.duration_s));
    d.last_seen_ms = call.start_ms + i64::from(call.duration_s) * 1000;
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(duration_s: u32) -> CareCall {
        CareCall {
            start_ms: 1_000_000,
            duration_s,
            outgoing: true,
        }
    }

    #[test]
    fn fires_above_sixty_seconds_not_at_sixty() {
        let cfg = CompetitorCareCallConfig::default();
        assert!(judge(&cfg, call(60), 10, "China Mobile").is_none());
        let s = judge(&cfg, call(61), 10, "China Mobile").unwrap();
        assert_eq!(s.rule, RuleId::CompetitorCareCall);
        assert_eq!(s.evidence, vec![("duration_s", 61.0)]);
        assert!(s.summary.contains("China Mobile"));
    }

    #[test]
    fn calls_in_one_cooldown_window_share_an_episode() {
        let cfg = CompetitorCareCallConfig::default(); // 7-day windows
        let a = judge(&cfg, call(100), 14, "x").unwrap();
        let b = judge(&cfg, call(100), 20, "x").unwrap();
        let c = judge(&cfg, call(100), 21, "x").unwrap();
        assert_eq!(a.episode, b.episode);
        assert_ne!(b.episode, c.episode);
    }

    #[test]
    fn disabled_rule_is_silent() {
        let cfg = CompetitorCareCallConfig {
            enabled: false,
            ..Default::default()
        };
        assert!(judge(&cfg, call(600), 10, "x").is_none());
    }
}
