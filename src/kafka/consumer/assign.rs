//! What happens when partitions are assigned: each input starts where its partition's
//! last checkpoint left off, and each partition's engine is made ready for its task.
//!
//! The rebalance callback does only what must happen before `assign`
//! ([`Assigner::prepare`]): for each partition, the changelog's latest checkpoint marker
//! (a read of the partition's tail), whose input offsets the consumer starts at.
//! - A partition this member just gave up in the same rebalance (eager protocol: every
//!   partition is revoked, then assigned again) and whose last checkpoint is still the
//!   changelog's latest keeps its engine in memory.
//! - Any other is restored from its changelog partition by its own task, before it reads
//!   its inputs ([`Assigner::restore`], on a blocking thread): the callback, the other
//!   partitions, `/metrics`, reloads and SIGTERM do not wait for it, and `/readyz`
//!   answers 503 with `restoring p` (and how far) meanwhile.
//!
//! What the callback decided waits in [`Shared::parked`] until the partition's task starts.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};

use rdkafka::config::ClientConfig;
use tracing::info;

use crate::config::Config;
use crate::detect::engine::PortedNumber;
use crate::detect::Engine;

use crate::kafka::changelog::restore::{self, Restored};
use crate::kafka::changelog::writer::Checkpointer;
use crate::kafka::changelog::{ChangelogError, Marker, Tag};
use crate::kafka::partition::worker::PartitionWorker;
use crate::kafka::readiness::Condition;
use crate::kafka::shared::{Resume, Shared, Start};

/// Everything a restore needs; shared by the rebalance hook and the partition tasks.
pub struct Assigner {
    pub shared: Shared,
    /// Client settings for the restore consumers.
    pub client: ClientConfig,
    pub changelog: String,
    /// The config new engines start with (reloads replace it).
    pub current: RwLock<Arc<Config>>,
    pub ported: Arc<Vec<PortedNumber>>,
}

/// A partition's engine, restored: what its task runs on.
pub struct Ready {
    pub worker: PartitionWorker,
    pub checkpointer: Checkpointer,
}

impl Assigner {
    /// Readies every partition in `parts` (in parallel: each reads its changelog tail);
    /// the input offsets to start from, as `(topic, partition, offset)`.
    pub fn prepare(&self, parts: &[i32]) -> Result<Vec<(String, i32, i64)>, ChangelogError> {
        let results: Vec<Result<Option<Marker>, ChangelogError>> = std::thread::scope(|s| {
            let running: Vec<_> = parts
                .iter()
                .map(|&p| s.spawn(move || self.ready(p)))
                .collect();
            running
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(ChangelogError::Panicked {
                            topic: self.changelog.clone(),
                        })
                    })
                })
                .collect()
        });
        let mut offsets = Vec::new();
        for (&p, r) in parts.iter().zip(results) {
            for (topic, offset) in r?.map(|m| m.inputs).unwrap_or_default() {
                offsets.push((topic, p, offset));
            }
        }
        Ok(offsets)
    }

    /// One partition: its parked engine if still current, or a restore for its task to
    /// do. The checkpoint its inputs start at.
    pub fn ready(&self, p: i32) -> Result<Option<Marker>, ChangelogError> {
        if let Some(Resume::Kept(kept)) = self.shared.unpark(p) {
            if self.changelog.is_empty() {
                self.shared.park(p, Resume::Kept(kept));
                return Ok(None);
            }
            let latest = restore::latest_marker(&self.client, &self.changelog, p)?;
            let mine = kept.checkpointer.last().cloned();
            if latest.as_ref().map(|m| m.tag) == mine.as_ref().map(|m| m.tag) {
                info!(
                    partition = p,
                    "partition kept in memory: its checkpoint is the latest"
                );
                self.shared.park(p, Resume::Kept(kept));
                return Ok(mine);
            }
            self.queue(p, latest.as_ref().map(|m| m.tag));
            return Ok(latest);
        }
        let latest = match self.changelog.is_empty() {
            true => None,
            false => restore::latest_marker(&self.client, &self.changelog, p)?,
        };
        self.queue(p, latest.as_ref().map(|m| m.tag));
        Ok(latest)
    }

    /// Partition `p`'s task is to restore its engine; its inputs start at checkpoint `tag`.
    fn queue(&self, p: i32, tag: Option<Tag>) {
        self.shared.park(p, Resume::Restore(Start::Assigned(tag)));
        if !self.changelog.is_empty() {
            if let Ok(mut r) = self.shared.restoring.lock() {
                r.insert(p, None);
            }
            self.show_progress();
        }
    }

    /// Restores partition `p`'s engine from the changelog (a fresh one without a
    /// changelog), on the calling thread: a partition task runs it on a blocking thread.
    /// `cancel` gives it up. The checkpoint restored is the checkpointer's last.
    pub fn restore(
        &self,
        cfg: &Config,
        p: i32,
        cancel: &AtomicBool,
    ) -> Result<Ready, ChangelogError> {
        let engine = Engine::new(cfg, &self.ported)?;
        if self.changelog.is_empty() {
            self.given_up(p);
            return Ok(Ready {
                worker: PartitionWorker::with_engine(cfg, engine),
                checkpointer: Checkpointer::new("", p, None, false),
            });
        }
        if let Ok(mut r) = self.shared.restoring.lock() {
            r.entry(p).or_insert(None);
        }
        self.show_progress();
        let restored = restore::restore(
            &self.client,
            &self.changelog,
            p,
            engine,
            cancel,
            |done, total| self.progress(p, done, total),
        );
        let r = match restored {
            Ok(r) => r,
            Err(e) => {
                // A task that gave the restore up has said so already (and the partition
                // may be queued again since).
                if !matches!(e, ChangelogError::Cancelled { .. }) {
                    self.given_up(p);
                }
                return Err(e);
            }
        };
        self.restored(p, &r);
        Ok(Ready {
            checkpointer: Checkpointer::new(&self.changelog, p, r.marker, r.full_due),
            worker: PartitionWorker::with_engine(cfg, r.engine),
        })
    }

    /// Partition `p` is no longer restoring here (revoked, stopping, or failed).
    pub fn given_up(&self, p: i32) {
        if let Ok(mut g) = self.shared.restoring.lock() {
            g.remove(&p);
        }
        self.shared
            .metrics
            .durability
            .restore_remaining
            .with_label_values(&[&p.to_string()])
            .set(0);
        self.show_progress();
    }

    fn progress(&self, p: i32, done: u64, total: u64) {
        if let Ok(mut r) = self.shared.restoring.lock() {
            r.insert(p, Some((done, total)));
        }
        self.shared
            .metrics
            .durability
            .restore_remaining
            .with_label_values(&[&p.to_string()])
            .set(total.saturating_sub(done) as i64);
        self.show_progress();
    }

    /// `/readyz` lists the partitions still restoring.
    fn show_progress(&self) {
        let Ok(r) = self.shared.restoring.lock() else {
            return;
        };
        let pending: BTreeMap<i32, Option<(u64, u64)>> = r
            .iter()
            .filter(|(_, v)| v.is_none_or(|(d, t)| d < t))
            .map(|(p, v)| (*p, *v))
            .collect();
        let now_restoring = pending.iter().map(|(p, v)| {
            let detail = match v {
                Some((d, t)) => format!("{d}/{t} records"),
                None => "waiting to start".to_string(),
            };
            (Condition::Restoring(*p), detail)
        });
        let restoring = |c: &Condition| matches!(c, Condition::Restoring(_));
        self.shared.readiness.replace(restoring, now_restoring);
    }

    fn restored(&self, p: i32, r: &Restored) {
        let label = p.to_string();
        let m = &self.shared.metrics.durability;
        m.restored_records
            .with_label_values(&[&label])
            .inc_by(r.records);
        m.restored_subscribers
            .with_label_values(&[&label])
            .set(r.subscribers as i64);
        m.restore_seconds
            .with_label_values(&[&label])
            .set(r.elapsed.as_secs_f64());
        self.given_up(p);
        info!(
            partition = p,
            subscribers = r.subscribers,
            records = r.records,
            seconds = r.elapsed.as_secs_f64(),
            full_checkpoint_due = r.full_due,
            "partition restored from the changelog"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_names_the_partitions_still_restoring() {
        let cfg = Arc::new(Config::default());
        let a = Assigner {
            shared: Shared::default(),
            client: ClientConfig::new(),
            changelog: "state".into(),
            current: RwLock::new(cfg.clone()),
            ported: Arc::new(Vec::new()),
        };
        let readiness = &a.shared.readiness;
        readiness.clear(Condition::Starting);
        readiness.raise(Condition::Stalled(5), "7 records behind");
        a.progress(3, 16_384, 50_000);
        a.progress(1, 0, 10);
        assert_eq!(
            readiness.failing(),
            [
                "restoring partition 1: 0/10 records",
                "restoring partition 3: 16384/50000 records",
                "partition 5 stalled: 7 records behind"
            ]
        );
        let done = Restored {
            engine: Engine::new(cfg.as_ref(), &[]).unwrap(),
            marker: None,
            full_due: false,
            subscribers: 0,
            records: 10,
            elapsed: std::time::Duration::from_millis(5),
        };
        a.restored(1, &done);
        a.show_progress();
        a.progress(3, 50_000, 50_000);
        assert_eq!(
            readiness.failing(),
            ["partition 5 stalled: 7 records behind"],
            "a finished restore leaves another partition's stall failing"
        );
        readiness.clear(Condition::Stalled(5));
        assert!(readiness.is_ready(), "{:?}", readiness.failing());
        let m = &a.shared.metrics.durability;
        assert_eq!(m.restored_records.with_label_values(&["1"]).get(), 10);
        assert_eq!(m.restore_remaining.with_label_values(&["3"]).get(), 0);
    }
}
