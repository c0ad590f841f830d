//! Live detection quality: the engine judges its own tickets against the ground truth it
//! already consumes (`Churned` events), so a retention manager sees hits, misses and lead
//! time on a dashboard every day instead of waiting for an offline `replay --report`.
//!
//! **Why here, in the pure core.** Replay and the running service feed the same engine, so
//! one implementation gives both the same figures (`tests/quality_live.rs` checks it).
//! Judgements happen in event time, at day close: no wall clock, no arrival-order effects
//! beyond those tickets already have.
//!
//! **Memory.** Per subscriber, a fixed [`LastTicket`] (8 bytes in a parallel array of the
//! subscriber table, beside last-seen; freed on eviction, checkpointed with the subscriber
//! record): the last ticket's rule mask, its creation day, whether it went to the control
//! group and whether it has been judged (settled). No list of tickets, no map.
//!
//! **Definitions** (`H` = `quality.horizon_days`; days are the operator's calendar days):
//! - a **hit**: a subscriber churns (their `Churned` day closes) and their last ticket was
//!   created 0 to `H` days before the churn day: +1 for each rule on that ticket, and the
//!   lead time (churn day - ticket day, whole days) is observed once per rule;
//! - a **miss**: a subscriber churns with no ticket within `H` days before;
//! - a **false alarm**: a ticket's horizon passes (day `created + H` closes) without churn:
//!   +1 per rule on it, once (it is then settled). A subscriber evicted while their ticket
//!   is unsettled (idle for longer than `H` can only be when `H` exceeds
//!   `engine.idle_eviction_days`) counts it as a false alarm then;
//! - **newly ticketed** (`ticketed{group}`): a new ticket for a subscriber with no ticket
//!   within `H` days before it; `churned{group}` counts the hits per subscriber, by the group
//!   of the ticket judged. Uplift = 1 - (churned/ticketed)treated / (churned/ticketed)control.
//!
//! **A withdrawn ticket counts as what it was** (see [`super::withdraw`]): withdrawal is a
//! re-publication, not a new ticket, and changes nothing here. A churned subscriber's tickets
//! are withdrawn as `churned` and still count as hits for their rules; a ticket withdrawn
//! because its cause went (a bill paid) is still its rules' ticket, a false alarm if no
//! churn follows within the horizon.
//!
//! **A newer ticket replaces the last.** Within the horizon it just replaces it: the last
//! ticket is the one judged (its rules get the hit or the false alarm), the replaced one is
//! never judged. A newer ticket created more than `H` days after an unsettled one (possible
//! when it arrives before the older one's horizon day has closed) settles the older one as
//! a false alarm first. Re-emissions of a ticket (same id) change nothing, and a ticket
//! created on or after the subscriber's churn day is not remembered.

use super::calendar::Day;
use super::event::OutcomeKind;
use super::rules::RuleId;

/// Upper bounds (days) of the lead-time histogram's buckets; a last bucket takes the rest.
pub const LEAD_BUCKETS: [u32; 11] = [1, 2, 3, 5, 7, 14, 21, 30, 45, 60, 90];

const RULES: usize = RuleId::ALL.len();

/// The last ticket of one subscriber, as the quality figures need it: 5 bytes beside every
/// state (packed: at national scale a byte a subscriber is megabytes a partition).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C, packed)]
pub struct LastTicket {
    /// Rules on the ticket (`1 << rule as u32`); 0 = no ticket.
    mask: u16,
    /// Day it was created.
    day: u16,
    flags: u8,
}

// Every rule has a bit in the 16-bit mask.
const _: () = assert!(RULES <= 16);

const CONTROL: u8 = 1;
const SETTLED: u8 = 2;

impl LastTicket {
    /// Bytes of the encoding (mask, day, flags, little-endian).
    pub const ENCODED_LEN: usize = 7;

    pub fn is_some(&self) -> bool {
        self.mask != 0
    }

    /// Rules on the ticket (`1 << rule as u32`); 0 = no ticket.
    pub fn mask(&self) -> u32 {
        u32::from(self.mask)
    }

    /// Day it was created.
    pub fn day(&self) -> Day {
        Day::from(self.day)
    }

    pub fn control(&self) -> bool {
        self.flags & CONTROL != 0
    }

    pub fn settled(&self) -> bool {
        self.flags & SETTLED != 0
    }

    fn group(&self) -> usize {
        usize::from(self.control())
    }

    fn rules(&self) -> impl Iterator<Item = RuleId> + '_ {
        RuleId::ALL
            .into_iter()
            .filter(|&r| self.mask() & (1 << r as u32) != 0)
    }

    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut b = [0u8; Self::ENCODED_LEN];
        b[..4].copy_from_slice(&self.mask().to_le_bytes());
        b[4..6].copy_from_slice(&{ self.day }.to_le_bytes());
        b[6] = self.flags;
        b
    }

    pub fn decode(b: [u8; Self::ENCODED_LEN]) -> LastTicket {
        LastTicket {
            mask: u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u16,
            day: u16::from_le_bytes([b[4], b[5]]),
            flags: b[6] & (CONTROL | SETTLED),
        }
    }

    /// The same ticket with its mask translated (a restore from a build with other rule
    /// codes).
    pub(crate) fn with_mask(self, mask: u32) -> LastTicket {
        LastTicket {
            mask: mask as u16,
            ..self
        }
    }
}

/// The figures, as plain counters (the adapter exports their increase; replay reports
/// them). Groups are indexed `[treated, control]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QualityCounts {
    pub hits: [u64; RULES],
    pub false_alarms: [u64; RULES],
    /// Per rule, lead times per bucket of [`LEAD_BUCKETS`] (not cumulative), the last
    /// entry for leads above the last bound.
    pub lead_buckets: [[u64; LEAD_BUCKETS.len() + 1]; RULES],
    /// Per rule, the sum of the lead times observed (days).
    pub lead_sum_days: [u64; RULES],
    pub misses: u64,
    pub ticketed: [u64; 2],
    pub churned: [u64; 2],
    /// Per rule, the call center's outcomes on tickets carrying it, by [`OUTCOMES`].
    pub outcomes: [[u64; OUTCOMES.len()]; RULES],
    /// Judgements made (any counter above moved): lets an exporter skip a comparison.
    pub changes: u64,
}

/// Outcome kinds, by index in [`QualityCounts::outcomes`].
pub const OUTCOMES: [OutcomeKind; 4] = [
    OutcomeKind::Retained,
    OutcomeKind::Declined,
    OutcomeKind::Unreachable,
    OutcomeKind::Churned,
];

impl QualityCounts {
    /// The call center's `outcome` on a ticket carrying the rules of `mask`.
    pub fn outcome(&mut self, mask: u32, outcome: OutcomeKind) {
        let k = OUTCOMES.iter().position(|o| *o == outcome).unwrap_or(0);
        for r in RuleId::ALL {
            if mask & (1 << r as u32) != 0 {
                self.outcomes[r as usize][k] += 1;
                self.changes += 1;
            }
        }
    }
}

/// Group label values, by index.
pub const GROUPS: [&str; 2] = ["treated", "control"];

/// The bucket a lead of `days` falls in.
pub fn bucket_of(days: u32) -> usize {
    LEAD_BUCKETS
        .iter()
        .position(|&b| days <= b)
        .unwrap_or(LEAD_BUCKETS.len())
}

/// The judge: the horizon, and the lead times observed since the exporter last drained
/// them (kept only once someone drains, so a replay keeps none).
#[derive(Debug)]
pub struct Quality {
    horizon: Day,
    leads: Vec<(RuleId, u16)>,
    track_leads: bool,
}

impl Quality {
    pub fn new(horizon_days: u32) -> Quality {
        Quality {
            horizon: horizon_days as Day,
            leads: Vec::new(),
            track_leads: false,
        }
    }

    /// A new ticket with rules `mask`, created on `day`, for a subscriber whose last ticket
    /// is `last`.
    pub fn ticket(
        &self,
        last: &mut LastTicket,
        mask: u32,
        day: Day,
        control: bool,
        c: &mut QualityCounts,
    ) {
        if mask == 0 {
            return;
        }
        let beyond = last.is_some() && day - last.day() > self.horizon;
        if beyond && !last.settled() {
            false_alarm(last, c);
        }
        if !last.is_some() || beyond {
            c.ticketed[usize::from(control)] += 1;
            c.changes += 1;
        }
        *last = LastTicket {
            mask: mask as u16,
            day: day.clamp(0, Day::from(u16::MAX)) as u16,
            flags: if control { CONTROL } else { 0 },
        };
    }

    /// `day` has closed for a subscriber who churned on `churned_day` (0 = not churned):
    /// judges the churn on its day, or the ticket whose horizon ends that day.
    pub fn day_closed(
        &mut self,
        last: &mut LastTicket,
        churned_day: u16,
        day: Day,
        c: &mut QualityCounts,
    ) {
        if churned_day != 0 && Day::from(churned_day) == day {
            self.churn(last, day, c);
        } else if last.is_some() && !last.settled() && day - last.day() >= self.horizon {
            false_alarm(last, c);
        }
    }

    fn churn(&mut self, last: &mut LastTicket, day: Day, c: &mut QualityCounts) {
        c.changes += 1;
        let lead = day - last.day();
        if !last.is_some() || last.settled() || !(0..=self.horizon).contains(&lead) {
            c.misses += 1;
            return;
        }
        let b = bucket_of(lead as u32);
        for r in last.rules() {
            let i = r as usize;
            c.hits[i] += 1;
            c.lead_buckets[i][b] += 1;
            c.lead_sum_days[i] += lead as u64;
            if self.track_leads {
                self.leads.push((r, lead as u16));
            }
        }
        c.churned[last.group()] += 1;
        last.flags |= SETTLED;
    }

    /// A subscriber leaves the table: an unsettled ticket is a false alarm.
    pub fn evicted(&self, last: &mut LastTicket, c: &mut QualityCounts) {
        if last.is_some() && !last.settled() {
            false_alarm(last, c);
        }
    }

    /// Calls `f(rule, lead_days)` for every lead time observed since the last call, then
    /// forgets them; from the first call on, lead times are kept for the next.
    pub fn drain_lead_times(&mut self, mut f: impl FnMut(RuleId, u32)) {
        for (r, d) in self.leads.drain(..) {
            f(r, u32::from(d));
        }
        self.track_leads = true;
    }

    /// Bytes held by the pending lead times.
    pub fn bytes(&self) -> usize {
        self.leads.capacity() * std::mem::size_of::<(RuleId, u16)>()
    }
}

fn false_alarm(last: &mut LastTicket, c: &mut QualityCounts) {
    for r in last.rules() {
        c.false_alarms[r as usize] += 1;
    }
    c.changes += 1;
    last.flags |= SETTLED;
}

/// The figures of one rule, as a report writes them.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RuleQuality {
    pub hits: u64,
    pub false_alarms: u64,
    /// Cumulative counts per upper bound (`le`, days), as Prometheus buckets; the total
    /// is `lead_time_count`.
    pub lead_time_buckets: Vec<(u32, u64)>,
    pub lead_time_count: u64,
    pub lead_time_sum_days: u64,
}

/// The live figures, as `replay --report` writes them (`live_quality`): the same counters
/// the service exports as `churnwatch_quality_*`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LiveQualityReport {
    pub horizon_days: u32,
    /// Rules with any figure, by rule id.
    pub by_rule: std::collections::BTreeMap<String, RuleQuality>,
    pub misses: u64,
    /// By group (`treated`, `control`).
    pub ticketed: std::collections::BTreeMap<String, u64>,
    pub churned: std::collections::BTreeMap<String, u64>,
    /// Call-center outcomes received, by outcome (`churnwatch_ticket_outcomes_total`);
    /// filled in by the caller, which holds them.
    pub outcomes: std::collections::BTreeMap<String, u64>,
    /// Outcomes joined to their ticket, by rule on it and outcome
    /// (`churnwatch_quality_outcomes_total`); rules with none are left out.
    pub outcomes_by_rule:
        std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>,
}

impl QualityCounts {
    /// The report of these counts.
    pub fn report(&self, horizon_days: u32) -> LiveQualityReport {
        let mut by_rule = std::collections::BTreeMap::new();
        for r in RuleId::ALL {
            let i = r as usize;
            let count: u64 = self.lead_buckets[i].iter().sum();
            if self.hits[i] == 0 && self.false_alarms[i] == 0 {
                continue;
            }
            let mut acc = 0;
            let lead_time_buckets = LEAD_BUCKETS
                .iter()
                .zip(&self.lead_buckets[i])
                .map(|(&le, &n)| {
                    acc += n;
                    (le, acc)
                })
                .collect();
            let q = RuleQuality {
                hits: self.hits[i],
                false_alarms: self.false_alarms[i],
                lead_time_buckets,
                lead_time_count: count,
                lead_time_sum_days: self.lead_sum_days[i],
            };
            by_rule.insert(r.as_str().to_string(), q);
        }
        let groups = |v: &[u64; 2]| GROUPS.iter().map(|g| g.to_string()).zip(*v).collect();
        let mut outcomes_by_rule = std::collections::BTreeMap::new();
        for r in RuleId::ALL {
            let counts = &self.outcomes[r as usize];
            if counts.iter().any(|n| *n > 0) {
                let by_kind = OUTCOMES
                    .iter()
                    .zip(counts)
                    .filter(|(_, n)| **n > 0)
                    .map(|(o, n)| (o.as_str().to_string(), *n))
                    .collect();
                outcomes_by_rule.insert(r.as_str().to_string(), by_kind);
            }
        }
        LiveQualityReport {
            horizon_days,
            by_rule,
            misses: self.misses,
            ticketed: groups(&self.ticketed),
            churned: groups(&self.churned),
            outcomes: Default::default(),
            outcomes_by_rule,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u32 = 30;
    const A: u32 = 1 << RuleId::SilentDays as u32;
    const B: u32 = 1 << RuleId::DataDrop as u32;

    fn ticketed(day: Day, mask: u32, control: bool) -> (Quality, LastTicket, QualityCounts) {
        let q = Quality::new(H);
        let (mut last, mut c) = (LastTicket::default(), QualityCounts::default());
        q.ticket(&mut last, mask, day, control, &mut c);
        (q, last, c)
    }

    #[test]
    fn a_churn_inside_the_horizon_is_a_hit_per_rule_with_its_lead() {
        let (mut q, mut last, mut c) = ticketed(1_000, A | B, false);
        q.drain_lead_times(|_, _| {});
        assert_eq!(c.ticketed, [1, 0]);
        for d in 1_000..1_012 {
            q.day_closed(&mut last, 1_012, d, &mut c);
        }
        assert_eq!(
            (c.hits, c.misses),
            ([0; RULES], 0),
            "not judged before the churn day"
        );
        q.day_closed(&mut last, 1_012, 1_012, &mut c);
        assert_eq!(c.hits[RuleId::SilentDays as usize], 1);
        assert_eq!(c.hits[RuleId::DataDrop as usize], 1);
        assert_eq!(c.lead_buckets[RuleId::DataDrop as usize][bucket_of(12)], 1);
        assert_eq!(bucket_of(12), 5, "12 days: the le=14 bucket");
        assert_eq!(c.lead_sum_days[RuleId::SilentDays as usize], 12);
        assert_eq!((c.misses, c.churned), (0, [1, 0]));
        let mut leads = Vec::new();
        q.drain_lead_times(|r, d| leads.push((r, d)));
        assert_eq!(leads, [(RuleId::SilentDays, 12), (RuleId::DataDrop, 12)]);
        assert!(last.settled());
        q.day_closed(&mut last, 1_012, 1_030, &mut c);
        assert_eq!(
            c.false_alarms, [0; RULES],
            "a hit is never a false alarm too"
        );
    }

    #[test]
    fn a_churn_outside_the_horizon_or_without_ticket_is_a_miss() {
        let (mut q, mut last, mut c) = ticketed(1_000, A, false);
        q.day_closed(&mut last, 1_031, 1_030, &mut c);
        assert_eq!(c.false_alarms[RuleId::SilentDays as usize], 1);
        q.day_closed(&mut last, 1_031, 1_031, &mut c);
        assert_eq!((c.misses, c.hits[RuleId::SilentDays as usize]), (1, 0));
        let mut none = LastTicket::default();
        q.day_closed(&mut none, 500, 500, &mut c);
        assert_eq!(c.misses, 2);
        assert_eq!(c.churned, [0, 0]);
    }

    #[test]
    fn a_false_alarm_counts_once_when_the_horizon_day_closes() {
        let (mut q, mut last, mut c) = ticketed(1_000, A | B, false);
        q.day_closed(&mut last, 0, 1_029, &mut c);
        assert_eq!(c.false_alarms, [0; RULES]);
        for d in 1_030..1_040 {
            q.day_closed(&mut last, 0, d, &mut c);
        }
        assert_eq!(c.false_alarms[RuleId::SilentDays as usize], 1);
        assert_eq!(c.false_alarms[RuleId::DataDrop as usize], 1);
        q.evicted(&mut last, &mut c);
        assert_eq!(c.false_alarms.iter().sum::<u64>(), 2, "settled: not again");
    }

    #[test]
    fn a_newer_ticket_replaces_the_last_and_only_it_is_judged() {
        let (mut q, mut last, mut c) = ticketed(1_000, A, false);
        q.ticket(&mut last, B, 1_020, false, &mut c);
        assert_eq!(c.ticketed, [1, 0], "within the horizon: not newly ticketed");
        q.day_closed(&mut last, 0, 1_030, &mut c);
        assert_eq!(c.false_alarms, [0; RULES]);
        q.day_closed(&mut last, 1_045, 1_045, &mut c);
        assert_eq!(c.hits[RuleId::DataDrop as usize], 1);
        assert_eq!(c.hits[RuleId::SilentDays as usize], 0);
        // Beyond the horizon of an unsettled one: that one is settled first.
        let (q, mut last, mut c) = ticketed(1_000, A, false);
        q.ticket(&mut last, B, 1_031, false, &mut c);
        assert_eq!(c.false_alarms[RuleId::SilentDays as usize], 1);
        assert_eq!(c.ticketed, [2, 0]);
    }

    #[test]
    fn control_and_treated_are_counted_apart() {
        let (mut q, mut last, mut c) = ticketed(1_000, A, true);
        let mut other = LastTicket::default();
        q.ticket(&mut other, B, 1_000, false, &mut c);
        q.day_closed(&mut last, 1_005, 1_005, &mut c);
        assert_eq!(c.ticketed, [1, 1]);
        assert_eq!(c.churned, [0, 1]);
        let r = c.report(H);
        assert_eq!(r.ticketed["control"], 1);
        assert_eq!(r.churned["control"], 1);
        assert_eq!(r.by_rule["silent_days"].lead_time_buckets[3], (5, 1));
        assert_eq!(r.by_rule["silent_days"].lead_time_buckets[0], (1, 0));
    }

    #[test]
    fn the_encoding_round_trips_in_seven_bytes() {
        let (_, last, _) = ticketed(20_123, A | B, true);
        assert_eq!(std::mem::size_of::<LastTicket>(), 5);
        let b = last.encode();
        assert_eq!(b.len(), LastTicket::ENCODED_LEN);
        assert_eq!(LastTicket::decode(b), last);
        assert_eq!(LastTicket::decode([0; 7]), LastTicket::default());
    }

    #[test]
    fn lead_times_are_kept_only_once_drained() {
        let (mut q, mut last, mut c) = ticketed(1_000, A, false);
        q.day_closed(&mut last, 1_003, 1_003, &mut c);
        assert_eq!(q.bytes(), 0, "nobody drains: nothing kept");
    }

    #[test]
    fn an_outcome_counts_for_every_rule_on_its_ticket() {
        let mut c = QualityCounts::default();
        let two = A | 1 << RuleId::ZeroSpendMonth as u32;
        c.outcome(two, OutcomeKind::Declined);
        c.outcome(A, OutcomeKind::Retained);
        let r = c.report(H);
        let silent = &r.outcomes_by_rule[RuleId::SilentDays.as_str()];
        assert_eq!((silent["DECLINED"], silent["RETAINED"]), (1, 1));
        let zero = &r.outcomes_by_rule[RuleId::ZeroSpendMonth.as_str()];
        assert_eq!(zero.len(), 1, "only what it had: {zero:?}");
        assert_eq!(r.outcomes_by_rule.len(), 2);
    }
}
