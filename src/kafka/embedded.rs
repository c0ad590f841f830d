//! The embedded broker: librdkafka's built-in mock cluster, speaking the real Kafka protocol
//! over TCP on localhost, with its per-partition retention raised.
//!
//! Why this exists: the mock cluster (`rdkafka::mocking::MockCluster`) serves producers and
//! consumer groups well enough for `churnwatch demo`, `churnwatch broker` and the tests, but
//! `rd_kafka_mock_partition_init` hard-codes at most 5 MiB and 100,000 message sets per
//! partition and the log append silently drops the oldest beyond that. librdkafka has no API
//! to change it, so [`EmbeddedBroker::create_topic`] creates the topic and then calls a small C
//! shim (`csrc/mock_limits.c`, compiled by `build.rs` against the bundled librdkafka's
//! internal headers) that sets every partition's limits, by default to
//! [`PartitionLimits::default`] (4 GiB and 100 million message sets).
//!
//! Lifetime: the cluster lives inside a librdkafka client owned by [`EmbeddedBroker`] and is
//! destroyed with it. Clients that connect over TCP hold no pointer into it, so dropping the
//! broker first is memory-safe, but they then only see connection errors: drop clients first.

use std::ffi::{c_char, c_int, CString};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka_sys::types::RDKafkaMockCluster;

/// Per-partition retention of the mock cluster; beyond either limit it drops the oldest
/// message sets (a message set is one produced batch, not one record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionLimits {
    /// Bytes kept per partition (librdkafka's built-in value is 5 MiB).
    pub max_bytes: usize,
    /// Message sets kept per partition (librdkafka's built-in value is 100,000).
    pub max_message_sets: usize,
}

impl PartitionLimits {
    /// Default bytes kept per partition: 4 GiB.
    pub const DEFAULT_MAX_BYTES: usize = 4 << 30;
    /// Default message sets kept per partition: 100 million.
    pub const DEFAULT_MAX_MESSAGE_SETS: usize = 100_000_000;
}

impl Default for PartitionLimits {
    fn default() -> Self {
        Self {
            max_bytes: Self::DEFAULT_MAX_BYTES,
            max_message_sets: Self::DEFAULT_MAX_MESSAGE_SETS,
        }
    }
}

/// What went wrong starting the embedded broker or creating a topic in it.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// librdkafka refused the client that hosts the mock cluster.
    #[error("starting the embedded broker with {brokers} broker(s): {source}")]
    Start {
        /// Requested broker count.
        brokers: i32,
        /// librdkafka's error.
        source: KafkaError,
    },
    /// The client started but has no mock cluster attached (should not happen).
    #[error("the embedded broker's client has no mock cluster")]
    NoCluster,
    /// A topic name with an interior NUL byte.
    #[error("topic name {topic:?} contains a NUL byte")]
    TopicName {
        /// The offending name.
        topic: String,
    },
    /// The mock cluster refused to create the topic (for example, it already exists).
    #[error("creating topic {topic:?} with {partitions} partition(s): {source}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// Requested partition count.
        partitions: i32,
        /// librdkafka's error.
        source: KafkaError,
    },
    /// Setting the partition limits failed: the topic is missing or the cluster is stopping.
    #[error("raising the partition limits of topic {topic:?}: {reason}")]
    Limits {
        /// The topic.
        topic: String,
        /// Why.
        reason: &'static str,
    },
}

extern "C" {
    /// From `csrc/mock_limits.c`: runs on the mock cluster thread, blocks until applied.
    /// Returns 0, -1 (no such topic) or -2 (not served).
    fn churnwatch_mock_set_partition_limits(
        mcluster: *mut RDKafkaMockCluster,
        topic: *const c_char,
        max_size: usize,
        max_cnt: usize,
    ) -> c_int;
}

/// An in-process Kafka-protocol cluster of `N` brokers on localhost ports.
///
/// `Send + Sync` (derived from the owned client): every method reaches the cluster through
/// librdkafka calls that post a request to the cluster's own thread and wait for its reply,
/// or take the cluster's lock, so they may run from any thread.
///
/// Topics must be created here before any client uses them: the mock auto-creates unknown
/// topics on a metadata or produce request, with librdkafka's 5 MiB / 100,000-set limits
/// (then [`EmbeddedBroker::create_topic`] fails with "already exists"; fix the limits with
/// [`EmbeddedBroker::set_partition_limits`] before anything is produced).
pub struct EmbeddedBroker {
    /// The client created with `test.mock.num.brokers`: it owns the mock cluster and destroys
    /// it when dropped. Threaded so its event queue is drained for as long as we run.
    host: ThreadedProducer<DefaultProducerContext>,
    brokers: i32,
    bootstrap_servers: String,
}

impl std::fmt::Debug for EmbeddedBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBroker")
            .field("brokers", &self.brokers)
            .field("bootstrap_servers", &self.bootstrap_servers)
            .finish()
    }
}

impl EmbeddedBroker {
    /// Starts a mock cluster of `brokers` brokers, each listening on an ephemeral localhost port.
    pub fn start(brokers: i32) -> Result<EmbeddedBroker, EmbeddedError> {
        let host: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("test.mock.num.brokers", brokers.to_string())
            .create()
            .map_err(|source| EmbeddedError::Start { brokers, source })?;
        let bootstrap_servers = host
            .client()
            .mock_cluster()
            .ok_or(EmbeddedError::NoCluster)?
            .bootstrap_servers();
        Ok(EmbeddedBroker {
            host,
            brokers,
            bootstrap_servers,
        })
    }

    /// The `host:port,...` list to hand to clients as `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> String {
        self.bootstrap_servers.clone()
    }

    /// Number of brokers in the cluster (ids `1..=brokers`).
    pub fn brokers(&self) -> i32 {
        self.brokers
    }

    /// Creates `name` with `partitions` partitions and [`PartitionLimits::default`].
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<(), EmbeddedError> {
        self.create_topic_with_limits(name, partitions, PartitionLimits::default())
    }

    /// Creates `name` with `partitions` partitions (replication factor `min(3, brokers)`, as
    /// the mock does for auto-created topics), then sets every partition's `limits`. The topic
    /// exists in the cluster when this returns; clients see it on their next metadata request.
    pub fn create_topic_with_limits(
        &self,
        name: &str,
        partitions: i32,
        limits: PartitionLimits,
    ) -> Result<(), EmbeddedError> {
        let topic_c = CString::new(name).map_err(|_| EmbeddedError::TopicName {
            topic: name.to_owned(),
        })?;
        self.mock()?
            .create_topic(name, partitions, self.brokers.clamp(1, 3))
            .map_err(|source| EmbeddedError::CreateTopic {
                topic: name.to_owned(),
                partitions,
                source,
            })?;
        self.set_partition_limits_c(&topic_c, name, limits)
    }

    /// Sets the limits of every partition of an existing topic. Message sets already dropped
    /// stay dropped, so call this before anything produces to the topic.
    pub fn set_partition_limits(
        &self,
        name: &str,
        limits: PartitionLimits,
    ) -> Result<(), EmbeddedError> {
        let topic_c = CString::new(name).map_err(|_| EmbeddedError::TopicName {
            topic: name.to_owned(),
        })?;
        self.set_partition_limits_c(&topic_c, name, limits)
    }

    fn set_partition_limits_c(
        &self,
        topic_c: &CString,
        name: &str,
        limits: PartitionLimits,
    ) -> Result<(), EmbeddedError> {
        let mcluster = self.raw_cluster()?;
        // SAFETY: `mcluster` is the live cluster owned by `self.host` (borrowed for the whole
        // call), `topic_c` is a NUL-terminated string that outlives the call, and the shim
        // touches the cluster only on the cluster's own thread via its op queue (the same
        // mechanism as the public `rd_kafka_mock_*` setters), blocking until done, so there
        // is no data race with the cluster appending to partitions.
        let rc = unsafe {
            churnwatch_mock_set_partition_limits(
                mcluster,
                topic_c.as_ptr(),
                limits.max_bytes,
                limits.max_message_sets,
            )
        };
        match rc {
            0 => Ok(()),
            -1 => Err(EmbeddedError::Limits {
                topic: name.to_owned(),
                reason: "the topic does not exist",
            }),
            _ => Err(EmbeddedError::Limits {
                topic: name.to_owned(),
                reason: "the mock cluster did not serve the request",
            }),
        }
    }

    /// rdkafka's mock-cluster API for fault injection (`broker_down`, `broker_up`,
    /// `request_errors`, `partition_leader`, ...). Borrowed: it cannot outlive the broker.
    /// Fails only if the cluster is gone, which `start` rules out.
    pub fn mock(&self) -> Result<MockCluster<'_, DefaultProducerContext>, EmbeddedError> {
        self.host
            .client()
            .mock_cluster()
            .ok_or(EmbeddedError::NoCluster)
    }

    /// How long the first join of a new consumer group waits for more members (the broker's
    /// `group.initial.rebalance.delay.ms`; the mock's default is 3 s). Tests lower it.
    pub fn set_group_initial_rebalance_delay(&self, delay: Duration) -> Result<(), EmbeddedError> {
        let mcluster = self.raw_cluster()?;
        let delay_ms = i32::try_from(delay.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: `mcluster` is the live cluster owned by `self.host`; this public librdkafka
        // setter takes the cluster's lock.
        unsafe { rdkafka_sys::rd_kafka_mock_group_initial_rebalance_delay_ms(mcluster, delay_ms) };
        Ok(())
    }

    fn raw_cluster(&self) -> Result<*mut RDKafkaMockCluster, EmbeddedError> {
        // SAFETY: `native_ptr` is the live `rd_kafka_t` owned by `self.host`;
        // `rd_kafka_handle_mock_cluster` only reads its mock-cluster field, which is set at
        // creation and cleared only when the handle is destroyed.
        let ptr =
            unsafe { rdkafka_sys::rd_kafka_handle_mock_cluster(self.host.client().native_ptr()) };
        if ptr.is_null() {
            Err(EmbeddedError::NoCluster)
        } else {
            Ok(ptr)
        }
    }
}
