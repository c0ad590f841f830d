//! `generate --bootstrap`: generated files streamed into Kafka, CDR and account records
//! merged by event time (the driver's one tie rule), keyed by subscriber, protobuf.

use std::time::{Duration, Instant};

use prost::Message as _;
use rdkafka::producer::FutureRecord;

use super::produce::{bulk_producer, send_queued};
use super::LiveError;
use crate::config::{Config, Format};
use crate::driver::Source;
use crate::proto;

/// One input file read record by record: `(event time, subscriber, protobuf bytes)`.
struct FileStream {
    reader: std::io::BufReader<std::fs::File>,
    json: bool,
    cdr: bool,
    buf: Vec<u8>,
    line: String,
}

impl FileStream {
    fn open(path: &std::path::Path, cdr: bool) -> std::io::Result<FileStream> {
        let json = !matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("pb" | "binpb" | "bin")
        );
        Ok(FileStream {
            reader: std::io::BufReader::new(std::fs::File::open(path)?),
            json,
            cdr,
            buf: Vec::new(),
            line: String::new(),
        })
    }

    /// The next well-formed record; malformed ones are skipped (the generator writes none).
    fn next(&mut self) -> Option<(i64, String, Vec<u8>)> {
        use std::io::BufRead;
        loop {
            let (time, sub, bytes) = if self.json {
                self.line.clear();
                if self.reader.read_line(&mut self.line).ok()? == 0 {
                    return None;
                }
                let l = self.line.trim();
                if l.is_empty() {
                    continue;
                }
                if self.cdr {
                    let Ok(m) = crate::codec::cdr_from_json(l) else {
                        continue;
                    };
                    (m.event_time_ms, m.subscriber.clone(), m.encode_to_vec())
                } else {
                    let Ok(m) = crate::codec::account_from_json(l) else {
                        continue;
                    };
                    (m.event_time_ms, m.subscriber.clone(), m.encode_to_vec())
                }
            } else {
                match crate::codec::read_delimited(&mut self.reader, &mut self.buf) {
                    Ok(crate::codec::Frame::Record) => {}
                    _ => return None,
                }
                let t = crate::codec::peek_event_time(Format::Protobuf, Some(&self.buf));
                let sub = if self.cdr {
                    proto::CallDetailRecord::decode(self.buf.as_slice())
                        .map(|m| m.subscriber)
                        .unwrap_or_default()
                } else {
                    proto::AccountEvent::decode(self.buf.as_slice())
                        .map(|m| m.subscriber)
                        .unwrap_or_default()
                };
                (t, sub, self.buf.clone())
            };
            let _ = bytes.len();
            return Some((time, sub, bytes));
        }
    }
}

/// The CDR and account files read in event-time order, by the driver's one rule
/// ([`Source::earliest`]: the CDR first on a tie).
struct MergedFiles {
    cdr: FileStream,
    account: FileStream,
    next_cdr: Option<(i64, String, Vec<u8>)>,
    next_account: Option<(i64, String, Vec<u8>)>,
}

impl MergedFiles {
    fn open(cdr: &std::path::Path, account: &std::path::Path) -> Result<MergedFiles, LiveError> {
        let io = |e: std::io::Error| LiveError::Io(e.to_string());
        let mut cdr = FileStream::open(cdr, true).map_err(io)?;
        let mut account = FileStream::open(account, false).map_err(io)?;
        let (next_cdr, next_account) = (cdr.next(), account.next());
        Ok(MergedFiles {
            cdr,
            account,
            next_cdr,
            next_account,
        })
    }

    /// The next record `(is a CDR, subscriber, protobuf bytes)`; `None` when both are done.
    fn next(&mut self) -> Option<(bool, String, Vec<u8>)> {
        let take_cdr = match Source::earliest(
            self.next_cdr.as_ref().map(|r| r.0),
            self.next_account.as_ref().map(|r| r.0),
            None,
        )? {
            Source::Cdr => true,
            Source::Account | Source::Outcomes => false,
        };
        let rec = if take_cdr {
            std::mem::replace(&mut self.next_cdr, self.cdr.next())
        } else {
            std::mem::replace(&mut self.next_account, self.account.next())
        };
        rec.map(|(_, sub, bytes)| (take_cdr, sub, bytes))
    }
}

/// Streams generated files into Kafka (CDR and account records merged by event time, keyed
/// by subscriber, protobuf), at `rate` records/s or as fast as possible (0). Returns the
/// number of records produced.
pub async fn publish_files(
    cfg: &Config,
    cdr: &std::path::Path,
    account: &std::path::Path,
    bootstrap: &str,
    rate: u64,
    progress: bool,
) -> Result<u64, LiveError> {
    let producer = bulk_producer(bootstrap, cfg.kafka.partitioner)?;
    let mut files = MergedFiles::open(cdr, account)?;
    let bar = progress.then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_message("records sent");
        pb
    });
    let start = Instant::now();
    let mut sent = 0u64;
    let mut pending = Vec::new();
    while let Some((is_cdr, sub, bytes)) = files.next() {
        let topic = if is_cdr {
            &cfg.kafka.topics.cdr
        } else {
            &cfg.kafka.topics.account
        };
        let record = FutureRecord::to(topic).key(&sub).payload(&bytes);
        send_queued(&producer, record, &mut pending).await;
        sent += 1;
        if pending.len() >= 10_000 {
            for f in pending.drain(..) {
                let _ = f.await;
            }
            if let Some(pb) = &bar {
                pb.set_position(sent);
            }
        }
        if rate > 0 {
            let due = start + Duration::from_secs_f64(sent as f64 / rate as f64);
            if due > Instant::now() + Duration::from_millis(5) {
                tokio::time::sleep_until(due.into()).await;
            }
        }
    }
    for f in pending {
        let _ = f.await;
    }
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    Ok(sent)
}
