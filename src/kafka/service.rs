//! `churnwatch run`: the detection engine as a Kafka consumer-group service.
//!
//! - **Partitions**: CDR, account and outcome topics are co-partitioned (same count, keyed
//!   by subscriber), so partition `p` of each holds the same subscribers and feeds one
//!   [`PartitionWorker`] (one engine), which runs as its own tokio task. Scale-out is the
//!   consumer group's: another instance takes over partitions.
//! - **At-least-once**: `enable.auto.commit=true`, `enable.auto.offset.store=false`. A
//!   record's offset is stored only after every ticket and dead letter it caused is
//!   acknowledged by the broker, in order per partition (rust-rdkafka's `at_least_once`
//!   example, Vector's finalizer). Ticket ids are deterministic, so a redelivered record
//!   re-sends the same ticket ids and downstream de-duplicates.
//! - **Backpressure**: each partition task holds at most `max_in_flight` unacknowledged
//!   records and its input channel is bounded, so a producer that outruns us fills the
//!   broker, not our memory.
//! - **Faults**: the producer retries (idempotent, long `message.timeout.ms`); a failed
//!   delivery is sent again, never dropped. A consumer that fell behind the log start is
//!   told so by the broker (auto offset reset): logged at warn and counted as skipped
//!   offsets.
//! - **Revocation and shutdown** drain pending acknowledgements within `drain_timeout_ms`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::statistics::Statistics;
use rdkafka::util::Timeout;
use rdkafka::ClientContext;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::codec;
use crate::config::{Config, Format};
use crate::detect::engine::{PortedNumber, SubscriberSummary};
use crate::detect::Msisdn;
use crate::metrics::Metrics;
use crate::proto::CareTicket;

use super::idle::IdleClock;
use super::worker::{PartitionWorker, Source};

/// Errors that stop the service (anything else is retried or dead-lettered).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("kafka client: {0}")]
    Client(#[from] KafkaError),
    #[error(
        "topics `{a}` ({a_count} partitions) and `{b}` ({b_count} partitions) are not co-partitioned: \
         churnwatch needs the same partition count, keyed by subscriber, so each subscriber's \
         records meet in one partition"
    )]
    NotCoPartitioned {
        a: String,
        a_count: usize,
        b: String,
        b_count: usize,
    },
    #[error("invalid configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
}

/// State shared with the HTTP endpoint and the config reloader.
#[derive(Clone, Default)]
pub struct Shared {
    pub metrics: Metrics,
    /// True while the broker answers metadata requests and the service runs.
    pub ready: Arc<AtomicBool>,
    /// Why the service is not ready, for `/readyz`.
    pub not_ready_reason: Arc<std::sync::Mutex<String>>,
    /// Control channels of the partition tasks, by partition.
    pub partitions: Arc<DashMap<i32, mpsc::Sender<Control>>>,
    /// The last few tickets per subscriber, for agent screens.
    pub recent_tickets: Arc<DashMap<u64, VecDeque<CareTicket>>>,
}

const RECENT_TICKETS_KEPT: usize = 10;

impl Shared {
    pub fn set_ready(&self, ready: bool, reason: &str) {
        self.ready.store(ready, Ordering::SeqCst);
        self.metrics.ready.set(i64::from(ready));
        if let Ok(mut r) = self.not_ready_reason.lock() {
            *r = reason.to_string();
        }
    }

    /// Asks every partition task for a subscriber; the one that holds it answers.
    pub async fn describe(&self, m: Msisdn) -> Option<SubscriberSummary> {
        let senders: Vec<mpsc::Sender<Control>> =
            self.partitions.iter().map(|e| e.value().clone()).collect();
        for tx in senders {
            let (reply, rx) = oneshot::channel();
            if tx.send(Control::Describe(m, reply)).await.is_ok() {
                if let Ok(Some(s)) = rx.await {
                    return Some(s);
                }
            }
        }
        None
    }

    fn remember(&self, t: &CareTicket) {
        let Ok(m) = Msisdn::parse(&t.subscriber) else {
            return;
        };
        let mut list = self.recent_tickets.entry(m.0).or_default();
        list.retain(|x| x.ticket_id != t.ticket_id);
        list.push_back(t.clone());
        while list.len() > RECENT_TICKETS_KEPT {
            list.pop_front();
        }
    }
}

/// What a partition task receives besides records.
pub enum Control {
    Record(Box<OwnedMessage>, Source, Instant),
    Describe(Msisdn, oneshot::Sender<Option<SubscriberSummary>>),
    Reconfigure(Arc<Config>, std::sync::mpsc::Sender<Result<(), String>>),
    /// Finish pending acknowledgements (until the deadline), store offsets, stop.
    Drain(Instant, std::sync::mpsc::Sender<()>),
}

/// Consumer context: rebalance hooks drain revoked partitions before ownership moves.
pub struct ServiceContext {
    shared: Shared,
    drain_timeout: Duration,
}

impl ClientContext for ServiceContext {
    fn stats(&self, stats: Statistics) {
        for (topic, t) in &stats.topics {
            for (p, part) in &t.partitions {
                if *p >= 0 && part.consumer_lag >= 0 {
                    self.shared
                        .metrics
                        .consumer_lag
                        .with_label_values(&[topic, &p.to_string()])
                        .set(part.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for ServiceContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            self.shared
                .metrics
                .rebalances
                .with_label_values(&["revoke"])
                .inc();
            let mut revoked: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
            revoked.sort_unstable();
            revoked.dedup();
            let deadline = Instant::now() + self.drain_timeout;
            let mut waits = Vec::new();
            for p in revoked {
                if let Some((_, tx)) = self.shared.partitions.remove(&p) {
                    let (done, wait) = std::sync::mpsc::channel();
                    if tx.try_send(Control::Drain(deadline, done)).is_ok() {
                        waits.push(wait);
                    }
                }
            }
            // The callback runs on the thread polling the consumer; let tokio move other
            // tasks off it while the partition tasks drain.
            let wait_all = || {
                for w in waits {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let _ = w.recv_timeout(left);
                }
            };
            match tokio::runtime::Handle::try_current() {
                Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                    tokio::task::block_in_place(wait_all)
                }
                _ => wait_all(),
            }
            self.shared.metrics.assigned_partitions.set(0);
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                self.shared
                    .metrics
                    .rebalances
                    .with_label_values(&["assign"])
                    .inc();
                let mut parts: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                parts.sort_unstable();
                parts.dedup();
                self.shared
                    .metrics
                    .assigned_partitions
                    .set(parts.len() as i64);
                info!(partitions = parts.len(), "partitions assigned");
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => warn!(error = %e, "rebalance error"),
        }
    }
}

type ServiceConsumer = StreamConsumer<ServiceContext>;

fn client_config(cfg: &Config) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.kafka.brokers);
    for (k, v) in &cfg.kafka.options {
        c.set(k, v);
    }
    c
}

fn producer(cfg: &Config) -> Result<FutureProducer, KafkaError> {
    let mut c = client_config(cfg);
    c.set("enable.idempotence", "true")
        // Keep retrying through a broker restart: a ticket is never given up.
        .set("message.timeout.ms", "600000")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000");
    c.create()
}

/// Partition count of a topic, or `None` if it does not exist (yet). Asks for every
/// topic's metadata: naming the topic would make brokers that auto-create topics create it.
fn partition_count(client: &FutureProducer, topic: &str) -> Result<Option<usize>, KafkaError> {
    let md = client
        .client()
        .fetch_metadata(None, Timeout::After(Duration::from_secs(5)))?;
    Ok(md
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len())
        .filter(|&n| n > 0))
}

/// Runs the service until `shutdown` resolves. `reload` delivers validated new configs.
pub async fn run(
    cfg: Config,
    ported: Vec<PortedNumber>,
    shared: Shared,
    mut reload: tokio::sync::watch::Receiver<Arc<Config>>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ServiceError> {
    tokio::pin!(shutdown);
    let producer = producer(&cfg)?;
    let topics = cfg.kafka.topics.clone();
    // Wait for the broker and the input topics, with backoff; /readyz says why meanwhile.
    let mut backoff = Duration::from_millis(200);
    let counts = loop {
        let probe = (
            partition_count(&producer, &topics.cdr),
            partition_count(&producer, &topics.account),
        );
        let reason = match probe {
            (Ok(Some(a)), Ok(Some(b))) => break (a, b),
            (Err(e), _) | (_, Err(e)) => format!("broker unreachable: {e}"),
            (Ok(None), _) => format!("topic `{}` does not exist yet", topics.cdr),
            (_, Ok(None)) => format!("topic `{}` does not exist yet", topics.account),
        };
        shared.set_ready(false, &reason);
        warn!(%reason, retry_in_ms = backoff.as_millis() as u64, "waiting for kafka");
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    };
    if counts.0 != counts.1 {
        return Err(ServiceError::NotCoPartitioned {
            a: topics.cdr.clone(),
            a_count: counts.0,
            b: topics.account.clone(),
            b_count: counts.1,
        });
    }
    let mut subscribe = vec![topics.cdr.clone(), topics.account.clone()];
    match partition_count(&producer, &topics.outcomes) {
        Ok(Some(n)) if n == counts.0 => subscribe.push(topics.outcomes.clone()),
        Ok(Some(n)) => {
            return Err(ServiceError::NotCoPartitioned {
                a: topics.cdr.clone(),
                a_count: counts.0,
                b: topics.outcomes.clone(),
                b_count: n,
            })
        }
        _ => {
            warn!(topic = %topics.outcomes, "outcome topic not found; ticket outcomes are not read")
        }
    }

    let ctx = ServiceContext {
        shared: shared.clone(),
        drain_timeout: Duration::from_millis(cfg.kafka.drain_timeout_ms),
    };
    let mut cc = client_config(&cfg);
    cc.set("group.id", &cfg.kafka.group_id)
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // Range assignment gives partition p of every input topic to the same member.
        .set("partition.assignment.strategy", "range")
        .set(
            "session.timeout.ms",
            cfg.kafka.session_timeout_ms.to_string(),
        )
        .set("statistics.interval.ms", "5000")
        // Notice new partitions (and topics created after start) within seconds.
        .set("topic.metadata.refresh.interval.ms", "5000");
    let consumer: Arc<ServiceConsumer> = Arc::new(cc.create_with_context(ctx)?);
    let outcomes_subscribed = subscribe.len() == 3;
    let names: Vec<&str> = subscribe.iter().map(String::as_str).collect();
    consumer.subscribe(&names)?;
    shared.set_ready(true, "");
    shared.metrics.config_version.set(1);

    let cfg = Arc::new(cfg);
    let ported = Arc::new(ported);
    let mut tasks: Vec<tokio::task::JoinHandle<()>> = Vec::new();
    let mut next_offset: HashMap<(Source, i32), i64> = HashMap::new();
    let mut reset_seen: HashMap<(Source, i32), bool> = HashMap::new();
    let mut health = tokio::time::interval(Duration::from_secs(5));
    let mut current = cfg.clone();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            changed = reload.changed() => {
                if changed.is_err() { continue; }
                let next = reload.borrow_and_update().clone();
                let senders: Vec<_> = shared.partitions.iter().map(|e| e.value().clone()).collect();
                let mut ok = true;
                for tx in senders {
                    let (done, wait) = std::sync::mpsc::channel();
                    if tx.send(Control::Reconfigure(next.clone(), done)).await.is_ok() {
                        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || wait.recv_timeout(Duration::from_secs(10))).await.unwrap_or(Ok(Ok(()))) {
                            warn!(error = %e, "a partition refused the new config");
                            ok = false;
                        }
                    }
                }
                if ok {
                    current = next;
                    shared.metrics.config_version.inc();
                    info!(version = shared.metrics.config_version.get(), "rules, tiers and routing reloaded");
                }
            }
            _ = health.tick() => {
                let probe = producer.client().fetch_metadata(None, Timeout::After(Duration::from_secs(3)));
                match probe {
                    Ok(_) => shared.set_ready(true, ""),
                    Err(e) => shared.set_ready(false, &format!("broker unreachable: {e}")),
                }
            }
            msg = consumer.recv() => {
                match msg {
                    Ok(m) => {
                        let source = if m.topic() == topics.cdr { Source::Cdr }
                            else if m.topic() == topics.account { Source::Account }
                            else { Source::Outcomes };
                        let p = m.partition();
                        let key = (source, p);
                        if let Some(expected) = next_offset.get(&key) {
                            if m.offset() > *expected && reset_seen.remove(&key).unwrap_or(false) {
                                let skipped = m.offset() - expected;
                                warn!(topic = m.topic(), partition = p, skipped, "offsets deleted by retention before we read them");
                                shared.metrics.offsets_skipped.with_label_values(&[m.topic(), &p.to_string()]).inc_by(skipped as u64);
                            }
                        }
                        next_offset.insert(key, m.offset() + 1);
                        let tx = match shared.partitions.get(&p).map(|e| e.value().clone()) {
                            Some(tx) => tx,
                            None => {
                                let (tx, rx) = mpsc::channel(cfg.kafka.max_in_flight.min(4096));
                                let worker = match PartitionWorker::new(&current, &ported) {
                                    Ok(w) => w,
                                    Err(e) => return Err(e.into()),
                                };
                                let task = PartitionTask::new(p, worker, producer.clone(), consumer.clone(), shared.clone(), &current, outcomes_subscribed);
                                tasks.push(tokio::spawn(task.run(rx)));
                                shared.partitions.insert(p, tx.clone());
                                tx
                            }
                        };
                        let owned = Box::new(m.detach());
                        if tx.send(Control::Record(owned, source, Instant::now())).await.is_err() {
                            debug!(partition = p, "partition task gone; record will be redelivered");
                        }
                    }
                    Err(KafkaError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset)) => {
                        warn!("consumer offset out of range: resetting to the log start (data deleted before it was read)");
                        for v in reset_seen.values_mut() { *v = true; }
                        for k in next_offset.keys() { reset_seen.insert(*k, true); }
                    }
                    Err(e) => {
                        warn!(error = %e, "consumer error");
                        shared.set_ready(false, &format!("consumer error: {e}"));
                    }
                }
            }
        }
    }
    info!("shutting down: draining partitions");
    let deadline = Instant::now() + Duration::from_millis(cfg.kafka.drain_timeout_ms);
    let parts: Vec<i32> = shared.partitions.iter().map(|e| *e.key()).collect();
    for p in parts {
        if let Some((_, tx)) = shared.partitions.remove(&p) {
            let (done, _wait) = std::sync::mpsc::channel();
            let _ = tx.send(Control::Drain(deadline, done)).await;
        }
    }
    for t in tasks {
        let _ = tokio::time::timeout(
            deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(100),
            t,
        )
        .await;
    }
    if let Err(e) = consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync) {
        debug!(error = %e, "final commit");
    }
    producer.flush(Timeout::After(Duration::from_secs(5))).ok();
    shared.set_ready(false, "stopped");
    Ok(())
}

/// A record read (or an idle clock advance) not yet acknowledged: the record's offset is
/// stored once every publication it caused is acknowledged, in order.
struct Pending {
    /// The record, `None` for tickets an idle partition's clock raised.
    origin: Option<Origin>,
    arrived: Instant,
    /// `None` once acknowledged.
    sends: Vec<Option<Sending>>,
}

/// Where a pending record was read.
struct Origin {
    topic: String,
    partition: i32,
    offset: i64,
}

/// One publication of a pending record.
enum Sending {
    /// Enqueued; the future resolves with the broker's acknowledgement.
    Waiting(Publication, rdkafka::producer::DeliveryFuture),
    /// Delivery failed (after the producer's own retries): to be sent again.
    Failed(Publication),
}

/// A ticket or dead letter to publish (kept for a resend).
#[derive(Clone)]
struct Publication {
    topic: String,
    key: Vec<u8>,
    payload: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
}

struct PartitionTask {
    partition: i32,
    worker: PartitionWorker,
    producer: FutureProducer,
    consumer: Arc<ServiceConsumer>,
    shared: Shared,
    tickets_topic: String,
    dead_letter_topic: String,
    ticket_format: Format,
    max_in_flight: usize,
    pending: VecDeque<Pending>,
    suppressed_seen: BTreeMap<&'static str, u64>,
    /// Records received but not yet processed, per source, with their event times.
    inputs: HashMap<Source, VecDeque<Buffered>>,
    buffered: usize,
    next_offset: HashMap<Source, i64>,
    blocked_since: Option<Instant>,
    waited_out: bool,
    topics: crate::config::TopicsConfig,
    worker_format: Format,
    handles: HashMap<Source, SourceHandles>,
    idle: IdleClock,
    /// Whether the outcome topic exists (and is read): otherwise it is never waited for.
    outcomes_subscribed: bool,
}

/// The last known end offset of a partition, from librdkafka's cache (updated with every
/// fetch response; no network call).
fn cached_high_watermark(consumer: &ServiceConsumer, topic: &str, partition: i32) -> Option<i64> {
    let topic = std::ffi::CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client pointer is valid for the consumer's lifetime (we hold a reference),
    // the topic is a NUL-terminated string alive for the call, and the out-pointers point
    // to live locals. rd_kafka_get_watermark_offsets only reads cached state.
    let err = unsafe {
        rdkafka_sys::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rdkafka_sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
        .then_some(high)
}

/// Metric handles of one input topic-partition, resolved once (label look-ups take a lock
/// and hash the labels; per record that was a measurable share of the service's time).
struct SourceHandles {
    consumed: prometheus::IntCounter,
    lag: prometheus::Gauge,
}

impl SourceHandles {
    fn new(m: &Metrics, topic: &str, partition: i32) -> SourceHandles {
        SourceHandles {
            consumed: m.records_consumed.with_label_values(&[topic]),
            lag: m
                .event_time_lag
                .with_label_values(&[topic, &partition.to_string()]),
        }
    }
}

/// A record waiting its turn: the message with its event time, and when it arrived.
type Buffered = (Box<(OwnedMessage, i64)>, Instant);

/// How long a partition waits for a lagging input before processing the other one anyway.
const ALIGNMENT_WAIT: Duration = Duration::from_secs(2);

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// The event time of an encoded CDR or account event without decoding it all (field 3,
/// `event_time_ms`, in both messages); `i64::MIN` when it cannot be read, so a bad record
/// is handled (dead-lettered) first.
pub fn peek_event_time(format: Format, payload: Option<&[u8]>) -> i64 {
    let Some(mut b) = payload else {
        return i64::MIN;
    };
    match format {
        Format::Json => {
            #[derive(serde::Deserialize)]
            struct T {
                #[serde(rename = "eventTimeMs", alias = "event_time_ms")]
                t: Option<serde_json::Value>,
            }
            let Ok(T { t: Some(v) }) = serde_json::from_slice::<T>(b) else {
                return i64::MIN;
            };
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .unwrap_or(i64::MIN)
        }
        Format::Protobuf => {
            while !b.is_empty() {
                let Ok(key) = prost::encoding::decode_varint(&mut b) else {
                    return i64::MIN;
                };
                let (field, wire) = (key >> 3, key & 7);
                match wire {
                    0 => {
                        let Ok(v) = prost::encoding::decode_varint(&mut b) else {
                            return i64::MIN;
                        };
                        if field == 3 {
                            return v as i64;
                        }
                    }
                    1 if b.len() >= 8 => b = &b[8..],
                    2 => {
                        let Ok(len) = prost::encoding::decode_varint(&mut b) else {
                            return i64::MIN;
                        };
                        if (len as usize) > b.len() {
                            return i64::MIN;
                        }
                        b = &b[len as usize..];
                    }
                    5 if b.len() >= 4 => b = &b[4..],
                    _ => return i64::MIN,
                }
            }
            0
        }
    }
}

impl PartitionTask {
    fn new(
        partition: i32,
        worker: PartitionWorker,
        producer: FutureProducer,
        consumer: Arc<ServiceConsumer>,
        shared: Shared,
        cfg: &Config,
        outcomes_subscribed: bool,
    ) -> PartitionTask {
        PartitionTask {
            partition,
            worker,
            producer,
            consumer,
            shared,
            tickets_topic: cfg.kafka.topics.tickets.clone(),
            dead_letter_topic: cfg.kafka.topics.dead_letter.clone(),
            ticket_format: cfg.kafka.ticket_format,
            max_in_flight: cfg.kafka.max_in_flight,
            pending: VecDeque::new(),
            suppressed_seen: BTreeMap::new(),
            inputs: HashMap::new(),
            buffered: 0,
            next_offset: HashMap::new(),
            blocked_since: None,
            waited_out: false,
            topics: cfg.kafka.topics.clone(),
            worker_format: cfg.kafka.input_format,
            handles: HashMap::new(),
            idle: IdleClock::new(cfg.kafka.idle_timeout_ms),
            outcomes_subscribed,
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Control>) {
        loop {
            // Merge the co-partitioned inputs (outcomes included) by event time, as replay
            // does: take the record with the earliest head; wait for a source with nothing
            // buffered unless it has caught up with its log end (or kept us waiting too long).
            while let Some(source) = self.next_source() {
                let Some((m, arrived)) = self.inputs.get_mut(&source).and_then(|q| q.pop_front())
                else {
                    break;
                };
                self.buffered -= 1;
                self.process(&m.0, source, arrived).await;
                if self.pending.len() >= self.max_in_flight {
                    break;
                }
            }
            let waiting = self.blocked_since.map(|t| t + ALIGNMENT_WAIT);
            let idle_at = self.idle.deadline(self.buffered > 0);
            tokio::select! {
                biased;
                _ = Self::front_acked(&mut self.pending), if !self.pending.is_empty() => {
                    self.settle_front().await;
                }
                _ = sleep_until_opt(waiting), if waiting.is_some() => {
                    self.waited_out = true;
                }
                item = rx.recv(), if self.pending.len() < self.max_in_flight && self.buffered < self.max_in_flight => {
                    match item {
                        None => break,
                        Some(Control::Record(m, source, arrived)) => {
                            let t = peek_event_time(self.worker_format, m.payload());
                            self.next_offset.insert(source, m.offset() + 1);
                            self.inputs.entry(source).or_default().push_back((Box::new((*m, t)), arrived));
                            self.buffered += 1;
                        }
                        Some(Control::Describe(who, reply)) => { let _ = reply.send(self.worker.engine().describe(who)); }
                        Some(Control::Reconfigure(cfg, done)) => {
                            let r = self.worker.engine_mut().reconfigure(&*cfg).map_err(|e| e.to_string());
                            let _ = done.send(r);
                        }
                        Some(Control::Drain(deadline, done)) => {
                            let left = deadline.saturating_duration_since(Instant::now());
                            let _ = tokio::time::timeout(left, self.drain()).await;
                            let _ = done.send(());
                            return;
                        }
                    }
                }
                _ = sleep_until_opt(idle_at), if idle_at.is_some() && self.pending.len() < self.max_in_flight => {
                    self.advance_idle().await;
                }
            }
        }
        self.drain().await;
    }

    /// The source whose head record to process next, or `None` to wait for input.
    fn next_source(&mut self) -> Option<Source> {
        let head = |s: Source| {
            self.inputs
                .get(&s)
                .and_then(|q| q.front())
                .map(|(m, _)| m.1)
        };
        // Outcomes are merged too: a RETAINED outcome then suppresses what it does in replay.
        let source = Source::earliest(
            head(Source::Cdr),
            head(Source::Account),
            head(Source::Outcomes),
        )?;
        let blocked = [Source::Cdr, Source::Account, Source::Outcomes]
            .into_iter()
            .filter(|s| *s != source && head(*s).is_none())
            .any(|other| !self.caught_up(other));
        if blocked && !self.waited_out {
            self.blocked_since.get_or_insert_with(Instant::now);
            return None;
        }
        self.blocked_since = None;
        self.waited_out = false;
        Some(source)
    }

    /// Whether we have read everything the broker has for `source` in this partition.
    fn caught_up(&self, source: Source) -> bool {
        let topic = match source {
            Source::Cdr => &self.topics.cdr,
            Source::Account => &self.topics.account,
            Source::Outcomes if !self.outcomes_subscribed => return true,
            Source::Outcomes => &self.topics.outcomes,
        };
        let Some(high) = cached_high_watermark(&self.consumer, topic, self.partition) else {
            return false;
        };
        match self.next_offset.get(&source) {
            Some(next) => *next >= high,
            None => high <= 0 || self.consumer_position_at_end(topic, high),
        }
    }

    fn consumer_position_at_end(&self, topic: &str, high: i64) -> bool {
        let Ok(pos) = self.consumer.position() else {
            return false;
        };
        pos.find_partition(topic, self.partition)
            .and_then(|e| match e.offset() {
                rdkafka::Offset::Offset(o) => Some(o >= high),
                _ => None,
            })
            .unwrap_or(false)
    }

    /// Resolves when every publication of the oldest pending record is acknowledged (or
    /// failed); cancel-safe: finished sends are taken out as they complete.
    async fn front_acked(pending: &mut VecDeque<Pending>) {
        let Some(front) = pending.front_mut() else {
            return;
        };
        for slot in front.sends.iter_mut() {
            let Some(Sending::Waiting(_, fut)) = slot.as_mut() else {
                continue;
            };
            let failed = match fut.await {
                Ok(Ok(_)) => false,
                Ok(Err((e, _))) => {
                    warn!(error = %e, "delivery failed; sending again");
                    true
                }
                Err(_) => true,
            };
            if failed {
                if let Some(Sending::Waiting(p, _)) = slot.take() {
                    *slot = Some(Sending::Failed(p));
                }
                return;
            }
            *slot = None;
        }
    }

    /// After [`Self::front_acked`]: send failed publications again, or store the offset once
    /// every publication of the oldest record is acknowledged.
    async fn settle_front(&mut self) {
        let Some(front) = self.pending.front_mut() else {
            return;
        };
        let failed: Vec<Publication> = front
            .sends
            .iter_mut()
            .filter_map(|slot| match slot.take() {
                Some(Sending::Failed(p)) => Some(p),
                other => {
                    *slot = other;
                    None
                }
            })
            .collect();
        for p in failed {
            let fut = publish(&self.producer, &p).await;
            if let Some(front) = self.pending.front_mut() {
                front.sends.push(Some(Sending::Waiting(p, fut)));
            }
        }
        let done = self
            .pending
            .front()
            .is_some_and(|f| f.sends.iter().all(Option::is_none));
        if done {
            if let Some(Pending {
                origin: Some(o),
                arrived,
                ..
            }) = self.pending.pop_front()
            {
                if let Err(e) = self.consumer.store_offset(&o.topic, o.partition, o.offset) {
                    debug!(error = %e, "offset not stored (partition revoked?)");
                }
                self.shared
                    .metrics
                    .processing_latency
                    .observe(arrived.elapsed().as_secs_f64());
            }
        }
    }

    async fn drain(&mut self) {
        while !self.pending.is_empty() {
            Self::front_acked(&mut self.pending).await;
            self.settle_front().await;
        }
    }
}

/// Enqueues a publication, backing off while the producer queue is full.
async fn publish(producer: &FutureProducer, p: &Publication) -> rdkafka::producer::DeliveryFuture {
    {
        let mut backoff = Duration::from_millis(5);
        loop {
            let mut headers = OwnedHeaders::new();
            for (k, v) in &p.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v),
                });
            }
            let rec = FutureRecord::to(&p.topic)
                .key(&p.key)
                .payload(&p.payload)
                .headers(headers);
            match producer.send_result(rec) {
                Ok(f) => return f,
                Err((e, _)) => {
                    // Queue full (or a transient local error): back off; acknowledgements
                    // free room. Never drop the record.
                    debug!(error = %e, "producer queue full; backing off");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                }
            }
        }
    }
}

impl PartitionTask {
    async fn process(&mut self, m: &OwnedMessage, source: Source, arrived: Instant) {
        let metrics = &self.shared.metrics;
        let handles = self
            .handles
            .entry(source)
            .or_insert_with(|| SourceHandles::new(metrics, m.topic(), self.partition));
        handles.consumed.inc();
        let now = wall_clock_ms();
        let out = self.worker.process(source, m.payload(), now);
        let mut publications = Vec::new();
        if let Some(t) = out.event_time_ms {
            handles.lag.set((now - t) as f64 / 1000.0);
        }
        if out.duplicate {
            metrics
                .duplicate_records
                .with_label_values(&[m.topic()])
                .inc();
        }
        if out.late {
            metrics.late_records.with_label_values(&[m.topic()]).inc();
        }
        if let Some(dl) = &out.dead_letter {
            if matches!(dl.kind, "decode" | "invalid" | "empty") {
                metrics.decode_errors.with_label_values(&[m.topic()]).inc();
            }
            metrics
                .dead_lettered
                .with_label_values(&[m.topic(), dl.kind])
                .inc();
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
            publications.push(Publication {
                topic: self.dead_letter_topic.clone(),
                key: m.key().map(<[u8]>::to_vec).unwrap_or_default(),
                payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                headers,
            });
        }
        publications.extend(self.ticket_publications(&out.tickets));
        let origin = Origin {
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
        };
        self.enqueue(Some(origin), arrived, publications).await;
        let newest = self.worker.engine().newest_event_ms();
        if self.idle.record(newest, Instant::now()) {
            self.idle_gauge().set(0);
        }
        if !out.tickets.is_empty() || self.pending.len() <= 1 {
            let engine = self.worker.engine();
            let p = self.partition.to_string();
            let metrics = &self.shared.metrics;
            metrics
                .subscribers
                .with_label_values(&[&p])
                .set(engine.stats().subscribers as i64);
            metrics
                .state_bytes
                .with_label_values(&[&p])
                .set(engine.state_bytes() as i64);
        }
    }

    /// Publishes `publications` and queues them to be acknowledged, in order.
    async fn enqueue(
        &mut self,
        origin: Option<Origin>,
        arrived: Instant,
        publications: Vec<Publication>,
    ) {
        let mut sends = Vec::with_capacity(publications.len());
        for p in publications {
            let fut = publish(&self.producer, &p).await;
            sends.push(Some(Sending::Waiting(p, fut)));
        }
        self.pending.push_back(Pending {
            origin,
            arrived,
            sends,
        });
    }

    /// The publications of new or corrected tickets (remembered for agent screens and
    /// counted).
    fn ticket_publications(&mut self, tickets: &[CareTicket]) -> Vec<Publication> {
        let mut publications = Vec::with_capacity(tickets.len());
        for t in tickets {
            self.shared.remember(t);
            let payload = match self.ticket_format {
                Format::Protobuf => prost::Message::encode_to_vec(t),
                Format::Json => codec::ticket_to_json_line(t).trim_end().as_bytes().to_vec(),
            };
            publications.push(Publication {
                topic: self.tickets_topic.clone(),
                key: t.subscriber.as_bytes().to_vec(),
                payload,
                headers: vec![
                    ("queue".into(), t.queue.as_bytes().to_vec()),
                    ("ticket_id".into(), t.ticket_id.as_bytes().to_vec()),
                ],
            });
        }
        self.count_tickets(tickets);
        publications
    }

    /// The partition's inputs have been idle: moves its event-time clock on with the wall
    /// clock (see [`super::idle`]) and publishes the tickets of the days that closed.
    async fn advance_idle(&mut self) {
        let now = Instant::now();
        let Some(t) = self.idle.due(now) else {
            return;
        };
        self.idle_gauge().set(1);
        let mut tickets = Vec::new();
        self.worker.engine_mut().advance_to(t, &mut tickets);
        if tickets.is_empty() {
            return;
        }
        debug!(
            partition = self.partition,
            tickets = tickets.len(),
            "idle partition closed days"
        );
        let publications = self.ticket_publications(&tickets);
        self.enqueue(None, now, publications).await;
    }

    fn idle_gauge(&self) -> prometheus::IntGauge {
        self.shared
            .metrics
            .partition_idle
            .with_label_values(&[&self.partition.to_string()])
    }

    fn count_tickets(&mut self, tickets: &[CareTicket]) {
        let m = &self.shared.metrics;
        let stats = self.worker.engine().stats();
        for (reason, n) in &stats.suppressed {
            let seen = self.suppressed_seen.entry(reason).or_insert(0);
            if *n > *seen {
                m.suppressed.with_label_values(&[reason]).inc_by(n - *seen);
                *seen = *n;
            }
        }
        for t in tickets {
            let prio = crate::proto::Priority::try_from(t.priority)
                .map(|p| p.as_str_name())
                .unwrap_or("UNSPECIFIED");
            let queue = if t.queue.is_empty() {
                "none"
            } else {
                t.queue.as_str()
            };
            m.tickets
                .with_label_values(&[t.tier.as_str(), prio, queue])
                .inc();
            for s in &t.signals {
                m.ticket_signals.with_label_values(&[&s.rule]).inc();
            }
        }
    }
}

/// The wall clock, for the future-skew check and lag metrics (the core never reads it).
#[allow(clippy::disallowed_methods)]
pub(crate) fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    #[test]
    fn peeks_the_event_time_without_a_full_decode() {
        let c = crate::proto::CallDetailRecord {
            record_id: "r".into(),
            subscriber: "8613012345678".into(),
            event_time_ms: 1_773_000_000_123,
            other_party: "10086".into(),
            ..Default::default()
        };
        assert_eq!(
            peek_event_time(Format::Protobuf, Some(&c.encode_to_vec())),
            1_773_000_000_123
        );
        let a = crate::proto::AccountEvent {
            event_id: "e".into(),
            event_time_ms: 42,
            ..Default::default()
        };
        assert_eq!(
            peek_event_time(Format::Protobuf, Some(&a.encode_to_vec())),
            42
        );
        assert_eq!(
            peek_event_time(Format::Protobuf, Some(&[0xff, 0xff])),
            i64::MIN
        );
        assert_eq!(peek_event_time(Format::Protobuf, None), i64::MIN);
        assert_eq!(
            peek_event_time(
                Format::Json,
                Some(br#"{"recordId":"x","eventTimeMs":"17"}"#)
            ),
            17
        );
        assert_eq!(
            peek_event_time(Format::Json, Some(br#"{"eventTimeMs":18}"#)),
            18
        );
        assert_eq!(peek_event_time(Format::Json, Some(b"nope")), i64::MIN);
    }
}
