//! What happens when partitions are assigned: each gets its engine before its first
//! record, and the consumer starts each input where that engine's checkpoint left off.
//!
//! - A partition this member just gave up in the same rebalance (eager protocol: every
//!   partition is revoked, then assigned again) and whose last checkpoint is still the
//!   changelog's latest keeps its engine in memory.
//! - Any other is restored from its changelog partition, all of them in parallel, while
//!   `/readyz` answers 503 with `restoring p (n/m)`.
//!
//! The engines wait in [`Shared::parked`] until the partition's task starts.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use rdkafka::config::ClientConfig;
use tracing::info;

use crate::config::Config;
use crate::detect::engine::PortedNumber;
use crate::detect::Engine;

use super::changelog::restore::{self, Restored};
use super::changelog::writer::Checkpointer;
use super::changelog::{ChangelogError, Marker};
use super::readiness::Condition;
use super::shared::{Resume, Shared};
use super::worker::PartitionWorker;

/// Everything a restore needs; shared by the rebalance hook and the service.
pub struct Assigner {
    pub shared: Shared,
    /// Client settings for the restore consumers.
    pub client: ClientConfig,
    pub changelog: String,
    /// The config new engines start with (reloads replace it).
    pub current: RwLock<Arc<Config>>,
    pub ported: Arc<Vec<PortedNumber>>,
}

impl Assigner {
    /// Readies every partition in `parts`; the input offsets to start from, as
    /// `(topic, partition, offset)`.
    pub fn prepare(&self, parts: &[i32]) -> Result<Vec<(String, i32, i64)>, ChangelogError> {
        let cfg = self
            .current
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|e| e.into_inner().clone());
        let results: Vec<Result<Option<Marker>, ChangelogError>> = std::thread::scope(|s| {
            let running: Vec<_> = parts
                .iter()
                .map(|&p| {
                    let cfg = &cfg;
                    s.spawn(move || self.ready(cfg, p))
                })
                .collect();
            running
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(self.panicked())))
                .collect()
        });
        self.show_progress();
        let mut offsets = Vec::new();
        for (&p, r) in parts.iter().zip(results) {
            for (topic, offset) in r?.map(|m| m.inputs).unwrap_or_default() {
                offsets.push((topic, p, offset));
            }
        }
        Ok(offsets)
    }

    fn panicked(&self) -> ChangelogError {
        ChangelogError::Corrupt {
            topic: self.changelog.clone(),
            partition: -1,
            reason: "a restore thread panicked".into(),
        }
    }

    /// One partition: its parked engine if still current, or a restore. The marker its
    /// engine reflects.
    pub fn ready(&self, cfg: &Arc<Config>, p: i32) -> Result<Option<Marker>, ChangelogError> {
        if let Some(parked) = self.shared.unpark(p) {
            if self.changelog.is_empty() {
                self.shared.park(p, parked);
                return Ok(None);
            }
            let latest = restore::latest_marker(&self.client, &self.changelog, p)?;
            let kept = parked.checkpointer.last().cloned();
            if latest.as_ref().map(|m| m.tag) == kept.as_ref().map(|m| m.tag) {
                info!(
                    partition = p,
                    "partition kept in memory: its checkpoint is the latest"
                );
                self.shared.park(p, parked);
                return Ok(kept);
            }
        }
        let engine = Engine::new(cfg.as_ref(), &self.ported)?;
        if self.changelog.is_empty() {
            let checkpointer = Checkpointer::new("", p, None, false);
            let worker = PartitionWorker::with_engine(cfg, engine);
            self.shared.park(
                p,
                Resume {
                    worker,
                    checkpointer,
                },
            );
            return Ok(None);
        }
        let r = restore::restore(&self.client, &self.changelog, p, engine, |done, total| {
            self.progress(p, done, total)
        })?;
        self.restored(p, &r);
        let marker = r.marker.clone();
        let checkpointer = Checkpointer::new(&self.changelog, p, r.marker, r.full_due);
        let worker = PartitionWorker::with_engine(cfg, r.engine);
        self.shared.park(
            p,
            Resume {
                worker,
                checkpointer,
            },
        );
        Ok(marker)
    }

    fn progress(&self, p: i32, done: u64, total: u64) {
        if let Ok(mut r) = self.shared.restoring.lock() {
            r.insert(p, (done, total));
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
        let pending: BTreeMap<i32, (u64, u64)> = r
            .iter()
            .filter(|(_, (d, t))| d < t)
            .map(|(p, v)| (*p, *v))
            .collect();
        let now_restoring = pending
            .iter()
            .map(|(p, (d, t))| (Condition::Restoring(*p), format!("{d}/{t} records")));
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
        m.restore_remaining.with_label_values(&[&label]).set(0);
        if let Ok(mut g) = self.shared.restoring.lock() {
            g.remove(&p);
        }
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
