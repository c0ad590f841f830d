//! Child processes for the tests that run the binary as a platform engineer would: each
//! is killed and reaped when its handle drops, so a failing test leaks no process, and its
//! output goes to files kept (and named) on failure.
#![allow(dead_code)]

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
