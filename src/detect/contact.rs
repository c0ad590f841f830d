//! Contact policy: rationed contact, do-not-disturb, and a control group [003].
//!
//! Agents "control contact frequency so as not to annoy the customer", customers can be on
//! a do-not-disturb list, and a published field study found a proactive retention campaign
//! that *raised* churn, so serious teams hold out a random control group to measure the
//! effect of calling.
//!
//! - **Control group**: a stable hash (FNV-1a of the salt and the number) puts a configured
//!   fraction of subscribers in it, the same across runs, builds and instances.
//! - **Contact cap**: at most `max_contacts` routed tickets per subscriber in each aligned
//!   window of `period_days`. Which tickets get the contacts is decided by event time (the
//!   earliest first), not arrival order: when a late ticket is earlier than one already
//!   routed, the later one is re-emitted as capped, so the final tickets do not depend on
//!   arrival order.

use std::hash::Hasher;

use super::event::{Msisdn, StableHasher};
use super::snapshot::{Put, Reader, SnapshotError};

/// Whether a subscriber is in the control group.
pub fn in_control_group(subscriber: Msisdn, fraction: f64, salt: &str) -> bool {
    if fraction <= 0.0 {
        return false;
    }
    let mut h = StableHasher::default();
    h.write(salt.as_bytes());
    h.write(&[0]);
    h.write(&subscriber.0.to_le_bytes());
    let bucket = h.finish() % 1_000_000;
    (bucket as f64) < fraction * 1_000_000.0
}

/// The routed tickets of one subscriber in one cap window.
#[derive(Debug, Clone, Default)]
pub struct ContactWindow {
    pub window: i64,
    /// `(created_ms, ticket id)` of tickets wanting a contact, in any order.
    entries: Vec<(i64, String)>,
}

impl ContactWindow {
    pub fn new(window: i64) -> ContactWindow {
        ContactWindow {
            window,
            entries: Vec::new(),
        }
    }

    /// Adds (or moves, when re-emitted with an earlier time) a ticket and returns the ids
    /// whose contact decision changed, with the new decision (`true` = contact allowed).
    /// The new ticket itself is always in the answer.
    pub fn admit(&mut self, created_ms: i64, id: &str, max: usize) -> Vec<(String, bool)> {
        let before = self.allowed(max);
        self.entries.retain(|(_, i)| i != id);
        self.entries.push((created_ms, id.to_string()));
        let after = self.allowed(max);
        let mut changed: Vec<(String, bool)> = Vec::new();
        for (_, i) in &self.entries {
            let now = after.contains(i);
            if i == id || before.contains(i) != now {
                changed.push((i.clone(), now));
            }
        }
        changed
    }

    /// Removes a ticket (it moved to another window) and returns the ids whose contact
    /// decision changed, with the new decision.
    pub fn remove(&mut self, id: &str, max: usize) -> Vec<(String, bool)> {
        let before = self.allowed(max);
        self.entries.retain(|(_, i)| i != id);
        let after = self.allowed(max);
        self.entries
            .iter()
            .filter(|(_, i)| before.contains(i) != after.contains(i))
            .map(|(_, i)| (i.clone(), after.contains(i)))
            .collect()
    }

    /// Ids of the tickets created in `from_ms..=to_ms`.
    pub fn created_between(&self, from_ms: i64, to_ms: i64) -> Vec<String> {
        self.entries
            .iter()
            .filter(|(t, _)| (from_ms..=to_ms).contains(t))
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// Appends the window's tickets for a snapshot (in their order, which decides the
    /// order of re-emissions).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.put_i64(self.window);
        out.put_len(self.entries.len());
        for (t, id) in &self.entries {
            out.put_i64(*t);
            out.put_str(id);
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<ContactWindow, SnapshotError> {
        let window = r.i64()?;
        let n = r.count(12)?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            entries.push((r.i64()?, r.str()?.to_string()));
        }
        Ok(ContactWindow { window, entries })
    }

    fn allowed(&self, max: usize) -> Vec<String> {
        let mut sorted: Vec<&(i64, String)> = self.entries.iter().collect();
        sorted.sort();
        sorted
            .into_iter()
            .take(max)
            .map(|(_, i)| i.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_control_group_is_stable_and_about_the_right_size() {
        let n = 20_000u64;
        let inside = (0..n)
            .filter(|i| in_control_group(Msisdn(8613000000000 + i), 0.1, "churnwatch"))
            .count();
        assert!((1_700..2_300).contains(&inside), "{inside}");
        // Pinned: membership must not change between runs or builds.
        let pinned: Vec<u64> = (0..40u64)
            .filter(|i| in_control_group(Msisdn(8613000000000 + i), 0.1, "churnwatch"))
            .collect();
        assert_eq!(pinned, PINNED);
        assert!(!in_control_group(Msisdn(8613000000001), 0.0, "churnwatch"));
        let other_salt = (0..n)
            .filter(|i| in_control_group(Msisdn(8613000000000 + i), 0.1, "2027"))
            .count();
        assert_ne!(inside, 0);
        assert_ne!(other_salt, 0);
    }

    const PINNED: &[u64] = &[5, 16, 27, 32, 38, 39];

    #[test]
    fn tickets_are_found_by_creation_time_bounds_included() {
        let mut w = ContactWindow::new(0);
        for (t, id) in [(100, "a"), (200, "b"), (300, "c")] {
            w.admit(t, id, 2);
        }
        assert_eq!(w.created_between(200, 300), vec!["b", "c"]);
        assert!(w.created_between(301, 400).is_empty());
    }

    #[test]
    fn the_cap_goes_to_the_earliest_tickets_whatever_the_arrival_order() {
        let mut w = ContactWindow::new(0);
        assert_eq!(w.admit(300, "c", 2), vec![("c".to_string(), true)]);
        assert_eq!(w.admit(200, "b", 2), vec![("b".to_string(), true)]);
        // An earlier ticket arrives late: it takes a contact and "c" loses its own.
        let changed = w.admit(100, "a", 2);
        assert!(changed.contains(&("a".to_string(), true)));
        assert!(changed.contains(&("c".to_string(), false)));
        assert_eq!(changed.len(), 2);
        // A later one is capped and changes nothing else.
        assert_eq!(w.admit(400, "d", 2), vec![("d".to_string(), false)]);
        // When "a" moves to another window, "c" gets its contact back.
        assert_eq!(w.remove("a", 2), vec![("c".to_string(), true)]);
    }
}
