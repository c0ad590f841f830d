//! One partition's processing, free of I/O: a batch of raw records in, a typed result per
//! record out. Bytes are checked for size and decoded (codec) here; everything after is the
//! one [`Driver`] that `replay`, the demo and the benchmarks use too, and the events of a
//! batch go to the engine together ([`Driver::feed_batch`]: the prefetch pass `bench
//! engine` measures). The Kafka partition task feeds it and publishes what it returns;
//! tests drive it directly.
//!
//! Bad input never stops the line: a record that is too large, does not decode, fails
//! validation or is far in the future is [`Outcome::Rejected`] with a dead-letter
//! [`Reason`]; one beyond the allowed lateness is [`Outcome::Late`]; and the next record is
//! processed. The decoded messages live in slots reused from batch to batch, so a record
//! costs no allocation of its own.

use std::ops::Range;

use crate::codec;
use crate::config::{Config, ConfigError, Format};
use crate::detect::engine::PortedNumber;
use crate::detect::{Applied, Engine, Event};
use crate::driver::{Driver, Reason, Source};
use crate::proto::{self, CareTicket};

/// A record as read: its input and value.
#[derive(Debug, Clone, Copy)]
pub struct Raw<'a> {
    pub source: Source,
    pub payload: Option<&'a [u8]>,
}

/// What became of one record of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Applied (a CDR or account event folded in, or an outcome fed back); the tickets it
    /// raised or corrected are `tickets` of the batch's ticket list.
    Applied {
        event_time_ms: i64,
        tickets: Range<usize>,
    },
    /// Seen before within the de-duplication horizon: nothing changed.
    Duplicate { event_time_ms: i64 },
    /// Older than the watermark: set aside as late (a dead letter, counted as late).
    Late { event_time_ms: i64 },
    /// Set aside before the engine, for this reason.
    Rejected(Reason),
}

impl Outcome {
    /// Why the record goes to the dead-letter topic, if it does.
    pub fn dead_letter(&self) -> Option<Reason> {
        match self {
            Outcome::Late { event_time_ms } => Some(Reason::Late {
                event_time_ms: *event_time_ms,
            }),
            Outcome::Rejected(r) => Some(r.clone()),
            _ => None,
        }
    }

    /// The record's event time, if it was applied, a duplicate or late.
    pub fn event_time_ms(&self) -> Option<i64> {
        match self {
            Outcome::Applied { event_time_ms, .. }
            | Outcome::Duplicate { event_time_ms }
            | Outcome::Late { event_time_ms } => Some(*event_time_ms),
            // Not a time the partition reached (a future one says nothing of its lag).
            Outcome::Rejected(_) => None,
        }
    }

    /// The tickets it raised, as a range of the batch's ticket list.
    pub fn tickets(&self) -> Range<usize> {
        match self {
            Outcome::Applied { tickets, .. } => tickets.clone(),
            _ => 0..0,
        }
    }
}

/// One record's decoded message (the one its input uses).
#[derive(Default)]
struct Slot {
    cdr: proto::CallDetailRecord,
    account: proto::AccountEvent,
    outcome: proto::TicketOutcome,
}

/// The engine of one partition plus decoding and validation.
pub struct PartitionWorker {
    driver: Driver,
    format: Format,
    max_bytes: usize,
    slots: Vec<Slot>,
    /// Per batch (reused): whether each record decoded.
    decoded: Vec<bool>,
    /// Per batch (reused): events to apply with their record's index, and what became of
    /// them.
    events: Vec<Event<'static>>,
    owners: Vec<usize>,
    applied: Vec<(Applied, usize)>,
}

impl PartitionWorker {
    pub fn new(cfg: &Config, ported: &[PortedNumber]) -> Result<PartitionWorker, ConfigError> {
        Ok(Self::with_engine(cfg, Engine::new(cfg, ported)?))
    }

    /// A worker around an engine already built (restored from the changelog).
    pub fn with_engine(cfg: &Config, engine: Engine) -> PartitionWorker {
        PartitionWorker {
            driver: Driver::new(engine, cfg.kafka.max_future_skew_ms),
            format: cfg.kafka.input_format,
            max_bytes: cfg.kafka.max_message_bytes,
            slots: Vec::new(),
            decoded: Vec::new(),
            events: Vec::new(),
            owners: Vec::new(),
            applied: Vec::new(),
        }
    }

    /// The engine, to read: its stats, a subscriber's summary, its newest event time.
    pub fn engine(&self) -> &Engine {
        self.driver.engine()
    }

    /// The engine, for the checkpointer only: it drains what changed since the last
    /// checkpoint into the changelog.
    pub fn checkpoint_view(&mut self) -> &mut Engine {
        self.driver.engine_mut()
    }

    /// Takes a reloaded config's rules, tiers and routing (or refuses it, changing nothing).
    pub fn reconfigure(&mut self, cfg: &Config) -> Result<(), ConfigError> {
        self.driver.engine_mut().reconfigure(cfg)
    }

    /// Moves event time on without a record (a quiet partition); the tickets of the days
    /// that closed go to `tickets`.
    pub fn advance_to(&mut self, t: i64, tickets: &mut Vec<CareTicket>) {
        self.driver.advance_to(t, tickets);
    }

    /// Holds the engine's clock at the slowest input that still counts (see
    /// [`crate::kafka::partition::merge`]); tickets of days that close now go to `tickets`.
    pub fn hold_clock(&mut self, hold: Option<i64>, tickets: &mut Vec<CareTicket>) {
        self.driver.hold_clock(hold, tickets);
    }

    /// Hands each lead time recorded since the last call to `f` (rule, days).
    pub fn drain_lead_times(&mut self, f: impl FnMut(crate::detect::rules::RuleId, u32)) {
        self.driver.engine_mut().drain_lead_times(f);
    }

    /// Processes `records` in order; `now_ms` is the wall clock, used only to reject event
    /// times far in the future. Tickets go to `tickets`, each record's [`Outcome`] to
    /// `outcomes` (cleared first); `starting(i)` is called before record `i` is decoded and
    /// again before it reaches the engine (a supervisor then knows which record a panic
    /// came from).
    pub fn process_batch(
        &mut self,
        records: &[Raw<'_>],
        now_ms: i64,
        tickets: &mut Vec<CareTicket>,
        outcomes: &mut Vec<Outcome>,
        mut starting: impl FnMut(usize),
    ) {
        outcomes.clear();
        outcomes.resize(records.len(), Outcome::Rejected(Reason::Empty));
        if self.slots.len() < records.len() {
            self.slots.resize_with(records.len(), Slot::default);
        }
        self.decoded.clear();
        for (i, r) in records.iter().enumerate() {
            starting(i);
            let d = decode(self.format, self.max_bytes, r, &mut self.slots[i]);
            self.decoded.push(d.is_ok());
            if let Err(reason) = d {
                outcomes[i] = Outcome::Rejected(reason);
            }
        }
        let Self {
            driver,
            slots,
            decoded,
            events,
            owners,
            applied,
            ..
        } = self;
        let mut run = Run {
            driver,
            events: reuse(std::mem::take(events)),
            owners,
            applied,
            tickets,
            outcomes,
            starting: &mut starting,
        };
        for (i, r) in records.iter().enumerate() {
            if !decoded[i] {
                continue;
            }
            let slot = &slots[i];
            let event = match r.source {
                Source::Cdr => codec::cdr_from_proto(&slot.cdr).map(Event::Cdr),
                Source::Account => codec::account_from_proto(&slot.account).map(Event::Account),
                Source::Outcomes => {
                    run.outcome(i, &slot.outcome);
                    continue;
                }
            };
            match event.map_err(Reason::Invalid).and_then(|e| {
                run.driver.admits(e.time_ms(), Some(now_ms))?;
                Ok(e)
            }) {
                Ok(e) => {
                    run.events.push(e);
                    run.owners.push(i);
                }
                Err(reason) => run.outcomes[i] = Outcome::Rejected(reason),
            }
        }
        run.flush();
        *events = reuse(run.events);
    }
}

/// The events of a batch waiting to be applied together, up to the next outcome (which
/// is applied on its own, in its place).
struct Run<'w, 'e, F: FnMut(usize)> {
    driver: &'w mut Driver,
    events: Vec<Event<'e>>,
    owners: &'w mut Vec<usize>,
    applied: &'w mut Vec<(Applied, usize)>,
    tickets: &'w mut Vec<CareTicket>,
    outcomes: &'w mut [Outcome],
    starting: &'w mut F,
}

impl<F: FnMut(usize)> Run<'_, '_, F> {
    fn flush(&mut self) {
        if self.events.is_empty() {
            return;
        }
        let mut from = self.tickets.len();
        self.applied.clear();
        let owners = &*self.owners;
        let starting = &mut *self.starting;
        self.driver
            .feed_batch(&self.events, self.tickets, self.applied, |k| {
                starting(owners[k])
            });
        for ((applied, end), (&i, e)) in self.applied.iter().zip(owners.iter().zip(&self.events)) {
            let event_time_ms = e.time_ms();
            self.outcomes[i] = match applied {
                Applied::Accepted => Outcome::Applied {
                    event_time_ms,
                    tickets: from..*end,
                },
                Applied::Duplicate => Outcome::Duplicate { event_time_ms },
                Applied::Late => Outcome::Late { event_time_ms },
            };
            from = *end;
        }
        self.events.clear();
        self.owners.clear();
    }

    fn outcome(&mut self, i: usize, m: &proto::TicketOutcome) {
        self.flush();
        self.outcomes[i] = match codec::outcome_from_proto(m) {
            Ok(o) => {
                (self.starting)(i);
                self.driver.feed_outcome(&o);
                let at = self.tickets.len();
                Outcome::Applied {
                    event_time_ms: o.time_ms,
                    tickets: at..at,
                }
            }
            Err(e) => Outcome::Rejected(Reason::Invalid(e)),
        };
    }
}

/// Decodes a record's value into its slot.
fn decode(format: Format, max_bytes: usize, r: &Raw<'_>, slot: &mut Slot) -> Result<(), Reason> {
    let Some(bytes) = r.payload else {
        return Err(Reason::Empty);
    };
    if bytes.len() > max_bytes {
        return Err(Reason::Oversize {
            bytes: bytes.len(),
            limit: max_bytes,
        });
    }
    match r.source {
        Source::Cdr => codec::decode_cdr_into(format, bytes, &mut slot.cdr),
        Source::Account => codec::decode_value_into(format, bytes, &mut slot.account),
        Source::Outcomes => codec::decode_value_into(format, bytes, &mut slot.outcome),
    }
    .map_err(Reason::Decode)
}

/// An empty vector on the allocation of `v`, for events that borrow other messages (the
/// collect is done in place: no allocation per batch).
fn reuse<'b>(mut v: Vec<Event<'_>>) -> Vec<Event<'b>> {
    v.clear();
    v.into_iter().map(|_| unreachable!("empty")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    fn worker(format: Format) -> PartitionWorker {
        let mut cfg = Config::default();
        cfg.kafka.input_format = format;
        PartitionWorker::new(&cfg, &[]).unwrap()
    }

    /// One record's tickets and dead letter.
    struct One {
        tickets: Vec<CareTicket>,
        dead_letter: Option<Reason>,
    }

    /// A batch of one.
    trait OneByOne {
        fn process(&mut self, source: Source, payload: Option<&[u8]>, now: i64) -> One;
    }

    impl OneByOne for PartitionWorker {
        fn process(&mut self, source: Source, payload: Option<&[u8]>, now: i64) -> One {
            let (mut tickets, mut outcomes) = (Vec::new(), Vec::new());
            let raw = [Raw { source, payload }];
            self.process_batch(&raw, now, &mut tickets, &mut outcomes, |_| {});
            assert_eq!(outcomes.len(), 1);
            assert_eq!(outcomes[0].tickets(), 0..tickets.len());
            One {
                tickets,
                dead_letter: outcomes[0].dead_letter(),
            }
        }
    }

    /// Good, bad, duplicate, late and future records and an outcome, mixed in one batch:
    /// each record's outcome, and the tickets in order, are what one-by-one gives.
    #[test]
    fn a_batch_gives_each_record_what_one_by_one_gives() {
        let sub = "8613012345678";
        let outcome = proto::TicketOutcome {
            ticket_id: "t-1".into(),
            subscriber: sub.into(),
            outcome: proto::Outcome::Retained as i32,
            event_time_ms: NOW - 900,
        };
        let records: Vec<(Source, Option<Vec<u8>>)> = vec![
            (
                Source::Cdr,
                Some(cdr("a", sub, NOW - 1000, "10086", 300).encode_to_vec()),
            ),
            (Source::Cdr, Some(vec![0xff, 0xff])),
            (
                Source::Cdr,
                Some(cdr("a", sub, NOW - 1000, "10086", 300).encode_to_vec()),
            ),
            (Source::Outcomes, Some(outcome.encode_to_vec())),
            (Source::Cdr, None),
            (
                Source::Cdr,
                Some(cdr("b", "8613012345679", NOW - 800, "10010", 900).encode_to_vec()),
            ),
            (
                Source::Cdr,
                Some(cdr("c", sub, NOW + 86_400_000, "1", 1).encode_to_vec()),
            ),
            (
                Source::Cdr,
                Some(cdr("d", sub, NOW - 10 * 86_400_000, "1", 1).encode_to_vec()),
            ),
            (
                Source::Cdr,
                Some(cdr("e", "8613012345670", NOW - 700, "10000", 600).encode_to_vec()),
            ),
        ];
        let raws: Vec<Raw<'_>> = (records.iter())
            .map(|(source, p)| Raw {
                source: *source,
                payload: p.as_deref(),
            })
            .collect();
        let mut batched = worker(Format::Protobuf);
        let (mut tickets, mut outcomes, mut started) = (Vec::new(), Vec::new(), Vec::new());
        batched.process_batch(&raws, NOW, &mut tickets, &mut outcomes, |i| started.push(i));
        let mut single = worker(Format::Protobuf);
        let mut one_by_one = Vec::new();
        for (i, r) in raws.iter().enumerate() {
            let one = single.process(r.source, r.payload, NOW);
            assert_eq!(
                outcomes[i].dead_letter().as_ref().map(Reason::kind),
                one.dead_letter.as_ref().map(Reason::kind),
                "record {i}"
            );
            assert_eq!(
                tickets[outcomes[i].tickets()],
                one.tickets[..],
                "record {i}"
            );
            one_by_one.extend(one.tickets);
        }
        assert_eq!(tickets, one_by_one);
        assert!(!tickets.is_empty(), "the care calls raise tickets");
        assert!(matches!(outcomes[2], Outcome::Duplicate { .. }));
        assert!(
            matches!(outcomes[3], Outcome::Applied { .. }),
            "{:?}",
            outcomes[3]
        );
        assert!(matches!(outcomes[7], Outcome::Late { .. }));
        assert_eq!(
            started[..9],
            [0, 1, 2, 3, 4, 5, 6, 7, 8],
            "each record, decoded"
        );
        assert_eq!(
            started[9..],
            [0, 2, 3, 5, 7, 8],
            "each record that reached the engine"
        );
    }

    const NOW: i64 = 1_773_100_000_000;

    fn cdr(id: &str, sub: &str, t: i64, other: &str, dur: u32) -> proto::CallDetailRecord {
        proto::CallDetailRecord {
            record_id: id.into(),
            subscriber: sub.into(),
            event_time_ms: t,
            r#type: proto::RecordType::VoiceOut as i32,
            other_party: other.into(),
            duration_s: dur,
            ..Default::default()
        }
    }

    #[test]
    fn a_good_record_raises_its_ticket_and_bad_ones_become_dead_letters() {
        let mut w = worker(Format::Protobuf);
        let good = cdr("r1", "8613012345678", NOW - 1000, "10086", 300).encode_to_vec();
        let p = w.process(Source::Cdr, Some(&good), NOW);
        assert_eq!(p.tickets.len(), 1);
        assert!(p.dead_letter.is_none());
        let cases: Vec<(Option<Vec<u8>>, &str)> = vec![
            (None, "empty"),
            (Some(vec![0xff, 0xff, 0xff]), "decode"),
            (
                Some(cdr("r2", "abc", NOW, "1", 1).encode_to_vec()),
                "invalid",
            ),
            (
                Some(cdr("r3", "8613012345678", NOW + 86_400_000, "1", 1).encode_to_vec()),
                "future",
            ),
            (
                Some(cdr("r4", "8613012345678", NOW - 10 * 86_400_000, "1", 1).encode_to_vec()),
                "late",
            ),
            (Some(vec![0u8; 2_000_000]), "oversize"),
        ];
        for (payload, kind) in cases {
            let p = w.process(Source::Cdr, payload.as_deref(), NOW);
            assert_eq!(
                p.dead_letter.as_ref().map(Reason::kind),
                Some(kind),
                "{:?}",
                p.dead_letter
            );
            assert!(p.tickets.is_empty());
        }
        let mut unknown = cdr("r5", "8613012345678", NOW, "1", 1);
        unknown.r#type = 42;
        let p = w.process(Source::Cdr, Some(&unknown.encode_to_vec()), NOW);
        assert_eq!(p.dead_letter.unwrap().to_string(), "unknown record type 42");
        // The line goes on: the next good record is processed.
        let next = cdr("r6", "8613012345679", NOW, "10000", 120).encode_to_vec();
        assert_eq!(w.process(Source::Cdr, Some(&next), NOW).tickets.len(), 1);
    }

    #[test]
    fn inputs_merge_by_event_time_cdrs_first_on_a_tie() {
        assert_eq!(Source::earliest(None, None, None), None);
        assert_eq!(
            Source::earliest(Some(5), Some(4), Some(6)),
            Some(Source::Account)
        );
        assert_eq!(
            Source::earliest(Some(5), None, Some(3)),
            Some(Source::Outcomes)
        );
        assert_eq!(
            Source::earliest(Some(5), Some(5), Some(5)),
            Some(Source::Cdr)
        );
        assert_eq!(
            Source::earliest(None, Some(5), Some(5)),
            Some(Source::Account)
        );
    }

    #[test]
    fn json_input_reads_proto3_json() {
        let mut w = worker(Format::Json);
        let line = format!(
            r#"{{"recordId":"j1","subscriber":"8613012345678","eventTimeMs":"{}","type":"VOICE_OUT","otherParty":"10086","durationS":90}}"#,
            NOW - 5
        );
        assert_eq!(
            w.process(Source::Cdr, Some(line.as_bytes()), NOW)
                .tickets
                .len(),
            1
        );
        let p = w.process(Source::Cdr, Some(b"{not json"), NOW);
        assert_eq!(p.dead_letter.unwrap().kind(), "decode");
    }
}
