//! Issue 25: a broker frozen mid-stream must not move a partition's event-time clock past
//! the input it has not yet delivered. Run as the user ran it: a broker in its own
//! process (the embedded one, `churnwatch broker`, or Tansu), one `churnwatch run` with the
//! product's `kafka.idle_timeout_ms` and `kafka.session_timeout_ms` (the harness turns
//! idleness off and shortens the session for the other tests), and `generate`'s workload
//! produced at a steady rate by an idempotent producer. A third of the way in, the broker
//! is stopped (SIGSTOP) for 20 s of wall time while the producer keeps producing into its
//! queue, then continued (SIGCONT).
//!
//! Asserted: no record is dead-lettered (none as late: the workload holds no record later
//! than the allowed lateness, so a late dead letter means the clock moved past an input the
//! broker had not delivered yet), and the tickets on the ticket topic (last version per id)
//! are the replay engine's on the same records, none missing, invented or changed.
//!
//! Synchronisation is by observed progress: production is paced by a clock (sleeping only
//! to keep the rate), the freeze starts at a record count and lasts a wall-clock time, and
//! "done" means the group has committed the log end of every input partition (from the
//! producer's delivery reports). Nothing here prints a subscriber number.

#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/process.rs"]
mod process;
#[path = "common/reference.rs"]
mod reference;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use churnwatch::config::Config;
use churnwatch::proto::CareTicket;
use churnwatch::tools::workload::WireEvent;
use cluster::{Broker, Kind, Service, ServiceOptions};
use prost::Message as _;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer};
use reference::{diff, finals, reference};

/// Records a second, as the producer.
const RATE: f64 = 25_000.0;
/// How long the broker is stopped.
const FREEZE: Duration = Duration::from_secs(20);
const PARTITIONS: i32 = 4;
const DAYS: u32 = 110;

/// The broker stopped (SIGSTOP) until dropped (SIGCONT), so a failing test never leaves it
/// stopped.
struct Frozen(libc::pid_t);

impl Frozen {
    fn stop(pid: u32) -> Frozen {
        let pid = pid as libc::pid_t;
        // SAFETY: kill(2) on a child process of ours, which is not reaped before the
        // Broker that owns it drops (after this guard).
        let rc = unsafe { libc::kill(pid, libc::SIGSTOP) };
        assert_eq!(rc, 0, "SIGSTOP: {}", std::io::Error::last_os_error());
        Frozen(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        // SAFETY: as in `Frozen::stop`.
        let rc = unsafe { libc::kill(self.0, libc::SIGCONT) };
        if rc != 0 && !std::thread::panicking() {
            panic!("SIGCONT: {}", std::io::Error::last_os_error());
        }
    }
}

/// What production took: when the freeze began and ended (from the start of production),
/// and when the last record was handed to the producer.
struct Produced {
    freeze_from: Duration,
    freeze_to: Duration,
    queued_all: Duration,
    acknowledged_all: Duration,
}

/// Produces `events` in order, each keyed by its subscriber onto its murmur2 partition, at
/// `RATE` records a second by the clock; after a third of them stops the broker for
/// `FREEZE` (producing on meanwhile), then continues it; returns once the broker has
/// acknowledged every record.
fn produce_with_freeze(b: &Broker, events: &[WireEvent]) -> Produced {
    let prod = b.producer(&[
        ("enable.idempotence", "true"),
        // A 20 s freeze at 25k records/s queues 500k records (~100 MB): room for all of
        // them, and none timed out while the broker is stopped.
        ("queue.buffering.max.messages", "2000000"),
        ("queue.buffering.max.kbytes", "2097151"),
        ("message.timeout.ms", "600000"),
    ]);
    let n = &b.names;
    let freeze_at = events.len() / 3;
    let start = Instant::now();
    let mut frozen: Option<Frozen> = None;
    let (mut freeze_from, mut freeze_to) = (None, None);
    let mut queued_all = None;
    let mut sent = 0;
    loop {
        let now = start.elapsed();
        if let Some(from) = freeze_from {
            if freeze_to.is_none() && now >= from + FREEZE {
                drop(frozen.take()); // SIGCONT
                freeze_to = Some(now);
            }
        }
        if sent == events.len() && freeze_to.is_some() {
            break;
        }
        let due = ((now.as_secs_f64() * RATE) as usize).min(events.len());
        while sent < due {
            if sent == freeze_at && freeze_from.is_none() {
                frozen = Some(Frozen::stop(b.pid()));
                freeze_from = Some(start.elapsed());
            }
            let (topic, sub, bytes) = match &events[sent] {
                WireEvent::Cdr(c) => (&n.cdr, &c.subscriber, c.encode_to_vec()),
                WireEvent::Account(a) => (&n.account, &a.subscriber, a.encode_to_vec()),
            };
            let p = churnwatch::tools::live::partition_of(sub, b.partitions);
            let mut rec = BaseRecord::to(topic).key(sub).payload(&bytes).partition(p);
            loop {
                match prod.send(rec) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        rec = r;
                        std::thread::sleep(Duration::from_millis(1)); // the queue drains
                    }
                    Err((e, _)) => panic!("producing record {sent}: {e}"),
                }
            }
            sent += 1;
        }
        if sent == events.len() && queued_all.is_none() {
            queued_all = Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2)); // pacing: the next records fall due
    }
    prod.flush(Duration::from_secs(300)).unwrap();
    let failed = b.failed_deliveries();
    assert_eq!(failed, 0, "records the broker did not take");
    Produced {
        freeze_from: freeze_from.unwrap(),
        freeze_to: freeze_to.unwrap(),
        queued_all: queued_all.unwrap(),
        acknowledged_all: start.elapsed(),
    }
}

/// `churnwatch_dead_lettered_total{reason="late"}`, summed over topics.
fn late_dead_letters(svc: &Service) -> f64 {
    let Some((200, text)) = svc.get("/metrics") else {
        panic!("{}: no metrics", svc.proc.name);
    };
    text.lines()
        .filter(|l| {
            l.starts_with("churnwatch_dead_lettered_total{") && l.contains("reason=\"late\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits until the group has committed the log end of every input partition.
fn until_caught_up(b: &Broker, svc: &mut Service, within: Duration) {
    let offsets = b.offsets();
    let deadline = Instant::now() + within;
    loop {
        let (c, e) = offsets.progress();
        if c == e {
            return;
        }
        assert!(svc.proc.alive(), "{} exited", svc.proc.name);
        assert!(
            Instant::now() < deadline,
            "committed {c} of {e} records ({} consumed)",
            svc.consumed()
        );
        std::thread::sleep(Duration::from_millis(200)); // committed-offset poll
    }
}

/// Missing (in `want` only), invented (in `got` only) and changed tickets.
fn differences(
    got: &BTreeMap<String, CareTicket>,
    want: &BTreeMap<String, CareTicket>,
) -> (usize, usize, usize) {
    let missing = want.keys().filter(|id| !got.contains_key(*id)).count();
    let invented = got.keys().filter(|id| !want.contains_key(*id)).count();
    let changed = want
        .iter()
        .filter(|(id, t)| got.get(*id).is_some_and(|g| g != *t))
        .count();
    (missing, invented, changed)
}

fn broker_freeze(kind: Kind, subscribers: usize) {
    let started = Instant::now();
    let events = reference::population(subscribers, DAYS, 25, PARTITIONS);
    let want = reference(&Config::default(), &events, PARTITIONS).finals();
    assert!(want.len() >= subscribers / 50, "{} tickets", want.len());
    let prepared = started.elapsed();

    let b = Broker::start(kind, "freeze", PARTITIONS);
    // The product's timeouts, as the user ran it: with the harness's 6 s session
    // the group coordinator drops the member during the freeze, and the service only
    // starts again, from its committed offsets, once the broker holds every input.
    let opts = ServiceOptions {
        default_idle_timeout: true,
        default_session_timeout: true,
    };
    let mut svc = b.service_with("run", opts);
    // Consuming live when the stream starts, as the service was.
    let deadline = Instant::now() + Duration::from_secs(60);
    while svc.metric("churnwatch_assigned_partitions") != f64::from(PARTITIONS) {
        assert!(svc.proc.alive(), "{} exited", svc.proc.name);
        assert!(Instant::now() < deadline, "partitions never assigned");
        std::thread::sleep(Duration::from_millis(100)); // metrics poll
    }
    let p = produce_with_freeze(&b, &events);
    let produced = started.elapsed();
    // A safety limit, not a timing.
    until_caught_up(&b, &mut svc, Duration::from_secs(900));
    let caught_up = started.elapsed();
    let late = late_dead_letters(&svc) as u64;
    let dead = svc.metric("churnwatch_dead_lettered_total") as u64;
    let consumed = svc.consumed();
    svc.stop();

    let got = finals(b.tickets().iter());
    let (missing, invented, changed) = differences(&got, &want);
    let s = |d: Duration| d.as_secs_f64();
    println!(
        "broker freeze on {kind:?}: {} records ({subscribers} subscribers, {DAYS} days), \
         {consumed} consumed; workload and reference {:.1}s; produced at {RATE} records/s, \
         broker stopped {:.1}s..{:.1}s, all queued {:.1}s, all acknowledged {:.1}s \
         (finished at {:.1}s); caught up at {:.1}s; dead letters {dead} ({late} late); \
         tickets {} (reference {}): {missing} missing, {invented} invented, {changed} \
         changed; {:.1}s",
        events.len(),
        s(prepared),
        s(p.freeze_from),
        s(p.freeze_to),
        s(p.queued_all),
        s(p.acknowledged_all),
        s(produced),
        s(caught_up),
        got.len(),
        want.len(),
        s(started.elapsed()),
    );
    assert!(
        late == 0 && dead == 0,
        "{late} records dead-lettered as late ({dead} dead letters in all) after a {}s \
         broker freeze; tickets: {missing} missing, {invented} invented, {changed} changed",
        FREEZE.as_secs()
    );
    let d = diff(&got, &want);
    assert!(
        d.is_empty(),
        "{} of {} reference tickets differ ({missing} missing, {invented} invented, \
         {changed} changed; {late} late dead letters):\n{d}",
        missing + invented + changed,
        want.len()
    );
}

#[test]
fn broker_freeze_embedded() {
    let _one = cluster::serial();
    broker_freeze(Kind::Embedded, 1_000);
}

#[test]
fn broker_freeze_tansu() {
    let _one = cluster::serial();
    // Tansu takes the one-record batches `Broker::producer` sends it at ~850 records/s
    // (96k records were acknowledged 115 s into production), and slower as its log grows:
    // 500 subscribers (~240k records) did not finish within the producer's 5 minutes.
    // 200 subscribers (~96k records) still queue most of the input behind the freeze.
    broker_freeze(Kind::Tansu, 200);
}
