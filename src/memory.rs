//! How the process takes memory from the kernel, and how close it is to its limit.
//!
//! **No transparent huge pages.** mimalloc (the allocator, see `main.rs`) asks the kernel
//! for huge pages on its arenas, and a kernel in `madvise` mode then backs every 2 MiB
//! region a small allocation touches with a whole huge page. At a million subscribers that
//! rounding was 10 bytes a subscriber of resident memory (260 B against 250 B measured
//! with 4 KiB pages, `bench engine`), for no measurable gain in speed; and the kernel's
//! compaction for huge pages stalls a process at random, as Redis and MongoDB warn of.
//! A deployment that wants them back sets `MIMALLOC_ALLOW_THP=1`.
//!
//! **Resident memory against the container's limit.** The state grows with the subscribers
//! held, and a pod sized for today's base is OOM-killed months later (a restore and two
//! rebalances, then again). [`MemoryMetrics`] exports the resident set
//! (`churnwatch_resident_memory_bytes`, `VmRSS` of `/proc/self/status`) and the cgroup's
//! limit (`churnwatch_memory_limit_bytes`: cgroup v2 `memory.max`, else v1
//! `memory.limit_in_bytes`; 0 when there is none), so the alert
//! `ChurnwatchMemoryNearLimit` can divide one by the other. They are read when `/metrics`
//! is scraped (two small reads of kernel files), so they are fresh at every scrape and no
//! task runs between scrapes. The kernel's files are parsed without trusting them:
//! anything unexpected is a [`MemoryReadError`], never a panic, and a limit that cannot be
//! read is exported as 0 (no limit known), which the alert ignores.

use std::path::{Path, PathBuf};

use prometheus::{IntGauge, Registry};
use tracing::debug;

/// The resident set size of this process, in `/proc/self/status`.
const STATUS: &str = "/proc/self/status";
/// The memory limit of the cgroup (v2, with the container's cgroup namespace at the root).
const CGROUP_V2_MAX: &str = "/sys/fs/cgroup/memory.max";
/// The same in cgroup v1.
const CGROUP_V1_LIMIT: &str = "/sys/fs/cgroup/memory/memory.limit_in_bytes";
/// cgroup v1 writes "no limit" as the largest page-aligned `i64` (9223372036854771712);
/// any limit from 2^62 bytes (4 EiB) up is taken as none.
const UNLIMITED_FROM: u64 = 1 << 62;

/// Why a memory figure could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MemoryReadError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: unexpected contents", path.display())]
    Format { path: PathBuf },
}

/// A cgroup's memory limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Bytes(u64),
    Unlimited,
}

/// `VmRSS` of a `/proc/<pid>/status` text, in bytes (the kernel writes it in kB).
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let rest = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let mut words = rest.split_whitespace();
    let (Some(kb), Some("kB"), None) = (words.next(), words.next(), words.next()) else {
        return None;
    };
    kb.parse::<u64>().ok()?.checked_mul(1024)
}

/// A cgroup limit file: `max` (v2) or a number of bytes, one line.
pub fn parse_limit(text: &str) -> Option<Limit> {
    match text.trim() {
        "max" => Some(Limit::Unlimited),
        n => match n.parse::<u64>().ok()? {
            b if b >= UNLIMITED_FROM => Some(Limit::Unlimited),
            b => Some(Limit::Bytes(b)),
        },
    }
}

/// This process's resident set size, in bytes.
pub fn resident_bytes() -> Result<u64, MemoryReadError> {
    let path = Path::new(STATUS);
    let text = std::fs::read_to_string(path).map_err(|source| MemoryReadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_vm_rss(&text).ok_or_else(|| MemoryReadError::Format {
        path: path.to_path_buf(),
    })
}

/// The memory limit of this process's cgroup: `Ok(None)` when there is none or no cgroup
/// file is there to say (not in a container, or no memory controller).
pub fn limit_bytes() -> Result<Option<u64>, MemoryReadError> {
    limit_from(&[Path::new(CGROUP_V2_MAX), Path::new(CGROUP_V1_LIMIT)])
}

/// The limit in the first of `paths` that exists.
fn limit_from(paths: &[&Path]) -> Result<Option<u64>, MemoryReadError> {
    for path in paths {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                return match parse_limit(&text) {
                    Some(Limit::Bytes(b)) => Ok(Some(b)),
                    Some(Limit::Unlimited) => Ok(None),
                    None => Err(MemoryReadError::Format {
                        path: path.to_path_buf(),
                    }),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(MemoryReadError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
    Ok(None)
}

/// The two memory gauges, registered by [`crate::metrics::Metrics::new`] and refreshed by
/// the `/metrics` handler.
#[derive(Clone)]
pub struct MemoryMetrics {
    pub resident: IntGauge,
    pub limit: IntGauge,
}

impl MemoryMetrics {
    pub fn register(r: &Registry) -> MemoryMetrics {
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric definition");
            r.register(Box::new(g.clone()))
                .expect("metric registered once");
            g
        };
        MemoryMetrics {
            resident: gauge(
                "churnwatch_resident_memory_bytes",
                "Resident set size of the process (VmRSS), read at each scrape.",
            ),
            limit: gauge(
                "churnwatch_memory_limit_bytes",
                "Memory limit of the process's cgroup (the container's limit); 0 when there is none or it cannot be read.",
            ),
        }
    }

    /// Reads both figures again. A figure that cannot be read is logged at debug level
    /// (every scrape would repeat it): the resident gauge keeps its last value, the limit
    /// becomes 0 (unknown), so the alert does not fire on a guess.
    pub fn refresh(&self) {
        match resident_bytes() {
            Ok(b) => self.resident.set(i64::try_from(b).unwrap_or(i64::MAX)),
            Err(e) => debug!(error = %e, "resident memory not readable"),
        }
        let limit = limit_bytes().unwrap_or_else(|e| {
            debug!(error = %e, "memory limit not readable");
            None
        });
        self.limit
            .set(limit.map_or(0, |b| i64::try_from(b).unwrap_or(i64::MAX)));
    }
}

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

#[cfg(test)]
mod reading_tests {
    use super::*;

    const STATUS_SAMPLE: &str = "Name:\tchurnwatch\nVmPeak:\t  912340 kB\nVmRSS:\t  524288 kB\nRssAnon:\t  500000 kB\nThreads:\t12\n";

    #[test]
    fn the_resident_set_is_read_in_kilobytes() {
        assert_eq!(parse_vm_rss(STATUS_SAMPLE), Some(524_288 * 1024));
    }

    #[test]
    fn unexpected_status_contents_are_none_not_a_panic() {
        for bad in [
            "",
            "Name:\tx\n",
            "VmRSS:\n",
            "VmRSS:\t 12 MB\n",
            "VmRSS:\t -12 kB\n",
            "VmRSS:\t 12 kB extra\n",
            "VmRSS:\t 99999999999999999999 kB\n",
            "VmRSS:\t 18014398509481984 kB\n",
            "\u{0}\u{ffff}VmRSS",
        ] {
            assert_eq!(parse_vm_rss(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn limits_in_both_cgroup_versions_and_their_ways_of_saying_none() {
        assert_eq!(
            parse_limit("3758096384\n"),
            Some(Limit::Bytes(3_758_096_384))
        );
        assert_eq!(parse_limit("max\n"), Some(Limit::Unlimited));
        assert_eq!(parse_limit("9223372036854771712\n"), Some(Limit::Unlimited));
        for bad in ["", "\n", "-1", "12abc", "max max", "1.5e9"] {
            assert_eq!(parse_limit(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_first_cgroup_file_present_gives_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let v2 = dir.path().join("memory.max");
        let v1 = dir.path().join("memory.limit_in_bytes");
        let (v2p, v1p) = (v2.as_path(), v1.as_path());
        assert_eq!(limit_from(&[v2p, v1p]).unwrap(), None, "no file: no limit");
        std::fs::write(&v1, "1073741824\n").unwrap();
        assert_eq!(limit_from(&[v2p, v1p]).unwrap(), Some(1 << 30), "v1 only");
        std::fs::write(&v2, "max\n").unwrap();
        assert_eq!(
            limit_from(&[v2p, v1p]).unwrap(),
            None,
            "v2 first, unlimited"
        );
        std::fs::write(&v2, "2147483648\n").unwrap();
        assert_eq!(limit_from(&[v2p, v1p]).unwrap(), Some(2 << 30));
        std::fs::write(&v2, "garbage").unwrap();
        assert!(matches!(
            limit_from(&[v2p, v1p]),
            Err(MemoryReadError::Format { .. })
        ));
        // A directory where the file should be: a read error, not a panic.
        let not_a_file = dir.path().to_path_buf();
        assert!(matches!(
            limit_from(&[not_a_file.as_path()]),
            Err(MemoryReadError::Read { .. })
        ));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_refresh_exports_this_process_memory_and_its_limit() {
        let r = Registry::new();
        let m = MemoryMetrics::register(&r);
        m.refresh();
        let rss = m.resident.get();
        // A test binary's resident set: more than a megabyte, less than a terabyte.
        assert!(rss > 1 << 20 && rss < 1 << 40, "{rss}");
        let limit = limit_bytes().unwrap_or(None).map_or(0, |b| b as i64);
        assert_eq!(m.limit.get(), limit);
        let names: Vec<String> = r.gather().iter().map(|f| f.name().to_string()).collect();
        assert!(names.contains(&"churnwatch_resident_memory_bytes".to_string()));
        assert!(names.contains(&"churnwatch_memory_limit_bytes".to_string()));
    }
}
