//! The subscriber's own baseline, shared by the usage-drop rules.
//!
//! "Sudden drop" [003] and "MOU dropping suddenly" [002] are relative to the subscriber, not
//! to the base. A fixed ratio alone is not enough: call durations and data volumes are
//! heavy-tailed, so a moderate caller's week falls below half of the usual by chance
//! several times a year (measured: 14% of loyal subscribers ticketed in 110 days). A drop
//! is therefore judged against the subscriber's own day-to-day variability, and must last
//! two weeks:
//!
//! - **Windows.** The *recent* fortnight is the last 14 closed days; the *reference* is the
//!   21 closed days before it (days `d-34 ..= d-14`), all the state keeps.
//! - **Large, in both weeks.** The last 7 days are below `drop_ratio` of the reference's
//!   weekly mean, and the 7 days before them below the midpoint between `drop_ratio` and 1
//!   (75% by default); the weekly mean is at least `min_weekly_baseline` (light users are not
//!   judged). A chance low week is followed by a usual one; a subscriber who is leaving
//!   stays low.
//! - **Improbable for this subscriber.** A rank test (Mann-Whitney) of the 14 recent days
//!   against the 21 reference days: the chance that 14 of the subscriber's usual days rank
//!   this low is at most `max_chance` (default 1 in 500,000). Ranks use no distribution, so a
//!   three-hour call or a streaming evening moves the test by one rank, not by its size; a
//!   steady heavy user's fall is improbable, a light and erratic caller's is not. Because the
//!   chance is exact whatever the subscriber's habits, `max_chance` is the false-alarm rate
//!   per judged day.
//!
//! The aim is a false-alarm rate under 1 in 1,000 loyal subscribers over 110 days per rule,
//! measured on `generate`'s heavy-tailed workload (docs/quality.md). The price is paid in speed:
//! usage that stops is caught about ten days later; usage falling steadily to a tenth over
//! three weeks is caught, for a daily heavy user, around the end of the fall. Closed days
//! only, so the verdict cannot change with late records. A fortnight containing a public
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
/// Days in the recent window: the last two weeks.
const RECENT: usize = 2 * WEEK;
/// Days in the reference window, the 21 days before the recent fortnight.
const REFERENCE: usize = 21;

/// Settings of one drop rule, in the rule's display unit.
pub struct DropSpec {
    pub rule: RuleId,
    pub enabled: bool,
    pub ratio: f64,
    pub min_weekly_baseline: f64,
    /// Largest chance, for the subscriber's usual days, of a week ranking this low.
    pub max_chance: f64,
    /// Divides raw totals into the display unit.
    pub unit_divisor: f64,
    pub unit: &'static str,
    pub what: &'static str,
}

/// One judged fortnight.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Window {
    /// The last week's and the week before's totals, and the reference's weekly mean.
    last_week: f64,
    week_before: f64,
    weekly: f64,
    /// Chance of ranks this low (or lower) among the subscriber's usual days.
    chance: f64,
}

/// Judges the fortnight ending at `end` against the 21 days before it; `None` when the drop
/// is not large in both weeks or not improbable.
fn judge_window(spec: &DropSpec, values: &impl Fn(Day) -> u64, end: Day) -> Option<Window> {
    let mut recent = [0u64; RECENT];
    for (i, v) in recent.iter_mut().enumerate() {
        *v = values(end - i as i32);
    }
    let mut reference = [0u64; REFERENCE];
    for (i, v) in reference.iter_mut().enumerate() {
        *v = values(end - (RECENT + i) as i32);
    }
    let last_week: u64 = recent[..WEEK].iter().sum();
    let week_before: u64 = recent[WEEK..].iter().sum();
    let weekly = reference.iter().sum::<u64>() as f64 * WEEK as f64 / REFERENCE as f64;
    let earlier_ratio = (1.0 + spec.ratio) / 2.0;
    if weekly / spec.unit_divisor < spec.min_weekly_baseline
        || last_week as f64 >= spec.ratio * weekly
        || week_before as f64 >= earlier_ratio * weekly
    {
        return None;
    }
    // Mann-Whitney U: pairs where the recent day is the larger, ties counted half. Rounded
    // up, so ties never make a fortnight look rarer than it is.
    let mut twice_u = 0usize;
    for &r in &recent {
        for &b in &reference {
            twice_u += usize::from(r > b) * 2 + usize::from(r == b);
        }
    }
    let chance = rank_chance(twice_u.div_ceil(2));
    (chance <= spec.max_chance).then_some(Window {
        last_week: last_week as f64,
        week_before: week_before as f64,
        weekly,
        chance,
    })
}

/// Largest Mann-Whitney U of the 14 recent days against the 21 reference days.
const MAX_U: usize = RECENT * REFERENCE;

/// `P(U <= u)` for the 14 recent days among the 21 reference days, all orders equally
/// likely (no real change). The window sizes are fixed, so the distribution is one table,
/// counted once on first use.
pub fn rank_chance(u: usize) -> f64 {
    static CUMULATIVE: std::sync::OnceLock<[f64; MAX_U + 1]> = std::sync::OnceLock::new();
    CUMULATIVE.get_or_init(cumulative_rank_chances)[u.min(MAX_U)]
}

/// Exact, by counting orders: the largest of the `i + j` days is either a recent day
/// (beating all `j` reference days) or a reference day.
fn cumulative_rank_chances() -> [f64; MAX_U + 1] {
    // counts[j][k]: orders of `i` recent and `j` reference days with U = k.
    let mut counts = vec![[0f64; MAX_U + 1]; REFERENCE + 1];
    for row in counts.iter_mut() {
        row[0] = 1.0; // i = 0: one order, U = 0
    }
    for _i in 1..=RECENT {
        let mut next = vec![[0f64; MAX_U + 1]; REFERENCE + 1];
        next[0][0] = 1.0;
        for j in 1..=REFERENCE {
            for k in 0..=MAX_U {
                let top_recent = if k >= j { counts[j][k - j] } else { 0.0 };
                next[j][k] = top_recent + next[j - 1][k];
            }
        }
        counts = next;
    }
    let orders = &counts[REFERENCE];
    let total: f64 = orders.iter().sum();
    let mut cumulative = [0f64; MAX_U + 1];
    let mut sum = 0.0;
    for (c, n) in cumulative.iter_mut().zip(orders) {
        sum += n;
        *c = sum / total;
    }
    cumulative
}

/// Judges a drop rule at closed day `day`.
pub fn judge_drop(
    spec: &DropSpec,
    state: &SubscriberState,
    day: Day,
    cal: &Calendar,
    metric: impl Fn(&ClosedDay) -> u64,
) -> Verdict {
    if !spec.enabled {
        return Verdict::No;
    }
    if !state.known_since(day - (RECENT + REFERENCE) as i32 + 1) {
        return Verdict::No;
    }
    if cal.any_holiday(day - RECENT as i32 + 1, day) {
        return Verdict::Skipped("holiday");
    }
    let values = |d: Day| metric(state.closed(d));
    let Some(w) = judge_window(spec, &values, day) else {
        return Verdict::No;
    };
    let (recent, before, baseline) = (
        w.last_week / spec.unit_divisor,
        w.week_before / spec.unit_divisor,
        w.weekly / spec.unit_divisor,
    );
    let pct = (1.0 - recent / baseline) * 100.0;
    let odds = (1.0 / w.chance.max(1e-12)).round();
    let summary = format!(
        "{} down {pct:.0}% in the last 7 days and low the week before: {recent:.0} and \
         {before:.0} {} against a usual {baseline:.0} a week (a fortnight this low: 1 in \
         {odds:.0} for this subscriber)",
        spec.what, spec.unit
    );
    let close = cal.day_start_ms(day + 1);
    let mut d = SignalDraft::at(spec.rule, i64::from(day), close, summary)
        .with("last_7_days", round2(recent))
        .with("week_before", round2(before))
        .with("baseline_weekly", round2(baseline))
        .with("ratio", round2(recent / baseline))
        .with("chance", w.chance);
    d.first_seen_ms = cal.day_start_ms(day - RECENT as i32 + 1);
    Verdict::Holds(d)
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
        assert!((rank_chance(0) - 1.0 / orders).abs() < 1e-18);
        // U <= 1: that order plus the one with a single swap.
        assert!((rank_chance(1) - 2.0 / orders).abs() < 1e-18);
        assert!((rank_chance(294) - 1.0).abs() < 1e-12);
        // Symmetric around the mean (147): P(U <= 146) + P(U <= 147) = 1.
        assert!((rank_chance(146) + rank_chance(147) - 1.0).abs() < 1e-12);
    }
}
