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
