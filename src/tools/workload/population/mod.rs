//! The `generate` preset: a subscriber population with habits, planted churn journeys for
//! every rule, and loyal look-alikes that must not fire.
//!
//! Realistic enough that no rule is flattered, so detection quality measured on it means
//! something:
//! - habits: light, mass and heavy users; weekday/weekend and time-of-day patterns; plan
//!   fees from 18 to 288 yuan; prepaid top-ups and postpaid bills; holiday dips from the
//!   configured calendar;
//! - call counts are Poisson around each subscriber's own rates, which differ (log-normal
//!   spread); light users call only every 2nd or 3rd day, others may have silent days;
//! - call durations are log-normal (CV 0.95, as exponential: most calls short, a few an
//!   hour long) and a day's data is log-normal too (a streaming evening next to a quiet day);
//! - weekends are quieter for most, and 15% call mostly at weekends (weekday rate halved,
//!   weekend rate doubled); every subscriber's weeks vary (+-15%); 10% dip to a third on
//!   public holidays;
//! - bills are paid 1-8 days after issue, prepaid balances are topped up at 20 yuan, and
//!   contracts end at least 90 days after the horizon;
//! - the drop journeys are the declines: usage falling steadily to a tenth over
//!   three weeks, or (a third of them) stopping at once.
//!
//! **Determinism.** Every draw comes from [`Rng::stream`] seeded by `(seed, subscriber,
//! day)`, so the records are byte-identical for the same seed whatever the thread count.
//! Days are generated in order, subscribers in parallel chunks.
//!
//! **Scale.** Volumes are a scaled-down copy of real traffic (about 3 records per
//! subscriber-day instead of dozens): enough for every rule's baseline, small enough that
//! 100,000 subscribers over 150 days (~40 M records) generate in well under a minute.
//!
//! **Delivery** is realistic: ~3% of records arrive 1 min to 24 h late and ~0.5% are
//! delivered twice, always within the engine's 48 h lateness.

mod day;
mod kinds;
mod look_alikes;
mod plant;
mod specials;
mod usage;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate, Weekday};

use super::numbers::subscriber_number;
use super::{Rng, DAY_MS, HOUR_MS};
use crate::config::Format;
use crate::detect::calendar::{date_of_day, day_of_date, Calendar, Day};

pub use day::{DayOut, Out};
pub use kinds::{JourneyKind, LookAlike};

/// Days over which a drop journey's usage falls to a tenth.
const DROP_FALL_DAYS: u32 = 21;

/// Share of the population planted with each kind of look-alike (1.5% for the first
/// twelve kinds; a new kind adds its own share rather than thinning the others).
const LOOK_ALIKE_SHARE: f64 = 0.00125;

/// How much someone uses the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Habit {
    /// Calls every 2nd or 3rd day, little data.
    Light,
    /// Calls daily, moderate data.
    Mass,
    /// Many calls, gigabytes of data.
    Heavy,
}

/// A planted journey's timing, in day indexes from the start.
#[derive(Debug, Clone, Copy)]
struct Journey {
    kind: JourneyKind,
    /// When the behaviour starts changing.
    onset: i64,
    /// The day the rule's ticket is expected (its day close or its record).
    signal: i64,
    /// A second kind-specific day (end of a streak, first complaint...).
    aux: i64,
    /// Per-journey parameter (call minutes, ratio...).
    param: f64,
}

#[derive(Debug, Clone, Copy)]
enum Role {
    Background,
    Journey(Journey),
    LookAlike(LookAlike, i64, i64),
}

/// One subscriber: fixed habits plus the little state that carries across days.
#[derive(Debug, Clone)]
struct Sub {
    idx: usize,
    number: String,
    habit: Habit,
    postpaid: bool,
    plan_fee_fen: i64,
    out_calls: f64,
    in_calls: f64,
    call_s: f64,
    data_mib: f64,
    sms: f64,
    /// Calls mostly at weekends (weekday rate halved, weekend rate doubled).
    weekend_caller: bool,
    /// Travels over public holidays: usage falls to a third.
    holiday_dip: bool,
    /// Light users call only on days where `(day + phase) % every == 0`.
    every: i64,
    phase: i64,
    /// First day of usage (0 unless activated inside the horizon).
    active_from: i64,
    /// Activation time; before the start for established subscribers.
    activated_ms: i64,
    contract_end_ms: Option<i64>,
    dnd: bool,
    key_person: bool,
    role: Role,
    churn_day: Option<i64>,
    churn_ms: i64,
    /// Prepaid balance, fen.
    balance: i64,
    /// Postpaid amount owed and the day it will be paid (None: never).
    owed: i64,
    pay_day: Option<i64>,
    /// Rated charges this calendar month, fen (for the bill).
    month_charge: i64,
    /// Charges of the previous month, kept for the bill issued on the 1st.
    last_month_charge: i64,
    /// Days active in the previous month (prorated first bill).
    last_month_days: i64,
    month_days: i64,
}

/// One calendar day of the horizon.
#[derive(Debug, Clone, Copy)]
struct DayInfo {
    start_ms: i64,
    date: NaiveDate,
    weekend: bool,
    holiday: bool,
}

/// Everything the per-day generation reads.
struct World {
    days: Vec<DayInfo>,
    n_days: i64,
    seed: u64,
    format: Format,
}

impl World {
    /// `n_days` from `start`, plus one spare month of calendar for look-ahead (next 1st
    /// of a month, due dates).
    fn new(cal: &Calendar, start: NaiveDate, n_days: i64, seed: u64, format: Format) -> World {
        let first = day_of_date(start);
        let days = (0..n_days + 62)
            .map(|i| {
                let day = first + i as Day;
                let date = date_of_day(day);
                DayInfo {
                    start_ms: cal.day_start_ms(day),
                    date,
                    weekend: matches!(date.weekday(), Weekday::Sat | Weekday::Sun),
                    holiday: cal.is_holiday(day),
                }
            })
            .collect();
        World {
            days,
            n_days,
            seed,
            format,
        }
    }
    fn day(&self, d: i64) -> &DayInfo {
        &self.days[d.clamp(0, self.days.len() as i64 - 1) as usize]
    }
    fn at(&self, d: i64, hour: f64) -> i64 {
        self.day(d).start_ms + (hour * HOUR_MS as f64) as i64
    }
    fn dom(&self, d: i64) -> u32 {
        self.day(d).date.day()
    }
    /// Day index of the next 1st of a month strictly after `d`.
    fn next_first(&self, d: i64) -> i64 {
        let mut x = d + 1;
        while self.dom(x) != 1 && x < d + 40 {
            x += 1;
        }
        x
    }
    /// Day index of the last day of the month containing `d`.
    fn month_last(&self, d: i64) -> i64 {
        self.next_first(d) - 1
    }
    fn holiday_in(&self, from: i64, to: i64) -> bool {
        (from.max(0)..=to.min(self.n_days - 1)).any(|d| self.day(d).holiday)
    }
}

/// What was planted: counts by journey and look-alike name, and the journey kinds that did
/// not fit the horizon.
#[derive(Debug, Clone, Default)]
pub struct Planted {
    pub journeys: BTreeMap<&'static str, u64>,
    pub look_alikes: BTreeMap<&'static str, u64>,
    pub skipped: Vec<&'static str>,
}

/// A population over a horizon, generated one day at a time.
pub struct Population {
    world: World,
    subs: Vec<Sub>,
    /// Subscribers per thread.
    chunk: usize,
}

impl Population {
    /// `subscribers` people over `days` days from `start`, journeys and look-alikes planted.
    pub fn new(
        cal: &Calendar,
        start: NaiveDate,
        days: u32,
        subscribers: usize,
        seed: u64,
        format: Format,
    ) -> (Population, Planted) {
        let world = World::new(cal, start, i64::from(days), seed, format);
        let (subs, planted) = populate(&world, subscribers);
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 8);
        let chunk = subs.len().div_ceil(threads).max(1);
        let population = Population { world, subs, chunk };
        (population, planted)
    }

    /// Everything the population does on day `d` (days in order, from 0), with subscribers
    /// in parallel chunks.
    pub fn day(&mut self, d: i64) -> DayOut {
        let world = &self.world;
        let parts: Vec<DayOut> = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .subs
                .chunks_mut(self.chunk)
                .map(|part| {
                    s.spawn(move || {
                        let mut day = DayOut::default();
                        for sub in part.iter_mut() {
                            day.sub_day(world, sub, d);
                        }
                        day
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        let mut all = DayOut::default();
        for part in parts {
            all.cdr.extend(part.cdr);
            all.acct.extend(part.acct);
            all.delayed += part.delayed;
            all.duplicated += part.duplicated;
        }
        all
    }

    /// Start of day `d + 1`: records delivered before it belong to day `d`'s output.
    pub fn day_end_ms(&self, d: i64) -> i64 {
        self.world.day(d + 1).start_ms
    }

    /// Subscribers who churn inside the horizon.
    pub fn churned(&self) -> u64 {
        self.subs.iter().filter(|s| s.churn_day.is_some()).count() as u64
    }

    /// The ground truth as CSV: every planted journey and look-alike, with its churn time
    /// and, for journeys, the start of its onset day (the operator's day, as the engine's
    /// calendar counts days; empty for look-alikes).
    pub fn journeys_csv(&self) -> String {
        let mut text = String::from(
            "subscriber,journey,expected_rule,churn_time_ms,look_alike,onset_time_ms\n",
        );
        for s in &self.subs {
            let churn = match s.churn_day {
                Some(_) => s.churn_ms.to_string(),
                None => String::new(),
            };
            match s.role {
                Role::Background => continue,
                Role::Journey(j) => {
                    text.push_str(&format!(
                        "{},{},{},{churn},false,{}\n",
                        s.number,
                        j.kind.name(),
                        j.kind.expected_rule(),
                        self.world.day(j.onset).start_ms
                    ));
                }
                Role::LookAlike(l, _, _) => {
                    text.push_str(&format!("{},{},,{churn},true,\n", s.number, l.name()));
                }
            }
        }
        text
    }
}

/// Builds the population and plants journeys and look-alikes.
fn populate(world: &World, n: usize) -> (Vec<Sub>, Planted) {
    let mut rng = Rng::stream(world.seed, u64::MAX, 1);
    let mut subs: Vec<Sub> = (0..n)
        .map(|i| base_sub(world, i, &mut Rng::stream(world.seed, i as u64, u64::MAX)))
        .collect();
    // Shuffle the indexes: journeys and look-alikes are spread over the number range.
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    let kinds = JourneyKind::ALL.len();
    let looks = LookAlike::ALL.len();
    let n_journeys = ((n as f64 * 0.04).round() as usize).max(kinds).min(n / 2);
    let n_looks = ((n as f64 * LOOK_ALIKE_SHARE * looks as f64).round() as usize)
        .max(looks)
        .min(n.saturating_sub(n_journeys) / 2);
    let mut planted = Planted::default();
    let mut skipped = BTreeSet::new();
    for (k, &i) in order.iter().take(n_journeys).enumerate() {
        let kind = if k < kinds {
            JourneyKind::ALL[k]
        } else {
            JourneyKind::weighted(rng.next_u64())
        };
        let mut r = Rng::stream(world.seed, i as u64, 0xabcd);
        if plant::journey(world, &mut subs[i], kind, &mut r) {
            *planted.journeys.entry(kind.name()).or_default() += 1;
        } else {
            skipped.insert(kind.name());
        }
    }
    for (k, &i) in order.iter().skip(n_journeys).take(n_looks).enumerate() {
        let look = LookAlike::ALL[k % looks];
        let mut r = Rng::stream(world.seed, i as u64, 0x1001);
        if look_alikes::look_alike(world, &mut subs[i], look, &mut r) {
            *planted.look_alikes.entry(look.name()).or_default() += 1;
        }
    }
    planted.skipped = skipped
        .into_iter()
        .filter(|name| !planted.journeys.contains_key(name))
        .collect();
    (subs, planted)
}

/// Plan fees, yuan, by habit.
const LIGHT_FEES: [i64; 2] = [18, 38];
const MASS_FEES: [i64; 3] = [38, 58, 88];
const HEAVY_FEES: [i64; 4] = [88, 128, 188, 288];

fn base_sub(world: &World, idx: usize, rng: &mut Rng) -> Sub {
    let roll = rng.unit();
    let habit = if roll < 0.30 {
        Habit::Light
    } else if roll < 0.82 {
        Habit::Mass
    } else {
        Habit::Heavy
    };
    let mut s = Sub {
        idx,
        number: subscriber_number(idx),
        habit,
        postpaid: rng.chance(0.6),
        plan_fee_fen: 0,
        out_calls: 0.0,
        in_calls: 0.0,
        call_s: 0.0,
        data_mib: 0.0,
        sms: 0.0,
        every: 1,
        weekend_caller: rng.chance(0.15),
        holiday_dip: rng.chance(0.1),
        phase: rng.range(0, 6),
        active_from: 0,
        activated_ms: world.day(0).start_ms - rng.range(200, 3000) * DAY_MS,
        contract_end_ms: None,
        dnd: rng.chance(0.02),
        key_person: rng.chance(0.01),
        role: Role::Background,
        churn_day: None,
        churn_ms: 0,
        balance: rng.range(5_000, 20_000),
        owed: 0,
        pay_day: None,
        month_charge: 0,
        last_month_charge: 0,
        last_month_days: 0,
        month_days: 0,
    };
    set_habit(&mut s, habit, rng);
    if s.postpaid && rng.chance(0.3) {
        let end = world.n_days + 90 + rng.range(0, 700);
        s.contract_end_ms = Some(world.day(0).start_ms + end * DAY_MS);
    }
    // A few subscribers are brand new: activated inside the horizon, first bill <= fee x 1.5.
    if rng.chance(0.02) && world.n_days > 20 {
        s.active_from = rng.range(1, world.n_days - 10);
        s.activated_ms = world.at(s.active_from, 9.0 + rng.uniform(0.0, 8.0));
    }
    s
}

fn set_habit(s: &mut Sub, habit: Habit, rng: &mut Rng) {
    set_habit_means(s, habit, rng);
    // Subscribers differ: rates and lengths spread log-normally around the habit's draw.
    s.out_calls = rng.lognormal(s.out_calls, 0.3);
    s.in_calls = rng.lognormal(s.in_calls, 0.3);
    s.call_s = rng.lognormal(s.call_s, 0.25);
    s.data_mib = rng.lognormal(s.data_mib, 0.4);
}

fn set_habit_means(s: &mut Sub, habit: Habit, rng: &mut Rng) {
    s.habit = habit;
    match habit {
        Habit::Light => {
            s.every = rng.range(2, 4);
            s.out_calls = rng.uniform(0.6, 1.4);
            s.in_calls = rng.uniform(0.4, 1.0);
            s.call_s = rng.uniform(40.0, 120.0);
            s.data_mib = rng.uniform(10.0, 60.0);
            s.sms = 0.1;
            s.plan_fee_fen = 100 * rng.pick(&LIGHT_FEES);
        }
        Habit::Mass => {
            s.every = 1;
            s.out_calls = rng.uniform(1.0, 2.5);
            s.in_calls = rng.uniform(1.0, 2.0);
            s.call_s = rng.uniform(80.0, 240.0);
            s.data_mib = rng.uniform(150.0, 600.0);
            s.sms = 0.3;
            s.plan_fee_fen = 100 * rng.pick(&MASS_FEES);
        }
        Habit::Heavy => {
            s.every = 1;
            s.out_calls = rng.uniform(3.0, 5.0);
            s.in_calls = rng.uniform(2.5, 4.0);
            s.call_s = rng.uniform(150.0, 300.0);
            s.data_mib = rng.uniform(1000.0, 3000.0);
            s.sms = 0.6;
            s.plan_fee_fen = 100 * rng.pick(&HEAVY_FEES);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn population(subscribers: usize, days: u32) -> (Population, Planted) {
        let cal = Calendar::new("Asia/Shanghai", &[]).unwrap();
        let start = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        Population::new(&cal, start, days, subscribers, 5, Format::Protobuf)
    }

    fn sorted(mut out: Vec<Out>) -> Vec<(i64, u64, Vec<u8>)> {
        out.sort_unstable_by_key(|o| (o.deliver_ms, o.key));
        out.into_iter()
            .map(|o| (o.deliver_ms, o.key, o.bytes))
            .collect()
    }

    #[test]
    fn a_day_does_not_depend_on_how_subscribers_are_split_over_threads() {
        let (mut one, _) = population(120, 20);
        let (mut many, _) = population(120, 20);
        one.chunk = 120;
        many.chunk = 7;
        for d in 0..20 {
            let (a, b) = (one.day(d), many.day(d));
            assert_eq!(sorted(a.cdr), sorted(b.cdr), "day {d}");
            assert_eq!(sorted(a.acct), sorted(b.acct), "day {d}");
        }
    }

    #[test]
    fn the_ground_truth_lists_every_planted_subscriber_once() {
        let (p, planted) = population(400, 150);
        let csv = p.journeys_csv();
        let rows: Vec<&str> = csv.lines().skip(1).collect();
        let planted_n: u64 =
            planted.journeys.values().sum::<u64>() + planted.look_alikes.values().sum::<u64>();
        assert_eq!(rows.len() as u64, planted_n);
        let subs: BTreeSet<&str> = rows.iter().map(|r| &r[..13]).collect();
        assert_eq!(subs.len(), rows.len());
        // A journey's onset is the start of a day of the horizon; a look-alike has none.
        let day_starts: BTreeSet<i64> = (0..150).map(|d| p.world.day(d).start_ms).collect();
        for row in rows {
            let f: Vec<&str> = row.split(',').collect();
            match f[4] {
                "true" => assert_eq!(f[5], "", "{row}"),
                _ => assert!(day_starts.contains(&f[5].parse().unwrap()), "{row}"),
            }
        }
    }
}
