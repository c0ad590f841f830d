//! The service against librdkafka's mock cluster, with `kafka.partitioner = "auto"`: records
//! keyed and partitioned by librdkafka's own default (CRC32) or by Kafka's (murmur2) pass
//! the check, the service saying which it learnt; one record put on a partition neither
//! function gives its key is counted, shown by `/readyz` as a warning (the service stays
//! ready: see `kafka::readiness`) and still processed.

#[path = "common/live.rs"]
mod live;
#[path = "common/wire.rs"]
mod wire;

use std::time::{Duration, Instant};

use churnwatch::config::{Config, Partitioner};
use churnwatch::kafka::partitioner::partition_for;
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

struct Setup {
    cluster: MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    cfg: Config,
}

fn setup(test: &str) -> Setup {
    let cluster = MockCluster::new(1).unwrap();
    let mut cfg = Config::default();
    cfg.kafka.brokers = cluster.bootstrap_servers();
    cfg.kafka.group_id = unique(&format!("{test}-group"));
    let t = &mut cfg.kafka.topics;
    t.cdr = unique(&format!("{test}-cdr"));
    t.account = unique(&format!("{test}-account"));
    t.outcomes = unique(&format!("{test}-outcomes"));
    t.tickets = unique(&format!("{test}-tickets"));
    t.dead_letter = unique(&format!("{test}-dlq"));
    t.changelog = String::new();
    cfg.http.listen = String::new();
    for topic in [&cfg.kafka.topics.cdr, &cfg.kafka.topics.account] {
        cluster.create_topic(topic, PARTITIONS, 1).unwrap();
    }
    for topic in [&cfg.kafka.topics.tickets, &cfg.kafka.topics.dead_letter] {
        cluster.create_topic(topic, 1, 1).unwrap();
    }
    Setup { cluster, cfg }
}

/// Produces one call for each of `subs` to `topic` with `producer`, which picks the
/// partition from the key.
fn produce_keyed(producer: &BaseProducer, topic: &str, subs: &[String], at: i64) {
    for (i, sub) in subs.iter().enumerate() {
        let payload = call(&format!("ok{i}"), sub, at + i as i64);
        let rec = BaseRecord::to(topic).key(sub).payload(&payload);
        producer.send(rec).map_err(|(e, _)| e).unwrap();
    }
    producer
        .flush(Timeout::After(Duration::from_secs(10)))
        .unwrap();
}

#[test]
fn records_of_librdkafkas_default_partitioner_are_learnt_and_flag_nothing() {
    let Setup { cluster: _c, cfg } = setup("crc");
    let (rt, stop, shared) = live::start(&cfg);
    wait_until("every partition is assigned", || {
        shared.metrics.assigned_partitions.get() == i64::from(PARTITIONS)
    });
    // No `partitioner` set: librdkafka's default, consistent_random (CRC32).
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &cfg.kafka.brokers)
        .create()
        .unwrap();
    let subs: Vec<String> = (0..120).map(|i| format!("86130301{i:05}")).collect();
    let cdr = cfg.kafka.topics.cdr.clone();
    produce_keyed(&producer, &cdr, &subs, now_ms() - 600_000);
    let consumed = || {
        shared
            .metrics
            .records_consumed
            .with_label_values(&[&cdr])
            .get()
    };
    wait_until("the records are read", || consumed() == 120);
    let detected = &shared.metrics.partitioner_detected;
    assert_eq!(detected.with_label_values(&["consistent_random"]).get(), 1);
    assert_eq!(detected.with_label_values(&["murmur2"]).get(), 0);
    let mismatches = shared
        .metrics
        .partition_key_mismatches
        .with_label_values(&[&cdr]);
    assert_eq!(
        mismatches.get(),
        0,
        "records of librdkafka's default flagged"
    );
    assert!(
        shared.readiness.is_ready(),
        "{:?}",
        shared.readiness.failing()
    );
    assert!(shared.readiness.warnings().is_empty());
    let _ = stop.send(());
    rt.shutdown_timeout(Duration::from_secs(10));
}

#[test]
fn a_record_on_a_partition_no_partitioner_gives_its_key_is_counted_and_warned_but_processed() {
    let Setup { cluster: _c, cfg } = setup("wrong");
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
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &cfg.kafka.brokers)
        .set("partitioner", "murmur2_random")
        .create()
        .unwrap();
    let at = now_ms() - 600_000;
    let subs: Vec<String> = (0..120).map(|i| format!("86130300{i:05}")).collect();
    produce_keyed(&producer, &cdr, &subs, at);
    wait_until("the placed records are read", || consumed() == 120);
    assert_eq!(mismatches(), 0, "placed records were counted as misplaced");
    let detected = &shared.metrics.partitioner_detected;
    assert_eq!(detected.with_label_values(&["murmur2"]).get(), 1);

    let sub = subs
        .iter()
        .find(|s| {
            let (m, c) = (
                churnwatch::tools::live::partition_of(s, PARTITIONS),
                partition_for(Partitioner::ConsistentRandom, s.as_bytes(), PARTITIONS).unwrap(),
            );
            (0..PARTITIONS).any(|p| p != m && p != c)
        })
        .unwrap();
    let right = churnwatch::tools::live::partition_of(sub, PARTITIONS);
    let crc = partition_for(Partitioner::ConsistentRandom, sub.as_bytes(), PARTITIONS).unwrap();
    let wrong = (0..PARTITIONS).find(|p| *p != right && *p != crc).unwrap();
    let payload = call("misplaced", sub, at + 200);
    let rec = BaseRecord::to(&cdr)
        .key(sub)
        .payload(&payload)
        .partition(wrong);
    producer.send(rec).map_err(|(e, _)| e).unwrap();
    producer
        .flush(Timeout::After(Duration::from_secs(10)))
        .unwrap();
    wait_until("the misplaced record is counted", || mismatches() == 1);
    wait_until("the misplaced record is processed", || consumed() == 121);

    let warnings = shared.readiness.warnings().join("\n");
    assert!(
        warnings.contains(&format!("partition {wrong} of `{cdr}`")),
        "{warnings}"
    );
    assert!(warnings.contains("neither murmur2 nor CRC32"), "{warnings}");
    assert!(!warnings.contains(sub.as_str()), "a subscriber in /readyz");
    assert!(
        shared.readiness.is_ready(),
        "a mismatch is not a readiness condition: {:?}",
        shared.readiness.failing()
    );
    assert_eq!(mismatches(), 1);

    let _ = stop.send(());
    rt.shutdown_timeout(Duration::from_secs(10));
}
