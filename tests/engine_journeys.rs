//! Journeys through the engine, one per rule: each fires on its seed's condition and not one
//! step short of it, with event time in the operator's zone.

mod common;

use churnwatch::config::Config;
use churnwatch::detect::{AccountKind, Applied, CdrKind, ChurnKind, Engine, SuspensionReason};
use common::*;

#[test]
fn a_long_call_to_a_competitors_care_line_raises_a_ticket() {
    let t = at("2026-03-10 10:00");
    let tickets = run(&[voice("c1", SUB, t, "10086", 61)]);
    assert_eq!(rules_of(&tickets, SUB), vec!["competitor_care_call"]);
    assert_eq!(tickets[0].created_time_ms, t);
    assert_eq!(tickets[0].subscriber, SUB.to_string());
    // 60 seconds is not "more than a minute"; our own care line never counts.
    assert!(run(&[voice("c1", SUB, t, "10086", 60)]).is_empty());
    assert!(run(&[voice("c1", SUB, t, "10010", 600)]).is_empty());
    // Being called by the competitor counts too.
    let tickets = run(&[cdr("c1", SUB, t, CdrKind::VoiceIn, "10000", 300)]);
    assert_eq!(rules_of(&tickets, SUB), vec!["competitor_care_call"]);
}

#[test]
fn partial_records_are_judged_as_one_call() {
    let t = at("2026-03-10 10:00");
    // 40 s + 30 s fragments of one call: 70 s in all.
    let evs = [
        partial("p1", SUB, t, "10086", 40, 77),
        partial("p2", SUB, t + 40_000, "10086", 30, 77),
    ];
    let tickets = run(&evs);
    assert_eq!(rules_of(&tickets, SUB), vec!["competitor_care_call"]);
    assert_eq!(tickets[0].signals[0].evidence["duration_s"], 70.0);
    assert_eq!(tickets[0].created_time_ms, t);
    // 30 s + 30 s = 60 s: not more than a minute.
    let evs = [
        partial("p1", SUB, t, "10086", 30, 77),
        partial("p2", SUB, t + 30_000, "10086", 30, 77),
    ];
    assert!(run(&evs).is_empty());
    // Fragments of different calls are not added up.
    let evs = [
        partial("p1", SUB, t, "10086", 40, 77),
        partial("p2", SUB, t + 40_000, "10086", 30, 78),
    ];
    assert!(run(&evs).is_empty());
}

#[test]
fn a_partial_call_is_judged_once_the_watermark_passes_it() {
    let t = at("2026-03-10 10:00");
    let mut engine = Engine::new(&Config::default(), &[]).unwrap();
    let mut out = Vec::new();
    engine.apply(&partial("p1", SUB, t, "10086", 50, 9), &mut out);
    engine.apply(&partial("p2", SUB, t + 50_000, "10086", 50, 9), &mut out);
    assert!(out.is_empty(), "a later fragment may still come");
    engine.apply(
        &voice("x", OTHER, t + 49 * 3_600_000, "13012340001", 10),
        &mut out,
    );
    assert_eq!(rules_of(&out, SUB), vec!["competitor_care_call"]);
}

fn forwards(days: &[i64], start: &str) -> Vec<churnwatch::detect::Event<'static>> {
    let t0 = at(start);
    days.iter()
        .map(|d| {
            cdr(
                &format!("f{d}"),
                SUB,
                t0 + d * DAY,
                CdrKind::Forward,
                "13812345678",
                20,
            )
        })
        .collect()
}

#[test]
fn forwarding_to_a_competitor_on_five_consecutive_days() {
    let tickets = run(&forwards(&[0, 1, 2, 3, 4], "2026-03-10 09:00"));
    assert_eq!(rules_of(&tickets, SUB), vec!["offnet_forwarding_streak"]);
    assert_eq!(
        tickets[0].created_time_ms,
        at("2026-03-14 00:00"),
        "raised on the 5th day"
    );
    assert!(
        run(&forwards(&[0, 1, 2, 3], "2026-03-10 09:00")).is_empty(),
        "4 days"
    );
    assert!(
        run(&forwards(&[0, 1, 2, 4, 5, 6], "2026-03-10 09:00")).is_empty(),
        "a gap resets the streak"
    );
    // A longer streak is still one ticket.
    let tickets = run(&forwards(&[0, 1, 2, 3, 4, 5, 6, 7, 8], "2026-03-10 09:00"));
    assert_eq!(rules_of(&tickets, SUB), vec!["offnet_forwarding_streak"]);
}

#[test]
fn forwarding_on_net_is_not_a_signal() {
    let t0 = at("2026-03-10 09:00");
    let evs: Vec<_> = (0..6)
        .map(|d| {
            cdr(
                &format!("f{d}"),
                SUB,
                t0 + d * DAY,
                CdrKind::Forward,
                "13012349999",
                20,
            )
        })
        .collect();
    assert!(run(&evs).is_empty());
}

#[test]
fn days_are_the_operators_days_not_utc() {
    // 23:59 on the 12th and 00:01 on the 13th are two Shanghai days but one UTC day.
    let fwd = |id: &str, local: &str| cdr(id, SUB, at(local), CdrKind::Forward, "13812345678", 20);
    let evs = vec![
        fwd("a", "2026-03-10 09:00"),
        fwd("b", "2026-03-11 09:00"),
        fwd("c", "2026-03-12 23:59"),
        fwd("d", "2026-03-13 00:01"),
        fwd("e", "2026-03-14 09:00"),
    ];
    assert_eq!(rules_of(&run(&evs), SUB), vec!["offnet_forwarding_streak"]);
    let mut utc = rules_config();
    utc.detect.engine.time_zone = "UTC".into();
    assert!(
        run_with(&utc, &evs).0.is_empty(),
        "in UTC the 12th and 13th are one day"
    );
}

#[test]
fn registering_forwarding_to_a_competitor_is_an_early_signal() {
    let t = at("2026-03-10 09:00");
    let tickets = run(&[cdr(
        "r1",
        SUB,
        t,
        CdrKind::ForwardRegistration,
        "8613912345678",
        0,
    )]);
    assert_eq!(
        rules_of(&tickets, SUB),
        vec!["offnet_forwarding_registration"]
    );
    assert!(run(&[cdr(
        "r1",
        SUB,
        t,
        CdrKind::ForwardRegistration,
        "13012345679",
        0
    )])
    .is_empty());
}

/// A subscriber who calls every day with some spend and data from `start` for `active`
/// days, then stops entirely; a second subscriber keeps the clock running for `total` days.
fn quitter(start: &str, active: i64, total: i64) -> Vec<churnwatch::detect::Event<'static>> {
    let t0 = at(start);
    let mut evs = Vec::new();
    for d in 0..active {
        let t = t0 + d * DAY + 10 * 3_600_000;
        evs.push(with_charge(
            voice(&format!("v{d}"), SUB, t, "13012340002", 600),
            300,
        ));
        evs.push(data(&format!("d{d}"), SUB, t + 60_000, 100 * 1024 * 1024));
    }
    evs.extend(clock(OTHER, t0, total));
    in_order(evs)
}

#[test]
fn silence_after_daily_calls_raises_silent_days_and_the_drops() {
    let tickets = run(&quitter("2026-03-01 00:00", 40, 53));
    let rules = rules_of(&tickets, SUB);
    for r in ["silent_days", "voice_drop", "spend_drop", "data_drop"] {
        assert!(rules.contains(&r.to_string()), "{r} missing from {rules:?}");
    }
    let silent: Vec<_> = tickets
        .iter()
        .filter(|t| t.signals.iter().any(|s| s.rule == "silent_days"))
        .collect();
    assert_eq!(silent.len(), 1, "an ongoing silence is one ticket");
    // Silent from April 10th: the 7th silent day is April 16th, judged when it closes.
    assert_eq!(silent[0].created_time_ms, at("2026-04-17 00:00"));
}

#[test]
fn six_silent_days_are_not_enough() {
    // Active Mar 1..Apr 9, then Apr 10..15 silent (6 days); the clock runs to Apr 15, the
    // last day, which the end of input closes.
    let rules = rules_of(&run(&quitter("2026-03-01 00:00", 40, 46)), SUB);
    assert!(!rules.contains(&"silent_days".to_string()), "{rules:?}");
}

#[test]
fn drop_rules_hold_their_fire_over_a_public_holiday() {
    let mut cfg = rules_config();
    // Every fortnight the drop rules judge holds a holiday.
    cfg.detect.calendar.holidays = vec!["2026-04-05..2026-04-20".into()];
    let (tickets, engine) = run_with(&cfg, &quitter("2026-03-01 00:00", 40, 53));
    let rules = rules_of(&tickets, SUB);
    assert!(!rules.iter().any(|r| r.ends_with("_drop")), "{rules:?}");
    assert!(
        engine
            .stats()
            .suppressed
            .get("holiday")
            .copied()
            .unwrap_or(0)
            > 0
    );
}

#[test]
fn a_bill_overdue_notice_raises_one_ticket_per_period() {
    let t = at("2026-03-25 09:00");
    let od = |id: &str, t: i64, days| {
        account(
            id,
            SUB,
            t,
            AccountKind::BillOverdue {
                period: period("2026-02"),
                amount: 12_800,
                days_overdue: days,
            },
        )
    };
    let tickets = run(&[od("o1", t, 5), od("o2", t + DAY, 6)]);
    assert_eq!(rules_of(&tickets, SUB), vec!["overdue_bill"]);
}

#[test]
fn parking_the_number_is_the_strongest_signal() {
    let t = at("2026-03-25 09:00");
    let tickets = run(&[
        account(
            "pl",
            SUB,
            t - 3 * DAY,
            AccountKind::PlanChanged { monthly_fee: 8_800 },
        ),
        account(
            "s1",
            SUB,
            t,
            AccountKind::Suspended {
                reason: SuspensionReason::NumberRetention,
            },
        ),
    ]);
    assert_eq!(rules_of(&tickets, SUB), vec!["number_retention_suspension"]);
    assert_eq!(
        tickets[0].priority,
        churnwatch::proto::Priority::P1 as i32,
        "a VIP parking the number"
    );
    assert_eq!(tickets[0].queue, "vip_retention_desk");
    let other = run(&[account(
        "s1",
        SUB,
        t,
        AccountKind::Suspended {
            reason: SuspensionReason::CustomerRequest,
        },
    )]);
    assert!(other.is_empty());
}

#[test]
fn a_bill_unpaid_three_days_before_due_gets_a_reminder() {
    let issued = at("2026-03-01 08:00");
    let due = at("2026-03-20 23:59");
    let bill = account(
        "b1",
        SUB,
        issued,
        AccountKind::BillIssued {
            period: period("2026-02"),
            amount: 9_900,
            due_time_ms: due,
        },
    );
    let mut evs = vec![bill];
    evs.extend(clock(OTHER, at("2026-03-01 00:00"), 25));
    let tickets = run(&in_order(evs.clone()));
    assert_eq!(rules_of(&tickets, SUB), vec!["payment_reminder"]);
    assert_eq!(
        tickets[0].created_time_ms,
        at("2026-03-18 00:00"),
        "judged at the close of March 17th"
    );
    // Paid on the 10th: no reminder.
    evs.push(account(
        "pay",
        SUB,
        at("2026-03-10 12:00"),
        AccountKind::Payment { amount: 9_900 },
    ));
    assert!(rules_of(&run(&in_order(evs)), SUB).is_empty());
}

#[test]
fn a_low_prepaid_balance_after_top_up() {
    let t = at("2026-03-10 09:00");
    let tickets = run(&[account(
        "t1",
        SUB,
        t,
        AccountKind::TopUp {
            amount: 1_000,
            balance_after: 450,
        },
    )]);
    assert_eq!(rules_of(&tickets, SUB), vec!["payment_reminder"]);
    assert!(run(&[account(
        "t1",
        SUB,
        t,
        AccountKind::TopUp {
            amount: 1_000,
            balance_after: 5_000
        }
    )])
    .is_empty());
}

#[test]
fn a_contract_ending_within_sixty_days_once_per_end_date() {
    let set = at("2026-03-01 09:00");
    let end = at("2026-05-15 00:00");
    let mut evs = vec![account(
        "k1",
        SUB,
        set,
        AccountKind::ContractUpdated { end_time_ms: end },
    )];
    evs.extend(clock(OTHER, at("2026-03-01 00:00"), 40));
    let tickets = run(&in_order(evs));
    assert_eq!(rules_of(&tickets, SUB), vec!["contract_expiry"]);
    // May 15th minus 60 days is March 16th: raised when March 16th closes.
    assert_eq!(tickets[0].created_time_ms, at("2026-03-17 00:00"));
}

#[test]
fn two_complaints_or_three_faults_within_ninety_days() {
    let t = at("2026-03-01 09:00");
    let c = |id: &str, t: i64| account(id, SUB, t, AccountKind::Complaint);
    let f = |id: &str, t: i64| account(id, SUB, t, AccountKind::FaultReport);
    let mut evs = vec![c("c1", t), c("c2", t + 30 * DAY)];
    evs.extend(clock(OTHER, t, 35));
    assert_eq!(rules_of(&run(&in_order(evs)), SUB), vec!["complaint_burst"]);
    let mut evs = vec![f("f1", t), f("f2", t + 10 * DAY)];
    evs.extend(clock(OTHER, t, 35));
    assert!(
        !rules_of(&run(&in_order(evs)), SUB).contains(&"complaint_burst".to_string()),
        "two faults"
    );
    let mut evs = vec![c("c1", t), c("c2", t + 91 * DAY)];
    evs.extend(clock(OTHER, t, 95));
    let rules = rules_of(&run(&in_order(evs)), SUB);
    assert!(
        !rules.contains(&"complaint_burst".to_string()),
        "91 days apart: {rules:?}"
    );
}

#[test]
fn ip_calls_over_a_competitor_worth_fifty_yuan_a_month() {
    let t0 = at("2026-03-02 09:00");
    // 17951 is China Mobile's IP prefix: 10 calls of 1,000 s = 166.7 minutes = 50 yuan.
    let mut evs: Vec<_> = (0..10)
        .map(|i| {
            voice(
                &format!("ip{i}"),
                SUB,
                t0 + i * DAY,
                "1795113012340009",
                1_000,
            )
        })
        .collect();
    evs.extend(clock(OTHER, t0, 15));
    assert_eq!(
        rules_of(&run(&in_order(evs.clone())), SUB),
        vec!["offnet_ip_calls"]
    );
    evs.retain(|e| e.time_ms() != t0 || e.subscriber().0 != SUB);
    evs.push(voice("ip0", SUB, t0, "1795113012340009", 999));
    assert!(
        rules_of(&run(&in_order(evs)), SUB).is_empty(),
        "one second short"
    );
}

#[test]
fn a_first_bill_more_than_double_the_plan() {
    let act = at("2026-03-01 09:00");
    let evs = vec![
        account(
            "p",
            SUB,
            act,
            AccountKind::ProfileUpdated {
                do_not_disturb: false,
                key_person: false,
                activated_time_ms: act,
            },
        ),
        account(
            "pl",
            SUB,
            act + 1000,
            AccountKind::PlanChanged { monthly_fee: 5_800 },
        ),
        account(
            "b",
            SUB,
            at("2026-04-01 08:00"),
            AccountKind::BillIssued {
                period: period("2026-03"),
                amount: 15_000,
                due_time_ms: at("2026-04-20 00:00"),
            },
        ),
    ];
    let mut all = evs.clone();
    all.extend(clock(OTHER, act, 35));
    assert!(rules_of(&run(&in_order(all)), SUB).contains(&"bill_shock".to_string()));
}

#[test]
fn a_month_with_no_spend_and_a_decline_three_months_running() {
    // Spend per day: 10 yuan in Jan (310), 7 in Feb (196, -37%), 5 in Mar (155, -21%),
    // 4 in Apr (120, -23%), nothing in May.
    let mut evs = Vec::new();
    for (m, days, fen) in [
        ("2026-01", 31, 1_000),
        ("2026-02", 28, 700),
        ("2026-03", 31, 500),
        ("2026-04", 30, 400),
    ] {
        let t0 = at(&format!("{m}-01 12:00"));
        for d in 0..days {
            evs.push(with_charge(
                voice(&format!("{m}-{d}"), SUB, t0 + d * DAY, "13012340002", 120),
                fen,
            ));
        }
    }
    evs.extend(clock(OTHER, at("2026-01-01 00:00"), 155));
    let tickets = run(&in_order(evs));
    let rules = rules_of(&tickets, SUB);
    assert!(
        rules.contains(&"sustained_decline".to_string()),
        "{rules:?}"
    );
    assert!(rules.contains(&"zero_spend_month".to_string()), "{rules:?}");
    assert_eq!(
        rules.iter().filter(|r| *r == "sustained_decline").count(),
        1
    );
}

#[test]
fn late_records_are_rejected_and_counted_duplicates_change_nothing() {
    let t = at("2026-03-10 10:00");
    let mut engine = Engine::new(&Config::default(), &[]).unwrap();
    let mut out = Vec::new();
    assert_eq!(
        engine.apply(&voice("a", SUB, t, "10086", 61), &mut out),
        Applied::Accepted
    );
    assert_eq!(
        engine.apply(&voice("a", SUB, t, "10086", 61), &mut out),
        Applied::Duplicate
    );
    assert_eq!(
        engine.apply(&voice("b", OTHER, t + 50 * 3_600_000, "1", 1), &mut out),
        Applied::Accepted
    );
    // 47 hours behind the newest record is still within lateness; 49 hours is not.
    assert_eq!(
        engine.apply(&voice("c", SUB, t + 3 * 3_600_000, "1", 1), &mut out),
        Applied::Accepted
    );
    assert_eq!(
        engine.apply(&voice("d", SUB, t + 3_600_000 - 1, "1", 1), &mut out),
        Applied::Late
    );
    assert_eq!(engine.stats().late, 1);
    assert_eq!(engine.stats().duplicates, 1);
    assert_eq!(out.len(), 1);
}

#[test]
fn no_tickets_after_a_subscriber_has_churned() {
    let t = at("2026-03-10 10:00");
    let evs = [
        account(
            "x",
            SUB,
            t,
            AccountKind::Churned {
                kind: ChurnKind::PortOut,
            },
        ),
        voice("c1", SUB, t + 60_000, "10086", 300),
    ];
    assert!(run(&evs).is_empty());
}

#[test]
fn months_the_engine_never_observed_are_not_judged() {
    // The stream starts on April 1st with the CRM profile of a subscriber activated a year
    // ago: March was never observed, so it cannot be a zero-spend month.
    let t = at("2026-04-01 00:30");
    let act = at("2025-04-01 09:00");
    let mut evs = vec![account(
        "p",
        SUB,
        t,
        AccountKind::ProfileUpdated {
            do_not_disturb: false,
            key_person: false,
            activated_time_ms: act,
        },
    )];
    evs.extend(clock(OTHER, t, 10));
    let rules = rules_of(&run(&in_order(evs)), SUB);
    assert!(
        !rules.contains(&"zero_spend_month".to_string()),
        "{rules:?}"
    );
}
