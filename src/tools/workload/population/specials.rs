//! The records that make a journey or a look-alike what it is: the care call, the
//! forwarding, the complaints, the bill that stays unpaid; and for look-alikes the near
//! misses (a 60 s care call, on-network forwarding, a single complaint) that must not fire.
//!
//! These come on top of the subscriber's ordinary traffic, which [`super::usage`] reshapes.

use chrono::Datelike;

use super::day::{Ctx, DayOut};
use super::kinds::{JourneyKind, LookAlike};
use super::{Journey, Role, Sub};
use crate::proto::{self, account_event::Kind, RecordType};
use crate::tools::workload::numbers::{mobile, voice_charge, COMPETITOR_PREFIXES, UNICOM_PREFIXES};
use crate::tools::workload::HOUR_MS;

impl DayOut {
    /// The journey's or look-alike's own records on day `d`.
    pub(super) fn specials(&mut self, ctx: &mut Ctx<'_>, s: &mut Sub, d: i64) {
        match s.role {
            Role::Background => {}
            Role::Journey(j) => match j.kind {
                JourneyKind::CareCall
                | JourneyKind::ForwardStreak
                | JourneyKind::ForwardRegistration
                | JourneyKind::IpCalls => self.journey_calls(ctx, s, j, d),
                _ => self.journey_accounts(ctx, s, j, d),
            },
            Role::LookAlike(look, a, b) => match look {
                LookAlike::SingleComplaint
                | LookAlike::TwoFaultReports
                | LookAlike::BalanceExactlyFive
                | LookAlike::ContractRenewed
                | LookAlike::PlanDowngrade => self.look_alike_accounts(ctx, s, look, (a, b), d),
                _ => self.look_alike_calls(ctx, s, look, (a, b), d),
            },
        }
    }

    /// A care call to a competitor, forwarding to a competitor's mobile, IP calls through a
    /// competitor's prefix.
    fn journey_calls(&mut self, ctx: &mut Ctx<'_>, s: &Sub, j: Journey, d: i64) {
        let world = ctx.world;
        match j.kind {
            JourneyKind::CareCall if d == j.signal => {
                let care = if ctx.rng.chance(0.7) {
                    "10086"
                } else {
                    "10000"
                };
                let t = world.at(d, 19.0 + ctx.rng.uniform(0.0, 2.0));
                match ctx.rng.range(0, 4) {
                    0 => {
                        let parts: Vec<u32> = (0..ctx.rng.range(3, 7))
                            .map(|_| ctx.rng.range(60, 121) as u32)
                            .collect();
                        self.partial_call(ctx, t, care, &parts);
                    }
                    1 => {
                        let secs = ctx.rng.range(90, 900) as u32;
                        self.cdr(ctx, t, RecordType::VoiceIn, care, secs, 0, 0);
                    }
                    _ => {
                        let secs = ctx.rng.range(90, 900) as u32;
                        let c = voice_charge(secs, 15);
                        self.cdr(ctx, t, RecordType::VoiceOut, care, secs, 0, c);
                    }
                }
            }
            JourneyKind::ForwardStreak | JourneyKind::ForwardRegistration => {
                let target = format!(
                    "{}{:08}",
                    COMPETITOR_PREFIXES[s.idx % 4],
                    s.idx % 99_999_989
                );
                let register = j.kind == JourneyKind::ForwardRegistration || j.param > 0.5;
                let reg_day = if j.kind == JourneyKind::ForwardRegistration {
                    j.signal
                } else {
                    j.onset - 1
                };
                if register && d == reg_day {
                    let t = world.at(d, 21.0 + ctx.rng.uniform(0.0, 2.0));
                    self.cdr(ctx, t, RecordType::ForwardRegistration, &target, 0, 0, 0);
                }
                let forwarding = if j.kind == JourneyKind::ForwardStreak {
                    d >= j.onset && d < j.aux
                } else {
                    // A few forwarded calls, never on 5 days running.
                    matches!(d - j.signal, 1 | 3 | 6 | 10)
                };
                if forwarding {
                    for k in 0..ctx.rng.range(1, 5) {
                        let t = world.at(d, 9.0 + 3.0 * k as f64 + ctx.rng.uniform(0.0, 2.0));
                        let secs = ctx.rng.range(20, 400) as u32;
                        let c = voice_charge(secs, 15);
                        self.cdr(ctx, t, RecordType::Forward, &target, secs, 0, c);
                    }
                }
            }
            JourneyKind::IpCalls if d >= j.aux && (d - j.aux) % 2 == 0 => {
                let calls_to_cross = (50.0 / 0.30 / j.param).ceil() as i64;
                if (d - j.aux) / 2 <= calls_to_cross {
                    let prefix = *ctx.rng.pick(&["17951", "12593", "17909"]);
                    let other = format!("{prefix}{}", mobile(&mut ctx.rng, &COMPETITOR_PREFIXES));
                    let secs = (j.param * 60.0) as u32 + ctx.rng.range(0, 30) as u32;
                    let t = world.at(d, 20.0 + ctx.rng.uniform(0.0, 2.0));
                    let c = voice_charge(secs, 10);
                    self.cdr(ctx, t, RecordType::VoiceOut, &other, secs, 0, c);
                }
            }
            _ => {}
        }
    }

    /// Overdue bills and the suspension after, a prepaid balance run down, a number parked,
    /// complaints and fault reports.
    fn journey_accounts(&mut self, ctx: &mut Ctx<'_>, s: &Sub, j: Journey, d: i64) {
        let world = ctx.world;
        match j.kind {
            JourneyKind::Overdue if d == j.signal => {
                let prev = world.day(j.aux - 1).date;
                let t = world.at(d, 3.0);
                self.account(
                    ctx,
                    t,
                    Kind::BillOverdue(proto::BillOverdue {
                        period: format!("{:04}-{:02}", prev.year(), prev.month()),
                        amount: s.plan_fee_fen,
                        days_overdue: (j.signal - (j.aux + 19)) as u32,
                    }),
                );
            }
            JourneyKind::Overdue if d == j.signal + 3 => {
                let t = world.at(d, 2.0);
                self.account(
                    ctx,
                    t,
                    Kind::Suspended(proto::Suspended {
                        reason: proto::SuspensionReason::NonPayment as i32,
                    }),
                );
            }
            JourneyKind::ReminderTopUp if d == j.signal => {
                let t = world.at(d, 12.0 + ctx.rng.uniform(0.0, 8.0));
                let after = ctx.rng.range(50, 500);
                self.account(
                    ctx,
                    t,
                    Kind::TopUp(proto::TopUp {
                        amount: 1_000,
                        balance_after: after,
                    }),
                );
            }
            JourneyKind::NumberRetention if d == j.signal => {
                let t = world.at(d, 10.0 + ctx.rng.uniform(0.0, 6.0));
                self.account(
                    ctx,
                    t,
                    Kind::Suspended(proto::Suspended {
                        reason: proto::SuspensionReason::NumberRetention as i32,
                    }),
                );
            }
            JourneyKind::ComplaintBurst if d == j.aux || d == j.signal => {
                const WHY: [&str; 4] = [
                    "dropped calls",
                    "billing error",
                    "slow data",
                    "rude service",
                ];
                let t = world.at(d, 10.0 + ctx.rng.uniform(0.0, 8.0));
                let category = (*ctx.rng.pick(&WHY)).to_string();
                self.account(ctx, t, Kind::Complaint(proto::Complaint { category }));
            }
            JourneyKind::FaultBurst
                if d == j.aux || d == j.signal || d == (j.aux + j.signal) / 2 =>
            {
                let t = world.at(d, 9.0 + ctx.rng.uniform(0.0, 9.0));
                self.account(
                    ctx,
                    t,
                    Kind::FaultReport(proto::FaultReport {
                        category: "no signal at home".into(),
                    }),
                );
            }
            _ => {}
        }
    }

    /// Calls that resemble a churn sign: on-network forwarding, short or own care calls,
    /// IP calls through our own prefix or below the threshold.
    fn look_alike_calls(
        &mut self,
        ctx: &mut Ctx<'_>,
        s: &Sub,
        look: LookAlike,
        (a, b): (i64, i64),
        d: i64,
    ) {
        let world = ctx.world;
        match look {
            LookAlike::OnNetForwarding => {
                let target = format!("{}{:08}", UNICOM_PREFIXES[s.idx % 4], s.idx % 99_999_989);
                if d == a - 1 {
                    let t = world.at(d, 21.0);
                    self.cdr(ctx, t, RecordType::ForwardRegistration, &target, 0, 0, 0);
                }
                if d >= a && d < b {
                    for k in 0..ctx.rng.range(1, 4) {
                        let t = world.at(d, 10.0 + 3.0 * k as f64);
                        let secs = ctx.rng.range(30, 300) as u32;
                        self.cdr(ctx, t, RecordType::Forward, &target, secs, 0, 0);
                    }
                }
            }
            LookAlike::CareCall60s if d == a => {
                let t = world.at(d, 16.0);
                self.cdr(ctx, t, RecordType::VoiceOut, "10086", 60, 0, 15);
            }
            LookAlike::OwnCareLine if d == a => {
                let t = world.at(d, 16.0);
                self.cdr(ctx, t, RecordType::VoiceOut, "10010", 600, 0, 0);
            }
            // Steady habits over the whole horizon: a 40-minute call every other day via
            // our own 17911, or a 20-minute competitor IP call every 4th day (at most 8
            // in a calendar month: 160 minutes, 48 yuan < 50).
            LookAlike::OwnIpPrefix if (d + s.phase) % 2 == 0 => {
                let other = format!("17911{}", mobile(&mut ctx.rng, &COMPETITOR_PREFIXES));
                let t = world.at(d, 20.0);
                let secs = 40 * 60;
                let c = voice_charge(secs, 10);
                self.cdr(ctx, t, RecordType::VoiceOut, &other, secs, 0, c);
            }
            LookAlike::IpCallsBelowThreshold if (d + s.phase) % 4 == 0 => {
                let other = format!("17951{}", mobile(&mut ctx.rng, &COMPETITOR_PREFIXES));
                let t = world.at(d, 20.0);
                let secs = 20 * 60;
                let c = voice_charge(secs, 10);
                self.cdr(ctx, t, RecordType::VoiceOut, &other, secs, 0, c);
            }
            _ => {}
        }
    }

    /// Account events that resemble a churn sign: one complaint, two fault reports, a
    /// balance of exactly 5 yuan, a contract renewed in time, a cheaper plan.
    fn look_alike_accounts(
        &mut self,
        ctx: &mut Ctx<'_>,
        s: &mut Sub,
        look: LookAlike,
        (a, b): (i64, i64),
        d: i64,
    ) {
        let world = ctx.world;
        match look {
            LookAlike::SingleComplaint if d == a => {
                let t = world.at(d, 15.0);
                self.account(
                    ctx,
                    t,
                    Kind::Complaint(proto::Complaint {
                        category: "billing question".into(),
                    }),
                );
            }
            LookAlike::TwoFaultReports if d == a || d == b => {
                let t = world.at(d, 11.0);
                self.account(
                    ctx,
                    t,
                    Kind::FaultReport(proto::FaultReport {
                        category: "weak indoor signal".into(),
                    }),
                );
            }
            LookAlike::BalanceExactlyFive if d == a => {
                let t = world.at(d, 12.0);
                self.account(
                    ctx,
                    t,
                    Kind::TopUp(proto::TopUp {
                        amount: 1_000,
                        balance_after: 500,
                    }),
                );
                // A proper top-up follows the same evening.
                s.balance = 500 + 10_000;
                self.account(
                    ctx,
                    t + 6 * HOUR_MS,
                    Kind::TopUp(proto::TopUp {
                        amount: 10_000,
                        balance_after: s.balance,
                    }),
                );
            }
            LookAlike::ContractRenewed if d == a => {
                let t = world.at(d, 14.0);
                self.account(
                    ctx,
                    t,
                    Kind::Contract(proto::ContractUpdated {
                        end_time_ms: world.at(b + 730, 12.0),
                    }),
                );
            }
            LookAlike::PlanDowngrade if d == a => {
                let t = world.at(d, 11.0 + ctx.rng.uniform(0.0, 6.0));
                s.plan_fee_fen = b;
                let prefix = if s.postpaid { "post" } else { "pre" };
                self.account(
                    ctx,
                    t,
                    Kind::PlanChanged(proto::PlanChanged {
                        plan_id: format!("{prefix}-{}", b / 100),
                        monthly_fee: b,
                    }),
                );
            }
            _ => {}
        }
    }
}
