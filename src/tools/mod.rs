//! Tools apart from the product: synthetic workloads and the commands that use them.
//!
//! The product is what an operator deploys: the core ([`crate::detect`]) and its adapters
//! (codec, Kafka, HTTP, replay). Everything here exists to show, measure and test that
//! product, so it lives in one place and the product never waits on it: only replay's
//! quality report ([`quality`]) and the live demo's input type reach back in.
//!
//! - [`generate`] writes a realistic population with planted journeys as replay files.
//! - [`demo`] runs the built-in story workload through the engine and prints the tickets.
//! - [`bench`] measures throughput, memory and latency on this machine.
//! - [`quality`] scores tickets against the ground truth: precision, recall, lead time.

pub mod bench;
pub mod demo;
pub mod generate;
pub mod quality;
pub mod workload;
