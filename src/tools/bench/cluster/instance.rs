//! One `churnwatch run` child process of the cluster benchmark, and what the benchmark reads
//! from it: `/readyz`, `/metrics` and its resident memory, as an operator's tools would.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::super::BenchError;

/// A running service instance; killed if still running when dropped.
pub(super) struct Instance {
    pub name: &'static str,
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Instance {
    /// Starts `churnwatch run` (this executable) with `env` over the configuration, its
    /// HTTP server on a free port, its output in `logs/<name>.log`.
    pub fn spawn(
        name: &'static str,
        env: &[(String, String)],
        logs: &Path,
    ) -> Result<Instance, BenchError> {
        let check = |e: std::io::Error| BenchError::Check(format!("instance {name}: {e}"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(check)?
            .port();
        let path = logs.join(format!("{name}.log"));
        let log = std::fs::File::create(&path).map_err(check)?;
        let mut cmd = Command::new(std::env::current_exe().map_err(check)?);
        // SAFETY: prctl(2) only, between fork and exec: async-signal-safe, no allocation.
        // The instance dies with the benchmark (killed, or out of memory) instead of
        // lingering with its memory.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .arg("run")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("CHURNWATCH__HTTP__LISTEN", format!("127.0.0.1:{port}"))
            .env("CHURNWATCH_LOG_FORMAT", "text")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(check)?)
            .stderr(log)
            .spawn()
            .map_err(check)?;
        Ok(Instance {
            name,
            child,
            port,
            log: path,
        })
    }

    /// GET `path`: (status, body), or `None` while the server does not answer.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let status = text.split(' ').nth(1)?.parse().ok()?;
        Some((status, text.split_once("\r\n\r\n")?.1.to_string()))
    }

    /// `/readyz`: whether ready, and what it says.
    pub fn readiness(&self) -> Option<(bool, String)> {
        self.get("/readyz").map(|(s, body)| (s == 200, body))
    }

    pub fn metrics(&self) -> Metrics {
        Metrics(self.get("/metrics").map(|(_, b)| b).unwrap_or_default())
    }

    /// Resident memory (VmRSS), bytes.
    pub fn resident_bytes(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                let l = s.lines().find(|l| l.starts_with("VmRSS:"))?;
                l.split_whitespace().nth(1)?.parse::<u64>().ok()
            })
            .map_or(0, |kb| kb * 1024)
    }

    /// The last line of its output, and where the rest is.
    pub fn last_log_line(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let last = text.lines().last().unwrap_or("").to_string();
        format!("{last} (log: {})", self.log.display())
    }

    /// Sends SIGTERM: the instance drains, checkpoints and leaves its group.
    pub fn terminate(&self) {
        // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
    }

    /// Whether the process has exited (and with what), without waiting.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One scrape of `/metrics` (Prometheus text format).
pub(super) struct Metrics(String);

impl Metrics {
    /// The samples of `name` whose labels contain `labels` (e.g. `partition="2"`), summed.
    pub fn sum(&self, name: &str, labels: &str) -> f64 {
        self.0
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix(name)?;
                if !(rest.starts_with('{') || rest.starts_with(' ')) || !rest.contains(labels) {
                    return None;
                }
                rest.rsplit(' ').next()?.parse::<f64>().ok()
            })
            .sum()
    }

    /// The largest sample of `name` over its label sets (0 when absent).
    pub fn max(&self, name: &str) -> f64 {
        self.0
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix(name)?;
                (rest.starts_with('{') || rest.starts_with(' ')).then_some(())?;
                rest.rsplit(' ').next()?.parse::<f64>().ok()
            })
            .fold(0.0, f64::max)
    }

    /// A histogram's cumulative buckets `(upper bound, count)`, in order.
    pub fn buckets(&self, name: &str) -> Vec<(f64, u64)> {
        let prefix = format!("{name}_bucket{{le=\"");
        self.0
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix(&prefix)?;
                let (le, count) = rest.split_once("\"} ")?;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                Some((le, count.trim().parse::<f64>().ok()? as u64))
            })
            .collect()
    }
}

/// Bucket-wise `after - before`, summed over instances: the observations in between.
pub(super) fn observed(after: &[Vec<(f64, u64)>], before: &[Vec<(f64, u64)>]) -> Vec<(f64, u64)> {
    let mut total: Vec<(f64, u64)> = Vec::new();
    for (a, b) in after.iter().zip(before) {
        for (k, &(le, n)) in a.iter().enumerate() {
            let was = b.get(k).map_or(0, |x| x.1);
            match total.get_mut(k) {
                Some(t) => t.1 += n.saturating_sub(was),
                None => total.push((le, n.saturating_sub(was))),
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrapes_read_sums_and_buckets() {
        let m = Metrics(
            "# HELP x\nchurnwatch_a_total{partition=\"1\"} 3\nchurnwatch_a_total{partition=\"2\"} 4\n\
             churnwatch_ab 100\nchurnwatch_l_bucket{le=\"0.5\"} 2\nchurnwatch_l_bucket{le=\"+Inf\"} 5\n"
                .into(),
        );
        assert_eq!(m.sum("churnwatch_a_total", ""), 7.0);
        assert_eq!(m.sum("churnwatch_a_total", "partition=\"2\""), 4.0);
        assert_eq!(
            m.buckets("churnwatch_l"),
            vec![(0.5, 2), (f64::INFINITY, 5)]
        );
        let before = vec![vec![(0.5, 1), (f64::INFINITY, 1)]; 2];
        let after = vec![vec![(0.5, 2), (f64::INFINITY, 5)]; 2];
        assert_eq!(
            observed(&after, &before),
            vec![(0.5, 2), (f64::INFINITY, 8)]
        );
    }
}
