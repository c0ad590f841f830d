//! One stuck partition holds up no other (issue 12), over the embedded broker.
//!
//! Before, every record went through one loop that handed it to its partition's bounded
//! channel: once a stuck partition's channel was full, that loop waited, and every
//! partition, health check and reload with it. An injected fault (feature
//! `fault-injection`) makes a task stop for good on a record, as if its publications never
//! came back.

#[path = "common/live.rs"]
mod live;
#[path = "common/wire.rs"]
mod wire;

use std::time::{Duration, Instant};

use churnwatch::detect::Msisdn;
use churnwatch::kafka::fault::Faults;
use churnwatch::tools::live::partition_of;
use live::{producer, read_until, send, setup_with, start_with_faults, subscriber_of, WITHIN};
use wire::{care_call, now_ms};

const HOLD: &str = "hold-record-c41d";

/// Subscribers whose records go to `partition` of 2.
fn subscribers_on(partition: i32, n: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("86130{i:08}"))
        .filter(|s| partition_of(s, 2) == partition)
        .take(n)
        .collect()
}

/// Partition 0 stops on its first record with many more behind it (far beyond
/// `kafka.max_in_flight`); partition 1's records still raise their tickets, and a look-up
/// of one of its subscribers still answers.
#[test]
fn a_stuck_partition_holds_up_no_other() {
    let (broker, mut cfg) = setup_with("isolated", 2);
    cfg.kafka.max_in_flight = 8;
    let topics = cfg.kafka.topics.clone();
    let faults = Faults {
        hold_on: Some(HOLD.into()),
        ..Faults::default()
    };
    let (rt, stop, shared) = start_with_faults(&cfg, faults);
    let p = producer(&cfg);
    let t = now_ms() - 60_000;
    let stuck = subscribers_on(0, 150);
    send(&p, &topics.cdr, &stuck[0], &care_call(HOLD, &stuck[0], t));
    for (i, sub) in stuck[1..].iter().enumerate() {
        send(
            &p,
            &topics.cdr,
            sub,
            &care_call(&format!("s{i}"), sub, t + 1),
        );
    }
    let flowing = subscribers_on(1, 20);
    for (i, sub) in flowing.iter().enumerate() {
        send(
            &p,
            &topics.cdr,
            sub,
            &care_call(&format!("f{i}"), sub, t + 2),
        );
    }

    let tickets = read_until(&cfg, &topics.tickets, |m| {
        flowing
            .iter()
            .all(|s| m.iter().any(|t| subscriber_of(t) == *s))
    });
    assert!(
        tickets.iter().all(|t| !stuck.contains(&subscriber_of(t))),
        "the stuck partition raised no ticket"
    );
    let asked = Instant::now();
    let who = Msisdn::parse(&flowing[0]).unwrap();
    let found = rt.block_on(shared.describe(who));
    assert!(found.is_some(), "the look-up found the subscriber");
    assert!(
        asked.elapsed() < WITHIN / 4,
        "the look-up took {:?}",
        asked.elapsed()
    );
    let _ = stop.send(());
    rt.shutdown_timeout(Duration::from_secs(10));
    drop(p);
    drop(broker);
}
