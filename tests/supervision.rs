//! A partition task that fails is restarted from its last checkpoint, and the record it
//! failed on is set aside (issue 12), over the embedded broker.
//!
//! Input never makes a task fail (the decode paths are property-tested); a bug might. An
//! injected fault stands in for one (feature `fault-injection`): the task panics on a
//! record whose value holds given bytes.

#[path = "common/live.rs"]
mod live;
#[path = "common/wire.rs"]
mod wire;

use std::time::{Duration, Instant};

use churnwatch::kafka::fault::Faults;
use live::{
    header, producer, read_until, send, setup, start_with_faults, subscriber_of,
    wait_committed_to_log_end, wait_consumed,
};
use wire::{care_call, now_ms};

const POISON: &str = "poison-record-7f3a";

/// Six good care calls around one that makes the task fail: the task restarts once, the
/// failing record goes to the dead-letter topic with the reason `failed`, every good one
/// raises its ticket, the group's offsets reach the log end and the service stays ready.
#[test]
fn a_failed_partition_task_restarts_from_its_checkpoint_and_sets_the_record_aside() {
    let (broker, cfg) = setup("supervised");
    let topics = cfg.kafka.topics.clone();
    let faults = Faults {
        fail_on: Some(POISON.into()),
        ..Faults::default()
    };
    let (rt, stop, shared) = start_with_faults(&cfg, faults);
    let p = producer(&cfg);
    let t = now_ms() - 60_000;
    let subs: Vec<String> = (0..6).map(|i| format!("861301234570{i}")).collect();
    for (i, sub) in subs[..3].iter().enumerate() {
        send(&p, &topics.cdr, sub, &care_call(&format!("a{i}"), sub, t));
    }
    wait_consumed(&shared, &topics.cdr, 3);
    let poisoned = "8613012345799";
    send(
        &p,
        &topics.cdr,
        poisoned,
        &care_call(POISON, poisoned, t + 1),
    );
    for (i, sub) in subs[3..].iter().enumerate() {
        send(
            &p,
            &topics.cdr,
            sub,
            &care_call(&format!("b{i}"), sub, t + 2),
        );
    }

    let dead = read_until(&cfg, &topics.dead_letter, |m| !m.is_empty());
    assert_eq!(dead.len(), 1);
    assert_eq!(header(&dead[0], "source_offset").as_deref(), Some("3"));
    let reason = header(&dead[0], "reason").unwrap();
    assert!(reason.contains("partition task failed"), "{reason}");
    let tickets = read_until(&cfg, &topics.tickets, |m| {
        subs.iter()
            .all(|s| m.iter().any(|t| subscriber_of(t) == *s))
    });
    assert!(
        tickets.iter().all(|t| subscriber_of(t) != poisoned),
        "the failing record raised no ticket"
    );
    wait_committed_to_log_end(&cfg, &topics.cdr);
    let metrics = &shared.metrics;
    assert_eq!(
        metrics.partition_restarts.with_label_values(&["0"]).get(),
        1
    );
    assert_eq!(
        metrics
            .dead_lettered
            .with_label_values(&[&topics.cdr, "failed"])
            .get(),
        1
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !shared.readiness.is_ready() {
        assert!(
            Instant::now() < deadline,
            "not ready after one restart: {}",
            shared.readiness.failing().join(", ")
        );
        std::thread::park_timeout(Duration::from_millis(100)); // poll interval
    }
    let _ = stop.send(());
    rt.shutdown_timeout(Duration::from_secs(10));
    drop(p);
    drop(broker);
}
