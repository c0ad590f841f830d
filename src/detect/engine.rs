//! The engine: events in, tickets out, for the subscribers of one partition.
//!
//! **Event time.** The watermark is the newest event time seen minus the allowed lateness.
//! A record older than the watermark is rejected and counted ([`Applied::Late`]), never
//! folded in silently. A calendar day *closes* once the watermark passes its end: its
//! counters are compressed into history and the day-close rules run over every subscriber.
//! Because a closed day can no longer change, and day-close rules read closed days only,
//! their tickets do not depend on arrival order.
//!
//! **Record rules** (a competitor care call, a suspension, an overdue bill...) fire on the
//! record. Each fires once per *episode* (an aligned cooldown window, a billing period, a
//! streak's first day), so the ticket id is the same in any order; if a qualifying record
//! that is *earlier* in event time arrives late, the ticket is emitted again with the same
//! id and the earlier evidence, so the last version of every ticket is order-independent.
//!
//! **End of input.** A bounded input (replay, the in-process demo) ends with
//! [`Engine::finish`], Flink's final watermark: every day the input covers closes, the last
//! event's own day included, so a bill or contract update on the last day is judged. That
//! day may have only partly happened (usage after the last record is missing from it); the
//! alternative, never judging it, loses its tickets outright. A month closes only when its
//! last day is covered, because only then does the day close cross into the next month.
//!
//! **Idle sources.** A live partition whose inputs go quiet would never close its days. The
//! adapter, which holds the wall clock, moves event time on with [`Engine::advance_to`]
//! (Flink's source idleness); the engine itself never reads a clock.
//!
//! **Account facts** (bills, payments, suspensions, contracts, plan, CRM profile) wait in
//! [`super::facts`] until no earlier record can arrive, and are folded into the state in
//! event-time order: day-close rules read the facts as of the day they judge, and a ticket
//! is tiered on the plan and profile as they stood one lateness before it. A
//! do-not-disturb request counts at once: one arriving late moves the tickets it covers
//! (created from it to one lateness later) to the no-contact queue.
//!
//! **Duplicates.** Ids are remembered per event day until the day closes; anything older is
//! rejected as late anyway, so de-duplication is exact over the whole lateness horizon.
//!
//! **Partial calls** to a competitor's care line are joined by call reference and judged
//! when the watermark passes the end of the last fragment: only then is the call whole.

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap, FxHashSet};

use super::config::{ConfigError, DetectConfig};
use crate::proto::CareTicket;

use super::calendar::{month_of_day, Calendar, Day};
use super::event::Period;
use super::event::{
    AccountEvent, AccountKind, Cdr, CdrKind, Event, Msisdn, SuspensionReason, TicketOutcomeEvent,
};
use super::facts::{Fact, PendingFact, PendingFacts};
use super::numbering::{NumberPlan, OperatorId, Party};
use super::policy::{Ctx, Policy, Subject};
use super::rules::baseline::Verdict;
use super::rules::competitor_care::CareCall;
use super::rules::complaint_burst::Contact;
use super::rules::{self, CloseInput, RuleId, RulesConfig, SignalDraft, When};
use super::state::{flag, to_minute, SubscriberState, SubscriberTable, FWD_BITS, OPEN_DAYS};
use super::stats::bump;
pub use super::stats::EngineStats;
use super::tier::reference_month;
use super::watermark::Watermark;

/// A ported number: national digits and the operator id it now belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortedNumber {
    pub number: String,
    pub operator: String,
}

/// What the engine did with one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Folded into state (it may or may not have raised tickets).
    Accepted,
    /// Same id seen before within the de-duplication horizon; nothing changed.
    Duplicate,
    /// Older than the watermark (newest event time minus allowed lateness): rejected, counted.
    Late,
}

/// A subscriber as an agent screen or CRM look-up sees it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SubscriberSummary {
    pub subscriber: String,
    pub tier: String,
    pub first_seen_day: Option<String>,
    pub last_7_days_voice_minutes: u64,
    pub last_7_days_data_mib: u64,
    pub last_7_days_spend_yuan: f64,
    pub do_not_disturb: bool,
    pub key_person: bool,
    pub suspended: bool,
    pub churned: bool,
    /// Rules whose condition holds now or that raised a ticket in the last 30 days.
    pub active_signals: Vec<String>,
}

/// One raised episode of a rule for a subscriber.
#[derive(Debug, Clone, Copy)]
struct Mark {
    episode: i64,
    raised_ms: i64,
    /// Tie-break between qualifying records with the same event time.
    tie: u64,
}

/// Episodes remembered per subscriber and rule (older ones fall off; their windows are long
/// past the lateness horizon).
const MARKS_KEPT: usize = 4;

/// A call to a competitor's care line cut into partial records.
#[derive(Debug, Clone, Copy)]
struct PartialCall {
    start_ms: i64,
    end_ms: i64,
    total_s: u32,
    outgoing: bool,
    operator: OperatorId,
}

/// The detection engine for one partition's subscribers.
pub struct Engine {
    cfg: DetectConfig,
    plan: NumberPlan,
    cal: Calendar,
    subs: SubscriberTable,
    /// Event time: what is late, which days are closed (see [`super::watermark`]).
    clock: Watermark,
    seen_ids: FxHashMap<Day, FxHashSet<u64>>,
    marks: FxHashMap<(u32, RuleId), Vec<Mark>>,
    partials: FxHashMap<(u32, u64), PartialCall>,
    /// The earliest end among pending partial calls: nothing to judge before it.
    partials_min_end: i64,
    /// Emptied de-duplication sets of closed days, reused so a day's set is not regrown.
    spare_ids: Vec<FxHashSet<u64>>,
    contacts: FxHashMap<u32, Vec<Contact>>,
    /// Account facts not yet folded into the states (see [`super::facts`]).
    facts: PendingFacts,
    /// What becomes of raised signals (see [`super::policy`]).
    policy: Policy,
    stats: EngineStats,
}

fn tie_of(d: &SignalDraft) -> u64 {
    super::event::fnv1a(d.summary.as_bytes())
}

impl Engine {
    /// Builds an engine from a validated config and the ported-numbers list.
    pub fn new(
        cfg: &impl AsRef<DetectConfig>,
        ported: &[PortedNumber],
    ) -> Result<Engine, ConfigError> {
        let cfg = cfg.as_ref();
        cfg.validate()?;
        let pairs: Vec<(String, String)> = ported
            .iter()
            .map(|p| (p.number.clone(), p.operator.clone()))
            .collect();
        let plan = NumberPlan::new(&cfg.numbering, &pairs)?;
        let cal =
            Calendar::new(&cfg.engine.time_zone, &cfg.calendar.holidays).ok_or_else(|| {
                ConfigError::Invalid {
                    key: "engine.time_zone".into(),
                    reason: "not a valid zone or holiday list".into(),
                }
            })?;
        Ok(Engine {
            plan,
            cal,
            subs: SubscriberTable::with_capacity(cfg.engine.expected_subscribers),
            clock: Watermark::new(i64::from(cfg.engine.allowed_lateness_hours) * 3_600_000),
            seen_ids: FxHashMap::default(),
            marks: FxHashMap::default(),
            partials: FxHashMap::default(),
            partials_min_end: i64::MAX,
            spare_ids: Vec::new(),
            contacts: FxHashMap::default(),
            facts: PendingFacts::default(),
            policy: Policy::new(cfg),
            stats: EngineStats::default(),
            cfg: cfg.clone(),
        })
    }

    pub fn config(&self) -> &DetectConfig {
        &self.cfg
    }

    /// Swaps in new rules, tiers, routing, contact policy and holidays, keeping every
    /// subscriber's state (retention teams tune thresholds weekly, without a restart). The
    /// engine, numbering and time-zone settings need a restart and are kept as they are.
    pub fn reconfigure(&mut self, cfg: &impl AsRef<DetectConfig>) -> Result<(), ConfigError> {
        let cfg = cfg.as_ref();
        let mut next = self.cfg.clone();
        next.rules = cfg.rules.clone();
        next.tiers = cfg.tiers.clone();
        next.routing = cfg.routing.clone();
        next.contact = cfg.contact.clone();
        next.calendar = cfg.calendar.clone();
        next.validate()?;
        let cal =
            Calendar::new(&next.engine.time_zone, &next.calendar.holidays).ok_or_else(|| {
                ConfigError::Invalid {
                    key: "calendar.holidays".into(),
                    reason: "not a valid holiday list".into(),
                }
            })?;
        self.policy.reconfigure(&next);
        self.cal = cal;
        self.cfg = next;
        Ok(())
    }

    /// What an agent screen shows about a subscriber: tier, recent usage, month spend and
    /// the conditions currently active. `None` if this engine does not hold the subscriber.
    pub fn describe(&self, m: Msisdn) -> Option<SubscriberSummary> {
        let slot = self.subs.find(m.0)?;
        let state = self.subs.get(slot);
        let view = self.facts.view(slot, state, i64::MAX);
        let st = view.as_ref().unwrap_or(state);
        let closed = self.clock.closed_through()?;
        let tiers = self.policy.tiers();
        let tier = tiers.tier_of(st, reference_month(closed + 1));
        let week = |f: &dyn Fn(&super::state::ClosedDay) -> u64| -> u64 {
            (closed - 6..=closed).map(|d| f(st.closed(d))).sum()
        };
        let conditions = [
            (flag::SILENT, "silent_days"),
            (flag::SPEND_DROP, "spend_drop"),
            (flag::VOICE_DROP, "voice_drop"),
            (flag::DATA_DROP, "data_drop"),
            (flag::COMPLAINT_BURST, "complaint_burst"),
            (flag::ZERO_MONTH, "zero_spend_month"),
            (flag::IP_CALLS_MONTH, "offnet_ip_calls"),
        ];
        let mut active: Vec<String> = conditions
            .iter()
            .filter(|(f, _)| st.has(*f))
            .map(|(_, r)| r.to_string())
            .collect();
        for ((s, rule), marks) in self.marks.iter() {
            if *s == slot
                && marks
                    .iter()
                    .any(|m| m.raised_ms >= self.cal.day_start_ms(closed - 30))
                && !active.iter().any(|a| a == rule.as_str())
            {
                active.push(rule.as_str().to_string());
            }
        }
        active.sort();
        Some(SubscriberSummary {
            subscriber: m.to_string(),
            tier: tiers.name(tier).to_string(),
            first_seen_day: (st.first_day != u16::MAX)
                .then(|| super::calendar::date_of_day(i32::from(st.first_day)).to_string()),
            last_7_days_voice_minutes: week(&|d| d.voice_s()) / 60,
            last_7_days_data_mib: week(&|d| d.data_bytes()) >> 20,
            last_7_days_spend_yuan: week(&|d| d.charge_fen()) as f64 / 100.0,
            do_not_disturb: st.has(flag::DO_NOT_DISTURB),
            key_person: st.has(flag::KEY_PERSON),
            suspended: st.has(flag::SUSPENDED),
            churned: st.churned_day != 0,
            active_signals: active,
        })
    }

    pub fn calendar(&self) -> &Calendar {
        &self.cal
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// The state of one subscriber, if known.
    pub fn subscriber(&self, m: Msisdn) -> Option<&SubscriberState> {
        self.subs.find(m.0).map(|slot| self.subs.get(slot))
    }

    /// Approximate bytes of subscriber state held (account facts still pending included).
    pub fn state_bytes(&self) -> usize {
        self.subs.bytes() + self.facts.bytes()
    }

    /// The current watermark (UTC ms), `None` before the first event.
    pub fn watermark_ms(&self) -> Option<i64> {
        self.clock.watermark_ms()
    }

    /// Applies one event; tickets it raises (or corrects) are appended to `out`.
    pub fn apply(&mut self, ev: &Event<'_>, out: &mut Vec<CareTicket>) -> Applied {
        let t = ev.time_ms();
        let day = self.cal.day_of(t);
        if self.clock.admit_is_late(t, day, &self.cal) {
            self.stats.late += 1;
            return Applied::Late;
        }
        let key = match ev {
            Event::Cdr(c) => c.id.0,
            Event::Account(a) => a.id.0.rotate_left(17) ^ 0x5bd1_e995_a5a5_0f0f,
        };
        let spare = &mut self.spare_ids;
        let ids = self
            .seen_ids
            .entry(day)
            .or_insert_with(|| spare.pop().unwrap_or_default());
        if !ids.insert(key) {
            self.stats.duplicates += 1;
            return Applied::Duplicate;
        }
        self.stats.accepted += 1;
        if let Some(days) = self.clock.advance(t, &self.cal) {
            self.close_days(days, out);
        }
        match ev {
            Event::Cdr(c) => self.apply_cdr(c, day, out),
            Event::Account(a) => self.apply_account(a, day, out),
        }
        self.finalize_partials(self.watermark(), out);
        self.stats.subscribers = self.subs.len();
        Applied::Accepted
    }

    /// Moves event time on to `t` without a record, as a record at `t` would: days the
    /// watermark passes close and pending partial calls before it are judged. For a source
    /// that went idle: the caller (the adapter, which holds the wall clock) decides `t`.
    /// Nothing happens before the first event or if `t` is not newer than the newest seen.
    pub fn advance_to(&mut self, t: i64, out: &mut Vec<CareTicket>) {
        if self.clock.newest_ms().is_none_or(|newest| t <= newest) {
            return;
        }
        if let Some(days) = self.clock.advance(t, &self.cal) {
            self.close_days(days, out);
        }
        self.finalize_partials(self.watermark(), out);
        self.stats.subscribers = self.subs.len();
    }

    /// The newest event time seen (or moved on to by [`Engine::advance_to`]), `None` before
    /// the first event.
    pub fn newest_event_ms(&self) -> Option<i64> {
        self.clock.newest_ms()
    }

    /// End of input (Flink's final watermark): nothing more will arrive, so every day the
    /// input touched closes, the last event's own day included, and any partial call still
    /// open is judged. A month closes only when that day is its last.
    pub fn finish(&mut self, out: &mut Vec<CareTicket>) {
        if self.clock.newest_ms().is_none() {
            return;
        }
        if let Some(days) = self.clock.finish(&self.cal) {
            self.close_days(days, out);
        }
        self.finalize_partials(i64::MAX, out);
        self.stats.subscribers = self.subs.len();
    }

    /// The watermark; only called once an event has started the clock.
    fn watermark(&self) -> i64 {
        self.clock.watermark_ms().unwrap_or(i64::MIN)
    }

    /// Closes `days` (in order), then drops de-duplication ids and policy memory no late
    /// record can need any more.
    fn close_days(&mut self, days: std::ops::RangeInclusive<Day>, out: &mut Vec<CareTicket>) {
        let closed = *days.end();
        for day in days {
            self.close_day(day, out);
            self.stats.days_closed += 1;
        }
        let old: Vec<Day> = self
            .seen_ids
            .keys()
            .copied()
            .filter(|&d| d <= closed)
            .collect();
        for d in old {
            if let Some(mut set) = self.seen_ids.remove(&d) {
                set.clear();
                if self.spare_ids.len() < OPEN_DAYS + 1 {
                    self.spare_ids.push(set);
                }
            }
        }
        self.forget_before(closed);
    }

    /// Drops policy memory no late record can need any more.
    fn forget_before(&mut self, closed: Day) {
        let ctx = Ctx {
            cfg: &self.cfg,
            cal: &self.cal,
            lateness_ms: self.clock.lateness_ms(),
        };
        self.policy.forget_before(&ctx, closed);
    }

    fn apply_cdr(&mut self, c: &Cdr<'_>, day: Day, out: &mut Vec<CareTicket>) {
        let slot = self.subs.slot(c.subscriber.0);
        let st = self.subs.get_mut(slot);
        st.note_seen(day);
        st.add_charge(day, c.charge);
        match c.kind {
            CdrKind::VoiceOut | CdrKind::VoiceIn => {
                let outgoing = c.kind == CdrKind::VoiceOut;
                st.add_voice(day, c.duration_s, outgoing);
                let cls = self.plan.classify_call(c.other_party);
                if outgoing
                    && cls
                        .via_ip_prefix
                        .is_some_and(|op| self.plan.is_competitor(op))
                {
                    st.add_ip_call(day, c.duration_s);
                }
                if let Party::CareLine(op) = cls.party {
                    if self.plan.is_competitor(op) {
                        self.care_call(slot, c, op, day, out);
                    }
                }
            }
            CdrKind::SmsOut | CdrKind::SmsIn => st.add_sms(day, c.kind == CdrKind::SmsOut),
            CdrKind::Data => st.add_data(day, c.data_bytes),
            CdrKind::Forward => {
                let Party::Mobile(op) = self.plan.classify(c.other_party).party else {
                    return;
                };
                if !self.plan.is_competitor(op) {
                    return;
                }
                st.mark_forward_offnet(day);
                let reach = FWD_BITS - 2 * OPEN_DAYS as i32;
                if let Some((first, last)) = st.forward_run(day, reach) {
                    let cfg = &self.cfg.rules.offnet_forwarding_streak;
                    if let Some(d) = rules::forwarding::judge_streak(cfg, first, last, &self.cal) {
                        self.raise_record(slot, d, out);
                    }
                }
            }
            CdrKind::ForwardRegistration => {
                let Party::Mobile(op) = self.plan.classify(c.other_party).party else {
                    return;
                };
                if self.plan.is_competitor(op) {
                    let name = self.plan.operator_name(op).to_string();
                    let cfg = &self.cfg.rules.offnet_forwarding_registration;
                    if let Some(d) =
                        rules::forwarding::judge_registration(cfg, c.time_ms, day, &name)
                    {
                        self.raise_record(slot, d, out);
                    }
                }
            }
        }
    }

    fn care_call(
        &mut self,
        slot: u32,
        c: &Cdr<'_>,
        op: OperatorId,
        day: Day,
        out: &mut Vec<CareTicket>,
    ) {
        let outgoing = c.kind == CdrKind::VoiceOut;
        if c.partial && c.call_ref != 0 {
            let end = c.time_ms + i64::from(c.duration_s) * 1000;
            let p = self
                .partials
                .entry((slot, c.call_ref))
                .or_insert(PartialCall {
                    start_ms: c.time_ms,
                    end_ms: end,
                    total_s: 0,
                    outgoing,
                    operator: op,
                });
            p.start_ms = p.start_ms.min(c.time_ms);
            p.end_ms = p.end_ms.max(end);
            p.total_s = p.total_s.saturating_add(c.duration_s);
            self.partials_min_end = self.partials_min_end.min(p.end_ms);
            p.outgoing |= outgoing;
            return;
        }
        let call = CareCall {
            start_ms: c.time_ms,
            duration_s: c.duration_s,
            outgoing,
        };
        let name = self.plan.operator_name(op).to_string();
        if let Some(d) =
            rules::competitor_care::judge(&self.cfg.rules.competitor_care_call, call, day, &name)
        {
            self.raise_record(slot, d, out);
        }
    }

    /// Judges joined partial calls whose last fragment ended before `watermark`.
    fn finalize_partials(&mut self, watermark: i64, out: &mut Vec<CareTicket>) {
        if self.partials.is_empty() || self.partials_min_end >= watermark {
            return;
        }
        let mut done: Vec<((u32, u64), PartialCall)> = self
            .partials
            .iter()
            .filter(|(_, p)| p.end_ms < watermark)
            .map(|(k, p)| (*k, *p))
            .collect();
        done.sort_by_key(|(k, p)| (p.start_ms, *k));
        for (key, p) in done {
            self.partials.remove(&key);
            let call = CareCall {
                start_ms: p.start_ms,
                duration_s: p.total_s,
                outgoing: p.outgoing,
            };
            let day = self.cal.day_of(p.start_ms);
            let name = self.plan.operator_name(p.operator).to_string();
            if let Some(d) = rules::competitor_care::judge(
                &self.cfg.rules.competitor_care_call,
                call,
                day,
                &name,
            ) {
                self.raise_record(key.0, d, out);
            }
        }
        self.partials_min_end = self
            .partials
            .values()
            .map(|p| p.end_ms)
            .min()
            .unwrap_or(i64::MAX);
    }

    fn apply_account(&mut self, a: &AccountEvent, day: Day, out: &mut Vec<CareTicket>) {
        let slot = self.subs.slot(a.subscriber.0);
        self.subs.get_mut(slot).note_seen(day);
        if let Some(fact) = self.fact_of(&a.kind) {
            self.facts.push(
                slot,
                PendingFact {
                    time_ms: a.time_ms,
                    day,
                    key: a.id.0,
                    fact,
                },
            );
            if matches!(
                fact,
                Fact::Profile {
                    do_not_disturb: true,
                    ..
                }
            ) {
                let ctx = Ctx {
                    cfg: &self.cfg,
                    cal: &self.cal,
                    lateness_ms: self.clock.lateness_ms(),
                };
                self.policy
                    .honour_opt_out(&ctx, slot, a.time_ms, &mut self.stats, out);
            }
        }
        let mut raised: Option<SignalDraft> = None;
        match a.kind {
            AccountKind::BillOverdue {
                period,
                amount,
                days_overdue,
            } => {
                raised = rules::overdue_bill::judge(
                    &self.cfg.rules.overdue_bill,
                    period,
                    amount,
                    days_overdue,
                    a.time_ms,
                );
            }
            AccountKind::TopUp { balance_after, .. } => {
                raised = rules::payment_reminder::judge_top_up(
                    &self.cfg.rules.payment_reminder,
                    balance_after,
                    a.time_ms,
                    day,
                );
            }
            AccountKind::Suspended {
                reason: SuspensionReason::NumberRetention,
            } => {
                raised = rules::number_retention::judge(
                    &self.cfg.rules.number_retention_suspension,
                    a.time_ms,
                    day,
                );
            }
            AccountKind::Complaint | AccountKind::FaultReport => {
                let fault = matches!(a.kind, AccountKind::FaultReport);
                let horizon = self.cfg.rules.complaint_burst.window_days as i32 + OPEN_DAYS as i32;
                self.subs.get_mut(slot).set(flag::HAS_CONTACTS, true);
                let list = self.contacts.entry(slot).or_default();
                list.push(Contact { day, fault });
                list.retain(|c| c.day > day - horizon - 366);
            }
            AccountKind::Churned { .. } => {
                let st = self.subs.get_mut(slot);
                let d = day.clamp(1, i32::from(u16::MAX)) as u16;
                st.churned_day = if st.churned_day == 0 {
                    d
                } else {
                    st.churned_day.min(d)
                };
            }
            _ => {}
        }
        if let Some(d) = raised {
            self.raise_record(slot, d, out);
        }
    }

    /// What an account event says about the subscriber's standing, with its calendar days
    /// resolved; `None` for events that are only signals (complaints, top-ups...).
    fn fact_of(&self, kind: &AccountKind) -> Option<Fact> {
        let day16 = |ms: i64| self.cal.day_of(ms).clamp(0, i32::from(u16::MAX)) as u16;
        Some(match *kind {
            AccountKind::BillIssued {
                amount,
                due_time_ms,
                ..
            } => Fact::Bill {
                amount_fen: amount.clamp(0, i64::from(u32::MAX)) as u32,
                due_day: day16(due_time_ms),
            },
            AccountKind::Payment { .. } => Fact::Payment,
            AccountKind::Suspended { .. } => Fact::Suspended,
            AccountKind::Resumed => Fact::Resumed,
            AccountKind::ContractUpdated { end_time_ms } => Fact::Contract {
                end_day: day16(end_time_ms),
            },
            AccountKind::PlanChanged { monthly_fee } => Fact::Plan {
                fee_yuan: (monthly_fee / 100).clamp(0, i64::from(u16::MAX)) as u16,
            },
            AccountKind::ProfileUpdated {
                do_not_disturb,
                key_person,
                activated_time_ms,
            } => {
                let (activated_day, seen_from) = if activated_time_ms > 0 {
                    let act = self
                        .cal
                        .day_of(activated_time_ms)
                        .clamp(1, i32::from(u16::MAX) - 1);
                    // Known since activation, but never before the engine's first day: the
                    // rules must not judge days and months nobody observed.
                    let from = act
                        .max(self.clock.observed_from())
                        .clamp(1, i32::from(u16::MAX) - 1);
                    (act as u16, from as u16)
                } else {
                    (0, 0)
                };
                Fact::Profile {
                    do_not_disturb,
                    key_person,
                    activated_day,
                    seen_from,
                }
            }
            _ => return None,
        })
    }

    /// A record rule fired: one ticket per episode; an earlier occurrence arriving late
    /// re-emits the ticket (same id) with the earlier evidence.
    fn raise_record(&mut self, slot: u32, d: SignalDraft, out: &mut Vec<CareTicket>) {
        let st = self.subs.get(slot);
        if st.churned_by(self.cal.day_of(d.raised_ms)) {
            bump(&mut self.stats.suppressed, "churned");
            return;
        }
        let tie = tie_of(&d);
        let marks = self.marks.entry((slot, d.rule)).or_default();
        if let Some(m) = marks.iter_mut().find(|m| m.episode == d.episode) {
            if (d.raised_ms, tie) < (m.raised_ms, m.tie) {
                m.raised_ms = d.raised_ms;
                m.tie = tie;
                self.dispatch(slot, vec![d], true, out);
            } else {
                bump(&mut self.stats.suppressed, "cooldown");
            }
            return;
        }
        push_mark(
            marks,
            Mark {
                episode: d.episode,
                raised_ms: d.raised_ms,
                tie,
            },
        );
        self.dispatch(slot, vec![d], false, out);
    }

    /// Hands signals raised together to the ticket policy, with the subscriber as the
    /// ticket is tiered on: the plan and profile as they stood one lateness before it (no
    /// late record can change that any more, see `facts`); an opt-out counts at once.
    fn dispatch(
        &mut self,
        slot: u32,
        mut signals: Vec<SignalDraft>,
        update: bool,
        out: &mut Vec<CareTicket>,
    ) {
        self.policy
            .drop_retained(slot, &mut signals, &mut self.stats);
        let Some(created) = signals.iter().map(|d| d.raised_ms).min() else {
            return;
        };
        let settled = created.saturating_sub(self.clock.lateness_ms());
        let state = self.subs.get(slot);
        let view = self.facts.view(slot, state, settled);
        let st = view.as_ref().unwrap_or(state);
        let dnd =
            st.has(flag::DO_NOT_DISTURB) || self.facts.opted_out_between(slot, settled, created);
        let who = Subject {
            slot,
            msisdn: Msisdn(self.subs.number(slot)),
            state: st,
            dnd,
        };
        let ctx = Ctx {
            cfg: &self.cfg,
            cal: &self.cal,
            lateness_ms: self.clock.lateness_ms(),
        };
        self.policy
            .dispatch(&ctx, who, signals, update, &mut self.stats, out);
    }

    /// Feedback from the call center. A RETAINED subscriber is not ticketed again for the
    /// ticket's rules within each rule's cooldown.
    pub fn apply_outcome(&mut self, o: &TicketOutcomeEvent<'_>) {
        self.policy
            .apply_outcome(&self.cfg.rules, o, &mut self.stats);
    }

    /// Closes `day` for every subscriber and runs the day- (and month-) close rules.
    fn close_day(&mut self, day: Day, out: &mut Vec<CareTicket>) {
        let month_end = month_of_day(day + 1) != month_of_day(day);
        let month = month_of_day(day);
        let (day_from_min, day_to_min) = (
            to_minute(self.cal.day_start_ms(day)),
            to_minute(self.cal.day_start_ms(day + 1)),
        );
        // The day's bills, payments, suspensions and contracts are final now; plan and
        // profile facts wait until no ticket can be tiered before them (see `facts`).
        let next_start = self.cal.day_start_ms(day + 1);
        let routing_before = self.cal.day_start_ms(day) - self.clock.lateness_ms();
        self.facts
            .settle(&mut self.subs, next_start, routing_before);
        let mut drafts: Vec<(SignalDraft, Option<u32>)> = Vec::new();
        for slot in 0..self.subs.len() as u32 {
            drafts.clear();
            let cfg = &self.cfg.rules;
            let cal = &self.cal;
            let facts = &self.facts;
            let st = self.subs.get_mut(slot);
            st.close_day(day);
            let billed_today = (day_from_min..day_to_min).contains(&st.bill_issued_min);
            if billed_today {
                // A bill is for the month before the one it is issued in.
                st.record_bill(month.0 - 1, st.bill_amount_fen);
            }
            let churned = st.churned_by(day);
            // The plan and activation as they stood at the end of the day judged (only a
            // bill issued that day can be judged, so only then is a view worth making).
            let view = billed_today
                .then(|| facts.view(slot, st, next_start))
                .flatten();
            let closing = Closing {
                view: view.as_ref(),
                contacts: st
                    .has(flag::HAS_CONTACTS)
                    .then(|| self.contacts.get(&slot))
                    .flatten()
                    .map(Vec::as_slice),
                day,
                month,
                cal,
            };
            let skipped = &mut self.stats.suppressed;
            if !churned {
                let due = |w: When| w == When::Day || (month_end && w == When::MonthEnd);
                run_close_rules(cfg, due, st, &closing, &mut drafts, skipped);
            }
            if month_end {
                st.close_month(month.0);
                if !churned {
                    let due = |w: When| w == When::MonthClosed;
                    run_close_rules(cfg, due, st, &closing, &mut drafts, skipped);
                }
            }
            if !drafts.is_empty() {
                self.raise_close(slot, &mut drafts, out);
            }
        }
    }

    /// Day-close signals of one subscriber: drop those already ticketed (same episode, or
    /// within the rule's cooldown), merge the rest into one ticket.
    fn raise_close(
        &mut self,
        slot: u32,
        drafts: &mut Vec<(SignalDraft, Option<u32>)>,
        out: &mut Vec<CareTicket>,
    ) {
        let mut admitted = Vec::with_capacity(drafts.len());
        for (d, cooldown) in drafts.drain(..) {
            let marks = self.marks.entry((slot, d.rule)).or_default();
            if marks.iter().any(|m| m.episode == d.episode) {
                // Already ticketed (a contract end or a bill judged again the next day).
                continue;
            }
            let cooling = marks.iter().any(|m| {
                cooldown.is_some_and(|c| d.raised_ms - m.raised_ms < i64::from(c) * 86_400_000)
            });
            if cooling {
                bump(&mut self.stats.suppressed, "cooldown");
                continue;
            }
            push_mark(
                marks,
                Mark {
                    episode: d.episode,
                    raised_ms: d.raised_ms,
                    tie: 0,
                },
            );
            admitted.push(d);
        }
        if admitted.is_empty() {
            return;
        }
        self.dispatch(slot, admitted, false, out);
    }
}

/// One subscriber's day close, as the close rules may read it besides the state.
struct Closing<'a> {
    view: Option<&'a SubscriberState>,
    contacts: Option<&'a [Contact]>,
    day: Day,
    month: Period,
    cal: &'a Calendar,
}

/// Runs the close rules that are `due` over one subscriber, collecting their signals.
fn run_close_rules(
    cfg: &RulesConfig,
    due: impl Fn(When) -> bool,
    st: &mut SubscriberState,
    c: &Closing<'_>,
    drafts: &mut Vec<(SignalDraft, Option<u32>)>,
    skipped: &mut BTreeMap<&'static str, u64>,
) {
    for rule in rules::CLOSE_RULES.iter().filter(|r| due(r.when)) {
        if rule.latch && st.has(rule.condition) {
            continue;
        }
        let input = CloseInput {
            state: st,
            account: c.view.unwrap_or(st),
            contacts: c.contacts,
            day: c.day,
            month: c.month,
            cal: c.cal,
        };
        let v = (rule.judge)(cfg, &input);
        let cooldown = rule.cooldown.then(|| cfg.cooldown_days(rule.id));
        take(st, rule.condition, v, cooldown, drafts, skipped);
    }
}

/// Records a close rule's verdict. With a condition flag, an ongoing condition raises a
/// signal only on the day it starts; `0` means no flag (episodes alone de-duplicate).
fn take(
    st: &mut SubscriberState,
    condition: u16,
    v: Verdict,
    cooldown: Option<u32>,
    drafts: &mut Vec<(SignalDraft, Option<u32>)>,
    skipped: &mut BTreeMap<&'static str, u64>,
) {
    match v {
        Verdict::Holds(d) => {
            if condition == 0 || !st.has(condition) {
                st.set(condition, true);
                drafts.push((d, cooldown));
            }
        }
        Verdict::No => st.set(condition, false),
        Verdict::Skipped(reason) => bump(skipped, reason),
    }
}

fn push_mark(marks: &mut Vec<Mark>, m: Mark) {
    if marks.len() >= MARKS_KEPT {
        if let Some(oldest) = marks
            .iter()
            .enumerate()
            .min_by_key(|(_, m)| m.raised_ms)
            .map(|(i, _)| i)
        {
            marks.swap_remove(oldest);
        }
    }
    marks.push(m);
}
