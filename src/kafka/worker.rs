//! One partition's processing, free of I/O: raw record bytes in, tickets and dead letters
//! out. Bytes are checked for size and decoded (codec) here; everything after is the one
//! [`Driver`] that `replay`, the demo and the benchmarks use too. The Kafka adapter feeds it
//! and publishes what it returns; tests drive it directly.
//!
//! Bad input never stops the line: a record that is too large, does not decode, fails
//! validation, is far in the future or beyond the allowed lateness is set aside with a
//! dead-letter [`Reason`], and the next record is processed.

use crate::codec;
use crate::config::{Config, ConfigError, Format};
use crate::detect::engine::PortedNumber;
use crate::detect::Engine;
use crate::driver::{Driver, Fed, Reason, Record};
use crate::proto::{self, CareTicket};

pub use crate::driver::Source;

/// What processing one record produced.
#[derive(Debug, Default)]
pub struct Processed {
    pub tickets: Vec<CareTicket>,
    /// Why the record goes to the dead-letter topic, if it does.
    pub dead_letter: Option<Reason>,
    pub duplicate: bool,
    pub late: bool,
    /// The record's event time, when it decoded.
    pub event_time_ms: Option<i64>,
}

/// The engine of one partition plus decoding and validation.
pub struct PartitionWorker {
    driver: Driver,
    format: Format,
    max_bytes: usize,
    cdr: proto::CallDetailRecord,
    account: proto::AccountEvent,
    outcome: proto::TicketOutcome,
}

fn dead(reason: Reason) -> Processed {
    Processed::set_aside(reason)
}

impl Processed {
    /// A record set aside, for `reason`, without reaching the engine.
    pub fn set_aside(reason: Reason) -> Processed {
        Processed {
            dead_letter: Some(reason),
            ..Default::default()
        }
    }
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
            cdr: proto::CallDetailRecord::default(),
            account: proto::AccountEvent::default(),
            outcome: proto::TicketOutcome::default(),
        }
    }

    pub fn engine(&self) -> &Engine {
        self.driver.engine()
    }

    pub fn engine_mut(&mut self) -> &mut Engine {
        self.driver.engine_mut()
    }

    /// Processes one record read from `source`; `now_ms` is the wall clock, used only to
    /// reject event times far in the future.
    pub fn process(&mut self, source: Source, payload: Option<&[u8]>, now_ms: i64) -> Processed {
        let Some(bytes) = payload else {
            return dead(Reason::Empty);
        };
        if bytes.len() > self.max_bytes {
            return dead(Reason::Oversize {
                bytes: bytes.len(),
                limit: self.max_bytes,
            });
        }
        let mut tickets = Vec::new();
        let format = self.format;
        let decoded = match source {
            Source::Cdr => codec::decode_cdr_into(format, bytes, &mut self.cdr)
                .map(|()| Record::Cdr(&self.cdr)),
            Source::Account => codec::decode_value_into(format, bytes, &mut self.account)
                .map(|()| Record::Account(&self.account)),
            Source::Outcomes => codec::decode_value_into(format, bytes, &mut self.outcome)
                .map(|()| Record::Outcome(&self.outcome)),
        };
        let fed = decoded
            .map_err(Reason::Decode)
            .and_then(|record| self.driver.feed(record, Some(now_ms), &mut tickets));
        match fed {
            Ok(Fed::Duplicate { event_time_ms }) => Processed {
                duplicate: true,
                event_time_ms: Some(event_time_ms),
                ..Default::default()
            },
            Ok(fed) => Processed {
                tickets,
                event_time_ms: Some(fed.event_time_ms()),
                ..Default::default()
            },
            Err(reason @ Reason::Late { event_time_ms }) => Processed {
                late: true,
                event_time_ms: Some(event_time_ms),
                dead_letter: Some(reason),
                ..Default::default()
            },
            Err(reason) => dead(reason),
        }
    }
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
