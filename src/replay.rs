//! The file adapter: CDR and account-event files in, care tickets out.
//!
//! Used for backtests and for trying rules on captured data before Kafka exists. The input
//! files are streamed (one record in memory per file), and their head records are merged
//! by event time, so files each sorted by time feed the engine one time-ordered stream;
//! records that are out of order inside a file reach the engine late, as they would from
//! mediation, and the engine's lateness rule decides. Call-center outcomes are merged the
//! same way and applied as the Kafka service applies them (ties: CDRs, account events,
//! outcomes; [`Source::earliest`]), so a RETAINED outcome suppresses the tickets in a
//! backtest that it suppresses live: the backtest equals live.
//!
//! Poison input never stops a replay: a record that does not decode or validate is reported
//! as `FILE:LINE: reason` (for protobuf files `FILE:N`, N the 1-based record number),
//! counted and skipped. Only I/O failures, broken protobuf framing's aftermath aside, end
//! the run with a [`ReplayError`] naming the file.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::codec::{self, DecodeError, Frame};
use crate::config::{Config, ConfigError};
use crate::detect::engine::PortedNumber;
use crate::detect::{Engine, EngineStats};
use crate::driver::{Driver, Fed, Reason, Record, Source as Input};
use crate::proto::{self, account_event};
use crate::tools::quality::{self, QualityReport};

/// How many malformed-record examples the summary keeps.
pub const SUMMARY_EXAMPLES: usize = 10;
/// How many malformed records are reported one by one before the rest are only counted, so
/// a file of garbage does not flood the terminal.
pub const MAX_REPORTED: u64 = 1000;
/// Records between progress-bar updates.
const PROGRESS_EVERY: u64 = 4096;

/// Encoding of an input or output file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Proto3 JSON, one message per line.
    Json,
    /// Length-delimited protobuf records (varint length, then the message).
    Protobuf,
}

impl Format {
    /// The input format a file name suggests: `.pb`, `.binpb`, `.bin` mean protobuf.
    pub fn from_extension(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("pb" | "binpb" | "bin") => Format::Protobuf,
            _ => Format::Json,
        }
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
    /// Ticket encoding.
    pub format: Format,
    /// Draw a progress bar on stderr (the binary sets this only when stderr is a terminal).
    pub progress: bool,
    /// Write the detection-quality report here as JSON.
    pub report: Option<PathBuf>,
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
    #[error("ported numbers file {path}:{line}: {reason}")]
    Ported {
        path: String,
        line: u64,
        reason: String,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// What a replay did, printed at the end.
#[derive(Debug, Clone, Default)]
pub struct ReplaySummary {
    pub cdr_records: u64,
    pub account_records: u64,
    pub outcome_records: u64,
    pub malformed: u64,
    /// The first [`SUMMARY_EXAMPLES`] malformed records as `FILE:LINE: reason`.
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
        if !s.suppressed.is_empty() {
            writeln!(f, "  suppressed")?;
            for (reason, n) in &s.suppressed {
                writeln!(f, "    {reason:<32} {n}")?;
            }
        }
        writeln!(f, "  subscribers       {}", s.subscribers)?;
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

/// Reads a ported-numbers CSV (`number,operator` per line; a header line, blank lines and
/// `#` comments are skipped).
pub fn load_ported_numbers(path: &Path) -> Result<Vec<PortedNumber>, ReplayError> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|source| ReplayError::Open {
        path: name.clone(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| ReplayError::Read {
            path: name.clone(),
            source,
        })?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || (i == 0 && line.starts_with("number")) {
            continue;
        }
        let bad = |reason: &str| ReplayError::Ported {
            path: name.clone(),
            line: i as u64 + 1,
            reason: reason.into(),
        };
        let (number, operator) = line
            .split_once(',')
            .ok_or_else(|| bad("expected `number,operator`"))?;
        let (number, operator) = (number.trim(), operator.trim());
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("number must be digits"));
        }
        if operator.is_empty() {
            return Err(bad("operator is empty"));
        }
        out.push(PortedNumber {
            number: number.to_string(),
            operator: operator.to_string(),
        });
    }
    Ok(out)
}

/// Builds an engine from the config, loading its ported-numbers file if one is set.
pub fn build_engine(cfg: &Config) -> Result<Engine, ReplayError> {
    let ported = match &cfg.detect.numbering.ported_numbers_file {
        Some(p) => load_ported_numbers(Path::new(p))?,
        None => Vec::new(),
    };
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
    let format_of = |p: &Path| {
        opts.input_format
            .unwrap_or_else(|| Format::from_extension(p))
    };

    let mut cdrs = match &opts.cdr {
        Some(p) => Some(Source::open(p, format_of(p), &consumed, CDR)?),
        None => None,
    };
    let mut accounts = match &opts.account {
        Some(p) => Some(Source::open(p, format_of(p), &consumed, ACCOUNT)?),
        None => None,
    };
    let mut outcome_src = match &opts.outcomes {
        Some(p) => Some(Source::open(p, format_of(p), &consumed, OUTCOME)?),
        None => None,
    };
    let total_bytes = cdrs.as_ref().map_or(0, |s| s.len)
        + accounts.as_ref().map_or(0, |s| s.len)
        + outcome_src.as_ref().map_or(0, |s| s.len);

    let out_name = opts.out.display().to_string();
    let out_file = File::create(&opts.out).map_err(|source| ReplayError::Open {
        path: out_name.clone(),
        source,
    })?;
    let mut out = TicketSink {
        w: BufWriter::new(out_file),
        format: opts.format,
        path: out_name,
        written: 0,
    };

    let progress = opts.progress.then(|| progress_bar(total_bytes));
    let mut report = Reporter {
        diag,
        progress: progress.clone(),
        count: 0,
        examples: Vec::new(),
    };
    let mut summary = ReplaySummary::default();

    let mut cdr_head = next_of(&mut cdrs, &mut report)?;
    let mut acct_head = next_of(&mut accounts, &mut report)?;
    let mut outcome_head = next_of(&mut outcome_src, &mut report)?;
    let mut outcomes = Vec::new();
    let mut tickets = Vec::new();
    // Ground truth and final tickets for the quality figures.
    let mut churns: HashMap<String, i64> = HashMap::new();
    let mut finals: HashMap<String, proto::CareTicket> = HashMap::new();
    let mut since_progress = 0u64;
    loop {
        let next = Input::earliest(
            head_time(&cdr_head),
            head_time(&acct_head),
            head_time(&outcome_head),
        );
        match next {
            None => break,
            Some(Input::Cdr) => {
                if let Some(head) = cdr_head.take() {
                    let fed = driver.feed(Record::Cdr(&head.msg), None, &mut tickets);
                    report.rejected(&head, fed);
                }
                cdr_head = next_of(&mut cdrs, &mut report)?;
            }
            Some(Input::Account) => {
                if let Some(head) = acct_head.take() {
                    note_churn(&mut churns, &head);
                    let fed = driver.feed(Record::Account(&head.msg), None, &mut tickets);
                    report.rejected(&head, fed);
                }
                acct_head = next_of(&mut accounts, &mut report)?;
            }
            Some(Input::Outcomes) => {
                if let Some(head) = outcome_head.take() {
                    let fed = driver.feed(Record::Outcome(&head.msg), None, &mut tickets);
                    if let Ok(Fed::Outcome { outcome, .. }) = fed {
                        *summary.outcomes.entry(outcome.as_str().into()).or_default() += 1;
                    }
                    report.rejected(&head, fed);
                    outcomes.push(head.msg);
                }
                outcome_head = next_of(&mut outcome_src, &mut report)?;
            }
        }
        keep_last(&mut finals, &tickets);
        out.write_all(&mut tickets)?;
        since_progress += 1;
        if since_progress == PROGRESS_EVERY {
            since_progress = 0;
            if let Some(pb) = &progress {
                pb.set_position(consumed.get());
            }
        }
    }
    driver.finish(&mut tickets);
    keep_last(&mut finals, &tickets);
    out.write_all(&mut tickets)?;
    out.w.flush().map_err(|source| ReplayError::Write {
        path: out.path.clone(),
        source,
    })?;

    summary.cdr_records = cdrs.as_ref().map_or(0, |s| s.read);
    summary.account_records = accounts.as_ref().map_or(0, |s| s.read);
    summary.outcome_records = outcome_src.as_ref().map_or(0, |s| s.read);
    if !churns.is_empty() || opts.report.is_some() {
        let mut finals: Vec<proto::CareTicket> = finals.into_values().collect();
        finals.sort_by(|a, b| a.ticket_id.cmp(&b.ticket_id));
        let given = opts.outcomes.is_some().then_some(outcomes.as_slice());
        let q = quality::measure(&finals, &churns, given);
        if let Some(path) = &opts.report {
            write_report(path, &q)?;
        }
        summary.quality = Some(q);
    }
    if let Some(pb) = &progress {
        pb.finish_and_clear();
    }
    summary.malformed = report.count;
    summary.malformed_examples = report.examples;
    summary.tickets_written = out.written;
    summary.engine = driver.engine().stats().clone();
    summary.elapsed = started.elapsed();
    Ok(summary)
}

fn head_time<M>(head: &Option<Head<M>>) -> Option<i64> {
    head.as_ref().map(|h| h.time_ms)
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

/// Writes the quality report as pretty JSON.
fn write_report(path: &Path, q: &QualityReport) -> Result<(), ReplayError> {
    let name = path.display().to_string();
    let err = |source| ReplayError::Write {
        path: name.clone(),
        source,
    };
    let file = File::create(path).map_err(err)?;
    let mut w = BufWriter::new(file);
    serde_json::to_writer_pretty(&mut w, q).map_err(|e| err(io::Error::other(e)))?;
    w.write_all(b"\n").map_err(err)?;
    w.flush().map_err(err)
}

fn progress_bar(total_bytes: u64) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new(total_bytes);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({eta})",
    ) {
        pb.set_style(style);
    }
    pb
}

fn next_of<M>(
    src: &mut Option<Source<M>>,
    report: &mut Reporter<'_>,
) -> Result<Option<Head<M>>, ReplayError> {
    match src {
        Some(s) => s.next(report),
        None => Ok(None),
    }
}

/// Where tickets go; every emission is written, since a later one with the same id is a
/// correction that downstream systems upsert.
struct TicketSink {
    w: BufWriter<File>,
    format: Format,
    path: String,
    written: u64,
}

impl TicketSink {
    fn write_all(&mut self, tickets: &mut Vec<proto::CareTicket>) -> Result<(), ReplayError> {
        for t in tickets.drain(..) {
            let r = match self.format {
                Format::Json => codec::write_ticket_json(&mut self.w, &t),
                Format::Protobuf => codec::write_ticket_protobuf(&mut self.w, &t),
            };
            r.map_err(|source| ReplayError::Write {
                path: self.path.clone(),
                source,
            })?;
            self.written += 1;
        }
        Ok(())
    }
}

/// Reports malformed records as they are found and keeps the first few for the summary.
struct Reporter<'a> {
    diag: &'a mut dyn Write,
    progress: Option<indicatif::ProgressBar>,
    count: u64,
    examples: Vec<String>,
}

impl Reporter<'_> {
    /// Reports a record the driver set aside as malformed; a late one is only counted (by
    /// the engine), as it is in the service's metrics.
    fn rejected<M>(&mut self, head: &Head<M>, fed: Result<Fed, Reason>) {
        match fed {
            Ok(_) | Err(Reason::Late { .. }) => {}
            Err(e) => self.malformed(&head.file, head.at, &e),
        }
    }

    fn malformed(&mut self, file: &str, at: u64, reason: &dyn fmt::Display) {
        self.count += 1;
        let line = format!("{file}:{at}: {reason}");
        if self.count <= MAX_REPORTED {
            let diag = &mut *self.diag;
            // Diagnostics are best effort: a closed stderr must not stop the replay.
            let mut emit = || {
                let _ = writeln!(diag, "{line}");
                if self.count == MAX_REPORTED {
                    let _ = writeln!(diag, "(further malformed records are counted, not shown)");
                }
            };
            match &self.progress {
                Some(pb) => pb.suspend(emit),
                None => emit(),
            }
        }
        if self.examples.len() < SUMMARY_EXAMPLES {
            self.examples.push(line);
        }
    }
}

/// A decoded, validated record and where it came from.
struct Head<M> {
    msg: M,
    time_ms: i64,
    file: Rc<str>,
    at: u64,
}

/// How one message type is read and checked.
struct Kind<M> {
    json: fn(&str) -> Result<M, DecodeError>,
    protobuf: fn(&[u8]) -> Result<M, DecodeError>,
    /// Full validation; returns the event time the merge orders by.
    check: fn(&M) -> Result<i64, DecodeError>,
}

const CDR: Kind<proto::CallDetailRecord> = Kind {
    json: codec::cdr_from_json,
    protobuf: codec::cdr_from_protobuf,
    check: |m| codec::cdr_from_proto(m).map(|c| c.time_ms),
};
const ACCOUNT: Kind<proto::AccountEvent> = Kind {
    json: codec::account_from_json,
    protobuf: codec::account_from_protobuf,
    check: |m| codec::account_from_proto(m).map(|a| a.time_ms),
};
const OUTCOME: Kind<proto::TicketOutcome> = Kind {
    json: codec::outcome_from_json,
    protobuf: codec::outcome_from_protobuf,
    check: |m| codec::outcome_from_proto(m).map(|o| o.time_ms),
};

/// A streamed input file of one message type.
struct Source<M> {
    file: Rc<str>,
    reader: BufReader<Counting<File>>,
    format: Format,
    kind: Kind<M>,
    /// File size, for the progress bar.
    len: u64,
    /// Lines (JSON) or records (protobuf) consumed so far; the position of the last one.
    at: u64,
    /// Records read, malformed included (blank lines are not records).
    read: u64,
    buf: Vec<u8>,
    done: bool,
}

impl<M> Source<M> {
    fn open(
        path: &Path,
        format: Format,
        consumed: &Rc<Cell<u64>>,
        kind: Kind<M>,
    ) -> Result<Source<M>, ReplayError> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|source| ReplayError::Open {
            path: name.clone(),
            source,
        })?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Source {
            file: name.into(),
            reader: BufReader::with_capacity(
                1 << 16,
                Counting {
                    inner: file,
                    count: Rc::clone(consumed),
                },
            ),
            format,
            kind,
            len,
            at: 0,
            read: 0,
            buf: Vec::new(),
            done: false,
        })
    }

    fn read_error(&self, source: io::Error) -> ReplayError {
        ReplayError::Read {
            path: self.file.to_string(),
            source,
        }
    }

    /// The next good record; malformed ones on the way are reported and skipped.
    fn next(&mut self, report: &mut Reporter<'_>) -> Result<Option<Head<M>>, ReplayError> {
        while !self.done {
            let decoded = match self.format {
                Format::Json => {
                    self.buf.clear();
                    let n = self
                        .reader
                        .read_until(b'\n', &mut self.buf)
                        .map_err(|e| self.read_error(e))?;
                    if n == 0 {
                        self.done = true;
                        break;
                    }
                    self.at += 1;
                    match std::str::from_utf8(&self.buf) {
                        Ok(line) if line.trim().is_empty() => continue,
                        Ok(line) => (self.kind.json)(line.trim_end_matches(['\n', '\r'])),
                        Err(_) => Err(DecodeError::Utf8),
                    }
                }
                Format::Protobuf => match codec::read_delimited(&mut self.reader, &mut self.buf) {
                    Ok(Frame::End) => {
                        self.done = true;
                        break;
                    }
                    Ok(Frame::Record) => {
                        self.at += 1;
                        (self.kind.protobuf)(&self.buf)
                    }
                    Err(codec::FrameError::Io(e)) => return Err(self.read_error(e)),
                    Err(e) => {
                        // Framing is lost: no later record can be found. Report and stop.
                        self.at += 1;
                        self.read += 1;
                        self.done = true;
                        report.malformed(
                            &self.file,
                            self.at,
                            &format_args!("{e}; rest of file skipped"),
                        );
                        break;
                    }
                },
            };
            self.read += 1;
            match decoded.and_then(|m| (self.kind.check)(&m).map(|t| (m, t))) {
                Ok((msg, time_ms)) => {
                    return Ok(Some(Head {
                        msg,
                        time_ms,
                        file: Rc::clone(&self.file),
                        at: self.at,
                    }));
                }
                Err(e) => report.malformed(&self.file, self.at, &e),
            }
        }
        Ok(None)
    }
}

/// Counts bytes read, for the progress bar.
struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn opts(dir: &Path, cdr: Option<PathBuf>, account: Option<PathBuf>) -> ReplayOptions {
        ReplayOptions {
            cdr,
            account,
            outcomes: None,
            out: dir.join("tickets.jsonl"),
            input_format: None,
            format: Format::Json,
            progress: false,
            report: None,
        }
    }

    const CDR1: &str = r#"{"recordId":"c1","subscriber":"8613012345678","eventTimeMs":"1775000000000","type":"VOICE_OUT","otherParty":"13800138000","durationS":60}"#;
    const CDR2: &str = r#"{"recordId":"c2","subscriber":"8613012345678","eventTimeMs":"1775000300000","type":"SMS_OUT","otherParty":"13800138000"}"#;
    const ACCT1: &str = r#"{"eventId":"a1","subscriber":"8613012345678","eventTimeMs":"1775000100000","complaint":{"category":"signal"}}"#;

    #[test]
    fn both_streams_are_read_and_malformed_records_are_counted_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let cdr = write(
            dir.path(),
            "cdr.jsonl",
            &format!("{CDR1}\n\n{{oops\n{CDR2}\n"),
        );
        let acct = write(dir.path(), "acct.jsonl", &format!("{ACCT1}\n"));
        let mut diag = Vec::new();
        let s = run_with(
            &opts(dir.path(), Some(cdr), Some(acct)),
            &Config::default(),
            &mut diag,
        )
        .unwrap();
        let diag = String::from_utf8(diag).unwrap();
        assert_eq!(s.cdr_records, 3, "blank lines are not records");
        assert_eq!(s.account_records, 1);
        assert_eq!(s.malformed, 1);
        assert_eq!(s.engine.accepted, 3);
        assert!(
            diag.starts_with(&format!(
                "{}:3: invalid JSON",
                dir.path().join("cdr.jsonl").display()
            )),
            "{diag}"
        );
        assert_eq!(s.malformed_examples.len(), 1);
        assert!(s.to_string().contains("malformed         1"), "{s}");
    }

    #[test]
    fn no_input_and_missing_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = run(&opts(dir.path(), None, None), &Config::default()).unwrap_err();
        assert!(matches!(err, ReplayError::NoInput));
        let missing = dir.path().join("nope.jsonl");
        let err = run(&opts(dir.path(), Some(missing), None), &Config::default()).unwrap_err();
        assert!(err.to_string().contains("nope.jsonl"), "{err}");
    }

    #[test]
    fn protobuf_input_is_read_record_by_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = Vec::new();
        for line in [CDR1, CDR2] {
            codec::write_delimited(&mut bytes, &codec::cdr_from_json(line).unwrap()).unwrap();
        }
        let bad = proto::CallDetailRecord {
            record_id: "x".into(),
            ..Default::default()
        };
        codec::write_delimited(&mut bytes, &bad).unwrap();
        let p = dir.path().join("cdr.pb");
        std::fs::write(&p, bytes).unwrap();
        let mut diag = Vec::new();
        let s = run_with(
            &opts(dir.path(), Some(p), None),
            &Config::default(),
            &mut diag,
        )
        .unwrap();
        assert_eq!((s.cdr_records, s.malformed, s.engine.accepted), (3, 1, 2));
        assert!(String::from_utf8(diag)
            .unwrap()
            .contains("cdr.pb:3: missing subscriber"));
    }

    #[test]
    fn outcomes_are_counted_by_outcome_and_invalid_ones_reported() {
        let dir = tempfile::tempdir().unwrap();
        let cdr = write(dir.path(), "cdr.jsonl", &format!("{CDR1}\n"));
        let line = |id: &str, outcome: &str| {
            format!(
                r#"{{"ticketId":"{id}","subscriber":"8613012345678","eventTimeMs":"1775000000000","outcome":"{outcome}"}}"#
            )
        };
        let text = [
            line("t1", "RETAINED"),
            line("t2", "RETAINED"),
            line("t3", "CHURNED"),
            r#"{"ticketId":"t4","outcome":"RETAINED"}"#.to_string(),
        ]
        .join("\n");
        let outcomes = write(dir.path(), "outcomes.jsonl", &text);
        let mut o = opts(dir.path(), Some(cdr), None);
        o.outcomes = Some(outcomes);
        let mut diag = Vec::new();
        let s = run_with(&o, &Config::default(), &mut diag).unwrap();
        assert_eq!(s.outcomes.get("RETAINED"), Some(&2));
        assert_eq!(s.outcomes.get("CHURNED"), Some(&1));
        assert_eq!((s.outcome_records, s.malformed), (4, 1));
        assert!(String::from_utf8(diag)
            .unwrap()
            .contains("outcomes.jsonl:4: missing subscriber"));
        assert_eq!(s.engine.outcomes_unknown_ticket, 3);
    }

    /// A competitor care call at `day` (days after the fixture's base time).
    fn care_call_at(id: &str, day: i64) -> String {
        let t = 1_775_000_000_000 + day * 86_400_000;
        format!(
            r#"{{"recordId":"{id}","subscriber":"8613012345678","eventTimeMs":"{t}","type":"VOICE_OUT","otherParty":"10086","durationS":300}}"#
        )
    }

    fn ticket_ids(path: &Path) -> Vec<String> {
        let text = std::fs::read_to_string(path).unwrap();
        text.lines()
            .map(|l| {
                serde_json::from_str::<proto::CareTicket>(l)
                    .unwrap()
                    .ticket_id
            })
            .collect()
    }

    /// Outcomes are applied at their event time among the records: RETAINED after the first
    /// call's ticket holds back the second call's a week later (the rule's cooldown from
    /// the outcome); the same outcome dated after the second call does not.
    #[test]
    fn a_retained_outcome_suppresses_a_later_ticket_in_event_time_order() {
        let dir = tempfile::tempdir().unwrap();
        let calls = format!("{}\n{}\n", care_call_at("c1", 0), care_call_at("c2", 7));
        let cdr = write(dir.path(), "cdr.jsonl", &calls);
        let base = run_with(
            &opts(dir.path(), Some(cdr.clone()), None),
            &Config::default(),
            &mut Vec::new(),
        )
        .unwrap();
        assert_eq!(base.engine.tickets, 2);
        let first = ticket_ids(&dir.path().join("tickets.jsonl"))[0].clone();
        for (day, tickets) in [(1i64, 1u64), (8, 2)] {
            let t = 1_775_000_000_000 + day * 86_400_000;
            let outcome = format!(
                r#"{{"ticketId":"{first}","subscriber":"8613012345678","eventTimeMs":"{t}","outcome":"RETAINED"}}"#
            );
            let mut o = opts(dir.path(), Some(cdr.clone()), None);
            o.outcomes = Some(write(dir.path(), "outcomes.jsonl", &outcome));
            let s = run_with(&o, &Config::default(), &mut Vec::new()).unwrap();
            assert_eq!(s.engine.tickets, tickets, "outcome on day {day}");
            assert_eq!(s.engine.suppressed.contains_key("retained"), tickets == 1);
        }
    }

    fn cdr_at(id: &str, day: i64) -> String {
        let t = 1_775_000_000_000 + day * 86_400_000;
        format!(
            r#"{{"recordId":"{id}","subscriber":"8613012345678","eventTimeMs":"{t}","type":"SMS_OUT","otherParty":"13800138000"}}"#
        )
    }

    fn complaint_at(id: &str, day: i64) -> String {
        let t = 1_775_000_000_000 + day * 86_400_000;
        format!(
            r#"{{"eventId":"{id}","subscriber":"8613012345678","eventTimeMs":"{t}","complaint":{{}}}}"#
        )
    }

    /// Were the files concatenated instead of merged, the day-1 complaint would reach the
    /// engine after the day-12 CDR and be rejected as late (lateness is at most 48 h).
    #[test]
    fn streams_are_merged_by_event_time() {
        let dir = tempfile::tempdir().unwrap();
        let cdr = write(
            dir.path(),
            "cdr.jsonl",
            &format!("{}\n{}\n", cdr_at("c1", 10), cdr_at("c2", 12)),
        );
        let acct = write(
            dir.path(),
            "acct.jsonl",
            &format!("{}\n{}\n", complaint_at("a1", 1), complaint_at("a2", 11)),
        );
        let s = run_with(
            &opts(dir.path(), Some(cdr), Some(acct)),
            &Config::default(),
            &mut Vec::new(),
        )
        .unwrap();
        assert_eq!((s.engine.accepted, s.engine.late), (4, 0), "{s}");
    }

    /// Disorder inside one file is not repaired: it reaches the engine as it would from
    /// mediation, and the engine's lateness rule decides. Awaits the core's watermark.
    #[test]
    fn records_late_within_a_file_are_rejected_by_the_engine() {
        let dir = tempfile::tempdir().unwrap();
        let cdr = write(
            dir.path(),
            "cdr.jsonl",
            &format!(
                "{}\n{}\n{}\n",
                cdr_at("c1", 10),
                cdr_at("c2", 5),
                cdr_at("c1", 10)
            ),
        );
        let s = run_with(
            &opts(dir.path(), Some(cdr), None),
            &Config::default(),
            &mut Vec::new(),
        )
        .unwrap();
        assert_eq!(
            (s.engine.accepted, s.engine.late, s.engine.duplicates),
            (1, 1, 1),
            "{s}"
        );
    }

    #[test]
    fn ported_numbers_csv_is_read_and_bad_lines_name_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "ported.csv",
            "number,operator\n# moved\n13800138000,china_unicom\n\n",
        );
        let list = load_ported_numbers(&p).unwrap();
        assert_eq!(
            list,
            vec![PortedNumber {
                number: "13800138000".into(),
                operator: "china_unicom".into()
            }]
        );
        let p = write(
            dir.path(),
            "bad.csv",
            "13800138000,china_unicom\n138x,china_mobile\n",
        );
        let err = load_ported_numbers(&p).unwrap_err().to_string();
        assert!(err.contains("bad.csv:2"), "{err}");
    }
}
