//! One generation of the de-duplication table: a cuckoo table of 32-bit entries, fixed in
//! size once made (see [`super`] for why and for what an entry holds).
//!
//! Buckets are 8 entries (32 bytes, aligned, so one cache line holds a bucket). An entry
//! lives in one of two buckets: its home, from the id's hash, or the alternate, from the
//! home and the entry itself (`alt(alt(b)) == b`), so an entry can be moved and removed
//! knowing only where it is: no rehash, no repair after removal.

/// Entries per bucket.
pub(super) const BUCKET: usize = 8;
/// Bits of an entry that hold the fingerprint; the two above hold the day tag.
pub(super) const TAG_SHIFT: u32 = 30;
pub(super) const FP_MASK: u32 = (1 << TAG_SHIFT) - 1;
/// Moves tried before an insert gives up (the table is then about full).
const MAX_KICKS: u32 = 256;

/// The tag (day mod 4) of an entry.
pub(super) fn tag(e: u32) -> usize {
    (e >> TAG_SHIFT) as usize
}

/// `x * n / 2^32`: a 32-bit value onto `0..n` without a division.
fn reduce(x: u32, n: u32) -> u32 {
    ((u64::from(x) * u64::from(n)) >> 32) as u32
}

/// One fixed-size cuckoo table.
#[derive(Debug, Clone)]
pub(super) struct Table {
    /// Zeroed memory (0 = empty); bucket `b` is `slots[off + 8b..][..8]`.
    slots: Vec<u32>,
    /// Entries to skip so that buckets start on a 32-byte boundary.
    off: usize,
    buckets: u32,
    /// Entries held per tag.
    pub(super) count: [usize; 4],
    /// Rotates the entry a full insert moves (deterministic).
    kick: u32,
}

impl Table {
    /// A table of `buckets` buckets (at least 2).
    pub(super) fn new(buckets: u32) -> Table {
        let buckets = buckets.max(2);
        let slots = vec![0u32; buckets as usize * BUCKET + BUCKET];
        let misalign = (slots.as_ptr() as usize % 32) / 4;
        Table {
            off: (BUCKET - misalign) % BUCKET,
            slots,
            buckets,
            count: [0; 4],
            kick: 0,
        }
    }

    /// A table with room for `ids` entries at `load` (per cent) full.
    pub(super) fn for_ids(ids: usize, load: usize) -> Table {
        let slots = ids.max(1) * 100 / load;
        Table::new(u32::try_from(slots.div_ceil(BUCKET)).unwrap_or(u32::MAX / 16))
    }

    pub(super) fn buckets(&self) -> u32 {
        self.buckets
    }

    pub(super) fn slots(&self) -> usize {
        self.buckets as usize * BUCKET
    }

    pub(super) fn len(&self) -> usize {
        self.count.iter().sum()
    }

    pub(super) fn bytes(&self) -> usize {
        self.slots.capacity() * 4
    }

    /// The home bucket of a hash.
    pub(super) fn home(&self, h: u64) -> u32 {
        reduce((h >> 32) as u32, self.buckets)
    }

    /// The other bucket `e` may live in, when it is in `b`.
    fn alt(&self, b: u32, e: u32) -> u32 {
        let g = reduce((e & FP_MASK).wrapping_mul(0x9e37_79b1), self.buckets);
        (g + self.buckets - b) % self.buckets
    }

    fn bucket(&self, b: u32) -> &[u32] {
        let at = self.off + b as usize * BUCKET;
        &self.slots[at..at + BUCKET]
    }

    fn bucket_mut(&mut self, b: u32) -> &mut [u32] {
        let at = self.off + b as usize * BUCKET;
        &mut self.slots[at..at + BUCKET]
    }

    /// Whether an entry of fingerprint `fp` (any tag) is held, its home being `b`.
    pub(super) fn contains(&self, b: u32, fp: u32) -> bool {
        let is = |s: &u32| *s != 0 && *s & FP_MASK == fp;
        self.bucket(b).iter().any(is) || self.bucket(self.alt(b, fp)).iter().any(is)
    }

    /// Prefetches both buckets an entry of fingerprint `fp` and home `b` may live in.
    pub(super) fn prefetch(&self, b: u32, fp: u32) {
        crate::detect::prefetch::prefetch(&self.bucket(b)[0]);
        crate::detect::prefetch::prefetch(&self.bucket(self.alt(b, fp))[0]);
    }

    /// Puts `e` in an empty slot of bucket `b`, if it has one.
    fn place(&mut self, b: u32, e: u32) -> bool {
        match self.bucket_mut(b).iter_mut().find(|s| **s == 0) {
            Some(s) => {
                *s = e;
                true
            }
            None => false,
        }
    }

    /// Inserts `e` (not held, home `b`), moving others to their alternate buckets if both
    /// of its are full. When the table is too full for that, one entry (maybe `e`) is left
    /// without a place and returned.
    pub(super) fn insert(&mut self, b: u32, e: u32) -> Option<u32> {
        let b2 = self.alt(b, e);
        self.count[tag(e)] += 1;
        if self.place(b, e) || self.place(b2, e) {
            return None;
        }
        let (mut b, mut e) = (if self.kick & 1 == 0 { b } else { b2 }, e);
        for _ in 0..MAX_KICKS {
            self.kick = self.kick.wrapping_add(1);
            let k = (self.kick as usize / 2) % BUCKET;
            std::mem::swap(&mut e, &mut self.bucket_mut(b)[k]);
            b = self.alt(b, e);
            if self.place(b, e) {
                return None;
            }
        }
        self.count[tag(e)] -= 1;
        Some(e)
    }

    /// Removes `n` entries of tag `t` (all if it has no more), spread evenly over the
    /// table: removing a run of slots would leave the rest full, and inserts there would
    /// then move entries a long way to reach the free run. How many went.
    pub(super) fn remove_tag(&mut self, t: usize, n: usize) -> usize {
        let total = self.count[t];
        if n >= total {
            return self.clear_tag(t);
        }
        let (mut removed, mut acc) = (0, 0);
        let at = self.off;
        for s in &mut self.slots[at..at + self.buckets as usize * BUCKET] {
            if removed == n {
                break;
            }
            if *s != 0 && tag(*s) == t {
                acc += n;
                if acc >= total {
                    acc -= total;
                    *s = 0;
                    removed += 1;
                }
            }
        }
        self.count[t] -= removed;
        removed
    }

    /// Removes every entry of tag `t`: a period forgotten, in a catch-up every few seconds.
    /// Branch-free, so the compiler vectorizes the scan (an empty slot, 0, stays 0).
    fn clear_tag(&mut self, t: usize) -> usize {
        let at = self.off;
        let t = t as u32;
        for s in &mut self.slots[at..at + self.buckets as usize * BUCKET] {
            *s = if *s >> TAG_SHIFT == t { 0 } else { *s };
        }
        std::mem::take(&mut self.count[t as usize])
    }

    /// The entries, slot by slot (0 = empty), for a snapshot.
    pub(super) fn entries(&self) -> &[u32] {
        &self.slots[self.off..self.off + self.slots()]
    }

    /// Writes snapshot entries from slot `first` on (ones past the end are ignored).
    pub(super) fn load(&mut self, first: usize, entries: impl Iterator<Item = u32>) {
        let end = self.off + self.slots();
        let at = (self.off + first).min(end);
        for (s, e) in self.slots[at..end].iter_mut().zip(entries) {
            if *s != 0 {
                self.count[tag(*s)] -= 1;
            }
            *s = e;
            if e != 0 {
                self.count[tag(e)] += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_move_between_their_two_buckets_and_stay_findable() {
        let mut t = Table::new(64);
        let mut held = Vec::new();
        for i in 0..(64 * BUCKET * 95 / 100) as u64 {
            let h = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i << 7);
            let e = ((h as u32) & FP_MASK | 1) | (((i % 3) as u32) << TAG_SHIFT);
            let b = t.home(h);
            if t.contains(b, e) {
                continue;
            }
            assert_eq!(t.insert(b, e), None, "{i}");
            held.push((b, e));
        }
        assert!(held.iter().all(|&(b, e)| t.contains(b, e & FP_MASK)));
        let n = t.count[1];
        assert_eq!(t.remove_tag(1, usize::MAX), n);
        let found = |&(b, e): &(u32, u32)| t.contains(b, e & FP_MASK);
        assert!(held.iter().all(|h| found(h) || tag(h.1) == 1));
        assert!(held.iter().filter(|h| tag(h.1) == 1).all(|h| !found(h)));
    }

    #[test]
    fn buckets_are_aligned_to_32_bytes() {
        let t = Table::new(10);
        assert_eq!(t.bucket(3).as_ptr() as usize % 32, 0);
    }
}
