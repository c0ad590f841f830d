//! Length-delimited protobuf framing (varint length, then the message), the layout of bulk
//! protobuf files. Reading is streamed one record at a time, and a broken frame ends the
//! stream with a [`FrameError`] instead of being skipped: once the framing is lost, no later
//! record can be found.

use std::io::{self, BufRead, Write};

use prost::Message;

/// Largest length-delimited protobuf record accepted; a bigger length prefix means the
/// framing is corrupt (our messages are a few hundred bytes).
pub const MAX_FRAME_BYTES: usize = 1 << 20;

/// Writes any message as a length-delimited protobuf record (varint length, then bytes).
pub fn write_delimited(w: &mut impl Write, m: &impl Message) -> io::Result<()> {
    w.write_all(&m.encode_length_delimited_to_vec())
}

/// What [`read_delimited`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A whole record is in the buffer.
    Record,
    /// Clean end of input, between records.
    End,
}

/// Why a length-delimited stream cannot be read further: once the framing is lost, no
/// later record can be found, so the rest of the input is abandoned (not skipped).
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("truncated record: input ends inside a record")]
    Truncated,
    #[error("record length {0} exceeds the {MAX_FRAME_BYTES}-byte limit (corrupt framing)")]
    TooLong(u64),
    #[error("bad length prefix (varint longer than 10 bytes)")]
    BadVarint,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Reads one length-delimited record into `buf` (cleared first) without loading the rest
/// of the stream.
pub fn read_delimited(r: &mut impl BufRead, buf: &mut Vec<u8>) -> Result<Frame, FrameError> {
    buf.clear();
    let mut len: u64 = 0;
    let mut shift = 0u32;
    let mut first = true;
    loop {
        let mut byte = [0u8; 1];
        match r.read(&mut byte) {
            Ok(0) if first => return Ok(Frame::End),
            Ok(0) => return Err(FrameError::Truncated),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
        first = false;
        if shift >= 64 {
            return Err(FrameError::BadVarint);
        }
        len |= u64::from(byte[0] & 0x7f) << shift;
        shift += 7;
        if byte[0] & 0x80 == 0 {
            break;
        }
    }
    if len > MAX_FRAME_BYTES as u64 {
        return Err(FrameError::TooLong(len));
    }
    buf.resize(len as usize, 0);
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => FrameError::Truncated,
        _ => FrameError::Io(e),
    })?;
    Ok(Frame::Record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_framing_is_reported_not_skipped() {
        let mut r = io::Cursor::new(vec![5u8, 1, 2]);
        assert!(matches!(
            read_delimited(&mut r, &mut Vec::new()),
            Err(FrameError::Truncated)
        ));
        let mut r = io::Cursor::new(vec![0xffu8, 0xff, 0xff, 0x7f]);
        assert!(matches!(
            read_delimited(&mut r, &mut Vec::new()),
            Err(FrameError::TooLong(_))
        ));
        let mut r = io::Cursor::new(vec![0x80u8; 11]);
        assert!(matches!(
            read_delimited(&mut r, &mut Vec::new()),
            Err(FrameError::BadVarint)
        ));
    }
}
