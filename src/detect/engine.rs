//! The engine (API skeleton; the implementation lands next).

use std::collections::BTreeMap;

use crate::config::{Config, ConfigError};
use crate::proto::CareTicket;

use super::event::Event;

/// A ported number: national digits and the operator id it now belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortedNumber {
    pub number: String,
    pub operator: String,
}

/// What the engine did with one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Folded into state (it may or may not have raised tickets).
    Accepted,
    /// Same id seen before within the de-duplication horizon; nothing changed.
    Duplicate,
    /// Older than the watermark (newest event time minus allowed lateness): rejected, counted.
    Late,
}

/// Counters for the summary and, later, metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineStats {
    pub accepted: u64,
    pub duplicates: u64,
    pub late: u64,
    /// Distinct ticket ids raised.
    pub tickets: u64,
    /// Re-emissions of an existing ticket id with corrected content (late earlier evidence).
    pub ticket_updates: u64,
    pub tickets_by_rule: BTreeMap<&'static str, u64>,
    pub suppressed: BTreeMap<&'static str, u64>,
    pub subscribers: usize,
}

/// The detection engine for one partition's subscribers.
pub struct Engine {
    stats: EngineStats,
}

impl Engine {
    /// Builds an engine from a validated config and the ported-numbers list.
    pub fn new(cfg: &Config, ported: &[PortedNumber]) -> Result<Engine, ConfigError> {
        let _ = (cfg, ported);
        Ok(Engine { stats: EngineStats::default() })
    }

    /// Applies one event; tickets it raises (or corrects) are appended to `out`.
    pub fn apply(&mut self, ev: &Event<'_>, out: &mut Vec<CareTicket>) -> Applied {
        let _ = (ev, out);
        self.stats.accepted += 1;
        Applied::Accepted
    }

    /// End of input: treats the newest event time seen as final and closes every calendar
    /// day that ended before it, running the day- and month-close rules.
    pub fn finish(&mut self, out: &mut Vec<CareTicket>) {
        let _ = out;
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }
}
