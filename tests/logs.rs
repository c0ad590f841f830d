//! Logs fit for a cluster (issue 22): a piped text log carries no ANSI escapes (it held
//! hundreds in a few seconds of `run`), `--log-format json` / `CHURNWATCH_LOG_FORMAT=json`
//! gives one JSON object a line, and a bad log setting stops the start naming the setting.
//!
//! The service runs as `run` on the built-in config with its metrics listener on an
//! ephemeral port and a broker address where nothing listens. Its info line "http (metrics,
//! probes) listening" comes before any Kafka work, so stderr is read up to that line (with a
//! deadline, so a missing line fails instead of hanging), then the process is killed.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/config/churnwatch.example.toml"
);

/// The binary in `dir`, with none of this environment's log or config settings.
fn churnwatch(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_churnwatch"));
    for (k, _) in std::env::vars() {
        if k.starts_with("CHURNWATCH") || k == "RUST_LOG" || k == "NO_COLOR" {
            cmd.env_remove(k);
        }
    }
    cmd.current_dir(dir).stdin(Stdio::null());
    cmd
}

/// The stderr lines of `churnwatch ARGS` (a `run`) up to its "listening" line.
fn service_log(args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut child = churnwatch(dir.path())
        .args(args)
        .envs(env.iter().copied())
        .env("CHURNWATCH__HTTP__LISTEN", "127.0.0.1:0")
        .env("CHURNWATCH__KAFKA__BROKERS", "127.0.0.1:1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let outcome = loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                let done = line.contains("listening");
                lines.push(line);
                if done {
                    break Ok(());
                }
            }
            Err(e) => break Err(e),
        }
    };
    child.kill().unwrap();
    child.wait().unwrap();
    if let Err(e) = outcome {
        panic!("no \"listening\" line ({e:?}); stderr: {lines:#?}");
    }
    lines
}

fn check_config(args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    churnwatch(dir.path())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn piped_text_logs_carry_no_escape_codes() {
    let lines = service_log(&["--log-level", "info", "run"], &[]);
    let listening = lines.last().unwrap();
    assert!(listening.contains("INFO"), "{listening}");
    assert!(!listening.starts_with('{'), "text, not JSON: {listening}");
    for line in &lines {
        assert!(!line.contains('\x1b'), "an escape code in {line:?}");
    }
}

/// As deploy/k8s/deployment.yaml sets it; RUST_LOG is not consulted when CHURNWATCH_LOG is
/// set (at `error` it would hide the info line).
#[test]
fn json_logs_from_the_environment_parse_line_by_line() {
    let env = [
        ("CHURNWATCH_LOG_FORMAT", "json"),
        ("CHURNWATCH_LOG", "info"),
        ("RUST_LOG", "error"),
    ];
    let lines = service_log(&["run"], &env);
    let mut levels = Vec::new();
    for line in lines.iter().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let level = v["level"]
            .as_str()
            .unwrap_or_else(|| panic!("no level: {line}"));
        assert!(v["message"].is_string(), "no message: {line}");
        assert!(!line.contains('\x1b'), "an escape code in {line:?}");
        levels.push(level.to_string());
    }
    assert_eq!(
        levels.last().map(String::as_str),
        Some("INFO"),
        "{lines:#?}"
    );
}

/// The flags, also after the subcommand, win over the environment (which is then not read:
/// its values here are invalid).
#[test]
fn flags_after_the_subcommand_win_over_the_environment() {
    let env = [
        ("CHURNWATCH_LOG_FORMAT", "xml"),
        ("CHURNWATCH_LOG", "churnwatch=loud"),
    ];
    let lines = service_log(
        &["run", "--log-format", "json", "--log-level", "info"],
        &env,
    );
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v.is_object(), "{line}");
    }
}

#[test]
fn rust_log_still_sets_the_level_when_nothing_else_does() {
    let lines = service_log(&["run"], &[("RUST_LOG", "info")]);
    assert!(lines.last().unwrap().contains("INFO"), "{lines:#?}");
}

#[test]
fn an_invalid_log_format_stops_the_start_naming_the_setting() {
    for (args, env) in [
        (vec!["--log-format", "xml"], vec![]),
        (vec![], vec![("CHURNWATCH_LOG_FORMAT", "xml")]),
    ] {
        let mut all = args.clone();
        all.extend(["check-config", EXAMPLE]);
        let out = check_config(&all, &env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} {env:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} {env:?}: it went on");
        assert!(
            stderr.contains("--log-format") && stderr.contains("CHURNWATCH_LOG_FORMAT"),
            "{stderr}"
        );
        assert!(stderr.contains("xml"), "{stderr}");
    }
    let fine = check_config(&["--log-format", "json", "check-config", EXAMPLE], &[]);
    assert!(fine.status.success(), "{fine:?}");
}

#[test]
fn an_invalid_log_level_stops_the_start_naming_the_setting() {
    for (args, env, named) in [
        (
            vec!["--log-level", "churnwatch=loud"],
            vec![],
            "--log-level",
        ),
        (
            vec![],
            vec![("CHURNWATCH_LOG", "churnwatch=loud")],
            "CHURNWATCH_LOG",
        ),
        (vec![], vec![("RUST_LOG", "churnwatch=loud")], "RUST_LOG"),
    ] {
        let mut all = args.clone();
        all.extend(["check-config", EXAMPLE]);
        let out = check_config(&all, &env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} {env:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} {env:?}: it went on");
        assert!(
            stderr.contains(named) && stderr.contains("churnwatch=loud"),
            "{stderr}"
        );
    }
}
