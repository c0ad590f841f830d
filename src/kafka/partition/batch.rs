//! Records go through a partition task in batches: everything the merge lets out while
//! there is room is one batch, processed with one reading of each clock, and counted,
//! published and acknowledged as one.
//!
//! **Why.** Per record, the task used to read the clocks three times, look up its metric
//! handles, go around its `select!` loop and wait for an acknowledgement of its own: on two
//! cores that cost ten times what the engine spends. Per batch, those costs are shared by
//! the records, and the engine is again most of the work.
//!
//! **What a batch changes for a record.** Nothing in what it yields or in its order:
//! records are still merged by event time and processed one after another, and each
//! record's tickets and dead letter are published in that order. Its offset is stored once
//! every publication of its batch is acknowledged (at the checkpoint, as before). Its
//! processing latency is measured from when its batch's oldest record was taken from
//! librdkafka to when the batch's publications are all acknowledged; its append latency
//! from the batch's oldest broker timestamp, so it includes the wait in the topic.

use std::time::Instant;

use rdkafka::message::OwnedMessage;
use tracing::warn;

use crate::metrics::Metrics;
use crate::proto::CareTicket;

use super::super::dead_letter;
use super::super::fault::Injected;
use super::super::producer::{Publication, Refused};
use super::{consumer, wall_clock_ms, PartitionTask};
use crate::driver::{Reason, Source};
use crate::kafka::partition::merge::{Held, Lag};
use crate::kafka::partition::worker::{Outcome, Raw};

/// The most records in one batch: bounds the latency a batch adds to its first record.
pub(super) const MAX_BATCH: usize = 2048;

/// The metric handles of one partition, resolved once.
pub(super) struct PartitionHandles {
    pub subscribers: prometheus::IntGauge,
    pub state_bytes: prometheus::IntGauge,
    pub dedup_dropped: prometheus::IntCounter,
    pub idle: prometheus::IntGauge,
    /// Per input (by [`Source::index`]): records consumed, event-time lag.
    pub inputs: [Option<(prometheus::IntCounter, prometheus::Gauge)>; 3],
}

impl PartitionHandles {
    pub(super) fn new(m: &Metrics, partition: i32) -> PartitionHandles {
        let p = partition.to_string();
        PartitionHandles {
            subscribers: m.subscribers.with_label_values(&[&p]),
            state_bytes: m.state_bytes.with_label_values(&[&p]),
            dedup_dropped: m.dedup_ids_dropped.with_label_values(&[&p]),
            idle: m.partition_idle.with_label_values(&[&p]),
            inputs: [None, None, None],
        }
    }
}

/// What one batch has done so far.
#[derive(Default)]
pub(super) struct Batch {
    pub records: usize,
    /// Arrival of the oldest record in the batch.
    pub oldest: Option<Instant>,
    /// The oldest broker timestamp in the batch, ms since the epoch.
    pub appended: Option<i64>,
    pub publications: Vec<Publication>,
    /// Payload bytes of `publications`.
    bytes: usize,
    /// Per input: records, and the event time of the last one that decoded.
    consumed: [u64; 3],
    last_event: [Option<i64>; 3],
    /// Per input: the offset after the last record processed.
    next_offset: [Option<i64>; 3],
}

impl Batch {
    fn push(&mut self, p: Publication) {
        self.bytes += p.payload.len();
        self.publications.push(p);
    }
}

/// Buffers a batch reuses: the records taken from the merge, and what the worker made of
/// them.
#[derive(Default)]
pub(super) struct Scratch {
    held: Vec<(Held, Source, Instant)>,
    tickets: Vec<CareTicket>,
    outcomes: Vec<Outcome>,
}

impl PartitionTask {
    /// Processes buffered records in event-time order while the merge allows and there is
    /// room for more unacknowledged work, as one batch through the worker.
    pub(super) async fn process_ready(&mut self) -> Result<(), Refused> {
        if self.intake.merge.len() == 0 || !self.publisher.room() {
            return Ok(());
        }
        let now = Instant::now();
        let wall = wall_clock_ms();
        let mut scratch = std::mem::take(&mut self.scratch);
        if self.take_batch(now, &mut scratch.held) == Injected::Hold {
            return std::future::pending().await;
        }
        let mut batch = Batch::default();
        self.count_waits();
        self.hold_clock(now, &mut scratch.tickets, &mut batch);
        self.run_batch(&mut scratch, wall, &mut batch);
        scratch.held.clear();
        self.scratch = scratch;
        self.finish(batch, now, wall).await
    }

    /// Takes the next records from the merge, up to [`MAX_BATCH`], while the records and
    /// bytes waiting for acknowledgement, this batch's included, stay under
    /// `max_in_flight` and `max_in_flight_bytes` (a batch counts its records' own bytes, as
    /// a dead letter would carry them). [`Injected::Hold`] if a test's fault stops the task
    /// ([`super::super::fault`]).
    fn take_batch(&mut self, now: Instant, held: &mut Vec<(Held, Source, Instant)>) -> Injected {
        let mut lags: [Option<Lag>; 3] = [None; 3];
        let mut bytes = 0;
        while held.len() < MAX_BATCH
            && self.publisher.records + held.len() < self.publisher.max_records
            && self.publisher.bytes + bytes < self.publisher.max_bytes
        {
            let (consumer, topics, partition) = (&self.consumer, &self.topics, self.partition);
            let outcomes = self.intake.outcomes_subscribed;
            let caught_up = |source: Source, next: Option<i64>| {
                *lags[source.index()].get_or_insert_with(|| {
                    let topic = match source {
                        Source::Cdr => &topics.cdr,
                        Source::Account => &topics.account,
                        Source::Outcomes if !outcomes => return Lag::CaughtUp,
                        Source::Outcomes => &topics.outcomes,
                    };
                    consumer::caught_up(consumer, topic, partition, next)
                })
            };
            let engine = self.worker.engine();
            let fits = |head: i64, held: i64| engine.fits_ahead(head, held);
            let Some((h, source, arrived)) = self.intake.merge.pop(now, caught_up, fits) else {
                break;
            };
            let (_, payload) = self.intake.merge.bytes_of(source, &h);
            bytes += payload.map_or(0, <[u8]>::len);
            self.supervised.in_flight.set(source, h.offset);
            let set_aside = self.supervised.skip == Some((source, h.offset));
            if !set_aside && self.shared.faults.check(payload) == Injected::Hold {
                return Injected::Hold;
            }
            self.supervised.in_flight.clear();
            held.push((h, source, arrived));
        }
        Injected::None
    }

    /// Holds the engine's clock at the slowest input that still counts; the tickets of days
    /// that close as it moves go first in the batch.
    fn hold_clock(&mut self, now: Instant, tickets: &mut Vec<CareTicket>, batch: &mut Batch) {
        tickets.clear();
        self.worker.hold_clock(self.intake.merge.hold(now), tickets);
        if !tickets.is_empty() {
            for p in self.ticket_publications(tickets) {
                batch.push(p);
            }
            tickets.clear();
        }
    }

    /// Counts the waits the merge began for lagging inputs.
    fn count_waits(&mut self) {
        let waits = self.intake.merge.take_waits();
        for source in [Source::Cdr, Source::Account, Source::Outcomes] {
            let n = waits[source.index()];
            if n > 0 {
                let topic = self.topic_of(source).to_string();
                (self.shared.metrics.alignment_waits)
                    .with_label_values(&[&topic])
                    .inc_by(n);
            }
        }
    }

    /// Runs the records taken through the worker (all but one a failed task left to set
    /// aside) and adds their tickets and dead letters to the batch, in record order.
    fn run_batch(&mut self, scratch: &mut Scratch, wall: i64, batch: &mut Batch) {
        let Scratch {
            held,
            tickets,
            outcomes,
        } = scratch;
        let skip_at = self.supervised.skip.and_then(|(source, offset)| {
            (held.iter()).position(|(h, s, _)| *s == source && h.offset == offset)
        });
        let raws: Vec<Raw<'_>> = (held.iter().enumerate())
            .filter(|(k, _)| Some(*k) != skip_at)
            .map(|(_, (h, source, _))| Raw {
                source: *source,
                payload: self.intake.merge.bytes_of(*source, h).1,
            })
            .collect();
        let held_of = |j: usize| j + usize::from(skip_at.is_some_and(|k| k <= j));
        let in_flight = &self.supervised.in_flight;
        self.worker
            .process_batch(&raws, wall, tickets, outcomes, |j| {
                let (h, source, _) = &held[held_of(j)];
                in_flight.set(*source, h.offset);
            });
        in_flight.clear();
        drop(raws);
        let mut results = outcomes.iter();
        for (k, (h, source, arrived)) in held.iter().enumerate() {
            let failed;
            let out = if Some(k) == skip_at {
                self.supervised.skip = None;
                warn!(
                    partition = self.partition,
                    topic = self.topic_of(*source),
                    offset = h.offset,
                    "record set aside: the partition task failed on it before"
                );
                failed = Outcome::Rejected(Reason::Failed);
                &failed
            } else {
                match results.next() {
                    Some(out) => out,
                    None => break,
                }
            };
            self.record_done(h, *source, *arrived, out, tickets, batch);
        }
        tickets.clear();
    }

    /// Adds one record's outcome to the batch: its counts, its dead letter, its tickets.
    fn record_done(
        &mut self,
        h: &Held,
        source: Source,
        arrived: Instant,
        out: &Outcome,
        tickets: &[CareTicket],
        batch: &mut Batch,
    ) {
        let i = source.index();
        batch.records += 1;
        batch.oldest = Some(batch.oldest.map_or(arrived, |o| o.min(arrived)));
        if let Some(t) = h.timestamp.to_millis() {
            batch.appended = Some(batch.appended.map_or(t, |o| o.min(t)));
        }
        batch.consumed[i] += 1;
        batch.next_offset[i] = Some(h.offset + 1);
        if let Some(t) = out.event_time_ms() {
            batch.last_event[i] = Some(t);
        }
        if !matches!(out, Outcome::Applied { .. }) {
            self.count_exception(self.topic_of(source), out);
        }
        if let Some(dl) = out.dead_letter() {
            let (key, payload) = self.intake.merge.bytes_of(source, h);
            let m = OwnedMessage::new(
                payload.map(<[u8]>::to_vec),
                key.map(<[u8]>::to_vec),
                self.topic_of(source).to_string(),
                h.timestamp,
                self.partition,
                h.offset,
                h.headers.clone().map(|b| *b),
            );
            let (topic, max) = (
                &self.topics.dead_letter,
                self.publisher.dead_letter_max_bytes,
            );
            batch.push(dead_letter::publication(&dl, &m, topic, max));
        }
        let raised = &tickets[out.tickets()];
        if !raised.is_empty() {
            for p in self.ticket_publications(raised) {
                batch.push(p);
            }
        }
        if source == Source::Outcomes {
            self.count_outcomes();
        }
    }

    /// Counts the batch, notes its offsets and publishes its tickets and dead letters.
    async fn finish(&mut self, batch: Batch, now: Instant, wall: i64) -> Result<(), Refused> {
        if batch.records == 0 {
            if !batch.publications.is_empty() {
                self.checkpoints.changed = true;
                return self
                    .publisher
                    .enqueue(0, now, None, batch.publications)
                    .await;
            }
            return Ok(());
        }
        for source in [Source::Cdr, Source::Account, Source::Outcomes] {
            let i = source.index();
            let Some(next) = batch.next_offset[i] else {
                continue;
            };
            let topic = self.topic_of(source).to_string();
            let (consumed, lag) = self.input_handles(source, &topic);
            consumed.inc_by(batch.consumed[i]);
            if let Some(t) = batch.last_event[i] {
                lag.set((wall - t) as f64 / 1000.0);
            }
            match self.checkpoints.next_offsets.get_mut(&topic) {
                Some(n) => *n = next,
                None => {
                    self.checkpoints.next_offsets.insert(topic, next);
                }
            }
        }
        self.checkpoints.changed = true;
        let arrived = batch.oldest.unwrap_or(now);
        self.publisher
            .enqueue(
                batch.records as u32,
                arrived,
                batch.appended,
                batch.publications,
            )
            .await?;
        self.count_quality();
        let newest = self.worker.engine().newest_event_ms();
        if self.idle.record(newest, now) {
            self.exporter.handles.idle.set(0);
        }
        self.count_engine();
        // librdkafka's queues do not take part in tokio's cooperative budget: a task that
        // always has records would keep its worker from the HTTP server's tasks (metrics,
        // health, look-ups) for as long as its backlog lasts.
        tokio::task::yield_now().await;
        Ok(())
    }

    /// The consumed counter and lag gauge of an input, resolved on first use.
    fn input_handles(
        &mut self,
        source: Source,
        topic: &str,
    ) -> (prometheus::IntCounter, prometheus::Gauge) {
        let m = &self.shared.metrics;
        let p = self.partition;
        self.exporter.handles.inputs[source.index()]
            .get_or_insert_with(|| {
                (
                    m.records_consumed.with_label_values(&[topic]),
                    m.event_time_lag.with_label_values(&[topic, &p.to_string()]),
                )
            })
            .clone()
    }

    /// Exports the engine's gauges and running totals (once per batch).
    fn count_engine(&mut self) {
        let engine = self.worker.engine();
        let h = &self.exporter.handles;
        h.subscribers.set(engine.stats().subscribers as i64);
        h.state_bytes.set(engine.state_bytes() as i64);
        // The counter keeps the engine's running total (never counted twice).
        let total = engine.stats().dedup_ids_dropped;
        h.dedup_dropped
            .inc_by(total.saturating_sub(h.dedup_dropped.get()));
        self.count_evictions();
    }
}
