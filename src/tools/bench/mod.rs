//! `churnwatch bench`: throughput and memory figures for this machine, in a form scripts
//! can read (one `name value unit` line per figure after a human-readable table).
//!
//! - `engine`: one thread decodes pre-encoded protobuf CDRs and runs them through
//!   [`Engine::apply`](crate::detect::Engine::apply) (the full rule set, days closing as event time advances) over a
//!   population of N subscribers with a full 35-day history. The input is encoded into memory
//!   before the clock starts; subscribers are drawn at random, so every record touches a
//!   cold state, as in production. Memory is the resident-set growth while the population is
//!   built, divided by the subscribers.
//! - `e2e`: the Kafka service against the embedded broker: the workload is produced first
//!   (all of it kept, checked with the partitions' watermarks), then timed from the
//!   service's start until every record's offset is stored, i.e. its tickets acknowledged;
//!   then a second run at half that rate reports the processing-latency quantiles.
//! - `restore`: a population checkpointed in full to the embedded broker's changelog, then
//!   restored into fresh engines as a new owner does on assignment: subscribers per second.
//!
//! - `cluster`: two `churnwatch run` processes in one group over the embedded broker, at
//!   an operator's scale (10M subscribers restored from the changelog): throughput,
//!   memory, checkpoints, latency at a steady rate, and an instance leaving.
//!
//! `e2e`, `restore` and `cluster` need the embedded broker (the `embedded-broker` feature).
//!
//! Nothing here is a test: figures vary with the machine and its load, so they are reported
//! (BENCHMARKS.md), never asserted.

#[cfg(feature = "embedded-broker")]
mod cluster;
#[cfg(feature = "embedded-broker")]
mod e2e;
mod engine;
#[cfg(feature = "embedded-broker")]
mod restore;

#[cfg(feature = "embedded-broker")]
pub use cluster::{run_cluster, ClusterOptions, ClusterReport};
#[cfg(feature = "embedded-broker")]
pub use e2e::{histogram_quantile, run_e2e, E2eOptions, E2eReport, LatencyReport, POLL};
pub use engine::{
    build_history, build_history_of, encode_days, prepare_engine, run_engine, time_engine, Encoded,
    EngineOptions, EngineReport, Prepared, Timed, BATCH, ENGINE_START,
};
#[cfg(feature = "embedded-broker")]
pub use restore::{run_restore, RestoreOptions, RestoreReport};

use crate::config::ConfigError;

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[cfg(feature = "embedded-broker")]
    #[error(transparent)]
    Broker(#[from] crate::kafka::embedded::EmbeddedError),
    #[error("kafka client: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("benchmark check failed: {0}")]
    Check(String),
}

/// Resident memory of this process (VmRSS), bytes; 0 where `/proc` is not available.
pub fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}
