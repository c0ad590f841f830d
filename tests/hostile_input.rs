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
use churnwatch::driver::{Driver, Fed};
use churnwatch::proto::{self, account_event::Kind, CareTicket};
use proptest::prelude::*;
use prost::Message;

#[path = "common/hostile_messages.rs"]
mod hostile_messages;

use hostile_messages::*;

const CASES: u32 = 10_000;

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
