//! The engine against a plain loop over the same input, in one process: how far the
//! engine's cost per record is from the least any per-subscriber daily aggregation pays.
//!
//! Both time the same encoded records (`churnwatch bench engine`'s timed input: 1,000,000
//! subscribers with 35 days of history, two days of four records each). The engine path
//! is `bench engine`'s timed loop itself ([`time_engine`]: decode, `cdr_from_proto`,
//! `Engine::apply_batch` with every rule). The reference decodes each record with prost
//! and adds it to one daily bucket (calls, seconds, bytes, charge) of a
//! `std::collections::HashMap<u64, [Bucket; 35]>` keyed by the number parsed to `u64`,
//! populated beforehand with every subscriber (as the engine's history is): deliberately
//! plain, no rules, no lateness, no de-duplication.
//!
//! `cargo bench --bench reference_loop` (`CHURNWATCH_REFERENCE_SUBSCRIBERS` to change the
//! population). One timing of each per run: the engine cannot take the same input twice
//! (every record would be a duplicate), so run it three times for a median.

use std::collections::HashMap;
use std::time::Instant;

use prost::Message as _;

use churnwatch::config::Config;
use churnwatch::proto;
use churnwatch::tools::bench::{prepare_engine, time_engine, Encoded, EngineOptions};
use churnwatch::tools::workload::numbers::subscriber;

/// Days of buckets per subscriber (the engine's closed-day ring is as long).
const DAYS: usize = 35;

/// One day of one subscriber in the reference loop.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    calls: u32,
    seconds: u32,
    bytes: u64,
    charge: i64,
}

/// The reference loop over `input`: seconds taken and a checksum (so nothing is elided).
fn reference(input: &Encoded, subscribers: u64) -> (f64, u64) {
    let mut map: HashMap<u64, [Bucket; DAYS]> = HashMap::with_capacity(subscribers as usize);
    for i in 0..subscribers {
        map.insert(subscriber(i), [Bucket::default(); DAYS]);
    }
    let mut msg = proto::CallDetailRecord::default();
    let t = Instant::now();
    for bytes in input.iter() {
        msg.clear();
        if msg.merge(bytes).is_err() {
            continue;
        }
        let Ok(number) = msg.subscriber.parse::<u64>() else {
            continue;
        };
        let day = msg
            .event_time_ms
            .div_euclid(86_400_000)
            .rem_euclid(DAYS as i64) as usize;
        let b = &mut map.entry(number).or_insert([Bucket::default(); DAYS])[day];
        let voice = matches!(
            msg.r#type(),
            proto::RecordType::VoiceOut | proto::RecordType::VoiceIn
        );
        b.calls += u32::from(voice);
        b.seconds += msg.duration_s;
        b.bytes += msg.data_bytes;
        b.charge += msg.charge;
    }
    let secs = t.elapsed().as_secs_f64();
    let sum = map
        .values()
        .flatten()
        .map(|b| u64::from(b.calls) + b.bytes)
        .sum();
    (secs, sum)
}

fn main() {
    let subscribers = std::env::var("CHURNWATCH_REFERENCE_SUBSCRIBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000u64);
    let opts = EngineOptions {
        subscribers,
        days: 35,
        events_per_day: None,
        timed_days: 2,
        seed: 1,
    };
    let mut p = prepare_engine(&opts, &Config::default()).expect("engine prepared");
    let records = p.input.len() as f64;
    let engine = time_engine(&mut p.driver, &p.input);
    drop(p.driver);
    let (secs, sum) = reference(&p.input, subscribers);
    let (e, r) = (records / engine.secs, records / secs);
    println!("reference_loop subscribers {subscribers}, records {records}");
    println!(
        "engine_events_per_sec {e:.0} events/s ({} tickets)",
        engine.tickets
    );
    println!("reference_events_per_sec {r:.0} events/s (checksum {sum})");
    println!("engine_over_reference {:.3}", e / r);
}
