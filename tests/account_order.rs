//! Account events give the same tickets in any arrival order within the lateness: two
//! contract updates, plan changes or profile changes; a payment that arrives before its
//! bill; a suspension and its resumption. Each scenario is delivered in every order of its
//! account events (all arriving together, within the lateness of each), and the final
//! version of every ticket must be the same; then what those tickets say is checked.

mod common;

use std::collections::BTreeMap;

use churnwatch::config::Config;
use churnwatch::detect::{AccountKind, Engine, Event, Msisdn, SuspensionReason};
use churnwatch::proto::CareTicket;
use common::*;

/// Every permutation of `items`.
fn permutations<T: Copy>(items: &[T]) -> Vec<Vec<T>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut all = Vec::new();
    for i in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(i);
        for mut p in permutations(&rest) {
            p.insert(0, first);
            all.push(p);
        }
    }
    all
}

/// The background in time order, with `group` delivered together, in the given order, just
/// after the latest of them.
fn delivery(background: &[Event<'static>], group: &[Event<'static>]) -> Vec<Event<'static>> {
    let last = group.iter().map(|e| e.time_ms()).max().unwrap_or(i64::MIN);
    let bg = in_order(background.to_vec());
    let split = bg.partition_point(|e| e.time_ms() <= last);
    let mut out = bg[..split].to_vec();
    out.extend_from_slice(group);
    out.extend_from_slice(&bg[split..]);
    out
}

/// The final tickets, which must be the same for every arrival order of `group`.
fn same_in_every_order(
    cfg: &Config,
    background: &[Event<'static>],
    group: &[Event<'static>],
) -> BTreeMap<String, CareTicket> {
    let mut all = background.to_vec();
    all.extend_from_slice(group);
    let (tickets, engine) = run_with(cfg, &in_order(all));
    assert_eq!(engine.stats().late, 0);
    let reference = final_tickets(&tickets);
    for order in permutations(group) {
        let (got, engine) = run_with(cfg, &delivery(background, &order));
        assert_eq!(engine.stats().late, 0);
        assert_eq!(final_tickets(&got), reference, "order {order:?}");
    }
    reference
}

fn rules_in(tickets: &BTreeMap<String, CareTicket>, sub: u64) -> Vec<String> {
    let v: Vec<CareTicket> = tickets.values().cloned().collect();
    let mut r = rules_of(&v, sub);
    r.sort();
    r
}

fn contract(id: &str, t: i64, end: i64) -> Event<'static> {
    account(
        id,
        SUB,
        t,
        AccountKind::ContractUpdated { end_time_ms: end },
    )
}

#[test]
fn two_contract_updates_the_later_one_decides() {
    let bg = clock(OTHER, at("2026-03-01 00:00"), 20);
    // The same day: the later update's end (50 days away) is the one in force.
    let group = [
        contract("k1", at("2026-03-10 09:00"), at("2026-07-01 00:00")),
        contract("k2", at("2026-03-10 20:00"), at("2026-04-29 00:00")),
    ];
    let got = same_in_every_order(&rules_config(), &bg, &group);
    assert_eq!(rules_in(&got, SUB), vec!["contract_expiry"]);
    // Across a day boundary: March 10th closes under the first update, whose end is 50
    // days away, before the second (ending in July) is in force.
    let group = [
        contract("k1", at("2026-03-10 20:00"), at("2026-04-29 00:00")),
        contract("k2", at("2026-03-11 09:00"), at("2026-07-01 00:00")),
    ];
    let got = same_in_every_order(&rules_config(), &bg, &group);
    assert_eq!(rules_in(&got, SUB), vec!["contract_expiry"]);
    let t = got.values().next().unwrap();
    assert_eq!(t.created_time_ms, at("2026-03-11 00:00"));
}

fn plan(id: &str, t: i64, yuan: i64) -> Event<'static> {
    let monthly_fee = yuan * 100;
    account(id, SUB, t, AccountKind::PlanChanged { monthly_fee })
}

fn first_bill(t: i64, yuan: i64) -> Event<'static> {
    let kind = AccountKind::BillIssued {
        period: period("2026-02"),
        amount: yuan * 100,
        due_time_ms: t + 20 * DAY,
    };
    account("bill", SUB, t, kind)
}

fn profile(id: &str, t: i64, dnd: bool, key: bool, activated: i64) -> Event<'static> {
    let kind = AccountKind::ProfileUpdated {
        do_not_disturb: dnd,
        key_person: key,
        activated_time_ms: activated,
    };
    account(id, SUB, t, kind)
}

#[test]
fn two_plan_changes_the_later_fee_judges_the_first_bill() {
    let act = at("2026-02-20 09:00");
    let bg = [
        vec![profile("p", act, false, false, act)],
        clock(OTHER, at("2026-02-20 00:00"), 20),
    ]
    .concat();
    // 100 yuan is more than twice the 38-yuan plan in force, not twice the 88-yuan one.
    let group = [
        plan("pl1", at("2026-03-02 10:00"), 88),
        plan("pl2", at("2026-03-02 12:00"), 38),
        first_bill(at("2026-03-03 08:00"), 100),
    ];
    let got = same_in_every_order(&rules_config(), &bg, &group);
    assert_eq!(rules_in(&got, SUB), vec!["bill_shock"]);
    let swapped = [
        plan("pl1", at("2026-03-02 10:00"), 38),
        plan("pl2", at("2026-03-02 12:00"), 88),
        first_bill(at("2026-03-03 08:00"), 100),
    ];
    let got = same_in_every_order(&rules_config(), &bg, &swapped);
    assert!(rules_in(&got, SUB).is_empty(), "{got:?}");
}

fn care_call(id: &str, t: i64) -> Event<'static> {
    voice(id, SUB, t, "10086", 300)
}

#[test]
fn two_profile_changes_an_opt_out_counts_at_once_and_a_key_person_after_the_lateness() {
    let t = at("2026-03-10 10:00");
    let bg = clock(OTHER, at("2026-03-01 00:00"), 15);
    // Do-not-disturb asked for an hour before the call and lifted after it.
    let group = [
        profile("p1", t - 3_600_000, true, true, 0),
        care_call("c", t),
        profile("p2", t + 3_600_000, false, true, 0),
    ];
    let got = same_in_every_order(&Config::default(), &bg, &group);
    let ticket = got.values().next().unwrap();
    assert_eq!(ticket.queue, "no_contact");
    assert_eq!(ticket.no_contact_reason, "do_not_disturb");
    // Made a key person a day before the call: not yet (tiers read the profile as it
    // stood one 48 h lateness before the ticket); three days before: VIP.
    for (before, tier) in [(DAY, "star_1"), (3 * DAY, "vip")] {
        let group = [
            profile("p1", t - before - 3_600_000, false, false, 0),
            profile("p2", t - before, false, true, 0),
        ];
        let bg = [bg.clone(), vec![care_call("c", t)]].concat();
        let got = same_in_every_order(&Config::default(), &bg, &group);
        assert_eq!(got.values().next().unwrap().tier, tier, "{before}");
    }
}

#[test]
fn a_late_opt_out_moves_tickets_already_routed_and_frees_their_contacts() {
    // Three tickets in one 30-day contact window (2026-03-08 starts one): the third is
    // capped; an opt-out between the first and the second, arriving after all three,
    // takes the second and third to no_contact.
    let t = at("2026-03-10 09:00");
    let retention = AccountKind::Suspended {
        reason: SuspensionReason::NumberRetention,
    };
    let overdue = AccountKind::BillOverdue {
        period: period("2026-02"),
        amount: 9_900,
        days_overdue: 10,
    };
    let bg = clock(OTHER, at("2026-03-01 00:00"), 15);
    let group = [
        care_call("c", t),
        profile("p", t + 3_600_000, true, false, 0),
        account("s", SUB, t + DAY, retention),
        account("o", SUB, t + DAY + 3_600_000, overdue),
    ];
    let got = same_in_every_order(&rules_config(), &bg, &group);
    let mut by_time: Vec<&CareTicket> = got.values().collect();
    by_time.sort_by_key(|t| t.created_time_ms);
    let reasons: Vec<&str> = by_time
        .iter()
        .map(|t| t.no_contact_reason.as_str())
        .collect();
    assert_eq!(reasons, vec!["", "do_not_disturb", "do_not_disturb"]);
}

fn payment(id: &str, t: i64) -> Event<'static> {
    account(id, SUB, t, AccountKind::Payment { amount: 9_900 })
}

fn bill(t: i64, due: i64) -> Event<'static> {
    let kind = AccountKind::BillIssued {
        period: period("2026-02"),
        amount: 9_900,
        due_time_ms: due,
    };
    account("bill", SUB, t, kind)
}

#[test]
fn a_payment_that_arrives_before_its_bill_pays_it() {
    let bg = clock(OTHER, at("2026-02-25 00:00"), 15);
    // Due on March 5th: the reminder is judged when March 2nd closes. The first payment
    // after the bill, on March 2nd, pays it; a second one on March 3rd changes nothing.
    let due = at("2026-03-05 12:00");
    let group = [
        payment("pay0", at("2026-03-02 07:00")),
        bill(at("2026-03-02 08:00"), due),
        payment("pay1", at("2026-03-02 20:00")),
        payment("pay2", at("2026-03-03 10:00")),
    ];
    let got = same_in_every_order(&rules_config(), &bg, &group);
    assert!(rules_in(&got, SUB).is_empty(), "{got:?}");
    // Without the March 2nd payment it is still unpaid when March 2nd closes.
    let group = [
        payment("pay0", at("2026-03-02 07:00")),
        bill(at("2026-03-02 08:00"), due),
        payment("pay2", at("2026-03-03 10:00")),
    ];
    let got = same_in_every_order(&rules_config(), &bg, &group);
    assert_eq!(rules_in(&got, SUB), vec!["payment_reminder"]);
}

#[test]
fn a_suspension_and_its_resumption_end_resumed_in_any_order() {
    let t = at("2026-03-10 09:00");
    let retention = AccountKind::Suspended {
        reason: SuspensionReason::NumberRetention,
    };
    let bg = clock(OTHER, at("2026-03-01 00:00"), 15);
    let group = [
        account("s", SUB, t, retention),
        account("r", SUB, t + 3_600_000, AccountKind::Resumed),
    ];
    let got = same_in_every_order(&rules_config(), &bg, &group);
    assert_eq!(rules_in(&got, SUB), vec!["number_retention_suspension"]);
    for order in permutations(&group) {
        let mut engine = Engine::new(&rules_config(), &[]).unwrap();
        let mut out = Vec::new();
        for e in delivery(&bg, &order) {
            engine.apply(&e, &mut out);
        }
        let seen = engine.describe(Msisdn(SUB)).unwrap();
        assert!(!seen.suspended, "{order:?}");
    }
}
