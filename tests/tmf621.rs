//! `replay --format tmf621` on the test fixtures writes one TMF621 `TroubleTicket` JSON
//! object per line, with the fields the CRM needs, for exactly the tickets the proto3 JSON
//! run writes; the service with `kafka.ticket_format = "tmf621"` publishes the same shape
//! (over librdkafka's mock cluster); and `tmf621` is refused as an input format, naming the
//! key.

#[path = "common/cli.rs"]
mod cli;

#[path = "common/wire.rs"]
mod wire;

use std::collections::BTreeMap;
use std::path::PathBuf;

use churnwatch::proto;
use cli::churnwatch;
use serde_json::Value;

fn fixture(name: &str) -> String {
    cli::fixture(name).display().to_string()
}

/// The fixture sets replayed: every CDR and account fixture, with the outcomes.
fn inputs() -> Vec<Vec<String>> {
    let (cdr, outcomes) = (fixture("care_call.cdr.jsonl"), fixture("outcomes.jsonl"));
    ["overdue.account.jsonl", "retention.account.jsonl"]
        .into_iter()
        .map(|account| {
            let (a, c, o) = (fixture(account), cdr.clone(), outcomes.clone());
            ["--cdr", &c, "--account", &a, "--outcomes", &o]
                .map(String::from)
                .to_vec()
        })
        .chain([vec!["--cdr".into(), fixture("malformed.cdr.jsonl")]])
        .collect()
}

/// Runs `replay --format FORMAT` and returns the lines written.
fn replay(input: &[String], format: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let out: PathBuf = dir.path().join("tickets.jsonl");
    let mut args: Vec<&str> = vec!["replay", "--format", format, "--out", out.to_str().unwrap()];
    args.extend(input.iter().map(String::as_str));
    let run = churnwatch(&args);
    assert!(
        run.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = std::fs::read_to_string(&out).unwrap();
    text.lines().map(String::from).collect()
}

fn severity_priority(p: i32) -> (&'static str, &'static str) {
    match proto::Priority::try_from(p).expect("a known priority") {
        proto::Priority::P1 => ("Critical", "1"),
        proto::Priority::P2 => ("High", "2"),
        proto::Priority::P3 => ("Medium", "3"),
        proto::Priority::P4 => ("Low", "4"),
        proto::Priority::Unspecified => panic!("an unspecified priority"),
    }
}

fn characteristics(v: &Value) -> BTreeMap<String, Value> {
    v["troubleTicketCharacteristic"]
        .as_array()
        .expect("troubleTicketCharacteristic[]")
        .iter()
        .map(|c| {
            assert!(c["@type"].as_str().unwrap().ends_with("Characteristic"));
            assert!(c["valueType"].is_string(), "{c}");
            (c["name"].as_str().unwrap().to_string(), c["value"].clone())
        })
        .collect()
}

/// Every field the issue names, checked against the proto3 JSON ticket of the same id.
fn check(v: &Value, t: &proto::CareTicket) {
    assert_eq!(v["@type"], "TroubleTicket", "{v}");
    let summaries: Vec<&str> = t.signals.iter().map(|s| s.summary.as_str()).collect();
    assert_eq!(v["name"], summaries[0], "{v}");
    assert_eq!(v["description"], summaries.join("; "), "{v}");
    let (severity, priority) = severity_priority(t.priority);
    assert_eq!(
        (v["severity"].as_str(), v["priority"].as_str()),
        (Some(severity), Some(priority))
    );
    assert_eq!(v["status"], "acknowledged");
    assert_eq!(v["ticketType"], "churnRisk");
    let created = chrono::DateTime::parse_from_rfc3339(v["creationDate"].as_str().unwrap())
        .expect("creationDate is ISO 8601");
    assert_eq!(created.timestamp_millis(), t.created_time_ms);
    let party = &v["relatedParty"][0];
    assert_eq!(party["role"], "customer");
    assert_eq!(party["partyOrPartyRole"]["id"], t.subscriber.as_str());
    let notes = v["note"].as_array().expect("note[]");
    assert_eq!(notes.len(), t.signals.len());
    for (n, s) in notes.iter().zip(&t.signals) {
        let text = n["text"].as_str().unwrap();
        assert!(
            text.contains(&s.rule) && text.contains(&s.summary),
            "{text}"
        );
        for k in s.evidence.keys() {
            assert!(text.contains(&format!("{k}=")), "{k} missing: {text}");
        }
    }
    let c = characteristics(v);
    assert_eq!(c["tier"], t.tier.as_str());
    assert_eq!(c["queue"], t.queue.as_str());
    assert_eq!(c["riskScore"], t.risk_score);
    assert_eq!(c["controlGroup"], t.control_group);
    assert_eq!(c["suggestedAction"], t.suggested_action.as_str());
}

#[test]
fn replay_format_tmf621_writes_trouble_tickets_for_the_json_runs_tickets() {
    let mut seen = 0;
    for input in inputs() {
        let json = replay(&input, "json");
        let tmf = replay(&input, "tmf621");
        assert_eq!(json.len(), tmf.len(), "{input:?}");
        for (j, l) in json.iter().zip(&tmf) {
            let t: proto::CareTicket = serde_json::from_str(j).unwrap();
            let v: Value = serde_json::from_str(l).expect("each line is one JSON object");
            assert_eq!(v["id"], t.ticket_id.as_str(), "same tickets, same order");
            check(&v, &t);
            seen += 1;
        }
    }
    assert!(seen >= 3, "the fixtures raise tickets ({seen})");
}

#[test]
fn tmf621_is_refused_as_an_input_format() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[kafka]\ninput_format = \"tmf621\"\n").unwrap();
    let out = churnwatch(&["check-config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("kafka.input_format"), "{err}");

    std::fs::write(&cfg, "[kafka]\nticket_format = \"tmf621\"\n").unwrap();
    let out = churnwatch(&["check-config", cfg.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = churnwatch(&[
        "replay",
        "--input-format",
        "tmf621",
        "--out",
        "x",
        "--cdr",
        "y",
    ]);
    assert!(!out.status.success());
}

mod kafka {
    //! The Kafka adapter with `kafka.ticket_format = "tmf621"`: one TroubleTicket object
    //! per record, keyed by subscriber, with the `queue` and `ticket_id` headers.

    use std::time::{Duration, Instant};

    use super::wire::{care_call, now_ms};
    use churnwatch::config::{Config, TicketFormat};
    use churnwatch::kafka::service::{self, Shared};
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::{Headers, Message, OwnedMessage};
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    use rdkafka::util::Timeout;
    use serde_json::Value;

    fn config(cluster: &MockCluster<'static, rdkafka::producer::DefaultProducerContext>) -> Config {
        let mut cfg = Config::default();
        let name = |t: &str| format!("tmf621-{t}-{}", std::process::id());
        cfg.kafka.brokers = cluster.bootstrap_servers();
        cfg.kafka.group_id = name("group");
        let t = &mut cfg.kafka.topics;
        (t.cdr, t.account, t.outcomes) = (name("cdr"), name("account"), name("outcomes"));
        (t.tickets, t.dead_letter, t.changelog) = (name("tickets"), name("dlq"), name("state"));
        cfg.kafka.drain_timeout_ms = 2_000;
        cfg.kafka.session_timeout_ms = 6_000;
        cfg.kafka.ticket_format = TicketFormat::Tmf621;
        cfg.http.listen = String::new();
        let t = &cfg.kafka.topics;
        for topic in [&t.cdr, &t.account, &t.tickets, &t.dead_letter, &t.changelog] {
            cluster.create_topic(topic, 1, 1).unwrap();
        }
        cfg
    }

    fn read(cfg: &Config, n: usize) -> Vec<OwnedMessage> {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &cfg.kafka.brokers)
            .set("group.id", format!("tmf621-reader-{}", std::process::id()))
            .set("auto.offset.reset", "earliest")
            .create()
            .unwrap();
        c.subscribe(&[&cfg.kafka.topics.tickets]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut out = Vec::new();
        while out.len() < n {
            assert!(Instant::now() < deadline, "{} of {n} tickets", out.len());
            if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
                out.push(m.detach());
            }
        }
        out
    }

    fn header(m: &OwnedMessage, key: &str) -> Option<String> {
        let v = m.headers()?.iter().find(|x| x.key == key)?.value?;
        Some(String::from_utf8(v.to_vec()).unwrap())
    }

    #[test]
    fn the_service_publishes_trouble_tickets_with_their_headers() {
        let cluster = MockCluster::new(1).unwrap();
        let cfg = config(&cluster);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (tx, rx) = tokio::sync::watch::channel(std::sync::Arc::new(cfg.clone()));
        let run_cfg = cfg.clone();
        rt.spawn(async move {
            let _keep = tx;
            let stopped = async move {
                let _ = stopped.await;
            };
            service::run(run_cfg, vec![], Shared::default(), rx, stopped)
                .await
                .unwrap();
        });
        let p: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &cfg.kafka.brokers)
            .set("partitioner", "murmur2_random")
            .create()
            .unwrap();
        let sub = "8613012345678";
        let record = care_call("a", sub, now_ms() - 60_000);
        p.send(
            BaseRecord::to(&cfg.kafka.topics.cdr)
                .key(sub)
                .payload(&record),
        )
        .unwrap();
        p.flush(Timeout::After(Duration::from_secs(10))).unwrap();

        let m = &read(&cfg, 1)[0];
        assert_eq!(m.key(), Some(sub.as_bytes()));
        let v: Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
        assert_eq!(v["@type"], "TroubleTicket", "{v}");
        assert_eq!(v["relatedParty"][0]["partyOrPartyRole"]["id"], sub);
        assert_eq!(header(m, "ticket_id").as_deref(), v["id"].as_str());
        assert_eq!(header(m, "queue").as_deref(), Some("retention"));
        assert!(v["note"][0]["text"]
            .as_str()
            .unwrap()
            .contains("competitor_care_call"));
        let _ = stop.send(());
        rt.shutdown_timeout(Duration::from_secs(10));
    }
}
