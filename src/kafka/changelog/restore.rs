//! Restoring a partition from its changelog partition, before its first record.
//!
//! 1. Find the last marker: read the tail of the partition, a window growing sixteenfold
//!    until a marker turns up (a crash can leave an interrupted checkpoint after it).
//! 2. Read from the first record of the marker's chain up to the marker, applying only
//!    the records of the checkpoints the marker names; anything else was cut off by a crash.
//! 3. Hand the engine and the marker's input offsets back: the consumer starts there.
//!
//! This runs on a blocking thread with a plain consumer assigned to the one partition (no
//! group, nothing committed), started by the partition's own task; `cancel` ends it early
//! when the partition is revoked or the service stops meanwhile.

use rustc_hash::FxHashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::detect::{Engine, SnapshotError};

use super::batch::{BatchError, Batches, Record};
use super::{ChangelogError, Key, Marker, Tag};

/// A restored partition.
pub struct Restored {
    pub engine: Engine,
    /// The checkpoint restored, `None` if the partition has none yet.
    pub marker: Option<Marker>,
    /// Records of an interrupted checkpoint were found: the next one must be full, so
    /// compaction cannot keep them over the state they would shadow.
    pub full_due: bool,
    pub subscribers: usize,
    pub records: u64,
    pub elapsed: Duration,
}

/// No record for this long while records are expected: the broker is gone.
const STALL: Duration = Duration::from_secs(30);

/// Restores `engine` (fresh from the current config) from partition `partition` of the
/// changelog `topic`. `progress(done, total)` is called as records are applied; setting
/// `cancel` makes it return [`ChangelogError::Cancelled`] soon after.
pub fn restore(
    client: &ClientConfig,
    topic: &str,
    partition: i32,
    mut engine: Engine,
    cancel: &AtomicBool,
    mut progress: impl FnMut(u64, u64),
) -> Result<Restored, ChangelogError> {
    let started = Instant::now();
    let (consumer, low, high) = open(client, topic, partition)?;
    let reader = Reader {
        consumer: &consumer,
        topic,
        partition,
        cancel,
    };
    let Some((at, marker)) = reader.last_marker(low, high)? else {
        return Ok(Restored {
            full_due: high > low,
            ..Restored::empty(engine, started)
        });
    };
    progress(0, (at - marker.chain_start).max(0) as u64);
    let mut replay = Replay::new(&marker);
    let mut records = 0u64;
    let mut failure = None;
    reader.read(marker.chain_start, at, |m| {
        records += 1;
        if records % 16_384 == 0 {
            progress(records, (at - marker.chain_start).max(0) as u64);
        }
        if let Err(e) = replay.record(&mut engine, m.key.unwrap_or_default(), m.value) {
            failure.get_or_insert(e);
        }
    })?;
    if let Some(e) = failure {
        return Err(e.into());
    }
    replay.apply_tombstones(&mut engine);
    let (parts, stray) = (replay.parts, replay.stray);
    let mut blob = Vec::new();
    for (i, part) in parts.into_iter().enumerate() {
        let Some(part) = part else {
            return Err(reader.corrupt(format!(
                "checkpoint {} misses partition-state chunk {i}",
                marker.tag.seq
            )));
        };
        blob.extend_from_slice(&part);
    }
    engine.restore_partition(&blob)?;
    engine.restore_finish();
    progress(records, records);
    Ok(Restored {
        subscribers: engine.stats().subscribers,
        full_due: stray > 0 || at + 1 < high,
        marker: Some(marker),
        engine,
        records,
        elapsed: started.elapsed(),
    })
}

/// What the records of a chain build up besides the engine.
struct Replay {
    /// Looked up once per record read: a fast hash, as for every per-record map.
    chain: FxHashSet<Tag>,
    marker: Tag,
    parts: Vec<Option<Vec<u8>>>,
    /// Records of checkpoints outside the chain (an interrupted one).
    stray: u64,
    /// Tombstones read whose checkpoint is not known yet.
    tombstones: Vec<u64>,
}

impl Replay {
    fn new(marker: &Marker) -> Replay {
        Replay {
            chain: marker.chain.iter().copied().collect(),
            marker: marker.tag,
            parts: vec![None; marker.partition_chunks as usize],
            stray: 0,
            tombstones: Vec::new(),
        }
    }

    /// Applies one record. A subscriber key with no value is a tombstone (an evicted
    /// subscriber). It carries no tag (compaction drops only null values), but a
    /// checkpoint writes its tombstones first and always some tagged records after them:
    /// so tombstones wait for the next tagged record, and are applied if that record's
    /// checkpoint is in the chain, dropped if it is an interrupted one.
    fn record(
        &mut self,
        engine: &mut Engine,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), SnapshotError> {
        let key = Key::parse(key);
        let Some(value) = value else {
            if let Key::Subscriber(n) = key {
                self.tombstones.push(n);
            }
            return Ok(());
        };
        let Some((tag, value)) = Tag::split(value) else {
            return Ok(());
        };
        if !self.chain.contains(&tag) {
            self.stray += 1 + self.tombstones.len() as u64;
            self.tombstones.clear();
            return Ok(());
        }
        self.apply_tombstones(engine);
        match key {
            Key::Subscriber(n) => engine.restore_subscriber(n, value),
            Key::Ids => engine.restore_ids(value),
            Key::Partition(i) if tag == self.marker => {
                if let Some(slot) = self.parts.get_mut(i as usize) {
                    *slot = Some(value.to_vec());
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

impl Replay {
    /// Applies the tombstones waiting: at the next record of a checkpoint in the chain, or
    /// at the end of the chain (the marker's own checkpoint wrote them).
    fn apply_tombstones(&mut self, engine: &mut Engine) {
        for n in self.tombstones.drain(..) {
            engine.forget_subscriber(n);
        }
    }
}

impl Restored {
    fn empty(engine: Engine, started: Instant) -> Restored {
        Restored {
            engine,
            marker: None,
            full_due: true,
            subscribers: 0,
            records: 0,
            elapsed: started.elapsed(),
        }
    }
}

struct Reader<'a> {
    consumer: &'a BaseConsumer,
    topic: &'a str,
    partition: i32,
    cancel: &'a AtomicBool,
}

impl Reader<'_> {
    fn corrupt(&self, reason: String) -> ChangelogError {
        ChangelogError::Corrupt {
            topic: self.topic.to_string(),
            partition: self.partition,
            reason,
        }
    }

    /// The last marker in `low..high` and its offset.
    fn last_marker(&self, low: i64, high: i64) -> Result<Option<(i64, Marker)>, ChangelogError> {
        let mut window = 64i64;
        loop {
            let start = (high - window).max(low);
            let mut found: Option<(i64, Vec<u8>)> = None;
            self.read(start, high, |m| {
                if m.key == Some(super::MARKER_KEY) {
                    if let Some(v) = m.value {
                        found = Some((m.offset, v.to_vec()));
                    }
                }
            })?;
            if let Some((at, bytes)) = found {
                let marker = Marker::decode(&bytes).map_err(|e| self.corrupt(e.to_string()))?;
                return Ok(Some((at, marker)));
            }
            if start <= low {
                return Ok(None);
            }
            window = window.saturating_mul(16);
        }
    }

    /// Calls `f` on every record at offsets `from..to` (records compaction removed are
    /// skipped by the broker).
    fn read(
        &self,
        from: i64,
        to: i64,
        mut f: impl FnMut(&Record<'_>),
    ) -> Result<(), ChangelogError> {
        if from >= to {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(self.topic, self.partition, Offset::Offset(from))
            .map_err(|source| ChangelogError::Kafka {
                topic: self.topic.to_string(),
                source,
            })?;
        self.consumer
            .assign(&tpl)
            .map_err(|source| ChangelogError::Kafka {
                topic: self.topic.to_string(),
                source,
            })?;
        let mut batches = Batches::new(self.consumer);
        let mut last_seen = Instant::now();
        let mut done = false;
        while !done {
            if self.cancel.load(Ordering::Relaxed) {
                return Err(ChangelogError::Cancelled {
                    partition: self.partition,
                });
            }
            let read = batches.next(Duration::from_millis(2), |m| {
                if m.offset >= to {
                    done = true;
                    return false;
                }
                f(&m);
                done = m.offset + 1 >= to;
                !done
            });
            match read {
                Ok(_) => last_seen = Instant::now(),
                Err(BatchError::Kafka(code)) => {
                    return Err(ChangelogError::Kafka {
                        topic: self.topic.to_string(),
                        source: rdkafka::error::KafkaError::MessageConsumption(code),
                    })
                }
                Err(BatchError::Idle) if last_seen.elapsed() > STALL => {
                    return Err(self.corrupt(format!(
                        "no record for {}s while reading offsets {from}..{to}",
                        STALL.as_secs()
                    )))
                }
                Err(BatchError::Idle) => {}
            }
        }
        Ok(())
    }
}

/// The last complete checkpoint of a changelog partition, if any (a tail read only).
pub fn latest_marker(
    client: &ClientConfig,
    topic: &str,
    partition: i32,
) -> Result<Option<Marker>, ChangelogError> {
    let (consumer, low, high) = open(client, topic, partition)?;
    let reader = Reader {
        consumer: &consumer,
        topic,
        partition,
        cancel: &AtomicBool::new(false),
    };
    Ok(reader.last_marker(low, high)?.map(|(_, m)| m))
}

/// A plain consumer for one changelog partition (no group, nothing committed) and the
/// partition's low and high watermarks.
fn open(
    client: &ClientConfig,
    topic: &str,
    partition: i32,
) -> Result<(BaseConsumer, i64, i64), ChangelogError> {
    let kafka = |source| ChangelogError::Kafka {
        topic: topic.to_string(),
        source,
    };
    let consumer: BaseConsumer = client
        .clone()
        .set("group.id", "churnwatch-restore")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("isolation.level", "read_committed")
        // No group: only so any session timeout in the passthrough options is accepted.
        .set("max.poll.interval.ms", "86400000")
        .set("max.partition.fetch.bytes", "16777216")
        // A restore reads what is already there as fast as it can: fetch again at once
        // when the local queue drains (librdkafka otherwise backs off a second once it
        // holds queued.min.messages), and never wait on the broker for more.
        .set("fetch.queue.backoff.ms", "1")
        .set("fetch.wait.max.ms", "5")
        .create()
        .map_err(kafka)?;
    let (low, high) = consumer
        .fetch_watermarks(topic, partition, Duration::from_secs(10))
        .map_err(kafka)?;
    Ok((consumer, low, high))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::event::{Cdr, CdrKind, Event, Msisdn, RecordKey};
    use crate::detect::DetectConfig;

    const SUB: u64 = 8613012345678;

    fn engine_with(subscribers: u64) -> Engine {
        let mut e = Engine::new(&DetectConfig::default(), &[]).unwrap();
        for s in 0..subscribers {
            let cdr = Cdr {
                id: RecordKey(s + 1),
                subscriber: Msisdn(SUB + s),
                time_ms: 1_773_000_000_000,
                kind: CdrKind::SmsOut,
                other_party: "13012340001",
                duration_s: 0,
                data_bytes: 0,
                charge: 10,
                call_ref: 0,
                partial: false,
                roaming: false,
            };
            e.apply(&Event::Cdr(cdr), &mut Vec::new());
        }
        e
    }

    fn tagged(tag: Tag, bytes: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        tag.write(&mut v);
        v.extend_from_slice(bytes);
        v
    }

    #[test]
    fn a_null_value_makes_its_subscriber_absent() {
        let tag = Tag { writer: 7, seq: 1 };
        let marker = Marker {
            tag,
            chain_start: 0,
            chain: vec![tag],
            chain_written: 0,
            partition_chunks: 1,
            inputs: Vec::new(),
        };
        let mut saved = engine_with(3);
        let mut log: Vec<(String, Option<Vec<u8>>)> = Vec::new();
        saved.drain_changed(true, |m, b| log.push((m.to_string(), Some(tagged(tag, b)))));
        // An interrupted checkpoint's tombstone, then its first tagged record.
        log.push(((SUB + 2).to_string(), None));
        log.push((
            "#partition/0".to_string(),
            Some(tagged(Tag { writer: 7, seq: 2 }, b"x")),
        ));
        log.push(((SUB + 1).to_string(), None));
        log.push(((SUB + 9).to_string(), None));
        let blob = saved.encode_partition();
        let mut replay = Replay::new(&marker);
        let mut r = Engine::new(&DetectConfig::default(), &[]).unwrap();
        for (key, value) in &log {
            replay
                .record(&mut r, key.as_bytes(), value.as_deref())
                .unwrap();
        }
        replay.apply_tombstones(&mut r);
        r.restore_partition(&blob).unwrap();
        r.restore_finish();
        assert!(
            r.subscriber(Msisdn(SUB + 1)).is_none(),
            "the tombstone wins"
        );
        assert!(r.subscriber(Msisdn(SUB)).is_some() && r.subscriber(Msisdn(SUB + 2)).is_some());
        assert_eq!((r.stats().subscribers, replay.stray), (2, 2));
    }
}
