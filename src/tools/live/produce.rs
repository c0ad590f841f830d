//! Records into Kafka as `run` expects them: keyed by subscriber, on the partition the
//! configured partitioner gives the key, at a steady rate.

use std::time::{Duration, Instant};

use prost::Message as _;
use rdkafka::config::ClientConfig;
use rdkafka::message::ToBytes;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use tokio::sync::watch;

use crate::config::{Config, Format, Partitioner};
use crate::kafka::partitioner;
use crate::tools::workload::WireEvent;

/// Partition of a subscriber under Kafka's default partitioner (murmur2, as the Java
/// clients and librdkafka's `murmur2_random`): the key decides, so every record of a
/// subscriber meets in one partition of each input topic, where `run` expects it.
pub fn partition_of(subscriber: &str, partitions: i32) -> i32 {
    partition_under(Partitioner::Murmur2, subscriber, partitions)
}

/// Partition of a subscriber under `partitioner` (murmur2 when it has no fixed one).
fn partition_under(partitioner: Partitioner, subscriber: &str, partitions: i32) -> i32 {
    let key = subscriber.as_bytes();
    partitioner::partition_for(partitioner, key, partitions)
        .or_else(|| partitioner::partition_for(Partitioner::Murmur2, key, partitions))
        .unwrap_or(0)
}

/// Produces the events at `rate` per second (0 = as fast as possible), in the given order.
pub async fn stream(
    producer: &FutureProducer,
    cfg: &Config,
    events: &[WireEvent],
    partitions: i32,
    rate: u64,
    stop: &watch::Receiver<bool>,
) -> u64 {
    let t = &cfg.kafka.topics;
    let mut sent = 0u64;
    let start = Instant::now();
    let mut pending = Vec::new();
    for e in events {
        if *stop.borrow() {
            break;
        }
        let json = cfg.kafka.input_format == Format::Json;
        let (topic, sub, bytes) = match e {
            WireEvent::Cdr(c) if json => (&t.cdr, c.subscriber.as_str(), to_json(c)),
            WireEvent::Account(a) if json => (&t.account, a.subscriber.as_str(), to_json(a)),
            WireEvent::Cdr(c) => (&t.cdr, c.subscriber.as_str(), c.encode_to_vec()),
            WireEvent::Account(a) => (&t.account, a.subscriber.as_str(), a.encode_to_vec()),
        };
        let rec = FutureRecord::to(topic)
            .key(sub)
            .payload(&bytes)
            .partition(partition_under(cfg.kafka.partitioner, sub, partitions));
        send_queued(producer, rec, &mut pending).await;
        sent += 1;
        if pending.len() >= 1000 {
            for f in pending.drain(..) {
                let _ = f.await;
            }
        }
        if rate > 0 {
            // Pacing to the target rate (a producer's schedule, not synchronisation).
            let due = start + Duration::from_secs_f64(sent as f64 / rate as f64);
            if due > Instant::now() + Duration::from_millis(5) {
                for f in pending.drain(..) {
                    let _ = f.await;
                }
                tokio::time::sleep_until(due.into()).await;
            }
        }
    }
    for f in pending {
        let _ = f.await;
    }
    sent
}

/// A producer for bulk input: small linger, a deep queue, keys partitioned as `run`
/// expects them (`kafka.partitioner`).
pub(super) fn bulk_producer(
    bootstrap: &str,
    partitioner: Partitioner,
) -> Result<FutureProducer, rdkafka::error::KafkaError> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("partitioner", partitioner::librdkafka_name(partitioner))
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()
}

/// Queues `record`; while the producer's queue is full, waits for the `pending`
/// acknowledgements to make room.
pub(super) async fn send_queued<K, P>(
    producer: &FutureProducer,
    mut record: FutureRecord<'_, K, P>,
    pending: &mut Vec<DeliveryFuture>,
) where
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    loop {
        match producer.send_result(record) {
            Ok(f) => {
                pending.push(f);
                return;
            }
            Err((_, r)) => {
                record = r;
                for f in pending.drain(..) {
                    let _ = f.await;
                }
                tokio::task::yield_now().await;
            }
        }
    }
}

/// A message as proto3 JSON (what `kafka.input_format = "json"` reads).
fn to_json(m: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(m).unwrap_or_default()
}
