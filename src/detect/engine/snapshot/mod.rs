//! Saving and restoring one partition's engine, so the adapter can keep a changelog and
//! continue exactly after a crash (the encodings and the design are in
//! [`crate::detect::snapshot`]).
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
use crate::detect::snapshot::{
    decode_record, encode_record, Put, Reader, RuleTable, SnapshotError, PARTITION_VERSION,
};

/// Version of a de-duplication id chunk ([`Engine::drain_ids`]): ids as they came, by
/// arrival period and event day.
pub const IDS_VERSION: u8 = 3;
/// Version of a de-duplication image chunk (a full checkpoint's [`Engine::drain_ids`]): the
/// fingerprint table itself, a slice at a time (the ids are not kept, see `dedup`), its
/// tags standing for arrival periods.
pub const IDS_IMAGE_VERSION: u8 = 4;
/// The id chunk of earlier builds, by event day only; still read, each day's ids taking
/// the arrival period of the day's end.
pub const IDS_BY_DAY: u8 = 1;
/// The image of earlier builds, its tags standing for event days; still read the same way.
pub const IDS_IMAGE_BY_DAY: u8 = 2;

/// Header of an image chunk: version, the four tags' periods, generation, buckets, first
/// slot.
const IMAGE_HEADER: usize = 1 + 4 * 4 + 1 + 4 + 4;
/// Smallest id chunk: an image header and one entry (an id chunk needs less).
const MIN_ID_CHUNK: usize = IMAGE_HEADER + 4;
/// A tag's period in an image chunk when the tag is free.
const NO_DAY: i32 = i32::MIN;

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

    /// De-duplication ids remembered since the last call, encoded in chunks of at most
    /// `max_chunk` bytes (at least 30): a version byte (3), then groups of (arrival period
    /// `i32`, event day `i32`, count `u32`, ids `u64`), all LE. When `all` (and on the first
    /// call) the whole table is written instead, as image chunks (version 4: the four tags'
    /// periods `i32`, generation `u8`, buckets `u32`, first slot `u32`, entries `u32`).
    pub fn drain_ids(&mut self, all: bool, max_chunk: usize, mut f: impl FnMut(&[u8])) {
        let forgotten = self.seen_ids.newest().saturating_sub(PERIODS as Arrival);
        let max_chunk = max_chunk.max(MIN_ID_CHUNK);
        let mut w = IdChunks::new(max_chunk);
        if all || !self.snap.track_ids {
            self.drain_image(max_chunk, &mut f);
        } else {
            let new = &mut self.snap.new_ids;
            new.sort_unstable();
            let runs = new.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1));
            for run in runs.filter(|r| r[0].0 > forgotten) {
                let ids = &mut run.iter().map(|x| x.2);
                w.group((run[0].0, run[0].1), run.len(), ids, &mut f);
            }
        }
        w.flush(&mut f);
        self.snap.new_ids.clear();
        self.snap.track_ids = true;
    }

    /// The rest of the engine, whole: watermark, rule marks, pending partial calls,
    /// complaint contacts, pending account facts and the policy's memory, subscribers by
    /// number, every part in ascending key order (the same engine gives the same bytes).
    /// Counters ([`EngineStats`]) are not saved.
    pub fn encode_partition(&self) -> Vec<u8> {
        let mut out = vec![PARTITION_VERSION];
        RuleTable::encode(&mut out);
        let (newest, closed, observed) = self.clock.parts();
        out.put_i64(newest);
        out.put_bool(closed.is_some());
        out.put_i32(closed.unwrap_or(0));
        out.put_i32(observed);
        self.put_marks(&mut out);
        self.put_partials(&mut out);
        self.put_contacts(&mut out);
        let number = |s: u32| self.subs.number(s);
        self.facts.encode(&mut out, number);
        self.policy.encode(&mut out, number);
        out
    }

    fn put_marks(&self, out: &mut Vec<u8>) {
        let mut marks: Vec<_> = self
            .marks
            .iter()
            .map(|(&(s, r), m)| ((self.subs.number(s), r), m))
            .collect();
        marks.sort_unstable_by_key(|(k, _)| *k);
        out.put_len(marks.len());
        for ((m, r), list) in marks {
            out.put_u64(m);
            out.put_u8(r as u8);
            out.put_len(list.len());
            for k in list {
                out.put_i64(k.episode);
                out.put_i64(k.raised_ms);
                out.put_u64(k.tie);
            }
        }
    }

    fn put_partials(&self, out: &mut Vec<u8>) {
        let mut partials: Vec<_> = self
            .partials
            .iter()
            .map(|(&(s, c), p)| ((self.subs.number(s), c), p))
            .collect();
        partials.sort_unstable_by_key(|(k, _)| *k);
        out.put_len(partials.len());
        for ((m, call_ref), p) in partials {
            out.put_u64(m);
            out.put_u64(call_ref);
            out.put_i64(p.start_ms);
            out.put_i64(p.end_ms);
            out.put_u32(p.total_s);
            out.put_bool(p.outgoing);
            out.put_u8(p.operator);
        }
    }

    fn put_contacts(&self, out: &mut Vec<u8>) {
        let mut contacts: Vec<_> = self
            .contacts
            .iter()
            .map(|(&s, l)| (self.subs.number(s), l))
            .collect();
        contacts.sort_unstable_by_key(|(m, _)| *m);
        out.put_len(contacts.len());
        for (m, list) in contacts {
            out.put_u64(m);
            out.put_len(list.len());
            for c in list {
                out.put_i32(c.day);
                out.put_bool(c.fault);
            }
        }
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

    /// The whole de-duplication table as image chunks of at most `max_chunk` bytes.
    fn drain_image(&self, max_chunk: usize, f: &mut impl FnMut(&[u8])) {
        let (days, gens) = self.seen_ids.generations();
        let per_chunk = (max_chunk - IMAGE_HEADER) / 4;
        let mut buf = Vec::with_capacity(max_chunk.min(1 << 20));
        for (gen, (buckets, entries)) in gens.into_iter().enumerate() {
            for (k, piece) in entries.chunks(per_chunk).enumerate() {
                buf.clear();
                buf.push(IDS_IMAGE_VERSION);
                for d in days {
                    buf.put_i32(d.unwrap_or(NO_DAY));
                }
                buf.put_u8(gen as u8);
                buf.put_u32(buckets);
                buf.put_u32((k * per_chunk) as u32);
                for &e in piece {
                    buf.put_u32(e);
                }
                f(&buf);
            }
        }
    }

    /// Adds the ids of one [`Engine::drain_ids`] chunk to those remembered (an image
    /// chunk's entries are put back where they were).
    pub fn restore_ids(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let by_day = match bytes.first() {
            Some(&IDS_IMAGE_VERSION) => return self.restore_image(bytes, IDS_IMAGE_VERSION),
            Some(&IDS_IMAGE_BY_DAY) => return self.restore_image(bytes, IDS_IMAGE_BY_DAY),
            Some(&IDS_BY_DAY) => true,
            _ => false,
        };
        let version = if by_day { IDS_BY_DAY } else { IDS_VERSION };
        let mut r = Reader::versioned(bytes, "de-duplication ids", version)?;
        while !r.is_empty() {
            let period = if by_day { None } else { Some(r.i32()?) };
            let day = r.i32()?;
            let period = period.unwrap_or_else(|| self.period_of_day(day));
            let n = r.count(8)?;
            self.seen_ids.reserve(n);
            for _ in 0..n {
                self.seen_ids.insert(period, day, r.u64()?);
            }
        }
        Ok(())
    }

    /// The arrival period an id of an earlier build, remembered by event `day`, is given:
    /// that of the day's end (its records arrived then or later).
    fn period_of_day(&self, day: Day) -> Arrival {
        self.dedup_period(self.cal.day_start_ms(day + 1) - 1)
    }

    fn restore_image(&mut self, bytes: &[u8], version: u8) -> Result<(), SnapshotError> {
        let mut r = Reader::versioned(bytes, "de-duplication image", version)?;
        let mut periods = [None; 4];
        for p in &mut periods {
            *p = Some(r.i32()?).filter(|&p| p != NO_DAY);
            if version == IDS_IMAGE_BY_DAY {
                *p = p.map(|day| self.period_of_day(day));
            }
        }
        let (gen, buckets, first) = (r.u8()?, r.u32()?, r.u32()? as usize);
        let entries = r.take(bytes.len() - IMAGE_HEADER)?;
        if entries.len() % 4 != 0 || buckets == 0 || buckets > 1 << 28 {
            return Err(r.malformed(format!("{buckets} buckets, {} bytes", entries.len())));
        }
        let entries = entries
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")));
        self.seen_ids
            .load(periods, usize::from(gen), buckets, first, entries);
        Ok(())
    }

    /// Restores an [`Engine::encode_partition`] blob, replacing the side state (before or
    /// after the subscribers). On an error the engine is only fit to be dropped.
    pub fn restore_partition(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let mut r = Reader::versioned(bytes, "partition", PARTITION_VERSION)?;
        let rules = RuleTable::decode(&mut r)?;
        let (newest, has_closed, closed, observed) = (r.i64()?, r.bool()?, r.i32()?, r.i32()?);
        self.clock
            .restore(newest, has_closed.then_some(closed), observed);
        self.read_marks(&mut r, &rules)?;
        self.read_partials(&mut r)?;
        self.read_contacts(&mut r)?;
        let subs = &mut self.subs;
        self.facts.decode(&mut r, |m| subs.slot(m))?;
        self.policy.decode(&mut r, &rules, |m| subs.slot(m))?;
        r.finish()?;
        self.snap.rules = Some(rules);
        Ok(())
    }

    fn read_marks(&mut self, r: &mut Reader<'_>, rules: &RuleTable) -> Result<(), SnapshotError> {
        self.marks.clear();
        for _ in 0..r.count(13)? {
            let slot = self.subs.slot(r.u64()?);
            let rule = rules.rule(r)?;
            let n = r.count(24)?;
            let mut list = Vec::with_capacity(n);
            for _ in 0..n {
                let (episode, raised_ms, tie) = (r.i64()?, r.i64()?, r.u64()?);
                list.push(Mark {
                    episode,
                    raised_ms,
                    tie,
                });
            }
            if let Some(rule) = rule {
                self.marks.insert((slot, rule), list);
            }
        }
        Ok(())
    }

    fn read_partials(&mut self, r: &mut Reader<'_>) -> Result<(), SnapshotError> {
        self.partials.clear();
        for _ in 0..r.count(38)? {
            let key = (self.subs.slot(r.u64()?), r.u64()?);
            let (start_ms, end_ms, total_s) = (r.i64()?, r.i64()?, r.u32()?);
            let (outgoing, operator) = (r.bool()?, r.u8()?);
            let p = PartialCall {
                start_ms,
                end_ms,
                total_s,
                outgoing,
                operator,
            };
            self.partials.insert(key, p);
        }
        Ok(())
    }

    fn read_contacts(&mut self, r: &mut Reader<'_>) -> Result<(), SnapshotError> {
        self.contacts.clear();
        for _ in 0..r.count(12)? {
            let slot = self.subs.slot(r.u64()?);
            let n = r.count(5)?;
            let mut list = Vec::with_capacity(n);
            for _ in 0..n {
                let (day, fault) = (r.i32()?, r.bool()?);
                list.push(Contact { day, fault });
            }
            self.contacts.insert(slot, list);
        }
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

/// Id chunks being written: each at most `max` bytes.
struct IdChunks {
    max: usize,
    buf: Vec<u8>,
}

impl IdChunks {
    fn new(max: usize) -> IdChunks {
        IdChunks {
            max,
            buf: Vec::with_capacity(max.min(1 << 20)),
        }
    }

    /// Writes the `n` ids of `day`, in as many groups (and chunks) as they need.
    fn group(
        &mut self,
        (period, day): (Arrival, Day),
        mut n: usize,
        ids: &mut impl Iterator<Item = u64>,
        f: &mut impl FnMut(&[u8]),
    ) {
        while n > 0 {
            if self.buf.is_empty() {
                self.buf.push(IDS_VERSION);
            }
            let room = self.max.saturating_sub(self.buf.len() + 12) / 8;
            if room == 0 {
                self.flush(f);
                continue;
            }
            let k = room.min(n);
            self.buf.put_i32(period);
            self.buf.put_i32(day);
            self.buf.put_len(k);
            for id in ids.by_ref().take(k) {
                self.buf.put_u64(id);
            }
            n -= k;
        }
    }

    fn flush(&mut self, f: &mut impl FnMut(&[u8])) {
        if self.buf.len() > 1 {
            f(&self.buf);
        }
        self.buf.clear();
    }
}

#[cfg(test)]
mod tests;
