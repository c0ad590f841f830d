//! The side-by-side workload in protobuf, for the harness's protobuf leg
//! (`benches/peer/side_by_side.sh` with `PROTO=1`, through `churnwatch-proto`).
//!
//! `../shared/peer-quix/gen.py` produces the workload as proto3 JSON only. This copies a
//! topic of it, record by record, to another topic of the same broker as protobuf: the same
//! key, partition and timestamp, decoded with churnwatch's own JSON reader and encoded from
//! the same `proto/` messages the service reads. It runs before the service starts, so
//! neither its time nor its CPU is in the measured run.
//!
//! ```sh
//! cargo bench --bench peer_transcode -- BOOTSTRAP FROM TO    # e.g. 127.0.0.1:9092 cdr cdr-pb
//! ```
//!
//! Without arguments (as `cargo test --all-targets` runs it) it checks that a record of
//! gen.py's shape survives the trip and exits.

use std::time::{Duration, Instant};

use prost::Message as _;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use churnwatch::codec;

/// One record as gen.py writes it.
const SAMPLE: &str = r#"{"recordId":"r000000001","subscriber":"13800000001","eventTimeMs":1760803200000,"type":"FORWARD","otherParty":"13300000000","durationS":62,"dataBytes":0,"charge":12}"#;

type Failure = Box<dyn std::error::Error>;

fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [boot, from, to] => {
            let started = Instant::now();
            let n = transcode(boot, from, to)?;
            eprintln!(
                "transcoded {n} records {from} -> {to} in {:.1}s",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        [] | [_] => self_check(),
        _ => Err("usage: peer_transcode BOOTSTRAP FROM TO".into()),
    }
}

/// A record of gen.py's shape reads back equal from its protobuf.
fn self_check() -> Result<(), Failure> {
    let json = codec::cdr_from_json(SAMPLE)?;
    let back = codec::cdr_from_protobuf(&json.encode_to_vec())?;
    if back != json {
        return Err(format!("protobuf changed the record: {json:?} became {back:?}").into());
    }
    eprintln!("peer_transcode: a gen.py record survives the trip (usage: BOOTSTRAP FROM TO)");
    Ok(())
}

/// Copies every record of topic `from` to `to` as protobuf; how many.
fn transcode(boot: &str, from: &str, to: &str) -> Result<u64, Failure> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", boot)
        .set("group.id", "peer-transcode")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()?;
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", boot)
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "500000")
        .create()?;
    let meta = consumer.fetch_metadata(Some(from), Duration::from_secs(10))?;
    let partitions = meta
        .topics()
        .first()
        .map(|t| t.partitions().len())
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("topic {from} has no partitions"))?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions as i32 {
        tpl.add_partition_offset(from, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let (mut at_end, mut n) = (0, 0u64);
    while at_end < partitions {
        match consumer.poll(Duration::from_secs(10)) {
            None => return Err(format!("{from}: nothing for 10 s before its end").into()),
            Some(Err(KafkaError::PartitionEOF(_))) => at_end += 1,
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(m)) => {
                let line = std::str::from_utf8(m.payload().unwrap_or_default())?;
                let value = codec::cdr_from_json(line)?.encode_to_vec();
                let mut record = BaseRecord::to(to)
                    .partition(m.partition())
                    .payload(value.as_slice());
                if let Some(key) = m.key() {
                    record = record.key(key);
                }
                if let Some(ms) = m.timestamp().to_millis() {
                    record = record.timestamp(ms);
                }
                send(&producer, record)?;
                n += 1;
            }
        }
    }
    producer.flush(Duration::from_secs(60))?;
    Ok(n)
}

/// Sends `record`, serving the producer's queue while it is full.
fn send(producer: &BaseProducer, mut record: BaseRecord<'_, [u8], [u8]>) -> Result<(), Failure> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                producer.poll(Duration::from_millis(50));
                record = r;
            }
            Err((e, _)) => return Err(e.into()),
        }
    }
}
