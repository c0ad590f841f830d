//! The one random generator of every synthetic workload: SplitMix64.
//!
//! Tiny, seeded and identical on every platform, so a workload is a pure function of its
//! seed: `generate` writes byte-identical files for the same seed, and the demo and the
//! tests see the same records on every run. [`Rng::stream`] gives independent streams per
//! `(seed, subscriber, day)`, which lets `generate` draw days in parallel without changing
//! a byte.

/// SplitMix64 and the draws the workloads need.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose state starts at `state`.
    pub fn new(state: u64) -> Rng {
        Rng(state)
    }

    /// A generator for one `(seed, a, b)` stream, independent of every other stream.
    pub fn stream(seed: u64, a: u64, b: u64) -> Rng {
        let mut r = Rng(seed ^ a.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b.rotate_left(32));
        r.next_u64();
        Rng(r.next_u64() ^ b.wrapping_mul(0xd1b5_4a32_d192_ed03))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (`lo` when the range is empty).
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + (self.next_u64() % (hi - lo) as u64) as i64
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// True in `percent` draws out of 100 (one integer draw, as the demo's stories use).
    pub fn percent(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    /// `x` rounded up or down at random so that the expectation is `x`: weekly sums stay
    /// steady while single days vary.
    pub fn round(&mut self, x: f64) -> u32 {
        let x = x.max(0.0);
        let fl = x.floor();
        (fl as u32) + u32::from(self.unit() < x - fl)
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.unit().max(f64::MIN_POSITIVE);
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * self.unit()).cos()
    }

    /// Log-normal with mean `mean` and log-scale spread `sigma`: heavy-tailed, never negative.
    pub fn lognormal(&mut self, mean: f64, sigma: f64) -> f64 {
        mean * (sigma * self.normal() - sigma * sigma / 2.0).exp()
    }

    /// Poisson with mean `lambda` (Knuth's product; the means here are small).
    pub fn poisson(&mut self, lambda: f64) -> u32 {
        if lambda <= 0.0 {
            return 0;
        }
        let limit = (-lambda.min(30.0)).exp();
        let (mut k, mut p) = (0u32, self.unit());
        while p > limit {
            k += 1;
            p *= self.unit();
        }
        k
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next_u64() % items.len() as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_stable_and_distinct() {
        let mut r = Rng::stream(42, 1, 2);
        let a: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        let mut r = Rng::stream(42, 1, 2);
        let b: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        assert_eq!(a, b);
        assert_ne!(
            Rng::stream(42, 1, 3).next_u64(),
            Rng::stream(42, 1, 2).next_u64()
        );
    }

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // Vigna's reference splitmix64.c seeded with 0.
        let mut r = Rng::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn empty_ranges_draw_nothing() {
        let mut r = Rng::new(7);
        assert_eq!(r.range(5, 5), 5);
        assert_eq!(r.next_u64(), Rng::new(7).next_u64());
    }
}
