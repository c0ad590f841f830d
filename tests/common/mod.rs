//! Builders for engine tests: events at Shanghai local times, and a runner.
#![allow(dead_code)]

use std::collections::BTreeMap;

use churnwatch::config::Config;
use churnwatch::detect::{
    AccountEvent, AccountKind, Cdr, CdrKind, Engine, Event, Msisdn, Period, RecordKey,
};
use churnwatch::proto::CareTicket;

pub const SUB: u64 = 8613012345678;
pub const OTHER: u64 = 8613012340000;

/// Epoch ms of a Shanghai local time "YYYY-MM-DD HH:MM".
pub fn at(local: &str) -> i64 {
    let naive = chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M").unwrap();
    naive.and_utc().timestamp_millis() - 8 * 3_600_000
}

pub const DAY: i64 = 86_400_000;

pub fn cdr(
    id: &str,
    sub: u64,
    t: i64,
    kind: CdrKind,
    other: &'static str,
    dur: u32,
) -> Event<'static> {
    Event::Cdr(Cdr {
        id: RecordKey::of(id),
        subscriber: Msisdn(sub),
        time_ms: t,
        kind,
        other_party: other,
        duration_s: dur,
        data_bytes: 0,
        charge: 0,
        call_ref: 0,
        partial: false,
        roaming: false,
    })
}

pub fn voice(id: &str, sub: u64, t: i64, other: &'static str, dur: u32) -> Event<'static> {
    cdr(id, sub, t, CdrKind::VoiceOut, other, dur)
}

pub fn with_charge(ev: Event<'static>, fen: i64) -> Event<'static> {
    match ev {
        Event::Cdr(mut c) => {
            c.charge = fen;
            Event::Cdr(c)
        }
        e => e,
    }
}

pub fn data(id: &str, sub: u64, t: i64, bytes: u64) -> Event<'static> {
    match cdr(id, sub, t, CdrKind::Data, "", 0) {
        Event::Cdr(mut c) => {
            c.data_bytes = bytes;
            Event::Cdr(c)
        }
        e => e,
    }
}

pub fn partial(
    id: &str,
    sub: u64,
    t: i64,
    other: &'static str,
    dur: u32,
    call_ref: u64,
) -> Event<'static> {
    match voice(id, sub, t, other, dur) {
        Event::Cdr(mut c) => {
            c.partial = true;
            c.call_ref = call_ref;
            Event::Cdr(c)
        }
        e => e,
    }
}

pub fn account(id: &str, sub: u64, t: i64, kind: AccountKind) -> Event<'static> {
    Event::Account(AccountEvent {
        id: RecordKey::of(id),
        subscriber: Msisdn(sub),
        time_ms: t,
        kind,
    })
}

pub fn period(s: &str) -> Period {
    Period::parse(s).unwrap()
}

/// Runs events in the given order through a fresh engine (then `finish`), returning every
/// ticket emitted in order.
pub fn run_with(cfg: &Config, events: &[Event<'static>]) -> (Vec<CareTicket>, Engine) {
    let mut engine = Engine::new(cfg, &[]).unwrap();
    let mut out = Vec::new();
    for e in events {
        engine.apply(e, &mut out);
    }
    engine.finish(&mut out);
    (out, engine)
}

/// The default config, except that every signal raises a ticket whatever the tier (the
/// journeys test rules; routing has its own tests).
pub fn rules_config() -> Config {
    use churnwatch::config::Cell;
    let mut cfg = Config::default();
    cfg.detect
        .routing
        .matrix
        .insert("star_1".into(), [Cell::P3, Cell::P4, Cell::P4]);
    cfg
}

pub fn run(events: &[Event<'static>]) -> Vec<CareTicket> {
    run_with(&rules_config(), events).0
}

/// The last version of every ticket, by id (tickets are upserts).
pub fn final_tickets(tickets: &[CareTicket]) -> BTreeMap<String, CareTicket> {
    tickets
        .iter()
        .map(|t| (t.ticket_id.clone(), t.clone()))
        .collect()
}

/// Rule ids of the tickets of one subscriber, in emission order.
pub fn rules_of(tickets: &[CareTicket], sub: u64) -> Vec<String> {
    let s = sub.to_string();
    tickets
        .iter()
        .filter(|t| t.subscriber == s)
        .flat_map(|t| t.signals.iter().map(|g| g.rule.clone()))
        .collect()
}

/// A loyal background subscriber: one call a day from `from` for `days` days, which also
/// moves event time (and the watermark) forward.
pub fn clock(sub: u64, from: i64, days: i64) -> Vec<Event<'static>> {
    (0..days)
        .map(|i| {
            voice(
                &format!("clk-{sub}-{i}"),
                sub,
                from + i * DAY + 12 * 3_600_000,
                "13012340001",
                30,
            )
        })
        .collect()
}

/// Sorts events by time (stable), as in-order delivery would.
pub fn in_order(mut v: Vec<Event<'static>>) -> Vec<Event<'static>> {
    v.sort_by_key(|e| e.time_ms());
    v
}
