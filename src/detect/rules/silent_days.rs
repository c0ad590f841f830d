//! `silent_days` — many days with zero calls [000].
//!
//! Why: a subscriber who normally calls on most days and then makes and receives no call
//! for a week has usually stopped using the SIM (the churn-anomaly checklist's "many days
//! with zero calls" [000]). Judged on closed days only; the baseline is the subscriber's
//! own: calls on at least `baseline_active_fraction` (default 60%) of the days before the
//! silent run (the 35 days the state keeps, less the run). Fires when the run reaches
//! `min_days` (default 7) and is longer than any silence among those usual days: a
//! traveller whose last trip is within the five weeks judged is not news until this trip
//! outlasts it. Data sessions do not break a run, so a phone left on in a drawer is still
//! silent. An ongoing silence raises no second ticket (the cooldown). A suspended line is
//! judged too: silence is silence, and the suspension's own signal explains it on the same
//! ticket.
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

/// Days a judgement reads: the silent run and the usual days before it.
const SPAN: i32 = 35;
/// Shortest stretch of usual days a run is judged against.
const MIN_REFERENCE: i32 = 14;

pub fn judge(cfg: &SilentDaysConfig, state: &SubscriberState, day: Day, cal: &Calendar) -> Verdict {
    let n = cfg.min_days as i32;
    if !cfg.enabled || !state.known_since(day - SPAN + 1) {
        return Verdict::No;
    }
    let run = (0..SPAN - MIN_REFERENCE)
        .take_while(|&i| !state.called_on(day - i))
        .count() as i32;
    if run < n || run == SPAN - MIN_REFERENCE {
        return Verdict::No;
    }
    let usual = day - SPAN + 1..=day - run;
    let days = usual.clone().count();
    let active = usual.clone().filter(|&d| state.called_on(d)).count();
    let scaled = active as f64 * 28.0 / days as f64;
    if scaled < cfg.baseline_active_fraction * 28.0 || longest_silence(state, usual) >= run {
        return Verdict::No;
    }
    let active = scaled.round() as u32;
    let summary =
        format!("No call made or received for {run} days; usually calls on {active} of 28 days");
    let mut d = SignalDraft::at(
        RuleId::SilentDays,
        i64::from(day),
        cal.day_start_ms(day + 1),
        summary,
    )
    .with("silent_days", f64::from(run as u32))
    .with("baseline_active_days", f64::from(active));
    d.first_seen_ms = cal.day_start_ms(day - run + 1);
    Verdict::Holds(d)
}

/// The longest run of days without a call in `days`.
fn longest_silence(state: &SubscriberState, days: std::ops::RangeInclusive<Day>) -> i32 {
    let (mut longest, mut current) = (0, 0);
    for d in days {
        current = if state.called_on(d) { 0 } else { current + 1 };
        longest = longest.max(current);
    }
    longest
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
    fn a_regular_travellers_silent_week_is_not_news_a_longer_one_is() {
        let cfg = SilentDaysConfig::default();
        // Calls daily but for a silent week every four weeks (1012..=1018, 1040..=1046).
        let mut s = SubscriberState::default();
        s.note_seen(1000);
        let mut fired = Vec::new();
        for d in 1000..=1060 {
            let trip = (d - 1012i32).rem_euclid(28) < 7;
            if !trip && d < 1040 {
                s.add_voice(d, 120, true);
            }
            s.close_day(d);
            if d >= 1035 && matches!(judge(&cfg, &s, d, &cal()), Verdict::Holds(_)) {
                fired.push(d);
            }
        }
        // The trip from 1040 is as long as the last: nothing. Then the calls never come
        // back: on its eighth day the silence is longer than any trip before.
        assert_eq!(fired.first(), Some(&1047), "{fired:?}");
    }

    #[test]
    fn a_new_subscriber_is_not_judged() {
        let cfg = SilentDaysConfig::default();
        let s = caller(1020, 1040, 1047);
        assert!(matches!(judge(&cfg, &s, 1047, &cal()), Verdict::No));
    }
}
