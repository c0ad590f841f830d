use std::collections::BTreeMap;

use super::*;
use crate::detect::calendar::Calendar;

fn cal() -> Calendar {
    Calendar::new("Asia/Shanghai", &[]).unwrap()
}

const DAY: Day = 20_500;

/// A signal: its rule, evidence and last-seen time.
type Sig<'a> = (RuleId, &'a [(&'a str, f64)], i64);

fn ticket(id: &str, created_ms: i64, signals: &[Sig<'_>]) -> CareTicket {
    CareTicket {
        ticket_id: id.into(),
        created_time_ms: created_ms,
        signals: signals
            .iter()
            .map(|&(rule, ev, last_seen_ms)| Signal {
                rule: rule.as_str().into(),
                evidence: ev
                    .iter()
                    .map(|&(k, v)| (k.to_string(), v))
                    .collect::<BTreeMap<_, _>>(),
                first_seen_ms: created_ms,
                last_seen_ms,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn judged(open: &mut OpenTickets, st: &SubscriberState, day: Day) -> Vec<(String, Reason)> {
    let rules = RulesConfig::default();
    let cal = cal();
    let j = Judged {
        rules: &rules,
        cal: &cal,
        day,
    };
    open.judge(1, st, &j)
        .into_iter()
        .map(|(t, _, r)| {
            assert_eq!(t.status, TicketStatus::Withdrawn as i32);
            assert_eq!(t.status_reason, r.as_str());
            (t.ticket_id, r)
        })
        .collect()
}

#[test]
fn an_overdue_bill_is_withdrawn_once_paid_in_full_after_the_notice() {
    let c = cal();
    let notice = c.day_start_ms(DAY) + 3_600_000;
    let mut open = OpenTickets::default();
    open.follow(
        1,
        &ticket(
            "a",
            notice,
            &[(RuleId::OverdueBill, &[("amount_yuan", 88.5)], notice)],
        ),
    );
    let st = SubscriberState::default();
    open.paid(1, notice - 1, 10_000);
    assert!(
        judged(&mut open, &st, DAY).is_empty(),
        "paid before the notice"
    );
    open.paid(1, notice + 1, 8_000);
    assert!(judged(&mut open, &st, DAY).is_empty(), "part paid");
    open.paid(1, notice + 2, 850);
    assert_eq!(judged(&mut open, &st, DAY), [("a".into(), Reason::Paid)]);
    assert!(judged(&mut open, &st, DAY + 1).is_empty(), "withdrawn once");
}

#[test]
fn a_suspension_is_withdrawn_when_lifted_and_only_then() {
    let c = cal();
    let at = c.day_start_ms(DAY);
    let mut open = OpenTickets::default();
    open.follow(
        1,
        &ticket("s", at, &[(RuleId::NumberRetentionSuspension, &[], at)]),
    );
    let mut st = SubscriberState::default();
    st.set(flag::SUSPENDED, true);
    assert!(judged(&mut open, &st, DAY + 2).is_empty());
    st.set(flag::SUSPENDED, false);
    assert_eq!(
        judged(&mut open, &st, DAY + 3),
        [("s".into(), Reason::Resumed)]
    );
}

#[test]
fn a_ticket_created_after_the_day_closed_waits_for_its_own_day() {
    let c = cal();
    let at = c.day_start_ms(DAY + 1) + 1;
    let mut open = OpenTickets::default();
    open.follow(
        1,
        &ticket("s", at, &[(RuleId::NumberRetentionSuspension, &[], at)]),
    );
    let st = SubscriberState::default();
    assert!(judged(&mut open, &st, DAY).is_empty());
    assert_eq!(judged(&mut open, &st, DAY + 1).len(), 1);
}

#[test]
fn every_cause_must_go_and_churn_withdraws_everything() {
    let c = cal();
    let at = c.day_start_ms(DAY);
    let mut open = OpenTickets::default();
    open.follow(
        1,
        &ticket(
            "two",
            at,
            &[
                (RuleId::NumberRetentionSuspension, &[], at),
                (RuleId::CompetitorCareCall, &[], at),
            ],
        ),
    );
    open.follow(
        1,
        &ticket("fwd", at, &[(RuleId::OffnetForwardingStreak, &[], at)]),
    );
    let mut st = SubscriberState::default();
    assert!(judged(&mut open, &st, DAY).is_empty(), "a care call stays");
    st.churned_day = (DAY + 1) as u16;
    assert!(judged(&mut open, &st, DAY).is_empty(), "not churned yet");
    let mut done = judged(&mut open, &st, DAY + 1);
    done.sort();
    assert_eq!(
        done,
        [
            ("fwd".into(), Reason::Churned),
            ("two".into(), Reason::Churned)
        ]
    );
}

#[test]
fn a_contract_renewed_beyond_the_window_is_withdrawn() {
    let c = cal();
    let at = c.day_start_ms(DAY);
    let end_ms = c.day_start_ms(DAY + 40);
    let mut open = OpenTickets::default();
    open.follow(
        1,
        &ticket("c", at, &[(RuleId::ContractExpiry, &[], end_ms)]),
    );
    let mut st = SubscriberState {
        contract_end_day: (DAY + 40) as u16,
        ..Default::default()
    };
    assert!(judged(&mut open, &st, DAY).is_empty());
    st.contract_end_day = (DAY + 50) as u16;
    assert!(
        judged(&mut open, &st, DAY).is_empty(),
        "still within 60 days"
    );
    st.contract_end_day = (DAY + 400) as u16;
    assert_eq!(
        judged(&mut open, &st, DAY + 1),
        [("c".into(), Reason::Renewed)]
    );
}

/// A state whose closed days `from..=to` each carry `fen` of spend and a call if `call`.
fn days(st: &mut SubscriberState, from: Day, to: Day, fen: i64, call: bool) {
    for d in from..=to {
        st.add_charge(d, fen);
        if call {
            st.add_voice(d, 60, true);
        }
        st.close_day(d);
    }
}

#[test]
fn spend_recovers_at_the_midpoint_of_the_drop_ratio_and_one() {
    let c = cal();
    let at = c.day_start_ms(DAY);
    let mut open = OpenTickets::default();
    // Baseline 70 yuan a week, ratio 0.5: back at 52.5 a week.
    let ev: &[(&str, f64)] = &[("baseline_weekly", 70.0)];
    open.follow(1, &ticket("d", at, &[(RuleId::SpendDrop, ev, at)]));
    let mut st = SubscriberState::default();
    days(&mut st, DAY - 6, DAY + 6, 700, false);
    assert!(judged(&mut open, &st, DAY + 6).is_empty(), "49 yuan a week");
    days(&mut st, DAY + 7, DAY + 13, 800, false);
    assert_eq!(
        judged(&mut open, &st, DAY + 13),
        [("d".into(), Reason::Recovered)]
    );
}

#[test]
fn silence_ends_with_calls_on_three_of_seven_days() {
    let c = cal();
    let at = c.day_start_ms(DAY);
    let mut open = OpenTickets::default();
    open.follow(1, &ticket("q", at, &[(RuleId::SilentDays, &[], at)]));
    let mut st = SubscriberState::default();
    days(&mut st, DAY - 6, DAY + 4, 0, false);
    days(&mut st, DAY + 5, DAY + 6, 0, true);
    assert!(judged(&mut open, &st, DAY + 6).is_empty(), "two days");
    days(&mut st, DAY + 7, DAY + 7, 0, true);
    assert_eq!(
        judged(&mut open, &st, DAY + 7),
        [("q".into(), Reason::Recovered)]
    );
}

#[test]
fn a_re_emission_of_a_withdrawn_ticket_stays_withdrawn() {
    let c = cal();
    let at = c.day_start_ms(DAY);
    let mut open = OpenTickets::default();
    let t = ticket("s", at, &[(RuleId::NumberRetentionSuspension, &[], at)]);
    open.follow(1, &t);
    assert_eq!(judged(&mut open, &SubscriberState::default(), DAY).len(), 1);
    let mut again = t.clone();
    again.queue = "no_contact".into();
    open.republish(1, &mut again);
    assert_eq!(again.status, TicketStatus::Withdrawn as i32);
    assert_eq!(again.status_reason, "resumed");
    assert_eq!(again.queue, "no_contact");
}

#[test]
fn followed_tickets_survive_a_snapshot_and_expire() {
    let c = cal();
    let at = c.day_start_ms(DAY);
    let mut open = OpenTickets::default();
    open.follow(
        1,
        &ticket(
            "a",
            at,
            &[(RuleId::OverdueBill, &[("amount_yuan", 5.0)], at)],
        ),
    );
    open.paid(1, at + 1, 200);
    let mut bytes = vec![1];
    open.encode(&mut bytes, |s| u64::from(s) + 100);
    let mut back = OpenTickets::default();
    let mut r = Reader::versioned(&bytes, "test", 1).unwrap();
    back.decode(&mut r, |m| (m - 100) as u32).unwrap();
    assert!(r.is_empty());
    assert_eq!(back.by_slot, open.by_slot);
    back.paid(1, at + 2, 300);
    assert_eq!(
        judged(&mut back, &SubscriberState::default(), DAY),
        [("a".into(), Reason::Paid)]
    );
    back.forget_before(at + 1);
    assert!(back.by_slot.is_empty());
}
