//! The churn rules: one file per trigger, each documented with its business reason and the
//! seed document it comes from (see `../shared/domain.md`).
//!
//! A rule is a small pure function that judges one situation and, when the condition holds,
//! returns a [`SignalDraft`]. Whether that becomes a ticket (episodes, cooldowns, merging)
//! is the engine's and [`ticket`](super::ticket)'s business, so rules stay testable alone.
//!
//! **The registry** is this module: `registry!` lists every rule once (its id, stable name,
//! config struct and suggested action, all defined in the rule's file), [`RECORD_RULES`]
//! and [`CLOSE_RULES`] say when each is judged, and the engine iterates those tables.
//! Adding a rule: its file, its line in `registry!`, its entry in one table, and its
//! config section.
//!
//! Rules come in two kinds:
//! - **record rules** judge one record as it arrives (a competitor care call, a suspension,
//!   an overdue bill...) and fire at once;
//! - **close rules** judge closed calendar days or months (streak-free silence, usage drops,
//!   zero-spend months...). A day closes when the watermark passes it, so no late record can
//!   change the verdict afterwards; this is what makes tickets independent of arrival order.

/// Defines a rule's config struct (in the rule's own file) with `enabled`, `weight` and
/// `cooldown_days` plus its own thresholds, and `Default` from the given values.
macro_rules! rule_config {
    (
        $(#[$doc:meta])* $name:ident { weight: $w:expr, cooldown_days: $c:expr $(, $(#[$fdoc:meta])* $f:ident : $t:ty = $d:expr )* $(,)? }
        validate($self_:ident, $key:ident) $body:block
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, serde::Deserialize, PartialEq)]
        #[serde(deny_unknown_fields, default)]
        pub struct $name {
            /// A disabled rule raises nothing.
            pub enabled: bool,
            /// Contribution to a ticket's risk score, 1-100; also ranks the ticket's signals.
            pub weight: u32,
            /// Length of the aligned window (operator-local days since 1970) within which the
            /// rule raises at most one ticket per subscriber.
            pub cooldown_days: u32,
            $( $(#[$fdoc])* pub $f: $t, )*
        }
        impl Default for $name {
            fn default() -> Self {
                $name { enabled: true, weight: $w, cooldown_days: $c, $( $f: $d, )* }
            }
        }
        impl $name {
            pub(crate) fn validate(&$self_, $key: &str) -> Result<(), $crate::detect::validate::ConfigError> {
                #[allow(unused_imports)]
                use $crate::detect::validate::{check_fraction, check_positive, check_weight, invalid};
                check_weight($key, $self_.weight)?;
                if $self_.cooldown_days == 0 || $self_.cooldown_days > 366 {
                    return Err(invalid(&format!("{}.cooldown_days", $key), "must be 1 to 366"));
                }
                $body
                Ok(())
            }
        }
    };
}

/// Shared body of the three usage-drop rules [003][002]; a rule's own extra settings follow,
/// each with the check that validates it.
macro_rules! drop_config {
    ($(#[$doc:meta])* $name:ident, $weight:expr, $min:expr, $unit:literal
     $(, $(#[$fdoc:meta])* $f:ident : $t:ty = $d:expr => $check:path)* $(,)?) => {
        rule_config! {
            $(#[$doc])*
            $name { weight: $weight, cooldown_days: 14,
                /// Fire when the last 7 days' total is below this share of the usual week (the
                /// mean 7-day total of the reference days; see `baseline`), the week before
                /// low too; a week alone below half this share can be enough.
                drop_ratio: f64 = 0.5,
                #[doc = concat!("Smallest weekly baseline judged, in ", $unit, ", so light users don't fire.")]
                min_weekly_baseline: f64 = $min,
                /// Largest chance, among the subscriber's own usual days, of a fortnight
                /// ranking this low (rank test; a week alone needs a tenth of it); smaller
                /// is stricter.
                max_chance: f64 = 0.000002 $(, $(#[$fdoc])* $f: $t = $d)* }
            validate(self, key) {
                check_fraction(key, "drop_ratio", self.drop_ratio)?;
                check_positive(key, "min_weekly_baseline", self.min_weekly_baseline)?;
                check_fraction(key, "max_chance", self.max_chance)?;
                $( $check(key, stringify!($f), self.$f)?; )*
            }
        }
    };
}

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

use crate::detect::calendar::{Calendar, Day};
use crate::detect::event::{AccountEvent, AccountKind, Cdr, CdrKind, Period, SuspensionReason};
use crate::detect::state::{flag, SubscriberState};

use baseline::Verdict;
use complaint_burst::Contact;

/// The registry: every rule once, by its id, its stable name (the config section
/// `[rules.<name>]`, the ticket's and the metric's label), its config struct and its
/// suggested action, both defined in the rule's file. Adding a rule: its file, one line here, its config section.
macro_rules! registry {
    ($( $id:ident => $name:ident : $cfg:ty => $action:path ),* $(,)?) => {
        /// Every rule, by its stable id (used in tickets, metrics and config).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum RuleId { $( $id, )* }

        impl RuleId {
            pub const ALL: [RuleId; [$( RuleId::$id ),*].len()] = [$( RuleId::$id ),*];

            /// The stable id.
            pub fn as_str(self) -> &'static str {
                match self { $( RuleId::$id => stringify!($name), )* }
            }

            /// What the agent should do (the rule's `ACTION`).
            pub fn suggested_action(self) -> &'static str {
                match self { $( RuleId::$id => $action, )* }
            }
        }

        /// Per-rule settings; each section is named by the rule's stable id.
        #[derive(Debug, Clone, serde::Deserialize, PartialEq, Default)]
        #[serde(deny_unknown_fields, default)]
        pub struct RulesConfig { $( pub $name: $cfg, )* }

        impl RulesConfig {
            pub(crate) fn validate(&self) -> Result<(), crate::detect::validate::ConfigError> {
                $( self.$name.validate(concat!("rules.", stringify!($name)))?; )*
                Ok(())
            }

            /// The configured cooldown of a rule, days.
            pub fn cooldown_days(&self, rule: RuleId) -> u32 {
                match rule { $( RuleId::$id => self.$name.cooldown_days, )* }
            }

            /// The configured weight of a rule (1-100): its share of the risk score and its
            /// rank.
            pub fn weight(&self, rule: RuleId) -> u32 {
                match rule { $( RuleId::$id => self.$name.weight, )* }
            }
        }
    };
}

registry! {
    CompetitorCareCall => competitor_care_call: competitor_care::CompetitorCareCallConfig => competitor_care::ACTION,
    OffnetForwardingStreak => offnet_forwarding_streak: forwarding::ForwardingStreakConfig => forwarding::STREAK_ACTION,
    OffnetForwardingRegistration => offnet_forwarding_registration: forwarding::ForwardingRegistrationConfig => forwarding::REGISTRATION_ACTION,
    ZeroSpendMonth => zero_spend_month: zero_spend::ZeroSpendMonthConfig => zero_spend::ACTION,
    SilentDays => silent_days: silent_days::SilentDaysConfig => silent_days::ACTION,
    OverdueBill => overdue_bill: overdue_bill::OverdueBillConfig => overdue_bill::ACTION,
    PaymentReminder => payment_reminder: payment_reminder::PaymentReminderConfig => payment_reminder::ACTION,
    SpendDrop => spend_drop: spend_drop::SpendDropConfig => spend_drop::ACTION,
    VoiceDrop => voice_drop: voice_drop::VoiceDropConfig => voice_drop::ACTION,
    DataDrop => data_drop: data_drop::DataDropConfig => data_drop::ACTION,
    SustainedDecline => sustained_decline: sustained_decline::SustainedDeclineConfig => sustained_decline::ACTION,
    NumberRetentionSuspension => number_retention_suspension: number_retention::NumberRetentionConfig => number_retention::ACTION,
    ContractExpiry => contract_expiry: contract_expiry::ContractExpiryConfig => contract_expiry::ACTION,
    ComplaintBurst => complaint_burst: complaint_burst::ComplaintBurstConfig => complaint_burst::ACTION,
    OffnetIpCalls => offnet_ip_calls: offnet_ip_calls::OffnetIpCallsConfig => offnet_ip_calls::ACTION,
    BillShock => bill_shock: bill_shock::BillShockConfig => bill_shock::ACTION,
}

impl RuleId {
    pub fn parse(s: &str) -> Option<RuleId> {
        RuleId::ALL.into_iter().find(|r| r.as_str() == s)
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

/// What a close rule may read about one subscriber when a day (or month) closes.
pub struct CloseInput<'a> {
    pub state: &'a SubscriberState,
    /// The account as it stood at the end of the day judged (pending facts folded in).
    pub account: &'a SubscriberState,
    /// Complaints and fault reports, for subscribers who have any.
    pub contacts: Option<&'a [Contact]>,
    pub day: Day,
    pub month: Period,
    pub cal: &'a Calendar,
}

/// When a close rule runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// At every day close.
    Day,
    /// At the close of a month's last day, before the month is folded into history.
    MonthEnd,
    /// At the close of a month's last day, after the month is folded into history.
    MonthClosed,
}

/// A rule judged at day or month close.
pub struct CloseRule {
    pub id: RuleId,
    pub when: When,
    /// A condition flag: an ongoing condition raises a signal only on the day it starts
    /// (`0`: none, episodes alone de-duplicate).
    pub condition: u16,
    /// Once the condition holds it stays set until the state clears it (month rules), and
    /// the rule is not judged meanwhile.
    pub latch: bool,
    /// The rule's cooldown holds across episodes.
    pub cooldown: bool,
    pub judge: fn(&RulesConfig, &CloseInput<'_>) -> Verdict,
}

/// The close rules, in the order their signals join a ticket. The engine iterates this
/// table; a new close rule is one entry here.
pub static CLOSE_RULES: [CloseRule; 11] = [
    CloseRule {
        id: RuleId::SilentDays,
        when: When::Day,
        condition: flag::SILENT,
        latch: false,
        cooldown: true,
        judge: |c, i| silent_days::judge(&c.silent_days, i.state, i.day, i.cal),
    },
    CloseRule {
        id: RuleId::SpendDrop,
        when: When::Day,
        condition: flag::SPEND_DROP,
        latch: false,
        cooldown: true,
        judge: |c, i| spend_drop::judge(&c.spend_drop, i.state, i.day, i.cal),
    },
    CloseRule {
        id: RuleId::VoiceDrop,
        when: When::Day,
        condition: flag::VOICE_DROP,
        latch: false,
        cooldown: true,
        judge: |c, i| voice_drop::judge(&c.voice_drop, i.state, i.day, i.cal),
    },
    CloseRule {
        id: RuleId::DataDrop,
        when: When::Day,
        condition: flag::DATA_DROP,
        latch: false,
        cooldown: true,
        judge: |c, i| data_drop::judge(&c.data_drop, i.state, i.day, i.cal),
    },
    CloseRule {
        id: RuleId::ContractExpiry,
        when: When::Day,
        condition: 0,
        latch: false,
        cooldown: false,
        judge: |c, i| contract_expiry::judge(&c.contract_expiry, i.state, i.day, i.cal),
    },
    CloseRule {
        id: RuleId::PaymentReminder,
        when: When::Day,
        condition: 0,
        latch: false,
        cooldown: false,
        judge: |c, i| payment_reminder::judge_bill(&c.payment_reminder, i.state, i.day, i.cal),
    },
    CloseRule {
        id: RuleId::BillShock,
        when: When::Day,
        condition: 0,
        latch: false,
        cooldown: false,
        judge: |c, i| bill_shock::judge(&c.bill_shock, i.account, i.day, i.cal),
    },
    CloseRule {
        id: RuleId::ComplaintBurst,
        when: When::Day,
        condition: flag::COMPLAINT_BURST,
        latch: false,
        cooldown: true,
        judge: |c, i| match i.contacts {
            Some(h) => complaint_burst::judge(&c.complaint_burst, h, i.day, i.cal),
            None => Verdict::No,
        },
    },
    CloseRule {
        id: RuleId::OffnetIpCalls,
        when: When::Day,
        condition: flag::IP_CALLS_MONTH,
        latch: true,
        cooldown: false,
        judge: |c, i| {
            let s = i.state.month_ip_s;
            offnet_ip_calls::judge(&c.offnet_ip_calls, s, i.day, i.month, i.cal)
        },
    },
    CloseRule {
        id: RuleId::ZeroSpendMonth,
        when: When::MonthEnd,
        condition: flag::ZERO_MONTH,
        latch: false,
        cooldown: false,
        judge: |c, i| zero_spend::judge(&c.zero_spend_month, i.state, i.month, i.cal),
    },
    CloseRule {
        id: RuleId::SustainedDecline,
        when: When::MonthClosed,
        condition: 0,
        latch: false,
        cooldown: false,
        judge: |c, i| sustained_decline::judge(&c.sustained_decline, i.state, i.month, i.cal),
    },
];

/// What a record rule may read: the record, its operator-local day, and what the engine
/// resolved about it (the competitor a number belongs to, the forwarding run it extends).
pub enum RecordInput<'a> {
    Cdr {
        cdr: &'a Cdr<'a>,
        day: Day,
        /// The competitor's name when the other party is a competitor's mobile.
        competitor: Option<&'a str>,
        /// The run of consecutive days forwarding to a competitor this record extends.
        forward_run: Option<(Day, Day)>,
        cal: &'a Calendar,
    },
    Account {
        event: &'a AccountEvent,
        day: Day,
    },
}

/// A rule judged on one record as it arrives.
pub struct RecordRule {
    pub id: RuleId,
    pub judge: fn(&RulesConfig, &RecordInput<'_>) -> Option<SignalDraft>,
}

/// The record rules the engine runs on every accepted record, in order. A competitor's
/// care call is the one record rule not here: its partial records are joined first, so
/// the engine judges it when the call is whole (see `competitor_care`).
pub static RECORD_RULES: [RecordRule; 5] = [
    RecordRule {
        id: RuleId::OffnetForwardingStreak,
        judge: |c, i| match *i {
            RecordInput::Cdr {
                cdr,
                forward_run: Some((first, last)),
                cal,
                ..
            } if cdr.kind == CdrKind::Forward => {
                forwarding::judge_streak(&c.offnet_forwarding_streak, first, last, cal)
            }
            _ => None,
        },
    },
    RecordRule {
        id: RuleId::OffnetForwardingRegistration,
        judge: |c, i| match *i {
            RecordInput::Cdr {
                cdr,
                day,
                competitor: Some(name),
                ..
            } if cdr.kind == CdrKind::ForwardRegistration => forwarding::judge_registration(
                &c.offnet_forwarding_registration,
                cdr.time_ms,
                day,
                name,
            ),
            _ => None,
        },
    },
    RecordRule {
        id: RuleId::OverdueBill,
        judge: |c, i| match *i {
            RecordInput::Account { event, .. } => match event.kind {
                AccountKind::BillOverdue {
                    period,
                    amount,
                    days_overdue,
                } => overdue_bill::judge(
                    &c.overdue_bill,
                    period,
                    amount,
                    days_overdue,
                    event.time_ms,
                ),
                _ => None,
            },
            _ => None,
        },
    },
    RecordRule {
        id: RuleId::PaymentReminder,
        judge: |c, i| match *i {
            RecordInput::Account { event, day } => match event.kind {
                AccountKind::TopUp { balance_after, .. } => payment_reminder::judge_top_up(
                    &c.payment_reminder,
                    balance_after,
                    event.time_ms,
                    day,
                ),
                _ => None,
            },
            _ => None,
        },
    },
    RecordRule {
        id: RuleId::NumberRetentionSuspension,
        judge: |c, i| match *i {
            RecordInput::Account { event, day } => match event.kind {
                AccountKind::Suspended {
                    reason: SuspensionReason::NumberRetention,
                } => number_retention::judge(&c.number_retention_suspension, event.time_ms, day),
                _ => None,
            },
            _ => None,
        },
    },
];

/// Aligned cooldown window of a record rule: at most one ticket per window, and the same
/// window whatever the arrival order.
pub fn window_episode(day: i32, cooldown_days: u32) -> i64 {
    i64::from(day.div_euclid(cooldown_days.max(1) as i32))
}

/// The configured cooldown of a rule, days.
pub fn cooldown_days(cfg: &RulesConfig, rule: RuleId) -> u32 {
    cfg.cooldown_days(rule)
}

/// The configured weight of a rule (1-100): its share of the risk score and its rank.
pub fn weight(cfg: &RulesConfig, rule: RuleId) -> u32 {
    cfg.weight(rule)
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
