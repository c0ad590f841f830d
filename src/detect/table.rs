//! All subscribers of one engine: number -> dense slot, and slots freed by eviction.
//!
//! The table maps the subscriber number (`u64`) to a slot in a dense `Vec` of
//! [`SubscriberState`]s. The index ([`super::index`]) holds only the 4-byte slots, hashed
//! through the slot's number in `numbers` (which the table keeps anyway): under 5 bytes a
//! subscriber, against 13 or more for a map that copies the number as its key.
//!
//! **Why slots are reused.** A live base sees new numbers every day (new lines, recycled
//! numbers, roaming partners) and loses others (ports-out, silent SIMs). The engine evicts
//! the leavers ([`super::eviction`]); a freed slot goes back to a free list and the next new
//! number takes it, so the `Vec`s and the map stay as large as the peak of subscribers held
//! at once, not the count of numbers ever seen.
//!
//! **Why the lowest free slot.** Day closes walk the slots in order, so the slot order is
//! the order of their tickets. Taking the lowest free slot makes the layout a function of
//! which slots are live: a table restored from its records (each carries its slot) hands
//! out the same slots as the one it was saved from, and both emit tickets in the same order.
//!
//! **Last-seen days** live beside the states, not in them: the state's layout and its
//! changelog encoding are fixed. After a restore they are rebuilt from the state
//! ([`super::eviction::last_trace`]).
//!
//! **Last tickets** ([`super::quality::LastTicket`], 8 bytes) live beside them for the same
//! reason; unlike last-seen days they cannot be rebuilt, so the subscriber record carries
//! them (see [`super::snapshot`]).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::calendar::Day;
use super::index::SlotIndex;
use super::quality::LastTicket;
use super::state::SubscriberState;

/// The number of a free slot (no MSISDN has 20 digits).
const FREE: u64 = u64::MAX;

/// The index's hash of a number (a multiply and a fold: numbers are dense decimal, the
/// high bits of the product mix every digit).
#[inline]
fn hash(msisdn: u64) -> u64 {
    let h = msisdn.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^ (h >> 29)
}

/// Slots whose state may have changed since the last [`SubscriberTable::drain_changed`]
/// are marked in a bitset (one bit per slot, set on creation and by
/// [`SubscriberTable::get_mut`]), so a checkpoint writes only those (see
/// [`super::snapshot`]).
#[derive(Debug, Default)]
pub struct SubscriberTable {
    /// Slots, hashed by their number.
    index: SlotIndex,
    states: Vec<SubscriberState>,
    numbers: Vec<u64>,
    /// Day of the newest record per slot (0 = none).
    last_seen: Vec<u16>,
    /// Each slot's last ticket, for the quality figures.
    last_ticket: Vec<LastTicket>,
    changed: Vec<u64>,
    free: BinaryHeap<Reverse<u32>>,
}

/// What [`SubscriberTable::reorder`] did.
#[derive(Debug)]
pub(crate) struct Relayout {
    /// Old slot -> new slot, `None` when nothing moved.
    pub new_of: Option<Vec<u32>>,
    /// Every live slot got the slot its record named.
    pub exact: bool,
}

impl SubscriberTable {
    pub fn with_capacity(n: usize) -> SubscriberTable {
        SubscriberTable {
            index: SlotIndex::with_capacity(n),
            states: Vec::with_capacity(n),
            numbers: Vec::with_capacity(n),
            last_seen: Vec::with_capacity(n),
            last_ticket: Vec::with_capacity(n),
            changed: Vec::with_capacity(n.div_ceil(64)),
            free: BinaryHeap::new(),
        }
    }

    /// The slot of a subscriber, created on first sight (the lowest free slot, else a new
    /// one) and marked changed.
    pub fn slot(&mut self, msisdn: u64) -> u32 {
        debug_assert_ne!(msisdn, FREE);
        let h = hash(msisdn);
        let numbers = &self.numbers;
        if let Some(slot) = self.index.find(h, |s| numbers[s as usize] == msisdn) {
            return slot;
        }
        let slot = match self.free.pop() {
            Some(Reverse(slot)) => slot,
            None => self.grow(),
        };
        self.numbers[slot as usize] = msisdn;
        let numbers = &self.numbers;
        (self.index).insert(h, slot, |s| hash(numbers[s as usize]));
        self.mark_changed(slot);
        slot
    }

    fn grow(&mut self) -> u32 {
        let slot = self.states.len() as u32;
        self.states.push(SubscriberState::default());
        self.numbers.push(FREE);
        self.last_seen.push(0);
        self.last_ticket.push(LastTicket::default());
        if slot % 64 == 0 {
            self.changed.push(0);
        }
        slot
    }

    /// Removes a subscriber: its slot is reset and freed for the next new number. Returns
    /// the number it held.
    pub fn evict(&mut self, slot: u32) -> u64 {
        let s = slot as usize;
        let number = self.numbers[s];
        debug_assert_ne!(number, FREE, "slot {slot} is already free");
        let numbers = &self.numbers;
        (self.index).remove(hash(number), slot, |s| hash(numbers[s as usize]));
        self.numbers[s] = FREE;
        self.states[s] = SubscriberState::default();
        self.last_seen[s] = 0;
        self.last_ticket[s] = LastTicket::default();
        self.changed[s / 64] &= !(1 << (s % 64));
        self.free.push(Reverse(slot));
        number
    }

    /// Notes a record of `day` for the subscriber.
    pub fn touch(&mut self, slot: u32, day: Day) {
        let d = day.clamp(1, i32::from(u16::MAX)) as u16;
        let seen = &mut self.last_seen[slot as usize];
        *seen = (*seen).max(d);
    }

    /// Day of the subscriber's newest record (0 if none is known).
    pub fn last_seen(&self, slot: u32) -> Day {
        Day::from(self.last_seen[slot as usize])
    }

    pub(crate) fn set_last_seen(&mut self, slot: u32, day: Day) {
        self.last_seen[slot as usize] = day.clamp(1, i32::from(u16::MAX)) as u16;
    }

    /// The subscriber's last ticket (none: the default).
    pub fn last_ticket(&self, slot: u32) -> LastTicket {
        self.last_ticket[slot as usize]
    }

    /// The last ticket to change (the slot is marked changed: the record carries it).
    pub fn last_ticket_mut(&mut self, slot: u32) -> &mut LastTicket {
        self.mark_changed(slot);
        &mut self.last_ticket[slot as usize]
    }

    fn mark_changed(&mut self, slot: u32) {
        self.changed[slot as usize / 64] |= 1 << (slot % 64);
    }

    /// Looks `msisdn` up and, if held, prefetches the lines a record of it touches: the
    /// state's (four: a record reads and writes fields all over it) and its last-seen day.
    pub(crate) fn prefetch(&self, msisdn: u64) {
        if let Some(slot) = self.find(msisdn) {
            super::prefetch::prefetch_all(&self.states[slot as usize]);
            super::prefetch::prefetch(&self.last_seen[slot as usize]);
        }
    }

    pub fn find(&self, msisdn: u64) -> Option<u32> {
        let numbers = &self.numbers;
        (self.index).find(hash(msisdn), |s| numbers[s as usize] == msisdn)
    }

    /// Whether `slot` holds a subscriber (not free).
    pub fn is_live(&self, slot: u32) -> bool {
        self.numbers[slot as usize] != FREE
    }

    pub fn get(&self, slot: u32) -> &SubscriberState {
        &self.states[slot as usize]
    }

    /// The state to change (the slot is marked changed).
    pub fn get_mut(&mut self, slot: u32) -> &mut SubscriberState {
        self.mark_changed(slot);
        &mut self.states[slot as usize]
    }

    pub fn number(&self, slot: u32) -> u64 {
        self.numbers[slot as usize]
    }

    /// Subscribers held.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Slots, live and free: every slot is below this.
    pub fn slots(&self) -> u32 {
        self.states.len() as u32
    }

    /// Approximate bytes held: states, numbers, last-seen days, last tickets, the index,
    /// the changed bits and the free list.
    pub fn bytes(&self) -> usize {
        self.states.capacity() * std::mem::size_of::<SubscriberState>()
            + self.numbers.capacity() * 8
            + self.last_seen.capacity() * 2
            + self.last_ticket.capacity() * std::mem::size_of::<LastTicket>()
            + self.index.bytes()
            + self.changed.capacity() * 8
            + self.free.capacity() * 4
    }

    /// Calls `f(slot, number, state, last ticket)` for every live slot changed since the
    /// last call (every live slot when `all`), in slot order, then forgets the changes.
    pub fn drain_changed(
        &mut self,
        all: bool,
        mut f: impl FnMut(u32, u64, &SubscriberState, LastTicket),
    ) {
        for (w, word) in self.changed.iter_mut().enumerate() {
            let mut bits = if all { u64::MAX } else { *word };
            *word = 0;
            while bits != 0 {
                let slot = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if slot >= self.states.len() {
                    break;
                }
                if self.numbers[slot] != FREE {
                    let last = self.last_ticket[slot];
                    f(slot as u32, self.numbers[slot], &self.states[slot], last);
                }
            }
        }
    }

    /// Marks every slot changed (`true`) or none (`false`).
    pub(crate) fn mark_all(&mut self, changed: bool) {
        self.changed.fill(if changed { u64::MAX } else { 0 });
    }

    /// Puts a restored state in place of `slot`'s.
    pub(crate) fn restore(&mut self, slot: u32, state: SubscriberState, last: LastTicket) {
        self.states[slot as usize] = state;
        self.last_ticket[slot as usize] = last;
    }

    /// Moves the live subscribers to the slots `order` names (one entry per slot; free
    /// slots' are ignored), leaving the slots between them free. When two name the same
    /// slot, one names none, or the slots named are implausibly sparse (a damaged log),
    /// the live subscribers are packed in (order, number) order instead (`exact` false).
    pub(crate) fn reorder(&mut self, order: &[u32]) -> Relayout {
        debug_assert_eq!(order.len(), self.states.len());
        let live: Vec<u32> = (0..self.slots()).filter(|&s| self.is_live(s)).collect();
        let (new_of, len, exact) = match self.exact_layout(&live, order) {
            Some(len) => (order.to_vec(), len, true),
            None => (self.packed_layout(&live, order), live.len(), false),
        };
        let moved = live.iter().any(|&s| new_of[s as usize] != s);
        if !moved && len == self.states.len() {
            self.rebuild_free();
            return Relayout {
                new_of: None,
                exact,
            };
        }
        let mut states = vec![SubscriberState::default(); len];
        let mut numbers = vec![FREE; len];
        let mut last_seen = vec![0u16; len];
        let mut last_ticket = vec![LastTicket::default(); len];
        for &old in &live {
            let (old, new) = (old as usize, new_of[old as usize] as usize);
            states[new] = self.states[old];
            numbers[new] = self.numbers[old];
            last_seen[new] = self.last_seen[old];
            last_ticket[new] = self.last_ticket[old];
        }
        (self.states, self.numbers, self.last_seen) = (states, numbers, last_seen);
        self.index.clear();
        for &old in &live {
            let slot = new_of[old as usize];
            let numbers = &self.numbers;
            let h = hash(numbers[slot as usize]);
            (self.index).insert(h, slot, |s| hash(numbers[s as usize]));
        }
        self.last_ticket = last_ticket;
        self.changed = vec![0; len.div_ceil(64)];
        self.rebuild_free();
        Relayout {
            new_of: Some(new_of),
            exact,
        }
    }

    /// The table length when every live slot's `order` is distinct and plausible.
    fn exact_layout(&self, live: &[u32], order: &[u32]) -> Option<usize> {
        let bound = 8 * live.len() + 65_536;
        let mut seen = vec![0u64; bound.div_ceil(64)];
        let mut len = 0;
        for &s in live {
            let o = order[s as usize] as usize;
            if o >= bound || seen[o / 64] & (1 << (o % 64)) != 0 {
                return None;
            }
            seen[o / 64] |= 1 << (o % 64);
            len = len.max(o + 1);
        }
        Some(len)
    }

    /// Old slot -> new slot packing the live slots by (order, number).
    fn packed_layout(&self, live: &[u32], order: &[u32]) -> Vec<u32> {
        let mut by = live.to_vec();
        by.sort_unstable_by_key(|&s| (order[s as usize], self.numbers[s as usize]));
        let mut new_of = vec![u32::MAX; order.len()];
        for (new, &old) in by.iter().enumerate() {
            new_of[old as usize] = new as u32;
        }
        new_of
    }

    fn rebuild_free(&mut self) {
        self.free = (0..self.slots())
            .filter(|&s| !self.is_live(s))
            .map(Reverse)
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: u64 = 8613000000001;
    const B: u64 = 8613000000002;
    const C: u64 = 8613000000003;

    #[test]
    fn table_gives_dense_slots() {
        let mut t = SubscriberTable::with_capacity(4);
        assert_eq!(t.slot(A), 0);
        assert_eq!(t.slot(B), 1);
        assert_eq!(t.slot(A), 0);
        assert_eq!(t.number(1), B);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn an_evicted_slot_is_reset_and_reused_lowest_first() {
        let mut t = SubscriberTable::default();
        for n in 0..4 {
            t.slot(A + n);
        }
        t.get_mut(1).churned_day = 9;
        t.touch(1, 20_000);
        *t.last_ticket_mut(1) = LastTicket::default().with_mask(4);
        assert_eq!(t.evict(2), A + 2);
        assert_eq!(t.evict(1), A + 1);
        assert_eq!((t.len(), t.slots()), (2, 4));
        assert_eq!(t.find(A + 1), None);
        assert!(!t.is_live(1) && t.is_live(3));
        let bytes = t.bytes();
        assert_eq!(t.slot(C + 10), 1, "the lowest free slot first");
        assert_eq!(t.slot(C + 11), 2);
        assert_eq!(t.slot(C + 12), 4, "none free: the table grows");
        assert_eq!(
            *t.get(1),
            SubscriberState::default(),
            "a reused slot starts afresh"
        );
        assert_eq!(t.last_seen(1), 0);
        assert_eq!(
            t.last_ticket(1),
            LastTicket::default(),
            "eviction frees the last ticket"
        );
        assert!(t.bytes() <= bytes + 4 * std::mem::size_of::<SubscriberState>() + 128);
    }

    #[test]
    fn churn_through_many_numbers_keeps_the_table_flat() {
        let mut t = SubscriberTable::default();
        for n in 0..1_000u64 {
            t.slot(A + n);
        }
        let bytes = t.bytes();
        for round in 1..20u64 {
            for s in 0..500 {
                t.evict(s);
            }
            for n in 0..500 {
                t.slot(A + round * 10_000 + n);
            }
        }
        assert_eq!((t.len(), t.slots()), (1_000, 1_000));
        assert!(t.bytes() <= bytes + bytes / 10, "{} > {bytes}", t.bytes());
    }

    #[test]
    fn free_slots_are_not_drained() {
        let mut t = SubscriberTable::default();
        for n in 0..3 {
            t.slot(A + n);
        }
        t.evict(1);
        let mut seen = Vec::new();
        t.drain_changed(true, |s, m, _, _| seen.push((s, m)));
        assert_eq!(seen, vec![(0, A), (2, A + 2)]);
    }

    #[test]
    fn a_restore_with_holes_keeps_them_free_and_a_clash_packs() {
        let mut t = SubscriberTable::default();
        t.slot(B);
        t.slot(A);
        let r = t.reorder(&[3, 1]);
        assert!(r.exact);
        assert_eq!((t.find(A), t.find(B), t.slots()), (Some(1), Some(3), 4));
        assert_eq!(t.slot(C), 0, "holes are free slots");
        assert_eq!(t.slot(C + 1), 2);

        let mut t = SubscriberTable::default();
        t.slot(B);
        t.slot(A);
        let r = t.reorder(&[5, 5]);
        assert!(!r.exact);
        assert_eq!((t.find(A), t.find(B), t.slots()), (Some(0), Some(1), 2));
    }
}
