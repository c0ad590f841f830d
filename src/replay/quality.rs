//! Detection quality offline: how many tickets were right and how early they came.
//!
//! The backtest's figures, beside the engine's live ones ([`crate::detect::quality`]),
//! which judge each subscriber's last ticket within a horizon as the stream goes; these
//! judge every ticket of a finished run against the whole ground truth, so the two differ by
//! design (docs/quality.md). Pure (no I/O): the final tickets (last version per `ticket_id`), the ground truth
//! (subscriber -> churn time, from `Churned` account events) and optionally the call
//! center's `TicketOutcome` feedback go in; a [`QualityReport`] comes out, printed by
//! `replay` and written as JSON by `replay --report`.
//!
//! Definitions (subscriber level, as the retention team counts people, not tickets):
//! - **precision** = ticketed subscribers who churned (true alarms) / ticketed subscribers;
//!   the rest are false alarms, shown per rule so a retention manager sees which is noisy;
//! - **recall** = churned subscribers whose first ticket came before their churn / churned
//!   subscribers. Per rule and per tier the denominator stays *all* churned subscribers,
//!   so a rule's recall is the share of leavers that rule caught (rules overlap);
//! - **lead time** = days from the subscriber's first ticket (per rule: first ticket carrying
//!   that rule; per tier: first ticket of that tier) to the churn, for subscribers caught
//!   before churning; median and p10 (nearest rank: 10% of leads are shorter or equal).
//!
//! Control-group tickets (`control_group = true`) are held out by policy: their subscribers
//! are measured apart, in [`QualityReport::control`], and are neither in the main figures'
//! ticketed subscribers nor in their recall denominator. Comparing the two churn rates
//! (precision) tells whether calling helps.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde::Serialize;

use crate::proto::{self, CareTicket, TicketOutcome};

const DAY_MS: f64 = 86_400_000.0;

/// Quality figures of one group of tickets (all, one rule, one tier).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Tickets in the group (distinct ids), so a retention manager sees the queue's load.
    pub tickets: u64,
    /// Distinct subscribers with a ticket in the group.
    pub ticketed: u64,
    /// Of those, subscribers who churned (true alarms).
    pub ticketed_churned: u64,
    /// Ticketed subscribers who did not churn: `ticketed - ticketed_churned`.
    pub false_alarms: u64,
    /// `ticketed_churned / ticketed`; absent when nothing was ticketed.
    pub precision: Option<f64>,
    /// Churned subscribers this group ticketed before they churned.
    pub caught: u64,
    /// `caught / churned subscribers` (the report's denominator); absent without churn.
    pub recall: Option<f64>,
    /// Median days from first ticket to churn over the caught subscribers.
    pub lead_days_median: Option<f64>,
    /// 10th percentile (nearest rank) of the same lead times.
    pub lead_days_p10: Option<f64>,
}

/// Ticket outcomes fed back by the call center, joined to their tickets.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OutcomeCounts {
    pub total: u64,
    pub by_outcome: BTreeMap<String, u64>,
    /// Rule -> outcome -> count (a ticket with two rules counts for both).
    pub by_rule: BTreeMap<String, BTreeMap<String, u64>>,
    /// Tier -> outcome -> count.
    pub by_tier: BTreeMap<String, BTreeMap<String, u64>>,
    /// Outcomes whose `ticket_id` matches no ticket.
    pub unknown_ticket: u64,
}

/// Figures for one population (main, or the control group).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Population {
    /// Churned subscribers in the recall denominator.
    pub churned: u64,
    pub overall: Figures,
    pub by_rule: BTreeMap<String, Figures>,
    pub by_tier: BTreeMap<String, Figures>,
}

/// The whole report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QualityReport {
    /// Distinct tickets measured (last version per id), control group included.
    pub tickets: u64,
    /// Subscribers with a churn event.
    pub churned_subscribers: u64,
    /// Tickets sent to queues (control_group = false), with every churned subscriber who is
    /// not in the control group.
    pub main: Population,
    /// Held-out tickets and their subscribers; absent when there are none.
    pub control: Option<Population>,
    /// Absent when no outcome was given.
    pub outcomes: Option<OutcomeCounts>,
    /// The engine's own live figures (`crate::detect::quality`), equal to what the
    /// service exports as `churnwatch_quality_*` for the same input; set by `replay`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_quality: Option<crate::detect::quality::LiveQualityReport>,
    /// Detection delay per planted journey, when `replay --journeys` gave the ground truth.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journeys: Option<super::delay::JourneyDelays>,
}

/// One subscriber's tickets, reduced to what the figures need.
#[derive(Default)]
struct Seen {
    first: Option<i64>,
    tickets: u64,
    /// Rule or tier -> (first ticket time, tickets).
    first_by_rule: BTreeMap<String, (i64, u64)>,
    first_by_tier: BTreeMap<String, (i64, u64)>,
}

impl Seen {
    fn add(&mut self, t: &CareTicket) {
        let at = t.created_time_ms;
        self.first = Some(self.first.map_or(at, |f| f.min(at)));
        self.tickets += 1;
        let note = |map: &mut BTreeMap<String, (i64, u64)>, key: &str| {
            let e = map.entry(key.to_string()).or_insert((at, 0));
            *e = (e.0.min(at), e.1 + 1);
        };
        for s in &t.signals {
            note(&mut self.first_by_rule, &s.rule);
        }
        note(&mut self.first_by_tier, &t.tier);
    }
}

/// Computes the report. `tickets` must hold the last version of each ticket id.
pub fn measure(
    tickets: &[CareTicket],
    churn_ms: &HashMap<String, i64>,
    outcomes: Option<&[TicketOutcome]>,
) -> QualityReport {
    let mut main: BTreeMap<&str, Seen> = BTreeMap::new();
    let mut control: BTreeMap<&str, Seen> = BTreeMap::new();
    for t in tickets {
        let side = if t.control_group {
            &mut control
        } else {
            &mut main
        };
        side.entry(t.subscriber.as_str()).or_default().add(t);
    }
    // A subscriber held out once belongs to the control population.
    let held_out: BTreeSet<&str> = control.keys().copied().collect();
    main.retain(|s, _| !held_out.contains(s));
    let main_churned = churn_ms
        .keys()
        .filter(|s| !held_out.contains(s.as_str()))
        .count() as u64;
    let control_churned = churn_ms
        .keys()
        .filter(|s| held_out.contains(s.as_str()))
        .count() as u64;
    QualityReport {
        tickets: tickets.len() as u64,
        churned_subscribers: churn_ms.len() as u64,
        main: population(&main, churn_ms, main_churned),
        control: (!control.is_empty()).then(|| population(&control, churn_ms, control_churned)),
        outcomes: outcomes.map(|o| count_outcomes(tickets, o)),
        live_quality: None,
        journeys: None,
    }
}

fn population(
    seen: &BTreeMap<&str, Seen>,
    churn_ms: &HashMap<String, i64>,
    churned: u64,
) -> Population {
    let overall = figures(
        seen.iter()
            .filter_map(|(s, v)| v.first.map(|f| (*s, f, v.tickets))),
        churn_ms,
        churned,
    );
    let mut rules: BTreeSet<&str> = BTreeSet::new();
    let mut tiers: BTreeSet<&str> = BTreeSet::new();
    for v in seen.values() {
        rules.extend(v.first_by_rule.keys().map(String::as_str));
        tiers.extend(v.first_by_tier.keys().map(String::as_str));
    }
    let by_rule = rules
        .into_iter()
        .map(|r| {
            let members = seen
                .iter()
                .filter_map(|(s, v)| v.first_by_rule.get(r).map(|&(f, n)| (*s, f, n)));
            (r.to_string(), figures(members, churn_ms, churned))
        })
        .collect();
    let by_tier = tiers
        .into_iter()
        .map(|t| {
            let members = seen
                .iter()
                .filter_map(|(s, v)| v.first_by_tier.get(t).map(|&(f, n)| (*s, f, n)));
            (t.to_string(), figures(members, churn_ms, churned))
        })
        .collect();
    Population {
        churned,
        overall,
        by_rule,
        by_tier,
    }
}

/// Figures over `(subscriber, first ticket time, tickets)` triples.
fn figures<'a>(
    members: impl Iterator<Item = (&'a str, i64, u64)>,
    churn_ms: &HashMap<String, i64>,
    churned: u64,
) -> Figures {
    let mut f = Figures::default();
    let mut leads = Vec::new();
    for (sub, first, tickets) in members {
        f.ticketed += 1;
        f.tickets += tickets;
        if let Some(&c) = churn_ms.get(sub) {
            f.ticketed_churned += 1;
            if first < c {
                f.caught += 1;
                leads.push((c - first) as f64 / DAY_MS);
            }
        }
    }
    f.false_alarms = f.ticketed - f.ticketed_churned;
    f.precision = ratio(f.ticketed_churned, f.ticketed);
    f.recall = ratio(f.caught, churned);
    leads.sort_by(f64::total_cmp);
    f.lead_days_median = median(&leads);
    f.lead_days_p10 = nearest_rank(&leads, 0.10);
    f
}

fn ratio(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

/// Median of sorted values (mean of the middle two for an even count).
pub(super) fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// The smallest value with at least `q` of the values at or below it.
pub(super) fn nearest_rank(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn count_outcomes(tickets: &[CareTicket], outcomes: &[TicketOutcome]) -> OutcomeCounts {
    let by_id: HashMap<&str, &CareTicket> =
        tickets.iter().map(|t| (t.ticket_id.as_str(), t)).collect();
    let mut c = OutcomeCounts::default();
    for o in outcomes {
        let name = proto::Outcome::try_from(o.outcome)
            .map_or("UNKNOWN", |x| x.as_str_name())
            .to_string();
        c.total += 1;
        *c.by_outcome.entry(name.clone()).or_default() += 1;
        let Some(t) = by_id.get(o.ticket_id.as_str()) else {
            c.unknown_ticket += 1;
            continue;
        };
        let rules: BTreeSet<&str> = t.signals.iter().map(|s| s.rule.as_str()).collect();
        for r in rules {
            *c.by_rule
                .entry(r.to_string())
                .or_default()
                .entry(name.clone())
                .or_default() += 1;
        }
        *c.by_tier
            .entry(t.tier.clone())
            .or_default()
            .entry(name)
            .or_default() += 1;
    }
    c
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{:.3}", x))
}

fn days(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:.1}"))
}

fn row(f: &mut fmt::Formatter<'_>, name: &str, x: &Figures) -> fmt::Result {
    writeln!(
        f,
        "    {name:<36} {:>7} {:>6} {:>6} {:>6} {:>9} {:>7} {:>6} {:>6}",
        x.tickets,
        x.ticketed,
        x.ticketed_churned,
        x.false_alarms,
        pct(x.precision),
        pct(x.recall),
        days(x.lead_days_median),
        days(x.lead_days_p10)
    )
}

fn write_population(f: &mut fmt::Formatter<'_>, p: &Population) -> fmt::Result {
    writeln!(
        f,
        "    {:<36} {:>7} {:>6} {:>6} {:>6} {:>9} {:>7} {:>6} {:>6}",
        "", "tickets", "subs", "true", "false", "precision", "recall", "lead50", "lead10"
    )?;
    row(f, "overall", &p.overall)?;
    for (rule, x) in &p.by_rule {
        row(f, &format!("rule {rule}"), x)?;
    }
    for (tier, x) in &p.by_tier {
        row(f, &format!("tier {tier}"), x)?;
    }
    Ok(())
}

impl fmt::Display for QualityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  detection quality")?;
        let m = &self.main;
        writeln!(
            f,
            "    precision {}  recall {}  lead time median {} days, p10 {} days",
            pct(m.overall.precision),
            pct(m.overall.recall),
            days(m.overall.lead_days_median),
            days(m.overall.lead_days_p10)
        )?;
        writeln!(
            f,
            "    {} churned subscribers ({} outside the control group), {} tickets",
            self.churned_subscribers, m.churned, self.tickets
        )?;
        write_population(f, m)?;
        if let Some(j) = &self.journeys {
            write!(f, "{j}")?;
        }
        if let Some(c) = &self.control {
            writeln!(
                f,
                "  control group (held out, not called): {} subscribers, churn rate {} vs {} when called",
                c.overall.ticketed,
                pct(c.overall.precision),
                pct(m.overall.precision)
            )?;
            write_population(f, c)?;
        }
        if let Some(o) = &self.outcomes {
            writeln!(
                f,
                "  outcomes          {} ({} for unknown tickets)",
                o.total, o.unknown_ticket
            )?;
            let line = |map: &BTreeMap<String, u64>| {
                map.iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            writeln!(f, "    {}", line(&o.by_outcome))?;
            for (rule, m) in &o.by_rule {
                writeln!(f, "    rule {rule:<27} {}", line(m))?;
            }
            for (tier, m) in &o.by_tier {
                writeln!(f, "    tier {tier:<27} {}", line(m))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Signal;

    const DAY: i64 = 86_400_000;

    fn ticket(id: &str, sub: &str, day: i64, rules: &[&str], tier: &str) -> CareTicket {
        CareTicket {
            ticket_id: id.into(),
            subscriber: sub.into(),
            created_time_ms: day * DAY,
            signals: rules
                .iter()
                .map(|r| Signal {
                    rule: r.to_string(),
                    ..Default::default()
                })
                .collect(),
            tier: tier.into(),
            ..Default::default()
        }
    }

    fn churns(list: &[(&str, i64)]) -> HashMap<String, i64> {
        list.iter().map(|(s, d)| (s.to_string(), d * DAY)).collect()
    }

    /// Three tickets for two subscribers (one churns 20 days after its first ticket), a
    /// third subscriber ticketed and loyal, and one leaver never ticketed.
    #[test]
    fn precision_recall_and_lead_are_exact_on_a_tiny_case() {
        let tickets = vec![
            ticket("t1", "a", 10, &["silent_days"], "mass"),
            ticket("t2", "a", 15, &["voice_drop", "spend_drop"], "mass"),
            ticket("t3", "b", 5, &["competitor_care_call"], "vip"),
        ];
        let churn = churns(&[("a", 30), ("c", 40)]);
        let r = measure(&tickets, &churn, None);
        let o = &r.main.overall;
        assert_eq!((o.ticketed, o.ticketed_churned, o.caught), (2, 1, 1));
        assert_eq!(o.precision, Some(0.5));
        assert_eq!(o.recall, Some(0.5));
        assert_eq!(o.lead_days_median, Some(20.0));
        assert_eq!(o.lead_days_p10, Some(20.0));
        let voice = &r.main.by_rule["voice_drop"];
        assert_eq!(
            voice.lead_days_median,
            Some(15.0),
            "first ticket with that rule"
        );
        assert_eq!(r.main.by_rule["competitor_care_call"].precision, Some(0.0));
        assert_eq!(r.main.by_tier["vip"].ticketed, 1);
        assert_eq!(r.main.by_tier["mass"].recall, Some(0.5));
        assert!(r.control.is_none());
        // The per-rule table: tickets, true and false alarms.
        assert_eq!((o.tickets, o.false_alarms), (3, 1));
        let care = &r.main.by_rule["competitor_care_call"];
        assert_eq!(
            (care.tickets, care.ticketed_churned, care.false_alarms),
            (1, 0, 1)
        );
        assert_eq!(r.main.by_tier["mass"].tickets, 2);
        let text = r.to_string();
        let row = text
            .lines()
            .find(|l| l.contains("rule competitor_care_call"))
            .unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(&cells[2..7], ["1", "1", "0", "1", "0.000"], "{text}");
        assert_eq!(r.churned_subscribers, 2);
    }

    #[test]
    fn a_ticket_after_the_churn_is_not_a_catch() {
        let tickets = vec![ticket("t1", "a", 31, &["silent_days"], "mass")];
        let r = measure(&tickets, &churns(&[("a", 30)]), None);
        assert_eq!(r.main.overall.precision, Some(1.0));
        assert_eq!(r.main.overall.recall, Some(0.0));
        assert_eq!(r.main.overall.lead_days_median, None);
    }

    #[test]
    fn median_and_p10_use_the_documented_ranks() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(median(&v), Some(5.5));
        assert_eq!(nearest_rank(&v, 0.10), Some(1.0));
        let v: Vec<f64> = (1..=11).map(f64::from).collect();
        assert_eq!(median(&v), Some(6.0));
        assert_eq!(nearest_rank(&v, 0.10), Some(2.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn control_group_is_measured_apart() {
        let mut held = ticket("t2", "b", 10, &["silent_days"], "mass");
        held.control_group = true;
        let tickets = vec![ticket("t1", "a", 10, &["silent_days"], "mass"), held];
        let r = measure(&tickets, &churns(&[("a", 20), ("b", 25)]), None);
        assert_eq!(r.main.churned, 1);
        assert_eq!(r.main.overall.ticketed, 1);
        assert_eq!(r.main.overall.recall, Some(1.0));
        let c = r.control.unwrap();
        assert_eq!((c.churned, c.overall.ticketed, c.overall.caught), (1, 1, 1));
        assert_eq!(c.overall.lead_days_median, Some(15.0));
    }

    #[test]
    fn outcomes_join_tickets_by_id_and_count_unknown_ids() {
        let tickets = vec![
            ticket("t1", "a", 10, &["silent_days", "voice_drop"], "mass"),
            ticket("t2", "b", 10, &["bill_shock"], "vip"),
        ];
        let o = |id: &str, outcome: proto::Outcome| TicketOutcome {
            ticket_id: id.into(),
            outcome: outcome as i32,
            ..Default::default()
        };
        let outcomes = vec![
            o("t1", proto::Outcome::Retained),
            o("t2", proto::Outcome::Churned),
            o("zz", proto::Outcome::Declined),
        ];
        let r = measure(&tickets, &HashMap::new(), Some(&outcomes));
        let c = r.outcomes.unwrap();
        assert_eq!(c.total, 3);
        assert_eq!(c.unknown_ticket, 1);
        assert_eq!(c.by_outcome["DECLINED"], 1);
        assert_eq!(c.by_rule["voice_drop"]["RETAINED"], 1);
        assert_eq!(c.by_rule["silent_days"]["RETAINED"], 1);
        assert_eq!(c.by_tier["vip"]["CHURNED"], 1);
        assert_eq!(r.main.overall.recall, None, "no churn at all");
    }
}
