//! Each assigned input partition is read from its own librdkafka queue, by its partition
//! task, not through one shared queue and a dispatcher.
//!
//! - **Why**: with one queue, a partition whose task is full blocks every partition behind
//!   it, and the health checks and reloads of the loop that hands records out; after
//!   `max.poll.interval.ms` the member leaves the group. With a queue per input partition, a
//!   full task just stops reading its own queues, and librdkafka stops fetching those
//!   partitions once `queued.max.messages.kbytes` of them wait (the limit applies to each
//!   split queue alone). No pause or resume is called: pausing left resumed partitions
//!   unfetched for good (see [`crate::kafka::partition::merge`], and confluentinc/librdkafka#5591).
//! - **When**: a partition's queues are split off on its first assignment, *before*
//!   `assign`, so none of its records ever reach the shared queue (librdkafka leaves a queue
//!   the application forwarded alone when fetching starts). They are kept for the
//!   process's life and reused on every later assignment: dropping one would switch off
//!   the wake-up callback its successor on the same partition relies on.
//! - **Starting tasks**: assignment notes the partitions and wakes the service, which
//!   starts their tasks; a revoke in between takes them back, so a task is never started
//!   for a partition already gone.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use rdkafka::consumer::stream_consumer::StreamPartitionQueue;
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::TopicPartitionList;
use tokio::sync::Notify;

use crate::config::TopicsConfig;

use super::super::Error;
use super::{source_of, InputConsumer, RebalanceContext};
use crate::driver::Source;

/// One input partition's queue.
pub type InputQueue = StreamPartitionQueue<RebalanceContext>;

/// The inputs of one partition: a queue per input topic subscribed.
pub type PartitionInputs = Vec<(Source, Arc<InputQueue>)>;

/// The split queues, and the partitions assigned whose tasks are not started yet.
#[derive(Default)]
pub struct Queues {
    consumer: OnceLock<Weak<InputConsumer>>,
    by_input: Mutex<HashMap<(String, i32), Arc<InputQueue>>>,
    /// Assigned, task not started yet.
    pending: Mutex<BTreeSet<i32>>,
    /// Assigned now.
    owned: Mutex<BTreeSet<i32>>,
    /// Woken when `pending` gains partitions.
    pub assigned: Notify,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Queues {
    /// The consumer whose partitions these are (set once it exists).
    pub fn attach(&self, consumer: &Arc<InputConsumer>) {
        let _ = self.consumer.set(Arc::downgrade(consumer));
    }

    /// Splits off the queue of every input partition in `tpl` not split yet (before it is
    /// assigned). An input partition librdkafka will not split is a [`Error`]: its records
    /// would go to the shared queue, which only errors are read from.
    pub(super) fn split(&self, tpl: &TopicPartitionList) -> Result<(), Error> {
        let consumer = self.consumer.get().and_then(Weak::upgrade);
        let mut by_input = lock(&self.by_input);
        for e in tpl.elements() {
            let key = (e.topic().to_string(), e.partition());
            if by_input.contains_key(&key) {
                continue;
            }
            let split = consumer
                .as_ref()
                .and_then(|c| c.split_partition_queue(e.topic(), e.partition()));
            match split {
                Some(q) => {
                    by_input.insert(key, Arc::new(q));
                }
                None => {
                    return Err(Error::Unsplit {
                        topic: key.0,
                        partition: key.1,
                    })
                }
            }
        }
        Ok(())
    }

    /// `parts` were assigned: their tasks are to start.
    pub(super) fn assigned(&self, parts: &[i32]) {
        lock(&self.pending).extend(parts);
        lock(&self.owned).extend(parts);
        self.assigned.notify_one();
    }

    /// `parts` were revoked: their tasks must not start (any running is drained).
    pub(super) fn revoked(&self, parts: &[i32]) {
        let (mut pending, mut owned) = (lock(&self.pending), lock(&self.owned));
        for p in parts {
            pending.remove(p);
            owned.remove(p);
        }
    }

    /// The partitions whose tasks are to start.
    pub fn take_assigned(&self) -> Vec<i32> {
        std::mem::take(&mut *lock(&self.pending))
            .into_iter()
            .collect()
    }

    /// Whether partition `p` is assigned to this member now.
    pub fn owns(&self, p: i32) -> bool {
        lock(&self.owned).contains(&p)
    }

    /// The queues of partition `p`'s inputs (those split), in [`Source`] order.
    pub fn inputs(&self, topics: &TopicsConfig, p: i32) -> PartitionInputs {
        let mut inputs: PartitionInputs = lock(&self.by_input)
            .iter()
            .filter(|((_, partition), _)| *partition == p)
            .map(|((topic, _), q)| (source_of(topics, topic), q.clone()))
            .collect();
        inputs.sort_by_key(|(s, _)| *s as u8);
        inputs
    }

    /// Drops every queue (each holds the consumer): at shutdown, before the consumer goes.
    pub fn clear(&self) {
        lock(&self.by_input).clear();
    }
}

/// The next record of any of `inputs` (at most three; `None` entries are not read). Cancel
/// safe, as each queue's `recv` is.
pub async fn recv(
    inputs: &[Option<(Source, Arc<InputQueue>)>; 3],
) -> (Source, Result<BorrowedMessage<'_>, KafkaError>) {
    async fn one(
        q: &Option<(Source, Arc<InputQueue>)>,
    ) -> (Source, Result<BorrowedMessage<'_>, KafkaError>) {
        match q {
            Some((s, q)) => (*s, q.recv().await),
            None => std::future::pending().await,
        }
    }
    let [a, b, c] = inputs;
    tokio::select! {
        r = one(a) => r,
        r = one(b) => r,
        r = one(c) => r,
    }
}
