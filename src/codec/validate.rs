//! Step 2 of decoding: generated `proto` messages to validated core events (CDR, account
//! event, ticket outcome). Every check the core relies on is made here, once, for every
//! adapter: ids present, the subscriber an E.164 number, event times in 2000..2100, enums
//! known and billing periods well formed. The core never sees a malformed record.

use super::mask::mask_digit_runs;
use super::DecodeError;
use crate::detect::event::fnv1a;
use crate::detect::{
    AccountEvent, AccountKind, Cdr, CdrKind, ChurnKind, Msisdn, OutcomeKind, Period, RecordKey,
    SuspensionReason, TicketOutcomeEvent,
};
use crate::proto;

/// Event times outside 2000-01-01T00:00Z..2100-01-01T00:00Z are rejected: they are unit
/// mistakes (seconds or microseconds instead of milliseconds) or missing fields.
pub const MIN_EVENT_TIME_MS: i64 = 946_684_800_000;
/// See [`MIN_EVENT_TIME_MS`].
pub const MAX_EVENT_TIME_MS: i64 = 4_102_444_800_000;

fn subscriber(s: &str) -> Result<Msisdn, DecodeError> {
    use crate::detect::event::MsisdnError;
    match Msisdn::parse(s) {
        Ok(m) => Ok(m),
        Err(MsisdnError::Empty) => Err(DecodeError::MissingSubscriber),
        Err(e) => Err(DecodeError::Subscriber(e)),
    }
}

fn event_time(ms: i64) -> Result<i64, DecodeError> {
    if (MIN_EVENT_TIME_MS..MAX_EVENT_TIME_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(DecodeError::TimeOutOfRange(ms))
    }
}

/// A time field other than the event time: 0 means not given; anything else must be a
/// plausible time, like an event time (a value near 8.2e15 used to reach the calendar and
/// panic there, killing the partition task).
fn field_time(field: &'static str, ms: i64) -> Result<i64, DecodeError> {
    if ms == 0 || (MIN_EVENT_TIME_MS..MAX_EVENT_TIME_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(DecodeError::FieldTimeOutOfRange { field, value: ms })
    }
}

/// A bad period is quoted with long digit runs masked: a producer that mixes up its fields
/// may put the subscriber number there, and the text becomes the dead-letter reason.
fn period(s: &str) -> Result<Period, DecodeError> {
    Period::parse(s).ok_or_else(|| DecodeError::BadPeriod(mask_digit_runs(s)))
}

/// Validates a CDR and converts it, borrowing `other_party` from the message.
pub fn cdr_from_proto(m: &proto::CallDetailRecord) -> Result<Cdr<'_>, DecodeError> {
    if m.record_id.is_empty() {
        return Err(DecodeError::MissingId);
    }
    let subscriber = subscriber(&m.subscriber)?;
    let kind = match proto::RecordType::try_from(m.r#type) {
        Ok(proto::RecordType::Unspecified) => return Err(DecodeError::UnspecifiedRecordType),
        Ok(proto::RecordType::VoiceOut) => CdrKind::VoiceOut,
        Ok(proto::RecordType::VoiceIn) => CdrKind::VoiceIn,
        Ok(proto::RecordType::SmsOut) => CdrKind::SmsOut,
        Ok(proto::RecordType::SmsIn) => CdrKind::SmsIn,
        Ok(proto::RecordType::Data) => CdrKind::Data,
        Ok(proto::RecordType::Forward) => CdrKind::Forward,
        Ok(proto::RecordType::ForwardRegistration) => CdrKind::ForwardRegistration,
        Err(_) => return Err(DecodeError::UnknownRecordType(i64::from(m.r#type))),
    };
    let time_ms = event_time(m.event_time_ms)?;
    let call_ref = if m.call_reference.is_empty() {
        0
    } else {
        fnv1a(m.call_reference.as_bytes())
    };
    Ok(Cdr {
        id: RecordKey::of(&m.record_id),
        subscriber,
        time_ms,
        kind,
        other_party: &m.other_party,
        duration_s: m.duration_s,
        data_bytes: m.data_bytes,
        charge: m.charge,
        call_ref,
        partial: m.partial,
        roaming: m.roaming,
    })
}

/// Validates a `TicketOutcome` and converts it for [`Engine::apply_outcome`](crate::detect::Engine::apply_outcome).
pub fn outcome_from_proto(m: &proto::TicketOutcome) -> Result<TicketOutcomeEvent<'_>, DecodeError> {
    if m.ticket_id.is_empty() {
        return Err(DecodeError::MissingId);
    }
    let outcome = match proto::Outcome::try_from(m.outcome) {
        Ok(proto::Outcome::Retained) => OutcomeKind::Retained,
        Ok(proto::Outcome::Declined) => OutcomeKind::Declined,
        Ok(proto::Outcome::Unreachable) => OutcomeKind::Unreachable,
        Ok(proto::Outcome::Churned) => OutcomeKind::Churned,
        _ => return Err(DecodeError::UnknownOutcome(i64::from(m.outcome))),
    };
    Ok(TicketOutcomeEvent {
        ticket_id: &m.ticket_id,
        subscriber: subscriber(&m.subscriber)?,
        time_ms: event_time(m.event_time_ms)?,
        outcome,
    })
}

/// Validates an account event and converts it.
pub fn account_from_proto(m: &proto::AccountEvent) -> Result<AccountEvent, DecodeError> {
    use proto::account_event::Kind;
    if m.event_id.is_empty() {
        return Err(DecodeError::MissingId);
    }
    let subscriber = subscriber(&m.subscriber)?;
    let time_ms = event_time(m.event_time_ms)?;
    let kind = match m.kind.as_ref().ok_or(DecodeError::NoKind)? {
        Kind::BillIssued(b) => AccountKind::BillIssued {
            period: period(&b.period)?,
            amount: b.amount,
            due_time_ms: field_time("due_time_ms", b.due_time_ms)?,
        },
        Kind::Payment(p) => AccountKind::Payment { amount: p.amount },
        Kind::BillOverdue(b) => AccountKind::BillOverdue {
            period: period(&b.period)?,
            amount: b.amount,
            days_overdue: b.days_overdue,
        },
        Kind::TopUp(t) => AccountKind::TopUp {
            amount: t.amount,
            balance_after: t.balance_after,
        },
        Kind::Suspended(s) => {
            let reason = match proto::SuspensionReason::try_from(s.reason) {
                Ok(proto::SuspensionReason::Unspecified) => SuspensionReason::Unspecified,
                Ok(proto::SuspensionReason::NonPayment) => SuspensionReason::NonPayment,
                Ok(proto::SuspensionReason::NumberRetention) => SuspensionReason::NumberRetention,
                Ok(proto::SuspensionReason::CustomerRequest) => SuspensionReason::CustomerRequest,
                Err(_) => return Err(DecodeError::UnknownSuspensionReason(i64::from(s.reason))),
            };
            AccountKind::Suspended { reason }
        }
        Kind::Resumed(_) => AccountKind::Resumed,
        Kind::Contract(c) => AccountKind::ContractUpdated {
            end_time_ms: field_time("end_time_ms", c.end_time_ms)?,
        },
        Kind::PlanChanged(p) => AccountKind::PlanChanged {
            monthly_fee: p.monthly_fee,
        },
        Kind::Complaint(_) => AccountKind::Complaint,
        Kind::FaultReport(_) => AccountKind::FaultReport,
        Kind::Profile(p) => AccountKind::ProfileUpdated {
            do_not_disturb: p.do_not_disturb,
            key_person: p.key_person,
            activated_time_ms: field_time("activated_time_ms", p.activated_time_ms)?,
        },
        Kind::Churned(c) => {
            let kind = match proto::ChurnKind::try_from(c.kind) {
                Ok(proto::ChurnKind::Unspecified) => ChurnKind::Unspecified,
                Ok(proto::ChurnKind::PortOut) => ChurnKind::PortOut,
                Ok(proto::ChurnKind::Deactivated) => ChurnKind::Deactivated,
                Err(_) => return Err(DecodeError::UnknownChurnKind(i64::from(c.kind))),
            };
            AccountKind::Churned { kind }
        }
    };
    Ok(AccountEvent {
        id: RecordKey::of(&m.event_id),
        subscriber,
        time_ms,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::codec::fixtures::{acct_err, cdr_err, GOOD_CDR};
    use crate::codec::{
        account_from_json, account_from_protobuf, cdr_from_json, cdr_from_protobuf,
    };

    #[test]
    fn a_good_cdr_line_becomes_a_core_record() {
        let m = cdr_from_json(GOOD_CDR).unwrap();
        let c = cdr_from_proto(&m).unwrap();
        assert_eq!(c.subscriber, Msisdn(8613012345678));
        assert_eq!(c.kind, CdrKind::VoiceOut);
        assert_eq!(c.other_party, "10086");
        assert_eq!(c.duration_s, 300);
        assert_eq!(c.charge, 30);
        assert_eq!(c.time_ms, 1_775_000_000_000);
        assert_eq!(c.id, RecordKey::of("r1"));
        assert_eq!(c.call_ref, fnv1a(b"c1"));
        assert!(!c.partial);
    }

    #[test]
    fn each_kind_of_bad_cdr_line_has_its_reason() {
        assert!(
            cdr_err("{not json").starts_with("invalid JSON: "),
            "{}",
            cdr_err("{not json")
        );
        let no_sub = GOOD_CDR.replace(r#""subscriber":"8613012345678","#, "");
        assert_eq!(cdr_err(&no_sub), "missing subscriber");
        let abc = GOOD_CDR.replace("8613012345678", "abc");
        assert_eq!(cdr_err(&abc), "subscriber number has a non-digit character");
        let t42 = GOOD_CDR.replace(r#""VOICE_OUT""#, "42");
        assert_eq!(cdr_err(&t42), "unknown record type 42");
        let tname = GOOD_CDR.replace("VOICE_OUT", "TELEPATHY");
        assert_eq!(cdr_err(&tname), "unknown record type \"TELEPATHY\"");
        let unspecified = GOOD_CDR.replace("VOICE_OUT", "RECORD_TYPE_UNSPECIFIED");
        assert_eq!(cdr_err(&unspecified), "record type is unspecified");
        let no_time = GOOD_CDR.replace(r#""eventTimeMs":"1775000000000","#, "");
        assert_eq!(cdr_err(&no_time), "event time 0 is outside 2000..2100");
        let seconds = GOOD_CDR.replace("1775000000000", "1775000000");
        assert_eq!(
            cdr_err(&seconds),
            "event time ******0000 is outside 2000..2100",
            "a value as long as a number is masked, even a time"
        );
        let no_id = GOOD_CDR.replace(r#""recordId":"r1","#, "");
        assert_eq!(cdr_err(&no_id), "missing record id");
        let wrong_type = GOOD_CDR.replace(r#""durationS":300"#, r#""durationS":"long""#);
        assert!(
            cdr_err(&wrong_type).starts_with("invalid record: "),
            "{}",
            cdr_err(&wrong_type)
        );
        let unknown_field = GOOD_CDR.replace(r#""recordId""#, r#""colour":"red","recordId""#);
        assert!(
            cdr_err(&unknown_field).starts_with("invalid record: "),
            "{}",
            cdr_err(&unknown_field)
        );
    }

    #[test]
    fn account_events_convert_with_their_kind() {
        let line = r#"{"eventId":"a1","subscriber":"8613012345678","eventTimeMs":"1775000000000","billOverdue":{"period":"2026-03","amount":"5800","daysOverdue":10}}"#;
        let e = account_from_proto(&account_from_json(line).unwrap()).unwrap();
        assert_eq!(
            e.kind,
            AccountKind::BillOverdue {
                period: Period::parse("2026-03").unwrap(),
                amount: 5800,
                days_overdue: 10
            }
        );
        let line = r#"{"eventId":"a2","subscriber":"8613012345678","eventTimeMs":"1775000000000","suspended":{"reason":"NUMBER_RETENTION"}}"#;
        let e = account_from_proto(&account_from_json(line).unwrap()).unwrap();
        assert_eq!(
            e.kind,
            AccountKind::Suspended {
                reason: SuspensionReason::NumberRetention
            }
        );
        let line = r#"{"eventId":"a3","subscriber":"8613012345678","eventTimeMs":"1775000000000","resumed":{}}"#;
        let e = account_from_proto(&account_from_json(line).unwrap()).unwrap();
        assert_eq!(e.kind, AccountKind::Resumed);
    }

    #[test]
    fn each_kind_of_bad_account_line_has_its_reason() {
        let base = r#"{"eventId":"a1","subscriber":"8613012345678","eventTimeMs":"1775000000000""#;
        assert_eq!(acct_err(&format!("{base}}}")), "account event has no kind");
        assert_eq!(
            acct_err(&format!(
                r#"{base},"billIssued":{{"period":"2026-13","amount":"100"}}}}"#
            )),
            "bad billing period \"2026-13\""
        );
        assert_eq!(
            acct_err(&format!(r#"{base},"suspended":{{"reason":9}}}}"#)),
            "unknown suspension reason 9"
        );
        assert_eq!(
            acct_err(&format!(r#"{base},"churned":{{"kind":7}}}}"#)),
            "unknown churn kind 7"
        );
        assert_eq!(
            acct_err(&format!(r#"{base},"suspended":{{"reason":"HOLIDAY"}}}}"#)),
            "unknown enum value \"HOLIDAY\" in reason"
        );
    }

    #[test]
    fn a_subscriber_number_in_the_period_is_not_quoted() {
        // Found by tests/hostile_input.rs: the reason quoted the period as given.
        let base = r#"{"eventId":"a1","subscriber":"8613012345678","eventTimeMs":"1775000000000""#;
        let line = format!(r#"{base},"billOverdue":{{"period":"8613012345678"}}}}"#);
        assert_eq!(acct_err(&line), "bad billing period \"*********5678\"");
    }

    #[test]
    fn time_fields_beyond_any_calendar_are_errors_and_zero_means_unset() {
        use proto::account_event::Kind;
        let event = |kind| proto::AccountEvent {
            event_id: "a1".into(),
            subscriber: "8613012345678".into(),
            event_time_ms: 1_775_000_000_000,
            kind: Some(kind),
        };
        let huge = 8_200_000_000_000_000;
        let cases = [
            (
                Kind::BillIssued(proto::BillIssued {
                    period: "2026-03".into(),
                    amount: 100,
                    due_time_ms: huge,
                }),
                "due_time_ms",
            ),
            (
                Kind::Contract(proto::ContractUpdated { end_time_ms: huge }),
                "end_time_ms",
            ),
            (
                Kind::Profile(proto::ProfileUpdated {
                    activated_time_ms: -huge,
                    ..Default::default()
                }),
                "activated_time_ms",
            ),
        ];
        for (kind, field) in cases {
            let e = event(kind);
            let err = account_from_proto(&e).unwrap_err();
            assert!(
                matches!(err, DecodeError::FieldTimeOutOfRange { field: f, .. } if f == field),
                "{err}"
            );
            assert!(err.to_string().starts_with(field), "{err}");
        }
        let unset = event(Kind::Contract(proto::ContractUpdated { end_time_ms: 0 }));
        assert!(account_from_proto(&unset).is_ok());
    }

    #[test]
    fn unknown_enum_numbers_from_protobuf_are_errors() {
        let m = proto::CallDetailRecord {
            record_id: "r1".into(),
            subscriber: "8613012345678".into(),
            event_time_ms: 1_775_000_000_000,
            r#type: 42,
            ..Default::default()
        };
        let bytes = m.encode_to_vec();
        let back = cdr_from_protobuf(&bytes).unwrap();
        assert_eq!(
            cdr_from_proto(&back).unwrap_err(),
            DecodeError::UnknownRecordType(42)
        );
        let e = proto::AccountEvent {
            event_id: "a1".into(),
            subscriber: "8613012345678".into(),
            event_time_ms: 1_775_000_000_000,
            kind: Some(proto::account_event::Kind::Churned(proto::Churned {
                kind: 9,
            })),
        };
        let back = account_from_protobuf(&e.encode_to_vec()).unwrap();
        assert_eq!(
            account_from_proto(&back).unwrap_err(),
            DecodeError::UnknownChurnKind(9)
        );
        assert!(matches!(
            cdr_from_protobuf(&[0xff, 0xff]),
            Err(DecodeError::Protobuf(_))
        ));
    }
}
