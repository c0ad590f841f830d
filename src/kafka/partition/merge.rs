//! A partition's inputs merged by event time, as `replay` merges its files.
//!
//! CDR, account and outcome topics are co-partitioned, and each arrives in its own order.
//! Records wait here, per input, with the event time [`codec::peek_event_time`] read from
//! their bytes; the next one to process is the earliest head ([`Source::earliest`]: on a
//! tie CDRs, then account events, then outcomes).
//!
//! **An input with nothing buffered still counts** until it is idle: until it has delivered
//! nothing for `kafka.idle_timeout_ms` of wall-clock time. Being caught up with its log end
//! is not enough: after a broker failover one topic's records can reach the broker seconds
//! after another's, and a caught-up input then only means the broker has not received
//! them yet. While it counts, the inputs ahead go on only as far as the engine's state
//! allows without closing a day the lagging input may still write to
//! ([`crate::detect::watermark::Watermark::fits_ahead`]: within the allowed lateness and
//! the open days); then they wait (backpressure, bounded by the buffer, counted in
//! `churnwatch_input_alignment_waits_total`). The slowest input that counts holds the
//! engine's clock ([`InputMerge::hold`]), so no day closes before it is an allowed lateness
//! past it, and a record is late only against its own input. An input that has never
//! delivered anything (an empty outcome topic) does not count; one known to hold records
//! it has not received yet is waited for ([`BEHIND_WAIT`]), one whose log end is not known
//! yet briefly ([`ALIGNMENT_WAIT`]). Each input has its own queue, and a full buffer still
//! reads the inputs it holds nothing of ([`crate::kafka::partition`]), so a broker that
//! serves one topic's whole backlog before another's does not make the lagging input's
//! records queue behind the others. (Pausing the inputs ahead in librdkafka instead left a
//! resumed partition unfetched, now and then, for good.)
//!
//! [`codec::peek_event_time`]: crate::codec::peek_event_time

use std::time::{Duration, Instant};

use crate::driver::Source;

use super::lane::Lane;
pub(crate) use super::lane::{Held, Parts};

/// How long a partition waits for a lagging input whose log end it does not know yet
/// before processing the others anyway.
pub const ALIGNMENT_WAIT: Duration = Duration::from_secs(5);
/// How often a waiting partition asks again where its lagging inputs stand: librdkafka
/// learns a log end from a fetch response and tells no one.
pub const RECHECK: Duration = Duration::from_millis(50);
/// How long it waits for an input known to hold records it has not received (some
/// brokers serve one topic's backlog before another's); bounded, so an input that never
/// delivers (stuck behind a transaction marker) does not stall the partition.
pub const BEHIND_WAIT: Duration = Duration::from_secs(30);

/// How long an input with progress counts after its last delivery when
/// `kafka.idle_timeout_ms` is 0 (which turns off only the partition's wall-clock advance):
/// no input may hold a partition back for good.
pub const INPUT_IDLE_WHEN_OFF: Duration = Duration::from_secs(60);

/// Where an input stands against its log end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lag {
    /// Nothing more to read now.
    CaughtUp,
    /// The broker holds records not yet received.
    Behind,
    /// The log end is not known yet.
    Unknown,
}

/// The records of one partition not yet processed, per input.
#[derive(Default)]
pub(super) struct InputMerge {
    /// Per input, the newest event time it delivered and when it last delivered (or when
    /// the partition started, for progress restored from a checkpoint).
    progress: [Option<(i64, Instant)>; 3],
    /// An input with progress stops counting after delivering nothing for this long
    /// (`None`: never).
    idle_timeout: Option<Duration>,
    /// While inputs that count hold the others back: until the first of them goes idle.
    held_until: Option<Instant>,
    /// Waits begun for each input (by [`Source::index`]), for the metric.
    waits: [u64; 3],
    /// Inputs idle by the clock still waited for: the broker holds records they have not
    /// received (for up to [`BEHIND_WAIT`] after their last delivery).
    behind: [bool; 3],
    /// The inputs holding the others back at the last [`InputMerge::pop`].
    held_by: [bool; 3],
    /// Per input, by [`Source::index`].
    inputs: [Lane; 3],
    buffered: usize,
    /// Payload bytes buffered, all inputs together.
    bytes: usize,
    /// The offset after the last record received, per input.
    next_offset: [Option<i64>; 3],
    blocked_since: Option<Instant>,
    /// How long the current wait lasts: [`BEHIND_WAIT`] while an input known to be behind
    /// is lagging, else [`ALIGNMENT_WAIT`]; counted from the start of the wait.
    wait: Duration,
    /// The inputs the current wait is for.
    lagging: Vec<Source>,
    /// Inputs already waited out: the others go ahead until one of them delivers.
    waited_out: Vec<Source>,
}

impl InputMerge {
    /// A merge whose inputs resume at `next` (the offsets a restored checkpoint reflects):
    /// an input with nothing new since is caught up as soon as its log end is known, rather
    /// than behind until it delivers a record it does not have.
    pub(super) fn resuming_at(next: impl IntoIterator<Item = (Source, i64)>) -> InputMerge {
        let mut merge = InputMerge::default();
        for (source, offset) in next {
            merge.next_offset[source.index()] = Some(offset);
        }
        merge
    }

    /// Inputs with progress count until idle for `timeout` (`None`: always).
    pub(super) fn idle_after(mut self, timeout: Option<Duration>) -> InputMerge {
        self.idle_timeout = timeout;
        self
    }

    /// The progress a restored engine reflects for `source`: it counts from `now` as if it
    /// had just delivered, so a catch-up after a restart waits for it as for any input.
    pub(super) fn resume_progress(&mut self, source: Source, t: Option<i64>, now: Instant) {
        self.progress[source.index()] = t.map(|t| (t, now));
    }

    /// The clock the engine should hold at: the progress of the slowest input that still
    /// counts at `now` (`None`: none does).
    pub(super) fn hold(&self, now: Instant) -> Option<i64> {
        (0..3)
            .filter(|&i| self.counts(i, now) || self.behind[i])
            .filter_map(|i| self.progress[i].map(|(t, _)| t))
            .min()
    }

    /// The inputs that held the others back at the last [`InputMerge::pop`].
    pub(super) fn held_by(&self) -> impl Iterator<Item = Source> + '_ {
        [Source::Cdr, Source::Account, Source::Outcomes]
            .into_iter()
            .filter(|s| self.held_by[s.index()])
    }

    /// Waits begun for each input since the last call (by [`Source::index`]).
    pub(super) fn take_waits(&mut self) -> [u64; 3] {
        std::mem::take(&mut self.waits)
    }

    /// When an input last delivering at `at` goes idle.
    fn idle_at(&self, at: Instant, now: Instant) -> Instant {
        self.idle_timeout.map_or(now + BEHIND_WAIT, |t| at + t)
    }

    /// Whether input `i` has progress and has delivered within the idle timeout.
    fn counts(&self, i: usize, now: Instant) -> bool {
        match (self.progress[i], self.idle_timeout) {
            (Some(_), None) => true,
            (Some((_, at)), Some(timeout)) => now.saturating_duration_since(at) < timeout,
            (None, _) => false,
        }
    }

    /// Buffers a record read from `source` with its event time.
    #[cfg(test)]
    pub(super) fn push(
        &mut self,
        m: rdkafka::message::OwnedMessage,
        source: Source,
        time: i64,
        arrived: Instant,
    ) {
        self.push_parts(Parts::of(&m), source, time, arrived);
    }

    /// Buffers a record read from `source` with its event time: its parts, copied into
    /// the input's buffer.
    pub(super) fn push_parts(&mut self, r: Parts<'_>, source: Source, time: i64, arrived: Instant) {
        self.next_offset[source.index()] = Some(r.offset + 1);
        self.behind[source.index()] = false;
        let p = &mut self.progress[source.index()];
        *p = Some((p.map_or(time, |(t, _)| t.max(time)), arrived));
        self.bytes += r.payload.map_or(0, <[u8]>::len);
        if !self.waited_out.is_empty() {
            self.waited_out.retain(|s| *s != source);
        }
        self.inputs[source.index()].hold(r, time, arrived);
        self.buffered += 1;
    }

    /// The key and value of a record taken by [`InputMerge::pop`] (until the next push).
    pub(super) fn bytes_of(&self, source: Source, h: &Held) -> (Option<&[u8]>, Option<&[u8]>) {
        let lane = &self.inputs[source.index()];
        (lane.slice(h.key), lane.slice(h.payload))
    }

    /// Records buffered, all inputs together.
    pub(super) fn len(&self) -> usize {
        self.buffered
    }

    /// Whether a record of `source` is buffered.
    pub(super) fn holds(&self, source: Source) -> bool {
        !self.inputs[source.index()].held.is_empty()
    }

    /// Payload bytes buffered, all inputs together.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The record to process next with its input and arrival, or `None` to wait for input.
    /// `caught_up(source, next_offset)` says whether an input has nothing more to read;
    /// `now` starts the alignment wait.
    pub(super) fn pop(
        &mut self,
        now: Instant,
        caught_up: impl FnMut(Source, Option<i64>) -> Lag,
        fits: impl Fn(i64, i64) -> bool,
    ) -> Option<(Held, Source, Instant)> {
        let source = self.next_source(now, caught_up, fits)?;
        let h = self.inputs[source.index()].take()?;
        self.buffered -= 1;
        self.bytes -= h.payload.map_or(0, |(a, b)| b - a);
        let arrived = h.arrived;
        Some((h, source, arrived))
    }

    /// When the wait for a lagging input ends, if one is holding the others back.
    pub(super) fn wait_deadline(&self) -> Option<Instant> {
        let lagging = self.blocked_since.map(|t| t + self.wait);
        match (lagging, self.held_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The wait for the lagging inputs is over: the others go ahead, at full speed, until
    /// one of those delivers a record.
    pub(super) fn wait_over(&mut self) -> Vec<Source> {
        let lagging = std::mem::take(&mut self.lagging);
        self.waited_out.extend_from_slice(&lagging);
        self.blocked_since = None;
        lagging
    }

    /// The offset after the last record received from `source` (or resumed at).
    pub(super) fn next_offset(&self, source: Source) -> Option<i64> {
        self.next_offset[source.index()]
    }

    fn head(&self, s: Source) -> Option<i64> {
        self.inputs[s.index()].held.front().map(|h| h.time)
    }

    fn next_source(
        &mut self,
        now: Instant,
        mut caught_up: impl FnMut(Source, Option<i64>) -> Lag,
        fits: impl Fn(i64, i64) -> bool,
    ) -> Option<Source> {
        // Outcomes are merged too: a RETAINED outcome then suppresses what it does in replay.
        let source = Source::earliest(
            self.head(Source::Cdr),
            self.head(Source::Account),
            self.head(Source::Outcomes),
        )?;
        let head = self.head(source)?;
        self.held_by = [false; 3];
        let mut held_until: Option<Instant> = None;
        let mut lagging = Vec::new();
        for other in [Source::Cdr, Source::Account, Source::Outcomes] {
            if other == source || self.head(other).is_some() {
                continue;
            }
            let i = other.index();
            if let Some((progress, at)) = self.progress[i] {
                self.behind[i] = false;
                if fits(head, progress) {
                    continue;
                }
                let mut until = self.counts(i, now).then(|| self.idle_at(at, now));
                // Idle by the clock, but the broker holds records it has not received
                // (a broker serving another topic's backlog first): still not idle.
                if until.is_none()
                    && now < at + BEHIND_WAIT
                    && caught_up(other, self.next_offset[i]) == Lag::Behind
                {
                    self.behind[i] = true;
                    until = Some(at + BEHIND_WAIT);
                }
                if let Some(until) = until {
                    self.held_by[i] = true;
                    held_until = Some(held_until.map_or(until, |h| h.min(until)));
                    if self.held_until.is_none() {
                        self.waits[i] += 1;
                    }
                }
            } else if !self.waited_out.contains(&other) {
                let lag = caught_up(other, self.next_offset[i]);
                if lag != Lag::CaughtUp {
                    lagging.push((other, lag));
                }
            }
        }
        self.held_until = held_until;
        if lagging.is_empty() {
            self.blocked_since = None;
            self.lagging.clear();
            return held_until.is_none().then_some(source);
        }
        let behind = lagging.iter().any(|(_, lag)| *lag == Lag::Behind);
        self.wait = if behind { BEHIND_WAIT } else { ALIGNMENT_WAIT };
        if self.blocked_since.is_none() {
            for (s, _) in &lagging {
                self.waits[s.index()] += 1;
            }
        }
        self.lagging = lagging.into_iter().map(|(s, _)| s).collect();
        self.blocked_since.get_or_insert(now);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::OwnedMessage;
    use rdkafka::Timestamp;

    fn record(offset: i64) -> OwnedMessage {
        let topic = String::from("t");
        OwnedMessage::new(None, None, topic, Timestamp::NotAvailable, 0, offset, None)
    }

    fn ahead_ok(_: i64, _: i64) -> bool {
        true
    }

    fn lag(caught_up: bool) -> Lag {
        if caught_up {
            Lag::CaughtUp
        } else {
            Lag::Unknown
        }
    }

    fn offsets(m: &mut InputMerge, now: Instant, caught_up: bool) -> Vec<(Source, i64)> {
        std::iter::from_fn(|| m.pop(now, |_, _| lag(caught_up), ahead_ok))
            .map(|(r, s, _)| (s, r.offset))
            .collect()
    }

    #[test]
    fn inputs_that_have_caught_up_merge_by_event_time() {
        let now = Instant::now();
        let mut m = InputMerge::default();
        m.push(record(0), Source::Cdr, 30, now);
        m.push(record(1), Source::Cdr, 10, now);
        m.push(record(0), Source::Account, 20, now);
        m.push(record(0), Source::Outcomes, 10, now);
        assert_eq!(m.len(), 4);
        let order = offsets(&mut m, now, true);
        assert_eq!(
            order,
            vec![
                (Source::Outcomes, 0),
                (Source::Account, 0),
                (Source::Cdr, 0),
                (Source::Cdr, 1)
            ],
            "heads merge by time; each input keeps its own order"
        );
        assert_eq!(m.len(), 0);
    }

    #[test]
    fn a_lagging_input_is_waited_for_until_the_alignment_wait_ends() {
        let now = Instant::now();
        let mut m = InputMerge::default();
        m.push(record(7), Source::Cdr, 10, now);
        let asked = std::cell::RefCell::new(Vec::new());
        let lagging = |s: Source, next: Option<i64>| {
            asked.borrow_mut().push((s, next));
            Lag::Unknown
        };
        assert!(m.pop(now, lagging, ahead_ok).is_none());
        assert_eq!(m.wait_deadline(), Some(now + ALIGNMENT_WAIT));
        assert!(asked.borrow().contains(&(Source::Account, None)));
        let later = now + Duration::from_secs(1);
        assert!(m.pop(later, |_, _| Lag::Unknown, ahead_ok).is_none());
        assert_eq!(m.wait_deadline(), Some(now + ALIGNMENT_WAIT), "kept");
        m.wait_over();
        let (r, s, _) = m.pop(later, |_, _| Lag::Unknown, ahead_ok).unwrap();
        assert_eq!((s, r.offset), (Source::Cdr, 7));
        assert_eq!(m.wait_deadline(), None);
        m.push(record(8), Source::Cdr, 11, later);
        let (r, _, _) = m
            .pop(later, |_, _| Lag::Unknown, ahead_ok)
            .expect("full speed after the wait");
        assert_eq!(r.offset, 8);
        m.push(record(0), Source::Account, 12, later);
        m.push(record(9), Source::Cdr, 13, later);
        let _ = m
            .pop(later, |_, _| Lag::Unknown, ahead_ok)
            .expect("the lagging input delivered");
        assert!(
            m.pop(later, |_, _| Lag::Unknown, |head, held| head <= held)
                .is_none(),
            "and, as it counts, is not run ahead of"
        );
    }

    #[test]
    fn the_wait_follows_the_inputs_lagging_now() {
        let now = Instant::now();
        let mut m = InputMerge::default();
        m.push(record(0), Source::Cdr, 10, now);
        let behind = |s: Source, _| match s {
            Source::Account => Lag::Behind,
            _ => Lag::Unknown,
        };
        assert!(m.pop(now, behind, ahead_ok).is_none());
        assert_eq!(m.wait_deadline(), Some(now + BEHIND_WAIT));
        m.push(record(0), Source::Account, 20, now);
        let later = now + Duration::from_secs(1);
        assert!(
            m.pop(later, |_, _| Lag::Unknown, ahead_ok).is_none(),
            "outcomes unknown"
        );
        assert_eq!(
            m.wait_deadline(),
            Some(now + ALIGNMENT_WAIT),
            "the input behind delivered: what is left is a wait for a log end, from the start"
        );
        let (_, s, _) = m
            .pop(later, |_, _| Lag::CaughtUp, ahead_ok)
            .expect("log end known");
        assert_eq!(s, Source::Cdr);
    }

    #[test]
    fn an_input_resumed_at_its_log_end_does_not_hold_the_others() {
        let now = Instant::now();
        let mut m = InputMerge::resuming_at([(Source::Outcomes, 40)]);
        m.push(record(3), Source::Cdr, 5, now);
        let ends = |s: Source, next: Option<i64>| match (s, next) {
            (Source::Outcomes, Some(next)) if next >= 40 => Lag::CaughtUp,
            (Source::Outcomes, _) => Lag::Behind,
            _ => Lag::CaughtUp,
        };
        let (_, s, _) = m.pop(now, ends, ahead_ok).expect("nothing to wait for");
        assert_eq!(s, Source::Cdr);
        assert_eq!(m.wait_deadline(), None);
    }

    #[test]
    fn the_offset_read_last_tells_whether_an_input_caught_up() {
        let now = Instant::now();
        let mut m = InputMerge::default();
        m.push(record(4), Source::Account, 5, now);
        m.push(record(9), Source::Cdr, 5, now);
        let _ = offsets(&mut m, now, true);
        m.push(record(10), Source::Cdr, 6, now);
        let asked = std::cell::RefCell::new(Vec::new());
        let (_, s, _) = m
            .pop(
                now,
                |s, next| {
                    asked.borrow_mut().push((s, next));
                    Lag::CaughtUp
                },
                ahead_ok,
            )
            .unwrap();
        assert_eq!(s, Source::Cdr);
        assert_eq!(
            *asked.borrow(),
            vec![(Source::Outcomes, None)],
            "the account input delivered: it counts by its progress, not its log end"
        );
    }

    #[test]
    fn a_caught_up_input_holds_the_others_until_it_is_idle() {
        let now = Instant::now();
        let mut m = InputMerge::default().idle_after(Some(Duration::from_secs(10)));
        m.push(record(0), Source::Account, 100, now);
        m.push(record(0), Source::Cdr, 50, now);
        m.push(record(1), Source::Cdr, 200, now);
        let fits = |head: i64, held: i64| head <= held + 50;
        let caught_up = |_, _| Lag::CaughtUp;
        let order: Vec<_> = std::iter::from_fn(|| m.pop(now, caught_up, fits))
            .map(|(r, s, _)| (s, r.offset))
            .collect();
        assert_eq!(order, vec![(Source::Cdr, 0), (Source::Account, 0)]);
        assert_eq!(m.hold(now), Some(100), "the account input holds the clock");
        assert_eq!(m.wait_deadline(), Some(now + Duration::from_secs(10)));
        assert_eq!(m.take_waits(), [0, 1, 0], "one wait, for the account input");
        let later = now + Duration::from_secs(9);
        assert!(
            m.pop(later, caught_up, fits).is_none(),
            "caught up is not idle"
        );
        assert_eq!(m.take_waits(), [0, 0, 0], "the same wait");
        let idle = now + Duration::from_secs(10);
        let (r, s, _) = m
            .pop(idle, caught_up, fits)
            .expect("idle: no longer counts");
        assert_eq!((s, r.offset), (Source::Cdr, 1));
        assert_eq!(m.hold(idle), None);
        assert_eq!(m.wait_deadline(), None);
    }

    #[test]
    fn progress_restored_at_start_counts_from_the_start() {
        let now = Instant::now();
        let mut m = InputMerge::resuming_at([(Source::Account, 7)])
            .idle_after(Some(Duration::from_secs(10)));
        m.resume_progress(Source::Account, Some(100), now);
        m.push(record(0), Source::Cdr, 300, now);
        let fits = |head: i64, held: i64| head <= held + 50;
        assert!(m.pop(now, |_, _| Lag::CaughtUp, fits).is_none());
        assert_eq!(m.hold(now), Some(100));
        m.push(record(7), Source::Account, 280, now);
        assert_eq!(
            m.pop(now, |_, _| Lag::CaughtUp, fits).unwrap().1,
            Source::Account
        );
        assert_eq!(
            m.pop(now, |_, _| Lag::CaughtUp, fits).unwrap().1,
            Source::Cdr
        );
    }
}
