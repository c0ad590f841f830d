//! The partition blob: everything of a partition's engine but its subscribers, written
//! whole at every checkpoint (it is small and short-lived), subscribers named by number.
//!
//! Layout: version ([`PARTITION_VERSION`]), the rule table ([`RuleTable`]), the watermark,
//! rule marks, pending partial calls, complaint contacts, then the pending account facts
//! and the policy's memory, followed tickets last (written by `facts`, `policy` and
//! `withdraw`, whose types they are; version 1 blobs, read still, end before them). The
//! watermark is followed by each input's progress (version 3). Every
//! part is in ascending key order, so the same engine gives the same bytes. The engine
//! gathers each part and hands it over here, and gets each back through a callback.

use super::{Put, Reader, SnapshotError};
use crate::detect::engine::{Mark, PartialCall};
use crate::detect::rules::complaint_burst::Contact;
use crate::detect::rules::RuleId;
use crate::detect::watermark::INPUTS;

/// Version of the partition blob: 3 adds each input's event-time progress after the
/// watermark; 2 added the tickets followed for withdrawal at the end of the policy's
/// memory, and payments with their amount among the pending facts.
pub const PARTITION_VERSION: u8 = 3;
/// The versions before, still read: 2 has no per-input progress (each input then resumes
/// at the newest event time), 1 no followed tickets either.
pub const PARTITION_VERSION_2: u8 = 2;
pub const PARTITION_VERSION_1: u8 = 1;

/// The watermark as saved: newest event time, last closed day, first day observed, each
/// input's progress.
pub(crate) type Clock = crate::detect::watermark::Parts;

/// Starts a blob: its version, this build's rule table and the watermark.
pub(crate) fn encode_head((newest, closed, observed, inputs): Clock) -> Vec<u8> {
    let mut out = vec![PARTITION_VERSION];
    RuleTable::encode(&mut out);
    out.put_i64(newest);
    out.put_bool(closed.is_some());
    out.put_i32(closed.unwrap_or(0));
    out.put_i32(observed);
    for t in inputs {
        out.put_i64(t);
    }
    out
}

/// Reads a blob's head: the reader after it, the blob's rule table, the watermark and the
/// blob's version ([`PARTITION_VERSION`], [`PARTITION_VERSION_2`] or
/// [`PARTITION_VERSION_1`]).
pub(crate) fn decode_head(
    bytes: &[u8],
) -> Result<(Reader<'_>, RuleTable, Clock, u8), SnapshotError> {
    let version = match bytes.first() {
        Some(&v @ (PARTITION_VERSION_1 | PARTITION_VERSION_2)) => v,
        _ => PARTITION_VERSION,
    };
    let mut r = Reader::versioned(bytes, "partition", version)?;
    let rules = RuleTable::decode(&mut r)?;
    let (newest, has_closed, closed, observed) = (r.i64()?, r.bool()?, r.i32()?, r.i32()?);
    let mut inputs = [newest; INPUTS];
    if version == PARTITION_VERSION {
        for t in &mut inputs {
            *t = r.i64()?;
        }
    }
    Ok((
        r,
        rules,
        (newest, has_closed.then_some(closed), observed, inputs),
        version,
    ))
}

/// Rule marks, by subscriber number and rule.
pub(crate) fn put_marks(out: &mut Vec<u8>, mut marks: Vec<((u64, RuleId), &[Mark])>) {
    marks.sort_unstable_by_key(|(k, _)| *k);
    out.put_len(marks.len());
    for ((m, r), list) in marks {
        out.put_u64(m);
        out.put_u8(r as u8);
        out.put_len(list.len());
        for k in list {
            out.put_i64(k.episode);
            out.put_i64(k.raised_ms);
            out.put_u64(k.tie);
        }
    }
}

/// Reads [`put_marks`], calling `f(number, rule, marks)` per entry, in order (`None`: a
/// rule this build does not have).
pub(crate) fn read_marks(
    r: &mut Reader<'_>,
    rules: &RuleTable,
    mut f: impl FnMut(u64, Option<RuleId>, Vec<Mark>),
) -> Result<(), SnapshotError> {
    for _ in 0..r.count(13)? {
        let number = r.u64()?;
        let rule = rules.rule(r)?;
        let n = r.count(24)?;
        let mut list = Vec::with_capacity(n);
        for _ in 0..n {
            let (episode, raised_ms, tie) = (r.i64()?, r.i64()?, r.u64()?);
            list.push(Mark {
                episode,
                raised_ms,
                tie,
            });
        }
        f(number, rule, list);
    }
    Ok(())
}

/// Pending partial calls, by subscriber number and call reference.
pub(crate) fn put_partials(out: &mut Vec<u8>, mut partials: Vec<((u64, u64), &PartialCall)>) {
    partials.sort_unstable_by_key(|(k, _)| *k);
    out.put_len(partials.len());
    for ((m, call_ref), p) in partials {
        out.put_u64(m);
        out.put_u64(call_ref);
        out.put_i64(p.start_ms);
        out.put_i64(p.end_ms);
        out.put_u32(p.total_s);
        out.put_bool(p.outgoing);
        out.put_u8(p.operator);
    }
}

/// Reads [`put_partials`], calling `f((number, call reference), call)` per entry, in order.
pub(crate) fn read_partials(
    r: &mut Reader<'_>,
    mut f: impl FnMut((u64, u64), PartialCall),
) -> Result<(), SnapshotError> {
    for _ in 0..r.count(38)? {
        let key = (r.u64()?, r.u64()?);
        let (start_ms, end_ms, total_s) = (r.i64()?, r.i64()?, r.u32()?);
        let (outgoing, operator) = (r.bool()?, r.u8()?);
        let p = PartialCall {
            start_ms,
            end_ms,
            total_s,
            outgoing,
            operator,
        };
        f(key, p);
    }
    Ok(())
}

/// Complaint contacts, by subscriber number.
pub(crate) fn put_contacts(out: &mut Vec<u8>, mut contacts: Vec<(u64, &[Contact])>) {
    contacts.sort_unstable_by_key(|(m, _)| *m);
    out.put_len(contacts.len());
    for (m, list) in contacts {
        out.put_u64(m);
        out.put_len(list.len());
        for c in list {
            out.put_i32(c.day);
            out.put_bool(c.fault);
        }
    }
}

/// Reads [`put_contacts`], calling `f(number, contacts)` per entry, in order.
pub(crate) fn read_contacts(
    r: &mut Reader<'_>,
    mut f: impl FnMut(u64, Vec<Contact>),
) -> Result<(), SnapshotError> {
    for _ in 0..r.count(12)? {
        let number = r.u64()?;
        let n = r.count(5)?;
        let mut list = Vec::with_capacity(n);
        for _ in 0..n {
            let (day, fault) = (r.i32()?, r.bool()?);
            list.push(Contact { day, fault });
        }
        f(number, list);
    }
    Ok(())
}

/// Rules as a partition blob names them: by their index in a table of stable rule names
/// written at the head of the blob, so a build that adds, removes or reorders rules still
/// reads an older blob (memory of a rule it no longer has is dropped).
#[derive(Debug)]
pub(crate) struct RuleTable(Vec<Option<RuleId>>);

impl RuleTable {
    /// Appends this build's table: the code of a rule is `rule as u8`.
    pub(crate) fn encode(out: &mut Vec<u8>) {
        out.put_len(RuleId::ALL.len());
        for r in RuleId::ALL {
            out.put_str(r.as_str());
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<RuleTable, SnapshotError> {
        let n = r.count(4)?;
        if n > 32 {
            return Err(r.malformed(format!("{n} rules do not fit a rule mask")));
        }
        let mut codes = Vec::with_capacity(n);
        for _ in 0..n {
            let name = r.str()?;
            codes.push(RuleId::ALL.into_iter().find(|x| x.as_str() == name));
        }
        Ok(RuleTable(codes))
    }

    /// The rule of a code, `None` for a rule this build does not have.
    pub(crate) fn rule(&self, r: &mut Reader<'_>) -> Result<Option<RuleId>, SnapshotError> {
        let code = r.u8()?;
        match self.0.get(usize::from(code)) {
            Some(rule) => Ok(*rule),
            None => Err(r.malformed(format!("rule code {code} is not in the table"))),
        }
    }

    /// A rule mask of the blob's codes as this build's mask.
    pub(crate) fn mask(&self, blob_mask: u32) -> u32 {
        self.0
            .iter()
            .enumerate()
            .filter(|(i, _)| blob_mask & (1 << i) != 0)
            .filter_map(|(_, r)| *r)
            .fold(0, |m, r| m | (1 << r as u32))
    }
}
