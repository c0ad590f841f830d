//! Synthetic workloads: the one source of made-up traffic, so the demo, `generate`, the
//! benchmarks and the tests share one random generator and one numbering plan, and
//! subscriber `i` has the same number wherever it appears.
//!
//! One preset per question a workload answers:
//!
//! | preset | answers | used by |
//! |---|---|---|
//! | [`stories`] | does each rule fire on a journey a person would recognise? | `demo` (in-process and live), tests |
//! | [`population`] | how precise and how early is detection amid realistic noise? | `generate`, its tests |
//! | [`mix`] | how fast is the engine, and the service? | `bench`, `cargo bench` |
//!
//! Every preset is a pure function of its seed ([`Rng`], SplitMix64) and reads no clock;
//! the commands in [`crate::tools`] write, stream or time what the presets make.

pub mod mix;
pub mod numbers;
pub mod population;
mod rng;
pub mod stories;

pub use rng::Rng;

use crate::proto;

/// Milliseconds in a minute, an hour, a day.
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
