//! `churnwatch bench restore --partitions P`: the subscribers split over P changelog
//! partitions come back in full, restored in parallel, and the report says so (a restore
//! that lost a partition's states fails the command, naming the count).

#[path = "common/cli.rs"]
mod cli;

use cli::report_field as field;
use std::process::Command;

#[test]
fn partitions_restored_in_parallel_bring_back_every_subscriber() {
    let out = Command::new(env!("CARGO_BIN_EXE_churnwatch"))
        .args([
            "bench",
            "restore",
            "--subscribers",
            "30000",
            "--partitions",
            "3",
        ])
        .args(["--runs", "1"])
        .env_remove("CHURNWATCH_CONFIG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("3 partition(s) restored in parallel"),
        "{text}"
    );
    assert_eq!(field(&text, "subscribers "), 30_000.0);
    // A full checkpoint: a record per subscriber in each partition, plus each one's
    // partition record and marker.
    assert!(field(&text, "changelog records") >= 30_000.0, "{text}");
    let total = field(&text, "subscribers restored/s");
    let each = field(&text, "per partition, in parallel");
    assert!(total > 0.0 && (each * 3.0 - total).abs() < 2.0, "{text}");
}

#[test]
fn a_partition_count_out_of_range_is_refused_naming_the_option() {
    let out = Command::new(env!("CARGO_BIN_EXE_churnwatch"))
        .args(["bench", "restore", "--partitions", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--partitions"));
}
