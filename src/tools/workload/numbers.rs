//! One numbering plan for every workload: subscriber numbers, the other parties of calls,
//! and what a call costs.
//!
//! Subscriber `i` has the same number in the demo, in `generate`'s files and in the
//! benchmarks, so a number seen in one is recognisable in another. Numbers are China
//! Unicom's (the operator the detector serves) in international format; other parties
//! mix every operator's mobiles, national format, because the rules that look at other
//! parties (off-network forwarding, competitor care lines and IP prefixes) care whose
//! network a number is on.

use super::Rng;

/// China Unicom mobile prefixes subscriber numbers are drawn from, as digits.
const OWN: [u64; 7] = [130, 131, 132, 155, 156, 185, 186];

/// Mobile prefixes of the competitors, China Mobile and China Telecom.
pub const COMPETITOR_PREFIXES: [&str; 4] = ["138", "139", "189", "133"];
/// China Unicom's own mobile prefixes (on-network parties).
pub const UNICOM_PREFIXES: [&str; 4] = ["130", "186", "155", "132"];
/// Every operator's mobiles, roughly as a subscriber's contacts mix them.
pub const ANY_PREFIXES: [&str; 10] = [
    "130", "131", "155", "186", "138", "139", "150", "158", "133", "189",
];

/// The `i`th subscriber's number as digits (`86` and 11 digits): distinct for every `i`
/// below 700 million, and scattered rather than sequential.
pub fn subscriber(i: u64) -> u64 {
    let k = i / OWN.len() as u64;
    // k -> 7919 k + c (mod 10^8) is a bijection: 7919 is prime to 10^8.
    let body = (k * 7919 + 10_000_019) % 100_000_000;
    86 * 100_000_000_000 + OWN[(i % OWN.len() as u64) as usize] * 100_000_000 + body
}

/// The `i`th subscriber's number as records carry it, e.g. `8613010000019`.
pub fn subscriber_number(i: usize) -> String {
    subscriber(i as u64).to_string()
}

/// A random mobile (national format) on one of `prefixes`.
pub fn mobile(rng: &mut Rng, prefixes: &[&str]) -> String {
    format!("{}{:08}", rng.pick(prefixes), rng.range(0, 100_000_000))
}

/// Outgoing voice: `rate` fen per started minute.
pub fn voice_charge(secs: u32, rate: i64) -> i64 {
    i64::from(secs.div_ceil(60)) * rate
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Msisdn;

    #[test]
    fn subscriber_numbers_are_distinct_valid_unicom_numbers() {
        let nums: std::collections::BTreeSet<String> = (0..20_000).map(subscriber_number).collect();
        assert_eq!(nums.len(), 20_000);
        assert!(nums.iter().all(|n| n.len() == 13
            && Msisdn::parse(n).is_ok()
            && OWN.iter().any(|p| n[2..].starts_with(&p.to_string()))));
    }

    #[test]
    fn the_numbering_plan_is_stable() {
        // generate's files for a seed must not change: these numbers are in them.
        assert_eq!(subscriber_number(0), "8613010000019");
        assert_eq!(subscriber_number(6), "8618610000019");
        assert_eq!(subscriber_number(7), "8613010007938");
        assert_eq!(subscriber(7), 8_613_010_007_938);
    }

    #[test]
    fn voice_is_charged_per_started_minute() {
        assert_eq!(voice_charge(0, 15), 0);
        assert_eq!(voice_charge(60, 15), 15);
        assert_eq!(voice_charge(61, 10), 20);
    }
}
