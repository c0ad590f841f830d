//! Account events: bills, payments, suspensions, contracts, plans and profiles wait as
//! facts until no earlier record can arrive (see `facts`); overdue notices, top-ups,
//! number-retention suspensions, complaints and churn act on arrival.

use super::*;

impl Engine {
    /// A do-not-disturb request counts at once, even for tickets already sent.
    fn honour_opt_out(&mut self, slot: u32, at_ms: i64, out: &mut Vec<CareTicket>) {
        let ctx = Ctx {
            cfg: &self.cfg,
            cal: &self.cal,
            lateness_ms: self.clock.lateness_ms(),
        };
        self.policy
            .honour_opt_out(&ctx, slot, at_ms, &mut self.stats, out);
    }

    pub(super) fn apply_account(&mut self, a: &AccountEvent, day: Day, out: &mut Vec<CareTicket>) {
        let slot = self.subs.slot(a.subscriber.0);
        self.subs.touch(slot, day);
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
                self.honour_opt_out(slot, a.time_ms, out);
            }
        }
        let raised = self.judge_record(&rules::RecordInput::Account { event: a, day });
        for d in raised.into_iter().flatten() {
            self.raise_record(slot, d, out);
        }
        match a.kind {
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
            AccountKind::Payment { amount } => Fact::Payment {
                amount_fen: amount.clamp(0, i64::from(u32::MAX)) as u32,
            },
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
}
