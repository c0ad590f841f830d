//! The service against librdkafka's mock cluster: records keyed and partitioned by
//! Kafka's default partitioner (murmur2) pass the check; one record put on another
//! partition than its key's is counted, reported by `/readyz` (which stays not ready
//! across the 5 s health checks) and still processed.

#[path = "common/live.rs"]
mod live;
#[path = "common/wire.rs"]
mod wire;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use churnwatch::config::Config;
use churnwatch::proto;
use prost::Message as _;
use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::util::Timeout;
use wire::now_ms;

const PARTITIONS: i32 = 4;

fn unique(name: &str) -> String {
    format!("pk-{name}-{}", std::process::id())
}

fn call(id: &str, sub: &str, t: i64) -> Vec<u8> {
    proto::CallDetailRecord {
        record_id: id.into(),
        subscriber: sub.into(),
        event_time_ms: t,
        r#type: proto::RecordType::VoiceOut as i32,
        other_party: "10086".into(),
        duration_s: 60,
        ..Default::default()
    }
    .encode_to_vec()
}

/// Polls `done` until it holds, or fails naming `what` after a minute.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

#[test]
fn a_record_on_another_partition_than_its_keys_is_counted_and_reported_but_processed() {
    let cluster = MockCluster::new(1).unwrap();
    let mut cfg = Config::default();
    cfg.kafka.brokers = cluster.bootstrap_servers();
    cfg.kafka.group_id = unique("group");
    let t = &mut cfg.kafka.topics;
    t.cdr = unique("cdr");
    t.account = unique("account");
    t.outcomes = unique("outcomes");
    t.tickets = unique("tickets");
    t.dead_letter = unique("dlq");
    t.changelog = String::new();
    cfg.http.listen = String::new();
    for topic in [&cfg.kafka.topics.cdr, &cfg.kafka.topics.account] {
        cluster.create_topic(topic, PARTITIONS, 1).unwrap();
    }
    for topic in [&cfg.kafka.topics.tickets, &cfg.kafka.topics.dead_letter] {
        cluster.create_topic(topic, 1, 1).unwrap();
    }

    let (rt, stop, shared) = live::start(&cfg);
    wait_until("every partition is assigned", || {
        shared.metrics.assigned_partitions.get() == i64::from(PARTITIONS)
    });

    let cdr = cfg.kafka.topics.cdr.clone();
    let consumed = || {
        shared
            .metrics
            .records_consumed
            .with_label_values(&[&cdr])
            .get()
    };
    let mismatches = || {
        shared
            .metrics
            .partition_key_mismatches
            .with_label_values(&[&cdr])
            .get()
    };
    // librdkafka's murmur2_random picks the partition itself: it must agree with the check.
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &cfg.kafka.brokers)
        .set("partitioner", "murmur2_random")
        .create()
        .unwrap();
    let at = now_ms() - 600_000;
    let subs: Vec<String> = (0..40).map(|i| format!("86130300{i:05}")).collect();
    for (i, sub) in subs.iter().enumerate() {
        let payload = call(&format!("ok{i}"), sub, at + i as i64);
        let rec = BaseRecord::to(&cdr).key(sub).payload(&payload);
        producer.send(rec).map_err(|(e, _)| e).unwrap();
    }
    producer
        .flush(Timeout::After(Duration::from_secs(10)))
        .unwrap();
    wait_until("the placed records are read", || consumed() == 40);
    assert_eq!(mismatches(), 0, "placed records were counted as misplaced");
    assert!(
        shared.ready.load(Ordering::SeqCst),
        "placed records made it not ready"
    );

    let sub = &subs[0];
    let right = churnwatch::live::partition_of(sub, PARTITIONS);
    let wrong = (right + 1) % PARTITIONS;
    let payload = call("misplaced", sub, at + 100);
    let rec = BaseRecord::to(&cdr)
        .key(sub)
        .payload(&payload)
        .partition(wrong);
    producer.send(rec).map_err(|(e, _)| e).unwrap();
    producer
        .flush(Timeout::After(Duration::from_secs(10)))
        .unwrap();
    wait_until("the misplaced record is counted", || mismatches() == 1);
    wait_until("the misplaced record is processed", || consumed() == 41);

    let reason = || shared.not_ready_reason.lock().unwrap().clone();
    let named = format!("partition {wrong} of `{cdr}`");
    // Longer than the 5 s health check, which must not report ready again.
    let until = Instant::now() + Duration::from_secs(7);
    while Instant::now() < until {
        assert!(
            !shared.ready.load(Ordering::SeqCst),
            "ready again: {}",
            reason()
        );
        assert!(reason().contains(&named), "{}", reason());
        assert!(reason().contains("murmur2"), "{}", reason());
        assert!(!reason().contains(sub.as_str()), "a subscriber in /readyz");
        std::thread::park_timeout(Duration::from_millis(100));
    }
    assert_eq!(mismatches(), 1);

    let _ = stop.send(());
    rt.shutdown_timeout(Duration::from_secs(10));
}
