//! Running the `churnwatch` binary on the test fixtures, as a user would.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A file of `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Runs the binary with `args`, no config from the environment, warnings only.
pub fn churnwatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_churnwatch"))
        .args(args)
        .env_remove("CHURNWATCH_CONFIG")
        .env("RUST_LOG", "warn")
        .output()
        .expect("the churnwatch binary runs")
}

/// The number after `name` on the first report line that starts with it (leading spaces
/// and a trailing unit `s` ignored), as the benchmarks print their figures.
pub fn report_field(out: &str, name: &str) -> f64 {
    out.lines()
        .find_map(|l| l.trim_start().strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.trim_end_matches('s').parse().ok())
        .unwrap_or_else(|| panic!("no `{name}` in:\n{out}"))
}
