//! The watermark at the edges of input. End of input (Flink's final watermark): `finish`
//! judges every day the input covers, the last event's own day included, and a month only
//! when its last day is covered. An idle source (Flink's source idleness): `advance_to`
//! moves event time on without a record and closes days as a record would.

mod common;

use churnwatch::config::Config;
use churnwatch::detect::{AccountKind, Engine, Event};
use churnwatch::proto::CareTicket;
use common::*;

/// A first bill of 3x an 88-yuan plan for SUB and a contract ending in 50 days for OTHER,
/// both on March 20th, the last day of input; a third subscriber's calls before it.
fn bill_and_contract_last() -> Vec<Event<'static>> {
    let act = at("2026-02-20 09:00");
    let plan = |id: &str, sub: u64| {
        account(
            id,
            sub,
            at("2026-03-01 09:00"),
            AccountKind::PlanChanged { monthly_fee: 8_800 },
        )
    };
    let mut evs = vec![
        account(
            "profile",
            SUB,
            at("2026-03-01 08:00"),
            AccountKind::ProfileUpdated {
                do_not_disturb: false,
                key_person: false,
                activated_time_ms: act,
            },
        ),
        plan("plan-a", SUB),
        plan("plan-b", OTHER),
        account(
            "bill",
            SUB,
            at("2026-03-20 09:00"),
            AccountKind::BillIssued {
                period: period("2026-02"),
                amount: 26_400,
                due_time_ms: at("2026-04-10 00:00"),
            },
        ),
        account(
            "contract",
            OTHER,
            at("2026-03-20 10:00"),
            AccountKind::ContractUpdated {
                end_time_ms: at("2026-05-09 00:00"),
            },
        ),
    ];
    evs.extend(clock(SUB + 1, at("2026-03-01 00:00"), 19));
    in_order(evs)
}

fn apply_all(engine: &mut Engine, evs: &[Event<'static>]) -> Vec<CareTicket> {
    let mut out = Vec::new();
    for e in evs {
        engine.apply(e, &mut out);
    }
    out
}

#[test]
fn a_bill_and_a_contract_on_the_last_day_are_judged_at_the_end() {
    let mut engine = Engine::new(&rules_config(), &[]).unwrap();
    let before = apply_all(&mut engine, &bill_and_contract_last());
    assert!(before.is_empty(), "the last day is still open: {before:?}");
    let mut out = Vec::new();
    engine.finish(&mut out);
    assert_eq!(rules_of(&out, SUB), vec!["bill_shock"]);
    assert_eq!(rules_of(&out, OTHER), vec!["contract_expiry"]);
    let contract = out.iter().find(|t| t.subscriber == OTHER.to_string());
    let days_left = contract.map(|t| t.signals[0].evidence["days_left"]);
    assert_eq!(days_left, Some(50.0));
    let bill = out.iter().find(|t| t.subscriber == SUB.to_string());
    assert_eq!(bill.map(|t| t.signals[0].evidence["ratio"]), Some(3.0));
}

/// SUB calls on January 1st and February 15th and is silent after; the clock runs to
/// `last_day`.
fn dormant_until(last_day: &str) -> Vec<CareTicket> {
    let mut cfg = rules_config();
    cfg.detect.rules.zero_spend_month.min_tenure_days = 30;
    let from = at("2026-01-01 00:00");
    let days = (at(&format!("{last_day} 00:00")) - from) / DAY + 1;
    let mut evs = vec![
        voice("v1", SUB, at("2026-01-01 10:00"), "13012340002", 60),
        voice("v2", SUB, at("2026-02-15 10:00"), "13012340002", 60),
    ];
    evs.extend(clock(OTHER, from, days));
    run_with(&cfg, &in_order(evs)).0
}

fn zero_spend_months(tickets: &[CareTicket]) -> Vec<String> {
    tickets
        .iter()
        .filter(|t| t.subscriber == SUB.to_string())
        .flat_map(|t| t.signals.iter())
        .filter(|s| s.rule == "zero_spend_month")
        .map(|s| s.summary.clone())
        .collect()
}

#[test]
fn a_month_closes_at_the_end_only_when_its_last_day_is_covered() {
    let covered = zero_spend_months(&dormant_until("2026-03-31"));
    assert_eq!(covered.len(), 1, "{covered:?}");
    assert!(covered[0].contains("2026-03"), "{covered:?}");
    let partial = zero_spend_months(&dormant_until("2026-03-30"));
    assert!(partial.is_empty(), "March 31st was never seen: {partial:?}");
}

#[test]
fn finishing_an_empty_engine_does_nothing() {
    let mut engine = Engine::new(&Config::default(), &[]).unwrap();
    let mut out = Vec::new();
    engine.finish(&mut out);
    assert!(out.is_empty());
    assert_eq!(engine.stats().days_closed, 0);
}

/// An idle source's clock: moving event time on closes days exactly as a record at that
/// time would, and never moves it back.
#[test]
fn advancing_event_time_closes_days_like_a_record_would() {
    let evs = bill_and_contract_last();
    let mut engine = Engine::new(&rules_config(), &[]).unwrap();
    assert!(apply_all(&mut engine, &evs).is_empty());
    let newest = engine.newest_event_ms();
    assert_eq!(newest, Some(at("2026-03-20 10:00")));
    // March 20th closes once the watermark (newest minus 48 h) reaches March 21st.
    let closes = at("2026-03-23 00:00");
    let mut out = Vec::new();
    engine.advance_to(closes - 1, &mut out);
    assert!(out.is_empty(), "{out:?}");
    engine.advance_to(at("2026-03-01 00:00"), &mut out);
    assert_eq!(
        engine.newest_event_ms(),
        Some(closes - 1),
        "never moves back"
    );
    engine.advance_to(closes, &mut out);
    assert_eq!(rules_of(&out, SUB), vec!["bill_shock"]);
    assert_eq!(rules_of(&out, OTHER), vec!["contract_expiry"]);
    // The same tickets as the end of input gives.
    let mut finished = Engine::new(&rules_config(), &[]).unwrap();
    apply_all(&mut finished, &evs);
    let mut at_end = Vec::new();
    finished.finish(&mut at_end);
    assert_eq!(final_tickets(&out), final_tickets(&at_end));
    // Records behind the moved watermark are late, as after a real record.
    let late = voice("late", SUB, at("2026-03-20 23:00"), "13012340002", 60);
    assert_eq!(
        engine.apply(&late, &mut out),
        churnwatch::detect::Applied::Late
    );
}

#[test]
fn advancing_an_engine_that_saw_nothing_does_nothing() {
    let mut engine = Engine::new(&Config::default(), &[]).unwrap();
    let mut out = Vec::new();
    engine.advance_to(at("2026-03-01 00:00"), &mut out);
    assert_eq!(engine.newest_event_ms(), None);
    assert_eq!(engine.stats().days_closed, 0);
}
