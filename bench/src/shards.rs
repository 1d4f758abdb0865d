//! Scenario 5, shards: two operators with `--watch-label-selector` split N XeroDatasets (half
//! labelled shard a, half shard b); each must reconcile its half and no object may be
//! reconciled by both.

use serde_json::json;

use crate::Bench;
use crate::cluster::{self, ReadyWatch};
use crate::error::Result;
use crate::fixtures::{SHARD_LABEL, healthy_tenant};
use crate::operator::Operator;
use crate::report::Target;
use crate::sim::Sim;

/// The shards, by the value of [`SHARD_LABEL`]; each gets an operator of its own.
const SHARDS: [&str; 2] = ["a", "b"];

pub async fn run(bench: &mut Bench, n: usize) -> Result<()> {
    let scenario = format!("shards N={n}");
    let s = scenario.as_str();
    let tenant = healthy_tenant(n, 4);
    let sim = Sim::start(&tenant).await?;
    let namespace =
        cluster::namespace(&bench.plane, &bench.client, &format!("bench-shards-{n}")).await?;
    println!("[{s}] creating {n} XeroDatasets in {namespace}, half in each shard");
    cluster::create_tenant(&bench.client, &namespace, &tenant).await?;

    let mut ready = ReadyWatch::start(&bench.client, &namespace).await?;
    let mut operators = start_operators(bench, &sim, &namespace, n).await?;
    let started = std::time::Instant::now();
    let timeout = cluster::ready_timeout(n);
    let reached = ready
        .wait_all(n, timeout, &mut operators, started, s)
        .await?;
    let wall = started.elapsed().as_secs_f64();
    let mut handled = Vec::new();
    for (shard, operator) in SHARDS.into_iter().zip(&operators) {
        handled.push((shard, reconciled(&bench.http, shard, operator).await?));
    }
    for operator in operators {
        operator.stop();
    }
    report(bench, s, n, reached, wall, &handled);
    Ok(())
}

/// Starts one operator per shard, each watching only the XeroDatasets labelled with its shard.
async fn start_operators(
    bench: &Bench,
    sim: &Sim,
    namespace: &str,
    n: usize,
) -> Result<Vec<Operator>> {
    let clock_start = sim.now().await?;
    let mut operators = Vec::new();
    for shard in SHARDS {
        let flags = vec![
            "--watch-label-selector".to_owned(),
            format!("{SHARD_LABEL}={shard}"),
        ];
        let config = bench.operator_config(
            namespace,
            sim,
            &format!("shards-{n}-{shard}"),
            flags,
            Some((1.0, clock_start)),
        );
        operators.push(Operator::start(&config)?);
    }
    Ok(operators)
}

/// How many XeroDatasets the operator of `shard` reconciled: the sum of its
/// xero_operator_datasets gauge, scraped from its metrics endpoint.
async fn reconciled(http: &reqwest::Client, shard: &str, operator: &Operator) -> Result<f64> {
    let text = http
        .get(format!("http://{}/metrics", operator.metrics_addr))
        .send()
        .await
        .map_err(|e| crate::error::BenchError(format!("scrape shard {shard}: {e}")))?
        .text()
        .await
        .map_err(|e| crate::error::BenchError(format!("scrape shard {shard}: {e}")))?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("xero_operator_datasets{"))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum())
}

/// Records whether the shards made all `n` Ready together, each reconciling its half and no
/// object reconciled by both.
fn report(
    bench: &mut Bench,
    s: &str,
    n: usize,
    reached: usize,
    wall: f64,
    handled: &[(&str, f64)],
) {
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
    for (shard, count) in handled {
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
        s.to_owned(),
        json!({"objects": n, "readyObjects": reached, "wallSeconds": wall,
               "handled": handled.iter().map(|(s, c)| json!({"shard": s, "objects": c})).collect::<Vec<_>>()}),
    );
}
