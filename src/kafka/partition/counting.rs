//! What a partition task counts beside its batches ([`super::batch`]): duplicates, late
//! records and dead letters as they happen, tickets, evictions, outcomes and quality.

use std::collections::BTreeMap;

use crate::detect::quality::{GROUPS, OUTCOMES};
use crate::detect::rules::RuleId;
use crate::detect::stats::TicketRoute;
use crate::detect::{Engine, EngineStats};
use crate::metrics::Metrics;

use super::batch::PartitionHandles;
use super::PartitionTask;
use crate::kafka::partition::worker::Outcome;

/// What of the engine's running totals the metrics already have: each export adds the
/// difference.
pub(super) struct Exporter {
    pub(super) handles: PartitionHandles,
    pub(super) tickets_seen: TicketsSeen,
    /// The engine's eviction counts already exported, by reason.
    pub(super) evicted_seen: BTreeMap<&'static str, u64>,
    /// The engine's outcome counts already exported, by outcome.
    pub(super) outcomes_seen: BTreeMap<&'static str, u64>,
    /// The engine's quality figures already exported.
    pub(super) quality_seen: crate::detect::quality::QualityCounts,
}

impl Exporter {
    /// Starting from what `engine` has counted so far (an engine kept over a rebalance has
    /// counted before: only what follows is new).
    pub(super) fn new(m: &Metrics, partition: i32, engine: &Engine) -> Exporter {
        let stats = engine.stats();
        Exporter {
            handles: PartitionHandles::new(m, partition),
            tickets_seen: TicketsSeen::of(stats),
            evicted_seen: BTreeMap::new(),
            outcomes_seen: stats.outcomes.clone(),
            quality_seen: stats.quality.clone(),
        }
    }
}

impl PartitionTask {
    /// Counts a record that was a duplicate, late or set aside (rare: looked up per record).
    pub(super) fn count_exception(&self, topic: &str, out: &Outcome) {
        let metrics = &self.shared.metrics;
        match out {
            Outcome::Duplicate { .. } => {
                metrics.duplicate_records.with_label_values(&[topic]).inc()
            }
            Outcome::Late { .. } => metrics.late_records.with_label_values(&[topic]).inc(),
            _ => {}
        }
        if let Some(dl) = &out.dead_letter() {
            if dl.is_malformed() {
                metrics.decode_errors.with_label_values(&[topic]).inc();
            }
            metrics
                .dead_lettered
                .with_label_values(&[topic, dl.kind()])
                .inc();
        }
    }

    /// Exports the engine's eviction counts (per reason, summed over partitions).
    pub(super) fn count_evictions(&mut self) {
        let m = &self.shared.metrics;
        for (reason, n) in &self.worker.engine().stats().evicted {
            let seen = self.exporter.evicted_seen.entry(reason).or_insert(0);
            if *n > *seen {
                m.subscribers_evicted
                    .with_label_values(&[reason])
                    .inc_by(n - *seen);
                *seen = *n;
            }
        }
    }

    /// Exports the engine's call-center outcome counts (per outcome, summed over
    /// partitions).
    pub(super) fn count_outcomes(&mut self) {
        let m = &self.shared.metrics;
        for (outcome, n) in &self.worker.engine().stats().outcomes {
            let seen = self.exporter.outcomes_seen.entry(outcome).or_insert(0);
            add(&m.outcomes, &[outcome], *n, seen);
        }
    }

    /// Exports the engine's quality figures: counters by their increase since the last
    /// call, lead times as drained (so none is kept past this record).
    pub(super) fn count_quality(&mut self) {
        let m = &self.shared.metrics.quality;
        self.worker.drain_lead_times(|rule, days| {
            m.lead_time
                .with_label_values(&[rule.as_str()])
                .observe(f64::from(days) * crate::metrics::DAY_SECONDS);
        });
        let engine = self.worker.engine();
        let now = &engine.stats().quality;
        let seen = &mut self.exporter.quality_seen;
        if now.changes == seen.changes {
            return;
        }
        for r in RuleId::ALL {
            let i = r as usize;
            let label = [r.as_str()];
            add(&m.hits, &label, now.hits[i], &mut seen.hits[i]);
            add(
                &m.false_alarms,
                &label,
                now.false_alarms[i],
                &mut seen.false_alarms[i],
            );
            for (k, o) in OUTCOMES.iter().enumerate() {
                let labels = [r.as_str(), o.as_str()];
                add(
                    &m.outcomes,
                    &labels,
                    now.outcomes[i][k],
                    &mut seen.outcomes[i][k],
                );
            }
        }
        for (g, group) in GROUPS.iter().enumerate() {
            add(
                &m.ticketed,
                &[group],
                now.ticketed[g],
                &mut seen.ticketed[g],
            );
            add(&m.churned, &[group], now.churned[g], &mut seen.churned[g]);
        }
        m.misses.inc_by(now.misses - seen.misses);
        seen.misses = now.misses;
        seen.changes = now.changes;
    }

    /// Exports the engine's ticket counts: new tickets by route, the signals on them by
    /// rule, re-sent tickets, withdrawn tickets and suppressed signals. From the engine's counters, not the
    /// tickets published, which also carry re-sent ones (corrections, contact decisions).
    pub(super) fn count_tickets(&mut self) {
        let m = &self.shared.metrics;
        let stats = self.worker.engine().stats();
        let seen = &mut self.exporter.tickets_seen;
        for (reason, n) in &stats.suppressed {
            add(
                &m.suppressed,
                &[reason],
                *n,
                seen.suppressed.entry(reason).or_insert(0),
            );
        }
        if stats.ticket_updates > seen.updates {
            m.ticket_updates.inc_by(stats.ticket_updates - seen.updates);
            seen.updates = stats.ticket_updates;
        }
        for (&(rule, reason), n) in &stats.tickets_withdrawn {
            add(
                &m.tickets_withdrawn,
                &[rule, reason],
                *n,
                seen.withdrawn.entry((rule, reason)).or_insert(0),
            );
        }
        if stats.tickets == seen.tickets {
            return;
        }
        seen.tickets = stats.tickets;
        for (route, n) in &stats.tickets_by_route {
            let Some(was) = seen.routes.get_mut(route) else {
                seen.routes.insert(route.clone(), *n);
                m.tickets.with_label_values(&route_labels(route)).inc_by(*n);
                continue;
            };
            if *n > *was {
                m.tickets
                    .with_label_values(&route_labels(route))
                    .inc_by(n - *was);
                *was = *n;
            }
        }
        for (rule, n) in &stats.tickets_by_rule {
            add(
                &m.ticket_signals,
                &[rule],
                *n,
                seen.by_rule.entry(rule).or_insert(0),
            );
        }
    }
}

/// The labels of `churnwatch_tickets_total`: tier, priority, queue (`none`) and lead rule.
fn route_labels(r: &TicketRoute) -> [&str; 4] {
    let priority = crate::proto::Priority::try_from(r.priority)
        .map(|p| p.as_str_name())
        .unwrap_or("UNSPECIFIED");
    let queue = if r.queue.is_empty() { "none" } else { &r.queue };
    let rule = if r.rule.is_empty() { "none" } else { &r.rule };
    [&r.tier, priority, queue, rule]
}

/// The engine's ticket counts already exported: an engine kept over a rebalance has
/// counted before, and only what follows is new.
#[derive(Debug, Default)]
pub(super) struct TicketsSeen {
    suppressed: BTreeMap<&'static str, u64>,
    routes: BTreeMap<TicketRoute, u64>,
    by_rule: BTreeMap<&'static str, u64>,
    withdrawn: BTreeMap<(&'static str, &'static str), u64>,
    tickets: u64,
    updates: u64,
}

impl TicketsSeen {
    pub(super) fn of(stats: &EngineStats) -> TicketsSeen {
        TicketsSeen {
            suppressed: stats.suppressed.clone(),
            routes: stats.tickets_by_route.clone(),
            by_rule: stats.tickets_by_rule.clone(),
            withdrawn: stats.tickets_withdrawn.clone(),
            tickets: stats.tickets,
            updates: stats.ticket_updates,
        }
    }
}

/// Adds `now - *seen` to the counter of `labels` (if any), and remembers `now`.
fn add(c: &prometheus::IntCounterVec, labels: &[&str], now: u64, seen: &mut u64) {
    if now > *seen {
        c.with_label_values(labels).inc_by(now - *seen);
        *seen = now;
    }
}
