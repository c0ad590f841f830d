//! churnwatch: real-time churn detection for a mobile operator.
//!
//! # Layout
//!
//! - [`detect`] is the pure core: decoded events in, care tickets out. No I/O, no clock, no
//!   threads; time comes only from event times and the watermark they drive, so the same
//!   input always gives the same tickets. Everything worth testing lives here.
//! - [`driver`] is the one way into the engine: decoded records from any source, in
//!   event-time order (one merge rule for every adapter), validated, applied or fed back,
//!   yielding tickets or the reason a record is set aside. The Kafka partition worker,
//!   [`replay`], the demo and the benchmarks all feed it; nothing else calls the engine.
//! - Adapters are thin and sit around it: [`codec`] holds all wire handling (protobuf or
//!   proto3 JSON to messages, event-time peeks, tickets back into bytes); [`replay`] reads
//!   files (streamed, validated, merged) and writes tickets and the quality report
//!   ([`replay::quality`]); [`app`] wires `run`; [`http`] and [`metrics`] serve the
//!   endpoints (look-ups on a listener of their own, behind a bearer token).
//! - [`kafka`] is the production adapter, split by role as Vector splits its Kafka sink:
//!   `service` (the wiring of `churnwatch run`), `consumer` (the group and assignment),
//!   `partition` (one task and one engine per partition, inputs merged by event time,
//!   offsets stored after acknowledgement), `producer` (failures sorted into retriable,
//!   permanent and fatal) and `dead_letter` (an enum of reasons), plus the embedded broker.
//! - [`tools`] is apart from the product, to show, measure and test it: the synthetic
//!   workloads (one RNG, one numbering plan, a preset per use), the `generate`, `demo`,
//!   `broker` and `bench` commands, and publishing files into Kafka. Tools depend on the
//!   product, never the reverse: nothing in the product imports them.
//! - [`detect::config`] holds the core's settings (each rule's section is defined in the
//!   rule's file and gathered by the registry in [`detect::rules`]); [`config`] wraps them
//!   with the service's Kafka and HTTP settings and is the one loader (file, then
//!   environment) every command uses. The dependency runs one way: the core never imports
//!   the service's config.
//! - [`proto`] is generated from `proto/churnwatch/v1/*.proto` (prost + pbjson).
//!
//! # A record's path, from fetch to ticket
//!
//! 1. librdkafka fetches it into its input partition's own queue
//!    (`kafka::consumer::queues`; the rebalance callback started the input at the
//!    partition's checkpoint, `kafka::consumer::assign`).
//! 2. The partition task's intake reads it and checks it (offset gaps, key placement:
//!    `kafka::partition::inputs`, `kafka::consumer::Inspect`).
//! 3. It waits in the event-time merge with its input's other records (`kafka::partition::merge`).
//! 4. A batch is taken from the merge within the in-flight bounds
//!    (`kafka::partition::batch`).
//! 5. The worker decodes and validates it (`kafka::partition::worker`, [`codec`]).
//! 6. The driver admits its event time and feeds the batch ([`driver::Driver::feed_batch`]).
//! 7. The engine applies it, prefetch pass first, and its rules raise tickets
//!    ([`detect::Engine::apply_batch`], [`detect::rules`]).
//! 8. The publisher sends its tickets (or its dead letter) and settles acknowledgements in
//!    order (`kafka::partition::publish`, `kafka::producer`).
//! 9. The checkpointer writes the partition's changes to the changelog and stores the
//!    offsets they reflect (`kafka::partition::checkpoint`, `kafka::changelog`).
//! 10. librdkafka commits the stored offsets for the group.

pub mod app;
pub mod codec;
pub mod config;
pub mod detect;
pub mod driver;
pub mod http;
pub mod kafka;
pub mod memory;
pub mod metrics;
pub mod replay;
pub mod tools;

/// The wire contract, generated from `proto/churnwatch/v1/` at build time.
#[allow(clippy::all, missing_docs)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/churnwatch.v1.rs"));
    include!(concat!(env!("OUT_DIR"), "/churnwatch.v1.serde.rs"));
}
