//! Crash and restore: an engine checkpointed into a model of the adapter's compacted
//! changelog, thrown away at random points and rebuilt from it, emits exactly the tickets
//! (every version, in order) of an engine that ran uninterrupted, and ends in the same
//! state.
//!
//! The input is the `generate` population (habits, every planted journey: drops,
//! forwarding streaks, bills, DND profiles, complaints...), delivered as it would arrive
//! (some records late, some twice), with call-center outcomes for some of the tickets.
//! Tickets emitted after the last checkpoint are lost with the crash, as an uncommitted
//! Kafka transaction would be, and the input is replayed from the checkpoint.

mod common;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use churnwatch::config::Config;
use churnwatch::config::Format;
use churnwatch::detect::calendar::Calendar;
use churnwatch::detect::Engine;
use churnwatch::driver::{Driver, Record};
use churnwatch::proto::{self, CareTicket};
use churnwatch::tools::workload::population::Population;
use proptest::prelude::*;
use prost::Message;

/// One input record, in delivery order.
enum Input {
    Cdr(proto::CallDetailRecord),
    Account(proto::AccountEvent),
    Outcome(proto::TicketOutcome),
}

impl Input {
    fn record(&self) -> Record<'_> {
        match self {
            Input::Cdr(m) => Record::Cdr(m),
            Input::Account(m) => Record::Account(m),
            Input::Outcome(m) => Record::Outcome(m),
        }
    }
}

fn config() -> Config {
    let mut cfg = common::rules_config();
    cfg.detect.contact.control_group_fraction = 0.1;
    cfg
}

/// The population's records over `days` days, by delivery time.
fn population(subscribers: usize, days: u32, seed: u64) -> Vec<(i64, Input)> {
    let cfg = config();
    let cal = Calendar::new(&cfg.detect.engine.time_zone, &cfg.detect.calendar.holidays).unwrap();
    let start = chrono::NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
    let (mut pop, _) = Population::new(&cal, start, days, subscribers, seed, Format::Protobuf);
    let mut outs = Vec::new();
    for d in 0..i64::from(days) {
        let day = pop.day(d);
        outs.extend(day.cdr.into_iter().map(|o| (o, true)));
        outs.extend(day.acct.into_iter().map(|o| (o, false)));
    }
    outs.sort_by_key(|(o, _)| (o.deliver_ms, o.key));
    outs.into_iter()
        .map(|(o, is_cdr)| {
            let input = if is_cdr {
                Input::Cdr(
                    proto::CallDetailRecord::decode_length_delimited(o.bytes.as_slice()).unwrap(),
                )
            } else {
                Input::Account(
                    proto::AccountEvent::decode_length_delimited(o.bytes.as_slice()).unwrap(),
                )
            };
            (o.deliver_ms, input)
        })
        .collect()
}

/// The population plus an outcome, two days after it was created, for every third ticket
/// an uninterrupted run raises (retained, declined or unreachable in turn).
fn workload(subscribers: usize, days: u32, seed: u64) -> Vec<Input> {
    let mut input = population(subscribers, days, seed);
    let records: Vec<Input> = input.iter().map(|(_, i)| copy(i)).collect();
    let (tickets, _) = run_uninterrupted(&records);
    let mut seen = std::collections::BTreeSet::new();
    let outcomes = [
        proto::Outcome::Retained,
        proto::Outcome::Declined,
        proto::Outcome::Unreachable,
    ];
    for (n, t) in tickets
        .iter()
        .filter(|t| seen.insert(t.ticket_id.clone()))
        .enumerate()
        .filter(|(n, _)| n % 3 == 0)
    {
        let at = t.created_time_ms + 2 * common::DAY;
        let o = proto::TicketOutcome {
            ticket_id: t.ticket_id.clone(),
            subscriber: t.subscriber.clone(),
            event_time_ms: at,
            outcome: outcomes[(n / 3) % 3] as i32,
        };
        input.push((at, Input::Outcome(o)));
    }
    input.sort_by_key(|(t, _)| *t);
    input.into_iter().map(|(_, i)| i).collect()
}

fn copy(i: &Input) -> Input {
    match i {
        Input::Cdr(m) => Input::Cdr(m.clone()),
        Input::Account(m) => Input::Account(m.clone()),
        Input::Outcome(m) => Input::Outcome(m.clone()),
    }
}

fn driver() -> Driver {
    Driver::new(Engine::new(&config(), &[]).unwrap(), 0)
}

/// Every ticket (every version, in order) and the final engine.
fn run_uninterrupted(input: &[Input]) -> (Vec<CareTicket>, Engine) {
    let mut d = driver();
    let mut out = Vec::new();
    for i in input {
        let _ = d.feed(i.record(), None, &mut out);
    }
    d.finish(&mut out);
    (out, d.into_engine())
}

/// What the adapter's compacted changelog holds after its last checkpoint.
#[derive(Default)]
struct Changelog {
    subscribers: BTreeMap<u64, Vec<u8>>,
    partition: Option<Vec<u8>>,
    /// Id chunks since the last checkpoint that wrote every id.
    ids: Vec<Vec<u8>>,
}

impl Changelog {
    fn checkpoint(&mut self, e: &mut Engine, all: bool) {
        // A tombstone: compaction forgets the number.
        e.drain_evicted(|m| {
            self.subscribers.remove(&m);
        });
        e.drain_changed(all, |m, b| {
            self.subscribers.insert(m, b.to_vec());
        });
        if all {
            self.ids.clear();
        }
        e.drain_ids(all, 4096, |c| self.ids.push(c.to_vec()));
        self.partition = Some(e.encode_partition());
    }

    /// A fresh engine restored from the log; the partition blob comes first or last.
    fn restore(&self, blob_first: bool) -> Driver {
        let mut d = driver();
        let e = d.engine_mut();
        if blob_first {
            if let Some(p) = &self.partition {
                e.restore_partition(p).unwrap();
            }
        }
        for (m, b) in &self.subscribers {
            e.restore_subscriber(*m, b).unwrap();
        }
        for c in &self.ids {
            e.restore_ids(c).unwrap();
        }
        if !blob_first {
            if let Some(p) = &self.partition {
                e.restore_partition(p).unwrap();
            }
        }
        e.restore_finish();
        d
    }
}

/// Runs `input` checkpointing every `every` records (every id and subscriber at each
/// tenth checkpoint), crashing just after each record index in `cuts` (each once):
/// tickets since the last checkpoint are lost and the input replays from there.
fn run_with_crashes(input: &[Input], every: usize, cuts: &[usize]) -> (Vec<CareTicket>, Engine) {
    let mut cuts: Vec<usize> = cuts.to_vec();
    cuts.sort_unstable();
    cuts.dedup();
    cuts.reverse();
    let mut log = Changelog::default();
    let mut d = driver();
    let (mut committed, mut pending) = (Vec::new(), Vec::new());
    let (mut i, mut last, mut checkpoints) = (0, 0, 0);
    while i < input.len() {
        let _ = d.feed(input[i].record(), None, &mut pending);
        i += 1;
        if i % every == 0 {
            log.checkpoint(d.engine_mut(), checkpoints % 10 == 0);
            checkpoints += 1;
            committed.append(&mut pending);
            last = i;
        }
        if cuts.last() == Some(&i) {
            cuts.pop();
            d = log.restore(cuts.len() % 2 == 0);
            pending.clear();
            i = last;
        }
    }
    d.finish(&mut pending);
    committed.append(&mut pending);
    (committed, d.into_engine())
}

/// Every subscriber record, in slot order, and the partition blob.
fn snapshot(e: &mut Engine) -> (Vec<(u64, Vec<u8>)>, Vec<u8>) {
    let mut subs = Vec::new();
    e.drain_changed(true, |m, b| subs.push((m, b.to_vec())));
    (subs, e.encode_partition())
}

fn assert_same_run(a: &mut (Vec<CareTicket>, Engine), b: &mut (Vec<CareTicket>, Engine)) {
    assert_eq!(a.0.len(), b.0.len(), "ticket count");
    for (n, (x, y)) in a.0.iter().zip(&b.0).enumerate() {
        assert_eq!(x, y, "ticket {n} of {}", a.0.len());
    }
    let (sa, pa) = snapshot(&mut a.1);
    let (sb, pb) = snapshot(&mut b.1);
    assert!(sa == sb, "subscriber states differ");
    assert!(pa == pb, "partition state differs");
}

static INPUT: LazyLock<Vec<Input>> = LazyLock::new(|| workload(1_500, 100, 11));
static UNINTERRUPTED: LazyLock<Vec<CareTicket>> = LazyLock::new(|| run_uninterrupted(&INPUT).0);

#[test]
fn a_restored_engine_continues_exactly_as_one_never_stopped() {
    let mut a = run_uninterrupted(&INPUT);
    let n = INPUT.len();
    assert!(n > 50_000, "{n} records");
    assert!(a.0.len() > 50, "{} tickets", a.0.len());
    let outcomes = INPUT
        .iter()
        .filter(|i| matches!(i, Input::Outcome(_)))
        .count();
    assert!(outcomes > 15, "{outcomes} outcomes");
    let evicted = a.1.stats().evicted.get("churned").copied().unwrap_or(0);
    assert!(evicted > 0, "churned subscribers are evicted (tombstones)");
    // Cuts spread over the run, one just after a checkpoint and one just before.
    let cuts = [
        n / 7,
        n / 3 + 1,
        n / 2 + 1_999,
        2 * n / 3 + 2_000,
        9 * n / 10,
    ];
    let mut b = run_with_crashes(&INPUT, 2_000, &cuts);
    assert_same_run(&mut a, &mut b);
    eprintln!(
        "{n} records, {} tickets, {} subscribers: partition blob {} bytes at the end",
        a.0.len(),
        a.1.stats().subscribers,
        a.1.encode_partition().len()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn any_checkpoint_interval_and_crash_points_give_the_same_tickets(
        every in 300usize..6_000,
        cuts in proptest::collection::vec(0.0f64..1.0, 1..5),
    ) {
        let n = INPUT.len();
        let cuts: Vec<usize> = cuts.iter().map(|c| 1 + (c * (n - 1) as f64) as usize).collect();
        let (b, _) = run_with_crashes(&INPUT, every, &cuts);
        prop_assert!(b == *UNINTERRUPTED, "every {every}, cuts {cuts:?}");
    }
}

/// Restore speed, for the record (release build):
/// `cargo test --release --test engine_restore -- --ignored --nocapture`.
#[test]
#[ignore]
fn restore_speed_of_a_million_subscribers() {
    use churnwatch::detect::{Cdr, CdrKind, Event, Msisdn, RecordKey};
    use std::time::Instant;
    const N: u64 = 1_000_000;
    let mut cfg = config();
    cfg.detect.engine.expected_subscribers = N as usize;
    let mut e = Engine::new(&cfg, &[]).unwrap();
    let t0 = common::at("2026-03-02 08:00");
    let mut out = Vec::new();
    for i in 0..N {
        // Numbers in a scrambled order, so the log's key order is not the table's.
        let sub = 8613000000000 + (i.wrapping_mul(0x9e37_79b9) % 100_000_000);
        let ev = Event::Cdr(Cdr {
            id: RecordKey(i),
            subscriber: Msisdn(sub),
            time_ms: t0 + (i % 3_600_000) as i64,
            kind: CdrKind::VoiceOut,
            other_party: "13012340001",
            duration_s: 60 + (i % 600) as u32,
            data_bytes: 0,
            charge: (i % 500) as i64,
            call_ref: 0,
            partial: false,
            roaming: false,
        });
        e.apply(&ev, &mut out);
    }
    let subscribers = e.stats().subscribers;
    let started = Instant::now();
    let mut log: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    e.drain_changed(true, |m, b| {
        log.insert(m, b.to_vec());
    });
    let encode_s = started.elapsed().as_secs_f64();
    let blob = e.encode_partition();
    // As a consumer fetches them: records back to back in a few large buffers.
    let keys: Vec<u64> = log.keys().copied().collect();
    let len = log.values().next().map_or(0, Vec::len);
    let fetched: Vec<u8> = log.values().flatten().copied().collect();
    drop(log);
    let started = Instant::now();
    let mut check = 0u64;
    for b in fetched.chunks_exact(len) {
        let st = churnwatch::detect::snapshot::decode_state(&b[..len - 4]).unwrap();
        check = check.wrapping_add(u64::from(st.first_day));
    }
    let decode_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut r = Engine::new(&cfg, &[]).unwrap();
    for (m, b) in keys.iter().zip(fetched.chunks_exact(len)) {
        r.restore_subscriber(*m, b).unwrap();
    }
    let insert_s = started.elapsed().as_secs_f64();
    r.restore_partition(&blob).unwrap();
    r.restore_finish();
    let restore_s = started.elapsed().as_secs_f64();
    assert_eq!(r.stats().subscribers, subscribers);
    eprintln!(
        "{subscribers} subscribers ({check}): encoded {:.0}/s; decoded {:.0}/s; restored \
         {:.0}/s ({insert_s:.3} s decode and insert, {:.3} s reorder and finish); \
         record {len} bytes, partition blob {} bytes",
        subscribers as f64 / encode_s,
        subscribers as f64 / decode_s,
        subscribers as f64 / restore_s,
        restore_s - insert_s,
        blob.len(),
    );
}
