//! `churnwatch generate`: the population workload ([`population`]) written as replay input
//! files, so detection quality can be measured end to end by `churnwatch replay --report`.
//!
//! Output: `cdr.jsonl` and `account.jsonl` (proto3 JSON lines; `.pb` length-delimited
//! protobuf with `--format proto`) and `journeys.csv`, the ground truth. The same seed
//! gives byte-identical files.
//!
//! **Streaming.** Days are generated in order and each day's records are written in
//! delivery order; only records delivered on a later day are carried over, so memory holds
//! about a day of records whatever the horizon.
//!
//! [`population`]: crate::tools::workload::population

mod summary;
mod writer;

use std::io;
use std::path::PathBuf;
use std::time::Instant;

use chrono::NaiveDate;

use crate::config::Config;
use crate::config::Format;
use crate::detect::calendar::Calendar;
use crate::tools::workload::population::{Out, Population};
use writer::{write_journeys, Writer};

pub use summary::GenerateSummary;

/// The default first day: 2026-06-01, so that 150 days cover four full months (for
/// `sustained_decline`) and the configured Mid-Autumn and National Day holidays.
pub const DEFAULT_START: &str = "2026-06-01";

/// What to generate and where.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub out: PathBuf,
    pub subscribers: usize,
    pub days: u32,
    pub seed: u64,
    pub start: NaiveDate,
    pub format: Format,
    /// Draw a progress bar on stderr (the binary sets this only when stderr is a terminal).
    pub progress: bool,
}

/// Why a workload could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("invalid option {option}: {reason}")]
    Option {
        option: &'static str,
        reason: String,
    },
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: io::Error },
}

/// Writes the workload into `opts.out` and returns what was written.
pub fn run(opts: &GenerateOptions, cfg: &Config) -> Result<GenerateSummary, GenerateError> {
    let started = Instant::now();
    let cal = check(opts, cfg)?;
    let (mut population, planted) = Population::new(
        &cal,
        opts.start,
        opts.days,
        opts.subscribers,
        opts.seed,
        opts.format,
    );
    let mut summary = GenerateSummary {
        subscribers: opts.subscribers,
        days: opts.days,
        journeys: planted.journeys,
        look_alikes: planted.look_alikes,
        skipped: planted.skipped,
        ..Default::default()
    };
    std::fs::create_dir_all(&opts.out).map_err(|source| GenerateError::Write {
        path: opts.out.display().to_string(),
        source,
    })?;
    let ext = match opts.format {
        Format::Json => "jsonl",
        Format::Protobuf => "pb",
    };
    let cdr_path = opts.out.join(format!("cdr.{ext}"));
    let acct_path = opts.out.join(format!("account.{ext}"));
    let csv_path = opts.out.join("journeys.csv");
    write_journeys(&csv_path, &population.journeys_csv())?;
    let mut files = Files {
        cdr: Writer::create(&cdr_path)?,
        acct: Writer::create(&acct_path)?,
    };
    stream(&mut population, opts, &mut files, &mut summary)?;
    files.cdr.finish()?;
    files.acct.finish()?;
    summary.churned = population.churned();
    summary.files = vec![cdr_path, acct_path, csv_path];
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Checks the options and builds the operator's calendar.
fn check(opts: &GenerateOptions, cfg: &Config) -> Result<Calendar, GenerateError> {
    if opts.subscribers == 0 {
        return Err(GenerateError::Option {
            option: "--subscribers",
            reason: "must be at least 1".into(),
        });
    }
    if !(1..=3650).contains(&opts.days) {
        return Err(GenerateError::Option {
            option: "--days",
            reason: "must be 1 to 3650".into(),
        });
    }
    Calendar::new(&cfg.detect.engine.time_zone, &cfg.detect.calendar.holidays).ok_or_else(|| {
        GenerateError::Option {
            option: "--config",
            reason: "engine.time_zone or calendar.holidays is invalid".into(),
        }
    })
}

struct Files {
    cdr: Writer,
    acct: Writer,
}

/// Generates every day in order and writes each record once it is due.
fn stream(
    population: &mut Population,
    opts: &GenerateOptions,
    files: &mut Files,
    summary: &mut GenerateSummary,
) -> Result<(), GenerateError> {
    let progress = opts.progress.then(|| {
        let pb = indicatif::ProgressBar::new(u64::from(opts.days));
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} day {pos}/{len} ({eta})",
        ) {
            pb.set_style(style);
        }
        pb
    });
    let mut pending_cdr: Vec<Out> = Vec::new();
    let mut pending_acct: Vec<Out> = Vec::new();
    for d in 0..i64::from(opts.days) {
        let day = population.day(d);
        pending_cdr.extend(day.cdr);
        pending_acct.extend(day.acct);
        summary.delayed += day.delayed;
        summary.duplicated += day.duplicated;
        let horizon = population.day_end_ms(d);
        summary.cdrs += files.cdr.flush_before(&mut pending_cdr, horizon)?;
        summary.account_events += files.acct.flush_before(&mut pending_acct, horizon)?;
        if let Some(pb) = &progress {
            pb.set_position(d as u64 + 1);
        }
    }
    summary.cdrs += files.cdr.flush_before(&mut pending_cdr, i64::MAX)?;
    summary.account_events += files.acct.flush_before(&mut pending_acct, i64::MAX)?;
    if let Some(pb) = &progress {
        pb.finish_and_clear();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;
    use crate::tools::workload::population::{JourneyKind, LookAlike};
    use crate::tools::workload::HOUR_MS;
    use std::path::Path;

    fn opts(dir: &Path, n: usize, days: u32, seed: u64) -> GenerateOptions {
        GenerateOptions {
            out: dir.to_path_buf(),
            subscribers: n,
            days,
            seed,
            start: NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(),
            format: Format::Json,
            progress: false,
        }
    }

    #[test]
    fn every_record_decodes_and_lateness_stays_within_a_day_or_36_hours_roaming() {
        let dir = tempfile::tempdir().unwrap();
        let s = run(&opts(dir.path(), 60, 70, 7), &Config::default()).unwrap();
        assert!(s.events() > 5_000, "{s}");
        let text = std::fs::read_to_string(dir.path().join("cdr.jsonl")).unwrap();
        let mut newest = 0;
        let (mut late, mut roaming) = (0, 0);
        for line in text.lines() {
            let m = codec::cdr_from_json(line).unwrap();
            let c = codec::cdr_from_proto(&m).unwrap();
            // A day, or 36 hours for a roaming record; a second copy up to 6 hours after.
            let bound = if c.roaming { 42 } else { 30 } * HOUR_MS;
            assert!(newest - c.time_ms <= bound, "{line}");
            late += usize::from(c.time_ms < newest);
            roaming += usize::from(c.roaming);
            newest = newest.max(c.time_ms);
        }
        assert!(late > 0);
        assert!(roaming > 0, "the regular traveller's trips");
        let text = std::fs::read_to_string(dir.path().join("account.jsonl")).unwrap();
        for line in text.lines() {
            let m = codec::account_from_json(line).unwrap();
            codec::account_from_proto(&m).unwrap();
        }
    }

    #[test]
    fn small_populations_still_plant_every_journey_and_look_alike() {
        let dir = tempfile::tempdir().unwrap();
        let s = run(&opts(dir.path(), 200, 150, 1), &Config::default()).unwrap();
        for k in JourneyKind::ALL {
            assert!(
                s.journeys.contains_key(k.name()),
                "{} missing\n{s}",
                k.name()
            );
        }
        for l in LookAlike::ALL {
            assert!(s.look_alikes.contains_key(l.name()), "{} missing", l.name());
        }
        assert!(s.skipped.is_empty(), "{:?}", s.skipped);
    }

    #[test]
    fn a_short_horizon_skips_what_cannot_fit_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let s = run(&opts(dir.path(), 100, 60, 1), &Config::default()).unwrap();
        assert!(s.skipped.contains(&"spend_declines_for_months"), "{s}");
    }
}
