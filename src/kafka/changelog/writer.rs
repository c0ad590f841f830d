//! Writing checkpoints: tombstones of the evicted subscribers, the changed subscribers, the
//! new de-duplication ids and the partition's own state, then, once all of them are
//! acknowledged, the marker. Tombstones go first, so a number evicted and seen again since
//! ends with its new record.
//!
//! The partition task calls [`Checkpointer::write`] between records, after every ticket and
//! dead letter published so far is acknowledged, so a complete checkpoint never reflects a
//! ticket the broker has not got. A write that fails stops the service (the caller reports
//! it): the last complete checkpoint stays the restore point, and nothing is lost.

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::io::Write as _;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use crate::detect::Engine;

use super::{Key, Marker, Tag, MARKER_KEY, MAX_CHAIN, MAX_CHUNK};

/// What one record of a checkpoint is, before its key is spelled out.
#[derive(Debug, Clone, Copy)]
enum Item {
    Subscriber(u64),
    /// An evicted subscriber: its number with no value, so compaction forgets it.
    Tombstone(u64),
    Ids(u32),
    Partition(u32),
}

/// What a checkpoint wrote, for metrics and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    pub full: bool,
    pub subscribers: u64,
    pub records: u64,
    pub bytes: u64,
}

/// A checkpoint taken from the engine, not sent yet ([`Checkpointer::begin`]).
#[derive(Debug, Default)]
pub struct Begun {
    /// Whether there is anything to write (a changelog topic).
    write: bool,
    full: bool,
    tag: Tag,
    pos: usize,
    subscribers: u64,
}

/// A partition's checkpoint writer: where its chain stands.
pub struct Checkpointer {
    topic: String,
    partition: i32,
    writer: u64,
    next_seq: u64,
    last: Option<Marker>,
    /// A full checkpoint is due: none yet, or a restore found an interrupted one.
    full_due: bool,
    data: Vec<u8>,
    items: Vec<(Item, usize, usize)>,
}

/// A writer id no other task is likely to pick: the clock and the process, hashed.
fn writer_id(partition: i32) -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i32(partition);
    h.write_u32(std::process::id());
    h.finish()
}

impl Checkpointer {
    /// Continues after `last` (the marker restored from, if any); `full_due` when the
    /// restore met records of a checkpoint that never completed. An empty `topic` writes
    /// nothing (no changelog): a checkpoint then only stores the input offsets.
    pub fn new(topic: &str, partition: i32, last: Option<Marker>, full_due: bool) -> Self {
        Checkpointer {
            topic: topic.to_string(),
            partition,
            writer: writer_id(partition),
            next_seq: last.as_ref().map_or(1, |m| m.tag.seq + 1),
            full_due: full_due || last.is_none(),
            last,
            data: Vec::new(),
            items: Vec::new(),
        }
    }

    /// The last complete checkpoint.
    pub fn last(&self) -> Option<&Marker> {
        self.last.as_ref()
    }

    /// Whether the next checkpoint rewrites everything: a chain ends once it has written
    /// as many subscriber records as there are subscribers, or after [`MAX_CHAIN`].
    fn full_next(&self, subscribers: usize) -> bool {
        match &self.last {
            _ if self.full_due => true,
            None => true,
            Some(m) => m.chain_written >= subscribers.max(1) as u64 || m.chain.len() >= MAX_CHAIN,
        }
    }

    /// Writes one checkpoint of `engine` reflecting `inputs` (per input topic, the next
    /// offset to process) and waits for the broker to acknowledge it.
    pub async fn write(
        &mut self,
        producer: &FutureProducer,
        engine: &mut Engine,
        inputs: Vec<(String, i64)>,
    ) -> Result<Written, KafkaError> {
        let begun = self.begin(engine);
        self.send(producer, begun, inputs).await
    }

    /// The first half of [`Checkpointer::write`]: takes what changed from `engine` into
    /// the checkpoint's buffer, so the engine can go on while [`Checkpointer::send`] runs.
    pub fn begin(&mut self, engine: &mut Engine) -> Begun {
        if self.topic.is_empty() {
            return Begun::default();
        }
        let full = self.full_next(engine.stats().subscribers);
        let tag = Tag {
            writer: self.writer,
            seq: self.next_seq,
        };
        let pos = if full {
            0
        } else {
            self.last.as_ref().map_or(0, |m| m.chain.len())
        };
        let subscribers = self.collect(engine, tag, full);
        Begun {
            write: true,
            full,
            tag,
            pos,
            subscribers,
        }
    }

    /// The second half of [`Checkpointer::write`]: sends what [`Checkpointer::begin`]
    /// took, then the marker, and waits for the broker to acknowledge them.
    pub async fn send(
        &mut self,
        producer: &FutureProducer,
        begun: Begun,
        inputs: Vec<(String, i64)>,
    ) -> Result<Written, KafkaError> {
        let Begun {
            write,
            full,
            tag,
            pos,
            subscribers,
        } = begun;
        if !write {
            return Ok(Written::default());
        }
        let first = self.send_all(producer, pos).await?;
        let (chain_start, chain, written_before) = match (&self.last, full) {
            (Some(m), false) => (m.chain_start, m.chain.clone(), m.chain_written),
            _ => (first, Vec::new(), 0),
        };
        let mut chain = chain;
        chain.push(tag);
        let marker = Marker {
            tag,
            chain_start,
            chain,
            // The full checkpoint itself is the state; what counts is what came after it.
            chain_written: if full {
                0
            } else {
                written_before + subscribers
            },
            partition_chunks: self
                .items
                .iter()
                .filter(|i| matches!(i.0, Item::Partition(_)))
                .count() as u32,
            inputs,
        };
        let value = marker.encode();
        let fut = self.send_one(producer, MARKER_KEY, &value).await?;
        delivered(fut.await)?;
        let written = Written {
            full,
            subscribers,
            records: self.items.len() as u64 + 1,
            bytes: (self.data.len() + value.len()) as u64,
        };
        self.last = Some(marker);
        self.full_due = false;
        self.next_seq += 1;
        Ok(written)
    }

    /// Lays the checkpoint's records out in one buffer; the subscriber count.
    fn collect(&mut self, engine: &mut Engine, tag: Tag, full: bool) -> u64 {
        let (data, items) = (&mut self.data, &mut self.items);
        data.clear();
        items.clear();
        engine.drain_evicted(|m| items.push((Item::Tombstone(m), 0, 0)));
        engine.drain_changed(full, |m, bytes| {
            let start = data.len();
            tag.write(data);
            data.extend_from_slice(bytes);
            items.push((Item::Subscriber(m), start, data.len()));
        });
        let subscribers = items.len() as u64;
        let mut chunk = 0;
        engine.drain_ids(full, MAX_CHUNK, |bytes| {
            let start = data.len();
            tag.write(data);
            data.extend_from_slice(bytes);
            items.push((Item::Ids(chunk), start, data.len()));
            chunk += 1;
        });
        let blob = engine.encode_partition();
        for (i, piece) in blob.chunks(MAX_CHUNK).enumerate() {
            let start = data.len();
            tag.write(data);
            data.extend_from_slice(piece);
            items.push((Item::Partition(i as u32), start, data.len()));
        }
        subscribers
    }

    /// Sends every collected record and waits for all of them; the lowest offset written.
    async fn send_all(&mut self, producer: &FutureProducer, pos: usize) -> Result<i64, KafkaError> {
        let mut waiting: VecDeque<DeliveryFuture> = VecDeque::new();
        let mut first = i64::MAX;
        let mut key = Vec::with_capacity(32);
        let items = std::mem::take(&mut self.items);
        for &(item, start, end) in &items {
            key.clear();
            match item {
                Item::Subscriber(m) | Item::Tombstone(m) => write!(key, "{m}"),
                Item::Ids(i) => key.write_all(Key::ids_chunk(pos, i).as_bytes()),
                Item::Partition(i) => key.write_all(Key::partition_chunk(i).as_bytes()),
            }
            .map_err(|_| KafkaError::Canceled)?;
            let value = (!matches!(item, Item::Tombstone(_))).then(|| &self.data[start..end]);
            loop {
                let mut record = FutureRecord::<[u8], [u8]>::to(&self.topic)
                    .partition(self.partition)
                    .key(&key[..]);
                if let Some(value) = value {
                    record = record.payload(value);
                }
                match producer.send_result(record) {
                    Ok(fut) => {
                        waiting.push_back(fut);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        let Some(oldest) = waiting.pop_front() else {
                            tokio::task::yield_now().await;
                            continue;
                        };
                        first = first.min(delivered(oldest.await)?);
                    }
                    Err((e, _)) => return Err(e),
                }
            }
        }
        self.items = items;
        for fut in waiting {
            first = first.min(delivered(fut.await)?);
        }
        Ok(first)
    }

    async fn send_one(
        &self,
        producer: &FutureProducer,
        key: &[u8],
        value: &[u8],
    ) -> Result<DeliveryFuture, KafkaError> {
        loop {
            let record = FutureRecord::to(&self.topic)
                .partition(self.partition)
                .key(key)
                .payload(value);
            match producer.send_result(record) {
                Ok(fut) => return Ok(fut),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await
                }
                Err((e, _)) => return Err(e),
            }
        }
    }
}

/// The offset a delivery landed at, or why it failed.
fn delivered<E>(
    r: Result<rdkafka::producer::future_producer::OwnedDeliveryResult, E>,
) -> Result<i64, KafkaError> {
    match r {
        Ok(Ok(d)) => Ok(d.offset),
        Ok(Err((e, _))) => Err(e),
        Err(_) => Err(KafkaError::Canceled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker(chain: usize, written: u64) -> Marker {
        Marker {
            tag: Tag {
                writer: 1,
                seq: chain as u64,
            },
            chain_start: 0,
            chain: (1..=chain as u64)
                .map(|seq| Tag { writer: 1, seq })
                .collect(),
            chain_written: written,
            partition_chunks: 1,
            inputs: Vec::new(),
        }
    }

    #[test]
    fn a_chain_ends_once_it_has_rewritten_the_state_or_grown_long() {
        let fresh = Checkpointer::new("state", 0, None, false);
        assert!(fresh.full_next(1_000), "the first checkpoint is full");
        let resumed = Checkpointer::new("state", 0, Some(marker(3, 10)), false);
        assert!(
            !resumed.full_next(1_000),
            "incremental while the chain is short"
        );
        assert_eq!(
            resumed.next_seq, 4,
            "sequence goes on from the restored marker"
        );
        let interrupted = Checkpointer::new("state", 0, Some(marker(3, 10)), true);
        assert!(
            interrupted.full_next(1_000),
            "after an interrupted checkpoint"
        );
        let rewritten = Checkpointer::new("state", 0, Some(marker(3, 1_000)), false);
        assert!(
            rewritten.full_next(1_000),
            "the chain wrote as much as the state"
        );
        let long = Checkpointer::new("state", 0, Some(marker(MAX_CHAIN, 10)), false);
        assert!(
            long.full_next(1_000),
            "the marker's chain list stays bounded"
        );
    }
}
