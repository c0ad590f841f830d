//! Planting look-alikes: loyal subscribers whose behaviour resembles a churn sign (a
//! holiday dip, a single complaint, a trip abroad, calls moved to data, a cheaper plan...),
//! each reshaped so the sign falls inside the horizon. They are the false alarms a rule must
//! not raise; `journeys.csv` names them as look-alikes.

use super::kinds::LookAlike;
use super::plant::{day_in, heavy_for_drops};
use super::{set_habit, Habit, Role, Sub, World, DAY_MS};
use crate::tools::workload::Rng;

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
