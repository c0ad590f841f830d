//! Planting: choosing each journey's days and reshaping its subscriber to fit.
//!
//! A journey is only worth planting if the detector could see it: its ticket must fall at
//! least 16 days before the horizon ends (so churn can follow), its rule needs the history
//! it reads (months of spend, weeks of calls), and a weak signal raises a ticket only for
//! a subscriber worth a call. So planting may fail; `generate` then says which kinds did
//! not fit rather than planting something the detector cannot be fairly blamed for.

use super::kinds::JourneyKind;
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
pub(super) fn day_in(rng: &mut Rng, lo: i64, hi: i64) -> Option<i64> {
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

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::config::Format;
    use crate::detect::calendar::Calendar;
    use crate::tools::workload::population::base_sub;

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
}
