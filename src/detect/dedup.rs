//! The record ids a partition has seen, for dropping duplicates: one set per open event
//! day, emptied when the day closes (older records are rejected as late anyway), so about
//! three days of ids are kept.
//!
//! Time alone does not bound it: a flood of distinct ids within the lateness horizon would
//! grow it without limit. So it also holds at most `engine.max_dedup_ids` ids; past that the
//! ids of the oldest open day go first, a slice at a time (so the cost of dropping is spread
//! over many inserts). **What a dropped id costs:** a later duplicate of that record is not
//! recognised and is counted twice. [`SeenIds::dropped`] counts them.

use rustc_hash::{FxHashMap, FxHashSet};

use super::calendar::Day;
use super::state::OPEN_DAYS;

/// The de-duplication ids of one partition, bounded by day and by count.
#[derive(Debug)]
pub struct SeenIds {
    by_day: FxHashMap<Day, FxHashSet<u64>>,
    /// Emptied sets of closed days, reused so a day's set is not regrown.
    spare: Vec<FxHashSet<u64>>,
    /// Ids held, over every day.
    len: usize,
    /// The most ids held at once (`engine.max_dedup_ids`).
    max: usize,
    /// Ids dropped because `max` was reached.
    dropped: u64,
}

impl PartialEq for SeenIds {
    /// The same ids on the same days (spare sets and counters aside).
    fn eq(&self, other: &SeenIds) -> bool {
        let non_empty =
            |m: &FxHashMap<Day, FxHashSet<u64>>| m.values().filter(|s| !s.is_empty()).count();
        non_empty(&self.by_day) == non_empty(&other.by_day)
            && self
                .by_day
                .iter()
                .filter(|(_, s)| !s.is_empty())
                .all(|(d, s)| other.by_day.get(d) == Some(s))
    }
}

impl SeenIds {
    /// An empty set holding at most `max` ids (at least 1).
    pub fn new(max: usize) -> SeenIds {
        SeenIds {
            by_day: FxHashMap::default(),
            spare: Vec::new(),
            len: 0,
            max: max.max(1),
            dropped: 0,
        }
    }

    /// Remembers `id` under `day`; false if it was already there (a duplicate). Past the
    /// cap, ids of the oldest day are dropped (possibly this one, if its day is the oldest).
    pub fn insert(&mut self, day: Day, id: u64) -> bool {
        let spare = &mut self.spare;
        let set = self
            .by_day
            .entry(day)
            .or_insert_with(|| spare.pop().unwrap_or_default());
        if !set.insert(id) {
            return false;
        }
        self.len += 1;
        if self.len > self.max {
            self.shed();
        }
        true
    }

    /// Drops ids of the oldest days until a sixteenth of the cap is free again.
    fn shed(&mut self) {
        let target = self.max - self.max / 16;
        while self.len > target {
            let Some(oldest) = self.by_day.keys().copied().min() else {
                return;
            };
            let excess = self.len - target;
            let Some(set) = self.by_day.get_mut(&oldest) else {
                return;
            };
            if set.len() <= excess {
                let n = set.len();
                self.len -= n;
                self.dropped += n as u64;
                self.recycle(oldest);
            } else {
                let victims: Vec<u64> = set.iter().copied().take(excess).collect();
                for v in &victims {
                    set.remove(v);
                }
                self.len -= victims.len();
                self.dropped += victims.len() as u64;
            }
        }
    }

    /// Forgets every day up to `closed` (inclusive): no record of it can be admitted now.
    pub fn forget_through(&mut self, closed: Day) {
        let old: Vec<Day> = self
            .by_day
            .keys()
            .copied()
            .filter(|&d| d <= closed)
            .collect();
        for d in old {
            if let Some(n) = self.by_day.get(&d).map(FxHashSet::len) {
                self.len -= n;
            }
            self.recycle(d);
        }
    }

    /// Removes `day`'s set, keeping it (emptied) for reuse.
    fn recycle(&mut self, day: Day) {
        if let Some(mut set) = self.by_day.remove(&day) {
            set.clear();
            if self.spare.len() < OPEN_DAYS + 1 {
                self.spare.push(set);
            }
        }
    }

    /// The days held, in order, with their ids.
    pub fn days(&self) -> Vec<(Day, &FxHashSet<u64>)> {
        let mut days: Vec<_> = self.by_day.iter().map(|(&d, s)| (d, s)).collect();
        days.sort_unstable_by_key(|(d, _)| *d);
        days
    }

    /// Makes room for `n` more ids under `day` (before a restore inserts them).
    pub fn reserve(&mut self, day: Day, n: usize) {
        let spare = &mut self.spare;
        let set = self
            .by_day
            .entry(day)
            .or_insert_with(|| spare.pop().unwrap_or_default());
        set.reserve(n.min(self.max));
    }

    /// Ids held.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Ids dropped so far because the cap was reached.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Bytes allocated: every set's capacity (spare ones included) times the size of an id,
    /// plus the day map's slots.
    pub fn bytes(&self) -> usize {
        let sets = self.by_day.values().chain(&self.spare);
        let ids: usize = sets.map(|s| s.capacity() * size_of::<u64>()).sum();
        let days = self.by_day.capacity() * size_of::<(Day, FxHashSet<u64>)>();
        ids + days + self.spare.capacity() * size_of::<FxHashSet<u64>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_id_is_a_duplicate_until_its_day_is_forgotten() {
        let mut s = SeenIds::new(100);
        assert!(s.insert(1, 7));
        assert!(!s.insert(1, 7));
        assert!(s.insert(2, 7));
        s.forget_through(1);
        assert_eq!(s.len(), 1);
        assert!(s.insert(1, 7));
    }

    #[test]
    fn bytes_grow_as_ids_are_added() {
        let mut s = SeenIds::new(1_000_000);
        let empty = s.bytes();
        for id in 0..10_000 {
            s.insert(5, id);
        }
        assert!(
            s.bytes() >= empty + 10_000 * size_of::<u64>(),
            "{}",
            s.bytes()
        );
    }

    #[test]
    fn the_cap_holds_under_a_flood_of_distinct_ids_and_the_oldest_day_goes_first() {
        let max = 1_000;
        let mut s = SeenIds::new(max);
        for id in 0..400 {
            s.insert(1, id);
        }
        for id in 0..100_000u64 {
            assert!(s.insert(2, 1_000_000 + id));
            assert!(s.len() <= max, "{} ids held at {id}", s.len());
        }
        let days = s.days();
        assert!(
            days.iter().all(|(d, set)| *d == 2 || set.is_empty()),
            "day 1 went first"
        );
        assert_eq!(s.dropped(), 400 + 100_000 - s.len() as u64);
        assert!(s.len() > max / 2);
        // A flood of one day cannot make the structure's memory grow past the cap either.
        assert!(
            s.bytes() < 4 * max * size_of::<u64>() + 4096,
            "{}",
            s.bytes()
        );
    }
}
