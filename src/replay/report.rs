//! What a replay writes: tickets (every emission, since a later one with the same id is a
//! correction downstream upserts), malformed-record reports on stderr (the first few kept
//! for the summary), the progress bar and the quality report.

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use super::quality::QualityReport;
use crate::codec;
use crate::driver::{Fed, Reason};
use crate::proto;

use super::{ReplayError, MAX_REPORTED, SUMMARY_EXAMPLES};
use crate::config::TicketFormat;

/// Where tickets go; every emission is written, since a later one with the same id is a
/// correction that downstream systems upsert.
pub(super) struct TicketSink {
    pub(super) w: BufWriter<File>,
    pub(super) format: TicketFormat,
    pub(super) path: String,
    pub(super) written: u64,
}

impl TicketSink {
    pub(super) fn write_all(
        &mut self,
        tickets: &mut Vec<proto::CareTicket>,
    ) -> Result<(), ReplayError> {
        for t in tickets.drain(..) {
            codec::write_ticket(&mut self.w, self.format, &t).map_err(|source| {
                ReplayError::Write {
                    path: self.path.clone(),
                    source,
                }
            })?;
            self.written += 1;
        }
        Ok(())
    }
}

/// Reports malformed records as they are found and keeps the first few for the summary.
pub(super) struct Reporter<'a> {
    pub(super) diag: &'a mut dyn Write,
    pub(super) progress: Option<indicatif::ProgressBar>,
    pub(super) count: u64,
    pub(super) examples: Vec<String>,
}

impl Reporter<'_> {
    /// Reports a record the driver set aside as malformed; a late one is only counted (by
    /// the engine), as it is in the service's metrics.
    pub(super) fn rejected(&mut self, file: &str, at: u64, fed: Result<Fed, Reason>) {
        match fed {
            Ok(_) | Err(Reason::Late { .. }) => {}
            Err(e) => self.malformed(file, at, &e),
        }
    }

    pub(super) fn malformed(&mut self, file: &str, at: u64, reason: &dyn fmt::Display) {
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

impl TicketSink {
    /// Creates (or truncates) the ticket file.
    pub(super) fn create(path: &Path, format: TicketFormat) -> Result<TicketSink, ReplayError> {
        let name = path.display().to_string();
        let file = File::create(path).map_err(|source| ReplayError::Open {
            path: name.clone(),
            source,
        })?;
        Ok(TicketSink {
            w: BufWriter::new(file),
            format,
            path: name,
            written: 0,
        })
    }

    pub(super) fn flush(&mut self) -> Result<(), ReplayError> {
        self.w.flush().map_err(|source| ReplayError::Write {
            path: self.path.clone(),
            source,
        })
    }
}

/// Writes the quality report as pretty JSON.
pub(super) fn write_report(path: &Path, q: &QualityReport) -> Result<(), ReplayError> {
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

pub(super) fn progress_bar(total_bytes: u64) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new(total_bytes);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({eta})",
    ) {
        pb.set_style(style);
    }
    pb
}
