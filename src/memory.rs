//! How the process takes memory from the kernel.
//!
//! **No transparent huge pages.** mimalloc (the allocator, see `main.rs`) asks the kernel
//! for huge pages on its arenas, and a kernel in `madvise` mode then backs every 2 MiB
//! region a small allocation touches with a whole huge page. At a million subscribers that
//! rounding was 10 bytes a subscriber of resident memory (260 B against 250 B measured
//! with 4 KiB pages, `bench engine`), for no measurable gain in speed; and the kernel's
//! compaction for huge pages stalls a process at random, as Redis and MongoDB warn of.
//! A deployment that wants them back sets `MIMALLOC_ALLOW_THP=1`.

/// Turns transparent huge pages off for this process (unless `MIMALLOC_ALLOW_THP` says
/// otherwise). Called first thing in `main`; on a kernel without the setting it does
/// nothing.
pub fn no_transparent_huge_pages() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
        return;
    }
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes an integer flag and no pointers; it only changes
    // how the kernel backs this process's future page faults.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_process_asks_for_no_huge_pages() {
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
            return;
        }
        super::no_transparent_huge_pages();
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("THP_enabled:"));
        // Kernels before 6.8 do not show the setting; the call must still have worked.
        // SAFETY: PR_GET_THP_DISABLE takes no pointers.
        let got = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(got, 1, "{line:?}");
    }
}
