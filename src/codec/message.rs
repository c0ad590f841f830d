//! Step 1 of decoding: bytes to generated `proto` messages, from a proto3 JSON line or from
//! one protobuf message. Only the shape is checked here (and, for outcomes, the enum); the
//! business checks are step 2, in `validate.rs`, so every adapter shares them. When pbjson
//! rejects a line, the error is rewritten to name the field and value in the record's own
//! terms, since that text becomes the dead-letter reason.

use prost::Message;

use super::mask::mask_digit_runs;
use super::DecodeError;
use crate::proto;

/// Reads one `CallDetailRecord` from a proto3 JSON line.
pub fn cdr_from_json(line: &str) -> Result<proto::CallDetailRecord, DecodeError> {
    serde_json::from_str(line).map_err(|e| explain_json(line, e, CDR_ENUMS))
}

/// Reads one `AccountEvent` from a proto3 JSON line.
pub fn account_from_json(line: &str) -> Result<proto::AccountEvent, DecodeError> {
    serde_json::from_str(line).map_err(|e| explain_json(line, e, ACCOUNT_ENUMS))
}

/// Reads one `TicketOutcome` from a proto3 JSON line.
pub fn outcome_from_json(line: &str) -> Result<proto::TicketOutcome, DecodeError> {
    let o: proto::TicketOutcome =
        serde_json::from_str(line).map_err(|e| explain_json(line, e, OUTCOME_ENUMS))?;
    check_outcome(&o)?;
    Ok(o)
}

/// Reads one `CallDetailRecord` from protobuf bytes (one message, no length prefix).
pub fn cdr_from_protobuf(bytes: &[u8]) -> Result<proto::CallDetailRecord, DecodeError> {
    proto::CallDetailRecord::decode(bytes).map_err(|e| DecodeError::Protobuf(e.to_string()))
}

/// Reads one `AccountEvent` from protobuf bytes (one message, no length prefix).
pub fn account_from_protobuf(bytes: &[u8]) -> Result<proto::AccountEvent, DecodeError> {
    proto::AccountEvent::decode(bytes).map_err(|e| DecodeError::Protobuf(e.to_string()))
}

/// Reads one `TicketOutcome` from protobuf bytes (one message, no length prefix).
pub fn outcome_from_protobuf(bytes: &[u8]) -> Result<proto::TicketOutcome, DecodeError> {
    let o =
        proto::TicketOutcome::decode(bytes).map_err(|e| DecodeError::Protobuf(e.to_string()))?;
    check_outcome(&o)?;
    Ok(o)
}

fn check_outcome(o: &proto::TicketOutcome) -> Result<(), DecodeError> {
    proto::Outcome::try_from(o.outcome)
        .map_err(|_| DecodeError::UnknownOutcome(i64::from(o.outcome)))?;
    Ok(())
}

/// Enum-typed JSON fields per message: `(path, error for an unknown number)`. pbjson
/// rejects unknown enum values while parsing, with a message listing every name; on that
/// (rare) path the line is parsed again as plain JSON to name the field and value instead.
type EnumField = (&'static [&'static str], fn(i64) -> DecodeError);

const CDR_ENUMS: &[EnumField] = &[(&["type"], DecodeError::UnknownRecordType)];
const ACCOUNT_ENUMS: &[EnumField] = &[
    (
        &["suspended", "reason"],
        DecodeError::UnknownSuspensionReason,
    ),
    (&["churned", "kind"], DecodeError::UnknownChurnKind),
];
const OUTCOME_ENUMS: &[EnumField] = &[(&["outcome"], DecodeError::UnknownOutcome)];

fn explain_json(line: &str, err: serde_json::Error, enums: &[EnumField]) -> DecodeError {
    use serde_json::error::Category;
    match err.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            return DecodeError::Json(one_line(&err))
        }
        Category::Data => {}
    }
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(line) {
        for (path, unknown_number) in enums {
            let Some(v) = path.iter().try_fold(&value, |v, key| v.get(key)) else {
                continue;
            };
            match v {
                serde_json::Value::Number(n) => match n.as_i64() {
                    Some(n) if i32::try_from(n).is_err() || !enum_number_known(path, n) => {
                        return unknown_number(n);
                    }
                    _ => {}
                },
                serde_json::Value::String(s) if !enum_name_known(path, s) => {
                    // Quoted masked, like serde's own text: it may be a subscriber number.
                    let value = mask_digit_runs(s);
                    return if path == &["type"] {
                        DecodeError::UnknownRecordTypeName(value)
                    } else {
                        DecodeError::UnknownEnumName {
                            field: path[path.len() - 1],
                            value,
                        }
                    };
                }
                _ => {}
            }
        }
    }
    DecodeError::Schema(one_line(&err))
}

/// serde_json's message, without "line 1" (the input is always one line), and with long
/// digit runs masked: serde quotes the offending value, which may be a subscriber number,
/// and this text ends up in terminals and dead-letter topics.
fn one_line(err: &serde_json::Error) -> String {
    mask_digit_runs(&err.to_string().replace(" at line 1 column ", " at column "))
}

fn enum_number_known(path: &[&str], n: i64) -> bool {
    let Ok(n) = i32::try_from(n) else {
        return false;
    };
    match path {
        ["type"] => proto::RecordType::try_from(n).is_ok(),
        ["suspended", "reason"] => proto::SuspensionReason::try_from(n).is_ok(),
        ["churned", "kind"] => proto::ChurnKind::try_from(n).is_ok(),
        ["outcome"] => proto::Outcome::try_from(n).is_ok(),
        _ => true,
    }
}

fn enum_name_known(path: &[&str], s: &str) -> bool {
    match path {
        ["type"] => proto::RecordType::from_str_name(s).is_some(),
        ["suspended", "reason"] => proto::SuspensionReason::from_str_name(s).is_some(),
        ["churned", "kind"] => proto::ChurnKind::from_str_name(s).is_some(),
        ["outcome"] => proto::Outcome::from_str_name(s).is_some(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::cdr_from_proto;
    use crate::codec::fixtures::{cdr_err, GOOD_CDR};
    use crate::detect::CdrKind;

    #[test]
    fn event_time_may_be_a_number_and_enums_may_be_numbers() {
        let line = r#"{"recordId":"r1","subscriber":"8613012345678","eventTimeMs":1775000000000,"type":5,"dataBytes":"1024"}"#;
        let m = cdr_from_json(line).unwrap();
        let c = cdr_from_proto(&m).unwrap();
        assert_eq!(c.kind, CdrKind::Data);
        assert_eq!(c.data_bytes, 1024);
        assert_eq!(c.call_ref, 0, "no call reference means 0");
    }

    #[test]
    fn reasons_never_quote_a_full_number() {
        let line = GOOD_CDR.replace(r#""8613012345678""#, "8613012345678");
        let reason = cdr_err(&line);
        assert!(reason.contains("*********5678"), "{reason}");
        assert!(!reason.contains("8613012345678"), "{reason}");
    }

    #[test]
    fn a_number_in_an_enum_field_is_masked_in_the_reason() {
        for value in ["\"8613012345678\"", "8613012345678"] {
            let line = GOOD_CDR.replace(r#""type":"VOICE_OUT""#, &format!(r#""type":{value}"#));
            assert_ne!(line, GOOD_CDR);
            let reason = cdr_err(&line);
            assert!(reason.starts_with("unknown record type"), "{reason}");
            assert!(!reason.contains("8613012345678"), "{reason}");
        }
    }

    #[test]
    fn outcomes_decode_and_reject_unknown_values() {
        let o = outcome_from_json(r#"{"ticketId":"t1","subscriber":"8613012345678","eventTimeMs":"1775000000000","outcome":"RETAINED"}"#).unwrap();
        assert_eq!(o.outcome(), proto::Outcome::Retained);
        let err = outcome_from_json(r#"{"ticketId":"t1","outcome":12}"#).unwrap_err();
        assert_eq!(err, DecodeError::UnknownOutcome(12));
    }
}
