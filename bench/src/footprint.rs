//! Scenario 4, footprint: idle memory with 0 and 10 XeroDatasets, start-up to ready on a warm
//! testbed, and the size of the static release binary the image ships.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::Bench;
use crate::cluster::{self, ReadyWatch};
use crate::error::Result;
use crate::fixtures::healthy_tenant;
use crate::heal::percentile;
use crate::operator::Operator;
use crate::report::Target;
use crate::sim::Sim;

const S: &str = "footprint";
const MIB: f64 = 1024.0 * 1024.0;
/// How long the operator sits idle before its memory is read.
const SETTLE: Duration = Duration::from_secs(5);
const STARTS: usize = 5;

/// Start-ups of the operator with nothing to reconcile.
struct Startups {
    /// Seconds from start to a 200 from /readyz, sorted.
    seconds: Vec<f64>,
    /// VmRSS [`SETTLE`] after the first start-up was ready, in MiB.
    idle_mib: f64,
}

/// The operator idle with 10 healthy datasets.
struct IdleTen {
    /// XeroDatasets Ready before the memory was read.
    reached: usize,
    idle_mib: f64,
    peak_mib: f64,
}

pub async fn run(bench: &mut Bench) -> Result<()> {
    let startups = startups(bench).await?;
    let ten = idle_with_ten(bench).await?;
    report_idle_and_startup(bench, &startups, &ten);
    let binary = static_binary(bench);
    let checked = check_static(&binary);
    report_static_binary(bench, &binary, &checked);
    bench.details.insert(
        S.to_owned(),
        json!({
            "idleRssMiB0": startups.idle_mib,
            "idleRssMiB10": ten.idle_mib,
            "startupSeconds": startups.seconds,
            "staticBinary": binary,
            "staticBinaryBytes": checked.ok(),
        }),
    );
    Ok(())
}

/// Starts the operator [`STARTS`] times with nothing to reconcile, timing each start-up to
/// ready; reads the idle memory once, after the first.
async fn startups(bench: &Bench) -> Result<Startups> {
    let empty = healthy_tenant(0, 1);
    let sim = Sim::start(&empty).await?;
    let namespace = cluster::namespace(&bench.plane, &bench.client, "bench-idle-0").await?;
    let mut seconds = Vec::new();
    let mut idle_mib = 0.0;
    for run in 0..STARTS {
        let config =
            bench.operator_config(&namespace, &sim, &format!("idle-0-{run}"), Vec::new(), None);
        let mut operator = Operator::start(&config)?;
        seconds.push(
            operator
                .wait_ready(&bench.http, Duration::from_secs(30))
                .await?
                .as_secs_f64(),
        );
        if run == 0 {
            tokio::time::sleep(SETTLE).await;
            idle_mib = operator.rss()? as f64 / MIB;
        }
        operator.stop();
    }
    seconds.sort_by(f64::total_cmp);
    Ok(Startups { seconds, idle_mib })
}

/// Reads the operator's memory [`SETTLE`] after 10 healthy datasets are Ready.
async fn idle_with_ten(bench: &Bench) -> Result<IdleTen> {
    let ten = healthy_tenant(10, 1);
    let sim = Sim::start(&ten).await?;
    let namespace = cluster::namespace(&bench.plane, &bench.client, "bench-idle-10").await?;
    cluster::create_tenant(&bench.client, &namespace, &ten).await?;
    let mut ready = ReadyWatch::start(&bench.client, &namespace).await?;
    let config = bench.operator_config(
        &namespace,
        &sim,
        "idle-10",
        Vec::new(),
        Some((1.0, sim.now().await?)),
    );
    let mut operator = Operator::start(&config)?;
    let reached = ready.wait_for(10, Duration::from_secs(60)).await;
    operator.check_alive()?;
    tokio::time::sleep(SETTLE).await;
    let idle_mib = operator.rss()? as f64 / MIB;
    let peak_mib = operator.peak_rss()? as f64 / MIB;
    operator.stop();
    Ok(IdleTen {
        reached,
        idle_mib,
        peak_mib,
    })
}

/// Records the idle memory with 0 and 10 objects and the start-up time to ready.
fn report_idle_and_startup(bench: &mut Bench, startups: &Startups, ten: &IdleTen) {
    bench.report.check(
        S,
        "idle RSS, 0 objects",
        Some(startups.idle_mib),
        "MiB",
        Target::LessThan(25.0),
        "VmRSS 5 s after ready",
    );
    bench.report.check(
        S,
        "idle RSS, 10 objects",
        (ten.reached == 10).then_some(ten.idle_mib),
        "MiB",
        Target::LessThan(25.0),
        &format!(
            "VmRSS 5 s after {}/10 Ready; peak {:.1} MiB",
            ten.reached, ten.peak_mib
        ),
    );
    let worst = startups.seconds.last().copied();
    bench.report.check(
        S,
        "start-up to ready (/readyz 200), worst of 5",
        worst,
        "s",
        Target::AtMost(2.0),
        &format!(
            "median {:.3} s; warm testbed, 0 objects",
            percentile(&startups.seconds, 50.0).unwrap_or(f64::NAN)
        ),
    );
}

/// Records the size of the static release binary, or why it does not qualify.
fn report_static_binary(bench: &mut Bench, binary: &Path, checked: &Result<u64, String>) {
    let (size, note) = match checked {
        Ok(size) => (
            Some(*size as f64 / MIB),
            format!("{}; static, runs --version", binary.display()),
        ),
        Err(why) => (None, why.clone()),
    };
    bench.report.check(
        S,
        "static release binary size (stripped)",
        size,
        "MiB",
        Target::LessThan(30.0),
        &note,
    );
}

/// `XERO_BENCH_STATIC_BINARY`, or where `hack/static-binary.sh` puts it.
fn static_binary(bench: &Bench) -> PathBuf {
    std::env::var_os("XERO_BENCH_STATIC_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            bench
                .root
                .join("target/x86_64-unknown-linux-gnu/release/xero-operator")
        })
}

/// The binary's size when it is static, stripped and runs; why not otherwise.
fn check_static(binary: &Path) -> Result<u64, String> {
    let size = std::fs::metadata(binary)
        .map_err(|e| {
            format!(
                "{}: {e}; build it with hack/static-binary.sh (make bench does)",
                binary.display()
            )
        })?
        .len();
    let ldd = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| format!("run ldd: {e}"))?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&ldd.stdout),
        String::from_utf8_lossy(&ldd.stderr)
    );
    if !(said.contains("not a dynamic executable") || said.contains("statically linked")) {
        return Err(format!("not static: ldd says {}", said.trim()));
    }
    let sections = Command::new("readelf")
        .args(["-S", "--wide"])
        .arg(binary)
        .output()
        .map_err(|e| format!("run readelf: {e}"))?;
    if String::from_utf8_lossy(&sections.stdout).contains(".symtab") {
        return Err("not stripped: it has a .symtab section".into());
    }
    let version = Command::new(binary)
        .arg("--version")
        .env_clear()
        .output()
        .map_err(|e| format!("run {} --version: {e}", binary.display()))?;
    if !version.status.success() {
        return Err(format!(
            "{} --version failed: {}",
            binary.display(),
            version.status
        ));
    }
    Ok(size)
}
