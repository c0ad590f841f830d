//! `replay --format tmf621` on the test fixtures writes one TMF621 `TroubleTicket` JSON
//! object per line, with the fields the CRM needs, for exactly the tickets the proto3 JSON
//! run writes; and `tmf621` is refused as an input format, naming the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use churnwatch::proto;
use serde_json::Value;

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

fn churnwatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_churnwatch"))
        .args(args)
        .env_remove("CHURNWATCH_CONFIG")
        .env("RUST_LOG", "warn")
        .output()
        .expect("the churnwatch binary runs")
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
