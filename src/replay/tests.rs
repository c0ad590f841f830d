//! Replay end to end on small files: merging, malformed records, outcomes, lateness.

use super::*;
use crate::codec;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn opts(dir: &Path, cdr: Option<PathBuf>, account: Option<PathBuf>) -> ReplayOptions {
    ReplayOptions {
        cdr,
        account,
        outcomes: None,
        out: dir.join("tickets.jsonl"),
        input_format: None,
        format: crate::config::TicketFormat::Json,
        progress: false,
        report: None,
        journeys: None,
    }
}

const CDR1: &str = r#"{"recordId":"c1","subscriber":"8613012345678","eventTimeMs":"1775000000000","type":"VOICE_OUT","otherParty":"13800138000","durationS":60}"#;
const CDR2: &str = r#"{"recordId":"c2","subscriber":"8613012345678","eventTimeMs":"1775000300000","type":"SMS_OUT","otherParty":"13800138000"}"#;
const ACCT1: &str = r#"{"eventId":"a1","subscriber":"8613012345678","eventTimeMs":"1775000100000","complaint":{"category":"signal"}}"#;

#[test]
fn both_streams_are_read_and_malformed_records_are_counted_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let cdr = write(
        dir.path(),
        "cdr.jsonl",
        &format!("{CDR1}\n\n{{oops\n{CDR2}\n"),
    );
    let acct = write(dir.path(), "acct.jsonl", &format!("{ACCT1}\n"));
    let mut diag = Vec::new();
    let s = run_with(
        &opts(dir.path(), Some(cdr), Some(acct)),
        &Config::default(),
        &mut diag,
    )
    .unwrap();
    let diag = String::from_utf8(diag).unwrap();
    assert_eq!(s.cdr_records, 3, "blank lines are not records");
    assert_eq!(s.account_records, 1);
    assert_eq!(s.malformed, 1);
    assert_eq!(s.engine.accepted, 3);
    assert!(
        diag.starts_with(&format!(
            "{}:3: invalid JSON",
            dir.path().join("cdr.jsonl").display()
        )),
        "{diag}"
    );
    assert_eq!(s.malformed_examples.len(), 1);
    assert!(s.to_string().contains("malformed         1"), "{s}");
}

#[test]
fn no_input_and_missing_files_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = run(&opts(dir.path(), None, None), &Config::default()).unwrap_err();
    assert!(matches!(err, ReplayError::NoInput));
    let missing = dir.path().join("nope.jsonl");
    let err = run(&opts(dir.path(), Some(missing), None), &Config::default()).unwrap_err();
    assert!(err.to_string().contains("nope.jsonl"), "{err}");
}

#[test]
fn protobuf_input_is_read_record_by_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    for line in [CDR1, CDR2] {
        codec::write_delimited(&mut bytes, &codec::cdr_from_json(line).unwrap()).unwrap();
    }
    let bad = proto::CallDetailRecord {
        record_id: "x".into(),
        ..Default::default()
    };
    codec::write_delimited(&mut bytes, &bad).unwrap();
    let p = dir.path().join("cdr.pb");
    std::fs::write(&p, bytes).unwrap();
    let mut diag = Vec::new();
    let s = run_with(
        &opts(dir.path(), Some(p), None),
        &Config::default(),
        &mut diag,
    )
    .unwrap();
    assert_eq!((s.cdr_records, s.malformed, s.engine.accepted), (3, 1, 2));
    assert!(String::from_utf8(diag)
        .unwrap()
        .contains("cdr.pb:3: missing subscriber"));
}

#[test]
fn outcomes_are_counted_by_outcome_and_invalid_ones_reported() {
    let dir = tempfile::tempdir().unwrap();
    let cdr = write(dir.path(), "cdr.jsonl", &format!("{CDR1}\n"));
    let line = |id: &str, outcome: &str| {
        format!(
            r#"{{"ticketId":"{id}","subscriber":"8613012345678","eventTimeMs":"1775000000000","outcome":"{outcome}"}}"#
        )
    };
    let text = [
        line("t1", "RETAINED"),
        line("t2", "RETAINED"),
        line("t3", "CHURNED"),
        r#"{"ticketId":"t4","outcome":"RETAINED"}"#.to_string(),
    ]
    .join("\n");
    let outcomes = write(dir.path(), "outcomes.jsonl", &text);
    let mut o = opts(dir.path(), Some(cdr), None);
    o.outcomes = Some(outcomes);
    let mut diag = Vec::new();
    let s = run_with(&o, &Config::default(), &mut diag).unwrap();
    assert_eq!(s.outcomes.get("RETAINED"), Some(&2));
    assert_eq!(s.outcomes.get("CHURNED"), Some(&1));
    assert_eq!((s.outcome_records, s.malformed), (4, 1));
    assert!(String::from_utf8(diag)
        .unwrap()
        .contains("outcomes.jsonl:4: missing subscriber"));
    assert_eq!(s.engine.outcomes_unknown_ticket, 3);
}

/// A competitor care call at `day` (days after the fixture's base time).
fn care_call_at(id: &str, day: i64) -> String {
    let t = 1_775_000_000_000 + day * 86_400_000;
    format!(
        r#"{{"recordId":"{id}","subscriber":"8613012345678","eventTimeMs":"{t}","type":"VOICE_OUT","otherParty":"10086","durationS":300}}"#
    )
}

fn ticket_ids(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|l| {
            serde_json::from_str::<proto::CareTicket>(l)
                .unwrap()
                .ticket_id
        })
        .collect()
}

/// Outcomes are applied at their event time among the records: RETAINED after the first
/// call's ticket holds back the second call's a week later (the rule's cooldown from
/// the outcome); the same outcome dated after the second call does not.
#[test]
fn a_retained_outcome_suppresses_a_later_ticket_in_event_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let calls = format!("{}\n{}\n", care_call_at("c1", 0), care_call_at("c2", 7));
    let cdr = write(dir.path(), "cdr.jsonl", &calls);
    let base = run_with(
        &opts(dir.path(), Some(cdr.clone()), None),
        &Config::default(),
        &mut Vec::new(),
    )
    .unwrap();
    assert_eq!(base.engine.tickets, 2);
    let first = ticket_ids(&dir.path().join("tickets.jsonl"))[0].clone();
    for (day, tickets) in [(1i64, 1u64), (8, 2)] {
        let t = 1_775_000_000_000 + day * 86_400_000;
        let outcome = format!(
            r#"{{"ticketId":"{first}","subscriber":"8613012345678","eventTimeMs":"{t}","outcome":"RETAINED"}}"#
        );
        let mut o = opts(dir.path(), Some(cdr.clone()), None);
        o.outcomes = Some(write(dir.path(), "outcomes.jsonl", &outcome));
        let s = run_with(&o, &Config::default(), &mut Vec::new()).unwrap();
        assert_eq!(s.engine.tickets, tickets, "outcome on day {day}");
        assert_eq!(s.engine.suppressed.contains_key("retained"), tickets == 1);
    }
}

fn cdr_at(id: &str, day: i64) -> String {
    let t = 1_775_000_000_000 + day * 86_400_000;
    format!(
        r#"{{"recordId":"{id}","subscriber":"8613012345678","eventTimeMs":"{t}","type":"SMS_OUT","otherParty":"13800138000"}}"#
    )
}

fn complaint_at(id: &str, day: i64) -> String {
    let t = 1_775_000_000_000 + day * 86_400_000;
    format!(
        r#"{{"eventId":"{id}","subscriber":"8613012345678","eventTimeMs":"{t}","complaint":{{}}}}"#
    )
}

/// Were the files concatenated instead of merged, the day-1 complaint would reach the
/// engine after the day-12 CDR and be rejected as late (lateness is at most 48 h).
#[test]
fn streams_are_merged_by_event_time() {
    let dir = tempfile::tempdir().unwrap();
    let cdr = write(
        dir.path(),
        "cdr.jsonl",
        &format!("{}\n{}\n", cdr_at("c1", 10), cdr_at("c2", 12)),
    );
    let acct = write(
        dir.path(),
        "acct.jsonl",
        &format!("{}\n{}\n", complaint_at("a1", 1), complaint_at("a2", 11)),
    );
    let s = run_with(
        &opts(dir.path(), Some(cdr), Some(acct)),
        &Config::default(),
        &mut Vec::new(),
    )
    .unwrap();
    assert_eq!((s.engine.accepted, s.engine.late), (4, 0), "{s}");
}

/// Disorder inside one file is not repaired: it reaches the engine as it would from
/// mediation, and the engine's lateness rule decides. Awaits the core's watermark.
#[test]
fn records_late_within_a_file_are_rejected_by_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let cdr = write(
        dir.path(),
        "cdr.jsonl",
        &format!(
            "{}\n{}\n{}\n",
            cdr_at("c1", 10),
            cdr_at("c2", 5),
            cdr_at("c1", 10)
        ),
    );
    let s = run_with(
        &opts(dir.path(), Some(cdr), None),
        &Config::default(),
        &mut Vec::new(),
    )
    .unwrap();
    assert_eq!(
        (s.engine.accepted, s.engine.late, s.engine.duplicates),
        (1, 1, 1),
        "{s}"
    );
}
