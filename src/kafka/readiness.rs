//! Readiness as one set of named conditions: the service is ready when none holds.
//!
//! Readiness decides whether an orchestrator sends look-ups to an instance and whether a
//! rollout goes on, so it must never say "ready" while something is wrong. With a single
//! flag, each place that saw its own trouble end set it back to ready, whatever else
//! was still wrong (a finished restore hid a stalled partition). Here each place raises
//! and clears only its own condition, and `/readyz` lists every condition that holds.
//!
//! What is not a condition: records keyed for another partition (see
//! [`super::partitioner`]). Every instance reads the same upstream producers, so that
//! alarm would take every instance out of service together and block rollouts while
//! fixing nothing; it is a metric, a log line and an alert, and `/readyz` mentions it as a
//! warning with a 200.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use prometheus::IntGauge;

/// Something that keeps the service from being ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Condition {
    /// The process started and has not subscribed yet.
    Starting,
    /// The broker does not answer metadata requests.
    BrokerUnreachable,
    /// An input topic does not exist yet.
    TopicMissing,
    /// Subscribed, and the group has not assigned this member its partitions yet.
    JoiningGroup,
    /// The consumer reported an error (cleared when the broker answers again).
    ConsumerError,
    /// A partition's state is being restored from the changelog.
    Restoring(i32),
    /// A partition has records waiting and makes no progress.
    Stalled(i32),
    /// A partition's task keeps failing and restarting.
    Restarting(i32),
    /// The service is shutting down.
    Stopped,
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Starting => write!(f, "starting"),
            Condition::BrokerUnreachable => write!(f, "broker unreachable"),
            Condition::TopicMissing => write!(f, "input topic missing"),
            Condition::JoiningGroup => write!(f, "joining the consumer group"),
            Condition::ConsumerError => write!(f, "consumer error"),
            Condition::Restoring(p) => write!(f, "restoring partition {p}"),
            Condition::Stalled(p) => write!(f, "partition {p} stalled"),
            Condition::Restarting(p) => write!(f, "partition task {p} restarting"),
            Condition::Stopped => write!(f, "stopped"),
        }
    }
}

/// The conditions that hold, each with what was seen; shared by every task and `/readyz`.
#[derive(Clone)]
pub struct Readiness {
    held: Arc<Mutex<BTreeMap<Condition, String>>>,
    warnings: Arc<Mutex<Vec<String>>>,
    /// `churnwatch_ready`: 1 exactly when no condition holds.
    gauge: IntGauge,
}

impl Readiness {
    /// Starts with [`Condition::Starting`]: nothing is ready before the service says so.
    pub fn new(gauge: IntGauge) -> Readiness {
        let r = Readiness {
            held: Arc::default(),
            warnings: Arc::default(),
            gauge,
        };
        r.raise(Condition::Starting, "");
        r
    }

    /// Marks `c` as holding, with what was seen (replacing its earlier detail).
    pub fn raise(&self, c: Condition, detail: impl Into<String>) {
        self.update(|held| {
            held.insert(c, detail.into());
        });
    }

    /// Marks `c` as no longer holding.
    pub fn clear(&self, c: Condition) {
        self.update(|held| {
            held.remove(&c);
        });
    }

    /// Replaces every condition `matches` selects with `now` (so those that ended are
    /// cleared in the same step as the new ones are raised).
    pub fn replace(
        &self,
        matches: impl Fn(&Condition) -> bool,
        now: impl IntoIterator<Item = (Condition, String)>,
    ) {
        self.update(|held| {
            held.retain(|c, _| !matches(c));
            held.extend(now);
        });
    }

    /// Whether `c` holds.
    pub fn holds(&self, c: Condition) -> bool {
        self.lock().contains_key(&c)
    }

    /// True when no condition holds.
    pub fn is_ready(&self) -> bool {
        self.lock().is_empty()
    }

    /// Each condition that holds, as `/readyz` says it: `name: detail`.
    pub fn failing(&self) -> Vec<String> {
        self.lock()
            .iter()
            .map(|(c, d)| match d.is_empty() {
                true => c.to_string(),
                false => format!("{c}: {d}"),
            })
            .collect()
    }

    /// Adds a warning `/readyz` shows without failing (the first of each text kept).
    pub fn warn(&self, text: &str) {
        let mut w = self.warnings.lock().unwrap_or_else(|e| e.into_inner());
        if !w.iter().any(|x| x == text) {
            w.push(text.to_string());
        }
    }

    /// The warnings, for `/readyz`.
    pub fn warnings(&self) -> Vec<String> {
        self.warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Condition, String>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, change: impl FnOnce(&mut BTreeMap<Condition, String>)) {
        let mut held = self.lock();
        change(&mut held);
        self.gauge.set(i64::from(held.is_empty()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readiness() -> Readiness {
        Readiness::new(IntGauge::new("ready", "test").unwrap())
    }

    #[test]
    fn a_new_service_is_not_ready_until_it_says_so() {
        let r = readiness();
        assert!(!r.is_ready());
        assert_eq!(r.failing(), ["starting"]);
        r.clear(Condition::Starting);
        assert!(r.is_ready());
        assert_eq!(r.gauge.get(), 1);
    }

    #[test]
    fn clearing_one_condition_leaves_the_others_failing() {
        let r = readiness();
        r.clear(Condition::Starting);
        r.raise(Condition::Stalled(2), "40 records behind");
        r.raise(Condition::Restoring(3), "10/20");
        r.clear(Condition::Restoring(3));
        assert!(!r.is_ready());
        assert_eq!(r.gauge.get(), 0);
        assert_eq!(r.failing(), ["partition 2 stalled: 40 records behind"]);
    }

    #[test]
    fn replace_swaps_one_kind_and_keeps_the_rest() {
        let r = readiness();
        r.clear(Condition::Starting);
        r.raise(Condition::Stalled(1), "a");
        r.raise(Condition::Restoring(4), "1/2");
        let stalled = |c: &Condition| matches!(c, Condition::Stalled(_));
        r.replace(stalled, [(Condition::Stalled(5), "b".to_string())]);
        assert_eq!(
            r.failing(),
            ["restoring partition 4: 1/2", "partition 5 stalled: b"]
        );
        r.replace(stalled, []);
        r.clear(Condition::Restoring(4));
        assert!(r.is_ready());
    }

    #[test]
    fn warnings_do_not_fail_readiness_and_are_kept_once() {
        let r = readiness();
        r.clear(Condition::Starting);
        r.warn("records on partition 0 of `cdr` keyed for another");
        r.warn("records on partition 0 of `cdr` keyed for another");
        assert!(r.is_ready());
        assert_eq!(r.warnings().len(), 1);
    }
}
