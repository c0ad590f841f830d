//! What a partition task reads, and what its supervisor learns when it fails.
//!
//! - **Reading**: the task reads its own input queues ([`queues`]) while its merge buffer
//!   has room, in records (`kafka.max_in_flight`) and bytes (`kafka.max_in_flight_bytes`).
//!   Once it is full it reads only the inputs with nothing buffered: the merge may be
//!   waiting for exactly those, and each then holds at most one record more.
//! - **In flight**: the input and offset of the record being processed, for the
//!   supervisor ([`crate::kafka::service`]) to set it aside if the task fails on it.

use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use futures_core::Stream;

use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};

use crate::codec;
use crate::config::Format;
use crate::driver::Source;

use super::super::consumer::queues::{InputQueue, PartitionInputs};
use super::super::consumer::Inspect;
use super::batch::MAX_BATCH;
use super::PartitionTask;
use crate::kafka::partition::merge::{InputMerge, Parts};

/// The record a partition task is processing: its input and offset, packed in one word
/// (written twice per record, read only when the task has failed).
#[derive(Debug)]
pub struct InFlight(AtomicI64);

/// A partition's reading: its input queues, the checks on each record read, and the
/// event-time merge the records wait in.
pub(super) struct Intake {
    pub(super) inputs: PartitionInputs,
    pub(super) inspect: Inspect,
    pub(super) merge: InputMerge,
    pub(super) format: Format,
    /// Whether the outcome topic exists (and is read): otherwise it is never waited for.
    pub(super) outcomes_subscribed: bool,
}

/// What the task's supervisor needs: the record in the engine now, and one a failed task
/// left to set aside.
pub(super) struct Supervised {
    pub(super) in_flight: Arc<InFlight>,
    pub(super) skip: Option<(Source, i64)>,
}

impl Default for InFlight {
    fn default() -> InFlight {
        InFlight(AtomicI64::new(-1))
    }
}

const SOURCES: [Source; 3] = [Source::Cdr, Source::Account, Source::Outcomes];

impl InFlight {
    pub(super) fn set(&self, source: Source, offset: i64) {
        let s = SOURCES.iter().position(|x| *x == source).unwrap_or(0) as i64;
        self.0.store(offset.max(0) << 2 | s, Ordering::Relaxed);
    }

    pub(super) fn clear(&self) {
        self.0.store(-1, Ordering::Relaxed);
    }

    /// The record being processed, if any.
    pub fn get(&self) -> Option<(Source, i64)> {
        let v = self.0.load(Ordering::Relaxed);
        (v >= 0).then(|| (SOURCES[(v & 3) as usize % 3], v >> 2))
    }
}

/// The queues to read now (see the module docs); shared handles, so a record read borrows
/// them and not the task.
pub(super) fn readable(
    inputs: &PartitionInputs,
    merge: &InputMerge,
    full: bool,
) -> [Option<(Source, Arc<InputQueue>)>; 3] {
    let mut pick = [None, None, None];
    for (slot, (source, q)) in pick.iter_mut().zip(inputs.iter()) {
        if !full || !merge.holds(*source) {
            *slot = Some((*source, q.clone()));
        }
    }
    pick
}

impl PartitionTask {
    /// Whether the merge buffer is full, in records or bytes.
    pub(super) fn merge_full(&self) -> bool {
        self.intake.merge.len() >= self.publisher.max_records
            || self.intake.merge.bytes() >= self.publisher.max_bytes
    }

    /// Buffers a record read from the partition's own queues (or notes the error read in
    /// its place), then whatever else its queues hold already, without waiting: the
    /// records arrive in batches, stamped with one reading of the clock.
    pub(super) fn received(
        &mut self,
        source: Source,
        read: Result<BorrowedMessage<'_>, KafkaError>,
    ) {
        let arrived = Instant::now();
        self.buffer(source, read, arrived);
        let mut taken = 1;
        let mut cx = Context::from_waker(Waker::noop());
        for k in 0..self.intake.inputs.len() {
            let (source, q) = (self.intake.inputs[k].0, self.intake.inputs[k].1.clone());
            let mut stream = q.stream();
            while taken < MAX_BATCH && !(self.merge_full() && self.intake.merge.holds(source)) {
                let Poll::Ready(Some(read)) = Pin::new(&mut stream).poll_next(&mut cx) else {
                    break;
                };
                self.buffer(source, read, arrived);
                taken += 1;
            }
        }
    }

    fn buffer(
        &mut self,
        source: Source,
        read: Result<BorrowedMessage<'_>, KafkaError>,
        at: Instant,
    ) {
        match read {
            Ok(m) => {
                self.intake.inspect.record(&self.shared, source, &m);
                let t = codec::peek_event_time(self.intake.format, m.payload());
                self.intake.merge.push_parts(Parts::of(&m), source, t, at);
            }
            Err(e) => {
                if let Some(stop) = self.intake.inspect.error(&self.shared, &e) {
                    let _ = self.failures.send(stop);
                }
            }
        }
    }
}
