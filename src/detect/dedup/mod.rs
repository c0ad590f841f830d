//! The record ids a partition has seen, for dropping duplicates: those of the open event
//! days, forgotten when their day closes (older records are rejected as late anyway), so
//! about three days of ids are kept.
//!
//! **Why fingerprints in a table sized once.** At four records per subscriber and day a
//! partition holds about twelve ids per subscriber, more than any other memory beside the
//! subscriber's own state. So an id is kept as one 32-bit entry of a cuckoo table
//! ([`table`]): 30 bits of the hash of (day, id) and a 2-bit day tag (day mod 4, the open
//! days and the next). The bucket comes from the other 32 bits of the hash. The table is
//! sized once, from `engine.expected_subscribers` × `engine.expected_daily_records` × the
//! open days, at 90% full: no rehash and no page-fault storm as a day fills.
//!
//! **What a fingerprint costs.** A new id is compared with the 16 entries of its two
//! buckets; a false duplicate needs one of the same day (about a third) to match 30 bits:
//! about 1 record in 2^28 (1 in 270 million) is wrongly dropped as a duplicate. It is
//! counted nowhere because it cannot be observed; it is far below the 3% precision of a
//! closed day.
//!
//! **Growth without a rehash.** A fingerprint cannot be moved to a table of another size
//! (its bucket's bits are not stored). An unsized or undersized engine therefore starts a
//! new, larger *generation* when the newest is full; older generations are only read, and
//! are freed once the days they hold have closed (within about three days).
//!
//! **The bound.** Time alone does not bound the ids: a flood of distinct ids within the
//! lateness horizon would grow them without limit. So at most `engine.max_dedup_ids` are
//! held; past that the ids of the oldest open day go first, a slice at a time (so the cost
//! of dropping is spread over many inserts). **What a dropped id costs:** a later
//! duplicate of that record is not recognised and is counted twice. [`SeenIds::dropped`]
//! counts them.
//!
//! **Snapshots.** Ids remembered since a checkpoint are written as they came (u64, by
//! day) and inserted again on restore, hashed the same way; a full checkpoint writes the
//! generations themselves ([`SeenIds::generations`], [`SeenIds::load`]), since the ids are
//! not kept.

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
pub type Generations<'a> = ([Option<Day>; 4], Vec<(u32, &'a [u32])>);

/// The de-duplication ids of one partition, bounded by day and by count.
#[derive(Debug)]
pub struct SeenIds {
    /// Generations, oldest first; only the last takes new ids.
    gens: Vec<Table>,
    /// The day each tag stands for.
    tag_day: [Option<Day>; 4],
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

/// The entry of a hash: the fingerprint (never 0) and the tag.
fn entry(h: u64, tag: usize) -> u32 {
    let fp = (h as u32 & FP_MASK).max(1);
    fp | ((tag as u32) << TAG_SHIFT)
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
            tag_day: [None; 4],
            len: 0,
            max,
            dropped: 0,
        }
    }

    /// Remembers `id` under `day`; false if it was already there (a duplicate). Past the
    /// cap, ids of the oldest day are dropped first.
    pub fn insert(&mut self, day: Day, id: u64) -> bool {
        let Some(t) = self.tag_of(day) else {
            self.dropped += 1;
            return true;
        };
        let h = hash(day, id);
        let e = entry(h, t);
        if self.contains(h, e) {
            return false;
        }
        if self.len >= self.max {
            self.shed();
        }
        if !self.room() {
            self.grow_or_shed();
        }
        // Shedding may have freed this day's tag: take it again.
        let Some(t) = self.tag_of(day) else {
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
        g.prefetch(g.home(h), entry(h, day.rem_euclid(4) as usize));
    }

    fn contains(&self, h: u64, e: u32) -> bool {
        let t = tag(e);
        self.gens
            .iter()
            .rev()
            .any(|g| g.count[t] > 0 && g.contains(g.home(h), e))
    }

    /// The tag of `day`: its own, or it takes the tag of an older day (whose ids go, as
    /// dropped). `None` when a newer day holds it (a record far too late to remember).
    fn tag_of(&mut self, day: Day) -> Option<usize> {
        let t = day.rem_euclid(4) as usize;
        match self.tag_day[t] {
            Some(d) if d == day => Some(t),
            Some(d) if d > day => None,
            Some(_) => {
                self.dropped += self.remove(t, usize::MAX) as u64;
                self.tag_day[t] = Some(day);
                Some(t)
            }
            None => {
                self.tag_day[t] = Some(day);
                Some(t)
            }
        }
    }

    /// Whether the newest generation takes another id.
    fn room(&self) -> bool {
        let g = self.gens.last().expect("a generation");
        g.len() < g.slots() * MAX_LOAD / 100
    }

    /// Starts a larger generation if the cap allows, else drops the oldest day's ids until
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

    /// Drops ids of the oldest days until a sixteenth of the cap is free again.
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

    /// The tag of the oldest day held.
    fn oldest(&self) -> Option<usize> {
        (0..4)
            .filter(|&t| self.gens.iter().any(|g| g.count[t] > 0))
            .min_by_key(|&t| self.tag_day[t])
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
            self.tag_day[t] = None;
        }
        let last = self.gens.len() - 1;
        let mut i = 0;
        self.gens.retain(|g| {
            i += 1;
            i - 1 == last || g.len() > 0
        });
        removed
    }

    /// Forgets every day up to `closed` (inclusive): no record of it can be admitted now.
    pub fn forget_through(&mut self, closed: Day) {
        for t in 0..4 {
            if self.tag_day[t].is_some_and(|d| d <= closed) {
                self.remove(t, usize::MAX);
                self.tag_day[t] = None;
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
        (self.tag_day, gens.collect())
    }

    /// Restores snapshot entries of generation `gen` (of `buckets` buckets) from slot
    /// `first` on. The first piece of generation 0 starts afresh.
    pub fn load(
        &mut self,
        tag_day: [Option<Day>; 4],
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
        for (t, d) in tag_day.into_iter().enumerate() {
            if d.is_some() {
                self.tag_day[t] = d;
            }
        }
    }

    /// Every (day, entry) held, sorted.
    fn sorted(&self) -> Vec<(Day, u32)> {
        let mut all: Vec<(Day, u32)> = (self.gens.iter())
            .flat_map(|g| g.entries().iter().copied().filter(|&e| e != 0))
            .map(|e| (self.tag_day[tag(e)].unwrap_or(Day::MIN), e))
            .collect();
        all.sort_unstable();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_id_is_a_duplicate_until_its_day_is_forgotten() {
        let mut s = SeenIds::new(100, 0);
        assert!(s.insert(1, 7));
        assert!(!s.insert(1, 7));
        assert!(s.insert(2, 7));
        s.forget_through(1);
        assert_eq!(s.len(), 1);
        assert!(s.insert(1, 7));
    }

    #[test]
    fn bytes_grow_as_ids_are_added() {
        let mut s = SeenIds::new(1_000_000, 0);
        let empty = s.bytes();
        for id in 0..100_000 {
            assert!(s.insert(5, id));
        }
        assert_eq!((s.len(), s.dropped()), (100_000, 0));
        assert!(s.bytes() >= empty + 100_000 * 4, "{}", s.bytes());
        assert!((0..100_000).all(|id| !s.insert(5, id)), "every id is found");
    }

    #[test]
    fn a_sized_table_holds_its_ids_without_a_new_generation() {
        let mut s = SeenIds::new(20_000_000, 30_000);
        let bytes = s.bytes();
        for id in 0..30_000u64 {
            assert!(s.insert(10 + (id % 3) as Day, id));
        }
        assert_eq!((s.bytes(), s.gens.len(), s.dropped()), (bytes, 1, 0));
        assert!(bytes < 30_000 * 5, "{bytes}");
    }

    #[test]
    fn the_cap_holds_under_a_flood_of_distinct_ids_and_the_oldest_day_goes_first() {
        let max = 1_000;
        let mut s = SeenIds::new(max, 0);
        for id in 0..400 {
            s.insert(1, id);
        }
        for id in 0..100_000u64 {
            assert!(s.insert(2, 1_000_000 + id));
            assert!(s.len() <= max, "{} ids held at {id}", s.len());
        }
        assert!(s.sorted().iter().all(|(d, _)| *d == 2), "day 1 went first");
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
    fn a_day_flooding_past_the_cap_keeps_inserts_cheap() {
        // One day alone over the cap sheds its own ids: spread evenly, so the table does
        // not fill up in one region (where inserts would move entries a long way).
        let mut s = SeenIds::new(200_000, 600_000);
        let t = std::time::Instant::now();
        for id in 0..2_000_000u64 {
            s.insert(9, id.wrapping_mul(0x2545_f491_4f6c_dd1d));
        }
        assert!(s.len() <= 200_000 && s.len() > 180_000, "{}", s.len());
        assert!(t.elapsed().as_secs_f64() < 2.0, "{:?}", t.elapsed());
    }

    #[test]
    fn a_snapshot_of_the_generations_loads_into_an_equal_set() {
        let mut s = SeenIds::new(1_000_000, 0);
        for id in 0..20_000u64 {
            s.insert(7 + (id % 2) as Day, id * 31);
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
        assert!(!r.insert(8, 31) && r.insert(8, 32 * 31 + 1));
    }
}
