//! The subscriber's own baseline, shared by the usage-drop rules.
//!
//! "Sudden drop" [003] and "MOU dropping suddenly" [002] are relative to the subscriber, not
//! to the base: the last 7 closed days' total is compared with the mean 7-day total over the
//! 28 days before. Closed days only, so the verdict cannot change with late records. A
//! window containing a public holiday is not judged: over Spring Festival voice minutes fall
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

/// Recent 7-day total and mean weekly baseline of one metric at closed day `day`.
pub fn weekly(state: &SubscriberState, day: Day, metric: impl Fn(&ClosedDay) -> u64) -> (f64, f64) {
    let recent: u64 = (day - 6..=day).map(|d| metric(state.closed(d))).sum();
    let before: u64 = (day - 34..=day - 7).map(|d| metric(state.closed(d))).sum();
    (recent as f64, before as f64 / 4.0)
}

/// Settings of one drop rule, in the rule's display unit.
pub struct DropSpec {
    pub rule: RuleId,
    pub enabled: bool,
    pub ratio: f64,
    pub min_weekly_baseline: f64,
    /// Divides raw totals into the display unit.
    pub unit_divisor: f64,
    pub unit: &'static str,
    pub what: &'static str,
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
    if cal.any_holiday(day - 6, day) {
        return Verdict::Skipped("holiday");
    }
    let (recent, baseline) = weekly(state, day, metric);
    let (recent, baseline) = (recent / spec.unit_divisor, baseline / spec.unit_divisor);
    if baseline < spec.min_weekly_baseline || recent >= spec.ratio * baseline {
        return Verdict::No;
    }
    let pct = (1.0 - recent / baseline) * 100.0;
    let summary = format!(
        "{} down {pct:.0}% in the last 7 days: {recent:.0} {} against a usual {baseline:.0} a week",
        spec.what, spec.unit
    );
    let close = cal.day_start_ms(day + 1);
    let mut d = SignalDraft::at(spec.rule, i64::from(day), close, summary)
        .with("last_7_days", round2(recent))
        .with("baseline_weekly", round2(baseline))
        .with("ratio", round2(recent / baseline));
    d.first_seen_ms = cal.day_start_ms(day - 6);
    Verdict::Holds(d)
}

/// Rounds to two decimals so evidence reads cleanly.
pub fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}
