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
//!   number (its fixed-size, versioned state);
//! - the de-duplication ids remembered since the last checkpoint (`#ids/<pos>/<chunk>`);
//! - the partition's own state, whole: watermark, partial calls, pending account facts,
//!   contact-cap windows, suppressions (`#partition/<chunk>`);
//! - last, the **marker** (`#checkpoint`): its identity, the input offsets the state
//!   reflects, and where the chain of checkpoints it completes begins.
//!
//! Every record's value starts with its checkpoint's [`Tag`] (writer, sequence), so a
//! restore can tell the records of complete checkpoints from those of one a crash cut off.
//!
//! Every value's encoding, the tag and the marker included, is versioned in
//! [`crate::detect::snapshot`]; this module owns the topic: its keys ([`Key`], how records
//! are named for compaction, not versioned), the writes, the reads and their errors.
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

use crate::detect::snapshot::SnapshotError;
pub use crate::detect::snapshot::{Marker, Tag, MAX_CHAIN};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
