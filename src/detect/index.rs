//! The subscriber table's index: number -> slot, in 4-byte entries at 85% full.
//!
//! **Why our own.** A general map rounds its buckets up to a power of two and keeps a
//! control byte beside each: at a million subscribers hashbrown's index was 10.5 bytes a
//! subscriber, 4% of the 256-byte budget, for 4 bytes of slot. This one is sized from
//! `engine.expected_subscribers` to any length (a multiply-shift maps the hash onto it),
//! and an entry is the slot plus, in the bits the slots do not need, the top of the
//! number's hash: a probe reads the number (another cache miss) only when those match.
//! Linear probing keeps a look-up within a cache line or two, whose address is known from
//! the hash alone.
//!
//! Removal shifts the entries after the hole back (no tombstones), so a table that sees
//! numbers come and go for years never needs rebuilding.

/// Entry value of an empty place.
const EMPTY: u32 = 0;
/// Per cent full an index is sized for, and the most it is filled to before it doubles.
const SIZED_LOAD: usize = 85;
const MAX_LOAD: usize = 90;
/// Fewest bits an entry gives the slot (the rest hold hash bits).
const MIN_SLOT_BITS: u32 = 16;

/// Slots by the hash of their number: open addressing, linear probing.
#[derive(Debug, Default)]
pub struct SlotIndex {
    /// `(hash bits above slot_bits) | (slot + 1)`, or [`EMPTY`].
    entries: Vec<u32>,
    len: usize,
    /// Bits of an entry that hold `slot + 1`.
    slot_bits: u32,
}

impl SlotIndex {
    /// An index sized for `n` slots.
    pub fn with_capacity(n: usize) -> SlotIndex {
        SlotIndex {
            entries: vec![EMPTY; places_for(n)],
            len: 0,
            slot_bits: bits_for(n),
        }
    }

    fn mask(&self) -> u32 {
        (1 << self.slot_bits) - 1
    }

    /// Where the probe for hash `h` starts.
    fn home(&self, h: u64) -> usize {
        (((h >> 32) * self.entries.len() as u64) >> 32) as usize
    }

    fn next(&self, i: usize) -> usize {
        if i + 1 == self.entries.len() {
            0
        } else {
            i + 1
        }
    }

    fn entry(&self, h: u64, slot: u32) -> u32 {
        (h as u32 & !self.mask()) | (slot + 1)
    }

    /// The slot whose number has hash `h` and satisfies `is`.
    pub fn find(&self, h: u64, is: impl Fn(u32) -> bool) -> Option<u32> {
        if self.entries.is_empty() {
            return None;
        }
        let (mask, tag) = (self.mask(), h as u32 & !self.mask());
        let mut i = self.home(h);
        loop {
            let e = self.entries[i];
            if e == EMPTY {
                return None;
            }
            if e & !mask == tag && is((e & mask) - 1) {
                return Some((e & mask) - 1);
            }
            i = self.next(i);
        }
    }

    /// Adds `slot` (not held) under hash `h`; `hash_of` gives any held slot's hash, for
    /// when the index grows.
    pub fn insert(&mut self, h: u64, slot: u32, hash_of: impl Fn(u32) -> u64) {
        let full = (self.len + 1) * 100 > self.entries.len() * MAX_LOAD;
        if full || slot + 1 > self.mask() {
            let sized = self.entries.len() * SIZED_LOAD / 100;
            let n = if full { 2 * sized } else { sized };
            let bits = self.slot_bits.max(bits_for(slot as usize));
            self.rebuild(n.max(self.len + 1), bits, &hash_of);
        }
        self.place(self.entry(h, slot), self.home(h));
        self.len += 1;
    }

    fn place(&mut self, e: u32, from: usize) {
        let mut i = from;
        while self.entries[i] != EMPTY {
            i = self.next(i);
        }
        self.entries[i] = e;
    }

    /// Removes `slot`, held under hash `h`; `hash_of` as for [`SlotIndex::insert`].
    pub fn remove(&mut self, h: u64, slot: u32, hash_of: impl Fn(u32) -> u64) -> bool {
        if self.entries.is_empty() {
            return false;
        }
        let e = self.entry(h, slot);
        let mut hole = self.home(h);
        while self.entries[hole] != e {
            if self.entries[hole] == EMPTY {
                return false;
            }
            hole = self.next(hole);
        }
        let cap = self.entries.len();
        let dist = |from: usize, to: usize| (to + cap - from) % cap;
        let mut j = self.next(hole);
        while self.entries[j] != EMPTY {
            let home = self.home(hash_of((self.entries[j] & self.mask()) - 1));
            if dist(home, j) >= dist(hole, j) {
                self.entries[hole] = self.entries[j];
                hole = j;
            }
            j = self.next(j);
        }
        self.entries[hole] = EMPTY;
        self.len -= 1;
        true
    }

    /// Makes the index anew for `n` slots, `bits` or more of an entry for the slot, with
    /// every slot held.
    fn rebuild(&mut self, n: usize, bits: u32, hash_of: &impl Fn(u32) -> u64) {
        let mask = self.mask();
        let old = std::mem::replace(self, SlotIndex::with_capacity(n));
        self.slot_bits = self.slot_bits.max(bits);
        for e in old.entries.into_iter().filter(|&e| e != EMPTY) {
            let slot = (e & mask) - 1;
            let h = hash_of(slot);
            self.place(self.entry(h, slot), self.home(h));
        }
        self.len = old.len;
    }

    /// Forgets every slot, keeping the memory.
    pub fn clear(&mut self) {
        self.entries.fill(EMPTY);
        self.len = 0;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn bytes(&self) -> usize {
        self.entries.capacity() * 4
    }
}

/// Places for `n` slots at [`SIZED_LOAD`] (at least 16).
fn places_for(n: usize) -> usize {
    (n * 100 / SIZED_LOAD).max(16)
}

/// Bits an entry gives the slot when slots go up to `n`: room for `n + 1`, at most 31.
fn bits_for(n: usize) -> u32 {
    (usize::BITS - (n + 1).leading_zeros()).clamp(MIN_SLOT_BITS, 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(n: u64) -> u64 {
        let h = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^ (h >> 29)
    }

    /// An index over `numbers` (slot = position), checked against a plain set.
    struct Model {
        index: SlotIndex,
        numbers: Vec<u64>,
    }

    impl Model {
        fn find(&self, n: u64) -> Option<u32> {
            self.index.find(hash(n), |s| self.numbers[s as usize] == n)
        }
        fn add(&mut self, n: u64) -> u32 {
            let slot = self.numbers.len() as u32;
            self.numbers.push(n);
            let numbers = &self.numbers;
            self.index
                .insert(hash(n), slot, |s| hash(numbers[s as usize]));
            slot
        }
        fn remove(&mut self, slot: u32) -> bool {
            let numbers = &self.numbers;
            let n = numbers[slot as usize];
            self.index
                .remove(hash(n), slot, |s| hash(numbers[s as usize]))
        }
    }

    #[test]
    fn slots_are_found_after_growth_and_removals_in_any_order() {
        let mut m = Model {
            index: SlotIndex::default(),
            numbers: Vec::new(),
        };
        let n = 100_000u64;
        for i in 0..n {
            assert_eq!(m.add(861_300_000_000 + i * 7), i as u32);
        }
        assert_eq!(m.index.len(), n as usize);
        for i in (0..n).filter(|i| i % 3 == 0) {
            assert!(m.remove(i as u32));
        }
        assert!(!m.remove(0), "already gone");
        for i in 0..n {
            let want = (i % 3 != 0).then_some(i as u32);
            assert_eq!(m.find(861_300_000_000 + i * 7), want, "{i}");
        }
        assert_eq!(m.find(42), None);
        assert_eq!(m.index.len(), (n - n.div_ceil(3)) as usize);
    }

    proptest::proptest! {
        /// Any sequence of adds and removals (numbers drawn from a small range, so they
        /// collide and wrap around the end) leaves exactly the numbers a plain map holds.
        #[test]
        fn adds_and_removals_agree_with_a_plain_map(
            ops in proptest::collection::vec((proptest::bool::ANY, 0u64..300), 1..600),
            sized in 0usize..64,
        ) {
            let mut m = Model { index: SlotIndex::with_capacity(sized), numbers: Vec::new() };
            let mut model = std::collections::HashMap::new();
            for (add, n) in ops {
                match (add, model.get(&n).copied()) {
                    (true, None) => {
                        model.insert(n, m.add(n));
                    }
                    (false, Some(slot)) => {
                        proptest::prop_assert!(m.remove(slot));
                        model.remove(&n);
                    }
                    _ => {}
                }
            }
            proptest::prop_assert_eq!(m.index.len(), model.len());
            for n in 0..300 {
                let found = m.find(n);
                proptest::prop_assert_eq!(found, model.get(&n).copied(), "{}", n);
            }
        }
    }

    #[test]
    fn a_sized_index_takes_five_bytes_a_slot_and_does_not_grow() {
        let mut m = Model {
            index: SlotIndex::with_capacity(50_000),
            numbers: Vec::new(),
        };
        let bytes = m.index.bytes();
        assert!(bytes <= 50_000 * 5, "{bytes}");
        for i in 0..50_000u64 {
            m.add(13_800_000_000 + i);
        }
        assert_eq!(m.index.bytes(), bytes);
    }

    #[test]
    fn slots_past_the_entry_bits_widen_them() {
        let mut m = Model {
            index: SlotIndex::with_capacity(4),
            numbers: vec![0; 200_000],
        };
        for (k, slot) in [3u32, 70_000, 199_999].into_iter().enumerate() {
            let n = 13_900_000_000 + k as u64;
            m.numbers[slot as usize] = n;
            let numbers = &m.numbers;
            m.index.insert(hash(n), slot, |s| hash(numbers[s as usize]));
        }
        assert_eq!(m.find(13_900_000_002), Some(199_999));
        assert_eq!(m.find(13_900_000_001), Some(70_000));
        assert_eq!(m.find(13_900_000_000), Some(3));
    }
}
