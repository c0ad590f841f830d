//! Priority and queue from a configurable tier x signal-strength matrix [003][004].
//!
//! "A VIP showing a strong signal goes to the front of a dedicated retention desk; a
//! low-value subscriber with a weak signal may get an automated message or nothing." Each
//! tier has a row of cells for strong, medium and weak signals (P1 most urgent, "none" for
//! no ticket). A ticket takes the most urgent cell among its signals; `P4` goes to the
//! automated-message queue, the rest to the tier's queue.

use super::config::{Cell, RoutingConfig, Strength, TiersConfig};
use crate::proto::Priority;

use super::rules::RuleId;

/// The compiled matrix.
#[derive(Debug, Clone)]
pub struct Router {
    cells: Vec<[Cell; 3]>,
    strength: [Strength; RuleId::ALL.len()],
    automated_queue: String,
    no_contact_queue: String,
}

/// Where a ticket goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route<'a> {
    pub priority: Priority,
    pub queue: &'a str,
}

fn column(s: Strength) -> usize {
    match s {
        Strength::Strong => 0,
        Strength::Medium => 1,
        Strength::Weak => 2,
    }
}

impl Router {
    /// `tiers` and `routing` must be validated (every tier has a row).
    pub fn new(tiers: &TiersConfig, routing: &RoutingConfig) -> Router {
        let cells = tiers
            .bands
            .iter()
            .map(|b| {
                routing
                    .matrix
                    .get(&b.name)
                    .copied()
                    .unwrap_or([Cell::P4; 3])
            })
            .collect();
        let mut strength = [Strength::Medium; RuleId::ALL.len()];
        for (i, r) in RuleId::ALL.iter().enumerate() {
            if let Some(s) = routing.strength.get(r.as_str()) {
                strength[i] = *s;
            }
        }
        Router {
            cells,
            strength,
            automated_queue: routing.automated_queue.clone(),
            no_contact_queue: routing.no_contact_queue.clone(),
        }
    }

    pub fn strength(&self, rule: RuleId) -> Strength {
        self.strength[rule as usize]
    }

    pub fn no_contact_queue(&self) -> &str {
        &self.no_contact_queue
    }

    /// The route of a ticket with these signals for a subscriber of `tier` (whose own
    /// queue is `tier_queue`); `None` when every cell says "none".
    pub fn route<'a>(
        &'a self,
        tier: usize,
        tier_queue: &'a str,
        rules: &[RuleId],
    ) -> Option<Route<'a>> {
        let row = self.cells.get(tier)?;
        let best = rules.iter().map(|&r| row[column(self.strength(r))]).min()?;
        let (priority, queue) = match best {
            Cell::P1 => (Priority::P1, tier_queue),
            Cell::P2 => (Priority::P2, tier_queue),
            Cell::P3 => (Priority::P3, tier_queue),
            Cell::P4 => (Priority::P4, self.automated_queue.as_str()),
            Cell::NoTicket => return None,
        };
        Some(Route { priority, queue })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::config::{RoutingConfig, TiersConfig};

    fn router() -> (Router, TiersConfig) {
        let t = TiersConfig::default();
        (Router::new(&t, &RoutingConfig::default()), t)
    }

    fn tier(t: &TiersConfig, name: &str) -> usize {
        t.bands.iter().position(|b| b.name == name).unwrap()
    }

    #[test]
    fn the_same_signal_is_more_urgent_for_a_vip() {
        let (r, t) = router();
        let vip = r
            .route(
                tier(&t, "vip_gold"),
                "vip_retention_desk",
                &[RuleId::SilentDays],
            )
            .unwrap();
        let mass = r
            .route(tier(&t, "star_1"), "retention", &[RuleId::SilentDays])
            .unwrap();
        assert!(vip.priority < mass.priority || (vip.priority as i32) < (mass.priority as i32));
        assert_eq!(vip.priority, Priority::P2);
        assert_eq!(mass.priority, Priority::P4);
        assert_eq!(mass.queue, "automated_message");
        assert_eq!(vip.queue, "vip_retention_desk");
    }

    #[test]
    fn strong_signals_rank_above_weak_ones() {
        let (r, t) = router();
        let star = tier(&t, "star_3");
        let strong = r
            .route(star, "retention", &[RuleId::NumberRetentionSuspension])
            .unwrap();
        let weak = r
            .route(star, "retention", &[RuleId::ContractExpiry])
            .unwrap();
        assert_eq!(strong.priority, Priority::P2);
        assert_eq!(weak.priority, Priority::P4);
        // A ticket takes its most urgent signal.
        let both = r
            .route(
                star,
                "retention",
                &[RuleId::ContractExpiry, RuleId::CompetitorCareCall],
            )
            .unwrap();
        assert_eq!(both.priority, Priority::P2);
    }

    #[test]
    fn a_weak_signal_on_the_lowest_tier_raises_no_ticket() {
        let (r, t) = router();
        assert!(r
            .route(tier(&t, "star_1"), "retention", &[RuleId::PaymentReminder])
            .is_none());
        assert!(r
            .route(tier(&t, "star_2"), "retention", &[RuleId::PaymentReminder])
            .is_some());
    }
}
