//! `churnwatch bench cluster`: two `churnwatch run` processes share a group over the
//! embedded broker, catch up on a backlog from a seeded changelog, and the survivor takes
//! over when the other leaves. The benchmark fails unless the group commits every record
//! produced; here its report is checked for what a platform engineer reads from it.

#[path = "common/cli.rs"]
mod cli;

use cli::report_field as field;

#[test]
fn the_survivor_takes_over_every_partition_and_every_subscriber() {
    let out = cli::churnwatch(&[
        "bench",
        "cluster",
        "--subscribers",
        "40000",
        "--events",
        "100000",
        "--rate",
        "5000",
        "--latency-secs",
        "5",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(field(&text, "subscribers"), 40_000.0, "{text}");
    // Both instances held two partitions and about half the subscribers each; after the
    // leave, the survivor holds all four and every subscriber.
    let held: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.trim_start().starts_with("instance a:") || l.trim_start().starts_with("instance b:")
        })
        .collect();
    assert_eq!(held.len(), 3, "{text}");
    assert!(
        held[0].contains("2 partitions") && held[1].contains("2 partitions"),
        "{text}"
    );
    assert!(
        held[2].contains("4 partitions, 40000 subscribers"),
        "{text}"
    );
    assert!(text.contains("(40000 subscribers held)"), "{text}");
    assert!(field(&text, "cluster_takeover_secs") > 0.0, "{text}");
    assert!(field(&text, "cluster_latency_p99_ms") > 0.0, "{text}");
    assert!(
        field(&text, "cluster_changelog_bytes_total") > 40_000.0 * 200.0,
        "{text}"
    );
}
