//! The subscriber record, one per subscriber, keyed by its number. A checkpoint writes one
//! per changed subscriber and a restore reads tens of millions, so it is fixed-size and,
//! once its length is checked, read in one pass with no error paths.
//!
//! Fields are written one by one (no transmute), so the compiler's layout of
//! [`SubscriberState`] is free to change; the byte layout is pinned by a test.

use super::codec::{Fixed, Put, Reader};
use super::SnapshotError;
use crate::detect::quality::LastTicket;
use crate::detect::state::{ClosedDay, SubscriberState, HISTORY_DAYS, MONTHS, OPEN_DAYS};

/// Version of the subscriber state ([`encode_state`]), and of the version-1 subscriber
/// record (the state and its table order).
pub const STATE_VERSION: u8 = 1;
/// Version of the subscriber record written now ([`encode_record`]): the state, its table
/// order and its last ticket ([`LastTicket`], for the quality figures). Version-1 records
/// (no last ticket) are still read.
pub const RECORD_VERSION: u8 = 2;

/// Bytes of an encoded [`SubscriberState`], version byte included.
pub const STATE_LEN: usize = 1 + HISTORY_DAYS * 3 + OPEN_DAYS * 15 + 16 + MONTHS * 2 + 35;
/// Bytes of a version-1 subscriber record: the state and its place in the table (u32).
pub const RECORD_V1_LEN: usize = STATE_LEN + 4;
/// Bytes of a subscriber record: the state, its place in the table and its last ticket.
pub const RECORD_LEN: usize = RECORD_V1_LEN + LastTicket::ENCODED_LEN;

/// Appends `s`: the version byte, then every field, little-endian, in declaration order.
pub fn encode_state(s: &SubscriberState, out: &mut Vec<u8>) {
    out.reserve(STATE_LEN);
    out.push(STATE_VERSION);
    for d in &s.days {
        out.extend_from_slice(&d.codes());
    }
    for o in &s.open {
        out.put_u32(o.data_kib());
        out.put_u32(o.charge_fen());
        out.put_u16(o.voice_s);
        out.put_u16(o.ip_s());
        out.extend_from_slice(&[o.calls(), o.sms(), o.flags()]);
    }
    out.put_u64(s.fwd_offnet);
    out.put_u64(s.call_days);
    for m in s.months {
        out.put_u16(m);
    }
    out.put_u32(s.month_charge_fen);
    out.put_u16(s.month_ip_s);
    out.put_u16(s.plan_fee_yuan);
    out.put_u32(s.bill_issued_min);
    out.put_u32(s.bill_amount_fen);
    out.put_u32(s.bill_paid_min);
    for v in [
        s.bill_due_day,
        s.contract_set_day,
        s.contract_end_day,
        s.first_day,
        s.activated_day,
        s.churned_day,
        s.flags,
    ] {
        out.put_u16(v);
    }
    out.push(s.months_billed);
}

/// Reads an [`encode_state`] record (exactly [`STATE_LEN`] bytes).
pub fn decode_state(bytes: &[u8]) -> Result<SubscriberState, SnapshotError> {
    let r = Reader::versioned(bytes, "subscriber state", STATE_VERSION)?;
    if bytes.len() != STATE_LEN {
        return Err(r.malformed(format!("{} bytes, expected {STATE_LEN}", bytes.len())));
    }
    Ok(read_state(&mut Fixed::after_version(bytes)))
}

/// Appends a subscriber record: the state (its version byte now [`RECORD_VERSION`]), then
/// its slot (the table order a restore rebuilds, so day closes visit subscribers, and emit
/// tickets, in the same order), then its last ticket.
pub(crate) fn encode_record(s: &SubscriberState, order: u32, last: LastTicket, out: &mut Vec<u8>) {
    let start = out.len();
    encode_state(s, out);
    out[start] = RECORD_VERSION;
    out.put_u32(order);
    out.extend_from_slice(&last.encode());
}

/// A decoded subscriber record: the state, its table order and its last ticket (none in a
/// version-1 record).
pub(crate) type Record = (SubscriberState, u32, LastTicket);

/// Reads an [`encode_record`] record, or a version-1 one.
pub(crate) fn decode_record(bytes: &[u8]) -> Result<Record, SnapshotError> {
    let what = "subscriber";
    let (version, len) = match bytes.first() {
        Some(&STATE_VERSION) => (STATE_VERSION, RECORD_V1_LEN),
        Some(&RECORD_VERSION) => (RECORD_VERSION, RECORD_LEN),
        Some(&version) => {
            return Err(SnapshotError::UnknownVersion {
                what,
                version,
                known: RECORD_VERSION,
            })
        }
        None => return Err(Reader::new(bytes, what).malformed("empty".into())),
    };
    if bytes.len() != len {
        let reason = format!("{} bytes, expected {len} (version {version})", bytes.len());
        return Err(Reader::new(bytes, what).malformed(reason));
    }
    let mut f = Fixed::after_version(bytes);
    let s = read_state(&mut f);
    let order = f.u32();
    let last = if version == RECORD_VERSION {
        LastTicket::decode(f.array())
    } else {
        LastTicket::default()
    };
    Ok((s, order, last))
}

/// The fields of [`encode_state`] after its version byte.
fn read_state(r: &mut Fixed<'_>) -> SubscriberState {
    let mut s = SubscriberState::default();
    for d in s.days.iter_mut() {
        *d = ClosedDay::from_codes(r.array());
    }
    for o in s.open.iter_mut() {
        o.set_data_kib(u64::from(r.u32()));
        o.set_charge_fen(u64::from(r.u32()));
        o.voice_s = r.u16();
        o.set_ip_s(u64::from(r.u16()));
        o.set_calls(r.u8());
        o.set_sms(r.u8());
        o.set_flags(r.u8());
    }
    s.fwd_offnet = r.u64();
    s.call_days = r.u64();
    for m in s.months.iter_mut() {
        *m = r.u16();
    }
    s.month_charge_fen = r.u32();
    s.month_ip_s = r.u16();
    s.plan_fee_yuan = r.u16();
    s.bill_issued_min = r.u32();
    s.bill_amount_fen = r.u32();
    s.bill_paid_min = r.u32();
    s.bill_due_day = r.u16();
    s.contract_set_day = r.u16();
    s.contract_end_day = r.u16();
    s.first_day = r.u16();
    s.activated_day = r.u16();
    s.churned_day = r.u16();
    s.flags = r.u16();
    s.months_billed = r.u8();
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::state::OpenDay;

    /// A state with every field set, each to a value no other field has.
    fn distinct_state() -> SubscriberState {
        let mut s = SubscriberState::default();
        for (i, d) in s.days.iter_mut().enumerate() {
            let i = i as u8;
            *d = ClosedDay::from_codes([i, 0x40 + i, 0x80 + i]);
        }
        for (i, o) in s.open.iter_mut().enumerate() {
            let i = i as u32;
            o.set_data_kib(u64::from(0x0052_0100 + i));
            o.set_charge_fen(u64::from(0x0053_0200 + i));
            o.voice_s = 0x0303 + i as u16 * 0x10;
            o.set_ip_s(u64::from(0x0404 + i as u16 * 0x10));
            o.set_calls(0x50 + i as u8);
            o.set_sms(0x60 + i as u8);
            o.set_flags(u8::from(i == 1));
        }
        s.fwd_offnet = 0x0807_0605_0403_0201;
        s.call_days = 0x1817_1615_1413_1211;
        for (i, m) in s.months.iter_mut().enumerate() {
            *m = 0x0a00 + i as u16;
        }
        s.month_charge_fen = 0x2b2a_2928;
        s.month_ip_s = 0x2d2c;
        s.plan_fee_yuan = 0x2f2e;
        s.bill_issued_min = 0x3332_3130;
        s.bill_amount_fen = 0x3736_3534;
        s.bill_paid_min = 0x3b3a_3938;
        s.bill_due_day = 0x3d3c;
        s.contract_set_day = 0x3f3e;
        s.contract_end_day = 0x4140;
        s.first_day = 0x4342;
        s.activated_day = 0x4544;
        s.churned_day = 0x4746;
        s.flags = 0x4948;
        s.months_billed = 0x4a;
        s
    }

    /// The layout is a contract with every changelog already written: changing it needs
    /// a new [`STATE_VERSION`] (and a reader for the old one).
    const GOLDEN: &str = "01\
        004080014181024282034383044484054585064686074787084888094989\
        0a4a8a0b4b8b0c4c8c0d4d8d0e4e8e0f4f8f105090115191125292135393\
        1454941555951656961757971858981959991a5a9a1b5b9b1c5c9c1d5d9d\
        1e5e9e1f5f9f2060a02161a12262a2\
        000152000002530003030404506000\
        010152000102530013031404516101\
        020152000202530023032404526200\
        0102030405060708\
        1112131415161718\
        000a010a020a030a040a050a\
        28292a2b2c2d2e2f\
        303132333435363738393a3b\
        3c3d3e3f404142434445464748494a";

    /// Open days as the first layout allowed them (wider data and charge, any flag byte),
    /// in the otherwise unchanged version-1 encoding.
    const WIDE_OPEN_DAY: &str = "000001010000020203030404506071";

    #[test]
    fn a_wide_open_day_of_an_older_build_saturates() {
        let golden = GOLDEN.replacen("000152000002530003030404506000", WIDE_OPEN_DAY, 1);
        let bytes: Vec<u8> = (0..golden.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&golden[i..i + 2], 16).unwrap())
            .collect();
        let o = decode_state(&bytes).unwrap().open[0];
        assert_eq!(
            (o.data_kib(), o.charge_fen()),
            ((1 << 23) - 1, (1 << 24) - 1)
        );
        assert_eq!((o.voice_s, o.ip_s()), (0x0303, 0x0404));
        assert_eq!(
            (o.calls(), o.sms(), o.flags()),
            (0x50, 0x60, OpenDay::OUTGOING)
        );
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn the_state_layout_is_pinned_byte_for_byte() {
        let s = distinct_state();
        let mut out = Vec::new();
        encode_state(&s, &mut out);
        assert_eq!(out.len(), STATE_LEN);
        assert_eq!(hex(&out), GOLDEN);
        assert_eq!(decode_state(&out).unwrap(), s);
    }

    #[test]
    fn a_day_abroad_survives_the_changelog_in_the_open_day_flag_byte() {
        let mut s = distinct_state();
        s.open[2].set_flags(OpenDay::OUTGOING | OpenDay::ROAMED);
        let mut out = Vec::new();
        encode_state(&s, &mut out);
        let golden_day = "020152000202530023032404526200";
        let mut expect = GOLDEN.to_string();
        expect = expect.replacen(golden_day, "020152000202530023032404526203", 1);
        assert_eq!(
            hex(&out),
            expect,
            "bit 1 of the flag byte, the layout otherwise as before"
        );
        let back = decode_state(&out).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.open[2].ip_s(), 0x0424);
    }

    fn last_ticket() -> LastTicket {
        LastTicket::decode([0x11, 0x22, 0, 0, 0x55, 0x66, 0x03])
    }

    #[test]
    fn a_record_carries_its_table_order_and_last_ticket() {
        let s = distinct_state();
        let mut out = Vec::new();
        encode_record(&s, 0x0102_0304, last_ticket(), &mut out);
        assert_eq!(out.len(), RECORD_LEN);
        assert_eq!(out[0], RECORD_VERSION);
        assert_eq!(
            hex(&out[1..STATE_LEN]),
            GOLDEN[2..],
            "the state as version 1 lays it"
        );
        assert_eq!(
            &out[STATE_LEN..],
            &[4, 3, 2, 1, 0x11, 0x22, 0, 0, 0x55, 0x66, 0x03]
        );
        assert_eq!(
            decode_record(&out).unwrap(),
            (s, 0x0102_0304, last_ticket())
        );
        assert!(decode_state(&out).is_err(), "trailing bytes are refused");
    }

    #[test]
    fn a_version_1_record_is_still_read_with_no_last_ticket() {
        let s = distinct_state();
        let mut v1 = Vec::new();
        encode_state(&s, &mut v1);
        v1.put_u32(7);
        assert_eq!(v1.len(), RECORD_V1_LEN);
        assert_eq!(hex(&v1[..STATE_LEN]), GOLDEN);
        let (state, order, last) = decode_record(&v1).unwrap();
        assert_eq!((state, order, last), (s, 7, LastTicket::default()));
        v1[0] = RECORD_VERSION;
        assert!(
            decode_record(&v1).is_err(),
            "a version-2 record of version-1 length"
        );
        v1[0] = 3;
        let err = decode_record(&v1).unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown subscriber encoding version 3 (this build reads version 2)"
        );
    }

    #[test]
    fn an_unknown_version_fails_naming_it() {
        let mut out = Vec::new();
        encode_state(&distinct_state(), &mut out);
        out[0] = 9;
        let err = decode_state(&out).unwrap_err();
        assert!(matches!(
            err,
            SnapshotError::UnknownVersion { version: 9, .. }
        ));
        assert_eq!(
            err.to_string(),
            "unknown subscriber state encoding version 9 (this build reads version 1)"
        );
    }

    #[test]
    fn a_truncated_record_is_an_error_never_a_panic() {
        let mut out = Vec::new();
        encode_record(&distinct_state(), 7, last_ticket(), &mut out);
        let mut state = Vec::new();
        encode_state(&distinct_state(), &mut state);
        for n in 0..out.len() {
            assert!(decode_record(&out[..n]).is_err(), "{n} bytes");
            assert!(decode_state(&state[..n.min(STATE_LEN - 1)]).is_err());
        }
        let err = decode_state(&state[..10]).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
    }
}
