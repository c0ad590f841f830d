//! Checkpoint identity in the changelog: the [`Tag`] that leads every record value (which
//! checkpoint wrote it) and the [`Marker`], the last record of a complete checkpoint (its
//! chain, its input offsets). A restore trusts only records whose tag a marker names, so
//! both are versioned here with the state they vouch for.

use super::{Put, Reader, SnapshotError};

/// Identity of one checkpoint: the writing task (random per task start) and its sequence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag {
    pub writer: u64,
    pub seq: u64,
}

impl Tag {
    pub const BYTES: usize = 16;

    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_u64(self.writer);
        out.put_u64(self.seq);
    }

    /// The tag at the start of a record value, and the rest.
    pub fn split(value: &[u8]) -> Option<(Tag, &[u8])> {
        let head = value.get(..Self::BYTES)?;
        let writer = u64::from_le_bytes(head[..8].try_into().ok()?);
        let seq = u64::from_le_bytes(head[8..].try_into().ok()?);
        Some((Tag { writer, seq }, &value[Self::BYTES..]))
    }
}

/// Checkpoints in one chain at most; bounds the marker and the reused key space.
pub const MAX_CHAIN: usize = 720;

/// The marker's encoding version.
pub const MARKER_VERSION: u8 = 1;

/// The last record of a complete checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub tag: Tag,
    /// Changelog offset of the first record of the chain's full checkpoint.
    pub chain_start: i64,
    /// Every checkpoint of the chain, the full one first and this one last.
    pub chain: Vec<Tag>,
    /// Subscriber records the chain has written (decides when the next full one is due).
    pub chain_written: u64,
    /// Chunks of the partition state this checkpoint wrote.
    pub partition_chunks: u32,
    /// Per input topic, the offset of the next record to process.
    pub inputs: Vec<(String, i64)>,
}

impl Marker {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![MARKER_VERSION];
        self.tag.write(&mut out);
        out.put_i64(self.chain_start);
        out.put_u64(self.chain_written);
        out.put_u32(self.partition_chunks);
        out.put_u32(self.chain.len() as u32);
        for t in &self.chain {
            t.write(&mut out);
        }
        out.put_u32(self.inputs.len() as u32);
        for (topic, offset) in &self.inputs {
            out.put_u16(topic.len() as u16);
            out.extend_from_slice(topic.as_bytes());
            out.put_i64(*offset);
        }
        out
    }

    /// Decodes a marker with the core's bounds-checked reader: an unknown version is an
    /// error naming it, a truncated or malformed marker one saying so.
    pub fn decode(bytes: &[u8]) -> Result<Marker, SnapshotError> {
        let mut r = Reader::versioned(bytes, "checkpoint marker", MARKER_VERSION)?;
        let tag = read_tag(&mut r)?;
        let chain_start = r.i64()?;
        let chain_written = r.u64()?;
        let partition_chunks = r.u32()?;
        let n = r.u32()? as usize;
        let chain = (0..n.min(MAX_CHAIN * 2))
            .map(|_| read_tag(&mut r))
            .collect::<Result<Vec<_>, _>>()?;
        let n = r.u32()? as usize;
        let mut inputs = Vec::with_capacity(n.min(16));
        for _ in 0..n.min(16) {
            let len = r.u16()? as usize;
            let name = r.take(len)?;
            let topic = std::str::from_utf8(name)
                .map_err(|e| r.malformed(format!("topic name: {e}")))?
                .to_string();
            inputs.push((topic, r.i64()?));
        }
        Ok(Marker {
            tag,
            chain_start,
            chain,
            chain_written,
            partition_chunks,
            inputs,
        })
    }
}

fn read_tag(r: &mut Reader<'_>) -> Result<Tag, SnapshotError> {
    Ok(Tag {
        writer: r.u64()?,
        seq: r.u64()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker() -> Marker {
        Marker {
            tag: Tag { writer: 7, seq: 3 },
            chain_start: 42,
            chain: vec![Tag { writer: 7, seq: 1 }, Tag { writer: 7, seq: 3 }],
            chain_written: 900,
            partition_chunks: 2,
            inputs: vec![("cdr".into(), 1_000), ("account".into(), 55)],
        }
    }

    #[test]
    fn a_marker_round_trips_and_its_layout_is_pinned() {
        let m = marker();
        let bytes = m.encode();
        assert_eq!(Marker::decode(&bytes).unwrap(), m);
        assert_eq!(bytes[0], MARKER_VERSION);
        assert_eq!(&bytes[1..9], &7u64.to_le_bytes());
        assert_eq!(&bytes[17..25], &42i64.to_le_bytes());
        assert_eq!(
            bytes.len(),
            1 + 16 + 8 + 8 + 4 + 4 + 32 + 4 + (2 + 3 + 8) + (2 + 7 + 8)
        );
    }

    #[test]
    fn an_unknown_marker_version_is_named_and_a_truncated_one_is_an_error() {
        let mut bytes = marker().encode();
        bytes[0] = 9;
        let e = Marker::decode(&bytes).unwrap_err().to_string();
        assert!(e.contains("version 9"), "{e}");
        let bytes = marker().encode();
        for cut in 0..bytes.len() {
            assert!(Marker::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn a_tag_leads_every_value() {
        let mut v = Vec::new();
        Tag { writer: 1, seq: 2 }.write(&mut v);
        v.extend_from_slice(b"state");
        let (t, rest) = Tag::split(&v).unwrap();
        assert_eq!(t, Tag { writer: 1, seq: 2 });
        assert_eq!(rest, b"state");
        assert!(Tag::split(&v[..15]).is_none());
    }
}
