//! The group's committed offsets, read as an operator's lag exporter does: the
//! benchmark's proof that every record produced was processed and acknowledged.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::instance::Instance;
use super::{alive, POLL};
use crate::config::Config;
use crate::tools::bench::BenchError;

/// The group's committed offsets over the input partitions.
pub(super) struct Group {
    consumer: BaseConsumer,
    tpl: TopicPartitionList,
}

impl Group {
    pub(super) fn new(cfg: &Config, partitions: i32) -> Result<Group, BenchError> {
        let consumer: BaseConsumer = rdkafka::config::ClientConfig::new()
            .set("bootstrap.servers", &cfg.kafka.brokers)
            .set("group.id", &cfg.kafka.group_id)
            .create()?;
        let mut tpl = TopicPartitionList::new();
        for topic in [&cfg.kafka.topics.cdr, &cfg.kafka.topics.account] {
            for p in 0..partitions {
                tpl.add_partition(topic, p);
            }
        }
        Ok(Group { consumer, tpl })
    }

    fn ends(&self) -> Result<i64, BenchError> {
        let mut total = 0;
        for e in self.tpl.elements() {
            let (_, high) = self.consumer.fetch_watermarks(
                e.topic(),
                e.partition(),
                Duration::from_secs(10),
            )?;
            total += high;
        }
        Ok(total)
    }

    fn committed(&self) -> Result<i64, BenchError> {
        let c = self
            .consumer
            .committed_offsets(self.tpl.clone(), Duration::from_secs(10))?;
        Ok(c.elements()
            .iter()
            .map(|e| match e.offset() {
                Offset::Offset(o) => o,
                _ => 0,
            })
            .sum())
    }

    /// Waits until the group has committed every input partition to its log end.
    pub(super) async fn wait_committed(
        &self,
        instances: &mut [&mut Instance],
        limit: Duration,
    ) -> Result<(), BenchError> {
        let end = self.ends()?;
        let deadline = Instant::now() + limit;
        loop {
            for i in instances.iter_mut() {
                alive(i)?;
            }
            let c = tokio::task::block_in_place(|| self.committed())?;
            if c >= end {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(BenchError::Check(format!(
                    "the group committed {c} of {end} records in {} s ({} instances)",
                    limit.as_secs(),
                    instances.len()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
