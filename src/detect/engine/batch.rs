//! Records applied in batches: the same as one by one, with their memory asked for early.
//!
//! At a million subscribers and more every record misses the cache three times (the
//! index, the state, the de-duplication buckets), each miss ~100 ns of DRAM latency, and
//! one record's misses depend on each other. A batch first prefetches every record's
//! de-duplication buckets (their addresses need only the hash), then looks every
//! subscriber up and prefetches its state, so the misses of different records overlap;
//! then it applies the records in order with [`Engine::apply`]. The prefetch passes change
//! nothing (a lookup, no insert), so the results, tickets and state are exactly those of
//! applying the records one by one. Prefetching the index entries in the first pass too
//! was slower (2.5M against 2.7–2.9M events/s at 1M): three lines a record for 32 records
//! are more misses than a core keeps in flight, and the late ones were dropped.

use super::*;

impl Engine {
    /// Applies `events` in order, as [`Engine::apply`] on each would: tickets are appended
    /// to `out`, and what became of each event to `applied`, with the length of `out` after
    /// it (so event `i`'s tickets are those between the previous length and its own).
    /// `starting(i)` is called before event `i` is applied: a supervisor that learns which
    /// record a panic came from needs nothing else.
    pub fn apply_batch(
        &mut self,
        events: &[Event<'_>],
        out: &mut Vec<CareTicket>,
        applied: &mut Vec<(Applied, usize)>,
        mut starting: impl FnMut(usize),
    ) {
        for ev in events {
            if let Event::Cdr(c) = ev {
                self.seen_ids.prefetch(self.cal.day_of(c.time_ms), c.id.0);
            }
        }
        for ev in events {
            if let Event::Cdr(c) = ev {
                self.subs.prefetch(c.subscriber.0);
            }
        }
        for (i, ev) in events.iter().enumerate() {
            starting(i);
            let a = self.apply(ev, out);
            applied.push((a, out.len()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::proto::{CallDetailRecord, RecordType};

    /// A small mixed workload, made here so the core's tests need no tool: voice out and
    /// in, SMS and data, with charges, for `subscribers` China Unicom numbers drawn by a
    /// SplitMix64 stream.
    struct Mix {
        state: u64,
        subscribers: u64,
        seq: u64,
    }

    impl Mix {
        fn new(subscribers: u64, seed: u64) -> Mix {
            Mix {
                state: seed,
                subscribers,
                seq: 0,
            }
        }

        fn draw(&mut self, n: u64) -> u64 {
            self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) % n
        }

        /// The next record, for a random subscriber, at about `time_ms`.
        fn next_cdr(&mut self, time_ms: i64) -> CallDetailRecord {
            self.seq += 1;
            let who = self.draw(self.subscribers);
            let party = format!(
                "1{}{:08}",
                [38, 39, 30, 86][self.draw(4) as usize],
                self.draw(100_000_000)
            );
            let mut m = CallDetailRecord {
                record_id: format!("sw1-{:010}", self.seq),
                subscriber: format!("86130{:08}", 10_000_019 + who * 7919),
                event_time_ms: time_ms + self.draw(60_000) as i64 - 30_000,
                ..Default::default()
            };
            match self.draw(10) {
                0..=2 => {
                    m.r#type = RecordType::VoiceOut as i32;
                    m.other_party = party;
                    m.duration_s = 5 + self.draw(600) as u32;
                    m.charge = self.draw(60) as i64;
                }
                3..=4 => {
                    m.r#type = RecordType::VoiceIn as i32;
                    m.other_party = party;
                    m.duration_s = 5 + self.draw(600) as u32;
                }
                5 => {
                    m.r#type = RecordType::SmsOut as i32;
                    m.other_party = party;
                    m.charge = 10;
                }
                _ => {
                    m.r#type = RecordType::Data as i32;
                    m.data_bytes = 10_000 + self.draw(50_000_000);
                }
            }
            m
        }
    }

    /// A workload of mixed CDRs over 300 subscribers and three days, with duplicates and
    /// late records, applied one by one and in batches of `batch`.
    fn both_ways(batch: usize) {
        let mut cfg = Config::default();
        cfg.detect.engine.expected_subscribers = 300;
        let mut one = Engine::new(&cfg, &[]).unwrap();
        let mut many = Engine::new(&cfg, &[]).unwrap();
        let cal = one.calendar().clone();
        let start = cal.day_start_ms(20_500);
        let mut w = Mix::new(300, 11);
        let mut msgs = Vec::new();
        for i in 0..6_000i64 {
            let back = if i % 101 == 0 {
                302_400_000
            } else {
                (i % 7) * 3_000_000
            };
            let mut m = w.next_cdr(start + i * 40_000 - back);
            if i % 50 == 0 {
                // Long calls to competitors' care lines: record-rule tickets.
                m.other_party = ["10010", "10000"][(i / 50 % 2) as usize].into();
                m.r#type = RecordType::VoiceOut as i32;
                m.duration_s = 900;
            }
            msgs.push(m);
            if i % 13 == 0 {
                msgs.push(msgs[msgs.len() / 2].clone());
            }
        }
        let events: Vec<Event<'_>> = msgs
            .iter()
            .filter_map(|m| crate::codec::cdr_from_proto(m).ok().map(Event::Cdr))
            .collect();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let (mut ra, mut rb, mut ends) = (Vec::new(), Vec::new(), Vec::new());
        for ev in &events {
            ra.push(one.apply(ev, &mut a));
            ends.push(a.len());
        }
        for chunk in events.chunks(batch) {
            let mut order = Vec::new();
            many.apply_batch(chunk, &mut b, &mut rb, |i| order.push(i));
            assert_eq!(
                order,
                (0..chunk.len()).collect::<Vec<_>>(),
                "each event, in order"
            );
        }
        let (rb, ends_b): (Vec<Applied>, Vec<usize>) = rb.into_iter().unzip();
        assert_eq!(
            ends, ends_b,
            "each event's tickets end where one by one they do"
        );
        one.finish(&mut a);
        many.finish(&mut b);
        assert_eq!(ra, rb);
        assert!(ra.contains(&Applied::Duplicate) && ra.contains(&Applied::Late));
        assert!(!a.is_empty());
        assert_eq!(a, b, "the same tickets in the same order");
        let (mut sa, mut sb) = (Vec::new(), Vec::new());
        one.drain_changed(true, |m, x| sa.push((m, x.to_vec())));
        many.drain_changed(true, |m, x| sb.push((m, x.to_vec())));
        assert_eq!(sa, sb, "the same states in the same slots");
        assert_eq!(one.encode_partition(), many.encode_partition());
        assert_eq!(one.seen_ids, many.seen_ids);
    }

    #[test]
    fn a_batch_gives_what_one_by_one_gives() {
        for batch in [1, 7, 32] {
            both_ways(batch);
        }
    }
}
