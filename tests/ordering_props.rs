//! Property: tickets do not depend on arrival order within the allowed lateness, nor on
//! duplicate delivery. The last version of every ticket id (tickets are upserts) from a
//! shuffled, duplicated delivery equals that from in-order delivery. The streams mix CDRs
//! with account events of every kind that changes a subscriber's standing (bills and
//! payments, contracts, plans, profiles, suspensions), several close together in time.
//!
//! A second property feeds wire records through the driver and counts tickets: a record
//! delivered twice in a row, or a whole input delivered again (a restart from an old
//! offset), raises no ticket the first delivery did not. The engine promises exact
//! de-duplication over the lateness horizon, and anything older is late.

mod common;

use churnwatch::config::Config;
use churnwatch::detect::{AccountKind, CdrKind, Engine, Event, SuspensionReason};
use churnwatch::driver::{Driver, Fed, Record};
use churnwatch::proto::{self, account_event::Kind};
use common::*;
use proptest::prelude::*;

/// splitmix64: a tiny deterministic generator for workloads.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

const OTHERS: [&str; 4] = ["13012340001", "13812340002", "18912340003", "01088886666"];

/// A random workload: a few subscribers over ~45 days, with the situations every rule
/// watches for sprinkled in, and account events that change the subscriber's standing
/// ([`account_history`]).
fn workload(seed: u64) -> Vec<Event<'static>> {
    let mut r = Rng(seed);
    let t0 = at("2026-02-20 00:00");
    let mut evs = Vec::new();
    let mut n = 0u64;
    let mut id = |p: &str| {
        n += 1;
        format!("{p}-{n}")
    };
    for s in 0..4u64 {
        let sub = SUB + s;
        let quit = 20 + r.below(30) as i64;
        let fwd_from = r.below(40) as i64;
        let fwd_len = r.below(8) as i64;
        for d in 0..48i64 {
            let day = t0 + d * DAY;
            if d < quit {
                for _ in 0..1 + r.below(3) {
                    let t = day + (r.below(86_400) as i64) * 1000;
                    let other = OTHERS[r.below(4) as usize];
                    let kind = if r.chance(50) {
                        CdrKind::VoiceOut
                    } else {
                        CdrKind::VoiceIn
                    };
                    evs.push(with_charge(
                        cdr(&id("v"), sub, t, kind, other, 20 + r.below(900) as u32),
                        r.below(400) as i64,
                    ));
                }
                if r.chance(70) {
                    evs.push(data(
                        &id("d"),
                        sub,
                        day + (r.below(86_400) as i64) * 1000,
                        r.below(300 << 20),
                    ));
                }
            }
            if d >= fwd_from && d < fwd_from + fwd_len {
                let t = day + (r.below(86_400) as i64) * 1000;
                evs.push(cdr(&id("f"), sub, t, CdrKind::Forward, "13812345678", 30));
            }
            if r.chance(4) {
                let t = day + (r.below(86_400) as i64) * 1000;
                evs.push(voice(&id("cc"), sub, t, "10086", 30 + r.below(120) as u32));
            }
            if r.chance(3) {
                // A care call cut into contiguous partial records.
                let mut t = day + (r.below(80_000) as i64) * 1000;
                let call_ref = r.next() | 1;
                for _ in 0..2 + r.below(2) {
                    let dur = 10 + r.below(40) as u32;
                    evs.push(partial(&id("p"), sub, t, "10000", dur, call_ref));
                    t += i64::from(dur) * 1000;
                }
            }
            if r.chance(3) {
                evs.push(voice(
                    &id("ip"),
                    sub,
                    day + 3_600_000,
                    "1795113012340009",
                    3_000,
                ));
            }
            let t = day + (r.below(86_400) as i64) * 1000;
            match r.below(60) {
                0 => evs.push(account(&id("c"), sub, t, AccountKind::Complaint)),
                1 => evs.push(account(&id("fr"), sub, t, AccountKind::FaultReport)),
                2 => evs.push(account(
                    &id("o"),
                    sub,
                    t,
                    AccountKind::BillOverdue {
                        period: period("2026-02"),
                        amount: 5_000,
                        days_overdue: 3 + r.below(20) as u32,
                    },
                )),
                3 => evs.push(account(
                    &id("s"),
                    sub,
                    t,
                    AccountKind::Suspended {
                        reason: SuspensionReason::NumberRetention,
                    },
                )),
                4 => evs.push(account(
                    &id("t"),
                    sub,
                    t,
                    AccountKind::TopUp {
                        amount: 1_000,
                        balance_after: r.below(1_000) as i64,
                    },
                )),
                _ => {}
            }
        }
        account_history(&mut r, &mut id, sub, t0, &mut evs);
    }
    evs
}

/// A random time within `hours` after `t`.
fn within(r: &mut Rng, t: i64, hours: u64) -> i64 {
    t + r.below(hours * 3_600) as i64 * 1000
}

/// Account events of one subscriber: its CRM profile (activation, do-not-disturb, key
/// person) and plan, each sometimes changed twice within the lateness; contract updates,
/// two of them close together half the time; a first bill and payments before and after it;
/// suspensions and resumptions within hours of each other.
fn account_history(
    r: &mut Rng,
    id: &mut impl FnMut(&str) -> String,
    sub: u64,
    t0: i64,
    evs: &mut Vec<Event<'static>>,
) {
    let activated = t0 - (r.below(40) as i64) * DAY;
    let mut profile = |r: &mut Rng, t: i64, act: i64| {
        let kind = AccountKind::ProfileUpdated {
            do_not_disturb: r.chance(30),
            key_person: r.chance(30),
            activated_time_ms: act,
        };
        account(&id("pr"), sub, t, kind)
    };
    let first = within(r, t0, 24);
    evs.push(profile(r, first, activated));
    for _ in 0..r.below(3) {
        let t = within(r, t0, 44 * 24);
        evs.push(profile(r, t, 0));
        if r.chance(50) {
            let t2 = within(r, t, 40);
            evs.push(profile(r, t2, activated));
        }
    }
    let mut plans = vec![within(r, t0, 24)];
    for _ in 0..r.below(3) {
        let t = within(r, t0, 44 * 24);
        plans.push(t);
        if r.chance(50) {
            plans.push(within(r, t, 40));
        }
    }
    for t in plans {
        let monthly_fee = [1_800, 3_800, 5_800, 8_800, 12_800][r.below(5) as usize];
        evs.push(account(
            &id("pl"),
            sub,
            t,
            AccountKind::PlanChanged { monthly_fee },
        ));
    }
    let k = within(r, t0, 30 * 24);
    for t in [k, within(r, k, 40)]
        .into_iter()
        .take(1 + r.below(2) as usize)
    {
        let end_time_ms = t + (20 + r.below(60) as i64) * DAY;
        evs.push(account(
            &id("k"),
            sub,
            t,
            AccountKind::ContractUpdated { end_time_ms },
        ));
    }
    let issued = within(r, at("2026-03-01 00:00"), 30);
    let bill = AccountKind::BillIssued {
        period: period("2026-02"),
        amount: 3_000 + r.below(27_000) as i64,
        due_time_ms: issued + (3 + r.below(18) as i64) * DAY,
    };
    evs.push(account(&id("b"), sub, issued, bill));
    for _ in 0..r.below(4) {
        let paid = within(r, issued - 2 * DAY, 24 * 24);
        evs.push(account(
            &id("pay"),
            sub,
            paid,
            AccountKind::Payment { amount: 9_900 },
        ));
    }
    for _ in 0..r.below(3) {
        let t = within(r, t0, 44 * 24);
        let reason = [
            SuspensionReason::NonPayment,
            SuspensionReason::NumberRetention,
            SuspensionReason::CustomerRequest,
        ][r.below(3) as usize];
        evs.push(account(
            &id("su"),
            sub,
            t,
            AccountKind::Suspended { reason },
        ));
        if r.chance(70) {
            let back = within(r, t, 40);
            evs.push(account(&id("re"), sub, back, AccountKind::Resumed));
        }
    }
}

/// Delivers events out of order — each at most 47 h after its event time, so never beyond
/// the 48 h lateness — with some delivered twice.
fn shuffled(evs: &[Event<'static>], seed: u64, dup_pct: u64) -> Vec<Event<'static>> {
    let mut r = Rng(seed);
    let mut keyed: Vec<(i64, u64, Event<'static>)> = Vec::new();
    for e in evs {
        keyed.push((
            e.time_ms() + r.below(47 * 3_600) as i64 * 1000,
            r.next(),
            *e,
        ));
        if r.chance(dup_pct) {
            keyed.push((
                e.time_ms() + r.below(47 * 3_600) as i64 * 1000,
                r.next(),
                *e,
            ));
        }
    }
    keyed.sort_by_key(|(arrival, tie, _)| (*arrival, *tie));
    keyed.into_iter().map(|(_, _, e)| e).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn reordering_within_lateness_and_duplicates_give_the_same_tickets(
        workload_seed in any::<u64>(),
        order_seed in any::<u64>(),
        dup_pct in 0u64..30,
    ) {
        let evs = workload(workload_seed);
        // The shipped defaults: tiers, the priority matrix and the contact cap included;
        // de-dup ids kept long enough that a copy delivered anywhere within the lateness is
        // recognised (see `exact_dedup`).
        let mut cfg = churnwatch::config::Config::default();
        exact_dedup(&mut cfg);
        let reference = final_tickets(&run_with(&cfg, &in_order(evs.clone())).0);
        let (got, engine) = run_with(&cfg, &shuffled(&evs, order_seed, dup_pct));
        prop_assert_eq!(engine.stats().late, 0);
        let got = final_tickets(&got);
        prop_assert_eq!(got.keys().collect::<Vec<_>>(), reference.keys().collect::<Vec<_>>());
        prop_assert_eq!(got, reference);
    }
}

#[test]
fn the_workload_exercises_many_rules() {
    // Guards the property above against a generator that raises nothing.
    let mut rules = std::collections::BTreeSet::new();
    for seed in 0..20 {
        for t in run(&in_order(workload(seed))) {
            for s in t.signals {
                rules.insert(s.rule);
            }
        }
    }
    for r in [
        "competitor_care_call",
        "offnet_forwarding_streak",
        "silent_days",
        "complaint_burst",
        "contract_expiry",
        "overdue_bill",
        "number_retention_suspension",
        "offnet_ip_calls",
        "payment_reminder",
        "bill_shock",
    ] {
        assert!(rules.contains(r), "{r} never raised: {rules:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Redelivery through the driver: the same wire records again add no tickets
// ---------------------------------------------------------------------------------------

/// 2026-03-01T00:00Z: the redelivered records sit in the five days after it.
const T0_MS: i64 = 1_772_323_200_000;

/// A record as it comes off an input topic, before the driver validates it.
#[derive(Debug, Clone)]
enum Wire {
    Cdr(proto::CallDetailRecord),
    Account(proto::AccountEvent),
}

impl Wire {
    fn record(&self) -> Record<'_> {
        match self {
            Wire::Cdr(m) => Record::Cdr(m),
            Wire::Account(m) => Record::Account(m),
        }
    }
}

/// De-dup ids kept a day longer than the lateness, so every copy of a record that can
/// still be admitted is recognised: an id is keyed by its event day, and the first record
/// of that (day, id) may have arrived up to a day before a later one's event time. The
/// default keeps ids for 24 h of arrival (see `detect::dedup`), which covers redelivery.
fn exact_dedup(cfg: &mut Config) {
    let e = &mut cfg.detect.engine;
    e.dedup_horizon_hours = e.allowed_lateness_hours + 24;
}

fn driver() -> Driver {
    let mut cfg = Config::default();
    exact_dedup(&mut cfg);
    let engine = Engine::new(&cfg, &[]).expect("the config is valid");
    Driver::new(engine, 3_600_000)
}

/// Valid CDRs and account events for two subscribers over five days, ids drawn from a few
/// so some collide: the kinds that raise tickets at once (competitor care calls,
/// forwarding, suspensions, overdue bills) and day-close ones.
fn valid_msg() -> impl Strategy<Value = Wire> {
    let sub = prop::sample::select(vec!["8613012345678", "8613012345679"]);
    let id = (0u8..12).prop_map(|n| format!("r{n}"));
    let time = T0_MS..T0_MS + 5 * DAY;
    let other = prop::sample::select(vec![
        "10086",
        "10086",
        "10010",
        "13812340002",
        "18912340003",
        "8613012340000",
    ]);
    let cdr = (
        (
            id.clone(),
            sub.clone(),
            time.clone(),
            prop_oneof![Just(1i32), 1i32..8],
            other,
        ),
        (
            0u32..4000,
            0u64..10_000_000,
            0i64..10_000,
            0u8..3,
            any::<bool>(),
        ),
    )
        .prop_map(
            |((id, sub, t, ty, other), (dur, bytes, charge, call, partial))| {
                Wire::Cdr(proto::CallDetailRecord {
                    record_id: id,
                    subscriber: sub.into(),
                    event_time_ms: t,
                    r#type: ty,
                    other_party: other.into(),
                    duration_s: dur,
                    data_bytes: bytes,
                    charge,
                    call_reference: if call == 0 {
                        String::new()
                    } else {
                        format!("c{call}")
                    },
                    partial,
                    roaming: false,
                })
            },
        );
    let kind = prop_oneof![
        (0i32..4).prop_map(|reason| Kind::Suspended(proto::Suspended { reason })),
        (0i64..20_000, 0u32..90).prop_map(|(amount, days_overdue)| {
            Kind::BillOverdue(proto::BillOverdue {
                period: "2026-02".into(),
                amount,
                days_overdue,
            })
        }),
        (0i64..50_000).prop_map(|amount| {
            Kind::BillIssued(proto::BillIssued {
                period: "2026-02".into(),
                amount,
                due_time_ms: T0_MS + 10 * DAY,
            })
        }),
        (0i64..20_000).prop_map(|amount| Kind::Payment(proto::PaymentReceived { amount })),
        Just(Kind::Complaint(proto::Complaint {
            category: "network".into()
        })),
        (0i64..40).prop_map(|d| Kind::Contract(proto::ContractUpdated {
            end_time_ms: T0_MS + d * DAY
        })),
        any::<bool>().prop_map(|dnd| Kind::Profile(proto::ProfileUpdated {
            do_not_disturb: dnd,
            ..Default::default()
        })),
        (0i32..3).prop_map(|kind| Kind::Churned(proto::Churned { kind })),
    ];
    let account = (id, sub, time, kind).prop_map(|(id, sub, t, kind)| {
        Wire::Account(proto::AccountEvent {
            event_id: format!("a{id}"),
            subscriber: sub.into(),
            event_time_ms: t,
            kind: Some(kind),
        })
    });
    prop_oneof![3 => cdr, 1 => account]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn delivering_records_again_adds_no_tickets(
        msgs in prop::collection::vec(valid_msg(), 1..12),
    ) {
        let mut once = driver();
        let mut want = Vec::new();
        for m in &msgs {
            let _ = once.feed(m.record(), None, &mut want);
        }

        // Each record twice in a row: the second copy is a duplicate and changes nothing.
        let mut twice = driver();
        let mut got = Vec::new();
        for m in &msgs {
            let first = twice.feed(m.record(), None, &mut got);
            let before = got.len();
            let again = twice.feed(m.record(), None, &mut got);
            prop_assert_eq!(got.len(), before, "a redelivered record raised a ticket");
            match first {
                Ok(_) => prop_assert!(matches!(again, Ok(Fed::Duplicate { .. })), "{again:?}"),
                Err(e) => prop_assert_eq!(again, Err(e)),
            }
        }
        prop_assert_eq!(&got, &want);

        // The whole input again (a restart from an old offset): each record is a duplicate
        // or, once its day has closed, late; never applied twice.
        let before = got.len();
        for m in &msgs {
            let again = twice.feed(m.record(), None, &mut got);
            prop_assert!(!matches!(again, Ok(Fed::Accepted { .. })), "{again:?}");
        }
        prop_assert_eq!(got.len(), before, "a replayed input raised a ticket");

        once.finish(&mut want);
        twice.finish(&mut got);
        prop_assert_eq!(got, want);
    }
}

#[test]
fn the_duplicate_workload_raises_tickets() {
    // Guards the property above against a generator that never raises a ticket.
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = prop::collection::vec(valid_msg(), 1..12);
    let raised = (0..50)
        .filter(|_| {
            let msgs = strategy.new_tree(&mut runner).unwrap().current();
            let mut d = driver();
            let mut tickets = Vec::new();
            for m in &msgs {
                let _ = d.feed(m.record(), None, &mut tickets);
            }
            d.finish(&mut tickets);
            !tickets.is_empty()
        })
        .count();
    assert!(
        raised >= 10,
        "only {raised} of 50 workloads raised a ticket"
    );
}
