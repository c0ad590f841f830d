//! How much a subscriber uses the phone on one day, as multipliers of their habits.
//!
//! Kept apart from the records themselves so the shapes are readable in one place: the
//! ordinary ups and downs every subscriber has (weeks, weekends, holidays), which the rules
//! must not mistake for churn, and on top the change each journey makes.

use super::kinds::{JourneyKind, LookAlike};
use super::{DayInfo, Journey, Role, Sub, World, DROP_FALL_DAYS};
use crate::tools::workload::Rng;

/// Usage multipliers for one day.
#[derive(Debug, Clone, Copy)]
pub(super) struct Usage {
    pub out: f64,
    pub inn: f64,
    pub data: f64,
    /// Charge no fen and make no outgoing call, SMS or data.
    pub no_outgoing: bool,
    /// No calls at all (silence).
    pub silent: bool,
    /// Seconds per call multiplier.
    pub dur: f64,
    /// Abroad: every record is a roaming one, from the visited network's TAP file.
    pub abroad: bool,
}

impl Usage {
    fn normal() -> Usage {
        Usage {
            out: 1.0,
            inn: 1.0,
            data: 1.0,
            no_outgoing: false,
            silent: false,
            dur: 1.0,
            abroad: false,
        }
    }
}

/// Subscriber `s`'s usage on day `d`.
pub(super) fn usage(world: &World, s: &Sub, d: i64, info: &DayInfo) -> Usage {
    let mut u = ordinary(world, s, d, info);
    match s.role {
        Role::Background => {}
        Role::LookAlike(LookAlike::HolidayDip, _, _) => {
            if info.holiday {
                u.out = 0.2;
                u.inn = 0.25;
                u.data = 0.3;
            }
        }
        Role::LookAlike(LookAlike::RegularTraveller, first, _) => {
            if on_trip(world.seed, s, first, d) {
                // Abroad: calls almost stop (apps over hotel Wi-Fi), a little roaming data.
                u.out *= 0.03;
                u.inn *= 0.1;
                u.data *= 0.05;
                u.abroad = true;
            }
        }
        Role::LookAlike(LookAlike::VoiceToData, from, percent) if d >= from => {
            let voice = percent as f64 / 100.0;
            u.out *= voice;
            u.inn *= voice;
            u.data *= data_for_same_spend(s, voice);
        }
        Role::LookAlike(..) => {}
        Role::Journey(j) => journey(world, &mut u, s, j, d),
    }
    u
}

/// Whether day `d` is in one of a regular traveller's trips: the first begins on `first`,
/// each lasts 5-9 days and the next begins 4-8 weeks after the last one began.
pub(super) fn on_trip(seed: u64, s: &Sub, first: i64, d: i64) -> bool {
    let mut start = first;
    let mut trip = 0u64;
    while start <= d {
        let mut r = Rng::stream(seed, s.idx as u64, trip | 2 << 40);
        let days = r.range(5, 10);
        if d < start + days {
            return true;
        }
        start += r.range(28, 57);
        trip += 1;
    }
    false
}

/// The data multiplier that keeps a subscriber's expected daily spend when their voice
/// falls to `voice` of its usual level: the outgoing minutes' charge (per started minute)
/// moves to data at 1 yuan per GB.
fn data_for_same_spend(s: &Sub, voice: f64) -> f64 {
    let rate = if s.plan_fee_fen >= 12_800 { 10.0 } else { 15.0 };
    let call_days = 1.0 / s.every as f64;
    let voice_fen = s.out_calls * call_days * (s.call_s / 60.0 + 0.5) * rate;
    let data_fen = (s.data_mib / 10.0).max(1.0);
    1.0 + voice_fen * (1.0 - voice) / data_fen
}

/// The ups and downs everyone has: busy and quiet weeks, weekends, public holidays.
fn ordinary(world: &World, s: &Sub, d: i64, info: &DayInfo) -> Usage {
    let mut u = Usage::normal();
    // Weeks vary: a busy week at work, a quiet one at home.
    let mut week = Rng::stream(world.seed, s.idx as u64, (d / 7) as u64 | 1 << 40);
    let f = week.lognormal(1.0, 0.15);
    u.out *= f;
    u.inn *= f;
    u.data *= week.lognormal(1.0, 0.15);
    match (s.weekend_caller, info.weekend) {
        (false, true) => {
            u.out *= 0.8;
            u.inn *= 0.9;
            u.data *= 1.2;
        }
        (true, true) => {
            u.out *= 2.2;
            u.inn *= 2.0;
        }
        (true, false) => {
            u.out *= 0.5;
            u.inn *= 0.55;
        }
        (false, false) => {}
    }
    if info.holiday {
        u.out *= 0.85;
        u.data *= 1.5;
        if s.holiday_dip {
            u.out *= 0.3;
            u.inn *= 0.3;
            u.data *= 0.4;
        }
    }
    u
}

/// The change journey `j` makes to its subscriber's usage on day `d`.
fn journey(world: &World, u: &mut Usage, s: &Sub, j: Journey, d: i64) {
    let since = d - j.onset;
    match j.kind {
        JourneyKind::CareCall | JourneyKind::ComplaintBurst | JourneyKind::FaultBurst
            if since >= 0 =>
        {
            u.out *= 0.8;
            u.data *= 0.85;
        }
        JourneyKind::ForwardStreak | JourneyKind::ForwardRegistration if since >= 0 => {
            u.out *= 0.4;
            u.inn *= 0.35;
            u.data *= 0.6;
        }
        JourneyKind::ZeroSpend if since >= 0 => {
            u.no_outgoing = true;
            u.inn = if (d + s.phase) % 2 == 0 { 1.0 } else { 0.0 };
            u.data = 0.0;
        }
        JourneyKind::Silent if since >= 0 => {
            u.silent = true;
            u.data *= 0.3;
        }
        JourneyKind::NumberRetention if since >= 0 => {
            u.silent = true;
            u.no_outgoing = true;
            u.data = 0.0;
        }
        JourneyKind::Overdue if d >= j.signal + 3 => {
            // Suspended for non-payment.
            u.silent = true;
            u.no_outgoing = true;
            u.data = 0.0;
        }
        JourneyKind::Overdue | JourneyKind::ReminderBill | JourneyKind::ReminderTopUp
            if since >= 0 =>
        {
            u.out *= 0.7;
            u.data *= 0.7;
        }
        JourneyKind::SpendDrop | JourneyKind::VoiceDrop | JourneyKind::DataDrop if since >= 0 => {
            fall(u, j, since)
        }
        JourneyKind::SustainedDecline if since >= 0 => {
            // One step down per calendar month after the reference month.
            let mut steps = 0;
            let mut m = j.onset;
            while m <= d && steps < 4 {
                steps += 1;
                m = world.next_first(m);
            }
            let f = j.param.powi(steps.min(3) + i32::from(d > j.signal));
            u.out *= f;
            u.data *= f;
        }
        JourneyKind::BillShock if d < j.signal => {
            // Roaming data in the first month.
            u.data *= 3.0;
        }
        _ => {}
    }
}

/// A drop journey `since` days after its onset: usage falls steadily to a tenth over three
/// weeks, or stops at once (`param` > 0), and moves elsewhere (calls to apps, data to a
/// second SIM, paid calls to another operator).
fn fall(u: &mut Usage, j: Journey, since: i64) {
    let k = if j.param > 0.0 {
        1.0
    } else {
        (since as f64 / f64::from(DROP_FALL_DAYS)).min(1.0)
    };
    let to = if j.param > 0.0 { 0.03 } else { 0.1 };
    let mix = |level: f64| 1.0 + (level - 1.0) * k;
    match j.kind {
        JourneyKind::SpendDrop => {
            u.out *= mix(to);
            u.inn *= mix(1.5);
            u.data *= mix(to * 2.0);
        }
        JourneyKind::VoiceDrop => {
            u.out *= mix(to);
            u.inn *= mix(to);
            u.data *= mix(1.3);
        }
        _ => {
            u.data *= mix(to);
            u.out *= mix(1.2);
        }
    }
}
