//! Kafka adapter (placeholder; merged with the embedded broker).
pub mod worker;
