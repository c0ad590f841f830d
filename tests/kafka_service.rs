//! End to end over librdkafka's mock cluster (real Kafka protocol over TCP): the service
//! as a consumer group, tickets read back by an independent consumer. Reloads, idle
//! partitions and what a refused publication does are in `kafka_service_operations.rs`.

#[path = "common/live.rs"]
mod live;
#[path = "common/mock.rs"]
mod mock;
#[path = "common/wire.rs"]
mod wire;

use std::time::{Duration, Instant};

use churnwatch::config::Config;
use churnwatch::kafka::service::{self, Shared};
use churnwatch::proto;
use live::start;
use mock::{producer, read, send, setup, unique};
use prost::Message as _;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::util::Timeout;
use wire::{care_call, now_ms};

#[test]
fn records_in_tickets_out_with_bad_records_dead_lettered() {
    let s = setup(2);
    let (rt, stop, shared) = start(&s.cfg);
    let p = producer(&s.cfg);
    let t = now_ms() - 60_000;
    let topics = &s.cfg.kafka.topics;
    send(
        &p,
        &topics.cdr,
        "8613012345678",
        &care_call("a", "8613012345678", t),
    );
    send(&p, &topics.cdr, "8613012345679", b"\xff\xfe not protobuf");
    send(&p, &topics.cdr, "8613012345679", &care_call("b", "abc", t));
    send(
        &p,
        &topics.cdr,
        "8613012345679",
        &care_call("c", "8613012345679", t + 1),
    );
    p.flush(Timeout::After(Duration::from_secs(10))).unwrap();

    let tickets = read(&s.cfg, &topics.tickets, 2);
    let mut subs: Vec<String> = tickets
        .iter()
        .map(|m| {
            proto::CareTicket::decode(m.payload().unwrap())
                .unwrap()
                .subscriber
        })
        .collect();
    subs.sort();
    assert_eq!(subs, vec!["8613012345678", "8613012345679"]);
    let queue = tickets[0]
        .headers()
        .unwrap()
        .iter()
        .find(|h| h.key == "queue")
        .unwrap();
    assert_eq!(queue.value, Some(&b"retention"[..]));

    let dead = read(&s.cfg, &topics.dead_letter, 2);
    let reasons: Vec<String> = dead
        .iter()
        .map(|m| {
            let h = m.headers().unwrap();
            let get = |k: &str| {
                String::from_utf8(
                    h.iter()
                        .find(|x| x.key == k)
                        .unwrap()
                        .value
                        .unwrap()
                        .to_vec(),
                )
                .unwrap()
            };
            assert_eq!(get("source_topic"), topics.cdr);
            get("reason")
        })
        .collect();
    assert!(
        reasons.iter().any(|r| r.starts_with("invalid protobuf")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("non-digit")),
        "{reasons:?}"
    );
    assert_eq!(
        dead.iter()
            .filter(|m| m.payload() == Some(&b"\xff\xfe not protobuf"[..]))
            .count(),
        1,
        "original bytes kept"
    );
    let text = shared.metrics.render();
    assert!(text.contains("churnwatch_dead_lettered_total"), "{text}");
    let _ = stop.send(());
    rt.shutdown_timeout(Duration::from_secs(10));
    drop(s.cluster);
}

/// A record that waited two minutes in the topic before the service read it: the append
/// latency a platform engineer watches includes the wait, the processing latency does not.
#[test]
fn append_latency_counts_the_wait_in_the_topic() {
    let s = setup(1);
    let (rt, stop, shared) = start(&s.cfg);
    let p = producer(&s.cfg);
    let appended = now_ms() - 120_000;
    let sub = "8613012345670";
    let payload = care_call("wait", sub, appended);
    p.send(
        BaseRecord::to(&s.cfg.kafka.topics.cdr)
            .key(sub)
            .payload(&payload)
            .timestamp(appended),
    )
    .unwrap();
    p.flush(Timeout::After(Duration::from_secs(10))).unwrap();
    read(&s.cfg, &s.cfg.kafka.topics.tickets, 1);
    let m = &shared.metrics;
    let deadline = Instant::now() + Duration::from_secs(30);
    while m.append_latency.get_sample_count() < 1 {
        assert!(Instant::now() < deadline, "no append latency observed");
        std::thread::sleep(Duration::from_millis(10)); // metrics poll
    }
    assert_eq!(m.append_latency.get_sample_count(), 1);
    let waited = m.append_latency.get_sample_sum();
    assert!((120.0..180.0).contains(&waited), "{waited} s from append");
    assert_eq!(m.processing_latency.get_sample_count(), 1);
    let processed = m.processing_latency.get_sample_sum();
    assert!(processed < 60.0, "{processed} s processing");
    let _ = stop.send(());
    rt.shutdown_timeout(Duration::from_secs(10));
    drop(s.cluster);
}

#[test]
fn refuses_to_run_when_inputs_are_not_co_partitioned() {
    let cluster = MockCluster::new(1).unwrap();
    let mut cfg = Config::default();
    cfg.kafka.brokers = cluster.bootstrap_servers();
    cfg.kafka.topics.cdr = unique("cdr");
    cfg.kafka.topics.account = unique("account");
    cfg.http.listen = String::new();
    cluster.create_topic(&cfg.kafka.topics.cdr, 4, 1).unwrap();
    cluster
        .create_topic(&cfg.kafka.topics.account, 2, 1)
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(std::sync::Arc::new(cfg.clone()));
    let err = rt
        .block_on(service::run(
            cfg,
            vec![],
            Shared::default(),
            rx,
            std::future::pending(),
        ))
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("not co-partitioned")
            && msg.contains("4 partitions")
            && msg.contains("2 partitions"),
        "{msg}"
    );
}

/// A subscriber of our own, apart from the demo's, who calls a competitor's care line
/// twice a week apart: two tickets, unless a RETAINED outcome on the first holds back the
/// second.
const RETAINED_SUB: &str = "8613099990001";

fn retained_journey() -> Vec<churnwatch::tools::workload::WireEvent> {
    use churnwatch::tools::workload::{stories::START_MS, WireEvent};
    [10, 17]
        .into_iter()
        .map(|d| {
            let t = START_MS + d * 86_400_000 + 36_000_000;
            let m =
                proto::CallDetailRecord::decode(&care_call(&format!("r{d}"), RETAINED_SUB, t)[..]);
            WireEvent::Cdr(m.unwrap())
        })
        .collect()
}

/// An overdue bill paid in full two days later, and a competitor care call followed by a
/// port-out: both tickets are withdrawn (`paid`, `churned`).
fn withdrawn_journeys() -> Vec<churnwatch::tools::workload::WireEvent> {
    use churnwatch::tools::workload::{stories::START_MS, WireEvent};
    use proto::account_event::Kind;
    let at = |d: i64| START_MS + d * 86_400_000 + 36_000_000;
    let event = |id: &str, sub: &str, d: i64, kind: Kind| {
        WireEvent::Account(proto::AccountEvent {
            event_id: id.into(),
            subscriber: sub.into(),
            event_time_ms: at(d),
            kind: Some(kind),
        })
    };
    let notice = Kind::BillOverdue(proto::BillOverdue {
        period: "2026-02".into(),
        amount: 8_800,
        days_overdue: 10,
    });
    let payment = Kind::Payment(proto::PaymentReceived { amount: 8_800 });
    let call = proto::CallDetailRecord::decode(&care_call("gone", PORTED_SUB, at(20))[..]);
    let port_out = Kind::Churned(proto::Churned {
        kind: proto::ChurnKind::PortOut as i32,
    });
    vec![
        event("od", PAID_SUB, 12, notice),
        event("pay", PAID_SUB, 14, payment),
        WireEvent::Cdr(call.unwrap()),
        event("port-out", PORTED_SUB, 22, port_out),
    ]
}

const PAID_SUB: &str = "8613012399001";
const PORTED_SUB: &str = "8613012399002";

/// The demo workload and the retained journey, then one sentinel event per partition so
/// every partition's watermark ends at the same time.
fn workload(partitions: i32) -> Vec<churnwatch::tools::workload::WireEvent> {
    use churnwatch::tools::workload::WireEvent;
    let mut events = churnwatch::tools::workload::stories::workload();
    for e in retained_journey().into_iter().chain(withdrawn_journeys()) {
        // Where delivery reaches its time: appended, it would be weeks late.
        let at = events.iter().position(|x| x.time_ms() > e.time_ms());
        events.insert(at.unwrap_or(events.len()), e);
    }
    let end = events.iter().map(|e| e.time_ms()).max().unwrap() + 1;
    for p in 0..partitions {
        let mut n = 0u64;
        let sub = loop {
            let s = format!("86139000{:05}", n);
            if churnwatch::tools::live::partition_of(&s, partitions) == p {
                break s;
            }
            n += 1;
        };
        events.push(WireEvent::Account(proto::AccountEvent {
            event_id: format!("sentinel-{p}"),
            subscriber: sub,
            event_time_ms: end,
            kind: Some(proto::account_event::Kind::Resumed(proto::Resumed {})),
        }));
    }
    events
}

/// Produces events and outcomes into the input topics, keyed (and partitioned) by
/// subscriber.
fn produce(
    cfg: &Config,
    partitions: i32,
    events: &[churnwatch::tools::workload::WireEvent],
    outcomes: &[proto::TicketOutcome],
) {
    use churnwatch::tools::workload::WireEvent;
    let prod = producer(cfg);
    let t = &cfg.kafka.topics;
    let records = events
        .iter()
        .map(|e| match e {
            WireEvent::Cdr(c) => (&t.cdr, c.subscriber.clone(), c.encode_to_vec()),
            WireEvent::Account(a) => (&t.account, a.subscriber.clone(), a.encode_to_vec()),
        })
        .chain(
            outcomes
                .iter()
                .map(|o| (&t.outcomes, o.subscriber.clone(), o.encode_to_vec())),
        );
    for (topic, sub, bytes) in records {
        let mut rec = BaseRecord::to(topic)
            .key(&sub)
            .payload(&bytes)
            .partition(churnwatch::tools::live::partition_of(&sub, partitions));
        loop {
            match prod.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    prod.poll(Duration::from_millis(50));
                    rec = r;
                }
            }
        }
    }
    prod.flush(Timeout::After(Duration::from_secs(30))).unwrap();
}

/// The tickets of the replay rule for the same input: CDRs, account events and outcomes
/// each in produced order, merged by event time (`Source::earliest`, as `replay` and the
/// service merge them), one engine, no end-of-input flush (a running service never sees
/// the end of its input). One engine for every partition gives the same tickets as one
/// per partition: state is per subscriber.
fn reference(
    cfg: &Config,
    events: &[churnwatch::tools::workload::WireEvent],
    outcomes: &[proto::TicketOutcome],
) -> std::collections::BTreeMap<String, proto::CareTicket> {
    use churnwatch::driver::Source;
    use churnwatch::tools::workload::WireEvent;
    use std::collections::VecDeque;
    let mut cdrs: VecDeque<_> = events
        .iter()
        .filter_map(|e| match e {
            WireEvent::Cdr(c) => Some(c),
            _ => None,
        })
        .collect();
    let mut accounts: VecDeque<_> = events
        .iter()
        .filter_map(|e| match e {
            WireEvent::Account(a) => Some(a),
            _ => None,
        })
        .collect();
    let mut feedback: VecDeque<_> = outcomes.iter().collect();
    let mut engine = churnwatch::detect::Engine::new(cfg, &[]).unwrap();
    let mut out = Vec::new();
    loop {
        let next = Source::earliest(
            cdrs.front().map(|c| c.event_time_ms),
            accounts.front().map(|a| a.event_time_ms),
            feedback.front().map(|o| o.event_time_ms),
        );
        match next {
            None => break,
            Some(Source::Cdr) => {
                let ev = churnwatch::codec::cdr_from_proto(cdrs.pop_front().unwrap()).unwrap();
                engine.apply(&churnwatch::detect::Event::Cdr(ev), &mut out);
            }
            Some(Source::Account) => {
                let a = accounts.pop_front().unwrap();
                let ev = churnwatch::codec::account_from_proto(a).unwrap();
                engine.apply(&churnwatch::detect::Event::Account(ev), &mut out);
            }
            Some(Source::Outcomes) => {
                let o = feedback.pop_front().unwrap();
                engine.apply_outcome(&churnwatch::codec::outcome_from_proto(o).unwrap());
            }
        }
    }
    out.into_iter().map(|t| (t.ticket_id.clone(), t)).collect()
}

/// Reads a topic until `want` distinct ticket ids are seen and every id's last version
/// equals the reference (later versions may still be in flight).
fn read_until_equal(
    cfg: &Config,
    expected: &std::collections::BTreeMap<String, proto::CareTicket>,
) -> std::collections::BTreeMap<String, proto::CareTicket> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &cfg.kafka.brokers)
        .set("group.id", unique("reader"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    c.subscribe(&[cfg.kafka.topics.tickets.as_str()]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut got = std::collections::BTreeMap::new();
    while &got != expected && Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            let t = proto::CareTicket::decode(m.payload().unwrap()).unwrap();
            got.insert(t.ticket_id.clone(), t);
        }
    }
    got
}

fn outcome(ticket: &proto::CareTicket, at: i64, outcome: proto::Outcome) -> proto::TicketOutcome {
    proto::TicketOutcome {
        ticket_id: ticket.ticket_id.clone(),
        subscriber: ticket.subscriber.clone(),
        event_time_ms: at,
        outcome: outcome as i32,
    }
}

/// The service and the replay rule give the same tickets for the same CDRs, account events
/// and call-center outcomes, including a RETAINED outcome that holds back a later ticket.
#[test]
fn tickets_from_kafka_equal_tickets_from_the_replay_engine() {
    let s = setup(3);
    s.cluster
        .create_topic(&s.cfg.kafka.topics.outcomes, 3, 1)
        .unwrap();
    let events = workload(3);
    let without = reference(&s.cfg, &events, &[]);
    let care = |m: &std::collections::BTreeMap<String, proto::CareTicket>| {
        let mut v: Vec<proto::CareTicket> = m
            .values()
            .filter(|t| t.subscriber == RETAINED_SUB)
            .cloned()
            .collect();
        v.sort_by_key(|t| t.created_time_ms);
        v
    };
    let calls = care(&without);
    assert_eq!(calls.len(), 2, "two care calls a week apart: two tickets");
    let other = without
        .values()
        .find(|t| t.subscriber != RETAINED_SUB)
        .unwrap();
    let mut unknown = outcome(
        other,
        other.created_time_ms + 86_400_000,
        proto::Outcome::Declined,
    );
    unknown.ticket_id = "no-such-ticket".into();
    let outcomes = [
        outcome(
            &calls[0],
            calls[0].created_time_ms + 86_400_000,
            proto::Outcome::Retained,
        ),
        outcome(
            other,
            other.created_time_ms + 86_400_000,
            proto::Outcome::Unreachable,
        ),
        unknown,
    ];
    let mut outcomes = outcomes.to_vec();
    outcomes.sort_by_key(|o| o.event_time_ms);
    let expected = reference(&s.cfg, &events, &outcomes);
    assert_eq!(
        care(&expected),
        vec![calls[0].clone()],
        "the second is held back"
    );
    assert!(
        expected.len() >= 10,
        "the workload raises tickets: {}",
        expected.len()
    );
    let withdrawn: Vec<&str> = expected
        .values()
        .filter(|t| t.status == proto::TicketStatus::Withdrawn as i32)
        .map(|t| t.status_reason.as_str())
        .collect();
    assert!(
        withdrawn.contains(&"churned") && withdrawn.contains(&"paid"),
        "the workload withdraws tickets (issue 24, item 4): {withdrawn:?}"
    );
    produce(&s.cfg, 3, &events, &outcomes);
    let (rt, stop, shared) = start(&s.cfg);
    let got = read_until_equal(&s.cfg, &expected);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    assert_eq!(got, expected);
    // The dashboards' and alerts' count of new tickets: one per ticket id, whatever was
    // re-sent (corrections, contact decisions).
    let text = shared.metrics.render();
    let counted: f64 = text
        .lines()
        .filter(|l| l.starts_with("churnwatch_tickets_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(counted as usize, expected.len(), "{text}");
    let withdrawals: f64 = text
        .lines()
        .filter(|l| l.starts_with("churnwatch_tickets_withdrawn_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(withdrawals as usize, withdrawn.len(), "{text}");
    assert!(
        text.contains(r#"churnwatch_tickets_withdrawn_total{reason="paid",rule="overdue_bill"} 1"#),
        "{text}"
    );
    let _ = stop.send(());
    rt.shutdown_timeout(Duration::from_secs(10));
}

#[test]
fn a_broker_outage_mid_stream_loses_nothing() {
    let s = setup(2);
    let (rt, stop, shared) = start(&s.cfg);
    let p = producer(&s.cfg);
    let t = now_ms() - 600_000;
    let topics = &s.cfg.kafka.topics;
    let subs: Vec<String> = (0..40).map(|i| format!("86130100{:05}", i)).collect();
    for (i, sub) in subs.iter().take(20).enumerate() {
        send(
            &p,
            &topics.cdr,
            sub,
            &care_call(&format!("x{i}"), sub, t + i as i64),
        );
    }
    p.flush(Timeout::After(Duration::from_secs(10))).unwrap();
    let first = read(&s.cfg, &topics.tickets, 20);
    assert_eq!(first.len(), 20);
    s.cluster.broker_down(1).unwrap();
    // Produced while the broker is down: the test producer buffers them.
    for (i, sub) in subs.iter().enumerate().skip(20) {
        send(
            &p,
            &topics.cdr,
            sub,
            &care_call(&format!("x{i}"), sub, t + i as i64),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !shared
        .readiness
        .failing()
        .iter()
        .any(|c| c.starts_with("broker unreachable"))
    {
        assert!(
            Instant::now() < deadline,
            "/readyz never said the broker is unreachable: {:?}",
            shared.readiness.failing()
        );
        p.poll(Duration::from_millis(100));
    }
    s.cluster.broker_up(1).unwrap();
    p.flush(Timeout::After(Duration::from_secs(30))).unwrap();
    let all = read(&s.cfg, &topics.tickets, 40);
    let mut ticketed: Vec<String> = all
        .iter()
        .map(|m| {
            proto::CareTicket::decode(m.payload().unwrap())
                .unwrap()
                .subscriber
        })
        .collect();
    ticketed.sort();
    ticketed.dedup();
    assert_eq!(
        ticketed.len(),
        40,
        "every subscriber ticketed after the outage"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !shared.readiness.is_ready() {
        assert!(Instant::now() < deadline, "/readyz never recovered");
        std::thread::yield_now();
        p.poll(Duration::from_millis(100));
    }
    let _ = stop.send(());
    rt.shutdown_timeout(Duration::from_secs(10));
}

#[test]
fn two_instances_in_one_group_split_the_partitions() {
    let s = setup(4);
    let (rt1, stop1, one) = start(&s.cfg);
    let (rt2, stop2, two) = start(&s.cfg);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (a, b) = (
            one.metrics.assigned_partitions.get(),
            two.metrics.assigned_partitions.get(),
        );
        if a > 0 && b > 0 && a + b == 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "partitions never split: {a} + {b}; {}",
            one.metrics
                .render()
                .lines()
                .filter(|l| l.contains("rebalance")
                    || l.contains("ready")
                    || l.contains("assigned"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::park_timeout(Duration::from_millis(100));
    }
    let p = producer(&s.cfg);
    let t = now_ms() - 600_000;
    let topics = &s.cfg.kafka.topics;
    let subs: Vec<String> = (0..60).map(|i| format!("86130200{:05}", i)).collect();
    for (i, sub) in subs.iter().enumerate() {
        let payload = care_call(&format!("y{i}"), sub, t);
        let rec = BaseRecord::to(&topics.cdr)
            .key(sub)
            .payload(&payload)
            .partition(churnwatch::tools::live::partition_of(sub, 4));
        p.send(rec).map_err(|(e, _)| e).unwrap();
    }
    p.flush(Timeout::After(Duration::from_secs(10))).unwrap();
    let all = read(&s.cfg, &topics.tickets, 60);
    let mut ticketed: Vec<String> = all
        .iter()
        .map(|m| {
            proto::CareTicket::decode(m.payload().unwrap())
                .unwrap()
                .subscriber
        })
        .collect();
    ticketed.sort();
    ticketed.dedup();
    assert_eq!(ticketed.len(), 60);
    let consumed = |s: &Shared| {
        s.metrics
            .records_consumed
            .with_label_values(&[&topics.cdr])
            .get()
    };
    assert!(
        consumed(&one) > 0 && consumed(&two) > 0,
        "both instances worked: {} and {}",
        consumed(&one),
        consumed(&two)
    );
    assert_eq!(consumed(&one) + consumed(&two), 60);
    let _ = stop1.send(());
    let _ = stop2.send(());
    rt1.shutdown_timeout(Duration::from_secs(10));
    rt2.shutdown_timeout(Duration::from_secs(10));
}
