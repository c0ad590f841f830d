//! Account facts in event-time order: the billing and CRM events that change what the
//! engine knows about a subscriber (a bill, a payment, a suspension or resumption, a
//! contract end, a plan fee, the CRM profile).
//!
//! Why a log: folding each fact into the state as it arrives makes the state depend on
//! arrival order (a second contract update arriving first is overwritten by the older one; a
//! payment that arrives before its bill cannot find it), and a rule judged at a day close, or
//! a ticket routed at once, would read whichever facts happened to have arrived. So a fact
//! waits here until no record that precedes it can still arrive, and is then folded into the
//! fixed-size [`SubscriberState`] in event-time order (ties: bills first, then by event id):
//!
//! - **judged facts** (bills, payments, suspensions, contracts) when their day closes, so a
//!   day-close rule reads exactly the facts of the days up to the one it judges;
//! - **routing facts** (plan fee, profile) a day and one allowed lateness later, because a
//!   ticket is tiered on them *as they stood one lateness before the ticket* (the newest
//!   state no late record can change any more), and tickets raised at a day's close can be
//!   created early in that day.
//!
//! Readers ask for a [`PendingFacts::view`]: the state with the pending facts before a time
//! folded in. Memory is the account events of the last few days, not of every subscriber,
//! like the de-duplication sets and partial calls the engine already keeps per open day.

use rustc_hash::FxHashMap;

use super::calendar::Day;
use super::snapshot::{Put, Reader, SnapshotError};
use super::state::{flag, to_minute, SubscriberState, NO_MINUTE};
use super::table::SubscriberTable;

/// What an account event says about the subscriber's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fact {
    Bill {
        amount_fen: u32,
        due_day: u16,
    },
    /// A payment of `amount_fen` (0 when read from a changelog written before amounts were
    /// kept): it settles the latest bill, and counts towards an overdue ticket's withdrawal.
    Payment {
        amount_fen: u32,
    },
    Suspended,
    Resumed,
    Contract {
        end_day: u16,
    },
    Plan {
        fee_yuan: u16,
    },
    /// `seen_from`: the day tenure counts from (activation, but never before the engine's
    /// first day); 0 when the profile carries no activation time.
    Profile {
        do_not_disturb: bool,
        key_person: bool,
        activated_day: u16,
        seen_from: u16,
    },
}

impl Fact {
    /// Plan and profile decide a ticket's tier and contact; the rest are judged by rules.
    pub fn is_routing(&self) -> bool {
        matches!(self, Fact::Plan { .. } | Fact::Profile { .. })
    }
}

/// A fact waiting to be folded, with its event time, calendar day and event-id fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingFact {
    pub time_ms: i64,
    pub day: Day,
    pub key: u64,
    pub fact: Fact,
}

impl PendingFact {
    /// Event-time order; a bill before anything at the same time (a payment made the
    /// moment a bill is issued pays it), then the event id.
    fn order(&self) -> (i64, u8, u64) {
        let rank = u8::from(!matches!(self.fact, Fact::Bill { .. }));
        (self.time_ms, rank, self.key)
    }
}

/// Applies one fact to a state. Called in event-time order, so the latest fact wins and a
/// payment settles the latest bill issued before it.
pub fn fold(st: &mut SubscriberState, f: &PendingFact) {
    let minute = to_minute(f.time_ms);
    match f.fact {
        Fact::Bill {
            amount_fen,
            due_day,
        } => {
            st.bill_issued_min = minute;
            st.bill_amount_fen = amount_fen;
            st.bill_due_day = due_day;
            st.bill_paid_min = NO_MINUTE;
        }
        Fact::Payment { .. } => {
            if st.bill_issued_min != NO_MINUTE && st.bill_paid_min == NO_MINUTE {
                st.bill_paid_min = minute;
            }
        }
        Fact::Suspended => st.set(flag::SUSPENDED, true),
        Fact::Resumed => st.set(flag::SUSPENDED, false),
        Fact::Contract { end_day } => {
            st.contract_set_day = f.day.clamp(0, i32::from(u16::MAX)) as u16;
            st.contract_end_day = end_day;
        }
        Fact::Plan { fee_yuan } => st.plan_fee_yuan = fee_yuan,
        Fact::Profile {
            do_not_disturb,
            key_person,
            activated_day,
            seen_from,
        } => {
            st.set(flag::DO_NOT_DISTURB, do_not_disturb);
            st.set(flag::KEY_PERSON, key_person);
            if activated_day > 0 {
                st.activated_day = activated_day;
                st.note_seen(i32::from(seen_from));
            }
        }
    }
}

/// Facts not yet folded, per subscriber slot, each list in event-time order.
#[derive(Debug, Default)]
pub struct PendingFacts {
    by_slot: FxHashMap<u32, Vec<PendingFact>>,
}

impl PendingFacts {
    pub fn push(&mut self, slot: u32, f: PendingFact) {
        let list = self.by_slot.entry(slot).or_default();
        let at = list.partition_point(|g| g.order() <= f.order());
        list.insert(at, f);
    }

    /// Folds every fact that is final into its subscriber's state: judged facts before
    /// `judged_before`, routing facts before `routing_before` (both UTC ms). The payments
    /// folded are appended to `paid` as `(slot, time, amount)`: an overdue ticket they pay
    /// in full is withdrawn (see [`super::withdraw`]).
    pub fn settle(
        &mut self,
        subs: &mut SubscriberTable,
        judged_before: i64,
        routing_before: i64,
        paid: &mut Vec<(u32, i64, u32)>,
    ) {
        let due = |f: &PendingFact| {
            f.time_ms
                < if f.fact.is_routing() {
                    routing_before
                } else {
                    judged_before
                }
        };
        self.by_slot.retain(|&slot, list| {
            if list.iter().any(due) {
                let st = subs.get_mut(slot);
                for f in list.iter().filter(|f| due(f)) {
                    fold(st, f);
                    if let Fact::Payment { amount_fen } = f.fact {
                        paid.push((slot, f.time_ms, amount_fen));
                    }
                }
                list.retain(|f| !due(f));
            }
            !list.is_empty()
        });
    }

    /// The state as of `before_ms`: `st` with this subscriber's pending facts before that
    /// time folded in; `None` when there are none (the state itself is the answer).
    pub fn view(&self, slot: u32, st: &SubscriberState, before_ms: i64) -> Option<SubscriberState> {
        let list = self.by_slot.get(&slot)?;
        let n = list.partition_point(|f| f.time_ms < before_ms);
        if n == 0 {
            return None;
        }
        let mut v = *st;
        for f in &list[..n] {
            fold(&mut v, f);
        }
        Some(v)
    }

    /// Whether a pending profile update in `from_ms..=to_ms` asks for do-not-disturb.
    pub fn opted_out_between(&self, slot: u32, from_ms: i64, to_ms: i64) -> bool {
        self.by_slot.get(&slot).is_some_and(|list| {
            list.iter().any(|f| {
                (from_ms..=to_ms).contains(&f.time_ms)
                    && matches!(
                        f.fact,
                        Fact::Profile {
                            do_not_disturb: true,
                            ..
                        }
                    )
            })
        })
    }

    pub fn len(&self) -> usize {
        self.by_slot.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_slot.is_empty()
    }

    /// Approximate bytes held.
    pub fn bytes(&self) -> usize {
        self.by_slot
            .values()
            .map(|l| l.capacity() * std::mem::size_of::<PendingFact>() + 32)
            .sum()
    }

    /// Appends every pending fact for a snapshot, subscribers by `number(slot)` in
    /// ascending order (the same facts always give the same bytes).
    pub(crate) fn encode(&self, out: &mut Vec<u8>, number: impl Fn(u32) -> u64) {
        let mut lists: Vec<(u64, &Vec<PendingFact>)> =
            self.by_slot.iter().map(|(&s, l)| (number(s), l)).collect();
        lists.sort_unstable_by_key(|(m, _)| *m);
        out.put_len(lists.len());
        for (m, list) in lists {
            out.put_u64(m);
            out.put_len(list.len());
            for f in list {
                f.encode(out);
            }
        }
    }

    /// Replaces the pending facts with an [`PendingFacts::encode`]d set, subscribers
    /// resolved to slots by `slot_of`.
    pub(crate) fn decode(
        &mut self,
        r: &mut Reader<'_>,
        mut slot_of: impl FnMut(u64) -> u32,
    ) -> Result<(), SnapshotError> {
        self.by_slot.clear();
        for _ in 0..r.count(12)? {
            let slot = slot_of(r.u64()?);
            let n = r.count(21)?;
            let mut list = Vec::with_capacity(n);
            for _ in 0..n {
                list.push(PendingFact::decode(r)?);
            }
            self.by_slot.insert(slot, list);
        }
        Ok(())
    }

    /// Drops the lists of evicted slots.
    pub(crate) fn forget(&mut self, gone: impl Fn(u32) -> bool) {
        self.by_slot.retain(|&s, _| !gone(s));
    }

    /// Moves every list to its subscriber's new slot.
    pub(crate) fn remap(&mut self, new_of: &[u32]) {
        self.by_slot = std::mem::take(&mut self.by_slot)
            .into_iter()
            .map(|(s, l)| (new_of[s as usize], l))
            .collect();
    }
}

impl PendingFact {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_i64(self.time_ms);
        out.put_i32(self.day);
        out.put_u64(self.key);
        match self.fact {
            Fact::Bill {
                amount_fen,
                due_day,
            } => {
                out.put_u8(0);
                out.put_u32(amount_fen);
                out.put_u16(due_day);
            }
            // Tag 1 was a payment without its amount (still read, as 0).
            Fact::Payment { amount_fen } => {
                out.put_u8(7);
                out.put_u32(amount_fen);
            }
            Fact::Suspended => out.put_u8(2),
            Fact::Resumed => out.put_u8(3),
            Fact::Contract { end_day } => {
                out.put_u8(4);
                out.put_u16(end_day);
            }
            Fact::Plan { fee_yuan } => {
                out.put_u8(5);
                out.put_u16(fee_yuan);
            }
            Fact::Profile {
                do_not_disturb,
                key_person,
                activated_day,
                seen_from,
            } => {
                out.put_u8(6);
                out.put_bool(do_not_disturb);
                out.put_bool(key_person);
                out.put_u16(activated_day);
                out.put_u16(seen_from);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<PendingFact, SnapshotError> {
        let (time_ms, day, key) = (r.i64()?, r.i32()?, r.u64()?);
        let fact = match r.u8()? {
            0 => Fact::Bill {
                amount_fen: r.u32()?,
                due_day: r.u16()?,
            },
            1 => Fact::Payment { amount_fen: 0 },
            7 => Fact::Payment {
                amount_fen: r.u32()?,
            },
            2 => Fact::Suspended,
            3 => Fact::Resumed,
            4 => Fact::Contract { end_day: r.u16()? },
            5 => Fact::Plan { fee_yuan: r.u16()? },
            6 => Fact::Profile {
                do_not_disturb: r.bool()?,
                key_person: r.bool()?,
                activated_day: r.u16()?,
                seen_from: r.u16()?,
            },
            t => return Err(r.malformed(format!("unknown account fact kind {t}"))),
        };
        Ok(PendingFact {
            time_ms,
            day,
            key,
            fact,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn at(hour: i64, key: u64, fact: Fact) -> PendingFact {
        PendingFact {
            time_ms: 1_773_000_000_000 + hour * H,
            day: 20_000 + (hour / 24) as Day,
            key,
            fact,
        }
    }

    fn bill(hour: i64, key: u64) -> PendingFact {
        at(
            hour,
            key,
            Fact::Bill {
                amount_fen: 9_900,
                due_day: 20_020,
            },
        )
    }

    /// Every order of `facts` pushed gives the same fully folded state.
    fn folded_in_every_order(facts: &[PendingFact]) -> SubscriberState {
        let mut table = SubscriberTable::default();
        let slot = table.slot(1);
        let mut reference: Option<SubscriberState> = None;
        let n = facts.len();
        for rotation in 0..n {
            for reverse in [false, true] {
                let mut order: Vec<PendingFact> = facts.to_vec();
                order.rotate_left(rotation);
                if reverse {
                    order.reverse();
                }
                let mut p = PendingFacts::default();
                for f in order {
                    p.push(slot, f);
                }
                let st = p.view(slot, table.get(slot), i64::MAX).unwrap();
                match &reference {
                    Some(r) => assert_eq!(&st, r),
                    None => reference = Some(st),
                }
            }
        }
        reference.unwrap()
    }

    #[test]
    fn the_later_contract_and_plan_win_in_any_order() {
        let st = folded_in_every_order(&[
            at(1, 7, Fact::Contract { end_day: 20_100 }),
            at(5, 3, Fact::Contract { end_day: 20_060 }),
            at(2, 9, Fact::Plan { fee_yuan: 58 }),
            at(3, 1, Fact::Plan { fee_yuan: 128 }),
        ]);
        assert_eq!(st.contract_end_day, 20_060);
        assert_eq!(st.plan_fee_yuan, 128);
    }

    #[test]
    fn a_payment_pays_the_latest_bill_before_it_whenever_it_arrives() {
        let st = folded_in_every_order(&[
            at(0, 1, Fact::Payment { amount_fen: 100 }),
            bill(2, 2),
            at(4, 3, Fact::Payment { amount_fen: 100 }),
            at(9, 4, Fact::Payment { amount_fen: 100 }),
        ]);
        assert_eq!(st.bill_paid_min, to_minute(1_773_000_000_000 + 4 * H));
        let unpaid =
            folded_in_every_order(&[at(1, 1, Fact::Payment { amount_fen: 100 }), bill(2, 2)]);
        assert_eq!(unpaid.bill_paid_min, NO_MINUTE, "paid before the bill");
        let same_time =
            folded_in_every_order(&[at(2, 1, Fact::Payment { amount_fen: 100 }), bill(2, 9)]);
        assert_ne!(same_time.bill_paid_min, NO_MINUTE, "paid as it was issued");
    }

    #[test]
    fn suspension_and_resumption_end_as_the_later_says() {
        let resumed = folded_in_every_order(&[at(1, 5, Fact::Suspended), at(2, 4, Fact::Resumed)]);
        assert!(!resumed.has(flag::SUSPENDED));
        let suspended =
            folded_in_every_order(&[at(2, 5, Fact::Suspended), at(1, 4, Fact::Resumed)]);
        assert!(suspended.has(flag::SUSPENDED));
    }

    #[test]
    fn settling_folds_judged_facts_at_once_and_routing_facts_later() {
        let mut table = SubscriberTable::default();
        let slot = table.slot(1);
        let mut p = PendingFacts::default();
        p.push(slot, bill(1, 1));
        p.push(slot, at(2, 2, Fact::Plan { fee_yuan: 88 }));
        p.push(slot, at(30, 3, Fact::Contract { end_day: 20_050 }));
        let cut = 1_773_000_000_000 + 10 * H;
        p.settle(&mut table, cut, cut - 9 * H, &mut Vec::new());
        assert_ne!(table.get(slot).bill_issued_min, NO_MINUTE);
        assert_eq!(
            table.get(slot).plan_fee_yuan,
            0,
            "routing facts wait longer"
        );
        assert_eq!(table.get(slot).contract_end_day, 0, "after the cut");
        assert_eq!(p.len(), 2);
        let v = p.view(slot, table.get(slot), cut).unwrap();
        assert_eq!((v.plan_fee_yuan, v.contract_end_day), (88, 0));
        assert!(p.view(slot, table.get(slot), cut - 9 * H).is_none());
        p.settle(&mut table, i64::MAX, i64::MAX, &mut Vec::new());
        assert!(p.is_empty());
        assert_eq!(table.get(slot).plan_fee_yuan, 88);
        assert_eq!(table.get(slot).contract_end_day, 20_050);
    }

    #[test]
    fn an_opt_out_is_found_in_its_window_only() {
        let mut p = PendingFacts::default();
        let dnd = Fact::Profile {
            do_not_disturb: true,
            key_person: false,
            activated_day: 0,
            seen_from: 0,
        };
        let f = at(5, 1, dnd);
        p.push(3, f);
        assert!(p.opted_out_between(3, f.time_ms, f.time_ms + H));
        assert!(!p.opted_out_between(3, f.time_ms + 1, f.time_ms + H));
        assert!(!p.opted_out_between(4, f.time_ms, f.time_ms));
    }
}
