//! Faults the tests inject into partition tasks, to show what supervision and isolation
//! do with a bug no input can cause (input never panics a task; it is dead-lettered).
//!
//! Compiled in only with the `fault-injection` feature, which `.ci/run` turns on for the
//! tests: without it [`Faults`] is empty and its check is a constant. The faults reach
//! the tasks through [`super::shared::Shared`], which the caller of the service builds:
//! nothing is read from the environment.

/// What to do to a partition task, by the bytes of a record's value.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Panic on a record whose value holds these bytes (a bug in processing it).
    #[cfg(feature = "fault-injection")]
    pub fail_on: Option<Vec<u8>>,
    /// Stop for good on a record whose value holds these bytes, as if its publications
    /// never came back (a stuck partition).
    #[cfg(feature = "fault-injection")]
    pub hold_on: Option<Vec<u8>>,
}

/// What a task does with a record after [`Faults::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    /// Nothing: process it.
    None,
    /// Stop here for good.
    Hold,
}

impl Faults {
    /// Panics on a record meant to fail the task; [`Injected::Hold`] for one meant to
    /// stop it.
    #[inline]
    pub fn check(&self, payload: Option<&[u8]>) -> Injected {
        #[cfg(feature = "fault-injection")]
        {
            let holds = |needle: &Option<Vec<u8>>| match (needle, payload) {
                (Some(n), Some(p)) if !n.is_empty() => p.windows(n.len()).any(|w| w == n),
                _ => false,
            };
            if holds(&self.fail_on) {
                panic!("an injected fault matched a record (fault-injection)");
            }
            if holds(&self.hold_on) {
                return Injected::Hold;
            }
        }
        let _ = payload;
        Injected::None
    }
}

#[cfg(all(test, feature = "fault-injection"))]
mod tests {
    use super::*;

    #[test]
    fn a_record_holding_the_bytes_fails_or_holds_the_task() {
        let f = Faults {
            fail_on: Some(b"poison".to_vec()),
            hold_on: Some(b"hold".to_vec()),
        };
        assert_eq!(f.check(Some(b"{\"id\":\"hold-1\"}")), Injected::Hold);
        assert_eq!(f.check(Some(b"plain")), Injected::None);
        assert_eq!(f.check(None), Injected::None);
        let failed = std::panic::catch_unwind(|| f.check(Some(b"x poison x")));
        assert!(failed.is_err());
    }
}
