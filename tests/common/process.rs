//! Child processes for the tests that run the binary as a platform engineer would, and a
//! running service's HTTP view ([`Service`]). Each process is killed and reaped when its
//! handle drops, so a failing test leaks no process, and its output goes to files kept
//! (and named) on failure.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process, SIGKILLed and reaped when dropped.
pub struct Proc {
    pub name: String,
    pub child: Child,
}

impl Proc {
    /// Starts `cmd` with its output (stdout too, unless `piped`) in `logs/name.log`.
    pub fn spawn(name: &str, cmd: &mut Command, logs: &Path, piped: bool) -> Proc {
        let log = std::fs::File::create(logs.join(format!("{name}.log"))).unwrap();
        if piped {
            cmd.stdout(Stdio::piped());
        } else {
            cmd.stdout(log.try_clone().unwrap());
        }
        let child = cmd
            .stdin(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Proc {
            name: name.into(),
            child,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Still running?
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args(["-s", sig, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(ok.success(), "kill -s {sig} {}", self.name);
    }

    /// Waits for the process to exit and returns its status.
    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "{} did not exit", self.name);
            std::thread::sleep(Duration::from_millis(20)); // poll interval of try_wait
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory for the children's output, kept when the test fails.
pub struct Logs(Option<tempfile::TempDir>);

impl Logs {
    pub fn new() -> Logs {
        Logs(Some(tempfile::tempdir().unwrap()))
    }
    pub fn path(&self) -> &Path {
        self.0.as_ref().unwrap().path()
    }
}

impl Drop for Logs {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("CHURNWATCH_TEST_KEEP_LOGS").is_some() {
            let kept = self.0.take().unwrap().keep();
            eprintln!("process logs kept in {}", kept.display());
        }
    }
}

/// A port below the kernel's ephemeral range, free when asked.
pub fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 600) as u16 * 20;
    loop {
        let p = base + NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % 12_000;
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// A `churnwatch run` process and its HTTP endpoint.
pub struct Service {
    pub proc: Proc,
    pub port: u16,
}

impl Service {
    /// GET on the service's HTTP port: (status, body), or None while it does not answer.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let status = text.split(' ').nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n")?.1.to_string();
        Some((status, body))
    }

    /// A metric's value summed over its label sets (0 while absent or unreachable).
    pub fn metric(&self, name: &str) -> f64 {
        let Some((200, text)) = self.get("/metrics") else {
            return 0.0;
        };
        text.lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    pub fn consumed(&self) -> u64 {
        self.metric("churnwatch_records_consumed_total") as u64
    }

    /// Asserts the run dead-lettered nothing: the workloads hold no bad record and no
    /// record later than the allowed lateness, so a dead letter means the event-time merge
    /// went ahead without an input (not a durability failure).
    pub fn assert_no_dead_letters(&self) {
        let n = self.metric("churnwatch_dead_lettered_total");
        assert!(
            n == 0.0,
            "{}: {n} records dead-lettered (late: the merge went ahead without an input)",
            self.proc.name
        );
    }

    pub fn ready(&self) -> bool {
        matches!(self.get("/readyz"), Some((200, _)))
    }

    /// SIGTERM once the service answers HTTP, then waits for a clean exit. A run that found
    /// nothing to do may be stopped right after its spawn; its signal handlers are installed
    /// before its HTTP port opens, and a SIGTERM before then would kill it by default action.
    pub fn stop(mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.get("/healthz").is_none() {
            assert!(
                self.proc.alive(),
                "{} exited before answering",
                self.proc.name
            );
            assert!(
                Instant::now() < deadline,
                "{} never answered HTTP",
                self.proc.name
            );
            std::thread::sleep(Duration::from_millis(20)); // HTTP port poll
        }
        self.proc.signal("TERM");
        let status = self.proc.wait_exit(Duration::from_secs(60));
        assert!(status.success(), "{} exited with {status}", self.proc.name);
    }

    /// SIGKILL, reaped.
    pub fn crash(mut self) {
        self.proc.signal("KILL");
        self.proc.wait_exit(Duration::from_secs(10));
    }
}
