//! Issue 11: state survives crashes, restarts and rebalances. Run as a platform engineer
//! would: a broker in its own process, `churnwatch run` as child processes configured by
//! `CHURNWATCH__*` variables, SIGKILL and SIGTERM from outside. Each scenario runs on the
//! embedded broker (`churnwatch broker`) and on Tansu, an independent Kafka implementation
//! (`$CHURNWATCH_TANSU`, or whatever `.ci/tansu` fetches).
//!
//! Synchronisation is by observed progress, never by sleeping: a run is killed once the
//! group's committed offsets pass a point and `churnwatch_records_consumed_total` a number
//! of records more; "done" means the group's committed offsets equal the log end of every
//! input partition (read by a client of the group that never joins it); a rebalance is over
//! when the survivor reports all partitions assigned and `/readyz` answers 200. Tickets are
//! read back, after the last service has stopped, up to end markers the test appends, and
//! compared (last version per ticket id) with the replay engine fed the same input in
//! event-time order without the end-of-input finish. Every run must dead-letter nothing
//! (the inputs are clean and never later than the allowed lateness), so a merge gone wrong
//! is not mistaken for lost state. Nothing here prints a subscriber number.

#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/process.rs"]
mod process;
#[path = "common/rebalance_workload.rs"]
mod rebalance_workload;
#[path = "common/reference.rs"]
mod reference;

use std::time::{Duration, Instant};

use churnwatch::config::Config;
use churnwatch::proto::CareTicket;
use churnwatch::tools::workload::{Rng, WireEvent};
use cluster::{Broker, Kind, Placement, Service};
use rebalance_workload::rebalance_workload;
use reference::{counts, diff, finals, reference};

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;
/// `kafka.checkpoint_interval_ms` of every service the tests start.
const CHECKPOINT_MS: f64 = 1_000.0;
const DROP_RULES: [&str; 3] = ["voice_drop", "data_drop", "spend_drop"];

/// The highest consumption rate seen, from `churnwatch_records_consumed_total` samples at
/// least half a second apart.
#[derive(Default)]
struct Rate {
    last: Option<(Instant, u64)>,
    peak: f64,
}

impl Rate {
    fn sample(&mut self, consumed: u64) {
        let now = Instant::now();
        match self.last {
            Some((t, n)) if now - t >= Duration::from_millis(500) => {
                let r = consumed.saturating_sub(n) as f64 / (now - t).as_secs_f64();
                self.peak = self.peak.max(r);
                self.last = Some((now, consumed));
            }
            Some(_) => {}
            None => self.last = Some((now, consumed)),
        }
    }
}

/// Runs `svc` until the group has committed the log end of every input partition.
fn until_caught_up(b: &Broker, svc: &mut Service, rate: &mut Rate, within: Duration) {
    let offsets = b.offsets();
    let deadline = Instant::now() + within;
    loop {
        rate.sample(svc.consumed());
        let (c, e) = offsets.progress();
        if c == e {
            svc.assert_no_dead_letters();
            return;
        }
        assert!(svc.proc.alive(), "{} exited", svc.proc.name);
        assert!(Instant::now() < deadline, "committed {c} of {e} records");
        std::thread::sleep(Duration::from_millis(100)); // committed-offset poll
    }
}

fn rules_of(t: &CareTicket) -> Vec<&str> {
    t.signals.iter().map(|s| s.rule.as_str()).collect()
}

/// **Crash loop.** A population of `subscribers` over 60 days (habits, planted journeys
/// with drops, silences and bill cycles that need weeks of state, late and duplicate
/// delivery; ~284k records for 1,000) is produced first. `churnwatch run` is then SIGKILLed
/// `KILLS` times, each once the group has committed past a random point of the next sixth
/// of the input and the run has consumed a random number of records more (seeded), and
/// restarted; a final run goes on until the group has committed every input offset and is
/// stopped with SIGTERM.
///
/// Asserted: the final tickets (last version per id) equal the reference, so no ticket is
/// lost or wrong; duplicates (emissions beyond the reference's count for the id) are
/// printed and bounded. The bound: a crash re-reads at most the input since the last
/// checkpoint of each partition, i.e. what a checkpoint interval covers. At the highest
/// observed consumption rate R (records/s, the whole process, so at least any one
/// partition's), a partition has read at most W = 2 x R x interval records since its last
/// completed checkpoint (the factor 2 covers a checkpoint still being written when the
/// process dies). Re-reading those repeats at most the tickets the reference emits within
/// W consecutive records of that partition; summed over partitions and multiplied by the
/// kills, that bounds the duplicates.
fn crash_loop(kind: Kind, subscribers: usize) {
    const KILLS: usize = 6;
    let started = Instant::now();
    let partitions = 4;
    let b = Broker::start(kind, "crash", partitions);
    let events = reference::population(subscribers, 60, 5, partitions);
    let want = reference(&Config::default(), &events, partitions);
    let expected = want.finals();
    assert!(
        expected.len() >= subscribers / 50,
        "{} tickets",
        expected.len()
    );
    b.produce(&events);
    println!("produced at {:.1}s", started.elapsed().as_secs_f64());
    let n = events.len() as i64;
    let mut rng = Rng::new(0x0dd_c0ffee);
    let mut rate = Rate::default();
    let offsets = b.offsets();
    let segment = n / (KILLS as i64 + 1);
    for k in 0..KILLS {
        // Killed once the group has committed past a random point of the k-th segment of
        // the input (so a restart has state to restore), and then a random number of
        // records more (so it dies between checkpoints, with work to redo).
        let target = segment * k as i64 + rng.range(0, segment);
        let extra = rng.range(0, n / 50) as u64;
        let mut svc = b.service(&format!("run-{k}"));
        // A safety limit, not a timing: on Tansu a run restores, rejoins the group and
        // catches up through day closes at a few hundred records a second on a loaded
        // 2-core machine.
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut from = None;
        let (committed, consumed) = loop {
            let consumed = svc.consumed();
            rate.sample(consumed);
            let (c, e) = offsets.progress();
            if from.is_none() && c >= target {
                from = Some(consumed);
            }
            if let Some(base) = from {
                if consumed >= base + extra || c == e {
                    break (c, consumed);
                }
            }
            assert!(svc.proc.alive(), "run {k} exited");
            assert!(Instant::now() < deadline, "run {k}: committed {c} of {e}");
            std::thread::sleep(Duration::from_millis(20)); // metrics and offsets poll
        };
        svc.assert_no_dead_letters();
        svc.crash();
        println!(
            "kill {k} at {:.1}s: {consumed} records consumed by this run, {committed} of {n} committed",
            started.elapsed().as_secs_f64()
        );
    }
    let mut svc = b.service("final");
    // A safety limit, not a timing: each restart may wait out a lagging input (up to 30 s).
    until_caught_up(&b, &mut svc, &mut rate, Duration::from_secs(360));
    svc.stop();

    let emitted = b.tickets();
    let got = finals(emitted.iter());
    let (have, should) = (counts(emitted.iter()), want.counts());
    let duplicates: usize = have
        .iter()
        .map(|(id, k)| k.saturating_sub(should.get(id).copied().unwrap_or(0)))
        .sum();
    let w = (2.0 * rate.peak * CHECKPOINT_MS / 1000.0).ceil() as usize;
    let bound = KILLS * want.max_in_windows(w.max(1), partitions);
    println!(
        "crash loop on {kind:?}: {n} records, {KILLS} kills, {} tickets ({} emissions, reference {}); \
         duplicates {duplicates}, bound {bound} (peak {:.0} records/s, W = {w}); {:.1}s",
        got.len(),
        emitted.len(),
        want.emissions.len(),
        rate.peak,
        started.elapsed().as_secs_f64()
    );
    let d = diff(&got, &expected);
    assert!(
        d.is_empty(),
        "final tickets differ from the reference:\n{d}"
    );
    assert!(duplicates <= bound, "{duplicates} duplicates > {bound}");
}

/// The streak ticket of `sub` among final tickets.
fn streak_of<'a>(
    tickets: &'a std::collections::BTreeMap<String, CareTicket>,
    sub: &str,
) -> Option<&'a CareTicket> {
    tickets
        .values()
        .find(|t| t.subscriber == sub && rules_of(t).contains(&"offnet_forwarding_streak"))
}

/// **Rebalance.** Two instances in one group split four partitions. Four days of
/// forwarding are consumed and committed by both; one instance is stopped (SIGTERM); once
/// the survivor owns all four partitions the fifth day arrives. Every streak must raise
/// its ticket, do-not-disturb subscribers' in the no-contact queue, capped subscribers'
/// marked `contact_cap`: all of it equal to the reference engine on the same input.
/// Both members are ready before one leaves, and the survivor is ready after.
///
/// With `Placement::LibrdkafkaDefault` the producer is librdkafka's own default
/// (`consistent_random`, CRC32, as confluent-kafka and rust-rdkafka producers are): the
/// service learns it (`kafka.partitioner = "auto"`) and flags no record.
fn rebalance(kind: Kind, placement: Placement) {
    let started = Instant::now();
    let partitions = 4;
    let w = rebalance_workload(partitions, placement);
    let all: Vec<WireEvent> = w.before.iter().chain(&w.after).cloned().collect();
    let cfg = Config::default();
    let expected = reference(&cfg, &all, partitions).finals();
    for (group, subs) in [
        ("streak", &w.streak),
        ("dnd", &w.dnd),
        ("capped", &w.capped),
    ] {
        for s in subs.iter() {
            let t = streak_of(&expected, s)
                .unwrap_or_else(|| panic!("reference: no {group} streak ticket"));
            match group {
                "dnd" => assert_eq!(
                    t.queue, cfg.detect.routing.no_contact_queue,
                    "reference dnd"
                ),
                "capped" => assert_eq!(t.no_contact_reason, "contact_cap", "reference capped"),
                _ => assert_eq!(t.no_contact_reason, "", "reference streak"),
            }
        }
    }

    let mut b = Broker::start(kind, "rebalance", partitions);
    b.placement = placement;
    let mut one = b.service("one");
    let mut two = b.service("two");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (x, y) = (
            one.metric("churnwatch_assigned_partitions"),
            two.metric("churnwatch_assigned_partitions"),
        );
        if x > 0.0 && y > 0.0 && x + y == partitions as f64 {
            break;
        }
        assert!(one.proc.alive() && two.proc.alive(), "an instance exited");
        assert!(
            Instant::now() < deadline,
            "partitions never split: {x} + {y}"
        );
        std::thread::sleep(Duration::from_millis(100)); // metrics poll
    }
    // Account events first, consumed before any CDR: the service merges its inputs by
    // event time only while a topic has records buffered, and both are at their log end
    // here, so a CDR fetched before an earlier account event would be processed first.
    let (accounts, cdrs): (Vec<WireEvent>, Vec<WireEvent>) = w
        .before
        .iter()
        .cloned()
        .partition(|e| matches!(e, WireEvent::Account(_)));
    assert!(accounts.iter().map(|e| e.time_ms()).max() < cdrs.iter().map(|e| e.time_ms()).min());
    b.produce(&accounts);
    b.offsets()
        .wait_caught_up(&mut [&mut one, &mut two], Duration::from_secs(60));
    b.produce(&cdrs);
    b.offsets()
        .wait_caught_up(&mut [&mut one, &mut two], Duration::from_secs(60));
    assert!(
        one.consumed() > 0 && two.consumed() > 0,
        "both instances consumed"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(one.ready() && two.ready()) {
        let says = |s: &Service| s.get("/readyz").map(|(_, b)| b).unwrap_or_default();
        assert!(
            Instant::now() < deadline,
            "not ready on both members: {} | {}",
            says(&one),
            says(&two)
        );
        std::thread::sleep(Duration::from_millis(100)); // readiness poll
    }
    two.stop();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(one.ready() && one.metric("churnwatch_assigned_partitions") == partitions as f64) {
        assert!(one.proc.alive(), "the survivor exited");
        assert!(
            Instant::now() < deadline,
            "the survivor never took every partition"
        );
        std::thread::sleep(Duration::from_millis(100)); // metrics poll
    }
    b.produce(&w.after);
    b.offsets()
        .wait_caught_up(&mut [&mut one], Duration::from_secs(60));
    let (status, body) = one.get("/readyz").unwrap_or_default();
    assert_eq!(status, 200, "the survivor is not ready: {body}");
    assert!(!body.contains("warning"), "{body}");
    let mismatches = one.metric("churnwatch_partition_key_mismatches_total");
    assert_eq!(mismatches, 0.0, "records flagged as on the wrong partition");
    one.stop();

    let got = finals(b.tickets().iter());
    let raised = |subs: &[String]| {
        subs.iter()
            .filter(|s| streak_of(&got, s) == streak_of(&expected, s))
            .count()
    };
    println!(
        "rebalance on {kind:?}: streak tickets as the reference {}/{}, do-not-disturb {}/{}, capped {}/{}; {:.1}s",
        raised(&w.streak),
        w.streak.len(),
        raised(&w.dnd),
        w.dnd.len(),
        raised(&w.capped),
        w.capped.len(),
        started.elapsed().as_secs_f64()
    );
    let d = diff(&got, &expected);
    assert!(
        d.is_empty(),
        "final tickets differ from the reference:\n{d}"
    );
}

/// **Long history.** 56 days of a 300-subscriber population (~80k records); the first drop ticket
/// (voice_drop, data_drop or spend_drop; here two data drops) after day 40 closes day D,
/// and needs the weeks of baseline before it. Everything up to where day D-1 has closed but D has not is
/// produced and processed, the service stopped (SIGTERM) and restarted, and the rest
/// produced: the tickets, the drop tickets on day D among them, must equal the reference
/// without a restart. One sentinel per partition at the split makes every partition's
/// watermark stop at the same time, so the tickets out before the restart are exactly the
/// reference's on that prefix (checked too).
fn long_history(kind: Kind) {
    let started = Instant::now();
    let partitions = 4;
    let cfg = Config::default();
    let mut events = reference::population(300, 56, 1, partitions);
    let full = reference(&cfg, &events, partitions).finals();
    let is_drop = |t: &CareTicket| rules_of(t).iter().any(|r| DROP_RULES.contains(r));
    let drop_at = full
        .values()
        .filter(|t| is_drop(t) && t.created_time_ms >= reference::day_start(40))
        .map(|t| t.created_time_ms)
        .min()
        .expect("a drop ticket after day 40");
    let drops: Vec<&CareTicket> = full
        .values()
        .filter(|t| is_drop(t) && t.created_time_ms == drop_at)
        .collect();
    // A ticket created at T is raised when day D = [T - 24 h, T) closes, i.e. once event
    // time passes T plus the allowed lateness; D-1 closed when it passed T - 24 h plus it.
    // The restart comes between: after the last record before T + lateness.
    let lateness = i64::from(cfg.detect.engine.allowed_lateness_hours) * HOUR;
    let split = events
        .iter()
        .position(|e| e.time_ms() >= drop_at + lateness)
        .unwrap();
    let mut prefix = events[..split].to_vec();
    let end = prefix.iter().map(|e| e.time_ms()).max().unwrap();
    assert!(
        end >= drop_at - DAY + lateness,
        "day D-1 closes before the restart"
    );
    prefix.extend(reference::sentinels("split", end, partitions));
    let expected_prefix = reference(&cfg, &prefix, partitions).finals();
    assert!(
        drops
            .iter()
            .all(|t| !expected_prefix.contains_key(&t.ticket_id)),
        "the drop tickets come after the restart"
    );
    let rest = events.split_off(split);
    events = prefix.clone();
    events.extend(rest);
    let expected = reference(&cfg, &events, partitions).finals();

    let b = Broker::start(kind, "history", partitions);
    b.produce(&prefix);
    let mut rate = Rate::default();
    let mut svc = b.service("before");
    until_caught_up(&b, &mut svc, &mut rate, Duration::from_secs(120));
    svc.stop();
    let d = diff(&finals(b.tickets().iter()), &expected_prefix);
    assert!(
        d.is_empty(),
        "before the restart (premise), tickets differ:\n{d}"
    );
    b.produce(&events[prefix.len()..]);
    let mut svc = b.service("after");
    until_caught_up(&b, &mut svc, &mut rate, Duration::from_secs(120));
    svc.stop();

    let got = finals(b.tickets().iter());
    let same = drops
        .iter()
        .filter(|t| got.get(&t.ticket_id) == Some(t))
        .count();
    println!(
        "long history on {kind:?}: {} records, restart {} records in; drop tickets on day D as the reference {same}/{}; {:.1}s",
        events.len(),
        prefix.len(),
        drops.len(),
        started.elapsed().as_secs_f64()
    );
    let d = diff(&got, &expected);
    assert_eq!(same, drops.len(), "drop tickets on day D differ:\n{d}");
    assert!(
        d.is_empty(),
        "final tickets differ from the reference:\n{d}"
    );
}

#[test]
fn crash_loop_embedded() {
    let _one = cluster::serial();
    crash_loop(Kind::Embedded, 1_000);
}

#[test]
fn crash_loop_tansu() {
    let _one = cluster::serial();
    // Tansu's in-memory store lists every batch of a partition on each fetch, and the
    // producer writes one record a batch there (see `Broker::produce_to`), so its fetch
    // rate falls as the log grows: with 284k records it served a few hundred a second and
    // left whole partitions unfetched for minutes. A smaller population keeps every
    // journey kind and the six kills; the embedded broker runs the full one.
    crash_loop(Kind::Tansu, 400);
}

#[test]
fn rebalance_embedded() {
    let _one = cluster::serial();
    rebalance(Kind::Embedded, Placement::Murmur2);
}

#[test]
fn rebalance_tansu() {
    let _one = cluster::serial();
    rebalance(Kind::Tansu, Placement::Murmur2);
}

#[test]
fn rebalance_librdkafka_default_partitioner_embedded() {
    let _one = cluster::serial();
    rebalance(Kind::Embedded, Placement::LibrdkafkaDefault);
}

#[test]
fn rebalance_librdkafka_default_partitioner_tansu() {
    let _one = cluster::serial();
    rebalance(Kind::Tansu, Placement::LibrdkafkaDefault);
}

#[test]
fn long_history_embedded() {
    let _one = cluster::serial();
    long_history(Kind::Embedded);
}

#[test]
fn long_history_tansu() {
    let _one = cluster::serial();
    long_history(Kind::Tansu);
}
