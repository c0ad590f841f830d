//! The consumer group and partition assignment.
//!
//! - **Settings**: `enable.auto.commit=true`, `enable.auto.offset.store=false`: the
//!   partition task stores an offset only once the tickets and dead letters its record
//!   caused are acknowledged, and librdkafka commits what was stored. Range assignment
//!   gives partition `p` of every input topic to one member, where one engine owns those
//!   subscribers.
//! - **Rebalances**: [`RebalanceContext`] drains a revoked partition's task (within
//!   `drain_timeout_ms`, shorter than the session timeout): it writes a checkpoint before
//!   ownership moves. On assignment it reads each partition's latest checkpoint marker
//!   ([`crate::kafka::consumer::assign`]) and starts each input at its offsets, whatever the group
//!   committed; the engine is kept in memory or restored later, by the partition's task.
//!   Offsets are stored only at checkpoints, so the group's committed offsets are the
//!   restore points too (and consumer lag counts what a crash would re-read).
//! - **Assignment bookkeeping**: `OffsetGaps` notices offsets that retention deleted
//!   before we read them (the broker's auto offset reset), so they are logged and counted,
//!   not silently skipped.
//! - **Log ends**: `caught_up` reads librdkafka's cached high watermark (one FFI call,
//!   no network round trip), so a partition task can tell "this input has nothing more"
//!   from "this input is behind".

use rustc_hash::FxHashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::sync::Arc;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::config::{Config, TopicsConfig};

use super::client_config;
use super::partitioner::KeyCheck;
use super::readiness::Condition;
use super::shared::{Control, Shared};
use super::Error;
use crate::driver::Source;
use crate::kafka::consumer::assign::Assigner;
use crate::kafka::consumer::stall::InputSample;
use crate::kafka::partition::merge::Lag;
use errors::fatal_code;

pub mod assign;
mod brokers;
mod errors;
mod poller;
pub mod queues;
mod seek;
pub mod stall;

pub use poller::{Polled, Poller};

pub use seek::rewind;
use seek::start_at;

/// Prefetched records librdkafka keeps per input partition, in KiB, unless
/// `kafka.options` sets `queued.max.messages.kbytes`.
pub const QUEUED_KBYTES_PER_INPUT: usize = 8192;

/// How long the broker may hold a fetch for data, in ms, unless `kafka.options` sets
/// `fetch.wait.max.ms` (see [`create`]).
pub const FETCH_WAIT_MAX_MS: u32 = 100;

/// The service's consumer of the input topics.
pub type InputConsumer = StreamConsumer<RebalanceContext>;

/// Creates the group consumer (it subscribes later, once the topics are checked).
pub(super) fn create(
    cfg: &Config,
    assigner: Arc<Assigner>,
    failures: mpsc::UnboundedSender<Error>,
) -> Result<InputConsumer, KafkaError> {
    let ctx = RebalanceContext {
        shared: assigner.shared.clone(),
        exactly_once: cfg.kafka.processing_guarantee == crate::config::Guarantee::ExactlyOnce,
        stalls: std::sync::Mutex::new(crate::kafka::consumer::stall::StallWatch::new(
            Duration::from_millis(cfg.kafka.stall_timeout_ms),
        )),
        drain_timeout: Duration::from_millis(cfg.kafka.drain_timeout_ms),
        assigner,
        failures,
        queues: queues::Queues::default(),
    };
    let mut cc = client_config(cfg);
    let exactly_once = cfg.kafka.processing_guarantee == crate::config::Guarantee::ExactlyOnce;
    cc.set("group.id", &cfg.kafka.group_id)
        // With exactly_once, offsets commit inside each checkpoint's transaction.
        .set("enable.auto.commit", (!exactly_once).to_string())
        .set("isolation.level", "read_committed")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // Range assignment gives partition p of every input topic to the same member.
        .set("partition.assignment.strategy", "range")
        .set(
            "session.timeout.ms",
            cfg.kafka.session_timeout_ms.to_string(),
        )
        .set("statistics.interval.ms", "5000")
        // Notice new partitions (and topics created after start) within seconds.
        .set("topic.metadata.refresh.interval.ms", "5000");
    if !cfg.kafka.options.contains_key("fetch.queue.backoff.ms") {
        // librdkafka pauses a partition's fetches for fetch.queue.backoff.ms (a second by
        // default) once queued.min.messages are waiting; the event-time merge waiting on
        // that input would then give up on it. Fetch again soon instead.
        cc.set("fetch.queue.backoff.ms", "10");
    }
    if !cfg.kafka.options.contains_key("fetch.wait.max.ms") {
        // librdkafka has one fetch in flight per broker. Once a partition's queue is full
        // it leaves the next fetch, and if the inputs left are quiet (account events and
        // outcomes often are) the broker holds that fetch for fetch.wait.max.ms (500 ms by
        // default) while the full partition drains and then waits, empty. On the peer
        // benchmark that halved throughput. At 100 ms a quiet consumer costs a broker 10
        // small fetches a second. Not lower: Tansu answers fetches with a 50 ms wait
        // nearly empty, and a crash-loop test there stalled.
        cc.set("fetch.wait.max.ms", FETCH_WAIT_MAX_MS.to_string());
    }
    if !cfg.kafka.options.contains_key("queued.max.messages.kbytes") {
        // Each input partition's queue is split off (see `queues`), and librdkafka bounds
        // each alone: 64 MiB by default, per topic-partition, would be gigabytes of
        // prefetch for an instance owning many partitions.
        cc.set(
            "queued.max.messages.kbytes",
            QUEUED_KBYTES_PER_INPUT.to_string(),
        );
    }
    cc.create_with_context(ctx)
}

/// Consumer context: rebalance hooks drain revoked partitions before ownership moves, and
/// statistics feed the consumer-lag gauge.
pub struct RebalanceContext {
    shared: Shared,
    /// With `exactly_once` offsets commit only inside a checkpoint's transaction.
    exactly_once: bool,
    stalls: std::sync::Mutex<crate::kafka::consumer::stall::StallWatch>,
    drain_timeout: Duration,
    assigner: Arc<Assigner>,
    failures: mpsc::UnboundedSender<Error>,
    /// Each input partition's own queue, and the partitions whose tasks are to start.
    pub queues: queues::Queues,
}

impl ClientContext for RebalanceContext {
    /// librdkafka's errors outside any record (a broker down, a refused login): one no
    /// retry mends stops the service; the others librdkafka retries by itself, and the
    /// statistics tell readiness whether a broker connection is up again.
    fn error(&self, e: KafkaError, reason: &str) {
        if let Some(code) = fatal_code(&e) {
            error!(error = %e, reason, "kafka client error no retry mends: stopping");
            let reason = format!("{e}: {reason}");
            let _ = self.failures.send(Error::Consumer { code, reason });
        } else {
            warn!(error = %e, reason, "kafka client error");
        }
    }

    fn stats(&self, stats: Statistics) {
        let mut sample: std::collections::BTreeMap<i32, Vec<InputSample>> = Default::default();
        for (topic, t) in &stats.topics {
            for (p, part) in &t.partitions {
                if *p < 0 {
                    continue;
                }
                if part.consumer_lag >= 0 {
                    self.shared
                        .metrics
                        .consumer_lag
                        .with_label_values(&[topic, &p.to_string()])
                        .set(part.consumer_lag);
                }
                if part.fetch_state != "none" && part.fetch_state != "stopped" {
                    sample.entry(*p).or_default().push(InputSample {
                        app_offset: part.app_offset,
                        committed_offset: part.committed_offset,
                        hi_offset: part.hi_offset,
                    });
                }
            }
        }
        self.watch_stalls(&sample);
        self.watch_brokers(&stats);
    }
}

impl RebalanceContext {
    /// `broker unreachable` while no broker connection is up; once one is, that and a
    /// consumer error noted meanwhile are cleared.
    fn watch_brokers(&self, stats: &Statistics) {
        let r = &self.shared.readiness;
        match brokers::reachable(brokers::connections(stats)) {
            Ok(()) => {
                r.clear(Condition::BrokerUnreachable);
                r.clear(Condition::ConsumerError);
            }
            Err(why) => r.raise(Condition::BrokerUnreachable, why),
        }
    }

    /// Feeds the stall watch one statistics sample; sets `churnwatch_partition_stalled`
    /// and the reason `/readyz` gives.
    fn watch_stalls(&self, sample: &std::collections::BTreeMap<i32, Vec<InputSample>>) {
        let Ok(mut watch) = self.stalls.lock() else {
            return;
        };
        let gauge = &self.shared.metrics.partition_stalled;
        for p in watch.partitions() {
            gauge.with_label_values(&[&p.to_string()]).set(0);
        }
        let now = std::time::Instant::now();
        watch.observe(sample, now);
        let stalls = watch.stalled(now);
        for s in &stalls {
            gauge.with_label_values(&[&s.partition.to_string()]).set(1);
        }
        if let Some(r) = crate::kafka::consumer::stall::reason(&stalls) {
            warn!(reason = %r, "partition stalled");
        }
        let now_stalled = stalls.iter().map(|s| {
            (
                Condition::Stalled(s.partition),
                crate::kafka::consumer::stall::detail(s),
            )
        });
        let stalled = |c: &Condition| matches!(c, Condition::Stalled(_));
        self.shared.readiness.replace(stalled, now_stalled);
    }
}

impl ConsumerContext for RebalanceContext {
    /// rust-rdkafka's default (eager protocol), plus, on assignment, the engines readied
    /// and each input's start offset taken from their checkpoints before `assign`.
    fn rebalance(
        &self,
        base: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => self.assign(base, tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.pre_rebalance(base, &Rebalance::Revoke(tpl));
                if let Err(e) = base.unassign() {
                    warn!(error = %e, "unassign failed");
                }
            }
            other => {
                let e = KafkaError::Rebalance(other.into());
                self.post_rebalance(base, &Rebalance::Error(e));
            }
        }
    }

    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            self.shared
                .metrics
                .rebalances
                .with_label_values(&["revoke"])
                .inc();
            let revoked = partitions(tpl);
            self.queues.revoked(&revoked);
            self.drain(revoked);
            self.shared.metrics.assigned_partitions.set(0);
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                self.shared
                    .metrics
                    .rebalances
                    .with_label_values(&["assign"])
                    .inc();
                let parts = partitions(tpl);
                self.shared
                    .metrics
                    .assigned_partitions
                    .set(parts.len() as i64);
                info!(partitions = parts.len(), "partitions assigned");
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => warn!(error = %e, "rebalance error"),
        }
    }
}

impl RebalanceContext {
    /// Readies the engines of the partitions in `tpl`, starts each input at its engine's
    /// checkpoint, splits off their queues and assigns them.
    fn assign(&self, base: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        let parts = partitions(tpl);
        let offsets = match self.assigner.prepare(&parts) {
            Ok(offsets) => offsets,
            Err(e) => {
                error!(error = %e, "restoring assigned partitions failed; stopping");
                let _ = self.failures.send(Error::Changelog(e));
                return;
            }
        };
        start_at(tpl, offsets.clone());
        if let Err(stop) = self.queues.split(tpl) {
            error!(error = %stop, "stopping");
            let _ = self.failures.send(stop);
            return;
        }
        if let Err(e) = base.assign(tpl) {
            warn!(error = %e, "assign failed");
        } else {
            self.queues.assigned(&parts);
            self.shared.readiness.clear(Condition::JoiningGroup);
            if !self.exactly_once {
                // The checkpoints' offsets become the group's at once: a partition
                // resumed at its log end processes nothing, and if a crash came between
                // its last checkpoint and the commit, its group offsets (and its lag)
                // would stay behind until new input arrived.
                for (topic, p, next) in &offsets {
                    if let Err(e) = base.store_offset(topic, *p, next - 1) {
                        warn!(partition = p, %topic, error = %e, "checkpoint offset not stored");
                    }
                }
            }
        }
        self.post_rebalance(base, &Rebalance::Assign(tpl));
    }

    /// Tells the tasks of `revoked` partitions to drain and waits for them, until the
    /// drain deadline.
    /// Runs on the polling thread ([`Poller`]), which it may block.
    fn drain(&self, revoked: Vec<i32>) {
        let deadline = Instant::now() + self.drain_timeout;
        let mut waits = Vec::new();
        for p in revoked {
            if let Some((_, tx)) = self.shared.partitions.remove(&p) {
                let (done, wait) = std::sync::mpsc::channel();
                // The control channel carries only drains, look-ups and reloads: a full
                // one is a task stuck for good, and its partition restores from its last
                // checkpoint wherever it goes next.
                if tx.try_send(Control::Drain(deadline, done)).is_ok() {
                    waits.push(wait);
                }
            }
        }
        for w in waits {
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = w.recv_timeout(left);
        }
    }
}

/// The distinct partition numbers of a rebalance (each input topic lists the same ones).
fn partitions(tpl: &TopicPartitionList) -> Vec<i32> {
    let mut parts: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
    parts.sort_unstable();
    parts.dedup();
    parts
}

/// Which input a topic is (anything but the CDR and account topics is the outcome topic:
/// the consumer subscribes to nothing else).
pub(super) fn source_of(topics: &TopicsConfig, topic: &str) -> Source {
    if topic == topics.cdr {
        Source::Cdr
    } else if topic == topics.account {
        Source::Account
    } else {
        Source::Outcomes
    }
}

/// Offsets the consumer skipped because retention deleted them before they were read.
///
/// After the broker reports an out-of-range offset (librdkafka resets to the log start),
/// the next record of every input partition seen so far is compared with the offset
/// expected; a gap is the number of records lost.
#[derive(Debug, Default)]
pub(super) struct OffsetGaps {
    next_offset: FxHashMap<(Source, i32), i64>,
    reset_seen: FxHashMap<(Source, i32), bool>,
}

impl OffsetGaps {
    /// A record was read; returns how many offsets before it were skipped by a reset.
    pub(super) fn read(&mut self, source: Source, partition: i32, offset: i64) -> Option<i64> {
        let key = (source, partition);
        let skipped = match self.next_offset.get(&key) {
            Some(expected)
                if offset > *expected && self.reset_seen.remove(&key).unwrap_or(false) =>
            {
                Some(offset - expected)
            }
            _ => None,
        };
        self.next_offset.insert(key, offset + 1);
        skipped
    }

    /// The consumer reported an offset reset: every partition read so far may have a gap.
    pub(super) fn reset(&mut self) {
        for v in self.reset_seen.values_mut() {
            *v = true;
        }
        for k in self.next_offset.keys() {
            self.reset_seen.insert(*k, true);
        }
    }
}

/// What is checked of every record read, before its partition task buffers it: offsets
/// skipped by a reset to the log start (logged and counted) and whether its key belongs
/// on its partition ([`KeyCheck`]).
pub(super) struct Inspect {
    pub keys: KeyCheck,
    pub gaps: OffsetGaps,
}

impl Inspect {
    /// Checks a record read from input `source`'s own queue.
    pub(super) fn record(&mut self, shared: &Shared, source: Source, m: &impl Message) {
        let p = m.partition();
        (self.keys).check(&shared.metrics, &shared.readiness, m.topic(), p, m.key());
        if let Some(skipped) = self.gaps.read(source, p, m.offset()) {
            warn!(
                topic = m.topic(),
                partition = p,
                skipped,
                "offsets deleted by retention before we read them"
            );
            shared
                .metrics
                .offsets_skipped
                .with_label_values(&[m.topic(), &p.to_string()])
                .inc_by(skipped as u64);
        }
    }

    /// Notes an error the consumer reported in place of a record; the reason to stop the
    /// service if no retry can mend it ([`fatal_code`]).
    pub(super) fn error(&mut self, shared: &Shared, e: &KafkaError) -> Option<Error> {
        if let KafkaError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset) = e {
            warn!("consumer offset out of range: resetting to the log start (data deleted before it was read)");
            self.gaps.reset();
            return None;
        }
        if let Some(code) = fatal_code(e) {
            error!(error = %e, "consumer error no retry mends: stopping");
            let reason = e.to_string();
            return Some(Error::Consumer { code, reason });
        }
        warn!(error = %e, "consumer error");
        shared
            .readiness
            .raise(Condition::ConsumerError, e.to_string());
        None
    }
}

/// Whether the consumer has read everything the broker has for `topic` in `partition`:
/// `next` is the offset after the last record received, `None` before the first.
pub(super) fn caught_up(
    consumer: &InputConsumer,
    topic: &str,
    partition: i32,
    next: Option<i64>,
) -> Lag {
    let Some(high) = cached_high_watermark(consumer, topic, partition) else {
        return Lag::Unknown;
    };
    let at_end = match next {
        Some(next) => next >= high,
        None => high <= 0 || position_at_end(consumer, topic, partition, high),
    };
    if at_end {
        Lag::CaughtUp
    } else {
        Lag::Behind
    }
}

fn position_at_end(consumer: &InputConsumer, topic: &str, partition: i32, high: i64) -> bool {
    let Ok(pos) = consumer.position() else {
        return false;
    };
    pos.find_partition(topic, partition)
        .and_then(|e| match e.offset() {
            Offset::Offset(o) => Some(o >= high),
            _ => None,
        })
        .unwrap_or(false)
}

/// The last known end offset of a partition, from librdkafka's cache (updated with every
/// fetch response; no network call).
pub(super) fn cached_high_watermark(
    consumer: &InputConsumer,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    let topic = std::ffi::CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client pointer is valid for the consumer's lifetime (we hold a reference),
    // the topic is a NUL-terminated string alive for the call, and the out-pointers point
    // to live locals. rd_kafka_get_watermark_offsets only reads cached state.
    let err = unsafe {
        rdkafka_sys::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rdkafka_sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
        .then_some(high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_counts_as_skipped_only_after_an_offset_reset() {
        let mut g = OffsetGaps::default();
        assert_eq!(
            g.read(Source::Cdr, 0, 5),
            None,
            "first record: nothing expected"
        );
        assert_eq!(g.read(Source::Cdr, 0, 9), None, "a gap without a reset");
        g.reset();
        assert_eq!(g.read(Source::Cdr, 0, 10), None, "no gap");
        assert_eq!(
            g.read(Source::Cdr, 0, 14),
            Some(3),
            "offsets 11..=13 deleted"
        );
        assert_eq!(g.read(Source::Cdr, 0, 20), None, "one reset, one gap");
        assert_eq!(
            g.read(Source::Account, 0, 7),
            None,
            "unseen before the reset"
        );
    }

    #[test]
    fn topics_map_to_their_input() {
        let t = TopicsConfig::default();
        assert_eq!(source_of(&t, &t.cdr), Source::Cdr);
        assert_eq!(source_of(&t, &t.account), Source::Account);
        assert_eq!(source_of(&t, &t.outcomes), Source::Outcomes);
    }

    #[test]
    fn a_rebalance_lists_each_partition_once() {
        let mut tpl = TopicPartitionList::new();
        for (topic, p) in [("cdr", 1), ("account", 1), ("cdr", 0), ("account", 0)] {
            tpl.add_partition(topic, p);
        }
        assert_eq!(partitions(&tpl), vec![0, 1]);
    }
}
