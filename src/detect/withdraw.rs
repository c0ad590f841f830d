//! Tickets that close themselves: a ticket whose cause has gone is published again, same
//! `ticket_id`, with `status = WITHDRAWN` and a reason, so no agent calls a subscriber who
//! paid yesterday or has already left.
//!
//! **When a cause has gone** (judged at every day close, on the state as of the end of the
//! day closed: closed days, and the account facts of those days, see [`super::facts`]):
//!
//! | signal | gone when | reason |
//! |---|---|---|
//! | `overdue_bill` | payments after the notice add up to its amount | `paid` |
//! | `number_retention_suspension` | the line is no longer suspended (`Resumed`) | `resumed` |
//! | `contract_expiry` | the contract end moved past the one ticketed, beyond the window | `renewed` |
//! | `spend_drop`, `voice_drop`, `data_drop` | the last 7 closed days back to the midpoint between `drop_ratio` and 1 of the ticket's `baseline_weekly` | `recovered` |
//! | `silent_days` | calls on at least [`SILENCE_BROKEN_DAYS`] of the last 7 closed days | `recovered` |
//! | `sustained_decline` | a month closed after the ticket's spent at least the midpoint of its start and last month | `recovered` |
//! | any, the subscriber churned | port-out or deactivation on or before the day closed | `churned` |
//!
//! Other signals (a competitor's care line, forwarding, zero spend, reminders, complaints,
//! IP calls, bill shock) record something that happened; only churn withdraws them.
//!
//! **Several signals.** A ticket is withdrawn only when every one of its causes has gone at
//! the same day close (or the subscriber churned); the reason is its lead (strongest)
//! signal's. A ticket with one cause that stays (a care call beside an overdue bill) stays
//! `OPEN` until churn.
//!
//! **Churn.** All of a churned subscriber's open tickets are withdrawn (`churned`), and no
//! win-back queue takes them: retention agents cannot keep a subscriber who has gone, and
//! win-back is a different campaign with its own list (the port-out itself, in the CRM).
//!
//! **Event time.** Causes are judged at day closes only, on tickets created by the end of
//! the day closed: by then every record of that day has arrived (a later one is late and
//! rejected), so the verdict, and the withdrawal, are the same in any arrival order, in
//! `replay` as on the live path. A payment counts when its day closes; it pays an overdue
//! ticket if it is later than the notice.
//!
//! **Memory.** Every ticket is followed (its last published version, 300-500 bytes, and
//! the amount paid towards it) for [`FOLLOW_DAYS`] after it was created, or as long as the
//! contact cap may still re-emit it, whichever is longer; after that it keeps the status
//! it last had. The memory is the policy's (in the partition blob of the changelog), keyed
//! by subscriber slot, and read only at day closes, so a record for a subscriber with
//! nothing open costs nothing. Re-emissions of a withdrawn ticket (the contact cap, a late
//! do-not-disturb) stay withdrawn.

use rustc_hash::FxHashMap;

use crate::proto::{CareTicket, Signal, TicketStatus};

use super::calendar::{month_of_day, Calendar, Day};
use super::config::RulesConfig;
use super::rules::RuleId;
use super::snapshot::{Put, Reader, SnapshotError};
use super::state::{flag, ClosedDay, SubscriberState, MONTHS};

/// Days a ticket is followed after it was created.
pub const FOLLOW_DAYS: i32 = 60;
/// Call days in the last 7 closed days that end a silence.
pub const SILENCE_BROKEN_DAYS: usize = 3;

/// Why a ticket was withdrawn (its `status_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    Paid,
    Resumed,
    Renewed,
    Recovered,
    Churned,
}

impl Reason {
    pub const ALL: [Reason; 5] = [
        Reason::Paid,
        Reason::Resumed,
        Reason::Renewed,
        Reason::Recovered,
        Reason::Churned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Paid => "paid",
            Reason::Resumed => "resumed",
            Reason::Renewed => "renewed",
            Reason::Recovered => "recovered",
            Reason::Churned => "churned",
        }
    }
}

/// What a day close judges against.
pub struct Judged<'a> {
    pub rules: &'a RulesConfig,
    pub cal: &'a Calendar,
    /// The day just closed.
    pub day: Day,
}

/// A followed ticket: as last published, and what has been paid towards it.
#[derive(Debug, Clone, PartialEq)]
struct Followed {
    ticket: CareTicket,
    paid_fen: u64,
}

impl Followed {
    fn withdrawn(&self) -> bool {
        self.ticket.status == TicketStatus::Withdrawn as i32
    }
}

/// The tickets followed, by subscriber slot.
#[derive(Debug, Default)]
pub struct OpenTickets {
    by_slot: FxHashMap<u32, Vec<Followed>>,
}

impl OpenTickets {
    /// Starts following a new ticket. A subscriber's tickets are kept in id order, so
    /// their withdrawals come out in the same order after a restore.
    pub fn follow(&mut self, slot: u32, t: &CareTicket) {
        let list = self.by_slot.entry(slot).or_default();
        if let Err(at) = list.binary_search_by(|f| f.ticket.ticket_id.cmp(&t.ticket_id)) {
            let ticket = t.clone();
            list.insert(
                at,
                Followed {
                    ticket,
                    paid_fen: 0,
                },
            );
        }
    }

    /// A ticket about to be published again: a withdrawn one stays withdrawn, and the
    /// version published is the one a withdrawal will re-publish.
    pub fn republish(&mut self, slot: u32, t: &mut CareTicket) {
        let Some(f) = self
            .by_slot
            .get_mut(&slot)
            .and_then(|l| l.iter_mut().find(|f| f.ticket.ticket_id == t.ticket_id))
        else {
            return;
        };
        if f.withdrawn() {
            t.status = f.ticket.status;
            t.status_reason.clone_from(&f.ticket.status_reason);
        }
        f.ticket.clone_from(t);
    }

    /// A payment folded at a day close: it counts towards the subscriber's open overdue
    /// tickets whose notice came before it.
    pub fn paid(&mut self, slot: u32, at_ms: i64, amount_fen: u32) {
        let Some(list) = self.by_slot.get_mut(&slot) else {
            return;
        };
        for f in list.iter_mut().filter(|f| !f.withdrawn()) {
            let overdue = f
                .ticket
                .signals
                .iter()
                .any(|s| s.rule == RuleId::OverdueBill.as_str() && s.first_seen_ms < at_ms);
            if overdue {
                f.paid_fen = f.paid_fen.saturating_add(u64::from(amount_fen));
            }
        }
    }

    /// Slots with followed tickets, ascending (the order withdrawals are published in).
    pub fn slots(&self) -> Vec<u32> {
        let mut s: Vec<u32> = self.by_slot.keys().copied().collect();
        s.sort_unstable();
        s
    }

    /// Judges the open tickets of one subscriber at a day close; withdrawn ones are
    /// returned (to publish) with their lead rule and reason.
    pub fn judge(
        &mut self,
        slot: u32,
        st: &SubscriberState,
        j: &Judged<'_>,
    ) -> Vec<(CareTicket, RuleId, Reason)> {
        let mut done = Vec::new();
        let Some(list) = self.by_slot.get_mut(&slot) else {
            return done;
        };
        let judged_until = j.cal.day_start_ms(j.day + 1);
        for f in list.iter_mut() {
            if f.withdrawn() || f.ticket.created_time_ms > judged_until {
                continue;
            }
            let Some(reason) = ticket_cause_gone(f, st, j) else {
                continue;
            };
            f.ticket.status = TicketStatus::Withdrawn as i32;
            f.ticket.status_reason = reason.as_str().to_string();
            let lead = f
                .ticket
                .signals
                .first()
                .and_then(|s| RuleId::parse(&s.rule))
                .unwrap_or(RuleId::CompetitorCareCall);
            done.push((f.ticket.clone(), lead, reason));
        }
        done
    }

    /// Stops following tickets created before `from_ms`.
    pub fn forget_before(&mut self, from_ms: i64) {
        self.by_slot.retain(|_, l| {
            l.retain(|f| f.ticket.created_time_ms >= from_ms);
            !l.is_empty()
        });
    }

    /// Drops the tickets of evicted slots.
    pub fn forget(&mut self, gone: impl Fn(u32) -> bool) {
        self.by_slot.retain(|&s, _| !gone(s));
    }

    /// Moves every list to its subscriber's new slot.
    pub fn remap(&mut self, new_of: &[u32]) {
        self.by_slot = std::mem::take(&mut self.by_slot)
            .into_iter()
            .map(|(s, l)| (new_of[s as usize], l))
            .collect();
    }

    /// Approximate bytes held.
    pub fn bytes(&self) -> usize {
        self.by_slot
            .values()
            .flatten()
            .map(|f| 400 + f.ticket.signals.len() * 200)
            .sum()
    }

    /// Appends the followed tickets for a snapshot, by subscriber number then id.
    pub(crate) fn encode(&self, out: &mut Vec<u8>, number: impl Fn(u32) -> u64) {
        let mut all: Vec<(u64, &Followed)> = self
            .by_slot
            .iter()
            .flat_map(|(&s, l)| l.iter().map(move |f| (s, f)))
            .map(|(s, f)| (number(s), f))
            .collect();
        all.sort_unstable_by(|a, b| {
            (a.0, &a.1.ticket.ticket_id).cmp(&(b.0, &b.1.ticket.ticket_id))
        });
        out.put_len(all.len());
        for (m, f) in all {
            out.put_u64(m);
            out.put_u64(f.paid_fen);
            out.put_bytes(&prost::Message::encode_to_vec(&f.ticket));
        }
    }

    /// Replaces the followed tickets with [`OpenTickets::encode`]d ones.
    pub(crate) fn decode(
        &mut self,
        r: &mut Reader<'_>,
        mut slot_of: impl FnMut(u64) -> u32,
    ) -> Result<(), SnapshotError> {
        self.by_slot.clear();
        for _ in 0..r.count(20)? {
            let slot = slot_of(r.u64()?);
            let paid_fen = r.u64()?;
            let ticket = <CareTicket as prost::Message>::decode(r.bytes()?)
                .map_err(|e| r.malformed(format!("followed ticket: {e}")))?;
            self.by_slot
                .entry(slot)
                .or_default()
                .push(Followed { ticket, paid_fen });
        }
        Ok(())
    }
}

/// Whether every cause of a ticket has gone (or the subscriber churned), and why.
fn ticket_cause_gone(f: &Followed, st: &SubscriberState, j: &Judged<'_>) -> Option<Reason> {
    if st.churned_by(j.day) {
        return Some(Reason::Churned);
    }
    let mut lead = None;
    for s in &f.ticket.signals {
        let reason = cause_gone(s, f, st, j)?;
        lead.get_or_insert(reason);
    }
    lead
}

/// Whether one signal's cause has gone, and why (`None`: it stays, or cannot go).
fn cause_gone(s: &Signal, f: &Followed, st: &SubscriberState, j: &Judged<'_>) -> Option<Reason> {
    let ev = |k: &str| s.evidence.get(k).copied();
    let r = j.rules;
    match RuleId::parse(&s.rule)? {
        RuleId::OverdueBill => {
            let owed = (ev("amount_yuan")? * 100.0).round().max(0.0) as u64;
            (f.paid_fen > 0 && f.paid_fen >= owed).then_some(Reason::Paid)
        }
        RuleId::NumberRetentionSuspension => (!st.has(flag::SUSPENDED)).then_some(Reason::Resumed),
        RuleId::ContractExpiry => {
            let ticketed_end = j.cal.day_of(s.last_seen_ms);
            let end = i32::from(st.contract_end_day);
            let window = r.contract_expiry.days_before_end as i32;
            (end > ticketed_end && end - j.day > window).then_some(Reason::Renewed)
        }
        RuleId::SpendDrop => usage_back(
            st,
            j.day,
            ev("baseline_weekly")?,
            r.spend_drop.drop_ratio,
            100.0,
            |d| d.charge_fen(),
        ),
        RuleId::VoiceDrop => usage_back(
            st,
            j.day,
            ev("baseline_weekly")?,
            r.voice_drop.drop_ratio,
            60.0,
            |d| d.voice_s(),
        ),
        RuleId::DataDrop => {
            let mib = 1024.0 * 1024.0;
            usage_back(
                st,
                j.day,
                ev("baseline_weekly")?,
                r.data_drop.drop_ratio,
                mib,
                |d| d.data_bytes(),
            )
        }
        RuleId::SilentDays => {
            let calls = (j.day - 6..=j.day).filter(|&d| st.called_on(d)).count();
            (calls >= SILENCE_BROKEN_DAYS).then_some(Reason::Recovered)
        }
        RuleId::SustainedDecline => {
            let ticket_month = month_of_day(j.cal.day_of(f.ticket.created_time_ms)).0 - 1;
            let last_closed = month_of_day(j.day + 1).0 - 1;
            if last_closed <= ticket_month || last_closed - ticket_month >= MONTHS as i32 {
                return None;
            }
            let mid = (ev("start_month_yuan")? + ev("last_month_yuan")?) / 2.0;
            let spent = st.month_spend_fen(last_closed) as f64 / 100.0;
            (spent >= mid).then_some(Reason::Recovered)
        }
        _ => None,
    }
}

/// Whether the last 7 closed days are back to the midpoint between `ratio` and 1 of
/// `baseline` (weekly, in the rule's unit: `divisor` raw units each).
fn usage_back(
    st: &SubscriberState,
    day: Day,
    baseline: f64,
    ratio: f64,
    divisor: f64,
    metric: impl Fn(&ClosedDay) -> u64,
) -> Option<Reason> {
    if baseline <= 0.0 {
        return None;
    }
    let week: u64 = (day - 6..=day).map(|d| metric(st.closed(d))).sum();
    let needed = baseline * (1.0 + ratio) / 2.0;
    (week as f64 / divisor >= needed).then_some(Reason::Recovered)
}

#[cfg(test)]
mod tests;
