//! The detection settings the core owns: event time, the number plan, the calendar, the
//! rules, the tiers, the routing matrix and the contact policy. Each rule's own section is
//! defined in the rule's file and gathered by the registry in [`rules`](super::rules); the
//! service's configuration (`crate::config`) wraps this one with its Kafka and HTTP settings,
//! so the dependency runs one way: the service knows the core, never the reverse.
//!
//! Every struct has a default per field and `deny_unknown_fields`, so a typo fails instead of
//! being ignored; [`DetectConfig::validate`] names the offending key.

use serde::Deserialize;

pub use super::rules::RulesConfig;
use super::validate::invalid;
pub use super::validate::ConfigError;

mod numbering;
use numbering::strings;
pub use numbering::{NumberingConfig, OperatorConfig};

/// Everything the engine reads: the `[engine]`, `[numbering]`, `[calendar]`, `[rules.*]`,
/// `[tiers]`, `[routing]`, `[contact]` and `[quality]` sections.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    pub engine: EngineConfig,
    pub numbering: NumberingConfig,
    pub calendar: CalendarConfig,
    pub rules: RulesConfig,
    pub tiers: TiersConfig,
    pub routing: RoutingConfig,
    pub contact: ContactConfig,
    pub quality: QualityConfig,
}

/// Live detection quality (see [`super::quality`]). Read at start; a reload keeps it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QualityConfig {
    /// A churn this many days or fewer after a ticket is a hit for its rules; a ticket with
    /// no churn by then is a false alarm.
    pub horizon_days: u32,
}

impl Default for QualityConfig {
    fn default() -> Self {
        QualityConfig { horizon_days: 60 }
    }
}

impl AsRef<DetectConfig> for DetectConfig {
    fn as_ref(&self) -> &DetectConfig {
        self
    }
}

impl DetectConfig {
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
        if !(1_000..=1_000_000_000).contains(&e.max_dedup_ids) {
            return Err(invalid(
                "engine.max_dedup_ids",
                "must be 1000 to 1000000000",
            ));
        }
        if !(1..=10_000).contains(&e.expected_daily_records) {
            return Err(invalid(
                "engine.expected_daily_records",
                "must be 1 to 10000",
            ));
        }
        if !(3..=72).contains(&e.dedup_horizon_hours) {
            return Err(invalid(
                "engine.dedup_horizon_hours",
                "must be 3 to 72 (how long after its arrival a record's id is remembered)",
            ));
        }
        if e.sized_dedup_ids() > e.max_dedup_ids {
            return Err(invalid(
                "engine.max_dedup_ids",
                format!(
                    "{} is below the {} ids that engine.expected_subscribers × engine.expected_daily_records size for over engine.dedup_horizon_hours: raise it, or duplicates of older records would go unrecognised",
                    e.max_dedup_ids,
                    e.sized_dedup_ids()
                ),
            ));
        }
        validate_eviction(e)?;
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
        if !(1..=365).contains(&self.quality.horizon_days) {
            return Err(invalid("quality.horizon_days", "must be 1 to 365"));
        }
        Ok(())
    }
}

fn validate_eviction(e: &EngineConfig) -> Result<(), ConfigError> {
    let min = super::eviction::MIN_IDLE_EVICTION_DAYS;
    if e.idle_eviction_days != 0 && !(min..=3_650).contains(&e.idle_eviction_days) {
        return Err(invalid(
            "engine.idle_eviction_days",
            format!("must be 0 (never) or {min} to 3650 (longer than any rule looks back past a subscriber's last record)"),
        ));
    }
    if e.churned_eviction_days > 366 {
        return Err(invalid(
            "engine.churned_eviction_days",
            "must be 0 (never) to 366",
        ));
    }
    Ok(())
}

impl EngineConfig {
    /// The de-duplication ids a partition is sized for: the expected subscribers' records
    /// of four thirds of the horizon, the most it holds (0 when unsized).
    pub fn sized_dedup_ids(&self) -> usize {
        let daily =
            (self.expected_subscribers).saturating_mul(self.expected_daily_records as usize);
        (daily.saturating_mul(4 * self.dedup_horizon_hours as usize)).div_ceil(3 * 24)
    }

    /// Length of a de-duplication period (a third of the horizon), ms.
    pub fn dedup_period_ms(&self) -> i64 {
        i64::from(self.dedup_horizon_hours.max(1)) * 1_200_000
    }

    /// The eviction horizons (see [`super::eviction`]).
    pub fn eviction(&self) -> super::eviction::Horizons {
        super::eviction::Horizons {
            idle_days: self.idle_eviction_days,
            churned_days: self.churned_eviction_days,
        }
    }
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
    /// Records a subscriber has in a day, on average: with `expected_subscribers` it sizes
    /// the de-duplication table once (ids of the de-dup horizon, 4 bytes each at 90% full).
    pub expected_daily_records: u32,
    /// The most de-duplication ids a partition holds (about 4.4 bytes each), at least what
    /// the two above size for. Past it the oldest ids are dropped, and a later duplicate of
    /// a dropped id is not recognised.
    pub max_dedup_ids: usize,
    /// How long after its arrival a record's id is remembered (hours of the partition's
    /// event time, 3 to 72; read at start): a copy delivered later counts twice (see
    /// [`crate::detect::dedup`]).
    pub dedup_horizon_hours: u32,
    /// Evict a subscriber with no record for this many closed days (0 = never; else at
    /// least 63, see [`super::eviction`]).
    pub idle_eviction_days: u32,
    /// Evict a churned subscriber this many closed days after the churn day (0 = never).
    pub churned_eviction_days: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            time_zone: "Asia/Shanghai".into(),
            allowed_lateness_hours: 48,
            expected_subscribers: 0,
            expected_daily_records: 5,
            max_dedup_ids: 20_000_000,
            dedup_horizon_hours: 24,
            idle_eviction_days: 90,
            churned_eviction_days: 7,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn with(idle: u32, churned: u32) -> Result<(), ConfigError> {
        let mut cfg = DetectConfig::default();
        cfg.engine.idle_eviction_days = idle;
        cfg.engine.churned_eviction_days = churned;
        cfg.validate()
    }

    #[test]
    fn eviction_horizons_are_checked_naming_the_key() {
        let e = EngineConfig::default();
        assert_eq!((e.idle_eviction_days, e.churned_eviction_days), (90, 7));
        for ok in [(0, 0), (63, 1), (3_650, 366)] {
            assert!(with(ok.0, ok.1).is_ok(), "{ok:?}");
        }
        for idle in [1, 35, 62, 3_651] {
            let err = with(idle, 7).unwrap_err().to_string();
            assert!(err.contains("engine.idle_eviction_days"), "{idle}: {err}");
        }
        let err = with(90, 367).unwrap_err().to_string();
        assert!(err.contains("engine.churned_eviction_days"), "{err}");
    }

    #[test]
    fn the_quality_horizon_is_checked_naming_the_key() {
        let mut cfg = DetectConfig::default();
        assert_eq!(cfg.quality.horizon_days, 60);
        for ok in [1, 365] {
            cfg.quality.horizon_days = ok;
            assert!(cfg.validate().is_ok(), "{ok}");
        }
        for bad in [0, 366] {
            cfg.quality.horizon_days = bad;
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains("quality.horizon_days"), "{bad}: {err}");
        }
    }
}
