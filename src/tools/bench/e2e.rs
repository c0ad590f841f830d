//! `churnwatch bench e2e`: the Kafka service against the embedded broker, timed from start
//! until every record's offset is stored, then latency at half that rate.
//!
//! Throughput is measured with the whole workload already in the topics, so it is the
//! service's rate and not the producer's; latency is measured at a steady rate the service
//! can keep, after a warm-up fifth, from the service's own processing-latency histogram.

use std::fmt;
use std::time::{Duration, Instant};

use super::BenchError;
use crate::config::Config;
use crate::tools::workload::mix;

/// Quantile `q` (0..1) of a Prometheus histogram from its cumulative bucket counts,
/// interpolated linearly inside the bucket; with the bucket's bounds.
pub fn histogram_quantile(
    bounds: &[f64],
    cumulative: &[u64],
    count: u64,
    q: f64,
) -> Option<(f64, f64, f64)> {
    if count == 0 {
        return None;
    }
    let rank = q * count as f64;
    let mut lower = 0.0;
    let mut below = 0u64;
    for (&upper, &c) in bounds.iter().zip(cumulative) {
        if c as f64 >= rank {
            let inside = (c - below).max(1) as f64;
            let v = lower + (upper - lower) * ((rank - below as f64) / inside);
            return Some((v, lower, upper));
        }
        lower = upper;
        below = c;
    }
    Some((f64::INFINITY, lower, f64::INFINITY))
}

/// Pause between polls of a completion counter (a poll interval, not synchronisation).
pub const POLL: Duration = Duration::from_millis(1);

/// `churnwatch bench e2e` options.
#[derive(Debug, Clone)]
pub struct E2eOptions {
    pub subscribers: u64,
    /// Records produced for the throughput run.
    pub events: u64,
    pub partitions: i32,
    /// Seconds of the half-rate latency run (0 skips it).
    pub latency_secs: u64,
    /// The latency run's input rate, events/s; 0 for half the measured throughput.
    pub latency_rate: u64,
    /// Days of event time the throughput run's backlog spans.
    pub days: u32,
    pub seed: u64,
}

/// Processing latency at a steady input rate.
#[derive(Debug, Clone)]
pub struct LatencyReport {
    pub rate: u64,
    pub produced: u64,
    pub produce_secs: f64,
    /// Records whose latency is counted (the first fifth, while the group settles, is left out).
    pub measured: u64,
    /// `(value, bucket lower bound, bucket upper bound)`, seconds.
    pub p50: (f64, f64, f64),
    pub p99: (f64, f64, f64),
}

/// What `churnwatch bench e2e` measured.
#[derive(Debug, Clone)]
pub struct E2eReport {
    pub opts: E2eOptions,
    pub produced: u64,
    pub produce_secs: f64,
    pub end_offsets: i64,
    pub secs: f64,
    pub consumed_secs: f64,
    pub tickets: u64,
    /// Checkpoints and changelog bytes written during the timed run.
    pub checkpoints: u64,
    pub changelog_bytes: u64,
    pub latency: Option<LatencyReport>,
}

impl E2eReport {
    pub fn events_per_sec(&self) -> f64 {
        self.produced as f64 / self.secs.max(1e-9)
    }
}

pub(super) fn producer(cfg: &Config) -> Result<rdkafka::producer::FutureProducer, BenchError> {
    Ok(rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", &cfg.kafka.brokers)
        .set(
            "partitioner",
            crate::kafka::partitioner::librdkafka_name(cfg.kafka.partitioner),
        )
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .create()?)
}

/// A fresh embedded broker with every topic, and a config pointing at it.
fn fresh_broker(
    cfg: &Config,
    partitions: i32,
) -> Result<(crate::kafka::embedded::EmbeddedBroker, Config), BenchError> {
    let mut cfg = cfg.clone();
    let broker = crate::tools::live::start_broker(&cfg, partitions)?;
    cfg.kafka.brokers = broker.bootstrap_servers();
    cfg.kafka.ticket_format = crate::config::TicketFormat::Protobuf;
    cfg.kafka.group_id = format!("churnwatch-bench-{}", std::process::id());
    cfg.http.listen = String::new();
    Ok((broker, cfg))
}

/// Sum of the end offsets of the input topics, after checking every partition starts at 0.
fn end_offsets(cfg: &Config, partitions: i32) -> Result<i64, BenchError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", &cfg.kafka.brokers)
        .create()?;
    let mut total = 0;
    for topic in [&cfg.kafka.topics.cdr, &cfg.kafka.topics.account] {
        for p in 0..partitions {
            let (low, high) = c.fetch_watermarks(topic, p, Duration::from_secs(10))?;
            if low != 0 {
                return Err(BenchError::Check(format!(
                    "{topic}/{p} starts at offset {low}: the broker dropped records"
                )));
            }
            total += high;
        }
    }
    Ok(total)
}

/// A running service: its shared state, the stop switch and the task.
struct Running {
    shared: crate::kafka::service::Shared,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), crate::kafka::Error>>,
}

fn start_service(cfg: &Config) -> Running {
    let shared = crate::kafka::service::Shared::default();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (reload_tx, reload) = tokio::sync::watch::channel(std::sync::Arc::new(cfg.clone()));
    let (cfg, s) = (cfg.clone(), shared.clone());
    let task = tokio::spawn(async move {
        let _keep = reload_tx;
        crate::kafka::service::run(cfg, vec![], s, reload, async move {
            let _ = stopped.await;
        })
        .await
    });
    Running { shared, stop, task }
}

impl Running {
    /// Records whose offsets are stored: every ticket they raised is acknowledged.
    fn settled(&self) -> u64 {
        self.shared.metrics.processing_latency.get_sample_count()
    }

    fn consumed(&self, cfg: &Config) -> u64 {
        let m = &self.shared.metrics.records_consumed;
        m.with_label_values(&[cfg.kafka.topics.cdr.as_str()]).get()
            + m.with_label_values(&[cfg.kafka.topics.account.as_str()])
                .get()
    }

    fn tickets(&self) -> u64 {
        use prometheus::core::Collector;
        self.shared
            .metrics
            .tickets
            .collect()
            .iter()
            .flat_map(|f| f.get_metric())
            .map(|m| m.get_counter().get_value() as u64)
            .sum()
    }

    /// Checkpoints written so far and the changelog bytes they wrote.
    fn changelog(&self) -> (u64, u64) {
        let d = &self.shared.metrics.durability;
        let checkpoints = ["full", "incremental"]
            .iter()
            .map(|k| d.checkpoints.with_label_values(&[k]).get())
            .sum();
        (checkpoints, d.changelog_bytes.get())
    }

    /// Cumulative latency buckets `(upper bounds, counts)`.
    fn buckets(&self) -> (Vec<f64>, Vec<u64>) {
        use prometheus::core::Collector;
        let fams = self.shared.metrics.processing_latency.collect();
        let mut bounds = Vec::new();
        let mut counts = Vec::new();
        for b in fams
            .iter()
            .flat_map(|f| f.get_metric())
            .flat_map(|m| m.get_histogram().get_bucket())
        {
            bounds.push(b.upper_bound());
            counts.push(b.cumulative_count());
        }
        (bounds, counts)
    }

    /// Waits (polling the counter) until `n` records are settled, or fails after `limit`.
    async fn wait_settled(&self, n: u64, limit: Duration) -> Result<(), BenchError> {
        let deadline = Instant::now() + limit;
        while self.settled() < n {
            if Instant::now() > deadline {
                return Err(BenchError::Check(format!(
                    "only {} of {n} records settled within {}s",
                    self.settled(),
                    limit.as_secs()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(())
    }

    async fn stop(self) -> Result<(), BenchError> {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(BenchError::Check(format!("service: {e}"))),
            Err(e) => Err(BenchError::Check(format!("service task: {e}"))),
        }
    }
}

/// Runs the end-to-end benchmark.
pub async fn run_e2e(opts: &E2eOptions, cfg: &Config) -> Result<E2eReport, BenchError> {
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Throughput: everything produced first, then the service started and timed.
    let (broker, cfg1) = fresh_broker(cfg, opts.partitions)?;
    let last_ms = crate::kafka::partition::wall_clock_ms() - 60_000;
    let events = mix::wire(
        opts.subscribers,
        opts.events,
        i64::from(opts.days) * 86_400_000,
        last_ms,
        opts.seed,
    );
    let p = producer(&cfg1)?;
    let t0 = Instant::now();
    let produced =
        crate::tools::live::stream(&p, &cfg1, &events, opts.partitions, 0, &stop_rx).await;
    let produce_secs = t0.elapsed().as_secs_f64();
    drop(events);
    drop(p);
    let end = end_offsets(&cfg1, opts.partitions)?;
    if end != produced as i64 {
        return Err(BenchError::Check(format!(
            "produced {produced} records but the partitions end at {end} in total"
        )));
    }
    let t1 = Instant::now();
    let svc = start_service(&cfg1);
    let mut consumed_secs = 0.0;
    let deadline = t1 + Duration::from_secs(1800);
    while svc.settled() < produced {
        if consumed_secs == 0.0 && svc.consumed(&cfg1) >= produced {
            consumed_secs = t1.elapsed().as_secs_f64();
        }
        if Instant::now() > deadline {
            return Err(BenchError::Check(format!(
                "only {} of {produced} records settled in 30 minutes",
                svc.settled()
            )));
        }
        tokio::time::sleep(POLL).await;
    }
    let secs = t1.elapsed().as_secs_f64();
    if consumed_secs == 0.0 {
        consumed_secs = secs;
    }
    let tickets = svc.tickets();
    let (checkpoints, changelog_bytes) = svc.changelog();
    svc.stop().await?;
    drop(broker);

    let mut report = E2eReport {
        opts: opts.clone(),
        produced,
        produce_secs,
        end_offsets: end,
        secs,
        consumed_secs,
        tickets,
        checkpoints,
        changelog_bytes,
        latency: None,
    };
    if opts.latency_secs > 0 {
        let half = (report.events_per_sec() / 2.0).max(1.0) as u64;
        let rate = if opts.latency_rate > 0 {
            opts.latency_rate
        } else {
            half
        };
        report.latency = Some(latency_run(opts, cfg, rate).await?);
    }
    Ok(report)
}

/// The service first, then records produced at a steady `rate`; latency quantiles of the
/// records after the first fifth.
async fn latency_run(
    opts: &E2eOptions,
    cfg: &Config,
    rate: u64,
) -> Result<LatencyReport, BenchError> {
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (broker, cfg2) = fresh_broker(cfg, opts.partitions)?;
    let count = rate * opts.latency_secs;
    let last_ms = crate::kafka::partition::wall_clock_ms() - 60_000;
    let events = mix::wire(opts.subscribers, count, 3_600_000, last_ms, opts.seed + 1);
    let svc = start_service(&cfg2);
    let p = producer(&cfg2)?;
    let feeder = {
        let cfg2 = cfg2.clone();
        let partitions = opts.partitions;
        tokio::spawn(async move {
            let t = Instant::now();
            let n =
                crate::tools::live::stream(&p, &cfg2, &events, partitions, rate, &stop_rx).await;
            (n, t.elapsed().as_secs_f64())
        })
    };
    let warm = count / 5;
    let limit = Duration::from_secs(opts.latency_secs * 4 + 120);
    svc.wait_settled(warm, limit).await?;
    let (bounds, before) = svc.buckets();
    let (produced, produce_secs) = feeder
        .await
        .map_err(|e| BenchError::Check(format!("producer task: {e}")))?;
    svc.wait_settled(produced, limit).await?;
    let (_, after) = svc.buckets();
    svc.stop().await?;
    drop(broker);
    let diff: Vec<u64> = after
        .iter()
        .zip(&before)
        .map(|(a, b)| a.saturating_sub(*b))
        .collect();
    let total = diff.last().copied().unwrap_or(0);
    let q = |x| histogram_quantile(&bounds, &diff, total, x).unwrap_or((0.0, 0.0, 0.0));
    Ok(LatencyReport {
        rate,
        produced,
        produce_secs,
        measured: total,
        p50: q(0.5),
        p99: q(0.99),
    })
}

impl fmt::Display for E2eReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.opts;
        writeln!(
            f,
            "end-to-end benchmark (embedded broker, {} partitions)",
            o.partitions
        )?;
        writeln!(f, "  subscribers             {:>12}", o.subscribers)?;
        writeln!(
            f,
            "  produced first          {:>12} records over {} days of event time in {:.1}s; partitions end at {} in total",
            self.produced, o.days, self.produce_secs, self.end_offsets
        )?;
        writeln!(f, "  all consumed after      {:>11.2}s", self.consumed_secs)?;
        writeln!(
            f,
            "  all settled after       {:>11.2}s (tickets acknowledged, offsets stored)",
            self.secs
        )?;
        writeln!(f, "  tickets                 {:>12}", self.tickets)?;
        writeln!(
            f,
            "  checkpoints             {:>12} ({} changelog bytes)",
            self.checkpoints, self.changelog_bytes
        )?;
        writeln!(
            f,
            "  throughput              {:>12.0} events/s",
            self.events_per_sec()
        )?;
        if let Some(l) = &self.latency {
            writeln!(
                f,
                "  half-rate run           {:>12} events/s target, {} records in {:.1}s ({:.0}/s)",
                l.rate,
                l.produced,
                l.produce_secs,
                l.produced as f64 / l.produce_secs.max(1e-9)
            )?;
            for (name, (v, lo, hi)) in [("p50", l.p50), ("p99", l.p99)] {
                writeln!(
                    f,
                    "  latency {name}             {:>10.2}ms (bucket {:.1}..{:.1} ms, {} records)",
                    v * 1e3,
                    lo * 1e3,
                    hi * 1e3,
                    l.measured
                )?;
            }
        }
        writeln!(f)?;
        writeln!(
            f,
            "e2e_events_per_sec {:.0} events/s",
            self.events_per_sec()
        )?;
        if let Some(l) = &self.latency {
            writeln!(f, "e2e_half_rate {} events/s", l.rate)?;
            writeln!(f, "e2e_latency_p50_ms {:.2} ms", l.p50.0 * 1e3)?;
            writeln!(f, "e2e_latency_p99_ms {:.2} ms", l.p99.0 * 1e3)?;
            writeln!(f, "e2e_latency_p99_bucket_upper_ms {:.1} ms", l.p99.2 * 1e3)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_inside_their_bucket() {
        let bounds = [0.001, 0.01, 0.1, f64::INFINITY];
        let cumulative = [0, 50, 100, 100];
        let (v, lo, hi) = histogram_quantile(&bounds, &cumulative, 100, 0.5).unwrap();
        assert_eq!((lo, hi), (0.001, 0.01));
        assert!((v - 0.01).abs() < 1e-12, "{v}");
        let (v, lo, hi) = histogram_quantile(&bounds, &cumulative, 100, 0.75).unwrap();
        assert_eq!((lo, hi), (0.01, 0.1));
        assert!((v - 0.055).abs() < 1e-12, "{v}");
        assert_eq!(histogram_quantile(&bounds, &cumulative, 0, 0.5), None);
    }
}
