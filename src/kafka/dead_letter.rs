//! Dead letters: records the engine cannot use, published to the dead-letter topic so bad
//! input never stops the line.
//!
//! A dead letter keeps the original key, value and headers (as `original.*`), and says
//! where the record came from (`source_topic`, `source_partition`, `source_offset`) and
//! why (`reason`), so an operator can fix and replay it. Its offset advances like any
//! other record's: poison input is deterministic, and redelivery would not help.

use rdkafka::message::{Headers, Message, OwnedMessage};

use super::producer::Publication;
use super::worker::DeadLetter;

/// The publication that sends `m` to the dead-letter `topic`.
pub(super) fn publication(dl: &DeadLetter, m: &OwnedMessage, topic: &str) -> Publication {
    let mut headers: Vec<(String, Vec<u8>)> = vec![
        ("source_topic".into(), m.topic().as_bytes().to_vec()),
        (
            "source_partition".into(),
            m.partition().to_string().into_bytes(),
        ),
        ("source_offset".into(), m.offset().to_string().into_bytes()),
        ("reason".into(), dl.reason.clone().into_bytes()),
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
        topic: topic.to_string(),
        key: m.key().map(<[u8]>::to_vec).unwrap_or_default(),
        payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        headers,
    }
}
