//! Kafka adapters: the embedded broker (librdkafka's mock cluster with raised limits).

pub mod embedded;
