//! Tools apart from the product: synthetic workloads and the commands that use them.
//!
//! The product is what an operator deploys: the core ([`crate::detect`]) and its adapters
//! (codec, Kafka, HTTP, replay). Everything here exists to show, measure and test that
//! product, so it lives in one place and the product does not grow around it. Tools depend
//! on the product, never the reverse: nothing outside this module imports it.
//!
//! - [`workload`] makes the traffic: presets for the demo, `generate`, the benchmarks and
//!   the tests, sharing one RNG and one numbering plan.
//! - [`generate`] writes the population preset as replay files with its ground truth.
//! - [`demo`] runs the story preset through the engine and prints the tickets.
//! - [`live`]: `demo` and `broker` on the embedded broker, and records published into Kafka
//!   (`generate --bootstrap`, the end-to-end benchmark).
//! - [`bench`](mod@bench) measures throughput, memory and latency on this machine.

pub mod bench;
pub mod demo;
pub mod generate;
pub mod live;
pub mod workload;
