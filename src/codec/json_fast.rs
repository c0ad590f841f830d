//! The JSON CDR on the hot path: decoded into a reused message, with no allocation once its
//! strings have grown and no error value built.
//!
//! **Why.** The generated (pbjson) decoder allocates every string field anew, and reads
//! each number through an untagged "string or number" type that builds and drops a serde
//! error on every number written as a number. Per record that was a measurable share of
//! the service's CPU. CDRs are nearly all the input, so they get this path.
//!
//! **Same meaning, by construction.** This path accepts only the plain shape (known field
//! names, unescaped strings, integers in range, enum names, no duplicates, nothing after
//! the object). Anything else makes it give up, and the caller decodes the record again
//! with the generated decoder, whose answer (message or error text) is the one that
//! counts. So a record means the same thing on either path; only the cost differs.
//!
//! The event-time peek ([`event_time`]) finds the `eventTimeMs` key with a byte scan: the
//! quoted key followed by `:` can only be a key (a string value is followed by `,` or `}`,
//! and a quote inside a string is escaped). Only a record with nested objects could
//! mislead it, and such a record is no CDR: it is set aside whatever its place in the merge.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};

use crate::proto::{self, CallDetailRecord};

/// Decodes `bytes` into `msg` if they have the plain shape; `false` (with `msg` in an
/// unspecified state) when the generated decoder must decide.
pub fn decode_cdr(bytes: &[u8], msg: &mut CallDetailRecord) -> bool {
    prost::Message::clear(msg);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    de.deserialize_map(CdrVisitor(msg)).is_ok() && de.end().is_ok()
}

/// The record's `eventTimeMs` (or `event_time_ms`), when it is a plain integer or a string
/// of digits; `None` when the caller must parse the record to know.
pub fn event_time(bytes: &[u8]) -> Option<i64> {
    find_value(bytes, b"\"eventTimeMs\"").or_else(|| find_value(bytes, b"\"event_time_ms\""))
}

fn find_value(bytes: &[u8], key: &[u8]) -> Option<i64> {
    let at = bytes.windows(key.len()).position(|w| w == key)?;
    let rest = skip_ws(&bytes[at + key.len()..]);
    let rest = skip_ws(rest.strip_prefix(b":")?);
    let (rest, quoted) = match rest.strip_prefix(b"\"") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let (neg, rest) = match rest.strip_prefix(b"-") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 18 {
        return None;
    }
    let after = skip_ws(&rest[digits..]);
    let end_ok = matches!(
        (quoted, after.first()),
        (true, Some(b'"')) | (false, Some(b',' | b'}'))
    );
    if !end_ok {
        return None;
    }
    let v = rest[..digits]
        .iter()
        .fold(0i64, |v, d| v * 10 + i64::from(d - b'0'));
    Some(if neg { -v } else { v })
}

fn skip_ws(b: &[u8]) -> &[u8] {
    let n = b
        .iter()
        .take_while(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
        .count();
    &b[n..]
}

/// The error the visitor gives up with: never shown (the generated decoder then speaks).
fn give_up<E: de::Error>() -> E {
    E::custom("")
}

struct CdrVisitor<'m>(&'m mut CallDetailRecord);

impl<'de> Visitor<'de> for CdrVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a CallDetailRecord")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let m = self.0;
        let mut seen = 0u16;
        while let Some(key) = map.next_key::<Borrowed<'de>>()? {
            let field = match key.0 {
                "recordId" | "record_id" => 0,
                "subscriber" => 1,
                "eventTimeMs" | "event_time_ms" => 2,
                "type" => 3,
                "otherParty" | "other_party" => 4,
                "durationS" | "duration_s" => 5,
                "dataBytes" | "data_bytes" => 6,
                "charge" => 7,
                "callReference" | "call_reference" => 8,
                "partial" => 9,
                "roaming" => 10,
                _ => return Err(give_up()),
            };
            if seen & (1 << field) != 0 {
                return Err(give_up());
            }
            seen |= 1 << field;
            match field {
                0 => m.record_id.push_str(map.next_value::<Borrowed<'de>>()?.0),
                1 => m.subscriber.push_str(map.next_value::<Borrowed<'de>>()?.0),
                2 => m.event_time_ms = map.next_value_seed(Int::<i64>::new())?,
                3 => {
                    let name = map.next_value::<Borrowed<'de>>()?.0;
                    m.r#type = proto::RecordType::from_str_name(name).ok_or_else(give_up)? as i32;
                }
                4 => m.other_party.push_str(map.next_value::<Borrowed<'de>>()?.0),
                5 => m.duration_s = map.next_value_seed(Int::<u32>::new())?,
                6 => m.data_bytes = map.next_value_seed(Int::<u64>::new())?,
                7 => m.charge = map.next_value_seed(Int::<i64>::new())?,
                8 => m
                    .call_reference
                    .push_str(map.next_value::<Borrowed<'de>>()?.0),
                9 => m.partial = map.next_value::<bool>()?,
                _ => m.roaming = map.next_value::<bool>()?,
            }
        }
        Ok(())
    }
}

/// A string borrowed from the input: an escaped one (which would need a copy) gives up.
struct Borrowed<'de>(&'de str);

impl<'de> de::Deserialize<'de> for Borrowed<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Borrowed<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an unescaped string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Borrowed<'de>, E> {
                Ok(Borrowed(s))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Borrowed<'de>, E> {
                Err(give_up())
            }
        }
        d.deserialize_str(V)
    }
}

/// An integer written as a JSON integer or as a string of one (proto3 JSON allows both).
struct Int<T>(std::marker::PhantomData<T>);

impl<T> Int<T> {
    fn new() -> Self {
        Int(std::marker::PhantomData)
    }
}

impl<'de, T> DeserializeSeed<'de> for Int<T>
where
    T: TryFrom<i64> + TryFrom<u64> + std::str::FromStr,
{
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T> Visitor<'de> for Int<T>
where
    T: TryFrom<i64> + TryFrom<u64> + std::str::FromStr,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        T::try_from(v).map_err(|_| give_up())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        T::try_from(v).map_err(|_| give_up())
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<T, E> {
        s.parse().map_err(|_| give_up())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<T, E> {
        Err(give_up())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::cdr_from_json;

    fn both(line: &str) -> (Option<CallDetailRecord>, Option<CallDetailRecord>) {
        let mut m = CallDetailRecord::default();
        let fast = decode_cdr(line.as_bytes(), &mut m).then_some(m);
        (fast, cdr_from_json(line).ok())
    }

    #[test]
    fn the_plain_shape_decodes_as_the_generated_decoder_does() {
        let lines = [
            r#"{"recordId":"r000000001","subscriber":"8613000000001","eventTimeMs":1775000000000,"type":"FORWARD","otherParty":"8613300000002","durationS":61,"dataBytes":0,"charge":20}"#,
            r#"{"record_id":"r1","subscriber":"8613012345678","event_time_ms":"1775000000000","type":"VOICE_OUT","other_party":"10086","duration_s":"300","charge":"-30","call_reference":"c1","partial":true}"#,
            r#"{"recordId":"r3","subscriber":"8613012345678","type":"DATA","dataBytes":"1048576","roaming":true}"#,
            r#" { "recordId" : "r2" , "subscriber":"8613012345678" , "eventTimeMs" : 5 } "#,
            "{}",
        ];
        for line in lines {
            let (fast, slow) = both(line);
            assert!(fast.is_some(), "{line}");
            assert_eq!(fast, slow, "{line}");
        }
    }

    #[test]
    fn anything_else_is_left_to_the_generated_decoder() {
        let lines = [
            r#"{"recordId":"r\"1","subscriber":"8613012345678"}"#,
            r#"{"recordId":"r1","recordId":"r2"}"#,
            r#"{"recordId":"r1","extra":1}"#,
            r#"{"durationS":-1}"#,
            r#"{"durationS":1.5}"#,
            r#"{"type":"NOT_A_TYPE"}"#,
            r#"{"type":6}"#,
            r#"{"recordId":null}"#,
            r#"{"recordId":"r1"} trailing"#,
            r#"{"eventTimeMs":{"a":1}}"#,
            r#"[1,2]"#,
            "not json",
        ];
        for line in lines {
            let mut m = CallDetailRecord::default();
            assert!(!decode_cdr(line.as_bytes(), &mut m), "{line}");
        }
    }

    #[test]
    fn the_event_time_is_found_by_its_key_only() {
        let t = |s: &str| event_time(s.as_bytes());
        assert_eq!(
            t(r#"{"a":"x","eventTimeMs":1775000000000,"b":1}"#),
            Some(1775000000000)
        );
        assert_eq!(t(r#"{"eventTimeMs" : "17" }"#), Some(17));
        assert_eq!(t(r#"{"event_time_ms":-5}"#), Some(-5));
        assert_eq!(t(r#"{"note":"eventTimeMs","x":1}"#), None);
        assert_eq!(t(r#"{"note":"a\"eventTimeMs\":5","x":1}"#), None);
        assert_eq!(t(r#"{"eventTimeMs":1.5}"#), None);
        assert_eq!(t(r#"{"eventTimeMs":"12x"}"#), None);
        assert_eq!(t(r#"{"eventTimeMs":1234567890123456789012}"#), None);
    }
}
