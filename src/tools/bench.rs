//! `churnwatch bench`: throughput and memory figures for this machine, in a form scripts
//! can read (one `name value unit` line per figure after a human-readable table).
//!
//! - `engine`: one thread decodes pre-encoded protobuf CDRs and runs them through
//!   [`Engine::apply`] (the full rule set, days closing as event time advances) over a
//!   population of N subscribers with a full 35-day history. The input is encoded into memory
//!   before the clock starts; subscribers are drawn at random, so every record touches a
//!   cold state, as in production. Memory is the resident-set growth while the population is
//!   built, divided by the subscribers.
//! - `e2e`: the Kafka service against the embedded broker: the workload is produced first
//!   (all of it kept, checked with the partitions' watermarks), then timed from the
//!   service's start until every record's offset is stored, i.e. its tickets acknowledged;
//!   then a second run at half that rate reports the processing-latency quantiles.
//! - `restore`: the state changelog does not exist yet; says so.
//!
//! Nothing here is a test: figures vary with the machine and its load, so they are reported
//! (BENCHMARKS.md), never asserted.

use std::fmt;
use std::time::{Duration, Instant};

use prost::Message as _;

use crate::codec;
use crate::config::{Config, ConfigError};
use crate::detect::calendar::{day_of_date, Calendar, Day};
use crate::detect::event::{Cdr, CdrKind, Event, Msisdn, RecordKey};
use crate::detect::state::SubscriberState;
use crate::detect::Engine;
use crate::proto::{self, CareTicket};
use crate::tools::workload::numbers::{mobile, subscriber, ANY_PREFIXES};
use crate::tools::workload::Rng;

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Broker(#[from] crate::kafka::embedded::EmbeddedError),
    #[error("kafka client: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("benchmark check failed: {0}")]
    Check(String),
}

/// A CDR generator with a realistic mix: voice out and in with mobiles of every operator,
/// SMS, data, charges, a few calls with care numbers (a few of them long, or cut into
/// partial records), competitor IP-call prefixes and forwarding.
pub struct Workload {
    subscribers: u64,
    rng: Rng,
    seq: u64,
    parties: Vec<String>,
    text: String,
}

/// Care lines: our own (10010, not a sign) and two competitors'.
const CARE: [&str; 3] = ["10010", "10086", "10000"];

impl Workload {
    pub fn new(subscribers: u64, seed: u64) -> Workload {
        let mut rng = Rng::stream(seed, 0xbe, 0x9c);
        let parties = (0..65_536)
            .map(|i| {
                let national = mobile(&mut rng, &ANY_PREFIXES);
                // Some switches present the other party in international format.
                if i % 5 == 0 {
                    format!("86{national}")
                } else {
                    national
                }
            })
            .collect();
        Workload {
            subscribers: subscribers.max(1),
            rng,
            seq: 0,
            parties,
            text: String::new(),
        }
    }

    /// A subscriber index drawn uniformly at random.
    pub fn pick_subscriber(&mut self) -> u64 {
        self.rng.next_u64() % self.subscribers
    }

    fn party(&mut self) -> usize {
        (self.rng.next_u64() & 0xffff) as usize
    }

    /// Fills `m` with the next record, for a random subscriber, at about `time_ms`.
    pub fn next_cdr(&mut self, time_ms: i64, m: &mut proto::CallDetailRecord) {
        use proto::RecordType as T;
        self.seq += 1;
        let who = self.pick_subscriber();
        m.clear();
        self.text.clear();
        fmt::Write::write_fmt(&mut self.text, format_args!("sw1-{:010}", self.seq)).ok();
        m.record_id.push_str(&self.text);
        self.text.clear();
        fmt::Write::write_fmt(&mut self.text, format_args!("{}", subscriber(who))).ok();
        m.subscriber.push_str(&self.text);
        // Small jitter: mediation delivers records a little out of order.
        m.event_time_ms = time_ms + self.rng.range(-30_000, 30_000);
        let r = self.rng.next_u64() % 10_000;
        let p = self.party();
        let (kind, party): (T, &str) = match r {
            0..3000 => (T::VoiceOut, &self.parties[p]),
            3000..5200 => (T::VoiceIn, &self.parties[p]),
            5200..6200 => (T::SmsOut, &self.parties[p]),
            6200..7000 => (T::SmsIn, &self.parties[p]),
            7000..9950 => (T::Data, ""),
            9950..9970 => (T::VoiceOut, "17951"),
            9970..9985 => (T::VoiceOut, CARE[p % 3]),
            9985..9995 => (T::VoiceIn, CARE[p % 3]),
            _ => (T::Forward, &self.parties[p]),
        };
        m.r#type = kind as i32;
        m.other_party.push_str(party);
        if (9950..9970).contains(&r) {
            let p = self.party();
            m.other_party.push_str(&self.parties[p]);
        }
        match kind {
            T::VoiceOut | T::VoiceIn | T::Forward => {
                m.duration_s = self.rng.range(5, 600) as u32;
                if kind == T::VoiceOut && self.rng.chance(0.7) {
                    m.charge = self.rng.range(1, 60);
                }
                if (9970..9995).contains(&r) {
                    // Care calls are mostly short; one in twenty is long enough to be a
                    // sign, and a few long ones are cut into partial records.
                    m.duration_s = self.rng.range(20, 60) as u32;
                    if self.rng.chance(0.05) {
                        m.duration_s = self.rng.range(61, 900) as u32;
                        if self.rng.chance(0.1) {
                            m.partial = true;
                            m.call_reference = format!("c-{}", self.seq);
                        }
                    }
                }
            }
            T::SmsOut => m.charge = 10,
            T::Data => {
                m.data_bytes = self.rng.range(10_000, 50_000_000) as u64;
                if self.rng.chance(0.01) {
                    m.charge = self.rng.range(100, 1000);
                }
            }
            _ => {}
        }
    }
}

/// Resident memory of this process (VmRSS), bytes; 0 where `/proc` is not available.
pub fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// First day of the engine benchmark's history (operator's calendar).
pub const ENGINE_START: &str = "2026-02-20";

/// Builds `days` days of history for subscribers `0..n`: one outgoing call each per day,
/// subscribers in order (cheap, cache-friendly), times increasing through each day. Every
/// day closes as time moves on, so afterwards every ring is full. Returns the tickets raised.
pub fn build_history(engine: &mut Engine, n: u64, first_day: Day, days: u32) -> u64 {
    let mut out = Vec::new();
    let mut tickets = 0u64;
    let mut key = 1u64 << 62;
    for d in 0..days as i32 {
        let start = engine.calendar().day_start_ms(first_day + d);
        let step = 80_000_000 / n.max(1) as i64;
        for i in 0..n {
            key += 1;
            let c = Cdr {
                id: RecordKey(key),
                subscriber: Msisdn(subscriber(i)),
                time_ms: start + 3_600_000 + i as i64 * step,
                kind: CdrKind::VoiceOut,
                other_party: "13800138000",
                duration_s: 60 + (i % 240) as u32,
                data_bytes: 0,
                charge: 20,
                call_ref: 0,
                partial: false,
            };
            engine.apply(&Event::Cdr(c), &mut out);
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
    /// Bytes held (capacity), to subtract from resident memory.
    pub fn held_bytes(&self) -> usize {
        self.bytes.capacity() + self.lens.capacity()
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
    w: &mut Workload,
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

/// Runs the engine benchmark.
pub fn run_engine(opts: &EngineOptions, cfg: &Config) -> Result<EngineReport, BenchError> {
    let n = opts.subscribers.max(1);
    let per_day = opts.events_per_day.unwrap_or(4 * n).max(1);
    let mut cfg = cfg.clone();
    // A deployment sizes the table for its share (config `engine.expected_subscribers`).
    cfg.engine.expected_subscribers = n as usize;
    let start = chrono::NaiveDate::parse_from_str(ENGINE_START, "%Y-%m-%d")
        .map_err(|e| BenchError::Check(e.to_string()))?;
    let first_day = day_of_date(start);

    let rss0 = resident_bytes();
    let mut engine = Engine::new(&cfg, &[])?;
    let t0 = Instant::now();
    let history_tickets = build_history(&mut engine, n, first_day, opts.days);
    let history_secs = t0.elapsed().as_secs_f64();
    let rss1 = resident_bytes();
    let days_before = engine.stats().days_closed;

    let mut w = Workload::new(n, opts.seed);
    let cal = engine.calendar().clone();
    let input = encode_days(
        &mut w,
        &cal,
        first_day + opts.days as i32,
        opts.timed_days,
        per_day,
    )?;

    let mut msg = proto::CallDetailRecord::default();
    let mut out: Vec<CareTicket> = Vec::new();
    let (mut tickets, mut rejected) = (0u64, 0u64);
    let accepted_before = engine.stats().accepted;
    eprintln!(
        "history built in {history_secs:.1}s; timing {} records (pid {})",
        input.len(),
        std::process::id()
    );
    let t1 = Instant::now();
    for bytes in input.iter() {
        msg.clear();
        if msg.merge(bytes).is_err() {
            rejected += 1;
            continue;
        }
        match codec::cdr_from_proto(&msg) {
            Ok(c) => {
                engine.apply(&Event::Cdr(c), &mut out);
            }
            Err(_) => rejected += 1,
        }
        tickets += out.len() as u64;
        out.clear();
    }
    let timed_secs = t1.elapsed().as_secs_f64();
    let rss2 = resident_bytes();
    Ok(EngineReport {
        opts: opts.clone(),
        events_per_day: per_day,
        history_secs,
        history_tickets,
        encoded_records: input.len() as u64,
        encoded_bytes: input.bytes.len() as u64,
        timed_secs,
        accepted: engine.stats().accepted - accepted_before,
        rejected,
        tickets,
        days_closed: engine.stats().days_closed - days_before,
        state_struct_bytes: std::mem::size_of::<SubscriberState>(),
        engine_state_bytes: engine.state_bytes(),
        rss_growth_population: rss1.saturating_sub(rss0),
        rss_growth_after_timed: rss2
            .saturating_sub(rss0)
            .saturating_sub(input.held_bytes() as u64),
    })
}

impl fmt::Display for EngineReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
            "  RSS growth, after timed{:>14} bytes ({:.1} per subscriber, input excluded)",
            self.rss_growth_after_timed,
            self.per_sub(self.rss_growth_after_timed)
        )?;
        writeln!(f)?;
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

/// `churnwatch bench restore`: there is no changelog to restore from yet.
pub fn restore_report() -> String {
    "state restore: churnwatch has no state changelog yet (a partition's state lives in memory \
     only), so there is nothing to restore from or to time.\n\
     state_restore_subscribers_per_sec n/a\n"
        .to_string()
}

/// Quantile `q` (0..1) of a Prometheus histogram from its cumulative bucket counts,
/// interpolated linearly inside the bucket; with the bucket's bounds.
pub fn histogram_quantile(
    bounds: &[f64],
    cumulative: &[u64],
    count: u64,
    q: f64,
) -> Option<(f64, f64, f64)> {
    if count == 0 {
        return None;
    }
    let rank = q * count as f64;
    let mut lower = 0.0;
    let mut below = 0u64;
    for (&upper, &c) in bounds.iter().zip(cumulative) {
        if c as f64 >= rank {
            let inside = (c - below).max(1) as f64;
            let v = lower + (upper - lower) * ((rank - below as f64) / inside);
            return Some((v, lower, upper));
        }
        lower = upper;
        below = c;
    }
    Some((f64::INFINITY, lower, f64::INFINITY))
}

/// Pause between polls of a completion counter (a poll interval, not synchronisation).
pub const POLL: Duration = Duration::from_millis(1);

/// `churnwatch bench e2e` options.
#[derive(Debug, Clone)]
pub struct E2eOptions {
    pub subscribers: u64,
    /// Records produced for the throughput run.
    pub events: u64,
    pub partitions: i32,
    /// Seconds of the half-rate latency run (0 skips it).
    pub latency_secs: u64,
    pub seed: u64,
}

/// Processing latency at a steady input rate.
#[derive(Debug, Clone)]
pub struct LatencyReport {
    pub rate: u64,
    pub produced: u64,
    pub produce_secs: f64,
    /// Records whose latency is counted (the first fifth, while the group settles, is left out).
    pub measured: u64,
    /// `(value, bucket lower bound, bucket upper bound)`, seconds.
    pub p50: (f64, f64, f64),
    pub p99: (f64, f64, f64),
}

/// What `churnwatch bench e2e` measured.
#[derive(Debug, Clone)]
pub struct E2eReport {
    pub opts: E2eOptions,
    pub produced: u64,
    pub produce_secs: f64,
    pub end_offsets: i64,
    pub secs: f64,
    pub consumed_secs: f64,
    pub tickets: u64,
    pub latency: Option<LatencyReport>,
}

impl E2eReport {
    pub fn events_per_sec(&self) -> f64 {
        self.produced as f64 / self.secs.max(1e-9)
    }
}

/// `count` records in event-time order over the `span_ms` before now: CDRs from
/// [`Workload`] and about 2% account events (payments and top-ups) for the same subscribers.
pub fn wire_workload(
    subscribers: u64,
    count: u64,
    span_ms: i64,
    seed: u64,
) -> Vec<crate::tools::workload::WireEvent> {
    use crate::tools::workload::WireEvent;
    use proto::account_event::Kind;
    let mut w = Workload::new(subscribers, seed);
    let mut rng = Rng::stream(seed, 0xac, 0x01);
    let end = crate::kafka::service::wall_clock_ms() - 60_000;
    let start = end - span_ms;
    (0..count)
        .map(|i| {
            let t = start + (i as i64 * span_ms) / count.max(1) as i64;
            if rng.chance(0.02) {
                let kind = if rng.chance(0.5) {
                    Kind::Payment(proto::PaymentReceived {
                        amount: rng.range(1000, 20_000),
                    })
                } else {
                    Kind::TopUp(proto::TopUp {
                        amount: 5000,
                        balance_after: rng.range(5000, 50_000),
                    })
                };
                WireEvent::Account(proto::AccountEvent {
                    event_id: format!("crm-{seed}-{i}"),
                    subscriber: subscriber(w.pick_subscriber()).to_string(),
                    event_time_ms: t,
                    kind: Some(kind),
                })
            } else {
                let mut m = proto::CallDetailRecord::default();
                w.next_cdr(t, &mut m);
                m.event_time_ms = m.event_time_ms.min(end);
                WireEvent::Cdr(m)
            }
        })
        .collect()
}

fn producer(cfg: &Config) -> Result<rdkafka::producer::FutureProducer, BenchError> {
    Ok(rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", &cfg.kafka.brokers)
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .create()?)
}

/// A fresh embedded broker with every topic, and a config pointing at it.
fn fresh_broker(
    cfg: &Config,
    partitions: i32,
) -> Result<(crate::kafka::embedded::EmbeddedBroker, Config), BenchError> {
    let mut cfg = cfg.clone();
    let broker = crate::live::start_broker(&cfg, partitions)?;
    cfg.kafka.brokers = broker.bootstrap_servers();
    cfg.kafka.input_format = crate::config::Format::Protobuf;
    cfg.kafka.ticket_format = crate::config::Format::Protobuf;
    cfg.kafka.group_id = format!("churnwatch-bench-{}", std::process::id());
    cfg.http.listen = String::new();
    Ok((broker, cfg))
}

/// Sum of the end offsets of the input topics, after checking every partition starts at 0.
fn end_offsets(cfg: &Config, partitions: i32) -> Result<i64, BenchError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", &cfg.kafka.brokers)
        .create()?;
    let mut total = 0;
    for topic in [&cfg.kafka.topics.cdr, &cfg.kafka.topics.account] {
        for p in 0..partitions {
            let (low, high) = c.fetch_watermarks(topic, p, Duration::from_secs(10))?;
            if low != 0 {
                return Err(BenchError::Check(format!(
                    "{topic}/{p} starts at offset {low}: the broker dropped records"
                )));
            }
            total += high;
        }
    }
    Ok(total)
}

/// A running service: its shared state, the stop switch and the task.
struct Running {
    shared: crate::kafka::service::Shared,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), crate::kafka::service::ServiceError>>,
}

fn start_service(cfg: &Config) -> Running {
    let shared = crate::kafka::service::Shared::default();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (reload_tx, reload) = tokio::sync::watch::channel(std::sync::Arc::new(cfg.clone()));
    let (cfg, s) = (cfg.clone(), shared.clone());
    let task = tokio::spawn(async move {
        let _keep = reload_tx;
        crate::kafka::service::run(cfg, vec![], s, reload, async move {
            let _ = stopped.await;
        })
        .await
    });
    Running { shared, stop, task }
}

impl Running {
    /// Records whose offsets are stored: every ticket they raised is acknowledged.
    fn settled(&self) -> u64 {
        self.shared.metrics.processing_latency.get_sample_count()
    }

    fn consumed(&self, cfg: &Config) -> u64 {
        let m = &self.shared.metrics.records_consumed;
        m.with_label_values(&[cfg.kafka.topics.cdr.as_str()]).get()
            + m.with_label_values(&[cfg.kafka.topics.account.as_str()])
                .get()
    }

    fn tickets(&self) -> u64 {
        use prometheus::core::Collector;
        self.shared
            .metrics
            .tickets
            .collect()
            .iter()
            .flat_map(|f| f.get_metric())
            .map(|m| m.get_counter().get_value() as u64)
            .sum()
    }

    /// Cumulative latency buckets `(upper bounds, counts)`.
    fn buckets(&self) -> (Vec<f64>, Vec<u64>) {
        use prometheus::core::Collector;
        let fams = self.shared.metrics.processing_latency.collect();
        let mut bounds = Vec::new();
        let mut counts = Vec::new();
        for b in fams
            .iter()
            .flat_map(|f| f.get_metric())
            .flat_map(|m| m.get_histogram().get_bucket())
        {
            bounds.push(b.upper_bound());
            counts.push(b.cumulative_count());
        }
        (bounds, counts)
    }

    /// Waits (polling the counter) until `n` records are settled, or fails after `limit`.
    async fn wait_settled(&self, n: u64, limit: Duration) -> Result<(), BenchError> {
        let deadline = Instant::now() + limit;
        while self.settled() < n {
            if Instant::now() > deadline {
                return Err(BenchError::Check(format!(
                    "only {} of {n} records settled within {}s",
                    self.settled(),
                    limit.as_secs()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(())
    }

    async fn stop(self) -> Result<(), BenchError> {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(BenchError::Check(format!("service: {e}"))),
            Err(e) => Err(BenchError::Check(format!("service task: {e}"))),
        }
    }
}

/// Runs the end-to-end benchmark.
pub async fn run_e2e(opts: &E2eOptions, cfg: &Config) -> Result<E2eReport, BenchError> {
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Throughput: everything produced first, then the service started and timed.
    let (broker, cfg1) = fresh_broker(cfg, opts.partitions)?;
    let events = wire_workload(opts.subscribers, opts.events, 2 * 86_400_000, opts.seed);
    let p = producer(&cfg1)?;
    let t0 = Instant::now();
    let produced = crate::live::stream(&p, &cfg1, &events, opts.partitions, 0, &stop_rx).await;
    let produce_secs = t0.elapsed().as_secs_f64();
    drop(events);
    drop(p);
    let end = end_offsets(&cfg1, opts.partitions)?;
    if end != produced as i64 {
        return Err(BenchError::Check(format!(
            "produced {produced} records but the partitions end at {end} in total"
        )));
    }
    let t1 = Instant::now();
    let svc = start_service(&cfg1);
    let mut consumed_secs = 0.0;
    let deadline = t1 + Duration::from_secs(1800);
    while svc.settled() < produced {
        if consumed_secs == 0.0 && svc.consumed(&cfg1) >= produced {
            consumed_secs = t1.elapsed().as_secs_f64();
        }
        if Instant::now() > deadline {
            return Err(BenchError::Check(format!(
                "only {} of {produced} records settled in 30 minutes",
                svc.settled()
            )));
        }
        tokio::time::sleep(POLL).await;
    }
    let secs = t1.elapsed().as_secs_f64();
    if consumed_secs == 0.0 {
        consumed_secs = secs;
    }
    let tickets = svc.tickets();
    svc.stop().await?;
    drop(broker);

    let mut report = E2eReport {
        opts: opts.clone(),
        produced,
        produce_secs,
        end_offsets: end,
        secs,
        consumed_secs,
        tickets,
        latency: None,
    };
    if opts.latency_secs > 0 {
        let rate = (report.events_per_sec() / 2.0).max(1.0) as u64;
        report.latency = Some(latency_run(opts, cfg, rate).await?);
    }
    Ok(report)
}

/// The service first, then records produced at a steady `rate`; latency quantiles of the
/// records after the first fifth.
async fn latency_run(
    opts: &E2eOptions,
    cfg: &Config,
    rate: u64,
) -> Result<LatencyReport, BenchError> {
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (broker, cfg2) = fresh_broker(cfg, opts.partitions)?;
    let count = rate * opts.latency_secs;
    let events = wire_workload(opts.subscribers, count, 3_600_000, opts.seed + 1);
    let svc = start_service(&cfg2);
    let p = producer(&cfg2)?;
    let feeder = {
        let cfg2 = cfg2.clone();
        let partitions = opts.partitions;
        tokio::spawn(async move {
            let t = Instant::now();
            let n = crate::live::stream(&p, &cfg2, &events, partitions, rate, &stop_rx).await;
            (n, t.elapsed().as_secs_f64())
        })
    };
    let warm = count / 5;
    let limit = Duration::from_secs(opts.latency_secs * 4 + 120);
    svc.wait_settled(warm, limit).await?;
    let (bounds, before) = svc.buckets();
    let (produced, produce_secs) = feeder
        .await
        .map_err(|e| BenchError::Check(format!("producer task: {e}")))?;
    svc.wait_settled(produced, limit).await?;
    let (_, after) = svc.buckets();
    svc.stop().await?;
    drop(broker);
    let diff: Vec<u64> = after
        .iter()
        .zip(&before)
        .map(|(a, b)| a.saturating_sub(*b))
        .collect();
    let total = diff.last().copied().unwrap_or(0);
    let q = |x| histogram_quantile(&bounds, &diff, total, x).unwrap_or((0.0, 0.0, 0.0));
    Ok(LatencyReport {
        rate,
        produced,
        produce_secs,
        measured: total,
        p50: q(0.5),
        p99: q(0.99),
    })
}

impl fmt::Display for E2eReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.opts;
        writeln!(
            f,
            "end-to-end benchmark (embedded broker, {} partitions)",
            o.partitions
        )?;
        writeln!(f, "  subscribers             {:>12}", o.subscribers)?;
        writeln!(
            f,
            "  produced first          {:>12} records in {:.1}s; partitions end at {} in total",
            self.produced, self.produce_secs, self.end_offsets
        )?;
        writeln!(f, "  all consumed after      {:>11.2}s", self.consumed_secs)?;
        writeln!(
            f,
            "  all settled after       {:>11.2}s (tickets acknowledged, offsets stored)",
            self.secs
        )?;
        writeln!(f, "  tickets                 {:>12}", self.tickets)?;
        writeln!(
            f,
            "  throughput              {:>12.0} events/s",
            self.events_per_sec()
        )?;
        if let Some(l) = &self.latency {
            writeln!(
                f,
                "  half-rate run           {:>12} events/s target, {} records in {:.1}s ({:.0}/s)",
                l.rate,
                l.produced,
                l.produce_secs,
                l.produced as f64 / l.produce_secs.max(1e-9)
            )?;
            for (name, (v, lo, hi)) in [("p50", l.p50), ("p99", l.p99)] {
                writeln!(
                    f,
                    "  latency {name}             {:>10.2}ms (bucket {:.1}..{:.1} ms, {} records)",
                    v * 1e3,
                    lo * 1e3,
                    hi * 1e3,
                    l.measured
                )?;
            }
        }
        writeln!(f)?;
        writeln!(
            f,
            "e2e_events_per_sec {:.0} events/s",
            self.events_per_sec()
        )?;
        if let Some(l) = &self.latency {
            writeln!(f, "e2e_half_rate {} events/s", l.rate)?;
            writeln!(f, "e2e_latency_p50_ms {:.2} ms", l.p50.0 * 1e3)?;
            writeln!(f, "e2e_latency_p99_ms {:.2} ms", l.p99.0 * 1e3)?;
            writeln!(f, "e2e_latency_p99_bucket_upper_ms {:.1} ms", l.p99.2 * 1e3)?;
        }
        Ok(())
    }
}
