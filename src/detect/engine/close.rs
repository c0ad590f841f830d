//! Day and month close: every subscriber's day is folded into history and the close rules
//! of the registry (`rules::CLOSE_RULES`) run over it; their signals, less those already
//! ticketed or cooling down, become one ticket per subscriber. Then tickets whose causes have
//! gone are withdrawn (see [`crate::detect::withdraw`]), and subscribers due for eviction
//! leave at the end of the close (see `evict`).

use super::*;

impl Engine {
    /// Closes `day` for every subscriber and runs the day- (and month-) close rules.
    pub(super) fn close_day(&mut self, day: Day, out: &mut Vec<CareTicket>) {
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
        let mut paid = std::mem::take(&mut self.payments);
        self.facts
            .settle(&mut self.subs, next_start, routing_before, &mut paid);
        for (slot, at_ms, amount_fen) in paid.drain(..) {
            self.policy.note_payment(slot, at_ms, amount_fen);
        }
        self.payments = paid;
        let mut drafts: Vec<(SignalDraft, Option<u32>)> = Vec::new();
        for slot in 0..self.subs.slots() {
            if !self.subs.is_live(slot) {
                continue;
            }
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
            self.judge_quality(slot, day);
            if let Some(reason) = self.eviction_due(slot, day) {
                self.collect_eviction(slot, reason);
            }
        }
        self.withdraw_resolved(day, out);
        self.evict_collected(true);
    }

    /// Tickets whose causes have all gone by the end of `day` are published again,
    /// withdrawn (see [`crate::detect::withdraw`]); before eviction, so a churned
    /// subscriber's tickets are withdrawn on the day they leave.
    fn withdraw_resolved(&mut self, day: Day, out: &mut Vec<CareTicket>) {
        let ctx = Ctx {
            cfg: &self.cfg,
            cal: &self.cal,
            lateness_ms: self.clock.lateness_ms(),
        };
        self.policy
            .withdraw_resolved(&ctx, day, &self.subs, &mut self.stats, out);
    }

    /// The day's churn, or a ticket's horizon, judged (see [`crate::detect::quality`]).
    fn judge_quality(&mut self, slot: u32, day: Day) {
        let churned = self.subs.get(slot).churned_day;
        let was = self.subs.last_ticket(slot);
        if !was.is_some() && Day::from(churned) != day {
            return;
        }
        let mut last = was;
        self.quality
            .day_closed(&mut last, churned, day, &mut self.stats.quality);
        if last != was {
            *self.subs.last_ticket_mut(slot) = last;
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
