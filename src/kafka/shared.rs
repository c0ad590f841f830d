//! What the Kafka service shares with the HTTP endpoint and among its own tasks.
//!
//! [`Shared`] is cheap to clone: metrics, readiness for `/readyz`, one control channel per
//! partition task (the rebalance hooks drain through it, `/subscribers/{msisdn}` asks
//! through it) and the last few tickets per subscriber for agent screens. Of the adapter
//! it uses only [`Source`], so the consumer, the partition task and the service all import
//! it, and none of them imports another to reach it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use dashmap::DashMap;
use rdkafka::message::OwnedMessage;
use tokio::sync::{mpsc, oneshot};

use crate::config::Config;
use crate::detect::engine::SubscriberSummary;
use crate::detect::Msisdn;
use crate::metrics::Metrics;
use crate::proto::CareTicket;

use super::changelog::writer::Checkpointer;
use super::changelog::ChangelogError;
use super::producer::Refused;
use super::worker::{PartitionWorker, Source};

/// A partition's engine and checkpoint writer, waiting for its task to start: restored on
/// assignment, or kept from a revoke.
pub struct Resume {
    pub worker: PartitionWorker,
    pub checkpointer: Checkpointer,
}

/// Why the service stops (a partition task or the rebalance hook reports it).
#[derive(Debug, thiserror::Error)]
pub enum Stop {
    #[error(transparent)]
    Publish(#[from] Refused),
    #[error("restoring from the changelog: {0}")]
    Restore(#[from] ChangelogError),
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
    /// Engines ready for their partition's task (see [`super::assign`]).
    pub parked: Arc<std::sync::Mutex<std::collections::BTreeMap<i32, Resume>>>,
    /// Partitions being restored: (changelog records read, records to read).
    pub restoring: Arc<std::sync::Mutex<std::collections::BTreeMap<i32, (u64, u64)>>>,
    /// The partitions stalled at the last statistics sample, as `/readyz` says it
    /// (see [`super::stall`]); `None` when none is.
    pub stalled: Arc<std::sync::Mutex<Option<String>>>,
    /// The first record read on a partition other than its key's, as `/readyz` says it
    /// until restart (see [`super::partitioner`]); `None` while every record was placed.
    pub key_mismatch: Arc<std::sync::Mutex<Option<String>>>,
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

    /// Reports a record on the wrong partition for its key: not ready, until restart (the
    /// first reason kept). A split subscriber's state is not repaired by waiting.
    pub fn set_key_mismatch(&self, reason: &str) {
        let mut m = self.key_mismatch.lock().unwrap_or_else(|e| e.into_inner());
        let reason = m.get_or_insert_with(|| reason.to_string()).clone();
        drop(m);
        self.set_ready(false, &reason);
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

    /// Keeps a published ticket for agent screens (a corrected ticket replaces its earlier
    /// version).
    /// Puts a partition's engine aside for its next task.
    pub(super) fn park(&self, p: i32, r: Resume) {
        self.parked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(p, r);
    }

    /// Takes a partition's parked engine.
    pub(super) fn unpark(&self, p: i32) -> Option<Resume> {
        self.parked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&p)
    }

    pub(super) fn remember(&self, t: &CareTicket) {
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
    /// Finish pending acknowledgements and write a checkpoint (until the deadline), park
    /// the engine in [`Shared::parked`] if the checkpoint completed, stop.
    Drain(Instant, std::sync::mpsc::Sender<()>),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(id: &str, sub: &str) -> CareTicket {
        CareTicket {
            ticket_id: id.into(),
            subscriber: sub.into(),
            ..Default::default()
        }
    }

    #[test]
    fn keeps_the_last_tickets_per_subscriber_with_corrections_replacing_their_original() {
        let s = Shared::default();
        for i in 0..12 {
            s.remember(&ticket(&format!("t{i}"), "8613012345678"));
        }
        s.remember(&ticket("t11", "8613012345678"));
        s.remember(&ticket("x", "not a number"));
        let list = s.recent_tickets.get(&8_613_012_345_678).unwrap();
        let ids: Vec<&str> = list.iter().map(|t| t.ticket_id.as_str()).collect();
        assert_eq!(ids.len(), RECENT_TICKETS_KEPT);
        assert_eq!((ids[0], ids[9]), ("t2", "t11"));
        assert_eq!(s.recent_tickets.len(), 1);
    }
}
