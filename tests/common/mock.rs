//! The mock cluster each service test gets: its own topics and group, the service's
//! config pointing at them, and a producer and a reader of its own.
#![allow(dead_code)]

use churnwatch::config::Config;
use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord};

static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub fn unique(name: &str) -> String {
    format!(
        "{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    )
}

pub struct Setup {
    pub cluster: MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    pub cfg: Config,
}

pub fn setup(partitions: i32) -> Setup {
    let cluster = MockCluster::new(1).unwrap();
    let mut cfg = Config::default();
    cfg.kafka.brokers = cluster.bootstrap_servers();
    cfg.kafka.group_id = unique("group");
    cfg.kafka.topics.cdr = unique("cdr");
    cfg.kafka.topics.account = unique("account");
    cfg.kafka.topics.outcomes = unique("outcomes");
    cfg.kafka.topics.tickets = unique("tickets");
    cfg.kafka.topics.dead_letter = unique("dlq");
    cfg.kafka.topics.changelog = unique("state");
    cfg.kafka.drain_timeout_ms = 2_000;
    cfg.kafka.session_timeout_ms = 6_000;
    cfg.http.listen = String::new();
    let t = &cfg.kafka.topics;
    for (topic, n) in [
        (&t.cdr, partitions),
        (&t.account, partitions),
        (&t.tickets, 1),
        (&t.dead_letter, 1),
        (&t.changelog, partitions),
    ] {
        cluster.create_topic(topic, n, 1).unwrap();
    }
    Setup { cluster, cfg }
}

pub fn producer(cfg: &Config) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", &cfg.kafka.brokers)
        // Keys partitioned as the service checks them (`kafka.partitioner = murmur2`).
        .set("partitioner", "murmur2_random")
        .create()
        .unwrap()
}

pub fn send(p: &BaseProducer, topic: &str, key: &str, payload: &[u8]) {
    p.send(BaseRecord::to(topic).key(key).payload(payload))
        .unwrap();
}

/// Reads `n` records from a topic (or fails after the deadline).
pub fn read(cfg: &Config, topic: &str, n: usize) -> Vec<rdkafka::message::OwnedMessage> {
    crate::live::read_until(cfg, topic, |out| out.len() >= n)
}
