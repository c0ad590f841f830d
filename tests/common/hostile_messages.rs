//! The generated input of the hostile-input properties: field values that are mostly
//! plausible (so records reach the engine) with every edge of each range, and messages of
//! the three inputs built from them, some with the subscriber number leaked into a
//! free-text field.

use churnwatch::codec::{MAX_EVENT_TIME_MS, MIN_EVENT_TIME_MS};
use churnwatch::driver::Record;
use churnwatch::proto::{self, account_event::Kind};
use proptest::prelude::*;

/// 2026-03-01T00:00Z: records of the sequence properties sit near it.
pub const BASE_MS: i64 = 1_772_323_200_000;
pub const DAY_MS: i64 = 86_400_000;

// ---------------------------------------------------------------------------------------
// Field values
// ---------------------------------------------------------------------------------------

/// Times: mostly plausible (so records reach the engine), and every edge of the range.
pub fn any_time() -> impl Strategy<Value = i64> {
    prop_oneof![
        1 => Just(i64::MIN),
        1 => Just(i64::MAX),
        1 => Just(0i64),
        1 => Just(-1i64),
        1 => Just(MIN_EVENT_TIME_MS - 1),
        1 => Just(MIN_EVENT_TIME_MS),
        1 => Just(MAX_EVENT_TIME_MS - 1),
        1 => Just(MAX_EVENT_TIME_MS),
        1 => Just(8_200_000_000_000_000i64),
        1 => MIN_EVENT_TIME_MS..MAX_EVENT_TIME_MS,
        40 => (BASE_MS - 3 * DAY_MS)..(BASE_MS + 3 * DAY_MS),
        1 => any::<i64>(),
    ]
}

pub fn any_amount() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(i64::MIN),
        Just(i64::MAX),
        Just(0i64),
        -1_000_000i64..1_000_000,
        any::<i64>(),
    ]
}

pub fn any_u32() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), Just(u32::MAX), 0u32..100_000, any::<u32>()]
}

/// Enum numbers: mostly the known ones (`known`), and unknown ones of every size.
pub fn any_enum(known: std::ops::Range<i32>) -> impl Strategy<Value = i32> {
    prop_oneof![
        8 => known,
        1 => -1i32..10,
        1 => Just(i32::MIN),
        1 => Just(i32::MAX),
        1 => any::<i32>(),
    ]
}

/// Subscriber strings: valid E.164 numbers, and every way one can be wrong.
pub fn any_subscriber() -> impl Strategy<Value = String> {
    prop_oneof![
        16 => "[1-9][0-9]{6,14}",
        2 => "\\+[1-9][0-9]{6,14}",
        1 => Just(String::new()),
        1 => "[1-9][0-9]{15,40}",
        1 => "0[0-9]{6,14}",
        1 => "[0-9]{3,10}[a-z +-][0-9]{3,10}",
        1 => ".{0,20}",
    ]
}

pub fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![1 => Just(String::new()), 6 => "[a-z0-9-]{1,12}", 2 => ".{0,40}"]
}

/// A number the engine classifies: competitor care lines and mobiles, our own, junk.
pub fn any_other_party() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("10086".to_string()),
        Just("10010".to_string()),
        Just("13812340002".to_string()),
        Just("1795113812340002".to_string()),
        "[0-9]{0,20}",
        ".{0,20}",
    ]
}

pub fn any_period() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("2026-02".to_string()),
        1 => "[0-9]{4}-[0-9]{2}",
        1 => "-?[0-9]{1,20}-[0-9]{1,5}",
        1 => ".{0,12}",
    ]
}

// ---------------------------------------------------------------------------------------
// Structurally valid messages with arbitrary field values
// ---------------------------------------------------------------------------------------

prop_compose! {
    pub fn any_cdr()(
        record_id in any_text(),
        subscriber in any_subscriber(),
        event_time_ms in any_time(),
        r#type in any_enum(1..8),
        other_party in any_other_party(),
        duration_s in any_u32(),
        data_bytes in prop_oneof![Just(u64::MAX), Just(0u64), any::<u64>()],
        charge in any_amount(),
        call_reference in any_text(),
        partial in any::<bool>(),
        roaming in any::<bool>(),
    ) -> proto::CallDetailRecord {
        proto::CallDetailRecord {
            record_id, subscriber, event_time_ms, r#type, other_party, duration_s,
            data_bytes, charge, call_reference, partial, roaming,
        }
    }
}

pub fn any_kind() -> impl Strategy<Value = Option<Kind>> {
    let kinds = prop_oneof![
        (any_period(), any_amount(), any_time()).prop_map(|(period, amount, due_time_ms)| {
            Kind::BillIssued(proto::BillIssued {
                period,
                amount,
                due_time_ms,
            })
        }),
        any_amount().prop_map(|amount| Kind::Payment(proto::PaymentReceived { amount })),
        (any_period(), any_amount(), any_u32()).prop_map(|(period, amount, days_overdue)| {
            Kind::BillOverdue(proto::BillOverdue {
                period,
                amount,
                days_overdue,
            })
        }),
        (any_amount(), any_amount()).prop_map(|(amount, balance_after)| {
            Kind::TopUp(proto::TopUp {
                amount,
                balance_after,
            })
        }),
        any_enum(0..4).prop_map(|reason| Kind::Suspended(proto::Suspended { reason })),
        Just(Kind::Resumed(proto::Resumed {})),
        any_time().prop_map(|end_time_ms| Kind::Contract(proto::ContractUpdated { end_time_ms })),
        (any_text(), any_amount()).prop_map(|(plan_id, monthly_fee)| {
            Kind::PlanChanged(proto::PlanChanged {
                plan_id,
                monthly_fee,
            })
        }),
        any_text().prop_map(|category| Kind::Complaint(proto::Complaint { category })),
        any_text().prop_map(|category| Kind::FaultReport(proto::FaultReport { category })),
        (any::<bool>(), any::<bool>(), any_time()).prop_map(|(dnd, key, activated)| {
            Kind::Profile(proto::ProfileUpdated {
                do_not_disturb: dnd,
                key_person: key,
                activated_time_ms: activated,
            })
        }),
        any_enum(0..3).prop_map(|kind| Kind::Churned(proto::Churned { kind })),
    ];
    prop_oneof![1 => Just(None), 12 => kinds.prop_map(Some)]
}

prop_compose! {
    pub fn any_account()(
        event_id in any_text(),
        subscriber in any_subscriber(),
        event_time_ms in any_time(),
        kind in any_kind(),
    ) -> proto::AccountEvent {
        proto::AccountEvent { event_id, subscriber, event_time_ms, kind }
    }
}

prop_compose! {
    pub fn any_outcome()(
        ticket_id in any_text(),
        subscriber in any_subscriber(),
        event_time_ms in any_time(),
        outcome in any_enum(1..5),
    ) -> proto::TicketOutcome {
        proto::TicketOutcome { ticket_id, subscriber, event_time_ms, outcome }
    }
}

/// One input message of any of the three inputs.
#[derive(Debug, Clone)]
pub enum Msg {
    Cdr(proto::CallDetailRecord),
    Account(proto::AccountEvent),
    Outcome(proto::TicketOutcome),
}

impl Msg {
    pub fn record(&self) -> Record<'_> {
        match self {
            Msg::Cdr(m) => Record::Cdr(m),
            Msg::Account(m) => Record::Account(m),
            Msg::Outcome(m) => Record::Outcome(m),
        }
    }

    pub fn subscriber(&self) -> &str {
        match self {
            Msg::Cdr(m) => &m.subscriber,
            Msg::Account(m) => &m.subscriber,
            Msg::Outcome(m) => &m.subscriber,
        }
    }

    /// A producer's field mix-up: the subscriber number also lands in the one free-text
    /// field a reason may quote (the billing period).
    pub fn leak_subscriber(&mut self) {
        if let Msg::Account(m) = self {
            match &mut m.kind {
                Some(Kind::BillIssued(b)) => b.period = m.subscriber.clone(),
                Some(Kind::BillOverdue(b)) => b.period = m.subscriber.clone(),
                _ => {}
            }
        }
    }
}

pub fn any_msg() -> impl Strategy<Value = Msg> {
    let msg = prop_oneof![
        3 => any_cdr().prop_map(Msg::Cdr),
        3 => any_account().prop_map(Msg::Account),
        1 => any_outcome().prop_map(Msg::Outcome),
    ];
    (msg, prop::bool::weighted(0.2)).prop_map(|(mut m, leak)| {
        if leak {
            m.leak_subscriber();
        }
        m
    })
}
