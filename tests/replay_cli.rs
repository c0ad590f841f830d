//! End-to-end tests of the `churnwatch` binary over tiny proto3 JSON fixtures.
//!
//! They run the real executable, so flags, exit codes, stderr reports and the ticket file
//! format are checked as a user sees them. Fixtures live in `tests/fixtures/`; subscriber
//! numbers are China Unicom (the home operator) and timestamps are in March 2026.

#[path = "common/cli.rs"]
mod cli;

use std::path::{Path, PathBuf};
use std::process::Output;

use churnwatch::proto;
use cli::{churnwatch, fixture};
use prost::Message;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Replays JSON fixtures and returns the process output and the tickets it wrote.
fn replay(flags: &[(&str, PathBuf)]) -> (Output, Vec<proto::CareTicket>) {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("tickets.jsonl");
    let mut args: Vec<String> = vec!["replay".into()];
    for (flag, path) in flags {
        args.push(flag.to_string());
        args.push(path.display().to_string());
    }
    args.push("--out".into());
    args.push(out_path.display().to_string());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = churnwatch(&argv);
    assert!(out.status.success(), "replay failed: {}", stderr(&out));
    let text = std::fs::read_to_string(&out_path).unwrap();
    let tickets = text
        .lines()
        .map(|l| {
            serde_json::from_str::<proto::CareTicket>(l).expect("each output line is a CareTicket")
        })
        .collect();
    (out, tickets)
}

fn rules(tickets: &[proto::CareTicket]) -> Vec<&str> {
    tickets
        .iter()
        .flat_map(|t| t.signals.iter().map(|s| s.rule.as_str()))
        .collect()
}

// (a) -- awaits the core's competitor_care_call rule.
#[test]
fn a_five_minute_call_to_10086_raises_competitor_care_call() {
    let (out, tickets) = replay(&[("--cdr", fixture("care_call.cdr.jsonl"))]);
    assert!(
        rules(&tickets).contains(&"competitor_care_call"),
        "rules {:?}; stderr: {}",
        rules(&tickets),
        stderr(&out)
    );
    assert!(tickets.iter().all(|t| t.subscriber == "8613012345678"));
}

// (b) -- awaits the core's number_retention_suspension rule.
#[test]
fn a_number_retention_suspension_raises_its_ticket() {
    let (out, tickets) = replay(&[("--account", fixture("retention.account.jsonl"))]);
    assert!(
        rules(&tickets).contains(&"number_retention_suspension"),
        "{}",
        stderr(&out)
    );
}

// (c) -- awaits the core's overdue_bill rule.
#[test]
fn an_overdue_bill_raises_overdue_bill() {
    let (out, tickets) = replay(&[("--account", fixture("overdue.account.jsonl"))]);
    assert!(
        rules(&tickets).contains(&"overdue_bill"),
        "{}",
        stderr(&out)
    );
}

// (d), reporting half.
#[test]
fn malformed_lines_are_reported_as_file_line_reason_and_skipped() {
    let path = fixture("malformed.cdr.jsonl");
    let (out, _) = replay(&[("--cdr", path.clone())]);
    let err = stderr(&out);
    let name = path.display();
    assert!(err.contains(&format!("{name}:2: invalid JSON")), "{err}");
    assert!(
        err.contains(&format!(
            "{name}:3: subscriber number has a non-digit character"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{name}:4: unknown record type 42")),
        "{err}"
    );
    assert!(
        !err.contains(&format!("{name}:1:")) && !err.contains(&format!("{name}:5:")),
        "{err}"
    );
    assert!(
        err.contains("malformed         3"),
        "summary counts them: {err}"
    );
    assert!(
        err.contains("accepted          2"),
        "the good lines still reach the engine: {err}"
    );
    assert!(
        !err.contains("8613012345678"),
        "stderr must not show full numbers: {err}"
    );
}

// (d), processing half -- awaits the core's competitor_care_call rule.
#[test]
fn good_lines_after_malformed_ones_still_raise_tickets() {
    let (out, tickets) = replay(&[("--cdr", fixture("malformed.cdr.jsonl"))]);
    assert!(
        rules(&tickets).contains(&"competitor_care_call"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn summary_counts_outcomes_and_both_streams() {
    let (out, _) = replay(&[
        ("--cdr", fixture("care_call.cdr.jsonl")),
        ("--account", fixture("overdue.account.jsonl")),
        ("--outcomes", fixture("outcomes.jsonl")),
    ]);
    let err = stderr(&out);
    assert!(
        err.contains("events read       3 (2 CDRs, 1 account events)"),
        "{err}"
    );
    assert!(
        err.contains("RETAINED") && err.contains("UNREACHABLE"),
        "{err}"
    );
    assert!(err.contains("events/s"), "{err}");
}

#[test]
fn replay_without_input_fails_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("t.jsonl");
    let out = churnwatch(&["replay", "--out", out_path.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--cdr"), "{}", stderr(&out));
}

// (e)
#[test]
fn check_config_names_the_bad_key_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[engine]\nallowed_lateness_hours = 0\n").unwrap();
    let out = churnwatch(&["check-config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("engine.allowed_lateness_hours"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn check_config_accepts_the_annotated_example() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/churnwatch.example.toml");
    let out = churnwatch(&["check-config", example.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

#[test]
fn check_config_reports_an_unreadable_ported_numbers_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    let missing = dir.path().join("ported.csv");
    std::fs::write(
        &cfg,
        format!(
            "[numbering]\nported_numbers_file = {:?}\n",
            missing.display().to_string()
        ),
    )
    .unwrap();
    let out = churnwatch(&["check-config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("ported.csv"), "{}", stderr(&out));
}

/// Writes `lines` (proto3 JSON CDRs) as a length-delimited protobuf file.
fn write_protobuf_cdrs(path: &Path, lines: &[&str]) {
    let mut bytes = Vec::new();
    for line in lines {
        let m: proto::CallDetailRecord = serde_json::from_str(line).unwrap();
        m.encode_length_delimited(&mut bytes).unwrap();
    }
    std::fs::write(path, bytes).unwrap();
}

fn replay_protobuf() -> (Output, Vec<proto::CareTicket>) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("cdr.bin");
    let text = std::fs::read_to_string(fixture("care_call.cdr.jsonl")).unwrap();
    write_protobuf_cdrs(&input, &text.lines().collect::<Vec<_>>());
    let out_path = dir.path().join("tickets.pb");
    let out = churnwatch(&[
        "replay",
        "--cdr",
        input.to_str().unwrap(),
        "--input-format",
        "proto",
        "--format",
        "proto",
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let bytes = std::fs::read(&out_path).unwrap();
    let mut buf = bytes.as_slice();
    let mut tickets = Vec::new();
    while !buf.is_empty() {
        tickets.push(
            proto::CareTicket::decode_length_delimited(&mut buf)
                .expect("a length-delimited CareTicket"),
        );
    }
    (out, tickets)
}

// (f), reading half.
#[test]
fn protobuf_input_is_read_and_output_is_length_delimited() {
    let (out, _tickets) = replay_protobuf();
    let err = stderr(&out);
    assert!(err.contains("events read       2 (2 CDRs"), "{err}");
    assert!(err.contains("malformed         0"), "{err}");
}

// (f), tickets half -- awaits the core's competitor_care_call rule.
#[test]
fn protobuf_replay_round_trips_tickets() {
    let (out, tickets) = replay_protobuf();
    assert!(
        rules(&tickets).contains(&"competitor_care_call"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn demo_prints_a_table_and_a_summary() {
    let out = churnwatch(&["demo", "--in-process"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("planted journeys found"), "{text}");
    assert!(text.contains("subscribers"), "{text}");
}

/// The demo workload written out as JSON files and replayed through the binary finds the
/// same journeys: the JSON encoding carries every message kind the demo uses.
#[test]
fn the_demo_workload_replayed_from_files_finds_every_journey() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let (cdr_path, acct_path) = (
        dir.path().join("cdr.jsonl"),
        dir.path().join("account.jsonl"),
    );
    let mut cdr = std::io::BufWriter::new(std::fs::File::create(&cdr_path).unwrap());
    let mut acct = std::io::BufWriter::new(std::fs::File::create(&acct_path).unwrap());
    for ev in churnwatch::tools::workload::stories::workload() {
        match ev {
            churnwatch::tools::workload::WireEvent::Cdr(m) => {
                writeln!(cdr, "{}", serde_json::to_string(&m).unwrap())
            }
            churnwatch::tools::workload::WireEvent::Account(m) => {
                writeln!(acct, "{}", serde_json::to_string(&m).unwrap())
            }
        }
        .unwrap();
    }
    drop((cdr, acct));
    let (out, tickets) = replay(&[("--cdr", cdr_path), ("--account", acct_path)]);
    let err = stderr(&out);
    assert!(err.contains("malformed         0"), "{err}");
    for j in churnwatch::tools::workload::stories::planted() {
        assert!(
            tickets.iter().any(|t| t.subscriber == j.subscriber && t.signals.iter().any(|s| s.rule == j.rule)),
            "{} not found ({}); stderr: {err}",
            j.rule,
            j.story
        );
    }
}

/// Epoch ms of a Shanghai local time "YYYY-MM-DD HH:MM".
fn shanghai(local: &str) -> i64 {
    let naive = chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M").unwrap();
    naive.and_utc().timestamp_millis() - 8 * 3_600_000
}

fn account_event(id: &str, sub: &str, local: &str, kind: proto::account_event::Kind) -> String {
    let m = proto::AccountEvent {
        event_id: id.into(),
        subscriber: sub.into(),
        event_time_ms: shanghai(local),
        kind: Some(kind),
    };
    serde_json::to_string(&m).unwrap()
}

/// End of input closes the last day: a replay whose last events are a first bill of 3x the
/// plan fee and a contract update ending in 50 days raises both tickets.
#[test]
fn the_last_days_bill_and_contract_update_are_judged() {
    use proto::account_event::Kind;
    let dir = tempfile::tempdir().unwrap();
    let (bill_sub, contract_sub) = ("8613012345678", "8613012345679");
    let mut cdr = String::new();
    for d in 1..=19 {
        let m = proto::CallDetailRecord {
            record_id: format!("clock-{d}"),
            subscriber: "8613012340000".into(),
            event_time_ms: shanghai(&format!("2026-03-{d:02} 12:00")),
            r#type: proto::RecordType::VoiceOut as i32,
            other_party: "13012340001".into(),
            duration_s: 60,
            ..Default::default()
        };
        cdr.push_str(&serde_json::to_string(&m).unwrap());
        cdr.push('\n');
    }
    let plan = |id: &str, sub: &str| {
        account_event(
            id,
            sub,
            "2026-03-01 09:00",
            Kind::PlanChanged(proto::PlanChanged {
                plan_id: "p88".into(),
                monthly_fee: 8_800,
            }),
        )
    };
    let lines = [
        account_event(
            "profile",
            bill_sub,
            "2026-03-01 08:00",
            Kind::Profile(proto::ProfileUpdated {
                do_not_disturb: false,
                key_person: false,
                activated_time_ms: shanghai("2026-02-20 09:00"),
            }),
        ),
        plan("plan-a", bill_sub),
        plan("plan-b", contract_sub),
        account_event(
            "bill",
            bill_sub,
            "2026-03-20 09:00",
            Kind::BillIssued(proto::BillIssued {
                period: "2026-02".into(),
                amount: 26_400,
                due_time_ms: shanghai("2026-04-10 00:00"),
            }),
        ),
        account_event(
            "contract",
            contract_sub,
            "2026-03-20 10:00",
            Kind::Contract(proto::ContractUpdated {
                end_time_ms: shanghai("2026-05-09 00:00"),
            }),
        ),
    ];
    let (cdr_path, acct_path) = (dir.path().join("cdr.jsonl"), dir.path().join("acct.jsonl"));
    std::fs::write(&cdr_path, cdr).unwrap();
    std::fs::write(&acct_path, lines.join("\n") + "\n").unwrap();
    let (out, tickets) = replay(&[("--cdr", cdr_path), ("--account", acct_path)]);
    let rules_for = |sub: &str| {
        tickets
            .iter()
            .filter(|t| t.subscriber == sub)
            .flat_map(|t| t.signals.iter().map(|s| s.rule.as_str()))
            .collect::<Vec<_>>()
    };
    assert_eq!(rules_for(bill_sub), vec!["bill_shock"], "{}", stderr(&out));
    assert_eq!(
        rules_for(contract_sub),
        vec!["contract_expiry"],
        "{}",
        stderr(&out)
    );
}
