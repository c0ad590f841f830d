//! Publishing a partition's tickets and dead letters, in order: each record's publications
//! are enqueued at once and acknowledged front first, so offsets (stored at checkpoints)
//! only ever cover what the broker has. A failed delivery is sent again, given up (a dead
//! letter refused for good) or stops the task, as [`super::super::producer`] sorts it.

use std::collections::VecDeque;
use std::time::Instant;

use rdkafka::producer::{DeliveryFuture, FutureProducer};
use tracing::{error, warn};

use crate::config::{Config, TicketFormat};
use crate::metrics::Metrics;

use super::super::producer::{delivery_failure, publish, Kind, Publication, PublishError, Refused};

/// A partition's publishing: what waits for acknowledgement, in order, and the bounds on
/// it.
pub(super) struct Publisher {
    pub(super) producer: FutureProducer,
    metrics: Metrics,
    pending: VecDeque<Pending>,
    /// Records in `pending`, all batches together, and their publications' payload bytes.
    pub(super) records: usize,
    pub(super) bytes: usize,
    /// `kafka.max_in_flight` and `kafka.max_in_flight_bytes`.
    pub(super) max_records: usize,
    pub(super) max_bytes: usize,
    pub(super) ticket_format: TicketFormat,
    /// The producer's `message.max.bytes`: dead letters are cut to fit it.
    pub(super) dead_letter_max_bytes: usize,
}

/// A record read (or an idle clock advance) whose publications are not all acknowledged.
pub(super) struct Pending {
    /// Records in it (0 for an idle clock advance): their latency is observed once
    /// acknowledged.
    pub(super) records: u32,
    /// Payload bytes of its publications.
    pub(super) bytes: usize,
    pub(super) arrived: Instant,
    /// The oldest broker timestamp of its records, ms since the epoch.
    pub(super) appended: Option<i64>,
    /// `None` once acknowledged.
    pub(super) sends: Vec<Option<Sending>>,
}

/// One publication of a pending record.
pub(super) enum Sending {
    /// Enqueued; the future resolves with the broker's acknowledgement.
    Waiting(Publication, DeliveryFuture),
    /// Delivery failed (after the producer's own retries).
    Failed(Publication, PublishError),
}

impl Publisher {
    pub(super) fn new(cfg: &Config, producer: FutureProducer, metrics: Metrics) -> Publisher {
        Publisher {
            producer,
            metrics,
            pending: VecDeque::new(),
            records: 0,
            bytes: 0,
            max_records: cfg.kafka.max_in_flight,
            max_bytes: cfg.kafka.max_in_flight_bytes,
            ticket_format: cfg.kafka.ticket_format,
            dead_letter_max_bytes: super::super::producer::max_message_bytes(cfg),
        }
    }

    /// Whether publications may be added: fewer unacknowledged than `kafka.max_in_flight`,
    /// in records and in bytes.
    pub(super) fn room(&self) -> bool {
        self.records < self.max_records && self.bytes < self.max_bytes
    }

    /// Whether anything waits for acknowledgement.
    pub(super) fn busy(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Resolves when every publication of the oldest pending record is acknowledged (or
    /// failed); cancel-safe: finished sends are taken out as they complete.
    pub(super) async fn front_acked(&mut self) {
        let Some(front) = self.pending.front_mut() else {
            return;
        };
        for slot in front.sends.iter_mut() {
            let Some(Sending::Waiting(_, fut)) = slot.as_mut() else {
                continue;
            };
            if let Some(e) = delivery_failure(fut.await) {
                if let Some(Sending::Waiting(p, _)) = slot.take() {
                    *slot = Some(Sending::Failed(p, e));
                }
                return;
            }
            *slot = None;
        }
    }

    /// After [`Self::front_acked`]: deal with failed publications (send again, give up or
    /// stop), or store the offset once every publication of the oldest record is
    /// acknowledged.
    pub(super) async fn settle_front(&mut self) -> Result<(), Refused> {
        let Some(front) = self.pending.front_mut() else {
            return Ok(());
        };
        let failed: Vec<(Publication, PublishError)> = front
            .sends
            .iter_mut()
            .filter_map(|slot| match slot.take() {
                Some(Sending::Failed(p, e)) => Some((p, e)),
                other => {
                    *slot = other;
                    None
                }
            })
            .collect();
        for (p, e) in failed {
            e.count(&self.metrics, &p.topic);
            let again = match e {
                PublishError::Retry(_) => {
                    warn!(topic = %p.topic, error = %e, "delivery failed; sending again");
                    self.send(p).await?
                }
                e => self.refused(p, e)?,
            };
            if let Some(front) = self.pending.front_mut() {
                front.sends.push(again);
            }
        }
        let done = self
            .pending
            .front()
            .is_some_and(|f| f.sends.iter().all(Option::is_none));
        if done {
            if let Some(done) = self.pending.pop_front() {
                self.bytes -= done.bytes;
                self.records -= done.records as usize;
                if done.records > 0 {
                    let latency = done.arrived.elapsed().as_secs_f64();
                    let h = &self.metrics.processing_latency;
                    (0..done.records).for_each(|_| h.observe(latency));
                    if let Some(t) = done.appended {
                        let age = (super::wall_clock_ms() - t).max(0) as f64 / 1000.0;
                        let h = &self.metrics.append_latency;
                        (0..done.records).for_each(|_| h.observe(age));
                    }
                }
            }
        }
        Ok(())
    }

    pub(super) async fn drain(&mut self) -> Result<(), Refused> {
        while !self.pending.is_empty() {
            self.front_acked().await;
            self.settle_front().await?;
        }
        Ok(())
    }

    /// Enqueues a publication; `None` if it was given up.
    pub(super) async fn send(&mut self, p: Publication) -> Result<Option<Sending>, Refused> {
        match publish(&self.producer, &p, &self.metrics).await {
            Ok(fut) => Ok(Some(Sending::Waiting(p, fut))),
            Err(e) => self.refused(p, e),
        }
    }

    /// A publication failed for good: a dead letter is given up (logged, and counted by the
    /// caller), so its record's offset advances; a ticket, or a fatal failure, stops the
    /// task and the service.
    pub(super) fn refused(
        &self,
        p: Publication,
        e: PublishError,
    ) -> Result<Option<Sending>, Refused> {
        match e {
            PublishError::Reject(_) if p.kind == Kind::DeadLetter => {
                error!(topic = %p.topic, error = %e, "dead letter refused for good; given up");
                Ok(None)
            }
            source => Err(Refused {
                topic: p.topic,
                source,
            }),
        }
    }

    /// Publishes `publications` and queues them to be acknowledged, in order.
    pub(super) async fn enqueue(
        &mut self,
        records: u32,
        arrived: Instant,
        appended: Option<i64>,
        publications: Vec<Publication>,
    ) -> Result<(), Refused> {
        let mut sends = Vec::with_capacity(publications.len());
        let bytes = publications.iter().map(|p| p.payload.len()).sum();
        for p in publications {
            sends.push(self.send(p).await?);
        }
        self.bytes += bytes;
        self.records += records as usize;
        self.pending.push_back(Pending {
            records,
            bytes,
            arrived,
            appended,
            sends,
        });
        Ok(())
    }
}
