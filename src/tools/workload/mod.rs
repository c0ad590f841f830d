//! Synthetic workloads: the one source of made-up traffic for the demo, `generate`, the
//! benchmarks and the tests.
//!
//! Every workload draws from the one [`Rng`] (seeded, so runs repeat exactly).

pub mod numbers;
mod rng;

pub use rng::Rng;
