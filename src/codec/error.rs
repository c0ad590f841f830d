//! [`DecodeError`]: why a record cannot be used. Its `Display` text is what a person reads
//! next to `FILE:LINE` and what the dead-letter topic carries, so each variant names the
//! problem in the record's own terms and never quotes a whole subscriber number: every
//! value it quotes from the record (a string, an out-of-range number or time, a parser's
//! message) goes through [`mask_digit_runs`] as it is displayed, because a number can land
//! in any field (a swapped column puts it in `eventTimeMs` or `type`).

use super::mask::mask_digit_runs;

/// Why a record cannot be used. The text is the dead-letter reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// The line is not JSON at all (syntax error, truncated line).
    #[error("invalid JSON: {}", masked(.0))]
    Json(String),
    /// The line is JSON but not the expected message (wrong field type, unknown field).
    #[error("invalid record: {}", masked(.0))]
    Schema(String),
    #[error("invalid UTF-8 in line")]
    Utf8,
    #[error("invalid protobuf: {}", masked(.0))]
    Protobuf(String),
    #[error("missing record id")]
    MissingId,
    #[error("missing subscriber")]
    MissingSubscriber,
    /// The subscriber field is present but not an E.164 number.
    #[error("{0}")]
    Subscriber(crate::detect::event::MsisdnError),
    #[error("record type is unspecified")]
    UnspecifiedRecordType,
    #[error("unknown record type {}", masked(.0))]
    UnknownRecordType(i64),
    #[error("unknown record type \"{}\"", masked(.0))]
    UnknownRecordTypeName(String),
    #[error("account event has no kind")]
    NoKind,
    #[error("bad billing period \"{}\"", masked(.0))]
    BadPeriod(String),
    #[error("unknown suspension reason {}", masked(.0))]
    UnknownSuspensionReason(i64),
    #[error("unknown churn kind {}", masked(.0))]
    UnknownChurnKind(i64),
    #[error("unknown ticket outcome {}", masked(.0))]
    UnknownOutcome(i64),
    #[error("unknown enum value \"{}\" in {field}", masked(value))]
    UnknownEnumName { field: &'static str, value: String },
    #[error("event time {} is outside 2000..2100", masked(.0))]
    TimeOutOfRange(i64),
    #[error("{field} {} is outside 2000..2100", masked(value))]
    FieldTimeOutOfRange { field: &'static str, value: i64 },
}

/// A quoted value as a reason may show it: digit runs as long as a number masked.
fn masked(v: &impl std::fmt::Display) -> String {
    mask_digit_runs(&v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NUMBER: &str = "8613012345678";
    const N: i64 = 8_613_012_345_678;

    #[test]
    fn no_variant_shows_a_whole_number_it_was_given() {
        let s = || NUMBER.to_string();
        let all = [
            DecodeError::Json(s()),
            DecodeError::Schema(s()),
            DecodeError::Protobuf(s()),
            DecodeError::UnknownRecordType(N),
            DecodeError::UnknownRecordTypeName(s()),
            DecodeError::BadPeriod(s()),
            DecodeError::UnknownSuspensionReason(N),
            DecodeError::UnknownChurnKind(N),
            DecodeError::UnknownOutcome(N),
            DecodeError::UnknownEnumName {
                field: "reason",
                value: s(),
            },
            DecodeError::TimeOutOfRange(N),
            DecodeError::FieldTimeOutOfRange {
                field: "dueDateMs",
                value: N,
            },
        ];
        for e in all {
            let text = e.to_string();
            assert!(!text.contains(NUMBER), "{e:?}: {text}");
            assert!(text.contains("*********5678"), "{e:?}: {text}");
        }
    }

    #[test]
    fn short_values_are_shown_as_they_are() {
        assert_eq!(
            DecodeError::UnknownRecordType(42).to_string(),
            "unknown record type 42"
        );
        assert_eq!(
            DecodeError::BadPeriod("2026-13".into()).to_string(),
            "bad billing period \"2026-13\""
        );
    }
}
