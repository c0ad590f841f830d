//! The Kafka adapter around the pure core, split by role as Vector splits its Kafka sink.
//!
//! - [`service`]: `churnwatch run`, the wiring: start-up checks (broker, topics,
//!   co-partitioning), starting each assigned partition's task and restarting one that
//!   failed, config reloads, shutdown.
//! - [`consumer`]: the consumer group, rebalance hooks that drain a revoked partition
//!   before it moves, each input partition's own queue, offsets skipped by a reset, and
//!   whether an input has reached its log end.
//! - [`partition`]: one task and one engine per partition: inputs merged by event time
//!   ([`merge`], the input that is ahead paused while another lags), checkpoints written
//!   once every ticket and dead letter before them is acknowledged, then the input offsets
//!   stored; bounded in-flight work.
//! - [`changelog`]: checkpoints of each partition's engine in a compacted topic, with the
//!   input offsets they reflect, and the restore that reads them back.
//! - [`assign`]: on assignment, each partition's engine is kept (if still current) or
//!   restored before its first record, and the inputs start at its checkpoint.
//! - [`producer`]: publishing tickets and dead letters.
//! - [`transaction`]: with `exactly_once`, one Kafka transaction per checkpoint.
//! - [`dead_letter`]: records set aside, with their original bytes (cut to fit the
//!   producer's `message.max.bytes`, with their size and digest) and the reason.
//! - [`worker`]: one partition's processing without I/O (bytes in, tickets and dead
//!   letters out), the same engine code as `replay`.
//! - [`partitioner`]: the partition of a key (Kafka's murmur2, librdkafka's CRC32) and
//!   the check that each record read is on its key's partition.
//! - [`idle`]: when a quiet partition's event-time clock follows the wall clock, so its
//!   days still close.
//! - [`shared`]: what the service shares with the HTTP endpoint (metrics, readiness, the
//!   partition tasks' control channels, recent tickets).
//! - [`embedded`]: the embedded Kafka-protocol broker (librdkafka's mock cluster with its
//!   per-partition retention limit raised) for `demo`, `broker`, tests and benchmarks;
//!   only with the `embedded-broker` feature (in `default`).
//!
//! Imports run one way, from the wiring down: `service` uses the roles; `partition` uses
//! `consumer`, `merge`, `changelog`, `transaction`, `producer`, `dead_letter`, `idle`,
//! `shared` and `worker`; `consumer` uses `assign` (restores on assignment) and `merge`
//! (for [`merge::Lag`]); `assign` uses `changelog`, `shared` and `worker`; `partitioner` uses `shared`; then `shared`
//! uses `changelog` (a parked engine's checkpoint writer), `producer` and `worker`,
//! `worker` uses `dead_letter` (for the reasons) and `dead_letter` uses `producer` (for
//! what it publishes). `changelog` uses only the core. Nothing imports back up.

pub mod assign;
pub mod changelog;
pub mod consumer;
pub mod dead_letter;
#[cfg(feature = "embedded-broker")]
pub mod embedded;
pub mod fault;
pub mod idle;
pub mod merge;
pub mod partition;
pub mod partitioner;
pub mod producer;
pub mod readiness;
pub mod service;
pub mod shared;
pub mod stall;
pub mod transaction;
pub mod worker;

use rdkafka::config::ClientConfig;

use crate::config::Config;

/// The librdkafka settings every client of the adapter starts from: the brokers, then the
/// `[kafka.options]` passthrough.
pub fn client_config(cfg: &Config) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.kafka.brokers);
    for (k, v) in &cfg.kafka.options {
        c.set(k, v);
    }
    c
}
