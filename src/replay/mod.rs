//! The file adapter: CDR and account-event files in, care tickets out.
//!
//! Used for backtests and for trying rules on captured data before Kafka exists. The input
//! files are streamed (one record in memory per file), and their head records are merged
//! by event time, so files each sorted by time feed the engine one time-ordered stream;
//! records that are out of order inside a file reach the engine late, as they would from
//! mediation, and the engine's lateness rule decides. Call-center outcomes are merged the
//! same way and applied as the Kafka service applies them (ties: CDRs, account events,
//! outcomes; [`Source::earliest`](crate::driver::Source::earliest)), so a RETAINED outcome suppresses the tickets in a
//! backtest that it suppresses live: the backtest equals live.
//!
//! Poison input never stops a replay: a record that does not decode or validate is reported
//! as `FILE:LINE: reason` (for protobuf files `FILE:N`, N the 1-based record number),
//! counted and skipped. Only I/O failures, broken protobuf framing's aftermath aside, end
//! the run with a [`ReplayError`] naming the file.

pub mod delay;
mod files;
pub mod quality;
mod report;
mod summary;
#[cfg(test)]
mod tests;

use std::cell::Cell;
use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

use crate::config::ported::{self, PortedError};
use crate::config::{Config, ConfigError, Format, TicketFormat};
use crate::detect::Engine;
use crate::driver::{Driver, Fed, Record};
use crate::proto::{self, account_event};

use files::{Head, Inputs, Next};
use quality::measure;
use report::{progress_bar, write_report, Reporter, TicketSink};
pub use summary::ReplaySummary;

/// How many malformed-record examples the summary keeps.
pub const SUMMARY_EXAMPLES: usize = 10;
/// How many malformed records are reported one by one before the rest are only counted, so
/// a file of garbage does not flood the terminal.
pub const MAX_REPORTED: u64 = 1000;
/// Records between progress-bar updates.
const PROGRESS_EVERY: u64 = 4096;

/// The input format a file name suggests: `.pb`, `.binpb`, `.bin` mean protobuf.
pub fn format_of(path: &Path) -> Format {
    match path.extension().and_then(|e| e.to_str()) {
        Some("pb" | "binpb" | "bin") => Format::Protobuf,
        _ => Format::Json,
    }
}

/// What to replay and where the tickets go.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub cdr: Option<PathBuf>,
    pub account: Option<PathBuf>,
    /// Ticket outcomes fed back by the call center, applied in event-time order (a
    /// RETAINED subscriber is not ticketed again for the rule within its cooldown).
    pub outcomes: Option<PathBuf>,
    pub out: PathBuf,
    /// Input encoding; `None` picks it per file from the extension.
    pub input_format: Option<Format>,
    /// Ticket encoding: proto3 JSON lines, length-delimited protobuf or TMF621 JSON lines.
    pub format: TicketFormat,
    /// Draw a progress bar on stderr (the binary sets this only when stderr is a terminal).
    pub progress: bool,
    /// Write the detection-quality report here as JSON.
    pub report: Option<PathBuf>,
    /// `generate`'s ground truth (`journeys.csv`): adds the detection delay per journey
    /// to the quality report.
    pub journeys: Option<PathBuf>,
}

/// Why a replay could not run or finish. Malformed records are not errors; see the summary.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("nothing to replay: give --cdr, --account or both")]
    NoInput,
    #[error("cannot open {path}: {source}")]
    Open { path: String, source: io::Error },
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: io::Error },
    #[error("cannot use the ground truth {path}: {source}")]
    Journeys {
        path: String,
        source: delay::JourneysError,
    },
    #[error(transparent)]
    Ported(#[from] PortedError),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Builds an engine from the config, loading its ported-numbers file if one is set.
pub fn build_engine(cfg: &Config) -> Result<Engine, ReplayError> {
    let ported = ported::configured(cfg)?;
    Ok(Engine::new(cfg, &ported)?)
}

/// Replays the files in `opts` through a fresh engine, reporting malformed records on
/// stderr.
pub fn run(opts: &ReplayOptions, cfg: &Config) -> Result<ReplaySummary, ReplayError> {
    run_with(opts, cfg, &mut io::stderr())
}
/// [`run`], with malformed-record reports written to `diag`.
pub fn run_with(
    opts: &ReplayOptions,
    cfg: &Config,
    diag: &mut dyn Write,
) -> Result<ReplaySummary, ReplayError> {
    if opts.cdr.is_none() && opts.account.is_none() {
        return Err(ReplayError::NoInput);
    }
    let started = Instant::now();
    // A file has no wall clock: no future-skew bound.
    let mut driver = Driver::new(build_engine(cfg)?, 0);
    let consumed = Rc::new(Cell::new(0u64));
    let mut inputs = Inputs::open(opts, &consumed)?;
    let mut out = TicketSink::create(&opts.out, opts.format)?;
    let progress = opts.progress.then(|| progress_bar(inputs.total_bytes()));
    let mut report = Reporter {
        diag,
        progress: progress.clone(),
        count: 0,
        examples: Vec::new(),
    };
    let mut run = Collected::default();
    inputs.prime(&mut report)?;
    let mut since_progress = 0u64;
    while let Some(next) = inputs.next(&mut report)? {
        run.feed(&mut driver, next, &mut report);
        run.write(&mut out)?;
        since_progress += 1;
        if since_progress == PROGRESS_EVERY {
            since_progress = 0;
            if let Some(pb) = &progress {
                pb.set_position(consumed.get());
            }
        }
    }
    driver.finish(&mut run.tickets);
    run.write(&mut out)?;
    out.flush()?;
    if let Some(pb) = &progress {
        pb.finish_and_clear();
    }
    let mut summary = run.summary(opts, driver.engine())?;
    (
        summary.cdr_records,
        summary.account_records,
        summary.outcome_records,
    ) = inputs.read();
    summary.malformed = report.count;
    summary.malformed_examples = report.examples;
    summary.tickets_written = out.written;
    summary.engine = driver.engine().stats().clone();
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// What a replay collects besides the tickets it writes: the ground truth, the last version
/// of every ticket and the outcomes, for the quality figures.
#[derive(Default)]
struct Collected {
    tickets: Vec<proto::CareTicket>,
    churns: HashMap<String, i64>,
    finals: HashMap<String, proto::CareTicket>,
    outcomes: Vec<proto::TicketOutcome>,
    summary: ReplaySummary,
}

impl Collected {
    /// Feeds one record to the driver.
    fn feed(&mut self, driver: &mut Driver, next: Next, report: &mut Reporter<'_>) {
        match next {
            Next::Cdr(head) => {
                let fed = driver.feed(Record::Cdr(&head.msg), None, &mut self.tickets);
                report.rejected(&head.file, head.at, fed);
            }
            Next::Account(head) => {
                note_churn(&mut self.churns, &head);
                let fed = driver.feed(Record::Account(&head.msg), None, &mut self.tickets);
                report.rejected(&head.file, head.at, fed);
            }
            Next::Outcome(head) => {
                let fed = driver.feed(Record::Outcome(&head.msg), None, &mut self.tickets);
                if let Ok(Fed::Outcome { outcome, .. }) = fed {
                    *self
                        .summary
                        .outcomes
                        .entry(outcome.as_str().into())
                        .or_default() += 1;
                }
                report.rejected(&head.file, head.at, fed);
                self.outcomes.push(head.msg);
            }
        }
    }

    /// Writes the tickets raised since the last write, remembering the last version of each.
    fn write(&mut self, out: &mut TicketSink) -> Result<(), ReplayError> {
        keep_last(&mut self.finals, &self.tickets);
        out.write_all(&mut self.tickets)
    }

    /// The summary so far, with the quality figures (the engine's live ones included) when
    /// there is ground truth (or a report was asked for).
    fn summary(self, opts: &ReplayOptions, engine: &Engine) -> Result<ReplaySummary, ReplayError> {
        let mut summary = self.summary;
        if !self.churns.is_empty() || opts.report.is_some() || opts.journeys.is_some() {
            let mut finals: Vec<proto::CareTicket> = self.finals.into_values().collect();
            finals.sort_by(|a, b| a.ticket_id.cmp(&b.ticket_id));
            let given = opts.outcomes.is_some().then_some(self.outcomes.as_slice());
            let mut q = measure(&finals, &self.churns, given);
            q.live_quality = Some(live_quality(engine));
            if let Some(path) = &opts.journeys {
                q.journeys = Some(delay::measure(&read_journeys(path)?, &finals));
            }
            if let Some(path) = &opts.report {
                write_report(path, &q)?;
            }
            summary.quality = Some(q);
        }
        Ok(summary)
    }
}

/// Reads and parses `generate`'s ground truth.
fn read_journeys(path: &Path) -> Result<Vec<delay::PlantedJourney>, ReplayError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ReplayError::Read {
        path: name.clone(),
        source,
    })?;
    delay::parse_journeys(&text).map_err(|source| ReplayError::Journeys { path: name, source })
}

/// The engine's live quality figures, with the outcomes it counted.
fn live_quality(engine: &Engine) -> crate::detect::quality::LiveQualityReport {
    let stats = engine.stats();
    let mut r = stats.quality.report(engine.config().quality.horizon_days);
    r.outcomes = stats
        .outcomes
        .iter()
        .map(|(k, n)| (k.to_string(), *n))
        .collect();
    r
}

/// Keeps the earliest `Churned` event per subscriber: the ground truth for quality.
fn note_churn(churns: &mut HashMap<String, i64>, head: &Head<proto::AccountEvent>) {
    if let Some(account_event::Kind::Churned(_)) = head.msg.kind {
        churns
            .entry(head.msg.subscriber.clone())
            .and_modify(|t| *t = (*t).min(head.time_ms))
            .or_insert(head.time_ms);
    }
}

/// Remembers the last version of every ticket emitted (tickets are upserts by id).
fn keep_last(finals: &mut HashMap<String, proto::CareTicket>, emitted: &[proto::CareTicket]) {
    for t in emitted {
        finals.insert(t.ticket_id.clone(), t.clone());
    }
}
