//! What the service should publish: the replay engine fed the same input, and the
//! workloads the durability tests produce.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};

use churnwatch::config::Config;
use churnwatch::driver::Source;
use churnwatch::proto::{self, CareTicket};
use churnwatch::tools::live::partition_of;
use churnwatch::tools::workload::WireEvent;
use prost::Message as _;

/// Every ticket emission of the reference, with where its input was: the partition of its
/// subscriber and how many records of that partition had been applied when it came out.
pub struct Reference {
    pub emissions: Vec<(CareTicket, i32, usize)>,
}

/// The tickets of the replay rule for the same input, as `reference()` in
/// tests/kafka_service.rs: CDRs and account events each in produced order, merged by event
/// time (`Source::earliest`, as `replay` and the service merge them), one engine, no
/// end-of-input flush (a running service never sees the end of its input). One engine for
/// every partition gives the same tickets as one per partition: state is per subscriber.
pub fn reference(cfg: &Config, events: &[WireEvent], partitions: i32) -> Reference {
    let mut cdrs: VecDeque<_> = events
        .iter()
        .filter_map(|e| match e {
            WireEvent::Cdr(c) => Some(c),
            _ => None,
        })
        .collect();
    let mut accounts: VecDeque<_> = events
        .iter()
        .filter_map(|e| match e {
            WireEvent::Account(a) => Some(a),
            _ => None,
        })
        .collect();
    let mut engine = churnwatch::detect::Engine::new(cfg, &[]).unwrap();
    let mut seen = vec![0usize; partitions as usize];
    let mut out = Vec::new();
    let mut emissions = Vec::new();
    loop {
        let next = Source::earliest(
            cdrs.front().map(|c| c.event_time_ms),
            accounts.front().map(|a| a.event_time_ms),
            None,
        );
        let sub = match next {
            None => break,
            Some(Source::Cdr) => {
                let c = cdrs.pop_front().unwrap();
                let sub = c.subscriber.clone();
                let ev = churnwatch::codec::cdr_from_proto(c).unwrap();
                engine.apply(&churnwatch::detect::Event::Cdr(ev), &mut out);
                sub
            }
            Some(Source::Account) => {
                let a = accounts.pop_front().unwrap();
                let sub = a.subscriber.clone();
                let ev = churnwatch::codec::account_from_proto(a).unwrap();
                engine.apply(&churnwatch::detect::Event::Account(ev), &mut out);
                sub
            }
            Some(Source::Outcomes) => unreachable!("no outcomes"),
        };
        seen[partition_of(&sub, partitions) as usize] += 1;
        for t in out.drain(..) {
            let p = partition_of(&t.subscriber, partitions);
            emissions.push((t, p, seen[p as usize]));
        }
    }
    Reference { emissions }
}

impl Reference {
    /// The last version of every ticket, by id (tickets are upserts).
    pub fn finals(&self) -> BTreeMap<String, CareTicket> {
        finals(self.emissions.iter().map(|e| &e.0))
    }

    /// Emissions per ticket id.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        counts(self.emissions.iter().map(|e| &e.0))
    }

    /// The most emissions that re-reading `w` consecutive records of every partition can
    /// repeat: per partition, the most emissions within any `w` consecutive records of it,
    /// summed over the partitions (each may re-read its own window after a crash).
    pub fn max_in_windows(&self, w: usize, partitions: i32) -> usize {
        (0..partitions)
            .map(|p| {
                let at: Vec<usize> = self
                    .emissions
                    .iter()
                    .filter(|e| e.1 == p)
                    .map(|e| e.2)
                    .collect();
                // Emissions at positions in (at[i] - w, at[i]], the window ending at each.
                let mut lo = 0;
                let mut best = 0;
                for hi in 0..at.len() {
                    while at[hi] - at[lo] >= w {
                        lo += 1;
                    }
                    best = best.max(hi - lo + 1);
                }
                best
            })
            .sum()
    }
}

pub fn finals<'a>(tickets: impl Iterator<Item = &'a CareTicket>) -> BTreeMap<String, CareTicket> {
    tickets.map(|t| (t.ticket_id.clone(), t.clone())).collect()
}

pub fn counts<'a>(tickets: impl Iterator<Item = &'a CareTicket>) -> BTreeMap<String, usize> {
    let mut n = BTreeMap::new();
    for t in tickets {
        *n.entry(t.ticket_id.clone()).or_insert(0) += 1;
    }
    n
}

fn rules(t: &CareTicket) -> String {
    let r: Vec<&str> = t.signals.iter().map(|s| s.rule.as_str()).collect();
    r.join("+")
}

/// Compares final tickets without naming a subscriber: counts, by rules, of tickets
/// missing, differing and unexpected. Empty when equal.
pub fn diff(got: &BTreeMap<String, CareTicket>, want: &BTreeMap<String, CareTicket>) -> String {
    let mut lines = BTreeMap::<String, usize>::new();
    for (id, w) in want {
        match got.get(id) {
            None => *lines.entry(format!("missing {}", rules(w))).or_insert(0) += 1,
            Some(g) if g != w => *lines.entry(format!("differs {}", rules(w))).or_insert(0) += 1,
            Some(_) => {}
        }
    }
    for (id, g) in got {
        if !want.contains_key(id) {
            *lines.entry(format!("unexpected {}", rules(g))).or_insert(0) += 1;
        }
    }
    lines
        .iter()
        .map(|(k, n)| format!("  {n} x {k}\n"))
        .collect()
}

/// A subscriber of our own in partition `p` (number `prefix` then a counter).
pub fn in_partition(prefix: &str, p: i32, partitions: i32) -> String {
    (0u64..)
        .map(|n| format!("{prefix}{n:05}"))
        .find(|s| partition_of(s, partitions) == p)
        .unwrap()
}

/// One `Resumed` event and one small data session per partition at `end`, so every
/// partition's watermark ends at the same time (as tests/kafka_service.rs does): each input
/// keeps its own progress, so each must reach the end (`tag` keeps their ids apart).
pub fn sentinels(tag: &str, end: i64, partitions: i32) -> Vec<WireEvent> {
    (0..partitions)
        .flat_map(|p| {
            let subscriber = in_partition("86139000", p, partitions);
            [
                WireEvent::Account(proto::AccountEvent {
                    event_id: format!("sentinel-{tag}-{p}"),
                    subscriber: subscriber.clone(),
                    event_time_ms: end,
                    kind: Some(proto::account_event::Kind::Resumed(proto::Resumed {})),
                }),
                WireEvent::Cdr(proto::CallDetailRecord {
                    record_id: format!("sentinel-{tag}-{p}"),
                    subscriber,
                    event_time_ms: end,
                    r#type: proto::RecordType::Data as i32,
                    data_bytes: 1024,
                    ..Default::default()
                }),
            ]
        })
        .collect()
}

/// 2026-06-01 00:00 Asia/Shanghai, day 0 of [`population`].
pub const POPULATION_START_MS: i64 = 1_780_243_200_000;

/// Start of day `d` of [`population`] (Shanghai has no daylight saving).
pub fn day_start(d: i64) -> i64 {
    POPULATION_START_MS + d * 86_400_000
}

/// The `generate` preset's population (habits, planted journeys, late and duplicate
/// delivery) in delivery order, as `churnwatch generate` writes it, then the sentinels.
pub fn population(subscribers: usize, days: u32, seed: u64, partitions: i32) -> Vec<WireEvent> {
    use churnwatch::tools::workload::population::{Out, Population};
    let cfg = Config::default();
    let cal = churnwatch::detect::calendar::Calendar::new(
        &cfg.detect.engine.time_zone,
        &cfg.detect.calendar.holidays,
    )
    .unwrap();
    let start = chrono::NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
    assert_eq!(day_start(0), POPULATION_START_MS);
    let format = churnwatch::config::Format::Protobuf;
    let (mut pop, _) = Population::new(&cal, start, days, subscribers, seed, format);
    let mut all: Vec<(Out, bool)> = Vec::new();
    for d in 0..i64::from(days) {
        let day = pop.day(d);
        all.extend(day.cdr.into_iter().map(|o| (o, true)));
        all.extend(day.acct.into_iter().map(|o| (o, false)));
    }
    all.sort_by_key(|(o, _)| (o.deliver_ms, o.key));
    let mut events: Vec<WireEvent> = all
        .into_iter()
        .map(|(o, cdr)| {
            let b = o.bytes.as_slice();
            if cdr {
                WireEvent::Cdr(proto::CallDetailRecord::decode_length_delimited(b).unwrap())
            } else {
                WireEvent::Account(proto::AccountEvent::decode_length_delimited(b).unwrap())
            }
        })
        .collect();
    let end = events.iter().map(|e| e.time_ms()).max().unwrap() + 1;
    events.extend(sentinels("end", end, partitions));
    events
}
