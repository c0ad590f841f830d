//! The bench preset: CDRs for random subscribers at scale, with the mix of record kinds and
//! numbers real traffic has, and no stories.
//!
//! The engine benchmark needs every record to touch a cold subscriber's state and every
//! rule to have something to look at (care numbers, competitor IP prefixes, forwarding,
//! partial records), at millions of records without allocating per record. It fills a
//! reused message in place; [`wire`] adds account events for the end-to-end benchmark.

use std::fmt;

use prost::Message as _;

use super::numbers::{mobile, subscriber, ANY_PREFIXES};
use super::{Rng, WireEvent};
use crate::proto::{self, account_event::Kind};

/// A CDR generator with a realistic mix: voice out and in with mobiles of every operator,
/// SMS, data, charges, a few calls with care numbers (a few of them long, or cut into
/// partial records), competitor IP-call prefixes and forwarding.
pub struct CdrMix {
    subscribers: u64,
    rng: Rng,
    seq: u64,
    parties: Vec<String>,
    text: String,
}

/// Care lines: our own (10010, not a sign) and two competitors'.
const CARE: [&str; 3] = ["10010", "10086", "10000"];

impl CdrMix {
    pub fn new(subscribers: u64, seed: u64) -> CdrMix {
        let mut rng = Rng::stream(seed, 0xbe, 0x9c);
        let parties = (0..65_536)
            .map(|i| {
                let national = mobile(&mut rng, &ANY_PREFIXES);
                // Some switches present the other party in international format.
                if i % 5 == 0 {
                    format!("86{national}")
                } else {
                    national
                }
            })
            .collect();
        CdrMix {
            subscribers: subscribers.max(1),
            rng,
            seq: 0,
            parties,
            text: String::new(),
        }
    }

    /// A subscriber index drawn uniformly at random.
    pub fn pick_subscriber(&mut self) -> u64 {
        self.rng.next_u64() % self.subscribers
    }

    fn party(&mut self) -> usize {
        (self.rng.next_u64() & 0xffff) as usize
    }

    /// Fills `m` with the next record, for a random subscriber, at about `time_ms`.
    pub fn next_cdr(&mut self, time_ms: i64, m: &mut proto::CallDetailRecord) {
        use proto::RecordType as T;
        self.seq += 1;
        let who = self.pick_subscriber();
        m.clear();
        self.text.clear();
        fmt::Write::write_fmt(&mut self.text, format_args!("sw1-{:010}", self.seq)).ok();
        m.record_id.push_str(&self.text);
        self.text.clear();
        fmt::Write::write_fmt(&mut self.text, format_args!("{}", subscriber(who))).ok();
        m.subscriber.push_str(&self.text);
        // Small jitter: mediation delivers records a little out of order.
        m.event_time_ms = time_ms + self.rng.range(-30_000, 30_000);
        let r = self.rng.next_u64() % 10_000;
        let p = self.party();
        let (kind, party): (T, &str) = match r {
            0..3000 => (T::VoiceOut, &self.parties[p]),
            3000..5200 => (T::VoiceIn, &self.parties[p]),
            5200..6200 => (T::SmsOut, &self.parties[p]),
            6200..7000 => (T::SmsIn, &self.parties[p]),
            7000..9950 => (T::Data, ""),
            9950..9970 => (T::VoiceOut, "17951"),
            9970..9985 => (T::VoiceOut, CARE[p % 3]),
            9985..9995 => (T::VoiceIn, CARE[p % 3]),
            _ => (T::Forward, &self.parties[p]),
        };
        m.r#type = kind as i32;
        m.other_party.push_str(party);
        if (9950..9970).contains(&r) {
            let p = self.party();
            m.other_party.push_str(&self.parties[p]);
        }
        match kind {
            T::VoiceOut | T::VoiceIn | T::Forward => {
                m.duration_s = self.rng.range(5, 600) as u32;
                if kind == T::VoiceOut && self.rng.chance(0.7) {
                    m.charge = self.rng.range(1, 60);
                }
                if (9970..9995).contains(&r) {
                    // Care calls are mostly short; one in twenty is long enough to be a
                    // sign, and a few long ones are cut into partial records.
                    m.duration_s = self.rng.range(20, 60) as u32;
                    if self.rng.chance(0.05) {
                        m.duration_s = self.rng.range(61, 900) as u32;
                        if self.rng.chance(0.1) {
                            m.partial = true;
                            m.call_reference = format!("c-{}", self.seq);
                        }
                    }
                }
            }
            T::SmsOut => m.charge = 10,
            T::Data => {
                m.data_bytes = self.rng.range(10_000, 50_000_000) as u64;
                if self.rng.chance(0.01) {
                    m.charge = self.rng.range(100, 1000);
                }
            }
            _ => {}
        }
    }
}

/// `count` records in event-time order over the `span_ms` before `end`: CDRs from
/// [`CdrMix`] and about 2% account events (payments and top-ups) for the same subscribers.
pub fn wire(subscribers: u64, count: u64, span_ms: i64, end: i64, seed: u64) -> Vec<WireEvent> {
    Wire::new(subscribers, seed).next_chunk(count, span_ms, end)
}

/// [`wire`] in chunks: record ids stay unique from one chunk to the next, so a workload
/// too large to hold at once is produced a chunk at a time.
pub struct Wire {
    cdrs: CdrMix,
    rng: Rng,
    seed: u64,
    made: u64,
}

impl Wire {
    pub fn new(subscribers: u64, seed: u64) -> Wire {
        Wire {
            cdrs: CdrMix::new(subscribers, seed),
            rng: Rng::stream(seed, 0xac, 0x01),
            seed,
            made: 0,
        }
    }

    /// The next `count` records, in event-time order over the `span_ms` before `end`.
    pub fn next_chunk(&mut self, count: u64, span_ms: i64, end: i64) -> Vec<WireEvent> {
        let start = end - span_ms;
        (0..count)
            .map(|i| {
                let t = start + (i as i64 * span_ms) / count.max(1) as i64;
                self.made += 1;
                self.record(t, end)
            })
            .collect()
    }

    fn record(&mut self, t: i64, end: i64) -> WireEvent {
        let rng = &mut self.rng;
        if rng.chance(0.02) {
            let kind = if rng.chance(0.5) {
                Kind::Payment(proto::PaymentReceived {
                    amount: rng.range(1000, 20_000),
                })
            } else {
                Kind::TopUp(proto::TopUp {
                    amount: 5000,
                    balance_after: rng.range(5000, 50_000),
                })
            };
            WireEvent::Account(proto::AccountEvent {
                event_id: format!("crm-{}-{}", self.seed, self.made - 1),
                subscriber: subscriber(self.cdrs.pick_subscriber()).to_string(),
                event_time_ms: t,
                kind: Some(kind),
            })
        } else {
            let mut m = proto::CallDetailRecord::default();
            self.cdrs.next_cdr(t, &mut m);
            m.event_time_ms = m.event_time_ms.min(end);
            WireEvent::Cdr(m)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_is_deterministic_and_mostly_calls_and_data() {
        let (mut a, mut b) = (CdrMix::new(1000, 3), CdrMix::new(1000, 3));
        let (mut ma, mut mb) = (proto::CallDetailRecord::default(), Default::default());
        let mut data = 0;
        for i in 0..10_000 {
            a.next_cdr(i * 1000, &mut ma);
            b.next_cdr(i * 1000, &mut mb);
            assert_eq!(ma, mb);
            assert!(ma.subscriber.starts_with("86") && ma.subscriber.len() == 13);
            data += usize::from(ma.r#type == proto::RecordType::Data as i32);
        }
        assert!((2500..3400).contains(&data), "{data} data records");
    }

    #[test]
    fn wire_records_end_by_the_end_and_about_2_percent_are_account_events() {
        let events = wire(100, 5000, 3_600_000, 1_800_000_000_000, 9);
        let mut chunks = Wire::new(100, 9);
        let mut again = chunks.next_chunk(2000, 3_600_000, 1_800_000_000_000);
        again.extend(chunks.next_chunk(3000, 3_600_000, 1_800_000_000_000));
        let ids = |e: &[WireEvent]| -> Vec<String> {
            e.iter()
                .map(|e| match e {
                    WireEvent::Cdr(c) => c.record_id.clone(),
                    WireEvent::Account(a) => a.event_id.clone(),
                })
                .collect()
        };
        assert_eq!(ids(&again), ids(&events), "chunks continue the ids");
        assert_eq!(events.len(), 5000);
        assert!(events.iter().all(|e| e.time_ms() <= 1_800_000_000_000));
        let accounts = events
            .iter()
            .filter(|e| matches!(e, WireEvent::Account(_)))
            .count();
        assert!((50..150).contains(&accounts), "{accounts} account events");
    }
}
