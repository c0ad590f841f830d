//! What a bad setting is: the error every detection setting reports, naming its key, and
//! the checks the rule sections share. A leaf module, so the rules (which define their own
//! sections) and the config that gathers them both use it without using each other.

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

pub(crate) fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        reason: reason.into(),
    }
}

pub(crate) fn check_weight(key: &str, weight: u32) -> Result<(), ConfigError> {
    if weight == 0 || weight > 100 {
        return Err(invalid(&format!("{key}.weight"), "must be 1 to 100"));
    }
    Ok(())
}

pub(crate) fn check_positive(key: &str, field: &str, v: f64) -> Result<(), ConfigError> {
    if !(v.is_finite() && v > 0.0) {
        return Err(invalid(
            &format!("{key}.{field}"),
            "must be a positive number",
        ));
    }
    Ok(())
}

pub(crate) fn check_ratio_or_off(key: &str, field: &str, v: f64) -> Result<(), ConfigError> {
    if !(v == 0.0 || (v.is_finite() && v > 1.0)) {
        return Err(invalid(
            &format!("{key}.{field}"),
            "must be above 1, or 0 to turn the check off",
        ));
    }
    Ok(())
}

pub(crate) fn check_fraction(key: &str, field: &str, v: f64) -> Result<(), ConfigError> {
    if !(v > 0.0 && v < 1.0) {
        return Err(invalid(
            &format!("{key}.{field}"),
            "must be between 0 and 1 (exclusive)",
        ));
    }
    Ok(())
}
