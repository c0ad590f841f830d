//! What the Kafka service shares with the HTTP endpoint and among its own tasks.
//!
//! [`Shared`] is cheap to clone: metrics, readiness for `/readyz`, one control channel per
//! partition task (the rebalance hooks drain through it, `/subscribers/{msisdn}` asks
//! through it) and the last few tickets per subscriber for agent screens, and what a
//! partition's next task starts from ([`Resume`]).
//!
//! The recent tickets are bounded: [`Shared::prune_recent_tickets`], run from the service's
//! health tick, drops tickets older than `http.recent_tickets_days` and, past
//! `http.recent_tickets_max_subscribers`, the subscribers whose newest ticket is oldest.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use dashmap::DashMap;
use tokio::sync::{mpsc, oneshot};

use crate::config::{Config, ConfigError, Partitioner};
use crate::detect::engine::SubscriberSummary;
use crate::detect::Msisdn;
use crate::metrics::Metrics;
use crate::proto::CareTicket;

use super::changelog::Tag;
use super::fault::Faults;
use super::partitioner::{partition_for, Detection};
use super::readiness::Readiness;
use crate::kafka::consumer::assign::Ready;

/// What a partition's next task starts from (see [`crate::kafka::consumer::assign`]).
pub enum Resume {
    /// The engine and checkpoint writer kept in memory from a revoke (or a drain).
    Kept(Box<Ready>),
    /// An engine the task restores from the changelog before it reads its inputs.
    Restore(Start),
}

/// Partitions being restored: (changelog records read, records to read), `None` until
/// their task starts the restore.
pub type Restoring = std::collections::BTreeMap<i32, Option<(u64, u64)>>;

/// Where a partition's inputs stand when its task is to restore its engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Assignment started them at this checkpoint's offsets (`None`: no checkpoint yet,
    /// the group's offsets): if the restore finds a later one, the task moves them there.
    Assigned(Option<Tag>),
    /// A failed task's successor: they are wherever the failed one left them, and are
    /// moved back to the checkpoint restored.
    Restarted,
}

/// State shared with the HTTP endpoint and the config reloader.
#[derive(Clone)]
pub struct Shared {
    pub metrics: Metrics,
    /// What keeps the service from being ready, for `/readyz` (see [`super::readiness`]).
    pub readiness: Readiness,
    /// Control channels of the partition tasks, by partition.
    pub partitions: Arc<DashMap<i32, mpsc::Sender<Control>>>,
    /// The last few tickets per subscriber, for agent screens; bounded by
    /// [`Shared::prune_recent_tickets`].
    pub recent_tickets: Arc<DashMap<u64, VecDeque<CareTicket>>>,
    /// Engines ready for their partition's task (see [`crate::kafka::consumer::assign`]).
    pub parked: Arc<std::sync::Mutex<std::collections::BTreeMap<i32, Resume>>>,
    /// Partitions being restored (see [`Restoring`]).
    pub restoring: Arc<std::sync::Mutex<Restoring>>,
    /// The upstream partitioner learnt from the records (see [`super::partitioner`]).
    pub partitioner: Arc<Detection>,
    /// `kafka.partitioner` and the input topics' partition count, once the service knows
    /// them: which partition a look-up asks.
    pub keying: Arc<std::sync::OnceLock<(Partitioner, i32)>>,
    /// Faults the tests inject into the partition tasks (empty unless built with the
    /// `fault-injection` feature).
    pub faults: Arc<Faults>,
}

impl Default for Shared {
    fn default() -> Self {
        let metrics = Metrics::default();
        Shared {
            readiness: Readiness::new(metrics.ready.clone()),
            metrics,
            partitions: Arc::default(),
            recent_tickets: Arc::default(),
            parked: Arc::default(),
            restoring: Arc::default(),
            partitioner: Arc::default(),
            keying: Arc::default(),
            faults: Arc::default(),
        }
    }
}

const RECENT_TICKETS_KEPT: usize = 10;
/// How long a look-up waits for a partition task.
const DESCRIBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

impl Shared {
    /// Asks the partition task that holds a subscriber: the one its number is keyed to
    /// under the configured (or learnt) partitioner. Until `auto` has settled, the murmur2
    /// and CRC32 candidates are asked; with `kafka.partitioner = "none"` (records placed by
    /// no known rule) every partition is.
    pub async fn describe(&self, m: Msisdn) -> Option<SubscriberSummary> {
        let owners = self.owners_of(m);
        let senders: Vec<mpsc::Sender<Control>> = self
            .partitions
            .iter()
            .filter(|e| owners.as_ref().is_none_or(|o| o.contains(e.key())))
            .map(|e| e.value().clone())
            .collect();
        for tx in senders {
            let (reply, rx) = oneshot::channel();
            let asked = async {
                tx.send(Control::Describe(m, reply)).await.ok()?;
                rx.await.ok().flatten()
            };
            // A partition busy or stuck does not hold the look-up up.
            if let Ok(Some(s)) = tokio::time::timeout(DESCRIBE_TIMEOUT, asked).await {
                return Some(s);
            }
        }
        None
    }

    /// The partitions `m`'s records may be keyed to, or `None` if any may hold it.
    fn owners_of(&self, m: Msisdn) -> Option<Vec<i32>> {
        let (configured, partitions) = *self.keying.get()?;
        let rules = match configured {
            Partitioner::None => return None,
            Partitioner::Auto => match self.partitioner.settled() {
                Some(p) => vec![p],
                None => vec![Partitioner::Murmur2, Partitioner::ConsistentRandom],
            },
            p => vec![p],
        };
        let key = m.to_string();
        let mut owners: Vec<i32> = rules
            .into_iter()
            .filter_map(|r| partition_for(r, key.as_bytes(), partitions))
            .collect();
        owners.dedup();
        Some(owners)
    }

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

    /// Keeps a published ticket for agent screens (a corrected ticket replaces its earlier
    /// version).
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

    /// Bounds [`Shared::recent_tickets`]: drops tickets created (event time) before
    /// `now_ms - max_age_ms`, then, while more than `max_subscribers` subscribers are held,
    /// those whose newest ticket is oldest. Linear in the subscribers held, so it runs on a
    /// timer (the service's health tick), not per ticket. Counts the tickets dropped
    /// (`churnwatch_recent_tickets_pruned_total{reason="age"|"cap"}`) and sets
    /// `churnwatch_recent_tickets_subscribers`.
    pub fn prune_recent_tickets(&self, now_ms: i64, max_age_ms: i64, max_subscribers: usize) {
        let cutoff = now_ms.saturating_sub(max_age_ms);
        let mut aged = 0;
        self.recent_tickets.retain(|_, list| {
            let before = list.len();
            list.retain(|t| t.created_time_ms >= cutoff);
            aged += before - list.len();
            !list.is_empty()
        });
        let mut capped = 0;
        let over = self.recent_tickets.len().saturating_sub(max_subscribers);
        if over > 0 {
            let mut by_newest: Vec<(i64, u64)> = self
                .recent_tickets
                .iter()
                .map(|e| {
                    let newest = e.value().iter().map(|t| t.created_time_ms).max();
                    (newest.unwrap_or(i64::MIN), *e.key())
                })
                .collect();
            by_newest.select_nth_unstable(over - 1);
            for (_, k) in &by_newest[..over] {
                if let Some((_, list)) = self.recent_tickets.remove(k) {
                    capped += list.len();
                }
            }
        }
        let pruned = &self.metrics.recent_tickets_pruned;
        pruned.with_label_values(&["age"]).inc_by(aged as u64);
        pruned.with_label_values(&["cap"]).inc_by(capped as u64);
        self.metrics
            .recent_tickets_subscribers
            .set(self.recent_tickets.len() as i64);
    }
}

/// What a partition task is asked besides reading its records (which it reads from its
/// own queues, never through here).
pub enum Control {
    Describe(Msisdn, oneshot::Sender<Option<SubscriberSummary>>),
    /// A reloaded config: taken, or refused with why (the running rules then stay).
    Reconfigure(Arc<Config>, oneshot::Sender<Result<(), ConfigError>>),
    /// Finish pending acknowledgements and write a checkpoint (until the deadline), park
    /// the engine in [`Shared::parked`] if the checkpoint completed, stop.
    Drain(Instant, std::sync::mpsc::Sender<()>),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(id: &str, sub: &str) -> CareTicket {
        ticket_at(id, sub, 0)
    }

    fn ticket_at(id: &str, sub: &str, created_time_ms: i64) -> CareTicket {
        CareTicket {
            ticket_id: id.into(),
            subscriber: sub.into(),
            created_time_ms,
            ..Default::default()
        }
    }

    const DAY_MS: i64 = 86_400_000;

    fn summary(sub: &str) -> SubscriberSummary {
        SubscriberSummary {
            subscriber: sub.into(),
            tier: "vip".into(),
            first_seen_day: None,
            last_7_days_voice_minutes: 0,
            last_7_days_data_mib: 0,
            last_7_days_spend_yuan: 0.0,
            do_not_disturb: false,
            key_person: false,
            suspended: false,
            churned: false,
            active_signals: vec![],
        }
    }

    /// Four stand-in partition tasks; `holder` knows the subscriber. Returns the
    /// partitions in the order they were asked.
    async fn ask(shared: &Shared, holder: i32, m: Msisdn) -> (bool, Vec<i32>) {
        let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
        for p in 0..4 {
            let (tx, mut rx) = mpsc::channel(8);
            shared.partitions.insert(p, tx);
            let asked = asked.clone();
            tokio::spawn(async move {
                while let Some(Control::Describe(m, reply)) = rx.recv().await {
                    asked.lock().unwrap().push(p);
                    let _ = reply.send((p == holder).then(|| summary(&m.to_string())));
                }
            });
        }
        let found = shared.describe(m).await.is_some();
        let order = asked.lock().unwrap().clone();
        (found, order)
    }

    #[tokio::test]
    async fn a_look_up_asks_only_the_partition_the_number_is_keyed_to() {
        let m = Msisdn::parse("8613012345678").unwrap();
        let key = b"8613012345678";
        let owner = partition_for(Partitioner::ConsistentRandom, key, 4).unwrap();
        let shared = Shared::default();
        let _ = shared.keying.set((Partitioner::ConsistentRandom, 4));
        assert_eq!(ask(&shared, owner, m).await, (true, vec![owner]));
        // Held by another partition (keyed in another form upstream): not found, and no
        // other partition was asked.
        let other = (owner + 1) % 4;
        assert_eq!(ask(&shared, other, m).await, (false, vec![owner]));
        // `auto` before it has learnt anything: the murmur2 and the CRC32 candidates.
        let learning = Shared::default();
        let _ = learning.keying.set((Partitioner::Auto, 4));
        let murmur = partition_for(Partitioner::Murmur2, key, 4).unwrap();
        let (found, mut asked) = ask(&learning, murmur, m).await;
        asked.sort_unstable();
        let mut candidates = vec![murmur, owner];
        candidates.sort_unstable();
        candidates.dedup();
        assert!(found);
        assert!(asked.iter().all(|p| candidates.contains(p)), "{asked:?}");
        // No partitioner (records placed by no known rule): every partition.
        let unplaced = Shared::default();
        let _ = unplaced.keying.set((Partitioner::None, 4));
        let (found, asked) = ask(&unplaced, 3, m).await;
        assert!(found, "{asked:?}");
    }

    #[test]
    fn tickets_older_than_the_horizon_are_pruned_and_counted() {
        let s = Shared::default();
        s.remember(&ticket_at("old", "8613000000001", DAY_MS));
        s.remember(&ticket_at("new", "8613000000001", 40 * DAY_MS));
        s.remember(&ticket_at("gone", "8613000000002", 5 * DAY_MS));
        s.prune_recent_tickets(41 * DAY_MS, 30 * DAY_MS, 100);
        let kept: Vec<String> = s
            .recent_tickets
            .get(&8_613_000_000_001)
            .unwrap()
            .iter()
            .map(|t| t.ticket_id.clone())
            .collect();
        assert_eq!(kept, ["new"]);
        assert!(s.recent_tickets.get(&8_613_000_000_002).is_none());
        let pruned = &s.metrics.recent_tickets_pruned;
        assert_eq!(pruned.with_label_values(&["age"]).get(), 2);
        assert_eq!(pruned.with_label_values(&["cap"]).get(), 0);
        assert_eq!(s.metrics.recent_tickets_subscribers.get(), 1);
    }

    #[test]
    fn past_the_cap_the_subscribers_with_the_oldest_newest_ticket_go() {
        let s = Shared::default();
        for i in 0..10i64 {
            let sub = format!("86130000000{i:02}");
            // The newest ticket of subscriber i is from day i (its older one from day 0).
            s.remember(&ticket_at(&format!("a{i}"), &sub, 0));
            s.remember(&ticket_at(&format!("b{i}"), &sub, i * DAY_MS));
        }
        s.prune_recent_tickets(10 * DAY_MS, 30 * DAY_MS, 4);
        let mut held: Vec<u64> = s.recent_tickets.iter().map(|e| *e.key()).collect();
        held.sort_unstable();
        assert_eq!(
            held,
            (6..10).map(|i| 8_613_000_000_000 + i).collect::<Vec<u64>>()
        );
        let pruned = &s.metrics.recent_tickets_pruned;
        assert_eq!(pruned.with_label_values(&["cap"]).get(), 12);
        assert_eq!(pruned.with_label_values(&["age"]).get(), 0);
        assert_eq!(s.metrics.recent_tickets_subscribers.get(), 4);
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
