//! Synthetic workloads: the one source of made-up traffic for the demo, `generate`, the
//! benchmarks and the tests.
//!
//! Every workload draws from the one [`Rng`] (seeded, so runs repeat exactly).

pub mod mix;
pub mod numbers;
pub mod population;
mod rng;
pub mod stories;

pub use rng::Rng;

use crate::proto;

pub(crate) const MIN_MS: i64 = 60_000;
pub(crate) const HOUR_MS: i64 = 3_600_000;
pub(crate) const DAY_MS: i64 = 86_400_000;

/// One message of the workload, as it would arrive on the wire.
#[derive(Debug, Clone, PartialEq)]
pub enum WireEvent {
    Cdr(proto::CallDetailRecord),
    Account(proto::AccountEvent),
}

impl WireEvent {
    pub fn time_ms(&self) -> i64 {
        match self {
            WireEvent::Cdr(c) => c.event_time_ms,
            WireEvent::Account(a) => a.event_time_ms,
        }
    }
}
