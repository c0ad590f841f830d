//! Every setting churnwatch reads: the core's [`DetectConfig`] (its sections `[engine]`,
//! `[numbering]`, `[calendar]`, `[rules.*]`, `[tiers]`, `[routing]`, `[contact]`) wrapped
//! with the service's `[kafka]` and `[http]`. This module depends on the core, never the
//! reverse. One loader, [`Config::load`], serves every command: the file (or the defaults),
//! then `CHURNWATCH__SECTION__KEY` environment variables over it, then validation naming the
//! offending key. The ported-numbers file a config names is read by [`ported`], the same
//! way for every command that builds an engine.
//!
//! The annotated example `config/churnwatch.example.toml` lists every key with its default;
//! a test keeps it parseable and equal to the built-in defaults.

use serde::{de::Error as _, Deserialize, Deserializer};
use std::path::Path;

pub use crate::detect::config::*;
use crate::detect::validate::invalid;

mod kafka;
pub mod ported;
pub use kafka::*;

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
        let text = include_str!("../../config/churnwatch.example.toml");
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
            ("auto", Partitioner::Auto),
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
        // A cap below what the table is sized for would shed ids within the horizon.
        let sized = "[engine]\nexpected_subscribers = 10000000\nexpected_daily_records = 4\n";
        let err = Config::from_toml(sized)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("engine.max_dedup_ids") && err.contains("53333334"),
            "{err}"
        );
        assert!(Config::from_toml(&format!("{sized}max_dedup_ids = 53333334\n")).is_ok());
        for bad in [2, 73] {
            let err = Config::from_toml(&format!("[engine]\ndedup_horizon_hours = {bad}\n"));
            let err = err.map(|_| ()).unwrap_err().to_string();
            assert!(err.contains("engine.dedup_horizon_hours"), "{bad}: {err}");
        }
    }

    #[test]
    fn tmf621_is_a_ticket_format_and_refused_as_an_input_format() {
        for (name, f) in [
            ("protobuf", TicketFormat::Protobuf),
            ("json", TicketFormat::Json),
            ("tmf621", TicketFormat::Tmf621),
        ] {
            let cfg = Config::from_toml(&format!("[kafka]\nticket_format = \"{name}\"\n")).unwrap();
            assert_eq!(cfg.kafka.ticket_format, f);
        }
        for (name, f) in [("protobuf", Format::Protobuf), ("json", Format::Json)] {
            let cfg = Config::from_toml(&format!("[kafka]\ninput_format = \"{name}\"\n")).unwrap();
            assert_eq!(cfg.kafka.input_format, f);
        }
        let err = Config::from_toml("[kafka]\ninput_format = \"tmf621\"\n").unwrap_err();
        let err = err.to_string();
        assert!(err.contains("kafka.input_format"), "{err}");
        assert!(err.contains("kafka.ticket_format"), "{err}");
        let env = vec![(
            "CHURNWATCH__KAFKA__INPUT_FORMAT".to_string(),
            "tmf621".to_string(),
        )];
        let err = Config::load_with_env(None, env).unwrap_err().to_string();
        assert!(err.contains("kafka.input_format"), "{err}");
        for (key, bad) in [("input_format", "xml"), ("ticket_format", "tmf622")] {
            let err = Config::from_toml(&format!("[kafka]\n{key} = \"{bad}\"\n"));
            let err = err.map(|_| ()).unwrap_err().to_string();
            assert!(err.contains(&format!("kafka.{key}")), "{bad}: {err}");
        }
    }

    #[test]
    fn an_unknown_key_is_refused() {
        let err = Config::from_toml("[rules.silent_days]\nmin_dayz = 3\n").unwrap_err();
        assert!(err.to_string().contains("min_dayz"), "{err}");
    }
}
