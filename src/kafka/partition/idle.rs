//! Source idleness for one live partition (Flink's `withIdleness`).
//!
//! Event time moves only with records, so a partition whose inputs go quiet would never
//! close its days: a contract update or a bill on its last busy day would wait for the next
//! record, which may be days away. After `kafka.idle_timeout_ms` without a record, the
//! partition's event-time clock follows the wall clock from its last record: the newest
//! event time seen plus the wall time elapsed since that record arrived. It never runs
//! ahead of the wall clock by more than the last record did, and the engine turns the time
//! into a watermark (minus the allowed lateness) as for a record.
//!
//! The cost is completeness: a record that arrives after a long silence and is older than
//! the watermark the clock reached is rejected as late (dead-lettered and counted), as any
//! late record is. This module holds only the bookkeeping, with time passed in, so it is
//! tested without waiting; the partition task reads the clock and calls the engine.

use std::time::{Duration, Instant};

/// How often an idle partition's clock is moved on.
pub const IDLE_TICK: Duration = Duration::from_secs(1);

/// When a partition is idle, and the event time its clock has reached.
#[derive(Debug, Clone)]
pub struct IdleClock {
    timeout: Option<Duration>,
    /// The engine's newest event time after the last record, and when that record came.
    last: Option<(i64, Instant)>,
    /// When the clock was last moved on while idle (`None`: not idle).
    advanced: Option<Instant>,
}

impl IdleClock {
    /// `timeout_ms` of 0 turns idleness off.
    pub fn new(timeout_ms: u64) -> IdleClock {
        IdleClock {
            timeout: (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms)),
            last: None,
            advanced: None,
        }
    }

    /// A record was processed at `now`; `newest` is the engine's newest event time after
    /// it. Returns whether the partition was idle until then.
    pub fn record(&mut self, newest: Option<i64>, now: Instant) -> bool {
        self.last = newest.map(|t| (t, now));
        self.advanced.take().is_some()
    }

    /// When [`IdleClock::due`] has something to say next; `None` while off, before the first
    /// event, or while `busy` (records are waiting to be processed).
    pub fn deadline(&self, busy: bool) -> Option<Instant> {
        let timeout = self.timeout?;
        let (_, at) = self.last?;
        if busy {
            return None;
        }
        Some(match self.advanced {
            Some(prev) => prev + IDLE_TICK,
            None => at.checked_add(timeout)?,
        })
    }

    /// The event time to move the partition's clock on to at `now`, if it has been idle
    /// for the timeout: the last record's newest event time plus the wall time since.
    pub fn due(&mut self, now: Instant) -> Option<i64> {
        let timeout = self.timeout?;
        let (newest, at) = self.last?;
        let quiet = now.checked_duration_since(at)?;
        if quiet < timeout {
            return None;
        }
        self.advanced = Some(now);
        let quiet_ms = i64::try_from(quiet.as_millis()).unwrap_or(i64::MAX);
        Some(newest.saturating_add(quiet_ms))
    }

    pub fn is_idle(&self) -> bool {
        self.advanced.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_773_000_000_000;

    #[test]
    fn off_or_before_the_first_event_there_is_nothing_to_do() {
        let now = Instant::now();
        let mut off = IdleClock::new(0);
        off.record(Some(T), now);
        assert_eq!(off.deadline(false), None);
        assert_eq!(off.due(now + Duration::from_secs(3600)), None);
        let mut fresh = IdleClock::new(1_000);
        assert_eq!(fresh.deadline(false), None);
        fresh.record(None, now);
        assert_eq!(fresh.due(now + Duration::from_secs(3600)), None);
    }

    #[test]
    fn after_the_timeout_the_clock_follows_the_wall_clock_from_the_last_record() {
        let now = Instant::now();
        let mut c = IdleClock::new(5_000);
        c.record(Some(T), now);
        assert_eq!(c.deadline(false), Some(now + Duration::from_secs(5)));
        assert_eq!(c.deadline(true), None, "records are waiting: not idle");
        assert_eq!(c.due(now + Duration::from_millis(4_999)), None);
        assert!(!c.is_idle());
        assert_eq!(c.due(now + Duration::from_secs(5)), Some(T + 5_000));
        assert!(c.is_idle());
        let next = now + Duration::from_secs(5) + IDLE_TICK;
        assert_eq!(c.deadline(false), Some(next));
        assert_eq!(c.due(now + Duration::from_secs(90)), Some(T + 90_000));
    }

    #[test]
    fn a_record_ends_idleness_and_restarts_the_timeout() {
        let now = Instant::now();
        let mut c = IdleClock::new(1_000);
        c.record(Some(T), now);
        assert!(c.due(now + Duration::from_secs(2)).is_some());
        let later = now + Duration::from_secs(3);
        assert!(c.record(Some(T + 2_000), later), "it was idle");
        assert!(!c.is_idle());
        assert_eq!(c.due(later + Duration::from_millis(500)), None);
        assert_eq!(
            c.due(later + Duration::from_secs(1)),
            Some(T + 3_000),
            "from the engine's clock after the record"
        );
    }
}
