//! The live-path tests' harness: an embedded broker with a test's own topics, the
//! service run in-process, and what a producer and a reader on the broker would do.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use churnwatch::config::Config;
use churnwatch::kafka::embedded::EmbeddedBroker;
use churnwatch::kafka::fault::Faults;
use churnwatch::kafka::service::{self, Shared};
use churnwatch::proto;
use prost::Message as _;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use sha2::{Digest, Sha256};

pub const WITHIN: Duration = Duration::from_secs(60);

/// A broker with the test's topics (one partition each, retention limits lifted) and the
/// service's config for them.
pub fn setup(test: &str) -> (EmbeddedBroker, Config) {
    setup_with(test, 1)
}

/// The same with `partitions` partitions per topic.
pub fn setup_with(test: &str, partitions: i32) -> (EmbeddedBroker, Config) {
    let broker = EmbeddedBroker::start(1).unwrap();
    broker
        .set_group_initial_rebalance_delay(Duration::from_millis(100))
        .unwrap();
    let name = |t: &str| format!("{test}-{t}-{}", std::process::id());
    let mut cfg = Config::default();
    cfg.kafka.brokers = broker.bootstrap_servers();
    cfg.kafka.group_id = name("group");
    let t = &mut cfg.kafka.topics;
    t.cdr = name("cdr");
    t.account = name("account");
    t.outcomes = name("outcomes");
    t.tickets = name("tickets");
    t.dead_letter = name("dlq");
    t.changelog = name("state");
    cfg.kafka.drain_timeout_ms = 2_000;
    cfg.kafka.session_timeout_ms = 6_000;
    cfg.kafka.checkpoint_interval_ms = 200;
    cfg.http.listen = String::new();
    let t = &cfg.kafka.topics;
    for topic in [&t.cdr, &t.account, &t.tickets, &t.dead_letter, &t.changelog] {
        broker.create_topic(topic, partitions).unwrap();
    }
    (broker, cfg)
}

/// Runs the service until the sender is used or dropped.
pub fn start(
    cfg: &Config,
) -> (
    tokio::runtime::Runtime,
    tokio::sync::oneshot::Sender<()>,
    Shared,
) {
    start_with(cfg, Shared::default())
}

/// [`start`] with `faults` injected into the partition tasks (feature `fault-injection`).
#[allow(dead_code)]
pub fn start_with_faults(
    cfg: &Config,
    faults: Faults,
) -> (
    tokio::runtime::Runtime,
    tokio::sync::oneshot::Sender<()>,
    Shared,
) {
    let shared = Shared {
        faults: std::sync::Arc::new(faults),
        ..Shared::default()
    };
    start_with(cfg, shared)
}

fn start_with(
    cfg: &Config,
    shared: Shared,
) -> (
    tokio::runtime::Runtime,
    tokio::sync::oneshot::Sender<()>,
    Shared,
) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (tx, rx) = tokio::sync::watch::channel(std::sync::Arc::new(cfg.clone()));
    let (cfg, s) = (cfg.clone(), shared.clone());
    rt.spawn(async move {
        let _keep = tx;
        service::run(cfg, vec![], s, rx, async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (rt, stop, shared)
}

/// A producer that may send records of up to 3 MB (librdkafka's default is 1,000,000).
pub fn producer(cfg: &Config) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", &cfg.kafka.brokers)
        .set("message.max.bytes", "3000000")
        // Keys partitioned as the service checks them (`kafka.partitioner = murmur2`).
        .set("partitioner", "murmur2_random")
        .create()
        .unwrap()
}

pub fn send(p: &BaseProducer, topic: &str, key: &str, payload: &[u8]) {
    p.send(BaseRecord::to(topic).key(key).payload(payload))
        .unwrap();
    p.flush(Timeout::After(Duration::from_secs(10))).unwrap();
}

/// Reads `topic` from the start until `done` holds for what was read (or fails).
pub fn read_until(
    cfg: &Config,
    topic: &str,
    done: impl Fn(&[OwnedMessage]) -> bool,
) -> Vec<OwnedMessage> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &cfg.kafka.brokers)
        .set("group.id", format!("{topic}-reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    c.subscribe(&[topic]).unwrap();
    let deadline = Instant::now() + WITHIN;
    let mut out = Vec::new();
    while !done(&out) {
        assert!(
            Instant::now() < deadline,
            "{topic}: {} records read, not the ones awaited",
            out.len()
        );
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            out.push(m.detach());
        }
    }
    out
}

pub fn header(m: &OwnedMessage, key: &str) -> Option<String> {
    let h = m.headers()?;
    let v = h.iter().find(|x| x.key == key)?.value?;
    Some(String::from_utf8(v.to_vec()).unwrap())
}

pub fn subscriber_of(ticket: &OwnedMessage) -> String {
    proto::CareTicket::decode(ticket.payload().unwrap())
        .unwrap()
        .subscriber
}

/// Waits until the group's committed offset of partition 0 of `topic` is its log end.
pub fn wait_committed_to_log_end(cfg: &Config, topic: &str) {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &cfg.kafka.brokers)
        .set("group.id", &cfg.kafka.group_id)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let deadline = Instant::now() + WITHIN;
    loop {
        let (_, high) = c
            .fetch_watermarks(topic, 0, Duration::from_secs(5))
            .unwrap();
        let committed = c.committed_offsets(tpl.clone(), Duration::from_secs(5));
        let offset = committed
            .ok()
            .and_then(|l| l.find_partition(topic, 0).map(|p| p.offset()));
        if offset == Some(Offset::Offset(high)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{topic}: committed {offset:?}, log end {high}"
        );
        std::thread::park_timeout(Duration::from_millis(100)); // poll interval
    }
}

/// Waits until the service has consumed `n` records from `topic`.
pub fn wait_consumed(shared: &Shared, topic: &str, n: u64) {
    let consumed = || {
        shared
            .metrics
            .records_consumed
            .with_label_values(&[topic])
            .get()
    };
    let deadline = Instant::now() + WITHIN;
    while consumed() < n {
        assert!(Instant::now() < deadline, "consumed {} of {n}", consumed());
        std::thread::park_timeout(Duration::from_millis(50)); // poll interval
    }
    assert_eq!(consumed(), n);
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
