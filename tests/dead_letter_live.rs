//! Dead letters on the live path, over the embedded broker (issue 12): a record too large
//! for the producer is dead-lettered cut to fit, with its size and digest, and the records
//! behind it are processed and committed.

#[path = "common/live.rs"]
mod live;
#[path = "common/wire.rs"]
mod wire;

use std::time::Duration;

use churnwatch::config::Format;
use churnwatch::kafka::service::{self, Shared};
use churnwatch::proto;
use live::{
    header, producer, read_until, send, setup, sha256_hex, start, subscriber_of,
    wait_committed_to_log_end, wait_consumed, WITHIN,
};
use prost::Message as _;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::util::Timeout;
use wire::{care_call, now_ms};

/// A 2 MB record is over `kafka.max_message_bytes` and over the producer's 1,000,000-byte
/// `message.max.bytes`: its dead letter goes out cut to fit, with its size and digest, and
/// the line goes on (the records behind it raise their tickets; lag returns to 0).
#[test]
fn a_record_too_large_for_the_producer_is_dead_lettered_cut_and_the_line_goes_on() {
    let (broker, cfg) = setup("dl-big");
    let topics = cfg.kafka.topics.clone();
    let (rt, stop, shared) = start(&cfg);
    let p = producer(&cfg);
    let t = now_ms() - 60_000;
    let subs: Vec<String> = (0..6).map(|i| format!("861301234560{i}")).collect();
    for (i, sub) in subs[..3].iter().enumerate() {
        send(&p, &topics.cdr, sub, &care_call(&format!("a{i}"), sub, t));
    }
    let big: Vec<u8> = (0..2_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    send(&p, &topics.cdr, "8613012345699", &big);
    for (i, sub) in subs[3..].iter().enumerate() {
        send(
            &p,
            &topics.cdr,
            sub,
            &care_call(&format!("b{i}"), sub, t + 1),
        );
    }

    let dead = read_until(&cfg, &topics.dead_letter, |m| !m.is_empty());
    let d = &dead[0];
    let payload = d.payload().unwrap();
    assert!(
        (900_000..1_000_000).contains(&payload.len()),
        "{}",
        payload.len()
    );
    assert_eq!(payload, &big[..payload.len()], "a prefix of the record");
    assert_eq!(header(d, "truncated").as_deref(), Some("true"));
    assert_eq!(header(d, "original.size").as_deref(), Some("2000000"));
    assert_eq!(header(d, "original.sha256"), Some(sha256_hex(&big)));
    let reason = header(d, "reason").unwrap();
    assert!(reason.contains("2000000 bytes exceeds"), "{reason}");
    assert_eq!(header(d, "source_offset").as_deref(), Some("3"));

    let tickets = read_until(&cfg, &topics.tickets, |m| {
        subs.iter()
            .all(|s| m.iter().any(|t| subscriber_of(t) == *s))
    });
    assert!(tickets.len() >= subs.len());
    wait_consumed(&shared, &topics.cdr, 7);
    wait_committed_to_log_end(&cfg, &topics.cdr);
    let dead_lettered = shared
        .metrics
        .dead_lettered
        .with_label_values(&[&topics.cdr, "oversize"])
        .get();
    assert_eq!(dead_lettered, 1);
    let refused = shared
        .metrics
        .publish_failures
        .with_label_values(&[&topics.dead_letter, "permanent"])
        .get();
    assert_eq!(refused, 0, "the cut copy was accepted");
    let _ = stop.send(());
    rt.shutdown_timeout(Duration::from_secs(10));
    drop(p);
    drop(broker);
}

/// A care call encoded as `format` (proto3 JSON for JSON).
fn care_call_as(format: Format, id: &str, sub: &str, t: i64) -> Vec<u8> {
    let bytes = care_call(id, sub, t);
    match format {
        Format::Protobuf => bytes,
        Format::Json => {
            serde_json::to_vec(&proto::CallDetailRecord::decode(&bytes[..]).unwrap()).unwrap()
        }
    }
}

/// Bytes that are neither UTF-8 nor protobuf.
fn random_bytes() -> Vec<u8> {
    (0..64u32)
        .map(|i| (i.wrapping_mul(2_246_822_519) >> 13) as u8)
        .collect()
}

/// Hostile protobuf records among good ones: every bad record is dead-lettered with a reason
/// (and no subscriber number in it), every good one raises its ticket, and lag returns to 0.
#[test]
fn hostile_records_are_dead_lettered_with_a_reason_and_good_ones_raise_tickets() {
    let t = now_ms() - 60_000;
    let mut wrong_type = proto::CallDetailRecord::decode(
        &care_call_as(Format::Protobuf, "w", "8613012340009", t)[..],
    )
    .unwrap();
    wrong_type.r#type = -1;
    let whole = care_call_as(Format::Protobuf, "cut", "8613012340009", t);
    let specific = vec![
        (Some(vec![]), "missing record id"),
        (Some(random_bytes()), "invalid protobuf"),
        (Some(whole[..whole.len() / 2].to_vec()), "invalid protobuf"),
        (Some(wrong_type.encode_to_vec()), "unknown record type -1"),
    ];
    hostile_records_among_good_ones("dl-hostile-pb", Format::Protobuf, specific);
}

/// The same with JSON input, plus JSON of the wrong shape and 100,000 levels deep.
#[test]
fn hostile_json_records_are_dead_lettered_with_a_reason_and_good_ones_raise_tickets() {
    let t = now_ms() - 60_000;
    let whole = care_call_as(Format::Json, "cut", "8613012340009", t);
    let mut wrong_type: serde_json::Value = serde_json::from_slice(&whole).unwrap();
    wrong_type["type"] = "NOT_A_TYPE".into();
    let specific = vec![
        (Some(vec![]), "invalid record"),
        (Some(random_bytes()), "invalid UTF-8"),
        (Some(whole[..whole.len() / 2].to_vec()), "invalid record"),
        (Some(b"[1, 2, 3]".to_vec()), "invalid record"),
        (
            Some(br#"{"recordId": 5, "subscriber": ["x"]}"#.to_vec()),
            "invalid record",
        ),
        (Some(serde_json::to_vec(&wrong_type).unwrap()), "NOT_A_TYPE"),
        (Some(deeply_nested(100_000)), "invalid record"),
    ];
    hostile_records_among_good_ones("dl-hostile-json", Format::Json, specific);
}

/// A JSON record whose `recordId` is an array nested `depth` deep.
fn deeply_nested(depth: usize) -> Vec<u8> {
    let mut v = b"{\"recordId\": ".to_vec();
    v.extend(std::iter::repeat_n(b'[', depth));
    v.extend(std::iter::repeat_n(b']', depth));
    v.push(b'}');
    v
}

/// Sends good care calls (each raises a ticket) with one bad record after each of the
/// first: those of `specific` (value, a fragment of its reason) and the hostile records
/// any format shares; then checks the dead letters, the tickets and the group's lag.
fn hostile_records_among_good_ones(
    test: &str,
    format: Format,
    specific: Vec<(Option<Vec<u8>>, &str)>,
) {
    let (broker, mut cfg) = setup(test);
    cfg.kafka.input_format = format;
    let topics = cfg.kafka.topics.clone();
    let (rt, stop, shared) = start(&cfg);
    let p = producer(&cfg);
    let now = now_ms();
    let t = now - 60_000;
    let call = |id: &str, sub: &str, t: i64| care_call_as(format, id, sub, t);
    let mut bad: Vec<(Option<Vec<u8>>, &str)> = vec![
        (None, "record has no value"),
        (Some(call("nd", "86130abc45678", t)), "non-digit"),
        (
            Some(call("fut", "8613012340009", now + 10 * 86_400_000)),
            "ahead of the clock",
        ),
        (
            Some(call("old", "8613012340009", 978_307_200_000)),
            "allowed lateness",
        ),
        (
            Some(call("1970", "8613012340009", 1_000)),
            "outside 2000..2100",
        ),
        (Some(call("neg", "8613012340009", -5)), "outside 2000..2100"),
    ];
    bad.extend(specific);
    let good: Vec<String> = (0..=bad.len())
        .map(|i| format!("86130123456{i:02}"))
        .collect();
    let mut bad_offsets = Vec::new();
    let mut offset = 0;
    for (i, sub) in good.iter().enumerate() {
        send(
            &p,
            &topics.cdr,
            sub,
            &call(&format!("g{i}"), sub, t + i as i64),
        );
        offset += 1;
        if let Some((value, _)) = bad.get(i) {
            let mut r = BaseRecord::<str, [u8]>::to(&topics.cdr).key("hostile");
            if let Some(v) = value {
                r = r.payload(v);
            }
            p.send(r).unwrap();
            p.flush(Timeout::After(Duration::from_secs(10))).unwrap();
            bad_offsets.push(offset.to_string());
            offset += 1;
        }
    }

    let dead = read_until(&cfg, &topics.dead_letter, |m| m.len() >= bad.len());
    assert_eq!(dead.len(), bad.len());
    let by_offset: Vec<(String, String)> = dead
        .iter()
        .map(|d| {
            (
                header(d, "source_offset").unwrap(),
                header(d, "reason").unwrap(),
            )
        })
        .collect();
    let offsets: Vec<&String> = by_offset.iter().map(|(o, _)| o).collect();
    assert_eq!(offsets, bad_offsets.iter().collect::<Vec<_>>());
    for ((_, reason), (_, expected)) in by_offset.iter().zip(&bad) {
        assert!(
            !reason.is_empty() && reason.contains(expected),
            "{reason:?}: {expected}"
        );
        assert!(
            !reason.contains("8613"),
            "a subscriber number in {reason:?}"
        );
    }
    for (d, (value, _)) in dead.iter().zip(&bad) {
        let value = value.as_deref().unwrap_or_default();
        assert_eq!(d.payload().unwrap_or_default(), value, "the original kept");
        assert_eq!(header(d, "original.size"), Some(value.len().to_string()));
        assert_eq!(header(d, "original.sha256"), Some(sha256_hex(value)));
        assert_eq!(header(d, "truncated"), None);
    }

    let tickets = read_until(&cfg, &topics.tickets, |m| {
        good.iter()
            .all(|s| m.iter().any(|t| subscriber_of(t) == *s))
    });
    assert!(tickets.iter().all(|t| good.contains(&subscriber_of(t))));
    wait_consumed(&shared, &topics.cdr, offset);
    wait_committed_to_log_end(&cfg, &topics.cdr);
    let _ = stop.send(());
    rt.shutdown_timeout(Duration::from_secs(10));
    drop(p);
    drop(broker);
}

/// A dead letter the broker refuses as unauthorized is not given up like a permanent
/// failure: the producer cannot go on, so the service stops with an error naming the topic.
#[test]
fn an_unauthorized_dead_letter_stops_the_service_with_a_fatal_error() {
    let (broker, cfg) = setup("dl-fatal");
    let topics = cfg.kafka.topics.clone();
    let p = producer(&cfg);
    send(&p, &topics.cdr, "hostile", b"\xff\xfe not protobuf");
    broker.mock().unwrap().request_errors(
        rdkafka::types::RDKafkaApiKey::Produce,
        &[rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED],
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(std::sync::Arc::new(cfg.clone()));
    let shared = Shared::default();
    let run = service::run(cfg, vec![], shared.clone(), rx, std::future::pending());
    let err = rt
        .block_on(async { tokio::time::timeout(WITHIN, run).await })
        .expect("the service stops")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("publishing to `{}`", topics.dead_letter)) && err.contains("fatal"),
        "{err}"
    );
    let fatal = shared
        .metrics
        .publish_failures
        .with_label_values(&[&topics.dead_letter, "fatal"])
        .get();
    assert_eq!(fatal, 1);
    drop(rt);
    drop(p);
    drop(broker);
}
