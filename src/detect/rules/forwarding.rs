//! `offnet_forwarding_streak` and `offnet_forwarding_registration` — calls forwarded to
//! another operator's mobile.
//!
//! Why: a subscriber who forwards calls to a competitor's number day after day has moved to
//! a new SIM and keeps the old one only to catch callers who haven't heard; the care
//! work-order catalogue triggers on forwarding to another operator on 5 or more
//! consecutive days [003]. Switches also write a supplementary-service record when the
//! subscriber *registers* forwarding (3GPP TS 32.298): the earliest, weaker sign of the same
//! intent, raised as its own low-weight signal so the ticket policy can rank it.
//!
//! Thresholds: `min_days` consecutive calendar days (default 5). One ticket per streak: the
//! episode is the streak's first day, so a continuing streak never raises a second ticket.
//! With an allowed lateness under `min_days - 1` days, every arrival order finds the same
//! first day. The ticket's time is the start of the streak's `min_days`-th day.
//!
//! Aim and delay: five days of forwarding to a rival's mobile is no chance event, so the rules
//! aim at no false alarm from chance. On `generate`'s workload (docs/quality.md: 20,000
//! subscribers, 110 days): the streak median 4 days from its first day (p90 4), the start of
//! the fifth day, precision 0.98; the registration 0.9 days (p90 0.9), precision 0.97.

use crate::detect::calendar::{Calendar, Day};

use super::{window_episode, RuleId, SignalDraft};

rule_config! {
    /// `offnet_forwarding_streak` [003].
    ForwardingStreakConfig { weight: 80, cooldown_days: 30,
        /// Consecutive calendar days with calls forwarded to another operator's mobile.
        min_days: u32 = 5 }
    validate(self, key) {
        if !(2..=30).contains(&self.min_days) { return Err(invalid(&format!("{key}.min_days"), "must be 2 to 30")); }
    }
}

rule_config! {
    /// `offnet_forwarding_registration`: forwarding registered to another operator's mobile.
    ForwardingRegistrationConfig { weight: 40, cooldown_days: 30 }
    validate(self, key) {}
}

/// Judges the run of consecutive forwarded days `first..=last`.
/// What the agent should do, from the seeds' suggested actions [002][003].
pub const STREAK_ACTION: &str =
    "Calls are forwarded to a competitor's number: confirm whether a second SIM is \
     now the main line and offer a family or multi-SIM bundle.";

/// What the agent should do, from the seeds' suggested actions [002][003].
pub const REGISTRATION_ACTION: &str =
    "Calls are forwarded to a competitor's number: confirm whether a second SIM is \
     now the main line and offer a family or multi-SIM bundle.";

pub fn judge_streak(
    cfg: &ForwardingStreakConfig,
    first: Day,
    last: Day,
    cal: &Calendar,
) -> Option<SignalDraft> {
    let len = last - first + 1;
    if !cfg.enabled || len < cfg.min_days as i32 {
        return None;
    }
    let reached = first + cfg.min_days as i32 - 1;
    let summary = format!(
        "Calls forwarded to another operator's mobile on {} consecutive days",
        cfg.min_days
    );
    let mut d = SignalDraft::at(
        RuleId::OffnetForwardingStreak,
        i64::from(first),
        cal.day_start_ms(reached),
        summary,
    )
    .with("min_days", f64::from(cfg.min_days));
    d.first_seen_ms = cal.day_start_ms(first);
    Some(d)
}

/// Judges a forwarding registration to another operator's mobile.
pub fn judge_registration(
    cfg: &ForwardingRegistrationConfig,
    time_ms: i64,
    day: Day,
    operator: &str,
) -> Option<SignalDraft> {
    if !cfg.enabled {
        return None;
    }
    let summary = format!("Registered call forwarding to a {operator} mobile");
    Some(SignalDraft::at(
        RuleId::OffnetForwardingRegistration,
        window_episode(day, cfg.cooldown_days),
        time_ms,
        summary,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal() -> Calendar {
        Calendar::new("Asia/Shanghai", &[]).unwrap()
    }

    #[test]
    fn five_consecutive_days_fire_four_do_not() {
        let cfg = ForwardingStreakConfig::default();
        assert!(judge_streak(&cfg, 100, 103, &cal()).is_none());
        let s = judge_streak(&cfg, 100, 104, &cal()).unwrap();
        assert_eq!(s.episode, 100);
        assert_eq!(s.raised_ms, cal().day_start_ms(104));
        assert_eq!(s.first_seen_ms, cal().day_start_ms(100));
    }

    #[test]
    fn a_longer_streak_is_the_same_episode() {
        let cfg = ForwardingStreakConfig::default();
        let a = judge_streak(&cfg, 100, 104, &cal()).unwrap();
        let b = judge_streak(&cfg, 100, 110, &cal()).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn registration_is_its_own_rule() {
        let s = judge_registration(
            &ForwardingRegistrationConfig::default(),
            5,
            100,
            "China Mobile",
        )
        .unwrap();
        assert_eq!(s.rule, RuleId::OffnetForwardingRegistration);
    }
}
