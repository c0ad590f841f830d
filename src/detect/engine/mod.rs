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
//! **Duplicates.** Ids are remembered for `engine.dedup_horizon_hours` (24) of arrival, by
//! the partition's newest event time: a record delivered again within that is dropped, a
//! later copy counts twice; up to `engine.max_dedup_ids` ids per partition (past it the
//! oldest go first, see [`super::dedup`]).
//!
//! **Partial calls** to a competitor's care line are joined by call reference and judged
//! when the watermark passes the end of the last fragment: only then is the call whole.
//!
//! **Eviction.** Churned subscribers (after a grace) and idle ones (no record for a horizon
//! longer than any rule looks back) leave the table when a day closes, and their slots are
//! reused, so memory follows the base held, not every number seen (see
//! [`super::eviction`]).
//!
//! **Withdrawals.** At every day close, after the close rules, a ticket whose causes have
//! all gone by the end of that day (a bill paid, a suspension lifted, usage back, the
//! subscriber gone) is published again, same id, `WITHDRAWN` (see [`super::withdraw`]).
//!
//! **Checkpoints.** [`Engine::drain_changed`], [`Engine::drain_ids`] and
//! [`Engine::encode_partition`] save a partition's engine for a changelog, and the
//! `restore_*` methods rebuild it so it continues exactly (see `snapshot`).

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use super::config::{ConfigError, DetectConfig};
use crate::proto::CareTicket;

use super::calendar::{month_of_day, Calendar, Day};
use super::dedup::{Arrival, SeenIds};
use super::event::Period;
use super::event::{AccountEvent, AccountKind, Cdr, CdrKind, Event, Msisdn, TicketOutcomeEvent};
use super::facts::{Fact, PendingFact, PendingFacts};
use super::numbering::{NumberPlan, OperatorId, Party};
use super::policy::{Ctx, Policy, Raised, Subject};
use super::quality::Quality;
use super::rules::baseline::Verdict;
use super::rules::competitor_care::CareCall;
use super::rules::complaint_burst::Contact;
use super::rules::{self, CloseInput, RuleId, RulesConfig, SignalDraft, When};
use super::state::{flag, to_minute, SubscriberState, FWD_BITS, OPEN_DAYS};
use super::stats::bump;
pub use super::stats::EngineStats;
use super::table::SubscriberTable;
use super::tier::reference_month;
use super::watermark::{Input, Watermark};

mod account;
mod batch;
mod close;
mod evict;
mod records;
mod snapshot;

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
pub(crate) struct Mark {
    pub(crate) episode: i64,
    pub(crate) raised_ms: i64,
    /// Tie-break between qualifying records with the same event time.
    pub(crate) tie: u64,
}

/// Episodes remembered per subscriber and rule (older ones fall off; their windows are long
/// past the lateness horizon).
const MARKS_KEPT: usize = 4;

/// A call to a competitor's care line cut into partial records.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PartialCall {
    pub(crate) start_ms: i64,
    pub(crate) end_ms: i64,
    pub(crate) total_s: u32,
    pub(crate) outgoing: bool,
    pub(crate) operator: OperatorId,
}

/// The detection engine for one partition's subscribers.
pub struct Engine {
    cfg: DetectConfig,
    plan: NumberPlan,
    cal: Calendar,
    subs: SubscriberTable,
    /// Event time: what is late, which days are closed (see [`super::watermark`]).
    clock: Watermark,
    /// De-duplication ids of about a day of arrival, bounded (see [`super::dedup`]).
    seen_ids: SeenIds,
    marks: FxHashMap<(u32, RuleId), Vec<Mark>>,
    partials: FxHashMap<(u32, u64), PartialCall>,
    /// The earliest end among pending partial calls: nothing to judge before it.
    partials_min_end: i64,
    contacts: FxHashMap<u32, Vec<Contact>>,
    /// Account facts not yet folded into the states (see [`super::facts`]).
    facts: PendingFacts,
    /// What becomes of raised signals (see [`super::policy`]).
    policy: Policy,
    /// Judges tickets against churn (see [`super::quality`]).
    quality: Quality,
    stats: EngineStats,
    /// Payments folded at a day close, for the withdrawals (reused).
    payments: Vec<(u32, i64, u32)>,
    /// Slots found due for eviction during a day close (reused, see `evict`).
    evicting: Vec<u32>,
    /// Change tracking for checkpoints and restore bookkeeping (see `snapshot`).
    snap: snapshot::Tracking,
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
            seen_ids: SeenIds::new(cfg.engine.max_dedup_ids, cfg.engine.sized_dedup_ids()),
            marks: FxHashMap::default(),
            partials: FxHashMap::default(),
            partials_min_end: i64::MAX,
            contacts: FxHashMap::default(),
            facts: PendingFacts::default(),
            policy: Policy::new(cfg),
            quality: Quality::new(cfg.quality.horizon_days),
            stats: EngineStats::default(),
            payments: Vec::new(),
            evicting: Vec::new(),
            snap: snapshot::Tracking::default(),
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

    /// Approximate bytes of state held: subscribers (their last tickets included), account
    /// facts still pending, the de-duplication ids (their allocated capacity), lead times
    /// not yet drained and the tickets followed for withdrawal.
    pub fn state_bytes(&self) -> usize {
        self.subs.bytes()
            + self.facts.bytes()
            + self.seen_ids.bytes()
            + self.quality.bytes()
            + self.policy.bytes()
    }

    /// Calls `f(rule, lead_days)` for every hit's lead time since the last call (for a
    /// histogram; the counts are in [`EngineStats::quality`]). Lead times are kept from the
    /// first call on, so call it after every record.
    pub fn drain_lead_times(&mut self, f: impl FnMut(RuleId, u32)) {
        self.quality.drain_lead_times(f);
    }

    /// The current watermark (UTC ms), `None` before the first event.
    pub fn watermark_ms(&self) -> Option<i64> {
        self.clock.watermark_ms()
    }

    /// Applies one event; tickets it raises (or corrects) are appended to `out`.
    pub fn apply(&mut self, ev: &Event<'_>, out: &mut Vec<CareTicket>) -> Applied {
        let t = ev.time_ms();
        let day = self.cal.day_of(t);
        let input = match ev {
            Event::Cdr(_) => Input::Cdr,
            Event::Account(_) => Input::Account,
        };
        if self.clock.admit_is_late(t, day, input, &self.cal) {
            self.stats.late += 1;
            return Applied::Late;
        }
        let key = match ev {
            Event::Cdr(c) => c.id.0,
            Event::Account(a) => a.id.0.rotate_left(17) ^ 0x5bd1_e995_a5a5_0f0f,
        };
        let period = self.dedup_period(self.clock.newest_ms().unwrap_or(t).max(t));
        if !self.seen_ids.insert(period, day, key) {
            self.stats.duplicates += 1;
            return Applied::Duplicate;
        }
        self.stats.dedup_ids_dropped = self.seen_ids.dropped();
        if self.snap.track_ids {
            self.snap.new_ids.push((period, day, key));
        }
        self.stats.accepted += 1;
        if let Some(days) = self.clock.advance(t, input, &self.cal) {
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
        if let Some(days) = self.clock.advance_idle(t, &self.cal) {
            self.close_days(days, out);
        }
        self.finalize_partials(self.watermark(), out);
        self.stats.subscribers = self.subs.len();
    }

    /// Holds the clock days close on at `hold`, the progress of the slowest input the
    /// adapter still counts (`None`: days close on the newest event, as in `replay`); days
    /// the new clock passes close now. See [`super::watermark`].
    pub fn hold_clock(&mut self, hold: Option<i64>, out: &mut Vec<CareTicket>) {
        if let Some(days) = self.clock.hold(hold, &self.cal) {
            self.close_days(days, out);
            self.finalize_partials(self.watermark(), out);
            self.stats.subscribers = self.subs.len();
        }
    }

    /// Whether a record at `t` may be applied while the clock is held at `hold` (see
    /// [`Watermark::fits_ahead`]).
    pub fn fits_ahead(&self, t: i64, hold: i64) -> bool {
        self.clock.fits_ahead(t, hold, &self.cal)
    }

    /// The newest event time `input` delivered, `None` before its first record.
    pub fn input_ms(&self, input: Input) -> Option<i64> {
        self.clock.input_ms(input)
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
        self.forget_before(closed);
    }

    /// The de-duplication period of an arrival at newest event time `t`.
    pub(super) fn dedup_period(&self, t: i64) -> Arrival {
        let p = t.div_euclid(self.cfg.engine.dedup_period_ms());
        p.clamp(i64::from(Arrival::MIN), i64::from(Arrival::MAX)) as Arrival
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

    /// Judges one record by the registry's record rules: the signals of those that hold.
    fn judge_record(
        &self,
        input: &rules::RecordInput<'_>,
    ) -> [Option<SignalDraft>; rules::RECORD_RULES.len()] {
        let mut raised = [const { None }; rules::RECORD_RULES.len()];
        for (slot, rule) in raised.iter_mut().zip(&rules::RECORD_RULES) {
            *slot = (rule.judge)(&self.cfg.rules, input);
            debug_assert!(slot.as_ref().is_none_or(|d| d.rule == rule.id));
        }
        raised
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
        let raised = self
            .policy
            .dispatch(&ctx, who, signals, update, &mut self.stats, out);
        if let Some(r) = raised {
            self.note_ticket(slot, r);
        }
    }

    /// A new ticket becomes the subscriber's last (not once they have churned).
    fn note_ticket(&mut self, slot: u32, r: Raised) {
        let day = self.cal.day_of(r.created_ms);
        if self.subs.get(slot).churned_by(day) {
            return;
        }
        let last = self.subs.last_ticket_mut(slot);
        self.quality
            .ticket(last, r.mask, day, r.control, &mut self.stats.quality);
    }

    /// Feedback from the call center. A RETAINED subscriber is not ticketed again for the
    /// ticket's rules within each rule's cooldown.
    pub fn apply_outcome(&mut self, o: &TicketOutcomeEvent<'_>) {
        self.policy
            .apply_outcome(&self.cfg.rules, o, &mut self.stats);
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
