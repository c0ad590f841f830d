//! The detection core: pure, deterministic, broker-free.
//!
//! Data flow: an [`Event`] goes to [`Engine::apply`], which drops duplicates and records
//! beyond the allowed lateness, folds the event into the subscriber's fixed-size
//! [`state::SubscriberState`], runs the record-triggered rules, and closes any calendar
//! days the watermark has passed, running the day- and month-close rules over every
//! subscriber. Signals become [`proto::CareTicket`](crate::proto::CareTicket)s in
//! [`ticket`].
//!
//! Invariants: no I/O, no wall clock, no randomness; a day's usage is judged only once no
//! late record can change it, which is what makes tickets independent of arrival order.
//!
//! Modules, one concept each:
//! - [`engine`] drives the rest: records ([`engine`]'s `records` and `account`) and day
//!   closes (`close`), with [`watermark`] deciding what is late and which days close;
//! - [`rules`] holds one file per rule (its config section, doc, judge and tests) and the
//!   registry: [`rules::RuleId`], [`rules::RulesConfig`] and the close-rule table;
//! - [`policy`] decides what becomes of raised signals (tiers via [`tier`], queues via
//!   [`routing`], the control group, do-not-disturb, the contact cap via [`contact`],
//!   outcome suppression), and [`ticket`] builds the ticket;
//! - [`state`] is the fixed-size subscriber state, [`table`] the slots that hold them (freed
//!   by [`eviction`] so memory follows the base, not every number ever seen), [`facts`] the
//!   account events waiting for their turn, [`event`] the decoded input, [`calendar`] and [`numbering`] the
//!   operator's days and number plan;
//! - [`snapshot`] encodes what a checkpoint saves (a record per changed subscriber, the
//!   rest of the engine whole, de-duplication ids incrementally) so an adapter can keep a
//!   changelog and restore a partition's engine after a crash;
//! - [`quality`] judges the engine's own tickets against the `Churned` events (hits,
//!   misses, false alarms, lead time, control against treated), live and in replay alike;
//! - [`config`] is the core's own configuration, [`validate`] its error, [`stats`] the
//!   counters. Nothing here imports from outside `detect` but the generated wire types.

pub mod calendar;
pub mod config;
pub mod contact;
pub mod dedup;
pub mod engine;
pub mod event;
pub mod eviction;
pub mod facts;
pub mod index;
pub mod numbering;
pub mod policy;
pub mod prefetch;
pub mod quality;
pub mod routing;
pub mod rules;
pub mod snapshot;
pub mod state;
pub mod stats;
pub mod table;
pub mod ticket;
pub mod tier;
pub mod validate;
pub mod watermark;
pub mod withdraw;

pub use config::DetectConfig;
pub use engine::{Applied, Engine, EngineStats};
pub use event::{
    AccountEvent, AccountKind, Cdr, CdrKind, ChurnKind, Event, Msisdn, OutcomeKind, Period,
    RecordKey, SuspensionReason, TicketOutcomeEvent,
};
pub use snapshot::SnapshotError;
