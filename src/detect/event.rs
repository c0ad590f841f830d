//! Decoded, validated input as the core sees it.
//!
//! Adapters (files, Kafka) decode the wire messages and build these; the core never sees a
//! malformed record. Subscriber numbers are `u64` digits so the hot map never holds a
//! `String`, record ids are 64-bit fingerprints for de-duplication, and the other party's
//! number is borrowed from the decoded message so a record costs no allocation.

use std::fmt;
use std::hash::Hasher;

/// A subscriber number (E.164 digits without '+') held as an integer.
///
/// Up to 15 digits, the E.164 maximum; leading zeros are not allowed (E.164 numbers start
/// with a country code).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Msisdn(pub u64);

/// Why a number is not a valid MSISDN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MsisdnError {
    #[error("subscriber number is empty")]
    Empty,
    #[error("subscriber number has a non-digit character")]
    NotDigits,
    #[error("subscriber number has {0} digits; E.164 allows 1 to 15 without a leading zero")]
    BadLength(usize),
}

impl Msisdn {
    /// Parses E.164 digits (an optional leading '+' is accepted and dropped).
    pub fn parse(s: &str) -> Result<Msisdn, MsisdnError> {
        let digits = s.strip_prefix('+').unwrap_or(s);
        if digits.is_empty() {
            return Err(MsisdnError::Empty);
        }
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MsisdnError::NotDigits);
        }
        if digits.len() > 15 || digits.starts_with('0') {
            return Err(MsisdnError::BadLength(digits.len()));
        }
        let mut v = 0u64;
        for b in digits.bytes() {
            v = v * 10 + u64::from(b - b'0');
        }
        Ok(Msisdn(v))
    }

    /// The number with all but the last four digits masked, for logs and terminals.
    pub fn masked(&self) -> String {
        let s = self.0.to_string();
        let keep = s.len().min(4);
        format!("{}{}", "*".repeat(s.len() - keep), &s[s.len() - keep..])
    }
}

impl fmt::Display for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A stable 64-bit fingerprint of a record or event id, used to drop duplicates.
///
/// FNV-1a: stable across runs, builds and platforms (unlike `std`'s `RandomState`), which the
/// de-duplication of a restarted instance and deterministic ticket ids both rely on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordKey(pub u64);

impl RecordKey {
    pub fn of(id: &str) -> RecordKey {
        RecordKey(fnv1a(id.as_bytes()))
    }
}

/// FNV-1a 64-bit over bytes; used wherever a hash must be identical across runs.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = StableHasher::default();
    h.write(bytes);
    h.finish()
}

/// A `Hasher` that is FNV-1a 64: deterministic, for ids that leave the process.
#[derive(Clone, Copy)]
pub struct StableHasher(u64);

impl Default for StableHasher {
    fn default() -> Self {
        StableHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for StableHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// The kind of usage a CDR records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CdrKind {
    VoiceOut,
    VoiceIn,
    SmsOut,
    SmsIn,
    Data,
    /// A forwarded call leg; `other_party` is the forwarded-to number.
    Forward,
    /// The subscriber registered call forwarding to `other_party`.
    ForwardRegistration,
}

/// One call-detail record.
#[derive(Clone, Copy, Debug)]
pub struct Cdr<'a> {
    pub id: RecordKey,
    pub subscriber: Msisdn,
    /// Start of the usage, UTC epoch milliseconds.
    pub time_ms: i64,
    pub kind: CdrKind,
    /// Digits as dialled, possibly with an IP-call prefix; empty for data.
    pub other_party: &'a str,
    pub duration_s: u32,
    pub data_bytes: u64,
    /// Charge in fen; negative adjustments count as zero usage charge.
    pub charge: i64,
    /// Fingerprint of `call_reference`, 0 when absent.
    pub call_ref: u64,
    pub partial: bool,
    /// Usage abroad, on a visited network.
    pub roaming: bool,
}

/// Why a subscriber's number was suspended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SuspensionReason {
    Unspecified,
    NonPayment,
    NumberRetention,
    CustomerRequest,
}

/// How a subscriber left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChurnKind {
    Unspecified,
    PortOut,
    Deactivated,
}

/// A billing period: months since January 1970 (`year * 12 + month - 1` minus 1970*12).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period(pub i32);

impl Period {
    /// Parses "YYYY-MM".
    pub fn parse(s: &str) -> Option<Period> {
        let (y, m) = s.split_once('-')?;
        if y.len() != 4 || m.len() != 2 {
            return None;
        }
        let y: i32 = y.parse().ok()?;
        let m: i32 = m.parse().ok()?;
        if !(1..=12).contains(&m) || !(1970..=2200).contains(&y) {
            return None;
        }
        Some(Period((y - 1970) * 12 + m - 1))
    }
    pub fn year(self) -> i32 {
        1970 + self.0.div_euclid(12)
    }
    pub fn month(self) -> u32 {
        (self.0.rem_euclid(12) + 1) as u32
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year(), self.month())
    }
}

/// What happened on the account.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AccountKind {
    BillIssued {
        period: Period,
        amount: i64,
        due_time_ms: i64,
    },
    Payment {
        amount: i64,
    },
    BillOverdue {
        period: Period,
        amount: i64,
        days_overdue: u32,
    },
    TopUp {
        amount: i64,
        balance_after: i64,
    },
    Suspended {
        reason: SuspensionReason,
    },
    Resumed,
    ContractUpdated {
        end_time_ms: i64,
    },
    PlanChanged {
        monthly_fee: i64,
    },
    Complaint,
    FaultReport,
    ProfileUpdated {
        do_not_disturb: bool,
        key_person: bool,
        activated_time_ms: i64,
    },
    Churned {
        kind: ChurnKind,
    },
}

/// One billing or CRM event.
#[derive(Clone, Copy, Debug)]
pub struct AccountEvent {
    pub id: RecordKey,
    pub subscriber: Msisdn,
    pub time_ms: i64,
    pub kind: AccountKind,
}

/// The call center's result for a ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutcomeKind {
    Retained,
    Declined,
    Unreachable,
    Churned,
}

impl OutcomeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Retained => "RETAINED",
            OutcomeKind::Declined => "DECLINED",
            OutcomeKind::Unreachable => "UNREACHABLE",
            OutcomeKind::Churned => "CHURNED",
        }
    }
}

/// Feedback on one ticket.
#[derive(Clone, Copy, Debug)]
pub struct TicketOutcomeEvent<'a> {
    pub ticket_id: &'a str,
    pub subscriber: Msisdn,
    pub time_ms: i64,
    pub outcome: OutcomeKind,
}

/// Anything the engine consumes.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    Cdr(Cdr<'a>),
    Account(AccountEvent),
}

impl Event<'_> {
    pub fn time_ms(&self) -> i64 {
        match self {
            Event::Cdr(c) => c.time_ms,
            Event::Account(a) => a.time_ms,
        }
    }
    pub fn subscriber(&self) -> Msisdn {
        match self {
            Event::Cdr(c) => c.subscriber,
            Event::Account(a) => a.subscriber,
        }
    }
    pub fn id(&self) -> RecordKey {
        match self {
            Event::Cdr(c) => c.id,
            Event::Account(a) => a.id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msisdn_parses_digits_and_rejects_the_rest() {
        assert_eq!(Msisdn::parse("8613800138000"), Ok(Msisdn(8613800138000)));
        assert_eq!(Msisdn::parse("+8613800138000"), Ok(Msisdn(8613800138000)));
        assert_eq!(Msisdn::parse(""), Err(MsisdnError::Empty));
        assert_eq!(Msisdn::parse("86-138"), Err(MsisdnError::NotDigits));
        assert_eq!(Msisdn::parse("0123"), Err(MsisdnError::BadLength(4)));
        assert_eq!(
            Msisdn::parse("1234567890123456"),
            Err(MsisdnError::BadLength(16))
        );
    }

    #[test]
    fn masked_number_keeps_only_the_last_four_digits() {
        assert_eq!(Msisdn(8613800138000).masked(), "*********8000");
    }

    #[test]
    fn record_keys_are_stable_across_builds() {
        // FNV-1a test vector: a changed hash would change every ticket id downstream.
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(RecordKey::of("r1"), RecordKey::of("r1"));
        assert_ne!(RecordKey::of("r1"), RecordKey::of("r2"));
    }

    #[test]
    fn period_round_trips() {
        let p = Period::parse("2026-03").unwrap();
        assert_eq!(p.to_string(), "2026-03");
        assert!(Period::parse("2026-13").is_none());
        assert!(Period::parse("26-03").is_none());
    }
}
