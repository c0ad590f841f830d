//! Tickets out as TM Forum TMF621 `TroubleTicket` JSON objects (`kafka.ticket_format =
//! "tmf621"`, `replay --format tmf621`).
//!
//! CRM and trouble-ticket systems commonly ingest tickets through the TMF621 Trouble Ticket
//! API; publishing its shape saves every operator a translation job. The mapping follows
//! TMF621 v5 (the version that has `troubleTicketCharacteristic`), camelCase with `@type`
//! on every object:
//!
//! | `CareTicket` | `TroubleTicket` |
//! |---|---|
//! | `ticket_id` | `id` |
//! | first (strongest) signal's summary | `name` |
//! | every signal's summary, joined by `"; "` | `description` |
//! | `priority` | `severity`, `priority` (table below) |
//! | `status`, `status_reason` | `status`, `statusChangeReason` (table below) |
//! | (always) | `ticketType: "churnRisk"` |
//! | `created_time_ms` | `creationDate`, ISO 8601 UTC with milliseconds |
//! | `subscriber` | `relatedParty[0]`: role `customer`, a `PartyRef` to an `Individual` |
//! | `signals[]` | `note[]`: one per signal, its rule, summary, evidence and time span |
//! | `tier`, `queue`, `risk_score`, `control_group`, `suggested_action`, `no_contact_reason` | `troubleTicketCharacteristic[]` (`noContactReason` only when set) |
//!
//! Priority (TMF621 leaves both fields free text; churnwatch uses ITIL's words):
//!
//! | churnwatch | `severity` | `priority` |
//! |---|---|---|
//! | P1 | `Critical` | `1` |
//! | P2 | `High` | `2` |
//! | P3 | `Medium` | `3` |
//! | P4 | `Low` | `4` |
//! | unspecified | omitted | omitted |
//!
//! Status (TMF621's state machine; see docs/withdrawals.md):
//!
//! | churnwatch | `status` | `statusChangeReason` |
//! |---|---|---|
//! | `OPEN` | `acknowledged`: raised and accepted, no agent has acted yet | omitted |
//! | `WITHDRAWN`, reason `churned` | `cancelled`: the subscriber has gone, nothing left to do | `churned` |
//! | `WITHDRAWN`, any other reason | `resolved`: the cause went by itself (`paid`, `resumed`, `renewed`, `recovered`) | the reason |
//!
//! A withdrawal is the ticket published again under the same `id`; TMF621 allows both
//! `acknowledged → resolved` and `acknowledged → cancelled`, and a ticket an agent already
//! worked simply takes the later state.
//!
//! **Re-emissions.** A ticket corrected by late evidence, or re-routed by a late
//! do-not-disturb, is published again with the same `id` and the whole current object: the
//! consumer upserts by `id` (a PUT, or a PATCH of every field). The object is a pure
//! function of the `CareTicket`, so a ticket republished after a crash (at-least-once) is
//! byte-identical, and no wall-clock field (`lastUpdate`, `statusChangeDate`) is set: a
//! correction may carry *earlier* evidence, and a consumer that dropped updates whose
//! `lastUpdate` is not newer would lose it.

use std::fmt::Write as _;
use std::io::{self, Write};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::proto;

/// Who wrote the notes.
pub const AUTHOR: &str = "churnwatch";
/// `ticketType` of every churnwatch ticket.
pub const TICKET_TYPE: &str = "churnRisk";
/// `status` of an open churnwatch ticket: raised and accepted, no agent has acted yet.
pub const STATUS: &str = "acknowledged";
/// `status` of a ticket withdrawn because its cause went by itself.
pub const STATUS_RESOLVED: &str = "resolved";
/// `status` of a ticket withdrawn because the subscriber churned.
pub const STATUS_CANCELLED: &str = "cancelled";

/// A TMF621 `TroubleTicket`, with the fields churnwatch fills.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TroubleTicket {
    pub id: String,
    #[serde(rename = "@type")]
    pub kind: String,
    pub name: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_change_reason: Option<String>,
    pub ticket_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_date: Option<String>,
    pub related_party: Vec<RelatedParty>,
    pub note: Vec<Note>,
    pub trouble_ticket_characteristic: Vec<Characteristic>,
}

/// TMF621 v5 `RelatedPartyRefOrPartyRoleRef`: the subscriber as the ticket's customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelatedParty {
    #[serde(rename = "@type")]
    pub kind: String,
    pub role: String,
    pub party_or_party_role: PartyRef,
}

/// TMF `PartyRef`: the subscriber's number, referring to an `Individual`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartyRef {
    #[serde(rename = "@type")]
    pub kind: String,
    #[serde(rename = "@referredType")]
    pub referred_type: String,
    pub id: String,
}

/// TMF `Note`: one signal with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    #[serde(rename = "@type")]
    pub kind: String,
    pub id: String,
    pub author: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    pub text: String,
}

/// TMF `Characteristic` (`StringCharacteristic`, `IntegerCharacteristic`...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Characteristic {
    #[serde(rename = "@type")]
    pub kind: String,
    pub name: String,
    pub value_type: String,
    pub value: Value,
}

/// TMF621 `severity` and `priority` of a churnwatch priority (`None` when unspecified).
pub fn severity_priority(p: i32) -> Option<(&'static str, &'static str)> {
    match proto::Priority::try_from(p).ok()? {
        proto::Priority::P1 => Some(("Critical", "1")),
        proto::Priority::P2 => Some(("High", "2")),
        proto::Priority::P3 => Some(("Medium", "3")),
        proto::Priority::P4 => Some(("Low", "4")),
        proto::Priority::Unspecified => None,
    }
}

/// ISO 8601 UTC with milliseconds (`2026-03-08T21:00:00.000Z`); `None` out of chrono's range.
pub fn iso8601(ms: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// The TMF621 `TroubleTicket` of a care ticket.
pub fn to_trouble_ticket(t: &proto::CareTicket) -> TroubleTicket {
    let (severity, priority) = severity_priority(t.priority).unzip();
    let summaries: Vec<&str> = t.signals.iter().map(|s| s.summary.as_str()).collect();
    TroubleTicket {
        id: t.ticket_id.clone(),
        kind: "TroubleTicket".into(),
        name: summaries
            .first()
            .filter(|s| !s.is_empty())
            .map_or_else(|| "Churn risk".to_string(), |s| s.to_string()),
        description: summaries.join("; "),
        severity: severity.map(String::from),
        priority: priority.map(String::from),
        status: status(t).into(),
        status_change_reason: (t.status == proto::TicketStatus::Withdrawn as i32)
            .then(|| t.status_reason.clone()),
        ticket_type: TICKET_TYPE.into(),
        creation_date: iso8601(t.created_time_ms),
        related_party: vec![customer(&t.subscriber)],
        note: t
            .signals
            .iter()
            .enumerate()
            .map(|(i, s)| note(i, s))
            .collect(),
        trouble_ticket_characteristic: characteristics(t),
    }
}

/// TMF621 `status` of a ticket: `acknowledged` while open; withdrawn, `cancelled` when
/// the subscriber churned and `resolved` when the cause went by itself.
pub fn status(t: &proto::CareTicket) -> &'static str {
    if t.status != proto::TicketStatus::Withdrawn as i32 {
        STATUS
    } else if t.status_reason == "churned" {
        STATUS_CANCELLED
    } else {
        STATUS_RESOLVED
    }
}

fn customer(subscriber: &str) -> RelatedParty {
    RelatedParty {
        kind: "RelatedPartyRefOrPartyRoleRef".into(),
        role: "customer".into(),
        party_or_party_role: PartyRef {
            kind: "PartyRef".into(),
            referred_type: "Individual".into(),
            id: subscriber.into(),
        },
    }
}

/// One note per signal: `[rule] summary. Evidence: k=v, k=v. Seen FIRST to LAST.`, dated
/// by the signal's last evidence.
fn note(i: usize, s: &proto::Signal) -> Note {
    let mut text = format!("[{}] {}", s.rule, s.summary);
    if !s.evidence.is_empty() {
        let evidence: Vec<String> = s.evidence.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = write!(text, ". Evidence: {}", evidence.join(", "));
    }
    if let (Some(first), Some(last)) = (iso8601(s.first_seen_ms), iso8601(s.last_seen_ms)) {
        let _ = write!(text, ". Seen {first} to {last}.");
    }
    Note {
        kind: "Note".into(),
        id: format!("{}-{}", i + 1, s.rule),
        author: AUTHOR.into(),
        date: iso8601(s.last_seen_ms),
        text,
    }
}

fn characteristics(t: &proto::CareTicket) -> Vec<Characteristic> {
    let mut out = vec![
        text_char("tier", &t.tier),
        text_char("queue", &t.queue),
        Characteristic {
            kind: "IntegerCharacteristic".into(),
            name: "riskScore".into(),
            value_type: "integer".into(),
            value: t.risk_score.into(),
        },
        Characteristic {
            kind: "BooleanCharacteristic".into(),
            name: "controlGroup".into(),
            value_type: "boolean".into(),
            value: t.control_group.into(),
        },
        text_char("suggestedAction", &t.suggested_action),
    ];
    if !t.no_contact_reason.is_empty() {
        out.push(text_char("noContactReason", &t.no_contact_reason));
    }
    out
}

fn text_char(name: &str, value: &str) -> Characteristic {
    Characteristic {
        kind: "StringCharacteristic".into(),
        name: name.into(),
        value_type: "string".into(),
        value: value.into(),
    }
}

/// One ticket as a TMF621 JSON object, without a newline (a Kafka record's value).
pub fn ticket_to_tmf621(t: &proto::CareTicket) -> Vec<u8> {
    // Plain structs of strings, numbers and booleans: serializing cannot fail. Keep the
    // record rather than panic regardless.
    serde_json::to_vec(&to_trouble_ticket(t))
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}").into_bytes())
}

/// Writes one ticket as a TMF621 JSON line.
pub fn write_ticket_tmf621(w: &mut impl Write, t: &proto::CareTicket) -> io::Result<()> {
    serde_json::to_writer(&mut *w, &to_trouble_ticket(t)).map_err(io::Error::other)?;
    w.write_all(b"\n")
}

#[cfg(test)]
#[path = "tmf621_tests.rs"]
mod tests;
