//! Which partition a record's key belongs to, and the check that every record read is on it.
//!
//! churnwatch keeps each subscriber's state in the one partition task that reads the
//! subscriber's partition. That holds only while every producer upstream maps keys to
//! partitions with the same function: a producer with another partitioner puts some of a
//! subscriber's records on another partition, and so in another engine, and nothing
//! fails; the state is silently split. So each record read is checked against its key
//! under `kafka.partitioner`: Kafka's Java default (`murmur2`, also librdkafka's
//! `murmur2_random`) or librdkafka's default (`consistent_random`, CRC32). A record on
//! the wrong partition is still processed (dropping it would lose data), but it is
//! counted (`churnwatch_partition_key_mismatches_total{topic}`), logged once per
//! topic-partition, and `/readyz` reports it until restart. Keys never reach a label or
//! a log line: they are subscriber numbers.

use std::collections::HashSet;

use tracing::warn;

use crate::config::Partitioner;

use super::shared::Shared;

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
/// the check is off.
pub fn partition_for(partitioner: Partitioner, key: &[u8], partitions: i32) -> Option<i32> {
    if partitions <= 0 {
        return None;
    }
    let hash = match partitioner {
        Partitioner::Murmur2 => murmur2(key),
        Partitioner::ConsistentRandom if !key.is_empty() => crc32(key),
        Partitioner::ConsistentRandom | Partitioner::None => return None,
    };
    // Kafka's `toPositive(hash) % numPartitions`.
    Some(((hash & 0x7fff_ffff) % partitions as u32) as i32)
}

/// The setting that makes a librdkafka producer partition keys as `partitioner` expects
/// (Kafka's default when there is no check).
pub fn librdkafka_name(partitioner: Partitioner) -> &'static str {
    match partitioner {
        Partitioner::Murmur2 | Partitioner::None => "murmur2_random",
        Partitioner::ConsistentRandom => "consistent_random",
    }
}

/// The check of records read against their keys' partitions.
pub struct KeyCheck {
    partitioner: Partitioner,
    /// Partitions of every input topic (they are co-partitioned, checked at start-up).
    partitions: i32,
    /// Topic-partitions already logged, so a producer's every record is not.
    warned: HashSet<(String, i32)>,
}

impl KeyCheck {
    pub fn new(partitioner: Partitioner, partitions: usize) -> KeyCheck {
        KeyCheck {
            partitioner,
            partitions: i32::try_from(partitions).unwrap_or(i32::MAX),
            warned: HashSet::new(),
        }
    }

    /// Checks one record; on a mismatch counts it, logs it (once per topic-partition) and
    /// marks the service not ready. True if the record is on its key's partition (or
    /// cannot be checked). No allocation unless it is not.
    pub fn check(
        &mut self,
        shared: &Shared,
        topic: &str,
        partition: i32,
        key: Option<&[u8]>,
    ) -> bool {
        let Some(key) = key else { return true };
        let Some(expected) = partition_for(self.partitioner, key, self.partitions) else {
            return true;
        };
        if expected == partition {
            return true;
        }
        shared
            .metrics
            .partition_key_mismatches
            .with_label_values(&[topic])
            .inc();
        if self.warned.insert((topic.to_string(), partition)) {
            let reason = format!(
                "records on partition {partition} of `{topic}` whose key {} puts on another: \
                 an upstream producer uses another partitioner, splitting subscribers' state",
                self.partitioner.name()
            );
            warn!(
                topic,
                partition,
                expected_partitioner = self.partitioner.name(),
                "record on the wrong partition for its key: an upstream producer uses another \
                 partitioner, so a subscriber's records reach two engines (processed anyway)"
            );
            shared.set_key_mismatch(&reason);
        }
        false
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

    #[test]
    fn a_misplaced_record_is_counted_and_reported_and_a_placed_one_is_not() {
        let shared = Shared::default();
        shared.set_ready(true, "");
        let mut check = KeyCheck::new(Partitioner::Murmur2, 4);
        assert!(check.check(&shared, "cdr", 3, Some(b"abc")));
        assert!(check.check(&shared, "cdr", 1, None));
        assert!(shared.ready.load(std::sync::atomic::Ordering::SeqCst));
        assert!(!check.check(&shared, "cdr", 1, Some(b"abc")));
        assert!(!check.check(&shared, "cdr", 1, Some(b"abc")));
        let count = |t: &str| {
            shared
                .metrics
                .partition_key_mismatches
                .with_label_values(&[t])
                .get()
        };
        assert_eq!((count("cdr"), count("account")), (2, 0));
        assert!(!shared.ready.load(std::sync::atomic::Ordering::SeqCst));
        let reason = shared.not_ready_reason.lock().unwrap().clone();
        assert!(reason.contains("partition 1 of `cdr`"), "{reason}");
        assert!(!reason.contains("abc"), "{reason}");
        let mut off = KeyCheck::new(Partitioner::None, 4);
        assert!(off.check(&shared, "cdr", 1, Some(b"abc")));
    }
}
