//! The embedded broker keeps every record: librdkafka's mock cluster drops the oldest message
//! sets beyond 5 MiB or 100,000 sets per partition unless our shim raised the limits. The
//! controls produce the same load to a plainly created topic and must see the drop, so these
//! tests can fail. Also checks that a consumer group works over TCP.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use churnwatch::kafka::embedded::{EmbeddedBroker, PartitionLimits};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Records of 64 bytes: 150,000 of them are 9.6 MB of payload, well over 5 MiB.
const PAYLOAD: [u8; 64] = [b'x'; 64];

/// A producer tuned either for throughput (big batches) or for one message set per record.
fn producer(bootstrap: &str, one_record_per_set: bool) -> BaseProducer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("queue.buffering.max.messages", "1000000");
    if one_record_per_set {
        config.set("batch.num.messages", "1").set("linger.ms", "0");
    } else {
        config
            .set("batch.num.messages", "10000")
            .set("batch.size", "1000000")
            .set("linger.ms", "5");
    }
    config.create().expect("producer")
}

/// Produces `count` keyed records to partition 0 of `topic`, returns records per second.
fn produce(producer: &BaseProducer, topic: &str, count: usize) -> f64 {
    let start = Instant::now();
    for i in 0..count {
        let key = i.to_string();
        let mut record = BaseRecord::to(topic)
            .partition(0)
            .key(&key)
            .payload(&PAYLOAD[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => panic!("produce {i} to {topic}: {e}"),
            }
        }
        if i % 10_000 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(60)).expect("flush");
    count as f64 / start.elapsed().as_secs_f64()
}

fn consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .create()
        .expect("consumer")
}

/// Reads partition 0 of `topic` from the beginning until `count` records arrived; checks that
/// the keys are exactly 0..count in order. Returns records per second.
fn consume_all(bootstrap: &str, topic: &str, count: usize) -> f64 {
    let consumer = consumer(bootstrap, "reader");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("partition");
    consumer.assign(&tpl).expect("assign");
    let start = Instant::now();
    let deadline = start + Duration::from_secs(60);
    let mut next = 0usize;
    while next < count {
        assert!(Instant::now() < deadline, "read only {next} of {count}");
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = message.expect("consume");
        let key = std::str::from_utf8(message.key().expect("key")).expect("utf8");
        assert_eq!(
            key,
            next.to_string(),
            "record at offset {}",
            message.offset()
        );
        assert_eq!(message.offset(), next as i64);
        next += 1;
    }
    count as f64 / start.elapsed().as_secs_f64()
}

fn watermarks(bootstrap: &str, topic: &str) -> (i64, i64) {
    consumer(bootstrap, "watermarks")
        .fetch_watermarks(topic, 0, TIMEOUT)
        .expect("watermarks")
}

#[test]
fn keeps_more_than_5_mib_and_reads_every_record_back() {
    let broker = EmbeddedBroker::start(1).expect("broker");
    let bootstrap = broker.bootstrap_servers();
    let count = 150_000;
    broker.create_topic("big", 1).expect("topic");
    let produce_rate = produce(&producer(&bootstrap, false), "big", count);
    assert_eq!(watermarks(&bootstrap, "big"), (0, count as i64));
    let consume_rate = consume_all(&bootstrap, "big", count);
    eprintln!(
        "big batches: produced {count} x {} B at {produce_rate:.0} msg/s, consumed at {consume_rate:.0} msg/s",
        PAYLOAD.len()
    );
}

#[test]
fn control_without_the_shim_the_mock_drops_beyond_5_mib() {
    let broker = EmbeddedBroker::start(1).expect("broker");
    let bootstrap = broker.bootstrap_servers();
    let count = 150_000;
    broker
        .mock()
        .expect("mock")
        .create_topic("plain", 1, 1)
        .expect("topic");
    produce(&producer(&bootstrap, false), "plain", count);
    let (low, high) = watermarks(&bootstrap, "plain");
    assert_eq!(high, count as i64);
    assert!(
        low > 0,
        "the mock kept all {count} records: limit no longer 5 MiB?"
    );
}

#[test]
fn keeps_more_than_100k_message_sets() {
    let broker = EmbeddedBroker::start(1).expect("broker");
    let bootstrap = broker.bootstrap_servers();
    let count = 110_000;
    broker.create_topic("sets", 1).expect("topic");
    // Control: with one record per set the 5 MiB byte limit would bite first (~75 B per set),
    // so raise only the byte limit and keep librdkafka's 100,000 sets. It must drop.
    broker
        .create_topic_with_limits(
            "sets-control",
            1,
            PartitionLimits {
                max_message_sets: 100_000,
                ..PartitionLimits::default()
            },
        )
        .expect("topic");
    let producer = producer(&bootstrap, true);
    let rate = produce(&producer, "sets", count);
    produce(&producer, "sets-control", count);
    eprintln!("one record per message set: produced {count} at {rate:.0} msg/s");
    assert_eq!(watermarks(&bootstrap, "sets"), (0, count as i64));
    let (low, high) = watermarks(&bootstrap, "sets-control");
    assert_eq!(high, count as i64);
    assert_eq!(
        low,
        (count - 100_000) as i64,
        "control: the oldest sets beyond 100,000 go"
    );
}

#[test]
fn raising_limits_of_a_missing_topic_names_it() {
    let broker = EmbeddedBroker::start(1).expect("broker");
    let err = broker
        .set_partition_limits("nope", PartitionLimits::default())
        .expect_err("missing topic");
    assert!(err.to_string().contains("\"nope\""), "{err}");
    broker.create_topic("twice", 1).expect("topic");
    let err = broker.create_topic("twice", 1).expect_err("exists");
    assert!(err.to_string().contains("\"twice\""), "{err}");
}

#[test]
fn consumer_group_reads_both_partitions_and_commits() {
    let broker = EmbeddedBroker::start(3).expect("broker");
    broker
        .set_group_initial_rebalance_delay(Duration::from_millis(100))
        .expect("delay");
    let bootstrap = broker.bootstrap_servers();
    broker.create_topic("grouped", 2).expect("topic");

    let producer = producer(&bootstrap, false);
    let count = 1_000;
    for i in 0..count {
        let key = format!("subscriber-{i}");
        producer
            .send(BaseRecord::to("grouped").key(&key).payload(&PAYLOAD[..]))
            .expect("send");
    }
    producer.flush(TIMEOUT).expect("flush");

    let consumer = consumer(&bootstrap, "group-a");
    consumer.subscribe(&["grouped"]).expect("subscribe");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut keys = BTreeSet::new();
    let mut per_partition: HashMap<i32, usize> = HashMap::new();
    while keys.len() < count {
        assert!(Instant::now() < deadline, "group read only {}", keys.len());
        if let Some(message) = consumer.poll(Duration::from_millis(500)) {
            let message = message.expect("consume");
            *per_partition.entry(message.partition()).or_default() += 1;
            keys.insert(message.key().expect("key").to_vec());
        }
    }
    assert_eq!(per_partition.len(), 2, "{per_partition:?}");
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit");
    let committed = consumer.committed(TIMEOUT).expect("committed");
    let total: i64 = committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            other => panic!("partition {} committed {other:?}", e.partition()),
        })
        .sum();
    assert_eq!(total, count as i64);
}

#[test]
fn broker_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<EmbeddedBroker>();
    let broker = EmbeddedBroker::start(1).expect("broker");
    std::thread::scope(|s| {
        for t in 0..4 {
            let broker = &broker;
            s.spawn(move || {
                broker
                    .create_topic(&format!("threaded-{t}"), 2)
                    .expect("topic")
            });
        }
    });
}
