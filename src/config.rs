//! Every setting churnwatch reads: the core's [`DetectConfig`] (its sections `[engine]`,
//! `[numbering]`, `[calendar]`, `[rules.*]`, `[tiers]`, `[routing]`, `[contact]`) wrapped
//! with the service's `[kafka]` and `[http]`. This module depends on the core, never the
//! reverse. One loader, [`Config::load`], serves every command: the file (or the defaults),
//! then `CHURNWATCH__SECTION__KEY` environment variables over it, then validation naming the
//! offending key.
//!
//! The annotated example `config/churnwatch.example.toml` lists every key with its default;
//! a test keeps it parseable and equal to the built-in defaults.

use serde::{de::Error as _, Deserialize, Deserializer};
use std::path::Path;

pub use crate::detect::config::*;
use crate::detect::validate::invalid;

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// Everything the detection core reads.
    pub detect: DetectConfig,
    pub kafka: KafkaConfig,
    pub http: HttpConfig,
}

impl AsRef<DetectConfig> for Config {
    fn as_ref(&self) -> &DetectConfig {
        &self.detect
    }
}

/// The file is one flat set of sections: `[kafka]` and `[http]` are the service's, every
/// other section belongs to the core (which refuses the ones it does not know).
impl<'de> Deserialize<'de> for Config {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Config, D::Error> {
        let mut table = toml::Table::deserialize(d)?;
        fn section<T: Default + serde::de::DeserializeOwned, E: serde::de::Error>(
            table: &mut toml::Table,
            name: &str,
        ) -> Result<T, E> {
            table
                .remove(name)
                .map(|v| T::deserialize(v).map_err(|e| E::custom(format!("[{name}]: {e}"))))
                .transpose()
                .map(Option::unwrap_or_default)
        }
        let kafka = section(&mut table, "kafka")?;
        let http = section(&mut table, "http")?;
        let detect = DetectConfig::deserialize(toml::Value::Table(table))
            .map_err(|e| D::Error::custom(e.to_string().trim()))?;
        Ok(Config {
            detect,
            kafka,
            http,
        })
    }
}

impl Config {
    /// The one loader every command uses: the file (or the defaults), then the process's
    /// `CHURNWATCH__*` environment variables over it, then validation.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_with_env(path, std::env::vars())
    }

    /// Reads a TOML file (or nothing: the defaults), applies `CHURNWATCH__SECTION__KEY`
    /// environment variables over it, and validates the result. `CHURNWATCH__KAFKA__BROKERS=
    /// kafka:9092` sets `kafka.brokers`; a value that parses as TOML (a number, a boolean, an
    /// array) is taken as such, anything else as a string.
    pub fn load_with_env(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let (text, name) = match path {
            Some(p) => (
                std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.display().to_string(),
                    source,
                })?,
                p.display().to_string(),
            ),
            None => (String::new(), "<defaults>".to_string()),
        };
        let parse_err = |message: String| ConfigError::Parse {
            path: name.clone(),
            message,
        };
        let mut value: toml::Table =
            toml::from_str(&text).map_err(|e| parse_err(e.to_string().trim().to_string()))?;
        for (k, v) in env {
            let Some(rest) = k.strip_prefix("CHURNWATCH__") else {
                continue;
            };
            let mut path: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
            if path.iter().any(|p| p.is_empty()) {
                continue;
            }
            let parsed = if let [kafka, options, key] = &mut path[..] {
                if kafka != "kafka" || options != "options" {
                    typed(&v)
                } else {
                    // librdkafka keys are dotted and environment names cannot be:
                    // `..._OPTIONS__SECURITY_PROTOCOL` is `security.protocol`, and the value
                    // is handed over as the string it is.
                    *key = key.replace('_', ".");
                    toml::Value::String(v.clone())
                }
            } else {
                typed(&v)
            };
            set_path(&mut value, &path, parsed).map_err(|reason| ConfigError::Invalid {
                key: path.join("."),
                reason,
            })?;
        }
        let cfg: Config = value
            .try_into()
            .map_err(|e: toml::de::Error| parse_err(e.to_string().trim().to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: "<inline>".into(),
            message: e.to_string().trim().to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks every value and cross-field constraint, naming the key that is wrong.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.detect.validate()?;
        self.kafka.validate()?;
        self.http.validate()?;
        Ok(())
    }
}

/// A value that parses as TOML (a number, a boolean, an array) is taken as such, anything
/// else as a string.
fn typed(v: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {v}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(v.to_string()))
}

fn set_path(table: &mut toml::Table, path: &[String], v: toml::Value) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("empty key")?;
    let mut t = table;
    for p in parents {
        let entry = t
            .entry(p.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{p}` is not a section"))?;
    }
    t.insert(last.clone(), v);
    Ok(())
}

/// Message encoding on a topic.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Protobuf, one message per Kafka record.
    #[default]
    Protobuf,
    /// Proto3 JSON, one message per Kafka record.
    Json,
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
/// with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partitioner {
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
            Partitioner::Murmur2,
            Partitioner::ConsistentRandom,
            Partitioner::None,
        ]
        .into_iter()
        .find(|p| p.name() == name)
        .ok_or_else(|| {
            D::Error::custom(format!(
                "kafka.partitioner: `{name}` is not `murmur2`, `consistent_random` or `none`"
            ))
        })
    }
}

impl Partitioner {
    /// The name in the config file.
    pub fn name(self) -> &'static str {
        match self {
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
    /// Encoding of published tickets.
    pub ticket_format: Format,
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
    /// After this long with no record on any input of a partition, its event-time clock
    /// follows the wall clock from the last record, so its days still close (Flink's source
    /// idleness); 0 turns it off.
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
    /// The partitioner of every producer of the inputs: `murmur2` (Kafka's Java clients),
    /// `consistent_random` (librdkafka's default) or `none` (no check). A record on
    /// another partition than its key's is counted, logged and reported by `/readyz`.
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
            ticket_format: Format::Protobuf,
            max_in_flight: 10_000,
            max_in_flight_bytes: 64 << 20,
            max_message_bytes: 1_048_576,
            max_future_skew_ms: 3_600_000,
            drain_timeout_ms: 10_000,
            session_timeout_ms: 45_000,
            idle_timeout_ms: 300_000,
            stall_timeout_ms: 120_000,
            checkpoint_interval_ms: 5_000,
            processing_guarantee: Guarantee::AtLeastOnce,
            partitioner: Partitioner::Murmur2,
            options: Default::default(),
        }
    }
}

/// The longest `kafka.idle_timeout_ms` accepted (a week).
const MAX_IDLE_TIMEOUT_MS: u64 = 7 * 86_400_000;

impl KafkaConfig {
    fn validate(&self) -> Result<(), ConfigError> {
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

/// The HTTP endpoints: metrics and probes on one listener, subscriber look-ups (personal
/// data, behind a bearer token) on another.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address of `/metrics`, `/healthz` and `/readyz`; empty turns them off.
    pub listen: String,
    /// Address of `/subscribers/{msisdn}`; empty (the default) turns look-ups off.
    pub lookup_listen: String,
    /// File holding the look-ups' bearer token; empty: `CHURNWATCH_LOOKUP_TOKEN` instead.
    pub lookup_token_file: String,
    /// Tickets older than this (by creation event time) drop off the look-up's recent list.
    pub recent_tickets_days: u32,
    /// Subscribers whose recent tickets are kept for look-ups; past it, those whose newest
    /// ticket is oldest are dropped (checked every 5 s).
    pub recent_tickets_max_subscribers: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:9898".into(),
            lookup_listen: String::new(),
            lookup_token_file: String::new(),
            recent_tickets_days: 30,
            recent_tickets_max_subscribers: 100_000,
        }
    }
}

impl HttpConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        for (key, addr) in [
            ("http.listen", &self.listen),
            ("http.lookup_listen", &self.lookup_listen),
        ] {
            if !addr.is_empty() && addr.parse::<std::net::SocketAddr>().is_err() {
                return Err(invalid(key, format!("`{addr}` is not host:port")));
            }
        }
        let same = self.lookup_listen == self.listen && !self.listen.ends_with(":0");
        if !self.lookup_listen.is_empty() && same {
            return Err(invalid(
                "http.lookup_listen",
                "must differ from http.listen: look-ups need a port of their own",
            ));
        }
        if !(1..=3_650).contains(&self.recent_tickets_days) {
            return Err(invalid("http.recent_tickets_days", "must be 1 to 3650"));
        }
        if !(1..=100_000_000).contains(&self.recent_tickets_max_subscribers) {
            return Err(invalid(
                "http.recent_tickets_max_subscribers",
                "must be 1 to 100000000",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn annotated_example_parses_to_the_defaults() {
        let text = include_str!("../config/churnwatch.example.toml");
        let cfg = Config::from_toml(text).unwrap();
        assert_eq!(cfg, Config::default());
    }

    #[test]
    fn an_invalid_value_names_its_key() {
        let err =
            Config::from_toml("[rules.silent_days]\nbaseline_active_fraction = 1.5\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("rules.silent_days.baseline_active_fraction"),
            "{err}"
        );
        let err = Config::from_toml("[engine]\ntime_zone = \"Mars/Olympus\"\n").unwrap_err();
        assert!(err.to_string().contains("engine.time_zone"), "{err}");
        let err = Config::from_toml("[numbering]\nhome_operator = \"acme\"\n").unwrap_err();
        assert!(err.to_string().contains("numbering.home_operator"), "{err}");
        let err = Config::from_toml("[kafka]\npartitioner = \"fnv\"\n").unwrap_err();
        assert!(err.to_string().contains("kafka.partitioner"), "{err}");
        for (name, p) in [
            ("murmur2", Partitioner::Murmur2),
            ("consistent_random", Partitioner::ConsistentRandom),
            ("none", Partitioner::None),
        ] {
            let cfg = Config::from_toml(&format!("[kafka]\npartitioner = \"{name}\"\n")).unwrap();
            assert_eq!(cfg.kafka.partitioner, p);
        }
    }

    #[test]
    fn environment_variables_override_keys() {
        let env = vec![
            (
                "CHURNWATCH__KAFKA__BROKERS".to_string(),
                "kafka-1:9092".to_string(),
            ),
            (
                "CHURNWATCH__KAFKA__MAX_IN_FLIGHT".to_string(),
                "64".to_string(),
            ),
            (
                "CHURNWATCH__ENGINE__TIME_ZONE".to_string(),
                "Europe/Berlin".to_string(),
            ),
            ("OTHER".to_string(), "x".to_string()),
        ];
        let cfg = Config::load_with_env(None, env).unwrap();
        assert_eq!(cfg.kafka.brokers, "kafka-1:9092");
        assert_eq!(cfg.kafka.max_in_flight, 64);
        assert_eq!(cfg.detect.engine.time_zone, "Europe/Berlin");
        let bad = vec![(
            "CHURNWATCH__KAFKA__MAX_IN_FLIGHT".to_string(),
            "0".to_string(),
        )];
        let err = Config::load_with_env(None, bad).unwrap_err();
        assert!(err.to_string().contains("kafka.max_in_flight"), "{err}");
    }

    #[test]
    fn a_stall_timeout_is_off_or_longer_than_the_merge_wait() {
        for ok in [0, 60_000, 120_000] {
            Config::from_toml(&format!("[kafka]\nstall_timeout_ms = {ok}\n")).unwrap();
        }
        for bad in [1, 30_000, MAX_IDLE_TIMEOUT_MS + 1] {
            let err = Config::from_toml(&format!("[kafka]\nstall_timeout_ms = {bad}\n"));
            let err = err.map(|_| ()).unwrap_err().to_string();
            assert!(err.contains("kafka.stall_timeout_ms"), "{bad}: {err}");
        }
    }

    #[test]
    fn an_idle_timeout_is_off_or_between_a_second_and_a_week() {
        for ok in [0, 1_000, 300_000, MAX_IDLE_TIMEOUT_MS] {
            Config::from_toml(&format!("[kafka]\nidle_timeout_ms = {ok}\n")).unwrap();
        }
        for bad in [1, 999, MAX_IDLE_TIMEOUT_MS + 1, i64::MAX as u64] {
            let err = Config::from_toml(&format!("[kafka]\nidle_timeout_ms = {bad}\n"));
            let err = err.map(|_| ()).unwrap_err().to_string();
            assert!(err.contains("kafka.idle_timeout_ms"), "{bad}: {err}");
        }
    }

    #[test]
    fn librdkafka_options_come_from_the_environment_dotted_and_as_strings() {
        let env = vec![
            (
                "CHURNWATCH__KAFKA__OPTIONS__SECURITY_PROTOCOL".to_string(),
                "SASL_SSL".to_string(),
            ),
            (
                "CHURNWATCH__KAFKA__OPTIONS__FETCH_WAIT_MAX_MS".to_string(),
                "50".to_string(),
            ),
        ];
        let cfg = Config::load_with_env(None, env).unwrap();
        assert_eq!(cfg.kafka.options["security.protocol"], "SASL_SSL");
        assert_eq!(cfg.kafka.options["fetch.wait.max.ms"], "50");
    }

    #[test]
    fn the_lookup_listener_is_off_by_default_and_checked_like_the_metrics_one() {
        assert_eq!(Config::default().http.lookup_listen, "");
        let env = vec![(
            "CHURNWATCH__HTTP__LOOKUP_LISTEN".to_string(),
            "127.0.0.1:9899".to_string(),
        )];
        let cfg = Config::load_with_env(None, env).unwrap();
        assert_eq!(cfg.http.lookup_listen, "127.0.0.1:9899");
        for bad in ["localhost", "127.0.0.1:9898", "9899"] {
            let err = Config::from_toml(&format!("[http]\nlookup_listen = \"{bad}\"\n"));
            let err = err.map(|_| ()).unwrap_err().to_string();
            assert!(err.contains("http.lookup_listen"), "{bad}: {err}");
        }
    }

    #[test]
    fn recent_ticket_bounds_are_checked_naming_the_key() {
        let cfg = Config::default();
        assert_eq!(cfg.http.recent_tickets_days, 30);
        assert_eq!(cfg.http.recent_tickets_max_subscribers, 100_000);
        for (key, bad) in [
            ("recent_tickets_days", 0),
            ("recent_tickets_days", 3_651),
            ("recent_tickets_max_subscribers", 0),
            ("recent_tickets_max_subscribers", 100_000_001),
        ] {
            let err = Config::from_toml(&format!("[http]\n{key} = {bad}\n"));
            let err = err.map(|_| ()).unwrap_err().to_string();
            assert!(err.contains(&format!("http.{key}")), "{bad}: {err}");
        }
    }

    #[test]
    fn the_de_duplication_cap_is_checked_naming_the_key() {
        assert_eq!(Config::default().detect.engine.max_dedup_ids, 20_000_000);
        for bad in [0, 999, 1_000_000_001] {
            let err = Config::from_toml(&format!("[engine]\nmax_dedup_ids = {bad}\n"));
            let err = err.map(|_| ()).unwrap_err().to_string();
            assert!(err.contains("engine.max_dedup_ids"), "{bad}: {err}");
        }
    }

    #[test]
    fn an_unknown_key_is_refused() {
        let err = Config::from_toml("[rules.silent_days]\nmin_dayz = 3\n").unwrap_err();
        assert!(err.to_string().contains("min_dayz"), "{err}");
    }
}
