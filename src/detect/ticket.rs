//! Signals into care tickets: identity, merging, risk score and (first-cut) routing.
//!
//! A ticket is a phone call an agent will make, so it carries what the agent needs: the
//! signals with their evidence, a risk score, a priority, a queue and a suggested action.
//!
//! **Identity.** `ticket_id` is a stable hash (FNV-1a) of the subscriber and the
//! `(rule, episode)` pairs it carries, so the same input gives the same ids whatever the
//! arrival order, and reprocessing after a restart is idempotent downstream. A ticket may be
//! emitted again with the same id when late evidence corrects it (an earlier qualifying call
//! arrived late): consumers treat tickets as upserts keyed by id.
//!
//! **Merging.** Signals raised together for one subscriber (by one record, or by one day
//! close, where silence, usage drops and a contract end often coincide) form one ticket.
//!
//! **Routing** (tier, priority, queue, contact policy) is filled in by the engine from
//! [`tier`](super::tier), [`routing`](super::routing) and [`contact`](super::contact).

use std::collections::BTreeMap;
use std::hash::Hasher;

use super::config::RulesConfig;
use crate::proto::{CareTicket, Priority, Signal, TicketStatus};

use super::event::{Msisdn, StableHasher};
use super::rules::{weight, SignalDraft};

/// The deterministic id of a ticket carrying these signals.
pub fn ticket_id(subscriber: Msisdn, signals: &[SignalDraft]) -> String {
    let mut keys: Vec<(&str, i64)> = signals
        .iter()
        .map(|s| (s.rule.as_str(), s.episode))
        .collect();
    keys.sort_unstable();
    let mut h = StableHasher::default();
    h.write(&subscriber.0.to_le_bytes());
    for (rule, episode) in keys {
        h.write(rule.as_bytes());
        h.write(&[0]);
        h.write(&episode.to_le_bytes());
    }
    format!("cw-{:016x}", h.finish())
}

/// Risk 0-100 from signal weights, combined as independent evidence: 1 - prod(1 - w/100).
pub fn risk_score(weights: impl IntoIterator<Item = u32>) -> u32 {
    let keep: f64 = weights
        .into_iter()
        .map(|w| 1.0 - f64::from(w.min(100)) / 100.0)
        .product();
    ((1.0 - keep) * 100.0).round() as u32
}

/// Builds the ticket for signals raised together (at least one).
pub fn build(cfg: &RulesConfig, subscriber: Msisdn, mut signals: Vec<SignalDraft>) -> CareTicket {
    signals.sort_by(|a, b| {
        weight(cfg, b.rule)
            .cmp(&weight(cfg, a.rule))
            .then(a.rule.cmp(&b.rule))
            .then(a.episode.cmp(&b.episode))
    });
    let id = ticket_id(subscriber, &signals);
    let lead = signals.first().map(|s| s.rule);
    let created = signals.iter().map(|s| s.raised_ms).min().unwrap_or(0);
    let score = risk_score(signals.iter().map(|s| weight(cfg, s.rule)));
    CareTicket {
        ticket_id: id,
        subscriber: subscriber.to_string(),
        created_time_ms: created,
        signals: signals
            .into_iter()
            .map(|s| Signal {
                rule: s.rule.as_str().to_string(),
                summary: s.summary,
                evidence: s
                    .evidence
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect::<BTreeMap<_, _>>(),
                first_seen_ms: s.first_seen_ms,
                last_seen_ms: s.last_seen_ms,
            })
            .collect(),
        tier: String::new(),
        priority: Priority::Unspecified as i32,
        queue: String::new(),
        risk_score: score,
        suggested_action: lead.map_or("", |r| r.suggested_action()).to_string(),
        control_group: false,
        no_contact_reason: String::new(),
        status: TicketStatus::Open as i32,
        status_reason: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::rules::RuleId;

    fn draft(rule: RuleId, episode: i64) -> SignalDraft {
        SignalDraft::at(rule, episode, 1_000, "x".into())
    }

    #[test]
    fn ids_depend_on_subscriber_rules_and_episodes_not_order() {
        let a = ticket_id(
            Msisdn(1),
            &[draft(RuleId::SilentDays, 5), draft(RuleId::SpendDrop, 5)],
        );
        let b = ticket_id(
            Msisdn(1),
            &[draft(RuleId::SpendDrop, 5), draft(RuleId::SilentDays, 5)],
        );
        assert_eq!(a, b);
        assert_ne!(
            a,
            ticket_id(
                Msisdn(2),
                &[draft(RuleId::SilentDays, 5), draft(RuleId::SpendDrop, 5)]
            )
        );
        assert_ne!(
            a,
            ticket_id(
                Msisdn(1),
                &[draft(RuleId::SilentDays, 6), draft(RuleId::SpendDrop, 5)]
            )
        );
        // Pinned: ids leave the process, a change here re-keys every ticket downstream.
        assert_eq!(
            ticket_id(
                Msisdn(8613012345678),
                &[draft(RuleId::CompetitorCareCall, 2945)]
            ),
            "cw-ea4a7a6cd2be5d9e"
        );
    }

    #[test]
    fn risk_combines_weights() {
        assert_eq!(risk_score([]), 0);
        assert_eq!(risk_score([70]), 70);
        assert_eq!(risk_score([50, 50]), 75);
        assert_eq!(risk_score([100, 10]), 100);
    }

    #[test]
    fn the_strongest_signal_leads() {
        let cfg = RulesConfig::default();
        let t = build(
            &cfg,
            Msisdn(8613012345678),
            vec![
                draft(RuleId::PaymentReminder, 1),
                draft(RuleId::NumberRetentionSuspension, 1),
            ],
        );
        assert_eq!(t.signals[0].rule, "number_retention_suspension");
        assert_eq!(t.risk_score, 93);
        assert!(t.suggested_action.contains("parked"));
    }
}
