//! Call-detail records: usage folded into the day's counters, and the record rules a call
//! or a forwarding leg can fire (a competitor's care line, with partial records joined by
//! call reference; forwarding streaks and registrations to another operator).

use super::*;

impl Engine {
    pub(super) fn apply_cdr(&mut self, c: &Cdr<'_>, day: Day, out: &mut Vec<CareTicket>) {
        let slot = self.subs.slot(c.subscriber.0);
        self.subs.touch(slot, day);
        let st = self.subs.get_mut(slot);
        st.note_seen(day);
        st.add_charge(day, c.charge);
        if c.roaming {
            st.add_roaming(day);
        }
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
                let forward_run = st.forward_run(day, reach);
                self.cdr_rules(slot, c, day, None, forward_run, out);
            }
            CdrKind::ForwardRegistration => {
                let Party::Mobile(op) = self.plan.classify(c.other_party).party else {
                    return;
                };
                if self.plan.is_competitor(op) {
                    let name = self.plan.operator_name(op).to_string();
                    self.cdr_rules(slot, c, day, Some(&name), None, out);
                }
            }
        }
    }

    /// Runs the record rules over a CDR with what the engine resolved about it.
    fn cdr_rules(
        &mut self,
        slot: u32,
        cdr: &Cdr<'_>,
        day: Day,
        competitor: Option<&str>,
        forward_run: Option<(Day, Day)>,
        out: &mut Vec<CareTicket>,
    ) {
        let raised = self.judge_record(&rules::RecordInput::Cdr {
            cdr,
            day,
            competitor,
            forward_run,
            cal: &self.cal,
        });
        for d in raised.into_iter().flatten() {
            self.raise_record(slot, d, out);
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
    pub(super) fn finalize_partials(&mut self, watermark: i64, out: &mut Vec<CareTicket>) {
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
}
