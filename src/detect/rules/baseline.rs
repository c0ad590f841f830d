//! The subscriber's own baseline, shared by the usage-drop rules.
//!
//! "Sudden drop" [003] and "MOU dropping suddenly" [002] are relative to the subscriber, not
//! to the base. A fixed ratio alone is not enough: call durations and data volumes are
//! heavy-tailed, so a moderate caller's week falls below half of the usual by chance
//! several times a year (measured: 14% of loyal subscribers ticketed in 110 days). A drop
//! is therefore judged against the subscriber's own day-to-day variability, for as long as
//! the evidence needs: one week when it is overwhelming, two otherwise.
//!
//! - **Windows.** A judgement reads the last 35 closed days, all the state keeps. The
//!   *fortnight* window compares the last 14 days with the 21 before them; the *week* window
//!   the last 7 with the 28 before them.
//! - **Large.** The weekly mean of the reference is at least `min_weekly_baseline` (light
//!   users are not judged). In the fortnight, the last 7 days are below `drop_ratio` of it
//!   and the 7 before them below the midpoint between `drop_ratio` and 1 (75% by default):
//!   a chance low week is followed by a usual one, a subscriber who is leaving stays low. In
//!   the week alone, the last 7 days are below half of `drop_ratio` (25% by default): a
//!   sharp fall.
//! - **Improbable for this subscriber.** A rank test (Mann-Whitney) of the recent days
//!   against the reference days: the chance that the subscriber's usual days rank this low
//!   is at most `max_chance` (default 1 in 500,000) for the fortnight, and a tenth of it for
//!   the week alone, which in practice means every day of the week below every one of the
//!   28 usual days (1 in 6.7M). Ranks use no distribution, so a three-hour call or a
//!   streaming evening moves the test by one rank, not by its size; a steady heavy user's
//!   fall is improbable, a light and erratic caller's is not. Days of one week move
//!   together (a busy week, a quiet one), which the test does not know: hence the week's
//!   stricter bar.
//!
//! - **The line still in use.** A week alone counts only while another kind of usage
//!   carries on (at least half its usual week: data for `voice_drop`, voice for the others):
//!   one kind of usage gone elsewhere (a second SIM, calls to another operator) is a move;
//!   everything stopping at once is a silence (a trip abroad, a phone switched off), which
//!   `silent_days` judges against the subscriber's own earlier silences, and the fortnight
//!   here.
//!
//! - **Moved, not gone.** A rule may name usage its own kind moves to on this network
//!   (`voice_drop`: data, when calls go to apps): a window whose recent days hold at least
//!   the rule's ratio of that usage's reference days is not ticketed (`usage_moved`).
//!
//! - **Abroad.** A fall while the line was used abroad in the last 7 days (a roaming
//!   record) is a trip, not ticketed (`abroad`): the recent week is low because the
//!   subscriber was away, and once home a week the window is judged again.
//!
//! So a steady subscriber whose usage falls sharply while the line stays in use is ticketed
//! on the seventh day of the fall, and a noisy one, or a milder fall, after two weeks as
//! before.
//!
//! The aim is a false-alarm rate under 1 in 1,000 loyal subscribers over 110 days per rule,
//! measured on `generate`'s heavy-tailed workload (docs/quality.md); the two windows add
//! at most 1.1 times `max_chance` per judged day. Usage falling steadily to a tenth over
//! three weeks is still caught, for a noisy daily caller, around the end of the fall: each
//! week of a slow fall is neither sharp nor improbable on its own. Closed days only, so the
//! verdict cannot change with late records. A window whose recent days hold a public
//! holiday is not judged: over Spring Festival voice minutes fall nationally and the whole
//! base would fire.

use crate::detect::calendar::{Calendar, Day};
use crate::detect::state::{ClosedDay, SubscriberState};

use super::{RuleId, SignalDraft};

/// Outcome of a close rule for one subscriber and day.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The condition holds.
    Holds(SignalDraft),
    /// The condition does not hold.
    No,
    /// Not judged, for a counted reason (holiday, short history...).
    Skipped(&'static str),
}

/// Days in a week, the unit of both ratios.
const WEEK: usize = 7;
/// Closed days a judgement reads: the recent window and its reference, together.
const SPAN: usize = 35;

/// A recent window and the reference days before it, together [`SPAN`] days, and how much
/// stricter than the rule's own settings the window is judged.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Shape {
    recent: usize,
    reference: usize,
    /// The last week must be below `drop_ratio` times this of the usual week.
    ratio_factor: f64,
    /// The chance must be at most `max_chance` times this.
    chance_factor: f64,
}

/// The last week against the 28 days before it, alone: a sharp fall (below half the
/// rule's ratio, 25% of the usual week by default) that is ten times rarer than the
/// fortnight must be, in practice every day of the week below every usual day. Days of
/// one week move together (a busy or a quiet week), which the rank test does not know, so
/// one week needs the stronger evidence.
const ONE_WEEK: Shape = Shape {
    recent: WEEK,
    reference: SPAN - WEEK,
    ratio_factor: 0.5,
    chance_factor: 0.1,
};
/// The last fortnight against the 21 days before it, both weeks low.
const FORTNIGHT: Shape = Shape {
    recent: 2 * WEEK,
    reference: SPAN - 2 * WEEK,
    ratio_factor: 1.0,
    chance_factor: 1.0,
};

/// Settings of one drop rule, in the rule's display unit.
pub struct DropSpec {
    pub rule: RuleId,
    pub enabled: bool,
    pub ratio: f64,
    pub min_weekly_baseline: f64,
    /// Largest chance, for the subscriber's usual days, of a window ranking this low.
    pub max_chance: f64,
    /// Divides raw totals into the display unit.
    pub unit_divisor: f64,
    pub unit: &'static str,
    pub what: &'static str,
    /// Usage that must carry on (at least half its usual week) for a sharp week alone to
    /// count: the line is still in use, this one kind of usage went elsewhere.
    pub carries_on: Usage,
    /// Usage the fallen kind may move to on this network, and the ratio to its usual that
    /// says it did: a fall while this usage, over the window's recent days, reached that
    /// ratio of its mean over the window's reference days is a move (calls to data apps),
    /// not a departure.
    pub moved_to: Option<(Usage, f64)>,
}

/// One kind of a closed day's usage.
pub type Usage = fn(&ClosedDay) -> u64;

/// One judged window.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Window {
    shape: Shape,
    /// The last week's total, the week before's (the fortnight only), and the reference's
    /// weekly mean.
    last_week: f64,
    week_before: Option<f64>,
    weekly: f64,
    /// Chance of ranks this low (or lower) among the subscriber's usual days.
    chance: f64,
}

/// Judges the `shape.recent` days ending at `end` against the reference days before them;
/// `None` when the drop is not large (in both weeks, for the fortnight) or not improbable.
fn judge_window(
    spec: &DropSpec,
    values: &impl Fn(Day) -> u64,
    end: Day,
    shape: Shape,
) -> Option<Window> {
    let mut days = [0u64; SPAN];
    for (i, v) in days.iter_mut().enumerate() {
        *v = values(end - i as i32);
    }
    let (recent, reference) = days.split_at(shape.recent);
    let last_week: u64 = recent[..WEEK].iter().sum();
    let week_before = (shape.recent > WEEK).then(|| recent[WEEK..].iter().sum::<u64>() as f64);
    let weekly = reference.iter().sum::<u64>() as f64 * WEEK as f64 / shape.reference as f64;
    let earlier_ratio = (1.0 + spec.ratio) / 2.0;
    if weekly / spec.unit_divisor < spec.min_weekly_baseline
        || last_week as f64 >= spec.ratio * shape.ratio_factor * weekly
        || week_before.is_some_and(|w| w >= earlier_ratio * weekly)
    {
        return None;
    }
    // Mann-Whitney U: pairs where the recent day is the larger, ties counted half. Rounded
    // up, so ties never make a window look rarer than it is.
    let mut twice_u = 0usize;
    for &r in recent {
        for &b in reference {
            twice_u += usize::from(r > b) * 2 + usize::from(r == b);
        }
    }
    let chance = rank_chance(shape, twice_u.div_ceil(2));
    (chance <= spec.max_chance * shape.chance_factor).then_some(Window {
        shape,
        last_week: last_week as f64,
        week_before,
        weekly,
        chance,
    })
}

/// `P(U <= u)` for the recent days of `shape` among its reference days, all orders equally
/// likely (no real change). The shapes are fixed, so each distribution is one table,
/// counted once on first use.
fn rank_chance(shape: Shape, u: usize) -> f64 {
    static WEEK_TABLE: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    static FORTNIGHT_TABLE: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    let table = if shape == ONE_WEEK {
        &WEEK_TABLE
    } else {
        &FORTNIGHT_TABLE
    };
    let table = table.get_or_init(|| cumulative_rank_chances(shape));
    table[u.min(table.len() - 1)]
}

/// Exact, by counting orders: the largest of the `i + j` days is either a recent day
/// (beating all `j` reference days) or a reference day.
fn cumulative_rank_chances(shape: Shape) -> Vec<f64> {
    let max_u = shape.recent * shape.reference;
    // counts[j][k]: orders of `i` recent and `j` reference days with U = k.
    let mut counts = vec![vec![0f64; max_u + 1]; shape.reference + 1];
    for row in counts.iter_mut() {
        row[0] = 1.0; // i = 0: one order, U = 0
    }
    for _i in 1..=shape.recent {
        let mut next = vec![vec![0f64; max_u + 1]; shape.reference + 1];
        next[0][0] = 1.0;
        for j in 1..=shape.reference {
            for k in 0..=max_u {
                let top_recent = if k >= j { counts[j][k - j] } else { 0.0 };
                next[j][k] = top_recent + next[j - 1][k];
            }
        }
        counts = next;
    }
    let orders = &counts[shape.reference];
    let total: f64 = orders.iter().sum();
    let mut sum = 0.0;
    orders
        .iter()
        .map(|n| {
            sum += n;
            sum / total
        })
        .collect()
}

/// Judges a drop rule at closed day `day`: the last week alone first, then the fortnight.
/// A window with a public holiday in its recent days is not judged.
pub fn judge_drop(
    spec: &DropSpec,
    state: &SubscriberState,
    day: Day,
    cal: &Calendar,
    metric: impl Fn(&ClosedDay) -> u64,
) -> Verdict {
    if !spec.enabled || !state.known_since(day - SPAN as i32 + 1) {
        return Verdict::No;
    }
    let values = |d: Day| metric(state.closed(d));
    let in_use = window_share(state, day, ONE_WEEK, spec.carries_on).is_some_and(|s| s >= 0.5);
    let mut holiday = false;
    for shape in [ONE_WEEK, FORTNIGHT] {
        if shape == ONE_WEEK && !in_use {
            continue;
        }
        if cal.any_holiday(day - shape.recent as i32 + 1, day) {
            holiday = true;
            continue;
        }
        if let Some(w) = judge_window(spec, &values, day, shape) {
            if state.abroad_this_week() {
                return Verdict::Skipped("abroad");
            }
            if moved(spec, state, day, shape) {
                return Verdict::Skipped("usage_moved");
            }
            return Verdict::Holds(signal(spec, cal, day, &w));
        }
    }
    if holiday {
        Verdict::Skipped("holiday")
    } else {
        Verdict::No
    }
}

/// Whether the usage the fallen kind may have moved to reached its share of the usual in
/// the window's recent days, against the window's own reference days.
fn moved(spec: &DropSpec, state: &SubscriberState, day: Day, shape: Shape) -> bool {
    spec.moved_to.is_some_and(|(usage, ratio)| {
        window_share(state, day, shape, usage).is_some_and(|s| s >= ratio)
    })
}

/// The signal of a judged window, its evidence in the rule's display unit.
fn signal(spec: &DropSpec, cal: &Calendar, day: Day, w: &Window) -> SignalDraft {
    let (recent, baseline) = (
        w.last_week / spec.unit_divisor,
        w.weekly / spec.unit_divisor,
    );
    let pct = (1.0 - recent / baseline) * 100.0;
    let odds = (1.0 / w.chance.max(1e-12)).round();
    let (what, unit) = (spec.what, spec.unit);
    let summary = match w.week_before {
        Some(before) => format!(
            "{what} down {pct:.0}% in the last 7 days and low the week before: {recent:.0} and \
             {:.0} {unit} against a usual {baseline:.0} a week (a fortnight this low: 1 in \
             {odds:.0} for this subscriber)",
            before / spec.unit_divisor
        ),
        None => format!(
            "{what} down {pct:.0}% in the last 7 days: {recent:.0} {unit} against a usual \
             {baseline:.0} a week (a week this low: 1 in {odds:.0} for this subscriber)"
        ),
    };
    let close = cal.day_start_ms(day + 1);
    let mut d = SignalDraft::at(spec.rule, i64::from(day), close, summary)
        .with("last_7_days", round2(recent))
        .with("baseline_weekly", round2(baseline))
        .with("ratio", round2(recent / baseline))
        .with("window_days", w.shape.recent as f64)
        .with("chance", w.chance);
    if let Some(before) = w.week_before {
        d = d.with("week_before", round2(before / spec.unit_divisor));
    }
    d.first_seen_ms = cal.day_start_ms(day - w.shape.recent as i32 + 1);
    d
}

/// The total of `metric` over the recent days of the window `shape` ending at `day`, as a
/// share of its usual for as many days (the mean of the window's reference days); `None`
/// when the reference is empty.
fn window_share(state: &SubscriberState, day: Day, shape: Shape, metric: Usage) -> Option<f64> {
    let total = |days: std::ops::RangeInclusive<Day>| {
        days.map(|d| metric(state.closed(d)) as f64).sum::<f64>()
    };
    let recent_first = day - shape.recent as i32 + 1;
    let usual = total(recent_first - shape.reference as i32..=recent_first - 1)
        * shape.recent as f64
        / shape.reference as f64;
    (usual > 0.0).then(|| total(recent_first..=day) / usual)
}

/// Rounds to two decimals so evidence reads cleanly.
pub fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_chance_is_exact() {
        // All 14 recent days below all 21 reference days: one order in C(35, 14).
        let orders = 2_319_959_400.0;
        assert!((rank_chance(FORTNIGHT, 0) - 1.0 / orders).abs() < 1e-18);
        // U <= 1: that order plus the one with a single swap.
        assert!((rank_chance(FORTNIGHT, 1) - 2.0 / orders).abs() < 1e-18);
        assert!((rank_chance(FORTNIGHT, 294) - 1.0).abs() < 1e-12);
        // Symmetric around the mean (147): P(U <= 146) + P(U <= 147) = 1.
        let f = |u| rank_chance(FORTNIGHT, u);
        assert!((f(146) + f(147) - 1.0).abs() < 1e-12);
        // A week below all 28 days before it: one order in C(35, 7).
        assert!((rank_chance(ONE_WEEK, 0) - 1.0 / 6_724_520.0).abs() < 1e-18);
        assert!((rank_chance(ONE_WEEK, 98) + rank_chance(ONE_WEEK, 97) - 1.0).abs() < 1e-12);
    }
}
