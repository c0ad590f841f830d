//! `churnwatch demo --in-process`: the story workload run through the engine, printed as a
//! ticket table with the planted journeys found and missed.
//!
//! It exists so anyone can see detection work in one command, with no broker, and so tests
//! have a realistic, deterministic run to check. The workload's wire messages go through
//! the one [`Driver`] exactly as replay's files do, so the demo exercises the product's path
//! too. (`churnwatch demo` without `--in-process` streams the same workload through the
//! embedded broker: [`super::live`].)

use std::collections::HashMap;
use std::fmt;

use chrono::TimeZone;

use crate::config::Config;
use crate::detect::{EngineStats, Msisdn};
use crate::driver::{Driver, Reason, Record};
use crate::proto;
use crate::replay::{self, ReplayError};
use crate::tools::workload::stories::{planted, workload};
use crate::tools::workload::WireEvent;

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Engine(#[from] ReplayError),
}

/// The demo's result: final tickets and counters.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// The last version of each ticket, in order of first emission.
    pub tickets: Vec<proto::CareTicket>,
    pub stats: EngineStats,
    pub events: usize,
    pub malformed: usize,
    /// Ticket messages emitted, updates included.
    pub emitted: usize,
    time_zone: chrono_tz::Tz,
}

impl DemoReport {
    /// Whether some ticket for `subscriber` carries a signal from `rule`.
    pub fn has_signal(&self, subscriber: &str, rule: &str) -> bool {
        self.tickets
            .iter()
            .any(|t| t.subscriber == subscriber && t.signals.iter().any(|s| s.rule == rule))
    }
}

/// Runs the built-in workload through a fresh engine.
pub fn run(cfg: &Config) -> Result<DemoReport, DemoError> {
    run_events(cfg, &workload())
}

/// Runs any wire events through a fresh engine, decoding them as replay does.
pub fn run_events(cfg: &Config, events: &[WireEvent]) -> Result<DemoReport, DemoError> {
    let mut driver = Driver::new(replay::build_engine(cfg)?, 0);
    let mut out = Vec::new();
    let mut malformed = 0;
    for ev in events {
        let record = match ev {
            WireEvent::Cdr(m) => Record::Cdr(m),
            WireEvent::Account(m) => Record::Account(m),
        };
        match driver.feed(record, None, &mut out) {
            Ok(_) | Err(Reason::Late { .. }) => {}
            Err(e) => {
                malformed += 1;
                tracing::warn!(reason = %e, "malformed demo record");
            }
        }
    }
    driver.finish(&mut out);
    let emitted = out.len();
    let mut tickets: Vec<proto::CareTicket> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for t in out {
        match index.get(&t.ticket_id) {
            Some(&n) => tickets[n] = t,
            None => {
                index.insert(t.ticket_id.clone(), tickets.len());
                tickets.push(t);
            }
        }
    }
    let time_zone = cfg
        .detect
        .engine
        .time_zone
        .parse()
        .unwrap_or(chrono_tz::Asia::Shanghai);
    Ok(DemoReport {
        tickets,
        stats: driver.engine().stats().clone(),
        events: events.len(),
        malformed,
        emitted,
        time_zone,
    })
}

fn local_time(tz: chrono_tz::Tz, ms: i64) -> String {
    match tz.timestamp_millis_opt(ms).single() {
        Some(t) => t.format("%Y-%m-%d %H:%M").to_string(),
        None => ms.to_string(),
    }
}

fn masked(number: &str) -> String {
    Msisdn::parse(number)
        .map(|m| m.masked())
        .unwrap_or_else(|_| "(invalid)".into())
}

impl fmt::Display for DemoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rows: Vec<&proto::CareTicket> = self.tickets.iter().collect();
        rows.sort_by(|a, b| {
            (a.created_time_ms, &a.ticket_id).cmp(&(b.created_time_ms, &b.ticket_id))
        });
        writeln!(
            f,
            "{:<16}  {:<13}  {:<4}  {:<12}  {:>4}  rules",
            "created", "subscriber", "prio", "queue", "risk"
        )?;
        for t in &rows {
            let rules: Vec<&str> = t.signals.iter().map(|s| s.rule.as_str()).collect();
            let prio = proto::Priority::try_from(t.priority).map_or("?", |p| p.as_str_name());
            writeln!(
                f,
                "{:<16}  {:<13}  {:<4}  {:<12}  {:>4}  {}",
                local_time(self.time_zone, t.created_time_ms),
                masked(&t.subscriber),
                if prio == "PRIORITY_UNSPECIFIED" {
                    "-"
                } else {
                    prio
                },
                t.queue,
                t.risk_score,
                rules.join(", ")
            )?;
        }
        if rows.is_empty() {
            writeln!(f, "(no tickets)")?;
        }
        writeln!(f)?;
        let found = planted()
            .iter()
            .filter(|j| self.has_signal(&j.subscriber, j.rule))
            .count();
        writeln!(f, "planted journeys found: {found}/{}", planted().len())?;
        for j in planted() {
            let mark = if self.has_signal(&j.subscriber, j.rule) {
                "found "
            } else {
                "MISSED"
            };
            writeln!(
                f,
                "  {mark}  {:<13}  {:<32} {}",
                masked(&j.subscriber),
                j.rule,
                j.story
            )?;
        }
        writeln!(f)?;
        let s = &self.stats;
        writeln!(
            f,
            "events            {} ({} malformed)",
            self.events, self.malformed
        )?;
        writeln!(f, "accepted          {}", s.accepted)?;
        writeln!(f, "duplicates        {}", s.duplicates)?;
        writeln!(f, "late (rejected)   {}", s.late)?;
        writeln!(
            f,
            "tickets           {} distinct, {} updates, {} emitted",
            s.tickets, s.ticket_updates, self.emitted
        )?;
        for (rule, n) in &s.tickets_by_rule {
            writeln!(f, "  {rule:<32} {n}")?;
        }
        for (reason, n) in &s.suppressed {
            writeln!(f, "  suppressed {reason:<21} {n}")?;
        }
        writeln!(f, "subscribers       {}", s.subscribers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::workload::stories::{number, SUBSCRIBERS};

    #[test]
    fn demo_runs_and_prints_a_table_without_full_numbers() {
        let report = run(&Config::default()).unwrap();
        assert_eq!(report.malformed, 0);
        let text = report.to_string();
        assert!(text.contains("planted journeys found"), "{text}");
        for i in 0..SUBSCRIBERS {
            assert!(!text.contains(&number(i)), "full number printed");
        }
    }
}
