//! Tickets that close themselves (issue 24, item 4), seen as a user sees them: the
//! `churnwatch replay` binary over small JSONL inputs, the tickets read back from its
//! output file as upserts (the last version of each `ticketId` wins).
//!
//! Five subscribers in March 2026 (Shanghai time): an overdue bill paid two days later, a
//! number-retention suspension lifted three days later, a forwarding streak followed by a
//! port-out, and an unpaid bill and an unlifted suspension that stay open.

#[path = "common/cli.rs"]
mod cli;
mod common;

use std::collections::BTreeMap;

use churnwatch::proto::{self, account_event::Kind, TicketStatus};
use cli::churnwatch;

const PAID: &str = "8613012345601";
const RESUMED: &str = "8613012345602";
const PORTED: &str = "8613012345603";
const UNPAID: &str = "8613012345604";
const PARKED: &str = "8613012345605";

/// Epoch ms of a Shanghai local time "YYYY-MM-DD HH:MM".
fn shanghai(local: &str) -> i64 {
    let naive = chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M").unwrap();
    naive.and_utc().timestamp_millis() - 8 * 3_600_000
}

fn account(id: &str, sub: &str, local: &str, kind: Kind) -> String {
    serde_json::to_string(&proto::AccountEvent {
        event_id: id.into(),
        subscriber: sub.into(),
        event_time_ms: shanghai(local),
        kind: Some(kind),
    })
    .unwrap()
}

fn cdr(id: &str, sub: &str, local: &str, kind: proto::RecordType, other: &str) -> String {
    serde_json::to_string(&proto::CallDetailRecord {
        record_id: id.into(),
        subscriber: sub.into(),
        event_time_ms: shanghai(local),
        r#type: kind as i32,
        other_party: other.into(),
        duration_s: 120,
        ..Default::default()
    })
    .unwrap()
}

fn overdue(id: &str, sub: &str, local: &str) -> String {
    let kind = Kind::BillOverdue(proto::BillOverdue {
        period: "2026-02".into(),
        amount: 8_800,
        days_overdue: 10,
    });
    account(id, sub, local, kind)
}

fn parked(id: &str, sub: &str, local: &str) -> String {
    let kind = Kind::Suspended(proto::Suspended {
        reason: proto::SuspensionReason::NumberRetention as i32,
    });
    account(id, sub, local, kind)
}

fn inputs() -> (Vec<String>, Vec<String>) {
    let mut cdrs = Vec::new();
    for d in 1..=5 {
        let at = format!("2026-03-{d:02} 10:00");
        let fwd = proto::RecordType::Forward;
        cdrs.push(cdr(&format!("fwd-{d}"), PORTED, &at, fwd, "13812345678"));
    }
    // A steady caller so the days around every event close.
    for d in 1..=14 {
        let at = format!("2026-03-{d:02} 12:00");
        let call = proto::RecordType::VoiceOut;
        cdrs.push(cdr(
            &format!("clock-{d}"),
            "8613012340000",
            &at,
            call,
            "13012340001",
        ));
    }
    let payment = |amount| Kind::Payment(proto::PaymentReceived { amount });
    let mut accounts = vec![
        overdue("od-paid", PAID, "2026-03-05 09:00"),
        overdue("od-unpaid", UNPAID, "2026-03-05 09:00"),
        parked("nr-resumed", RESUMED, "2026-03-05 10:00"),
        parked("nr-parked", PARKED, "2026-03-05 10:00"),
        // Two days later, in two parts: withdrawn when the second completes the amount.
        account("pay-1", PAID, "2026-03-07 08:00", payment(5_000)),
        account("pay-2", PAID, "2026-03-07 18:00", payment(3_800)),
        // A part payment leaves the other bill open.
        account("pay-3", UNPAID, "2026-03-07 18:00", payment(1_000)),
        account(
            "resume",
            RESUMED,
            "2026-03-08 10:00",
            Kind::Resumed(proto::Resumed {}),
        ),
        account(
            "port-out",
            PORTED,
            "2026-03-08 15:00",
            Kind::Churned(proto::Churned {
                kind: proto::ChurnKind::PortOut as i32,
            }),
        ),
    ];
    accounts.sort_by_key(|l| {
        serde_json::from_str::<proto::AccountEvent>(l)
            .unwrap()
            .event_time_ms
    });
    (cdrs, accounts)
}

/// Replays the inputs (`format`: `json` or `tmf621`): every output line, and stderr.
fn replay(cdrs: &[String], accounts: &[String], format: &str) -> (Vec<String>, String) {
    let dir = tempfile::tempdir().unwrap();
    let (cdr_path, acct_path, out_path) = (
        dir.path().join("cdr.jsonl"),
        dir.path().join("acct.jsonl"),
        dir.path().join("tickets.jsonl"),
    );
    std::fs::write(&cdr_path, cdrs.join("\n") + "\n").unwrap();
    std::fs::write(&acct_path, accounts.join("\n") + "\n").unwrap();
    let args = [
        "replay",
        "--cdr",
        cdr_path.to_str().unwrap(),
        "--account",
        acct_path.to_str().unwrap(),
        "--format",
        format,
        "--out",
        out_path.to_str().unwrap(),
    ];
    let out = churnwatch(&args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "replay failed: {err}");
    let text = std::fs::read_to_string(&out_path).unwrap();
    (text.lines().map(String::from).collect(), err)
}

/// The last version of every ticket, by subscriber (each has one ticket here).
fn final_tickets(lines: &[String]) -> BTreeMap<String, proto::CareTicket> {
    let mut by_id = BTreeMap::new();
    for l in lines {
        let t: proto::CareTicket = serde_json::from_str(l).expect("a CareTicket per line");
        by_id.insert(t.ticket_id.clone(), t);
    }
    let mut by_sub = BTreeMap::new();
    for t in by_id.into_values() {
        assert!(
            by_sub.insert(t.subscriber.clone(), t).is_none(),
            "one ticket each"
        );
    }
    by_sub
}

#[test]
fn tickets_whose_cause_has_gone_end_withdrawn_and_the_rest_stay_open() {
    let (cdrs, accounts) = inputs();
    let (lines, err) = replay(&cdrs, &accounts, "json");
    let last = final_tickets(&lines);
    let status = |sub: &str| {
        let t = &last[sub];
        let status = TicketStatus::try_from(t.status).unwrap();
        (t.signals[0].rule.as_str(), status, t.status_reason.as_str())
    };
    use TicketStatus::{Open, Withdrawn};
    assert_eq!(status(PAID), ("overdue_bill", Withdrawn, "paid"), "{err}");
    let nr = "number_retention_suspension";
    assert_eq!(status(RESUMED), (nr, Withdrawn, "resumed"), "{err}");
    let fwd = "offnet_forwarding_streak";
    assert_eq!(status(PORTED), (fwd, Withdrawn, "churned"), "{err}");
    assert_eq!(status(UNPAID), ("overdue_bill", Open, ""), "{err}");
    assert_eq!(status(PARKED), (nr, Open, ""), "{err}");
    // Published first as OPEN, then again under the same id: JSON says so as written.
    let paid_id = &last[PAID].ticket_id;
    let versions: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains(paid_id.as_str()))
        .collect();
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert!(
        !versions[0].contains("status"),
        "OPEN is the default: {}",
        versions[0]
    );
    assert!(
        versions[1].contains(r#""status":"WITHDRAWN","statusReason":"paid""#),
        "{}",
        versions[1]
    );
    assert!(err.contains("withdrawn         3"), "{err}");
}

#[test]
fn withdrawals_do_not_depend_on_the_order_records_arrive_in() {
    let (cdrs, accounts) = inputs();
    let (lines, _) = replay(&cdrs, &accounts, "json");
    // Within a day (the lateness allowed): the payments and the resumption first.
    let mut shuffled = accounts.clone();
    shuffled.reverse();
    shuffled.sort_by_key(|l| {
        let t = serde_json::from_str::<proto::AccountEvent>(l)
            .unwrap()
            .event_time_ms;
        t / 86_400_000
    });
    let (again, _) = replay(&cdrs, &shuffled, "json");
    assert_eq!(final_tickets(&lines), final_tickets(&again));
}

#[test]
fn tmf621_resolves_a_withdrawn_ticket_and_cancels_a_churned_one() {
    let (cdrs, accounts) = inputs();
    let (lines, err) = replay(&cdrs, &accounts, "tmf621");
    let mut last: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let sub = v["relatedParty"][0]["partyOrPartyRole"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        last.insert(sub, v);
    }
    let state = |sub: &str| {
        let v = &last[sub];
        (
            v["status"].as_str().unwrap(),
            v["statusChangeReason"].as_str(),
        )
    };
    assert_eq!(state(PAID), ("resolved", Some("paid")), "{err}");
    assert_eq!(state(RESUMED), ("resolved", Some("resumed")));
    assert_eq!(state(PORTED), ("cancelled", Some("churned")));
    assert_eq!(state(UNPAID), ("acknowledged", None));
    assert_eq!(state(PARKED), ("acknowledged", None));
}

/// The same journeys through the engine itself: a restart between the notice and the
/// payment, outcomes on withdrawn tickets, and quality counting them as what they were.
mod engine {
    use churnwatch::detect::rules::RuleId;
    use churnwatch::detect::{
        AccountKind, ChurnKind, Engine, Event, Msisdn, OutcomeKind, SuspensionReason,
        TicketOutcomeEvent,
    };
    use churnwatch::proto::{CareTicket, TicketStatus};

    use super::common::*;

    const PAYER: u64 = 8613012345601;
    const PORTER: u64 = 8613012345603;

    fn journeys() -> Vec<Event<'static>> {
        let t = at("2026-03-05 09:00");
        let mut v = clock(OTHER, at("2026-03-01 00:00"), 14);
        v.extend([
            account(
                "od",
                PAYER,
                t,
                AccountKind::BillOverdue {
                    period: period("2026-02"),
                    amount: 8_800,
                    days_overdue: 10,
                },
            ),
            account(
                "pay",
                PAYER,
                t + 2 * DAY,
                AccountKind::Payment { amount: 8_800 },
            ),
            account(
                "nr",
                PORTER,
                t,
                AccountKind::Suspended {
                    reason: SuspensionReason::NumberRetention,
                },
            ),
            account(
                "gone",
                PORTER,
                t + 3 * DAY,
                AccountKind::Churned {
                    kind: ChurnKind::PortOut,
                },
            ),
        ]);
        in_order(v)
    }

    /// Saves an engine as a checkpoint would and restores a fresh one from it.
    fn restarted(e: &mut Engine) -> Engine {
        let mut subs = Vec::new();
        e.drain_changed(true, |m, b| subs.push((m, b.to_vec())));
        let mut ids = Vec::new();
        e.drain_ids(true, 4096, |c| ids.push(c.to_vec()));
        let blob = e.encode_partition();
        let mut r = Engine::new(&rules_config(), &[]).unwrap();
        for (m, b) in &subs {
            r.restore_subscriber(*m, b).unwrap();
        }
        for c in &ids {
            r.restore_ids(c).unwrap();
        }
        r.restore_partition(&blob).unwrap();
        r.restore_finish();
        r
    }

    fn status(t: &CareTicket) -> (TicketStatus, &str) {
        (TicketStatus::try_from(t.status).unwrap(), &t.status_reason)
    }

    #[test]
    fn a_withdrawal_survives_a_restart_between_the_notice_and_the_payment() {
        let events = journeys();
        let (want, _) = run_with(&rules_config(), &events);
        let cut = events
            .iter()
            .position(|e| e.time_ms() > at("2026-03-06 00:00"))
            .unwrap();
        let mut e = Engine::new(&rules_config(), &[]).unwrap();
        let mut got = Vec::new();
        for ev in &events[..cut] {
            e.apply(ev, &mut got);
        }
        let mut e = restarted(&mut e);
        for ev in &events[cut..] {
            e.apply(ev, &mut got);
        }
        e.finish(&mut got);
        let (want, got) = (final_tickets(&want), final_tickets(&got));
        assert_eq!(got, want);
        let mut statuses: Vec<_> = got.values().map(status).collect();
        statuses.sort();
        use TicketStatus::Withdrawn;
        assert_eq!(statuses, [(Withdrawn, "churned"), (Withdrawn, "paid")]);
        assert_eq!(e.stats().withdrawn_total(), 2);
    }

    #[test]
    fn outcomes_on_withdrawn_tickets_are_accepted_and_quality_counts_them_as_they_were() {
        let (tickets, mut e) = run_with(&rules_config(), &journeys());
        let last = final_tickets(&tickets);
        for t in last.values() {
            assert_eq!(t.status, TicketStatus::Withdrawn as i32);
            e.apply_outcome(&TicketOutcomeEvent {
                ticket_id: &t.ticket_id,
                subscriber: Msisdn(t.subscriber.parse().unwrap()),
                time_ms: at("2026-03-12 10:00"),
                outcome: OutcomeKind::Declined,
            });
        }
        let s = e.stats();
        assert_eq!(s.outcomes_unknown_ticket, 0);
        assert_eq!(s.outcomes.get("DECLINED"), Some(&2));
        // The parked number that ported out is still a hit for its rule.
        let nr = RuleId::NumberRetentionSuspension as usize;
        assert_eq!(s.quality.hits[nr], 1);
        assert_eq!(
            s.tickets_withdrawn
                .get(&("number_retention_suspension", "churned")),
            Some(&1)
        );
        assert_eq!(s.tickets_withdrawn.get(&("overdue_bill", "paid")), Some(&1));
    }
}
