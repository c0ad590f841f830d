//! The partition task: one tokio task, one engine, per assigned partition.
//!
//! The task routes between parts that each have one job: the intake reads the input
//! queues into the event-time merge ([`inputs`]); a batch goes through the worker to the
//! engine ([`batch`], [`crate::kafka::partition::worker`]); the publisher sends what it yields and settles
//! acknowledgements in order ([`publish`]); the checkpointer writes the changelog and
//! stores the offsets it reflects ([`checkpoint`]); the exporter turns the engine's
//! running totals into metrics ([`counting`]).
//!
//! - **Start**: the engine first, kept from a revoke or restored from the changelog on a
//!   blocking thread ([`start`]), while the task answers drains, look-ups and reloads.
//! - **Order**: the partition's co-partitioned inputs are merged by event time
//!   ([`crate::kafka::partition::merge`]) before the engine sees them, as `replay` merges its files.
//! - **Checkpoints**: every `checkpoint_interval_ms` (and before the partition is given
//!   up), once every ticket and dead letter published so far is acknowledged, the task
//!   writes a checkpoint ([`super::changelog`]) reflecting the records processed, then
//!   stores their offsets for the group to commit. A crash resumes from the last complete
//!   checkpoint and re-reads what came after: at least once, with re-emitted tickets
//!   identical to the first. A failed delivery is sent again, or given up or stopped on as
//!   [`super::producer`] sorts it; a stop is reported to the service, which exits with
//!   the error.
//! - **Backpressure**: at most `max_in_flight` records (and `max_in_flight_bytes` bytes)
//!   wait for acknowledgement, and as many sit in the merge buffer; the task stops reading
//!   its own input queues meanwhile ([`inputs`]), so a producer that outruns us fills the
//!   broker, not our memory, and no other partition waits. The `select!` is biased toward
//!   checkpoints and acknowledgements over new records; control messages (drains,
//!   look-ups, reloads) have their own channel, read even while the task is full.
//! - **Supervision**: the task says which record it is processing ([`InFlight`]), so if it
//!   fails its supervisor ([`super::service`]) restarts it from the last checkpoint and the
//!   record is set aside when it comes again.
//! - **Idleness**: a partition whose inputs go quiet moves its event-time clock on with the
//!   wall clock ([`crate::kafka::partition::idle`]), so its days still close.

use std::sync::Arc;
use std::time::Instant;

use rdkafka::producer::{FutureProducer, Producer};
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use crate::codec;
use crate::config::{Config, TopicsConfig};
use crate::proto::CareTicket;

use super::consumer::queues::{self, PartitionInputs};
use super::consumer::{self, InputConsumer, Inspect};
use super::producer::{Kind, Publication, Refused};
use super::shared::{Control, Resume, Shared};
use super::Error;
use crate::detect::watermark::Input;
use crate::driver::Source;
use crate::kafka::consumer::assign::Ready;
use crate::kafka::partition::idle::IdleClock;
use crate::kafka::partition::merge::{InputMerge, INPUT_IDLE_WHEN_OFF, RECHECK};
use crate::kafka::partition::worker::PartitionWorker;

mod batch;
mod checkpoint;
mod counting;
pub mod idle;
mod inputs;
mod lane;
pub mod merge;
mod publish;
mod start;
pub mod transaction;
pub mod worker;

use publish::Publisher;
pub(super) use start::Restorer;

pub use inputs::InFlight;

/// The wall clock, for the future-skew check and lag metrics: the adapter's one reading
/// of it (the core never reads it).
#[allow(clippy::disallowed_methods)]
pub fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// What a partition task needs from the service to start.
pub(super) struct Wiring {
    pub producer: FutureProducer,
    pub consumer: Arc<InputConsumer>,
    pub shared: Shared,
    /// Whether the outcome topic exists (and is read): otherwise it is never waited for.
    pub outcomes_subscribed: bool,
    /// Where the task reports the failure that stops it (and the service).
    pub failures: mpsc::UnboundedSender<Error>,
    /// The partition's own input queues.
    pub inputs: PartitionInputs,
    pub inspect: Inspect,
    /// Where the task says which record it is processing, for its supervisor.
    pub in_flight: Arc<InFlight>,
    /// A record a task failed on before: set aside as a dead letter when it comes again.
    pub skip: Option<(Source, i64)>,
    /// How the task gets its engine.
    pub restorer: Restorer,
}

/// Partition `p`'s task: its engine first ([`start`]), then its records, until drained or
/// stopped.
pub(super) async fn run(
    p: i32,
    resume: Resume,
    wiring: Wiring,
    cfg: Arc<Config>,
    mut rx: mpsc::Receiver<Control>,
) {
    let Some(ready) = wiring.restorer.engine(p, resume, &cfg, &mut rx).await else {
        return;
    };
    PartitionTask::new(p, ready, wiring, &cfg).run(rx).await
}

/// A partition's task: its engine behind the worker, and one part for each other job.
pub(super) struct PartitionTask {
    partition: i32,
    worker: PartitionWorker,
    consumer: Arc<InputConsumer>,
    shared: Shared,
    topics: TopicsConfig,
    failures: mpsc::UnboundedSender<Error>,
    /// Reading: the input queues, the checks on each record, the event-time merge.
    intake: inputs::Intake,
    /// Which record is in the engine, and one a failed task left to set aside.
    supervised: inputs::Supervised,
    /// In-order acknowledgement, retries, what may be committed.
    publisher: Publisher,
    /// Changelog writes, transactions, the offsets a checkpoint reflects.
    checkpoints: checkpoint::Checkpoints,
    /// The engine's stats, as one diff into the metrics.
    exporter: counting::Exporter,
    idle: IdleClock,
    /// Whom to tell once drained and parked.
    drained: Option<std::sync::mpsc::Sender<()>>,
    scratch: batch::Scratch,
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

impl PartitionTask {
    fn new(partition: i32, ready: Ready, wiring: Wiring, cfg: &Config) -> PartitionTask {
        let Ready {
            worker,
            checkpointer,
        } = ready;
        let checkpoints = checkpoint::Checkpoints::new(cfg, checkpointer);
        let mut merge =
            InputMerge::resuming_at(checkpoints.next_offsets.iter().filter_map(|(topic, next)| {
                let t = &cfg.kafka.topics;
                let source = [
                    (Source::Cdr, &t.cdr),
                    (Source::Account, &t.account),
                    (Source::Outcomes, &t.outcomes),
                ]
                .into_iter()
                .find(|(_, name)| *name == topic)?
                .0;
                Some((source, *next))
            }))
            .idle_after(Some(match cfg.kafka.idle_timeout_ms {
                0 => INPUT_IDLE_WHEN_OFF,
                ms => std::time::Duration::from_millis(ms),
            }));
        let started = Instant::now();
        for (source, input) in [(Source::Cdr, Input::Cdr), (Source::Account, Input::Account)] {
            merge.resume_progress(source, worker.engine().input_ms(input), started);
        }
        // An engine kept over a rebalance has counted before: only what follows is new.
        let exporter = counting::Exporter::new(&wiring.shared.metrics, partition, worker.engine());
        PartitionTask {
            partition,
            worker,
            consumer: wiring.consumer,
            topics: cfg.kafka.topics.clone(),
            failures: wiring.failures,
            intake: inputs::Intake {
                inputs: wiring.inputs,
                inspect: wiring.inspect,
                merge,
                format: cfg.kafka.input_format,
                outcomes_subscribed: wiring.outcomes_subscribed,
            },
            supervised: inputs::Supervised {
                in_flight: wiring.in_flight,
                skip: wiring.skip,
            },
            publisher: Publisher::new(cfg, wiring.producer, wiring.shared.metrics.clone()),
            shared: wiring.shared,
            checkpoints,
            exporter,
            idle: IdleClock::new(cfg.kafka.idle_timeout_ms),
            drained: None,
            scratch: batch::Scratch::default(),
        }
    }

    /// Runs until the channel closes, a drain is asked for, or a publication fails for
    /// good (reported on `failures`).
    async fn run(mut self, rx: mpsc::Receiver<Control>) {
        let served = match self.start_transactions() {
            Ok(()) => self.serve(rx).await,
            Err(refused) => Err(refused),
        };
        match served {
            Ok(()) => {
                let done = self.drained.take();
                // A checkpoint still in flight (the drain deadline passed) holds the
                // checkpointer: the partition then restores from the changelog instead.
                if !self.checkpoints.changed && self.checkpoints.writing.is_none() {
                    let kept = Ready {
                        worker: self.worker,
                        checkpointer: self.checkpoints.writer,
                    };
                    self.shared
                        .park(self.partition, Resume::Kept(Box::new(kept)));
                }
                if let Some(done) = done {
                    let _ = done.send(());
                }
            }
            Err(refused) => {
                error!(partition = self.partition, error = %refused, "stopping: a publication failed for good");
                if let Some((code, reason)) = self.publisher.producer.client().fatal_error() {
                    error!(?code, %reason, "librdkafka fatal error");
                }
                let _ = self.failures.send(Error::Publish(refused));
            }
        }
    }

    async fn serve(&mut self, mut rx: mpsc::Receiver<Control>) -> Result<(), Refused> {
        loop {
            self.process_ready().await?;
            let waiting = self.intake.merge.wait_deadline();
            let recheck = waiting.map(|end| end.min(Instant::now() + RECHECK));
            let idle_at = self.idle.deadline(self.intake.merge.len() > 0);
            let room = self.publisher.room();
            let checkpoint = (self.checkpoints.changed && self.checkpoints.writing.is_none())
                .then_some(self.checkpoints.due);
            let readable =
                inputs::readable(&self.intake.inputs, &self.intake.merge, self.merge_full());
            let reading = readable.iter().any(Option::is_some);
            tokio::select! {
                biased;
                // First: under a steady flow an acknowledgement is always ready, and a
                // checkpoint behind it would wait for the input to run dry.
                // The checkpoint in flight first: it only moves on when polled, and under a
                // steady flow the branches below are always ready.
                finished = Self::writing_done(&mut self.checkpoints.writing), if self.checkpoints.writing.is_some() => {
                    self.written(finished)?;
                }
                _ = sleep_until_opt(checkpoint), if checkpoint.is_some() => self.checkpoint().await?,
                _ = self.publisher.front_acked(), if self.publisher.busy() => {
                    self.publisher.settle_front().await?;
                }
                _ = sleep_until_opt(recheck), if recheck.is_some() => {
                    if waiting.is_some_and(|end| Instant::now() < end) {
                        continue;
                    }
                    let lagging = self.intake.merge.wait_over();
                    if lagging.is_empty() {
                        let idle: Vec<&str> = self.intake.merge.held_by().map(|s| self.topic_of(s)).collect();
                        if !idle.is_empty() {
                            info!(
                                partition = self.partition,
                                topics = ?idle,
                                buffered = self.intake.merge.len(),
                                "inputs idle while the others waited for them: the others go ahead (their records on days closed meanwhile will be late)"
                            );
                        }
                        continue;
                    }
                    let ends: Vec<_> = lagging.iter().map(|s| {
                        let topic = self.topic_of(*s);
                        let high = consumer::cached_high_watermark(&self.consumer, topic, self.partition);
                        (*s, self.intake.merge.next_offset(*s), high)
                    }).collect();
                    warn!(
                        partition = self.partition,
                        inputs = ?ends,
                        buffered = self.intake.merge.len(),
                        "inputs lagging past the alignment wait (input, next offset, log end); the others go ahead"
                    );
                }
                item = rx.recv() => {
                    let Some(control) = item else { break };
                    if self.control(control).await? {
                        return Ok(());
                    }
                }
                (source, read) = queues::recv(&readable), if reading => self.received(source, read),
                _ = sleep_until_opt(idle_at), if idle_at.is_some() && room => {
                    self.advance_idle().await?;
                }
            }
        }
        self.finish_writing().await?;
        self.publisher.drain().await
    }

    fn topic_of(&self, source: Source) -> &str {
        match source {
            Source::Cdr => &self.topics.cdr,
            Source::Account => &self.topics.account,
            Source::Outcomes => &self.topics.outcomes,
        }
    }

    /// Handles a record to buffer, a question, a new config or a drain; `true` once
    /// drained (the task stops: its partition has moved or the service is stopping).
    async fn control(&mut self, control: Control) -> Result<bool, Refused> {
        match control {
            Control::Describe(who, reply) => {
                let _ = reply.send(self.worker.engine().describe(who));
            }
            Control::Reconfigure(cfg, done) => {
                let r = self.worker.reconfigure(&cfg);
                let _ = done.send(r);
            }
            Control::Drain(deadline, done) => {
                let left = deadline.saturating_duration_since(Instant::now());
                let drained = tokio::time::timeout(left, self.drain_and_checkpoint()).await;
                self.drained = Some(done);
                if drained.is_err() {
                    warn!(partition = self.partition, "drain deadline passed before the checkpoint was written; the partition resumes from the previous one");
                }
                return drained.unwrap_or(Ok(())).map(|()| true);
            }
        }
        Ok(false)
    }

    /// The publications of new or corrected tickets (remembered for agent screens and
    /// counted).
    fn ticket_publications(&mut self, tickets: &[CareTicket]) -> Vec<Publication> {
        let mut publications = Vec::with_capacity(tickets.len());
        for t in tickets {
            self.shared.remember(t);
            let payload = codec::encode_ticket(self.publisher.ticket_format, t);
            publications.push(Publication {
                kind: Kind::Ticket,
                topic: self.topics.tickets.clone(),
                key: t.subscriber.as_bytes().to_vec(),
                payload,
                headers: vec![
                    ("queue".into(), t.queue.as_bytes().to_vec()),
                    ("ticket_id".into(), t.ticket_id.as_bytes().to_vec()),
                ],
            });
        }
        self.count_tickets();
        publications
    }

    /// The partition's inputs have been idle: moves its event-time clock on with the wall
    /// clock (see [`crate::kafka::partition::idle`]) and publishes the tickets of the days that closed.
    async fn advance_idle(&mut self) -> Result<(), Refused> {
        let now = Instant::now();
        let Some(t) = self.idle.due(now) else {
            return Ok(());
        };
        self.exporter.handles.idle.set(1);
        let mut tickets = Vec::new();
        self.worker.advance_to(t, &mut tickets);
        self.count_evictions();
        self.count_quality();
        self.checkpoints.changed = true;
        if tickets.is_empty() {
            return Ok(());
        }
        debug!(
            partition = self.partition,
            tickets = tickets.len(),
            "idle partition closed days"
        );
        let publications = self.ticket_publications(&tickets);
        self.publisher.enqueue(0, now, None, publications).await
    }
}
