//! `churnwatch generate`: a realistic synthetic workload, written as replay input files.
//!
//! A subscriber population with habits (light, mass and heavy users; weekday/weekend and
//! time-of-day patterns; plan fees from 18 to 288 yuan; prepaid top-ups and postpaid bills;
//! holiday dips from the configured calendar), plus planted churn journeys for every rule
//! and loyal look-alikes that must not fire. Output: `cdr.jsonl` and `account.jsonl`
//! (proto3 JSON lines; `.pb` length-delimited protobuf with `--format proto`) and
//! `journeys.csv`, the ground truth.
//!
//! **Determinism.** Every random draw comes from SplitMix64 seeded by `(seed, subscriber,
//! day)`, so the files are byte-identical for the same seed whatever the thread count.
//!
//! **Streaming.** Days are generated in order (subscribers in parallel chunks), each day's
//! records are sorted by *delivery* time and written; only records whose delivery falls on
//! a later day are carried over. Delivery is realistic: ~3% of records arrive 1 min to 24 h
//! late and ~0.5% are delivered twice, always within the engine's 48 h lateness.
//!
//! **Scale.** Volumes are a scaled-down copy of real traffic (about 3 records per
//! subscriber-day instead of dozens): enough for every rule's baseline, small enough that
//! 100,000 subscribers over 150 days (~40 M records) generate in well under a minute.
//!
//! **Noise as real traffic has it**, so that no rule is flattered:
//! - call counts are Poisson around each subscriber's own rates, which differ (log-normal
//!   spread); light users call only every 2nd or 3rd day, others may have silent days;
//! - call durations are log-normal (CV 0.95, as exponential: most calls short, a few an
//!   hour long) and a
//!   day's data is log-normal too (a streaming evening next to a quiet day);
//! - weekends are quieter for most, and 15% call mostly at weekends (weekday rate halved,
//!   weekend rate doubled); every subscriber's weeks vary (+-15%); 10% dip to a third on
//!   public holidays;
//! - bills are paid 1-8 days after issue, prepaid balances are topped up at 20 yuan, and
//!   contracts end at least 90 days after the horizon.
//!
//! The drop journeys are the declines: usage falling steadily to a tenth over
//! three weeks, or (a third of them) stopping at once.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{Datelike, NaiveDate, Weekday};
use prost::Message;

use crate::config::Config;
use crate::detect::calendar::{date_of_day, day_of_date, Calendar, Day};
use crate::proto::{self, account_event::Kind, RecordType};
use crate::replay::Format;
use crate::tools::workload::numbers::{
    mobile, subscriber_number, voice_charge, ANY_PREFIXES, COMPETITOR_PREFIXES, UNICOM_PREFIXES,
};
use crate::tools::workload::Rng;

/// The default first day: 2026-06-01, so that 150 days cover four full months (for
/// `sustained_decline`) and the configured Mid-Autumn and National Day holidays.
pub const DEFAULT_START: &str = "2026-06-01";

const MIN_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
/// Log-scale spread of call durations (log-normal; a coefficient of variation of 0.95, as
/// exponential durations have).
const CALL_SIGMA: f64 = 0.8;
/// Log-scale spread of a day's data volume (log-normal; a coefficient of variation of 0.95).
const DATA_SIGMA: f64 = 0.8;
/// Days over which a drop journey's usage falls to a tenth.
const DROP_FALL_DAYS: u32 = 21;

/// What to generate and where.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub out: PathBuf,
    pub subscribers: usize,
    pub days: u32,
    pub seed: u64,
    pub start: NaiveDate,
    pub format: Format,
    /// Draw a progress bar on stderr (the binary sets this only when stderr is a terminal).
    pub progress: bool,
}

/// Why a workload could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("invalid option {option}: {reason}")]
    Option {
        option: &'static str,
        reason: String,
    },
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: io::Error },
}

/// What was generated, printed at the end.
#[derive(Debug, Clone, Default)]
pub struct GenerateSummary {
    pub cdrs: u64,
    pub account_events: u64,
    pub subscribers: usize,
    pub days: u32,
    /// Planted journeys by journey name.
    pub journeys: BTreeMap<&'static str, u64>,
    /// Loyal look-alikes by name.
    pub look_alikes: BTreeMap<&'static str, u64>,
    /// Journey kinds that could not be planted in this horizon (too few days).
    pub skipped: Vec<&'static str>,
    pub churned: u64,
    pub delayed: u64,
    pub duplicated: u64,
    pub files: Vec<PathBuf>,
    pub elapsed: Duration,
}

impl GenerateSummary {
    pub fn events(&self) -> u64 {
        self.cdrs + self.account_events
    }
}

impl fmt::Display for GenerateSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "generate summary")?;
        writeln!(
            f,
            "  events            {} ({} CDRs, {} account events)",
            self.events(),
            self.cdrs,
            self.account_events
        )?;
        writeln!(
            f,
            "  subscribers       {} over {} days",
            self.subscribers, self.days
        )?;
        writeln!(
            f,
            "  delivery          {} late (up to 24 h), {} delivered twice",
            self.delayed, self.duplicated
        )?;
        let planted: u64 = self.journeys.values().sum();
        writeln!(
            f,
            "  journeys          {planted} planted, {} churn",
            self.churned
        )?;
        for (name, n) in &self.journeys {
            writeln!(f, "    {name:<32} {n}")?;
        }
        let look: u64 = self.look_alikes.values().sum();
        writeln!(f, "  look-alikes       {look} (must raise no ticket)")?;
        for (name, n) in &self.look_alikes {
            writeln!(f, "    {name:<32} {n}")?;
        }
        for name in &self.skipped {
            writeln!(f, "  not planted       {name}: horizon too short")?;
        }
        for p in &self.files {
            writeln!(f, "  wrote             {}", p.display())?;
        }
        let secs = self.elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            self.events() as f64 / secs
        } else {
            0.0
        };
        write!(f, "  elapsed           {secs:.3} s ({rate:.0} events/s)")
    }
}

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

/// A planted churn journey: the rule it should raise, as a shape of behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum JourneyKind {
    CareCall,
    ForwardStreak,
    ForwardRegistration,
    ZeroSpend,
    Silent,
    Overdue,
    ReminderBill,
    ReminderTopUp,
    SpendDrop,
    VoiceDrop,
    DataDrop,
    SustainedDecline,
    NumberRetention,
    ContractExpiry,
    ComplaintBurst,
    FaultBurst,
    IpCalls,
    BillShock,
    /// Ports out with no warning sign: the detector cannot catch these (honest recall).
    QuietLeaver,
}

impl JourneyKind {
    pub const ALL: [JourneyKind; 19] = [
        JourneyKind::CareCall,
        JourneyKind::ForwardStreak,
        JourneyKind::ForwardRegistration,
        JourneyKind::ZeroSpend,
        JourneyKind::Silent,
        JourneyKind::Overdue,
        JourneyKind::ReminderBill,
        JourneyKind::ReminderTopUp,
        JourneyKind::SpendDrop,
        JourneyKind::VoiceDrop,
        JourneyKind::DataDrop,
        JourneyKind::SustainedDecline,
        JourneyKind::NumberRetention,
        JourneyKind::ContractExpiry,
        JourneyKind::ComplaintBurst,
        JourneyKind::FaultBurst,
        JourneyKind::IpCalls,
        JourneyKind::BillShock,
        JourneyKind::QuietLeaver,
    ];

    pub fn name(self) -> &'static str {
        match self {
            JourneyKind::CareCall => "competitor_care_call",
            JourneyKind::ForwardStreak => "offnet_forwarding_streak",
            JourneyKind::ForwardRegistration => "offnet_forwarding_registration",
            JourneyKind::ZeroSpend => "parked_sim_zero_spend",
            JourneyKind::Silent => "goes_silent",
            JourneyKind::Overdue => "unpaid_bill",
            JourneyKind::ReminderBill => "bill_paid_at_the_last_minute",
            JourneyKind::ReminderTopUp => "prepaid_runs_down",
            JourneyKind::SpendDrop => "paid_calls_moved_away",
            JourneyKind::VoiceDrop => "calls_moved_to_apps",
            JourneyKind::DataDrop => "second_data_sim",
            JourneyKind::SustainedDecline => "spend_declines_for_months",
            JourneyKind::NumberRetention => "parks_the_number",
            JourneyKind::ContractExpiry => "contract_ending",
            JourneyKind::ComplaintBurst => "complains_twice",
            JourneyKind::FaultBurst => "three_fault_reports",
            JourneyKind::IpCalls => "competitor_ip_calls",
            JourneyKind::BillShock => "first_bill_shock",
            JourneyKind::QuietLeaver => "quiet_leaver",
        }
    }

    /// The rule id this journey should raise (empty for the quiet leaver).
    pub fn expected_rule(self) -> &'static str {
        match self {
            JourneyKind::CareCall => "competitor_care_call",
            JourneyKind::ForwardStreak => "offnet_forwarding_streak",
            JourneyKind::ForwardRegistration => "offnet_forwarding_registration",
            JourneyKind::ZeroSpend => "zero_spend_month",
            JourneyKind::Silent => "silent_days",
            JourneyKind::Overdue => "overdue_bill",
            JourneyKind::ReminderBill | JourneyKind::ReminderTopUp => "payment_reminder",
            JourneyKind::SpendDrop => "spend_drop",
            JourneyKind::VoiceDrop => "voice_drop",
            JourneyKind::DataDrop => "data_drop",
            JourneyKind::SustainedDecline => "sustained_decline",
            JourneyKind::NumberRetention => "number_retention_suspension",
            JourneyKind::ContractExpiry => "contract_expiry",
            JourneyKind::ComplaintBurst | JourneyKind::FaultBurst => "complaint_burst",
            JourneyKind::IpCalls => "offnet_ip_calls",
            JourneyKind::BillShock => "bill_shock",
            JourneyKind::QuietLeaver => "",
        }
    }

    /// Relative frequency among the planted journeys.
    fn weight(self) -> u32 {
        match self {
            JourneyKind::QuietLeaver => 1,
            JourneyKind::ComplaintBurst | JourneyKind::FaultBurst => 4,
            JourneyKind::ReminderBill | JourneyKind::ReminderTopUp => 4,
            _ => 7,
        }
    }
}

/// A loyal subscriber whose behaviour resembles a churn sign but must raise no ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LookAlike {
    /// A heavy user whose usage dips over a configured public holiday.
    HolidayDip,
    /// Forwards calls to a China Unicom (own network) mobile for 6-10 days.
    OnNetForwarding,
    SingleComplaint,
    /// Two fault reports (three are needed).
    TwoFaultReports,
    /// A call to 10086 of exactly 60 s (the rule wants more than 60).
    CareCall60s,
    /// A long call to our own care line, 10010.
    OwnCareLine,
    /// Many minutes through our own IP-call prefix 17911.
    OwnIpPrefix,
    /// Competitor IP calls worth 45 yuan in a month (threshold 50).
    IpCallsBelowThreshold,
    /// A new subscriber whose first bill is exactly twice the plan fee.
    FirstBillTwiceFee,
    /// A prepaid top-up leaving exactly 5.00 yuan.
    BalanceExactlyFive,
    /// Pays the bill 4 days before it is due (the reminder is at 3).
    PaysFourDaysEarly,
    /// Renews the contract 61-70 days before it would end.
    ContractRenewed,
}

impl LookAlike {
    pub const ALL: [LookAlike; 12] = [
        LookAlike::HolidayDip,
        LookAlike::OnNetForwarding,
        LookAlike::SingleComplaint,
        LookAlike::TwoFaultReports,
        LookAlike::CareCall60s,
        LookAlike::OwnCareLine,
        LookAlike::OwnIpPrefix,
        LookAlike::IpCallsBelowThreshold,
        LookAlike::FirstBillTwiceFee,
        LookAlike::BalanceExactlyFive,
        LookAlike::PaysFourDaysEarly,
        LookAlike::ContractRenewed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LookAlike::HolidayDip => "holiday_dip",
            LookAlike::OnNetForwarding => "onnet_forwarding",
            LookAlike::SingleComplaint => "single_complaint",
            LookAlike::TwoFaultReports => "two_fault_reports",
            LookAlike::CareCall60s => "care_call_60s",
            LookAlike::OwnCareLine => "own_care_line",
            LookAlike::OwnIpPrefix => "own_ip_prefix",
            LookAlike::IpCallsBelowThreshold => "ip_calls_45_yuan",
            LookAlike::FirstBillTwiceFee => "first_bill_twice_fee",
            LookAlike::BalanceExactlyFive => "balance_exactly_5_yuan",
            LookAlike::PaysFourDaysEarly => "pays_4_days_before_due",
            LookAlike::ContractRenewed => "contract_renewed",
        }
    }
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

/// One record, serialized, with its delivery time.
struct Out {
    deliver_ms: i64,
    key: u64,
    bytes: Vec<u8>,
}

/// Everything the per-day generation reads.
struct World {
    days: Vec<DayInfo>,
    n_days: i64,
    seed: u64,
    format: Format,
}

impl World {
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

/// Writes the workload into `opts.out` and returns what was written.
pub fn run(opts: &GenerateOptions, cfg: &Config) -> Result<GenerateSummary, GenerateError> {
    let started = Instant::now();
    if opts.subscribers == 0 {
        return Err(GenerateError::Option {
            option: "--subscribers",
            reason: "must be at least 1".into(),
        });
    }
    if !(1..=3650).contains(&opts.days) {
        return Err(GenerateError::Option {
            option: "--days",
            reason: "must be 1 to 3650".into(),
        });
    }
    let cal = Calendar::new(&cfg.engine.time_zone, &cfg.calendar.holidays).ok_or_else(|| {
        GenerateError::Option {
            option: "--config",
            reason: "engine.time_zone or calendar.holidays is invalid".into(),
        }
    })?;
    let first = day_of_date(opts.start);
    let n_days = i64::from(opts.days);
    // One spare month of calendar for look-ahead (next 1st of a month, due dates).
    let days: Vec<DayInfo> = (0..n_days + 62)
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
    let world = World {
        days,
        n_days,
        seed: opts.seed,
        format: opts.format,
    };
    let mut summary = GenerateSummary {
        subscribers: opts.subscribers,
        days: opts.days,
        ..Default::default()
    };
    let mut subs = population(&world, opts.subscribers, &mut summary);

    std::fs::create_dir_all(&opts.out).map_err(|source| GenerateError::Write {
        path: opts.out.display().to_string(),
        source,
    })?;
    let ext = match opts.format {
        Format::Json => "jsonl",
        Format::Protobuf => "pb",
    };
    let cdr_path = opts.out.join(format!("cdr.{ext}"));
    let acct_path = opts.out.join(format!("account.{ext}"));
    let csv_path = opts.out.join("journeys.csv");
    write_journeys(&csv_path, &subs)?;
    let mut cdr_w = Writer::create(&cdr_path)?;
    let mut acct_w = Writer::create(&acct_path)?;

    let progress = opts.progress.then(|| {
        let pb = indicatif::ProgressBar::new(u64::from(opts.days));
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} day {pos}/{len} ({eta})",
        ) {
            pb.set_style(style);
        }
        pb
    });
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let chunk = subs.len().div_ceil(threads).max(1);
    let mut pending_cdr: Vec<Out> = Vec::new();
    let mut pending_acct: Vec<Out> = Vec::new();
    for d in 0..n_days {
        let results: Vec<(Vec<Out>, Vec<Out>, u64, u64)> = std::thread::scope(|s| {
            let handles: Vec<_> = subs
                .chunks_mut(chunk)
                .map(|part| {
                    let world = &world;
                    s.spawn(move || {
                        let mut day = DayOut::default();
                        for sub in part.iter_mut() {
                            day.sub_day(world, sub, d);
                        }
                        (day.cdr, day.acct, day.delayed, day.duplicated)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        for (c, a, delayed, dup) in results {
            pending_cdr.extend(c);
            pending_acct.extend(a);
            summary.delayed += delayed;
            summary.duplicated += dup;
        }
        let horizon = world.day(d + 1).start_ms;
        summary.cdrs += cdr_w.flush_before(&mut pending_cdr, horizon)?;
        summary.account_events += acct_w.flush_before(&mut pending_acct, horizon)?;
        if let Some(pb) = &progress {
            pb.set_position(d as u64 + 1);
        }
    }
    summary.cdrs += cdr_w.flush_before(&mut pending_cdr, i64::MAX)?;
    summary.account_events += acct_w.flush_before(&mut pending_acct, i64::MAX)?;
    cdr_w.finish()?;
    acct_w.finish()?;
    if let Some(pb) = &progress {
        pb.finish_and_clear();
    }
    summary.churned = subs.iter().filter(|s| s.churn_day.is_some()).count() as u64;
    summary.files = vec![cdr_path, acct_path, csv_path];
    summary.elapsed = started.elapsed();
    Ok(summary)
}

struct Writer {
    w: BufWriter<File>,
    path: String,
}

impl Writer {
    fn create(path: &Path) -> Result<Writer, GenerateError> {
        let name = path.display().to_string();
        let f = File::create(path).map_err(|source| GenerateError::Write {
            path: name.clone(),
            source,
        })?;
        Ok(Writer {
            w: BufWriter::with_capacity(1 << 20, f),
            path: name,
        })
    }

    fn err(&self, source: io::Error) -> GenerateError {
        GenerateError::Write {
            path: self.path.clone(),
            source,
        }
    }

    /// Writes, in delivery order, every pending record delivered before `horizon`.
    fn flush_before(&mut self, pending: &mut Vec<Out>, horizon: i64) -> Result<u64, GenerateError> {
        let (mut ready, rest): (Vec<Out>, Vec<Out>) =
            pending.drain(..).partition(|o| o.deliver_ms < horizon);
        *pending = rest;
        ready.sort_unstable_by_key(|o| (o.deliver_ms, o.key));
        for o in &ready {
            self.w.write_all(&o.bytes).map_err(|e| self.err(e))?;
        }
        Ok(ready.len() as u64)
    }

    fn finish(mut self) -> Result<(), GenerateError> {
        self.w.flush().map_err(|e| self.err(e))
    }
}

fn write_journeys(path: &Path, subs: &[Sub]) -> Result<(), GenerateError> {
    let err = |source| GenerateError::Write {
        path: path.display().to_string(),
        source,
    };
    let f = File::create(path).map_err(err)?;
    let mut w = BufWriter::new(f);
    let mut text = String::from("subscriber,journey,expected_rule,churn_time_ms,look_alike\n");
    for s in subs {
        let churn = match s.churn_day {
            Some(_) => s.churn_ms.to_string(),
            None => String::new(),
        };
        match s.role {
            Role::Background => continue,
            Role::Journey(j) => {
                text.push_str(&format!(
                    "{},{},{},{churn},false\n",
                    s.number,
                    j.kind.name(),
                    j.kind.expected_rule()
                ));
            }
            Role::LookAlike(l, _, _) => {
                text.push_str(&format!("{},{},,{churn},true\n", s.number, l.name()));
            }
        }
    }
    w.write_all(text.as_bytes()).map_err(err)?;
    w.flush().map_err(err)
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

/// Builds the population and plants journeys and look-alikes.
fn population(world: &World, n: usize, summary: &mut GenerateSummary) -> Vec<Sub> {
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
    let n_looks = ((n as f64 * 0.015).round() as usize)
        .max(looks)
        .min(n.saturating_sub(n_journeys) / 2);
    let total_weight: u32 = JourneyKind::ALL.iter().map(|k| k.weight()).sum();
    let mut skipped = std::collections::BTreeSet::new();
    for (k, &i) in order.iter().take(n_journeys).enumerate() {
        let kind = if k < kinds {
            JourneyKind::ALL[k]
        } else {
            let mut x = (rng.next_u64() % u64::from(total_weight)) as u32;
            let mut chosen = JourneyKind::CareCall;
            for kd in JourneyKind::ALL {
                if x < kd.weight() {
                    chosen = kd;
                    break;
                }
                x -= kd.weight();
            }
            chosen
        };
        let mut r = Rng::stream(world.seed, i as u64, 0xabcd);
        if plant(world, &mut subs[i], kind, &mut r) {
            *summary.journeys.entry(kind.name()).or_default() += 1;
        } else {
            skipped.insert(kind.name());
        }
    }
    for (k, &i) in order.iter().skip(n_journeys).take(n_looks).enumerate() {
        let look = LookAlike::ALL[k % looks];
        let mut r = Rng::stream(world.seed, i as u64, 0x1001);
        if plant_look_alike(world, &mut subs[i], look, &mut r) {
            *summary.look_alikes.entry(look.name()).or_default() += 1;
        }
    }
    summary.skipped = skipped
        .into_iter()
        .filter(|name| !summary.journeys.contains_key(name))
        .collect();
    subs
}

/// Chooses a day in `lo..=hi` (None when empty).
fn day_in(rng: &mut Rng, lo: i64, hi: i64) -> Option<i64> {
    (lo <= hi).then(|| rng.range(lo, hi + 1))
}

/// Plants `kind` on `s`; false when the horizon is too short for it.
fn plant(world: &World, s: &mut Sub, kind: JourneyKind, rng: &mut Rng) -> bool {
    let n = world.n_days;
    let last_signal = n - 16;
    // Tiers average the last three full months the engine has seen; a weak signal raises
    // no ticket for the lowest tier, so weak journeys wait for three observed months.
    let weak_from = 92.min(last_signal).max(3);
    let mut onset;
    let mut aux = 0;
    let mut param = 0.0;
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
    let signal = match kind {
        JourneyKind::CareCall | JourneyKind::NumberRetention => {
            let Some(d) = day_in(rng, 2, last_signal) else {
                return false;
            };
            onset = d;
            d
        }
        JourneyKind::ForwardRegistration => {
            let Some(d) = day_in(rng, weak_from, last_signal) else {
                return false;
            };
            onset = d;
            d
        }
        JourneyKind::ReminderTopUp => {
            let Some(d) = day_in(rng, weak_from, last_signal) else {
                return false;
            };
            s.postpaid = false;
            onset = d.saturating_sub(10).max(1);
            d
        }
        JourneyKind::ContractExpiry => {
            let Some(d) = day_in(rng, weak_from, last_signal) else {
                return false;
            };
            s.postpaid = true;
            s.contract_end_ms = Some(world.at(d + 60, 12.0));
            onset = d;
            d
        }
        JourneyKind::ForwardStreak => {
            let Some(f) = day_in(rng, 2, n - 21) else {
                return false;
            };
            onset = f;
            aux = f + rng.range(5, 11); // first day after the streak
            param = if rng.chance(0.5) { 1.0 } else { 0.0 }; // registers first?
            f + 4
        }
        JourneyKind::Silent => {
            set_habit(s, Habit::Mass, rng);
            let Some(q) = day_in(rng, 36, n - 23) else {
                return false;
            };
            onset = q;
            q + 6
        }
        JourneyKind::SpendDrop | JourneyKind::VoiceDrop | JourneyKind::DataDrop => {
            heavy_for_drops(s, rng);
            // A third stop at once; the rest fall steadily to a tenth over three weeks.
            let stop = rng.chance(0.3);
            param = if stop { 1.0 } else { 0.0 };
            let span = if stop { 7 } else { i64::from(DROP_FALL_DAYS) };
            let mut found = None;
            for _ in 0..20 {
                let Some(q) = day_in(rng, 36, last_signal - span) else {
                    return false;
                };
                if !world.holiday_in(q - 7, q + span + 9) {
                    found = Some(q);
                    break;
                }
            }
            let Some(q) = found else {
                return false;
            };
            onset = q;
            q + span
        }
        JourneyKind::SustainedDecline => {
            heavy_for_drops(s, rng);
            // Pay-as-you-go: a postpaid bill never falls below the plan fee, and bills are
            // the engine's monthly spend where they exist.
            s.postpaid = false;
            // The first full month is the reference; three declining months follow.
            let m0 = if world.dom(0) == 1 {
                0
            } else {
                world.next_first(0)
            };
            let m1 = world.next_first(m0);
            let m3_last = world.month_last(world.next_first(world.next_first(m1)));
            if m3_last > last_signal {
                return false;
            }
            onset = m1;
            param = rng.uniform(0.55, 0.65);
            m3_last
        }
        JourneyKind::ZeroSpend => {
            // A full calendar month of dormancy inside the horizon.
            let mut months = Vec::new();
            let mut m = world.next_first(0);
            while world.month_last(m) <= last_signal {
                months.push(m);
                m = world.next_first(m);
            }
            if months.is_empty() {
                return false;
            }
            let m = *rng.pick(&months);
            onset = (m - rng.range(0, 10)).max(1);
            world.month_last(m)
        }
        JourneyKind::Overdue | JourneyKind::ReminderBill => {
            s.postpaid = true;
            // Bills are issued on the 1st and due on the 20th.
            let mut firsts = Vec::new();
            let mut b = if world.dom(0) == 1 {
                0
            } else {
                world.next_first(0)
            };
            let offset = if kind == JourneyKind::Overdue { 24 } else { 16 };
            while b + offset <= last_signal {
                if b >= 1 && (kind == JourneyKind::Overdue || b + offset >= weak_from) {
                    firsts.push(b);
                }
                b = world.next_first(b);
            }
            if firsts.is_empty() {
                return false;
            }
            let b = *rng.pick(&firsts);
            aux = b;
            onset = b;
            b + offset
        }
        JourneyKind::ComplaintBurst => {
            let Some(d) = day_in(rng, 8, last_signal) else {
                return false;
            };
            aux = (d - rng.range(3, 60)).max(1);
            onset = aux;
            d
        }
        JourneyKind::FaultBurst => {
            let Some(d) = day_in(rng, 12, last_signal) else {
                return false;
            };
            aux = (d - rng.range(10, 40)).max(1);
            onset = aux;
            d
        }
        JourneyKind::IpCalls => {
            // Calls of `param` minutes every other day from `aux`, inside one month.
            let minutes = rng.range(25, 41);
            let crossing = (50.0 / 0.30 / minutes as f64).ceil() as i64; // calls to pass 50 yuan
            let mut starts = Vec::new();
            let mut m = if world.dom(0) == 1 {
                0
            } else {
                world.next_first(0)
            };
            while m < n {
                let first_call = m.max(1);
                let signal = first_call + 2 * (crossing - 1);
                if signal + 2 <= world.month_last(m) && signal <= last_signal {
                    starts.push(first_call);
                }
                m = world.next_first(m);
            }
            if starts.is_empty() {
                return false;
            }
            let a = *rng.pick(&starts);
            aux = a;
            param = minutes as f64;
            onset = a;
            a + 2 * (crossing - 1)
        }
        JourneyKind::BillShock => {
            s.postpaid = true;
            let mut choices = Vec::new();
            for a in 0..n {
                let b = world.next_first(a);
                if b - a >= 12 && b - a <= 40 && b <= last_signal {
                    choices.push(a);
                }
            }
            if choices.is_empty() {
                return false;
            }
            let a = *rng.pick(&choices);
            s.active_from = a;
            s.activated_ms = world.at(a, 10.0 + rng.uniform(0.0, 6.0));
            s.plan_fee_fen = 100 * rng.pick(&[38, 58, 88]);
            param = rng.uniform(2.4, 4.0);
            onset = a;
            world.next_first(a)
        }
        JourneyKind::QuietLeaver => {
            let Some(c) = day_in(rng, 30.min(n - 1), n - 1) else {
                return false;
            };
            s.role = Role::Journey(Journey {
                kind,
                onset: c,
                signal: c,
                aux: 0,
                param: 0.0,
            });
            s.churn_day = Some(c);
            s.churn_ms = world.at(c, 10.0 + rng.uniform(0.0, 8.0));
            return true;
        }
    };
    if onset < 1 {
        onset = 1;
    }
    s.role = Role::Journey(Journey {
        kind,
        onset,
        signal,
        aux,
        param,
    });
    // Most churn 15-45 days after the sign; ~1.5% stay (retained by care, or never meant to go).
    if !rng.chance(0.015) {
        let lag = rng.range(15, 46).min(n - 1 - signal).max(15);
        let c = signal + lag;
        if c < n {
            s.churn_day = Some(c);
            s.churn_ms = world.at(c, 10.0 + rng.uniform(0.0, 8.0));
        }
    }
    true
}

/// The drop journeys need a heavy user with steady, well-measured baselines: a fall is
/// only measurable against usage of every day (weekend callers stay in the background,
/// where they test the false alarms).
fn heavy_for_drops(s: &mut Sub, rng: &mut Rng) {
    set_habit(s, Habit::Heavy, rng);
    s.weekend_caller = false;
    s.out_calls = rng.uniform(3.5, 4.5);
    s.in_calls = rng.uniform(2.5, 3.5);
    s.call_s = rng.uniform(180.0, 240.0);
    s.data_mib = rng.uniform(1800.0, 2600.0);
}

fn plant_look_alike(world: &World, s: &mut Sub, look: LookAlike, rng: &mut Rng) -> bool {
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
    };
    s.role = Role::LookAlike(look, a, b);
    true
}

/// Usage multipliers for one day.
#[derive(Debug, Clone, Copy)]
struct Usage {
    out: f64,
    inn: f64,
    data: f64,
    /// Charge no fen and make no outgoing call, SMS or data.
    no_outgoing: bool,
    /// No calls at all (silence).
    silent: bool,
    /// Seconds per call multiplier.
    dur: f64,
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
        }
    }
}

/// Per-day output of one thread.
#[derive(Default)]
struct DayOut {
    cdr: Vec<Out>,
    acct: Vec<Out>,
    delayed: u64,
    duplicated: u64,
}

/// A builder of one subscriber's records for one day.
struct Ctx<'a> {
    world: &'a World,
    sub_idx: usize,
    number: &'a str,
    day: i64,
    seq: u32,
    rng: Rng,
}

impl DayOut {
    fn push(&mut self, ctx: &mut Ctx<'_>, t: i64, bytes: Vec<u8>, is_cdr: bool) {
        ctx.seq += 1;
        // Unique per record: day, subscriber, sequence, copy.
        let key = ((ctx.day as u64) << 48) | ((ctx.sub_idx as u64) << 16) | u64::from(ctx.seq) << 1;
        let delay = if ctx.rng.chance(0.03) {
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
    fn cdr(
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
        };
        let bytes = encode(ctx.world.format, &m);
        self.push(ctx, t, bytes, true);
    }

    fn partial_call(&mut self, ctx: &mut Ctx<'_>, t: i64, other: &str, parts: &[u32]) {
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
            };
            let bytes = encode(ctx.world.format, &m);
            self.push(ctx, at, bytes, true);
            at += i64::from(secs) * 1000;
        }
    }

    fn account(&mut self, ctx: &mut Ctx<'_>, t: i64, kind: Kind) {
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
    fn sub_day(&mut self, world: &World, s: &mut Sub, d: i64) {
        let info = *world.day(d);
        let number = s.number.clone();
        let mut ctx = Ctx {
            world,
            sub_idx: s.idx,
            number: &number,
            day: d,
            seq: 0,
            rng: Rng::stream(world.seed, s.idx as u64, d as u64),
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
        let usage = self.usage(world, s, d, &info);
        let charged = self.traffic(&mut ctx, s, &info, usage);
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

    fn usage(&self, world: &World, s: &Sub, d: i64, info: &DayInfo) -> Usage {
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
        match s.role {
            Role::Background => {}
            Role::LookAlike(LookAlike::HolidayDip, _, _) => {
                if info.holiday {
                    u.out = 0.2;
                    u.inn = 0.25;
                    u.data = 0.3;
                }
            }
            Role::LookAlike(..) => {}
            Role::Journey(j) => {
                let since = d - j.onset;
                match j.kind {
                    JourneyKind::CareCall
                    | JourneyKind::ComplaintBurst
                    | JourneyKind::FaultBurst
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
                    JourneyKind::Overdue
                    | JourneyKind::ReminderBill
                    | JourneyKind::ReminderTopUp
                        if since >= 0 =>
                    {
                        u.out *= 0.7;
                        u.data *= 0.7;
                    }
                    JourneyKind::SpendDrop | JourneyKind::VoiceDrop | JourneyKind::DataDrop
                        if since >= 0 =>
                    {
                        // Falls steadily to a tenth over three weeks, or stops at once.
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
        }
        u
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

    /// The journey's or look-alike's own records on day `d`.
    fn specials(&mut self, ctx: &mut Ctx<'_>, s: &mut Sub, d: i64) {
        let world = ctx.world;
        match s.role {
            Role::Background => {}
            Role::Journey(j) => self.journey_records(ctx, s, j, d),
            Role::LookAlike(look, a, b) => match look {
                LookAlike::HolidayDip => {}
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
                _ => {}
            },
        }
    }

    fn journey_records(&mut self, ctx: &mut Ctx<'_>, s: &Sub, j: Journey, d: i64) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    fn opts(dir: &Path, n: usize, days: u32, seed: u64) -> GenerateOptions {
        GenerateOptions {
            out: dir.to_path_buf(),
            subscribers: n,
            days,
            seed,
            start: NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(),
            format: Format::Json,
            progress: false,
        }
    }

    #[test]
    fn every_record_decodes_and_lateness_stays_within_a_day() {
        let dir = tempfile::tempdir().unwrap();
        let s = run(&opts(dir.path(), 60, 70, 7), &Config::default()).unwrap();
        assert!(s.events() > 5_000, "{s}");
        let text = std::fs::read_to_string(dir.path().join("cdr.jsonl")).unwrap();
        let mut newest = 0;
        let mut late = 0;
        for line in text.lines() {
            let m = codec::cdr_from_json(line).unwrap();
            let c = codec::cdr_from_proto(&m).unwrap();
            assert!(newest - c.time_ms <= 30 * HOUR_MS, "{line}");
            late += usize::from(c.time_ms < newest);
            newest = newest.max(c.time_ms);
        }
        assert!(late > 0);
        let text = std::fs::read_to_string(dir.path().join("account.jsonl")).unwrap();
        for line in text.lines() {
            let m = codec::account_from_json(line).unwrap();
            codec::account_from_proto(&m).unwrap();
        }
    }

    #[test]
    fn small_populations_still_plant_every_journey_and_look_alike() {
        let dir = tempfile::tempdir().unwrap();
        let s = run(&opts(dir.path(), 200, 150, 1), &Config::default()).unwrap();
        for k in JourneyKind::ALL {
            assert!(
                s.journeys.contains_key(k.name()),
                "{} missing\n{s}",
                k.name()
            );
        }
        for l in LookAlike::ALL {
            assert!(s.look_alikes.contains_key(l.name()), "{} missing", l.name());
        }
        assert!(s.skipped.is_empty(), "{:?}", s.skipped);
    }

    #[test]
    fn a_short_horizon_skips_what_cannot_fit_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let s = run(&opts(dir.path(), 100, 60, 1), &Config::default()).unwrap();
        assert!(s.skipped.contains(&"spend_declines_for_months"), "{s}");
    }
}
