//! Scenario 1, scale: N XeroDatasets sharing a few Xero Secrets, created before the operator
//! starts; from operator start until every one is Ready.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use crate::Bench;
use crate::cluster::{self, ReadyWatch};
use crate::error::Result;
use crate::fixtures::healthy_tenant;
use crate::operator::Operator;
use crate::report::Target;
use crate::sim::{CallCounts, Sim};

const MIB: f64 = 1024.0 * 1024.0;

/// What the operator's first reconcile of every XeroDataset cost.
struct FirstReconcile {
    /// XeroDatasets Ready when the wait ended.
    reached: usize,
    /// How long the wait was allowed to take.
    timeout: Duration,
    /// Seconds from operator start to the end of the wait.
    wall: f64,
    cpu: f64,
    peak_mib: f64,
    calls: CallCounts,
    /// The API server's requests during the reconcile, per `VERB resource`.
    api: BTreeMap<String, f64>,
    operator_log: PathBuf,
}

pub async fn run(bench: &mut Bench, n: usize) -> Result<()> {
    let scenario = format!("scale N={n}");
    let s = scenario.as_str();
    let tenant = healthy_tenant(n, 4);
    let sim = Sim::start(&tenant).await?;
    let namespace =
        cluster::namespace(&bench.plane, &bench.client, &format!("bench-scale-{n}")).await?;
    println!("[{s}] creating {n} XeroDatasets in {namespace}");
    let created = cluster::create_tenant(&bench.client, &namespace, &tenant).await?;
    bench.report.info(
        s,
        "creation of the XeroDatasets",
        created.as_secs_f64(),
        "s",
        "before the operator starts; not part of any target",
    );
    let first = first_reconcile(bench, &sim, &namespace, n, s).await?;
    report(bench, s, n, &first);
    bench.details.insert(
        scenario.clone(),
        json!({
            "objects": n,
            "readyObjects": first.reached,
            "creationSeconds": created.as_secs_f64(),
            "wallSeconds": first.wall,
            "cpuSeconds": first.cpu,
            "peakRssMiB": first.peak_mib,
            "calls": first.calls.by_service,
            "powerbiCalls": first.calls.powerbi_by_kind,
            "apiserverRequests": cluster::delta_json(&first.api),
            "operatorLog": first.operator_log,
        }),
    );
    Ok(())
}

/// Starts the operator on the `n` XeroDatasets in `namespace`, waits until all are Ready (or
/// the time is up) and measures what that cost it, the simulator and the API server.
async fn first_reconcile(
    bench: &Bench,
    sim: &Sim,
    namespace: &str,
    n: usize,
    s: &str,
) -> Result<FirstReconcile> {
    let mut ready = ReadyWatch::start(&bench.client, namespace).await?;
    let api_before = cluster::apiserver_requests(&bench.client).await?;
    let clock_start = sim.now().await?;
    let config = bench.operator_config(
        namespace,
        sim,
        &format!("scale-{n}"),
        Vec::new(),
        Some((1.0, clock_start)),
    );
    let mut operator = Operator::start(&config)?;
    println!(
        "[{s}] operator started (pid {}); waiting for {n} Ready",
        operator.pid()
    );
    let timeout = cluster::ready_timeout(n);
    let started = operator.started;
    let reached = ready
        .wait_all(n, timeout, std::slice::from_mut(&mut operator), started, s)
        .await?;
    let wall = operator.started.elapsed().as_secs_f64();
    let cpu = operator.cpu_seconds()?;
    let peak_mib = operator.peak_rss()? as f64 / MIB;
    let api_after = cluster::apiserver_requests(&bench.client).await?;
    operator.stop();
    Ok(FirstReconcile {
        reached,
        timeout,
        wall,
        cpu,
        peak_mib,
        calls: CallCounts::of(&sim.requests().await?),
        api: cluster::delta(&api_before, &api_after),
        operator_log: config.log,
    })
}

/// Records the figures of the first reconcile of `n` objects.
fn report(bench: &mut Bench, s: &str, n: usize, first: &FirstReconcile) {
    let all = first.reached == n;
    let not_all = format!(
        "only {}/{n} Ready after {:.0} s",
        first.reached,
        first.timeout.as_secs_f64()
    );
    bench.report.check(
        s,
        "operator start to all Ready",
        all.then_some(first.wall),
        "s",
        Target::AtMost(60.0),
        if all { "" } else { &not_all },
    );
    bench.report.check(
        s,
        "operator CPU per object (first reconcile)",
        Some(first.cpu * 1000.0 / n as f64),
        "ms",
        Target::LessThan(1.0),
        &format!("{:.2} s CPU in all", first.cpu),
    );
    bench.report.check(
        s,
        "operator peak RSS",
        Some(first.peak_mib),
        "MiB",
        Target::LessThan(128.0),
        "VmHWM and 50 ms VmRSS samples",
    );
    let per = n as f64;
    let calls = &first.calls;
    bench.report.info(
        s,
        "Power BI calls per object",
        calls.service("powerbi") as f64 / per,
        "calls",
        &format!(
            "{} in all: {}",
            calls.service("powerbi"),
            calls.powerbi_breakdown(1.0)
        ),
    );
    bench.report.info(
        s,
        "Entra ID token requests",
        calls.service("entra") as f64,
        "calls",
        "in all",
    );
    bench.report.info(
        s,
        "Xero calls",
        calls.xero() as f64,
        "calls",
        "in all (identity and API)",
    );
    let api_total: f64 = first.api.values().sum();
    bench.report.info(
        s,
        "API-server requests per object",
        api_total / per,
        "requests",
        &format!(
            "apiserver_request_total delta, {api_total:.0} in all: {}",
            cluster::top(&first.api, 6)
        ),
    );
}
