//! The files `generate` writes: records in delivery order as they become due, and the
//! ground truth.
//!
//! A record is written once every record that could be delivered before it has been
//! generated: at the end of each day, the records delivered before the next day starts.
//! Ties in delivery time are ordered by the record's key, so the files do not depend on
//! the thread count.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use super::GenerateError;
use crate::tools::workload::population::Out;

/// One output file, written in delivery order.
pub(super) struct Writer {
    w: BufWriter<File>,
    path: String,
}

impl Writer {
    pub(super) fn create(path: &Path) -> Result<Writer, GenerateError> {
        let name = path.display().to_string();
        let f = File::create(path).map_err(|source| GenerateError::Write {
            path: name.clone(),
            source,
        })?;
        Ok(Writer {
            w: BufWriter::with_capacity(1 << 20, f),
            path: name,
        })
    }

    fn err(&self, source: io::Error) -> GenerateError {
        GenerateError::Write {
            path: self.path.clone(),
            source,
        }
    }

    /// Writes, in delivery order, every pending record delivered before `horizon`.
    pub(super) fn flush_before(
        &mut self,
        pending: &mut Vec<Out>,
        horizon: i64,
    ) -> Result<u64, GenerateError> {
        let (mut ready, rest): (Vec<Out>, Vec<Out>) =
            pending.drain(..).partition(|o| o.deliver_ms < horizon);
        *pending = rest;
        ready.sort_unstable_by_key(|o| (o.deliver_ms, o.key));
        for o in &ready {
            self.w.write_all(&o.bytes).map_err(|e| self.err(e))?;
        }
        Ok(ready.len() as u64)
    }

    pub(super) fn finish(mut self) -> Result<(), GenerateError> {
        self.w.flush().map_err(|e| self.err(e))
    }
}

/// Writes the ground truth, `journeys.csv`.
pub(super) fn write_journeys(path: &Path, csv: &str) -> Result<(), GenerateError> {
    let err = |source| GenerateError::Write {
        path: path.display().to_string(),
        source,
    };
    let f = File::create(path).map_err(err)?;
    let mut w = BufWriter::new(f);
    w.write_all(csv.as_bytes()).map_err(err)?;
    w.flush().map_err(err)
}
