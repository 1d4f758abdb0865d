//! Scenario 3, heal latency: 100 scheduled refreshes fail on expired Xero credentials right
//! after a slot, while the operator watches for the slot's outcome. Measured from the failure
//! becoming visible in the simulator (the failed refresh's end) to the recovery refresh being
//! accepted (its POST in the simulator's request log). Real time (no clock scaling).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use crate::Bench;
use crate::cluster::{self, ReadyWatch};
use crate::error::{Context as _, Result};
use crate::fixtures::{Tenant, TenantOptions, WEEKDAYS, monday};
use crate::operator::Operator;
use crate::report::Target;
use crate::sim::Sim;

const DATASETS: usize = 100;
/// The operator's `--refresh-poll-interval` (its default).
const POLL_INTERVAL: Duration = Duration::from_secs(15);
/// Seconds a failing refresh runs before its failure shows.
const RUN_SECONDS: u64 = 3;
/// Failures are injected from 2 s after the slot, one every 100 ms, so that they become visible
/// at every phase of the operator's polls rather than all at once.
const FIRST_INJECTION: SignedDuration = SignedDuration::from_secs(2);
const INJECTION_GAP: Duration = Duration::from_millis(100);
const S: &str = "heal latency (100 failures)";

pub async fn run(bench: &mut Bench) -> Result<()> {
    let slot = monday("06:00");
    let tenant = Tenant::new(TenantOptions {
        datasets: DATASETS,
        xero_secrets: 4,
        days: WEEKDAYS.to_vec(),
        times: vec!["06:00"],
        // Inside the credential window (10 minutes before the slot), 30 s before the slot.
        start_time: slot - SignedDuration::from_secs(30),
        time_scale: 1.0,
        last_refresh: "2025-01-03T06:00:00Z".parse().context("timestamp")?,
        refresh_duration_seconds: 2,
    });
    let sim = Sim::start(&tenant).await?;
    let namespace = cluster::namespace(&bench.plane, &bench.client, "bench-heal").await?;
    cluster::create_tenant(&bench.client, &namespace, &tenant).await?;
    let mut ready = ReadyWatch::start(&bench.client, &namespace).await?;
    let flags = vec![
        "--refresh-poll-interval".to_owned(),
        format!("{}s", POLL_INTERVAL.as_secs()),
    ];
    let config = bench.operator_config(
        &namespace,
        &sim,
        "heal",
        flags,
        Some((1.0, sim.now().await?)),
    );
    let mut operator = Operator::start(&config)?;
    let reached = ready.wait_for(DATASETS, Duration::from_secs(25)).await;
    operator.check_alive()?;
    println!("[heal] {reached}/{DATASETS} Ready before the slot; injecting failures after 06:00");

    let visible = inject_failures(&sim, &tenant, slot).await?;
    let latencies = wait_for_recoveries(&sim, &mut operator, &visible).await?;
    operator.stop();
    let mut sorted: Vec<f64> = latencies.values().copied().collect();
    sorted.sort_by(f64::total_cmp);
    report(bench, &sorted, &config.log);
    Ok(())
}

/// Fails every dataset's scheduled refresh on expired credentials, from [`FIRST_INJECTION`]
/// after `slot` and [`INJECTION_GAP`] apart. Returns when each failure becomes visible, by the
/// path a recovery refresh of its dataset is POSTed to.
async fn inject_failures(
    sim: &Sim,
    tenant: &Tenant,
    slot: Timestamp,
) -> Result<HashMap<String, Timestamp>> {
    let mut visible: HashMap<String, Timestamp> = HashMap::new();
    let first = slot + FIRST_INJECTION;
    let wait = first.duration_since(sim.now().await?);
    tokio::time::sleep(Duration::try_from(wait).unwrap_or_default()).await;
    for d in &tenant.datasets {
        let start = sim
            .scheduled_refresh(&d.id, "CredentialsExpired", RUN_SECONDS)
            .await?;
        let path = format!(
            "/v1.0/myorg/groups/{}/datasets/{}/refreshes",
            d.workspace_id, d.id
        );
        visible.insert(path, start + SignedDuration::from_secs(RUN_SECONDS as i64));
        tokio::time::sleep(INJECTION_GAP).await;
    }
    Ok(visible)
}

/// Reads the simulator's request log every second until every failure in `visible` has a
/// recovery refresh after it, or a minute after the last failure shows. Returns the seconds
/// from each failure becoming visible to its recovery, by refresh path.
async fn wait_for_recoveries(
    sim: &Sim,
    operator: &mut Operator,
    visible: &HashMap<String, Timestamp>,
) -> Result<HashMap<String, f64>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(RUN_SECONDS + 60);
    let mut latencies: HashMap<String, f64> = HashMap::new();
    loop {
        for r in sim.requests().await? {
            if r.method != "POST" || latencies.contains_key(&r.path) {
                continue;
            }
            if let Some(seen) = visible.get(&r.path).filter(|v| r.time >= **v) {
                latencies.insert(r.path.clone(), r.time.duration_since(*seen).as_secs_f64());
            }
        }
        if latencies.len() == DATASETS || tokio::time::Instant::now() > deadline {
            return Ok(latencies);
        }
        operator.check_alive()?;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Records how many failures healed and how fast, from the `sorted` heal latencies.
fn report(bench: &mut Bench, sorted: &[f64], operator_log: &Path) {
    let healed = sorted.len();
    let all = healed == DATASETS;
    let target = POLL_INTERVAL.as_secs_f64() + 2.0;
    let note = format!("{healed}/{DATASETS} healed within 60 s of the last failure");
    bench
        .report
        .info(S, "failures healed", healed as f64, "of 100", &note);
    bench.report.info(
        S,
        "heal latency p50",
        percentile(sorted, 50.0).unwrap_or(f64::NAN),
        "s",
        "",
    );
    bench.report.check(
        S,
        "heal latency p99",
        if all { percentile(sorted, 99.0) } else { None },
        "s",
        Target::AtMost(target),
        &format!("poll interval {}s + 2 s; {note}", POLL_INTERVAL.as_secs()),
    );
    bench.details.insert(
        S.to_owned(),
        json!({
            "pollIntervalSeconds": POLL_INTERVAL.as_secs(),
            "healed": healed,
            "latenciesSeconds": sorted,
            "operatorLog": operator_log,
        }),
    );
}

/// The nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), Some(50.0));
        assert_eq!(percentile(&values, 99.0), Some(99.0));
        assert_eq!(percentile(&[3.0], 99.0), Some(3.0));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
