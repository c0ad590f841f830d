//! `churnwatch bench cluster`: the service at an operator's scale, as a platform engineer
//! runs it. Two `churnwatch run` processes (this executable, each with its own HTTP port)
//! share one group over the embedded broker's partitions, with the changelog on:
//!
//! 1. **State.** Every partition's changelog gets a full checkpoint of the subscribers keyed
//!    to it, with `history_days` days of usage each, as the partition's last owner would
//!    have left it (its inputs at offset 0). So the instances start as after a restart:
//!    they restore their partitions before reading.
//! 2. **Backlog.** `events` records over all subscribers, produced before the instances
//!    start (a catch-up); timed from the instances' start until the group's committed
//!    offsets reach the log end. Then each instance's resident memory, and the checkpoints
//!    they wrote (count, bytes, duration) from their `/metrics`.
//! 3. **Latency.** Records at a steady rate the machine sustains; the quantiles of
//!    `churnwatch_append_latency_seconds` (from the record's broker timestamp to its
//!    tickets' acknowledgement) over both instances.
//! 4. **An instance leaves.** At the same rate, the second instance gets SIGTERM. Timed:
//!    until the survivor holds every partition, has restored the departed one's and is
//!    ready again, with what its `/readyz` said meanwhile and what its own partitions
//!    processed during the restore.
//!
//! Nothing is asserted about speed: the figures go to BENCHMARKS.md. What is checked is
//! that nothing is lost: every record produced is committed by the group.

mod failover;
mod group;
mod instance;
mod report;
mod seed;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rdkafka::producer::FutureProducer;

use super::e2e::histogram_quantile;
use super::BenchError;
use crate::config::Config;
use crate::kafka::partition::wall_clock_ms;
use crate::tools::workload::mix::Wire;
use group::Group;
use instance::{observed, Instance};
pub use report::ClusterReport;
use report::{Latency, Side};

/// `churnwatch bench cluster` options.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub subscribers: u64,
    pub partitions: i32,
    /// Days of usage each subscriber's checkpointed state holds.
    pub history_days: u32,
    /// Records of the backlog.
    pub events: u64,
    /// Hours of event time the backlog spans.
    pub backlog_hours: u32,
    /// Input rate of the latency and failover phases, events/s.
    pub rate: u64,
    /// Seconds of the latency phase.
    pub latency_secs: u64,
    pub seed: u64,
    /// The configuration file the instances run with (as `--config`), if any.
    pub config: Option<PathBuf>,
}

/// Records generated and produced at a time, so the workload is never held whole.
const CHUNK: u64 = 1_000_000;
/// The instances' `kafka.session_timeout_ms` (see [`instance_env`]).
pub const SESSION_TIMEOUT_MS: u64 = 10_000;
/// Poll interval of the observers (an operator's scrape, not synchronisation).
const POLL: Duration = Duration::from_millis(100);

/// Runs the benchmark.
pub async fn run_cluster(opts: &ClusterOptions, cfg: &Config) -> Result<ClusterReport, BenchError> {
    let p = opts.partitions;
    let mut cfg = cfg.clone();
    let broker = crate::tools::live::start_broker(&cfg, p)?;
    broker.set_partition_limits(&cfg.kafka.topics.changelog, changelog_retention(opts))?;
    cfg.kafka.brokers = broker.bootstrap_servers();
    cfg.kafka.group_id = format!("churnwatch-cluster-{}", std::process::id());
    let per_partition = opts.subscribers.div_ceil(p as u64) as usize * 11 / 10;
    let e = &mut cfg.detect.engine;
    e.expected_subscribers = per_partition;
    e.max_dedup_ids = e.max_dedup_ids.max(e.sized_dedup_ids());

    let backlog_end = wall_clock_ms() - 60_000;
    let backlog_span = i64::from(opts.backlog_hours.max(1)) * 3_600_000;
    let t = Instant::now();
    let seeded = seed::checkpoint_partitions(&cfg, opts, backlog_end - backlog_span).await?;
    let seed_secs = t.elapsed().as_secs_f64();

    let producer = super::e2e::producer(&cfg)?;
    let mut wire = Wire::new(opts.subscribers, opts.seed);
    let t = Instant::now();
    let backlog = Records {
        count: opts.events,
        span_ms: backlog_span,
        end: backlog_end,
    };
    let produced = produce(&producer, &cfg, &mut wire, backlog, 0, p).await;
    let produce_secs = t.elapsed().as_secs_f64();

    let logs = std::env::temp_dir().join(format!("churnwatch-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&logs)
        .map_err(|e| BenchError::Check(format!("{}: {e}", logs.display())))?;
    let env = instance_env(&cfg, opts);
    let started = Instant::now();
    let mut a = Instance::spawn("a", &env, &logs)?;
    let mut b = Instance::spawn("b", &env, &logs)?;
    let group = Group::new(&cfg, p)?;
    let (ready_secs, restoring_said) = both_ready(&mut [&mut a, &mut b], started).await?;
    let consumed_secs = all_consumed(&mut [&mut a, &mut b], produced, started).await?;
    group
        .wait_committed(&mut [&mut a, &mut b], Duration::from_secs(3600))
        .await?;
    let backlog_secs = started.elapsed().as_secs_f64();
    let sides = [side(&a), side(&b)];

    let latency = steady(
        &producer,
        &cfg,
        &mut wire,
        opts,
        &group,
        &mut [&mut a, &mut b],
    )
    .await?;

    let failover = failover::leave(&producer, &cfg, &mut wire, opts, &mut a, &mut b).await?;
    group
        .wait_committed(&mut [&mut a], Duration::from_secs(600))
        .await?;
    let checkpoints = side(&a);
    a.terminate();
    drop(a);
    drop(b);
    drop(producer);
    drop(broker);
    Ok(ClusterReport {
        opts: opts.clone(),
        seeded,
        seed_secs,
        produced,
        produce_secs,
        ready_secs,
        restoring_said,
        consumed_secs,
        backlog_secs,
        sides,
        latency,
        failover,
        survivor_after: checkpoints,
        logs,
    })
}

/// What the embedded broker keeps of each changelog partition. It neither compacts nor
/// deletes, so every checkpoint would stay in memory; Kafka compacts a changelog. A
/// partition's latest complete checkpoint is at most its full checkpoint and increments
/// as large again (a chain ends once it has rewritten every subscriber), and the next full
/// checkpoint is written while it is still the restore point: three full checkpoints'
/// worth (about 280 bytes a subscriber each), and a margin, always hold it.
fn changelog_retention(opts: &ClusterOptions) -> crate::kafka::embedded::PartitionLimits {
    let per_partition = opts.subscribers.div_ceil(opts.partitions as u64) as usize;
    crate::kafka::embedded::PartitionLimits {
        max_bytes: (per_partition * 280 * 7 / 2).max(64 << 20),
        ..Default::default()
    }
}

/// The instances' configuration over the file's: this broker, group and engine sizing.
fn instance_env(cfg: &Config, opts: &ClusterOptions) -> Vec<(String, String)> {
    let e = &cfg.detect.engine;
    let mut env = vec![
        (
            "CHURNWATCH__KAFKA__BROKERS".into(),
            cfg.kafka.brokers.clone(),
        ),
        (
            "CHURNWATCH__KAFKA__GROUP_ID".into(),
            cfg.kafka.group_id.clone(),
        ),
        (
            "CHURNWATCH__ENGINE__EXPECTED_SUBSCRIBERS".into(),
            e.expected_subscribers.to_string(),
        ),
        (
            "CHURNWATCH__ENGINE__MAX_DEDUP_IDS".into(),
            e.max_dedup_ids.to_string(),
        ),
        // The embedded broker completes a rebalance only after the session timeout (less a
        // second) even when every remaining member has rejoined; Kafka completes it as soon
        // as they have. A short timeout keeps that wait from dwarfing the takeover.
        (
            "CHURNWATCH__KAFKA__SESSION_TIMEOUT_MS".into(),
            SESSION_TIMEOUT_MS.to_string(),
        ),
        (
            "CHURNWATCH__KAFKA__OPTIONS__MAX_POLL_INTERVAL_MS".into(),
            SESSION_TIMEOUT_MS.to_string(),
        ),
        (
            "CHURNWATCH__KAFKA__DRAIN_TIMEOUT_MS".into(),
            (SESSION_TIMEOUT_MS / 2).to_string(),
        ),
        (
            "RUST_LOG".into(),
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        ),
    ];
    if let Some(c) = &opts.config {
        env.push(("CHURNWATCH_CONFIG".into(), c.display().to_string()));
    }
    env
}

/// Records to produce: `count` of them, their event times over the `span_ms` before `end`.
#[derive(Debug, Clone, Copy)]
struct Records {
    count: u64,
    span_ms: i64,
    end: i64,
}

/// Produces `records`, a chunk at a time, at `rate` (0: as fast as the broker takes them);
/// the records produced.
async fn produce(
    producer: &FutureProducer,
    cfg: &Config,
    wire: &mut Wire,
    records: Records,
    rate: u64,
    partitions: i32,
) -> u64 {
    let Records {
        count,
        span_ms,
        end,
    } = records;
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let chunks = count.div_ceil(CHUNK).max(1);
    let mut produced = 0;
    for c in 0..chunks {
        let n = (count - c * CHUNK).min(CHUNK);
        let chunk_end = end - span_ms + span_ms * (c as i64 + 1) / chunks as i64;
        let events = wire.next_chunk(n, span_ms / chunks as i64, chunk_end);
        produced +=
            crate::tools::live::stream(producer, cfg, &events, partitions, rate, &stop).await;
    }
    produced
}

/// Waits until every instance answers `/readyz` with 200; the seconds since `started`, and
/// the first thing an instance's `/readyz` said while a partition was restoring.
async fn both_ready(
    instances: &mut [&mut Instance],
    started: Instant,
) -> Result<(f64, Option<String>), BenchError> {
    let deadline = started + Duration::from_secs(900);
    let mut said = None;
    loop {
        let mut ready = 0;
        for i in instances.iter_mut() {
            alive(i)?;
            match i.readiness() {
                Some((true, _)) => ready += 1,
                Some((false, body)) if said.is_none() && body.contains("restoring") => {
                    said = Some(format!("{}: {}", i.name, body.trim()));
                }
                _ => {}
            }
        }
        if ready == instances.len() {
            return Ok((started.elapsed().as_secs_f64(), said));
        }
        if Instant::now() > deadline {
            return Err(BenchError::Check(
                "the instances were not ready in 15 minutes".into(),
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until the instances have consumed `n` records between them; seconds since `started`.
async fn all_consumed(
    instances: &mut [&mut Instance],
    n: u64,
    started: Instant,
) -> Result<f64, BenchError> {
    let deadline = started + Duration::from_secs(3600);
    loop {
        let mut consumed = 0;
        for i in instances.iter_mut() {
            alive(i)?;
            consumed += i.metrics().sum("churnwatch_records_consumed_total", "") as u64;
        }
        if consumed >= n {
            return Ok(started.elapsed().as_secs_f64());
        }
        if Instant::now() > deadline {
            return Err(BenchError::Check(format!(
                "{consumed} of {n} records consumed in an hour"
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

fn alive(i: &mut Instance) -> Result<(), BenchError> {
    match i.exited() {
        Some(status) => Err(BenchError::Check(format!(
            "instance {} exited ({status}): {}",
            i.name,
            i.last_log_line()
        ))),
        None => Ok(()),
    }
}

/// What an instance holds after a phase: memory, partitions, checkpoints.
fn side(i: &Instance) -> Side {
    let m = i.metrics();
    let seconds = m.buckets("churnwatch_checkpoint_duration_seconds");
    let count = seconds.last().map_or(0, |b| b.1);
    let q = |x| {
        let (bounds, counts): (Vec<f64>, Vec<u64>) = seconds.iter().copied().unzip();
        histogram_quantile(&bounds, &counts, count, x).map_or(0.0, |v| v.0)
    };
    Side {
        name: i.name,
        resident_bytes: i.resident_bytes(),
        partitions: m.sum("churnwatch_assigned_partitions", "") as u32,
        subscribers: m.sum("churnwatch_subscribers", "") as u64,
        state_bytes: m.sum("churnwatch_state_bytes", "") as u64,
        checkpoints_full: m.sum("churnwatch_checkpoints_total", "kind=\"full\"") as u64,
        checkpoints_incremental: m.sum("churnwatch_checkpoints_total", "kind=\"incremental\"")
            as u64,
        changelog_bytes: m.sum("churnwatch_changelog_bytes_total", "") as u64,
        changelog_records: m.sum("churnwatch_changelog_records_total", "") as u64,
        checkpoint_mean_secs: m.sum("churnwatch_checkpoint_duration_seconds_sum", "")
            / count.max(1) as f64,
        checkpoint_p99_secs: q(0.99),
        restore_secs: m.max("churnwatch_restore_seconds"),
    }
}

/// Steady input at `opts.rate` for `opts.latency_secs`: the append-to-acknowledgement
/// latency over `instances`, from the records after the first fifth (read once the group
/// has committed them all, so every one is observed).
async fn steady(
    producer: &FutureProducer,
    cfg: &Config,
    wire: &mut Wire,
    opts: &ClusterOptions,
    group: &Group,
    instances: &mut [&mut Instance],
) -> Result<Latency, BenchError> {
    const LATENCY: &str = "churnwatch_append_latency_seconds";
    let count = opts.rate * opts.latency_secs;
    let warm = count / 5;
    let span = 1000 * opts.latency_secs as i64;
    let t = Instant::now();
    let now = wall_clock_ms();
    let p = opts.partitions;
    let first = Records {
        count: warm,
        span_ms: span / 5,
        end: now + span / 5,
    };
    let mut produced = produce(producer, cfg, wire, first, opts.rate, p).await;
    group
        .wait_committed(instances, Duration::from_secs(600))
        .await?;
    let before: Vec<_> = instances
        .iter()
        .map(|i| i.metrics().buckets(LATENCY))
        .collect();
    let now = wall_clock_ms();
    let rest = span - span / 5;
    let rest = Records {
        count: count - warm,
        span_ms: rest,
        end: now + rest,
    };
    produced += produce(producer, cfg, wire, rest, opts.rate, p).await;
    let produce_secs = t.elapsed().as_secs_f64();
    group
        .wait_committed(instances, Duration::from_secs(600))
        .await?;
    let after: Vec<_> = instances
        .iter()
        .map(|i| i.metrics().buckets(LATENCY))
        .collect();
    Ok(Latency::of(
        opts.rate,
        produced,
        produce_secs,
        &observed(&after, &before),
    ))
}
