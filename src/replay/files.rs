//! The input files: streamed one record at a time, decoded and validated as they are read
//! (a malformed record is reported and skipped), and merged by event time by the one rule
//! the live service uses ([`Source::earliest`](crate::driver::Source::earliest)).

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::rc::Rc;

use crate::codec::{self, DecodeError, Frame};
use crate::driver::Source as Input;
use crate::proto;

use super::report::Reporter;
use super::{Format, ReplayError, ReplayOptions};

/// A decoded, validated record and where it came from.
pub(super) struct Head<M> {
    pub(super) msg: M,
    pub(super) time_ms: i64,
    pub(super) file: Rc<str>,
    pub(super) at: u64,
}

/// How one message type is read and checked.
pub(super) struct Kind<M> {
    pub(super) json: fn(&str) -> Result<M, DecodeError>,
    pub(super) protobuf: fn(&[u8]) -> Result<M, DecodeError>,
    /// Full validation; returns the event time the merge orders by.
    pub(super) check: fn(&M) -> Result<i64, DecodeError>,
}

pub(super) const CDR: Kind<proto::CallDetailRecord> = Kind {
    json: codec::cdr_from_json,
    protobuf: codec::cdr_from_protobuf,
    check: |m| codec::cdr_from_proto(m).map(|c| c.time_ms),
};
pub(super) const ACCOUNT: Kind<proto::AccountEvent> = Kind {
    json: codec::account_from_json,
    protobuf: codec::account_from_protobuf,
    check: |m| codec::account_from_proto(m).map(|a| a.time_ms),
};
pub(super) const OUTCOME: Kind<proto::TicketOutcome> = Kind {
    json: codec::outcome_from_json,
    protobuf: codec::outcome_from_protobuf,
    check: |m| codec::outcome_from_proto(m).map(|o| o.time_ms),
};

/// A streamed input file of one message type.
pub(super) struct Source<M> {
    pub(super) file: Rc<str>,
    pub(super) reader: BufReader<Counting<File>>,
    pub(super) format: Format,
    pub(super) kind: Kind<M>,
    /// File size, for the progress bar.
    pub(super) len: u64,
    /// Lines (JSON) or records (protobuf) consumed so far; the position of the last one.
    pub(super) at: u64,
    /// Records read, malformed included (blank lines are not records).
    pub(super) read: u64,
    pub(super) buf: Vec<u8>,
    pub(super) done: bool,
}

impl<M> Source<M> {
    pub(super) fn open(
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

    pub(super) fn read_error(&self, source: io::Error) -> ReplayError {
        ReplayError::Read {
            path: self.file.to_string(),
            source,
        }
    }

    /// The next good record; malformed ones on the way are reported and skipped.
    pub(super) fn next(
        &mut self,
        report: &mut Reporter<'_>,
    ) -> Result<Option<Head<M>>, ReplayError> {
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
pub(super) struct Counting<R> {
    pub(super) inner: R,
    pub(super) count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

pub(super) fn next_of<M>(
    src: &mut Option<Source<M>>,
    report: &mut Reporter<'_>,
) -> Result<Option<Head<M>>, ReplayError> {
    match src {
        Some(s) => s.next(report),
        None => Ok(None),
    }
}

/// A record taken from the inputs, the earliest of their heads.
pub(super) enum Next {
    Cdr(Head<proto::CallDetailRecord>),
    Account(Head<proto::AccountEvent>),
    Outcome(Head<proto::TicketOutcome>),
}

/// The three inputs (each optional) and their head records.
pub(super) struct Inputs {
    pub(super) cdrs: Option<Source<proto::CallDetailRecord>>,
    pub(super) accounts: Option<Source<proto::AccountEvent>>,
    pub(super) outcomes: Option<Source<proto::TicketOutcome>>,
    cdr_head: Option<Head<proto::CallDetailRecord>>,
    acct_head: Option<Head<proto::AccountEvent>>,
    outcome_head: Option<Head<proto::TicketOutcome>>,
}

impl Inputs {
    /// Opens the files `opts` names; each file's format comes from `--input-format` or its
    /// extension.
    pub(super) fn open(
        opts: &ReplayOptions,
        consumed: &Rc<Cell<u64>>,
    ) -> Result<Inputs, ReplayError> {
        let format_of = |p: &Path| opts.input_format.unwrap_or_else(|| super::format_of(p));
        Ok(Inputs {
            cdrs: opts
                .cdr
                .as_deref()
                .map(|p| Source::open(p, format_of(p), consumed, CDR))
                .transpose()?,
            accounts: opts
                .account
                .as_deref()
                .map(|p| Source::open(p, format_of(p), consumed, ACCOUNT))
                .transpose()?,
            outcomes: opts
                .outcomes
                .as_deref()
                .map(|p| Source::open(p, format_of(p), consumed, OUTCOME))
                .transpose()?,
            cdr_head: None,
            acct_head: None,
            outcome_head: None,
        })
    }

    /// Bytes in all the files, for the progress bar.
    pub(super) fn total_bytes(&self) -> u64 {
        self.cdrs.as_ref().map_or(0, |s| s.len)
            + self.accounts.as_ref().map_or(0, |s| s.len)
            + self.outcomes.as_ref().map_or(0, |s| s.len)
    }

    /// Reads every input's first record.
    pub(super) fn prime(&mut self, report: &mut Reporter<'_>) -> Result<(), ReplayError> {
        self.cdr_head = next_of(&mut self.cdrs, report)?;
        self.acct_head = next_of(&mut self.accounts, report)?;
        self.outcome_head = next_of(&mut self.outcomes, report)?;
        Ok(())
    }

    /// Takes the earliest head record and reads its input's next one.
    pub(super) fn next(&mut self, report: &mut Reporter<'_>) -> Result<Option<Next>, ReplayError> {
        let next = Input::earliest(
            head_time(&self.cdr_head),
            head_time(&self.acct_head),
            head_time(&self.outcome_head),
        );
        Ok(match next {
            None => None,
            Some(Input::Cdr) => {
                let head = self.cdr_head.take();
                self.cdr_head = next_of(&mut self.cdrs, report)?;
                head.map(Next::Cdr)
            }
            Some(Input::Account) => {
                let head = self.acct_head.take();
                self.acct_head = next_of(&mut self.accounts, report)?;
                head.map(Next::Account)
            }
            Some(Input::Outcomes) => {
                let head = self.outcome_head.take();
                self.outcome_head = next_of(&mut self.outcomes, report)?;
                head.map(Next::Outcome)
            }
        })
    }

    /// Records read per input (malformed included): CDRs, account events, outcomes.
    pub(super) fn read(&self) -> (u64, u64, u64) {
        (
            self.cdrs.as_ref().map_or(0, |s| s.read),
            self.accounts.as_ref().map_or(0, |s| s.read),
            self.outcomes.as_ref().map_or(0, |s| s.read),
        )
    }
}

fn head_time<M>(head: &Option<Head<M>>) -> Option<i64> {
    head.as_ref().map(|h| h.time_ms)
}
