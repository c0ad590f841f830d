//! Ticket policy: what becomes of signals once rules have raised them. The engine decides
//! *that* a subscriber shows a sign and resolves who the subscriber is (the account as it
//! stood when the ticket could last change); this module decides *what the call center
//! sees*: rules the subscriber was just retained for are dropped, the ticket is tiered and
//! routed (or dropped below threshold), the control group is held out, do-not-disturb and
//! the contact cap move tickets to the no-contact queue, and tickets whose contact decision
//! changes are re-emitted with the same id. It also remembers recent ticket ids to join the
//! call center's outcomes, and follows every ticket until its cause has gone, to withdraw it
//! (see [`super::withdraw`]). Pure like the rest of the core: time is the caller's event
//! time.

use rustc_hash::FxHashMap;

use crate::proto::CareTicket;

use super::calendar::{Calendar, Day};
use super::config::{DetectConfig, RulesConfig};
use super::contact::{in_control_group, ContactWindow};
use super::event::{Msisdn, OutcomeKind, TicketOutcomeEvent};
use super::routing::Router;
use super::rules::{RuleId, SignalDraft};
use super::snapshot::{Put, Reader, RuleTable, SnapshotError};
use super::state::{SubscriberState, OPEN_DAYS};
use super::stats::{bump, EngineStats};
use super::table::SubscriberTable;
use super::ticket;
use super::tier::{reference_month, Tiers};
use super::withdraw::{Judged, OpenTickets, FOLLOW_DAYS};

/// How long a ticket id is remembered to join call-center outcomes (180 days).
const TICKET_MEMORY_MS: i64 = 180 * 86_400_000;

/// What the policy reads from the engine: its config, calendar and lateness.
pub struct Ctx<'a> {
    pub cfg: &'a DetectConfig,
    pub cal: &'a Calendar,
    pub lateness_ms: i64,
}

/// Who a ticket is for, as the engine resolved them.
pub struct Subject<'a> {
    pub slot: u32,
    pub msisdn: Msisdn,
    /// The account as the ticket is tiered on.
    pub state: &'a SubscriberState,
    /// Do-not-disturb by the time the ticket is created.
    pub dnd: bool,
}

/// A new ticket, as the quality figures need it (see [`super::quality`]).
#[derive(Debug, Clone, Copy)]
pub struct Raised {
    /// Rules on it (`1 << rule as u32`).
    pub mask: u32,
    pub created_ms: i64,
    pub control: bool,
}

/// Tiers, routing, the contact cap and the memory they need, for one engine.
pub struct Policy {
    tiers: Tiers,
    router: Router,
    /// Contact-cap windows by (subscriber slot, window), and the routed tickets in them.
    contact_windows: FxHashMap<(u32, i64), ContactWindow>,
    routed: FxHashMap<String, CareTicket>,
    /// Recent tickets: id -> (slot, rule bitmask, created), to join outcomes.
    ticket_rules: FxHashMap<String, (u32, u32, i64)>,
    /// Rules a subscriber was just retained for, until when.
    retained: FxHashMap<(u32, RuleId), i64>,
    /// Tickets followed until their cause has gone (see [`super::withdraw`]).
    open: OpenTickets,
}

impl Policy {
    pub fn new(cfg: &DetectConfig) -> Policy {
        Policy {
            tiers: Tiers::new(&cfg.tiers),
            router: Router::new(&cfg.tiers, &cfg.routing),
            contact_windows: FxHashMap::default(),
            routed: FxHashMap::default(),
            ticket_rules: FxHashMap::default(),
            retained: FxHashMap::default(),
            open: OpenTickets::default(),
        }
    }

    /// New tiers and routing; the contact and retention memory is kept.
    pub fn reconfigure(&mut self, cfg: &DetectConfig) {
        self.tiers = Tiers::new(&cfg.tiers);
        self.router = Router::new(&cfg.tiers, &cfg.routing);
    }

    pub fn tiers(&self) -> &Tiers {
        &self.tiers
    }

    /// Drops the signals of rules the call center just retained the subscriber for.
    pub fn drop_retained(
        &self,
        slot: u32,
        signals: &mut Vec<SignalDraft>,
        stats: &mut EngineStats,
    ) {
        signals.retain(|d| {
            let retained = self
                .retained
                .get(&(slot, d.rule))
                .is_some_and(|&until| d.raised_ms < until);
            if retained {
                bump(&mut stats.suppressed, "retained");
            }
            !retained
        });
    }

    /// Turns signals raised together into a ticket: tiers and routes it, applies the
    /// control group, do-not-disturb and the contact cap, and emits it (plus any ticket
    /// whose contact decision the cap changed). Returns a new ticket (not an update).
    pub fn dispatch(
        &mut self,
        ctx: &Ctx<'_>,
        who: Subject<'_>,
        signals: Vec<SignalDraft>,
        update: bool,
        stats: &mut EngineStats,
        out: &mut Vec<CareTicket>,
    ) -> Option<Raised> {
        let Subject {
            slot,
            msisdn,
            state,
            dnd,
        } = who;
        let created = signals.iter().map(|d| d.raised_ms).min().unwrap_or(0);
        let tier = self
            .tiers
            .tier_of(state, reference_month(ctx.cal.day_of(created)));
        let rule_ids: Vec<RuleId> = signals.iter().map(|d| d.rule).collect();
        let Some(route) = self.router.route(tier, self.tiers.queue(tier), &rule_ids) else {
            bump(&mut stats.suppressed, "below_threshold");
            return None;
        };
        let mut t = ticket::build(&ctx.cfg.rules, msisdn, signals);
        t.tier = self.tiers.name(tier).to_string();
        t.priority = route.priority as i32;
        t.queue = route.queue.to_string();
        let contact = &ctx.cfg.contact;
        let mut also: Vec<CareTicket> = Vec::new();
        if in_control_group(
            msisdn,
            contact.control_group_fraction,
            &contact.control_group_salt,
        ) {
            t.control_group = true;
            t.queue.clear();
            t.no_contact_reason = "control_group".into();
        } else if dnd {
            t.queue = self.router.no_contact_queue().to_string();
            t.no_contact_reason = "do_not_disturb".into();
            also = self.withdraw(ctx, slot, &t.ticket_id);
        } else {
            also = self.admit_to_cap(ctx, slot, &mut t);
        }
        if update {
            stats.ticket_updates += 1;
        } else {
            stats.count_new(&t, &rule_ids);
        }
        let mask = rule_ids.iter().fold(0u32, |m, r| m | (1 << *r as u32));
        self.ticket_rules
            .insert(t.ticket_id.clone(), (slot, mask, t.created_time_ms));
        let raised = (!update).then_some(Raised {
            mask,
            created_ms: t.created_time_ms,
            control: t.control_group,
        });
        if update {
            self.open.republish(slot, &mut t);
        } else {
            self.open.follow(slot, &t);
        }
        out.push(t);
        stats.ticket_updates += also.len() as u64;
        self.publish_again(slot, also, out);
        raised
    }

    /// Publishes tickets again (a contact decision changed): a withdrawn one stays so.
    fn publish_again(&mut self, slot: u32, tickets: Vec<CareTicket>, out: &mut Vec<CareTicket>) {
        for mut t in tickets {
            self.open.republish(slot, &mut t);
            out.push(t);
        }
    }

    /// A payment folded at a day close (see [`super::withdraw`]).
    pub fn note_payment(&mut self, slot: u32, at_ms: i64, amount_fen: u32) {
        self.open.paid(slot, at_ms, amount_fen);
    }

    /// At the close of `day`: publishes again, withdrawn, every followed ticket whose
    /// causes have all gone (or whose subscriber churned), in slot order.
    pub fn withdraw_resolved(
        &mut self,
        ctx: &Ctx<'_>,
        day: Day,
        subs: &SubscriberTable,
        stats: &mut EngineStats,
        out: &mut Vec<CareTicket>,
    ) {
        let j = Judged {
            rules: &ctx.cfg.rules,
            cal: ctx.cal,
            day,
        };
        for slot in self.open.slots() {
            if !subs.is_live(slot) {
                continue;
            }
            for (t, rule, reason) in self.open.judge(slot, subs.get(slot), &j) {
                stats.count_withdrawn(rule, reason);
                out.push(t);
            }
        }
    }

    /// The contact cap: at most `max_contacts` routed tickets per subscriber and period. A
    /// ticket over the cap goes to the no-contact queue; tickets whose decision changes
    /// are returned, to re-emit.
    fn admit_to_cap(&mut self, ctx: &Ctx<'_>, slot: u32, t: &mut CareTicket) -> Vec<CareTicket> {
        let contact = &ctx.cfg.contact;
        let period = contact.period_days as i32;
        let max = contact.max_contacts as usize;
        let window = i64::from(ctx.cal.day_of(t.created_time_ms).div_euclid(period));
        let mut decisions = Vec::new();
        // Re-emitted with earlier evidence in another window: leave the old one first.
        if let Some(prev) = self.routed.get(&t.ticket_id) {
            let prev_window = i64::from(ctx.cal.day_of(prev.created_time_ms).div_euclid(period));
            if prev_window != window {
                if let Some(cw) = self.contact_windows.get_mut(&(slot, prev_window)) {
                    decisions.extend(cw.remove(&t.ticket_id, max));
                }
            }
        }
        let intended = t.clone();
        let cw = self
            .contact_windows
            .entry((slot, window))
            .or_insert_with(|| ContactWindow::new(window));
        decisions.extend(cw.admit(t.created_time_ms, &t.ticket_id, max));
        if decisions.iter().any(|(id, ok)| *id == t.ticket_id && !ok) {
            t.queue = self.router.no_contact_queue().to_string();
            t.no_contact_reason = "contact_cap".into();
        }
        let also = self.cap_updates(decisions, &t.ticket_id);
        self.routed.insert(intended.ticket_id.clone(), intended);
        also
    }

    /// Re-emissions of routed tickets whose contact decision changed (none for `except`).
    fn cap_updates(&self, decisions: Vec<(String, bool)>, except: &str) -> Vec<CareTicket> {
        let mut also = Vec::new();
        for (id, allowed) in decisions {
            if id == except {
                continue;
            }
            if let Some(other) = self.routed.get(&id) {
                let mut other = other.clone();
                if !allowed {
                    other.queue = self.router.no_contact_queue().to_string();
                    other.no_contact_reason = "contact_cap".into();
                }
                also.push(other);
            }
        }
        also
    }

    /// Takes a ticket out of the contact cap (it went do-not-disturb): the tickets whose
    /// contact decision that changes, to re-emit.
    fn withdraw(&mut self, ctx: &Ctx<'_>, slot: u32, id: &str) -> Vec<CareTicket> {
        let Some(prev) = self.routed.remove(id) else {
            return Vec::new();
        };
        let period = ctx.cfg.contact.period_days as i32;
        let window = i64::from(ctx.cal.day_of(prev.created_time_ms).div_euclid(period));
        let max = ctx.cfg.contact.max_contacts as usize;
        let decisions = match self.contact_windows.get_mut(&(slot, window)) {
            Some(cw) => cw.remove(id, max),
            None => Vec::new(),
        };
        self.cap_updates(decisions, id)
    }

    /// A do-not-disturb request at `at_ms` that arrived late: tickets already routed for an
    /// agent's call and created from then until one lateness later (the ones it would have
    /// kept from the queues had it come first) go to the no-contact queue, re-emitted.
    pub fn honour_opt_out(
        &mut self,
        ctx: &Ctx<'_>,
        slot: u32,
        at_ms: i64,
        stats: &mut EngineStats,
        out: &mut Vec<CareTicket>,
    ) {
        let until = at_ms.saturating_add(ctx.lateness_ms);
        let period = ctx.cfg.contact.period_days as i32;
        let (first, last) = (
            ctx.cal.day_of(at_ms).div_euclid(period),
            ctx.cal.day_of(until).div_euclid(period),
        );
        let mut ids = Vec::new();
        for w in first..=last {
            if let Some(cw) = self.contact_windows.get(&(slot, i64::from(w))) {
                ids.extend(cw.created_between(at_ms, until));
            }
        }
        for id in ids {
            let Some(mut t) = self.routed.get(&id).cloned() else {
                continue;
            };
            t.queue = self.router.no_contact_queue().to_string();
            t.no_contact_reason = "do_not_disturb".into();
            let also = self.withdraw(ctx, slot, &id);
            stats.ticket_updates += 1 + also.len() as u64;
            self.open.republish(slot, &mut t);
            out.push(t);
            self.publish_again(slot, also, out);
        }
    }

    /// Feedback from the call center. A RETAINED subscriber is not ticketed again for the
    /// ticket's rules within each rule's cooldown.
    pub fn apply_outcome(
        &mut self,
        rules_cfg: &RulesConfig,
        o: &TicketOutcomeEvent<'_>,
        stats: &mut EngineStats,
    ) {
        *stats.outcomes.entry(o.outcome.as_str()).or_insert(0) += 1;
        let Some(&(slot, mask, _)) = self.ticket_rules.get(o.ticket_id) else {
            stats.outcomes_unknown_ticket += 1;
            return;
        };
        stats.quality.outcome(mask, o.outcome);
        if o.outcome != OutcomeKind::Retained {
            return;
        }
        for r in RuleId::ALL {
            if mask & (1 << r as u32) != 0 {
                let until = o.time_ms + i64::from(rules_cfg.cooldown_days(r)) * 86_400_000;
                let e = self.retained.entry((slot, r)).or_insert(until);
                *e = (*e).max(until);
            }
        }
    }

    /// Drops memory no late record can need any more, once `closed` is closed.
    pub fn forget_before(&mut self, ctx: &Ctx<'_>, closed: Day) {
        let period = i64::from(ctx.cfg.contact.period_days);
        let open_from = i64::from(closed) - OPEN_DAYS as i64;
        self.contact_windows
            .retain(|&(_, w), _| (w + 1) * period > open_from);
        let routed_from = ctx
            .cal
            .day_start_ms(closed - ctx.cfg.contact.period_days as i32 - OPEN_DAYS as i32);
        self.routed.retain(|_, t| t.created_time_ms >= routed_from);
        let now = ctx.cal.day_start_ms(closed + 1);
        self.ticket_rules
            .retain(|_, &mut (_, _, created)| created >= now - TICKET_MEMORY_MS);
        // Followed while the contact cap may still re-emit them, so they stay withdrawn.
        let follow_from = ctx.cal.day_start_ms(closed + 1 - FOLLOW_DAYS);
        self.open.forget_before(follow_from.min(routed_from));
        self.retained
            .retain(|_, &mut until| until > now - ctx.lateness_ms);
    }

    /// Appends the policy's memory (contact-cap windows, routed tickets, ticket rules,
    /// retained suppressions, followed tickets) for a snapshot, subscribers as `number(slot)`, each part in
    /// ascending key order so the same memory always gives the same bytes.
    pub(crate) fn encode(&self, out: &mut Vec<u8>, number: impl Fn(u32) -> u64) {
        let mut windows: Vec<_> = self
            .contact_windows
            .iter()
            .map(|(&(s, w), cw)| ((number(s), w), cw))
            .collect();
        windows.sort_unstable_by_key(|(k, _)| *k);
        out.put_len(windows.len());
        for ((m, w), cw) in windows {
            out.put_u64(m);
            out.put_i64(w);
            cw.encode(out);
        }
        let mut routed: Vec<_> = self.routed.iter().collect();
        routed.sort_unstable_by_key(|(id, _)| *id);
        out.put_len(routed.len());
        for (id, t) in routed {
            out.put_str(id);
            out.put_bytes(&prost::Message::encode_to_vec(t));
        }
        let mut rules: Vec<_> = self.ticket_rules.iter().collect();
        rules.sort_unstable_by_key(|(id, _)| *id);
        out.put_len(rules.len());
        for (id, &(s, mask, created)) in rules {
            out.put_str(id);
            out.put_u64(number(s));
            out.put_u32(mask);
            out.put_i64(created);
        }
        let mut retained: Vec<_> = self
            .retained
            .iter()
            .map(|(&(s, r), &until)| ((number(s), r), until))
            .collect();
        retained.sort_unstable_by_key(|(k, _)| *k);
        out.put_len(retained.len());
        for ((m, r), until) in retained {
            out.put_u64(m);
            out.put_u8(r as u8);
            out.put_i64(until);
        }
        self.open.encode(out, number);
    }

    /// Replaces the memory with an [`Policy::encode`]d one, subscribers resolved to slots
    /// by `slot_of`; without `followed` tickets in a blob from before they were kept.
    pub(crate) fn decode(
        &mut self,
        r: &mut Reader<'_>,
        rules: &RuleTable,
        followed: bool,
        mut slot_of: impl FnMut(u64) -> u32,
    ) -> Result<(), SnapshotError> {
        self.contact_windows.clear();
        for _ in 0..r.count(28)? {
            let key = (slot_of(r.u64()?), r.i64()?);
            self.contact_windows.insert(key, ContactWindow::decode(r)?);
        }
        self.routed.clear();
        for _ in 0..r.count(8)? {
            let id = r.str()?.to_string();
            let t = <CareTicket as prost::Message>::decode(r.bytes()?)
                .map_err(|e| r.malformed(format!("routed ticket: {e}")))?;
            self.routed.insert(id, t);
        }
        self.ticket_rules.clear();
        for _ in 0..r.count(24)? {
            let id = r.str()?.to_string();
            let slot = slot_of(r.u64()?);
            let mask = rules.mask(r.u32()?);
            self.ticket_rules.insert(id, (slot, mask, r.i64()?));
        }
        self.retained.clear();
        for _ in 0..r.count(17)? {
            let slot = slot_of(r.u64()?);
            let rule = rules.rule(r)?;
            let until = r.i64()?;
            if let Some(rule) = rule {
                self.retained.insert((slot, rule), until);
            }
        }
        self.open = OpenTickets::default();
        if !followed {
            return Ok(());
        }
        self.open.decode(r, slot_of)
    }

    /// Approximate bytes of the followed tickets.
    pub fn bytes(&self) -> usize {
        self.open.bytes()
    }

    /// Drops the memory of evicted slots (a freed slot is soon another subscriber's). Routed
    /// tickets are keyed by id and age out with their windows.
    pub(crate) fn forget(&mut self, gone: impl Fn(u32) -> bool) {
        self.contact_windows.retain(|&(s, _), _| !gone(s));
        self.ticket_rules.retain(|_, &mut (s, _, _)| !gone(s));
        self.retained.retain(|&(s, _), _| !gone(s));
        self.open.forget(&gone);
    }

    /// Moves every memory of a subscriber to its new slot.
    pub(crate) fn remap(&mut self, new_of: &[u32]) {
        let to = |s: u32| new_of[s as usize];
        self.contact_windows = std::mem::take(&mut self.contact_windows)
            .into_iter()
            .map(|((s, w), cw)| ((to(s), w), cw))
            .collect();
        for v in self.ticket_rules.values_mut() {
            v.0 = to(v.0);
        }
        self.retained = std::mem::take(&mut self.retained)
            .into_iter()
            .map(|((s, r), until)| ((to(s), r), until))
            .collect();
        self.open.remap(new_of);
    }
}
