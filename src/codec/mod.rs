//! Wire bytes to core events and tickets back to wire bytes.
//!
//! Two encodings of the same contract (`proto/churnwatch/v1`): proto3 JSON, one message per
//! line (what people write by hand and what the replay files hold), and protobuf framed as
//! length-delimited records (varint length, then the message; what Kafka and bulk files
//! carry). Decoding is split in two steps so every adapter shares the second one:
//!
//! 1. bytes -> generated `proto` message (`*_from_json`, `*_from_protobuf`);
//! 2. `proto` message -> validated core type ([`cdr_from_proto`], [`account_from_proto`]),
//!    which is where every check the core relies on is made: the core never sees a
//!    malformed record.
//!
//! A [`DecodeError`]'s `Display` text is the human reason printed next to `FILE:LINE` and,
//! later, the dead-letter reason, so it names what is wrong in the record's own terms.
//!
//! # Layout
//!
//! - `error.rs`: [`DecodeError`], why a record cannot be used.
//! - `message.rs`: step 1, JSON lines and protobuf bytes to `proto` messages.
//! - `validate.rs`: step 2, `proto` messages to validated core events.
//! - `value.rs`: Kafka record values ([`decode_value_into`], [`peek_event_time`]).
//! - `json_fast.rs`: the JSON CDR without allocation or error values, on the hot path.
//! - `mask.rs`: masking of subscriber-length digit runs in error text.
//! - `ticket.rs`: tickets out, as JSON lines or framed protobuf.
//! - `tmf621.rs`: tickets out as TM Forum TMF621 `TroubleTicket` objects, for CRMs.
//! - `frame.rs`: length-delimited protobuf framing ([`read_delimited`], [`write_delimited`]).

mod error;
mod frame;
mod json_fast;
mod mask;
mod message;
mod ticket;
pub mod tmf621;
mod validate;
mod value;

pub use error::DecodeError;
pub use frame::{read_delimited, write_delimited, Frame, FrameError, MAX_FRAME_BYTES};
pub use message::{
    account_from_json, account_from_protobuf, cdr_from_json, cdr_from_protobuf, outcome_from_json,
    outcome_from_protobuf,
};
pub use ticket::{
    encode_ticket, ticket_to_json_line, write_ticket, write_ticket_json, write_ticket_protobuf,
};
pub use validate::{
    account_from_proto, cdr_from_proto, outcome_from_proto, MAX_EVENT_TIME_MS, MIN_EVENT_TIME_MS,
};
pub use value::{decode_cdr_into, decode_value_into, peek_event_time};

/// Lines and helpers shared by the tests of step 1, step 2 and Kafka values.
#[cfg(test)]
mod fixtures {
    use super::{account_from_json, account_from_proto, cdr_from_json, cdr_from_proto};

    pub const GOOD_CDR: &str = r#"{"recordId":"r1","subscriber":"8613012345678","eventTimeMs":"1775000000000","type":"VOICE_OUT","otherParty":"10086","durationS":300,"charge":"30","callReference":"c1"}"#;

    pub fn cdr_err(line: &str) -> String {
        match cdr_from_json(line) {
            Ok(m) => cdr_from_proto(&m).map(|_| ()).unwrap_err().to_string(),
            Err(e) => e.to_string(),
        }
    }

    pub fn acct_err(line: &str) -> String {
        match account_from_json(line) {
            Ok(m) => account_from_proto(&m).map(|_| ()).unwrap_err().to_string(),
            Err(e) => e.to_string(),
        }
    }
}
