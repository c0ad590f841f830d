//! Wire records for the live-path tests: encoded the way a producer would send them.
#![allow(dead_code)]

use churnwatch::proto;
use prost::Message as _;

/// Records near "now", so the service's future-skew check lets them in.
#[allow(clippy::disallowed_methods)]
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A call to the care line: each raises a retention ticket for its subscriber.
pub fn care_call(id: &str, sub: &str, t: i64) -> Vec<u8> {
    proto::CallDetailRecord {
        record_id: id.into(),
        subscriber: sub.into(),
        event_time_ms: t,
        r#type: proto::RecordType::VoiceOut as i32,
        other_party: "10086".into(),
        duration_s: 300,
        ..Default::default()
    }
    .encode_to_vec()
}
