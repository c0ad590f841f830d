//! One input's records waiting in a partition's merge: their bytes back to back in one
//! reused buffer, so buffering a record allocates nothing once the buffer has grown (a
//! record's headers, rare on CDRs, are the exception).

use std::collections::VecDeque;
use std::time::Instant;

use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::Timestamp;

/// A record waiting its turn: where its bytes are in its input's [`Lane`], its event time
/// and when it arrived. The bytes stay valid until the next record is buffered.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    pub offset: i64,
    pub timestamp: Timestamp,
    /// Headers are rare on CDRs: only a record that has them costs an allocation.
    pub headers: Option<Box<OwnedHeaders>>,
    pub(super) time: i64,
    pub(super) arrived: Instant,
    pub(super) key: Option<(usize, usize)>,
    pub(super) payload: Option<(usize, usize)>,
}

/// One record's parts as read, before they are copied into a [`Lane`].
pub(crate) struct Parts<'a> {
    pub offset: i64,
    pub timestamp: Timestamp,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
    pub headers: Option<Box<OwnedHeaders>>,
}

impl<'a> Parts<'a> {
    /// The parts of `m` (owned or borrowed from librdkafka), headers copied.
    pub fn of<M: Message>(m: &'a M) -> Parts<'a> {
        let headers = m.headers().map(|h| {
            let copy = h
                .iter()
                .fold(OwnedHeaders::new_with_capacity(h.count()), |c, h| {
                    c.insert(Header {
                        key: h.key,
                        value: h.value,
                    })
                });
            Box::new(copy)
        });
        Parts {
            offset: m.offset(),
            timestamp: m.timestamp(),
            key: m.key(),
            payload: m.payload(),
            headers,
        }
    }
}

/// One input's buffered records: their bytes back to back in one buffer that is reused,
/// so buffering a record allocates nothing once the buffer has grown.
#[derive(Default)]
pub(super) struct Lane {
    pub(super) held: VecDeque<Held>,
    pub(super) bytes: Vec<u8>,
    /// Bytes at the front already taken.
    pub(super) taken: usize,
}

impl Lane {
    /// Buffers a record's parts behind the others, with its event time and arrival.
    pub(super) fn hold(&mut self, r: Parts<'_>, time: i64, arrived: Instant) {
        self.compact();
        let key = self.copy(r.key);
        let payload = self.copy(r.payload);
        self.held.push_back(Held {
            offset: r.offset,
            timestamp: r.timestamp,
            headers: r.headers,
            time,
            arrived,
            key,
            payload,
        });
    }

    /// The oldest record buffered; its bytes stay readable ([`Lane::slice`]) until the
    /// next [`Lane::hold`].
    pub(super) fn take(&mut self) -> Option<Held> {
        let h = self.held.pop_front()?;
        self.taken = h.payload.or(h.key).map_or(self.taken, |(_, end)| end);
        Some(h)
    }

    fn copy(&mut self, b: Option<&[u8]>) -> Option<(usize, usize)> {
        let b = b?;
        let start = self.bytes.len();
        self.bytes.extend_from_slice(b);
        Some((start, self.bytes.len()))
    }

    /// Drops the bytes already taken once they are most of the buffer.
    fn compact(&mut self) {
        if self.held.is_empty() {
            self.bytes.clear();
            self.taken = 0;
        } else if self.taken > 1 << 20 && self.taken > self.bytes.len() / 2 {
            let cut = self.taken;
            self.bytes.drain(..cut);
            self.taken = 0;
            let shift = |r: &mut Option<(usize, usize)>| {
                if let Some((a, b)) = r {
                    *a -= cut;
                    *b -= cut;
                }
            };
            for h in &mut self.held {
                shift(&mut h.key);
                shift(&mut h.payload);
            }
        }
    }

    pub(super) fn slice(&self, r: Option<(usize, usize)>) -> Option<&[u8]> {
        r.map(|(a, b)| &self.bytes[a..b])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::OwnedMessage;

    #[test]
    fn buffered_bytes_survive_the_buffer_being_reused_and_compacted() {
        let now = Instant::now();
        let mut lane = Lane::default();
        let value = |o: i64| format!("{o:08}").repeat(1000).into_bytes();
        let key = |o: i64| format!("k{o}").into_bytes();
        let hold = |lane: &mut Lane, o: i64| {
            let (v, k) = (value(o), key(o));
            let parts = Parts {
                offset: o,
                timestamp: Timestamp::NotAvailable,
                key: Some(&k),
                payload: Some(&v),
                headers: None,
            };
            lane.hold(parts, o, now);
        };
        let mut next = 0;
        for round in 0..6 {
            // Take most of what is buffered, then buffer more: the buffer is compacted
            // once the taken bytes pass a MiB, with records still waiting behind them.
            for _ in 0..300 {
                hold(&mut lane, round * 1000 + next % 1000);
                next += 1;
            }
            while lane.held.len() > 50 {
                let h = lane.take().unwrap();
                let v = lane.slice(h.payload);
                assert_eq!(v, Some(&value(h.offset)[..]), "offset {}", h.offset);
                assert_eq!(lane.slice(h.key), Some(&key(h.offset)[..]));
            }
        }
        let waiting: usize = lane
            .held
            .iter()
            .map(|h| h.payload.map_or(0, |(a, b)| b - a))
            .sum();
        assert_eq!(waiting, 50 * 8000);
        assert!(lane.bytes.len() < 4 << 20, "compacted, not grown");
    }

    #[test]
    fn a_record_keeps_its_headers_for_its_dead_letter() {
        let now = Instant::now();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "trace",
                value: Some("t-1"),
            })
            .insert(Header {
                key: "empty",
                value: None::<&[u8]>,
            });
        let m = OwnedMessage::new(
            Some(b"v".to_vec()),
            None,
            "t".into(),
            Timestamp::NotAvailable,
            0,
            3,
            Some(headers),
        );
        let mut lane = Lane::default();
        lane.hold(Parts::of(&m), 1, now);
        let h = lane.take().unwrap();
        let kept = h.headers.expect("headers kept");
        let all: Vec<(String, Option<Vec<u8>>)> = kept
            .iter()
            .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
            .collect();
        assert_eq!(
            all,
            vec![
                ("trace".into(), Some(b"t-1".to_vec())),
                ("empty".into(), None)
            ]
        );
        assert_eq!(lane.slice(h.payload), Some(&b"v"[..]));
    }
}
