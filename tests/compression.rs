//! Compressed input: records a producer wrote with gzip, snappy, lz4 or zstd reach the
//! service's consumer settings (`churnwatch::kafka::client_config`) decompressed, through the
//! embedded broker (which stores the compressed batches as they came). A librdkafka built
//! without one of these codecs refuses the producer or surfaces the batches as consumer
//! errors, so each codec is a case that can fail.

use std::time::{Duration, Instant};

use churnwatch::config::Config;
use churnwatch::kafka::client_config;
use churnwatch::kafka::embedded::EmbeddedBroker;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};

const RECORDS: usize = 200;
const TIMEOUT: Duration = Duration::from_secs(20);

fn payload(i: usize) -> String {
    // Repetitive, so every codec actually compresses it.
    format!("record {i} ").repeat(20)
}

#[test]
fn every_codec_round_trips_through_the_service_consumer_settings() {
    let broker = EmbeddedBroker::start(1).expect("embedded broker");
    let mut cfg = Config::default();
    cfg.kafka.brokers = broker.bootstrap_servers();
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("in-{codec}");
        broker.create_topic(&topic, 1).unwrap();
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", broker.bootstrap_servers())
            .set("compression.type", codec)
            .set("linger.ms", "50")
            .create()
            .unwrap_or_else(|e| panic!("{codec} producer: {e}"));
        for i in 0..RECORDS {
            producer
                .send(
                    BaseRecord::<(), _>::to(&topic)
                        .partition(0)
                        .payload(&payload(i)),
                )
                .unwrap_or_else(|(e, _)| panic!("{codec} send {i}: {e}"));
        }
        producer.flush(TIMEOUT).expect("flush");

        let consumer: BaseConsumer = client_config(&cfg)
            .set("group.id", format!("g-{codec}"))
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, 0, Offset::Beginning)
            .unwrap();
        consumer.assign(&tpl).unwrap();
        let deadline = Instant::now() + TIMEOUT;
        let mut got = Vec::new();
        while got.len() < RECORDS {
            assert!(
                Instant::now() < deadline,
                "{codec}: {} of {RECORDS} records",
                got.len()
            );
            match consumer.poll(Duration::from_millis(500)) {
                None => {}
                Some(Err(e)) => panic!("{codec}: consumer error {e}"),
                Some(Ok(m)) => got.push(String::from_utf8(m.payload().unwrap().to_vec()).unwrap()),
            }
        }
        let want: Vec<String> = (0..RECORDS).map(payload).collect();
        assert_eq!(got, want, "{codec}");
    }
}
