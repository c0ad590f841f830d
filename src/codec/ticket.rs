//! Tickets out: a `CareTicket` as one proto3 JSON line, one length-delimited protobuf
//! record, or one TMF621 `TroubleTicket` JSON line (see [`super::tmf621`]), the formats the
//! sinks (Kafka, replay output files) write.

use std::io::{self, Write};

use super::{tmf621, write_delimited};
use crate::config::TicketFormat;
use crate::proto;

/// One ticket as a Kafka record value: one message, no framing, no trailing newline.
pub fn encode_ticket(format: TicketFormat, t: &proto::CareTicket) -> Vec<u8> {
    match format {
        TicketFormat::Protobuf => prost::Message::encode_to_vec(t),
        TicketFormat::Json => ticket_to_json_line(t).trim_end().as_bytes().to_vec(),
        TicketFormat::Tmf621 => tmf621::ticket_to_tmf621(t),
    }
}

/// Writes one ticket to a file: a JSON line (proto3 or TMF621) or a length-delimited
/// protobuf record.
pub fn write_ticket(
    w: &mut impl Write,
    format: TicketFormat,
    t: &proto::CareTicket,
) -> io::Result<()> {
    match format {
        TicketFormat::Protobuf => write_ticket_protobuf(w, t),
        TicketFormat::Json => write_ticket_json(w, t),
        TicketFormat::Tmf621 => tmf621::write_ticket_tmf621(w, t),
    }
}

/// One ticket as a proto3 JSON line (with the trailing newline).
pub fn ticket_to_json_line(t: &proto::CareTicket) -> String {
    // Serializing generated messages to a String cannot fail: every map key is a string and
    // no field has a fallible Serialize impl. Keep the record rather than panic regardless.
    let mut s = serde_json::to_string(t).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}

/// Writes one ticket as a proto3 JSON line.
pub fn write_ticket_json(w: &mut impl Write, t: &proto::CareTicket) -> io::Result<()> {
    serde_json::to_writer(&mut *w, t).map_err(io::Error::other)?;
    w.write_all(b"\n")
}

/// Writes one ticket as a length-delimited protobuf record.
pub fn write_ticket_protobuf(w: &mut impl Write, t: &proto::CareTicket) -> io::Result<()> {
    write_delimited(w, t)
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::codec::{read_delimited, Frame};

    #[test]
    fn tickets_round_trip_through_json_and_delimited_protobuf() {
        let t = proto::CareTicket {
            ticket_id: "t1".into(),
            subscriber: "8613012345678".into(),
            created_time_ms: 1_775_000_000_000,
            signals: vec![proto::Signal {
                rule: "overdue_bill".into(),
                ..Default::default()
            }],
            priority: proto::Priority::P2 as i32,
            risk_score: 55,
            ..Default::default()
        };
        let line = ticket_to_json_line(&t);
        assert!(line.ends_with('\n'));
        assert!(line.contains(r#""priority":"P2""#), "{line}");
        let back: proto::CareTicket = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(back, t);

        let mut bytes = Vec::new();
        write_ticket_protobuf(&mut bytes, &t).unwrap();
        write_ticket_protobuf(&mut bytes, &t).unwrap();
        let mut r = io::Cursor::new(bytes);
        let mut buf = Vec::new();
        for _ in 0..2 {
            assert_eq!(read_delimited(&mut r, &mut buf).unwrap(), Frame::Record);
            assert_eq!(proto::CareTicket::decode(buf.as_slice()).unwrap(), t);
        }
        assert_eq!(read_delimited(&mut r, &mut buf).unwrap(), Frame::End);
    }
}
