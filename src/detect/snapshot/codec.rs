//! The one writer and the one reader of every snapshot encoding: fixed-width little-endian
//! integers and `u32`-length-prefixed strings and bytes. Reads are bounds-checked and fail
//! with a [`SnapshotError`] naming the record kind, so a truncated or corrupt record is an
//! error, never a panic, and a corrupt count never allocates.

use super::SnapshotError;

/// Little-endian fixed-width writes, and `u32`-length-prefixed strings and bytes.
pub(crate) trait Put {
    fn put_u8(&mut self, v: u8);
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
    fn put_i32(&mut self, v: i32);
    fn put_i64(&mut self, v: i64);
    fn put_bool(&mut self, v: bool);
    /// A count or length, as `u32` (larger is a bug: nothing here holds 4 G items).
    fn put_len(&mut self, n: usize);
    fn put_bytes(&mut self, b: &[u8]);
    fn put_str(&mut self, s: &str);
}

impl Put for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_i32(&mut self, v: i32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_i64(&mut self, v: i64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_bool(&mut self, v: bool) {
        self.push(u8::from(v));
    }
    fn put_len(&mut self, n: usize) {
        self.put_u32(u32::try_from(n).expect("snapshot section over 4 G items"));
    }
    fn put_bytes(&mut self, b: &[u8]) {
        self.put_len(b.len());
        self.extend_from_slice(b);
    }
    fn put_str(&mut self, s: &str) {
        self.put_bytes(s.as_bytes());
    }
}

/// A bounds-checked cursor over one record: every read fails on truncation, naming the
/// record kind.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

macro_rules! read_le {
    ($($name:ident: $t:ty),*) => {
        $(pub(crate) fn $name(&mut self) -> Result<$t, SnapshotError> {
            let b = self.take(std::mem::size_of::<$t>())?;
            Ok(<$t>::from_le_bytes(b.try_into().expect("took the size")))
        })*
    };
}

impl<'a> Reader<'a> {
    /// Reads `bytes` from their first byte, with no version check.
    pub(super) fn new(bytes: &'a [u8], what: &'static str) -> Reader<'a> {
        Reader { bytes, what }
    }

    /// Checks the leading version byte against `known` and reads on after it.
    pub(crate) fn versioned(
        bytes: &'a [u8],
        what: &'static str,
        known: u8,
    ) -> Result<Reader<'a>, SnapshotError> {
        let mut r = Reader { bytes, what };
        let version = r.u8()?;
        if version != known {
            return Err(SnapshotError::UnknownVersion {
                what,
                version,
                known,
            });
        }
        Ok(r)
    }

    pub(crate) fn malformed(&self, reason: String) -> SnapshotError {
        SnapshotError::Malformed {
            what: self.what,
            reason,
        }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], SnapshotError> {
        if self.bytes.len() < n {
            return Err(self.malformed(format!("needs {n} more bytes, {} left", self.bytes.len())));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    read_le!(u8: u8, u16: u16, u32: u32, u64: u64, i32: i32, i64: i64);

    pub(crate) fn bool(&mut self) -> Result<bool, SnapshotError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(self.malformed(format!("{b} is not a boolean"))),
        }
    }

    /// A count of items of at least `min_bytes` each: refused when the rest of the record
    /// cannot hold them, so a corrupt count never allocates gigabytes.
    pub(crate) fn count(&mut self, min_bytes: usize) -> Result<usize, SnapshotError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_bytes.max(1)) > self.bytes.len() {
            return Err(self.malformed(format!(
                "{n} items cannot fit in {} bytes",
                self.bytes.len()
            )));
        }
        Ok(n)
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], SnapshotError> {
        let n = self.count(1)?;
        self.take(n)
    }

    pub(crate) fn str(&mut self) -> Result<&'a str, SnapshotError> {
        let b = self.bytes()?;
        std::str::from_utf8(b).map_err(|e| self.malformed(format!("text is not UTF-8: {e}")))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The record must end here.
    pub(crate) fn finish(self) -> Result<(), SnapshotError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(self.malformed(format!("{} trailing bytes", self.bytes.len())))
        }
    }
}

/// A cursor over a record whose length is already checked: read in one pass with no error
/// paths (restores read millions of subscriber records).
pub(super) struct Fixed<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Fixed<'a> {
    /// Reads on after the version byte.
    pub(super) fn after_version(b: &'a [u8]) -> Fixed<'a> {
        Fixed { b, pos: 1 }
    }
    #[inline(always)]
    pub(super) fn array<const N: usize>(&mut self) -> [u8; N] {
        let a = self.b[self.pos..self.pos + N].try_into().expect("N bytes");
        self.pos += N;
        a
    }
    #[inline(always)]
    pub(super) fn u8(&mut self) -> u8 {
        self.array::<1>()[0]
    }
    #[inline(always)]
    pub(super) fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.array())
    }
    #[inline(always)]
    pub(super) fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }
    #[inline(always)]
    pub(super) fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corrupt_count_does_not_allocate() {
        let mut b = vec![1u8];
        b.put_u32(u32::MAX);
        let mut r = Reader::versioned(&b, "test", 1).unwrap();
        assert!(r.count(8).is_err());
    }
}
