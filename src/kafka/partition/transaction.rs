//! Exactly-once (`kafka.processing_guarantee = "exactly_once"`): each partition task owns
//! a transactional producer, and one Kafka transaction per checkpoint carries its tickets,
//! dead letters, changelog records and the input offsets (EOS v2's
//! `send_offsets_to_transaction` with the consumer's group metadata).
//!
//! The transactional id is stable per partition (`<group>-<changelog>-<p>`), so a new
//! owner's `init_transactions` fences any zombie of the previous one, and the group
//! metadata fences a member that lost its generation. A fenced or fatal producer stops
//! the service with an error, so the process exits non-zero and the orchestrator restarts
//! it; the restore then starts from the last committed checkpoint. Readers of the ticket
//! topic must use `isolation.level=read_committed`.
//!
//! The restore does not rely on the broker's transactions: the checkpoint's own marker
//! names its records and input offsets (see [`crate::kafka::changelog`]), which is what keeps
//! recovery consistent on brokers that store no transactional offsets (the embedded one)
//! or deliver aborted records to committed readers (the embedded one and Tansu).

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::config::Config;

use crate::kafka::consumer::InputConsumer;

const TIMEOUT: Duration = Duration::from_secs(30);

/// A partition's transactional producer, with its first transaction open (blocking).
pub fn begin(cfg: &Config, partition: i32) -> Result<FutureProducer, KafkaError> {
    let id = format!(
        "{}-{}-{partition}",
        cfg.kafka.group_id, cfg.kafka.topics.changelog
    );
    let extra = [
        ("transactional.id", id.as_str()),
        // At least the producer's message timeout, which librdkafka requires.
        ("transaction.timeout.ms", "600000"),
    ];
    let producer = crate::kafka::producer::create_with(cfg, &extra)?;
    producer.init_transactions(TIMEOUT)?;
    producer.begin_transaction()?;
    Ok(producer)
}

/// Commits the open transaction with the input offsets (`topic -> next offset`), then
/// opens the next one (blocking).
pub fn commit(
    producer: &FutureProducer,
    consumer: &InputConsumer,
    partition: i32,
    offsets: &BTreeMap<String, i64>,
) -> Result<(), KafkaError> {
    let mut tpl = TopicPartitionList::new();
    for (topic, next) in offsets {
        tpl.add_partition_offset(topic, partition, Offset::Offset(*next))?;
    }
    if tpl.count() > 0 {
        let group = consumer.group_metadata().ok_or_else(|| {
            KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::UnknownMemberId)
        })?;
        producer.send_offsets_to_transaction(&tpl, &group, TIMEOUT)?;
    }
    producer.commit_transaction(TIMEOUT)?;
    producer.begin_transaction()
}
