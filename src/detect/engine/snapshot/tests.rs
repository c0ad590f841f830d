//! Tests of saving and restoring a partition's engine (`super`).

use super::*;
use crate::detect::config::Cell;
use crate::detect::event::{ChurnKind, RecordKey, TicketOutcomeEvent};
use crate::detect::snapshot::ids::{IDS_BY_DAY, IDS_VERSION, MIN_ID_CHUNK};
use crate::detect::snapshot::STATE_LEN;
use crate::detect::OutcomeKind;

const T0: i64 = 1_773_000_000_000;
const H: i64 = 3_600_000;
const SUB: u64 = 8613012345678;

fn config() -> DetectConfig {
    let mut cfg = DetectConfig::default();
    cfg.routing
        .matrix
        .insert("star_1".into(), [Cell::P3, Cell::P4, Cell::P4]);
    cfg
}

fn cdr(n: u64, sub: u64, t: i64, kind: CdrKind, other: &'static str) -> Event<'static> {
    Event::Cdr(Cdr {
        id: RecordKey(n),
        subscriber: Msisdn(sub),
        time_ms: t,
        kind,
        other_party: other,
        duration_s: 300,
        data_bytes: 0,
        charge: 120,
        call_ref: 0,
        partial: false,
        roaming: false,
    })
}

fn account(n: u64, sub: u64, t: i64, kind: AccountKind) -> Event<'static> {
    Event::Account(AccountEvent {
        id: RecordKey(n),
        subscriber: Msisdn(sub),
        time_ms: t,
        kind,
    })
}

/// An engine with something in every side table: rule marks and routed tickets, a
/// partial call, contacts, pending facts, a retained outcome and de-duplication ids.
fn busy_engine() -> Engine {
    let mut e = Engine::new(&config(), &[]).unwrap();
    let mut out = Vec::new();
    let mut n = 0;
    let mut id = || {
        n += 1;
        n
    };
    for d in 0..12i64 {
        for s in 0..5u64 {
            let t = T0 + d * 24 * H + (s as i64) * H;
            e.apply(
                &cdr(id(), SUB + s, t, CdrKind::VoiceOut, "13012340001"),
                &mut out,
            );
            if d >= 4 && s % 2 == 0 {
                e.apply(
                    &cdr(id(), SUB + s, t + H, CdrKind::Forward, "13812345678"),
                    &mut out,
                );
            }
        }
    }
    let t = T0 + 11 * 24 * H + 20 * H;
    let mut part = cdr(id(), SUB + 1, t, CdrKind::VoiceOut, "10086");
    if let Event::Cdr(c) = &mut part {
        (c.partial, c.call_ref) = (true, 77);
    }
    e.apply(&part, &mut out);
    e.apply(&cdr(id(), SUB + 3, t, CdrKind::VoiceOut, "10086"), &mut out);
    for (s, kind) in [
        (0, AccountKind::Complaint),
        (0, AccountKind::FaultReport),
        (1, AccountKind::PlanChanged { monthly_fee: 8_800 }),
        (2, AccountKind::Payment { amount: 500 }),
        (
            4,
            AccountKind::ProfileUpdated {
                do_not_disturb: true,
                key_person: true,
                activated_time_ms: T0 - 400 * 24 * H,
            },
        ),
        (
            4,
            AccountKind::Churned {
                kind: ChurnKind::PortOut,
            },
        ),
    ] {
        e.apply(&account(id(), SUB + s, t + H, kind), &mut out);
    }
    assert!(!out.is_empty(), "the fixture raises tickets");
    let outcome = TicketOutcomeEvent {
        ticket_id: &out[0].ticket_id,
        subscriber: Msisdn(SUB),
        time_ms: t,
        outcome: OutcomeKind::Retained,
    };
    e.apply_outcome(&outcome);
    e
}

/// Restores `e`'s full snapshot into a fresh engine, subscribers in reverse slot order.
fn restored(e: &mut Engine, max_chunk: usize) -> Engine {
    let mut records = Vec::new();
    e.drain_changed(true, |m, b| records.push((m, b.to_vec())));
    let mut chunks = Vec::new();
    e.drain_ids(true, max_chunk, |b| chunks.push(b.to_vec()));
    let blob = e.encode_partition();
    let mut r = Engine::new(&config(), &[]).unwrap();
    r.restore_partition(&blob).unwrap();
    for (m, b) in records.iter().rev() {
        r.restore_subscriber(*m, b).unwrap();
    }
    for c in &chunks {
        assert!(c.len() <= max_chunk.max(MIN_ID_CHUNK));
        r.restore_ids(c).unwrap();
    }
    r.restore_finish();
    r
}

#[test]
fn a_restored_engine_encodes_to_the_same_bytes() {
    let mut e = busy_engine();
    assert!(!e.partials.is_empty() && !e.contacts.is_empty() && !e.facts.is_empty());
    assert!(!e.marks.is_empty());
    let mut r = restored(&mut e, 100);
    assert_eq!(r.encode_partition(), e.encode_partition());
    assert_eq!(r.seen_ids, e.seen_ids);
    assert_eq!(r.partials_min_end, e.partials_min_end);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    e.drain_changed(true, |m, x| a.push((m, x.to_vec())));
    r.drain_changed(true, |m, x| b.push((m, x.to_vec())));
    assert_eq!(a, b, "same subscribers in the same slots");
    let mut nothing = 0;
    r.restore_finish();
    r.drain_changed(false, |_, _| nothing += 1);
    assert_eq!(nothing, 0, "a restore leaves nothing changed");
}

#[test]
fn only_changed_subscribers_and_new_ids_are_drained() {
    let mut e = busy_engine();
    e.drain_changed(false, |_, _| {});
    e.drain_ids(false, 4096, |_| {});
    let mut out = Vec::new();
    let t = e.newest_event_ms().unwrap();
    e.apply(
        &cdr(9_001, SUB + 2, t, CdrKind::SmsOut, "13012340001"),
        &mut out,
    );
    e.apply(
        &cdr(9_002, SUB + 2, t, CdrKind::SmsIn, "13012340001"),
        &mut out,
    );
    let mut changed = Vec::new();
    e.drain_changed(false, |m, _| changed.push(m));
    assert_eq!(changed, vec![SUB + 2]);
    let mut chunks = Vec::new();
    e.drain_ids(false, 4096, |b| chunks.push(b.to_vec()));
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].len(), 1 + 12 + 2 * 8, "one group of two ids");
    e.drain_ids(false, 4096, |_| panic!("nothing new"));
}

#[test]
fn unknown_versions_and_truncations_are_errors() {
    let e = busy_engine();
    let blob = e.encode_partition();
    let mut r = Engine::new(&config(), &[]).unwrap();
    for n in 0..blob.len() {
        assert!(
            r.restore_partition(&blob[..n]).is_err(),
            "{n} of {}",
            blob.len()
        );
    }
    let mut bad = blob.clone();
    bad[0] = 4;
    let err = r.restore_partition(&bad).unwrap_err().to_string();
    assert_eq!(
        err,
        "unknown partition encoding version 4 (this build reads version 3)"
    );
    let err = r.restore_ids(&[7, 0, 0]).unwrap_err().to_string();
    assert!(err.contains("ids encoding version 7"), "{err}");
    assert!(r
        .restore_ids(&[IDS_VERSION, 1, 0, 0, 0, 5, 0, 0, 0, 1])
        .is_err());
    assert!(r.restore_subscriber(SUB, &[1, 2, 3]).is_err());
}

#[test]
fn ids_of_an_earlier_build_by_event_day_are_still_recognised() {
    let mut e = Engine::new(&config(), &[]).unwrap();
    let t = T0;
    let day = e.calendar().day_of(t);
    let mut v1 = vec![IDS_BY_DAY];
    v1.extend_from_slice(&day.to_le_bytes());
    v1.extend_from_slice(&1u32.to_le_bytes());
    v1.extend_from_slice(&4_242u64.to_le_bytes());
    e.restore_ids(&v1).unwrap();
    let mut out = Vec::new();
    let again = cdr(4_242, SUB, t, CdrKind::SmsIn, "13012340001");
    assert_eq!(e.apply(&again, &mut out), Applied::Duplicate);
}

#[test]
fn a_log_with_clashes_is_renumbered_and_rewritten_whole() {
    let mut e = busy_engine();
    let mut records = Vec::new();
    e.drain_changed(true, |m, b| records.push((m, b.to_vec())));
    let mut r = Engine::new(&config(), &[]).unwrap();
    // The first subscriber's record is missing; the second's comes twice, the later
    // (a changed state) winning; the third claims the second's slot.
    let (second, mut newer) = records[1].clone();
    newer[1] ^= 0xff;
    let (third, mut clash) = records[2].clone();
    clash[STATE_LEN..STATE_LEN + 4].copy_from_slice(&1u32.to_le_bytes());
    for (m, b) in records.iter().skip(1).chain([&(second, newer.clone())]) {
        r.restore_subscriber(*m, b).unwrap();
    }
    r.restore_subscriber(third, &clash).unwrap();
    r.restore_finish();
    let mut again = Vec::new();
    r.drain_changed(false, |m, b| again.push((m, b.to_vec())));
    assert_eq!(again.len(), records.len() - 1, "every subscriber rewritten");
    assert_eq!(again[0].0, second, "table order kept, packed");
    assert_eq!(&again[0].1[..STATE_LEN], &newer[..STATE_LEN]);
    assert_eq!(&again[0].1[STATE_LEN..STATE_LEN + 4], &[0, 0, 0, 0]);
}

#[test]
fn a_gap_in_the_log_is_a_free_slot() {
    let mut e = busy_engine();
    let mut records = Vec::new();
    e.drain_changed(true, |m, b| records.push((m, b.to_vec())));
    let mut r = Engine::new(&config(), &[]).unwrap();
    for (m, b) in records.iter().skip(1) {
        r.restore_subscriber(*m, b).unwrap();
    }
    r.restore_finish();
    r.drain_changed(false, |_, _| panic!("an exact restore rewrites nothing"));
    assert_eq!(r.subs.find(records[1].0), Some(1));
    assert!(!r.subs.is_live(0));
    assert_eq!(r.subs.slot(SUB + 99), 0, "the gap is reused first");
}

/// Evicts `number` from `e` as a day close would.
fn evict(e: &mut Engine, number: u64) {
    let slot = e.subs.find(number).unwrap();
    e.collect_eviction(slot, crate::detect::eviction::Reason::Churned);
    e.evict_collected(true);
}

#[test]
fn an_eviction_is_a_tombstone_and_a_restore_forgets_it() {
    let mut e = busy_engine();
    let mut log: Vec<(u64, Option<Vec<u8>>)> = Vec::new();
    e.drain_evicted(|_| panic!("nothing evicted yet"));
    e.drain_changed(true, |m, b| log.push((m, Some(b.to_vec()))));
    let gone = SUB + 4;
    let slot = e.subs.find(gone).unwrap();
    assert!(e.marks.keys().any(|&(s, _)| s == slot), "it has side state");
    evict(&mut e, gone);
    assert!(
        e.marks.keys().all(|&(s, _)| s != slot),
        "side state dropped"
    );
    assert_eq!(e.stats().evicted.get("churned"), Some(&1));
    e.drain_evicted(|m| log.push((m, None)));
    e.drain_changed(false, |m, b| log.push((m, Some(b.to_vec()))));
    assert_eq!(
        log.last(),
        Some(&(gone, None)),
        "a tombstone, nothing rewritten"
    );
    let blob = e.encode_partition();
    let mut r = Engine::new(&config(), &[]).unwrap();
    for (m, value) in &log {
        match value {
            Some(b) => r.restore_subscriber(*m, b).unwrap(),
            None => r.forget_subscriber(*m),
        }
    }
    r.restore_partition(&blob).unwrap();
    r.restore_finish();
    assert!(r.subscriber(Msisdn(gone)).is_none());
    assert_eq!(r.encode_partition(), blob);
    r.drain_changed(false, |_, _| panic!("an exact restore rewrites nothing"));
    let (mut a, mut b) = (Vec::new(), Vec::new());
    e.drain_changed(true, |m, x| a.push((m, x.to_vec())));
    r.drain_changed(true, |m, x| b.push((m, x.to_vec())));
    assert_eq!(a, b, "same subscribers in the same slots");
    assert_eq!(
        r.subs.slot(SUB + 99),
        e.subs.slot(SUB + 99),
        "same free slot"
    );
}

#[test]
fn evicted_numbers_are_kept_only_for_a_checkpointed_engine() {
    let mut e = busy_engine();
    evict(&mut e, SUB + 4);
    e.drain_evicted(|_| panic!("never checkpointed: no tombstone needed"));
    evict(&mut e, SUB + 3);
    let mut tombstones = Vec::new();
    e.drain_evicted(|m| tombstones.push(m));
    assert_eq!(tombstones, vec![SUB + 3]);
}

#[test]
fn last_tickets_survive_a_restore_and_are_judged_the_same() {
    let mut e = busy_engine();
    let last = |e: &Engine, m: u64| e.subs.last_ticket(e.subs.find(m).unwrap());
    let ticketed: Vec<u64> = (0..4)
        .map(|s| SUB + s)
        .filter(|&m| last(&e, m).is_some())
        .collect();
    assert!(!ticketed.is_empty(), "the fixture tickets someone");
    let mut r = restored(&mut e, 4096);
    for &m in &ticketed {
        assert_eq!(last(&r, m), last(&e, m), "{m}");
    }
    let before = e.stats().quality.clone();
    let t = e.newest_event_ms().unwrap() + 24 * H;
    let kind = AccountKind::Churned {
        kind: ChurnKind::PortOut,
    };
    let churn = account(9_100, ticketed[0], t, kind);
    let mut out = Vec::new();
    for x in [&mut e, &mut r] {
        x.apply(&churn, &mut out);
        x.advance_to(t + 4 * 24 * H, &mut out);
    }
    let (q, rq) = (&e.stats().quality, &r.stats().quality);
    let hits = |c: &crate::detect::quality::QualityCounts| c.hits.iter().sum::<u64>();
    assert!(hits(rq) > 0, "the restored last ticket is a hit");
    assert_eq!(hits(q) - hits(&before), hits(rq));
    assert_eq!(q.misses - before.misses, rq.misses);
    assert_eq!(q.churned[0] - before.churned[0], rq.churned[0]);
}

#[test]
fn a_version_1_blob_without_followed_tickets_is_still_read() {
    // An engine with no ticket and no payment pending writes the version 1 layout plus an
    // empty list of followed tickets (4 bytes) at the end.
    let mut e = Engine::new(&config(), &[]).unwrap();
    let mut out = Vec::new();
    e.apply(&cdr(1, SUB, T0, CdrKind::VoiceOut, "13012340001"), &mut out);
    assert!(out.is_empty());
    let blob = e.encode_partition();
    // Version 3's per-input progress (the CDR input at T0, no account event yet) follows
    // the watermark; versions 1 and 2 do not have it.
    let progress: Vec<u8> = [T0.to_le_bytes(), i64::MIN.to_le_bytes()].concat();
    let at = (blob.windows(16).position(|w| w == progress.as_slice())).expect("progress");
    let mut v1 = [&blob[..at], &blob[at + 16..blob.len() - 4]].concat();
    v1[0] = 1;
    let mut r = Engine::new(&config(), &[]).unwrap();
    r.restore_partition(&v1).unwrap();
    // Without progress of their own, both inputs resume at the newest event time.
    let both: Vec<u8> = [T0.to_le_bytes(), T0.to_le_bytes()].concat();
    let expected = [&blob[..at], &both, &blob[at + 16..]].concat();
    assert_eq!(r.encode_partition(), expected);
}
