//! The embedded broker with every topic of a config created: `churnwatch broker`, and the
//! broker under the demo, the benchmarks and the tests.

use std::io::Write;
use std::time::Duration;

use super::LiveError;
use crate::config::Config;
use crate::kafka::embedded::{EmbeddedBroker, EmbeddedError};

/// Starts the embedded broker and creates every topic of `cfg` (before any client can
/// auto-create one with the mock's small default limits).
pub fn start_broker(cfg: &Config, partitions: i32) -> Result<EmbeddedBroker, EmbeddedError> {
    let broker = EmbeddedBroker::start(1)?;
    broker.set_group_initial_rebalance_delay(Duration::from_millis(100))?;
    let t = &cfg.kafka.topics;
    for (topic, n) in [
        (&t.cdr, partitions),
        (&t.account, partitions),
        (&t.outcomes, partitions),
        (&t.tickets, partitions),
        (&t.dead_letter, 1),
        (&t.changelog, partitions),
    ] {
        if topic.is_empty() {
            continue;
        }
        broker.create_topic(topic, n)?;
    }
    Ok(broker)
}

/// `churnwatch broker`: the embedded broker alone, with every topic of `cfg` created, until
/// `shutdown` resolves. Prints the bootstrap address.
pub async fn run_broker(
    cfg: &Config,
    partitions: i32,
    shutdown: impl std::future::Future<Output = ()>,
    out: &mut dyn Write,
) -> Result<(), LiveError> {
    let broker = start_broker(cfg, partitions)?;
    let _ = writeln!(out, "{}", broker.bootstrap_servers());
    let _ = writeln!(
        out,
        "embedded broker up; topics {}, {}, {}, {}, {} ({partitions} partitions) and {}. Ctrl-C stops it.",
        cfg.kafka.topics.cdr, cfg.kafka.topics.account, cfg.kafka.topics.outcomes, cfg.kafka.topics.tickets, cfg.kafka.topics.changelog, cfg.kafka.topics.dead_letter
    );
    let _ = out.flush();
    shutdown.await;
    drop(broker);
    Ok(())
}
