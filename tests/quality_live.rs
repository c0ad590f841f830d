//! Live detection quality (issue 13): the same input through `replay --report` and through
//! the service over the embedded broker gives the same figures. The service's
//! `churnwatch_quality_*` metrics (read from `Shared::metrics`) equal the report's
//! `live_quality` section, rule by rule, lead-time buckets included.
//!
//! The input is `generate`'s population (planted churn journeys, look-alikes, late and
//! duplicate delivery), one partition so both paths apply records in the same order. A
//! running service never sees the end of its input, and replay closes the last days at
//! the end; so a sentinel record comes long after the population's last day (past idle
//! eviction and the horizon), by when every subscriber of the population has been judged
//! and evicted in both, and the days only replay closes judge nobody. (The silent months
//! before it raise a `zero_spend_month` ticket for most of the population: false alarms,
//! the same in both.) Call-center outcomes for the first tickets a first replay raised
//! (ticket ids are deterministic) go in too, so outcomes by rule are compared as well.

#[path = "common/live.rs"]
mod live;
#[path = "common/reference.rs"]
mod reference;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use churnwatch::config::Config;
use churnwatch::config::Format;
use churnwatch::detect::quality::{LiveQualityReport, RuleQuality, GROUPS, LEAD_BUCKETS, OUTCOMES};
use churnwatch::detect::rules::RuleId;
use churnwatch::metrics::{Metrics, DAY_SECONDS};
use churnwatch::proto;
use churnwatch::replay::{self, ReplayOptions};
use churnwatch::tools::workload::WireEvent;
use prometheus::core::Metric as _;
use prost::Message as _;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::util::Timeout;

const DAY: i64 = 86_400_000;

fn config(cfg: &mut Config) {
    cfg.detect.contact.control_group_fraction = 0.3;
    cfg.detect.engine.idle_eviction_days = 63;
    // The outcome topic goes quiet before the sentinel: it stops holding the other inputs
    // after 3 s (the product waits a minute).
    cfg.kafka.idle_timeout_ms = 3_000;
}

/// The population, then a sentinel 100 days after its last record.
fn input() -> Vec<WireEvent> {
    let mut events = reference::population(600, 56, 3, 1);
    let end = events.iter().map(|e| e.time_ms()).max().unwrap();
    events.extend(reference::sentinels("after", end + 100 * DAY, 1));
    events
}

/// Writes the CDRs, account events and outcomes as length-delimited protobuf files, in
/// order.
fn write_files(
    dir: &Path,
    events: &[WireEvent],
    outcomes: &[proto::TicketOutcome],
) -> [PathBuf; 3] {
    let (mut cdr, mut acct, mut out) = (Vec::new(), Vec::new(), Vec::new());
    for e in events {
        match e {
            WireEvent::Cdr(c) => c.encode_length_delimited(&mut cdr).unwrap(),
            WireEvent::Account(a) => a.encode_length_delimited(&mut acct).unwrap(),
        }
    }
    for o in outcomes {
        o.encode_length_delimited(&mut out).unwrap();
    }
    let paths = [
        dir.join("cdr.pb"),
        dir.join("account.pb"),
        dir.join("outcomes.pb"),
    ];
    for (p, bytes) in paths.iter().zip([cdr, acct, out]) {
        std::fs::write(p, bytes).unwrap();
    }
    paths
}

/// `replay --report` on the input: the report's `live_quality` as JSON, and the tickets.
fn replayed(
    cfg: &Config,
    events: &[WireEvent],
    outcomes: &[proto::TicketOutcome],
) -> (serde_json::Value, Vec<proto::CareTicket>) {
    let dir = tempfile::tempdir().unwrap();
    let [cdr, account, outcome_file] = write_files(dir.path(), events, outcomes);
    let report = dir.path().join("report.json");
    let opts = ReplayOptions {
        cdr: Some(cdr),
        account: Some(account),
        outcomes: Some(outcome_file),
        out: dir.path().join("tickets.jsonl"),
        input_format: Some(Format::Protobuf),
        format: churnwatch::config::TicketFormat::Json,
        progress: false,
        report: Some(report.clone()),
        journeys: None,
    };
    let summary = replay::run_with(&opts, cfg, &mut Vec::new()).unwrap();
    let text = summary.to_string();
    assert!(text.contains("live quality"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    let tickets = std::fs::read_to_string(dir.path().join("tickets.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (json["live_quality"].clone(), tickets)
}

/// The call center's answers to the first 40 tickets, a week after each (a ticket goes
/// out once its day closes, days after its creation time), every kind in turn.
fn outcomes_for(tickets: &[proto::CareTicket]) -> Vec<proto::TicketOutcome> {
    let kinds = [
        proto::Outcome::Retained,
        proto::Outcome::Declined,
        proto::Outcome::Unreachable,
        proto::Outcome::Churned,
    ];
    let mut first: Vec<&proto::CareTicket> = Vec::new();
    for t in tickets {
        if !first.iter().any(|f| f.ticket_id == t.ticket_id) {
            first.push(t);
        }
    }
    first.sort_by_key(|t| (t.created_time_ms, t.ticket_id.clone()));
    first
        .iter()
        .take(40)
        .enumerate()
        .map(|(i, t)| proto::TicketOutcome {
            ticket_id: t.ticket_id.clone(),
            subscriber: t.subscriber.clone(),
            event_time_ms: t.created_time_ms + 7 * DAY,
            outcome: kinds[i % kinds.len()] as i32,
        })
        .collect()
}

/// The service's `churnwatch_quality_*` metrics, shaped as the report.
fn from_metrics(m: &Metrics, horizon_days: u32) -> LiveQualityReport {
    let q = &m.quality;
    let mut by_rule = BTreeMap::new();
    for r in RuleId::ALL {
        let label = [r.as_str()];
        let hits = q.hits.with_label_values(&label).get();
        let false_alarms = q.false_alarms.with_label_values(&label).get();
        if hits == 0 && false_alarms == 0 {
            continue;
        }
        let h = q.lead_time.with_label_values(&label).metric();
        let h = h.get_histogram();
        let lead_time_buckets = h
            .get_bucket()
            .iter()
            .map(|b| ((b.upper_bound() / DAY_SECONDS) as u32, b.cumulative_count()))
            .collect();
        let rq = RuleQuality {
            hits,
            false_alarms,
            lead_time_buckets,
            lead_time_count: h.get_sample_count(),
            lead_time_sum_days: (h.get_sample_sum() / DAY_SECONDS) as u64,
        };
        by_rule.insert(r.as_str().to_string(), rq);
    }
    let groups = |c: &prometheus::IntCounterVec| {
        GROUPS
            .iter()
            .map(|g| (g.to_string(), c.with_label_values(&[g]).get()))
            .collect()
    };
    LiveQualityReport {
        horizon_days,
        by_rule,
        misses: q.misses.get(),
        ticketed: groups(&q.ticketed),
        churned: groups(&q.churned),
        outcomes: OUTCOMES
            .iter()
            .map(|o| {
                (
                    o.as_str().to_string(),
                    m.outcomes.with_label_values(&[o.as_str()]).get(),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect(),
        outcomes_by_rule: RuleId::ALL
            .iter()
            .map(|r| {
                let by_kind: BTreeMap<String, u64> = OUTCOMES
                    .iter()
                    .map(|o| {
                        let n = q
                            .outcomes
                            .with_label_values(&[r.as_str(), o.as_str()])
                            .get();
                        (o.as_str().to_string(), n)
                    })
                    .filter(|(_, n)| *n > 0)
                    .collect();
                (r.as_str().to_string(), by_kind)
            })
            .filter(|(_, by_kind)| !by_kind.is_empty())
            .collect(),
    }
}

fn produce(cfg: &Config, events: &[WireEvent], outcomes: &[proto::TicketOutcome]) {
    let prod: BaseProducer = live::producer(cfg);
    let t = &cfg.kafka.topics;
    let records = events
        .iter()
        .map(|e| match e {
            WireEvent::Cdr(c) => (&t.cdr, &c.subscriber, c.encode_to_vec()),
            WireEvent::Account(a) => (&t.account, &a.subscriber, a.encode_to_vec()),
        })
        .chain(
            outcomes
                .iter()
                .map(|o| (&t.outcomes, &o.subscriber, o.encode_to_vec())),
        );
    for (topic, sub, bytes) in records {
        let mut rec = BaseRecord::to(topic).key(sub).payload(&bytes).partition(0);
        while let Err((_, r)) = prod.send(rec) {
            prod.poll(Duration::from_millis(50));
            rec = r;
        }
    }
    prod.flush(Timeout::After(Duration::from_secs(60))).unwrap();
}

/// The figures are worth comparing: hits, misses, false alarms, lead times, both groups.
fn assert_non_trivial(q: &LiveQualityReport) {
    let hits: u64 = q.by_rule.values().map(|r| r.hits).sum();
    let false_alarms: u64 = q.by_rule.values().map(|r| r.false_alarms).sum();
    let leads: u64 = q.by_rule.values().map(|r| r.lead_time_count).sum();
    assert!(hits >= 5, "hits {hits}: {q:#?}");
    assert!(q.misses >= 1, "misses: {q:#?}");
    assert!(false_alarms >= 1, "false alarms: {q:#?}");
    assert_eq!(leads, hits, "one lead time per hit and rule");
    for g in GROUPS {
        assert!(q.ticketed[g] > 0, "{g} ticketed: {q:#?}");
    }
    assert!(
        q.churned["treated"] > 0 && q.churned["control"] > 0,
        "{q:#?}"
    );
    assert!(q.by_rule.len() >= 3, "several rules: {q:#?}");
    assert_eq!(
        q.outcomes.values().sum::<u64>(),
        40,
        "every outcome counted: {q:#?}"
    );
    // An outcome joins its ticket only once the ticket is out (its day closed; a month
    // rule's at the month's close) and while its subscriber is still held.
    let joined: u64 = q.outcomes_by_rule.values().flat_map(|k| k.values()).sum();
    assert!(
        joined >= 10 && q.outcomes_by_rule.len() >= 3,
        "outcomes joined to their tickets' rules: {q:#?}"
    );
    assert_eq!(LEAD_BUCKETS.len(), 11);
}

#[test]
fn live_quality_metrics_equal_the_replay_report() {
    let (broker, mut cfg) = live::setup("quality");
    broker.create_topic(&cfg.kafka.topics.outcomes, 1).unwrap();
    config(&mut cfg);
    let events = input();
    let (_, tickets) = replayed(&cfg, &events, &[]);
    let outcomes = outcomes_for(&tickets);
    let (want, _) = replayed(&cfg, &events, &outcomes);
    let horizon = cfg.detect.quality.horizon_days;
    assert_eq!(want["horizon_days"], horizon);

    produce(&cfg, &events, &outcomes);
    let (rt, stop, shared) = live::start(&cfg);
    let t = &cfg.kafka.topics;
    let count = |cdr: bool| {
        events
            .iter()
            .filter(|e| matches!(e, WireEvent::Cdr(_)) == cdr)
            .count() as u64
    };
    live::wait_consumed(&shared, &t.cdr, count(true));
    live::wait_consumed(&shared, &t.account, count(false));
    live::wait_consumed(&shared, &t.outcomes, outcomes.len() as u64);
    let deadline = Instant::now() + Duration::from_secs(30);
    let got = loop {
        let got = from_metrics(&shared.metrics, horizon);
        let same = serde_json::to_value(&got).unwrap() == want;
        if same || Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = stop.send(());
    rt.shutdown_timeout(Duration::from_secs(10));
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap();
    assert_eq!(
        pretty(&serde_json::to_value(&got).unwrap()),
        pretty(&want),
        "the service's churnwatch_quality_* against replay's live_quality"
    );
    assert_non_trivial(&got);
}
