//! The producer of tickets and dead letters.
//!
//! Idempotent, with a ten-minute `message.timeout.ms`: librdkafka retries through a broker
//! restart on its own, and a ticket is never given up. Every publication is kept until the
//! broker acknowledges it, so a failed delivery can be sent again.

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use tracing::debug;

use crate::config::Config;

use super::shared::client_config;

/// Creates the service's producer.
pub(super) fn create(cfg: &Config) -> Result<FutureProducer, KafkaError> {
    let mut c = client_config(cfg);
    c.set("enable.idempotence", "true")
        // Keep retrying through a broker restart: a ticket is never given up.
        .set("message.timeout.ms", "600000")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000");
    c.create()
}

/// A ticket or dead letter to publish (kept for a resend).
#[derive(Clone)]
pub(super) struct Publication {
    pub topic: String,
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Enqueues a publication, backing off while the producer queue is full.
pub(super) async fn publish(producer: &FutureProducer, p: &Publication) -> DeliveryFuture {
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
        match producer.send_result(rec) {
            Ok(f) => return f,
            Err((e, _)) => {
                // Queue full (or a transient local error): back off; acknowledgements
                // free room. Never drop the record.
                debug!(error = %e, "producer queue full; backing off");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
            }
        }
    }
}
