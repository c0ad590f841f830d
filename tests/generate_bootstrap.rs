//! `churnwatch generate --bootstrap` streams every generated record into Kafka: the input
//! topics' end offsets add up to the generated record count (nothing dropped).

use std::time::Duration;

use churnwatch::config::Config;
use churnwatch::kafka::embedded::EmbeddedBroker;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

fn lines(path: &std::path::Path) -> i64 {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count() as i64
}

#[test]
fn generate_streams_the_whole_workload_into_kafka() {
    let cfg = Config::default();
    let broker = churnwatch::tools::live::start_broker(&cfg, 3).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_churnwatch"))
        .args([
            "generate",
            "--subscribers",
            "150",
            "--days",
            "40",
            "--seed",
            "7",
            "--out",
        ])
        .arg(dir.path())
        .args(["--bootstrap", &broker.bootstrap_servers()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected_cdr = lines(&dir.path().join("cdr.jsonl"));
    let expected_acct = lines(&dir.path().join("account.jsonl"));
    assert!(expected_cdr > 1000);
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .create()
        .unwrap();
    let end = |topic: &str| -> i64 {
        (0..3)
            .map(|p| {
                let (low, high) = c
                    .fetch_watermarks(topic, p, Duration::from_secs(10))
                    .unwrap();
                assert_eq!(low, 0, "nothing dropped from {topic}/{p}");
                high
            })
            .sum()
    };
    assert_eq!(end(&cfg.kafka.topics.cdr), expected_cdr);
    assert_eq!(end(&cfg.kafka.topics.account), expected_acct);
    drop(c);
    drop::<EmbeddedBroker>(broker);
}
