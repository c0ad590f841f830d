//! Bounded memory: over simulated months, a stream brings in many times the table's steady
//! size in distinct subscribers, each active a few days and then silent, a quarter of them
//! churning. Eviction keeps the engine's state (`Engine::state_bytes`) and the table flat
//! once the first evictions start, while subscribers still in use are never evicted and
//! still get their tickets.

use churnwatch::config::Config;
use churnwatch::detect::snapshot::STATE_LEN;
use churnwatch::detect::{
    AccountEvent, AccountKind, Cdr, CdrKind, ChurnKind, Engine, Event, Msisdn, RecordKey,
};
use churnwatch::proto::CareTicket;
use std::collections::BTreeMap;

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;
/// 2026-01-01 00:00 in Asia/Shanghai.
const T0: i64 = 1_767_196_800_000;
/// New subscribers a day, each active for `ACTIVE_DAYS` days, then silent for good.
const COHORT: u64 = 40;
const ACTIVE_DAYS: i64 = 4;
const DAYS: i64 = 420;
const IDLE_DAYS: u32 = 63;
/// Active every day, and calls a competitor's care line at the end.
const LOYAL: u64 = 8613000000001;
/// One record every 60 days: never idle for the horizon.
const SPARSE: u64 = 8613000000002;
const FIRST_NEW: u64 = 8613100000000;

struct Stream {
    next_id: u64,
    events: Vec<(i64, Event<'static>)>,
}

impl Stream {
    fn cdr(&mut self, sub: u64, t: i64, other: &'static str, secs: u32) {
        self.next_id += 1;
        let cdr = Cdr {
            id: RecordKey(self.next_id),
            subscriber: Msisdn(sub),
            time_ms: t,
            kind: CdrKind::VoiceOut,
            other_party: other,
            duration_s: secs,
            data_bytes: 0,
            charge: 50,
            call_ref: 0,
            partial: false,
            roaming: false,
        };
        self.events.push((t, Event::Cdr(cdr)));
    }

    fn churn(&mut self, sub: u64, t: i64) {
        self.next_id += 1;
        let ev = AccountEvent {
            id: RecordKey(self.next_id),
            subscriber: Msisdn(sub),
            time_ms: t,
            kind: AccountKind::Churned {
                kind: ChurnKind::PortOut,
            },
        };
        self.events.push((t, Event::Account(ev)));
    }

    /// Day `d`'s records, in event-time order.
    fn day(&mut self, d: i64) -> &[(i64, Event<'static>)] {
        self.events.clear();
        let start = T0 + d * DAY;
        self.cdr(LOYAL, start + 9 * HOUR, "13012340001", 120);
        if d % 60 == 0 {
            self.cdr(SPARSE, start + 10 * HOUR, "13012340001", 60);
        }
        if d == DAYS - 3 {
            self.cdr(LOYAL, start + 11 * HOUR, "10086", 300);
        }
        for born in (d - ACTIVE_DAYS + 1).max(0)..=d {
            for i in 0..COHORT {
                let sub = FIRST_NEW + born as u64 * COHORT + i;
                let t = start + (i as i64 % 20) * HOUR + 7 * 60_000;
                self.cdr(sub, t, "13012340001", 30 + i as u32);
                if i % 4 == 0 && born + ACTIVE_DAYS - 1 == d {
                    self.churn(sub, t + HOUR);
                }
            }
        }
        self.events.sort_by_key(|(t, _)| *t);
        &self.events
    }
}

struct Sample {
    day: i64,
    bytes: usize,
    subscribers: usize,
}

fn config(eviction: bool) -> Config {
    let mut cfg = Config::default();
    if eviction {
        cfg.detect.engine.idle_eviction_days = IDLE_DAYS;
    } else {
        cfg.detect.engine.idle_eviction_days = 0;
        cfg.detect.engine.churned_eviction_days = 0;
    }
    cfg
}

/// Streams every day through an engine, sampling after each; the loyal subscriber's
/// tickets and the engine at the end.
fn soak(cfg: &Config) -> (Vec<Sample>, Vec<CareTicket>, Engine) {
    let mut engine = Engine::new(cfg, &[]).unwrap();
    let mut stream = Stream {
        next_id: 0,
        events: Vec::new(),
    };
    let (mut out, mut loyal, mut samples) = (Vec::new(), Vec::new(), Vec::new());
    for d in 0..DAYS {
        for (_, ev) in stream.day(d) {
            engine.apply(ev, &mut out);
        }
        if d == DAYS - 1 {
            engine.finish(&mut out);
        }
        let keep = LOYAL.to_string();
        loyal.extend(out.drain(..).filter(|t| t.subscriber == keep));
        for sub in [LOYAL, SPARSE] {
            assert!(
                engine.subscriber(Msisdn(sub)).is_some(),
                "day {d}: {sub} evicted"
            );
        }
        samples.push(Sample {
            day: d,
            bytes: engine.state_bytes(),
            subscribers: engine.stats().subscribers,
        });
    }
    (samples, loyal, engine)
}

/// A compacted changelog: the latest record per number, tombstones forgetting.
#[derive(Default)]
struct Changelog {
    subscribers: BTreeMap<u64, Vec<u8>>,
    partition: Vec<u8>,
    ids: Vec<Vec<u8>>,
}

impl Changelog {
    fn checkpoint(&mut self, e: &mut Engine) {
        e.drain_evicted(|m| {
            self.subscribers.remove(&m);
        });
        e.drain_changed(false, |m, b| {
            self.subscribers.insert(m, b.to_vec());
        });
        self.ids.clear();
        e.drain_ids(true, 1 << 16, |c| self.ids.push(c.to_vec()));
        self.partition = e.encode_partition();
    }

    fn restore(&self, cfg: &Config) -> Engine {
        let mut e = Engine::new(cfg, &[]).unwrap();
        for (m, b) in &self.subscribers {
            e.restore_subscriber(*m, b).unwrap();
        }
        for c in &self.ids {
            e.restore_ids(c).unwrap();
        }
        e.restore_partition(&self.partition).unwrap();
        e.restore_finish();
        e
    }
}

fn max_of(samples: &[Sample], f: impl Fn(&Sample) -> usize) -> usize {
    samples.iter().map(f).max().unwrap_or(0)
}

#[test]
fn memory_stays_flat_while_distinct_subscribers_stream_through() {
    let (samples, loyal, engine) = soak(&config(true));
    // Evictions start IDLE_DAYS after the first cohorts went silent.
    let warm_up = IDLE_DAYS as i64 + ACTIVE_DAYS + 30;
    let (warm, rest): (Vec<_>, Vec<_>) = samples.into_iter().partition(|s| s.day < warm_up);
    let last_half: Vec<_> = rest.into_iter().filter(|s| s.day >= DAYS / 2).collect();
    let (warm_bytes, warm_subs) = (max_of(&warm, |s| s.bytes), max_of(&warm, |s| s.subscribers));
    let (end_bytes, end_subs) = (
        max_of(&last_half, |s| s.bytes),
        max_of(&last_half, |s| s.subscribers),
    );
    eprintln!(
        "warm-up (days < {warm_up}): max {warm_bytes} bytes, {warm_subs} subscribers; \
         last half: max {end_bytes} bytes, {end_subs} subscribers; distinct {}; evicted {:?}",
        COHORT * DAYS as u64 + 2,
        engine.stats().evicted
    );
    assert!(
        end_bytes * 10 <= warm_bytes * 11,
        "{end_bytes} vs {warm_bytes}"
    );
    assert!(end_subs * 10 <= warm_subs * 11, "{end_subs} vs {warm_subs}");
    assert!(
        COHORT * DAYS as u64 >= 5 * end_subs as u64,
        "the stream brings in at least 5x the table's size"
    );
    let evicted = &engine.stats().evicted;
    assert!(
        evicted.get("churned").copied().unwrap_or(0) > 0,
        "{evicted:?}"
    );
    assert!(evicted.get("idle").copied().unwrap_or(0) > 0, "{evicted:?}");

    let care: Vec<_> = loyal
        .iter()
        .filter(|t| t.signals.iter().any(|s| s.rule == "competitor_care_call"))
        .collect();
    assert_eq!(
        care.len(),
        1,
        "the loyal subscriber's care call is ticketed"
    );
    assert_eq!(care[0].created_time_ms, T0 + (DAYS - 3) * DAY + 11 * HOUR);
    let first_day = engine.subscriber(Msisdn(LOYAL)).unwrap().first_day;
    assert_eq!(
        i32::from(first_day),
        engine.calendar().day_of(T0),
        "its history was never reset"
    );
}

/// Subscriber number -> state bytes (without the slot trailer).
fn states(e: &mut Engine) -> BTreeMap<u64, Vec<u8>> {
    let mut all = BTreeMap::new();
    e.drain_changed(true, |m, x| {
        all.insert(m, x[..STATE_LEN].to_vec());
    });
    all
}

/// Restores lose the exact last-seen days of subscribers silent for longer than the
/// history (they are rebuilt from the state, later than they were): such subscribers are
/// evicted late, never early, and once the restores stop the engine ends where an
/// uninterrupted one does.
#[test]
fn an_engine_restored_along_the_way_never_evicts_early_and_catches_up() {
    let cfg = config(true);
    let (_, _, mut whole) = soak(&cfg);
    let (mut e, mut log) = (Engine::new(&cfg, &[]).unwrap(), Changelog::default());
    let mut stream = Stream {
        next_id: 0,
        events: Vec::new(),
    };
    let mut out = Vec::new();
    let mut restored_at = 0;
    for d in 0..DAYS {
        for (_, ev) in stream.day(d) {
            e.apply(ev, &mut out);
        }
        log.checkpoint(&mut e);
        if d % 50 == 49 && d < 300 {
            e = log.restore(&cfg);
            restored_at = d;
        }
        let born_silent =
            FIRST_NEW + (d - ACTIVE_DAYS - IDLE_DAYS as i64 + 1).max(0) as u64 * COHORT;
        assert!(
            (born_silent..FIRST_NEW + (d as u64 + 1) * COHORT)
                .all(|m| e.subscriber(Msisdn(m)).is_some() || m % 4 == FIRST_NEW % 4),
            "day {d}: a subscriber seen within the horizon was evicted"
        );
    }
    e.finish(&mut out);
    assert!(
        e.stats().evicted.get("idle").copied().unwrap_or(0) > 0,
        "{restored_at}"
    );
    assert!(
        states(&mut e) == states(&mut whole),
        "same subscribers and states at the end"
    );
    log.checkpoint(&mut e);
    assert_eq!(
        log.subscribers.len(),
        whole.stats().subscribers,
        "tombstones compact"
    );
}
