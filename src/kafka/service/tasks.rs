//! Starting partition tasks, and restarting one that failed.
//!
//! - **Start**: a partition's task starts as soon as the partition is assigned, with what
//!   assignment readied ([`crate::kafka::consumer::assign`]: an engine kept in memory, or one to
//!   restore) and its input queues ([`super::super::consumer::queues`]).
//! - **Supervision**: a task that panics (a bug: input never panics, it is dead-lettered)
//!   is restarted from its partition's last checkpoint: the new task restores it and
//!   rewinds the inputs to the offsets it reflects, so nothing is lost and nothing is
//!   counted twice.
//!   The record it was processing when it failed is set aside as a dead letter (reason
//!   `failed`) on the second pass, so one poison record cannot fail the task forever. Each
//!   restart is counted (`churnwatch_partition_restarts_total{partition}`) and logged;
//!   `/readyz` says "restoring" while it is restored, and not ready while a partition has
//!   restarted [`RESTARTS_NOT_READY`] times within [`RESTART_WINDOW`]. Past
//!   [`MAX_RESTARTS`] in that window the service stops with an error, for the orchestrator
//!   to restart it with backoff.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use tokio::sync::mpsc;
use tokio::task::{Id, JoinError};
use tracing::{error, info, warn};

use crate::driver::Source;

use super::super::consumer::{Inspect, OffsetGaps};
use super::super::partition::{self, InFlight, Restorer, Wiring};
use super::super::partitioner::KeyCheck;
use super::super::readiness::Condition;
use super::super::shared::{Control, Resume, Start};
use super::{Error, Service};

/// How far back restarts are counted.
pub const RESTART_WINDOW: Duration = Duration::from_secs(600);
/// Restarts of one partition within the window that make the service not ready.
pub const RESTARTS_NOT_READY: usize = 2;
/// Restarts of one partition within the window past which the service stops.
pub const MAX_RESTARTS: usize = 5;

/// A running partition task, as its supervisor knows it.
pub(super) struct Running {
    partition: i32,
    control: mpsc::Sender<Control>,
    in_flight: Arc<InFlight>,
}

impl Service {
    /// Starts the tasks of the partitions assigned since the last call, each from what
    /// assignment readied ([`crate::kafka::consumer::assign`]).
    pub(super) fn start_assigned(&mut self) {
        for p in self.consumer.context().queues.take_assigned() {
            if !self.shared.partitions.contains_key(&p) {
                let resume = self
                    .shared
                    .unpark(p)
                    .unwrap_or(Resume::Restore(Start::Restarted));
                self.start_partition(p, resume, None);
            }
        }
    }

    /// Starts partition `p`'s task from `resume`; `skip` is a record to set aside, on
    /// which a task failed.
    fn start_partition(&mut self, p: i32, resume: Resume, skip: Option<(Source, i64)>) {
        let (tx, rx) = mpsc::channel(CONTROL_CAPACITY);
        let in_flight = Arc::new(InFlight::default());
        let wiring = Wiring {
            producer: self.producer.clone(),
            consumer: self.consumer.clone(),
            shared: self.shared.clone(),
            outcomes_subscribed: self.outcomes_subscribed,
            failures: self.failures.clone(),
            inputs: (self.consumer.context().queues).inputs(&self.cfg.kafka.topics, p),
            inspect: Inspect {
                keys: KeyCheck::new(
                    self.cfg.kafka.partitioner,
                    self.partition_count,
                    self.shared.partitioner.clone(),
                ),
                gaps: OffsetGaps::default(),
            },
            in_flight: in_flight.clone(),
            skip,
            restorer: Restorer {
                assigner: self.assigner.clone(),
                consumer: self.consumer.clone(),
                topics: self.subscribed.clone(),
                failures: self.failures.clone(),
            },
        };
        let task = partition::run(p, resume, wiring, self.current.clone(), rx);
        let handle = self.tasks.spawn(task);
        self.running.insert(
            handle.id(),
            Running {
                partition: p,
                control: tx.clone(),
                in_flight,
            },
        );
        self.shared.partitions.insert(p, tx);
    }

    /// A partition task ended: drained (nothing to do), or failed (restarted, see the
    /// module docs).
    pub(super) fn task_ended(&mut self, ended: Result<(Id, ()), JoinError>) -> Result<(), Error> {
        let (id, failure) = match ended {
            Ok((id, ())) => (id, None),
            Err(e) => (e.id(), Some(e)),
        };
        let Some(running) = self.running.remove(&id) else {
            return Ok(());
        };
        let Some(failure) = failure.filter(JoinError::is_panic) else {
            return Ok(());
        };
        let p = running.partition;
        let ours = self
            .shared
            .partitions
            .get(&p)
            .is_some_and(|tx| tx.same_channel(&running.control));
        if !ours || !self.consumer.context().queues.owns(p) {
            warn!(
                partition = p,
                "a partition task failed after its partition moved on"
            );
            return Ok(());
        }
        self.shared.partitions.remove(&p);
        drop(failure);
        self.restart(p, running.in_flight.get())
    }

    /// Restarts partition `p`'s task from its last checkpoint.
    fn restart(&mut self, p: i32, skip: Option<(Source, i64)>) -> Result<(), Error> {
        let label = p.to_string();
        self.shared
            .metrics
            .partition_restarts
            .with_label_values(&[&label])
            .inc();
        let now = Instant::now();
        let recent = self.restarts.entry(p).or_default();
        recent.retain(|t| now.duration_since(*t) < RESTART_WINDOW);
        recent.push(now);
        let count = recent.len();
        error!(
            partition = p,
            restarts_in_window = count,
            poison_record = skip.is_some(),
            "partition task failed; restarting it from its last checkpoint"
        );
        if count > MAX_RESTARTS {
            return Err(Error::CrashLoop {
                partition: p,
                restarts: count,
                minutes: RESTART_WINDOW.as_secs() / 60,
            });
        }
        self.start_partition(p, Resume::Restore(Start::Restarted), skip);
        info!(partition = p, "partition task restarted");
        Ok(())
    }

    /// Partitions restarted [`RESTARTS_NOT_READY`] times or more within the window, as
    /// readiness conditions.
    pub(super) fn restarting(&self) -> Vec<(Condition, String)> {
        let now = Instant::now();
        self.restarts
            .iter()
            .filter_map(|(p, ts)| {
                let n = ts
                    .iter()
                    .filter(|t| now.duration_since(**t) < RESTART_WINDOW)
                    .count();
                (n >= RESTARTS_NOT_READY).then(|| {
                    let minutes = RESTART_WINDOW.as_secs() / 60;
                    let detail = format!("restarted {n} times in the last {minutes} minutes");
                    (Condition::Restarting(*p), detail)
                })
            })
            .collect()
    }
}

/// Control messages (drains, look-ups, reloads) waiting for one partition task.
const CONTROL_CAPACITY: usize = 64;

/// Restarts per partition, for [`Service::restarting`].
pub(super) type Restarts = HashMap<i32, Vec<Instant>>;
