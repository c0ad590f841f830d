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
//! **Duplicates.** Ids are remembered per event day until the day closes; anything older is
//! rejected as late anyway, so de-duplication is exact over the whole lateness horizon.
//!
//! **Partial calls** to a competitor's care line are joined by call reference and judged
//! when the watermark passes the end of the last fragment: only then is the call whole.

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::config::{Config, ConfigError};
use crate::proto::CareTicket;

use super::calendar::{month_of_day, Calendar, Day};
use super::event::{AccountEvent, AccountKind, Cdr, CdrKind, Event, Msisdn, SuspensionReason};
use super::numbering::{NumberPlan, OperatorId, Party};
use super::rules::baseline::Verdict;
use super::rules::competitor_care::CareCall;
use super::rules::complaint_burst::Contact;
use super::rules::{self, RuleId, SignalDraft};
use super::state::{
    flag, to_minute, SubscriberState, SubscriberTable, FWD_BITS, NO_MINUTE, OPEN_DAYS,
};
use super::ticket;

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

/// Counters for the summary and, later, metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineStats {
    pub accepted: u64,
    pub duplicates: u64,
    pub late: u64,
    /// Distinct ticket ids raised.
    pub tickets: u64,
    /// Re-emissions of an existing ticket id with corrected content (late earlier evidence).
    pub ticket_updates: u64,
    pub tickets_by_rule: BTreeMap<&'static str, u64>,
    /// Signals that raised no ticket, by reason.
    pub suppressed: BTreeMap<&'static str, u64>,
    pub subscribers: usize,
    pub days_closed: u64,
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
    cfg: Config,
    plan: NumberPlan,
    cal: Calendar,
    subs: SubscriberTable,
    lateness_ms: i64,
    max_seen_ms: i64,
    /// Every day up to and including this one is closed (`None` before the first event).
    closed_through: Option<Day>,
    seen_ids: FxHashMap<Day, FxHashSet<u64>>,
    marks: FxHashMap<(u32, RuleId), Vec<Mark>>,
    partials: FxHashMap<(u32, u64), PartialCall>,
    contacts: FxHashMap<u32, Vec<Contact>>,
    stats: EngineStats,
}

fn bump(map: &mut BTreeMap<&'static str, u64>, key: &'static str) {
    *map.entry(key).or_insert(0) += 1;
}

fn tie_of(d: &SignalDraft) -> u64 {
    super::event::fnv1a(d.summary.as_bytes())
}

impl Engine {
    /// Builds an engine from a validated config and the ported-numbers list.
    pub fn new(cfg: &Config, ported: &[PortedNumber]) -> Result<Engine, ConfigError> {
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
            lateness_ms: i64::from(cfg.engine.allowed_lateness_hours) * 3_600_000,
            max_seen_ms: i64::MIN,
            closed_through: None,
            seen_ids: FxHashMap::default(),
            marks: FxHashMap::default(),
            partials: FxHashMap::default(),
            contacts: FxHashMap::default(),
            stats: EngineStats::default(),
            cfg: cfg.clone(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
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

    /// Approximate bytes of subscriber state held.
    pub fn state_bytes(&self) -> usize {
        self.subs.bytes()
    }

    /// The current watermark (UTC ms), `None` before the first event.
    pub fn watermark_ms(&self) -> Option<i64> {
        self.closed_through
            .map(|_| self.max_seen_ms - self.lateness_ms)
    }

    /// Applies one event; tickets it raises (or corrects) are appended to `out`.
    pub fn apply(&mut self, ev: &Event<'_>, out: &mut Vec<CareTicket>) -> Applied {
        let t = ev.time_ms();
        let day = self.cal.day_of(t);
        if self.closed_through.is_none() {
            self.max_seen_ms = t;
            self.closed_through = Some(self.close_target());
        }
        let closed = self.closed_through.unwrap_or(Day::MIN);
        if t < self.max_seen_ms.saturating_sub(self.lateness_ms) || day <= closed {
            self.stats.late += 1;
            return Applied::Late;
        }
        let key = match ev {
            Event::Cdr(c) => c.id.0,
            Event::Account(a) => a.id.0.rotate_left(17) ^ 0x5bd1_e995_a5a5_0f0f,
        };
        if !self.seen_ids.entry(day).or_default().insert(key) {
            self.stats.duplicates += 1;
            return Applied::Duplicate;
        }
        self.stats.accepted += 1;
        if t > self.max_seen_ms {
            self.max_seen_ms = t;
            self.close_days_through(self.close_target(), out);
        }
        match ev {
            Event::Cdr(c) => self.apply_cdr(c, day, out),
            Event::Account(a) => self.apply_account(a, day, out),
        }
        self.finalize_partials(self.max_seen_ms - self.lateness_ms, out);
        self.stats.subscribers = self.subs.len();
        Applied::Accepted
    }

    /// End of input: treats the newest event time seen as final, closes every calendar day
    /// that ended by then, and judges any partial call still open.
    pub fn finish(&mut self, out: &mut Vec<CareTicket>) {
        if self.closed_through.is_none() {
            return;
        }
        let last_full = self.cal.day_of(self.max_seen_ms) - 1;
        self.close_days_through(last_full, out);
        self.finalize_partials(i64::MAX, out);
        self.stats.subscribers = self.subs.len();
    }

    /// The last day that must be closed: the watermark's day minus one, and never more than
    /// [`OPEN_DAYS`] days open (a DST day can make 48 hours span four calendar days).
    fn close_target(&self) -> Day {
        let by_watermark = self.cal.day_of(self.max_seen_ms - self.lateness_ms) - 1;
        by_watermark.max(self.cal.day_of(self.max_seen_ms) - OPEN_DAYS as i32)
    }

    fn close_days_through(&mut self, target: Day, out: &mut Vec<CareTicket>) {
        let Some(mut closed) = self.closed_through else {
            return;
        };
        while closed < target {
            closed += 1;
            self.close_day(closed, out);
            self.stats.days_closed += 1;
        }
        self.closed_through = Some(closed);
        self.seen_ids.retain(|&d, _| d > closed);
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
        if self.partials.is_empty() {
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
    }

    fn apply_account(&mut self, a: &AccountEvent, day: Day, out: &mut Vec<CareTicket>) {
        let slot = self.subs.slot(a.subscriber.0);
        let minute = to_minute(a.time_ms);
        let st = self.subs.get_mut(slot);
        st.note_seen(day);
        let mut raised: Option<SignalDraft> = None;
        match a.kind {
            AccountKind::BillIssued {
                amount,
                due_time_ms,
                ..
            } => {
                if st.bill_issued_min == NO_MINUTE || minute >= st.bill_issued_min {
                    st.bill_issued_min = minute;
                    st.bill_due_day =
                        self.cal.day_of(due_time_ms).clamp(0, i32::from(u16::MAX)) as u16;
                    st.bill_amount_fen = amount.clamp(0, i64::from(u32::MAX)) as u32;
                    st.bill_paid_min =
                        if st.last_payment_min != NO_MINUTE && st.last_payment_min >= minute {
                            st.last_payment_min
                        } else {
                            NO_MINUTE
                        };
                }
            }
            AccountKind::Payment { .. } => {
                if st.last_payment_min == NO_MINUTE || minute > st.last_payment_min {
                    st.last_payment_min = minute;
                }
                if st.bill_issued_min != NO_MINUTE && minute >= st.bill_issued_min {
                    st.bill_paid_min = st.bill_paid_min.min(minute);
                }
            }
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
            AccountKind::Suspended { reason } => {
                if minute >= st.status_min {
                    st.status_min = minute;
                    st.set(flag::SUSPENDED, true);
                }
                if reason == SuspensionReason::NumberRetention {
                    raised = rules::number_retention::judge(
                        &self.cfg.rules.number_retention_suspension,
                        a.time_ms,
                        day,
                    );
                }
            }
            AccountKind::Resumed => {
                if minute >= st.status_min {
                    st.status_min = minute;
                    st.set(flag::SUSPENDED, false);
                }
            }
            AccountKind::ContractUpdated { end_time_ms } => {
                let set = day.clamp(0, i32::from(u16::MAX)) as u16;
                if st.contract_end_day == 0 || set >= st.contract_set_day {
                    st.contract_set_day = set;
                    st.contract_end_day =
                        self.cal.day_of(end_time_ms).clamp(0, i32::from(u16::MAX)) as u16;
                }
            }
            AccountKind::PlanChanged { monthly_fee } => {
                st.plan_fee_yuan = (monthly_fee / 100).clamp(0, i64::from(u16::MAX)) as u16;
            }
            AccountKind::Complaint | AccountKind::FaultReport => {
                let fault = matches!(a.kind, AccountKind::FaultReport);
                let horizon = self.cfg.rules.complaint_burst.window_days as i32 + OPEN_DAYS as i32;
                let list = self.contacts.entry(slot).or_default();
                list.push(Contact { day, fault });
                list.retain(|c| c.day > day - horizon - 366);
            }
            AccountKind::ProfileUpdated {
                do_not_disturb,
                key_person,
                activated_time_ms,
            } => {
                st.set(flag::DO_NOT_DISTURB, do_not_disturb);
                st.set(flag::KEY_PERSON, key_person);
                if activated_time_ms > 0 {
                    let act = self
                        .cal
                        .day_of(activated_time_ms)
                        .clamp(1, i32::from(u16::MAX) - 1);
                    st.activated_day = act as u16;
                    st.note_seen(act);
                }
            }
            AccountKind::Churned { .. } => {
                let d = day.clamp(1, i32::from(u16::MAX)) as u16;
                st.churned_day = if st.churned_day == 0 {
                    d
                } else {
                    st.churned_day.min(d)
                };
            }
        }
        if let Some(d) = raised {
            self.raise_record(slot, d, out);
        }
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
                self.stats.ticket_updates += 1;
                out.push(ticket::build(
                    &self.cfg,
                    Msisdn(self.subs.number(slot)),
                    vec![d],
                    st,
                ));
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
        self.stats.tickets += 1;
        bump(&mut self.stats.tickets_by_rule, d.rule.as_str());
        out.push(ticket::build(
            &self.cfg,
            Msisdn(self.subs.number(slot)),
            vec![d],
            st,
        ));
    }

    /// Closes `day` for every subscriber and runs the day- (and month-) close rules.
    fn close_day(&mut self, day: Day, out: &mut Vec<CareTicket>) {
        let month_end = month_of_day(day + 1) != month_of_day(day);
        let month = month_of_day(day);
        let mut drafts: Vec<(SignalDraft, Option<u32>)> = Vec::new();
        for slot in 0..self.subs.len() as u32 {
            drafts.clear();
            let cfg = &self.cfg.rules;
            let cal = &self.cal;
            let st = self.subs.get_mut(slot);
            st.close_day(day);
            let churned = st.churned_by(day);
            if !churned {
                let sk = &mut self.stats.suppressed;
                let d = &mut drafts;
                let v = rules::silent_days::judge(&cfg.silent_days, st, day, cal);
                take(
                    st,
                    flag::SILENT,
                    v,
                    Some(cfg.silent_days.cooldown_days),
                    d,
                    sk,
                );
                let v = rules::spend_drop::judge(&cfg.spend_drop, st, day, cal);
                take(
                    st,
                    flag::SPEND_DROP,
                    v,
                    Some(cfg.spend_drop.cooldown_days),
                    d,
                    sk,
                );
                let v = rules::voice_drop::judge(&cfg.voice_drop, st, day, cal);
                take(
                    st,
                    flag::VOICE_DROP,
                    v,
                    Some(cfg.voice_drop.cooldown_days),
                    d,
                    sk,
                );
                let v = rules::data_drop::judge(&cfg.data_drop, st, day, cal);
                take(
                    st,
                    flag::DATA_DROP,
                    v,
                    Some(cfg.data_drop.cooldown_days),
                    d,
                    sk,
                );
                let v = rules::contract_expiry::judge(&cfg.contract_expiry, st, day, cal);
                take(st, 0, v, None, d, sk);
                let v = rules::payment_reminder::judge_bill(&cfg.payment_reminder, st, day, cal);
                take(st, 0, v, None, d, sk);
                let v = rules::bill_shock::judge(&cfg.bill_shock, st, day, cal);
                take(st, 0, v, None, d, sk);
                if let Some(history) = self.contacts.get(&slot) {
                    let v = rules::complaint_burst::judge(&cfg.complaint_burst, history, day, cal);
                    take(
                        st,
                        flag::COMPLAINT_BURST,
                        v,
                        Some(cfg.complaint_burst.cooldown_days),
                        d,
                        sk,
                    );
                }
                if !st.has(flag::IP_CALLS_MONTH) {
                    let v = rules::offnet_ip_calls::judge(
                        &cfg.offnet_ip_calls,
                        st.month_ip_s,
                        day,
                        month,
                        cal,
                    );
                    if matches!(v, Verdict::Holds(_)) {
                        st.set(flag::IP_CALLS_MONTH, true);
                    }
                    take(st, 0, v, None, d, sk);
                }
                if month_end {
                    let v = rules::zero_spend::judge(&cfg.zero_spend_month, st, month, cal);
                    take(st, flag::ZERO_MONTH, v, None, d, sk);
                }
            }
            if month_end {
                st.close_month(month.0);
                if !churned {
                    let v = rules::sustained_decline::judge(&cfg.sustained_decline, st, month, cal);
                    take(st, 0, v, None, &mut drafts, &mut self.stats.suppressed);
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
            bump(&mut self.stats.tickets_by_rule, d.rule.as_str());
            admitted.push(d);
        }
        if admitted.is_empty() {
            return;
        }
        self.stats.tickets += 1;
        let st = self.subs.get(slot);
        out.push(ticket::build(
            &self.cfg,
            Msisdn(self.subs.number(slot)),
            admitted,
            st,
        ));
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
