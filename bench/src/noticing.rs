//! The slots scenario's "failure noticed" figure, measured where it can be: at the week's 900x a
//! tenth of a real second of scheduling delay on two busy cores is a virtual minute and a half,
//! which is the measurement's resolution rather than the operator's behaviour. Here ten datasets
//! (`startedBy: Operator`, one slot at 01:00) whose slot refresh fails run for 90 virtual minutes
//! at [`SCALE`]x, where the same delay is a few virtual seconds.

use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use crate::Bench;
use crate::clock::BenchClock;
use crate::cluster;
use crate::error::Result;
use crate::fixtures::{Tenant, TenantOptions};
use crate::operator::Operator;
use crate::sim::{LoggedRequest, Sim, SimRefresh};

/// Fast enough for a short run, slow enough that a real tenth of a second is 6 virtual seconds.
pub const SCALE: f64 = 60.0;
const DATASETS: usize = 10;
/// The seeded history's refreshes take 90 s, as the simulator's do here: the operator learns the
/// usual duration from them.
const REFRESH_SECONDS: u64 = 90;

/// Minutes from each failed slot refresh's end to the operator's next read of the history
/// (`None`: never read, or the slot's refresh did not fail).
pub async fn failure_noticed(bench: &Bench) -> Result<Vec<Option<f64>>> {
    let origin: Timestamp = "2025-01-06T00:00:00Z"
        .parse()
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let slot = origin + SignedDuration::from_hours(1);
    let end = slot + SignedDuration::from_mins(30);
    let mut tenant = Tenant::new(TenantOptions {
        datasets: DATASETS,
        xero_secrets: 1,
        days: powerbi_sim::DAYS.to_vec(),
        times: Vec::new(),
        start_time: origin,
        time_scale: SCALE,
        last_refresh: origin - SignedDuration::from_hours(6),
        refresh_duration_seconds: REFRESH_SECONDS,
    });
    for dataset in &mut tenant.datasets {
        dataset.times = vec!["01:00".into(), "13:00".into()];
    }
    tenant.started_by = "Operator";
    tenant.sim_config = lifted_xero_limits().into();
    let ns = cluster::namespace(&bench.plane, &bench.client, "bench-noticing").await?;
    cluster::create_tenant(&bench.client, &ns, &tenant).await?;
    let sim = Sim::start(&tenant).await?;
    let clock = BenchClock::new(origin, SCALE);
    clock.align(&sim).await?;
    for dataset in &tenant.datasets {
        sim.fail_next_refreshes(&dataset.id, 1).await?;
    }
    let mut operator = Operator::start(&bench.operator_config(
        &ns,
        &sim,
        "noticing",
        Vec::new(),
        Some((SCALE, clock.now())),
    ))?;
    println!(
        "[slots] failure noticing: {DATASETS} datasets, 90 virtual minutes at {SCALE}x ({:.0} s real)",
        clock.real(end.duration_since(clock.now())).as_secs_f64()
    );
    clock.sleep_until(slot).await;
    operator.check_alive()?;
    clock.sleep_until(end).await;
    operator.stop();
    let requests = sim.requests().await?;
    let histories = sim.histories().await?;
    let empty = Vec::new();
    Ok(tenant
        .datasets
        .iter()
        .map(|dataset| {
            let history = histories.get(&dataset.id).unwrap_or(&empty);
            noticed(history, &requests, &dataset.id, slot)
        })
        .collect())
}

/// Minutes from the end of the failed refresh started at or after `slot` to the first read of
/// the dataset's history after it.
fn noticed(
    history: &[SimRefresh],
    requests: &[LoggedRequest],
    dataset_id: &str,
    slot: Timestamp,
) -> Option<f64> {
    let failed = history
        .iter()
        .find(|r| r.start_time >= slot && r.status == "Failed")?
        .end_time?;
    let read = first_history_read(requests, dataset_id, failed)?;
    Some(read.duration_since(failed).as_secs_f64() / 60.0)
}

/// When a contender first read the dataset's refresh history at or after `after`.
pub fn first_history_read(
    requests: &[LoggedRequest],
    dataset_id: &str,
    after: Timestamp,
) -> Option<Timestamp> {
    let history_path = format!("/datasets/{dataset_id}/refreshes");
    requests
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with(&history_path))
        .map(|r| r.time)
        .find(|t| *t >= after)
}

/// The simulator's Xero limits lifted: the bench's datasets all read one organisation, whose
/// limits (60 calls a minute, 5,000 a day) would throttle them; real datasets each read their
/// own, and tests cover the limits.
pub fn lifted_xero_limits() -> serde_json::Map<String, serde_json::Value> {
    let mut config = serde_json::Map::new();
    config.insert("xeroOrganisationCallsPerMinute".into(), json!(1_000_000));
    config.insert("xeroOrganisationCallsPerDay".into(), json!(100_000_000));
    config
}
