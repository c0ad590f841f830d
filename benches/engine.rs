//! Criterion benchmarks of the hot path, piece by piece: decoding a CDR, folding events into
//! a populated engine (state update, record rules and, amortized, the day close with every
//! day-close rule), and encoding a ticket. Sizes are modest so `cargo bench` ends in a few
//! minutes; `churnwatch bench engine` measures the whole path at 1M and 10M subscribers.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use prost::Message as _;

use churnwatch::codec;
use churnwatch::config::Config;
use churnwatch::detect::calendar::{day_of_date, Calendar};
use churnwatch::detect::{Engine, Event};
use churnwatch::driver::Driver;
use churnwatch::proto;
use churnwatch::tools::bench::{build_history, encode_days, ENGINE_START};
use churnwatch::tools::workload::mix::CdrMix;

const SUBSCRIBERS: u64 = 100_000;
const HISTORY_DAYS: u32 = 35;

fn first_day() -> i32 {
    day_of_date(chrono::NaiveDate::parse_from_str(ENGINE_START, "%Y-%m-%d").unwrap())
}

fn calendar() -> Calendar {
    Calendar::new("Asia/Shanghai", &[]).unwrap()
}

fn decode(c: &mut Criterion) {
    let mut w = CdrMix::new(SUBSCRIBERS, 7);
    let input = encode_days(&mut w, &calendar(), first_day(), 1, 100_000).unwrap();
    let records: Vec<&[u8]> = input.iter().collect();
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("cdr_from_protobuf+cdr_from_proto", |b| {
        b.iter(|| {
            i = (i + 1) % records.len();
            let m = codec::cdr_from_protobuf(records[i]).unwrap();
            let c = codec::cdr_from_proto(&m).unwrap();
            std::hint::black_box(c.time_ms)
        })
    });
    let mut msg = proto::CallDetailRecord::default();
    g.bench_function("merge_reused+cdr_from_proto", |b| {
        b.iter(|| {
            i = (i + 1) % records.len();
            msg.clear();
            msg.merge(records[i]).unwrap();
            let c = codec::cdr_from_proto(&msg).unwrap();
            std::hint::black_box(c.time_ms)
        })
    });
    g.finish();
}

/// An engine over `SUBSCRIBERS` subscribers with a full history.
fn populated() -> Engine {
    let mut cfg = Config::default();
    cfg.detect.engine.expected_subscribers = SUBSCRIBERS as usize;
    let mut d = Driver::new(Engine::new(&cfg, &[]).unwrap(), 0);
    build_history(&mut d, SUBSCRIBERS, first_day(), HISTORY_DAYS);
    d.into_engine()
}

fn apply(c: &mut Criterion) {
    let mut engine = populated();
    let cal = calendar();
    // Four records per subscriber and day, decoded up front (untimed) one day at a time, so
    // event time advances and days close as in production, amortized over a day's records.
    let per_day = 4 * SUBSCRIBERS;
    let mut w = CdrMix::new(SUBSCRIBERS, 11);
    let mut day = first_day() + HISTORY_DAYS as i32;
    let mut batch = encode_days(&mut w, &cal, day, 1, per_day).unwrap();
    let mut decoded: Vec<proto::CallDetailRecord> = batch
        .iter()
        .map(|b| proto::CallDetailRecord::decode(b).unwrap())
        .collect();
    let mut i = 0usize;
    let mut out = Vec::new();
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(1));
    g.bench_function("apply/100k_subscribers", |b| {
        b.iter_custom(|iters| {
            let mut timed = std::time::Duration::ZERO;
            let mut start = std::time::Instant::now();
            for _ in 0..iters {
                if i == decoded.len() {
                    // Next day, untimed: new records, later event times.
                    timed += start.elapsed();
                    day += 1;
                    batch = encode_days(&mut w, &cal, day, 1, per_day).unwrap();
                    decoded = batch
                        .iter()
                        .map(|b| proto::CallDetailRecord::decode(b).unwrap())
                        .collect();
                    i = 0;
                    start = std::time::Instant::now();
                }
                let cdr = codec::cdr_from_proto(&decoded[i]).unwrap();
                std::hint::black_box(engine.apply(&Event::Cdr(cdr), &mut out));
                out.clear();
                i += 1;
            }
            timed + start.elapsed()
        })
    });
    g.finish();
}

fn ticket() -> proto::CareTicket {
    let mut e = Engine::new(&Config::default(), &[]).unwrap();
    let m = proto::CallDetailRecord {
        record_id: "sw1-1".into(),
        subscriber: "8613012345678".into(),
        event_time_ms: 1_773_003_600_000,
        r#type: proto::RecordType::VoiceOut as i32,
        other_party: "10086".into(),
        duration_s: 300,
        charge: 50,
        ..Default::default()
    };
    let mut out = Vec::new();
    e.apply(&Event::Cdr(codec::cdr_from_proto(&m).unwrap()), &mut out);
    out.pop().expect("a competitor care call raises a ticket")
}

fn encode_ticket(c: &mut Criterion) {
    let t = ticket();
    let mut g = c.benchmark_group("ticket");
    g.throughput(Throughput::Elements(1));
    g.bench_function("protobuf", |b| {
        b.iter(|| std::hint::black_box(&t).encode_to_vec())
    });
    g.bench_function("json_line", |b| {
        b.iter(|| codec::ticket_to_json_line(std::hint::black_box(&t)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(4));
    targets = decode, apply, encode_ticket
}
criterion_main!(benches);
