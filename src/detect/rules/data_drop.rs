//! `data_drop` — "流量突減", a sudden drop in data traffic [003]: the last 7 days' data
//! below `drop_ratio` (default 50%) of the subscriber's own weekly baseline, if that
//! baseline is at least `min_weekly_baseline` MiB (default 200). Judged like `voice_drop`:
//! a sharp week alone if it is far beyond chance, else the week before low too, and only
//! if a window this low is improbable (`max_chance`) among the subscriber's own days,
//! because daily volumes are heavy-tailed. See [`super::baseline`].
//!
//! Withdrawn (`recovered`) once the last 7 closed days' data is back to the midpoint between
//! `drop_ratio` and 1 of the ticket's `baseline_weekly` (see [`crate::detect::withdraw`]).
//!
//! Aim and delay: as [`super::baseline`], under 1 false alarm in 1,000 loyal subscribers in
//! 110 days. On `generate`'s workload (docs/quality.md) data that stops is ticketed on the
//! seventh day while calls carry on; data moving to a second SIM over three weeks median 26
//! days from onset (p90 32); precision 0.97.

use crate::detect::calendar::{Calendar, Day};
use crate::detect::state::SubscriberState;

use super::baseline::{judge_drop, DropSpec, Verdict};
use super::RuleId;

drop_config!(
    /// `data_drop`: MiB per week.
    DataDropConfig, 40, 200.0, "MiB");

/// What the agent should do, from the seeds' suggested actions [002][003].
pub const ACTION: &str =
    "Usage is falling: call to learn why and offer a plan that fits, free minutes or \
     a data pack.";

pub fn judge(cfg: &DataDropConfig, state: &SubscriberState, day: Day, cal: &Calendar) -> Verdict {
    let spec = DropSpec {
        rule: RuleId::DataDrop,
        enabled: cfg.enabled,
        ratio: cfg.drop_ratio,
        min_weekly_baseline: cfg.min_weekly_baseline,
        max_chance: cfg.max_chance,
        unit_divisor: 1024.0 * 1024.0,
        unit: "MiB",
        what: "Data",
        carries_on: |d| d.voice_s(),
        moved_to: None,
    };
    judge_drop(&spec, state, day, cal, |d| d.data_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A steady daily caller with 500 MiB of data a day whose data falls to 25 MiB from
    /// day 1050 while the calls go on, roaming from 1050 to 1059 when `abroad`; the
    /// verdicts from 1050 to 1065.
    fn falls(abroad: bool) -> Vec<(Day, Verdict)> {
        let cal = Calendar::new("Asia/Shanghai", &[]).unwrap();
        let cfg = DataDropConfig::default();
        let mut s = SubscriberState::default();
        s.note_seen(1000);
        let mut verdicts = Vec::new();
        for d in 1000..=1065 {
            s.add_voice(d, 300, true);
            let back = abroad && d >= 1060;
            s.add_data(
                d,
                if d < 1050 || back {
                    500 << 20
                } else {
                    25 << 20
                },
            );
            if abroad && (1050..1060).contains(&d) {
                s.add_roaming(d);
            }
            s.close_day(d);
            if d >= 1050 {
                verdicts.push((d, judge(&cfg, &s, d, &cal)));
            }
        }
        verdicts
    }

    #[test]
    fn data_that_falls_at_home_is_a_drop_the_same_fall_abroad_a_trip() {
        let home: Vec<Day> = falls(false)
            .into_iter()
            .filter_map(|(d, v)| matches!(v, Verdict::Holds(_)).then_some(d))
            .collect();
        assert_eq!(home.first(), Some(&1056), "{home:?}");
        let away = falls(true);
        assert!(
            away.iter().all(|(_, v)| !matches!(v, Verdict::Holds(_))),
            "{away:?}"
        );
        assert_eq!(away[6], (1056, Verdict::Skipped("abroad")), "{away:?}");
    }
}
