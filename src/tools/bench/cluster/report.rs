//! What `churnwatch bench cluster` measured, as a table and as `name value unit` lines.

use std::fmt;
use std::path::PathBuf;

use super::seed::Seeded;
use super::ClusterOptions;
use crate::tools::bench::histogram_quantile;

/// One instance after a phase, from its `/metrics` and `/proc`.
#[derive(Debug, Clone)]
pub struct Side {
    pub name: &'static str,
    pub resident_bytes: u64,
    pub partitions: u32,
    pub subscribers: u64,
    pub state_bytes: u64,
    pub checkpoints_full: u64,
    pub checkpoints_incremental: u64,
    pub changelog_bytes: u64,
    pub changelog_records: u64,
    pub checkpoint_mean_secs: f64,
    pub checkpoint_p99_secs: f64,
    /// The longest of its partitions' last restores.
    pub restore_secs: f64,
}

/// The append-to-acknowledgement latency at a steady rate.
#[derive(Debug, Clone)]
pub struct Latency {
    pub rate: u64,
    pub produced: u64,
    pub produce_secs: f64,
    pub measured: u64,
    pub p50: f64,
    pub p99: f64,
    pub p99_bucket: (f64, f64),
}

impl Latency {
    pub(super) fn of(
        rate: u64,
        produced: u64,
        produce_secs: f64,
        buckets: &[(f64, u64)],
    ) -> Latency {
        let (bounds, counts): (Vec<f64>, Vec<u64>) = buckets.iter().copied().unzip();
        let measured = counts.last().copied().unwrap_or(0);
        let q = |x| histogram_quantile(&bounds, &counts, measured, x).unwrap_or((0.0, 0.0, 0.0));
        let (p99, lo, hi) = q(0.99);
        Latency {
            rate,
            produced,
            produce_secs,
            measured,
            p50: q(0.5).0,
            p99,
            p99_bucket: (lo, hi),
        }
    }
}

/// The second instance leaving.
#[derive(Debug, Clone)]
pub struct Failover {
    pub produced: u64,
    /// SIGTERM to the departed instance's exit (its drain and last checkpoint).
    pub departed_exit_secs: f64,
    /// SIGTERM to the survivor's `/readyz` first naming a restoring partition (unseen if
    /// the restore fell between two polls).
    pub restoring_seen_secs: Option<f64>,
    /// SIGTERM to the survivor holding every partition (the group's rebalance).
    pub assigned_secs: f64,
    /// SIGTERM to the survivor holding every partition, ready.
    pub back_secs: f64,
    pub restoring_said: Option<String>,
    /// Records the survivor consumed between SIGTERM and ready: its own partitions kept on.
    pub consumed_during: u64,
    pub restored_subscribers: u64,
    /// The survivor's last restore of each partition, seconds.
    pub restore_secs: Vec<f64>,
}

/// Everything `churnwatch bench cluster` measured.
#[derive(Debug, Clone)]
pub struct ClusterReport {
    pub opts: ClusterOptions,
    pub seeded: Seeded,
    pub seed_secs: f64,
    pub produced: u64,
    pub produce_secs: f64,
    pub ready_secs: f64,
    pub restoring_said: Option<String>,
    /// From the instances' start until they had consumed the whole backlog.
    pub consumed_secs: f64,
    pub backlog_secs: f64,
    pub sides: [Side; 2],
    pub latency: Latency,
    pub failover: Failover,
    pub survivor_after: Side,
    pub logs: PathBuf,
}

impl ClusterReport {
    pub fn events_per_sec(&self) -> f64 {
        self.produced as f64 / self.backlog_secs.max(1e-9)
    }

    /// Resident memory of both instances over the subscribers they hold.
    pub fn resident_per_subscriber(&self) -> f64 {
        let rss: u64 = self.sides.iter().map(|s| s.resident_bytes).sum();
        rss as f64 / self.seeded.subscribers.max(1) as f64
    }

    fn checkpoints(&self) -> (u64, u64, u64) {
        let s = &self.sides;
        let full = s.iter().map(|s| s.checkpoints_full).sum();
        let inc = s.iter().map(|s| s.checkpoints_incremental).sum();
        (full, inc, s.iter().map(|s| s.changelog_bytes).sum())
    }
}

impl fmt::Display for ClusterReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.opts;
        writeln!(
            f,
            "cluster benchmark: 2 instances of `churnwatch run`, {} partitions, embedded broker",
            o.partitions
        )?;
        writeln!(
            f,
            "  subscribers             {:>14} ({} days of history each)",
            self.seeded.subscribers, o.history_days
        )?;
        writeln!(
            f,
            "  changelog seeded        {:>14} records, {} bytes ({:.1} B/subscriber) in {:.1}s",
            self.seeded.records,
            self.seeded.bytes,
            self.seeded.bytes as f64 / self.seeded.subscribers.max(1) as f64,
            self.seed_secs
        )?;
        writeln!(
            f,
            "  backlog                 {:>14} records over {} h, produced in {:.1}s",
            self.produced, o.backlog_hours, self.produce_secs
        )?;
        writeln!(
            f,
            "  both ready after        {:>13.2}s (each restored its partitions)",
            self.ready_secs
        )?;
        if let Some(s) = &self.restoring_said {
            writeln!(f, "    /readyz meanwhile     {s}")?;
        }
        writeln!(
            f,
            "  backlog consumed after  {:>13.2}s: {:.0} events/s, restore included",
            self.consumed_secs,
            self.produced as f64 / self.consumed_secs.max(1e-9)
        )?;
        writeln!(
            f,
            "  backlog committed after {:>13.2}s: {:.0} events/s (tickets acknowledged, offsets committed at a checkpoint)",
            self.backlog_secs,
            self.events_per_sec()
        )?;
        for s in self.sides.iter().chain([&self.survivor_after]) {
            writeln!(
                f,
                "  instance {}: {} partitions, {} subscribers, RSS {} MB ({:.1} B/subscriber; state {:.1}), restore {:.2}s",
                s.name,
                s.partitions,
                s.subscribers,
                s.resident_bytes >> 20,
                s.resident_bytes as f64 / s.subscribers.max(1) as f64,
                s.state_bytes as f64 / s.subscribers.max(1) as f64,
                s.restore_secs
            )?;
            writeln!(
                f,
                "    checkpoints {} full + {} incremental, {} changelog records, {} bytes, {:.3}s mean, p99 {:.3}s",
                s.checkpoints_full,
                s.checkpoints_incremental,
                s.changelog_records,
                s.changelog_bytes,
                s.checkpoint_mean_secs,
                s.checkpoint_p99_secs
            )?;
        }
        let l = &self.latency;
        writeln!(
            f,
            "  steady {} events/s:     {} records in {:.1}s; append to ack p50 {:.1} ms, p99 {:.1} ms (bucket {:.0}..{:.0} ms; {} records)",
            l.rate, l.produced, l.produce_secs, l.p50 * 1e3, l.p99 * 1e3, l.p99_bucket.0 * 1e3, l.p99_bucket.1 * 1e3, l.measured
        )?;
        let v = &self.failover;
        writeln!(f, "  instance b leaves (SIGTERM) at {} events/s:", o.rate)?;
        writeln!(
            f,
            "    b exited after        {:>12.2}s (drain, last checkpoint)",
            v.departed_exit_secs
        )?;
        if let Some(s) = v.restoring_seen_secs {
            writeln!(f, "    a restoring after     {s:>12.2}s")?;
        }
        if let Some(s) = &v.restoring_said {
            writeln!(f, "    a's /readyz said      {s}")?;
        }
        writeln!(
            f,
            "    a assigned all after  {:>12.2}s (the rebalance: the embedded broker waits out the \
             session timeout, {} ms, less 1 s)",
            v.assigned_secs,
            super::SESSION_TIMEOUT_MS
        )?;
        writeln!(
            f,
            "    a processing all after{:>12.2}s ({} partitions ready), {:.2}s after assignment",
            v.back_secs,
            o.partitions,
            v.back_secs - v.assigned_secs
        )?;
        writeln!(
            f,
            "    a consumed meanwhile  {:>12} records (its own partitions)",
            v.consumed_during
        )?;
        let restores: Vec<String> = v.restore_secs.iter().map(|s| format!("{s:.2}s")).collect();
        writeln!(
            f,
            "    a's restores          {} ({} subscribers held)",
            restores.join(" "),
            v.restored_subscribers
        )?;
        writeln!(f, "  logs                    {}", self.logs.display())?;
        writeln!(f)?;
        let (full, inc, bytes) = self.checkpoints();
        writeln!(
            f,
            "cluster_events_per_sec {:.0} events/s",
            self.events_per_sec()
        )?;
        writeln!(
            f,
            "cluster_resident_bytes_per_subscriber {:.1} bytes",
            self.resident_per_subscriber()
        )?;
        writeln!(
            f,
            "cluster_changelog_bytes_per_checkpoint {:.0} bytes",
            bytes as f64 / (full + inc).max(1) as f64
        )?;
        writeln!(
            f,
            "cluster_changelog_bytes_total {} bytes",
            bytes + self.seeded.bytes
        )?;
        writeln!(f, "cluster_latency_p50_ms {:.2} ms", l.p50 * 1e3)?;
        writeln!(f, "cluster_latency_p99_ms {:.2} ms", l.p99 * 1e3)?;
        writeln!(f, "cluster_takeover_secs {:.2} s", v.back_secs)?;
        let restore = v.back_secs - v.assigned_secs;
        writeln!(f, "cluster_takeover_after_assignment_secs {restore:.2} s")?;
        let moved = self.seeded.subscribers as f64 / 2.0;
        writeln!(
            f,
            "cluster_takeover_subscribers_per_sec {:.0} subscribers/s (after assignment)",
            moved / restore.max(1e-9)
        )
    }
}
