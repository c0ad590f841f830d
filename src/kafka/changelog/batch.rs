//! Reading a partition in batches of fetched records, for the restore.
//!
//! rust-rdkafka hands the consumer's records over one poll at a time, each poll an op
//! round trip and a message wrapper; at a million changelog records that was most of a
//! restore. librdkafka's `rd_kafka_consume_batch_queue` takes up to a few thousand
//! records off the consumer's queue in one call. This module is the only place it is
//! called; every record it returns is destroyed before the batch is refilled.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka_sys as rd;

/// One fetched record: key, value, offset.
pub struct Record<'a> {
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub offset: i64,
}

/// What went wrong reading a batch.
#[derive(Debug)]
pub enum BatchError {
    /// librdkafka reported an error on the queue or on a record.
    Kafka(rdkafka::types::RDKafkaErrorCode),
    /// Nothing arrived for the whole timeout.
    Idle,
}

const BATCH: usize = 4096;

/// The consumer's queue, drained in batches.
pub struct Batches<'c> {
    queue: *mut rd::rd_kafka_queue_t,
    slots: Vec<*mut rd::rd_kafka_message_t>,
    _consumer: &'c BaseConsumer,
}

impl<'c> Batches<'c> {
    pub fn new(consumer: &'c BaseConsumer) -> Batches<'c> {
        // SAFETY: the client pointer is valid while `consumer` lives, which `_consumer`
        // ties to this value; the queue reference is released in `drop`.
        let queue = unsafe { rd::rd_kafka_queue_get_consumer(consumer.client().native_ptr()) };
        Batches {
            queue,
            slots: vec![std::ptr::null_mut(); BATCH],
            _consumer: consumer,
        }
    }

    /// Calls `f` on each record of the next batch; `f` returns `false` to stop early (the
    /// rest of the batch is dropped). Waits up to `wait` for a batch.
    pub fn next(
        &mut self,
        wait: Duration,
        mut f: impl FnMut(Record<'_>) -> bool,
    ) -> Result<bool, BatchError> {
        if self.queue.is_null() {
            return Err(BatchError::Kafka(rdkafka::types::RDKafkaErrorCode::Fail));
        }
        let ms = wait.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: `slots` has room for BATCH pointers; librdkafka fills the first `n`.
        let n = unsafe {
            rd::rd_kafka_consume_batch_queue(self.queue, ms, self.slots.as_mut_ptr(), BATCH)
        };
        if n < 0 {
            return Err(BatchError::Kafka(rdkafka::types::RDKafkaErrorCode::Fail));
        }
        if n == 0 {
            return Err(BatchError::Idle);
        }
        let mut go = true;
        let mut failure = None;
        for &ptr in &self.slots[..n as usize] {
            // SAFETY: librdkafka returned `n` valid messages; each is read here and then
            // destroyed exactly once, and no slice outlives this iteration.
            unsafe {
                let m = &*ptr;
                if m.err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                    failure.get_or_insert(m.err.into());
                } else if go && failure.is_none() {
                    go = f(Record {
                        key: bytes(m.key as *const u8, m.key_len),
                        value: bytes(m.payload as *const u8, m.len),
                        offset: m.offset,
                    });
                }
                rd::rd_kafka_message_destroy(ptr);
            }
        }
        match failure {
            Some(code) => Err(BatchError::Kafka(code)),
            None => Ok(go),
        }
    }
}

/// A borrowed byte slice from librdkafka (`None` for a null pointer).
///
/// # Safety
/// `ptr` must be null or valid for `len` bytes for the caller's use of the slice.
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> Option<&'a [u8]> {
    if ptr.is_null() {
        None
    } else {
        Some(std::slice::from_raw_parts(ptr, len))
    }
}

impl Drop for Batches<'_> {
    fn drop(&mut self) {
        if !self.queue.is_null() {
            // SAFETY: the reference taken in `new`, released once.
            unsafe { rd::rd_kafka_queue_destroy(self.queue) };
        }
    }
}
