//! Which partition a record's key belongs to, and the check that every record read is on it.
//!
//! churnwatch keeps each subscriber's state in the one partition task that reads the
//! subscriber's partition. That holds only while every producer upstream maps keys to
//! partitions with the same function: a producer with another partitioner puts some of a
//! subscriber's records on another partition, and so in another engine, and nothing
//! fails; the state is silently split.
//!
//! Two functions cover the producers people use: murmur2 (Kafka's Java clients,
//! librdkafka's `murmur2_random`) and CRC32 (librdkafka's default `consistent_random`, so
//! confluent-kafka for Python, Go and .NET, and rust-rdkafka). Under `kafka.partitioner =
//! "auto"` (the default) the service learns which from the records: a key whose partition
//! only one of them explains is evidence for it, and [`SETTLE_AFTER`] such keys settle it
//! for every input topic at once ([`Detection`]), since co-partitioning is what matters.
//! A record that neither function places, or that follows the other one once it is
//! settled (a topic whose producers disagree with the rest), is a mismatch. An explicit
//! setting skips the learning.
//!
//! A mismatch is still processed (dropping it would lose data). It is counted
//! (`churnwatch_partition_key_mismatches_total{topic}`), logged once per topic-partition
//! and shown by `/readyz` as a warning, not a failing condition (see
//! [`super::readiness`]). Keys never reach a label or a log line: they are subscriber
//! numbers.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;

use tracing::{info, warn};

use crate::config::Partitioner;
use crate::metrics::Metrics;

use super::readiness::Readiness;

/// Keys only one function explains that settle the detection.
pub const SETTLE_AFTER: u32 = 32;

/// Kafka's `Utils.murmur2`: MurmurHash2 (32 bit) with Kafka's seed, as the Java clients
/// and librdkafka's `murmur2`/`murmur2_random` partitioners compute it.
pub fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, b) in tail.iter().enumerate() {
            h ^= u32::from(*b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// CRC-32 (IEEE, as zlib), the hash of librdkafka's `consistent` partitioners.
pub fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 == 1 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut c = !0u32;
    for b in data {
        c = TABLE[((c ^ u32::from(*b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// The partition of `key` among `partitions` under `partitioner`, or `None` where the
/// partitioner picks one at random (no key, or an empty key for `consistent_random`) or
/// the check is off or not settled.
pub fn partition_for(partitioner: Partitioner, key: &[u8], partitions: i32) -> Option<i32> {
    if partitions <= 0 {
        return None;
    }
    let hash = match partitioner {
        Partitioner::Murmur2 => murmur2(key),
        Partitioner::ConsistentRandom if !key.is_empty() => crc32(key),
        Partitioner::ConsistentRandom | Partitioner::None | Partitioner::Auto => return None,
    };
    // Kafka's `toPositive(hash) % numPartitions`.
    Some(((hash & 0x7fff_ffff) % partitions as u32) as i32)
}

/// The setting that makes a librdkafka producer partition keys as `partitioner` expects
/// (Kafka's default when there is no fixed one).
pub fn librdkafka_name(partitioner: Partitioner) -> &'static str {
    match partitioner {
        Partitioner::Murmur2 | Partitioner::None | Partitioner::Auto => "murmur2_random",
        Partitioner::ConsistentRandom => "consistent_random",
    }
}

/// The two functions learnt between, as [`Detection`] stores them.
const UNSETTLED: u8 = 0;
const MURMUR2: u8 = 1;
const CRC32: u8 = 2;

fn named(f: u8) -> Partitioner {
    match f {
        MURMUR2 => Partitioner::Murmur2,
        _ => Partitioner::ConsistentRandom,
    }
}

/// What the records have shown of the upstream partitioner: one for the whole process,
/// shared by every partition task, so all inputs are held to the same function.
#[derive(Default)]
pub struct Detection {
    settled: AtomicU8,
    /// Before settling: per topic, keys only murmur2 explains and keys only CRC32 does.
    tally: Mutex<Vec<(String, [u32; 2])>>,
}

impl Detection {
    /// The function settled on, if any.
    pub fn settled(&self) -> Option<Partitioner> {
        match self.settled.load(Ordering::Relaxed) {
            UNSETTLED => None,
            f => Some(named(f)),
        }
    }

    /// Counts a key that only `f` explains; once one function has [`SETTLE_AFTER`] keys,
    /// settles on it and returns, per topic, the keys seen so far that followed the other.
    fn evidence(&self, topic: &str, f: u8) -> Option<Vec<(String, u32)>> {
        let mut tally = self.tally.lock().unwrap_or_else(|e| e.into_inner());
        if self.settled.load(Ordering::Relaxed) != UNSETTLED {
            return None;
        }
        let i = match tally.iter().position(|(t, _)| t == topic) {
            Some(i) => i,
            None => {
                tally.push((topic.to_string(), [0, 0]));
                tally.len() - 1
            }
        };
        tally[i].1[usize::from(f - 1)] += 1;
        let total = tally
            .iter()
            .map(|(_, c)| c[usize::from(f - 1)])
            .sum::<u32>();
        if total < SETTLE_AFTER {
            return None;
        }
        self.settled.store(f, Ordering::Relaxed);
        let other = usize::from(2 - f);
        Some(tally.drain(..).map(|(t, c)| (t, c[other])).collect())
    }
}

/// Why a record is not on its key's partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Misplaced {
    /// Neither function puts it there.
    Neither,
    /// It follows `0`, the inputs follow `1`.
    Other(Partitioner, Partitioner),
    /// It is not where the configured function puts it.
    Configured(Partitioner),
}

/// The check of records read against their keys' partitions; one per partition task.
pub struct KeyCheck {
    partitioner: Partitioner,
    /// Partitions of every input topic (they are co-partitioned, checked at start-up).
    partitions: i32,
    detection: std::sync::Arc<Detection>,
    /// Topic-partitions already logged, so a producer's every record is not.
    warned: HashSet<(String, i32)>,
}

impl KeyCheck {
    pub fn new(
        partitioner: Partitioner,
        partitions: usize,
        detection: std::sync::Arc<Detection>,
    ) -> KeyCheck {
        KeyCheck {
            partitioner,
            partitions: i32::try_from(partitions).unwrap_or(i32::MAX),
            detection,
            warned: HashSet::new(),
        }
    }

    /// Checks one record; on a mismatch counts it, logs it (once per topic-partition) and
    /// shows it as a `/readyz` warning. True if the record is on its key's partition (or
    /// cannot be checked). No allocation unless it is not, or while learning.
    pub fn check(
        &mut self,
        metrics: &Metrics,
        readiness: &Readiness,
        topic: &str,
        partition: i32,
        key: Option<&[u8]>,
    ) -> bool {
        let Some(key) = key.filter(|k| !k.is_empty()) else {
            return true;
        };
        if self.partitions <= 1 || self.partitioner == Partitioner::None {
            return true;
        }
        let partitions = self.partitions;
        let fits = |p| partition_for(p, key, partitions) == Some(partition);
        let verdict = match self.partitioner {
            Partitioner::Auto => self.learn(metrics, topic, fits),
            p if fits(p) => None,
            p => Some(Misplaced::Configured(p)),
        };
        let Some(why) = verdict else { return true };
        self.report(metrics, readiness, topic, partition, why);
        false
    }

    /// Under `auto`: whether the record fits the settled function, or adds evidence.
    fn learn(
        &mut self,
        metrics: &Metrics,
        topic: &str,
        fits: impl Fn(Partitioner) -> bool,
    ) -> Option<Misplaced> {
        let (m, c) = (
            fits(Partitioner::Murmur2),
            fits(Partitioner::ConsistentRandom),
        );
        if let Some(settled) = self.detection.settled() {
            let (ok, other) = match settled {
                Partitioner::Murmur2 => (m, c),
                _ => (c, m),
            };
            return match (ok, other) {
                (true, _) => None,
                (false, true) => Some(Misplaced::Other(flip(settled), settled)),
                (false, false) => Some(Misplaced::Neither),
            };
        }
        let f = match (m, c) {
            (false, false) => return Some(Misplaced::Neither),
            (true, true) => return None,
            (true, false) => MURMUR2,
            (false, true) => CRC32,
        };
        if let Some(earlier) = self.detection.evidence(topic, f) {
            self.settle(metrics, named(f), earlier);
        }
        None
    }

    /// Logs the function settled on, and counts as mismatches the keys that followed the
    /// other one before it was.
    fn settle(&mut self, metrics: &Metrics, f: Partitioner, earlier: Vec<(String, u32)>) {
        info!(
            partitioner = f.name(),
            keys = SETTLE_AFTER,
            "upstream partitioner detected from the input records"
        );
        metrics
            .partitioner_detected
            .with_label_values(&[f.name()])
            .set(1);
        for (topic, n) in earlier.into_iter().filter(|(_, n)| *n > 0) {
            warn!(
                topic,
                records = n,
                partitioner = f.name(),
                "records read before the partitioner was settled followed the other function"
            );
            metrics
                .partition_key_mismatches
                .with_label_values(&[&topic])
                .inc_by(u64::from(n));
        }
    }

    fn report(
        &mut self,
        metrics: &Metrics,
        readiness: &Readiness,
        topic: &str,
        partition: i32,
        why: Misplaced,
    ) {
        metrics
            .partition_key_mismatches
            .with_label_values(&[topic])
            .inc();
        if !self.warned.insert((topic.to_string(), partition)) {
            return;
        }
        let how = match why {
            Misplaced::Neither => "neither murmur2 nor CRC32 puts there".to_string(),
            Misplaced::Other(theirs, ours) => format!(
                "{} puts there, while the inputs follow {}",
                theirs.name(),
                ours.name()
            ),
            Misplaced::Configured(p) => format!("kafka.partitioner = {} puts elsewhere", p.name()),
        };
        let reason = format!(
            "records on partition {partition} of `{topic}` whose key {how}: an upstream \
             producer uses another partitioner, splitting subscribers' state"
        );
        warn!(topic, partition, reason = %reason, "record on the wrong partition for its key (processed anyway)");
        readiness.warn(&reason);
    }
}

fn flip(p: Partitioner) -> Partitioner {
    match p {
        Partitioner::Murmur2 => Partitioner::ConsistentRandom,
        _ => Partitioner::Murmur2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Apache Kafka's `UtilsTest.testMurmur2` vectors (Java signed ints).
    #[test]
    fn murmur2_matches_kafkas_utils_test_vectors() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (input, expected) in cases {
            assert_eq!(murmur2(input) as i32, expected, "{input:?}");
        }
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn murmur2_partition_is_the_positive_hash_modulo_the_count() {
        // -790332482 & 0x7fffffff = 1357151166; % 50 = 16 and % 7 = 0.
        assert_eq!(partition_for(Partitioner::Murmur2, b"foobar", 50), Some(16));
        assert_eq!(partition_for(Partitioner::Murmur2, b"foobar", 7), Some(0));
        // 479470107 is positive: % 4 = 3.
        assert_eq!(partition_for(Partitioner::Murmur2, b"abc", 4), Some(3));
        assert_eq!(partition_for(Partitioner::Murmur2, b"abc", 0), None);
    }

    #[test]
    fn consistent_random_hashes_with_crc32_and_leaves_empty_keys_to_chance() {
        // 0xcbf43926 & 0x7fffffff = 1274300710; % 10 = 4, % 7 = 3.
        let p = |n| partition_for(Partitioner::ConsistentRandom, b"123456789", n);
        assert_eq!((p(10), p(7)), (Some(4), Some(3)));
        assert_eq!(partition_for(Partitioner::ConsistentRandom, b"", 4), None);
        assert_eq!(partition_for(Partitioner::None, b"abc", 4), None);
    }

    fn checker(p: Partitioner) -> (KeyCheck, Metrics, Readiness) {
        let metrics = Metrics::default();
        let readiness = Readiness::new(metrics.ready.clone());
        let check = KeyCheck::new(p, 4, std::sync::Arc::default());
        (check, metrics, readiness)
    }

    fn mismatches(metrics: &Metrics, topic: &str) -> u64 {
        metrics
            .partition_key_mismatches
            .with_label_values(&[topic])
            .get()
    }

    /// Subscriber-like keys that only `f` places where it does (the other function puts
    /// them elsewhere among 4 partitions), with that partition.
    fn decisive(f: Partitioner, n: usize) -> Vec<(Vec<u8>, i32)> {
        (0u64..)
            .map(|i| format!("86139{i:08}").into_bytes())
            .filter_map(|k| {
                let (m, c) = (
                    partition_for(Partitioner::Murmur2, &k, 4)?,
                    partition_for(Partitioner::ConsistentRandom, &k, 4)?,
                );
                let p = if f == Partitioner::Murmur2 { m } else { c };
                (m != c).then_some((k, p))
            })
            .take(n)
            .collect()
    }

    #[test]
    fn a_misplaced_record_is_counted_and_warned_and_a_placed_one_is_not() {
        let (mut check, metrics, readiness) = checker(Partitioner::Murmur2);
        readiness.clear(super::super::readiness::Condition::Starting);
        assert!(check.check(&metrics, &readiness, "cdr", 3, Some(b"abc")));
        assert!(check.check(&metrics, &readiness, "cdr", 1, None));
        assert!(readiness.warnings().is_empty());
        assert!(!check.check(&metrics, &readiness, "cdr", 1, Some(b"abc")));
        assert!(!check.check(&metrics, &readiness, "cdr", 1, Some(b"abc")));
        assert_eq!(
            (mismatches(&metrics, "cdr"), mismatches(&metrics, "account")),
            (2, 0)
        );
        assert!(
            readiness.is_ready(),
            "a mismatch is a warning, not a condition"
        );
        let warnings = readiness.warnings();
        assert!(warnings[0].contains("partition 1 of `cdr`"), "{warnings:?}");
        assert!(!warnings[0].contains("abc"), "{warnings:?}");
        let (mut off, metrics, readiness) = checker(Partitioner::None);
        assert!(off.check(&metrics, &readiness, "cdr", 1, Some(b"abc")));
    }

    #[test]
    fn auto_learns_crc32_from_librdkafkas_default_and_flags_nothing() {
        let (mut check, metrics, readiness) = checker(Partitioner::Auto);
        let crc_placed = (0..500u64).map(|i| format!("86138{i:08}").into_bytes());
        for k in crc_placed {
            let p = partition_for(Partitioner::ConsistentRandom, &k, 4).unwrap();
            let topic = if k[12] % 3 == 0 { "account" } else { "cdr" };
            assert!(check.check(&metrics, &readiness, topic, p, Some(&k)));
        }
        assert_eq!(
            check.detection.settled(),
            Some(Partitioner::ConsistentRandom)
        );
        assert_eq!(
            mismatches(&metrics, "cdr") + mismatches(&metrics, "account"),
            0
        );
        let detected = &metrics.partitioner_detected;
        assert_eq!(detected.with_label_values(&["consistent_random"]).get(), 1);
        assert!(readiness.warnings().is_empty());
    }

    #[test]
    fn auto_flags_a_topic_that_disagrees_with_the_others_before_and_after_settling() {
        let (mut check, metrics, readiness) = checker(Partitioner::Auto);
        let crc = decisive(Partitioner::ConsistentRandom, 50);
        let murmur = decisive(Partitioner::Murmur2, SETTLE_AFTER as usize);
        for (k, p) in &crc[..10] {
            assert!(check.check(&metrics, &readiness, "account", *p, Some(k)));
        }
        for (k, p) in &murmur {
            check.check(&metrics, &readiness, "cdr", *p, Some(k));
        }
        assert_eq!(check.detection.settled(), Some(Partitioner::Murmur2));
        assert_eq!(
            mismatches(&metrics, "account"),
            10,
            "the ten read before settling"
        );
        for (k, p) in &crc[10..] {
            assert!(!check.check(&metrics, &readiness, "account", *p, Some(k)));
        }
        assert_eq!(
            (mismatches(&metrics, "account"), mismatches(&metrics, "cdr")),
            (50, 0)
        );
        let warnings = readiness.warnings().join("\n");
        assert!(
            warnings.contains("consistent_random puts there, while the inputs follow murmur2"),
            "{warnings}"
        );
    }

    #[test]
    fn auto_flags_a_record_neither_function_places_at_once() {
        let (mut check, metrics, readiness) = checker(Partitioner::Auto);
        let k = b"8613900000001";
        let (m, c) = (
            partition_for(Partitioner::Murmur2, k, 4).unwrap(),
            partition_for(Partitioner::ConsistentRandom, k, 4).unwrap(),
        );
        let neither = (0..4).find(|p| *p != m && *p != c).unwrap();
        assert!(!check.check(&metrics, &readiness, "cdr", neither, Some(k)));
        assert_eq!(check.detection.settled(), None);
        assert!(readiness.warnings()[0].contains("neither murmur2 nor CRC32"));
    }
}
