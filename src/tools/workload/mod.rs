//! Synthetic workloads: the one source of made-up traffic for the demo, `generate`, the
//! benchmarks and the tests.
//!
//! Every workload draws from the one [`Rng`] (seeded, so runs repeat exactly).

pub mod numbers;
pub mod population;
mod rng;

pub use rng::Rng;

pub(crate) const MIN_MS: i64 = 60_000;
pub(crate) const HOUR_MS: i64 = 3_600_000;
pub(crate) const DAY_MS: i64 = 86_400_000;
