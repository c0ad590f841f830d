//! The rebalance workload of the durability suite: forwarding streaks, do-not-disturb and
//! contact-capped subscribers placed on every partition, split at the day a member leaves.

use churnwatch::proto::{self, account_event::Kind as Acct, RecordType};
use churnwatch::tools::workload::stories::START_MS;
use churnwatch::tools::workload::WireEvent;

use super::cluster::Placement;

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;

/// Subscribers of our own, `per` in each partition as `placement` puts them, numbered
/// from `prefix`.
fn spread(prefix: &str, per: usize, partitions: i32, placement: Placement) -> Vec<String> {
    let mut out = Vec::new();
    for p in 0..partitions {
        let mut n = 0u64;
        while out.len() < (p as usize + 1) * per {
            let s = format!("{prefix}{n:05}");
            if placement.partition_of(&s, partitions) == p {
                out.push(s);
            }
            n += 1;
        }
    }
    out
}

fn cdr(sub: &str, id: &str, t: i64, ty: RecordType, other: &str, dur: u32) -> WireEvent {
    WireEvent::Cdr(proto::CallDetailRecord {
        record_id: format!("{id}-{sub}"),
        subscriber: sub.into(),
        event_time_ms: t,
        r#type: ty as i32,
        other_party: other.into(),
        duration_s: dur,
        ..Default::default()
    })
}

fn acct(sub: &str, id: &str, t: i64, kind: Acct) -> WireEvent {
    WireEvent::Account(proto::AccountEvent {
        event_id: format!("{id}-{sub}"),
        subscriber: sub.into(),
        event_time_ms: t,
        kind: Some(kind),
    })
}

/// Day `d`, hour `h` of the rebalance workload: from 2026-07-06 00:00 Shanghai, the first
/// day of a 30-day contact-cap window (`contact.period_days` windows are aligned on day
/// numbers), so days 0 to 5 share one.
fn at(d: i64, h: i64) -> i64 {
    START_MS + (5 + d) * DAY + h * HOUR
}

/// The rebalance workload: (days 0-4, day 5 and the days that close it), and the streak,
/// do-not-disturb and capped subscribers.
pub struct Rebalance {
    pub before: Vec<WireEvent>,
    pub after: Vec<WireEvent>,
    pub streak: Vec<String>,
    pub dnd: Vec<String>,
    pub capped: Vec<String>,
}

/// Forwarding to a China Mobile number every day (`offnet_forwarding_streak` needs five
/// consecutive days) for 20 subscribers, 4 with do-not-disturb set on day 0 and 4 VIPs who
/// have already been contacted twice (the contact cap) before the restart: a forwarding
/// registration and a care call to 10086. One clock subscriber per partition calls daily so
/// every partition's days close.
pub fn rebalance_workload(partitions: i32, placement: Placement) -> Rebalance {
    let streak = spread("86130555", 5, partitions, placement);
    let dnd = spread("86130556", 1, partitions, placement);
    let capped = spread("86130557", 1, partitions, placement);
    let clock = spread("86130558", 1, partitions, placement);
    let to = "13812345678";
    let forward = |s: &String, d| {
        cdr(
            s,
            &format!("fw{d}"),
            at(d, 10),
            RecordType::Forward,
            to,
            120,
        )
    };
    let mut before = Vec::new();
    for s in &capped {
        let plan = proto::PlanChanged {
            plan_id: "p288".into(),
            monthly_fee: 28_800,
        };
        before.push(acct(s, "plan", at(-3, 9), Acct::PlanChanged(plan)));
    }
    for d in 0..5 {
        for s in &dnd {
            if d == 0 {
                let p = proto::ProfileUpdated {
                    do_not_disturb: true,
                    ..Default::default()
                };
                before.push(acct(s, "dnd", at(0, 8), Acct::Profile(p)));
            }
        }
        for s in &capped {
            match d {
                0 => before.push(cdr(
                    s,
                    "reg",
                    at(0, 9),
                    RecordType::ForwardRegistration,
                    to,
                    0,
                )),
                1 => before.push(cdr(s, "care", at(1, 9), RecordType::VoiceOut, "10086", 300)),
                _ => {}
            }
        }
        if d > 0 {
            before.extend(
                streak
                    .iter()
                    .chain(&dnd)
                    .chain(&capped)
                    .map(|s| forward(s, d)),
            );
        }
        before.extend(clock.iter().map(|s| {
            cdr(
                s,
                &format!("c{d}"),
                at(d, 12),
                RecordType::VoiceOut,
                "13012340001",
                30,
            )
        }));
    }
    let mut after: Vec<WireEvent> = streak
        .iter()
        .chain(&dnd)
        .chain(&capped)
        .map(|s| forward(s, 5))
        .collect();
    // Day 5 closes when event time passes its end plus the 48 h allowed lateness.
    for d in 5..10 {
        after.extend(clock.iter().map(|s| {
            cdr(
                s,
                &format!("c{d}"),
                at(d, 12),
                RecordType::VoiceOut,
                "13012340001",
                30,
            )
        }));
    }
    Rebalance {
        before,
        after,
        streak,
        dnd,
        capped,
    }
}
