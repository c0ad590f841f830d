//! Issue 23: a partition restoring a large state holds nothing else up. Partition 0's
//! changelog holds a full checkpoint of 2,000,000 subscribers; partition 1 has none, and
//! its inputs hold a population's records. `churnwatch run` (a child process, as a platform
//! engineer runs it) is assigned both. Asserted, while partition 0 is still restoring:
//! partition 1's records are all processed, `/readyz` answers 503 naming partition 0 as
//! restoring, `/metrics` answers with the records left to restore, and SIGTERM ends the
//! process within `drain_timeout_ms` (plus the consumer's close), with partition 1's
//! inputs committed to their log end. Runs on the embedded broker and on Tansu.
//!
//! Synchronisation is by observed state (committed offsets, `/readyz`), never by sleeping.

#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/process.rs"]
mod process;
#[path = "common/reference.rs"]
mod reference;

use std::time::{Duration, Instant};

use churnwatch::config::Config;
use churnwatch::detect::calendar::day_of_date;
use churnwatch::detect::Engine;
use churnwatch::driver::Driver;
use churnwatch::kafka::changelog::writer::Checkpointer;
use churnwatch::tools::bench::{build_history, ENGINE_START};
use churnwatch::tools::workload::WireEvent;
use cluster::{Broker, Kind, Placement};
use rdkafka::consumer::{BaseConsumer, Consumer};

/// Large enough that the restore (about a second per million here) outlasts partition 1's
/// processing several times over.
const SUBSCRIBERS: u64 = 2_000_000;
/// `kafka.drain_timeout_ms` of the services the tests start (see `Broker::service`).
const DRAIN_MS: u64 = 2_000;

/// Writes a full checkpoint of `n` subscribers (a day of history each) to partition 0 of
/// the changelog, as the partition's last owner would have, its inputs at offset 0.
fn checkpoint_partition_zero(b: &Broker, n: u64) {
    let mut cfg = Config::default();
    cfg.kafka.brokers = b.bootstrap.clone();
    cfg.kafka.topics.changelog = b.names.changelog.clone();
    cfg.detect.engine.expected_subscribers = n as usize;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = churnwatch::kafka::client_config(&cfg);
        let partitions = b.partitions as usize;
        let count = |t: &str| {
            let c: BaseConsumer = client.create()?;
            let md = c.fetch_metadata(Some(t), Duration::from_secs(5))?;
            Ok(md
                .topics()
                .first()
                .filter(|t| t.error().is_none())
                .map(|t| t.partitions().len())
                .filter(|&n| n > 0))
        };
        churnwatch::kafka::changelog::topic::ensure(&client, &b.names.changelog, partitions, count)
            .await
            .unwrap();
        let mut driver = Driver::new(Engine::new(&cfg, &[]).unwrap(), i64::MAX);
        let start = chrono::NaiveDate::parse_from_str(ENGINE_START, "%Y-%m-%d").unwrap();
        build_history(&mut driver, n, day_of_date(start), 1);
        let producer = churnwatch::kafka::producer::create(&cfg).unwrap();
        let mut writer = Checkpointer::new(&b.names.changelog, 0, None, true);
        let inputs = vec![(b.names.cdr.clone(), 0), (b.names.account.clone(), 0)];
        let written = writer
            .write(&producer, driver.engine_mut(), inputs)
            .await
            .unwrap();
        assert!(written.records >= n, "{} records written", written.records);
    });
}

/// A population's records whose subscribers are keyed to partition 1 (of 2).
fn partition_one_records() -> Vec<WireEvent> {
    reference::population(300, 20, 11, 2)
        .into_iter()
        .filter(|e| {
            let sub = match e {
                WireEvent::Cdr(c) => &c.subscriber,
                WireEvent::Account(a) => &a.subscriber,
            };
            Placement::Murmur2.partition_of(sub, 2) == 1
        })
        .collect()
}

fn restoring_zero(svc: &cluster::Service) -> bool {
    matches!(svc.get("/readyz"), Some((503, body)) if body.contains("restoring partition 0"))
}

fn restore_while_processing(kind: Kind) {
    let b = Broker::start(kind, "restoring", 2);
    let started = Instant::now();
    checkpoint_partition_zero(&b, SUBSCRIBERS);
    let events = partition_one_records();
    b.produce(&events);
    println!(
        "{kind:?}: checkpoint of {SUBSCRIBERS} subscribers and {} records of partition 1 written in {:.1}s",
        events.len(),
        started.elapsed().as_secs_f64()
    );
    let offsets = b.offsets();
    let mut svc = b.service("restoring");
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut seen_restoring = false;
    loop {
        // Processed first, restoring after: a restore that is on after the records were
        // all processed was on while they were.
        let processed = svc.consumed();
        let restoring = restoring_zero(&svc);
        seen_restoring |= restoring;
        if processed >= events.len() as u64 {
            assert!(
                restoring,
                "partition 1's records were processed only after partition 0's restore ended \
                 (restoring seen before: {seen_restoring})"
            );
            break;
        }
        assert!(svc.proc.alive(), "the service exited");
        assert!(
            Instant::now() < deadline,
            "processed {processed} of {}",
            events.len()
        );
        std::thread::sleep(Duration::from_millis(50)); // metrics poll
    }
    svc.assert_no_dead_letters();
    let left = svc.metric("churnwatch_restore_remaining_records");
    assert!(
        left > 0.0,
        "/metrics gives the records left to restore: {left}"
    );
    assert!(restoring_zero(&svc), "partition 0 still restoring");
    let stopped = Instant::now();
    svc.proc.signal("TERM");
    let status = svc.proc.wait_exit(Duration::from_secs(60));
    let took = stopped.elapsed();
    println!("{kind:?}: stopped {:.2}s after SIGTERM", took.as_secs_f64());
    assert!(status.success(), "exited with {status}");
    assert!(
        took < Duration::from_millis(DRAIN_MS + 3_000),
        "SIGTERM honoured in {took:?}, drain_timeout_ms {DRAIN_MS}"
    );
    let (committed, end) = offsets.progress();
    assert_eq!(
        committed, end,
        "partition 1's inputs committed to their log end by the drain"
    );
}

#[test]
fn a_partition_restoring_two_million_subscribers_holds_up_no_other_embedded() {
    let _one = cluster::serial();
    restore_while_processing(Kind::Embedded);
}

#[test]
fn a_partition_restoring_two_million_subscribers_holds_up_no_other_tansu() {
    let _one = cluster::serial();
    restore_while_processing(Kind::Tansu);
}
