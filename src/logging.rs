//! The process's log output: format and level from flags or the environment, so a cluster
//! can set them in a manifest (`CHURNWATCH_LOG_FORMAT=json` for Loki/ELK,
//! `CHURNWATCH_LOG=info`) without a config file change.
//!
//! Part of the binary, not the library: only `main` installs the global subscriber. Kept
//! apart from `main.rs` so the rules live in one place: colours only on a terminal (a
//! piped or collected log never carries ANSI escapes), and a bad setting stops the start
//! naming the setting instead of silently logging at another level.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The level used when `--log-level`, `CHURNWATCH_LOG` and `RUST_LOG` are all unset.
const DEFAULT_LEVEL: &str = "warn";

/// Global options of every subcommand.
#[derive(clap::Args, Debug)]
pub struct LogArgs {
    /// Log format on stderr: `text` (colours only on a terminal) or `json` (one object a
    /// line: timestamp, level, target, message and fields).
    #[arg(
        long,
        global = true,
        env = "CHURNWATCH_LOG_FORMAT",
        value_name = "text|json"
    )]
    pub log_format: Option<String>,
    /// Log level, as an EnvFilter directive: `info`, `churnwatch=debug,rdkafka=warn`.
    /// Without it (and without CHURNWATCH_LOG), RUST_LOG, else `warn`.
    #[arg(long, global = true, env = "CHURNWATCH_LOG", value_name = "DIRECTIVES")]
    pub log_level: Option<String>,
}

/// Why the log settings were refused (the process then exits before doing anything).
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("--log-format (CHURNWATCH_LOG_FORMAT): `{0}` is neither `text` nor `json`")]
    Format(String),
    #[error("{setting}: `{value}` is not a log level directive ({reason})")]
    Level {
        setting: &'static str,
        value: String,
        reason: String,
    },
    #[error("a log subscriber is already installed: {0}")]
    Install(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Text,
    Json,
}

fn format(arg: Option<&str>) -> Result<Format, LogError> {
    match arg.map(str::trim) {
        None | Some("text") => Ok(Format::Text),
        Some("json") => Ok(Format::Json),
        Some(other) => Err(LogError::Format(other.to_string())),
    }
}

fn filter(arg: Option<&str>, rust_log: Option<&str>) -> Result<EnvFilter, LogError> {
    let (setting, value) = match (arg, rust_log) {
        (Some(v), _) => ("--log-level (CHURNWATCH_LOG)", v),
        (None, Some(v)) if !v.trim().is_empty() => ("RUST_LOG", v),
        _ => ("the default", DEFAULT_LEVEL),
    };
    EnvFilter::builder()
        .parse(value)
        .map_err(|e| LogError::Level {
            setting,
            value: value.to_string(),
            reason: e.to_string(),
        })
}

/// Installs the global subscriber, writing to stderr.
pub fn init(args: &LogArgs) -> Result<(), LogError> {
    let format = format(args.log_format.as_deref())?;
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = filter(args.log_level.as_deref(), rust_log.as_deref())?;
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    let installed = match format {
        Format::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        Format::Json => builder.json().flatten_event(true).try_init(),
    };
    installed.map_err(|e| LogError::Install(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_text_by_default_and_anything_else_is_refused_by_name() {
        assert_eq!(format(None).unwrap(), Format::Text);
        assert_eq!(format(Some("json")).unwrap(), Format::Json);
        let e = format(Some("xml")).unwrap_err().to_string();
        assert!(
            e.contains("CHURNWATCH_LOG_FORMAT") && e.contains("xml"),
            "{e}"
        );
    }

    #[test]
    fn the_flag_wins_over_rust_log_which_wins_over_the_default() {
        let shown = |f: EnvFilter| f.to_string();
        assert_eq!(
            shown(filter(Some("debug"), Some("error")).unwrap()),
            "debug"
        );
        assert_eq!(shown(filter(None, Some("error")).unwrap()), "error");
        assert_eq!(shown(filter(None, Some(" ")).unwrap()), DEFAULT_LEVEL);
        assert_eq!(shown(filter(None, None).unwrap()), DEFAULT_LEVEL);
    }

    #[test]
    fn a_bad_directive_names_where_it_came_from() {
        let e = filter(Some("churnwatch=loud"), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("CHURNWATCH_LOG") && e.contains("churnwatch=loud"),
            "{e}"
        );
        let e = filter(None, Some("churnwatch=loud"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("RUST_LOG"), "{e}");
    }
}
