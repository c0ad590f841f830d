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
    pub(super) fn copy(&mut self, b: Option<&[u8]>) -> Option<(usize, usize)> {
        let b = b?;
        let start = self.bytes.len();
        self.bytes.extend_from_slice(b);
        Some((start, self.bytes.len()))
    }

    /// Drops the bytes already taken once they are most of the buffer.
    pub(super) fn compact(&mut self) {
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
