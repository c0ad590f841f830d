//! The engine's counters: what the replay summary prints and the service exports as
//! metrics. Kept apart so the engine and the ticket policy both count without depending on
//! each other.

use std::collections::BTreeMap;

use crate::proto::CareTicket;

use super::quality::QualityCounts;
use super::rules::RuleId;
use super::withdraw::Reason;

/// Counters for the summary and, later, metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineStats {
    pub accepted: u64,
    pub duplicates: u64,
    /// De-duplication ids dropped because `engine.max_dedup_ids` was reached: a later
    /// duplicate of one of them is not recognised.
    pub dedup_ids_dropped: u64,
    pub late: u64,
    /// Distinct ticket ids raised.
    pub tickets: u64,
    /// Re-emissions of an existing ticket id with corrected content (late earlier evidence).
    pub ticket_updates: u64,
    pub tickets_by_rule: BTreeMap<&'static str, u64>,
    /// Distinct ticket ids raised, by how `churnwatch_tickets_total` labels them.
    pub tickets_by_route: BTreeMap<TicketRoute, u64>,
    /// Tickets withdrawn (published again as `WITHDRAWN`), by lead rule and reason (see
    /// [`super::withdraw`]).
    pub tickets_withdrawn: BTreeMap<(&'static str, &'static str), u64>,
    /// Signals that raised no ticket, by reason.
    pub suppressed: BTreeMap<&'static str, u64>,
    pub subscribers: usize,
    /// Subscribers evicted from the table, by reason (`churned`, `idle`; see
    /// [`super::eviction`]).
    pub evicted: BTreeMap<&'static str, u64>,
    pub days_closed: u64,
    pub tickets_by_tier: BTreeMap<String, u64>,
    pub tickets_by_queue: BTreeMap<String, u64>,
    /// New tickets no agent will call about, by reason (control group, DND, contact cap).
    pub no_contact: BTreeMap<String, u64>,
    /// Call-center outcomes received, by outcome.
    pub outcomes: BTreeMap<&'static str, u64>,
    /// Outcomes for a ticket id this engine does not know (older than its memory, or another
    /// instance's).
    pub outcomes_unknown_ticket: u64,
    /// Live detection quality: hits, misses, false alarms, lead times, groups (see
    /// [`super::quality`]).
    pub quality: QualityCounts,
}

/// Where a new ticket went: its tier, priority, queue (empty: none) and lead rule (its
/// heaviest signal's).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TicketRoute {
    pub tier: String,
    pub priority: i32,
    pub queue: String,
    pub rule: String,
}

impl EngineStats {
    /// Counts a new ticket by rule, tier, queue and no-contact reason.
    pub(crate) fn count_new(&mut self, t: &CareTicket, rules: &[RuleId]) {
        self.tickets += 1;
        let route = TicketRoute {
            tier: t.tier.clone(),
            priority: t.priority,
            queue: t.queue.clone(),
            rule: t
                .signals
                .first()
                .map(|s| s.rule.clone())
                .unwrap_or_default(),
        };
        *self.tickets_by_route.entry(route).or_insert(0) += 1;
        for r in rules {
            bump(&mut self.tickets_by_rule, r.as_str());
        }
        *self.tickets_by_tier.entry(t.tier.clone()).or_insert(0) += 1;
        let queue = if t.queue.is_empty() {
            "(none)".to_string()
        } else {
            t.queue.clone()
        };
        *self.tickets_by_queue.entry(queue).or_insert(0) += 1;
        if !t.no_contact_reason.is_empty() {
            *self
                .no_contact
                .entry(t.no_contact_reason.clone())
                .or_insert(0) += 1;
        }
    }
}

impl EngineStats {
    /// Counts a withdrawal by the ticket's lead rule and the reason.
    pub(crate) fn count_withdrawn(&mut self, rule: RuleId, reason: Reason) {
        *self
            .tickets_withdrawn
            .entry((rule.as_str(), reason.as_str()))
            .or_insert(0) += 1;
    }

    /// Tickets withdrawn, all rules and reasons.
    pub fn withdrawn_total(&self) -> u64 {
        self.tickets_withdrawn.values().sum()
    }
}

pub(crate) fn bump(map: &mut BTreeMap<&'static str, u64>, key: &'static str) {
    *map.entry(key).or_insert(0) += 1;
}
