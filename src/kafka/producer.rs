//! The producer of tickets and dead letters, and what its failures mean.
//!
//! Idempotent, with a ten-minute `message.timeout.ms`: librdkafka retries through a broker
//! restart on its own. Every publication is kept until the broker acknowledges it, so a
//! failed one can be sent again. A failure is sorted by its librdkafka error code
//! ([`super::error::action`], the table the consumer uses too), as Vector's Kafka sink
//! sorts them:
//!
//! - **Retry** (queue full, timeouts, transport, anything not listed there): back off
//!   and send again. A full queue is backpressure: acknowledgements free room.
//! - **Reject** (message too large, unknown topic or partition, an invalid record):
//!   sending again cannot succeed. A *ticket* is never dropped, so the service stops with
//!   an error naming the topic and the cause; the record's offset is not stored, and after
//!   a restart with the cause fixed the ticket goes out. A *dead letter* is logged and
//!   counted and given up: its record could not be used anyway, and bad input must not
//!   stop the line.
//! - **Stop** (authentication or authorization, a fenced producer, settings every record
//!   would fail on, librdkafka's fatal error): the producer cannot go on, and the service
//!   stops with an error (and `churnwatch run` exits non-zero).
//!
//! A failure is sorted the same way whether librdkafka refuses to enqueue the record
//! ([`publish`]) or its delivery report says it failed ([`delivery_failure`]).
//!
//! Every failure but a full queue is counted in
//! `churnwatch_publish_failures_total{topic,class}`.

use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::future_producer::OwnedDeliveryResult;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use tracing::{debug, warn};

use crate::config::Config;
use crate::metrics::Metrics;

use super::client_config;
use super::error::{action, Action};

/// Creates the service's producer.
pub fn create(cfg: &Config) -> Result<FutureProducer, KafkaError> {
    create_with(cfg, &[])
}

/// Creates a producer with the service's settings plus `extra` (a transactional id).
pub fn create_with(cfg: &Config, extra: &[(&str, &str)]) -> Result<FutureProducer, KafkaError> {
    let mut c = client_config(cfg);
    c.set("enable.idempotence", "true")
        // Keep retrying through a broker restart.
        .set("message.timeout.ms", "600000")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create()
}

/// librdkafka's default `message.max.bytes`.
pub const DEFAULT_MESSAGE_MAX_BYTES: usize = 1_000_000;

/// The largest record the producer accepts: `message.max.bytes` from `kafka.options`, or
/// librdkafka's default (an unreadable value fails at [`create`], as librdkafka checks it).
pub fn max_message_bytes(cfg: &Config) -> usize {
    cfg.kafka
        .options
        .get("message.max.bytes")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_MESSAGE_MAX_BYTES)
}

/// What a publication carries, which decides what a permanent failure does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Never dropped: a permanent failure stops the service.
    Ticket,
    /// Given up (logged and counted) on a permanent failure.
    DeadLetter,
}

/// A ticket or dead letter to publish (kept for a resend).
#[derive(Clone)]
pub(super) struct Publication {
    pub kind: Kind,
    pub topic: String,
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// A failed publication, sorted by [`action`].
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Sending again may succeed.
    #[error("{0} (retriable)")]
    Retry(KafkaError),
    /// Sending this record again cannot succeed.
    #[error("refused for good: {0}")]
    Reject(KafkaError),
    /// The producer cannot go on.
    #[error("fatal: {0}")]
    Stop(KafkaError),
}

impl From<KafkaError> for PublishError {
    fn from(e: KafkaError) -> PublishError {
        match action(&e) {
            Action::Retry => PublishError::Retry(e),
            Action::Reject => PublishError::Reject(e),
            Action::Stop => PublishError::Stop(e),
        }
    }
}

impl PublishError {
    /// The `class` label of `churnwatch_publish_failures_total`.
    pub fn class(&self) -> &'static str {
        match self {
            PublishError::Retry(_) => "retriable",
            PublishError::Reject(_) => "permanent",
            PublishError::Stop(_) => "fatal",
        }
    }

    /// Whether the producer's queue was full: backpressure, not a failure.
    fn is_queue_full(&self) -> bool {
        matches!(
            self,
            PublishError::Retry(e) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull)
        )
    }

    /// Counts the failure of a publication to `topic` (not a full queue).
    pub(super) fn count(&self, metrics: &Metrics, topic: &str) {
        if !self.is_queue_full() {
            metrics
                .publish_failures
                .with_label_values(&[topic, self.class()])
                .inc();
        }
    }
}

/// What a delivery report says: `None` once the broker acknowledged the record, or the
/// failure, sorted as an enqueue failure is. A report lost with the producer (`Err`, the
/// future's sender dropped) is retriable: the record is sent again.
pub(super) fn delivery_failure<E>(report: Result<OwnedDeliveryResult, E>) -> Option<PublishError> {
    match report {
        Ok(Ok(_)) => None,
        Ok(Err((e, _))) => Some(PublishError::from(e)),
        Err(_) => Some(PublishError::from(KafkaError::Canceled)),
    }
}

/// A publication that failed for good, which stops the service.
#[derive(Debug, thiserror::Error)]
#[error("publishing to `{topic}`: {source}")]
pub struct Refused {
    pub topic: String,
    #[source]
    pub source: PublishError,
}

/// Enqueues a publication, backing off while the failure is retriable (the queue is full,
/// most often); a permanent or fatal failure is returned.
pub(super) async fn publish(
    producer: &FutureProducer,
    p: &Publication,
    metrics: &Metrics,
) -> Result<DeliveryFuture, PublishError> {
    let mut backoff = Duration::from_millis(5);
    loop {
        let mut headers = OwnedHeaders::new();
        for (k, v) in &p.headers {
            headers = headers.insert(Header {
                key: k,
                value: Some(v),
            });
        }
        let rec = FutureRecord::to(&p.topic)
            .key(&p.key)
            .payload(&p.payload)
            .headers(headers);
        let e = match producer.send_result(rec) {
            Ok(f) => return Ok(f),
            Err((e, _)) => PublishError::from(e),
        };
        e.count(metrics, &p.topic);
        match e {
            PublishError::Retry(_) if e.is_queue_full() => {
                debug!(error = %e, "producer queue full; backing off");
            }
            PublishError::Retry(_) => {
                warn!(topic = %p.topic, error = %e, "enqueue failed; backing off");
            }
            _ => return Err(e),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_millis(500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(e: KafkaError) -> &'static str {
        PublishError::from(e).class()
    }

    #[test]
    fn failures_sort_into_retriable_permanent_and_fatal_by_error_code() {
        use RDKafkaErrorCode as C;
        let produce = KafkaError::MessageProduction;
        for code in [
            C::QueueFull,
            C::MessageTimedOut,
            C::RequestTimedOut,
            C::BrokerTransportFailure,
            C::AllBrokersDown,
            C::NetworkException,
            C::NotLeaderForPartition,
            C::NotEnoughReplicas,
            C::PolicyViolation,
        ] {
            assert_eq!(class(produce(code)), "retriable", "{code:?}");
        }
        for code in [
            C::MessageSizeTooLarge,
            C::UnknownTopicOrPartition,
            C::UnknownTopic,
            C::UnknownPartition,
            C::InvalidRecord,
            C::InvalidMessage,
        ] {
            assert_eq!(class(produce(code)), "permanent", "{code:?}");
        }
        for code in [
            C::Fatal,
            C::ProducerFenced,
            C::Fenced,
            C::TopicAuthorizationFailed,
            C::ClusterAuthorizationFailed,
            C::TransactionalIdAuthorizationFailed,
            C::SaslAuthenticationFailed,
            C::Authentication,
            C::UnsupportedCompressionType,
        ] {
            assert_eq!(class(produce(code)), "fatal", "{code:?}");
        }
        assert_eq!(class(KafkaError::Canceled), "retriable");
    }

    #[test]
    fn delivery_reports_are_sorted_as_enqueue_failures_are() {
        use rdkafka::message::OwnedMessage;
        use rdkafka::producer::future_producer::Delivery;
        use RDKafkaErrorCode as C;
        let failed = |code| -> Result<OwnedDeliveryResult, ()> {
            let m = OwnedMessage::new(
                Some(vec![0; 4]),
                None,
                "dlq".into(),
                rdkafka::Timestamp::NotAvailable,
                0,
                -1,
                None,
            );
            Ok(Err((KafkaError::MessageProduction(code), m)))
        };
        let class = |r| delivery_failure(r).map(|e: PublishError| e.class());
        let delivered = Ok(Ok(Delivery {
            partition: 0,
            offset: 5,
            timestamp: rdkafka::Timestamp::NotAvailable,
        }));
        assert_eq!(class(delivered), None);
        for (code, expected) in [
            (C::MessageSizeTooLarge, "permanent"),
            (C::InvalidMessage, "permanent"),
            (C::InvalidRecord, "permanent"),
            (C::UnknownTopic, "permanent"),
            (C::UnknownTopicOrPartition, "permanent"),
            (C::UnknownPartition, "permanent"),
            (C::TopicAuthorizationFailed, "fatal"),
            (C::ClusterAuthorizationFailed, "fatal"),
            (C::Fatal, "fatal"),
            (C::MessageTimedOut, "retriable"),
            (C::RequestTimedOut, "retriable"),
            (C::NotLeaderForPartition, "retriable"),
        ] {
            assert_eq!(class(failed(code)), Some(expected), "{code:?}");
        }
        assert_eq!(class(Err(())), Some("retriable"), "report lost");
    }

    #[test]
    fn the_producer_limit_is_librdkafkas_default_unless_the_options_set_it() {
        let mut cfg = Config::default();
        assert_eq!(max_message_bytes(&cfg), 1_000_000);
        cfg.kafka
            .options
            .insert("message.max.bytes".into(), "3000000".into());
        assert_eq!(max_message_bytes(&cfg), 3_000_000);
    }

    #[test]
    fn a_full_queue_is_backpressure_and_not_counted() {
        let m = Metrics::new();
        let full = PublishError::from(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull));
        full.count(&m, "care-tickets");
        let big = KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);
        let big = PublishError::from(big);
        big.count(&m, "care-tickets");
        let failures = |class| {
            m.publish_failures
                .with_label_values(&["care-tickets", class])
                .get()
        };
        assert_eq!((failures("retriable"), failures("permanent")), (0, 1));
        let refused = Refused {
            topic: "care-tickets".into(),
            source: big,
        };
        let text = refused.to_string();
        assert!(
            text.starts_with("publishing to `care-tickets`: refused for good:")
                && text.contains("MessageSizeTooLarge"),
            "{text}"
        );
    }
}
