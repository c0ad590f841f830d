//! The fixed-size picture of one subscriber (the table that holds them all is
//! [`super::table`]; subscribers leave it when churned or idle, [`super::eviction`], so
//! memory follows the base held, not every number ever seen).
//!
//! Layout decides speed and memory: at national scale every byte here is multiplied by tens
//! of millions and every record touches one state. So a state is one flat `Copy` struct
//! with no pointers: 35 closed days at 4 bytes each (8-bit log-scale totals: a 50% drop
//! rule does not need more than ~3% precision), three *open* days with exact counters (the
//! days late records can still change), monthly spend for six months, a forwarding bitmap,
//! and the account facts the rules need.
//!
//! Closed days are written once, when the watermark passes them ([`SubscriberState::close_day`]);
//! exact sums and a commutative fold make the closed value independent of arrival order.

use super::calendar::Day;

/// Closed days of history kept per subscriber.
pub const HISTORY_DAYS: usize = 35;
/// Days still open to late records (allowed lateness of up to 48 h spans three days).
pub const OPEN_DAYS: usize = 3;
/// Closed months of spend kept.
pub const MONTHS: usize = 6;
/// Bits in the forwarding bitmap (days).
pub const FWD_BITS: i32 = 64;

/// Data volume unit of closed days.
pub const DATA_UNIT_BYTES: u64 = 16 * 1024;

/// Encodes a non-negative total as an 8-bit log-scale value: exact below 16, then 4 bits of
/// mantissa (relative error under 3.2%), saturating near 507,904 units.
pub fn log8_encode(v: u64) -> u8 {
    if v < 16 {
        return v as u8;
    }
    let top = 63 - v.leading_zeros() as u64; // >= 4
    let shift = top - 4;
    let mant = (v >> shift) - 16;
    let code = 16 + shift * 16 + mant;
    code.min(255) as u8
}

/// Decodes [`log8_encode`] to the middle of its bucket (a table lookup).
pub fn log8_decode(c: u8) -> u64 {
    u64::from(LOG8_TABLE[c as usize])
}

const LOG8_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = log8_decode_slow(i as u8) as u32;
        i += 1;
    }
    t
};

const fn log8_decode_slow(c: u8) -> u64 {
    if c < 16 {
        return c as u64;
    }
    let shift = (c - 16) as u64 / 16;
    let mant = (c - 16) as u64 % 16;
    let half = if shift > 0 { 1u64 << (shift - 1) } else { 0 };
    ((16 + mant) << shift) + half
}

/// A day still open to late records: exact counters, 12 bytes (three of them in every
/// state). Data and charge share their words with the call and SMS counts: data saturates
/// at 8 GiB a day (beyond where a closed day's log scale saturates, 7.75 GiB), charge at
/// 167,772 yuan a day. The changelog keeps the wider fields of the first layout (version
/// 1), so reading one saturates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct OpenDay {
    /// Data KiB (bits 0-22), [`OpenDay::OUTGOING`] (bit 23), calls (bits 24-31).
    data: u32,
    /// Charge in fen (bits 0-23), SMS (bits 24-31).
    charge: u32,
    /// Voice seconds, saturating at about 18 hours.
    pub voice_s: u16,
    /// Seconds of calls dialled through a competitor's IP-call prefix (bits 0-14,
    /// saturating at about 9 hours), [`OpenDay::ROAMED`] (bit 15).
    ip: u16,
}

const DATA_MAX: u32 = (1 << 23) - 1;
const CHARGE_MAX: u32 = (1 << 24) - 1;
const OUT_BIT: u32 = 1 << 23;
const IP_MAX: u16 = (1 << 15) - 1;
const ROAMED_BIT: u16 = 1 << 15;

impl OpenDay {
    /// The subscriber made a call, sent an SMS or used data.
    pub const OUTGOING: u8 = 1;
    /// Some of the day's usage was abroad (a roaming record).
    pub const ROAMED: u8 = 2;

    pub fn data_kib(&self) -> u32 {
        self.data & DATA_MAX
    }
    pub fn charge_fen(&self) -> u32 {
        self.charge & CHARGE_MAX
    }
    /// Calls made or received (saturating at 255).
    pub fn calls(&self) -> u8 {
        (self.data >> 24) as u8
    }
    /// SMS sent or received (saturating at 255).
    pub fn sms(&self) -> u8 {
        (self.charge >> 24) as u8
    }
    /// Seconds of competitor IP calls (saturating at about 9 hours).
    pub fn ip_s(&self) -> u16 {
        self.ip & IP_MAX
    }
    /// [`OpenDay::OUTGOING`] and [`OpenDay::ROAMED`].
    pub fn flags(&self) -> u8 {
        u8::from(self.data & OUT_BIT != 0)
            | if self.ip & ROAMED_BIT != 0 {
                Self::ROAMED
            } else {
                0
            }
    }
    /// Sets data KiB (saturating).
    pub fn set_data_kib(&mut self, kib: u64) {
        let kib = kib.min(u64::from(DATA_MAX)) as u32;
        self.data = (self.data & !DATA_MAX) | kib;
    }
    /// Sets the charge in fen (saturating).
    pub fn set_charge_fen(&mut self, fen: u64) {
        let fen = fen.min(u64::from(CHARGE_MAX)) as u32;
        self.charge = (self.charge & !CHARGE_MAX) | fen;
    }
    pub fn set_calls(&mut self, n: u8) {
        self.data = (self.data & !(0xff << 24)) | (u32::from(n) << 24);
    }
    pub fn set_sms(&mut self, n: u8) {
        self.charge = (self.charge & !(0xff << 24)) | (u32::from(n) << 24);
    }
    /// Sets IP-call seconds (saturating).
    pub fn set_ip_s(&mut self, secs: u64) {
        self.ip = (self.ip & ROAMED_BIT) | secs.min(u64::from(IP_MAX)) as u16;
    }
    /// Adds to the flags.
    pub fn add_flags(&mut self, f: u8) {
        if f & Self::OUTGOING != 0 {
            self.data |= OUT_BIT;
        }
        if f & Self::ROAMED != 0 {
            self.ip |= ROAMED_BIT;
        }
    }
    /// Sets the flags (only [`OpenDay::OUTGOING`] and [`OpenDay::ROAMED`] are kept).
    pub fn set_flags(&mut self, f: u8) {
        self.data = (self.data & !OUT_BIT) | if f & Self::OUTGOING != 0 { OUT_BIT } else { 0 };
        self.ip = (self.ip & IP_MAX) | if f & Self::ROAMED != 0 { ROAMED_BIT } else { 0 };
    }
}

/// A closed day: log-scale totals, 3 bytes. Whether the day had calls is kept in
/// [`SubscriberState::call_days`]; exact call and SMS counts live only while the day is open,
/// because no rule reads them from closed days.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct ClosedDay {
    voice: u8,
    data: u8,
    charge: u8,
}

impl ClosedDay {
    pub fn from_open(o: &OpenDay) -> ClosedDay {
        ClosedDay {
            voice: log8_encode(u64::from(o.voice_s)),
            data: log8_encode(u64::from(o.data_kib()).div_ceil(DATA_UNIT_BYTES / 1024)),
            charge: log8_encode(u64::from(o.charge_fen())),
        }
    }
    pub fn voice_s(&self) -> u64 {
        log8_decode(self.voice)
    }
    pub fn data_bytes(&self) -> u64 {
        log8_decode(self.data) * DATA_UNIT_BYTES
    }
    pub fn charge_fen(&self) -> u64 {
        log8_decode(self.charge)
    }
    /// The raw log-scale codes (voice, data, charge), for snapshots.
    pub(crate) fn codes(&self) -> [u8; 3] {
        [self.voice, self.data, self.charge]
    }
    pub(crate) fn from_codes([voice, data, charge]: [u8; 3]) -> ClosedDay {
        ClosedDay {
            voice,
            data,
            charge,
        }
    }
}

/// Flags in [`SubscriberState::flags`].
pub mod flag {
    pub const DO_NOT_DISTURB: u16 = 1 << 0;
    pub const KEY_PERSON: u16 = 1 << 1;
    pub const SUSPENDED: u16 = 1 << 2;
    /// Condition flags of the day-close rules, so an ongoing condition raises one ticket.
    pub const SILENT: u16 = 1 << 4;
    pub const SPEND_DROP: u16 = 1 << 5;
    pub const VOICE_DROP: u16 = 1 << 6;
    pub const DATA_DROP: u16 = 1 << 7;
    pub const COMPLAINT_BURST: u16 = 1 << 8;
    pub const ZERO_MONTH: u16 = 1 << 9;
    pub const IP_CALLS_MONTH: u16 = 1 << 10;
    pub const MONTH_OUTGOING: u16 = 1 << 11;
    /// The subscriber has complaints or fault reports on record (a side table).
    pub const HAS_CONTACTS: u16 = 1 << 12;
    /// Bits 13-15 count down from the last closed day with usage abroad (a roaming
    /// record): 7 that day, one less each day after, 0 a week later (or never); see
    /// [`super::SubscriberState::abroad_this_week`].
    pub const ABROAD: u16 = 0b111 << 13;
    pub(super) const ABROAD_SHIFT: u16 = 13;
}

/// "No time": minutes fields use this when unknown.
pub const NO_MINUTE: u32 = u32::MAX;

/// Epoch milliseconds to whole minutes (u32 covers 8,000 years).
pub fn to_minute(ms: i64) -> u32 {
    (ms.div_euclid(60_000)).clamp(0, i64::from(u32::MAX - 1)) as u32
}

pub fn from_minute(m: u32) -> i64 {
    i64::from(m) * 60_000
}

/// Everything churnwatch keeps about one subscriber (field order is the compiler's, to
/// leave no padding). Packed to 4-byte alignment: the two `u64` bitmaps would otherwise
/// round the size up to a multiple of 8 (208 bytes for 204 of fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(Rust, packed(4))]
pub struct SubscriberState {
    /// Closed days, indexed by `day % HISTORY_DAYS`.
    pub days: [ClosedDay; HISTORY_DAYS],
    /// Open days, indexed by `day % OPEN_DAYS`.
    pub open: [OpenDay; OPEN_DAYS],
    /// Days with calls forwarded to another operator's mobile, bit `day % 64`.
    pub fwd_offnet: u64,
    /// Days with a call made or received, bit `day % 64` (closed days only).
    pub call_days: u64,
    /// Closed months' spend in units of 10 fen (saturating), indexed by `month % MONTHS`.
    pub months: [u16; MONTHS],
    /// Spend of the current month's closed days, fen.
    pub month_charge_fen: u32,
    /// Seconds of competitor IP calls in the current month's closed days (saturating).
    pub month_ip_s: u16,
    /// Plan monthly fee, whole yuan (0 = unknown).
    pub plan_fee_yuan: u16,
    /// Latest bill: issued (minute), amount (fen), first payment after it (minute); its due
    /// day is `bill_due_day`. Account facts like these are folded in event-time order
    /// ([`super::facts`]), so they need no timestamps of their own to resolve arrival order.
    pub bill_issued_min: u32,
    pub bill_amount_fen: u32,
    pub bill_paid_min: u32,
    pub bill_due_day: u16,
    /// Day the contract end was last set, and the end day.
    pub contract_set_day: u16,
    pub contract_end_day: u16,
    /// First day seen (or activation day, whichever is earlier): tenure.
    pub first_day: u16,
    /// Activation day from the CRM profile (0 = unknown).
    pub activated_day: u16,
    /// Day the subscriber left (port-out or deactivation; 0 = still here).
    pub churned_day: u16,
    pub flags: u16,
    /// Months (bit `month % MONTHS`) whose spend came from a bill, which a month close
    /// must not overwrite with CDR charges.
    pub months_billed: u8,
}

impl Default for SubscriberState {
    fn default() -> Self {
        SubscriberState {
            days: [ClosedDay::default(); HISTORY_DAYS],
            open: [OpenDay::default(); OPEN_DAYS],
            fwd_offnet: 0,
            call_days: 0,
            months: [0; MONTHS],
            month_charge_fen: 0,
            month_ip_s: 0,
            plan_fee_yuan: 0,
            bill_issued_min: NO_MINUTE,
            bill_due_day: 0,
            bill_amount_fen: 0,
            bill_paid_min: NO_MINUTE,
            contract_set_day: 0,
            contract_end_day: 0,
            first_day: u16::MAX,
            activated_day: 0,
            churned_day: 0,
            flags: 0,
            months_billed: 0,
        }
    }
}

fn sat_u16(v: u64) -> u16 {
    v.min(u64::from(u16::MAX)) as u16
}

impl SubscriberState {
    pub fn has(&self, f: u16) -> bool {
        self.flags & f != 0
    }

    pub fn set(&mut self, f: u16, on: bool) {
        if on {
            self.flags |= f;
        } else {
            self.flags &= !f;
        }
    }

    /// The open-day counters for `day` (the caller guarantees the day is open).
    pub fn open_day(&mut self, day: Day) -> &mut OpenDay {
        &mut self.open[day.rem_euclid(OPEN_DAYS as i32) as usize]
    }

    pub fn note_seen(&mut self, day: Day) {
        let d = day.clamp(1, i32::from(u16::MAX) - 1) as u16;
        self.first_day = self.first_day.min(d);
    }

    /// Whether the subscriber had left by `day`.
    pub fn churned_by(&self, day: Day) -> bool {
        self.churned_day != 0 && i32::from(self.churned_day) <= day
    }

    /// Whether the subscriber was seen (or activated) on or before `day`.
    pub fn known_since(&self, day: Day) -> bool {
        self.first_day != u16::MAX && i32::from(self.first_day) <= day
    }

    pub fn add_voice(&mut self, day: Day, secs: u32, outgoing: bool) {
        let o = self.open_day(day);
        o.voice_s = sat_u16(u64::from(o.voice_s) + u64::from(secs));
        o.set_calls(o.calls().saturating_add(1));
        if outgoing {
            o.add_flags(OpenDay::OUTGOING);
        }
    }

    pub fn add_ip_call(&mut self, day: Day, secs: u32) {
        let o = self.open_day(day);
        o.set_ip_s(u64::from(o.ip_s()) + u64::from(secs));
    }

    /// Notes usage abroad on `day` (a roaming record of any kind).
    pub fn add_roaming(&mut self, day: Day) {
        let o = self.open_day(day);
        o.add_flags(OpenDay::ROAMED);
    }

    pub fn add_sms(&mut self, day: Day, outgoing: bool) {
        let o = self.open_day(day);
        o.set_sms(o.sms().saturating_add(1));
        if outgoing {
            o.add_flags(OpenDay::OUTGOING);
        }
    }

    pub fn add_data(&mut self, day: Day, bytes: u64) {
        let o = self.open_day(day);
        let kib = bytes.div_ceil(1024);
        o.set_data_kib(u64::from(o.data_kib()) + kib);
        if bytes > 0 {
            o.add_flags(OpenDay::OUTGOING);
        }
    }

    pub fn add_charge(&mut self, day: Day, fen: i64) {
        let o = self.open_day(day);
        let fen = fen.clamp(0, i64::from(u32::MAX)) as u64;
        o.set_charge_fen(u64::from(o.charge_fen()) + fen);
    }

    pub fn mark_forward_offnet(&mut self, day: Day) {
        self.fwd_offnet |= 1u64 << day.rem_euclid(FWD_BITS);
    }

    pub fn forwarded_offnet_on(&self, day: Day) -> bool {
        self.fwd_offnet & (1u64 << day.rem_euclid(FWD_BITS)) != 0
    }

    /// The run of consecutive forwarded days containing `day`, as `(first, last)`, looking
    /// no further than `max_back` days back (the bitmap's reach).
    pub fn forward_run(&self, day: Day, max_back: i32) -> Option<(Day, Day)> {
        if !self.forwarded_offnet_on(day) {
            return None;
        }
        let mut first = day;
        while day - first + 1 < max_back && self.forwarded_offnet_on(first - 1) {
            first -= 1;
        }
        let mut last = day;
        while last - first + 1 < FWD_BITS - OPEN_DAYS as i32 && self.forwarded_offnet_on(last + 1) {
            last += 1;
        }
        Some((first, last))
    }

    /// Whether the line was used abroad (a roaming record) on one of the last 7 closed days:
    /// a silence or a fall now is a trip.
    pub fn abroad_this_week(&self) -> bool {
        self.has(flag::ABROAD)
    }

    /// A closed day (the caller guarantees it is within the last [`HISTORY_DAYS`] closed).
    /// Whether a closed day had a call made or received.
    pub fn called_on(&self, day: Day) -> bool {
        self.call_days & (1u64 << day.rem_euclid(FWD_BITS)) != 0
    }

    pub fn closed(&self, day: Day) -> &ClosedDay {
        &self.days[day.rem_euclid(HISTORY_DAYS as i32) as usize]
    }

    /// Moves day `day` from open to closed: compresses its counters into the history ring,
    /// adds them to the month, and frees the open slot and forwarding bit for
    /// `day + OPEN_DAYS`. Returns the day's exact counters.
    pub fn close_day(&mut self, day: Day) -> OpenDay {
        let slot = day.rem_euclid(OPEN_DAYS as i32) as usize;
        let o = std::mem::take(&mut self.open[slot]);
        self.days[day.rem_euclid(HISTORY_DAYS as i32) as usize] = ClosedDay::from_open(&o);
        self.month_charge_fen = self.month_charge_fen.saturating_add(o.charge_fen());
        self.month_ip_s = self.month_ip_s.saturating_add(o.ip_s());
        let call_bit = 1u64 << day.rem_euclid(FWD_BITS);
        if o.calls() > 0 {
            self.call_days |= call_bit;
        } else {
            self.call_days &= !call_bit;
        }
        if o.flags() & OpenDay::OUTGOING != 0 {
            self.flags |= flag::MONTH_OUTGOING;
        }
        let abroad = if o.flags() & OpenDay::ROAMED != 0 {
            7
        } else {
            ((self.flags & flag::ABROAD) >> flag::ABROAD_SHIFT).saturating_sub(1)
        };
        self.flags = (self.flags & !flag::ABROAD) | abroad << flag::ABROAD_SHIFT;
        self.fwd_offnet &= !(1u64 << (day + OPEN_DAYS as i32).rem_euclid(FWD_BITS));
        o
    }

    /// Closes the month `month` (index since 1970): stores its spend and resets the month
    /// counters.
    pub fn close_month(&mut self, month: i32) {
        let slot = month.rem_euclid(MONTHS as i32) as usize;
        if self.months_billed & (1 << slot) == 0 {
            let units = u64::from(self.month_charge_fen).div_ceil(10);
            self.months[slot] = sat_u16(units);
        }
        self.months_billed &= !(1 << (month + 1).rem_euclid(MONTHS as i32));
        self.month_charge_fen = 0;
        self.month_ip_s = 0;
        self.set(flag::MONTH_OUTGOING | flag::IP_CALLS_MONTH, false);
    }

    /// Records a bill as the spend of its month: bills are authoritative (postpaid plan
    /// fees never appear in CDR charges).
    pub fn record_bill(&mut self, month: i32, amount_fen: u32) {
        let slot = month.rem_euclid(MONTHS as i32) as usize;
        self.months[slot] = sat_u16(u64::from(amount_fen).div_ceil(10));
        self.months_billed |= 1 << slot;
    }

    /// Spend of a closed month, fen (the caller keeps within the last [`MONTHS`]).
    pub fn month_spend_fen(&self, month: i32) -> u64 {
        u64::from(self.months[month.rem_euclid(MONTHS as i32) as usize]) * 10
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_fits_the_memory_budget() {
        // 256 bytes per subscriber all-in is the target; the state itself must leave room
        // for the index entry, the number and the de-duplication ids.
        assert_eq!(std::mem::size_of::<OpenDay>(), 12);
        assert!(
            std::mem::size_of::<SubscriberState>() <= 204,
            "{}",
            std::mem::size_of::<SubscriberState>()
        );
    }

    #[test]
    fn log8_is_exact_small_and_within_4_percent_large() {
        for v in 0..16 {
            assert_eq!(log8_decode(log8_encode(v)), v);
        }
        for v in [16u64, 17, 100, 1_000, 12_345, 86_400, 400_000] {
            let back = log8_decode(log8_encode(v)) as f64;
            assert!((back - v as f64).abs() / (v as f64) < 0.04, "{v} -> {back}");
        }
        assert_eq!(log8_encode(u64::MAX), 255);
        let mut prev = 0;
        for c in 0..=255u8 {
            assert!(log8_decode(c) >= prev);
            prev = log8_decode(c);
        }
    }

    #[test]
    fn closing_a_day_moves_it_to_history_and_the_month() {
        let mut s = SubscriberState::default();
        s.add_voice(100, 600, true);
        s.add_charge(100, 250);
        s.add_data(100, 5 * 1024 * 1024);
        s.add_sms(100, false);
        let o = s.close_day(100);
        assert_eq!(o.voice_s, 600);
        let c = s.closed(100);
        assert!((c.voice_s() as i64 - 600).abs() <= 24);
        assert!(s.called_on(100));
        assert!(!s.called_on(99));
        assert!((c.data_bytes() as i64 - 5 * 1024 * 1024).abs() < 200_000);
        assert_eq!(s.month_charge_fen, 250);
        assert!(s.has(flag::MONTH_OUTGOING));
        assert_eq!(s.open[100 % OPEN_DAYS], OpenDay::default());
        s.close_month(5);
        assert_eq!(s.month_spend_fen(5), 250);
        assert_eq!(s.month_charge_fen, 0);
        assert!(!s.has(flag::MONTH_OUTGOING));
    }

    #[test]
    fn usage_abroad_marks_the_line_away_for_a_week() {
        let mut s = SubscriberState::default();
        s.add_voice(100, 60, true);
        s.close_day(100);
        assert!(!s.abroad_this_week());
        s.add_roaming(101);
        s.add_data(101, 1 << 20);
        s.add_voice(101, 30, true);
        s.add_ip_call(101, 40_000);
        let o = s.close_day(101);
        let saturated = (1 << 15) - 1;
        assert_eq!(
            o.ip_s(),
            saturated,
            "IP seconds saturate below the roaming bit"
        );
        assert_eq!(
            o.flags(),
            OpenDay::OUTGOING | OpenDay::ROAMED,
            "usage after keeps it"
        );
        assert!(s.abroad_this_week());
        for d in 102..=107 {
            s.add_voice(d, 60, false);
            s.close_day(d);
            assert!(
                s.abroad_this_week(),
                "{d}: within a week of the last roaming record"
            );
        }
        s.close_day(108);
        assert!(!s.abroad_this_week(), "a week on");
        s.add_roaming(109);
        s.close_day(109);
        assert!(s.abroad_this_week());
        assert_eq!(
            s.flags & !flag::ABROAD,
            flag::MONTH_OUTGOING,
            "no other flag touched"
        );
    }

    #[test]
    fn forward_runs_are_found_across_the_bitmap_wrap() {
        let mut s = SubscriberState::default();
        for d in 62..=66 {
            s.mark_forward_offnet(d);
        }
        assert_eq!(s.forward_run(64, 40), Some((62, 66)));
        assert_eq!(s.forward_run(67, 40), None);
    }
}
