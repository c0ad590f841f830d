//! Eviction at day close (the rule is [`crate::detect::eviction`]): the close loop collects
//! the subscribers due, then their slots are freed and every side table drops their
//! entries, since a freed slot is soon another subscriber's. Evicted numbers are kept for
//! the next checkpoint's tombstones once someone checkpoints (see `snapshot`).

use super::*;
use crate::detect::eviction::{self, Reason};

impl Engine {
    /// Why `slot` leaves once `day` closes, if it does.
    pub(super) fn eviction_due(&self, slot: u32, day: Day) -> Option<Reason> {
        let h = self.cfg.engine.eviction();
        eviction::due(h, self.subs.get(slot), self.subs.last_seen(slot), day)
    }

    /// Frees the slots collected in `evicting` and drops what side tables hold for them;
    /// with `tombstones`, their numbers are kept for the next checkpoint.
    pub(super) fn evict_collected(&mut self, tombstones: bool) {
        if self.evicting.is_empty() {
            return;
        }
        self.evicting.sort_unstable();
        let gone = &self.evicting;
        let is_gone = |s: u32| gone.binary_search(&s).is_ok();
        self.marks.retain(|&(s, _), _| !is_gone(s));
        self.partials.retain(|&(s, _), _| !is_gone(s));
        self.contacts.retain(|&s, _| !is_gone(s));
        self.facts.forget(is_gone);
        self.policy.forget(is_gone);
        for &slot in gone {
            if tombstones {
                let mut last = self.subs.last_ticket(slot);
                self.quality.evicted(&mut last, &mut self.stats.quality);
            }
            let number = self.subs.evict(slot);
            if tombstones && self.snap.track_evicted {
                self.snap.evicted.push(number);
            }
        }
        self.evicting.clear();
        self.stats.subscribers = self.subs.len();
    }

    /// Notes that `slot` leaves at the end of this day close, for `reason`.
    pub(super) fn collect_eviction(&mut self, slot: u32, reason: Reason) {
        bump(&mut self.stats.evicted, reason.as_str());
        self.evicting.push(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::event::{ChurnKind, RecordKey};

    /// 2026-03-01 00:00 in Asia/Shanghai.
    const T0: i64 = 1_772_294_400_000;
    const DAY: i64 = 86_400_000;
    const KEEP: u64 = 8613000000001;
    const GONE: u64 = 8613000000002;

    fn sms(id: u64, sub: u64, t: i64) -> Event<'static> {
        Event::Cdr(Cdr {
            id: RecordKey(id),
            subscriber: Msisdn(sub),
            time_ms: t,
            kind: CdrKind::SmsOut,
            other_party: "13012340001",
            duration_s: 0,
            data_bytes: 0,
            charge: 10,
            call_ref: 0,
            partial: false,
            roaming: false,
        })
    }

    /// An engine where GONE has one record on day 0 and KEEP one every day up to `days`
    /// (days through `days - 3` are then closed: 48 hours of lateness).
    fn run(days: i64, extra: &[Event<'static>]) -> Engine {
        run_with(
            DetectConfig::default(),
            sms(1, GONE, T0 + 3_600_000),
            days,
            extra,
        )
    }

    /// [`run`] with `cfg` (idle eviction at 63 days) and `first` as GONE's record.
    fn run_with(
        mut cfg: DetectConfig,
        first: Event<'static>,
        days: i64,
        extra: &[Event<'static>],
    ) -> Engine {
        cfg.engine.idle_eviction_days = 63;
        let mut e = Engine::new(&cfg, &[]).unwrap();
        let mut out = Vec::new();
        e.apply(&first, &mut out);
        for d in 0..=days {
            e.apply(
                &sms(100 + d as u64, KEEP, T0 + d * DAY + 7_200_000),
                &mut out,
            );
            for ev in extra
                .iter()
                .filter(|ev| ev.time_ms() / DAY == (T0 + d * DAY) / DAY)
            {
                e.apply(ev, &mut out);
            }
        }
        e
    }

    #[test]
    fn idle_subscribers_leave_when_the_horizon_day_closes() {
        let e = run(63 + 2, &[]);
        let day0 = e.cal.day_of(T0);
        assert_eq!(e.clock.closed_through(), Some(day0 + 62));
        assert!(
            e.subscriber(Msisdn(GONE)).is_some(),
            "62 closed days without a record"
        );
        let e = run(63 + 3, &[]);
        assert_eq!(e.clock.closed_through(), Some(day0 + 63));
        assert!(
            e.subscriber(Msisdn(GONE)).is_none(),
            "63 closed days without a record"
        );
        assert_eq!(e.stats().evicted.get("idle"), Some(&1));
        assert!(e.subscriber(Msisdn(KEEP)).is_some());
        assert_eq!(e.stats().subscribers, 1);
    }

    #[test]
    fn churned_subscribers_leave_after_their_grace() {
        let churn = Event::Account(AccountEvent {
            id: RecordKey(9),
            subscriber: Msisdn(GONE),
            time_ms: T0 + 3 * DAY,
            kind: AccountKind::Churned {
                kind: ChurnKind::Deactivated,
            },
        });
        let e = run(3 + 6 + 3, std::slice::from_ref(&churn));
        assert!(
            e.subscriber(Msisdn(GONE)).is_some(),
            "6 days after the churn day"
        );
        let e = run(3 + 7 + 3, std::slice::from_ref(&churn));
        assert!(e.subscriber(Msisdn(GONE)).is_none(), "7 days after");
        assert_eq!(e.stats().evicted.get("churned"), Some(&1));
    }

    #[test]
    fn an_evicted_subscribers_unsettled_ticket_is_a_false_alarm_and_its_memory_freed() {
        let mut care = sms(1, GONE, T0 + 3_600_000);
        if let Event::Cdr(c) = &mut care {
            (c.kind, c.other_party, c.duration_s) = (CdrKind::VoiceOut, "10086", 300);
        }
        let mut cfg = DetectConfig::default();
        cfg.quality.horizon_days = 30;
        let e = run_with(cfg.clone(), care, 30 + 3, &[]);
        let q = &e.stats().quality;
        assert_eq!(q.ticketed, [1, 0], "the care call tickets GONE");
        assert_eq!(
            q.false_alarms.iter().sum::<u64>(),
            1,
            "30 days: a false alarm"
        );
        cfg.quality.horizon_days = 365;
        let e = run_with(cfg.clone(), care, 62 + 3, &[]);
        let slot = e.subs.find(GONE).unwrap();
        assert!(e.subs.last_ticket(slot).is_some());
        assert_eq!(e.stats().quality.false_alarms.iter().sum::<u64>(), 0);
        let e = run_with(cfg, care, 63 + 3, &[]);
        assert!(e.subscriber(Msisdn(GONE)).is_none());
        let q = &e.stats().quality;
        assert_eq!(q.false_alarms.iter().sum::<u64>(), 1, "settled on eviction");
        assert!((0..e.subs.slots()).all(|s| !e.subs.last_ticket(s).is_some() || e.subs.is_live(s)));
    }
}
