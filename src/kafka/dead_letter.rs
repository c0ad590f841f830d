//! Dead letters: records the engine cannot use, published to the dead-letter topic so bad
//! input never stops the line.
//!
//! A dead letter keeps the original key, value and headers (as `original.*`), and says
//! where the record came from (`source_topic`, `source_partition`, `source_offset`) and
//! why (`reason`), so an operator can fix and replay it. Its offset advances like any
//! other record's: poison input is deterministic, and redelivery would not help.
//!
//! A [`Reason`] has two faces. Its text is the `reason` header, for people; its
//! [`Reason::kind`] is the `reason` label of `churnwatch_dead_lettered_total`, one of six
//! words, so the label stays bounded. Neither holds a subscriber number: no variant
//! carries one, and codec masks digit runs in the decode errors it quotes.

use rdkafka::message::{Headers, Message, OwnedMessage};

use super::producer::{Kind, Publication};

pub use crate::driver::Reason;

/// The publication that sends `m` to the dead-letter `topic`.
pub(super) fn publication(reason: &Reason, m: &OwnedMessage, topic: &str) -> Publication {
    let mut headers: Vec<(String, Vec<u8>)> = vec![
        ("source_topic".into(), m.topic().as_bytes().to_vec()),
        (
            "source_partition".into(),
            m.partition().to_string().into_bytes(),
        ),
        ("source_offset".into(), m.offset().to_string().into_bytes()),
        ("reason".into(), reason.to_string().into_bytes()),
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
    Publication {
        kind: Kind::DeadLetter,
        topic: topic.to_string(),
        key: m.key().map(<[u8]>::to_vec).unwrap_or_default(),
        payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        headers,
    }
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
        let p = publication(&reason, &m, "churnwatch-dlq");
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
                ("original.trace", b"t-1"),
            ]
        );
    }
}
