//! Saving and restoring one partition's engine, so the adapter can keep a changelog and
//! continue exactly after a crash. This is the engine's side: tracking what changed since
//! the last checkpoint, gathering each part from the engine's tables and putting restored
//! parts back in place. Every encoding, and the design, is in [`crate::detect::snapshot`].
//!
//! At each checkpoint the adapter writes, in one batch:
//! - [`Engine::drain_evicted`]: a tombstone per subscriber evicted since the last one
//!   (first, so a number evicted and seen again ends with its new record);
//! - [`Engine::drain_changed`]: a record per subscriber whose state (or last ticket, for
//!   the quality figures) may have changed
//!   (a bit per slot, set by the table on every mutable access: one bit set on the hot path,
//!   no allocation), keyed by number. A day close touches every state, so the checkpoint
//!   after one rewrites every subscriber;
//! - [`Engine::encode_partition`]: everything else, whole (it is small and short-lived:
//!   pending partial calls, facts and contacts of a few days, marks and policy memory of
//!   a few weeks). So changes to it need no per-subscriber tracking;
//! - [`Engine::drain_ids`]: de-duplication ids remembered since the last checkpoint.
//!
//! A restore feeds the latest of each into an engine fresh from [`Engine::new`] (same
//! config), [`Engine::forget_subscriber`] for each tombstone, and calls
//! [`Engine::restore_finish`]. Subscriber records carry their slot, so the table is rebuilt
//! in the same order, the slots of evicted subscribers free between them, and day closes
//! emit tickets in the same order; side state names subscribers by number and is mapped to
//! the restored slots.

use super::*;
use crate::detect::dedup::{Arrival, PERIODS};
use crate::detect::snapshot::ids::{self, Chunk, Image};
use crate::detect::snapshot::partition;
use crate::detect::snapshot::{decode_record, encode_record, RuleTable, SnapshotError};

/// Change tracking for checkpoints, and what a restore still has to put in place.
#[derive(Debug, Default)]
pub(super) struct Tracking {
    /// De-duplication ids inserted since the last [`Engine::drain_ids`]; kept only once a
    /// drain has happened (an engine nobody checkpoints keeps nothing).
    pub(super) new_ids: Vec<(Arrival, Day, u64)>,
    pub(super) track_ids: bool,
    /// One record's bytes, reused for every subscriber.
    buf: Vec<u8>,
    /// While restoring: each slot's table order from its record (`u32::MAX`: none yet).
    orders: Vec<u32>,
    /// The rule table of the restored partition blob: last tickets' rule masks are
    /// translated by it once every record is in (`None`: nothing to translate).
    rules: Option<RuleTable>,
    /// Numbers evicted since the last [`Engine::drain_evicted`]; kept only once a drain
    /// or a restore has happened (numbers never checkpointed need no tombstone).
    pub(super) evicted: Vec<u64>,
    pub(super) track_evicted: bool,
}

impl Engine {
    /// Calls `f(msisdn, record)` for every subscriber whose state changed since the last
    /// call (every subscriber when `all`), in slot order, then forgets the changes. One
    /// buffer is reused for every record.
    pub fn drain_changed(&mut self, all: bool, mut f: impl FnMut(u64, &[u8])) {
        let buf = &mut self.snap.buf;
        self.subs.drain_changed(all, |slot, msisdn, st, last| {
            buf.clear();
            encode_record(st, slot, last, buf);
            f(msisdn, buf);
        });
    }

    /// Calls `f(msisdn)` for every subscriber evicted since the last call, for a tombstone
    /// (the number with no value), then forgets them. Call it before
    /// [`Engine::drain_changed`]: a number evicted and seen again since is then rewritten
    /// after its tombstone.
    pub fn drain_evicted(&mut self, mut f: impl FnMut(u64)) {
        for m in self.snap.evicted.drain(..) {
            f(m);
        }
        self.snap.track_evicted = true;
    }

    /// Restores a tombstone: the subscriber is absent (forgotten if an earlier record
    /// restored it).
    pub fn forget_subscriber(&mut self, msisdn: u64) {
        let Some(slot) = self.subs.find(msisdn) else {
            return;
        };
        if let Some(o) = self.snap.orders.get_mut(slot as usize) {
            *o = u32::MAX;
        }
        self.evicting.push(slot);
        self.evict_collected(false);
    }

    /// De-duplication ids remembered since the last call, as id chunks of at most
    /// `max_chunk` bytes (at least 30). When `all` (and on the first call) the whole table
    /// is written instead, as image chunks (both laid out in `detect::snapshot::ids`).
    pub fn drain_ids(&mut self, all: bool, max_chunk: usize, mut f: impl FnMut(&[u8])) {
        if all || !self.snap.track_ids {
            ids::encode_image(self.seen_ids.generations(), max_chunk, &mut f);
        } else {
            let forgotten = self.seen_ids.newest().saturating_sub(PERIODS as Arrival);
            self.snap.new_ids.retain(|x| x.0 > forgotten);
            ids::encode_ids(&mut self.snap.new_ids, max_chunk, &mut f);
        }
        self.snap.new_ids.clear();
        self.snap.track_ids = true;
    }

    /// The rest of the engine, whole: watermark, rule marks, pending partial calls,
    /// complaint contacts, pending account facts and the policy's memory, subscribers by
    /// number, every part in ascending key order (the same engine gives the same bytes).
    /// Counters ([`EngineStats`]) are not saved.
    pub fn encode_partition(&self) -> Vec<u8> {
        let number = |s: u32| self.subs.number(s);
        let mut out = partition::encode_head(self.clock.parts());
        let marks = self
            .marks
            .iter()
            .map(|(&(s, r), m)| ((number(s), r), m.as_slice()));
        partition::put_marks(&mut out, marks.collect());
        let partials = self.partials.iter().map(|(&(s, c), p)| ((number(s), c), p));
        partition::put_partials(&mut out, partials.collect());
        let contacts = self
            .contacts
            .iter()
            .map(|(&s, l)| (number(s), l.as_slice()));
        partition::put_contacts(&mut out, contacts.collect());
        self.facts.encode(&mut out, number);
        self.policy.encode(&mut out, number);
        out
    }

    /// Restores one subscriber record of [`Engine::drain_changed`]; a later record for the
    /// same number overwrites an earlier one (changelog order).
    pub fn restore_subscriber(&mut self, msisdn: u64, bytes: &[u8]) -> Result<(), SnapshotError> {
        let (state, order, last) = decode_record(bytes)?;
        let slot = self.subs.slot(msisdn);
        self.subs.restore(slot, state, last);
        let orders = &mut self.snap.orders;
        if orders.len() <= slot as usize {
            orders.resize(slot as usize + 1, u32::MAX);
        }
        orders[slot as usize] = order;
        Ok(())
    }

    /// Adds the ids of one [`Engine::drain_ids`] chunk to those remembered (an image
    /// chunk's entries are put back where they were).
    pub fn restore_ids(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let groups = match ids::decode(bytes)? {
            Chunk::Image(image) => {
                self.restore_image(image);
                return Ok(());
            }
            Chunk::Ids(groups) => groups,
        };
        for group in groups {
            let (period, day, ids) = group?;
            let period = period.unwrap_or_else(|| self.period_of_day(day));
            self.seen_ids.reserve(ids.len());
            for id in ids {
                self.seen_ids.insert(period, day, id);
            }
        }
        Ok(())
    }

    /// The arrival period an id of an earlier build, remembered by event `day`, is given:
    /// that of the day's end (its records arrived then or later).
    fn period_of_day(&self, day: Day) -> Arrival {
        self.dedup_period(self.cal.day_start_ms(day + 1) - 1)
    }

    fn restore_image(&mut self, image: Image<'_>) {
        let by_day = image.by_day;
        let period = |t: i32| if by_day { self.period_of_day(t) } else { t };
        let periods = image.tags.map(|t| t.map(period));
        let gen = usize::from(image.gen);
        self.seen_ids
            .load(periods, gen, image.buckets, image.first, image.entries());
    }

    /// Restores an [`Engine::encode_partition`] blob, replacing the side state (before or
    /// after the subscribers). On an error the engine is only fit to be dropped.
    pub fn restore_partition(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let (mut r, rules, clock, version) = partition::decode_head(bytes)?;
        self.clock.restore(clock);
        let (subs, marks) = (&mut self.subs, &mut self.marks);
        marks.clear();
        partition::read_marks(&mut r, &rules, |m, rule, list| {
            let slot = subs.slot(m);
            if let Some(rule) = rule {
                marks.insert((slot, rule), list);
            }
        })?;
        let partials = &mut self.partials;
        partials.clear();
        partition::read_partials(&mut r, |(m, c), p| {
            partials.insert((subs.slot(m), c), p);
        })?;
        let contacts = &mut self.contacts;
        contacts.clear();
        partition::read_contacts(&mut r, |m, list| {
            contacts.insert(subs.slot(m), list);
        })?;
        self.facts.decode(&mut r, |m| subs.slot(m))?;
        let followed = version >= 2;
        self.policy
            .decode(&mut r, &rules, followed, |m| subs.slot(m))?;
        r.finish()?;
        self.snap.rules = Some(rules);
        Ok(())
    }

    /// After the last `restore_*`: rebuilds the table in the records' order (mapping the
    /// side state to the new slots), drops ids of days already closed and recomputes what
    /// is derived. Leaves nothing marked as changed, unless the records' orders had gaps
    /// or clashes (a log from an interrupted checkpoint): then the table is renumbered and
    /// every subscriber is marked, so the next checkpoint rewrites them consistently.
    pub fn restore_finish(&mut self) {
        let mut orders = std::mem::take(&mut self.snap.orders);
        let mut renumbered = false;
        if !orders.is_empty() {
            orders.resize(self.subs.slots() as usize, u32::MAX);
            let layout = self.subs.reorder(&orders);
            if let Some(new_of) = &layout.new_of {
                self.remap_slots(new_of);
            }
            renumbered = !layout.exact;
        }
        self.subs.mark_all(renumbered);
        self.partials_min_end = self
            .partials
            .values()
            .map(|p| p.end_ms)
            .min()
            .unwrap_or(i64::MAX);
        self.stats.subscribers = self.subs.len();
        self.stats.dedup_ids_dropped = self.seen_ids.dropped();
        self.snap.new_ids.clear();
        self.snap.track_ids = true;
        self.snap.track_evicted = true;
        self.rebuild_last_seen();
        self.translate_last_tickets();
    }

    /// Last tickets' rule masks as this build numbers rules. Records carry masks in the
    /// codes of the build that wrote them, which the partition blob's rule table names (a
    /// record is rewritten, with the blob, by every checkpoint after a change to it).
    fn translate_last_tickets(&mut self) {
        let Some(rules) = self.snap.rules.take() else {
            return;
        };
        for slot in 0..self.subs.slots() {
            let last = self.subs.last_ticket(slot);
            let mask = rules.mask(last.mask());
            if self.subs.is_live(slot) && mask != last.mask() {
                *self.subs.last_ticket_mut(slot) = last.with_mask(mask);
            }
        }
    }

    /// Last-seen days from the restored states (see [`crate::detect::eviction::last_trace`]).
    fn rebuild_last_seen(&mut self) {
        let newest_day = self.clock.newest_ms().map(|t| self.cal.day_of(t));
        let Some(closed) = self.clock.closed_through().or(newest_day) else {
            return;
        };
        let cal = &self.cal;
        let day_of_minute = |m: u32| cal.day_of(crate::detect::state::from_minute(m));
        for slot in 0..self.subs.slots() {
            if self.subs.is_live(slot) {
                let st = self.subs.get(slot);
                let day = crate::detect::eviction::last_trace(st, closed, day_of_minute);
                self.subs.set_last_seen(slot, day);
            }
        }
    }

    /// Moves every side table's entries to their subscriber's new slot.
    fn remap_slots(&mut self, new_of: &[u32]) {
        let to = |s: u32| new_of[s as usize];
        self.marks = std::mem::take(&mut self.marks)
            .into_iter()
            .map(|((s, r), m)| ((to(s), r), m))
            .collect();
        self.partials = std::mem::take(&mut self.partials)
            .into_iter()
            .map(|((s, c), p)| ((to(s), c), p))
            .collect();
        self.contacts = std::mem::take(&mut self.contacts)
            .into_iter()
            .map(|(s, l)| (to(s), l))
            .collect();
        self.facts.remap(new_of);
        self.policy.remap(new_of);
    }
}

#[cfg(test)]
mod tests;
