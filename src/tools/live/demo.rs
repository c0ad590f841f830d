//! `churnwatch demo`: the broker, the detector as a consumer group, the story workload
//! streamed in, and the screen: each ticket as it is published, progress, and at the end the
//! planted journeys found.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use prost::Message as _;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use tokio::sync::watch;

use super::broker::start_broker;
use super::produce::{bulk_producer, stream};
use super::{LiveError, DEMO_PARTITIONS};
use crate::config::{Config, Format};
use crate::detect::Msisdn;
use crate::kafka::service::Shared;
use crate::proto::{self, CareTicket};
use crate::tools::workload::WireEvent;

/// What the demo saw.
#[derive(Debug, Default)]
pub struct LiveSummary {
    pub produced: u64,
    pub tickets: BTreeMap<String, CareTicket>,
    pub found: Vec<(String, String, bool)>,
    pub elapsed: Duration,
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

/// `kafka.idle_timeout_ms` in the demo, unless the configuration sets another.
const DEMO_IDLE_TIMEOUT_MS: u64 = 2_000;

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
    // The demo streams months in seconds (a day in about a quarter of a second at the
    // default rate): an input quiet for two seconds of wall time has been quiet for a week
    // of event time, so it stops holding the others then rather than after the minute a
    // real-time feed is given.
    if cfg.kafka.idle_timeout_ms == crate::config::KafkaConfig::default().idle_timeout_ms {
        cfg.kafka.idle_timeout_ms = DEMO_IDLE_TIMEOUT_MS;
    }
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
