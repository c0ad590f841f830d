//! `churnwatch run`: the detection engine as a Kafka consumer-group service.
//!
//! This module is the wiring; each role has its own module, as Vector splits its Kafka
//! sink: [`consumer`] (the group, rebalances, assignment), [`partition`](super::partition)
//! (one task and one engine per partition), [`producer`] (publishing, failures sorted
//! into retriable, permanent and fatal) and [`dead_letter`](super::dead_letter) (why a
//! record was set aside).
//!
//! - **Start-up**: wait (with backoff, `/readyz` saying why) for the broker and the input
//!   topics, then refuse to run unless the CDR and account topics (and the outcome topic,
//!   if it exists) are co-partitioned: same count, keyed by subscriber, so partition `p` of
//!   each holds the same subscribers and feeds one partition task. Scale-out is the
//!   consumer group's: another instance takes over partitions.
//! - **Partition tasks**: each assigned partition's task starts at once and reads its own
//!   input queues ([`consumer::queues`]); a failed one is restarted from its checkpoint
//!   ([`tasks`]). Each record read is checked: offsets skipped by a reset to the log start
//!   are logged at warn and counted; a record on a partition other than its key's under
//!   `kafka.partitioner` is counted, logged and shown by `/readyz` as a warning
//!   ([`super::partitioner`]), and processed all the same. This loop only serves
//!   partition starts, errors not tied to a partition, health checks and reloads, so no
//!   partition can hold it up. The rebalance callbacks run on the thread that polls the
//!   consumer ([`consumer::Poller`]), so they do not hold the loop up either. Whether a
//!   broker answers comes from librdkafka's statistics, read on that thread: after the
//!   one metadata request at start-up, the service asks the broker nothing of its own.
//! - **Reload**: a new config reaches every partition's engine; if one refuses it, the
//!   running rules stay.
//! - **State**: the changelog topic is checked (co-partitioned) or created at start-up;
//!   each partition's task restores its engine before its first record
//!   ([`crate::kafka::consumer::assign`]), while the others go on, and checkpoints it
//!   ([`super::changelog`]).
//! - **Shutdown** drains every partition task within `drain_timeout_ms` (each writes a
//!   final checkpoint), commits the stored offsets and flushes the producer. A partition
//!   task that cannot publish a ticket (or whose producer failed fatally) stops the
//!   service the same way, and `run` returns the error, so the process exits non-zero.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::util::Timeout;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::config::{Config, TopicsConfig};
use crate::detect::engine::PortedNumber;

use super::changelog;
use super::consumer::{self, InputConsumer, Inspect, OffsetGaps};
use super::partitioner::KeyCheck;
use super::producer;
use super::readiness::Condition;
use super::shared::Control;
pub use super::shared::Shared;
use super::Error;
use crate::kafka::consumer::assign::Assigner;

mod tasks;

/// Runs the service until `shutdown` resolves. `reload` delivers validated new configs.
pub async fn run(
    cfg: Config,
    ported: Vec<PortedNumber>,
    shared: Shared,
    mut reload: watch::Receiver<Arc<Config>>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    tokio::pin!(shutdown);
    let producer = producer::create(&cfg)?;
    let topics = &cfg.kafka.topics;
    let Some(counts) = wait_for_inputs(&producer, topics, &shared, &mut shutdown).await else {
        return Ok(());
    };
    let subscribe = subscriptions(topics, counts)?;
    let client = super::client_config(&cfg);
    if topics.changelog.is_empty() {
        warn!("no changelog (kafka.topics.changelog is empty): a restart forgets every subscriber");
    } else {
        changelog::topic::ensure(&client, &topics.changelog, counts.cdr, |t| {
            partition_counts(&producer, [t]).map(|[n]| n)
        })
        .await?;
    }
    let cfg = Arc::new(cfg);
    let assigner = Arc::new(Assigner {
        shared: shared.clone(),
        client,
        changelog: cfg.kafka.topics.changelog.clone(),
        current: std::sync::RwLock::new(cfg.clone()),
        ported: Arc::new(ported),
    });
    let (failures, mut failed) = mpsc::unbounded_channel();
    let consumer = Arc::new(consumer::create(&cfg, assigner.clone(), failures.clone())?);
    consumer.context().queues.attach(&consumer);
    let names: Vec<&str> = subscribe.iter().map(String::as_str).collect();
    consumer.subscribe(&names)?;
    let keyed = i32::try_from(counts.cdr).unwrap_or(i32::MAX);
    let _ = shared.keying.set((cfg.kafka.partitioner, keyed));
    let r = &shared.readiness;
    r.raise(Condition::JoiningGroup, "");
    r.clear(Condition::Starting);
    shared.metrics.config_version.set(1);

    let mut service = Service {
        inspect: Inspect {
            keys: KeyCheck::new(
                cfg.kafka.partitioner,
                counts.cdr,
                shared.partitioner.clone(),
            ),
            gaps: OffsetGaps::default(),
        },
        partition_count: counts.cdr,
        subscribed: subscribe.clone(),
        running: HashMap::new(),
        restarts: tasks::Restarts::new(),
        current: cfg.clone(),
        cfg,
        assigner,
        producer,
        consumer: consumer.clone(),
        shared,
        outcomes_subscribed: subscribe.len() == 3,
        failures,
        tasks: JoinSet::new(),
    };
    let mut result = Ok(());
    let (poller, mut polled) = consumer::Poller::start(consumer.clone()).map_err(Error::Poller)?;
    let mut health = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            changed = reload.changed() => {
                if changed.is_ok() {
                    let next = reload.borrow_and_update().clone();
                    service.reload(next).await;
                }
            }
            _ = health.tick() => service.check_health(),
            _ = consumer.context().queues.assigned.notified() => service.start_assigned(),
            Some(ended) = service.tasks.join_next_with_id(), if !service.tasks.is_empty() => {
                service.task_ended(ended)?;
            }
            Some(p) = polled.recv() => service.route(p)?,
            Some(stop) = failed.recv() => {
                result = Err(stop);
                break;
            }
        }
    }
    poller.stop().await;
    service.shutdown().await;
    result
}

/// The input topics' partition counts, from one metadata request.
#[derive(Debug, Clone, Copy)]
struct Counts {
    cdr: usize,
    account: usize,
    /// `None` if the outcome topic does not exist.
    outcomes: Option<usize>,
}

/// Waits for the broker and the CDR and account topics, with backoff; `/readyz` says why
/// meanwhile. Their partition counts (and the outcome topic's), or `None` if `shutdown`
/// came first.
async fn wait_for_inputs<S: Future<Output = ()>>(
    producer: &FutureProducer,
    topics: &TopicsConfig,
    shared: &Shared,
    shutdown: &mut Pin<&mut S>,
) -> Option<Counts> {
    let mut backoff = Duration::from_millis(200);
    loop {
        let names = [&*topics.cdr, &*topics.account, &*topics.outcomes];
        let (condition, reason) = match partition_counts(producer, names) {
            Ok([Some(cdr), Some(account), outcomes]) => {
                shared.readiness.clear(Condition::BrokerUnreachable);
                shared.readiness.clear(Condition::TopicMissing);
                for (topic, n) in [(&topics.cdr, cdr), (&topics.account, account)] {
                    let gauge = shared.metrics.input_partitions.with_label_values(&[topic]);
                    gauge.set(i64::try_from(n).unwrap_or(i64::MAX));
                }
                return Some(Counts {
                    cdr,
                    account,
                    outcomes,
                });
            }
            Err(e) => (Condition::BrokerUnreachable, e.to_string()),
            Ok([None, ..]) => (Condition::TopicMissing, format!("`{}`", topics.cdr)),
            Ok(_) => (Condition::TopicMissing, format!("`{}`", topics.account)),
        };
        let other = match condition {
            Condition::BrokerUnreachable => Condition::TopicMissing,
            _ => Condition::BrokerUnreachable,
        };
        shared.readiness.clear(other);
        shared.readiness.raise(condition, &*reason);
        let reason = format!("{condition}: {reason}");
        warn!(%reason, retry_in_ms = backoff.as_millis() as u64, "waiting for kafka");
        tokio::select! {
            _ = shutdown.as_mut() => return None,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// The topics to read: CDR and account, which must be co-partitioned (`counts`), and the
/// outcome topic when it exists, which must be too.
fn subscriptions(topics: &TopicsConfig, counts: Counts) -> Result<Vec<String>, Error> {
    let not_co_partitioned = |b: &str, b_count| Error::NotCoPartitioned {
        a: topics.cdr.clone(),
        a_count: counts.cdr,
        b: b.to_string(),
        b_count,
    };
    if counts.cdr != counts.account {
        return Err(not_co_partitioned(&topics.account, counts.account));
    }
    let mut subscribe = vec![topics.cdr.clone(), topics.account.clone()];
    match counts.outcomes {
        Some(n) if n == counts.cdr => subscribe.push(topics.outcomes.clone()),
        Some(n) => return Err(not_co_partitioned(&topics.outcomes, n)),
        None => {
            warn!(topic = %topics.outcomes, "outcome topic not found; ticket outcomes are not read")
        }
    }
    Ok(subscribe)
}

/// Partition counts of `names`, `None` for a topic that does not exist (yet), from one
/// metadata request. Asks for every topic's metadata: naming the topics would make
/// brokers that auto-create topics create them.
fn partition_counts<const N: usize>(
    client: &FutureProducer,
    names: [&str; N],
) -> Result<[Option<usize>; N], KafkaError> {
    let md = client
        .client()
        .fetch_metadata(None, Timeout::After(Duration::from_secs(5)))?;
    Ok(names.map(|name| {
        md.topics()
            .iter()
            .find(|t| t.name() == name && t.error().is_none())
            .map(|t| t.partitions().len())
            .filter(|&n| n > 0)
    }))
}

/// The running service: the clients, the partition tasks and the assignment bookkeeping.
struct Service {
    /// The config the service started with.
    cfg: Arc<Config>,
    /// The config new partition tasks start with (the last reload every partition took).
    current: Arc<Config>,
    assigner: Arc<Assigner>,
    producer: FutureProducer,
    consumer: Arc<InputConsumer>,
    shared: Shared,
    outcomes_subscribed: bool,
    /// Given to every partition task, to report the failure that stops the service.
    failures: mpsc::UnboundedSender<Error>,
    tasks: JoinSet<()>,
    /// The tasks running, by tokio task id (see [`tasks`]).
    running: HashMap<tokio::task::Id, tasks::Running>,
    restarts: tasks::Restarts,
    /// Checks of the records that come through the shared queue (see `route`).
    inspect: Inspect,
    /// Partitions of each input topic.
    partition_count: usize,
    /// The input topics read.
    subscribed: Vec<String>,
}

impl Service {
    /// Notes what the consumer reported outside any partition. Records never come here:
    /// each input partition's queue is split off before it is assigned
    /// ([`consumer::queues`]), so one that does is a [`Error::Unsplit`].
    fn route(&mut self, polled: consumer::Polled) -> Result<(), Error> {
        match polled {
            consumer::Polled::Record { topic, partition } => {
                Err(Error::Unsplit { topic, partition })
            }
            consumer::Polled::Error(e) => match self.inspect.error(&self.shared, &e) {
                Some(stop) => Err(stop),
                None => Ok(()),
            },
        }
    }

    /// Swaps a new config into every partition's engine; if one refuses it, the running
    /// rules stay.
    async fn reload(&mut self, next: Arc<Config>) {
        // Every partition at once, under one deadline: a busy one delays the reload by at
        // most CONTROL_TIMEOUT, not by CONTROL_TIMEOUT per partition.
        let deadline = tokio::time::Instant::now() + CONTROL_TIMEOUT;
        let mut asked = JoinSet::new();
        for e in self.shared.partitions.iter() {
            let (tx, cfg) = (e.value().clone(), next.clone());
            asked.spawn(tokio::time::timeout_at(deadline, async move {
                let (done, answer) = tokio::sync::oneshot::channel();
                tx.send(Control::Reconfigure(cfg, done)).await.ok()?;
                answer.await.ok()
            }));
        }
        let mut ok = true;
        while let Some(answer) = asked.join_next().await {
            match answer {
                Ok(Ok(Some(Ok(())))) => {}
                Ok(Ok(Some(Err(e)))) => {
                    warn!(error = %e, "a partition refused the new config");
                    ok = false;
                }
                _ => {
                    warn!("a partition did not take the new config in time");
                    ok = false;
                }
            }
        }
        if ok {
            if let Ok(mut c) = self.assigner.current.write() {
                *c = next.clone();
            }
            self.current = next;
            let metrics = &self.shared.metrics;
            metrics.config_version.inc();
            info!(
                version = metrics.config_version.get(),
                "rules, tiers and routing reloaded"
            );
        }
    }

    /// Readiness of the partition tasks that restart again and again, and the bound on
    /// recent tickets.
    fn check_health(&self) {
        let http = &self.cfg.http;
        self.shared.prune_recent_tickets(
            super::partition::wall_clock_ms(),
            i64::from(http.recent_tickets_days) * 86_400_000,
            http.recent_tickets_max_subscribers,
        );
        let restarting = |c: &Condition| matches!(c, Condition::Restarting(_));
        self.shared.readiness.replace(restarting, self.restarting());
    }

    /// Drains every partition task (until the drain deadline), commits the stored offsets
    /// and flushes the producer.
    async fn shutdown(self) {
        info!("shutting down: draining partitions");
        let deadline = Instant::now() + Duration::from_millis(self.cfg.kafka.drain_timeout_ms);
        let parts: Vec<i32> = self.shared.partitions.iter().map(|e| *e.key()).collect();
        for p in parts {
            if let Some((_, tx)) = self.shared.partitions.remove(&p) {
                let (done, _wait) = std::sync::mpsc::channel();
                let left = deadline.saturating_duration_since(Instant::now());
                let _ = tokio::time::timeout(left, tx.send(Control::Drain(deadline, done))).await;
            }
        }
        let mut tasks = self.tasks;
        let left = deadline.saturating_duration_since(Instant::now());
        let all_ended = async { while tasks.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(left + Duration::from_millis(100), all_ended).await;
        if let Err(e) = self
            .consumer
            .commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
        {
            debug!(error = %e, "final commit");
        }
        self.producer
            .flush(Timeout::After(Duration::from_secs(5)))
            .ok();
        self.consumer.context().queues.clear();
        self.shared.readiness.raise(Condition::Stopped, "");
    }
}

/// How long a reload waits for every partition task to take the new config and answer.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);
