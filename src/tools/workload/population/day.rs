//! One subscriber's day as records: the CRM snapshot when a line opens, calls, SMS and data
//! shaped by the day's usage, bills, payments and top-ups, and churn.
//!
//! Records are encoded here, in the worker threads, and leave with a delivery time that is
//! realistic rather than ideal: ~3% arrive 1 min to 24 h late and ~0.5% twice.

use chrono::Datelike;
use prost::Message;

use super::kinds::{JourneyKind, LookAlike};
use super::usage::{usage, Usage};
use super::{DayInfo, Habit, Role, Sub, World};
use crate::config::Format;
use crate::proto::{self, account_event::Kind, RecordType};
use crate::tools::workload::numbers::{mobile, voice_charge, ANY_PREFIXES};
use crate::tools::workload::{Rng, DAY_MS, HOUR_MS, MIN_MS};

/// Log-scale spread of call durations (log-normal; a coefficient of variation of 0.95, as
/// exponential durations have).
const CALL_SIGMA: f64 = 0.8;
/// Log-scale spread of a day's data volume (log-normal; a coefficient of variation of 0.95).
const DATA_SIGMA: f64 = 0.8;

/// One record, serialized, with its delivery time.
pub struct Out {
    pub deliver_ms: i64,
    /// Unique per record (day, subscriber, sequence, copy): orders records delivered at
    /// the same millisecond.
    pub key: u64,
    pub bytes: Vec<u8>,
}

/// One day's records of some subscribers, and how many were delayed or delivered twice.
#[derive(Default)]
pub struct DayOut {
    pub cdr: Vec<Out>,
    pub acct: Vec<Out>,
    pub delayed: u64,
    pub duplicated: u64,
}

/// A builder of one subscriber's records for one day.
pub(super) struct Ctx<'a> {
    pub(super) world: &'a World,
    pub(super) sub_idx: usize,
    pub(super) number: &'a str,
    pub(super) day: i64,
    pub(super) seq: u32,
    pub(super) rng: Rng,
    /// Today's usage is abroad: its records are roaming ones.
    pub(super) abroad: bool,
}

impl DayOut {
    fn push(&mut self, ctx: &mut Ctx<'_>, t: i64, bytes: Vec<u8>, is_cdr: bool) {
        ctx.seq += 1;
        // Unique per record: day, subscriber, sequence, copy.
        let key = ((ctx.day as u64) << 48) | ((ctx.sub_idx as u64) << 16) | u64::from(ctx.seq) << 1;
        let delay = if is_cdr && ctx.abroad {
            // Roaming records come in the visited network's TAP files, 4 to 36 hours late.
            self.delayed += 1;
            ctx.rng.range(4 * HOUR_MS, 36 * HOUR_MS)
        } else if ctx.rng.chance(0.03) {
            self.delayed += 1;
            ctx.rng.range(MIN_MS, 24 * HOUR_MS)
        } else {
            0
        };
        let list = if is_cdr {
            &mut self.cdr
        } else {
            &mut self.acct
        };
        if ctx.rng.chance(0.005) {
            self.duplicated += 1;
            list.push(Out {
                deliver_ms: t + delay + ctx.rng.range(10 * MIN_MS, 6 * HOUR_MS),
                key: key | 1,
                bytes: bytes.clone(),
            });
        }
        list.push(Out {
            deliver_ms: t + delay,
            key,
            bytes,
        });
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn cdr(
        &mut self,
        ctx: &mut Ctx<'_>,
        t: i64,
        ty: RecordType,
        other: &str,
        duration_s: u32,
        mib: u64,
        charge: i64,
    ) {
        let m = proto::CallDetailRecord {
            record_id: format!("c{}-{}-{}", ctx.sub_idx, ctx.day, ctx.seq),
            subscriber: ctx.number.to_string(),
            event_time_ms: t,
            r#type: ty as i32,
            other_party: other.to_string(),
            duration_s,
            data_bytes: mib << 20,
            charge,
            call_reference: String::new(),
            partial: false,
            roaming: ctx.abroad,
        };
        let bytes = encode(ctx.world.format, &m);
        self.push(ctx, t, bytes, true);
    }

    pub(super) fn partial_call(&mut self, ctx: &mut Ctx<'_>, t: i64, other: &str, parts: &[u32]) {
        let reference = format!("sw-{}-{}", ctx.sub_idx, ctx.day);
        let mut at = t;
        for &secs in parts {
            let m = proto::CallDetailRecord {
                record_id: format!("c{}-{}-{}", ctx.sub_idx, ctx.day, ctx.seq),
                subscriber: ctx.number.to_string(),
                event_time_ms: at,
                r#type: RecordType::VoiceOut as i32,
                other_party: other.to_string(),
                duration_s: secs,
                data_bytes: 0,
                charge: voice_charge(secs, 15),
                call_reference: reference.clone(),
                partial: true,
                roaming: false,
            };
            let bytes = encode(ctx.world.format, &m);
            self.push(ctx, at, bytes, true);
            at += i64::from(secs) * 1000;
        }
    }

    pub(super) fn account(&mut self, ctx: &mut Ctx<'_>, t: i64, kind: Kind) {
        let m = proto::AccountEvent {
            event_id: format!("a{}-{}-{}", ctx.sub_idx, ctx.day, ctx.seq),
            subscriber: ctx.number.to_string(),
            event_time_ms: t,
            kind: Some(kind),
        };
        let bytes = encode(ctx.world.format, &m);
        self.push(ctx, t, bytes, false);
    }

    /// Everything subscriber `s` does on day `d`.
    pub(super) fn sub_day(&mut self, world: &World, s: &mut Sub, d: i64) {
        let info = *world.day(d);
        let number = s.number.clone();
        let mut ctx = Ctx {
            world,
            sub_idx: s.idx,
            number: &number,
            day: d,
            seq: 0,
            rng: Rng::stream(world.seed, s.idx as u64, d as u64),
            abroad: false,
        };
        if d < s.active_from || s.churn_day.is_some_and(|c| d > c) {
            return;
        }
        if info.date.day() == 1 {
            s.last_month_charge = s.month_charge;
            s.last_month_days = s.month_days;
            s.month_charge = 0;
            s.month_days = 0;
        }
        if d == s.active_from && d > 0 || d == 2.min(world.n_days - 1) && s.active_from == 0 {
            self.opening(&mut ctx, s);
        }
        if s.churn_day == Some(d) {
            let kind = if ctx.rng.chance(0.8) {
                proto::ChurnKind::PortOut
            } else {
                proto::ChurnKind::Deactivated
            };
            self.account(
                &mut ctx,
                s.churn_ms,
                Kind::Churned(proto::Churned { kind: kind as i32 }),
            );
            return;
        }
        s.month_days += 1;
        let usage = usage(world, s, d, &info);
        ctx.abroad = usage.abroad;
        let charged = self.traffic(&mut ctx, s, &info, usage);
        ctx.abroad = false;
        s.month_charge += charged;
        if !s.postpaid {
            s.balance -= charged + s.plan_fee_fen / 30;
        }
        self.billing(&mut ctx, s, d);
        self.specials(&mut ctx, s, d);
    }

    /// The CRM snapshot on a subscriber's first day: profile, plan, contract.
    fn opening(&mut self, ctx: &mut Ctx<'_>, s: &Sub) {
        // Established lines arrive with the nightly CRM sync on day 2.
        let t = if s.active_from == 0 {
            ctx.world.at(2, 1.0) + ctx.rng.range(0, 2 * HOUR_MS)
        } else {
            s.activated_ms
        };
        self.account(
            ctx,
            t,
            Kind::Profile(proto::ProfileUpdated {
                do_not_disturb: s.dnd,
                key_person: s.key_person,
                activated_time_ms: s.activated_ms,
            }),
        );
        let plan_id = format!(
            "{}-{}",
            if s.postpaid { "post" } else { "pre" },
            s.plan_fee_fen / 100
        );
        self.account(
            ctx,
            t + MIN_MS,
            Kind::PlanChanged(proto::PlanChanged {
                plan_id,
                monthly_fee: s.plan_fee_fen,
            }),
        );
        if let Some(end) = s.contract_end_ms {
            self.account(
                ctx,
                t + 2 * MIN_MS,
                Kind::Contract(proto::ContractUpdated { end_time_ms: end }),
            );
        }
    }

    /// Calls, SMS and data for one day; returns the rated charge in fen.
    fn traffic(&mut self, ctx: &mut Ctx<'_>, s: &Sub, info: &DayInfo, u: Usage) -> i64 {
        let mut charged = 0;
        let rate = if s.plan_fee_fen >= 12_800 { 10 } else { 15 };
        let call_day = s.every == 1 || (ctx.day + s.phase) % s.every == 0;
        if !u.silent && call_day {
            let n_out = if u.no_outgoing {
                0
            } else {
                ctx.rng.poisson(s.out_calls * u.out)
            };
            let n_in = ctx.rng.poisson(s.in_calls * u.inn);
            for i in 0..n_out + n_in {
                let out = i < n_out;
                let t = info.start_ms + call_hour(&mut ctx.rng, info.weekend);
                // Heavy-tailed: most calls are short, a few last an hour.
                let secs = ctx.rng.lognormal(s.call_s * u.dur, CALL_SIGMA);
                let secs = secs.clamp(3.0, 4.0 * 3600.0) as u32;
                let other = mobile(&mut ctx.rng, &ANY_PREFIXES);
                if out {
                    let c = voice_charge(secs, rate);
                    charged += c;
                    self.cdr(ctx, t, RecordType::VoiceOut, &other, secs, 0, c);
                } else {
                    self.cdr(ctx, t, RecordType::VoiceIn, &other, secs, 0, 0);
                }
            }
        }
        if !u.no_outgoing && ctx.rng.chance(s.sms * u.out.min(1.0)) {
            let t = info.start_ms + call_hour(&mut ctx.rng, info.weekend);
            let other = mobile(&mut ctx.rng, &ANY_PREFIXES);
            charged += 10;
            self.cdr(ctx, t, RecordType::SmsOut, &other, 0, 0, 10);
        }
        if !u.silent && ctx.rng.chance(s.sms * 0.5) {
            let t = info.start_ms + call_hour(&mut ctx.rng, info.weekend);
            let other = mobile(&mut ctx.rng, &ANY_PREFIXES);
            self.cdr(ctx, t, RecordType::SmsIn, &other, 0, 0, 0);
        }
        // Heavy-tailed too: a streaming evening next to a quiet day.
        let mib = ctx.rng.lognormal(s.data_mib * u.data, DATA_SIGMA);
        if !u.no_outgoing && mib >= 1.0 {
            let sessions = if s.habit == Habit::Heavy { 2 } else { 1 };
            for _ in 0..sessions {
                let part = (mib / f64::from(sessions)).round() as u64;
                let t = info.start_ms + data_hour(&mut ctx.rng);
                let c = (part / 10) as i64; // 1 yuan per GB
                charged += c;
                self.cdr(ctx, t, RecordType::Data, "", 0, part, c);
            }
        }
        charged
    }

    /// Bills on the 1st, payments, prepaid top-ups.
    fn billing(&mut self, ctx: &mut Ctx<'_>, s: &mut Sub, d: i64) {
        let world = ctx.world;
        if s.postpaid && world.dom(d) == 1 && d > s.active_from {
            let prev = world.day(d - 1).date;
            let period = format!("{:04}-{:02}", prev.year(), prev.month());
            let new_line = s.activated_ms >= world.day(0).start_ms;
            let first_bill = new_line && d == world.next_first(s.active_from);
            let mut amount = s.plan_fee_fen + s.last_month_charge / 10;
            if first_bill {
                let days = i64::from(prev.day());
                amount =
                    s.plan_fee_fen * s.last_month_days.min(days) / days + s.last_month_charge / 10;
                amount = amount.min(s.plan_fee_fen * 3 / 2);
            }
            // Loyal subscribers pay 1-8 days after the bill; the due date is the 20th.
            let mut pay_day = Some(d + ctx.rng.range(1, 9));
            match s.role {
                Role::Journey(j) => match j.kind {
                    JourneyKind::BillShock if first_bill => {
                        amount = (s.plan_fee_fen as f64 * j.param) as i64;
                    }
                    JourneyKind::ReminderBill if d == j.aux => pay_day = Some(d + 18),
                    JourneyKind::Overdue | JourneyKind::ReminderBill if d >= j.aux => {
                        pay_day = None
                    }
                    _ => {}
                },
                Role::LookAlike(LookAlike::FirstBillTwiceFee, _, _) if first_bill => {
                    amount = 2 * s.plan_fee_fen;
                }
                Role::LookAlike(LookAlike::PaysFourDaysEarly, _, _) => pay_day = Some(d + 15),
                _ => {}
            }
            let issued = world.at(d, 6.0 + ctx.rng.uniform(0.0, 4.0));
            let due = world.at(d + 19, 23.0 + 59.0 / 60.0);
            self.account(
                ctx,
                issued,
                Kind::BillIssued(proto::BillIssued {
                    period,
                    amount,
                    due_time_ms: due,
                }),
            );
            s.owed = amount;
            s.pay_day = pay_day;
        }
        if s.owed > 0 && s.pay_day == Some(d) {
            let t = world.at(d, 9.0 + ctx.rng.uniform(0.0, 10.0));
            let amount = s.owed;
            self.account(ctx, t, Kind::Payment(proto::PaymentReceived { amount }));
            s.owed = 0;
        }
        if !s.postpaid && s.balance < 2_000 {
            let amount = if s.habit == Habit::Heavy {
                20_000
            } else {
                5_000
            };
            s.balance += amount;
            let t = world.at(d, 8.0 + ctx.rng.uniform(0.0, 12.0));
            self.account(
                ctx,
                t,
                Kind::TopUp(proto::TopUp {
                    amount,
                    balance_after: s.balance,
                }),
            );
        }
    }
}

/// Milliseconds into the day of a call: busiest at lunch and in the evening, later at
/// weekends, rare at night.
fn call_hour(rng: &mut Rng, weekend: bool) -> i64 {
    const WEEKDAY: [(f64, f64, u32); 4] = [
        (8.0, 12.0, 30),
        (12.0, 14.0, 15),
        (14.0, 18.0, 30),
        (18.0, 22.5, 25),
    ];
    const WEEKEND: [(f64, f64, u32); 4] = [
        (9.0, 12.0, 20),
        (12.0, 14.0, 15),
        (14.0, 18.0, 30),
        (18.0, 23.0, 35),
    ];
    let table = if weekend { &WEEKEND } else { &WEEKDAY };
    let mut x = (rng.next_u64() % 100) as u32;
    for &(from, to, w) in table {
        if x < w {
            return (rng.uniform(from, to) * HOUR_MS as f64) as i64;
        }
        x -= w;
    }
    (rng.uniform(8.0, 22.0) * HOUR_MS as f64) as i64
}

/// Data sessions: any time, mostly 7:00-24:00.
fn data_hour(rng: &mut Rng) -> i64 {
    let h = if rng.chance(0.9) {
        rng.uniform(7.0, 24.0)
    } else {
        rng.uniform(0.0, 7.0)
    };
    ((h * HOUR_MS as f64) as i64).min(DAY_MS - 1)
}

/// One message in the chosen file encoding, newline- or length-delimited.
fn encode<M: Message + serde::Serialize>(format: Format, m: &M) -> Vec<u8> {
    match format {
        Format::Json => {
            let mut v = Vec::with_capacity(200);
            // Serializing generated messages cannot fail (no maps with non-string keys).
            if serde_json::to_writer(&mut v, m).is_err() {
                v.clear();
            }
            v.push(b'\n');
            v
        }
        Format::Protobuf => m.encode_length_delimited_to_vec(),
    }
}
