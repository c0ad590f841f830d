//! What a replay did: counts, the engine's figures and detection quality, printed at the
//! end of a run.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::quality::QualityReport;
use crate::detect::quality::{LiveQualityReport, RuleQuality};
use crate::detect::EngineStats;

/// What a replay did, printed at the end.
#[derive(Debug, Clone, Default)]
pub struct ReplaySummary {
    pub cdr_records: u64,
    pub account_records: u64,
    pub outcome_records: u64,
    pub malformed: u64,
    /// The first [`super::SUMMARY_EXAMPLES`] malformed records as `FILE:LINE: reason`.
    pub malformed_examples: Vec<String>,
    /// Outcome name (`RETAINED`, ...) to count.
    pub outcomes: BTreeMap<String, u64>,
    /// Ticket messages written, including re-emissions of a ticket id.
    pub tickets_written: u64,
    pub engine: EngineStats,
    /// Detection quality against the `Churned` events read; computed when there are any,
    /// or when a report file was asked for.
    pub quality: Option<QualityReport>,
    pub elapsed: Duration,
}

impl ReplaySummary {
    /// CDRs and account events read, malformed ones included.
    pub fn events_read(&self) -> u64 {
        self.cdr_records + self.account_records
    }
}

impl fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.engine;
        writeln!(f, "replay summary")?;
        writeln!(
            f,
            "  events read       {} ({} CDRs, {} account events)",
            self.events_read(),
            self.cdr_records,
            self.account_records
        )?;
        writeln!(f, "  accepted          {}", s.accepted)?;
        writeln!(f, "  duplicates        {}", s.duplicates)?;
        writeln!(f, "  late (rejected)   {}", s.late)?;
        writeln!(f, "  malformed         {}", self.malformed)?;
        for e in &self.malformed_examples {
            writeln!(f, "    {e}")?;
        }
        if self.malformed > self.malformed_examples.len() as u64 {
            writeln!(
                f,
                "    ... and {} more",
                self.malformed - self.malformed_examples.len() as u64
            )?;
        }
        writeln!(
            f,
            "  tickets           {} distinct, {} updates, {} messages written",
            s.tickets, s.ticket_updates, self.tickets_written
        )?;
        for (rule, n) in &s.tickets_by_rule {
            writeln!(f, "    {rule:<32} {n}")?;
        }
        if !s.tickets_withdrawn.is_empty() {
            writeln!(f, "  withdrawn         {}", s.withdrawn_total())?;
            for ((rule, reason), n) in &s.tickets_withdrawn {
                writeln!(f, "    {:<44} {n}", format!("{rule} ({reason})"))?;
            }
        }
        if !s.suppressed.is_empty() {
            writeln!(f, "  suppressed")?;
            for (reason, n) in &s.suppressed {
                writeln!(f, "    {reason:<32} {n}")?;
            }
        }
        writeln!(f, "  subscribers       {}", s.subscribers)?;
        if !s.evicted.is_empty() {
            writeln!(f, "  evicted")?;
            for (reason, n) in &s.evicted {
                writeln!(f, "    {reason:<32} {n}")?;
            }
        }
        if self.outcome_records > 0 {
            writeln!(f, "  outcomes          {} read", self.outcome_records)?;
            for (outcome, n) in &self.outcomes {
                writeln!(f, "    {outcome:<32} {n}")?;
            }
        }
        if let Some(q) = &self.quality {
            if q.churned_subscribers > 0 {
                write!(f, "{q}")?;
            }
            if let Some(live) = &q.live_quality {
                write_live(f, live)?;
            }
        }
        let secs = self.elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            self.events_read() as f64 / secs
        } else {
            0.0
        };
        write!(f, "  elapsed           {secs:.3} s ({rate:.0} events/s)")
    }
}

/// The engine's live figures, briefly: as the service's `churnwatch_quality_*` metrics.
fn write_live(f: &mut fmt::Formatter<'_>, q: &LiveQualityReport) -> fmt::Result {
    let sum = |g: fn(&RuleQuality) -> u64| q.by_rule.values().map(g).sum::<u64>();
    let group = |m: &BTreeMap<String, u64>, g: &str| m.get(g).copied().unwrap_or(0);
    writeln!(
        f,
        "  live quality (last ticket, {}-day horizon; the service's churnwatch_quality_*)",
        q.horizon_days
    )?;
    writeln!(
        f,
        "    misses {}  hits {}  false alarms {} (per rule on the ticket)",
        q.misses,
        sum(|r| r.hits),
        sum(|r| r.false_alarms)
    )?;
    writeln!(
        f,
        "    newly ticketed: treated {}, control {}; churned within the horizon: treated {}, control {}",
        group(&q.ticketed, "treated"),
        group(&q.ticketed, "control"),
        group(&q.churned, "treated"),
        group(&q.churned, "control")
    )?;
    for (rule, r) in &q.by_rule {
        let mean = match r.lead_time_count {
            0 => "-".to_string(),
            n => format!("{:.1}", r.lead_time_sum_days as f64 / n as f64),
        };
        writeln!(
            f,
            "    {rule:<32} hits {:>5}  false alarms {:>5}  lead mean {mean:>5} days",
            r.hits, r.false_alarms
        )?;
    }
    Ok(())
}
