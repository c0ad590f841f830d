//! The cluster benchmark's last phase: the second instance leaves (SIGTERM) while records
//! keep arriving, and the survivor is watched, as an operator would, until it holds every
//! partition and is ready again.

use std::time::{Duration, Instant};

use rdkafka::producer::FutureProducer;

use super::instance::Instance;
use super::report::Failover;
use super::{alive, produce, ClusterOptions, Records, POLL};
use crate::config::Config;
use crate::kafka::partition::wall_clock_ms;
use crate::tools::bench::BenchError;
use crate::tools::workload::mix::Wire;

/// The second instance leaves (SIGTERM) while records arrive at `opts.rate`: timed until
/// the survivor holds every partition and is ready again.
pub(super) async fn leave(
    producer: &FutureProducer,
    cfg: &Config,
    wire: &mut Wire,
    opts: &ClusterOptions,
    a: &mut Instance,
    b: &mut Instance,
) -> Result<Failover, BenchError> {
    let secs = opts.latency_secs.max(30);
    let now = wall_clock_ms();
    let span = 1000 * secs as i64;
    let feed = {
        let (producer, cfg) = (producer.clone(), cfg.clone());
        let mut wire = std::mem::replace(wire, Wire::new(opts.subscribers, opts.seed + 1));
        let (rate, p) = (opts.rate, opts.partitions);
        let records = Records {
            count: opts.rate * secs,
            span_ms: span,
            end: now + span,
        };
        tokio::spawn(async move { produce(&producer, &cfg, &mut wire, records, rate, p).await })
    };
    // A fifth of the feed in, the instance leaves (the scenario's schedule).
    tokio::time::sleep(Duration::from_secs(secs / 5)).await;
    let own_before = consumed(a);
    let left = Instant::now();
    let restored_before = restored(a);
    b.terminate();
    let seen = watch(a, b, opts.partitions as u32, left, restored_before).await?;
    let own_during = consumed(a) - own_before;
    let produced = feed
        .await
        .map_err(|e| BenchError::Check(format!("producer task: {e}")))?;
    while b.exited().is_none() {
        tokio::time::sleep(POLL).await;
    }
    let m = a.metrics();
    Ok(Failover {
        produced,
        departed_exit_secs: seen.b_exit.unwrap_or_else(|| left.elapsed().as_secs_f64()),
        restoring_seen_secs: seen.restoring,
        assigned_secs: seen.assigned.unwrap_or(seen.back),
        back_secs: seen.back,
        restoring_said: seen.said,
        consumed_during: own_during,
        restored_subscribers: m.sum("churnwatch_restored_subscribers", "") as u64,
        restore_secs: (0..opts.partitions)
            .map(|q| m.sum("churnwatch_restore_seconds", &format!("partition=\"{q}\"")))
            .collect(),
    })
}

fn consumed(i: &Instance) -> u64 {
    i.metrics().sum("churnwatch_records_consumed_total", "") as u64
}

fn restored(i: &Instance) -> u64 {
    i.metrics().sum("churnwatch_restored_records_total", "") as u64
}

/// What the survivor showed after the other left, in seconds since it left.
#[derive(Debug, Default)]
struct Seen {
    b_exit: Option<f64>,
    restoring: Option<f64>,
    said: Option<String>,
    assigned: Option<f64>,
    back: f64,
}

/// Polls the survivor `a` until it holds all `p` partitions, has restored since it was
/// `restored_before` records, and is ready.
async fn watch(
    a: &mut Instance,
    b: &mut Instance,
    p: u32,
    left: Instant,
    restored_before: u64,
) -> Result<Seen, BenchError> {
    let mut seen = Seen::default();
    let deadline = left + Duration::from_secs(900);
    let since = || left.elapsed().as_secs_f64();
    loop {
        alive(a)?;
        if seen.b_exit.is_none() && b.exited().is_some() {
            seen.b_exit = Some(since());
        }
        let held = a.metrics().sum("churnwatch_assigned_partitions", "") as u32;
        if held == p && seen.assigned.is_none() {
            seen.assigned = Some(since());
        }
        match a.readiness() {
            Some((false, body)) if body.contains("restoring") => {
                seen.restoring.get_or_insert(since());
                seen.said.get_or_insert_with(|| body.trim().to_string());
            }
            Some((true, _)) if held == p && restored(a) > restored_before => {
                seen.back = since();
                return Ok(seen);
            }
            _ => {}
        }
        if Instant::now() > deadline {
            return Err(BenchError::Check(
                "the survivor did not take over in 15 minutes".into(),
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}
