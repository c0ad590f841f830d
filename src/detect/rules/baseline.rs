//! The subscriber's own baseline, shared by the usage-drop rules.
//!
//! "Sudden drop" [003] and "MOU dropping suddenly" [002] are relative to the subscriber, not
//! to the base. A fixed ratio alone is not enough: call durations and data volumes are
//! heavy-tailed, so a moderate caller's week falls below half of the usual by chance
//! several times a year (measured: 14% of loyal subscribers ticketed in 110 days). A drop
//! is therefore judged against the subscriber's own day-to-day variability, and must hold
//! on two consecutive day closes:
//!
//! - **Windows.** The *recent* week is the last 7 closed days; the *reference* is the 21
//!   closed days that end a week before it (days `d-34 ..= d-14`). The week in between is
//!   left out, so a decline that began a few days ago does not pull its own reference down.
//! - **Large.** The recent week is below `drop_ratio` of the reference's weekly mean, and
//!   that mean is at least `min_weekly_baseline` (light users are not judged).
//! - **Improbable for this subscriber.** A rank test (Mann-Whitney) of the 7 recent days
//!   against the reference days: the chance that 7 of the subscriber's usual days rank this
//!   low is at most `max_chance` (default 1 in 20,000). Ranks use no distribution, so a
//!   three-hour call or a streaming evening in the reference moves the test by one rank,
//!   not by its size; a steady heavy user's 60% fall is improbable, a light and erratic
//!   caller's is not.
//! - **Persistent.** Both hold for the windows ending today *and* yesterday (yesterday's
//!   reference is the 20 days still in the ring). The state stays as it is: 35 closed days.
//!
//! The aim is a false-alarm rate under 1 in 1,000 steady subscribers over 110 days. The
//! price is paid in speed on noisy subscribers: usage that stops is caught within about a
//! week; usage falling steadily to a tenth over three weeks is caught, for a subscriber of
//! six calls a day, a few days after the fall ends (simulated median: 2 days after).
//! Closed days only, so the verdict cannot change with late records. A recent window
//! containing a public holiday is not judged: over Spring Festival voice minutes fall
//! nationally and the whole base would fire.

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

/// Days in the recent window.
const RECENT: usize = 7;
/// Days in the reference window (ending a week before the recent week).
const REFERENCE: usize = 21;
/// Days between the reference's last day and the recent week's first.
const GAP: i32 = 7;

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

/// One judged pair of windows.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Window {
    /// Recent 7-day total and the reference's weekly mean, raw units.
    recent: f64,
    weekly: f64,
    /// Chance of ranks this low (or lower) among the subscriber's usual days.
    chance: f64,
}

/// Judges the recent week ending at `end` against `reference_days` reference days ending
/// `GAP + RECENT` days earlier; `None` when the drop is not large or not improbable.
fn judge_window(
    spec: &DropSpec,
    values: &impl Fn(Day) -> u64,
    end: Day,
    reference_days: usize,
) -> Option<Window> {
    let mut recent_days = [0u64; RECENT];
    for (i, v) in recent_days.iter_mut().enumerate() {
        *v = values(end - i as i32);
    }
    let ref_end = end - RECENT as i32 - GAP;
    let mut reference = [0u64; REFERENCE];
    let reference = &mut reference[..reference_days];
    for (i, v) in reference.iter_mut().enumerate() {
        *v = values(ref_end - i as i32);
    }
    let recent: u64 = recent_days.iter().sum();
    let weekly = reference.iter().sum::<u64>() as f64 * RECENT as f64 / reference_days as f64;
    if weekly / spec.unit_divisor < spec.min_weekly_baseline || recent as f64 >= spec.ratio * weekly
    {
        return None;
    }
    // Mann-Whitney U: pairs where the recent day is the larger, ties counted half. Rounded
    // up, so ties never make a week look rarer than it is.
    let mut twice_u = 0usize;
    for &r in &recent_days {
        for &b in reference.iter() {
            twice_u += usize::from(r > b) * 2 + usize::from(r == b);
        }
    }
    let chance = rank_chance(reference_days, twice_u.div_ceil(2));
    (chance <= spec.max_chance).then_some(Window {
        recent: recent as f64,
        weekly,
        chance,
    })
}

/// `P(U <= u)` for 7 recent days among `n` reference days, all orders equally likely (no
/// real change). Exact, by counting orders: the largest of the `i + j` days is either a
/// recent day (beating all `j` reference days) or a reference day.
pub fn rank_chance(n: usize, u: usize) -> f64 {
    const M: usize = RECENT;
    const MAX_U: usize = RECENT * REFERENCE;
    let n = n.min(REFERENCE);
    // counts[j][k]: orders of `i` recent and `j` reference days with U = k.
    let mut counts = [[0f64; MAX_U + 1]; REFERENCE + 1];
    for row in counts.iter_mut() {
        row[0] = 1.0; // i = 0: one order, U = 0
    }
    for _i in 1..=M {
        let mut next = [[0f64; MAX_U + 1]; REFERENCE + 1];
        next[0][0] = 1.0;
        for j in 1..=n {
            for k in 0..=MAX_U {
                let top_recent = if k >= j { counts[j][k - j] } else { 0.0 };
                next[j][k] = top_recent + next[j - 1][k];
            }
        }
        counts = next;
    }
    let total: f64 = counts[n].iter().sum();
    counts[n][..=u.min(MAX_U)].iter().sum::<f64>() / total
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
    if !state.known_since(day - 34) {
        return Verdict::No;
    }
    if cal.any_holiday(day - 7, day) {
        return Verdict::Skipped("holiday");
    }
    let values = |d: Day| metric(state.closed(d));
    let Some(today) = judge_window(spec, &values, day, REFERENCE) else {
        return Verdict::No;
    };
    if judge_window(spec, &values, day - 1, REFERENCE - 1).is_none() {
        return Verdict::No;
    }
    let (recent, baseline) = (
        today.recent / spec.unit_divisor,
        today.weekly / spec.unit_divisor,
    );
    let pct = (1.0 - recent / baseline) * 100.0;
    let odds = (1.0 / today.chance.max(1e-12)).round();
    let summary = format!(
        "{} down {pct:.0}% in the last 7 days: {recent:.0} {} against a usual {baseline:.0} a \
         week (a week this low: 1 in {odds:.0} for this subscriber)",
        spec.what, spec.unit
    );
    let close = cal.day_start_ms(day + 1);
    let mut d = SignalDraft::at(spec.rule, i64::from(day), close, summary)
        .with("last_7_days", round2(recent))
        .with("baseline_weekly", round2(baseline))
        .with("ratio", round2(recent / baseline))
        .with("chance", today.chance);
    d.first_seen_ms = cal.day_start_ms(day - 6);
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
        // All 7 recent days below all 21 reference days: one order in C(28, 7).
        assert!((rank_chance(21, 0) - 1.0 / 1_184_040.0).abs() < 1e-15);
        // U <= 1: that order plus the one with a single swap.
        assert!((rank_chance(21, 1) - 2.0 / 1_184_040.0).abs() < 1e-15);
        assert!((rank_chance(21, 147) - 1.0).abs() < 1e-12);
        // Symmetric around the mean (147 / 2): P(U <= 73) = P(U >= 74) = 1/2.
        assert!((rank_chance(21, 73) - 0.5).abs() < 1e-12);
        assert!((rank_chance(20, 0) - 1.0 / 888_030.0).abs() < 1e-15);
    }
}
