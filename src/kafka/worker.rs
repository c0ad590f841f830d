//! One partition's processing, free of I/O: raw record bytes in, tickets and dead letters
//! out. The Kafka adapter feeds it and publishes what it returns; tests drive it directly.
//!
//! Bad input never stops the line: a record that is too large, does not decode, fails
//! validation, is far in the future or beyond the allowed lateness is set aside with a
//! dead-letter [`Reason`], and the next record is processed.

use crate::codec;
use crate::config::{Config, ConfigError, Format};
use crate::detect::engine::PortedNumber;
use crate::detect::{Applied, Engine, Event};
use crate::proto::{self, CareTicket};

use super::dead_letter::Reason;

/// Which input topic a record came from.
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

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Cdr => "cdr",
            Source::Account => "account",
            Source::Outcomes => "outcomes",
        }
    }
}

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
    engine: Engine,
    format: Format,
    max_bytes: usize,
    max_future_skew_ms: i64,
    cdr: proto::CallDetailRecord,
    account: proto::AccountEvent,
}

fn dead(reason: Reason) -> Processed {
    Processed {
        dead_letter: Some(reason),
        ..Default::default()
    }
}

impl PartitionWorker {
    pub fn new(cfg: &Config, ported: &[PortedNumber]) -> Result<PartitionWorker, ConfigError> {
        Ok(PartitionWorker {
            engine: Engine::new(cfg, ported)?,
            format: cfg.kafka.input_format,
            max_bytes: cfg.kafka.max_message_bytes,
            max_future_skew_ms: cfg.kafka.max_future_skew_ms,
            cdr: proto::CallDetailRecord::default(),
            account: proto::AccountEvent::default(),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
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
        let applied = match source {
            Source::Cdr => self.apply_cdr(bytes, now_ms, &mut tickets),
            Source::Account => self.apply_account(bytes, now_ms, &mut tickets),
            Source::Outcomes => self.apply_outcome(bytes),
        };
        let (time, applied) = match applied {
            Ok(applied) => applied,
            Err(reason) => return dead(reason),
        };
        let event_time_ms = Some(time);
        match applied {
            Applied::Accepted => Processed {
                tickets,
                event_time_ms,
                ..Default::default()
            },
            Applied::Duplicate => Processed {
                duplicate: true,
                event_time_ms,
                ..Default::default()
            },
            Applied::Late => Processed {
                late: true,
                event_time_ms,
                dead_letter: Some(Reason::Late {
                    event_time_ms: time,
                }),
                ..Default::default()
            },
        }
    }

    fn apply_cdr(
        &mut self,
        bytes: &[u8],
        now_ms: i64,
        tickets: &mut Vec<CareTicket>,
    ) -> Result<(i64, Applied), Reason> {
        codec::decode_value_into(self.format, bytes, &mut self.cdr).map_err(Reason::Decode)?;
        let cdr = codec::cdr_from_proto(&self.cdr).map_err(Reason::Invalid)?;
        self.check_skew(cdr.time_ms, now_ms)?;
        Ok((cdr.time_ms, self.engine.apply(&Event::Cdr(cdr), tickets)))
    }

    fn apply_account(
        &mut self,
        bytes: &[u8],
        now_ms: i64,
        tickets: &mut Vec<CareTicket>,
    ) -> Result<(i64, Applied), Reason> {
        codec::decode_value_into(self.format, bytes, &mut self.account).map_err(Reason::Decode)?;
        let ev = codec::account_from_proto(&self.account).map_err(Reason::Invalid)?;
        self.check_skew(ev.time_ms, now_ms)?;
        Ok((ev.time_ms, self.engine.apply(&Event::Account(ev), tickets)))
    }

    /// An outcome is never late or a duplicate for the engine: it is always accepted.
    fn apply_outcome(&mut self, bytes: &[u8]) -> Result<(i64, Applied), Reason> {
        let mut o = proto::TicketOutcome::default();
        codec::decode_value_into(self.format, bytes, &mut o).map_err(Reason::Decode)?;
        let ev = codec::outcome_from_proto(&o).map_err(Reason::Invalid)?;
        self.engine.apply_outcome(&ev);
        Ok((ev.time_ms, Applied::Accepted))
    }

    fn check_skew(&self, event_time_ms: i64, now_ms: i64) -> Result<(), Reason> {
        if event_time_ms > now_ms + self.max_future_skew_ms {
            return Err(Reason::Future { event_time_ms });
        }
        Ok(())
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
