//! Readiness that tells the truth: a partition that makes no progress while records wait
//! for it is reported, by `/readyz` and by `churnwatch_partition_stalled{partition}`.
//!
//! A stalled partition is otherwise silent: its task has nothing to do, the broker answers,
//! and only the lag grows. (We met one: librdkafka sometimes never fetched a partition again
//! after a pause and resume.) The evidence comes from librdkafka's statistics, every
//! `statistics.interval.ms`: per input partition, the offset last passed to the service and
//! the one last committed, and the high watermark. A partition is behind when its inputs'
//! high watermarks are past what was passed to the service; it has progressed when either
//! offset moved. Behind without progress for `kafka.stall_timeout_ms` is a stall. Records
//! handed over but held inside the service (an event-time wait, at most 30 s) are not
//! counted as behind: the stall timeout is longer than any such wait.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One statistics sample of one input partition.
#[derive(Debug, Clone, Copy)]
pub struct InputSample {
    /// The offset after the last record passed to the service (negative: none yet).
    pub app_offset: i64,
    /// The last committed offset (negative: none).
    pub committed_offset: i64,
    /// The broker's high watermark (negative: unknown).
    pub hi_offset: i64,
}

impl InputSample {
    /// Records the broker holds that were not passed to the service yet.
    fn behind(&self) -> i64 {
        let read = self.app_offset.max(self.committed_offset);
        if self.hi_offset < 0 || read < 0 {
            return 0;
        }
        (self.hi_offset - read).max(0)
    }
}

#[derive(Debug)]
struct Seen {
    progress: (i64, i64),
    behind: i64,
    since: Instant,
}

/// Per partition, since when it has been behind without progress.
#[derive(Debug)]
pub struct StallWatch {
    timeout: Duration,
    parts: BTreeMap<i32, Seen>,
}

/// A partition found stalled: how far behind, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stall {
    pub partition: i32,
    pub behind: i64,
    pub for_secs: u64,
}

impl StallWatch {
    /// `timeout` zero turns the watch off.
    pub fn new(timeout: Duration) -> StallWatch {
        StallWatch {
            timeout,
            parts: BTreeMap::new(),
        }
    }

    /// Takes one statistics sample: the inputs of each assigned partition. Partitions not
    /// in it (revoked) are forgotten.
    pub fn observe(&mut self, sample: &BTreeMap<i32, Vec<InputSample>>, now: Instant) {
        self.parts.retain(|p, _| sample.contains_key(p));
        for (p, inputs) in sample {
            let progress = inputs.iter().fold((0, 0), |(a, c), i| {
                (a + i.app_offset.max(0), c + i.committed_offset.max(0))
            });
            let behind: i64 = inputs.iter().map(InputSample::behind).sum();
            let seen = self.parts.entry(*p).or_insert(Seen {
                progress,
                behind,
                since: now,
            });
            if seen.progress != progress || behind == 0 {
                seen.since = now;
            }
            seen.progress = progress;
            seen.behind = behind;
        }
    }

    /// The partitions stalled at `now`, in partition order.
    pub fn stalled(&self, now: Instant) -> Vec<Stall> {
        if self.timeout.is_zero() {
            return Vec::new();
        }
        self.parts
            .iter()
            .filter(|(_, s)| s.behind > 0 && now.duration_since(s.since) >= self.timeout)
            .map(|(p, s)| Stall {
                partition: *p,
                behind: s.behind,
                for_secs: now.duration_since(s.since).as_secs(),
            })
            .collect()
    }

    /// Every partition watched, stalled or not (to reset the gauge of those that recover).
    pub fn partitions(&self) -> impl Iterator<Item = i32> + '_ {
        self.parts.keys().copied()
    }
}

/// What `/readyz` says of one stalled partition.
pub fn detail(s: &Stall) -> String {
    format!(
        "{} records behind, no progress for {} s",
        s.behind, s.for_secs
    )
}

/// The log line's reason for `stalls`, or `None` if there are none.
pub fn reason(stalls: &[Stall]) -> Option<String> {
    if stalls.is_empty() {
        return None;
    }
    let parts: Vec<String> = stalls
        .iter()
        .map(|s| format!("partition {} stalled: {}", s.partition, detail(s)))
        .collect();
    Some(parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(app: i64, committed: i64, hi: i64) -> InputSample {
        InputSample {
            app_offset: app,
            committed_offset: committed,
            hi_offset: hi,
        }
    }

    fn sample(p: i32, inputs: Vec<InputSample>) -> BTreeMap<i32, Vec<InputSample>> {
        BTreeMap::from([(p, inputs)])
    }

    #[test]
    fn a_partition_behind_without_progress_stalls_after_the_timeout() {
        let t0 = Instant::now();
        let mut w = StallWatch::new(Duration::from_secs(60));
        let stuck = sample(1, vec![input(100, 90, 500), input(7, 7, 7)]);
        w.observe(&stuck, t0);
        w.observe(&stuck, t0 + Duration::from_secs(59));
        assert!(w.stalled(t0 + Duration::from_secs(59)).is_empty());
        w.observe(&stuck, t0 + Duration::from_secs(61));
        let now = t0 + Duration::from_secs(61);
        assert_eq!(
            w.stalled(now),
            vec![Stall {
                partition: 1,
                behind: 400,
                for_secs: 61
            }]
        );
        assert_eq!(
            reason(&w.stalled(now)).unwrap(),
            "partition 1 stalled: 400 records behind, no progress for 61 s"
        );
        w.observe(&sample(1, vec![input(101, 90, 500), input(7, 7, 7)]), now);
        assert!(
            w.stalled(now).is_empty(),
            "one record passed on is progress"
        );
    }

    #[test]
    fn an_idle_partition_or_one_that_moves_never_stalls() {
        let t0 = Instant::now();
        let mut w = StallWatch::new(Duration::from_secs(10));
        for s in 0..30 {
            let t = t0 + Duration::from_secs(s);
            let mut all = sample(0, vec![input(50, 50, 50)]);
            all.insert(2, vec![input(100 + s as i64, 90, 10_000)]);
            all.insert(3, vec![input(-1001, -1001, 40)]);
            w.observe(&all, t);
            assert!(w.stalled(t).is_empty(), "at {s} s");
        }
    }

    #[test]
    fn a_revoked_partition_is_forgotten_and_zero_turns_the_watch_off() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(100);
        let mut w = StallWatch::new(Duration::from_secs(10));
        w.observe(&sample(4, vec![input(1, 1, 9)]), t0);
        w.observe(&BTreeMap::new(), later);
        assert_eq!(w.partitions().count(), 0);
        let mut off = StallWatch::new(Duration::ZERO);
        off.observe(&sample(4, vec![input(1, 1, 9)]), t0);
        off.observe(&sample(4, vec![input(1, 1, 9)]), later);
        assert!(off.stalled(later).is_empty());
    }
}
