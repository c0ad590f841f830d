//! Hostile input: nothing a producer can put on an input topic panics the decoders, the
//! driver or the engine. A panic kills a partition task, and the record that caused it is
//! delivered again after the restart, so one bad record would stop a partition for good;
//! the promise is instead that every record is applied or set aside with a dead-letter
//! `Reason`.
//!
//! Two kinds of property, each over 10,000 generated cases:
//!
//! 1. arbitrary bytes (and mutated valid messages) into every decode path, protobuf and
//!    proto3 JSON, CDRs, account events and outcomes: `Ok` or a typed error whose text is
//!    one line;
//! 2. structurally valid messages with arbitrary field values (extreme times, durations,
//!    amounts, enum numbers, subscriber strings), encoded, decoded and fed through
//!    [`Driver::feed`]: each record is applied or turned into a `Reason` whose text never
//!    quotes the subscriber number, even when the number lands in another field.
//!
//! That redelivered records add no tickets is a property in `ordering_props.rs`.
//!
//! Cases are small (a few records per case) so the 10,000 cases per decode path run in
//! under a minute in all, in a debug build. Times are mostly within days of each other: a
//! record decades ahead of the last closes every day in between (about 0.3 s in debug).

use churnwatch::codec::{
    self, decode_value_into, peek_event_time, DecodeError, MAX_EVENT_TIME_MS, MIN_EVENT_TIME_MS,
};
use churnwatch::config::{Config, Format};
use churnwatch::detect::Engine;
use churnwatch::driver::{Driver, Fed, Record};
use churnwatch::proto::{self, account_event::Kind, CareTicket};
use proptest::prelude::*;
use prost::Message;

const CASES: u32 = 10_000;
/// 2026-03-01T00:00Z: records of the sequence properties sit near it.
const BASE_MS: i64 = 1_772_323_200_000;
const DAY_MS: i64 = 86_400_000;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

fn driver() -> Driver {
    let engine = Engine::new(&Config::default(), &[]).expect("default config is valid");
    Driver::new(engine, 3_600_000)
}

// ---------------------------------------------------------------------------------------
// Field values
// ---------------------------------------------------------------------------------------

/// Times: mostly plausible (so records reach the engine), and every edge of the range.
fn any_time() -> impl Strategy<Value = i64> {
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

fn any_amount() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(i64::MIN),
        Just(i64::MAX),
        Just(0i64),
        -1_000_000i64..1_000_000,
        any::<i64>(),
    ]
}

fn any_u32() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), Just(u32::MAX), 0u32..100_000, any::<u32>()]
}

/// Enum numbers: mostly the known ones (`known`), and unknown ones of every size.
fn any_enum(known: std::ops::Range<i32>) -> impl Strategy<Value = i32> {
    prop_oneof![
        8 => known,
        1 => -1i32..10,
        1 => Just(i32::MIN),
        1 => Just(i32::MAX),
        1 => any::<i32>(),
    ]
}

/// Subscriber strings: valid E.164 numbers, and every way one can be wrong.
fn any_subscriber() -> impl Strategy<Value = String> {
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

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![1 => Just(String::new()), 6 => "[a-z0-9-]{1,12}", 2 => ".{0,40}"]
}

/// A number the engine classifies: competitor care lines and mobiles, our own, junk.
fn any_other_party() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("10086".to_string()),
        Just("10010".to_string()),
        Just("13812340002".to_string()),
        Just("1795113812340002".to_string()),
        "[0-9]{0,20}",
        ".{0,20}",
    ]
}

fn any_period() -> impl Strategy<Value = String> {
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
    fn any_cdr()(
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
    ) -> proto::CallDetailRecord {
        proto::CallDetailRecord {
            record_id, subscriber, event_time_ms, r#type, other_party, duration_s,
            data_bytes, charge, call_reference, partial,
        }
    }
}

fn any_kind() -> impl Strategy<Value = Option<Kind>> {
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
    fn any_account()(
        event_id in any_text(),
        subscriber in any_subscriber(),
        event_time_ms in any_time(),
        kind in any_kind(),
    ) -> proto::AccountEvent {
        proto::AccountEvent { event_id, subscriber, event_time_ms, kind }
    }
}

prop_compose! {
    fn any_outcome()(
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
enum Msg {
    Cdr(proto::CallDetailRecord),
    Account(proto::AccountEvent),
    Outcome(proto::TicketOutcome),
}

impl Msg {
    fn record(&self) -> Record<'_> {
        match self {
            Msg::Cdr(m) => Record::Cdr(m),
            Msg::Account(m) => Record::Account(m),
            Msg::Outcome(m) => Record::Outcome(m),
        }
    }

    fn subscriber(&self) -> &str {
        match self {
            Msg::Cdr(m) => &m.subscriber,
            Msg::Account(m) => &m.subscriber,
            Msg::Outcome(m) => &m.subscriber,
        }
    }

    /// A producer's field mix-up: the subscriber number also lands in the one free-text
    /// field a reason may quote (the billing period).
    fn leak_subscriber(&mut self) {
        if let Msg::Account(m) = self {
            match &mut m.kind {
                Some(Kind::BillIssued(b)) => b.period = m.subscriber.clone(),
                Some(Kind::BillOverdue(b)) => b.period = m.subscriber.clone(),
                _ => {}
            }
        }
    }
}

fn any_msg() -> impl Strategy<Value = Msg> {
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

// ---------------------------------------------------------------------------------------
// Checks shared by the properties
// ---------------------------------------------------------------------------------------

/// The runs of 7 or more digits in a subscriber string: what would identify the number.
fn digit_runs(s: &str) -> Vec<&str> {
    s.split(|c: char| !c.is_ascii_digit())
        .filter(|run| run.len() >= 7)
        .collect()
}

fn assert_no_number(reason: &str, subscriber: &str) -> Result<(), TestCaseError> {
    for run in digit_runs(subscriber) {
        prop_assert!(
            !reason.contains(run),
            "reason {reason:?} quotes subscriber {subscriber:?}"
        );
    }
    Ok(())
}

/// A decode error is typed, and its text is a one-line reason.
fn check_decode_error(e: &DecodeError) -> Result<(), TestCaseError> {
    let text = e.to_string();
    prop_assert!(!text.is_empty() && !text.contains('\n'), "{text:?}");
    Ok(())
}

/// Feeds one message through the driver and checks what became of it.
fn feed_checked(
    d: &mut Driver,
    m: &Msg,
    now_ms: Option<i64>,
    tickets: &mut Vec<CareTicket>,
) -> Result<(), TestCaseError> {
    match d.feed(m.record(), now_ms, tickets) {
        Ok(fed) => {
            let t = fed.event_time_ms();
            prop_assert!(
                (MIN_EVENT_TIME_MS..MAX_EVENT_TIME_MS).contains(&t),
                "{fed:?}"
            );
            if matches!(fed, Fed::Outcome { .. }) {
                prop_assert!(matches!(m, Msg::Outcome(_)));
            }
        }
        Err(reason) => {
            let text = reason.to_string();
            prop_assert!(!text.is_empty() && !reason.kind().is_empty());
            assert_no_number(&text, m.subscriber())?;
        }
    }
    Ok(())
}

/// Protobuf round trip: a structurally valid message always decodes back to itself.
fn via_protobuf(m: &Msg) -> Result<Msg, TestCaseError> {
    Ok(match m {
        Msg::Cdr(c) => Msg::Cdr(codec::cdr_from_protobuf(&c.encode_to_vec()).unwrap()),
        Msg::Account(a) => Msg::Account(codec::account_from_protobuf(&a.encode_to_vec()).unwrap()),
        Msg::Outcome(o) => match codec::outcome_from_protobuf(&o.encode_to_vec()) {
            Ok(o) => Msg::Outcome(o),
            // Step 1 already rejects an unknown outcome; feed the message as it was.
            Err(e) => {
                prop_assert!(matches!(e, DecodeError::UnknownOutcome(_)), "{e}");
                assert_no_number(&e.to_string(), &o.subscriber)?;
                m.clone()
            }
        },
    })
}

/// A message as a proto3 JSON line. pbjson refuses to write an enum number it cannot name,
/// so enums are written by hand, as numbers; with `leak`, as the subscriber string instead
/// (a producer's field mix-up: the name is quoted back in the reason).
fn to_json(m: &Msg, leak: bool) -> String {
    let enum_value = |n: i32| match leak {
        true => serde_json::Value::from(m.subscriber()),
        false => serde_json::Value::from(n),
    };
    let v = match m {
        Msg::Cdr(c) => {
            let mut v = serde_json::to_value(proto::CallDetailRecord {
                r#type: 0,
                ..c.clone()
            });
            if let Ok(v) = &mut v {
                v["type"] = enum_value(c.r#type);
            }
            v
        }
        Msg::Account(a) => {
            let mut plain = a.clone();
            let field = match &mut plain.kind {
                Some(Kind::Suspended(s)) => {
                    Some(("suspended", "reason", std::mem::take(&mut s.reason)))
                }
                Some(Kind::Churned(c)) => Some(("churned", "kind", std::mem::take(&mut c.kind))),
                _ => None,
            };
            let mut v = serde_json::to_value(&plain);
            if let (Ok(v), Some((kind, name, n))) = (&mut v, field) {
                v[kind][name] = enum_value(n);
            }
            v
        }
        Msg::Outcome(o) => {
            let mut v = serde_json::to_value(proto::TicketOutcome {
                outcome: 0,
                ..o.clone()
            });
            if let Ok(v) = &mut v {
                v["outcome"] = enum_value(o.outcome);
            }
            v
        }
    };
    v.expect("a message without enums serializes").to_string()
}

/// proto3 JSON round trip: a structurally valid message decodes back to itself, unless an
/// enum value is unknown, which step 1 rejects with a typed error; then the message goes
/// to the driver as it was, so step 2 is still tested.
fn via_json(m: &Msg, leak: bool) -> Result<Msg, TestCaseError> {
    let line = to_json(m, leak);
    let decoded = match m {
        Msg::Cdr(_) => codec::cdr_from_json(&line).map(Msg::Cdr),
        Msg::Account(_) => codec::account_from_json(&line).map(Msg::Account),
        Msg::Outcome(_) => codec::outcome_from_json(&line).map(Msg::Outcome),
    };
    match decoded {
        Ok(back) => {
            prop_assert_eq!(format!("{back:?}"), format!("{m:?}"));
            Ok(back)
        }
        Err(e) => {
            prop_assert!(
                matches!(
                    e,
                    DecodeError::UnknownRecordType(_)
                        | DecodeError::UnknownRecordTypeName(_)
                        | DecodeError::UnknownSuspensionReason(_)
                        | DecodeError::UnknownChurnKind(_)
                        | DecodeError::UnknownEnumName { .. }
                        | DecodeError::UnknownOutcome(_)
                ),
                "a valid message failed its JSON round trip: {e}"
            );
            check_decode_error(&e)?;
            assert_no_number(&e.to_string(), m.subscriber())?;
            Ok(m.clone())
        }
    }
}

// ---------------------------------------------------------------------------------------
// 1. Arbitrary bytes into every decode path
// ---------------------------------------------------------------------------------------

/// Bytes that are mostly not a message: random, or a valid encoding cut and corrupted.
fn hostile_bytes(valid: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let mutated =
        (valid, any::<usize>(), any::<usize>(), any::<u8>()).prop_map(|(mut b, cut, at, byte)| {
            if !b.is_empty() {
                let at = at % b.len();
                b[at] ^= byte;
                b.truncate(cut % (b.len() + 1));
            }
            b
        });
    prop_oneof![prop::collection::vec(any::<u8>(), 0..64), mutated]
}

/// JSON text that is mostly almost right: a valid line cut and corrupted, or random text.
fn hostile_json(valid: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    let mutated = (
        valid,
        any::<usize>(),
        any::<usize>(),
        "[\"{}:,0-9a-z\\\\ -]{0,3}",
    )
        .prop_map(|(s, cut, at, junk)| {
            let bounds: Vec<usize> = s.char_indices().map(|(i, _)| i).chain([s.len()]).collect();
            let at = bounds[at % bounds.len()];
            let mut s = format!("{}{junk}{}", &s[..at], &s[at..]);
            let bounds: Vec<usize> = s.char_indices().map(|(i, _)| i).chain([s.len()]).collect();
            s.truncate(bounds[cut % bounds.len()]);
            s
        });
    prop_oneof![1 => ".{0,40}", 4 => mutated]
}

/// Decodes in both step 1 and, when that succeeds, step 2; neither may panic.
fn decode_both_steps(format: Format, bytes: &[u8]) -> Result<(), TestCaseError> {
    let _ = peek_event_time(format, Some(bytes));
    let mut c = proto::CallDetailRecord::default();
    if let Err(e) = decode_value_into(format, bytes, &mut c) {
        check_decode_error(&e)?;
    }
    let mut a = proto::AccountEvent::default();
    if let Err(e) = decode_value_into(format, bytes, &mut a) {
        check_decode_error(&e)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn arbitrary_bytes_as_a_protobuf_cdr_decode_or_fail_typed(
        bytes in hostile_bytes(any_cdr().prop_map(|m| m.encode_to_vec()))
    ) {
        match codec::cdr_from_protobuf(&bytes) {
            Ok(m) => {
                if let Err(e) = codec::cdr_from_proto(&m) {
                    check_decode_error(&e)?;
                }
            }
            Err(e) => prop_assert!(matches!(e, DecodeError::Protobuf(_)), "{e}"),
        }
        decode_both_steps(Format::Protobuf, &bytes)?;
    }

    #[test]
    fn arbitrary_bytes_as_a_protobuf_account_event_decode_or_fail_typed(
        bytes in hostile_bytes(any_account().prop_map(|m| m.encode_to_vec()))
    ) {
        match codec::account_from_protobuf(&bytes) {
            Ok(m) => {
                if let Err(e) = codec::account_from_proto(&m) {
                    check_decode_error(&e)?;
                }
            }
            Err(e) => prop_assert!(matches!(e, DecodeError::Protobuf(_)), "{e}"),
        }
        decode_both_steps(Format::Protobuf, &bytes)?;
    }

    #[test]
    fn arbitrary_bytes_as_a_protobuf_outcome_decode_or_fail_typed(
        bytes in hostile_bytes(any_outcome().prop_map(|m| m.encode_to_vec()))
    ) {
        match codec::outcome_from_protobuf(&bytes) {
            Ok(m) => {
                if let Err(e) = codec::outcome_from_proto(&m) {
                    check_decode_error(&e)?;
                }
            }
            Err(e) => check_decode_error(&e)?,
        }
    }

    #[test]
    fn arbitrary_text_as_a_json_cdr_decodes_or_fails_typed(
        line in hostile_json(any_cdr().prop_map(|m| to_json(&Msg::Cdr(m), false)))
    ) {
        match codec::cdr_from_json(&line) {
            Ok(m) => {
                if let Err(e) = codec::cdr_from_proto(&m) {
                    check_decode_error(&e)?;
                }
            }
            Err(e) => check_decode_error(&e)?,
        }
        decode_both_steps(Format::Json, line.as_bytes())?;
    }

    #[test]
    fn arbitrary_text_as_a_json_account_event_decodes_or_fails_typed(
        line in hostile_json(any_account().prop_map(|m| to_json(&Msg::Account(m), false)))
    ) {
        match codec::account_from_json(&line) {
            Ok(m) => {
                if let Err(e) = codec::account_from_proto(&m) {
                    check_decode_error(&e)?;
                }
            }
            Err(e) => check_decode_error(&e)?,
        }
        decode_both_steps(Format::Json, line.as_bytes())?;
    }

    #[test]
    fn arbitrary_text_as_a_json_outcome_decodes_or_fails_typed(
        line in hostile_json(any_outcome().prop_map(|m| to_json(&Msg::Outcome(m), false)))
    ) {
        match codec::outcome_from_json(&line) {
            Ok(m) => {
                if let Err(e) = codec::outcome_from_proto(&m) {
                    check_decode_error(&e)?;
                }
            }
            Err(e) => check_decode_error(&e)?,
        }
    }
}

// ---------------------------------------------------------------------------------------
// 2. Valid messages, arbitrary values, through the driver and the engine
// ---------------------------------------------------------------------------------------

fn any_now() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![Just(None), any_time().prop_map(Some)]
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn protobuf_records_with_any_values_are_applied_or_set_aside(
        msgs in prop::collection::vec(any_msg(), 1..5),
        now_ms in any_now(),
        idle_for in 0..60 * DAY_MS,
    ) {
        let mut d = driver();
        let mut tickets = Vec::new();
        for m in &msgs {
            let back = via_protobuf(m)?;
            if !matches!(m, Msg::Outcome(_)) {
                prop_assert_eq!(format!("{back:?}"), format!("{m:?}"));
            }
            feed_checked(&mut d, &back, now_ms, &mut tickets)?;
        }
        // An idle source moves event time on (bounded: each closed day costs a pass).
        if let Some(newest) = d.engine().newest_event_ms() {
            d.advance_to(newest.saturating_add(idle_for), &mut tickets);
        }
        d.finish(&mut tickets);
    }

    #[test]
    fn json_records_with_any_values_are_applied_or_set_aside(
        msgs in prop::collection::vec(any_msg(), 1..5),
        now_ms in any_now(),
        leak in prop::bool::weighted(0.2),
    ) {
        let mut d = driver();
        let mut tickets = Vec::new();
        for m in &msgs {
            let back = via_json(m, leak)?;
            feed_checked(&mut d, &back, now_ms, &mut tickets)?;
        }
        d.finish(&mut tickets);
    }
}
