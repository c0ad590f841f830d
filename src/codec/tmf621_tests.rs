use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::*;

fn ticket(priority: proto::Priority) -> proto::CareTicket {
    proto::CareTicket {
        ticket_id: "cw-5236d4fba95eae30".into(),
        subscriber: "8613012345678".into(),
        created_time_ms: 1_773_003_600_000,
        signals: vec![
            proto::Signal {
                rule: "competitor_care_call".into(),
                summary: "Called China Mobile customer service for 5m00s".into(),
                evidence: BTreeMap::from([("duration_s".to_string(), 300.0)]),
                first_seen_ms: 1_773_003_600_000,
                last_seen_ms: 1_773_003_900_000,
            },
            proto::Signal {
                rule: "overdue_bill".into(),
                summary: "Bill overdue".into(),
                evidence: BTreeMap::from([("amount".to_string(), 88.5), ("days".to_string(), 3.0)]),
                first_seen_ms: 1_773_000_000_000,
                last_seen_ms: 1_773_000_000_000,
            },
        ],
        tier: "vip_gold".into(),
        priority: priority as i32,
        queue: "retention".into(),
        risk_score: 70,
        suggested_action: "Call today.".into(),
        control_group: false,
        no_contact_reason: String::new(),
        ..Default::default()
    }
}

fn json_of(t: &proto::CareTicket) -> Value {
    serde_json::from_slice(&ticket_to_tmf621(t)).unwrap()
}

fn characteristic<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["troubleTicketCharacteristic"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no characteristic {name}: {v}"))
}

#[test]
fn the_ticket_maps_to_a_trouble_ticket_with_every_field() {
    let v = json_of(&ticket(proto::Priority::P2));
    assert_eq!(v["id"], "cw-5236d4fba95eae30");
    assert_eq!(v["@type"], "TroubleTicket");
    assert_eq!(v["name"], "Called China Mobile customer service for 5m00s");
    assert_eq!(
        v["description"],
        "Called China Mobile customer service for 5m00s; Bill overdue"
    );
    assert_eq!(v["severity"], "High");
    assert_eq!(v["priority"], "2");
    assert_eq!(v["status"], "acknowledged");
    assert_eq!(v["ticketType"], "churnRisk");
    assert_eq!(v["creationDate"], "2026-03-08T21:00:00.000Z");
    assert_eq!(
        v["relatedParty"],
        json!([{
            "@type": "RelatedPartyRefOrPartyRoleRef",
            "role": "customer",
            "partyOrPartyRole": {
                "@type": "PartyRef",
                "@referredType": "Individual",
                "id": "8613012345678"
            }
        }])
    );
    assert!(v.get("lastUpdate").is_none(), "{v}");
}

#[test]
fn one_note_per_signal_carries_its_evidence() {
    let v = json_of(&ticket(proto::Priority::P2));
    let notes = v["note"].as_array().unwrap();
    assert_eq!(notes.len(), 2);
    assert_eq!(notes[0]["@type"], "Note");
    assert_eq!(notes[0]["id"], "1-competitor_care_call");
    assert_eq!(notes[0]["author"], "churnwatch");
    assert_eq!(notes[0]["date"], "2026-03-08T21:05:00.000Z");
    assert_eq!(
        notes[0]["text"],
        "[competitor_care_call] Called China Mobile customer service for 5m00s. \
         Evidence: duration_s=300. Seen 2026-03-08T21:00:00.000Z to 2026-03-08T21:05:00.000Z."
    );
    let text = notes[1]["text"].as_str().unwrap();
    assert!(text.starts_with("[overdue_bill] Bill overdue"), "{text}");
    assert!(text.contains("Evidence: amount=88.5, days=3"), "{text}");
}

#[test]
fn characteristics_name_tier_queue_score_control_group_and_action() {
    let v = json_of(&ticket(proto::Priority::P2));
    let chars = v["troubleTicketCharacteristic"].as_array().unwrap();
    assert_eq!(chars.len(), 5, "no noContactReason unless set: {v}");
    for (name, kind, value_type, value) in [
        ("tier", "StringCharacteristic", "string", json!("vip_gold")),
        (
            "queue",
            "StringCharacteristic",
            "string",
            json!("retention"),
        ),
        ("riskScore", "IntegerCharacteristic", "integer", json!(70)),
        (
            "controlGroup",
            "BooleanCharacteristic",
            "boolean",
            json!(false),
        ),
        (
            "suggestedAction",
            "StringCharacteristic",
            "string",
            json!("Call today."),
        ),
    ] {
        let c = characteristic(&v, name);
        assert_eq!(c["@type"], kind, "{name}");
        assert_eq!(c["valueType"], value_type, "{name}");
        assert_eq!(c["value"], value, "{name}");
    }
}

#[test]
fn a_control_group_ticket_says_so_and_why_no_one_calls() {
    let mut t = ticket(proto::Priority::P3);
    t.control_group = true;
    t.queue = "no_contact".into();
    t.no_contact_reason = "control_group".into();
    let v = json_of(&t);
    assert_eq!(characteristic(&v, "controlGroup")["value"], true);
    assert_eq!(characteristic(&v, "queue")["value"], "no_contact");
    assert_eq!(
        characteristic(&v, "noContactReason")["value"],
        "control_group"
    );
    assert_eq!(v["status"], "acknowledged");
}

#[test]
fn p1_to_p4_map_to_severity_and_priority() {
    for (p, severity, priority) in [
        (proto::Priority::P1, "Critical", "1"),
        (proto::Priority::P2, "High", "2"),
        (proto::Priority::P3, "Medium", "3"),
        (proto::Priority::P4, "Low", "4"),
    ] {
        let v = json_of(&ticket(p));
        assert_eq!(v["severity"], severity, "{p:?}");
        assert_eq!(v["priority"], priority, "{p:?}");
    }
    for p in [proto::Priority::Unspecified as i32, 17, -1] {
        let mut t = ticket(proto::Priority::P1);
        t.priority = p;
        let v = json_of(&t);
        assert!(
            v.get("severity").is_none() && v.get("priority").is_none(),
            "{v}"
        );
    }
}

#[test]
fn a_re_emission_keeps_the_id_and_replaces_the_whole_object() {
    let first = ticket(proto::Priority::P2);
    let mut corrected = first.clone();
    corrected.created_time_ms -= 3_600_000;
    corrected.signals[0].first_seen_ms -= 3_600_000;
    corrected.queue = "no_contact".into();
    corrected.no_contact_reason = "do_not_disturb".into();
    let (a, b) = (json_of(&first), json_of(&corrected));
    assert_eq!(a["id"], b["id"]);
    assert_eq!(b["creationDate"], "2026-03-08T20:00:00.000Z");
    assert_eq!(characteristic(&b, "queue")["value"], "no_contact");
    assert!(b.get("lastUpdate").is_none());
    // Deterministic: the same ticket gives the same bytes (at-least-once republishing).
    assert_eq!(ticket_to_tmf621(&first), ticket_to_tmf621(&first));
}

#[test]
fn hostile_values_do_not_panic() {
    let mut t = ticket(proto::Priority::P1);
    t.created_time_ms = i64::MAX;
    t.signals[0].first_seen_ms = i64::MIN;
    t.signals[0].evidence.insert("nan".into(), f64::NAN);
    t.signals[1].summary.clear();
    t.signals.swap(0, 1);
    let v = json_of(&t);
    assert!(v.get("creationDate").is_none(), "{v}");
    assert_eq!(v["name"], "Churn risk");
    assert!(v["note"][1]["text"].as_str().unwrap().contains("nan=NaN"));

    let empty = proto::CareTicket::default();
    let v = json_of(&empty);
    assert_eq!(v["name"], "Churn risk");
    assert_eq!(v["note"], json!([]));
}

#[test]
fn lines_round_trip_through_the_structs() {
    let t = ticket(proto::Priority::P4);
    let mut line = Vec::new();
    write_ticket_tmf621(&mut line, &t).unwrap();
    assert_eq!(line.last(), Some(&b'\n'));
    let back: TroubleTicket = serde_json::from_slice(&line).unwrap();
    assert_eq!(back, to_trouble_ticket(&t));
    assert_eq!(&line[..line.len() - 1], ticket_to_tmf621(&t).as_slice());
}

#[test]
fn an_open_ticket_is_acknowledged_with_no_change_reason() {
    let v = json_of(&ticket(proto::Priority::P2));
    assert_eq!(v["status"], "acknowledged");
    assert!(v.get("statusChangeReason").is_none());
}

#[test]
fn a_withdrawn_ticket_is_resolved_or_cancelled_with_its_reason() {
    let mut t = ticket(proto::Priority::P2);
    t.status = proto::TicketStatus::Withdrawn as i32;
    t.status_reason = "paid".into();
    let v = json_of(&t);
    assert_eq!(v["status"], "resolved");
    assert_eq!(v["statusChangeReason"], "paid");
    t.status_reason = "churned".into();
    let v = json_of(&t);
    assert_eq!(v["status"], "cancelled");
    assert_eq!(v["statusChangeReason"], "churned");
    assert_eq!(v["id"], t.ticket_id.as_str(), "the same id: an upsert");
}
