//! `churnwatch bench engine`: one thread, the full rule set, a population with a full
//! history, and the time per record.
//!
//! The history is built first with cheap in-order records, so the timed part meets the
//! state a long-running partition has (every ring full); the timed records are encoded
//! into memory before the engine is made, so only decoding and the engine are timed, and
//! resident memory grows by the engine's alone.

use std::fmt;
use std::time::Instant;

use prost::Message as _;

use super::{resident_bytes, BenchError};
use crate::config::Config;
use crate::detect::calendar::{day_of_date, Calendar, Day};
use crate::detect::event::{Cdr, CdrKind, Event, Msisdn, RecordKey};
use crate::detect::state::SubscriberState;
use crate::detect::Engine;
use crate::driver::Driver;
use crate::proto::{self, CareTicket};
use crate::tools::workload::mix::CdrMix;
use crate::tools::workload::numbers::subscriber;

/// First day of the engine benchmark's history (operator's calendar).
pub const ENGINE_START: &str = "2026-02-20";

/// Builds `days` days of history for subscribers `0..n`: one outgoing call each per day,
/// subscribers in order (cheap, cache-friendly), times increasing through each day. Every
/// day closes as time moves on, so afterwards every ring is full. Returns the tickets raised.
pub fn build_history(driver: &mut Driver, n: u64, first_day: Day, days: u32) -> u64 {
    build_history_of(driver, n, |k| k, first_day, days)
}

/// [`build_history`] for `n` subscribers picked by `pick` (the `k`th one built is
/// subscriber `pick(k)`), e.g. those a partition owns.
pub fn build_history_of(
    driver: &mut Driver,
    n: u64,
    pick: impl Fn(u64) -> u64,
    first_day: Day,
    days: u32,
) -> u64 {
    let mut out = Vec::new();
    let mut tickets = 0u64;
    let mut key = 1u64 << 62;
    for d in 0..days as i32 {
        let start = driver.engine().calendar().day_start_ms(first_day + d);
        let step = 80_000_000 / n.max(1) as i64;
        for k in 0..n {
            key += 1;
            let i = pick(k);
            let c = Cdr {
                id: RecordKey(key),
                subscriber: Msisdn(subscriber(i)),
                time_ms: start + 3_600_000 + k as i64 * step,
                kind: CdrKind::VoiceOut,
                other_party: "13800138000",
                duration_s: 60 + (i % 240) as u32,
                data_bytes: 0,
                charge: 20,
                call_ref: 0,
                partial: false,
                roaming: false,
            };
            let _ = driver.feed_event(&Event::Cdr(c), None, &mut out);
            tickets += out.len() as u64;
            out.clear();
        }
    }
    tickets
}

/// Encoded records back to back, with their lengths (every CDR here is under 256 bytes).
#[derive(Default)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub lens: Vec<u8>,
}

impl Encoded {
    pub fn len(&self) -> usize {
        self.lens.len()
    }
    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }
    pub fn push(&mut self, m: &proto::CallDetailRecord) -> Result<(), BenchError> {
        let len = m.encoded_len();
        let short =
            u8::try_from(len).map_err(|_| BenchError::Check(format!("a record of {len} bytes")))?;
        m.encode(&mut self.bytes)
            .map_err(|e| BenchError::Check(e.to_string()))?;
        self.lens.push(short);
        Ok(())
    }
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let mut off = 0usize;
        self.lens.iter().map(move |&l| {
            let r = &self.bytes[off..off + usize::from(l)];
            off += usize::from(l);
            r
        })
    }
}

/// Encodes `days` days of `per_day` records each, starting at `first_day`.
pub fn encode_days(
    w: &mut CdrMix,
    cal: &Calendar,
    first_day: Day,
    days: u32,
    per_day: u64,
) -> Result<Encoded, BenchError> {
    let total = per_day as usize * days as usize;
    let mut enc = Encoded {
        bytes: Vec::with_capacity(total * 64),
        lens: Vec::with_capacity(total),
    };
    let mut m = proto::CallDetailRecord::default();
    for d in 0..days as i32 {
        let start = cal.day_start_ms(first_day + d);
        let len = cal.day_start_ms(first_day + d + 1) - start;
        for i in 0..per_day {
            let t = start + (i as i64 * len) / per_day.max(1) as i64;
            w.next_cdr(t, &mut m);
            m.event_time_ms = m.event_time_ms.clamp(start, start + len - 1);
            enc.push(&m)?;
        }
    }
    enc.bytes.shrink_to_fit();
    enc.lens.shrink_to_fit();
    Ok(enc)
}

/// `churnwatch bench engine` options.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub subscribers: u64,
    /// Days of history before the timed part (35 fills every ring).
    pub days: u32,
    /// Records per day in the timed part (default four per subscriber).
    pub events_per_day: Option<u64>,
    /// Days of records timed.
    pub timed_days: u32,
    pub seed: u64,
}

/// What `churnwatch bench engine` measured.
#[derive(Debug, Clone)]
pub struct EngineReport {
    pub opts: EngineOptions,
    pub events_per_day: u64,
    pub history_secs: f64,
    pub history_tickets: u64,
    pub encoded_records: u64,
    pub encoded_bytes: u64,
    pub timed_secs: f64,
    pub accepted: u64,
    pub rejected: u64,
    pub tickets: u64,
    pub days_closed: u64,
    pub state_struct_bytes: usize,
    pub engine_state_bytes: usize,
    pub rss_growth_population: u64,
    pub rss_growth_after_timed: u64,
}

impl EngineReport {
    pub fn events_per_sec(&self) -> f64 {
        self.encoded_records as f64 / self.timed_secs.max(1e-9)
    }
    fn per_sub(&self, v: u64) -> f64 {
        v as f64 / self.opts.subscribers.max(1) as f64
    }
}

/// An engine with its history and the encoded timed input: what the timed part starts from.
pub struct Prepared {
    pub driver: Driver,
    pub input: Encoded,
    pub events_per_day: u64,
    pub history_secs: f64,
    pub history_tickets: u64,
    /// Resident bytes before the engine was made, and after its history.
    pub rss_before: u64,
    pub rss_history: u64,
}

/// Encodes the timed input, then builds the engine's history (see the module doc). The
/// input is made first so that resident memory measured from then on is the engine's: the
/// generator's garbage and the input itself are already there.
pub fn prepare_engine(opts: &EngineOptions, cfg: &Config) -> Result<Prepared, BenchError> {
    let n = opts.subscribers.max(1);
    let per_day = opts.events_per_day.unwrap_or(4 * n).max(1);
    let cfg = sized(cfg, n, per_day);
    let start = chrono::NaiveDate::parse_from_str(ENGINE_START, "%Y-%m-%d")
        .map_err(|e| BenchError::Check(e.to_string()))?;
    let first_day = day_of_date(start);
    let e = &cfg.detect;
    let cal = Calendar::new(&e.engine.time_zone, &e.calendar.holidays)
        .ok_or_else(|| BenchError::Check("engine.time_zone: not a valid zone".into()))?;
    let timed_start = first_day + opts.days as i32;
    let input = {
        let mut w = CdrMix::new(n, opts.seed);
        encode_days(&mut w, &cal, timed_start, opts.timed_days, per_day)?
    };

    let rss_before = resident_bytes();
    let mut driver = Driver::new(Engine::new(&cfg, &[])?, 0);
    let t0 = Instant::now();
    let history_tickets = build_history(&mut driver, n, first_day, opts.days);
    let history_secs = t0.elapsed().as_secs_f64();
    let rss_history = resident_bytes();
    Ok(Prepared {
        driver,
        input,
        events_per_day: per_day,
        history_secs,
        history_tickets,
        rss_before,
        rss_history,
    })
}

/// The config of a deployment sized for `n` subscribers with `per_day` records a day
/// between them: the tables are made once (`engine.expected_subscribers`,
/// `engine.expected_daily_records`) and the de-dup cap holds what they are sized for.
fn sized(cfg: &Config, n: u64, per_day: u64) -> Config {
    let mut cfg = cfg.clone();
    let e = &mut cfg.detect.engine;
    e.expected_subscribers = n as usize;
    e.expected_daily_records = per_day.div_ceil(n).clamp(1, 10_000) as u32;
    e.max_dedup_ids = e.max_dedup_ids.max(e.sized_dedup_ids());
    cfg
}

/// Records decoded and applied together in the timed loop.
pub const BATCH: usize = 32;

/// What one pass of the timed loop counted.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timed {
    pub secs: f64,
    pub tickets: u64,
    pub rejected: u64,
}

/// The timed loop: every record decoded (`clear` + `merge` into a reused message, then
/// `codec::cdr_from_proto`) and applied, [`BATCH`] at a time with
/// [`Engine::apply_batch`], as the service would.
pub fn time_engine(driver: &mut Driver, input: &Encoded) -> Timed {
    let mut msgs = vec![proto::CallDetailRecord::default(); BATCH];
    let mut out: Vec<CareTicket> = Vec::new();
    let mut applied = Vec::with_capacity(BATCH);
    let mut spare: Vec<Event<'static>> = Vec::with_capacity(BATCH);
    let mut timed = Timed::default();
    let mut records = input.iter();
    let t = Instant::now();
    loop {
        let mut n = 0;
        let mut taken = 0;
        for bytes in records.by_ref().take(BATCH) {
            taken += 1;
            msgs[n].clear();
            match msgs[n].merge(bytes) {
                Ok(()) => n += 1,
                Err(_) => timed.rejected += 1,
            }
        }
        if taken == 0 {
            break;
        }
        let mut events = reuse(spare);
        for m in &msgs[..n] {
            match crate::codec::cdr_from_proto(m) {
                Ok(c) => events.push(Event::Cdr(c)),
                Err(_) => timed.rejected += 1,
            }
        }
        applied.clear();
        driver
            .engine_mut()
            .apply_batch(&events, &mut out, &mut applied, |_| {});
        timed.tickets += out.len() as u64;
        out.clear();
        spare = reuse(events);
    }
    timed.secs = t.elapsed().as_secs_f64();
    timed
}

/// An empty vector on the allocation of `v`, for events that borrow other messages (the
/// collect is done in place: no allocation per batch).
fn reuse<'b>(mut v: Vec<Event<'_>>) -> Vec<Event<'b>> {
    v.clear();
    v.into_iter().map(|_| unreachable!("empty")).collect()
}

/// Runs the engine benchmark.
pub fn run_engine(opts: &EngineOptions, cfg: &Config) -> Result<EngineReport, BenchError> {
    let mut p = prepare_engine(opts, cfg)?;
    let days_before = p.driver.engine().stats().days_closed;
    let accepted_before = p.driver.engine().stats().accepted;
    eprintln!(
        "history built in {:.1}s; timing {} records (pid {})",
        p.history_secs,
        p.input.len(),
        std::process::id()
    );
    let timed = time_engine(&mut p.driver, &p.input);
    let rss_after = resident_bytes();
    let engine = p.driver.engine();
    Ok(EngineReport {
        opts: opts.clone(),
        events_per_day: p.events_per_day,
        history_secs: p.history_secs,
        history_tickets: p.history_tickets,
        encoded_records: p.input.len() as u64,
        encoded_bytes: p.input.bytes.len() as u64,
        timed_secs: timed.secs,
        accepted: engine.stats().accepted - accepted_before,
        rejected: timed.rejected,
        tickets: timed.tickets,
        days_closed: engine.stats().days_closed - days_before,
        state_struct_bytes: std::mem::size_of::<SubscriberState>(),
        engine_state_bytes: engine.state_bytes(),
        rss_growth_population: p.rss_history.saturating_sub(p.rss_before),
        rss_growth_after_timed: rss_after.saturating_sub(p.rss_before),
    })
}

impl fmt::Display for EngineReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.table(f)?;
        writeln!(f)?;
        self.figures(f)
    }
}

impl EngineReport {
    /// The human-readable table.
    fn table(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.opts;
        writeln!(f, "engine benchmark (one thread)")?;
        writeln!(f, "  subscribers            {:>14}", o.subscribers)?;
        writeln!(
            f,
            "  history                {:>14} days, built in {:.1}s ({} tickets)",
            o.days, self.history_secs, self.history_tickets
        )?;
        writeln!(
            f,
            "  timed input            {:>14} records over {} day(s), {:.1} bytes each",
            self.encoded_records,
            o.timed_days,
            self.encoded_bytes as f64 / self.encoded_records.max(1) as f64
        )?;
        writeln!(
            f,
            "  accepted / rejected    {:>14} / {}",
            self.accepted, self.rejected
        )?;
        writeln!(f, "  days closed (timed)    {:>14}", self.days_closed)?;
        writeln!(f, "  tickets (timed)        {:>14}", self.tickets)?;
        writeln!(f, "  elapsed                {:>13.2}s", self.timed_secs)?;
        writeln!(
            f,
            "  throughput             {:>14.0} events/s ({:.0} ns/event)",
            self.events_per_sec(),
            1e9 / self.events_per_sec().max(1e-9)
        )?;
        writeln!(
            f,
            "  SubscriberState        {:>14} bytes",
            self.state_struct_bytes
        )?;
        writeln!(
            f,
            "  engine.state_bytes()   {:>14} bytes ({:.1} per subscriber)",
            self.engine_state_bytes,
            self.per_sub(self.engine_state_bytes as u64)
        )?;
        writeln!(
            f,
            "  RSS growth, population {:>14} bytes ({:.1} per subscriber)",
            self.rss_growth_population,
            self.per_sub(self.rss_growth_population)
        )?;
        writeln!(
            f,
            "  RSS growth, after timed{:>14} bytes ({:.1} per subscriber)",
            self.rss_growth_after_timed,
            self.per_sub(self.rss_growth_after_timed)
        )?;
        Ok(())
    }

    /// One `name value unit` line per figure, for scripts.
    fn figures(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.opts;
        writeln!(f, "engine_subscribers {} subscribers", o.subscribers)?;
        writeln!(f, "engine_events_timed {} events", self.encoded_records)?;
        writeln!(
            f,
            "engine_events_per_sec {:.0} events/s",
            self.events_per_sec()
        )?;
        writeln!(
            f,
            "engine_ns_per_event {:.0} ns",
            1e9 / self.events_per_sec().max(1e-9)
        )?;
        writeln!(f, "engine_tickets_timed {} tickets", self.tickets)?;
        writeln!(f, "state_struct_bytes {} bytes", self.state_struct_bytes)?;
        writeln!(
            f,
            "engine_state_bytes_per_subscriber {:.0} bytes",
            self.per_sub(self.engine_state_bytes as u64)
        )?;
        writeln!(
            f,
            "state_bytes_per_subscriber {:.0} bytes",
            self.per_sub(self.rss_growth_population)
        )?;
        writeln!(
            f,
            "rss_bytes_per_subscriber_after_timed {:.0} bytes",
            self.per_sub(self.rss_growth_after_timed)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_records_come_back_as_they_went_in() {
        let cal = Calendar::new("Asia/Shanghai", &[]).unwrap();
        let first = day_of_date(chrono::NaiveDate::from_ymd_opt(2026, 2, 20).unwrap());
        let input = encode_days(&mut CdrMix::new(100, 1), &cal, first, 2, 500).unwrap();
        assert_eq!(input.len(), 1000);
        let (start, end) = (cal.day_start_ms(first), cal.day_start_ms(first + 2));
        for bytes in input.iter() {
            let m = proto::CallDetailRecord::decode(bytes).unwrap();
            assert!((start..end).contains(&m.event_time_ms));
            crate::codec::cdr_from_proto(&m).unwrap();
        }
    }

    #[test]
    fn a_small_run_accepts_every_record_and_closes_its_days() {
        let opts = EngineOptions {
            subscribers: 200,
            days: 3,
            events_per_day: Some(300),
            timed_days: 2,
            seed: 1,
        };
        let r = run_engine(&opts, &Config::default()).unwrap();
        assert_eq!((r.encoded_records, r.accepted, r.rejected), (600, 600, 0));
        assert!(r.days_closed >= 1, "{r}");
    }
}
