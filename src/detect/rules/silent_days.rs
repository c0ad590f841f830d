//! `silent_days` — many days with zero calls [000].
//!
//! Why: a subscriber who normally calls on most days and then makes and receives no call
//! for a week has usually stopped using the SIM (the churn-anomaly checklist's "many days
//! with zero calls" [000]). Judged on closed days only; the baseline is the subscriber's
//! own: calls on at least `baseline_active_fraction` (default 60%) of the 28 days before the
//! silent run. Fires once when the run reaches `min_days` (default 7); an ongoing silence
//! raises no second ticket. A suspended line is judged too: silence is silence, and the
//! suspension's own signal explains it on the same ticket.
//!
//! Withdrawn (`recovered`) once the subscriber calls, or is called, on at least 3 of the last
//! 7 closed days (see [`crate::detect::withdraw`]).

use crate::detect::calendar::{Calendar, Day};
use crate::detect::state::SubscriberState;

use super::baseline::Verdict;
use super::{RuleId, SignalDraft};

rule_config! {
    /// `silent_days` [000].
    SilentDaysConfig { weight: 45, cooldown_days: 14,
        /// Consecutive days with no call made or received.
        min_days: u32 = 7,
        /// Share of the 28 days before on which the subscriber called: "calls on most days".
        baseline_active_fraction: f64 = 0.6 }
    validate(self, key) {
        if !(2..=28).contains(&self.min_days) { return Err(invalid(&format!("{key}.min_days"), "must be 2 to 28")); }
        check_fraction(key, "baseline_active_fraction", self.baseline_active_fraction)?;
    }
}

/// What the agent should do, from the seeds' suggested actions [002][003].
pub const ACTION: &str =
    "The line has gone quiet: call to learn why usage stopped and offer a better \
     plan or free minutes.";

pub fn judge(cfg: &SilentDaysConfig, state: &SubscriberState, day: Day, cal: &Calendar) -> Verdict {
    let n = cfg.min_days as i32;
    if !cfg.enabled || !state.known_since(day - n - 27) {
        return Verdict::No;
    }
    if (day - n + 1..=day).any(|d| state.called_on(d)) {
        return Verdict::No;
    }
    let active = (day - n - 27..=day - n)
        .filter(|&d| state.called_on(d))
        .count();
    if (active as f64) < cfg.baseline_active_fraction * 28.0 {
        return Verdict::No;
    }
    let summary =
        format!("No call made or received for {n} days; usually calls on {active} of 28 days");
    let mut d = SignalDraft::at(
        RuleId::SilentDays,
        i64::from(day),
        cal.day_start_ms(day + 1),
        summary,
    )
    .with("silent_days", f64::from(n as u32))
    .with("baseline_active_days", active as f64);
    d.first_seen_ms = cal.day_start_ms(day - n + 1);
    Verdict::Holds(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::state::SubscriberState;

    fn cal() -> Calendar {
        Calendar::new("Asia/Shanghai", &[]).unwrap()
    }

    /// A subscriber who called every day up to `last_call`, then nothing until `to`.
    fn caller(first: Day, last_call: Day, to: Day) -> SubscriberState {
        let mut s = SubscriberState::default();
        s.note_seen(first);
        for d in first..=to {
            if d <= last_call {
                s.add_voice(d, 120, true);
            }
            s.close_day(d);
        }
        s
    }

    #[test]
    fn seven_silent_days_fire_six_do_not() {
        let cfg = SilentDaysConfig::default();
        let s = caller(1000, 1040, 1046);
        assert!(
            matches!(judge(&cfg, &s, 1046, &cal()), Verdict::No),
            "6 silent days"
        );
        let s = caller(1000, 1040, 1047);
        let Verdict::Holds(sig) = judge(&cfg, &s, 1047, &cal()) else {
            panic!("7 silent days must fire")
        };
        assert_eq!(sig.episode, 1047);
        assert_eq!(sig.first_seen_ms, cal().day_start_ms(1041));
    }

    #[test]
    fn a_single_call_resets_the_run() {
        let cfg = SilentDaysConfig::default();
        let mut s = SubscriberState::default();
        s.note_seen(1000);
        for d in 1000..=1047 {
            if d <= 1040 || d == 1044 {
                s.add_voice(d, 60, false);
            }
            s.close_day(d);
        }
        assert!(matches!(judge(&cfg, &s, 1047, &cal()), Verdict::No));
    }

    #[test]
    fn an_occasional_caller_has_no_baseline() {
        let cfg = SilentDaysConfig::default();
        let mut s = SubscriberState::default();
        s.note_seen(1000);
        for d in 1000..=1047 {
            if d <= 1040 && d % 3 == 0 {
                s.add_voice(d, 60, true);
            }
            s.close_day(d);
        }
        assert!(matches!(judge(&cfg, &s, 1047, &cal()), Verdict::No));
    }

    #[test]
    fn a_new_subscriber_is_not_judged() {
        let cfg = SilentDaysConfig::default();
        let s = caller(1020, 1040, 1047);
        assert!(matches!(judge(&cfg, &s, 1047, &cal()), Verdict::No));
    }
}
