//! The operator under test: the release binary as a subprocess, its /readyz, and its CPU time
//! and memory read from /proc while it runs.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::error::{Context as _, Result, fail};

/// How the operator is started.
#[derive(Debug, Clone)]
pub struct OperatorConfig {
    pub binary: PathBuf,
    pub kubeconfig: PathBuf,
    pub namespace: String,
    pub sim_url: String,
    pub log: PathBuf,
    /// Extra flags, e.g. `--refresh-poll-interval 15s`.
    pub flags: Vec<String>,
    /// `--time-scale` and `--clock-start`, when the clock is not real time.
    pub clock: Option<(f64, Timestamp)>,
}

/// A running operator; killed when dropped.
pub struct Operator {
    child: Child,
    pub started: Instant,
    pub metrics_addr: SocketAddr,
    sampler: Option<Sampler>,
}

impl Operator {
    pub fn start(config: &OperatorConfig) -> Result<Operator> {
        let metrics_addr = free_port()?;
        if let Some(dir) = config.log.parent() {
            std::fs::create_dir_all(dir).context(format!("create {}", dir.display()))?;
        }
        let out = std::fs::File::create(&config.log)
            .context(format!("create {}", config.log.display()))?;
        let err = out.try_clone().context("open the operator log")?;
        let mut command = Command::new(&config.binary);
        command
            .args(["run", "--watch-namespaces", &config.namespace])
            .args(["--metrics-addr", &metrics_addr.to_string()])
            .args(&config.flags)
            .env("KUBECONFIG", &config.kubeconfig)
            .env("XERO_OPERATOR_POWERBI_API_URL", &config.sim_url)
            .env("XERO_OPERATOR_AUTHORITY_HOST", &config.sim_url)
            .env("XERO_OPERATOR_XERO_IDENTITY_URL", &config.sim_url)
            .env("XERO_OPERATOR_XERO_API_URL", &config.sim_url)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        if let Some((scale, start)) = config.clock {
            command
                .args(["--time-scale", &scale.to_string()])
                .args(["--clock-start", &start.to_string()]);
        }
        let started = Instant::now();
        let child = command
            .spawn()
            .context(format!("start {}", config.binary.display()))?;
        let sampler = Sampler::start(child.id());
        Ok(Operator {
            child,
            started,
            metrics_addr,
            sampler: Some(sampler),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails when the operator has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => fail(format!("the operator exited early: {status}")),
            Err(err) => fail(format!("the operator's status: {err}")),
        }
    }

    /// Polls /readyz until it answers 200; returns the time since start.
    pub async fn wait_ready(
        &mut self,
        http: &reqwest::Client,
        within: Duration,
    ) -> Result<Duration> {
        let url = format!("http://{}/readyz", self.metrics_addr);
        let deadline = Instant::now() + within;
        loop {
            if let Ok(response) = http.get(&url).send().await
                && response.status().is_success()
            {
                return Ok(self.started.elapsed());
            }
            self.check_alive()?;
            if Instant::now() > deadline {
                return fail(format!("the operator was not ready within {within:?}"));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// CPU seconds (user + system) used so far.
    pub fn cpu_seconds(&self) -> Result<f64> {
        proc_cpu_seconds(self.pid())
    }

    /// The resident set size now, in bytes.
    pub fn rss(&self) -> Result<u64> {
        proc_status_kib(self.pid(), "VmRSS").map(|kib| kib * 1024)
    }

    /// The peak resident set size: the larger of the kernel's high-water mark and the sampled
    /// maximum, in bytes.
    pub fn peak_rss(&self) -> Result<u64> {
        let hwm = proc_status_kib(self.pid(), "VmHWM")? * 1024;
        let sampled = self.sampler.as_ref().map_or(0, Sampler::peak);
        Ok(hwm.max(sampled))
    }

    /// Stops the operator (SIGKILL: nothing of its shutdown is measured).
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        if let Some(sampler) = self.sampler.take() {
            sampler.task.abort();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Samples VmRSS every 50 ms.
struct Sampler {
    peak: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let peak = Arc::new(AtomicU64::new(0));
        let max = peak.clone();
        let task = tokio::spawn(async move {
            while let Ok(kib) = proc_status_kib(pid, "VmRSS") {
                max.fetch_max(kib * 1024, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Sampler { peak, task }
    }

    fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

/// A `kB` field of /proc/PID/status.
fn proc_status_kib(pid: u32, field: &str) -> Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context(format!("read /proc/{pid}/status"))?;
    parse_status_kib(&text, field)
        .ok_or_else(|| crate::error::BenchError(format!("no {field} in /proc/{pid}/status")))
}

fn parse_status_kib(text: &str, field: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn proc_cpu_seconds(pid: u32) -> Result<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .context(format!("read /proc/{pid}/stat"))?;
    parse_stat_ticks(&text)
        .map(|ticks| ticks as f64 / clock_ticks_per_second())
        .ok_or_else(|| crate::error::BenchError(format!("cannot parse /proc/{pid}/stat")))
}

/// utime + stime from /proc/PID/stat (fields 14 and 15; the command name may hold spaces).
fn parse_stat_ticks(text: &str) -> Option<u64> {
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

fn free_port() -> Result<SocketAddr> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .context("find a free loopback port")?;
    listener.local_addr().context("read a loopback port")
}

/// The operator binary: `XERO_BENCH_OPERATOR`, or the release build.
pub fn operator_binary(root: &Path) -> Result<PathBuf> {
    let path = std::env::var_os("XERO_BENCH_OPERATOR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/release/xero-operator"));
    if !path.is_file() {
        return fail(format!(
            "no operator binary at {}; build it with `cargo build --release --features bench-clock --bin xero-operator` (make bench does)",
            path.display()
        ));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_and_status_fields_are_read() {
        let stat = "1234 (xero (op) erator) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_stat_ticks(stat), Some(300));
        let status = "Name:\txero-operator\nVmHWM:\t   20480 kB\nVmRSS:\t   16384 kB\n";
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(16384));
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(20480));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
    }

    #[test]
    fn this_process_can_be_measured() {
        let pid = std::process::id();
        assert!(proc_cpu_seconds(pid).is_ok());
        assert!(proc_status_kib(pid, "VmRSS").expect("rss") > 0);
    }
}
