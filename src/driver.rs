//! The one driver: decoded records from any source, in event-time order, through the
//! engine. The Kafka partition task, `replay`, the in-process demo and the benchmarks all
//! feed it, so a record means the same thing wherever it comes from: it is validated, held
//! to the future-skew bound when a wall clock is given, applied (a CDR or account event) or
//! fed back (an outcome), and what it yields is tickets, or the [`Reason`] it is set aside.
//!
//! Which input goes next is decided here too ([`Source::earliest`]), so a backtest merges
//! its files by the rule the live service merges its topics by. Reading bytes (Kafka values,
//! files) stays with the adapters and `codec`; the driver sees decoded messages only.

use crate::codec::{self, DecodeError};
use crate::detect::{Applied, Engine, Event, OutcomeKind};
use crate::proto::{self, CareTicket};

/// Which input a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Cdr,
    Account,
    Outcomes,
}

impl Source {
    /// The input whose head record goes to the engine next, given each input's head event
    /// time (`None`: nothing waiting): the earliest, and on a tie CDRs, then account
    /// events, then outcomes. `replay` and the Kafka service merge by this one rule, which
    /// is why a backtest gives the tickets the live service gives.
    pub fn earliest(
        cdr: Option<i64>,
        account: Option<i64>,
        outcomes: Option<i64>,
    ) -> Option<Source> {
        [
            (Source::Cdr, cdr),
            (Source::Account, account),
            (Source::Outcomes, outcomes),
        ]
        .into_iter()
        .filter_map(|(s, t)| t.map(|t| (s, t)))
        .min_by_key(|&(_, t)| t)
        .map(|(s, _)| s)
    }

    /// The input's place in per-input arrays: 0, 1, 2.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Cdr => "cdr",
            Source::Account => "account",
            Source::Outcomes => "outcomes",
        }
    }
}

/// Why a record is set aside (published to the dead-letter topic by the Kafka adapter,
/// reported by `replay`).
///
/// A [`Reason`] has two faces. Its text is the `reason` header, for people; its
/// [`Reason::kind`] is a metric label, one of seven words, so the label stays bounded.
/// Neither holds a subscriber number: no variant carries one, and codec masks digit runs in
/// the decode errors it quotes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Reason {
    /// The record has no value.
    #[error("record has no value")]
    Empty,
    /// The value is larger than `kafka.max_message_bytes`.
    #[error("record of {bytes} bytes exceeds {limit} bytes")]
    Oversize { bytes: usize, limit: usize },
    /// The value is not a message in the input format.
    #[error("{0}")]
    Decode(DecodeError),
    /// The message decodes but fails validation (subscriber, record type, event time, ...).
    #[error("{0}")]
    Invalid(DecodeError),
    /// The event time is more than `kafka.max_future_skew_ms` ahead of the wall clock.
    #[error("event time {event_time_ms} is ahead of the clock")]
    Future { event_time_ms: i64 },
    /// The event time is older than the watermark: beyond the allowed lateness.
    #[error(
        "event time {event_time_ms} is beyond the allowed lateness (older than the watermark)"
    )]
    Late { event_time_ms: i64 },
    /// Its partition task failed while processing it; set aside when the restarted task
    /// came to it again, so the partition goes on.
    #[error("the partition task failed while processing this record; set aside after its restart")]
    Failed,
}

impl Reason {
    /// The bounded metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            Reason::Empty => "empty",
            Reason::Oversize { .. } => "oversize",
            Reason::Decode(_) => "decode",
            Reason::Invalid(_) => "invalid",
            Reason::Future { .. } => "future",
            Reason::Late { .. } => "late",
            Reason::Failed => "failed",
        }
    }

    /// Whether the record itself is malformed (also counted as a decode error), rather
    /// than well formed but out of time or too large.
    pub fn is_malformed(&self) -> bool {
        matches!(self, Reason::Empty | Reason::Decode(_) | Reason::Invalid(_))
    }
}

/// A decoded record from any source.
#[derive(Debug, Clone, Copy)]
pub enum Record<'a> {
    Cdr(&'a proto::CallDetailRecord),
    Account(&'a proto::AccountEvent),
    Outcome(&'a proto::TicketOutcome),
}

/// What the driver did with a record it did not set aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fed {
    /// Folded into the engine; tickets it raised went to the caller's buffer.
    Accepted { event_time_ms: i64 },
    /// Seen before within the de-duplication horizon: nothing changed.
    Duplicate { event_time_ms: i64 },
    /// Call-center feedback, applied.
    Outcome {
        event_time_ms: i64,
        outcome: OutcomeKind,
    },
}

impl Fed {
    pub fn event_time_ms(self) -> i64 {
        match self {
            Fed::Accepted { event_time_ms }
            | Fed::Duplicate { event_time_ms }
            | Fed::Outcome { event_time_ms, .. } => event_time_ms,
        }
    }
}

/// The engine of one partition (or one backtest), fed record by record.
pub struct Driver {
    engine: Engine,
    /// How far ahead of the wall clock an event time may be, when a clock is given.
    max_future_skew_ms: i64,
}

impl Driver {
    pub fn new(engine: Engine, max_future_skew_ms: i64) -> Driver {
        Driver {
            engine,
            max_future_skew_ms,
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    pub fn into_engine(self) -> Engine {
        self.engine
    }

    /// Feeds one record; tickets it raises (or corrects) are appended to `tickets`. With
    /// `now_ms` (a live source's wall clock), event times far in the future are refused;
    /// bounded inputs pass `None`.
    pub fn feed(
        &mut self,
        record: Record<'_>,
        now_ms: Option<i64>,
        tickets: &mut Vec<CareTicket>,
    ) -> Result<Fed, Reason> {
        let event = match record {
            Record::Cdr(m) => Event::Cdr(codec::cdr_from_proto(m).map_err(Reason::Invalid)?),
            Record::Account(m) => {
                Event::Account(codec::account_from_proto(m).map_err(Reason::Invalid)?)
            }
            Record::Outcome(m) => {
                let o = codec::outcome_from_proto(m).map_err(Reason::Invalid)?;
                self.engine.apply_outcome(&o);
                return Ok(Fed::Outcome {
                    event_time_ms: o.time_ms,
                    outcome: o.outcome,
                });
            }
        };
        self.feed_event(&event, now_ms, tickets)
    }

    /// Feeds an event already decoded and validated (a benchmark's synthetic history).
    pub fn feed_event(
        &mut self,
        event: &Event<'_>,
        now_ms: Option<i64>,
        tickets: &mut Vec<CareTicket>,
    ) -> Result<Fed, Reason> {
        let event_time_ms = event.time_ms();
        self.admits(event_time_ms, now_ms)?;
        match self.engine.apply(event, tickets) {
            Applied::Accepted => Ok(Fed::Accepted { event_time_ms }),
            Applied::Duplicate => Ok(Fed::Duplicate { event_time_ms }),
            Applied::Late => Err(Reason::Late { event_time_ms }),
        }
    }

    /// Whether an event time may be applied: not more than `max_future_skew_ms` ahead of
    /// the wall clock `now_ms`, when one is given.
    pub fn admits(&self, event_time_ms: i64, now_ms: Option<i64>) -> Result<(), Reason> {
        match now_ms {
            Some(now) if event_time_ms > now.saturating_add(self.max_future_skew_ms) => {
                Err(Reason::Future { event_time_ms })
            }
            _ => Ok(()),
        }
    }

    /// Applies events already admitted ([`Driver::admits`]) in order, with the engine's
    /// prefetch pass ([`Engine::apply_batch`]): what became of each, with the length of
    /// `tickets` after it; `starting(i)` before event `i`.
    pub fn feed_batch(
        &mut self,
        events: &[Event<'_>],
        tickets: &mut Vec<CareTicket>,
        applied: &mut Vec<(Applied, usize)>,
        starting: impl FnMut(usize),
    ) {
        self.engine.apply_batch(events, tickets, applied, starting);
    }

    /// Applies call-center feedback (an outcome decoded and validated).
    pub fn feed_outcome(&mut self, o: &crate::detect::TicketOutcomeEvent<'_>) {
        self.engine.apply_outcome(o);
    }

    /// Moves event time on without a record (an idle live source; see the engine).
    pub fn advance_to(&mut self, t: i64, tickets: &mut Vec<CareTicket>) {
        self.engine.advance_to(t, tickets);
    }

    /// Holds the clock days close on (see [`crate::detect::watermark`]); tickets of the
    /// days that close now go to `tickets`.
    pub fn hold_clock(&mut self, hold: Option<i64>, tickets: &mut Vec<CareTicket>) {
        self.engine.hold_clock(hold, tickets);
    }

    /// End of a bounded input: every day it covers is judged.
    pub fn finish(&mut self, tickets: &mut Vec<CareTicket>) {
        self.engine.finish(tickets);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const NOW: i64 = 1_773_100_000_000;

    fn cdr(id: &str, t: i64, other: &str, dur: u32) -> proto::CallDetailRecord {
        proto::CallDetailRecord {
            record_id: id.into(),
            subscriber: "8613012345678".into(),
            event_time_ms: t,
            r#type: proto::RecordType::VoiceOut as i32,
            other_party: other.into(),
            duration_s: dur,
            ..Default::default()
        }
    }

    #[test]
    fn records_are_applied_or_set_aside_with_their_reason() {
        let engine = Engine::new(&Config::default(), &[]).unwrap();
        let mut d = Driver::new(engine, 3_600_000);
        let mut out = Vec::new();
        let care = cdr("r1", NOW - 1000, "10086", 300);
        assert!(matches!(
            d.feed(Record::Cdr(&care), Some(NOW), &mut out),
            Ok(Fed::Accepted { .. })
        ));
        assert_eq!(out.len(), 1);
        assert!(matches!(
            d.feed(Record::Cdr(&care), Some(NOW), &mut out),
            Ok(Fed::Duplicate { .. })
        ));
        let future = cdr("r2", NOW + 86_400_000, "1", 1);
        let err = d.feed(Record::Cdr(&future), Some(NOW), &mut out);
        assert_eq!(err.map_err(|r| r.kind()), Err("future"));
        // Without a clock (a file), the future bound does not apply.
        assert!(d.feed(Record::Cdr(&future), None, &mut out).is_ok());
        let old = cdr("r3", NOW - 10 * 86_400_000, "1", 1);
        let err = d.feed(Record::Cdr(&old), None, &mut out);
        assert_eq!(err.map_err(|r| r.kind()), Err("late"));
        let mut bad = cdr("r4", NOW, "1", 1);
        bad.subscriber = "abc".into();
        let err = d.feed(Record::Cdr(&bad), None, &mut out);
        assert_eq!(err.map_err(|r| r.kind()), Err("invalid"));
    }

    /// Feeds `n` distinct plain calls (ids `{prefix}{i}`), one second apart from `NOW`.
    fn flood(d: &mut Driver, prefix: &str, n: i64) {
        let mut out = Vec::new();
        for i in 0..n {
            let r = cdr(&format!("{prefix}{i}"), NOW + i % 1000, "13800000000", 60);
            assert!(matches!(
                d.feed(Record::Cdr(&r), None, &mut out),
                Ok(Fed::Accepted { .. })
            ));
        }
    }

    #[test]
    fn state_bytes_grow_with_the_de_duplication_ids() {
        let engine = Engine::new(&Config::default(), &[]).unwrap();
        let mut d = Driver::new(engine, 3_600_000);
        flood(&mut d, "a", 1);
        let one = d.engine().state_bytes();
        flood(&mut d, "b", 10_000);
        let more = d.engine().state_bytes();
        // 4-byte fingerprints at up to 95% full (see `detect::dedup`).
        assert!(more >= one + 10_000 * 4, "{one} -> {more}");
    }

    #[test]
    fn the_de_duplication_cap_holds_under_a_flood_of_distinct_ids() {
        let mut cfg = Config::default();
        cfg.detect.engine.max_dedup_ids = 1_000;
        let mut d = Driver::new(Engine::new(&cfg, &[]).unwrap(), 3_600_000);
        flood(&mut d, "a", 1_000);
        let at_cap = d.engine().state_bytes();
        flood(&mut d, "b", 50_000);
        let stats = d.engine().stats();
        assert!(
            stats.dedup_ids_dropped >= 50_000,
            "{}",
            stats.dedup_ids_dropped
        );
        assert!(
            stats.dedup_ids_dropped <= 51_000 - 900,
            "{}",
            stats.dedup_ids_dropped
        );
        // The sets are not regrown past the cap.
        assert!(d.engine().state_bytes() <= at_cap + 16 * 1024, "{at_cap}");
        // The newest ids are still recognised.
        let mut out = Vec::new();
        let last = cdr("b49999", NOW + 49_999 % 1000, "13800000000", 60);
        assert!(matches!(
            d.feed(Record::Cdr(&last), None, &mut out),
            Ok(Fed::Duplicate { .. })
        ));
    }
}
