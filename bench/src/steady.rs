//! Scenario 2, steady state: 100 healthy datasets with two slots a day over one simulated day,
//! the operator beside the naive poller, each against its own simulator, on one virtual clock.
//! The bench plays Power BI's scheduler: at each slot it runs every dataset's scheduled refresh
//! in both simulators, and at the 12:30 slot some of them fail.

use std::path::Path;
use std::time::Duration;

use futures::StreamExt as _;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use crate::Bench;
use crate::clock::BenchClock;
use crate::cluster::{self, ReadyWatch};
use crate::error::{Context as _, Result};
use crate::fixtures::{Dataset, Tenant, TenantOptions, WEEKDAYS, monday};
use crate::operator::Operator;
use crate::poller::Poller;
use crate::report::Target;
use crate::sim::{CallCounts, LoggedRequest, Sim};

const DATASETS: usize = 100;
/// Datasets whose 12:30 scheduled refresh fails.
const FAILING: usize = 10;
/// Virtual seconds a refresh runs.
const REFRESH_SECONDS: u64 = 300;
const S: &str = "steady state (1 simulated day)";

/// What one side of the comparison (the operator or the poller) did over the day.
struct Side {
    calls: CallCounts,
    /// Per failing dataset, the virtual minutes to its recovery refresh.
    delays: Vec<Option<f64>>,
}

impl Side {
    /// Counts the calls in `sim`'s request log and finds the recoveries of `failing`, whose
    /// failed refreshes started at `starts`.
    async fn measure(sim: &Sim, failing: &[Dataset], starts: &[Timestamp]) -> Result<Side> {
        let log = sim.requests().await?;
        Ok(Side {
            calls: CallCounts::of(&log),
            delays: detection_delays(&log, failing, starts),
        })
    }
}

/// The day's outcome on both sides.
struct Day {
    operator: Side,
    poller: Side,
    /// Datasets the poller healed.
    poller_heals: usize,
    /// XeroDatasets Ready at the end of the day.
    ready_at_end: usize,
}

pub async fn run(bench: &mut Bench, scale: f64) -> Result<()> {
    let origin = monday("00:00");
    let tenant = Tenant::new(TenantOptions {
        datasets: DATASETS,
        xero_secrets: 4,
        days: WEEKDAYS.to_vec(),
        times: vec!["06:00", "12:30"],
        start_time: origin,
        time_scale: scale,
        last_refresh: "2025-01-03T12:30:00Z".parse().context("timestamp")?,
        refresh_duration_seconds: REFRESH_SECONDS,
    });
    // The cluster side first, so that the virtual day starts when the operator does.
    let namespace = cluster::namespace(&bench.plane, &bench.client, "bench-steady").await?;
    cluster::create_tenant(&bench.client, &namespace, &tenant).await?;
    let ready = ReadyWatch::start(&bench.client, &namespace).await?;
    let clock = BenchClock::new(origin, scale);
    let operator_sim = Sim::start(&tenant).await?;
    let poller_sim = Sim::start(&tenant).await?;
    let skew = [
        clock.align(&operator_sim).await?,
        clock.align(&poller_sim).await?,
    ];

    let config = bench.operator_config(
        &namespace,
        &operator_sim,
        "steady",
        Vec::new(),
        Some((scale, clock.now())),
    );
    let mut operator = Operator::start(&config)?;
    let poller = Poller::new(poller_sim.url(), poller_sim.http().clone(), tenant.clone());
    let end = origin + SignedDuration::from_hours(24);
    println!(
        "[steady] one virtual day at {scale}x ({:.0} s real); operator pid {}; clock skew of the simulators {:?}",
        clock.real(SignedDuration::from_hours(24)).as_secs_f64(),
        operator.pid(),
        skew
    );
    let poller_task = tokio::spawn(poller.run(clock, end));
    let sims = [&operator_sim, &poller_sim];
    let injected = play_slots(&clock, &mut operator, sims, &tenant.datasets).await?;
    clock.sleep_until(end).await;
    let ready_at_end = ready.ready();
    operator.stop();
    let poller_heals = poller_task.await.context("the poller")??;

    let failing = &tenant.datasets[..FAILING];
    // `injected` holds the 06:00 and 12:30 slots of the operator's simulator, then the poller's:
    // [op 06:00, poller 06:00, op 12:30, poller 12:30].
    let day = Day {
        operator: Side::measure(&operator_sim, failing, &injected[2]).await?,
        poller: Side::measure(&poller_sim, failing, &injected[3]).await?,
        poller_heals,
        ready_at_end,
    };
    report(bench, scale, &day, &config.log);
    Ok(())
}

/// Plays Power BI's scheduler at the day's two slots: at each, runs every dataset's scheduled
/// refresh in both simulators, all succeeding at 06:00 and the first [`FAILING`] failing at
/// 12:30. Returns the refreshes' start times per slot and simulator, slot by slot.
async fn play_slots(
    clock: &BenchClock,
    operator: &mut Operator,
    sims: [&Sim; 2],
    datasets: &[Dataset],
) -> Result<Vec<Vec<Timestamp>>> {
    let mut injected = Vec::new();
    for (slot, failing) in [("06:00", 0), ("12:30", FAILING)] {
        let at = monday(slot);
        clock.sleep_until(at).await;
        operator.check_alive()?;
        println!(
            "[steady]   slot {slot}: {} scheduled refreshes, {failing} failing, in each simulator",
            DATASETS
        );
        for sim in sims {
            let starts = run_slot(sim, datasets, failing).await?;
            injected.push(starts);
        }
    }
    Ok(injected)
}

/// Records the day's figures and details.
fn report(bench: &mut Bench, scale: f64, day: &Day, operator_log: &Path) {
    report_calls(bench, day);
    report_detection(bench, day);
    bench.report.info(
        S,
        "operator: XeroDatasets Ready at the end of the day",
        day.ready_at_end as f64,
        "objects",
        &format!("of {DATASETS}"),
    );
    bench.details.insert(
        S.to_owned(),
        json!({
            "timeScale": scale,
            "datasets": DATASETS,
            "failingAt1230": FAILING,
            "operator": {"calls": day.operator.calls.by_service, "powerbiCalls": day.operator.calls.powerbi_by_kind,
                         "detectionDelayMinutes": day.operator.delays, "log": operator_log},
            "poller": {"calls": day.poller.calls.by_service, "powerbiCalls": day.poller.calls.powerbi_by_kind,
                       "detectionDelayMinutes": day.poller.delays},
        }),
    );
}

/// Records the calls per dataset of both sides and how many more the poller makes.
fn report_calls(bench: &mut Bench, day: &Day) {
    let (operator, poller) = (&day.operator.calls, &day.poller.calls);
    let per = DATASETS as f64;
    let op_pbi = operator.service("powerbi") as f64 / per;
    let poll_pbi = poller.service("powerbi") as f64 / per;
    bench.report.info(
        S,
        "operator: Power BI calls per dataset per day",
        op_pbi,
        "calls",
        &operator.powerbi_breakdown(per),
    );
    bench.report.info(
        S,
        "naive poller (15 min): Power BI calls per dataset per day",
        poll_pbi,
        "calls",
        &poller.powerbi_breakdown(per),
    );
    bench.report.check(
        S,
        "poller calls / operator calls",
        (op_pbi > 0.0).then(|| poll_pbi / op_pbi),
        "x",
        Target::AtLeast(4.0),
        "Power BI calls; Entra and Xero calls below",
    );
    bench.report.info(
        S,
        "operator: Entra / Xero calls per day (all datasets)",
        (operator.service("entra") + operator.xero()) as f64,
        "calls",
        &format!(
            "entra={}, xero={}; token lifetimes run on the operator's clock",
            operator.service("entra"),
            operator.xero()
        ),
    );
    bench.report.info(
        S,
        "poller: Entra / Xero calls per day (all datasets)",
        (poller.service("entra") + poller.xero()) as f64,
        "calls",
        &format!("entra={}, xero={}", poller.service("entra"), poller.xero()),
    );
}

/// Records how late each side noticed the 12:30 failures; the operator is held to the poller's
/// worst delay (15 minutes when the poller missed some).
fn report_detection(bench: &mut Bench, day: &Day) {
    let (op_delays, poll_delays) = (&day.operator.delays, &day.poller.delays);
    let poller_worst = worst(poll_delays);
    bench.report.info(
        S,
        "poller: failure detection delay, worst",
        poller_worst.unwrap_or(f64::NAN),
        "min",
        &format!(
            "virtual minutes from the failure to the recovery refresh; {}/{FAILING} recovered, mean {:.1} min; {} heals",
            recovered(poll_delays),
            mean(poll_delays).unwrap_or(f64::NAN),
            day.poller_heals
        ),
    );
    bench.report.check(
        S,
        "operator: failure detection delay, worst",
        worst(op_delays),
        "min",
        Target::AtMost(poller_worst.unwrap_or(15.0)),
        &format!(
            "no slower than the poller; {}/{FAILING} recovered, mean {:.1} min",
            recovered(op_delays),
            mean(op_delays).unwrap_or(f64::NAN)
        ),
    );
}

/// How many of the failures were recovered.
fn recovered(delays: &[Option<f64>]) -> usize {
    delays.iter().filter(|x| x.is_some()).count()
}

/// The longest delay; `None` when a failure was never recovered.
fn worst(delays: &[Option<f64>]) -> Option<f64> {
    if delays.iter().any(Option::is_none) {
        return None;
    }
    delays.iter().flatten().copied().reduce(f64::max)
}

/// The mean delay of the recovered failures; `None` when there were none.
fn mean(delays: &[Option<f64>]) -> Option<f64> {
    let found: Vec<f64> = delays.iter().flatten().copied().collect();
    (!found.is_empty()).then(|| found.iter().sum::<f64>() / found.len() as f64)
}

/// Runs one slot's scheduled refreshes; the first `failing` datasets fail. Returns the start
/// times in dataset order.
async fn run_slot(sim: &Sim, datasets: &[Dataset], failing: usize) -> Result<Vec<Timestamp>> {
    let runs = datasets.iter().enumerate().map(|(i, d)| {
        let outcome = if i < failing { "Failed" } else { "Completed" };
        async move { sim.scheduled_refresh(&d.id, outcome, REFRESH_SECONDS).await }
    });
    futures::stream::iter(runs)
        .buffered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Virtual minutes from each failure becoming visible (its end) to the recovery refresh (the
/// next POST of a refresh of that dataset); `None` when there was none.
fn detection_delays(
    log: &[LoggedRequest],
    failing: &[Dataset],
    starts: &[Timestamp],
) -> Vec<Option<f64>> {
    failing
        .iter()
        .zip(starts)
        .map(|(d, start)| {
            let visible = *start + Duration::from_secs(REFRESH_SECONDS);
            let path = format!(
                "/v1.0/myorg/groups/{}/datasets/{}/refreshes",
                d.workspace_id, d.id
            );
            log.iter()
                .filter(|r| r.method == "POST" && r.path == path && r.time >= visible)
                .map(|r| r.time.duration_since(visible).as_secs_f64() / 60.0)
                .reduce(f64::min)
        })
        .collect()
}
