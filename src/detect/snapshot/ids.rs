//! De-duplication id chunks: the ids a partition remembers, written incrementally between
//! full checkpoints and as an image of the fingerprint table at a full one (the ids
//! themselves are not kept, see `dedup`). Chunks are bounded in size, as Kafka bounds a
//! message, and any number of them make up a checkpoint's ids.
//!
//! An id chunk ([`IDS_VERSION`]) is the version byte, then groups of (arrival period `i32`,
//! event day `i32`, count `u32`, ids `u64`). An image chunk ([`IDS_IMAGE_VERSION`]) is the
//! version byte, the four tags' periods (`i32`, [`NO_DAY`] when free), generation `u8`,
//! buckets `u32`, first slot `u32`, then entries `u32` from that slot on. All LE.

use super::{Put, Reader, SnapshotError};
use crate::detect::calendar::Day;
use crate::detect::dedup::{Arrival, Generations};

/// Version of a de-duplication id chunk: ids as they came, by arrival period and event day.
pub const IDS_VERSION: u8 = 3;
/// Version of a de-duplication image chunk (a full checkpoint's ids): the fingerprint table
/// itself, a slice at a time, its tags standing for arrival periods.
pub const IDS_IMAGE_VERSION: u8 = 4;
/// The id chunk of earlier builds, by event day only; still read, each day's ids taking
/// the arrival period of the day's end.
pub const IDS_BY_DAY: u8 = 1;
/// The image of earlier builds, its tags standing for event days; still read the same way.
pub const IDS_IMAGE_BY_DAY: u8 = 2;

/// Header of an image chunk: version, the four tags' periods, generation, buckets, first
/// slot.
const IMAGE_HEADER: usize = 1 + 4 * 4 + 1 + 4 + 4;
/// Smallest id chunk: an image header and one entry (an id chunk needs less).
pub(crate) const MIN_ID_CHUNK: usize = IMAGE_HEADER + 4;
/// A tag's period in an image chunk when the tag is free.
const NO_DAY: i32 = i32::MIN;

/// Writes `ids` as id chunks of at most `max_chunk` bytes (at least [`MIN_ID_CHUNK`]), a
/// group per (period, day), groups in ascending order.
pub(crate) fn encode_ids(
    ids: &mut [(Arrival, Day, u64)],
    max_chunk: usize,
    f: &mut impl FnMut(&[u8]),
) {
    ids.sort_unstable();
    let mut w = IdChunks::new(max_chunk.max(MIN_ID_CHUNK));
    for run in ids.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
        let ids = &mut run.iter().map(|x| x.2);
        w.group((run[0].0, run[0].1), run.len(), ids, f);
    }
    w.flush(f);
}

/// Writes the whole table as image chunks of at most `max_chunk` bytes (at least
/// [`MIN_ID_CHUNK`]).
pub(crate) fn encode_image(
    (periods, gens): Generations<'_>,
    max_chunk: usize,
    f: &mut impl FnMut(&[u8]),
) {
    let max_chunk = max_chunk.max(MIN_ID_CHUNK);
    let per_chunk = (max_chunk - IMAGE_HEADER) / 4;
    let mut buf = Vec::with_capacity(max_chunk.min(1 << 20));
    for (gen, (buckets, entries)) in gens.into_iter().enumerate() {
        for (k, piece) in entries.chunks(per_chunk).enumerate() {
            buf.clear();
            buf.push(IDS_IMAGE_VERSION);
            for p in periods {
                buf.put_i32(p.unwrap_or(NO_DAY));
            }
            buf.put_u8(gen as u8);
            buf.put_u32(buckets);
            buf.put_u32((k * per_chunk) as u32);
            for &e in piece {
                buf.put_u32(e);
            }
            f(&buf);
        }
    }
}

/// A decoded chunk of either kind.
pub(crate) enum Chunk<'a> {
    Ids(IdGroups<'a>),
    Image(Image<'a>),
}

/// Reads a chunk of any version this build knows.
pub(crate) fn decode(bytes: &[u8]) -> Result<Chunk<'_>, SnapshotError> {
    let by_day = match bytes.first() {
        Some(&IDS_IMAGE_VERSION) => {
            return Image::decode(bytes, IDS_IMAGE_VERSION).map(Chunk::Image)
        }
        Some(&IDS_IMAGE_BY_DAY) => return Image::decode(bytes, IDS_IMAGE_BY_DAY).map(Chunk::Image),
        Some(&IDS_BY_DAY) => true,
        _ => false,
    };
    let version = if by_day { IDS_BY_DAY } else { IDS_VERSION };
    let r = Reader::versioned(bytes, "de-duplication ids", version)?;
    Ok(Chunk::Ids(IdGroups { r, by_day }))
}

/// The groups of an id chunk, each (arrival period, event day, ids); the period is `None`
/// in a chunk of an earlier build, by event day only.
pub(crate) struct IdGroups<'a> {
    r: Reader<'a>,
    by_day: bool,
}

/// The ids of one group.
pub(crate) type Ids<'a> = std::iter::Map<std::slice::ChunksExact<'a, u8>, fn(&[u8]) -> u64>;

impl<'a> Iterator for IdGroups<'a> {
    type Item = Result<(Option<Arrival>, Day, Ids<'a>), SnapshotError>;

    fn next(&mut self) -> Option<Self::Item> {
        (!self.r.is_empty()).then(|| self.group())
    }
}

impl<'a> IdGroups<'a> {
    fn group(&mut self) -> Result<(Option<Arrival>, Day, Ids<'a>), SnapshotError> {
        let r = &mut self.r;
        let period = if self.by_day { None } else { Some(r.i32()?) };
        let day = r.i32()?;
        let n = r.count(8)?;
        let ids = r.take(n * 8)?.chunks_exact(8);
        let id: fn(&[u8]) -> u64 = |b| u64::from_le_bytes(b.try_into().expect("8 bytes"));
        Ok((period, day, ids.map(id)))
    }
}

/// An image chunk: a slice of one generation of the fingerprint table.
pub(crate) struct Image<'a> {
    /// The four tags' periods, or event days when `by_day` (an earlier build's image).
    pub(crate) tags: [Option<i32>; 4],
    pub(crate) by_day: bool,
    pub(crate) gen: u8,
    pub(crate) buckets: u32,
    pub(crate) first: usize,
    entries: &'a [u8],
}

impl<'a> Image<'a> {
    fn decode(bytes: &'a [u8], version: u8) -> Result<Image<'a>, SnapshotError> {
        let mut r = Reader::versioned(bytes, "de-duplication image", version)?;
        let mut tags = [None; 4];
        for t in &mut tags {
            *t = Some(r.i32()?).filter(|&p| p != NO_DAY);
        }
        let (gen, buckets, first) = (r.u8()?, r.u32()?, r.u32()? as usize);
        let entries = r.take(bytes.len() - IMAGE_HEADER)?;
        if entries.len() % 4 != 0 || buckets == 0 || buckets > 1 << 28 {
            return Err(r.malformed(format!("{buckets} buckets, {} bytes", entries.len())));
        }
        let by_day = version == IDS_IMAGE_BY_DAY;
        Ok(Image {
            tags,
            by_day,
            gen,
            buckets,
            first,
            entries,
        })
    }

    /// The table entries, from slot `first` on.
    pub(crate) fn entries(&self) -> impl Iterator<Item = u32> + 'a {
        let entries: &'a [u8] = self.entries;
        entries
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }
}

/// Id chunks being written: each at most `max` bytes.
struct IdChunks {
    max: usize,
    buf: Vec<u8>,
}

impl IdChunks {
    fn new(max: usize) -> IdChunks {
        IdChunks {
            max,
            buf: Vec::with_capacity(max.min(1 << 20)),
        }
    }

    /// Writes the `n` ids of `day`, in as many groups (and chunks) as they need.
    fn group(
        &mut self,
        (period, day): (Arrival, Day),
        mut n: usize,
        ids: &mut impl Iterator<Item = u64>,
        f: &mut impl FnMut(&[u8]),
    ) {
        while n > 0 {
            if self.buf.is_empty() {
                self.buf.push(IDS_VERSION);
            }
            let room = self.max.saturating_sub(self.buf.len() + 12) / 8;
            if room == 0 {
                self.flush(f);
                continue;
            }
            let k = room.min(n);
            self.buf.put_i32(period);
            self.buf.put_i32(day);
            self.buf.put_len(k);
            for id in ids.by_ref().take(k) {
                self.buf.put_u64(id);
            }
            n -= k;
        }
    }

    fn flush(&mut self, f: &mut impl FnMut(&[u8])) {
        if self.buf.len() > 1 {
            f(&self.buf);
        }
        self.buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_groups_are_written_in_order_and_read_back() {
        let mut ids = [(7, 20, 2u64), (5, 19, 1), (7, 20, 3)];
        let mut chunks = Vec::new();
        encode_ids(&mut ids, 4096, &mut |b| chunks.push(b.to_vec()));
        let mut want = vec![IDS_VERSION];
        for (period, day, list) in [(5, 19, &[1u64][..]), (7, 20, &[2, 3])] {
            want.put_i32(period);
            want.put_i32(day);
            want.put_len(list.len());
            list.iter().for_each(|&id| want.put_u64(id));
        }
        assert_eq!(chunks, vec![want]);
        let Ok(Chunk::Ids(groups)) = decode(&chunks[0]) else {
            panic!("an id chunk");
        };
        let read: Vec<_> = groups
            .map(|g| g.map(|(p, d, ids)| (p, d, ids.collect::<Vec<_>>())))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            read,
            vec![(Some(5), 19, vec![1]), (Some(7), 20, vec![2, 3])]
        );
    }
}
