//! `churnwatch demo` and `churnwatch broker`: the whole service on an embedded broker.
//!
//! The demo starts librdkafka's mock cluster in-process (real Kafka protocol over TCP),
//! creates the topics, streams a synthetic workload into them at a steady rate, runs the
//! detector as a real consumer group against it (the same code as `churnwatch run`), and
//! prints each ticket as it is published, a running summary, and at the end how many
//! planted journeys were found. `/metrics` is served meanwhile.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use prost::Message as _;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::message::ToBytes;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use tokio::sync::watch;

use crate::config::{Config, Format, Partitioner};
use crate::detect::Msisdn;
use crate::kafka::embedded::{EmbeddedBroker, EmbeddedError};
use crate::kafka::partitioner;
use crate::kafka::service::Shared;
use crate::proto::{self, CareTicket};
use crate::tools::workload::WireEvent;

/// Why the live demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(transparent)]
    Broker(#[from] EmbeddedError),
    #[error("kafka client: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    App(#[from] crate::app::AppError),
    #[error("reading generated files: {0}")]
    Io(String),
}

/// Partitions of every input topic of the embedded demo.
pub const DEMO_PARTITIONS: i32 = 4;

/// Starts the embedded broker and creates every topic of `cfg` (before any client can
/// auto-create one with the mock's small default limits).
pub fn start_broker(cfg: &Config, partitions: i32) -> Result<EmbeddedBroker, EmbeddedError> {
    let broker = EmbeddedBroker::start(1)?;
    broker.set_group_initial_rebalance_delay(Duration::from_millis(100))?;
    let t = &cfg.kafka.topics;
    for (topic, n) in [
        (&t.cdr, partitions),
        (&t.account, partitions),
        (&t.outcomes, partitions),
        (&t.tickets, partitions),
        (&t.dead_letter, 1),
        (&t.changelog, partitions),
    ] {
        if topic.is_empty() {
            continue;
        }
        broker.create_topic(topic, n)?;
    }
    Ok(broker)
}

/// What the demo saw.
#[derive(Debug, Default)]
pub struct LiveSummary {
    pub produced: u64,
    pub tickets: BTreeMap<String, CareTicket>,
    pub found: Vec<(String, String, bool)>,
    pub elapsed: Duration,
}

/// Partition of a subscriber under Kafka's default partitioner (murmur2, as the Java
/// clients and librdkafka's `murmur2_random`): the key decides, so every record of a
/// subscriber meets in one partition of each input topic, where `run` expects it.
pub fn partition_of(subscriber: &str, partitions: i32) -> i32 {
    partition_under(Partitioner::Murmur2, subscriber, partitions)
}

/// Partition of a subscriber under `partitioner` (murmur2 when it has no fixed one).
fn partition_under(partitioner: Partitioner, subscriber: &str, partitions: i32) -> i32 {
    let key = subscriber.as_bytes();
    partitioner::partition_for(partitioner, key, partitions)
        .or_else(|| partitioner::partition_for(Partitioner::Murmur2, key, partitions))
        .unwrap_or(0)
}

/// Produces the events at `rate` per second (0 = as fast as possible), in the given order.
pub async fn stream(
    producer: &FutureProducer,
    cfg: &Config,
    events: &[WireEvent],
    partitions: i32,
    rate: u64,
    stop: &watch::Receiver<bool>,
) -> u64 {
    let t = &cfg.kafka.topics;
    let mut sent = 0u64;
    let start = Instant::now();
    let mut pending = Vec::new();
    for e in events {
        if *stop.borrow() {
            break;
        }
        let json = cfg.kafka.input_format == Format::Json;
        let (topic, sub, bytes) = match e {
            WireEvent::Cdr(c) if json => (&t.cdr, c.subscriber.as_str(), to_json(c)),
            WireEvent::Account(a) if json => (&t.account, a.subscriber.as_str(), to_json(a)),
            WireEvent::Cdr(c) => (&t.cdr, c.subscriber.as_str(), c.encode_to_vec()),
            WireEvent::Account(a) => (&t.account, a.subscriber.as_str(), a.encode_to_vec()),
        };
        let mut rec = FutureRecord::to(topic)
            .key(sub)
            .payload(&bytes)
            .partition(partition_under(cfg.kafka.partitioner, sub, partitions));
        loop {
            match producer.send_result(rec) {
                Ok(f) => {
                    pending.push(f);
                    break;
                }
                Err((_, r)) => {
                    // Queue full: wait for acknowledgements to make room.
                    rec = r;
                    for f in pending.drain(..) {
                        let _ = f.await;
                    }
                    tokio::task::yield_now().await;
                }
            }
        }
        sent += 1;
        if pending.len() >= 1000 {
            for f in pending.drain(..) {
                let _ = f.await;
            }
        }
        if rate > 0 {
            // Pacing to the target rate (a producer's schedule, not synchronisation).
            let due = start + Duration::from_secs_f64(sent as f64 / rate as f64);
            if due > Instant::now() + Duration::from_millis(5) {
                for f in pending.drain(..) {
                    let _ = f.await;
                }
                tokio::time::sleep_until(due.into()).await;
            }
        }
    }
    for f in pending {
        let _ = f.await;
    }
    sent
}

fn line(t: &CareTicket, tz: chrono_tz::Tz) -> String {
    let when = chrono::DateTime::from_timestamp_millis(t.created_time_ms)
        .map(|d| d.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default();
    let who = Msisdn::parse(&t.subscriber)
        .map(|m| m.masked())
        .unwrap_or_default();
    let prio = proto::Priority::try_from(t.priority)
        .map(|p| p.as_str_name())
        .unwrap_or("?");
    let rules: Vec<&str> = t.signals.iter().map(|s| s.rule.as_str()).collect();
    let queue = if t.control_group {
        "(control group)"
    } else {
        t.queue.as_str()
    };
    format!(
        "{when}  {who}  {:<11} {prio:<3} {queue:<20} {}",
        t.tier,
        rules.join(", ")
    )
}

/// Runs the demo: broker, service, workload at `rate` events/s, live tickets on `out`.
/// Stops after `duration` (if given) or when `shutdown` resolves, whichever comes first.
pub async fn run_demo(
    mut cfg: Config,
    events: Vec<WireEvent>,
    planted: Vec<(String, String)>,
    rate: u64,
    duration: Option<Duration>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    out: &mut (dyn Write + Send),
) -> Result<LiveSummary, LiveError> {
    let started = Instant::now();
    let broker = start_broker(&cfg, DEMO_PARTITIONS)?;
    cfg.kafka.brokers = broker.bootstrap_servers();
    cfg.kafka.input_format = Format::Protobuf;
    cfg.kafka.ticket_format = crate::config::TicketFormat::Protobuf;
    let _ = writeln!(
        out,
        "embedded broker at {} (topics created, {DEMO_PARTITIONS} partitions)",
        cfg.kafka.brokers
    );
    if !cfg.http.listen.is_empty() {
        let _ = writeln!(out, "metrics at http://{}/metrics", cfg.http.listen);
    }
    let shared = Shared::default();
    let (stop_tx, stop_rx) = watch::channel(false);
    let service = spawn_service(&cfg, &shared, &stop_rx);
    let feeder = spawn_feeder(&cfg, events, rate, &stop_rx)?;
    let reader = ticket_reader(&cfg)?;
    let tickets = show_tickets(&cfg, &shared, &reader, started, duration, shutdown, out).await;
    let _ = stop_tx.send(true);
    let produced = feeder.await.unwrap_or(0);
    if let Ok(Err(e)) = service.await {
        // The screen above stayed empty; say why.
        let _ = writeln!(out, "detector stopped: {e}");
    }
    drop(reader);
    drop(broker);
    let found = planted_found(planted, &tickets);
    Ok(LiveSummary {
        produced,
        tickets,
        found,
        elapsed: started.elapsed(),
    })
}

/// The detector (`churnwatch run`'s code) as a task, until `stop` turns true.
fn spawn_service(
    cfg: &Config,
    shared: &Shared,
    stop: &watch::Receiver<bool>,
) -> tokio::task::JoinHandle<Result<(), crate::app::AppError>> {
    let cfg = cfg.clone();
    let shared = shared.clone();
    let mut rx = stop.clone();
    tokio::spawn(async move {
        crate::app::run(cfg, None, vec![], shared, async move {
            let _ = rx.wait_for(|s| *s).await;
        })
        .await
    })
}

/// A producer for bulk input: small linger, a deep queue, keys partitioned as `run`
/// expects them (`kafka.partitioner`).
fn bulk_producer(
    bootstrap: &str,
    partitioner: Partitioner,
) -> Result<FutureProducer, rdkafka::error::KafkaError> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("partitioner", partitioner::librdkafka_name(partitioner))
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()
}

/// The workload streamed into the broker as a task; it yields the number of events sent.
fn spawn_feeder(
    cfg: &Config,
    events: Vec<WireEvent>,
    rate: u64,
    stop: &watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<u64>, LiveError> {
    let producer = bulk_producer(&cfg.kafka.brokers, cfg.kafka.partitioner)?;
    let cfg = cfg.clone();
    let stop = stop.clone();
    Ok(tokio::spawn(async move {
        stream(&producer, &cfg, &events, DEMO_PARTITIONS, rate, &stop).await
    }))
}

/// The screen's own consumer of the ticket topic, from the beginning.
fn ticket_reader(cfg: &Config) -> Result<StreamConsumer, LiveError> {
    let reader: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &cfg.kafka.brokers)
        .set("group.id", "churnwatch-demo-screen")
        .set("auto.offset.reset", "earliest")
        .create()?;
    reader.subscribe(&[cfg.kafka.topics.tickets.as_str()])?;
    Ok(reader)
}

/// Prints each new ticket as it is published, and progress every five seconds, until
/// `duration` has passed (if given) or `shutdown` resolves. Returns the tickets by id.
async fn show_tickets(
    cfg: &Config,
    shared: &Shared,
    reader: &StreamConsumer,
    started: Instant,
    duration: Option<Duration>,
    shutdown: impl std::future::Future<Output = ()>,
    out: &mut (dyn Write + Send),
) -> BTreeMap<String, CareTicket> {
    let tz: chrono_tz::Tz = cfg
        .detect
        .engine
        .time_zone
        .parse()
        .unwrap_or(chrono_tz::Asia::Shanghai);
    let _ = writeln!(
        out,
        "created           subscriber     tier        pri queue                rules"
    );
    let mut tickets: BTreeMap<String, CareTicket> = BTreeMap::new();
    let deadline = duration.map(|d| tokio::time::Instant::now() + d);
    let mut progress = tokio::time::interval(Duration::from_secs(5));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => break,
            _ = progress.tick() => {
                let consumed = records_processed(cfg, shared);
                let _ = writeln!(out, "-- {:>5.0}s  records processed {consumed}  tickets {}", started.elapsed().as_secs_f64(), tickets.len());
            }
            msg = reader.recv() => {
                let Ok(m) = msg else { continue };
                let Some(Ok(t)) = m.payload().map(CareTicket::decode) else { continue };
                if !tickets.contains_key(&t.ticket_id) {
                    let _ = writeln!(out, "{}", line(&t, tz));
                }
                tickets.insert(t.ticket_id.clone(), t);
            }
        }
    }
    tickets
}

/// CDR and account records the service has consumed so far.
fn records_processed(cfg: &Config, shared: &Shared) -> u64 {
    let m = &shared.metrics;
    m.records_consumed
        .with_label_values(&[&cfg.kafka.topics.cdr])
        .get()
        + m.records_consumed
            .with_label_values(&[&cfg.kafka.topics.account])
            .get()
}

/// Each planted journey `(subscriber, rule)` with whether a ticket carries that rule's signal.
fn planted_found(
    planted: Vec<(String, String)>,
    tickets: &BTreeMap<String, CareTicket>,
) -> Vec<(String, String, bool)> {
    planted
        .into_iter()
        .map(|(sub, rule)| {
            let hit = tickets
                .values()
                .any(|t| t.subscriber == sub && t.signals.iter().any(|s| s.rule == rule));
            (sub, rule, hit)
        })
        .collect()
}

/// `churnwatch broker`: the embedded broker alone, with every topic of `cfg` created, until
/// `shutdown` resolves. Prints the bootstrap address.
pub async fn run_broker(
    cfg: &Config,
    partitions: i32,
    shutdown: impl std::future::Future<Output = ()>,
    out: &mut dyn Write,
) -> Result<(), LiveError> {
    let broker = start_broker(cfg, partitions)?;
    let _ = writeln!(out, "{}", broker.bootstrap_servers());
    let _ = writeln!(
        out,
        "embedded broker up; topics {}, {}, {}, {}, {} ({partitions} partitions) and {}. Ctrl-C stops it.",
        cfg.kafka.topics.cdr, cfg.kafka.topics.account, cfg.kafka.topics.outcomes, cfg.kafka.topics.tickets, cfg.kafka.topics.changelog, cfg.kafka.topics.dead_letter
    );
    let _ = out.flush();
    shutdown.await;
    drop(broker);
    Ok(())
}

/// One input file read record by record: `(event time, subscriber, protobuf bytes)`.
struct FileStream {
    reader: std::io::BufReader<std::fs::File>,
    json: bool,
    cdr: bool,
    buf: Vec<u8>,
    line: String,
}

impl FileStream {
    fn open(path: &std::path::Path, cdr: bool) -> std::io::Result<FileStream> {
        let json = !matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("pb" | "binpb" | "bin")
        );
        Ok(FileStream {
            reader: std::io::BufReader::new(std::fs::File::open(path)?),
            json,
            cdr,
            buf: Vec::new(),
            line: String::new(),
        })
    }

    /// The next well-formed record; malformed ones are skipped (the generator writes none).
    fn next(&mut self) -> Option<(i64, String, Vec<u8>)> {
        use std::io::BufRead;
        loop {
            let (time, sub, bytes) = if self.json {
                self.line.clear();
                if self.reader.read_line(&mut self.line).ok()? == 0 {
                    return None;
                }
                let l = self.line.trim();
                if l.is_empty() {
                    continue;
                }
                if self.cdr {
                    let Ok(m) = crate::codec::cdr_from_json(l) else {
                        continue;
                    };
                    (m.event_time_ms, m.subscriber.clone(), m.encode_to_vec())
                } else {
                    let Ok(m) = crate::codec::account_from_json(l) else {
                        continue;
                    };
                    (m.event_time_ms, m.subscriber.clone(), m.encode_to_vec())
                }
            } else {
                match crate::codec::read_delimited(&mut self.reader, &mut self.buf) {
                    Ok(crate::codec::Frame::Record) => {}
                    _ => return None,
                }
                let t = crate::codec::peek_event_time(Format::Protobuf, Some(&self.buf));
                let sub = if self.cdr {
                    proto::CallDetailRecord::decode(self.buf.as_slice())
                        .map(|m| m.subscriber)
                        .unwrap_or_default()
                } else {
                    proto::AccountEvent::decode(self.buf.as_slice())
                        .map(|m| m.subscriber)
                        .unwrap_or_default()
                };
                (t, sub, self.buf.clone())
            };
            let _ = bytes.len();
            return Some((time, sub, bytes));
        }
    }
}

/// The CDR and account files read in event-time order (the CDR first on a tie).
struct MergedFiles {
    cdr: FileStream,
    account: FileStream,
    next_cdr: Option<(i64, String, Vec<u8>)>,
    next_account: Option<(i64, String, Vec<u8>)>,
}

impl MergedFiles {
    fn open(cdr: &std::path::Path, account: &std::path::Path) -> Result<MergedFiles, LiveError> {
        let io = |e: std::io::Error| LiveError::Io(e.to_string());
        let mut cdr = FileStream::open(cdr, true).map_err(io)?;
        let mut account = FileStream::open(account, false).map_err(io)?;
        let (next_cdr, next_account) = (cdr.next(), account.next());
        Ok(MergedFiles {
            cdr,
            account,
            next_cdr,
            next_account,
        })
    }

    /// The next record `(is a CDR, subscriber, protobuf bytes)`; `None` when both are done.
    fn next(&mut self) -> Option<(bool, String, Vec<u8>)> {
        let take_cdr = match (&self.next_cdr, &self.next_account) {
            (None, None) => return None,
            (Some(x), Some(y)) => x.0 <= y.0,
            (Some(_), None) => true,
            (None, Some(_)) => false,
        };
        let rec = if take_cdr {
            std::mem::replace(&mut self.next_cdr, self.cdr.next())
        } else {
            std::mem::replace(&mut self.next_account, self.account.next())
        };
        rec.map(|(_, sub, bytes)| (take_cdr, sub, bytes))
    }
}

/// Queues `record`; while the producer's queue is full, waits for the `pending`
/// acknowledgements to make room.
async fn send_queued<K, P>(
    producer: &FutureProducer,
    mut record: FutureRecord<'_, K, P>,
    pending: &mut Vec<DeliveryFuture>,
) where
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    loop {
        match producer.send_result(record) {
            Ok(f) => {
                pending.push(f);
                return;
            }
            Err((_, r)) => {
                record = r;
                for f in pending.drain(..) {
                    let _ = f.await;
                }
                tokio::task::yield_now().await;
            }
        }
    }
}

/// Streams generated files into Kafka (CDR and account records merged by event time, keyed
/// by subscriber, protobuf), at `rate` records/s or as fast as possible (0). Returns the
/// number of records produced.
pub async fn publish_files(
    cfg: &Config,
    cdr: &std::path::Path,
    account: &std::path::Path,
    bootstrap: &str,
    rate: u64,
    progress: bool,
) -> Result<u64, LiveError> {
    let producer = bulk_producer(bootstrap, cfg.kafka.partitioner)?;
    let mut files = MergedFiles::open(cdr, account)?;
    let bar = progress.then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_message("records sent");
        pb
    });
    let start = Instant::now();
    let mut sent = 0u64;
    let mut pending = Vec::new();
    while let Some((is_cdr, sub, bytes)) = files.next() {
        let topic = if is_cdr {
            &cfg.kafka.topics.cdr
        } else {
            &cfg.kafka.topics.account
        };
        let record = FutureRecord::to(topic).key(&sub).payload(&bytes);
        send_queued(&producer, record, &mut pending).await;
        sent += 1;
        if pending.len() >= 10_000 {
            for f in pending.drain(..) {
                let _ = f.await;
            }
            if let Some(pb) = &bar {
                pb.set_position(sent);
            }
        }
        if rate > 0 {
            let due = start + Duration::from_secs_f64(sent as f64 / rate as f64);
            if due > Instant::now() + Duration::from_millis(5) {
                tokio::time::sleep_until(due.into()).await;
            }
        }
    }
    for f in pending {
        let _ = f.await;
    }
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    Ok(sent)
}

/// A message as proto3 JSON (what `kafka.input_format = "json"` reads).
fn to_json(m: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(m).unwrap_or_default()
}
