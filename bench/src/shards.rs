//! Scenario 5, shards: two operators with `--watch-label-selector` split N XeroDatasets (half
//! labelled shard a, half shard b); each must reconcile its half and no object may be
//! reconciled by both.

use std::time::Duration;

use serde_json::json;

use crate::Bench;
use crate::cluster::{self, ReadyWatch};
use crate::error::Result;
use crate::fixtures::{SHARD_LABEL, Tenant, TenantOptions, monday};
use crate::operator::Operator;
use crate::report::Target;
use crate::sim::Sim;

pub async fn run(bench: &mut Bench, n: usize) -> Result<()> {
    let scenario = format!("shards N={n}");
    let s = scenario.as_str();
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
        cluster::namespace(&bench.plane, &bench.client, &format!("bench-shards-{n}")).await?;
    println!("[{s}] creating {n} XeroDatasets in {namespace}, half in each shard");
    cluster::create_tenant(&bench.client, &namespace, &tenant).await?;

    let mut ready = ReadyWatch::start(&bench.client, &namespace).await?;
    let clock_start = sim.now().await?;
    let mut operators = Vec::new();
    for shard in ["a", "b"] {
        let flags = vec![
            "--watch-label-selector".to_owned(),
            format!("{SHARD_LABEL}={shard}"),
        ];
        let config = bench.operator_config(
            &namespace,
            &sim,
            &format!("shards-{n}-{shard}"),
            flags,
            Some((1.0, clock_start)),
        );
        operators.push((shard, Operator::start(&config)?));
    }
    let started = std::time::Instant::now();
    let timeout = Duration::from_secs(120) + Duration::from_millis(30 * n as u64);
    let mut reached = 0;
    while reached < n && started.elapsed() < timeout {
        reached = ready.wait_for(n, Duration::from_secs(5)).await;
        for (_, operator) in &mut operators {
            operator.check_alive()?;
        }
        println!(
            "[{s}]   {reached}/{n} Ready after {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    let wall = started.elapsed().as_secs_f64();

    // Each operator counts the XeroDatasets it reconciled in xero_operator_datasets.
    let mut handled = Vec::new();
    for (shard, operator) in &operators {
        let text = bench
            .http
            .get(format!("http://{}/metrics", operator.metrics_addr))
            .send()
            .await
            .map_err(|e| crate::error::BenchError(format!("scrape shard {shard}: {e}")))?
            .text()
            .await
            .map_err(|e| crate::error::BenchError(format!("scrape shard {shard}: {e}")))?;
        let count: f64 = text
            .lines()
            .filter(|l| l.starts_with("xero_operator_datasets{"))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
            .sum();
        handled.push((*shard, count));
    }
    for (_, operator) in operators {
        operator.stop();
    }
    let half = (n / 2) as f64;
    let all = reached == n;
    bench.report.check(
        s,
        "both shards: start to all Ready",
        all.then_some(wall),
        "s",
        Target::AtMost(60.0),
        &format!("{reached}/{n} Ready"),
    );
    for (shard, count) in &handled {
        bench.report.check(
            s,
            &format!("objects reconciled by shard {shard}"),
            Some(*count),
            "objects",
            Target::Exactly(half),
            "from the operator's xero_operator_datasets gauge",
        );
    }
    let overlap = handled.iter().map(|(_, c)| c).sum::<f64>() - n as f64;
    bench.report.check(
        s,
        "objects reconciled by both shards",
        Some(overlap.max(0.0)),
        "objects",
        Target::AtMost(0.0),
        "sum of both shards minus N",
    );
    bench.details.insert(
        scenario.clone(),
        json!({"objects": n, "readyObjects": reached, "wallSeconds": wall,
               "handled": handled.iter().map(|(s, c)| json!({"shard": s, "objects": c})).collect::<Vec<_>>()}),
    );
    Ok(())
}
