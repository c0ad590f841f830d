//! The churn rules: one file per trigger, each documented with its business reason and the
//! seed document it comes from (see `../shared/domain.md`).
//!
//! A rule is a small pure function that judges one situation and, when the condition holds,
//! returns a [`SignalDraft`]. Whether that becomes a ticket (episodes, cooldowns, merging)
//! is the engine's and [`ticket`](super::ticket)'s business, so rules stay testable alone.
//!
//! Rules come in two kinds:
//! - **record rules** judge one record as it arrives (a competitor care call, a suspension,
//!   an overdue bill...) and fire at once;
//! - **close rules** judge closed calendar days or months (streak-free silence, usage drops,
//!   zero-spend months...). A day closes when the watermark passes it, so no late record can
//!   change the verdict afterwards; this is what makes tickets independent of arrival order.

pub mod baseline;
pub mod bill_shock;
pub mod competitor_care;
pub mod complaint_burst;
pub mod contract_expiry;
pub mod data_drop;
pub mod forwarding;
pub mod number_retention;
pub mod offnet_ip_calls;
pub mod overdue_bill;
pub mod payment_reminder;
pub mod silent_days;
pub mod spend_drop;
pub mod sustained_decline;
pub mod voice_drop;
pub mod zero_spend;

use std::fmt;

/// Every rule, by its stable id (used in tickets, metrics and config).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleId {
    CompetitorCareCall,
    OffnetForwardingStreak,
    OffnetForwardingRegistration,
    ZeroSpendMonth,
    SilentDays,
    OverdueBill,
    PaymentReminder,
    SpendDrop,
    VoiceDrop,
    DataDrop,
    SustainedDecline,
    NumberRetentionSuspension,
    ContractExpiry,
    ComplaintBurst,
    OffnetIpCalls,
    BillShock,
}

impl RuleId {
    pub const ALL: [RuleId; 16] = [
        RuleId::CompetitorCareCall,
        RuleId::OffnetForwardingStreak,
        RuleId::OffnetForwardingRegistration,
        RuleId::ZeroSpendMonth,
        RuleId::SilentDays,
        RuleId::OverdueBill,
        RuleId::PaymentReminder,
        RuleId::SpendDrop,
        RuleId::VoiceDrop,
        RuleId::DataDrop,
        RuleId::SustainedDecline,
        RuleId::NumberRetentionSuspension,
        RuleId::ContractExpiry,
        RuleId::ComplaintBurst,
        RuleId::OffnetIpCalls,
        RuleId::BillShock,
    ];

    /// The stable id.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleId::CompetitorCareCall => "competitor_care_call",
            RuleId::OffnetForwardingStreak => "offnet_forwarding_streak",
            RuleId::OffnetForwardingRegistration => "offnet_forwarding_registration",
            RuleId::ZeroSpendMonth => "zero_spend_month",
            RuleId::SilentDays => "silent_days",
            RuleId::OverdueBill => "overdue_bill",
            RuleId::PaymentReminder => "payment_reminder",
            RuleId::SpendDrop => "spend_drop",
            RuleId::VoiceDrop => "voice_drop",
            RuleId::DataDrop => "data_drop",
            RuleId::SustainedDecline => "sustained_decline",
            RuleId::NumberRetentionSuspension => "number_retention_suspension",
            RuleId::ContractExpiry => "contract_expiry",
            RuleId::ComplaintBurst => "complaint_burst",
            RuleId::OffnetIpCalls => "offnet_ip_calls",
            RuleId::BillShock => "bill_shock",
        }
    }

    pub fn parse(s: &str) -> Option<RuleId> {
        RuleId::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// What the agent should do, from the seeds' suggested actions [002][003].
    pub fn suggested_action(self) -> &'static str {
        match self {
            RuleId::CompetitorCareCall => {
                "Call today: the customer has been talking to a competitor. Ask what offer they \
                 were quoted and match it with a retention plan."
            }
            RuleId::OffnetForwardingStreak | RuleId::OffnetForwardingRegistration => {
                "Calls are forwarded to a competitor's number: confirm whether a second SIM is \
                 now the main line and offer a family or multi-SIM bundle."
            }
            RuleId::ZeroSpendMonth | RuleId::SilentDays => {
                "The line has gone quiet: call to learn why usage stopped and offer a better \
                 plan or free minutes."
            }
            RuleId::OverdueBill | RuleId::PaymentReminder => {
                "Remind the customer of the bill before suspension and offer an easy payment \
                 channel or instalments."
            }
            RuleId::SpendDrop | RuleId::VoiceDrop | RuleId::DataDrop | RuleId::SustainedDecline => {
                "Usage is falling: call to learn why and offer a plan that fits, free minutes or \
                 a data pack."
            }
            RuleId::NumberRetentionSuspension => {
                "The number is parked, often the step before porting out: call at once with the \
                 strongest retention offer."
            }
            RuleId::ContractExpiry => {
                "The contract ends soon: offer a renewal with a loyalty benefit before a \
                 competitor does."
            }
            RuleId::ComplaintBurst => {
                "Repeated complaints or faults: make an apology call, confirm the fix and offer a \
                 gift or one-off discount."
            }
            RuleId::OffnetIpCalls => {
                "The customer routes calls over a competitor's IP-call service: offer a \
                 long-distance or roaming pack."
            }
            RuleId::BillShock => {
                "The first bill is far above the plan: explain the charges and move the customer \
                 to a plan that fits."
            }
        }
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signal a rule raised, before it becomes part of a ticket.
#[derive(Clone, Debug, PartialEq)]
pub struct SignalDraft {
    pub rule: RuleId,
    /// Identifies the occurrence: the same episode never raises a second ticket.
    pub episode: i64,
    /// When the condition became true, event time (UTC ms).
    pub raised_ms: i64,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub summary: String,
    pub evidence: Vec<(&'static str, f64)>,
}

impl SignalDraft {
    /// A draft whose first/last seen and raise time are the same instant.
    pub fn at(rule: RuleId, episode: i64, ms: i64, summary: String) -> SignalDraft {
        SignalDraft {
            rule,
            episode,
            raised_ms: ms,
            first_seen_ms: ms,
            last_seen_ms: ms,
            summary,
            evidence: Vec::new(),
        }
    }

    pub fn with(mut self, key: &'static str, value: f64) -> SignalDraft {
        self.evidence.push((key, value));
        self
    }
}

/// Aligned cooldown window of a record rule: at most one ticket per window, and the same
/// window whatever the arrival order.
pub fn window_episode(day: i32, cooldown_days: u32) -> i64 {
    i64::from(day.div_euclid(cooldown_days.max(1) as i32))
}

/// The configured cooldown of a rule, days.
pub fn cooldown_days(cfg: &crate::config::RulesConfig, rule: RuleId) -> u32 {
    match rule {
        RuleId::CompetitorCareCall => cfg.competitor_care_call.cooldown_days,
        RuleId::OffnetForwardingStreak => cfg.offnet_forwarding_streak.cooldown_days,
        RuleId::OffnetForwardingRegistration => cfg.offnet_forwarding_registration.cooldown_days,
        RuleId::ZeroSpendMonth => cfg.zero_spend_month.cooldown_days,
        RuleId::SilentDays => cfg.silent_days.cooldown_days,
        RuleId::OverdueBill => cfg.overdue_bill.cooldown_days,
        RuleId::PaymentReminder => cfg.payment_reminder.cooldown_days,
        RuleId::SpendDrop => cfg.spend_drop.cooldown_days,
        RuleId::VoiceDrop => cfg.voice_drop.cooldown_days,
        RuleId::DataDrop => cfg.data_drop.cooldown_days,
        RuleId::SustainedDecline => cfg.sustained_decline.cooldown_days,
        RuleId::NumberRetentionSuspension => cfg.number_retention_suspension.cooldown_days,
        RuleId::ContractExpiry => cfg.contract_expiry.cooldown_days,
        RuleId::ComplaintBurst => cfg.complaint_burst.cooldown_days,
        RuleId::OffnetIpCalls => cfg.offnet_ip_calls.cooldown_days,
        RuleId::BillShock => cfg.bill_shock.cooldown_days,
    }
}

/// The configured weight of a rule (1-100): its share of the risk score and its rank.
pub fn weight(cfg: &crate::config::RulesConfig, rule: RuleId) -> u32 {
    match rule {
        RuleId::CompetitorCareCall => cfg.competitor_care_call.weight,
        RuleId::OffnetForwardingStreak => cfg.offnet_forwarding_streak.weight,
        RuleId::OffnetForwardingRegistration => cfg.offnet_forwarding_registration.weight,
        RuleId::ZeroSpendMonth => cfg.zero_spend_month.weight,
        RuleId::SilentDays => cfg.silent_days.weight,
        RuleId::OverdueBill => cfg.overdue_bill.weight,
        RuleId::PaymentReminder => cfg.payment_reminder.weight,
        RuleId::SpendDrop => cfg.spend_drop.weight,
        RuleId::VoiceDrop => cfg.voice_drop.weight,
        RuleId::DataDrop => cfg.data_drop.weight,
        RuleId::SustainedDecline => cfg.sustained_decline.weight,
        RuleId::NumberRetentionSuspension => cfg.number_retention_suspension.weight,
        RuleId::ContractExpiry => cfg.contract_expiry.weight,
        RuleId::ComplaintBurst => cfg.complaint_burst.weight,
        RuleId::OffnetIpCalls => cfg.offnet_ip_calls.weight,
        RuleId::BillShock => cfg.bill_shock.weight,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_stable_and_unique() {
        let ids: Vec<_> = RuleId::ALL.iter().map(|r| r.as_str()).collect();
        let mut dedup = ids.clone();
        dedup.sort_unstable();
        dedup.dedup();
        assert_eq!(ids.len(), dedup.len());
        for r in RuleId::ALL {
            assert_eq!(RuleId::parse(r.as_str()), Some(r));
            assert!(!r.suggested_action().is_empty());
        }
    }
}
