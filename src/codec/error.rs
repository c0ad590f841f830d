//! [`DecodeError`]: why a record cannot be used. Its `Display` text is what a person reads
//! next to `FILE:LINE` and what the dead-letter topic carries, so each variant names the
//! problem in the record's own terms and never quotes a whole subscriber number.

/// Why a record cannot be used. The text is the dead-letter reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// The line is not JSON at all (syntax error, truncated line).
    #[error("invalid JSON: {0}")]
    Json(String),
    /// The line is JSON but not the expected message (wrong field type, unknown field).
    #[error("invalid record: {0}")]
    Schema(String),
    #[error("invalid UTF-8 in line")]
    Utf8,
    #[error("invalid protobuf: {0}")]
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
    #[error("unknown record type {0}")]
    UnknownRecordType(i64),
    #[error("unknown record type \"{0}\"")]
    UnknownRecordTypeName(String),
    #[error("account event has no kind")]
    NoKind,
    #[error("bad billing period \"{0}\"")]
    BadPeriod(String),
    #[error("unknown suspension reason {0}")]
    UnknownSuspensionReason(i64),
    #[error("unknown churn kind {0}")]
    UnknownChurnKind(i64),
    #[error("unknown ticket outcome {0}")]
    UnknownOutcome(i64),
    #[error("unknown enum value \"{value}\" in {field}")]
    UnknownEnumName { field: &'static str, value: String },
    #[error("event time {0} is outside 2000..2100")]
    TimeOutOfRange(i64),
    #[error("{field} {value} is outside 2000..2100")]
    FieldTimeOutOfRange { field: &'static str, value: i64 },
}
