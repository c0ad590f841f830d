//! A software prefetch behind a safe signature: the engine applies records in batches and
//! asks for the memory of the next ones (index, state, de-duplication buckets) while it
//! works on the current one, so their cache misses overlap instead of adding up.
//!
//! A prefetch is only a hint: it never faults and changes no value, so the wrapper takes a
//! reference (any valid address) and is a no-op on targets without the instruction.

/// Asks the CPU to bring the cache line holding `*r` into every cache level.
#[inline(always)]
pub fn prefetch<T: ?Sized>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` reads nothing architecturally and cannot fault; the pointer
    // comes from a live reference.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((r as *const T).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

/// Prefetches every cache line `*r` spans (a value larger than a line, or one that
/// straddles two).
#[inline(always)]
pub fn prefetch_all<T>(r: &T) {
    let p = (r as *const T).cast::<u8>();
    let last = std::mem::size_of::<T>().saturating_sub(1);
    let mut off = 0;
    loop {
        line(p.wrapping_add(off.min(last)));
        if off >= last {
            break;
        }
        off += 64;
    }
}

/// The instruction itself, on an address inside a live value (see [`prefetch_all`]).
#[inline(always)]
fn line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: as in `prefetch`; `p` points inside the value `prefetch_all` was given.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
