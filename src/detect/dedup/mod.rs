//! The record ids a partition has seen, for dropping duplicates: those that *arrived* in
//! about the last day (`engine.dedup_horizon_hours`, 24 by default), whatever their event
//! time.
//!
//! **Why a day of arrival, not the open event days.** A duplicate is a record delivered
//! again: a mediation file resent, a producer's retry, a replayed batch. It follows its
//! original within hours of *arrival*, however late both are. Keeping the ids of the three
//! event days still open to late records (48 h of lateness) held twelve ids a subscriber
//! at four records a day, 53 bytes, a fifth of the 256-byte budget; a day of arrival holds
//! about five (23.7 bytes). What it gives up: a copy delivered more than the horizon after
//! its original is counted twice. A deployment whose sources resend later raises the
//! horizon (up to 72 h; memory grows with it).
//!
//! **Periods.** Arrival time is the partition's newest event time, so replay and live
//! agree and no clock is read. It is cut into periods of a third of the horizon; an id is
//! tagged with the period it arrived in (2 bits: period mod 4), and the ids of the current
//! period and the three before it are held, so an id is kept for between the horizon and
//! four thirds of it. A look-up matches an id whatever its period.
//!
//! **Why fingerprints in a table sized once.** An id is kept as one 32-bit entry of a
//! cuckoo table ([`table`]): 30 bits of the hash of (event day, id) and the 2-bit tag. The
//! bucket comes from the other 32 bits of the hash. The table is sized once, from
//! `engine.expected_subscribers` × `engine.expected_daily_records` × four thirds of the
//! horizon, at 90% full: no rehash and no page-fault storm as a period fills.
//!
//! **What a fingerprint costs.** A new id is compared with the 16 entries of its two
//! buckets; a false duplicate needs one of them to match 30 bits: about 1 record in 2^26
//! (1 in 67 million) is wrongly dropped as a duplicate. It is counted nowhere because it
//! cannot be observed. (16-bit entries, 14-bit fingerprints, were tried: 1 record in
//! 13,000, and a planted case went missing; see BENCHMARKS.md.)
//!
//! **Growth without a rehash.** A fingerprint cannot be moved to a table of another size
//! (its bucket's bits are not stored). An unsized or undersized engine therefore starts a
//! new, larger *generation* when the newest is full; older generations are only read, and
//! are freed once the periods they hold are forgotten.
//!
//! **The bound.** Time alone does not bound the ids: a flood of distinct ids within the
//! horizon would grow them without limit. So at most `engine.max_dedup_ids` are held; past
//! that the ids of the oldest period go first, a slice at a time (so the cost of dropping
//! is spread over many inserts). **What a dropped id costs:** a later duplicate of that
//! record is not recognised and is counted twice. [`SeenIds::dropped`] counts them.
//!
//! **Snapshots.** Ids remembered since a checkpoint are written as they came (u64, by
//! period and event day) and inserted again on restore, hashed the same way; a full
//! checkpoint writes the generations themselves ([`SeenIds::generations`],
//! [`SeenIds::load`]), since the ids are not kept.

mod table;

use super::calendar::Day;
use table::{tag, Table, FP_MASK, TAG_SHIFT};

/// Per cent full a table is sized for, and the most it is filled to.
const SIZED_LOAD: usize = 90;
const MAX_LOAD: usize = 95;
/// Ids the first generation of an unsized engine holds.
const FIRST_IDS: usize = 4_096;

/// A snapshot's view of the table: the days of the four tags, and each generation's
/// buckets and entries.
pub type Generations<'a> = ([Option<Arrival>; 4], Vec<(u32, &'a [u32])>);

/// An arrival period: the partition's newest event time divided by the period's length
/// (`engine.dedup_horizon_hours` / 3).
pub type Arrival = i32;

/// Periods whose ids are held: the current one and the three before it.
pub const PERIODS: usize = 4;

/// The de-duplication ids of one partition, bounded by arrival period and by count.
#[derive(Debug)]
pub struct SeenIds {
    /// Generations, oldest first; only the last takes new ids.
    gens: Vec<Table>,
    /// The arrival period each tag stands for.
    tag_period: [Option<Arrival>; 4],
    /// The newest period an id came in.
    newest: Arrival,
    /// Ids held, over every day.
    len: usize,
    /// The most ids held at once (`engine.max_dedup_ids`).
    max: usize,
    /// Ids dropped because `max` was reached (or the table could not place one).
    dropped: u64,
}

/// The 64-bit hash of an id of `day` (a SplitMix64 finalizer).
fn hash(day: Day, id: u64) -> u64 {
    let mut h = id ^ u64::from(day as u32).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The fingerprint of a hash (never 0).
fn fingerprint(h: u64) -> u32 {
    (h as u32 & FP_MASK).max(1)
}

/// The entry of a hash: the fingerprint and the tag.
fn entry(h: u64, tag: usize) -> u32 {
    fingerprint(h) | ((tag as u32) << TAG_SHIFT)
}

impl PartialEq for SeenIds {
    /// The same entries on the same days (generations, sizes and counters aside).
    fn eq(&self, other: &SeenIds) -> bool {
        self.sorted() == other.sorted()
    }
}

impl SeenIds {
    /// An empty set holding at most `max` ids (at least 1), sized for `expected` ids (0:
    /// unknown, start small and grow by generations).
    pub fn new(max: usize, expected: usize) -> SeenIds {
        let max = max.max(1);
        let first = if expected > 0 { expected } else { FIRST_IDS };
        SeenIds {
            gens: vec![Table::for_ids(first.min(max), SIZED_LOAD)],
            tag_period: [None; 4],
            newest: Arrival::MIN,
            len: 0,
            max,
            dropped: 0,
        }
    }

    /// Remembers `id` of event day `day`, delivered in arrival period `period`; false if
    /// it was already there (a duplicate), whichever period it came in. Ids of periods
    /// [`PERIODS`] or more before `period` are forgotten first; past the cap, ids of the
    /// oldest period are dropped first.
    pub fn insert(&mut self, period: Arrival, day: Day, id: u64) -> bool {
        if period > self.newest {
            self.forget_through(period.saturating_sub(PERIODS as Arrival));
            self.newest = period;
        }
        let h = hash(day, id);
        if self.contains(h, fingerprint(h)) {
            return false;
        }
        if self.len >= self.max {
            self.shed();
        }
        if !self.room() {
            self.grow_or_shed();
        }
        // Shedding may have freed this period's tag: take it again.
        let Some(t) = self.tag_of(period) else {
            self.dropped += 1;
            return true;
        };
        let e = entry(h, t);
        let newest = self.gens.last_mut().expect("a generation");
        let b = newest.home(h);
        self.len += 1;
        if newest.insert(b, e).is_some() {
            self.len -= 1;
            self.dropped += 1;
        }
        true
    }

    /// Prefetches the buckets [`SeenIds::insert`] of `id` under `day` will read (in the
    /// newest generation, where nearly every id is).
    pub fn prefetch(&self, day: Day, id: u64) {
        let h = hash(day, id);
        let g = self.gens.last().expect("a generation");
        g.prefetch(g.home(h), fingerprint(h));
    }

    fn contains(&self, h: u64, fp: u32) -> bool {
        (self.gens.iter().rev()).any(|g| g.len() > 0 && g.contains(g.home(h), fp))
    }

    /// The tag of `day`: its own, or it takes the tag of an older day (whose ids go, as
    /// dropped). `None` when a newer day holds it (a record far too late to remember).
    fn tag_of(&mut self, period: Arrival) -> Option<usize> {
        let t = period.rem_euclid(4) as usize;
        match self.tag_period[t] {
            Some(p) if p == period => Some(t),
            Some(p) if p > period => None,
            Some(_) => {
                self.dropped += self.remove(t, usize::MAX) as u64;
                self.tag_period[t] = Some(period);
                Some(t)
            }
            None => {
                self.tag_period[t] = Some(period);
                Some(t)
            }
        }
    }

    /// Whether the newest generation takes another id.
    fn room(&self) -> bool {
        let g = self.gens.last().expect("a generation");
        g.len() < g.slots() * MAX_LOAD / 100
    }

    /// Starts a larger generation if the cap allows, else drops the oldest period's ids until
    /// the newest generation has room.
    fn grow_or_shed(&mut self) {
        let newest = self.gens.last().expect("a generation").slots() * MAX_LOAD / 100;
        if newest < self.max {
            let ids = (3 * self.len).max(2 * newest).min(self.max);
            self.gens.push(Table::for_ids(ids, SIZED_LOAD));
            return;
        }
        while !self.room() && self.len > 0 {
            self.shed();
        }
    }

    /// Drops ids of the oldest periods until a sixteenth of the cap is free again.
    fn shed(&mut self) {
        let target = self.max - self.max / 16;
        while self.len > target {
            let Some(t) = self.oldest() else {
                return;
            };
            let n = self.remove(t, self.len - target);
            self.dropped += n as u64;
        }
    }

    /// The tag of the oldest period held.
    fn oldest(&self) -> Option<usize> {
        (0..4)
            .filter(|&t| self.gens.iter().any(|g| g.count[t] > 0))
            .min_by_key(|&t| self.tag_period[t])
    }

    /// Removes up to `n` ids of tag `t`, oldest generation first; frees the tag once it has
    /// none and the generations left with none. How many went.
    fn remove(&mut self, t: usize, n: usize) -> usize {
        let mut removed = 0;
        for g in &mut self.gens {
            if removed < n && g.count[t] > 0 {
                removed += g.remove_tag(t, n - removed);
            }
        }
        self.len -= removed;
        if self.gens.iter().all(|g| g.count[t] == 0) {
            self.tag_period[t] = None;
        }
        let last = self.gens.len() - 1;
        let mut i = 0;
        self.gens.retain(|g| {
            i += 1;
            i - 1 == last || g.len() > 0
        });
        removed
    }

    /// Forgets the ids of every period up to `last` (inclusive).
    pub fn forget_through(&mut self, last: Arrival) {
        for t in 0..4 {
            if self.tag_period[t].is_some_and(|p| p <= last) {
                self.remove(t, usize::MAX);
                self.tag_period[t] = None;
            }
        }
    }

    /// Makes room for `n` more ids (before a restore inserts them): starts a generation
    /// for them if the newest is too small.
    pub fn reserve(&mut self, n: usize) {
        let g = self.gens.last().expect("a generation");
        let free = (g.slots() * MAX_LOAD / 100).saturating_sub(g.len());
        if n > free && g.slots() * MAX_LOAD / 100 < self.max {
            let ids = (self.len + n).max(2 * g.slots()).min(self.max);
            self.gens.push(Table::for_ids(ids, SIZED_LOAD));
        }
    }

    /// The newest arrival period an id came in.
    pub fn newest(&self) -> Arrival {
        self.newest
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

    /// Bytes allocated: every generation's table.
    pub fn bytes(&self) -> usize {
        self.gens.iter().map(Table::bytes).sum::<usize>()
    }

    /// The days of the tags, and each generation's buckets and entries (for a snapshot).
    pub fn generations(&self) -> Generations<'_> {
        let gens = self.gens.iter().map(|g| (g.buckets(), g.entries()));
        (self.tag_period, gens.collect())
    }

    /// Restores snapshot entries of generation `gen` (of `buckets` buckets) from slot
    /// `first` on. The first piece of generation 0 starts afresh.
    pub fn load(
        &mut self,
        tag_period: [Option<Arrival>; 4],
        gen: usize,
        buckets: u32,
        first: usize,
        entries: impl Iterator<Item = u32>,
    ) {
        if gen == 0 && first == 0 {
            self.gens.clear();
            self.len = 0;
        }
        while self.gens.len() <= gen {
            self.gens.push(Table::new(buckets));
        }
        if self.gens[gen].buckets() != buckets {
            self.gens[gen] = Table::new(buckets);
        }
        self.len -= self.gens[gen].len();
        self.gens[gen].load(first, entries);
        self.len += self.gens[gen].len();
        for (t, p) in tag_period.into_iter().enumerate() {
            if let Some(p) = p {
                self.tag_period[t] = Some(p);
                self.newest = self.newest.max(p);
            }
        }
    }

    /// Every (day, entry) held, sorted.
    fn sorted(&self) -> Vec<(Arrival, u32)> {
        let mut all: Vec<(Arrival, u32)> = (self.gens.iter())
            .flat_map(|g| g.entries().iter().copied().filter(|&e| e != 0))
            .map(|e| (self.tag_period[tag(e)].unwrap_or(Arrival::MIN), e))
            .collect();
        all.sort_unstable();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_id_is_a_duplicate_for_four_periods_of_arrival() {
        let mut s = SeenIds::new(100, 0);
        assert!(s.insert(10, 1, 7));
        assert!(!s.insert(10, 1, 7));
        assert!(s.insert(10, 2, 7), "another event day: another record");
        assert!(s.insert(12, 3, 7));
        assert!(
            !s.insert(13, 1, 7),
            "three periods later it is still remembered"
        );
        assert!(s.insert(14, 5, 8));
        assert_eq!(
            s.len(),
            2,
            "period 10's ids are forgotten once period 14 begins"
        );
        assert!(
            s.insert(14, 1, 7),
            "a copy delivered that late counts again"
        );
        assert!(!s.insert(15, 3, 7), "period 12's are still there");
    }

    #[test]
    fn the_extreme_periods_do_not_overflow() {
        let mut s = SeenIds::new(100, 0);
        assert!(s.insert(Arrival::MIN, 1, 7));
        assert!(!s.insert(Arrival::MIN, 1, 7));
        assert!(s.insert(Arrival::MAX, 1, 8));
    }

    #[test]
    fn bytes_grow_as_ids_are_added() {
        let mut s = SeenIds::new(1_000_000, 0);
        let empty = s.bytes();
        for id in 0..100_000 {
            assert!(s.insert(0, 5, id));
        }
        assert_eq!((s.len(), s.dropped()), (100_000, 0));
        assert!(s.bytes() >= empty + 100_000 * 4, "{}", s.bytes());
        assert!(
            (0..100_000).all(|id| !s.insert(0, 5, id)),
            "every id is found"
        );
    }

    #[test]
    fn a_sized_table_holds_its_ids_without_a_new_generation() {
        let mut s = SeenIds::new(20_000_000, 30_000);
        let bytes = s.bytes();
        for id in 0..30_000u64 {
            assert!(s.insert(0, 10 + (id % 3) as Day, id));
        }
        assert_eq!((s.bytes(), s.gens.len(), s.dropped()), (bytes, 1, 0));
        assert!(bytes < 30_000 * 5, "{bytes}");
    }

    #[test]
    fn the_cap_holds_under_a_flood_of_distinct_ids_and_the_oldest_day_goes_first() {
        let max = 1_000;
        let mut s = SeenIds::new(max, 0);
        for id in 0..400 {
            s.insert(1, 1, id);
        }
        for id in 0..100_000u64 {
            assert!(s.insert(2, 2, 1_000_000 + id));
            assert!(s.len() <= max, "{} ids held at {id}", s.len());
        }
        assert!(
            s.sorted().iter().all(|(p, _)| *p == 2),
            "period 1 went first"
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

    #[test]
    fn a_day_flooding_past_the_cap_sheds_its_own_ids() {
        // One day alone over the cap sheds its own ids: spread evenly, so the table does
        // not fill up in one region (where inserts would move entries a long way). How
        // cheap the inserts stay is `bench engine`'s to say, not a timed test's.
        let mut s = SeenIds::new(200_000, 600_000);
        for id in 0..2_000_000u64 {
            s.insert(0, 9, id.wrapping_mul(0x2545_f491_4f6c_dd1d));
        }
        assert!(s.len() <= 200_000 && s.len() > 180_000, "{}", s.len());
        assert_eq!(s.dropped(), 2_000_000 - s.len() as u64);
    }

    #[test]
    fn a_snapshot_of_the_generations_loads_into_an_equal_set() {
        let mut s = SeenIds::new(1_000_000, 0);
        for id in 0..20_000u64 {
            s.insert(0, 7 + (id % 2) as Day, id * 31);
        }
        assert!(s.gens.len() > 1);
        let mut r = SeenIds::new(1_000_000, 50);
        let (days, gens) = s.generations();
        for (i, (buckets, entries)) in gens.into_iter().enumerate() {
            for (k, piece) in entries.chunks(1000).enumerate() {
                r.load(days, i, buckets, k * 1000, piece.iter().copied());
            }
        }
        assert!(r == s && r.len() == s.len());
        assert!(!r.insert(0, 8, 31) && r.insert(0, 8, 32 * 31 + 1));
    }
}
