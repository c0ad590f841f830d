//! Saving and restoring one partition's engine, so the adapter can keep a changelog and
//! continue exactly after a crash (the encodings and the design are in
//! [`crate::detect::snapshot`]).
//!
//! At each checkpoint the adapter writes, in one batch:
//! - [`Engine::drain_changed`]: a record per subscriber whose state may have changed
//!   (a bit per slot, set by the table on every mutable access: one bit set on the hot path,
//!   no allocation), keyed by number. A day close touches every state, so the checkpoint
//!   after one rewrites every subscriber;
//! - [`Engine::encode_partition`]: everything else, whole (it is small and short-lived:
//!   pending partial calls, facts and contacts of a few days, marks and policy memory of
//!   a few weeks). So changes to it need no per-subscriber tracking;
//! - [`Engine::drain_ids`]: de-duplication ids remembered since the last checkpoint.
//!
//! A restore feeds the latest of each into an engine fresh from [`Engine::new`] (same
//! config) and calls [`Engine::restore_finish`]. Subscriber records carry their slot, so the
//! table is rebuilt in the same order and day closes emit tickets in the same order;
//! side state names subscribers by number and is mapped to the restored slots.

use super::*;
use crate::detect::snapshot::{
    decode_record, encode_record, Put, Reader, RuleTable, SnapshotError, IDS_VERSION,
    PARTITION_VERSION,
};

/// Smallest id chunk: the version byte, one group header and one id.
const MIN_ID_CHUNK: usize = 1 + 8 + 8;

/// Change tracking for checkpoints, and what a restore still has to put in place.
#[derive(Debug, Default)]
pub(super) struct Tracking {
    /// De-duplication ids inserted since the last [`Engine::drain_ids`]; kept only once a
    /// drain has happened (an engine nobody checkpoints keeps nothing).
    pub(super) new_ids: Vec<(Day, u64)>,
    pub(super) track_ids: bool,
    /// One record's bytes, reused for every subscriber.
    buf: Vec<u8>,
    /// While restoring: each slot's table order from its record (`u32::MAX`: none yet).
    orders: Vec<u32>,
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
        self.subs.drain_changed(all, |slot, msisdn, st| {
            buf.clear();
            encode_record(st, slot, buf);
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

    /// De-duplication ids remembered since the last call (every id still kept when `all`,
    /// and on the first call), encoded in chunks of at most `max_chunk` bytes (at least
    /// 17): a version byte, then groups of (day `i32`, count `u32`, ids `u64`), all LE.
    pub fn drain_ids(&mut self, all: bool, max_chunk: usize, mut f: impl FnMut(&[u8])) {
        let closed = self.clock.closed_through().unwrap_or(Day::MIN);
        let mut w = IdChunks::new(max_chunk.max(MIN_ID_CHUNK));
        if all || !self.snap.track_ids {
            for (d, ids) in self
                .seen_ids
                .days()
                .into_iter()
                .filter(|&(d, _)| d > closed)
            {
                w.group(d, ids.len(), &mut ids.iter().copied(), &mut f);
            }
        } else {
            let new = &mut self.snap.new_ids;
            new.sort_unstable();
            for run in new.chunk_by(|a, b| a.0 == b.0).filter(|r| r[0].0 > closed) {
                w.group(run[0].0, run.len(), &mut run.iter().map(|x| x.1), &mut f);
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
        let (state, order) = decode_record(bytes)?;
        let slot = self.subs.slot(msisdn);
        self.subs.restore(slot, state);
        let orders = &mut self.snap.orders;
        if orders.len() <= slot as usize {
            orders.resize(slot as usize + 1, u32::MAX);
        }
        orders[slot as usize] = order;
        Ok(())
    }

    /// Adds the ids of one [`Engine::drain_ids`] chunk to those remembered.
    pub fn restore_ids(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let mut r = Reader::versioned(bytes, "de-duplication ids", IDS_VERSION)?;
        while !r.is_empty() {
            let day = r.i32()?;
            let n = r.count(8)?;
            self.seen_ids.reserve(day, n);
            for _ in 0..n {
                self.seen_ids.insert(day, r.u64()?);
            }
        }
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
        r.finish()
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
        if let Some(closed) = self.clock.closed_through() {
            self.seen_ids.forget_through(closed);
        }
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
        day: Day,
        mut n: usize,
        ids: &mut impl Iterator<Item = u64>,
        f: &mut impl FnMut(&[u8]),
    ) {
        while n > 0 {
            if self.buf.is_empty() {
                self.buf.push(IDS_VERSION);
            }
            let room = self.max.saturating_sub(self.buf.len() + 8) / 8;
            if room == 0 {
                self.flush(f);
                continue;
            }
            let k = room.min(n);
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
mod tests {
    use super::*;
    use crate::detect::config::Cell;
    use crate::detect::event::{ChurnKind, RecordKey, TicketOutcomeEvent};
    use crate::detect::snapshot::STATE_LEN;
    use crate::detect::OutcomeKind;

    const T0: i64 = 1_773_000_000_000;
    const H: i64 = 3_600_000;
    const SUB: u64 = 8613012345678;

    fn config() -> DetectConfig {
        let mut cfg = DetectConfig::default();
        cfg.routing
            .matrix
            .insert("star_1".into(), [Cell::P3, Cell::P4, Cell::P4]);
        cfg
    }

    fn cdr(n: u64, sub: u64, t: i64, kind: CdrKind, other: &'static str) -> Event<'static> {
        Event::Cdr(Cdr {
            id: RecordKey(n),
            subscriber: Msisdn(sub),
            time_ms: t,
            kind,
            other_party: other,
            duration_s: 300,
            data_bytes: 0,
            charge: 120,
            call_ref: 0,
            partial: false,
        })
    }

    fn account(n: u64, sub: u64, t: i64, kind: AccountKind) -> Event<'static> {
        Event::Account(AccountEvent {
            id: RecordKey(n),
            subscriber: Msisdn(sub),
            time_ms: t,
            kind,
        })
    }

    /// An engine with something in every side table: rule marks and routed tickets, a
    /// partial call, contacts, pending facts, a retained outcome and de-duplication ids.
    fn busy_engine() -> Engine {
        let mut e = Engine::new(&config(), &[]).unwrap();
        let mut out = Vec::new();
        let mut n = 0;
        let mut id = || {
            n += 1;
            n
        };
        for d in 0..12i64 {
            for s in 0..5u64 {
                let t = T0 + d * 24 * H + (s as i64) * H;
                e.apply(
                    &cdr(id(), SUB + s, t, CdrKind::VoiceOut, "13012340001"),
                    &mut out,
                );
                if d >= 4 && s % 2 == 0 {
                    e.apply(
                        &cdr(id(), SUB + s, t + H, CdrKind::Forward, "13812345678"),
                        &mut out,
                    );
                }
            }
        }
        let t = T0 + 11 * 24 * H + 20 * H;
        let mut part = cdr(id(), SUB + 1, t, CdrKind::VoiceOut, "10086");
        if let Event::Cdr(c) = &mut part {
            (c.partial, c.call_ref) = (true, 77);
        }
        e.apply(&part, &mut out);
        e.apply(&cdr(id(), SUB + 3, t, CdrKind::VoiceOut, "10086"), &mut out);
        for (s, kind) in [
            (0, AccountKind::Complaint),
            (0, AccountKind::FaultReport),
            (1, AccountKind::PlanChanged { monthly_fee: 8_800 }),
            (2, AccountKind::Payment { amount: 500 }),
            (
                4,
                AccountKind::ProfileUpdated {
                    do_not_disturb: true,
                    key_person: true,
                    activated_time_ms: T0 - 400 * 24 * H,
                },
            ),
            (
                4,
                AccountKind::Churned {
                    kind: ChurnKind::PortOut,
                },
            ),
        ] {
            e.apply(&account(id(), SUB + s, t + H, kind), &mut out);
        }
        assert!(!out.is_empty(), "the fixture raises tickets");
        let outcome = TicketOutcomeEvent {
            ticket_id: &out[0].ticket_id,
            subscriber: Msisdn(SUB),
            time_ms: t,
            outcome: OutcomeKind::Retained,
        };
        e.apply_outcome(&outcome);
        e
    }

    /// Restores `e`'s full snapshot into a fresh engine, subscribers in reverse slot order.
    fn restored(e: &mut Engine, max_chunk: usize) -> Engine {
        let mut records = Vec::new();
        e.drain_changed(true, |m, b| records.push((m, b.to_vec())));
        let mut chunks = Vec::new();
        e.drain_ids(true, max_chunk, |b| chunks.push(b.to_vec()));
        let blob = e.encode_partition();
        let mut r = Engine::new(&config(), &[]).unwrap();
        r.restore_partition(&blob).unwrap();
        for (m, b) in records.iter().rev() {
            r.restore_subscriber(*m, b).unwrap();
        }
        for c in &chunks {
            assert!(c.len() <= max_chunk.max(MIN_ID_CHUNK));
            r.restore_ids(c).unwrap();
        }
        r.restore_finish();
        r
    }

    #[test]
    fn a_restored_engine_encodes_to_the_same_bytes() {
        let mut e = busy_engine();
        assert!(!e.partials.is_empty() && !e.contacts.is_empty() && !e.facts.is_empty());
        assert!(!e.marks.is_empty());
        let mut r = restored(&mut e, 100);
        assert_eq!(r.encode_partition(), e.encode_partition());
        assert_eq!(r.seen_ids, e.seen_ids);
        assert_eq!(r.partials_min_end, e.partials_min_end);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        e.drain_changed(true, |m, x| a.push((m, x.to_vec())));
        r.drain_changed(true, |m, x| b.push((m, x.to_vec())));
        assert_eq!(a, b, "same subscribers in the same slots");
        let mut nothing = 0;
        r.restore_finish();
        r.drain_changed(false, |_, _| nothing += 1);
        assert_eq!(nothing, 0, "a restore leaves nothing changed");
    }

    #[test]
    fn only_changed_subscribers_and_new_ids_are_drained() {
        let mut e = busy_engine();
        e.drain_changed(false, |_, _| {});
        e.drain_ids(false, 4096, |_| {});
        let mut out = Vec::new();
        let t = e.newest_event_ms().unwrap();
        e.apply(
            &cdr(9_001, SUB + 2, t, CdrKind::SmsOut, "13012340001"),
            &mut out,
        );
        e.apply(
            &cdr(9_002, SUB + 2, t, CdrKind::SmsIn, "13012340001"),
            &mut out,
        );
        let mut changed = Vec::new();
        e.drain_changed(false, |m, _| changed.push(m));
        assert_eq!(changed, vec![SUB + 2]);
        let mut chunks = Vec::new();
        e.drain_ids(false, 4096, |b| chunks.push(b.to_vec()));
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].len(), 1 + 8 + 2 * 8, "one group of two ids");
        e.drain_ids(false, 4096, |_| panic!("nothing new"));
    }

    #[test]
    fn unknown_versions_and_truncations_are_errors() {
        let e = busy_engine();
        let blob = e.encode_partition();
        let mut r = Engine::new(&config(), &[]).unwrap();
        for n in 0..blob.len() {
            assert!(
                r.restore_partition(&blob[..n]).is_err(),
                "{n} of {}",
                blob.len()
            );
        }
        let mut bad = blob.clone();
        bad[0] = 2;
        let err = r.restore_partition(&bad).unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown partition encoding version 2 (this build reads version 1)"
        );
        let err = r.restore_ids(&[7, 0, 0]).unwrap_err().to_string();
        assert!(err.contains("ids encoding version 7"), "{err}");
        assert!(r
            .restore_ids(&[IDS_VERSION, 1, 0, 0, 0, 5, 0, 0, 0, 1])
            .is_err());
        assert!(r.restore_subscriber(SUB, &[1, 2, 3]).is_err());
    }

    #[test]
    fn a_log_with_clashes_is_renumbered_and_rewritten_whole() {
        let mut e = busy_engine();
        let mut records = Vec::new();
        e.drain_changed(true, |m, b| records.push((m, b.to_vec())));
        let mut r = Engine::new(&config(), &[]).unwrap();
        // The first subscriber's record is missing; the second's comes twice, the later
        // (a changed state) winning; the third claims the second's slot.
        let (second, mut newer) = records[1].clone();
        newer[1] ^= 0xff;
        let (third, mut clash) = records[2].clone();
        clash[STATE_LEN..].copy_from_slice(&1u32.to_le_bytes());
        for (m, b) in records.iter().skip(1).chain([&(second, newer.clone())]) {
            r.restore_subscriber(*m, b).unwrap();
        }
        r.restore_subscriber(third, &clash).unwrap();
        r.restore_finish();
        let mut again = Vec::new();
        r.drain_changed(false, |m, b| again.push((m, b.to_vec())));
        assert_eq!(again.len(), records.len() - 1, "every subscriber rewritten");
        assert_eq!(again[0].0, second, "table order kept, packed");
        assert_eq!(&again[0].1[..STATE_LEN], &newer[..STATE_LEN]);
        assert_eq!(&again[0].1[STATE_LEN..], &[0, 0, 0, 0]);
    }

    #[test]
    fn a_gap_in_the_log_is_a_free_slot() {
        let mut e = busy_engine();
        let mut records = Vec::new();
        e.drain_changed(true, |m, b| records.push((m, b.to_vec())));
        let mut r = Engine::new(&config(), &[]).unwrap();
        for (m, b) in records.iter().skip(1) {
            r.restore_subscriber(*m, b).unwrap();
        }
        r.restore_finish();
        r.drain_changed(false, |_, _| panic!("an exact restore rewrites nothing"));
        assert_eq!(r.subs.find(records[1].0), Some(1));
        assert!(!r.subs.is_live(0));
        assert_eq!(r.subs.slot(SUB + 99), 0, "the gap is reused first");
    }

    /// Evicts `number` from `e` as a day close would.
    fn evict(e: &mut Engine, number: u64) {
        let slot = e.subs.find(number).unwrap();
        e.collect_eviction(slot, crate::detect::eviction::Reason::Churned);
        e.evict_collected(true);
    }

    #[test]
    fn an_eviction_is_a_tombstone_and_a_restore_forgets_it() {
        let mut e = busy_engine();
        let mut log: Vec<(u64, Option<Vec<u8>>)> = Vec::new();
        e.drain_evicted(|_| panic!("nothing evicted yet"));
        e.drain_changed(true, |m, b| log.push((m, Some(b.to_vec()))));
        let gone = SUB + 4;
        let slot = e.subs.find(gone).unwrap();
        assert!(e.marks.keys().any(|&(s, _)| s == slot), "it has side state");
        evict(&mut e, gone);
        assert!(
            e.marks.keys().all(|&(s, _)| s != slot),
            "side state dropped"
        );
        assert_eq!(e.stats().evicted.get("churned"), Some(&1));
        e.drain_evicted(|m| log.push((m, None)));
        e.drain_changed(false, |m, b| log.push((m, Some(b.to_vec()))));
        assert_eq!(
            log.last(),
            Some(&(gone, None)),
            "a tombstone, nothing rewritten"
        );
        let blob = e.encode_partition();
        let mut r = Engine::new(&config(), &[]).unwrap();
        for (m, value) in &log {
            match value {
                Some(b) => r.restore_subscriber(*m, b).unwrap(),
                None => r.forget_subscriber(*m),
            }
        }
        r.restore_partition(&blob).unwrap();
        r.restore_finish();
        assert!(r.subscriber(Msisdn(gone)).is_none());
        assert_eq!(r.encode_partition(), blob);
        r.drain_changed(false, |_, _| panic!("an exact restore rewrites nothing"));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        e.drain_changed(true, |m, x| a.push((m, x.to_vec())));
        r.drain_changed(true, |m, x| b.push((m, x.to_vec())));
        assert_eq!(a, b, "same subscribers in the same slots");
        assert_eq!(
            r.subs.slot(SUB + 99),
            e.subs.slot(SUB + 99),
            "same free slot"
        );
    }

    #[test]
    fn evicted_numbers_are_kept_only_for_a_checkpointed_engine() {
        let mut e = busy_engine();
        evict(&mut e, SUB + 4);
        e.drain_evicted(|_| panic!("never checkpointed: no tombstone needed"));
        evict(&mut e, SUB + 3);
        let mut tombstones = Vec::new();
        e.drain_evicted(|m| tombstones.push(m));
        assert_eq!(tombstones, vec![SUB + 3]);
    }
}
