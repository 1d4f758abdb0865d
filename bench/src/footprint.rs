//! Scenario 4, footprint: idle memory with 0 and 10 XeroDatasets, start-up to ready on a warm
//! testbed, and the size of the static release binary the image ships.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::Bench;
use crate::cluster::{self, ReadyWatch};
use crate::error::Result;
use crate::fixtures::{Tenant, TenantOptions, monday};
use crate::heal::percentile;
use crate::operator::Operator;
use crate::report::Target;
use crate::sim::Sim;

const S: &str = "footprint";
const MIB: f64 = 1024.0 * 1024.0;
/// How long the operator sits idle before its memory is read.
const SETTLE: Duration = Duration::from_secs(5);
const STARTS: usize = 5;

fn tenant(datasets: usize) -> Tenant {
    Tenant::new(TenantOptions {
        datasets,
        xero_secrets: 1,
        days: vec!["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"],
        times: vec!["06:00", "12:30"],
        start_time: monday("08:00"),
        time_scale: 1.0,
        last_refresh: monday("06:00"),
        refresh_duration_seconds: 2,
    })
}

pub async fn run(bench: &mut Bench) -> Result<()> {
    // Start-up to ready, and idle memory, with nothing to reconcile.
    let empty = tenant(0);
    let sim = Sim::start(&empty).await?;
    let namespace = cluster::namespace(&bench.plane, &bench.client, "bench-idle-0").await?;
    let mut starts = Vec::new();
    let mut idle_empty = 0.0;
    for run in 0..STARTS {
        let config =
            bench.operator_config(&namespace, &sim, &format!("idle-0-{run}"), Vec::new(), None);
        let mut operator = Operator::start(&config)?;
        starts.push(
            operator
                .wait_ready(&bench.http, Duration::from_secs(30))
                .await?
                .as_secs_f64(),
        );
        if run == 0 {
            tokio::time::sleep(SETTLE).await;
            idle_empty = operator.rss()? as f64 / MIB;
        }
        operator.stop();
    }
    starts.sort_by(f64::total_cmp);

    // Idle memory with 10 healthy datasets, once they are Ready.
    let ten = tenant(10);
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
    let idle_ten = operator.rss()? as f64 / MIB;
    let peak_ten = operator.peak_rss()? as f64 / MIB;
    operator.stop();

    bench.report.check(
        S,
        "idle RSS, 0 objects",
        Some(idle_empty),
        "MiB",
        Target::LessThan(25.0),
        "VmRSS 5 s after ready",
    );
    bench.report.check(
        S,
        "idle RSS, 10 objects",
        (reached == 10).then_some(idle_ten),
        "MiB",
        Target::LessThan(25.0),
        &format!("VmRSS 5 s after {reached}/10 Ready; peak {peak_ten:.1} MiB"),
    );
    let worst = starts.last().copied();
    bench.report.check(
        S,
        "start-up to ready (/readyz 200), worst of 5",
        worst,
        "s",
        Target::AtMost(2.0),
        &format!(
            "median {:.3} s; warm testbed, 0 objects",
            percentile(&starts, 50.0).unwrap_or(f64::NAN)
        ),
    );
    let binary = static_binary(bench);
    let checked = check_static(&binary);
    let (size, note) = match &checked {
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
    bench.details.insert(
        S.to_owned(),
        json!({
            "idleRssMiB0": idle_empty,
            "idleRssMiB10": idle_ten,
            "startupSeconds": starts,
            "staticBinary": binary,
            "staticBinaryBytes": checked.ok(),
        }),
    );
    Ok(())
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
