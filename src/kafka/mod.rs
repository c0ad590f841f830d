//! The Kafka adapter around the pure core.
//!
//! - [`worker`]: one partition's processing without I/O (bytes in, tickets and dead
//!   letters out), the same engine code as `replay`.
//! - [`service`]: `churnwatch run`, the consumer-group service: at-least-once (offsets
//!   stored only after the tickets a record caused are acknowledged), per-partition order,
//!   bounded in-flight work, dead letters, drain on revoke.
//! - [`idle`]: when a quiet partition's event-time clock follows the wall clock, so its
//!   days still close.
//! - [`embedded`]: the embedded Kafka-protocol broker (librdkafka's mock cluster with its
//!   per-partition retention limit raised) for `demo`, `broker`, tests and benchmarks.

pub mod embedded;
pub mod idle;
pub mod service;
pub mod worker;
