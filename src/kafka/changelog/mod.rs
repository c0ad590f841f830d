//! The state changelog: each partition's engine, saved to a compacted Kafka topic in
//! checkpoints, so a crash, restart or rebalance resumes where the last checkpoint left off.
//!
//! Kafka Streams keeps a changelog per store and Flink keeps the source offsets inside
//! each checkpoint; churnwatch does both, in one topic (`kafka.topics.changelog`),
//! partition `p` holding input partition `p`'s state.
//!
//! **What a checkpoint writes**, every `kafka.checkpoint_interval_ms`, once every ticket
//! and dead letter published before it is acknowledged:
//! - one record per subscriber changed since the last checkpoint, keyed by the subscriber
//!   number (its fixed-size, versioned state from [`crate::detect::snapshot`]);
//! - the de-duplication ids remembered since the last checkpoint (`#ids/<pos>/<chunk>`);
//! - the partition's own state, whole: watermark, partial calls, pending account facts,
//!   contact-cap windows, suppressions (`#partition/<chunk>`);
//! - last, the **marker** (`#checkpoint`): its identity, the input offsets the state
//!   reflects, and where the chain of checkpoints it completes begins.
//!
//! Every record's value starts with its checkpoint's [`Tag`] (writer, sequence), so a
//! restore can tell the records of complete checkpoints from those of one a crash cut off.
//!
//! **Consistent recovery on any broker.** A restore reads the last marker and only the
//! records of the checkpoints it names; the consumer then starts each input at the offsets
//! in the marker, whatever the group committed. Neither depends on transactions, which the
//! embedded broker and Tansu only partly implement. Tickets raised after the checkpoint are
//! raised again by the re-read input: the same id and content (at least once).
//!
//! **Restore time bounded by the state, not the uptime.** A chain starts with a *full*
//! checkpoint (every subscriber, every id) and a restore reads from its first record. A new
//! full checkpoint starts once the chain has written as many subscriber records as there
//! are subscribers, or after [`MAX_CHAIN`] checkpoints, so a restore reads at most about
//! twice the state, on a broker that never compacts (the embedded one) as on one that does.
//! Keys are reused chain after chain (`#ids/<pos>/..`), so compaction keeps the topic to
//! the live state.

mod batch;
pub mod restore;
pub mod topic;
pub mod writer;

use crate::detect::snapshot::{Reader, SnapshotError};

/// Identity of one checkpoint: the writing task (random per task start) and its sequence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag {
    pub writer: u64,
    pub seq: u64,
}

impl Tag {
    pub const BYTES: usize = 16;

    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.writer.to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
    }

    /// The tag at the start of a record value, and the rest.
    pub fn split(value: &[u8]) -> Option<(Tag, &[u8])> {
        let head = value.get(..Self::BYTES)?;
        let writer = u64::from_le_bytes(head[..8].try_into().ok()?);
        let seq = u64::from_le_bytes(head[8..].try_into().ok()?);
        Some((Tag { writer, seq }, &value[Self::BYTES..]))
    }
}

/// Checkpoints in one chain at most; bounds the marker and the reused key space.
pub const MAX_CHAIN: usize = 720;
/// Largest id or partition chunk (the producer's default message limit is 1 MB).
pub const MAX_CHUNK: usize = 512 * 1024;

/// Reserved keys start with `#`; subscriber keys are digits.
pub const MARKER_KEY: &[u8] = b"#checkpoint";
const PARTITION_PREFIX: &str = "#partition/";
const IDS_PREFIX: &str = "#ids/";

/// What a changelog key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Subscriber(u64),
    Ids,
    Partition(u32),
    Marker,
    Unknown,
}

impl Key {
    pub fn parse(key: &[u8]) -> Key {
        if key == MARKER_KEY {
            return Key::Marker;
        }
        if let Some(rest) = key.strip_prefix(PARTITION_PREFIX.as_bytes()) {
            return std::str::from_utf8(rest)
                .ok()
                .and_then(|s| s.parse().ok())
                .map_or(Key::Unknown, Key::Partition);
        }
        if key.starts_with(IDS_PREFIX.as_bytes()) {
            return Key::Ids;
        }
        if !key.is_empty() && key.len() <= 20 && key.iter().all(u8::is_ascii_digit) {
            return std::str::from_utf8(key)
                .ok()
                .and_then(|s| s.parse().ok())
                .map_or(Key::Unknown, Key::Subscriber);
        }
        Key::Unknown
    }

    pub fn partition_chunk(i: u32) -> String {
        format!("{PARTITION_PREFIX}{i}")
    }

    pub fn ids_chunk(pos: usize, i: u32) -> String {
        format!("{IDS_PREFIX}{pos}/{i}")
    }
}

/// The marker's encoding version.
pub const MARKER_VERSION: u8 = 1;

/// The last record of a complete checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub tag: Tag,
    /// Changelog offset of the first record of the chain's full checkpoint.
    pub chain_start: i64,
    /// Every checkpoint of the chain, the full one first and this one last.
    pub chain: Vec<Tag>,
    /// Subscriber records the chain has written (decides when the next full one is due).
    pub chain_written: u64,
    /// Chunks of the partition state this checkpoint wrote.
    pub partition_chunks: u32,
    /// Per input topic, the offset of the next record to process.
    pub inputs: Vec<(String, i64)>,
}

/// Why the changelog could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ChangelogError {
    #[error("changelog topic `{topic}`: {source}")]
    Kafka {
        topic: String,
        source: rdkafka::error::KafkaError,
    },
    #[error("changelog topic `{topic}` partition {partition}: {reason}")]
    Corrupt {
        topic: String,
        partition: i32,
        reason: String,
    },
    #[error(
        "changelog topic `{topic}` has {found} partitions, the inputs {want}: it must be \
         co-partitioned with them (partition p holds input partition p's state)"
    )]
    NotCoPartitioned {
        topic: String,
        found: usize,
        want: usize,
    },
    /// A thread reading the changelog panicked (a bug).
    #[error("changelog topic `{topic}`: a thread reading it panicked")]
    Panicked { topic: String },
    /// The restore was given up: the partition was revoked or the service is stopping.
    #[error("restoring partition {partition} was given up: the partition moved or the service is stopping")]
    Cancelled { partition: i32 },
    #[error(transparent)]
    State(#[from] SnapshotError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

impl Marker {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![MARKER_VERSION];
        self.tag.write(&mut out);
        out.extend_from_slice(&self.chain_start.to_le_bytes());
        out.extend_from_slice(&self.chain_written.to_le_bytes());
        out.extend_from_slice(&self.partition_chunks.to_le_bytes());
        out.extend_from_slice(&(self.chain.len() as u32).to_le_bytes());
        for t in &self.chain {
            t.write(&mut out);
        }
        out.extend_from_slice(&(self.inputs.len() as u32).to_le_bytes());
        for (topic, offset) in &self.inputs {
            out.extend_from_slice(&(topic.len() as u16).to_le_bytes());
            out.extend_from_slice(topic.as_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
        }
        out
    }

    /// Decodes a marker with the core's bounds-checked reader: an unknown version is an
    /// error naming it, a truncated or malformed marker one saying so.
    pub fn decode(bytes: &[u8]) -> Result<Marker, SnapshotError> {
        let mut r = Reader::versioned(bytes, "checkpoint marker", MARKER_VERSION)?;
        let tag = read_tag(&mut r)?;
        let chain_start = r.i64()?;
        let chain_written = r.u64()?;
        let partition_chunks = r.u32()?;
        let n = r.u32()? as usize;
        let chain = (0..n.min(MAX_CHAIN * 2))
            .map(|_| read_tag(&mut r))
            .collect::<Result<Vec<_>, _>>()?;
        let n = r.u32()? as usize;
        let mut inputs = Vec::with_capacity(n.min(16));
        for _ in 0..n.min(16) {
            let len = r.u16()? as usize;
            let name = r.take(len)?;
            let topic = std::str::from_utf8(name)
                .map_err(|e| r.malformed(format!("topic name: {e}")))?
                .to_string();
            inputs.push((topic, r.i64()?));
        }
        Ok(Marker {
            tag,
            chain_start,
            chain,
            chain_written,
            partition_chunks,
            inputs,
        })
    }
}

fn read_tag(r: &mut Reader<'_>) -> Result<Tag, SnapshotError> {
    Ok(Tag {
        writer: r.u64()?,
        seq: r.u64()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker() -> Marker {
        Marker {
            tag: Tag { writer: 7, seq: 3 },
            chain_start: 42,
            chain: vec![Tag { writer: 7, seq: 1 }, Tag { writer: 7, seq: 3 }],
            chain_written: 900,
            partition_chunks: 2,
            inputs: vec![("cdr".into(), 1_000), ("account".into(), 55)],
        }
    }

    #[test]
    fn a_marker_round_trips_and_its_layout_is_pinned() {
        let m = marker();
        let bytes = m.encode();
        assert_eq!(Marker::decode(&bytes).unwrap(), m);
        assert_eq!(bytes[0], MARKER_VERSION);
        assert_eq!(&bytes[1..9], &7u64.to_le_bytes());
        assert_eq!(&bytes[17..25], &42i64.to_le_bytes());
        assert_eq!(
            bytes.len(),
            1 + 16 + 8 + 8 + 4 + 4 + 32 + 4 + (2 + 3 + 8) + (2 + 7 + 8)
        );
    }

    #[test]
    fn an_unknown_marker_version_is_named_and_a_truncated_one_is_an_error() {
        let mut bytes = marker().encode();
        bytes[0] = 9;
        let e = Marker::decode(&bytes).unwrap_err().to_string();
        assert!(e.contains("version 9"), "{e}");
        let bytes = marker().encode();
        for cut in 0..bytes.len() {
            assert!(Marker::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn keys_name_subscribers_and_reserved_records() {
        assert_eq!(Key::parse(b"8613800000001"), Key::Subscriber(8613800000001));
        assert_eq!(Key::parse(MARKER_KEY), Key::Marker);
        assert_eq!(
            Key::parse(Key::partition_chunk(3).as_bytes()),
            Key::Partition(3)
        );
        assert_eq!(Key::parse(Key::ids_chunk(5, 0).as_bytes()), Key::Ids);
        assert_eq!(Key::parse(b"#other"), Key::Unknown);
        assert_eq!(Key::parse(b"99999999999999999999999"), Key::Unknown);
        assert_eq!(Key::parse(b""), Key::Unknown);
    }

    #[test]
    fn a_tag_leads_every_value() {
        let mut v = Vec::new();
        Tag { writer: 1, seq: 2 }.write(&mut v);
        v.extend_from_slice(b"state");
        let (t, rest) = Tag::split(&v).unwrap();
        assert_eq!(t, Tag { writer: 1, seq: 2 });
        assert_eq!(rest, b"state");
        assert!(Tag::split(&v[..15]).is_none());
    }
}
