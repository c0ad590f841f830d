//! What `generate` wrote, as the table it prints at the end: records, delivery, what was
//! planted and what did not fit the horizon, and how fast it went.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// What was generated, printed at the end.
#[derive(Debug, Clone, Default)]
pub struct GenerateSummary {
    pub cdrs: u64,
    pub account_events: u64,
    pub subscribers: usize,
    pub days: u32,
    /// Planted journeys by journey name.
    pub journeys: BTreeMap<&'static str, u64>,
    /// Loyal look-alikes by name.
    pub look_alikes: BTreeMap<&'static str, u64>,
    /// Journey kinds that could not be planted in this horizon (too few days).
    pub skipped: Vec<&'static str>,
    pub churned: u64,
    pub delayed: u64,
    pub duplicated: u64,
    pub files: Vec<PathBuf>,
    pub elapsed: Duration,
}

impl GenerateSummary {
    pub fn events(&self) -> u64 {
        self.cdrs + self.account_events
    }
}

impl fmt::Display for GenerateSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "generate summary")?;
        writeln!(
            f,
            "  events            {} ({} CDRs, {} account events)",
            self.events(),
            self.cdrs,
            self.account_events
        )?;
        writeln!(
            f,
            "  subscribers       {} over {} days",
            self.subscribers, self.days
        )?;
        writeln!(
            f,
            "  delivery          {} late (up to 24 h), {} delivered twice",
            self.delayed, self.duplicated
        )?;
        let planted: u64 = self.journeys.values().sum();
        writeln!(
            f,
            "  journeys          {planted} planted, {} churn",
            self.churned
        )?;
        for (name, n) in &self.journeys {
            writeln!(f, "    {name:<32} {n}")?;
        }
        let look: u64 = self.look_alikes.values().sum();
        writeln!(f, "  look-alikes       {look} (must raise no ticket)")?;
        for (name, n) in &self.look_alikes {
            writeln!(f, "    {name:<32} {n}")?;
        }
        for name in &self.skipped {
            writeln!(f, "  not planted       {name}: horizon too short")?;
        }
        for p in &self.files {
            writeln!(f, "  wrote             {}", p.display())?;
        }
        let secs = self.elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            self.events() as f64 / secs
        } else {
            0.0
        };
        write!(f, "  elapsed           {secs:.3} s ({rate:.0} events/s)")
    }
}
