//! The `[kafka]` section: brokers, topics, formats, the processing guarantee, the
//! partitioner the inputs are keyed with, and the bounds of the Kafka service.

use serde::{de::Error as _, Deserialize, Deserializer};

use crate::detect::validate::{invalid, ConfigError};

/// Message encoding of records: of the input topics (`kafka.input_format`), and of the
/// files `replay` reads and `generate` writes (`--input-format`, `--format`). The one enum
/// for the choice; on the command line it reads `proto` (or `protobuf`) and `json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Protobuf: one message per Kafka record; length-delimited in a file.
    #[default]
    #[value(name = "proto", alias = "protobuf")]
    Protobuf,
    /// Proto3 JSON: one message per Kafka record; one per line in a file.
    Json,
}

impl<'de> Deserialize<'de> for Format {
    /// Names the key in its error, and says why `tmf621` is refused: it is a shape for
    /// tickets going out, not one churnwatch reads.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        match name.as_str() {
            "protobuf" => Ok(Format::Protobuf),
            "json" => Ok(Format::Json),
            "tmf621" => Err(D::Error::custom(
                "kafka.input_format: `tmf621` is a ticket format (kafka.ticket_format); \
                 inputs are `protobuf` or `json`",
            )),
            _ => Err(D::Error::custom(format!(
                "kafka.input_format: `{name}` is not `protobuf` or `json`"
            ))),
        }
    }
}

/// Encoding of published tickets (`kafka.ticket_format`, `replay --format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum TicketFormat {
    /// `CareTicket` as protobuf: one per Kafka record; length-delimited in a file.
    #[default]
    #[value(name = "proto", alias = "protobuf")]
    Protobuf,
    /// `CareTicket` as proto3 JSON: one per Kafka record; one per line in a file.
    Json,
    /// A TM Forum TMF621 `TroubleTicket` JSON object, one per Kafka record (see
    /// `codec::tmf621`), for CRMs that ingest the Trouble Ticket API's shape.
    Tmf621,
}

impl TicketFormat {
    /// The name in the config file.
    pub fn name(self) -> &'static str {
        match self {
            TicketFormat::Protobuf => "protobuf",
            TicketFormat::Json => "json",
            TicketFormat::Tmf621 => "tmf621",
        }
    }
}

impl<'de> Deserialize<'de> for TicketFormat {
    /// Names the key in its error (serde's own names only the variant).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        [
            TicketFormat::Protobuf,
            TicketFormat::Json,
            TicketFormat::Tmf621,
        ]
        .into_iter()
        .find(|f| f.name() == name)
        .ok_or_else(|| {
            D::Error::custom(format!(
                "kafka.ticket_format: `{name}` is not `protobuf`, `json` or `tmf621`"
            ))
        })
    }
}

/// Kafka topics.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TopicsConfig {
    pub cdr: String,
    pub account: String,
    pub outcomes: String,
    pub tickets: String,
    pub dead_letter: String,
    /// The state changelog: compacted, co-partitioned with the inputs, created at start-up
    /// if missing (see `kafka::changelog`). Empty turns it off: state then lives in memory
    /// only and a restart forgets every subscriber (for benchmarks and throwaway runs).
    pub changelog: String,
}

impl Default for TopicsConfig {
    fn default() -> Self {
        TopicsConfig {
            cdr: "cdr".into(),
            account: "account".into(),
            outcomes: "ticket-outcomes".into(),
            tickets: "care-tickets".into(),
            dead_letter: "churnwatch-dlq".into(),
            changelog: "churnwatch-state".into(),
        }
    }
}

/// What a crash may do to published tickets (`kafka.processing_guarantee`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Guarantee {
    /// Nothing is lost; tickets of the input re-read after a crash are published again,
    /// with the same id and content.
    AtLeastOnce,
    /// One Kafka transaction per checkpoint (EOS v2).
    ExactlyOnce,
}

/// How upstream producers map a key to a partition (`kafka.partitioner`): each record read
/// is checked against it (see `kafka::partitioner`), and `demo` and `generate` produce
/// with it (murmur2 under `auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partitioner {
    /// Learnt from the first keyed records: murmur2 or CRC32, the same for every input.
    Auto,
    /// Kafka's Java clients' default: murmur2 of the key (librdkafka's `murmur2_random`).
    Murmur2,
    /// librdkafka's default: CRC32 of the key.
    ConsistentRandom,
    /// No check.
    None,
}

impl<'de> Deserialize<'de> for Partitioner {
    /// Names the key in its error (serde's own names only the variant).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        [
            Partitioner::Auto,
            Partitioner::Murmur2,
            Partitioner::ConsistentRandom,
            Partitioner::None,
        ]
        .into_iter()
        .find(|p| p.name() == name)
        .ok_or_else(|| {
            D::Error::custom(format!(
                "kafka.partitioner: `{name}` is not `auto`, `murmur2`, `consistent_random` or `none`"
            ))
        })
    }
}

impl Partitioner {
    /// The name in the config file.
    pub fn name(self) -> &'static str {
        match self {
            Partitioner::Auto => "auto",
            Partitioner::Murmur2 => "murmur2",
            Partitioner::ConsistentRandom => "consistent_random",
            Partitioner::None => "none",
        }
    }
}

/// The Kafka service (`churnwatch run`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port...]`.
    pub brokers: String,
    /// Consumer group; instances in one group split the partitions.
    pub group_id: String,
    pub topics: TopicsConfig,
    /// Encoding of the CDR, account and outcome topics.
    pub input_format: Format,
    /// Encoding of published tickets: the `CareTicket` (protobuf or proto3 JSON) or a
    /// TMF621 `TroubleTicket` JSON object.
    pub ticket_format: TicketFormat,
    /// Records (per partition) read but not yet acknowledged downstream; reading pauses
    /// when it is reached, so memory stays flat under a producer that outruns us.
    pub max_in_flight: usize,
    /// Bytes (per partition) of records read but not processed, and of tickets and dead
    /// letters not yet acknowledged; reading pauses when either bound is reached.
    pub max_in_flight_bytes: usize,
    /// Records larger than this go to the dead-letter topic.
    pub max_message_bytes: usize,
    /// Records whose event time is further than this ahead of the wall clock are dead-lettered.
    pub max_future_skew_ms: i64,
    /// On a partition revoke or shutdown, how long to wait for pending acknowledgements.
    pub drain_timeout_ms: u64,
    /// Consumer session timeout (librdkafka `session.timeout.ms`).
    pub session_timeout_ms: u64,
    /// An input that has delivered nothing for this long stops holding its partition's
    /// other inputs back (see `kafka::partition::merge`); after this long with no record on
    /// any input of a partition, its event-time clock follows the wall clock from the last
    /// record, so its days still close (Flink's source idleness). 0 turns the wall-clock
    /// advance off (inputs then go idle after a minute).
    pub idle_timeout_ms: u64,
    /// A partition with records waiting that makes no progress for this long is reported
    /// stalled (`/readyz` 503, `churnwatch_partition_stalled`); 0 turns it off. Longer than
    /// the event-time merge's 30 s wait, so a wait is never taken for a stall.
    pub stall_timeout_ms: u64,
    /// How often each partition writes a checkpoint to the changelog: the subscribers
    /// changed since the last one, the partition's own state and the input offsets it
    /// reflects. A crash re-reads at most this much input.
    pub checkpoint_interval_ms: u64,
    /// `at_least_once`: tickets re-emitted after a crash keep their id and content.
    /// `exactly_once`: tickets, dead letters, changelog and offsets commit in one Kafka
    /// transaction per checkpoint; downstream reads with `isolation.level=read_committed`.
    pub processing_guarantee: Guarantee,
    /// The partitioner of every producer of the inputs: `auto` (learnt from the records),
    /// `murmur2` (Kafka's Java clients), `consistent_random` (librdkafka's default) or
    /// `none` (no check). A record on another partition than its key's is counted,
    /// logged, and shown by `/readyz` as a warning.
    pub partitioner: Partitioner,
    /// Any other librdkafka setting, handed over as is: security (`security.protocol`,
    /// `sasl.mechanism`, `sasl.username`, `ssl.ca.location`...), tuning, debugging.
    pub options: std::collections::BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "localhost:9092".into(),
            group_id: "churnwatch".into(),
            topics: TopicsConfig::default(),
            input_format: Format::Protobuf,
            ticket_format: TicketFormat::Protobuf,
            max_in_flight: 10_000,
            max_in_flight_bytes: 64 << 20,
            max_message_bytes: 1_048_576,
            max_future_skew_ms: 3_600_000,
            drain_timeout_ms: 10_000,
            session_timeout_ms: 45_000,
            idle_timeout_ms: 60_000,
            stall_timeout_ms: 120_000,
            checkpoint_interval_ms: 5_000,
            processing_guarantee: Guarantee::AtLeastOnce,
            partitioner: Partitioner::Auto,
            options: Default::default(),
        }
    }
}

/// The longest `kafka.idle_timeout_ms` accepted (a week).
pub const MAX_IDLE_TIMEOUT_MS: u64 = 7 * 86_400_000;

impl KafkaConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.brokers.trim().is_empty() {
            return Err(invalid("kafka.brokers", "must not be empty"));
        }
        if self.group_id.trim().is_empty() {
            return Err(invalid("kafka.group_id", "must not be empty"));
        }
        let t = &self.topics;
        for (k, v) in [
            ("cdr", &t.cdr),
            ("account", &t.account),
            ("outcomes", &t.outcomes),
            ("tickets", &t.tickets),
            ("dead_letter", &t.dead_letter),
            ("changelog", &t.changelog),
        ] {
            if k == "changelog" && v.is_empty() {
                continue;
            }
            if v.trim().is_empty()
                || v.len() > 249
                || !v
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            {
                return Err(invalid(
                    &format!("kafka.topics.{k}"),
                    format!("`{v}` is not a valid topic name"),
                ));
            }
        }
        if t.cdr == t.account {
            return Err(invalid(
                "kafka.topics.account",
                "must differ from kafka.topics.cdr",
            ));
        }
        if !(1..=1_000_000).contains(&self.max_in_flight) {
            return Err(invalid("kafka.max_in_flight", "must be 1 to 1000000"));
        }
        if !((1 << 20)..=(4 << 30)).contains(&self.max_in_flight_bytes) {
            return Err(invalid(
                "kafka.max_in_flight_bytes",
                "must be 1048576 (1 MiB) to 4294967296 (4 GiB)",
            ));
        }
        if !(1024..=100 * 1024 * 1024).contains(&self.max_message_bytes) {
            return Err(invalid(
                "kafka.max_message_bytes",
                "must be 1 KiB to 100 MiB",
            ));
        }
        if self.max_future_skew_ms < 0 {
            return Err(invalid("kafka.max_future_skew_ms", "must not be negative"));
        }
        if self.drain_timeout_ms >= self.session_timeout_ms {
            return Err(invalid(
                "kafka.drain_timeout_ms",
                "must be shorter than kafka.session_timeout_ms, or a slow drain costs the group its member",
            ));
        }
        if self.idle_timeout_ms != 0
            && !(1_000..=MAX_IDLE_TIMEOUT_MS).contains(&self.idle_timeout_ms)
        {
            return Err(invalid(
                "kafka.idle_timeout_ms",
                "must be 0 (off) or 1000 ms to 7 days",
            ));
        }
        if self.stall_timeout_ms != 0
            && !(60_000..=MAX_IDLE_TIMEOUT_MS).contains(&self.stall_timeout_ms)
        {
            return Err(invalid(
                "kafka.stall_timeout_ms",
                "must be 0 (off) or 60000 ms to 7 days (longer than the merge's 30 s wait)",
            ));
        }
        let inputs = [&t.cdr, &t.account, &t.outcomes, &t.tickets, &t.dead_letter];
        if !t.changelog.is_empty() && inputs.contains(&&t.changelog) {
            return Err(invalid(
                "kafka.topics.changelog",
                "must be a topic of its own: churnwatch writes its state there",
            ));
        }
        if !(100..=600_000).contains(&self.checkpoint_interval_ms) {
            return Err(invalid(
                "kafka.checkpoint_interval_ms",
                "must be 100 ms to 10 minutes",
            ));
        }
        for k in self.options.keys() {
            if [
                "group.id",
                "transactional.id",
                "bootstrap.servers",
                "enable.auto.offset.store",
            ]
            .contains(&k.as_str())
            {
                return Err(invalid(
                    &format!("kafka.options.{k}"),
                    "is set by churnwatch; use the dedicated key",
                ));
            }
        }
        Ok(())
    }
}
