//! Kafka record values: one message per record, in the format `kafka.input_format` names.
//! [`decode_value_into`] decodes a value reusing the message's allocations, and
//! [`peek_event_time`] reads only the event time, so a partition can merge its inputs by
//! event time before it decodes them. A JSON error has its digit runs masked, because the
//! text becomes the dead-letter reason.

use prost::Message;

use super::mask::mask_digit_runs;
use super::DecodeError;
use crate::config::Format;
use crate::proto;

/// Reads one Kafka record value into `msg`, reusing its allocations for protobuf. A JSON
/// error has long digit runs masked, as in [`cdr_from_json`](super::cdr_from_json): the text becomes the
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

/// [`decode_value_into`] for a CDR, the bulk of the input: JSON of the plain shape takes
/// the allocation-free path ([`super::json_fast`]), anything else the generated decoder.
pub fn decode_cdr_into(
    format: Format,
    bytes: &[u8],
    msg: &mut proto::CallDetailRecord,
) -> Result<(), DecodeError> {
    if format == Format::Json && super::json_fast::decode_cdr(bytes, msg) {
        return Ok(());
    }
    decode_value_into(format, bytes, msg)
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
    if let Some(t) = super::json_fast::event_time(bytes) {
        return Some(t);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::fixtures::GOOD_CDR;
    use crate::proto;

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
}
