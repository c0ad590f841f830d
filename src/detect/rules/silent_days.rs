//! `silent_days` — many days with zero calls [000].
//!
//! Why: a subscriber who normally calls on most days and then makes and receives no call
//! for a week has usually stopped using the SIM (the churn-anomaly checklist's "many days
//! with zero calls" [000]). Judged on closed days only; the baseline is the subscriber's
//! own: calls on at least `baseline_active_fraction` (default 60%) of the 28 days before the
//! silent run. Fires when the run reaches `min_days` (default 7), with two exceptions that
//! follow the subscriber's own evidence:
//!
//! - **Quiet spells they came back from.** The run must be more than twice the longest
//!   quiet spell (no two call days in a row, with at least 3 quiet days in a row in it) in
//!   the last 64 days (the call bitmap the state keeps) that ended in calls again: a
//!   traveller away a week every month or two, taking a call now and then abroad, is not
//!   news until this trip is twice the last, while a subscriber who calls daily at home, or
//!   skips a day or a weekend between calls, is ticketed on the seventh day.
//! - **Usage moved to data.** If data went on at half its usual daily volume or more
//!   through the run, the calls moved to apps; the subscriber did not stop. A small data
//!   session now and then does not count, so a phone left on in a drawer is still silent.
//! - **Abroad.** If the line was used abroad (a roaming record of any kind, from the
//!   visited network's TAP file) in the last 7 days, the silence is a trip: not judged
//!   (`abroad`, counted with the suppressed signals) until the run passes `abroad_max_days`
//!   (default 21; three weeks away is news whatever the reason). This is what tells a
//!   traveller's first trip, which no earlier quiet spell explains, from a leaver.
//!
//! The aim, as for the drop rules, is under 1 false alarm in 1,000 loyal subscribers over
//! 110 days, with usage that stops ticketed on its seventh day; on `generate`'s workload at
//! 20,000 subscribers it is no false alarm in 110 days (2 in 150), and a median delay of 7
//! days (p90 9) from the onset of a silence (docs/quality.md, today's delays).
//!
//! An ongoing silence raises no second ticket (the cooldown). A suspended line is judged
//! too: silence is silence, and the suspension's own signal explains it on the same ticket.
//!
//! Withdrawn (`recovered`) once the subscriber calls, or is called, on at least 3 of the last
//! 7 closed days (see [`crate::detect::withdraw`]).

use crate::detect::calendar::{Calendar, Day};
use crate::detect::state::{SubscriberState, FWD_BITS, HISTORY_DAYS};

use super::baseline::Verdict;
use super::{RuleId, SignalDraft};

rule_config! {
    /// `silent_days` [000].
    SilentDaysConfig { weight: 45, cooldown_days: 14,
        /// Consecutive days with no call made or received.
        min_days: u32 = 7,
        /// Share of the 28 days before on which the subscriber called: "calls on most days".
        baseline_active_fraction: f64 = 0.6,
        /// Longest silence excused by usage abroad in its last 7 days; 0 judges a silence
        /// abroad like any other.
        abroad_max_days: u32 = 21 }
    validate(self, key) {
        if !(2..=28).contains(&self.min_days) { return Err(invalid(&format!("{key}.min_days"), "must be 2 to 28")); }
        check_fraction(key, "baseline_active_fraction", self.baseline_active_fraction)?;
        if self.abroad_max_days > 28 { return Err(invalid(&format!("{key}.abroad_max_days"), "must be 0 to 28")); }
    }
}

/// What the agent should do, from the seeds' suggested actions [002][003].
pub const ACTION: &str =
    "The line has gone quiet: call to learn why usage stopped and offer a better \
     plan or free minutes.";

/// Days of calls the state remembers (one bit a day), where earlier silences are looked for.
const CALL_MEMORY: i32 = FWD_BITS;
/// Usual days the run is judged against: the 28 before it.
const USUAL: i32 = 28;
/// Closed days with their volumes kept, for the data check.
const VOLUMES: i32 = HISTORY_DAYS as i32;
/// Quiet days in a row a spell must hold to count: more than a weekend, so a subscriber who
/// skips a day or two between calls has no spell, while a trip with a call now and then does.
const SPELL_MIN_GAP: i32 = 3;

pub fn judge(cfg: &SilentDaysConfig, state: &SubscriberState, day: Day, cal: &Calendar) -> Verdict {
    let n = cfg.min_days as i32;
    let longest_run = VOLUMES - 7;
    let run = (0..longest_run)
        .take_while(|&i| !state.called_on(day - i))
        .count() as i32;
    if !cfg.enabled || run < n || run == longest_run || !state.known_since(day - run - USUAL + 1) {
        return Verdict::No;
    }
    let usual = day - run - USUAL + 1..=day - run;
    let active = usual.clone().filter(|&d| state.called_on(d)).count();
    if (active as f64) < cfg.baseline_active_fraction * f64::from(USUAL) {
        return Verdict::No;
    }
    let before = 2 * returned_silence(state, day - run, day - CALL_MEMORY + 1);
    if run <= before || data_kept_up(state, day, run) {
        return Verdict::No;
    }
    let abroad = state.abroad_this_week();
    if abroad && run <= cfg.abroad_max_days as i32 {
        return Verdict::Skipped("abroad");
    }
    let summary = format!(
        "No call made or received for {run} days{}; usually calls on {active} of 28 days",
        if abroad { ", the line used abroad" } else { "" }
    );
    let mut d = SignalDraft::at(
        RuleId::SilentDays,
        i64::from(day),
        cal.day_start_ms(day + 1),
        summary,
    )
    .with("silent_days", f64::from(run as u32))
    .with("baseline_active_days", active as f64);
    d.first_seen_ms = cal.day_start_ms(day - run + 1);
    Verdict::Holds(d)
}

/// The longest quiet spell the subscriber came back from between `from` (a day with a
/// call) back to `to`: a stretch with no two call days in a row (a call or two a week
/// while away still reads as away), with calls on consecutive days on both sides, so the
/// days before the first record (no calls known) are not taken for one, and with at least
/// `SPELL_MIN_GAP` quiet days in a row.
fn returned_silence(state: &SubscriberState, from: Day, to: Day) -> i32 {
    let (mut longest, mut spell, mut gap, mut widest) = (0, 0, 0, 0);
    let mut d = from - 1;
    while d >= to {
        if state.called_on(d) && state.called_on(d + 1) {
            if widest >= SPELL_MIN_GAP {
                longest = longest.max(spell);
            }
            (spell, widest) = (0, 0);
        } else {
            spell += 1;
        }
        gap = if state.called_on(d) { 0 } else { gap + 1 };
        widest = widest.max(gap);
        d -= 1;
    }
    longest
}

/// Whether data went on at half its usual daily volume or more through the silent run:
/// usage moved to data (calls over apps), not stopped. Judged on the days the volumes are
/// kept for, at most the last 7 of the run against the days before it.
fn data_kept_up(state: &SubscriberState, day: Day, run: i32) -> bool {
    let recent = run.min(7);
    let mean = |days: std::ops::RangeInclusive<Day>| {
        let n = days.clone().count().max(1) as f64;
        days.map(|d| state.closed(d).data_bytes() as f64)
            .sum::<f64>()
            / n
    };
    let usual = mean(day - VOLUMES + 1..=day - run);
    usual > 0.0 && mean(day - recent + 1..=day) >= 0.5 * usual
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

    /// The first day `judge` fires on, judging every closed day from 1035, for a subscriber
    /// who calls on the days `calls` picks up to 1040 and never after.
    fn first_firing(calls: impl Fn(Day) -> bool) -> Option<Day> {
        let cfg = SilentDaysConfig::default();
        let mut s = SubscriberState::default();
        s.note_seen(1000);
        for d in 1000..=1070 {
            if d <= 1040 && calls(d) {
                s.add_voice(d, 120, true);
            }
            s.close_day(d);
            if d >= 1035 && matches!(judge(&cfg, &s, d, &cal()), Verdict::Holds(_)) {
                return Some(d);
            }
        }
        None
    }

    #[test]
    fn skipping_a_day_or_two_between_calls_is_no_quiet_spell() {
        // Call, skip, call, skip two, over 1020..=1030: a stretch with no two call days in
        // a row but no three quiet days in a row either, so the silence from 1041 is news on
        // its seventh day (it would wait for its twenty-first if the stretch were a spell).
        let habit = |d: Day| !(1020..=1030).contains(&d) || [0, 2].contains(&(d % 5));
        assert_eq!(first_firing(habit), Some(1047));
    }

    #[test]
    fn a_trip_with_a_call_in_the_middle_is_still_a_quiet_spell() {
        // Away 1020..=1028 with one call on 1024: a spell of ten days with the call day
        // before it, so the silence from 1041 waits for its twenty-first day.
        let habit = |d: Day| !(1020..=1028).contains(&d) || d == 1024;
        assert_eq!(first_firing(habit), Some(1061));
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
        // back: on its seventeenth day the silence is more than twice the last quiet spell
        // (the trip and the day it ended on).
        assert_eq!(fired.first(), Some(&1056), "{fired:?}");
    }

    /// A daily caller silent from 1041 with a little data every day, abroad from 1041 when
    /// `abroad`, judged each day from 1047 to `to`; the days it fires.
    fn silent_with_data(cfg: &SilentDaysConfig, abroad: bool, to: Day) -> Vec<Verdict> {
        let mut s = SubscriberState::default();
        s.note_seen(1000);
        let mut verdicts = Vec::new();
        for d in 1000..=to {
            if d <= 1040 {
                s.add_voice(d, 120, true);
            }
            s.add_data(d, if d <= 1040 { 200 << 20 } else { 5 << 20 });
            if abroad && d > 1040 {
                s.add_roaming(d);
            }
            s.close_day(d);
            if d >= 1047 {
                verdicts.push(judge(cfg, &s, d, &cal()));
            }
        }
        verdicts
    }

    #[test]
    fn a_first_trip_abroad_is_not_news_until_it_passes_three_weeks() {
        let cfg = SilentDaysConfig::default();
        let home = silent_with_data(&cfg, false, 1047);
        assert!(matches!(home[..], [Verdict::Holds(_)]), "{home:?}");
        let away = silent_with_data(&cfg, true, 1062);
        let (excused, judged) = away.split_at(15);
        assert!(
            excused.iter().all(|v| *v == Verdict::Skipped("abroad")),
            "{excused:?}"
        );
        let Verdict::Holds(sig) = &judged[0] else {
            panic!("22 days abroad without a call: {judged:?}")
        };
        assert!(
            sig.summary.contains("22 days, the line used abroad"),
            "{}",
            sig.summary
        );
        let off = SilentDaysConfig {
            abroad_max_days: 0,
            ..SilentDaysConfig::default()
        };
        let away = silent_with_data(&off, true, 1047);
        assert!(matches!(away[..], [Verdict::Holds(_)]), "{away:?}");
    }

    #[test]
    fn calls_moved_to_data_are_not_silence() {
        let cfg = SilentDaysConfig::default();
        let mut s = SubscriberState::default();
        s.note_seen(1000);
        for d in 1000..=1047 {
            if d <= 1040 {
                s.add_voice(d, 120, true);
            }
            s.add_data(d, 200 << 20);
            s.close_day(d);
        }
        assert!(matches!(judge(&cfg, &s, 1047, &cal()), Verdict::No));
        let mut s = SubscriberState::default();
        s.note_seen(1000);
        for d in 1000..=1047 {
            if d <= 1040 {
                s.add_voice(d, 120, true);
            }
            s.add_data(d, if d <= 1040 { 200 << 20 } else { 10 << 20 });
            s.close_day(d);
        }
        assert!(matches!(judge(&cfg, &s, 1047, &cal()), Verdict::Holds(_)));
    }

    #[test]
    fn a_new_subscriber_is_not_judged() {
        let cfg = SilentDaysConfig::default();
        let s = caller(1020, 1040, 1047);
        assert!(matches!(judge(&cfg, &s, 1047, &cal()), Verdict::No));
    }
}
