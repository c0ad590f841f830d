//! The Kafka adapter around the pure core, grouped by role as Vector splits its Kafka
//! sink. A record flows fetch → partition task → worker → driver → engine → publisher and
//! checkpointer.
//!
//! - [`service`]: `churnwatch run`, the wiring: start-up checks (broker, topics,
//!   co-partitioning), starting each assigned partition's task and restarting one that
//!   failed, config reloads, shutdown.
//! - [`consumer`]: the consumer group: rebalance hooks that drain a revoked partition
//!   before it moves and, on assignment, start each input at its partition's checkpoint
//!   ([`consumer::assign`]); each input partition's own queue; the stall watch
//!   ([`consumer::stall`]: a partition not being fetched); offsets skipped by a reset; and
//!   whether an input has reached its log end.
//! - [`partition`]: one task and one engine per partition, in parts: the intake and the
//!   event-time merge ([`partition::merge`]), event time on a quiet partition
//!   ([`partition::idle`]), the worker that feeds the driver ([`partition::worker`]), the
//!   publisher, the checkpointer and its transactions ([`partition::transaction`]).
//! - [`changelog`]: checkpoints of each partition's engine in a compacted topic, with the
//!   input offsets they reflect, and the restore that reads them back.
//! - [`producer`]: publishing tickets and dead letters.
//! - [`dead_letter`]: records set aside, with their original bytes (cut to fit the
//!   producer's `message.max.bytes`, with their size and digest) and the reason.
//! - [`error`]: what is done about a failure (retry, reject the record, stop), and
//!   [`Error`], every way the service stops.
//! - [`partitioner`]: the partition of a key (Kafka's murmur2, librdkafka's CRC32) and
//!   the check that each record read is on its key's partition.
//! - [`readiness`]: the named conditions `/readyz` reports.
//! - [`shared`]: what the service shares with the HTTP endpoint (metrics, readiness, the
//!   partition tasks' control channels, recent tickets, what a partition's next task
//!   starts from).
//! - [`fault`]: faults the tests inject (feature `fault-injection`).
//! - [`embedded`]: the embedded Kafka-protocol broker (librdkafka's mock cluster with its
//!   per-partition retention limit raised) for `demo`, `broker`, tests and benchmarks;
//!   only with the `embedded-broker` feature (in `default`).
//!
//! Imports run one way, from the wiring down: `service` uses the roles; `partition` uses
//! `consumer` (queues, checks, log ends, the restorer), `changelog`, `producer`,
//! `dead_letter` and `shared`; `consumer` uses `changelog`, `shared` and `partition`'s
//! merge and worker (for the lag of an input and a restored engine); `partitioner` uses
//! `shared`; `shared` uses `changelog`; `dead_letter` uses `producer`; every role reports
//! a stop as an [`Error`]. `changelog` uses only the core. [`crate::driver::Source`] and
//! [`crate::driver::Reason`] are defined once, in the driver, and imported from there.

pub mod changelog;
pub mod consumer;
pub mod dead_letter;
#[cfg(feature = "embedded-broker")]
pub mod embedded;
pub mod error;
pub mod fault;
pub mod partition;
pub mod partitioner;
pub mod producer;
pub mod readiness;
pub mod service;
pub mod shared;

pub use error::Error;

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
