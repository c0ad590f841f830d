//! Tickets people can act on: tier-aware priority, do-not-disturb, the contact cap, the
//! control group and call-center feedback, through the engine with the shipped defaults.

mod common;

use churnwatch::config::Config;
use churnwatch::detect::{
    AccountKind, Engine, Msisdn, OutcomeKind, SuspensionReason, TicketOutcomeEvent,
};
use churnwatch::proto::Priority;
use common::*;

fn plan(id: &str, sub: u64, t: i64, fee_yuan: i64) -> churnwatch::detect::Event<'static> {
    account(
        id,
        sub,
        t,
        AccountKind::PlanChanged {
            monthly_fee: fee_yuan * 100,
        },
    )
}

#[test]
fn the_same_signal_is_more_urgent_for_a_vip_than_for_the_mass_market() {
    let t = at("2026-03-10 10:00");
    let vip = SUB;
    let mass = OTHER;
    let tickets = run_with(
        &Config::default(),
        &[
            // Tiers read the plan as it stood one allowed lateness (48 h) before the ticket.
            plan("p1", vip, t - 3 * DAY, 128),
            plan("p2", mass, t - 3 * DAY, 18),
            voice("c1", vip, t, "10086", 300),
            voice("c2", mass, t + 1000, "10086", 300),
        ],
    )
    .0;
    let of = |s: u64| {
        tickets
            .iter()
            .find(|x| x.subscriber == s.to_string())
            .unwrap()
    };
    assert_eq!(of(vip).tier, "vip");
    assert_eq!(of(vip).priority, Priority::P1 as i32);
    assert_eq!(of(vip).queue, "vip_retention_desk");
    assert_eq!(of(mass).tier, "star_1");
    assert_eq!(of(mass).priority, Priority::P3 as i32);
    assert_eq!(of(mass).queue, "retention");
}

#[test]
fn a_do_not_disturb_subscriber_never_lands_in_an_outbound_queue() {
    let t = at("2026-03-10 10:00");
    let dnd = account(
        "p",
        SUB,
        t - 3 * DAY,
        AccountKind::ProfileUpdated {
            do_not_disturb: true,
            key_person: true,
            activated_time_ms: 0,
        },
    );
    let evs = [
        dnd,
        voice("c1", SUB, t, "10086", 300),
        account(
            "s1",
            SUB,
            t + DAY,
            AccountKind::Suspended {
                reason: SuspensionReason::NumberRetention,
            },
        ),
    ];
    let (tickets, engine) = run_with(&Config::default(), &evs);
    assert_eq!(tickets.len(), 2);
    for t in &tickets {
        assert_eq!(t.queue, "no_contact", "{t:?}");
        assert_eq!(t.no_contact_reason, "do_not_disturb");
        assert_eq!(t.tier, "vip", "a key person is VIP regardless of spend");
    }
    assert_eq!(engine.stats().no_contact.get("do_not_disturb"), Some(&2));
}

#[test]
fn a_weak_signal_on_the_lowest_tier_raises_no_ticket_but_is_counted() {
    let t = at("2026-03-10 10:00");
    let low = [account(
        "t1",
        SUB,
        t,
        AccountKind::TopUp {
            amount: 1_000,
            balance_after: 100,
        },
    )];
    let (tickets, engine) = run_with(&Config::default(), &low);
    assert!(tickets.is_empty());
    assert_eq!(engine.stats().suppressed.get("below_threshold"), Some(&1));
    // The same signal for a star-2 subscriber becomes an automated message.
    let mid = [plan("p", SUB, t - 3 * DAY, 38), low[0]];
    let tickets = run_with(&Config::default(), &mid).0;
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].priority, Priority::P4 as i32);
    assert_eq!(tickets[0].queue, "automated_message");
}

#[test]
fn the_contact_cap_holds_back_the_third_ticket_in_a_period() {
    // Cap windows are aligned 30-day spans since 1970; 2026-03-08 starts one. Three
    // competitor care calls a week apart (three cooldown windows) fall inside it.
    let t0 = at("2026-03-09 10:00");
    let evs: Vec<_> = (0..3)
        .map(|i| voice(&format!("c{i}"), SUB, t0 + i * 7 * DAY, "10086", 300))
        .collect();
    let (tickets, engine) = run_with(&Config::default(), &evs);
    assert_eq!(tickets.len(), 3);
    assert_eq!(tickets[0].no_contact_reason, "");
    assert_eq!(tickets[1].no_contact_reason, "");
    assert_eq!(tickets[2].no_contact_reason, "contact_cap");
    assert_eq!(tickets[2].queue, "no_contact");
    assert_eq!(engine.stats().no_contact.get("contact_cap"), Some(&1));
}

#[test]
fn the_control_group_is_held_out_by_a_stable_hash() {
    let mut cfg = Config::default();
    cfg.detect.contact.control_group_fraction = 0.5;
    let t = at("2026-03-10 10:00");
    let evs: Vec<_> = (0..40)
        .map(|i| voice(&format!("c{i}"), SUB + i as u64, t + i, "10086", 300))
        .collect();
    let first = run_with(&cfg, &evs).0;
    let held: Vec<_> = first
        .iter()
        .filter(|t| t.control_group)
        .map(|t| t.subscriber.clone())
        .collect();
    assert!((8..=32).contains(&held.len()), "{}", held.len());
    for t in first.iter().filter(|t| t.control_group) {
        assert!(t.queue.is_empty());
        assert_eq!(t.no_contact_reason, "control_group");
    }
    for t in first.iter().filter(|t| !t.control_group) {
        assert_eq!(t.queue, "retention");
    }
    let again: Vec<_> = run_with(&cfg, &evs)
        .0
        .iter()
        .filter(|t| t.control_group)
        .map(|t| t.subscriber.clone())
        .collect();
    assert_eq!(held, again);
}

#[test]
fn a_subscriber_just_retained_is_not_ticketed_again_for_that_rule_within_the_cooldown() {
    let t = at("2026-03-10 10:00");
    let mut engine = Engine::new(&Config::default(), &[]).unwrap();
    let mut out = Vec::new();
    engine.apply(&voice("c1", SUB, t, "10086", 300), &mut out);
    assert_eq!(out.len(), 1);
    let id = out[0].ticket_id.clone();
    engine.apply_outcome(&TicketOutcomeEvent {
        ticket_id: &id,
        subscriber: Msisdn(SUB),
        time_ms: t + DAY,
        outcome: OutcomeKind::Retained,
    });
    // Another competitor call 8 days later (a new cooldown window) within 7 days of the outcome.
    engine.apply(&voice("c2", SUB, t + 7 * DAY, "10086", 300), &mut out);
    assert_eq!(out.len(), 1, "retained: no second ticket for the same rule");
    assert_eq!(engine.stats().suppressed.get("retained"), Some(&1));
    // A different rule still raises a ticket.
    engine.apply(
        &account(
            "s",
            SUB,
            t + 7 * DAY + 1000,
            AccountKind::Suspended {
                reason: SuspensionReason::NumberRetention,
            },
        ),
        &mut out,
    );
    assert_eq!(out.len(), 2);
    // After the cooldown the rule fires again.
    engine.apply(&voice("c3", SUB, t + 15 * DAY, "10086", 300), &mut out);
    assert_eq!(out.len(), 3);
    assert_eq!(engine.stats().outcomes.get("RETAINED"), Some(&1));
}

#[test]
fn a_correction_is_counted_as_an_update_not_as_a_new_ticket() {
    // The same care-line episode: the earlier call arrives an hour late and corrects the
    // ticket's evidence under the same id. `churnwatch_tickets_total` is exported from
    // `tickets_by_route`, so it must count the ticket once.
    let t0 = at("2026-03-09 10:00");
    let evs = vec![
        voice("c1", SUB, t0, "10086", 300),
        voice("c0", SUB, t0 - 3_600_000, "10086", 300),
    ];
    let (tickets, engine) = run_with(&Config::default(), &evs);
    assert_eq!(tickets.len(), 2, "the ticket, then its correction");
    assert_eq!(tickets[0].ticket_id, tickets[1].ticket_id);
    let s = engine.stats();
    assert_eq!((s.tickets, s.ticket_updates), (1, 1));
    assert_eq!(s.tickets_by_route.values().sum::<u64>(), 1);
    let route = s.tickets_by_route.keys().next().unwrap();
    assert_eq!(route.rule, "competitor_care_call");
    assert_eq!(route.queue, tickets[0].queue);
    assert_eq!(route.priority, tickets[0].priority);
}
