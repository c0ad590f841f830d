//! Subscriber tiers: who is worth how much care [003][001][004].
//!
//! "Resources are finite: spend them on the most valuable subscribers." A tier is the band
//! of the trailing three full months' average monthly spend, from bills where seen (a
//! postpaid plan fee never shows in CDR charges) and CDR charges otherwise. A subscriber
//! with less than three full months of history is tiered by the larger of its plan fee and
//! its spend so far ("a new subscriber on a plan of 80 yuan or more is VIP from the
//! start"), and a corporate key person is raised a band, to VIP at least. Bands are
//! configuration because thresholds differ by province.
//!
//! The months are those before the month [`BILL_SETTLE_DAYS`] days before the ticket: by
//! then the month is closed and its bill (issued early in the next month) recorded, so a
//! ticket's tier does not depend on arrival order. For the same reason the engine hands in
//! the plan fee and key-person flag as they stood one allowed lateness before the ticket
//! (see `facts`): a plan upgrade counts for tickets from 48 h after it.

use super::config::TiersConfig;

use super::calendar::first_day_of_month;
use super::event::Period;
use super::state::{flag, SubscriberState};

/// Bills are assumed issued within this many days after their month ends (plus the days a
/// record may be late).
pub const BILL_SETTLE_DAYS: i32 = 13;

/// The newest month a ticket raised on `day` is tiered on.
pub fn reference_month(day: super::calendar::Day) -> Period {
    Period(super::calendar::month_of_day(day - BILL_SETTLE_DAYS).0 - 1)
}

/// Tier bands, highest first; a tier is an index into them.
#[derive(Debug, Clone)]
pub struct Tiers {
    cfg: TiersConfig,
    lowest_vip: Option<usize>,
}

impl Tiers {
    pub fn new(cfg: &TiersConfig) -> Tiers {
        let lowest_vip = cfg.bands.iter().rposition(|b| b.vip);
        Tiers {
            cfg: cfg.clone(),
            lowest_vip,
        }
    }

    pub fn name(&self, tier: usize) -> &str {
        self.cfg
            .bands
            .get(tier)
            .map_or("unknown", |b| b.name.as_str())
    }

    pub fn queue(&self, tier: usize) -> &str {
        self.cfg
            .bands
            .get(tier)
            .map_or("retention", |b| b.queue.as_str())
    }

    pub fn len(&self) -> usize {
        self.cfg.bands.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cfg.bands.is_empty()
    }

    /// The band of an average monthly spend.
    pub fn band_of(&self, monthly_yuan: f64) -> usize {
        self.cfg
            .bands
            .iter()
            .position(|b| monthly_yuan >= b.min_monthly_yuan)
            .unwrap_or(self.cfg.bands.len() - 1)
    }

    /// Average monthly spend (yuan) over the three months up to `m`, and whether the
    /// subscriber has that much history.
    pub fn monthly_spend(state: &SubscriberState, m: Period) -> (f64, bool) {
        let full = state.known_since(first_day_of_month(Period(m.0 - 2)));
        let months: Vec<i32> = (0..3)
            .map(|i| m.0 - i)
            .filter(|&p| full || state.known_since(first_day_of_month(Period(p))))
            .collect();
        if months.is_empty() {
            return (0.0, false);
        }
        let total: u64 = months.iter().map(|&p| state.month_spend_fen(p)).sum();
        (total as f64 / 100.0 / months.len() as f64, full)
    }

    /// The subscriber's tier on the months up to `reference` (see [`reference_month`]).
    pub fn tier_of(&self, state: &SubscriberState, reference: Period) -> usize {
        let (avg, full) = Self::monthly_spend(state, reference);
        let spend = if !full && self.cfg.new_subscriber_by_plan_fee {
            avg.max(f64::from(state.plan_fee_yuan))
        } else {
            avg
        };
        let mut tier = self.band_of(spend);
        if state.has(flag::KEY_PERSON) {
            tier = tier.saturating_sub(self.cfg.key_person_raise as usize);
            if let Some(vip) = self.lowest_vip {
                tier = tier.min(vip);
            }
        }
        tier
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiers() -> Tiers {
        Tiers::new(&TiersConfig::default())
    }

    fn spender(yuan_per_month: [u32; 3], last: Period) -> SubscriberState {
        let mut s = SubscriberState::default();
        s.note_seen(first_day_of_month(Period(last.0 - 3)));
        for (i, y) in yuan_per_month.iter().enumerate() {
            s.month_charge_fen = y * 100;
            s.close_month(last.0 - 2 + i as i32);
        }
        s
    }

    #[test]
    fn bands_by_three_month_average() {
        let t = tiers();
        let m = Period::parse("2026-06").unwrap();
        assert_eq!(t.name(t.tier_of(&spender([80, 80, 80], m), m)), "vip");
        assert_eq!(t.name(t.tier_of(&spender([79, 80, 80], m), m)), "star_3");
        assert_eq!(
            t.name(t.tier_of(&spender([1000, 1000, 1000], m), m)),
            "vip_supreme"
        );
        assert_eq!(t.name(t.tier_of(&spender([0, 0, 10], m), m)), "star_1");
    }

    #[test]
    fn a_new_subscriber_on_an_80_yuan_plan_is_vip_from_the_start() {
        let t = tiers();
        let m = Period::parse("2026-06").unwrap();
        let mut s = SubscriberState::default();
        s.note_seen(first_day_of_month(m) + 3);
        s.plan_fee_yuan = 88;
        assert_eq!(t.name(t.tier_of(&s, m)), "vip");
        s.plan_fee_yuan = 58;
        assert_eq!(t.name(t.tier_of(&s, m)), "star_3");
        // An established subscriber is judged on spend, not plan.
        let mut s = spender([30, 30, 30], m);
        s.plan_fee_yuan = 88;
        assert_eq!(t.name(t.tier_of(&s, m)), "star_2");
    }

    #[test]
    fn a_key_person_is_raised_to_vip_at_least() {
        let t = tiers();
        let m = Period::parse("2026-06").unwrap();
        let mut s = spender([10, 10, 10], m);
        s.set(flag::KEY_PERSON, true);
        assert_eq!(t.name(t.tier_of(&s, m)), "vip");
        let mut s = spender([600, 600, 600], m);
        s.set(flag::KEY_PERSON, true);
        assert_eq!(t.name(t.tier_of(&s, m)), "vip_supreme");
    }

    #[test]
    fn a_bill_outweighs_cdr_charges_for_its_month() {
        let t = tiers();
        let m = Period::parse("2026-06").unwrap();
        let mut s = spender([5, 5, 5], m);
        for p in m.0 - 2..=m.0 {
            s.record_bill(p, 12_800);
        }
        assert_eq!(t.name(t.tier_of(&s, m)), "vip");
    }
}
