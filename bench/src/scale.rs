//! Scenario 1, scale: N XeroDatasets sharing a few Xero Secrets, created before the operator
//! starts; from operator start until every one is Ready.

use std::time::Duration;

use serde_json::json;

use crate::Bench;
use crate::cluster::{self, ReadyWatch};
use crate::error::Result;
use crate::fixtures::{Tenant, TenantOptions, monday};
use crate::operator::Operator;
use crate::report::Target;
use crate::sim::{CallCounts, Sim};

const MIB: f64 = 1024.0 * 1024.0;

pub async fn run(bench: &mut Bench, n: usize) -> Result<()> {
    let scenario = format!("scale N={n}");
    let s = scenario.as_str();
    // Monday 08:00: between the 06:00 and 12:30 slots and outside their credential windows, the
    // common case of an operator (re)start: every dataset is read and found healthy.
    let tenant = Tenant::new(TenantOptions {
        datasets: n,
        xero_secrets: 4,
        days: vec!["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"],
        times: vec!["06:00", "12:30"],
        start_time: monday("08:00"),
        time_scale: 1.0,
        last_refresh: monday("06:00"),
        refresh_duration_seconds: 2,
    });
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

    let mut ready = ReadyWatch::start(&bench.client, &namespace).await?;
    let api_before = cluster::apiserver_requests(&bench.client).await?;
    let clock_start = sim.now().await?;
    let config = bench.operator_config(
        &namespace,
        &sim,
        &format!("scale-{n}"),
        Vec::new(),
        Some((1.0, clock_start)),
    );
    let mut operator = Operator::start(&config)?;
    println!(
        "[{s}] operator started (pid {}); waiting for {n} Ready",
        operator.pid()
    );
    let timeout = Duration::from_secs(120) + Duration::from_millis(30 * n as u64);
    let mut reached = 0;
    let deadline = tokio::time::Instant::now() + timeout;
    while reached < n && tokio::time::Instant::now() < deadline {
        reached = ready.wait_for(n, Duration::from_secs(5)).await;
        operator.check_alive()?;
        println!(
            "[{s}]   {reached}/{n} Ready after {:.1} s",
            operator.started.elapsed().as_secs_f64()
        );
    }
    let wall = operator.started.elapsed().as_secs_f64();
    let cpu = operator.cpu_seconds()?;
    let peak = operator.peak_rss()? as f64 / MIB;
    let api_after = cluster::apiserver_requests(&bench.client).await?;
    operator.stop();
    let calls = CallCounts::of(&sim.requests().await?);
    let api = cluster::delta(&api_before, &api_after);
    let api_total: f64 = api.values().sum();
    let all = reached == n;
    let not_all = format!(
        "only {reached}/{n} Ready after {:.0} s",
        timeout.as_secs_f64()
    );

    bench.report.check(
        s,
        "operator start to all Ready",
        all.then_some(wall),
        "s",
        Target::AtMost(60.0),
        if all { "" } else { &not_all },
    );
    bench.report.check(
        s,
        "operator CPU per object (first reconcile)",
        Some(cpu * 1000.0 / n as f64),
        "ms",
        Target::LessThan(1.0),
        &format!("{cpu:.2} s CPU in all"),
    );
    bench.report.check(
        s,
        "operator peak RSS",
        Some(peak),
        "MiB",
        Target::LessThan(128.0),
        "VmHWM and 50 ms VmRSS samples",
    );
    let per = n as f64;
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
    bench.report.info(
        s,
        "API-server requests per object",
        api_total / per,
        "requests",
        &format!(
            "apiserver_request_total delta, {api_total:.0} in all: {}",
            cluster::top(&api, 6)
        ),
    );
    bench.details.insert(
        scenario.clone(),
        json!({
            "objects": n,
            "readyObjects": reached,
            "creationSeconds": created.as_secs_f64(),
            "wallSeconds": wall,
            "cpuSeconds": cpu,
            "peakRssMiB": peak,
            "calls": calls.by_service,
            "powerbiCalls": calls.powerbi_by_kind,
            "apiserverRequests": cluster::delta_json(&api),
            "operatorLog": config.log,
        }),
    );
    Ok(())
}
