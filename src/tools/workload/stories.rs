//! The story preset: about 50 subscribers over two months with ten churn journeys
//! planted by hand, for the demo and the tests.
//!
//! Small enough to read and to run in a second, and every journey is one a care agent would
//! recognise, so a miss is obvious. About 50 China Unicom subscribers use voice, SMS and
//! data daily for 60 days (July and August 2026, a stretch with no public holiday), are
//! billed for July and pay; on top of that, [`planted`] lists the churn journeys hidden in
//! the traffic and the rule each should raise. Delivery is realistic: a few percent of
//! records arrive up to 24 hours late and some are delivered twice. The records are wire
//! messages ([`WireEvent`]), so whoever uses them exercises decoding too.

use super::numbers::{mobile, subscriber_number, voice_charge};
use super::{Rng, WireEvent, DAY_MS, HOUR_MS, MIN_MS};
use crate::proto::{self, account_event::Kind};

/// 2026-07-01 00:00 Asia/Shanghai, the first day of the workload, UTC epoch milliseconds.
pub const START_MS: i64 = 1_782_835_200_000;
/// Days of traffic.
pub const DAYS: i64 = 60;
/// Subscribers in the workload.
pub const SUBSCRIBERS: usize = 50;

/// A planted churn journey: which subscriber, what they do, and the rule that should fire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journey {
    pub subscriber: String,
    pub story: &'static str,
    pub rule: &'static str,
}

/// Index of each journey's subscriber in [`number`].
mod who {
    pub const CARE_CALL: usize = 0;
    pub const FORWARDING: usize = 1;
    pub const RETENTION: usize = 2;
    pub const OVERDUE: usize = 3;
    pub const SILENT: usize = 4;
    pub const CONTRACT: usize = 5;
    pub const COMPLAINTS: usize = 6;
    pub const IP_CALLS: usize = 7;
    pub const BILL_SHOCK: usize = 8;
}

/// Day (0-based) the silent subscriber stops using the phone.
const SILENT_FROM_DAY: i64 = 50;
/// Day the number-retention subscriber parks the number (no usage afterwards).
const RETENTION_DAY: i64 = 45;
/// Day the bill-shock subscriber is activated.
const ACTIVATION_DAY: i64 = 2;
/// The bill-shock subscriber's plan fee, fen.
const SHOCK_PLAN_FEE: i64 = 5800;

/// The journeys hidden in [`workload`], with the rule each should raise.
pub fn planted() -> Vec<Journey> {
    let j = |i, story, rule| Journey {
        subscriber: number(i),
        story,
        rule,
    };
    vec![
        j(
            who::CARE_CALL,
            "calls 10086 for 5 minutes (5 partial records of 60 s)",
            "competitor_care_call",
        ),
        j(
            who::FORWARDING,
            "registers forwarding to a 138 number",
            "offnet_forwarding_registration",
        ),
        j(
            who::FORWARDING,
            "forwards calls to a 138 number on 6 consecutive days",
            "offnet_forwarding_streak",
        ),
        j(
            who::RETENTION,
            "suspends with number retention",
            "number_retention_suspension",
        ),
        j(who::OVERDUE, "leaves the July bill unpaid", "overdue_bill"),
        j(
            who::SILENT,
            "daily caller goes silent for 10 days",
            "silent_days",
        ),
        j(
            who::CONTRACT,
            "contract ends 45 days after it is updated",
            "contract_expiry",
        ),
        j(
            who::COMPLAINTS,
            "complains twice in 25 days",
            "complaint_burst",
        ),
        j(
            who::IP_CALLS,
            "spends ~72 yuan on China Mobile's 17951 IP calls in July",
            "offnet_ip_calls",
        ),
        j(
            who::BILL_SHOCK,
            "first bill is 3x the plan fee",
            "bill_shock",
        ),
    ]
}

/// Builds one subscriber's messages with sequential ids.
struct Builder<'a> {
    sub: String,
    seq: u32,
    out: &'a mut Vec<WireEvent>,
}

impl Builder<'_> {
    fn cdr(
        &mut self,
        t: i64,
        ty: proto::RecordType,
        other: &str,
        duration_s: u32,
        bytes: u64,
        charge: i64,
    ) {
        self.seq += 1;
        self.out.push(WireEvent::Cdr(proto::CallDetailRecord {
            record_id: format!("cdr-{}-{}", self.sub, self.seq),
            subscriber: self.sub.clone(),
            event_time_ms: t,
            r#type: ty as i32,
            other_party: other.to_string(),
            duration_s,
            data_bytes: bytes,
            charge,
            call_reference: String::new(),
            partial: false,
            roaming: false,
        }));
    }

    fn account(&mut self, t: i64, kind: Kind) {
        self.seq += 1;
        self.out.push(WireEvent::Account(proto::AccountEvent {
            event_id: format!("acct-{}-{}", self.sub, self.seq),
            subscriber: self.sub.clone(),
            event_time_ms: t,
            kind: Some(kind),
        }));
    }
}

/// The demo's `i`th subscriber: one per block of seven in the numbering plan, so that
/// the last four digits, all a masked number shows, differ from one subscriber to the next.
pub fn number(i: usize) -> String {
    subscriber_number(7 * i + i % 7)
}

/// Other parties of background calls and SMS.
const PARTIES: [&str; 9] = [
    "130", "155", "186", "138", "139", "150", "133", "189", "177",
];

/// The whole workload in delivery order (mostly by time, some late, some twice).
pub fn workload() -> Vec<WireEvent> {
    let mut rng = Rng::new(0x00c0_ffee_2026);
    let mut events = Vec::new();
    for i in 0..SUBSCRIBERS {
        let sub = number(i);
        let mut b = Builder {
            sub,
            seq: 0,
            out: &mut events,
        };
        background(&mut b, &mut rng, i);
        journey(&mut b, &mut rng, i);
    }
    deliver(events, &mut rng)
}

/// Daily voice, SMS and data, the July bill and its payment.
fn background(b: &mut Builder<'_>, rng: &mut Rng, i: usize) {
    // Steady habits (each subscriber's own daily numbers, +-1 a day) so that background
    // traffic alone does not look like a sudden drop.
    let out_per_day = rng.range(3, 6);
    let in_per_day = rng.range(2, 5);
    let first_day = if i == who::BILL_SHOCK {
        ACTIVATION_DAY
    } else {
        0
    };
    let last_day = match i {
        who::SILENT => SILENT_FROM_DAY,
        who::RETENTION => RETENTION_DAY,
        _ => DAYS,
    };
    if i != who::BILL_SHOCK {
        // Plans spread the population over the tiers (a new subscriber is tiered by plan).
        const PLANS: [i64; 6] = [3_800, 5_800, 8_800, 12_800, 18_800, 28_800];
        let fee = PLANS[rng.range(0, PLANS.len() as i64) as usize];
        b.account(
            START_MS + 8 * HOUR_MS,
            Kind::PlanChanged(proto::PlanChanged {
                plan_id: format!("plan-{}", fee / 100),
                monthly_fee: fee,
            }),
        );
    }
    let mut july_charge = 0;
    for day in first_day..last_day {
        let charged = day_traffic(b, rng, day, (out_per_day, in_per_day));
        if day < 31 {
            july_charge += charged;
        }
    }
    july_bill(b, rng, i, july_charge);
}

/// One day of calls, SMS and data around the subscriber's own daily numbers; returns the
/// charge of the outgoing calls.
fn day_traffic(b: &mut Builder<'_>, rng: &mut Rng, day: i64, (out, inn): (i64, i64)) -> i64 {
    let day_ms = START_MS + day * DAY_MS;
    let mut charged = 0;
    for _ in 0..rng.range(out - 1, out + 2) {
        let t = day_ms + 8 * HOUR_MS + rng.range(0, 14 * HOUR_MS);
        let dur = rng.range(60, 360) as u32;
        let charge = voice_charge(dur, 10);
        charged += charge;
        let other = mobile(rng, &PARTIES);
        b.cdr(t, proto::RecordType::VoiceOut, &other, dur, 0, charge);
    }
    for _ in 0..rng.range(inn - 1, inn + 2) {
        let t = day_ms + 8 * HOUR_MS + rng.range(0, 14 * HOUR_MS);
        let dur = rng.range(60, 360) as u32;
        let other = mobile(rng, &PARTIES);
        b.cdr(t, proto::RecordType::VoiceIn, &other, dur, 0, 0);
    }
    for _ in 0..rng.range(0, 3) {
        let t = day_ms + 9 * HOUR_MS + rng.range(0, 12 * HOUR_MS);
        let other = mobile(rng, &PARTIES);
        b.cdr(t, proto::RecordType::SmsOut, &other, 0, 0, 10);
    }
    for _ in 0..rng.range(2, 4) {
        let t = day_ms + 7 * HOUR_MS + rng.range(0, 16 * HOUR_MS);
        let mib = rng.range(40, 120) as u64;
        b.cdr(t, proto::RecordType::Data, "", 0, mib << 20, 0);
    }
    charged
}

/// The July bill on 2 August, due on the 20th; everyone but the overdue journey pays.
fn july_bill(b: &mut Builder<'_>, rng: &mut Rng, i: usize, july_charge: i64) {
    let fee = if i == who::BILL_SHOCK {
        3 * SHOCK_PLAN_FEE
    } else {
        3000 + july_charge
    };
    let issued = START_MS + 32 * DAY_MS + 10 * HOUR_MS;
    let due = START_MS + 50 * DAY_MS;
    if i != who::RETENTION {
        b.account(
            issued,
            Kind::BillIssued(proto::BillIssued {
                period: "2026-07".into(),
                amount: fee,
                due_time_ms: due,
            }),
        );
        if i != who::OVERDUE {
            let paid = issued + rng.range(1, 6) * DAY_MS;
            b.account(paid, Kind::Payment(proto::PaymentReceived { amount: fee }));
        }
    }
}

/// The journey's own records on top of the background: calls for some, account events for
/// the others.
fn journey(b: &mut Builder<'_>, rng: &mut Rng, i: usize) {
    match i {
        who::CARE_CALL | who::FORWARDING | who::IP_CALLS => journey_calls(b, rng, i),
        _ => journey_accounts(b, i),
    }
}

/// `day` and `hour` of the workload as epoch milliseconds.
fn at(day: i64, hour: i64) -> i64 {
    START_MS + day * DAY_MS + hour * HOUR_MS
}

/// A care call to China Mobile cut into partial records, forwarding to a China Mobile
/// number, IP calls through 17951.
fn journey_calls(b: &mut Builder<'_>, rng: &mut Rng, i: usize) {
    match i {
        who::CARE_CALL => {
            // One 5-minute call to China Mobile's care line, cut by the switch into 60 s parts.
            for part in 0..5 {
                b.seq += 1;
                b.out.push(WireEvent::Cdr(proto::CallDetailRecord {
                    record_id: format!("cdr-{}-{}", b.sub, b.seq),
                    subscriber: b.sub.clone(),
                    event_time_ms: at(40, 19) + 30 * MIN_MS + part * MIN_MS,
                    r#type: proto::RecordType::VoiceOut as i32,
                    other_party: "10086".into(),
                    duration_s: 60,
                    charge: 10,
                    call_reference: format!("sw1-{}-care", b.sub),
                    partial: true,
                    roaming: false,
                    ..Default::default()
                }));
            }
        }
        who::FORWARDING => {
            let target = "13812345678";
            b.cdr(
                at(30, 21),
                proto::RecordType::ForwardRegistration,
                target,
                0,
                0,
                0,
            );
            for day in 31..37 {
                for n in 0..rng.range(2, 5) {
                    let dur = rng.range(30, 300) as u32;
                    b.cdr(
                        at(day, 10 + 2 * n),
                        proto::RecordType::Forward,
                        target,
                        dur,
                        0,
                        voice_charge(dur, 10),
                    );
                }
            }
        }
        who::IP_CALLS => {
            // 12 calls of 20 minutes via 17951: 240 min x 0.30 yuan = 72 yuan in July.
            for n in 0..12 {
                let other = format!("17951{}", "13912345678");
                b.cdr(
                    at(5 + 2 * n, 20),
                    proto::RecordType::VoiceOut,
                    &other,
                    1200,
                    0,
                    voice_charge(1200, 10),
                );
            }
        }
        _ => {}
    }
}

/// A number parked, a bill left unpaid, a contract ending, complaints, a first bill far
/// above the plan fee.
fn journey_accounts(b: &mut Builder<'_>, i: usize) {
    match i {
        who::RETENTION => {
            b.account(
                at(RETENTION_DAY, 11),
                Kind::Suspended(proto::Suspended {
                    reason: proto::SuspensionReason::NumberRetention as i32,
                }),
            );
            b.account(
                at(58, 15),
                Kind::Churned(proto::Churned {
                    kind: proto::ChurnKind::PortOut as i32,
                }),
            );
        }
        who::OVERDUE => {
            b.account(
                at(55, 2),
                Kind::BillOverdue(proto::BillOverdue {
                    period: "2026-07".into(),
                    amount: 3000,
                    days_overdue: 5,
                }),
            );
        }
        who::CONTRACT => {
            let end = at(20, 0) + 45 * DAY_MS;
            b.account(
                at(20, 14),
                Kind::Contract(proto::ContractUpdated { end_time_ms: end }),
            );
        }
        who::COMPLAINTS => {
            b.account(
                at(10, 16),
                Kind::Complaint(proto::Complaint {
                    category: "network coverage".into(),
                }),
            );
            b.account(
                at(35, 9),
                Kind::Complaint(proto::Complaint {
                    category: "billing".into(),
                }),
            );
        }
        who::BILL_SHOCK => {
            let activated = at(ACTIVATION_DAY, 9);
            b.account(
                activated,
                Kind::Profile(proto::ProfileUpdated {
                    do_not_disturb: false,
                    key_person: false,
                    activated_time_ms: activated,
                }),
            );
            b.account(
                activated + MIN_MS,
                Kind::PlanChanged(proto::PlanChanged {
                    plan_id: "basic-58".into(),
                    monthly_fee: SHOCK_PLAN_FEE,
                }),
            );
        }
        _ => {}
    }
}

/// Orders the events as mediation would deliver them: by time, but ~3% of CDRs up to 24 h
/// late, and ~0.5% delivered a second time a few hours after the first.
fn deliver(events: Vec<WireEvent>, rng: &mut Rng) -> Vec<WireEvent> {
    let mut keyed: Vec<(i64, usize, WireEvent)> =
        Vec::with_capacity(events.len() + events.len() / 100);
    for (n, ev) in events.into_iter().enumerate() {
        let t = ev.time_ms();
        let is_cdr = matches!(ev, WireEvent::Cdr(_));
        let delay = if is_cdr && rng.percent(3) {
            rng.range(HOUR_MS, 24 * HOUR_MS)
        } else {
            0
        };
        if is_cdr && rng.next_u64() % 200 == 0 {
            keyed.push((t + rng.range(HOUR_MS, 6 * HOUR_MS), n, ev.clone()));
        }
        keyed.push((t + delay, n, ev));
    }
    keyed.sort_by_key(|(at, n, _)| (*at, *n));
    keyed.into_iter().map(|(_, _, ev)| ev).collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::codec;
    use crate::detect::Msisdn;

    #[test]
    fn start_is_midnight_in_shanghai() {
        let t = chrono_tz::Asia::Shanghai
            .timestamp_millis_opt(START_MS)
            .unwrap();
        assert_eq!(t.format("%Y-%m-%d %H:%M").to_string(), "2026-07-01 00:00");
    }

    #[test]
    fn workload_is_deterministic_and_valid() {
        let a = workload();
        assert_eq!(a, workload());
        assert!(a.len() > 10_000, "{} events", a.len());
        for ev in &a {
            match ev {
                WireEvent::Cdr(m) => {
                    codec::cdr_from_proto(m).unwrap();
                }
                WireEvent::Account(m) => {
                    codec::account_from_proto(m).unwrap();
                }
            }
        }
        let subs: std::collections::BTreeSet<&str> = a
            .iter()
            .map(|e| match e {
                WireEvent::Cdr(c) => c.subscriber.as_str(),
                WireEvent::Account(x) => x.subscriber.as_str(),
            })
            .collect();
        assert_eq!(subs.len(), SUBSCRIBERS);
    }

    #[test]
    fn delivery_is_out_of_order_within_a_day_and_has_duplicates() {
        let a = workload();
        let mut newest = a[0].time_ms();
        let mut late = 0;
        for ev in &a {
            let t = ev.time_ms();
            assert!(
                newest - t <= 24 * HOUR_MS,
                "a record arrives more than 24 h late"
            );
            late += usize::from(t < newest);
            newest = newest.max(t);
        }
        assert!(late > 50, "{late} late records");
        let mut ids = std::collections::HashSet::new();
        let dups = a
            .iter()
            .filter(|e| match e {
                WireEvent::Cdr(c) => !ids.insert(c.record_id.clone()),
                WireEvent::Account(_) => false,
            })
            .count();
        assert!(dups > 5, "{dups} duplicates");
    }

    #[test]
    fn masked_numbers_tell_the_subscribers_apart() {
        let tails: std::collections::BTreeSet<String> = (0..SUBSCRIBERS)
            .map(|i| Msisdn::parse(&number(i)).unwrap().masked())
            .collect();
        assert_eq!(tails.len(), SUBSCRIBERS);
    }
}
