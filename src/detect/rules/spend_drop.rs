//! `spend_drop` — "話費突減", a sudden drop in spend [003], and leavers' spend falling before
//! they go [002]: the last 7 days' charges below `drop_ratio` (default 50%) of the
//! subscriber's own weekly baseline, if that baseline is at least `min_weekly_baseline`
//! yuan (default 10) so light users don't fire. Judged like `voice_drop`: the week before low
//! too, and only if a fortnight this low is improbable (`max_chance`) among the
//! subscriber's own days, because daily volumes are heavy-tailed. See [`super::baseline`].
//!
//! Withdrawn (`recovered`) once the last 7 closed days' spend is back to the midpoint between
//! `drop_ratio` and 1 of the ticket's `baseline_weekly` (see [`crate::detect::withdraw`]).

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
    };
    judge_drop(&spec, state, day, cal, |d| d.charge_fen())
}
