//! Every setting churnwatch reads, in one place: serde structs with a default per field,
//! `deny_unknown_fields` so a typo fails instead of being ignored, and [`Config::validate`],
//! which runs at start-up and names the offending key.
//!
//! The annotated example `config/churnwatch.example.toml` lists every key with its default;
//! a test keeps it parseable and equal to the built-in defaults.

use serde::Deserialize;
use std::path::Path;

/// A configuration that cannot be used; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("invalid config value `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub engine: EngineConfig,
    pub numbering: NumberingConfig,
    pub calendar: CalendarConfig,
    pub rules: RulesConfig,
    pub tiers: TiersConfig,
    pub routing: RoutingConfig,
    pub contact: ContactConfig,
    pub kafka: KafkaConfig,
    pub http: HttpConfig,
}

impl Config {
    /// Reads, parses and validates a TOML file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let cfg = Config::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })?;
        Ok(cfg)
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
            let path: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
            if path.iter().any(|p| p.is_empty()) {
                continue;
            }
            let parsed = toml::from_str::<toml::Table>(&format!("v = {v}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or(toml::Value::String(v.clone()));
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
        let e = &self.engine;
        if e.time_zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(invalid(
                "engine.time_zone",
                format!("`{}` is not an IANA time zone", e.time_zone),
            ));
        }
        if e.allowed_lateness_hours == 0 || e.allowed_lateness_hours > 48 {
            return Err(invalid(
                "engine.allowed_lateness_hours",
                "must be 1 to 48 (the state keeps three open days; a day closes once the watermark passes it)",
            ));
        }
        let n = &self.numbering;
        if n.operators.is_empty() {
            return Err(invalid(
                "numbering.operators",
                "at least the home operator is needed",
            ));
        }
        if !n.operators.iter().any(|o| o.id == n.home_operator) {
            return Err(invalid(
                "numbering.home_operator",
                format!(
                    "`{}` is not one of numbering.operators[].id",
                    n.home_operator
                ),
            ));
        }
        for (i, op) in n.operators.iter().enumerate() {
            if op.id.is_empty() {
                return Err(invalid(
                    &format!("numbering.operators[{i}].id"),
                    "must not be empty",
                ));
            }
            if n.operators[..i].iter().any(|o| o.id == op.id) {
                return Err(invalid(
                    &format!("numbering.operators[{i}].id"),
                    format!("`{}` is listed twice", op.id),
                ));
            }
            for (field, list) in [
                ("mobile_prefixes", &op.mobile_prefixes),
                ("care_numbers", &op.care_numbers),
                ("ip_call_prefixes", &op.ip_call_prefixes),
            ] {
                for p in list.iter() {
                    if p.is_empty() || p.len() > 15 || !p.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(invalid(
                            &format!("numbering.operators[{i}].{field}"),
                            format!("`{p}` is not 1 to 15 digits"),
                        ));
                    }
                }
            }
        }
        if !n.country_code.bytes().all(|b| b.is_ascii_digit()) || n.country_code.len() > 3 {
            return Err(invalid("numbering.country_code", "must be 1 to 3 digits"));
        }
        for (i, h) in self.calendar.holidays.iter().enumerate() {
            if crate::detect::calendar::parse_holiday(h).is_none() {
                return Err(invalid(
                    &format!("calendar.holidays[{i}]"),
                    format!("`{h}` is not YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD"),
                ));
            }
        }
        self.rules.validate()?;
        self.tiers.validate()?;
        self.routing.validate(&self.tiers)?;
        self.contact.validate()?;
        self.kafka.validate()?;
        self.http.validate()?;
        Ok(())
    }
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

/// Event time and state.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// The operator's time zone: "day" and "month" in every rule are calendar days here.
    pub time_zone: String,
    /// How late a record may arrive (behind the newest event time seen) and still count.
    pub allowed_lateness_hours: u32,
    /// Capacity to reserve for the subscriber table (avoids rehashing at start-up).
    pub expected_subscribers: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            time_zone: "Asia/Shanghai".into(),
            allowed_lateness_hours: 48,
            expected_subscribers: 0,
        }
    }
}

/// The number plan: which operator a number belongs to.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NumberingConfig {
    /// The operator running churnwatch; every other operator is a competitor.
    pub home_operator: String,
    /// Country code stripped from international-format numbers.
    pub country_code: String,
    /// Optional CSV `number,operator` of ported numbers (they keep their original prefix).
    pub ported_numbers_file: Option<String>,
    pub operators: Vec<OperatorConfig>,
}

/// One operator's ranges and service numbers.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OperatorConfig {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// Leading digits of its mobile numbers in national format.
    #[serde(default)]
    pub mobile_prefixes: Vec<String>,
    /// Customer-service short numbers.
    #[serde(default)]
    pub care_numbers: Vec<String>,
    /// IP-call access prefixes dialled before a number to route the call over this operator.
    #[serde(default)]
    pub ip_call_prefixes: Vec<String>,
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

impl Default for NumberingConfig {
    fn default() -> Self {
        NumberingConfig {
            home_operator: "china_unicom".into(),
            country_code: "86".into(),
            ported_numbers_file: None,
            operators: vec![
                OperatorConfig {
                    id: "china_unicom".into(),
                    name: "China Unicom".into(),
                    mobile_prefixes: strings(&[
                        "130", "131", "132", "145", "146", "155", "156", "166", "167", "171",
                        "175", "176", "185", "186", "196",
                    ]),
                    care_numbers: strings(&["10010"]),
                    ip_call_prefixes: strings(&["17911", "17910"]),
                },
                OperatorConfig {
                    id: "china_mobile".into(),
                    name: "China Mobile".into(),
                    mobile_prefixes: strings(&[
                        "134", "135", "136", "137", "138", "139", "147", "148", "150", "151",
                        "152", "157", "158", "159", "172", "178", "182", "183", "184", "187",
                        "188", "195", "197", "198",
                    ]),
                    care_numbers: strings(&["10086"]),
                    ip_call_prefixes: strings(&["17951", "12593"]),
                },
                OperatorConfig {
                    id: "china_telecom".into(),
                    name: "China Telecom".into(),
                    mobile_prefixes: strings(&[
                        "133", "149", "153", "173", "174", "177", "180", "181", "189", "190",
                        "191", "193", "199",
                    ]),
                    care_numbers: strings(&["10000"]),
                    ip_call_prefixes: strings(&["17909", "17908"]),
                },
            ],
        }
    }
}

/// Public holidays, when usage normally falls.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CalendarConfig {
    /// Dates or inclusive ranges, "YYYY-MM-DD" or "YYYY-MM-DD..YYYY-MM-DD". The usage-drop
    /// rules do not judge a 7-day window that contains one of these days.
    pub holidays: Vec<String>,
}

impl Default for CalendarConfig {
    fn default() -> Self {
        CalendarConfig {
            holidays: strings(&[
                "2025-01-01",
                "2025-01-28..2025-02-04",
                "2025-04-04..2025-04-06",
                "2025-05-01..2025-05-05",
                "2025-05-31..2025-06-02",
                "2025-10-01..2025-10-08",
                "2026-01-01..2026-01-03",
                "2026-02-15..2026-02-23",
                "2026-04-04..2026-04-06",
                "2026-05-01..2026-05-05",
                "2026-06-19..2026-06-21",
                "2026-09-25..2026-09-27",
                "2026-10-01..2026-10-07",
                "2027-01-01..2027-01-03",
                "2027-02-05..2027-02-11",
                "2027-10-01..2027-10-07",
            ]),
        }
    }
}

macro_rules! rule_configs {
    ($( $field:ident : $ty:ident ),* $(,)?) => {
        /// Per-rule settings; each section is named by the rule's stable id.
        #[derive(Debug, Clone, Deserialize, PartialEq, Default)]
        #[serde(deny_unknown_fields, default)]
        pub struct RulesConfig {
            $( pub $field: $ty, )*
        }
        impl RulesConfig {
            fn validate(&self) -> Result<(), ConfigError> {
                $( self.$field.validate(concat!("rules.", stringify!($field)))?; )*
                Ok(())
            }
        }
    };
}

rule_configs! {
    competitor_care_call: CompetitorCareCallConfig,
    offnet_forwarding_streak: ForwardingStreakConfig,
    offnet_forwarding_registration: ForwardingRegistrationConfig,
    zero_spend_month: ZeroSpendMonthConfig,
    silent_days: SilentDaysConfig,
    overdue_bill: OverdueBillConfig,
    payment_reminder: PaymentReminderConfig,
    spend_drop: DropConfig,
    voice_drop: VoiceDropConfig,
    data_drop: DataDropConfig,
    sustained_decline: SustainedDeclineConfig,
    number_retention_suspension: NumberRetentionConfig,
    contract_expiry: ContractExpiryConfig,
    complaint_burst: ComplaintBurstConfig,
    offnet_ip_calls: OffnetIpCallsConfig,
    bill_shock: BillShockConfig,
}

fn check_weight(key: &str, weight: u32) -> Result<(), ConfigError> {
    if weight == 0 || weight > 100 {
        return Err(invalid(&format!("{key}.weight"), "must be 1 to 100"));
    }
    Ok(())
}

fn check_positive(key: &str, field: &str, v: f64) -> Result<(), ConfigError> {
    if !(v.is_finite() && v > 0.0) {
        return Err(invalid(
            &format!("{key}.{field}"),
            "must be a positive number",
        ));
    }
    Ok(())
}

fn check_fraction(key: &str, field: &str, v: f64) -> Result<(), ConfigError> {
    if !(v > 0.0 && v < 1.0) {
        return Err(invalid(
            &format!("{key}.{field}"),
            "must be between 0 and 1 (exclusive)",
        ));
    }
    Ok(())
}

/// Defines a rule's config struct with `enabled`, `weight` and `cooldown_days` plus its own
/// thresholds, and `Default` from the given values.
macro_rules! rule_config {
    (
        $(#[$doc:meta])* $name:ident { weight: $w:expr, cooldown_days: $c:expr $(, $(#[$fdoc:meta])* $f:ident : $t:ty = $d:expr )* $(,)? }
        validate($self_:ident, $key:ident) $body:block
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Deserialize, PartialEq)]
        #[serde(deny_unknown_fields, default)]
        pub struct $name {
            /// A disabled rule raises nothing.
            pub enabled: bool,
            /// Contribution to a ticket's risk score, 1-100; also ranks the ticket's signals.
            pub weight: u32,
            /// Length of the aligned window (operator-local days since 1970) within which the
            /// rule raises at most one ticket per subscriber.
            pub cooldown_days: u32,
            $( $(#[$fdoc])* pub $f: $t, )*
        }
        impl Default for $name {
            fn default() -> Self {
                $name { enabled: true, weight: $w, cooldown_days: $c, $( $f: $d, )* }
            }
        }
        impl $name {
            fn validate(&$self_, $key: &str) -> Result<(), ConfigError> {
                check_weight($key, $self_.weight)?;
                if $self_.cooldown_days == 0 || $self_.cooldown_days > 366 {
                    return Err(invalid(&format!("{}.cooldown_days", $key), "must be 1 to 366"));
                }
                $body
                Ok(())
            }
        }
    };
}

rule_config! {
    /// `competitor_care_call` [003][000].
    CompetitorCareCallConfig { weight: 70, cooldown_days: 7,
        /// The call must last longer than this (joined partial records), seconds.
        min_duration_s: u32 = 60 }
    validate(self, key) {
        if self.min_duration_s == 0 { return Err(invalid(&format!("{key}.min_duration_s"), "must be positive")); }
    }
}

rule_config! {
    /// `offnet_forwarding_streak` [003].
    ForwardingStreakConfig { weight: 80, cooldown_days: 30,
        /// Consecutive calendar days with calls forwarded to another operator's mobile.
        min_days: u32 = 5 }
    validate(self, key) {
        if !(2..=30).contains(&self.min_days) { return Err(invalid(&format!("{key}.min_days"), "must be 2 to 30")); }
    }
}

rule_config! {
    /// `offnet_forwarding_registration`: forwarding registered to another operator's mobile.
    ForwardingRegistrationConfig { weight: 40, cooldown_days: 30 }
    validate(self, key) {}
}

rule_config! {
    /// `zero_spend_month` [003].
    ZeroSpendMonthConfig { weight: 50, cooldown_days: 28,
        /// Days between the subscriber's first record (or activation) and the month's start.
        min_tenure_days: u32 = 60 }
    validate(self, key) {}
}

rule_config! {
    /// `silent_days` [000].
    SilentDaysConfig { weight: 45, cooldown_days: 14,
        /// Consecutive days with no call made or received.
        min_days: u32 = 7,
        /// Share of the 28 days before on which the subscriber called: "calls on most days".
        baseline_active_fraction: f64 = 0.6 }
    validate(self, key) {
        if !(2..=28).contains(&self.min_days) { return Err(invalid(&format!("{key}.min_days"), "must be 2 to 28")); }
        check_fraction(key, "baseline_active_fraction", self.baseline_active_fraction)?;
    }
}

rule_config! {
    /// `overdue_bill` [003].
    OverdueBillConfig { weight: 55, cooldown_days: 28 }
    validate(self, key) {}
}

rule_config! {
    /// `payment_reminder` [003][002].
    PaymentReminderConfig { weight: 25, cooldown_days: 7,
        /// Remind when a bill is unpaid this many days before its due time.
        days_before_due: u32 = 3,
        /// Remind when a prepaid top-up leaves the balance below this (fen).
        low_balance_fen: i64 = 500 }
    validate(self, key) {
        if self.days_before_due == 0 || self.days_before_due > 30 { return Err(invalid(&format!("{key}.days_before_due"), "must be 1 to 30")); }
        if self.low_balance_fen < 0 { return Err(invalid(&format!("{key}.low_balance_fen"), "must not be negative")); }
    }
}

/// Shared body of the three usage-drop rules [003][002].
macro_rules! drop_config {
    ($(#[$doc:meta])* $name:ident, $weight:expr, $min:expr, $unit:literal) => {
        rule_config! {
            $(#[$doc])*
            $name { weight: $weight, cooldown_days: 14,
                /// Fire when the last 7 days' total is below this share of the reference (the
                /// mean 7-day total over the 21 days ending a week before).
                drop_ratio: f64 = 0.5,
                #[doc = concat!("Smallest weekly baseline judged, in ", $unit, ", so light users don't fire.")]
                min_weekly_baseline: f64 = $min,
                /// Largest chance, among the subscriber's own usual days, of a week ranking
                /// this low (rank test); smaller is stricter.
                max_chance: f64 = 0.000002 }
            validate(self, key) {
                check_fraction(key, "drop_ratio", self.drop_ratio)?;
                check_positive(key, "min_weekly_baseline", self.min_weekly_baseline)?;
                check_fraction(key, "max_chance", self.max_chance)?;
            }
        }
    };
}

drop_config!(
    /// `spend_drop`: charge, yuan per week.
    DropConfig, 45, 10.0, "yuan");
drop_config!(
    /// `voice_drop` (MOU): minutes per week.
    VoiceDropConfig, 40, 60.0, "minutes");
drop_config!(
    /// `data_drop`: MiB per week.
    DataDropConfig, 40, 200.0, "MiB");

rule_config! {
    /// `sustained_decline` [002].
    SustainedDeclineConfig { weight: 55, cooldown_days: 28,
        /// Each month's spend must be below (1 - this) times the month before.
        min_monthly_drop: f64 = 0.2,
        /// Consecutive months of decline.
        months: u32 = 3,
        /// Spend of the month the decline starts from, yuan.
        min_start_spend_yuan: f64 = 20.0 }
    validate(self, key) {
        check_fraction(key, "min_monthly_drop", self.min_monthly_drop)?;
        if !(1..=4).contains(&self.months) { return Err(invalid(&format!("{key}.months"), "must be 1 to 4 (6 months are kept)")); }
        check_positive(key, "min_start_spend_yuan", self.min_start_spend_yuan)?;
    }
}

rule_config! {
    /// `number_retention_suspension` [003].
    NumberRetentionConfig { weight: 90, cooldown_days: 30 }
    validate(self, key) {}
}

rule_config! {
    /// `contract_expiry` [003][002].
    ContractExpiryConfig { weight: 35, cooldown_days: 1,
        /// Raise when the contract ends within this many days.
        days_before_end: u32 = 60 }
    validate(self, key) {
        if self.days_before_end == 0 || self.days_before_end > 366 { return Err(invalid(&format!("{key}.days_before_end"), "must be 1 to 366")); }
    }
}

rule_config! {
    /// `complaint_burst` [002].
    ComplaintBurstConfig { weight: 60, cooldown_days: 30,
        min_complaints: u32 = 2,
        min_fault_reports: u32 = 3,
        window_days: u32 = 90 }
    validate(self, key) {
        if !(1..=8).contains(&self.min_complaints) { return Err(invalid(&format!("{key}.min_complaints"), "must be 1 to 8")); }
        if !(1..=8).contains(&self.min_fault_reports) { return Err(invalid(&format!("{key}.min_fault_reports"), "must be 1 to 8")); }
        if !(1..=366).contains(&self.window_days) { return Err(invalid(&format!("{key}.window_days"), "must be 1 to 366")); }
    }
}

rule_config! {
    /// `offnet_ip_calls` [002].
    OffnetIpCallsConfig { weight: 50, cooldown_days: 28,
        /// Estimated monthly spend on the other network that fires the rule, yuan.
        monthly_threshold_yuan: f64 = 50.0,
        /// The competitor's estimated per-minute IP-call tariff, yuan.
        tariff_yuan_per_minute: f64 = 0.30 }
    validate(self, key) {
        check_positive(key, "monthly_threshold_yuan", self.monthly_threshold_yuan)?;
        check_positive(key, "tariff_yuan_per_minute", self.tariff_yuan_per_minute)?;
    }
}

rule_config! {
    /// `bill_shock` [002].
    BillShockConfig { weight: 45, cooldown_days: 28,
        /// Fire when the first bill exceeds this multiple of the plan's monthly fee.
        max_ratio: f64 = 2.0 }
    validate(self, key) {
        if !(self.max_ratio.is_finite() && self.max_ratio > 1.0) { return Err(invalid(&format!("{key}.max_ratio"), "must be greater than 1")); }
    }
}

/// One tier band: subscribers whose average monthly spend reaches `min_monthly_yuan`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TierBand {
    pub name: String,
    /// Lower bound of the trailing 3 full months' average monthly spend, yuan.
    pub min_monthly_yuan: f64,
    /// A VIP band (the seed's five VIP levels) rather than a star level.
    #[serde(default)]
    pub vip: bool,
    /// Queue for this tier's tickets (the matrix's `P4` goes to `routing.automated_queue`).
    pub queue: String,
}

fn band(name: &str, min: f64, vip: bool, queue: &str) -> TierBand {
    TierBand {
        name: name.into(),
        min_monthly_yuan: min,
        vip,
        queue: queue.into(),
    }
}

/// Subscriber tiers [003][001]: who is worth how much care.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TiersConfig {
    /// Bands from the highest down; the last must start at 0 so every subscriber has a tier.
    pub bands: Vec<TierBand>,
    /// A subscriber with less than three full months of history is tiered by the larger of
    /// its plan fee and its spend so far: "a new subscriber on a plan of 80 yuan or more is
    /// VIP from the start".
    pub new_subscriber_by_plan_fee: bool,
    /// Key persons of corporate customers are raised this many bands, and to VIP at least.
    pub key_person_raise: u32,
}

impl Default for TiersConfig {
    fn default() -> Self {
        TiersConfig {
            bands: vec![
                band("vip_supreme", 1000.0, true, "vip_retention_desk"),
                band("vip_diamond", 500.0, true, "vip_retention_desk"),
                band("vip_gold", 300.0, true, "vip_retention_desk"),
                band("vip_silver", 150.0, true, "vip_retention_desk"),
                band("vip", 80.0, true, "vip_retention_desk"),
                band("star_3", 50.0, false, "retention"),
                band("star_2", 20.0, false, "retention"),
                band("star_1", 0.0, false, "retention"),
            ],
            new_subscriber_by_plan_fee: true,
            key_person_raise: 1,
        }
    }
}

impl TiersConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.bands.is_empty() || self.bands.len() > 32 {
            return Err(invalid("tiers.bands", "give 1 to 32 bands"));
        }
        for (i, b) in self.bands.iter().enumerate() {
            let key = format!("tiers.bands[{i}]");
            if b.name.trim().is_empty() {
                return Err(invalid(&format!("{key}.name"), "must not be empty"));
            }
            if self.bands[..i].iter().any(|o| o.name == b.name) {
                return Err(invalid(
                    &format!("{key}.name"),
                    format!("`{}` is listed twice", b.name),
                ));
            }
            if b.queue.trim().is_empty() {
                return Err(invalid(&format!("{key}.queue"), "must not be empty"));
            }
            if !(b.min_monthly_yuan.is_finite() && b.min_monthly_yuan >= 0.0) {
                return Err(invalid(
                    &format!("{key}.min_monthly_yuan"),
                    "must be zero or more",
                ));
            }
            if i > 0 && b.min_monthly_yuan >= self.bands[i - 1].min_monthly_yuan {
                return Err(invalid(
                    &format!("{key}.min_monthly_yuan"),
                    "bands must go from the highest down",
                ));
            }
        }
        if self.bands.last().is_some_and(|b| b.min_monthly_yuan != 0.0) {
            return Err(invalid(
                &format!("tiers.bands[{}].min_monthly_yuan", self.bands.len() - 1),
                "the last band must start at 0 so every subscriber has a tier",
            ));
        }
        Ok(())
    }
}

/// A cell of the priority matrix: a priority, or no ticket at all.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cell {
    P1,
    P2,
    P3,
    P4,
    /// No ticket: the signal is counted as `below_threshold`.
    #[serde(rename = "none")]
    NoTicket,
}

/// How strong a rule's signal is; the matrix's columns.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Strength {
    Strong,
    Medium,
    Weak,
}

/// Priority and queue from tier x signal strength.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// Per tier name: the cell for a `[strong, medium, weak]` signal. A ticket takes the most
    /// urgent cell among its signals; when every cell is "none" no ticket is raised.
    pub matrix: std::collections::BTreeMap<String, [Cell; 3]>,
    /// Strength of each rule, by rule id; rules not listed are `medium`.
    pub strength: std::collections::BTreeMap<String, Strength>,
    /// Queue of `P4` tickets: an automated message rather than an agent's call.
    pub automated_queue: String,
    /// Queue of tickets nobody may call about (do-not-disturb subscribers).
    pub no_contact_queue: String,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        use Cell::*;
        let matrix = [
            ("vip_supreme", [P1, P1, P2]),
            ("vip_diamond", [P1, P1, P2]),
            ("vip_gold", [P1, P2, P3]),
            ("vip_silver", [P1, P2, P3]),
            ("vip", [P1, P2, P3]),
            ("star_3", [P2, P3, P4]),
            ("star_2", [P2, P3, P4]),
            ("star_1", [P3, P4, NoTicket]),
        ];
        let strength = [
            ("number_retention_suspension", Strength::Strong),
            ("offnet_forwarding_streak", Strength::Strong),
            ("competitor_care_call", Strength::Strong),
            ("offnet_forwarding_registration", Strength::Weak),
            ("payment_reminder", Strength::Weak),
            ("contract_expiry", Strength::Weak),
        ];
        RoutingConfig {
            matrix: matrix
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            strength: strength
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            automated_queue: "automated_message".into(),
            no_contact_queue: "no_contact".into(),
        }
    }
}

impl RoutingConfig {
    fn validate(&self, tiers: &TiersConfig) -> Result<(), ConfigError> {
        for b in &tiers.bands {
            if !self.matrix.contains_key(&b.name) {
                return Err(invalid(
                    "routing.matrix",
                    format!("no row for tier `{}`", b.name),
                ));
            }
        }
        for name in self.matrix.keys() {
            if !tiers.bands.iter().any(|b| &b.name == name) {
                return Err(invalid(
                    &format!("routing.matrix.{name}"),
                    "is not a tier in tiers.bands",
                ));
            }
        }
        for rule in self.strength.keys() {
            if crate::detect::rules::RuleId::parse(rule).is_none() {
                return Err(invalid(
                    &format!("routing.strength.{rule}"),
                    "is not a rule id",
                ));
            }
        }
        if self.automated_queue.trim().is_empty() {
            return Err(invalid("routing.automated_queue", "must not be empty"));
        }
        if self.no_contact_queue.trim().is_empty() {
            return Err(invalid("routing.no_contact_queue", "must not be empty"));
        }
        Ok(())
    }
}

/// Contact policy [003]: contact is rationed, do-not-disturb respected, and a control group
/// measures whether calling helps.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ContactConfig {
    /// At most this many tickets routed to a queue per subscriber and period; more are
    /// recorded with `no_contact_reason = "contact_cap"`.
    pub max_contacts: u32,
    /// The period of the cap: aligned windows of this many operator-local days.
    pub period_days: u32,
    /// Share of subscribers (chosen by a stable hash) whose tickets are held out: recorded
    /// with `control_group = true` and sent to no queue. 0 turns the control group off.
    pub control_group_fraction: f64,
    /// Changing the salt draws a different control group.
    pub control_group_salt: String,
}

impl Default for ContactConfig {
    fn default() -> Self {
        ContactConfig {
            max_contacts: 2,
            period_days: 30,
            control_group_fraction: 0.0,
            control_group_salt: "churnwatch".into(),
        }
    }
}

impl ContactConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.max_contacts == 0 {
            return Err(invalid("contact.max_contacts", "must be at least 1"));
        }
        if !(1..=366).contains(&self.period_days) {
            return Err(invalid("contact.period_days", "must be 1 to 366"));
        }
        if !(0.0..=0.5).contains(&self.control_group_fraction) {
            return Err(invalid(
                "contact.control_group_fraction",
                "must be 0 to 0.5",
            ));
        }
        Ok(())
    }
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
}

impl Default for TopicsConfig {
    fn default() -> Self {
        TopicsConfig {
            cdr: "cdr".into(),
            account: "account".into(),
            outcomes: "ticket-outcomes".into(),
            tickets: "care-tickets".into(),
            dead_letter: "churnwatch-dlq".into(),
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
            max_message_bytes: 1_048_576,
            max_future_skew_ms: 3_600_000,
            drain_timeout_ms: 10_000,
            session_timeout_ms: 45_000,
            idle_timeout_ms: 300_000,
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
        ] {
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
        for k in self.options.keys() {
            if ["group.id", "bootstrap.servers", "enable.auto.offset.store"].contains(&k.as_str()) {
                return Err(invalid(
                    &format!("kafka.options.{k}"),
                    "is set by churnwatch; use the dedicated key",
                ));
            }
        }
        Ok(())
    }
}

/// The HTTP endpoint: metrics, health, subscriber look-ups.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address to listen on; empty turns HTTP off.
    pub listen: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:9898".into(),
        }
    }
}

impl HttpConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !self.listen.is_empty() && self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                "http.listen",
                format!("`{}` is not host:port", self.listen),
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
        assert_eq!(cfg.engine.time_zone, "Europe/Berlin");
        let bad = vec![(
            "CHURNWATCH__KAFKA__MAX_IN_FLIGHT".to_string(),
            "0".to_string(),
        )];
        let err = Config::load_with_env(None, bad).unwrap_err();
        assert!(err.to_string().contains("kafka.max_in_flight"), "{err}");
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
    fn an_unknown_key_is_refused() {
        let err = Config::from_toml("[rules.silent_days]\nmin_dayz = 3\n").unwrap_err();
        assert!(err.to_string().contains("min_dayz"), "{err}");
    }
}
