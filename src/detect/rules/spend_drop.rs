//! `spend_drop` — "話費突減", a sudden drop in spend [003], and leavers' spend falling before
//! they go [002]: the last 7 days' charges below `drop_ratio` (default 50%) of the
//! subscriber's own weekly baseline, if that baseline is at least `min_weekly_baseline`
//! yuan (default 10) so light users don't fire. Judged like `voice_drop`: a sharp week alone
//! if it is far beyond chance, else the week before low too, and only if a window this low
//! is improbable (`max_chance`) among the
//! subscriber's own days, because daily volumes are heavy-tailed. See [`super::baseline`].
//!
//! Withdrawn (`recovered`) once the last 7 closed days' spend is back to the midpoint between
//! `drop_ratio` and 1 of the ticket's `baseline_weekly` (see [`crate::detect::withdraw`]).
//!
//! Aim and delay: as [`super::baseline`], under 1 false alarm in 1,000 loyal subscribers in
//! 110 days. On `generate`'s workload (docs/quality.md) a spend that stops is ticketed on the
//! seventh day; paid calls moving away over three weeks median 24 days from onset (p90 31),
//! about a week after the fall ends (the journey's first ticket by any rule: 22, p90 29, the
//! voice and data rules reaching some of them first); precision 0.98.

use crate::detect::calendar::{Calendar, Day};
use crate::detect::state::SubscriberState;

use super::baseline::{judge_drop, DropSpec, Verdict};
use super::RuleId;

drop_config!(
    /// `spend_drop`: charge, yuan per week.
    SpendDropConfig, 45, 10.0, "yuan");

/// What the agent should do, from the seeds' suggested actions [002][003].
pub const ACTION: &str =
    "Usage is falling: call to learn why and offer a plan that fits, free minutes or \
     a data pack.";

pub fn judge(cfg: &SpendDropConfig, state: &SubscriberState, day: Day, cal: &Calendar) -> Verdict {
    let spec = DropSpec {
        rule: RuleId::SpendDrop,
        enabled: cfg.enabled,
        ratio: cfg.drop_ratio,
        min_weekly_baseline: cfg.min_weekly_baseline,
        max_chance: cfg.max_chance,
        unit_divisor: 100.0,
        unit: "yuan",
        what: "Spend",
        carries_on: |d| d.voice_s(),
        moved_to: None,
    };
    judge_drop(&spec, state, day, cal, |d| d.charge_fen())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Days the rule held for a subscriber charged `fen(d)` on day `d`, judged at every
    /// close from `from` to `to` (history from day 1000).
    fn judged(fen: impl Fn(Day) -> i64, from: Day, to: Day) -> Vec<Day> {
        let cal = Calendar::new("Asia/Shanghai", &[]).unwrap();
        let cfg = SpendDropConfig::default();
        let mut s = SubscriberState::default();
        s.note_seen(1000);
        let mut fired = Vec::new();
        for d in 1000..=to {
            s.add_charge(d, fen(d));
            s.add_voice(d, 600, true);
            s.close_day(d);
            if d >= from && matches!(judge(&cfg, &s, d, &cal), Verdict::Holds(_)) {
                fired.push(d);
            }
        }
        fired
    }

    #[test]
    fn a_steady_subscribers_sharp_fall_tickets_within_seven_days() {
        // 8 yuan a day, give or take one, then 1 yuan a day from day 1050 (87% down).
        let fen = |d: Day| {
            if d >= 1050 {
                100
            } else {
                700 + 100 * i64::from(d % 3)
            }
        };
        assert_eq!(judged(fen, 1040, 1070).first(), Some(&1056));
    }

    #[test]
    fn a_light_users_fall_to_zero_does_not() {
        // 1 yuan a day (7 a week, under the 10-yuan baseline judged), then nothing.
        let fen = |d: Day| if d >= 1050 { 0 } else { 100 };
        assert_eq!(judged(fen, 1040, 1090), Vec::<Day>::new());
    }
}
