//! Snapshot encodings: what a partition's engine is saved as, so it can be restored after a
//! crash and continue exactly. Every versioned encoding of the changelog lives here, with
//! the one writer and the one reader they share; the engine's side (what changed, what to
//! gather, where restored parts go) is [`super::engine`]'s `snapshot`, and the topic, its
//! keys and its I/O are the adapter's (`kafka::changelog`).
//!
//! **The changelog design.** The adapter keeps a compacted topic per engine: one record
//! per subscriber, keyed by the number, holding the latest [`SubscriberState`], its table
//! slot and its last ticket (tens of millions of them, so only those changed since the
//! last checkpoint are written); the rest of the engine (watermark, pending partial calls,
//! rule marks, complaint contacts, pending account facts, the policy's memory) is small and
//! written whole at every checkpoint as one partition blob; de-duplication ids are written
//! incrementally, in chunks. Every value is led by its checkpoint's [`Tag`], and a
//! [`Marker`] closes each checkpoint. A restore replays the records of the checkpoints the
//! last marker names (later records win) into a fresh engine.
//!
//! **Encodings.** Every record starts with a version byte and fails loudly on a version
//! this build does not read ([`SnapshotError::UnknownVersion`]); a truncated or malformed
//! record is an error, never a panic. Integers are fixed-width little-endian, written field
//! by field ([`Put`], read back by [`Reader`]). Changing a layout needs a new version and a
//! reader for the old one.
//!
//! | record | version | file |
//! |---|---|---|
//! | subscriber record (state, table order, last ticket) | [`RECORD_VERSION`] (reads [`STATE_VERSION`] too) | `subscriber.rs` |
//! | subscriber state alone | [`STATE_VERSION`] | `subscriber.rs` |
//! | partition blob (rule table, watermark, marks, partial calls, contacts, facts, policy) | [`PARTITION_VERSION`] | `partition.rs` |
//! | de-duplication id chunk | [`IDS_VERSION`] (reads [`IDS_BY_DAY`] too) | `ids.rs` |
//! | de-duplication image chunk | [`IDS_IMAGE_VERSION`] (reads [`IDS_IMAGE_BY_DAY`] too) | `ids.rs` |
//! | checkpoint marker | [`MARKER_VERSION`] | `marker.rs` |
//! | checkpoint tag (16 bytes before every value) | none: fixed | `marker.rs` |
//!
//! The partition blob's facts and policy sections are written by `facts`, `contact` and
//! `policy`, whose private types they are, with the same [`Put`] and [`Reader`].
//!
//! [`SubscriberState`]: crate::detect::state::SubscriberState

mod codec;
pub(crate) mod ids;
mod marker;
pub(crate) mod partition;
mod subscriber;

pub(crate) use codec::{Put, Reader};
pub use ids::{IDS_BY_DAY, IDS_IMAGE_BY_DAY, IDS_IMAGE_VERSION, IDS_VERSION};
pub use marker::{Marker, Tag, MARKER_VERSION, MAX_CHAIN};
pub(crate) use partition::RuleTable;
pub use partition::PARTITION_VERSION;
pub(crate) use subscriber::{decode_record, encode_record};
pub use subscriber::{
    decode_state, encode_state, RECORD_LEN, RECORD_V1_LEN, RECORD_VERSION, STATE_LEN, STATE_VERSION,
};

/// Why a snapshot record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("unknown {what} encoding version {version} (this build reads version {known})")]
    UnknownVersion {
        what: &'static str,
        version: u8,
        known: u8,
    },
    #[error("{what} record is truncated or malformed: {reason}")]
    Malformed { what: &'static str, reason: String },
}
