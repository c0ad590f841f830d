//! `churnwatch bench restore`: how fast a partition comes back from its changelog.
//!
//! A population of N subscribers with a week of history is checkpointed in full to the
//! embedded broker's changelog topic (one partition), then restored from it several times
//! into fresh engines, as a new owner does on assignment: reading the records, decoding
//! the states and filling the subscriber table. Subscribers per second is the median run.
//!
//! With `--partitions P`, the N subscribers are split over P changelog partitions (the same
//! N/P states in each, which is all a restore's speed depends on) and the P partitions are
//! restored in parallel, one thread each, as an instance that takes over P partitions from
//! one that left restores them: the figure a failover waits for.

use std::fmt;
use std::time::Instant;

use super::{build_history, BenchError, ENGINE_START};
use crate::config::Config;
use crate::detect::calendar::day_of_date;
use crate::detect::Engine;
use crate::driver::Driver;
use crate::kafka::changelog::restore::restore;
use crate::kafka::changelog::writer::Checkpointer;

/// `churnwatch bench restore` options.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub subscribers: u64,
    /// Restores timed (the median is reported).
    pub runs: usize,
    /// Changelog partitions the subscribers are split over, restored in parallel.
    pub partitions: i32,
    /// Full checkpoints written before the restored one (the log in front of it).
    pub earlier_checkpoints: u32,
}

/// What the restore benchmark measured.
#[derive(Debug, Clone)]
pub struct RestoreReport {
    pub subscribers: u64,
    pub partitions: i32,
    /// Full checkpoints in front of the restored one, each partition.
    pub earlier_checkpoints: u32,
    pub changelog_records: u64,
    pub changelog_bytes: u64,
    pub checkpoint_secs: f64,
    /// Seconds of each restore, sorted.
    pub restore_secs: Vec<f64>,
}

impl RestoreReport {
    pub fn median_secs(&self) -> f64 {
        self.restore_secs[self.restore_secs.len() / 2]
    }
    pub fn subscribers_per_sec(&self) -> f64 {
        self.subscribers as f64 / self.median_secs()
    }
    /// Each partition's rate while all are restored together.
    pub fn per_partition_per_sec(&self) -> f64 {
        self.subscribers_per_sec() / f64::from(self.partitions.max(1))
    }
}

/// Runs the restore benchmark.
pub async fn run_restore(opts: &RestoreOptions, cfg: &Config) -> Result<RestoreReport, BenchError> {
    let partitions = opts.partitions.max(1);
    let each = opts.subscribers / partitions as u64;
    let total = each * partitions as u64;
    let mut cfg = cfg.clone();
    let e = &mut cfg.detect.engine;
    e.expected_subscribers = each as usize;
    e.max_dedup_ids = e.max_dedup_ids.max(e.sized_dedup_ids());
    let broker = crate::tools::live::start_broker(&cfg, partitions)?;
    cfg.kafka.brokers = broker.bootstrap_servers();
    let topic = cfg.kafka.topics.changelog.clone();
    let mut driver = Driver::new(Engine::new(&cfg, &[])?, i64::MAX);
    let start = chrono::NaiveDate::parse_from_str(ENGINE_START, "%Y-%m-%d")
        .map_err(|e| BenchError::Check(e.to_string()))?;
    let first = day_of_date(start);
    build_history(&mut driver, each, first, 7);
    let producer = crate::kafka::producer::create(&cfg)?;
    let started = Instant::now();
    let (mut records, mut bytes) = (0, 0);
    for p in 0..partitions {
        let mut last = None;
        for _ in 0..=opts.earlier_checkpoints {
            let mut writer = Checkpointer::new(&topic, p, last, true);
            let written = writer.write(&producer, driver.engine_mut(), vec![]).await?;
            records += written.records;
            bytes += written.bytes;
            last = writer.last().cloned();
        }
    }
    let checkpoint_secs = started.elapsed().as_secs_f64();
    drop(driver);
    let client = crate::kafka::client_config(&cfg);
    let mut restore_secs = Vec::new();
    for _ in 0..opts.runs.max(1) {
        let engines = (0..partitions)
            .map(|_| Engine::new(&cfg, &[]))
            .collect::<Result<Vec<_>, _>>()?;
        let started = Instant::now();
        let restored = tokio::task::block_in_place(|| in_parallel(&client, &topic, engines))?;
        restore_secs.push(started.elapsed().as_secs_f64());
        if restored != total {
            return Err(BenchError::Check(format!(
                "restored {restored} subscribers of {total}"
            )));
        }
    }
    restore_secs.sort_by(f64::total_cmp);
    drop(producer);
    drop(broker);
    Ok(RestoreReport {
        subscribers: total,
        partitions,
        earlier_checkpoints: opts.earlier_checkpoints,
        changelog_records: records,
        changelog_bytes: bytes,
        checkpoint_secs,
        restore_secs,
    })
}

/// Restores partition `p` of `topic` into `engines[p]`, each on a thread of its own
/// (`restore-p`); the subscribers restored in all.
fn in_parallel(
    client: &rdkafka::ClientConfig,
    topic: &str,
    engines: Vec<Engine>,
) -> Result<u64, BenchError> {
    let lost = |what: String| BenchError::Check(format!("a restore thread {what}"));
    std::thread::scope(|scope| {
        let threads: Vec<_> = engines
            .into_iter()
            .zip(0..)
            .map(|(engine, p)| {
                std::thread::Builder::new()
                    .name(format!("restore-{p}"))
                    .spawn_scoped(scope, move || {
                        restore(client, topic, p, engine, &Default::default(), |_, _| {})
                            .map(|r| r.subscribers as u64)
                            .map_err(|e| BenchError::Check(e.to_string()))
                    })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| match t {
                Ok(t) => t.join().unwrap_or_else(|_| Err(lost("panicked".into()))),
                Err(e) => Err(lost(format!("could not start: {e}"))),
            })
            .sum()
    })
}

impl fmt::Display for RestoreReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "state restore from the changelog (embedded broker, {} partition(s) restored in parallel)",
            self.partitions
        )?;
        writeln!(f, "  subscribers              {:>14}", self.subscribers)?;
        writeln!(
            f,
            "  changelog records        {:>14}",
            self.changelog_records
        )?;
        writeln!(f, "  changelog bytes          {:>14}", self.changelog_bytes)?;
        writeln!(
            f,
            "  full checkpoints written {:>14} ({} in front of the one restored, each partition; {:.2}s)",
            self.earlier_checkpoints + 1,
            self.earlier_checkpoints,
            self.checkpoint_secs
        )?;
        let runs: Vec<String> = self
            .restore_secs
            .iter()
            .map(|s| format!("{s:.2}s"))
            .collect();
        writeln!(f, "  restores                 {:>14}", runs.join(" "))?;
        writeln!(
            f,
            "  subscribers restored/s   {:>14.0}",
            self.subscribers_per_sec()
        )?;
        writeln!(
            f,
            "  per partition, in parallel {:>12.0}",
            self.per_partition_per_sec()
        )?;
        writeln!(
            f,
            "state_restore_subscribers_per_sec {:.0} subscribers/s",
            self.subscribers_per_sec()
        )?;
        writeln!(
            f,
            "state_checkpoint_subscribers_per_sec {:.0} subscribers/s",
            self.subscribers as f64 / self.checkpoint_secs
        )?;
        writeln!(
            f,
            "state_changelog_bytes_per_subscriber {:.1} bytes",
            self.changelog_bytes as f64 / self.subscribers.max(1) as f64
        )
    }
}
