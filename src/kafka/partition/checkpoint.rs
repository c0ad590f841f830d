//! Checkpoints of one partition task: the changelog write with the input offsets it
//! reflects (stored for the group, or committed in the checkpoint's transaction with
//! `exactly_once`).

use std::time::Instant;

use rdkafka::consumer::Consumer;
use tracing::{info, warn};

use super::super::producer::{PublishError, Refused};
use super::PartitionTask;

impl PartitionTask {
    /// With `exactly_once`: this partition's transactional producer, first transaction open.
    pub(super) fn start_transactions(&mut self) -> Result<(), Refused> {
        let Some(cfg) = &self.transactional else {
            return Ok(());
        };
        let p = self.partition;
        let producer = tokio::task::block_in_place(|| super::super::transaction::begin(cfg, p))
            .map_err(|e| Refused {
                topic: self.topics.tickets.clone(),
                source: PublishError::Fatal(e),
            })?;
        self.producer = producer;
        Ok(())
    }

    /// Stores for the group the input offsets the last checkpoint reflects (without
    /// `exactly_once`, which commits them in the checkpoint's transaction).
    pub(super) fn store_offsets(&self) {
        if self.transactional.is_some() {
            return;
        }
        for (topic, next) in &self.next_offsets {
            if let Err(e) = self.consumer.store_offset(topic, self.partition, next - 1) {
                warn!(partition = self.partition, %topic, error = %e, "offset not stored (partition revoked?)");
            }
        }
    }

    pub(super) async fn drain_and_checkpoint(&mut self) -> Result<(), Refused> {
        self.drain().await?;
        if self.changed {
            self.checkpoint().await?;
        }
        Ok(())
    }

    /// Writes a checkpoint once every publication so far is acknowledged, then stores the
    /// input offsets it reflects for the group to commit.
    pub(super) async fn checkpoint(&mut self) -> Result<(), Refused> {
        self.drain().await?;
        let started = Instant::now();
        let inputs: Vec<(String, i64)> = self
            .next_offsets
            .iter()
            .map(|(t, o)| (t.clone(), *o))
            .collect();
        let written = self
            .checkpointer
            .write(&self.producer, self.worker.engine_mut(), inputs)
            .await
            .map_err(|e| Refused {
                topic: self.topics.changelog.clone(),
                source: PublishError::from(e),
            })?;
        if self.transactional.is_some() {
            let (producer, consumer, p) = (&self.producer, &self.consumer, self.partition);
            let offsets = &self.next_offsets;
            tokio::task::block_in_place(|| {
                super::super::transaction::commit(producer, consumer, p, offsets)
            })
            .map_err(|e| Refused {
                topic: self.topics.tickets.clone(),
                source: PublishError::Fatal(e),
            })?;
        } else {
            self.store_offsets();
        }
        self.changed = false;
        self.checkpoint_due = Instant::now() + self.checkpoint_every;
        let m = &self.shared.metrics.durability;
        let kind = if written.full { "full" } else { "incremental" };
        m.checkpoints.with_label_values(&[kind]).inc();
        m.checkpoint_seconds
            .observe(started.elapsed().as_secs_f64());
        m.changelog_records.inc_by(written.records);
        m.changelog_bytes.inc_by(written.bytes);
        if written.full {
            info!(
                partition = self.partition,
                subscribers = written.subscribers,
                bytes = written.bytes,
                seconds = started.elapsed().as_secs_f64(),
                "full checkpoint written"
            );
        }
        Ok(())
    }
}
