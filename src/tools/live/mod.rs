//! `churnwatch demo` and `churnwatch broker` on the embedded broker, and publishing records
//! into any Kafka (`generate --bootstrap`, the end-to-end benchmark).
//!
//! The demo starts librdkafka's mock cluster in-process (real Kafka protocol over TCP),
//! creates the topics, streams a synthetic workload into them at a steady rate, runs the
//! detector as a real consumer group against it (the same code as `churnwatch run`), and
//! prints each ticket as it is published, a running summary, and at the end how many
//! planted journeys were found. `/metrics` is served meanwhile.
//!
//! - [`broker`]: the embedded broker with every topic of a config created (`churnwatch broker`).
//! - [`demo`]: the live demo and its screen.
//! - [`produce`]: records keyed and partitioned as `run` expects them, at a steady rate.
//! - [`files`]: generated files streamed into Kafka, merged by event time.
//!
//! The broker and the demo need the `embedded-broker` feature (in `default`); publishing
//! works against any broker without it.

#[cfg(feature = "embedded-broker")]
pub mod broker;
#[cfg(feature = "embedded-broker")]
pub mod demo;
pub mod files;
pub mod produce;

#[cfg(feature = "embedded-broker")]
pub use broker::{run_broker, start_broker};
#[cfg(feature = "embedded-broker")]
pub use demo::{run_demo, LiveSummary};
pub use files::publish_files;
pub use produce::{partition_of, stream};

/// Why the live demo, the broker or publishing could not run.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[cfg(feature = "embedded-broker")]
    #[error(transparent)]
    Broker(#[from] crate::kafka::embedded::EmbeddedError),
    #[error("kafka client: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    App(#[from] crate::app::AppError),
    #[error("reading generated files: {0}")]
    Io(String),
}

/// Partitions of every input topic of the embedded demo.
pub const DEMO_PARTITIONS: i32 = 4;
