//! Dead letters: records the engine cannot use, published to the dead-letter topic so bad
//! input never stops the line.
//!
//! A dead letter keeps the original key, value and headers (as `original.*`), and says
//! where the record came from (`source_topic`, `source_partition`, `source_offset`) and
//! why (`reason`), so an operator can fix and replay it. Its offset advances like any
//! other record's: poison input is deterministic, and redelivery would not help.
//!
//! A dead letter must fit the producer's `message.max.bytes`
//! ([`super::producer::max_message_bytes`]): a record can be dead-lettered *because* it is
//! too large, and a copy that the producer refuses is lost. So the value is cut to what
//! fits beside the key and headers ([`payload_budget`]), and the headers say what was cut:
//! `original.size` (the value's length in bytes), `original.sha256` (hex digest of the
//! full value, to match the copy to its source) and, only when cut, `truncated=true`.
//!
//! A [`Reason`] has two faces. Its text is the `reason` header, for people; its
//! [`Reason::kind`] is the `reason` label of `churnwatch_dead_lettered_total`, one of seven
//! words, so the label stays bounded. Neither holds a subscriber number: no variant
//! carries one, and codec masks digit runs in the decode errors it quotes.

use rdkafka::message::{Headers, Message, OwnedMessage};
use sha2::{Digest, Sha256};

use crate::driver::Reason;

use super::producer::{Kind, Publication};

/// Bytes kept free beside the key, value and headers for the record batch and record
/// framing (librdkafka counts 61 bytes of batch header and at most 30 of record varints).
pub const RECORD_OVERHEAD: usize = 512;
/// Bytes counted per header beside its key and value (two varint lengths, generously).
const HEADER_OVERHEAD: usize = 10;

/// The publication that sends `m` to the dead-letter `topic`, its value cut so that the
/// whole record stays within `max_bytes` (the producer's `message.max.bytes`).
pub(super) fn publication(
    reason: &Reason,
    m: &OwnedMessage,
    topic: &str,
    max_bytes: usize,
) -> Publication {
    let value = m.payload().unwrap_or_default();
    let mut headers: Vec<(String, Vec<u8>)> = vec![
        ("source_topic".into(), m.topic().as_bytes().to_vec()),
        (
            "source_partition".into(),
            m.partition().to_string().into_bytes(),
        ),
        ("source_offset".into(), m.offset().to_string().into_bytes()),
        ("reason".into(), reason.to_string().into_bytes()),
        ("original.size".into(), value.len().to_string().into_bytes()),
        ("original.sha256".into(), sha256_hex(value).into_bytes()),
    ];
    if let Some(h) = m.headers() {
        for i in 0..h.count() {
            let hd = h.get(i);
            headers.push((
                format!("original.{}", hd.key),
                hd.value.map(<[u8]>::to_vec).unwrap_or_default(),
            ));
        }
    }
    let key = m.key().map(<[u8]>::to_vec).unwrap_or_default();
    let truncated = ("truncated".to_string(), b"true".to_vec());
    let mut budget = payload_budget(max_bytes, &key, &headers);
    if value.len() > budget {
        headers.push(truncated);
        budget = payload_budget(max_bytes, &key, &headers);
    }
    Publication {
        kind: Kind::DeadLetter,
        topic: topic.to_string(),
        key,
        payload: value[..value.len().min(budget)].to_vec(),
        headers,
    }
}

/// How many value bytes fit in a record of at most `max_bytes` beside `key` and `headers`
/// (0 if they alone do not fit: the producer then refuses the record, and it is given up).
pub fn payload_budget(max_bytes: usize, key: &[u8], headers: &[(String, Vec<u8>)]) -> usize {
    let headers: usize = headers
        .iter()
        .map(|(k, v)| k.len() + v.len() + HEADER_OVERHEAD)
        .sum();
    max_bytes.saturating_sub(RECORD_OVERHEAD + key.len() + headers)
}

/// The SHA-256 digest of `bytes`, in lower-case hex.
fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::DecodeError;
    use crate::detect::event::MsisdnError;
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::Timestamp;

    #[test]
    fn each_reason_reads_as_before_with_a_bounded_kind() {
        let cases = [
            (Reason::Empty, "empty", "record has no value"),
            (
                Reason::Oversize {
                    bytes: 2_000_000,
                    limit: 1_048_576,
                },
                "oversize",
                "record of 2000000 bytes exceeds 1048576 bytes",
            ),
            (
                Reason::Decode(DecodeError::Protobuf("buffer underflow".into())),
                "decode",
                "invalid protobuf: buffer underflow",
            ),
            (
                Reason::Invalid(DecodeError::Subscriber(MsisdnError::NotDigits)),
                "invalid",
                "subscriber number has a non-digit character",
            ),
            (
                Reason::Future {
                    event_time_ms: 1_773_186_400_000,
                },
                "future",
                "event time 1773186400000 is ahead of the clock",
            ),
            (
                Reason::Late {
                    event_time_ms: 1_772_236_000_000,
                },
                "late",
                "event time 1772236000000 is beyond the allowed lateness (older than the watermark)",
            ),
        ];
        for (reason, kind, text) in cases {
            assert_eq!(reason.kind(), kind);
            assert_eq!(reason.to_string(), text);
            assert_eq!(
                reason.is_malformed(),
                matches!(kind, "empty" | "decode" | "invalid")
            );
        }
    }

    #[test]
    fn a_dead_letter_keeps_the_record_and_says_where_it_came_from_and_why() {
        let headers = OwnedHeaders::new().insert(Header {
            key: "trace",
            value: Some("t-1"),
        });
        let m = OwnedMessage::new(
            Some(b"\xff\xfe".to_vec()),
            Some(b"8613012345678".to_vec()),
            "cdr".into(),
            Timestamp::NotAvailable,
            3,
            41,
            Some(headers),
        );
        let reason = Reason::Decode(DecodeError::Protobuf("bad wire type".into()));
        let p = publication(&reason, &m, "churnwatch-dlq", 1_000_000);
        assert_eq!(p.topic, "churnwatch-dlq");
        assert_eq!(p.key, b"8613012345678");
        assert_eq!(p.payload, b"\xff\xfe");
        let h: Vec<(&str, &[u8])> = p
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        assert_eq!(
            h,
            vec![
                ("source_topic", &b"cdr"[..]),
                ("source_partition", b"3"),
                ("source_offset", b"41"),
                ("reason", b"invalid protobuf: bad wire type"),
                ("original.size", b"2"),
                (
                    "original.sha256",
                    b"b3d510ef04275ca8e698e5b3cbb0ece3949ef9252f0cdc839e9ee347409a2209"
                ),
                ("original.trace", b"t-1"),
            ]
        );
    }

    fn record(value: Vec<u8>) -> OwnedMessage {
        OwnedMessage::new(
            Some(value),
            Some(b"8613012345678".to_vec()),
            "cdr".into(),
            Timestamp::NotAvailable,
            0,
            7,
            None,
        )
    }

    fn header<'a>(p: &'a Publication, key: &str) -> Option<&'a [u8]> {
        p.headers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }

    /// What librdkafka weighs against `message.max.bytes`, at most: key, value, headers
    /// and their framing.
    fn record_size(p: &Publication) -> usize {
        p.key.len()
            + p.payload.len()
            + p.headers
                .iter()
                .map(|(k, v)| k.len() + v.len() + 10)
                .sum::<usize>()
            + 61
            + 30
    }

    #[test]
    fn the_digest_is_sha256_of_the_value_in_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn a_value_too_large_for_the_producer_is_cut_to_fit_and_says_so() {
        let value: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
        let reason = Reason::Oversize {
            bytes: value.len(),
            limit: 1_048_576,
        };
        let p = publication(&reason, &record(value.clone()), "dlq", 1_000_000);
        assert!(record_size(&p) <= 1_000_000, "{}", record_size(&p));
        assert!(p.payload.len() > 990_000, "{}", p.payload.len());
        assert_eq!(p.payload[..], value[..p.payload.len()], "a prefix is kept");
        assert_eq!(header(&p, "truncated"), Some(&b"true"[..]));
        assert_eq!(header(&p, "original.size"), Some(&b"2000000"[..]));
        let digest = sha256_hex(&value);
        assert_eq!(header(&p, "original.sha256"), Some(digest.as_bytes()));
        assert_ne!(
            digest,
            sha256_hex(&p.payload),
            "the digest is of the whole value"
        );
    }

    #[test]
    fn a_value_that_fits_exactly_is_kept_whole_and_one_byte_more_is_cut() {
        // `original.size` has as many digits for any value of 1,000 to 9,999 bytes.
        let probe = publication(&Reason::Empty, &record(vec![1; 1_000]), "dlq", 10_000);
        assert_eq!(header(&probe, "truncated"), None);
        let exact = payload_budget(10_000, &probe.key, &probe.headers);
        assert!((1_000..9_999).contains(&exact), "{exact}");
        let whole = publication(&Reason::Empty, &record(vec![1; exact]), "dlq", 10_000);
        assert_eq!(whole.payload.len(), exact);
        assert_eq!(header(&whole, "truncated"), None);
        assert!(record_size(&whole) <= 10_000);
        let cut = publication(&Reason::Empty, &record(vec![1; exact + 1]), "dlq", 10_000);
        assert!(cut.payload.len() <= exact);
        assert_eq!(header(&cut, "truncated"), Some(&b"true"[..]));
        assert!(record_size(&cut) <= 10_000);
    }

    #[test]
    fn with_no_room_beside_the_key_and_headers_nothing_of_the_value_is_kept() {
        let p = publication(&Reason::Empty, &record(vec![9; 100]), "dlq", 200);
        assert!(p.payload.is_empty());
        assert_eq!(header(&p, "truncated"), Some(&b"true"[..]));
        assert_eq!(header(&p, "original.size"), Some(&b"100"[..]));
    }
}
