//! Planting: choosing each journey's days and reshaping its subscriber to fit.
//!
//! A journey is only worth planting if the detector could see it: its ticket must fall at
//! least 16 days before the horizon ends (so churn can follow), its rule needs the history
//! it reads (months of spend, weeks of calls), and a weak signal raises a ticket only for
//! a subscriber worth a call. So planting may fail; `generate` then says which kinds did
//! not fit rather than planting something the detector cannot be fairly blamed for.

use super::kinds::{JourneyKind, LookAlike};
use super::{set_habit, Habit, Journey, Role, Sub, World, DAY_MS, DROP_FALL_DAYS};
use crate::tools::workload::Rng;

/// When a journey's behaviour changes and its ticket is due (as in [`Journey`]).
struct Timing {
    onset: i64,
    signal: i64,
    aux: i64,
    param: f64,
}

impl Timing {
    fn at(onset: i64, signal: i64) -> Timing {
        Timing {
            onset,
            signal,
            aux: 0,
            param: 0.0,
        }
    }
}

/// Chooses a day in `lo..=hi` (None when empty).
fn day_in(rng: &mut Rng, lo: i64, hi: i64) -> Option<i64> {
    (lo <= hi).then(|| rng.range(lo, hi + 1))
}

/// Day index of the first 1st of a month in the horizon.
fn first_month(world: &World) -> i64 {
    if world.dom(0) == 1 {
        0
    } else {
        world.next_first(0)
    }
}

/// Plants `kind` on `s`; false when the horizon is too short for it.
pub(super) fn journey(world: &World, s: &mut Sub, kind: JourneyKind, rng: &mut Rng) -> bool {
    s.active_from = 0;
    s.activated_ms = world.day(0).start_ms - rng.range(200, 3000) * DAY_MS;
    if matches!(
        kind,
        JourneyKind::ForwardRegistration
            | JourneyKind::ReminderBill
            | JourneyKind::ReminderTopUp
            | JourneyKind::ContractExpiry
    ) {
        // Weak signals raise a ticket only above the lowest tier (routing matrix): plant
        // them on subscribers worth a call (plan of 58 yuan or more, daily use).
        set_habit(s, Habit::Mass, rng);
        s.out_calls = s.out_calls.max(2.0);
        s.plan_fee_fen = 100 * rng.pick(&[58, 88]);
    }
    if kind == JourneyKind::QuietLeaver {
        return quiet_leaver(world, s, rng);
    }
    let Some(t) = timing(world, s, kind, rng) else {
        return false;
    };
    s.role = Role::Journey(Journey {
        kind,
        onset: t.onset.max(1),
        signal: t.signal,
        aux: t.aux,
        param: t.param,
    });
    // Most churn 15-45 days after the sign; ~1.5% stay (retained by care, or never meant to go).
    if !rng.chance(0.015) {
        let n = world.n_days;
        let lag = rng.range(15, 46).min(n - 1 - t.signal).max(15);
        let c = t.signal + lag;
        if c < n {
            s.churn_day = Some(c);
            s.churn_ms = world.at(c, 10.0 + rng.uniform(0.0, 8.0));
        }
    }
    true
}

/// Ports out with no warning sign, from day 30 on.
fn quiet_leaver(world: &World, s: &mut Sub, rng: &mut Rng) -> bool {
    let n = world.n_days;
    let Some(c) = day_in(rng, 30.min(n - 1), n - 1) else {
        return false;
    };
    s.role = Role::Journey(Journey {
        kind: JourneyKind::QuietLeaver,
        onset: c,
        signal: c,
        aux: 0,
        param: 0.0,
    });
    s.churn_day = Some(c);
    s.churn_ms = world.at(c, 10.0 + rng.uniform(0.0, 8.0));
    true
}

/// Chooses the journey's days (reshaping `s` where the journey needs it); None when it does
/// not fit the horizon.
fn timing(world: &World, s: &mut Sub, kind: JourneyKind, rng: &mut Rng) -> Option<Timing> {
    let n = world.n_days;
    let last_signal = n - 16;
    // Tiers average the last three full months the engine has seen; a weak signal raises
    // no ticket for the lowest tier, so weak journeys wait for three observed months.
    let weak_from = 92.min(last_signal).max(3);
    match kind {
        JourneyKind::CareCall | JourneyKind::NumberRetention => {
            let d = day_in(rng, 2, last_signal)?;
            Some(Timing::at(d, d))
        }
        JourneyKind::ForwardRegistration => {
            let d = day_in(rng, weak_from, last_signal)?;
            Some(Timing::at(d, d))
        }
        JourneyKind::ReminderTopUp => {
            let d = day_in(rng, weak_from, last_signal)?;
            s.postpaid = false;
            Some(Timing::at(d.saturating_sub(10).max(1), d))
        }
        JourneyKind::ContractExpiry => {
            let d = day_in(rng, weak_from, last_signal)?;
            s.postpaid = true;
            s.contract_end_ms = Some(world.at(d + 60, 12.0));
            Some(Timing::at(d, d))
        }
        JourneyKind::ForwardStreak => {
            let f = day_in(rng, 2, n - 21)?;
            let aux = f + rng.range(5, 11); // first day after the streak
            let param = if rng.chance(0.5) { 1.0 } else { 0.0 }; // registers first?
            Some(Timing {
                onset: f,
                signal: f + 4,
                aux,
                param,
            })
        }
        JourneyKind::Silent => {
            set_habit(s, Habit::Mass, rng);
            let q = day_in(rng, 36, n - 23)?;
            Some(Timing::at(q, q + 6))
        }
        JourneyKind::SpendDrop | JourneyKind::VoiceDrop | JourneyKind::DataDrop => {
            drop_timing(world, s, rng, last_signal)
        }
        JourneyKind::SustainedDecline => decline_timing(world, s, rng, last_signal),
        JourneyKind::ZeroSpend => zero_spend_timing(world, rng, last_signal),
        JourneyKind::Overdue | JourneyKind::ReminderBill => {
            bill_timing(world, s, kind, rng, (last_signal, weak_from))
        }
        JourneyKind::ComplaintBurst => {
            let d = day_in(rng, 8, last_signal)?;
            let aux = (d - rng.range(3, 60)).max(1);
            Some(Timing {
                aux,
                ..Timing::at(aux, d)
            })
        }
        JourneyKind::FaultBurst => {
            let d = day_in(rng, 12, last_signal)?;
            let aux = (d - rng.range(10, 40)).max(1);
            Some(Timing {
                aux,
                ..Timing::at(aux, d)
            })
        }
        JourneyKind::IpCalls => ip_calls_timing(world, rng, last_signal),
        JourneyKind::BillShock => bill_shock_timing(world, s, rng, last_signal),
        JourneyKind::QuietLeaver => None,
    }
}

/// Spend, voice or data drops: a steady fall to a tenth over three weeks, or (a third of
/// them) a stop at once, on a heavy user, away from holidays.
fn drop_timing(world: &World, s: &mut Sub, rng: &mut Rng, last_signal: i64) -> Option<Timing> {
    heavy_for_drops(s, rng);
    let stop = rng.chance(0.3);
    let span = if stop { 7 } else { i64::from(DROP_FALL_DAYS) };
    for _ in 0..20 {
        let q = day_in(rng, 36, last_signal - span)?;
        if !world.holiday_in(q - 7, q + span + 9) {
            return Some(Timing {
                param: if stop { 1.0 } else { 0.0 },
                ..Timing::at(q, q + span)
            });
        }
    }
    None
}

/// Spend declining for months: the first full month is the reference; three declining
/// months follow.
fn decline_timing(world: &World, s: &mut Sub, rng: &mut Rng, last_signal: i64) -> Option<Timing> {
    heavy_for_drops(s, rng);
    // Pay-as-you-go: a postpaid bill never falls below the plan fee, and bills are
    // the engine's monthly spend where they exist.
    s.postpaid = false;
    let m1 = world.next_first(first_month(world));
    let m3_last = world.month_last(world.next_first(world.next_first(m1)));
    if m3_last > last_signal {
        return None;
    }
    Some(Timing {
        param: rng.uniform(0.55, 0.65),
        ..Timing::at(m1, m3_last)
    })
}

/// A full calendar month of dormancy inside the horizon.
fn zero_spend_timing(world: &World, rng: &mut Rng, last_signal: i64) -> Option<Timing> {
    let mut months = Vec::new();
    let mut m = world.next_first(0);
    while world.month_last(m) <= last_signal {
        months.push(m);
        m = world.next_first(m);
    }
    if months.is_empty() {
        return None;
    }
    let m = *rng.pick(&months);
    let onset = (m - rng.range(0, 10)).max(1);
    Some(Timing::at(onset, world.month_last(m)))
}

/// An unpaid bill, or one paid at the last minute: bills are issued on the 1st and due on
/// the 20th.
fn bill_timing(
    world: &World,
    s: &mut Sub,
    kind: JourneyKind,
    rng: &mut Rng,
    (last_signal, weak_from): (i64, i64),
) -> Option<Timing> {
    s.postpaid = true;
    let mut firsts = Vec::new();
    let mut b = first_month(world);
    let offset = if kind == JourneyKind::Overdue { 24 } else { 16 };
    while b + offset <= last_signal {
        if b >= 1 && (kind == JourneyKind::Overdue || b + offset >= weak_from) {
            firsts.push(b);
        }
        b = world.next_first(b);
    }
    if firsts.is_empty() {
        return None;
    }
    let b = *rng.pick(&firsts);
    Some(Timing {
        aux: b,
        ..Timing::at(b, b + offset)
    })
}

/// Competitor IP calls of `param` minutes every other day from `aux`, inside one month,
/// until they pass 50 yuan.
fn ip_calls_timing(world: &World, rng: &mut Rng, last_signal: i64) -> Option<Timing> {
    let minutes = rng.range(25, 41);
    let crossing = (50.0 / 0.30 / minutes as f64).ceil() as i64; // calls to pass 50 yuan
    let mut starts = Vec::new();
    let mut m = first_month(world);
    while m < world.n_days {
        let first_call = m.max(1);
        let signal = first_call + 2 * (crossing - 1);
        if signal + 2 <= world.month_last(m) && signal <= last_signal {
            starts.push(first_call);
        }
        m = world.next_first(m);
    }
    if starts.is_empty() {
        return None;
    }
    let a = *rng.pick(&starts);
    Some(Timing {
        onset: a,
        signal: a + 2 * (crossing - 1),
        aux: a,
        param: minutes as f64,
    })
}

/// A new postpaid line whose first bill is far above its plan fee.
fn bill_shock_timing(
    world: &World,
    s: &mut Sub,
    rng: &mut Rng,
    last_signal: i64,
) -> Option<Timing> {
    s.postpaid = true;
    let mut choices = Vec::new();
    for a in 0..world.n_days {
        let b = world.next_first(a);
        if b - a >= 12 && b - a <= 40 && b <= last_signal {
            choices.push(a);
        }
    }
    if choices.is_empty() {
        return None;
    }
    let a = *rng.pick(&choices);
    s.active_from = a;
    s.activated_ms = world.at(a, 10.0 + rng.uniform(0.0, 6.0));
    s.plan_fee_fen = 100 * rng.pick(&[38, 58, 88]);
    Some(Timing {
        param: rng.uniform(2.4, 4.0),
        ..Timing::at(a, world.next_first(a))
    })
}

/// The drop journeys need a heavy user with steady, well-measured baselines: a fall is
/// only measurable against usage of every day (weekend callers stay in the background,
/// where they test the false alarms).
pub(super) fn heavy_for_drops(s: &mut Sub, rng: &mut Rng) {
    set_habit(s, Habit::Heavy, rng);
    s.weekend_caller = false;
    s.out_calls = rng.uniform(3.5, 4.5);
    s.in_calls = rng.uniform(2.5, 3.5);
    s.call_s = rng.uniform(180.0, 240.0);
    s.data_mib = rng.uniform(1800.0, 2600.0);
}

/// Plants `look` on `s`; false when the horizon is too short for it.
pub(super) fn look_alike(world: &World, s: &mut Sub, look: LookAlike, rng: &mut Rng) -> bool {
    let n = world.n_days;
    s.active_from = 0;
    s.activated_ms = world.day(0).start_ms - rng.range(200, 3000) * DAY_MS;
    let (a, b) = match look {
        LookAlike::HolidayDip => {
            heavy_for_drops(s, rng);
            if !world.holiday_in(35, n - 1) {
                return false;
            }
            (0, 0)
        }
        LookAlike::OnNetForwarding => {
            let Some(f) = day_in(rng, 2, n - 12) else {
                return false;
            };
            (f, f + rng.range(6, 11))
        }
        LookAlike::SingleComplaint | LookAlike::CareCall60s | LookAlike::OwnCareLine => {
            let Some(d) = day_in(rng, 1, n - 2) else {
                return false;
            };
            (d, 0)
        }
        LookAlike::TwoFaultReports => {
            let Some(d) = day_in(rng, 1, n - 32) else {
                return false;
            };
            (d, d + rng.range(5, 31))
        }
        LookAlike::OwnIpPrefix | LookAlike::IpCallsBelowThreshold => (0, 0),
        LookAlike::FirstBillTwiceFee => {
            s.postpaid = true;
            let Some(a) = day_in(rng, 0, n - 45) else {
                return false;
            };
            let b = world.next_first(a);
            if b >= n || b - a < 5 {
                return false;
            }
            s.active_from = a;
            s.activated_ms = world.at(a, 11.0);
            (a, b)
        }
        LookAlike::BalanceExactlyFive => {
            s.postpaid = false;
            let Some(d) = day_in(rng, 1, n - 2) else {
                return false;
            };
            (d, 0)
        }
        LookAlike::PaysFourDaysEarly => {
            s.postpaid = true;
            if n < 20 {
                return false;
            }
            (0, 0)
        }
        LookAlike::ContractRenewed => {
            s.postpaid = true;
            let Some(e0) = day_in(rng, 72, n + 55) else {
                return false;
            };
            let renew = e0 - 61 - rng.range(0, 10);
            if renew < 1 || renew >= n {
                return false;
            }
            s.contract_end_ms = Some(world.at(e0, 12.0));
            (renew, e0)
        }
        LookAlike::RegularTraveller => {
            // A traveller calls on most days at home (a light user's silence is not a sign).
            // The workload starts mid-rhythm: the first trip falls in its first three weeks,
            // before the rules judge anyone, so every trip judged comes after one seen (a
            // traveller is regular only to someone who has watched).
            if s.habit == Habit::Light {
                set_habit(s, Habit::Mass, rng);
            }
            let Some(first_trip) = day_in(rng, 3, 21.min(n - 10)) else {
                return false;
            };
            (first_trip, 0)
        }
        LookAlike::VoiceToData => {
            if s.habit == Habit::Light {
                set_habit(s, Habit::Mass, rng);
            }
            let Some(d) = day_in(rng, 35, n - 21) else {
                return false;
            };
            (d, rng.range(15, 36)) // voice level afterwards, percent
        }
        LookAlike::PlanDowngrade => {
            let Some(d) = day_in(rng, 35, n - 10) else {
                return false;
            };
            let (from, to) = *rng.pick(downgrades(s.habit));
            s.plan_fee_fen = 100 * from;
            (d, 100 * to)
        }
    };
    s.role = Role::LookAlike(look, a, b);
    true
}

/// Plan downgrades a subscriber of this habit makes, yuan (from, to): within one rate band
/// (under or from 128 yuan), so the per-minute charge and with it usage's spend stay.
fn downgrades(habit: Habit) -> &'static [(i64, i64)] {
    match habit {
        Habit::Light => &[(38, 18)],
        Habit::Mass => &[(58, 38), (88, 58), (88, 38)],
        Habit::Heavy => &[(188, 128), (288, 188), (288, 128)],
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use prost::Message;

    use super::*;
    use crate::config::Format;
    use crate::detect::calendar::Calendar;
    use crate::proto;
    use crate::tools::workload::population::{base_sub, DayOut};

    fn world(days: i64) -> World {
        let cal = Calendar::new("Asia/Shanghai", &[]).unwrap();
        let start = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        World::new(&cal, start, days, 1, Format::Json)
    }

    #[test]
    fn a_journey_that_does_not_fit_the_horizon_is_not_planted() {
        let w = world(60);
        let mut s = base_sub(&w, 3, &mut Rng::new(3));
        assert!(!journey(
            &w,
            &mut s,
            JourneyKind::SustainedDecline,
            &mut Rng::new(1)
        ));
        assert!(matches!(s.role, Role::Background));
    }

    #[test]
    fn signs_come_after_onset_and_early_enough_for_churn_to_follow() {
        let w = world(150);
        for kind in JourneyKind::ALL {
            for seed in 0..20 {
                let mut s = base_sub(&w, 3, &mut Rng::new(seed));
                assert!(journey(&w, &mut s, kind, &mut Rng::new(seed)), "{kind:?}");
                let Role::Journey(j) = s.role else {
                    panic!("{kind:?} not planted");
                };
                assert!(1 <= j.onset && j.onset <= j.signal, "{kind:?} {j:?}");
                if kind != JourneyKind::QuietLeaver {
                    assert!(j.signal <= w.n_days - 16, "{kind:?} {j:?}");
                }
                if let Some(c) = s.churn_day {
                    assert!(c >= j.signal && c < w.n_days, "{kind:?} {j:?} churns {c}");
                }
            }
        }
    }

    /// Plants `look` on subscriber `idx` and returns it with its records over the horizon.
    fn planted_look_alike(
        w: &World,
        look: LookAlike,
        idx: usize,
    ) -> (Sub, Vec<proto::CallDetailRecord>, Vec<proto::AccountEvent>) {
        let mut s = base_sub(w, idx, &mut Rng::new(idx as u64));
        assert!(look_alike(w, &mut s, look, &mut Rng::new(idx as u64 + 1)));
        let planted = s.clone();
        let (mut cdr, mut acct) = (Vec::new(), Vec::new());
        for d in 0..w.n_days {
            let mut out = DayOut::default();
            out.sub_day(w, &mut s, d);
            cdr.extend(
                out.cdr.iter().map(|o| {
                    proto::CallDetailRecord::decode_length_delimited(&o.bytes[..]).unwrap()
                }),
            );
            acct.extend(
                out.acct
                    .iter()
                    .map(|o| proto::AccountEvent::decode_length_delimited(&o.bytes[..]).unwrap()),
            );
        }
        (planted, cdr, acct)
    }

    fn pb_world(days: i64) -> World {
        let cal = Calendar::new("Asia/Shanghai", &[]).unwrap();
        let start = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        World::new(&cal, start, days, 1, Format::Protobuf)
    }

    #[test]
    fn a_regular_traveller_goes_quiet_for_about_a_week_every_one_to_two_months() {
        let w = pb_world(150);
        for idx in 0..20 {
            let (s, ..) = planted_look_alike(&w, LookAlike::RegularTraveller, idx);
            let Role::LookAlike(_, first, _) = s.role else {
                panic!("not planted");
            };
            let away: Vec<bool> = (0..w.n_days)
                .map(|d| super::super::usage::on_trip(w.seed, &s, first, d))
                .collect();
            let starts: Vec<i64> = (0..w.n_days)
                .filter(|&d| away[d as usize] && (d == 0 || !away[d as usize - 1]))
                .collect();
            assert!(starts.len() >= 2, "{starts:?}");
            assert_eq!(starts[0], first);
            for pair in starts.windows(2) {
                assert!((28..=56).contains(&(pair[1] - pair[0])), "{starts:?}");
            }
            for &a in &starts[..starts.len() - 1] {
                let days = (a..).take_while(|&d| away[d as usize]).count();
                assert!((5..=9).contains(&days), "trip of {days} days");
            }
        }
    }

    #[test]
    fn moving_calls_to_data_keeps_spend_about_the_same() {
        let w = pb_world(120);
        let (mut voice, mut spend) = ([0i64; 2], [0i64; 2]);
        for idx in 0..40 {
            let (s, cdr, _) = planted_look_alike(&w, LookAlike::VoiceToData, idx);
            let Role::LookAlike(_, from, _) = s.role else {
                panic!("not planted");
            };
            let (lo, hi) = (w.day(from - 21).start_ms, w.day(from + 21).start_ms);
            let switch = w.day(from).start_ms;
            for c in cdr
                .iter()
                .filter(|c| lo <= c.event_time_ms && c.event_time_ms < hi)
            {
                let after = usize::from(c.event_time_ms >= switch);
                voice[after] += i64::from(c.duration_s);
                spend[after] += c.charge;
            }
        }
        assert!(voice[1] * 2 < voice[0], "voice falls sharply: {voice:?}");
        let ratio = spend[1] as f64 / spend[0] as f64;
        assert!((0.8..1.25).contains(&ratio), "spend {spend:?}");
    }

    #[test]
    fn a_plan_downgrade_is_one_plan_change_to_a_cheaper_fee_in_the_same_rate_band() {
        let w = pb_world(110);
        for idx in 0..30 {
            let (s, _, acct) = planted_look_alike(&w, LookAlike::PlanDowngrade, idx);
            let Role::LookAlike(_, day, to) = s.role else {
                panic!("not planted");
            };
            let fees: Vec<(i64, i64)> = acct
                .iter()
                .filter_map(|e| match &e.kind {
                    Some(proto::account_event::Kind::PlanChanged(p)) => {
                        Some((e.event_time_ms, p.monthly_fee))
                    }
                    _ => None,
                })
                .collect();
            assert_eq!(fees.len(), 2, "the opening plan, then the cheaper one");
            let (from_fee, (at, to_fee)) = (fees[0].1, fees[1]);
            assert_eq!((from_fee, to_fee), (s.plan_fee_fen, to));
            assert!(to_fee < from_fee);
            assert_eq!(from_fee >= 12_800, to_fee >= 12_800, "same per-minute rate");
            assert!(w.day(day).start_ms <= at && at < w.day(day + 1).start_ms);
        }
    }
}
