//! A partition's inputs merged by event time, as `replay` merges its files.
//!
//! CDR, account and outcome topics are co-partitioned, and each arrives in its own order.
//! Records wait here, per input, with the event time [`codec::peek_event_time`] read from
//! their bytes; the next one to process is the earliest head ([`Source::earliest`]: on a
//! tie CDRs, then account events, then outcomes). An input with nothing buffered holds the
//! others back unless it has caught up with its log end, or has kept them waiting for
//! [`ALIGNMENT_WAIT`]: a lagging topic must not reorder a subscriber's records, and a
//! silent one must not stall the partition. Each input has its own queue, and a full
//! buffer still reads the inputs it holds nothing of ([`crate::kafka::partition`]), so a broker
//! that serves one topic's whole backlog before another's does not make the lagging
//! input's records queue behind the others. Once the wait is over the others go ahead at
//! full speed until the lagging input delivers or catches up. (Pausing the inputs ahead in
//! librdkafka instead left a resumed partition unfetched, now and then, for good.)
//!
//! [`codec::peek_event_time`]: crate::codec::peek_event_time

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::Timestamp;

use crate::driver::Source;

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

/// A record waiting its turn: where its bytes are in its input's [`Lane`], its event time
/// and when it arrived. The bytes stay valid until the next [`InputMerge::push`].
#[derive(Debug, Clone)]
pub(super) struct Held {
    pub offset: i64,
    pub timestamp: Timestamp,
    /// Headers are rare on CDRs: only a record that has them costs an allocation.
    pub headers: Option<Box<OwnedHeaders>>,
    time: i64,
    arrived: Instant,
    key: Option<(usize, usize)>,
    payload: Option<(usize, usize)>,
}

/// One record's parts as read, before they are copied into a [`Lane`].
pub(super) struct Parts<'a> {
    pub offset: i64,
    pub timestamp: Timestamp,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
    pub headers: Option<Box<OwnedHeaders>>,
}

impl<'a> Parts<'a> {
    /// The parts of `m` (owned or borrowed from librdkafka), headers copied.
    pub fn of<M: Message>(m: &'a M) -> Parts<'a> {
        let headers = m.headers().map(|h| {
            let copy = h
                .iter()
                .fold(OwnedHeaders::new_with_capacity(h.count()), |c, h| {
                    c.insert(Header {
                        key: h.key,
                        value: h.value,
                    })
                });
            Box::new(copy)
        });
        Parts {
            offset: m.offset(),
            timestamp: m.timestamp(),
            key: m.key(),
            payload: m.payload(),
            headers,
        }
    }
}

/// One input's buffered records: their bytes back to back in one buffer that is reused,
/// so buffering a record allocates nothing once the buffer has grown.
#[derive(Default)]
struct Lane {
    held: VecDeque<Held>,
    bytes: Vec<u8>,
    /// Bytes at the front already taken.
    taken: usize,
}

impl Lane {
    fn copy(&mut self, b: Option<&[u8]>) -> Option<(usize, usize)> {
        let b = b?;
        let start = self.bytes.len();
        self.bytes.extend_from_slice(b);
        Some((start, self.bytes.len()))
    }

    /// Drops the bytes already taken once they are most of the buffer.
    fn compact(&mut self) {
        if self.held.is_empty() {
            self.bytes.clear();
            self.taken = 0;
        } else if self.taken > 1 << 20 && self.taken > self.bytes.len() / 2 {
            let cut = self.taken;
            self.bytes.drain(..cut);
            self.taken = 0;
            let shift = |r: &mut Option<(usize, usize)>| {
                if let Some((a, b)) = r {
                    *a -= cut;
                    *b -= cut;
                }
            };
            for h in &mut self.held {
                shift(&mut h.key);
                shift(&mut h.payload);
            }
        }
    }

    fn slice(&self, r: Option<(usize, usize)>) -> Option<&[u8]> {
        r.map(|(a, b)| &self.bytes[a..b])
    }
}

/// The records of one partition not yet processed, per input.
#[derive(Default)]
pub(super) struct InputMerge {
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
        self.bytes += r.payload.map_or(0, <[u8]>::len);
        if !self.waited_out.is_empty() {
            self.waited_out.retain(|s| *s != source);
        }
        let lane = &mut self.inputs[source.index()];
        lane.compact();
        let key = lane.copy(r.key);
        let payload = lane.copy(r.payload);
        lane.held.push_back(Held {
            offset: r.offset,
            timestamp: r.timestamp,
            headers: r.headers,
            time,
            arrived,
            key,
            payload,
        });
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
    ) -> Option<(Held, Source, Instant)> {
        let source = self.next_source(now, caught_up)?;
        let lane = &mut self.inputs[source.index()];
        let h = lane.held.pop_front()?;
        lane.taken = h.payload.or(h.key).map_or(lane.taken, |(_, end)| end);
        self.buffered -= 1;
        self.bytes -= h.payload.map_or(0, |(a, b)| b - a);
        let arrived = h.arrived;
        Some((h, source, arrived))
    }

    /// When the wait for a lagging input ends, if one is holding the others back.
    pub(super) fn wait_deadline(&self) -> Option<Instant> {
        self.blocked_since.map(|t| t + self.wait)
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
    ) -> Option<Source> {
        // Outcomes are merged too: a RETAINED outcome then suppresses what it does in replay.
        let source = Source::earliest(
            self.head(Source::Cdr),
            self.head(Source::Account),
            self.head(Source::Outcomes),
        )?;
        let lagging: Vec<(Source, Lag)> = [Source::Cdr, Source::Account, Source::Outcomes]
            .into_iter()
            .filter(|s| *s != source && self.head(*s).is_none())
            .filter(|other| !self.waited_out.contains(other))
            .map(|other| (other, caught_up(other, self.next_offset[other.index()])))
            .filter(|(_, lag)| *lag != Lag::CaughtUp)
            .collect();
        if lagging.is_empty() {
            self.blocked_since = None;
            return Some(source);
        }
        let behind = lagging.iter().any(|(_, lag)| *lag == Lag::Behind);
        self.wait = if behind { BEHIND_WAIT } else { ALIGNMENT_WAIT };
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

    fn lag(caught_up: bool) -> Lag {
        if caught_up {
            Lag::CaughtUp
        } else {
            Lag::Unknown
        }
    }

    fn offsets(m: &mut InputMerge, now: Instant, caught_up: bool) -> Vec<(Source, i64)> {
        std::iter::from_fn(|| m.pop(now, |_, _| lag(caught_up)))
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
        assert!(m.pop(now, lagging).is_none());
        assert_eq!(m.wait_deadline(), Some(now + ALIGNMENT_WAIT));
        assert!(asked.borrow().contains(&(Source::Account, None)));
        let later = now + Duration::from_secs(1);
        assert!(m.pop(later, |_, _| Lag::Unknown).is_none());
        assert_eq!(m.wait_deadline(), Some(now + ALIGNMENT_WAIT), "kept");
        m.wait_over();
        let (r, s, _) = m.pop(later, |_, _| Lag::Unknown).unwrap();
        assert_eq!((s, r.offset), (Source::Cdr, 7));
        assert_eq!(m.wait_deadline(), None);
        m.push(record(8), Source::Cdr, 11, later);
        let (r, _, _) = m
            .pop(later, |_, _| Lag::Unknown)
            .expect("full speed after the wait");
        assert_eq!(r.offset, 8);
        m.push(record(0), Source::Account, 12, later);
        m.push(record(9), Source::Cdr, 13, later);
        let _ = m
            .pop(later, |_, _| Lag::Unknown)
            .expect("the lagging input delivered");
        assert!(
            m.pop(later, |_, _| Lag::Unknown).is_none(),
            "and is waited for again"
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
        assert!(m.pop(now, behind).is_none());
        assert_eq!(m.wait_deadline(), Some(now + BEHIND_WAIT));
        m.push(record(0), Source::Account, 20, now);
        let later = now + Duration::from_secs(1);
        assert!(
            m.pop(later, |_, _| Lag::Unknown).is_none(),
            "outcomes unknown"
        );
        assert_eq!(
            m.wait_deadline(),
            Some(now + ALIGNMENT_WAIT),
            "the input behind delivered: what is left is a wait for a log end, from the start"
        );
        let (_, s, _) = m.pop(later, |_, _| Lag::CaughtUp).expect("log end known");
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
        let (_, s, _) = m.pop(now, ends).expect("nothing to wait for");
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
            .pop(now, |s, next| {
                asked.borrow_mut().push((s, next));
                Lag::CaughtUp
            })
            .unwrap();
        assert_eq!(s, Source::Cdr);
        assert_eq!(
            *asked.borrow(),
            vec![(Source::Account, Some(5)), (Source::Outcomes, None)]
        );
    }

    #[test]
    fn buffered_bytes_survive_the_buffer_being_reused_and_compacted() {
        let now = Instant::now();
        let mut m = InputMerge::default();
        let value = |o: i64| format!("{o:08}").repeat(1000).into_bytes();
        let key = |o: i64| format!("k{o}").into_bytes();
        let push = |m: &mut InputMerge, o: i64| {
            let (v, k) = (value(o), key(o));
            let parts = Parts {
                offset: o,
                timestamp: Timestamp::NotAvailable,
                key: Some(&k),
                payload: Some(&v),
                headers: None,
            };
            m.push_parts(parts, Source::Cdr, o, now);
        };
        let mut next = 0;
        for round in 0..6 {
            // Take most of what is buffered, then buffer more: the buffer is compacted
            // once the taken bytes pass a MiB, with records still waiting behind them.
            for _ in 0..300 {
                push(&mut m, round * 1000 + next % 1000);
                next += 1;
            }
            while m.len() > 50 {
                let (h, s, _) = m.pop(now, |_, _| Lag::CaughtUp).unwrap();
                let (k, v) = m.bytes_of(s, &h);
                assert_eq!(v, Some(&value(h.offset)[..]), "offset {}", h.offset);
                assert_eq!(k, Some(&key(h.offset)[..]));
            }
        }
        assert_eq!(m.bytes(), 50 * 8000);
        assert!(m.inputs[0].bytes.len() < 4 << 20, "compacted, not grown");
    }

    #[test]
    fn a_record_keeps_its_headers_for_its_dead_letter() {
        let now = Instant::now();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "trace",
                value: Some("t-1"),
            })
            .insert(Header {
                key: "empty",
                value: None::<&[u8]>,
            });
        let m = OwnedMessage::new(
            Some(b"v".to_vec()),
            None,
            "t".into(),
            Timestamp::NotAvailable,
            0,
            3,
            Some(headers),
        );
        let mut merge = InputMerge::default();
        merge.push(m, Source::Cdr, 1, now);
        let (h, _, _) = merge.pop(now, |_, _| Lag::CaughtUp).unwrap();
        let kept = h.headers.expect("headers kept");
        let all: Vec<(String, Option<Vec<u8>>)> = kept
            .iter()
            .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
            .collect();
        assert_eq!(
            all,
            vec![
                ("trace".into(), Some(b"t-1".to_vec())),
                ("empty".into(), None)
            ]
        );
    }
}
