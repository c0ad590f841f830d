//! Wire bytes to core events and tickets back to wire bytes.
//!
//! Two encodings of the same contract (`proto/churnwatch/v1`): proto3 JSON, one message per
//! line (what people write by hand and what the replay files hold), and protobuf framed as
//! length-delimited records (varint length, then the message; what Kafka and bulk files
//! carry). Decoding is split in two steps so every adapter shares the second one:
//!
//! 1. bytes -> generated `proto` message (`*_from_json`, `*_from_protobuf`);
//! 2. `proto` message -> validated core type ([`cdr_from_proto`], [`account_from_proto`]),
//!    which is where every check the core relies on is made: the core never sees a
//!    malformed record.
//!
//! A [`DecodeError`]'s `Display` text is the human reason printed next to `FILE:LINE` and,
//! later, the dead-letter reason, so it names what is wrong in the record's own terms.

use std::io::{self, BufRead, Write};

use prost::Message;

use crate::config::Format;
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

/// Largest length-delimited protobuf record accepted; a bigger length prefix means the
/// framing is corrupt (our messages are a few hundred bytes).
pub const MAX_FRAME_BYTES: usize = 1 << 20;

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
}

// ---------------------------------------------------------------------------------------
// Step 1: bytes -> proto messages.

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
                    return if path == &["type"] {
                        DecodeError::UnknownRecordTypeName(s.clone())
                    } else {
                        DecodeError::UnknownEnumName {
                            field: path[path.len() - 1],
                            value: s.clone(),
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

/// Replaces all but the last four digits of every run of 7 or more digits with `*`.
fn mask_digit_runs(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        let run = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        if run >= 7 {
            out.push_str(&"*".repeat(run - 4));
            out.push_str(&s[i + run - 4..i + run]);
            i += run;
        } else if run > 0 {
            out.push_str(&s[i..i + run]);
            i += run;
        } else {
            let ch = s[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8().max(1);
        }
    }
    out
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

// ---------------------------------------------------------------------------------------
// Step 2: proto messages -> validated core events.

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

fn period(s: &str) -> Result<Period, DecodeError> {
    Period::parse(s).ok_or_else(|| DecodeError::BadPeriod(s.to_string()))
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
    })
}

/// Validates an account event and converts it.
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
            due_time_ms: b.due_time_ms,
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
            end_time_ms: c.end_time_ms,
        },
        Kind::PlanChanged(p) => AccountKind::PlanChanged {
            monthly_fee: p.monthly_fee,
        },
        Kind::Complaint(_) => AccountKind::Complaint,
        Kind::FaultReport(_) => AccountKind::FaultReport,
        Kind::Profile(p) => AccountKind::ProfileUpdated {
            do_not_disturb: p.do_not_disturb,
            key_person: p.key_person,
            activated_time_ms: p.activated_time_ms,
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

// ---------------------------------------------------------------------------------------
// Kafka record values: one message per record, in the format `kafka.input_format` names.

/// Reads one Kafka record value into `msg`, reusing its allocations for protobuf. A JSON
/// error has long digit runs masked, as in [`cdr_from_json`]: the text becomes the
/// dead-letter reason, and serde quotes the offending value, which may be a subscriber
/// number.
pub fn decode_value_into<M>(format: Format, bytes: &[u8], msg: &mut M) -> Result<(), DecodeError>
where
    M: Message + Default + for<'de> serde::Deserialize<'de>,
{
    match format {
        Format::Protobuf => {
            msg.clear();
            msg.merge(bytes)
                .map_err(|e| DecodeError::Protobuf(e.to_string()))
        }
        Format::Json => {
            let text = std::str::from_utf8(bytes).map_err(|_| DecodeError::Utf8)?;
            *msg = serde_json::from_str(text)
                .map_err(|e| DecodeError::Schema(mask_digit_runs(&e.to_string())))?;
            Ok(())
        }
    }
}

/// The event time of an encoded CDR, account event or outcome without decoding it all
/// (field 3, `event_time_ms`, in every input message), so a partition can merge its inputs
/// by event time before it decodes them. `i64::MIN` when it cannot be read, so a bad record
/// is handled (dead-lettered) first; 0 when a protobuf message leaves the field unset.
pub fn peek_event_time(format: Format, payload: Option<&[u8]>) -> i64 {
    let Some(bytes) = payload else {
        return i64::MIN;
    };
    let time = match format {
        Format::Json => peek_json_event_time(bytes),
        Format::Protobuf => peek_protobuf_event_time(bytes),
    };
    time.unwrap_or(i64::MIN)
}

fn peek_json_event_time(bytes: &[u8]) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct EventTime {
        #[serde(rename = "eventTimeMs", alias = "event_time_ms")]
        t: Option<serde_json::Value>,
    }
    let v = serde_json::from_slice::<EventTime>(bytes).ok()?.t?;
    v.as_i64().or_else(|| v.as_str()?.parse().ok())
}

fn peek_protobuf_event_time(mut b: &[u8]) -> Option<i64> {
    use prost::encoding::decode_varint;
    while !b.is_empty() {
        let key = decode_varint(&mut b).ok()?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                let v = decode_varint(&mut b).ok()?;
                if field == 3 {
                    return Some(v as i64);
                }
            }
            1 if b.len() >= 8 => b = &b[8..],
            2 => {
                let len = usize::try_from(decode_varint(&mut b).ok()?).ok()?;
                b = b.get(len..)?;
            }
            5 if b.len() >= 4 => b = &b[4..],
            _ => return None,
        }
    }
    Some(0)
}

// ---------------------------------------------------------------------------------------
// Tickets out.

/// One ticket as a proto3 JSON line (with the trailing newline).
pub fn ticket_to_json_line(t: &proto::CareTicket) -> String {
    // Serializing generated messages to a String cannot fail: every map key is a string and
    // no field has a fallible Serialize impl. Keep the record rather than panic regardless.
    let mut s = serde_json::to_string(t).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}

/// Writes one ticket as a proto3 JSON line.
pub fn write_ticket_json(w: &mut impl Write, t: &proto::CareTicket) -> io::Result<()> {
    serde_json::to_writer(&mut *w, t).map_err(io::Error::other)?;
    w.write_all(b"\n")
}

/// Writes one ticket as a length-delimited protobuf record.
pub fn write_ticket_protobuf(w: &mut impl Write, t: &proto::CareTicket) -> io::Result<()> {
    write_delimited(w, t)
}

/// Writes any message as a length-delimited protobuf record (varint length, then bytes).
pub fn write_delimited(w: &mut impl Write, m: &impl Message) -> io::Result<()> {
    w.write_all(&m.encode_length_delimited_to_vec())
}

/// What [`read_delimited`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A whole record is in the buffer.
    Record,
    /// Clean end of input, between records.
    End,
}

/// Why a length-delimited stream cannot be read further: once the framing is lost, no
/// later record can be found, so the rest of the input is abandoned (not skipped).
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("truncated record: input ends inside a record")]
    Truncated,
    #[error("record length {0} exceeds the {MAX_FRAME_BYTES}-byte limit (corrupt framing)")]
    TooLong(u64),
    #[error("bad length prefix (varint longer than 10 bytes)")]
    BadVarint,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Reads one length-delimited record into `buf` (cleared first) without loading the rest
/// of the stream.
pub fn read_delimited(r: &mut impl BufRead, buf: &mut Vec<u8>) -> Result<Frame, FrameError> {
    buf.clear();
    let mut len: u64 = 0;
    let mut shift = 0u32;
    let mut first = true;
    loop {
        let mut byte = [0u8; 1];
        match r.read(&mut byte) {
            Ok(0) if first => return Ok(Frame::End),
            Ok(0) => return Err(FrameError::Truncated),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
        first = false;
        if shift >= 64 {
            return Err(FrameError::BadVarint);
        }
        len |= u64::from(byte[0] & 0x7f) << shift;
        shift += 7;
        if byte[0] & 0x80 == 0 {
            break;
        }
    }
    if len > MAX_FRAME_BYTES as u64 {
        return Err(FrameError::TooLong(len));
    }
    buf.resize(len as usize, 0);
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => FrameError::Truncated,
        _ => FrameError::Io(e),
    })?;
    Ok(Frame::Record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peeks_the_event_time_without_a_full_decode() {
        let c = proto::CallDetailRecord {
            record_id: "r".into(),
            subscriber: "8613012345678".into(),
            event_time_ms: 1_773_000_000_123,
            other_party: "10086".into(),
            ..Default::default()
        };
        let peek = peek_event_time;
        assert_eq!(
            peek(Format::Protobuf, Some(&c.encode_to_vec())),
            1_773_000_000_123
        );
        let a = proto::AccountEvent {
            event_id: "e".into(),
            event_time_ms: 42,
            ..Default::default()
        };
        assert_eq!(peek(Format::Protobuf, Some(&a.encode_to_vec())), 42);
        assert_eq!(peek(Format::Protobuf, Some(&[0xff, 0xff])), i64::MIN);
        assert_eq!(peek(Format::Protobuf, Some(&[0x12, 0x05, 0x01])), i64::MIN);
        assert_eq!(peek(Format::Protobuf, None), i64::MIN);
        let json = br#"{"recordId":"x","eventTimeMs":"17"}"#;
        assert_eq!(peek(Format::Json, Some(json)), 17);
        assert_eq!(peek(Format::Json, Some(br#"{"eventTimeMs":18}"#)), 18);
        assert_eq!(peek(Format::Json, Some(b"nope")), i64::MIN);
    }

    #[test]
    fn a_record_value_decodes_in_either_format_and_its_error_hides_subscriber_numbers() {
        let mut m = proto::CallDetailRecord::default();
        decode_value_into(Format::Json, GOOD_CDR.as_bytes(), &mut m).unwrap();
        assert_eq!(m.record_id, "r1");
        let bytes = m.encode_to_vec();
        let mut again = proto::CallDetailRecord::default();
        decode_value_into(Format::Protobuf, &bytes, &mut again).unwrap();
        assert_eq!(again, m);
        let bad = br#"{"recordId":"r1","subscriber":8613012345678}"#;
        let e = decode_value_into(Format::Json, bad, &mut m).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, DecodeError::Schema(_)), "{e:?}");
        assert!(
            !text.contains("8613012345678") && text.contains("5678"),
            "{text}"
        );
        let e = decode_value_into(Format::Protobuf, &[0xff, 0xff], &mut m).unwrap_err();
        assert!(e.to_string().starts_with("invalid protobuf"), "{e}");
        let e = decode_value_into(Format::Json, b"\xff", &mut m).unwrap_err();
        assert_eq!(e, DecodeError::Utf8);
    }

    const GOOD_CDR: &str = r#"{"recordId":"r1","subscriber":"8613012345678","eventTimeMs":"1775000000000","type":"VOICE_OUT","otherParty":"10086","durationS":300,"charge":"30","callReference":"c1"}"#;

    fn cdr_err(line: &str) -> String {
        match cdr_from_json(line) {
            Ok(m) => cdr_from_proto(&m).map(|_| ()).unwrap_err().to_string(),
            Err(e) => e.to_string(),
        }
    }

    fn acct_err(line: &str) -> String {
        match account_from_json(line) {
            Ok(m) => account_from_proto(&m).map(|_| ()).unwrap_err().to_string(),
            Err(e) => e.to_string(),
        }
    }

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
    fn event_time_may_be_a_number_and_enums_may_be_numbers() {
        let line = r#"{"recordId":"r1","subscriber":"8613012345678","eventTimeMs":1775000000000,"type":5,"dataBytes":"1024"}"#;
        let m = cdr_from_json(line).unwrap();
        let c = cdr_from_proto(&m).unwrap();
        assert_eq!(c.kind, CdrKind::Data);
        assert_eq!(c.data_bytes, 1024);
        assert_eq!(c.call_ref, 0, "no call reference means 0");
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
            "event time 1775000000 is outside 2000..2100"
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
    fn reasons_never_quote_a_full_number() {
        let line = GOOD_CDR.replace(r#""8613012345678""#, "8613012345678");
        let reason = cdr_err(&line);
        assert!(reason.contains("*********5678"), "{reason}");
        assert!(!reason.contains("8613012345678"), "{reason}");
        assert_eq!(
            mask_digit_runs("at column 42, 中 123456"),
            "at column 42, 中 123456"
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

    #[test]
    fn outcomes_decode_and_reject_unknown_values() {
        let o = outcome_from_json(r#"{"ticketId":"t1","subscriber":"8613012345678","eventTimeMs":"1775000000000","outcome":"RETAINED"}"#).unwrap();
        assert_eq!(o.outcome(), proto::Outcome::Retained);
        let err = outcome_from_json(r#"{"ticketId":"t1","outcome":12}"#).unwrap_err();
        assert_eq!(err, DecodeError::UnknownOutcome(12));
    }

    #[test]
    fn tickets_round_trip_through_json_and_delimited_protobuf() {
        let t = proto::CareTicket {
            ticket_id: "t1".into(),
            subscriber: "8613012345678".into(),
            created_time_ms: 1_775_000_000_000,
            signals: vec![proto::Signal {
                rule: "overdue_bill".into(),
                ..Default::default()
            }],
            priority: proto::Priority::P2 as i32,
            risk_score: 55,
            ..Default::default()
        };
        let line = ticket_to_json_line(&t);
        assert!(line.ends_with('\n'));
        assert!(line.contains(r#""priority":"P2""#), "{line}");
        let back: proto::CareTicket = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(back, t);

        let mut bytes = Vec::new();
        write_ticket_protobuf(&mut bytes, &t).unwrap();
        write_ticket_protobuf(&mut bytes, &t).unwrap();
        let mut r = io::Cursor::new(bytes);
        let mut buf = Vec::new();
        for _ in 0..2 {
            assert_eq!(read_delimited(&mut r, &mut buf).unwrap(), Frame::Record);
            assert_eq!(proto::CareTicket::decode(buf.as_slice()).unwrap(), t);
        }
        assert_eq!(read_delimited(&mut r, &mut buf).unwrap(), Frame::End);
    }

    #[test]
    fn broken_framing_is_reported_not_skipped() {
        let mut r = io::Cursor::new(vec![5u8, 1, 2]);
        assert!(matches!(
            read_delimited(&mut r, &mut Vec::new()),
            Err(FrameError::Truncated)
        ));
        let mut r = io::Cursor::new(vec![0xffu8, 0xff, 0xff, 0x7f]);
        assert!(matches!(
            read_delimited(&mut r, &mut Vec::new()),
            Err(FrameError::TooLong(_))
        ));
        let mut r = io::Cursor::new(vec![0x80u8; 11]);
        assert!(matches!(
            read_delimited(&mut r, &mut Vec::new()),
            Err(FrameError::BadVarint)
        ));
    }
}
