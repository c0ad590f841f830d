//! End to end over librdkafka's mock cluster (real Kafka protocol over TCP): the service
//! as a consumer group, tickets read back by an independent consumer.

use std::time::{Duration, Instant};

use churnwatch::config::Config;
use churnwatch::kafka::service::{self, Shared};
use churnwatch::proto;
use prost::Message as _;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::util::Timeout;

static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn unique(name: &str) -> String {
    format!("{name}-{}-{}", std::process::id(), NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
}

struct Setup {
    cluster: MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    cfg: Config,
}

fn setup(partitions: i32) -> Setup {
    let cluster = MockCluster::new(1).unwrap();
    let mut cfg = Config::default();
    cfg.kafka.brokers = cluster.bootstrap_servers();
    cfg.kafka.group_id = unique("group");
    cfg.kafka.topics.cdr = unique("cdr");
    cfg.kafka.topics.account = unique("account");
    cfg.kafka.topics.outcomes = unique("outcomes");
    cfg.kafka.topics.tickets = unique("tickets");
    cfg.kafka.topics.dead_letter = unique("dlq");
    cfg.kafka.drain_timeout_ms = 2_000;
    cfg.kafka.session_timeout_ms = 6_000;
    cfg.http.listen = String::new();
    let t = &cfg.kafka.topics;
    for (topic, n) in [(&t.cdr, partitions), (&t.account, partitions), (&t.tickets, 1), (&t.dead_letter, 1)] {
        cluster.create_topic(topic, n, 1).unwrap();
    }
    Setup { cluster, cfg }
}

fn producer(cfg: &Config) -> BaseProducer {
    ClientConfig::new().set("bootstrap.servers", &cfg.kafka.brokers).create().unwrap()
}

fn send(p: &BaseProducer, topic: &str, key: &str, payload: &[u8]) {
    p.send(BaseRecord::to(topic).key(key).payload(payload)).unwrap();
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn care_call(id: &str, sub: &str, t: i64) -> Vec<u8> {
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

/// Reads `n` records from a topic (or fails after the deadline).
fn read(cfg: &Config, topic: &str, n: usize) -> Vec<rdkafka::message::OwnedMessage> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &cfg.kafka.brokers)
        .set("group.id", unique("reader"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    c.subscribe(&[topic]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut out = Vec::new();
    while out.len() < n {
        assert!(Instant::now() < deadline, "only {} of {n} records arrived on {topic}", out.len());
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            out.push(m.detach());
        }
    }
    out
}

fn start(cfg: &Config) -> (tokio::runtime::Runtime, tokio::sync::oneshot::Sender<()>, Shared) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shared = Shared::default();
    let (_tx, rx) = tokio::sync::watch::channel(std::sync::Arc::new(cfg.clone()));
    let cfg = cfg.clone();
    let s = shared.clone();
    rt.spawn(async move {
        let _keep = _tx;
        service::run(cfg, vec![], s, rx, async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (rt, stop, shared)
}

#[test]
fn records_in_tickets_out_with_bad_records_dead_lettered() {
    let s = setup(2);
    let (rt, stop, shared) = start(&s.cfg);
    let p = producer(&s.cfg);
    let t = now_ms() - 60_000;
    let topics = &s.cfg.kafka.topics;
    send(&p, &topics.cdr, "8613012345678", &care_call("a", "8613012345678", t));
    send(&p, &topics.cdr, "8613012345679", b"\xff\xfe not protobuf");
    send(&p, &topics.cdr, "8613012345679", &care_call("b", "abc", t));
    send(&p, &topics.cdr, "8613012345679", &care_call("c", "8613012345679", t + 1));
    p.flush(Timeout::After(Duration::from_secs(10))).unwrap();

    let tickets = read(&s.cfg, &topics.tickets, 2);
    let mut subs: Vec<String> =
        tickets.iter().map(|m| proto::CareTicket::decode(m.payload().unwrap()).unwrap().subscriber).collect();
    subs.sort();
    assert_eq!(subs, vec!["8613012345678", "8613012345679"]);
    let queue = tickets[0].headers().unwrap().iter().find(|h| h.key == "queue").unwrap();
    assert_eq!(queue.value, Some(&b"retention"[..]));

    let dead = read(&s.cfg, &topics.dead_letter, 2);
    let reasons: Vec<String> = dead
        .iter()
        .map(|m| {
            let h = m.headers().unwrap();
            let get = |k: &str| String::from_utf8(h.iter().find(|x| x.key == k).unwrap().value.unwrap().to_vec()).unwrap();
            assert_eq!(get("source_topic"), topics.cdr);
            get("reason")
        })
        .collect();
    assert!(reasons.iter().any(|r| r.starts_with("invalid protobuf")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("non-digit")), "{reasons:?}");
    assert_eq!(dead.iter().filter(|m| m.payload() == Some(&b"\xff\xfe not protobuf"[..])).count(), 1, "original bytes kept");
    let text = shared.metrics.render();
    assert!(text.contains("churnwatch_dead_lettered_total"), "{text}");
    let _ = stop.send(());
    rt.shutdown_timeout(Duration::from_secs(10));
    drop(s.cluster);
}

#[test]
fn refuses_to_run_when_inputs_are_not_co_partitioned() {
    let cluster = MockCluster::new(1).unwrap();
    let mut cfg = Config::default();
    cfg.kafka.brokers = cluster.bootstrap_servers();
    cfg.kafka.topics.cdr = unique("cdr");
    cfg.kafka.topics.account = unique("account");
    cfg.http.listen = String::new();
    cluster.create_topic(&cfg.kafka.topics.cdr, 4, 1).unwrap();
    cluster.create_topic(&cfg.kafka.topics.account, 2, 1).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(std::sync::Arc::new(cfg.clone()));
    let err = rt
        .block_on(service::run(cfg, vec![], Shared::default(), rx, std::future::pending()))
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("not co-partitioned") && msg.contains("4 partitions") && msg.contains("2 partitions"), "{msg}");
}
