//! Live detection quality as metrics: hits, misses, false alarms and lead times per rule,
//! the figures a retention manager reads beside the tickets (definitions in
//! `crate::detect::quality`).

use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Registry};

use super::{counter, register};

/// Live detection quality (definitions in `crate::detect::quality`), labelled by rule id or
/// group only.
#[derive(Clone)]
pub struct QualityMetrics {
    pub hits: IntCounterVec,
    pub misses: IntCounter,
    pub false_alarms: IntCounterVec,
    pub lead_time: HistogramVec,
    pub ticketed: IntCounterVec,
    pub churned: IntCounterVec,
    pub outcomes: IntCounterVec,
}

/// Seconds in a day, for the lead-time histogram.
pub const DAY_SECONDS: f64 = 86_400.0;

/// The lead time is counted in whole days of event time (the unit retention teams plan
/// in) and exported in seconds, Prometheus' base unit (`promtool check metrics` refuses a
/// `_days` histogram); dashboards show it as a duration.
pub(super) fn quality_metrics(r: &Registry) -> QualityMetrics {
    let buckets = crate::detect::quality::LEAD_BUCKETS
        .map(|d| f64::from(d) * DAY_SECONDS)
        .to_vec();
    let lead_time = HistogramVec::new(
        HistogramOpts::new(
            "churnwatch_quality_lead_time_seconds",
            "Time from a subscriber's last ticket to their churn in whole days (as seconds), per rule on that ticket (hits only).",
        )
        .buckets(buckets),
        &["rule"],
    )
    .expect("valid");
    let misses = IntCounter::new(
        "churnwatch_quality_misses_total",
        "Churned subscribers with no ticket within quality.horizon_days before the churn.",
    )
    .expect("valid");
    QualityMetrics {
        hits: counter(
            r,
            "churnwatch_quality_hits_total",
            "Churns within quality.horizon_days after the subscriber's last ticket, per rule on it.",
            &["rule"],
        ),
        misses: register(r, misses),
        false_alarms: counter(
            r,
            "churnwatch_quality_false_alarms_total",
            "Tickets whose quality.horizon_days passed without churn, per rule on them.",
            &["rule"],
        ),
        lead_time: register(r, lead_time),
        ticketed: counter(
            r,
            "churnwatch_quality_ticketed_total",
            "Subscribers newly ticketed (no ticket within the horizon before), by group (treated, control).",
            &["group"],
        ),
        churned: counter(
            r,
            "churnwatch_quality_churned_total",
            "Ticketed subscribers who churned within the horizon, by group (treated, control).",
            &["group"],
        ),
        outcomes: counter(
            r,
            "churnwatch_quality_outcomes_total",
            "Call-center outcomes joined to their ticket, per rule on it and outcome.",
            &["rule", "outcome"],
        ),
    }
}
