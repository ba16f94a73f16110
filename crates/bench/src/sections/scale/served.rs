//! `modelreg serve` as its own process for the scale section: started on a data dir,
//! waited for until ready, stopped with SIGTERM (killed on drop), and its memory read
//! from /proc.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use super::READY_TIMEOUT;
use crate::registry::MASTER_KEY;

/// `modelreg serve` on a data dir, killed on drop.
pub(super) struct Served {
    child: Child,
    pub(super) base: String,
    pub(super) started: Instant,
}

impl Served {
    pub(super) async fn start(binary: &Path, dir: &Path) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let stderr = std::fs::File::create(dir.join("serve.log"))?;
        let started = Instant::now();
        let child = Command::new(binary)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(dir)
            .env_remove("MODELREG_NATS_URL")
            .env("MODELREG_MASTER_KEY", MASTER_KEY)
            .env("MODELREG_BOOTSTRAP_DEFAULT_ORG", "0")
            .env("MODELREG_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let mut served = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            started,
        };
        let http = reqwest::Client::new();
        loop {
            if let Some(status) = served.child.try_wait()? {
                bail!(
                    "modelreg serve exited ({status}) before it was ready; see {}",
                    dir.join("serve.log").display()
                );
            }
            let ready = http
                .get(format!("{}/readyz", served.base))
                .send()
                .await
                .is_ok_and(|r| r.status() == reqwest::StatusCode::OK);
            if ready {
                return Ok(served);
            }
            if served.started.elapsed() > READY_TIMEOUT {
                served.child.kill()?;
                bail!("modelreg serve not ready after {READY_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the server with SIGTERM, as an operator would (a clean close of its files),
    /// killing it if it has not exited within 30 s.
    pub(super) async fn terminate(mut self) -> anyhow::Result<()> {
        let pid = self.pid().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status()?;
        ensure!(sent.success(), "cannot send SIGTERM to modelreg serve");
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                self.child.kill()?;
                self.child.wait()?;
                bail!("modelreg serve did not stop within 30 s of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `field` of /proc/<pid>/status (`VmRSS`, `VmHWM`), in MB.
pub(super) fn memory_mb(pid: u32, field: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?;
    Ok(kb / 1024.0)
}

pub(super) fn file_mb(path: &Path) -> f64 {
    std::fs::metadata(path).map_or(0.0, |m| m.len() as f64 / (1024.0 * 1024.0))
}

/// The `modelreg` binary of this build profile, beside the bench's own.
pub(super) fn modelreg_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let binary = exe
        .parent()
        .map(|dir| dir.join("modelreg"))
        .context("no directory for the bench binary")?;
    ensure!(
        binary.exists(),
        "{} is missing: build it with the bench (`cargo build [--release] -p bench -p modelreg`)",
        binary.display()
    );
    Ok(binary)
}
