//! Where a partition's inputs start: at the offsets its engine's checkpoint reflects,
//! whatever the group committed, so the engine and its inputs never disagree.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use tracing::warn;

use super::super::changelog::Marker;
use super::InputConsumer;

/// Sets each assigned input partition's start offset from its engine's checkpoint (before
/// `assign`).
pub(super) fn start_at(tpl: &mut TopicPartitionList, offsets: Vec<(String, i32, i64)>) {
    for (topic, p, offset) in offsets {
        if tpl.find_partition(&topic, p).is_some() {
            if let Err(e) = tpl.set_partition_offset(&topic, p, Offset::Offset(offset)) {
                warn!(topic, partition = p, error = %e, "start offset not set");
            }
        }
    }
}

/// Moves partition `p`'s inputs (`topics`) to the offsets `marker` reflects: the group's
/// committed offsets for an input it does not name, or the log start. Blocking (a
/// committed-offsets request): for a blocking thread.
pub fn rewind(
    consumer: &InputConsumer,
    topics: &[String],
    p: i32,
    marker: Option<&Marker>,
) -> Result<(), KafkaError> {
    let from_marker: BTreeMap<&str, i64> = marker
        .map(|m| m.inputs.iter().map(|(t, o)| (t.as_str(), *o)).collect())
        .unwrap_or_default();
    let mut tpl = TopicPartitionList::new();
    for topic in topics {
        tpl.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(tpl, Timeout::After(Duration::from_secs(10)))?;
    let mut seek = TopicPartitionList::new();
    for topic in topics {
        let offset = match from_marker.get(topic.as_str()) {
            Some(o) => Offset::Offset(*o),
            None => committed
                .find_partition(topic, p)
                .map(|e| e.offset())
                .filter(|o| matches!(o, Offset::Offset(_)))
                .unwrap_or(Offset::Beginning),
        };
        seek.add_partition_offset(topic, p, offset)?;
    }
    let sought = consumer.seek_partitions(seek, Timeout::After(Duration::from_secs(10)))?;
    for e in sought.elements() {
        if let Err(err) = e.error() {
            warn!(topic = e.topic(), partition = p, error = %err, "rewinding an input failed");
            return Err(err);
        }
    }
    Ok(())
}
