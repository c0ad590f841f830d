//! The changelog topic exists, compacted, with one partition per input partition.
//!
//! Created at start-up when missing, through the admin API (`cleanup.policy=compact`,
//! and `min.compaction.lag.ms` of an hour so a restart finds an interrupted checkpoint's
//! records still beside the state they would shadow). The embedded broker has no
//! CreateTopics: whoever starts it creates the topic with the others (the `broker` and `demo`
//! commands do).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use tracing::info;

use super::ChangelogError;

/// Makes sure `topic` exists with `partitions` partitions; `count(topic)` reads a topic's
/// partition count from the broker's metadata (`None` while it does not exist).
pub async fn ensure(
    client: &ClientConfig,
    topic: &str,
    partitions: usize,
    count: impl Fn(&str) -> Result<Option<usize>, rdkafka::error::KafkaError>,
) -> Result<(), ChangelogError> {
    let kafka = |source| ChangelogError::Kafka {
        topic: topic.to_string(),
        source,
    };
    match count(topic).map_err(kafka)? {
        Some(n) if n == partitions => return Ok(()),
        Some(n) => {
            return Err(ChangelogError::NotCoPartitioned {
                topic: topic.to_string(),
                found: n,
                want: partitions,
            })
        }
        None => {}
    }
    let admin: AdminClient<DefaultClientContext> = client.create().map_err(kafka)?;
    let new = NewTopic::new(topic, partitions as i32, TopicReplication::Fixed(-1))
        .set("cleanup.policy", "compact")
        .set("min.compaction.lag.ms", "3600000");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin.create_topics([&new], &opts).await.map_err(kafka)?;
    for r in results {
        if let Err((_, code)) = r {
            if code != rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists {
                return Err(kafka(rdkafka::error::KafkaError::AdminOp(code)));
            }
        }
    }
    info!(topic, partitions, "changelog topic created (compacted)");
    for _ in 0..100 {
        if count(topic).map_err(kafka)? == Some(partitions) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(ChangelogError::Corrupt {
        topic: topic.to_string(),
        partition: -1,
        reason: "created, but the broker's metadata does not show it after 10 s".into(),
    })
}
