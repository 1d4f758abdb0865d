//! Scenario "slots": did the data refresh at the slot? 100 datasets with 2 to 4 slots a day, on
//! every day of a simulated week, against simulators whose Power BI scheduler starts scheduled
//! refreshes late as the service does (most within 5 minutes, a tail to 15, rare ones up to an
//! hour) and whose refreshes run for a duration of their own per dataset (2 to 24 minutes). Three
//! contenders side by side, each against its own simulator, on one virtual clock: the operator
//! with `startedBy: PowerBI`, the operator with `startedBy: Operator`, and the naive poller. At
//! the start of the third day, the next refresh of 10 datasets fails in every simulator (as
//! refreshes do now and then for reasons of their own), to see how soon each notices.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::Bench;
use crate::clock::BenchClock;
use crate::cluster;
use crate::error::{Context as _, Result};
use crate::fixtures::{Dataset, Tenant, TenantOptions};
use crate::operator::Operator;
use crate::poller::Poller;
use crate::report::Target;
use crate::sim::{CallCounts, LoggedRequest, Sim, SimRefresh};
use powerbi_sim::{DurationRange, SchedulerConfig};

const DATASETS: usize = 100;
const DAYS: i64 = 7;
/// Datasets whose next refresh fails at the start of [`FAILURE_DAY`].
const FLAKY: usize = 10;
const FAILURE_DAY: i64 = 2;
const S: &str = "slots (100 datasets, 2-4 slots a day, 7 simulated days)";
/// Power BI may start a scheduled refresh a little before its slot.
const EARLY: SignedDuration = SignedDuration::from_mins(5);
/// How many slots with more than one refresh the report lists per contender.
const MAX_EXTRA_SHOWN: usize = 10;

/// The week measured: Monday 2025-01-06 00:00 UTC for [`DAYS`] days; the contenders start four
/// hours earlier, so that every XeroDataset is Ready before the first slot.
fn week() -> (Timestamp, Timestamp, Timestamp) {
    let monday: Timestamp = "2025-01-06T00:00:00Z"
        .parse()
        .unwrap_or(Timestamp::UNIX_EPOCH);
    let origin = monday - SignedDuration::from_hours(4);
    (
        origin,
        monday,
        monday + SignedDuration::from_hours(24 * DAYS),
    )
}

/// 2, 3 or 4 slots a day on the half hour, spread over the day, a different pattern per dataset.
fn times_of(i: usize) -> Vec<String> {
    let count = 2 + i % 3;
    let spacing = 48 / count;
    let base = (i * 7) % 48;
    let mut halves: Vec<usize> = (0..count).map(|k| (base + k * spacing) % 48).collect();
    halves.sort_unstable();
    halves
        .into_iter()
        .map(|h| format!("{:02}:{:02}", h / 2, (h % 2) * 30))
        .collect()
}

fn tenant(scale: f64) -> Tenant {
    let (origin, _, _) = week();
    let mut tenant = Tenant::new(TenantOptions {
        datasets: DATASETS,
        xero_secrets: 4,
        days: powerbi_sim::DAYS.to_vec(),
        times: Vec::new(),
        start_time: origin,
        time_scale: scale,
        last_refresh: origin - SignedDuration::from_hours(6),
        refresh_duration_seconds: 120,
    });
    // A refresh longer than a Xero access token lives (30 minutes) fails in every mode:
    // credentials set through the API carry no refresh token. Durations stay below 25 minutes,
    // the validity the operator asks of a token it applies; the PowerBI mode's lead time and
    // Power BI's late starts come on top.
    let scheduler = SchedulerConfig {
        enabled: true,
        seed: 11,
        durations: DurationRange {
            min_seconds: 120,
            max_seconds: 1440,
        },
        ..SchedulerConfig::default()
    };
    for (i, dataset) in tenant.datasets.iter_mut().enumerate() {
        dataset.times = times_of(i);
        // The history a dataset brings shows its own duration, as a real one's would: the
        // week then measures the steady state, not the first slot's learning of it.
        dataset.last_refresh_seconds = scheduler.duration_seconds(&dataset.id);
    }
    let mut config = crate::noticing::lifted_xero_limits();
    config.insert("scheduler".into(), json!(scheduler));
    config.insert("historyRetention".into(), json!(200));
    tenant.sim_config = config.into();
    tenant
}

/// What one contender's simulator saw over the week.
struct Contender {
    name: &'static str,
    requests: Vec<LoggedRequest>,
    histories: BTreeMap<String, Vec<SimRefresh>>,
}

pub async fn run(bench: &mut Bench, scale: f64) -> Result<()> {
    let (origin, from, end) = week();
    let tenant = tenant(scale);
    let by_powerbi = Tenant {
        started_by: "PowerBI",
        ..tenant.clone()
    };
    let by_operator = Tenant {
        started_by: "Operator",
        ..tenant.clone()
    };
    let ns_powerbi = cluster::namespace(&bench.plane, &bench.client, "bench-slots-pbi").await?;
    let ns_operator = cluster::namespace(&bench.plane, &bench.client, "bench-slots-op").await?;
    cluster::create_tenant(&bench.client, &ns_powerbi, &by_powerbi).await?;
    cluster::create_tenant(&bench.client, &ns_operator, &by_operator).await?;
    let clock = BenchClock::new(origin, scale);
    let sims = [
        Sim::start(&by_powerbi).await?,
        Sim::start(&by_operator).await?,
        Sim::start(&tenant).await?,
    ];
    for sim in &sims {
        clock.align(sim).await?;
    }
    let start = |ns: &str, sim: &Sim, name: &str| {
        Operator::start(&bench.operator_config(
            ns,
            sim,
            name,
            Vec::new(),
            Some((scale, clock.now())),
        ))
    };
    let mut operators = [
        start(&ns_powerbi, &sims[0], "slots-powerbi")?,
        start(&ns_operator, &sims[1], "slots-operator")?,
    ];
    let poller = Poller::new(sims[2].url(), sims[2].http().clone(), tenant.clone());
    let poller_task = tokio::spawn(poller.run(clock, end));
    println!(
        "[slots] {DAYS} virtual days at {scale}x ({:.0} s real); operators pid {} (PowerBI) and {} (Operator)",
        clock.real(end.duration_since(origin)).as_secs_f64(),
        operators[0].pid(),
        operators[1].pid(),
    );
    let failures_at = from + SignedDuration::from_hours(24 * FAILURE_DAY);
    for day in 0..DAYS {
        let at = from + SignedDuration::from_hours(24 * day);
        clock.sleep_until(at).await;
        for operator in &mut operators {
            operator.check_alive()?;
        }
        if at == failures_at {
            for sim in &sims {
                for dataset in &tenant.datasets[..FLAKY] {
                    sim.fail_next_refreshes(&dataset.id, 1).await?;
                }
            }
        }
        println!("[slots]   day {} of {DAYS}", day + 1);
    }
    clock.sleep_until(end).await;
    for operator in operators {
        operator.stop();
    }
    // A poller that stopped early is part of its figures, not a reason to lose the others'.
    match poller_task.await.context("the poller")? {
        Ok(heals) => println!("[slots] the poller healed {heals} times"),
        Err(err) => eprintln!("[slots] the poller stopped: {err}"),
    }
    let names = [
        "operator, startedBy: PowerBI",
        "operator, startedBy: Operator",
        "naive poller (15 min)",
    ];
    let mut contenders = Vec::new();
    for (sim, name) in sims.iter().zip(names) {
        contenders.push(Contender {
            name,
            requests: sim.requests().await?,
            histories: sim.histories().await?,
        });
    }
    let week = Week {
        from,
        end,
        failures_at,
        datasets: &tenant.datasets,
    };
    let figures: Vec<Figures> = contenders.iter().map(|c| week.figures(c)).collect();
    // A failed noticing run costs its own figure (reported missing, hence missed), not the
    // week's.
    let noticed = crate::noticing::failure_noticed(bench)
        .await
        .unwrap_or_else(|err| {
            eprintln!("[slots] the failure noticing run failed: {err}");
            Vec::new()
        });
    report(bench, scale, &figures, &noticed);
    Ok(())
}

/// The measured week and its datasets.
struct Week<'a> {
    from: Timestamp,
    end: Timestamp,
    failures_at: Timestamp,
    datasets: &'a [Dataset],
}

/// One contender's figures.
#[derive(Debug, Default)]
struct Figures {
    name: &'static str,
    slots: usize,
    /// Slots whose first refresh succeeded, injected failures aside.
    first_try: usize,
    /// Slots whose first refresh was an injected failure.
    injected: usize,
    /// Refreshes started for the slots (recovery included), injected failures aside.
    refreshes: usize,
    /// Slots without refreshed data before the next slot.
    never_refreshed: usize,
    /// The longest time from a slot to its data refreshed, in minutes.
    worst_minutes: f64,
    powerbi_calls_per_dataset_day: f64,
    /// Power BI calls a day of the healthy datasets with 2 slots.
    healthy_two_slot_calls_per_day: f64,
    /// Those calls by kind, per dataset and day.
    healthy_breakdown: String,
    /// Per injected failure, minutes from its end to the first read of the history after it.
    noticed_minutes: Vec<Option<f64>>,
    /// Per injected failure, minutes from its end to the next refresh started.
    recovered_minutes: Vec<Option<f64>>,
    /// The first slots with more than one refresh, for the report.
    extra: Vec<String>,
}

impl Week<'_> {
    fn figures(&self, contender: &Contender) -> Figures {
        let mut f = Figures {
            name: contender.name,
            ..Figures::default()
        };
        let empty = Vec::new();
        for (i, dataset) in self.datasets.iter().enumerate() {
            let history = contender.histories.get(&dataset.id).unwrap_or(&empty);
            let injected = (i < FLAKY)
                .then(|| {
                    history
                        .iter()
                        .find(|r| r.start_time >= self.failures_at && r.status == "Failed")
                })
                .flatten();
            // A slot's refreshes are those started before the next slot, counted or not (the
            // last two hours' slots are not: their outcome may not be known).
            let slots = self.slots_of(dataset);
            let last = self.end - SignedDuration::from_hours(2);
            for (k, slot) in slots.iter().enumerate().filter(|(_, s)| **s <= last) {
                let window_end = slots.get(k + 1).copied().unwrap_or(self.end) - EARLY;
                let started: Vec<&SimRefresh> = history
                    .iter()
                    .filter(|r| r.start_time >= *slot - EARLY && r.start_time < window_end)
                    .collect();
                f.slots += 1;
                let first_injected = started
                    .first()
                    .is_some_and(|r| injected.is_some_and(|x| x.start_time == r.start_time));
                if first_injected {
                    f.injected += 1;
                } else {
                    f.refreshes += started.len();
                    if started.len() > 1 && f.extra.len() < MAX_EXTRA_SHOWN {
                        let refreshes: Vec<String> = started
                            .iter()
                            .map(|r| format!("{} {} {}", r.refresh_type, r.status, r.start_time))
                            .collect();
                        f.extra.push(format!(
                            "{} slot {slot}: {}",
                            dataset.name,
                            refreshes.join(", ")
                        ));
                    }
                    if started.first().is_some_and(|r| r.status == "Completed") {
                        f.first_try += 1;
                    }
                }
                match started
                    .iter()
                    .find(|r| r.status == "Completed")
                    .and_then(|r| r.end_time)
                {
                    Some(done) => {
                        let minutes = done.duration_since(*slot).as_secs_f64() / 60.0;
                        f.worst_minutes = f.worst_minutes.max(minutes);
                    }
                    None => f.never_refreshed += 1,
                }
            }
            if let Some(failed) = injected.and_then(|r| r.end_time) {
                let minutes = |at: Timestamp| at.duration_since(failed).as_secs_f64() / 60.0;
                let read =
                    crate::noticing::first_history_read(&contender.requests, &dataset.id, failed);
                f.noticed_minutes.push(read.map(minutes));
                f.recovered_minutes
                    .push(next_start_after(history, failed).map(minutes));
            }
        }
        let days = self.end.duration_since(self.from).as_hours() as f64 / 24.0;
        let measured: Vec<&LoggedRequest> = contender
            .requests
            .iter()
            .filter(|r| r.service == "powerbi" && r.time >= self.from && r.time < self.end)
            .collect();
        f.powerbi_calls_per_dataset_day = measured.len() as f64 / (DATASETS as f64 * days);
        let healthy: Vec<&Dataset> = self
            .datasets
            .iter()
            .enumerate()
            .filter(|(i, d)| *i >= FLAKY && d.times.len() == 2)
            .map(|(_, d)| d)
            .collect();
        let healthy_calls: Vec<LoggedRequest> = measured
            .iter()
            .filter(|r| {
                healthy
                    .iter()
                    .any(|d| r.path.contains(&d.id) || r.path.contains(&d.datasource_id))
            })
            .map(|r| (*r).clone())
            .collect();
        let per = healthy.len().max(1) as f64 * days;
        f.healthy_two_slot_calls_per_day = healthy_calls.len() as f64 / per;
        f.healthy_breakdown = CallCounts::of(&healthy_calls).powerbi_breakdown(per);
        f
    }

    /// The dataset's slots in the week.
    fn slots_of(&self, dataset: &Dataset) -> Vec<Timestamp> {
        let mut slots = Vec::new();
        for day in 0..DAYS {
            let midnight = self.from + SignedDuration::from_hours(24 * day);
            for time in &dataset.times {
                let (h, m) = time.split_once(':').unwrap_or(("0", "0"));
                let offset = SignedDuration::from_mins(
                    h.parse::<i64>().unwrap_or(0) * 60 + m.parse::<i64>().unwrap_or(0),
                );
                let slot = midnight + offset;
                if slot < self.end {
                    slots.push(slot);
                }
            }
        }
        slots
    }
}

/// When the first refresh after `after` started.
fn next_start_after(history: &[SimRefresh], after: Timestamp) -> Option<Timestamp> {
    history
        .iter()
        .map(|r| r.start_time)
        .find(|start| *start >= after)
}

/// The figures of the week, and `noticed` (the failure noticing measured at a slower clock,
/// [`crate::noticing`]) for the Operator mode's target.
fn report(bench: &mut Bench, scale: f64, figures: &[Figures], noticed: &[Option<f64>]) {
    for f in figures {
        if !f.extra.is_empty() {
            println!(
                "[slots] {}: slots with more than one refresh (the first {MAX_EXTRA_SHOWN}):",
                f.name
            );
            for line in &f.extra {
                println!("[slots]   {line}");
            }
        }
        let share = 100.0 * f.first_try as f64 / (f.slots - f.injected).max(1) as f64;
        let per_slot = f.refreshes as f64 / (f.slots - f.injected).max(1) as f64;
        let worst_noticed = worst(&f.noticed_minutes);
        let name = f.name;
        let operator_mode = name.ends_with("Operator");
        let detail = format!(
            "{} of {} slots, {} injected failures aside; {} slots without refreshed data",
            f.first_try,
            f.slots - f.injected,
            f.injected,
            f.never_refreshed
        );
        let per_slot_note = "refreshes started per slot, recovery included";
        let calls_note = format!(
            "healthy datasets with 2 slots a day: {}",
            f.healthy_breakdown
        );
        let noticed_note = format!(
            "virtual minutes from an injected failure's end to the next read of the history; the next refresh started {} min after it at worst ({} of {})",
            worst(&f.recovered_minutes).map_or("-".to_owned(), |m| format!("{m:.1}")),
            f.recovered_minutes.iter().flatten().count(),
            f.recovered_minutes.len()
        );
        if operator_mode {
            bench.report.check(
                S,
                &format!("{name}: slots refreshed on the first try"),
                Some(share),
                "%",
                Target::AtLeast(99.9),
                &detail,
            );
            bench.report.check(
                S,
                &format!("{name}: refreshes per slot"),
                Some(per_slot),
                "",
                Target::AtMost(1.0),
                per_slot_note,
            );
            bench.report.check(
                S,
                &format!("{name}: Power BI calls a day"),
                Some(f.healthy_two_slot_calls_per_day),
                "calls",
                Target::AtMost(10.0),
                &calls_note,
            );
            bench.report.check(
                S,
                &format!("{name}: failure noticed, worst"),
                worst(noticed),
                "min",
                Target::AtMost(1.0),
                &format!(
                    "{} failed slot refreshes of 90 s at {}x; in the week at {scale}x {} min, a tenth of a real second there being {:.1} virtual minutes",
                    if noticed.is_empty() {
                        "the noticing run failed: no".to_owned()
                    } else {
                        noticed.len().to_string()
                    },
                    crate::noticing::SCALE,
                    worst_noticed.map_or("-".to_owned(), |m| format!("{m:.2}")),
                    scale * 0.1 / 60.0,
                ),
            );
            bench.report.info(
                S,
                &format!("{name}: failure noticed, worst (week at {scale}x)"),
                worst_noticed.unwrap_or(f64::NAN),
                "min",
                &noticed_note,
            );
        } else {
            bench.report.info(
                S,
                &format!("{name}: slots refreshed on the first try"),
                share,
                "%",
                &detail,
            );
            bench.report.info(
                S,
                &format!("{name}: refreshes per slot"),
                per_slot,
                "",
                per_slot_note,
            );
            bench.report.info(
                S,
                &format!("{name}: Power BI calls a day"),
                f.healthy_two_slot_calls_per_day,
                "calls",
                &calls_note,
            );
            bench.report.info(
                S,
                &format!("{name}: failure noticed, worst"),
                worst_noticed.unwrap_or(f64::NAN),
                "min",
                &noticed_note,
            );
        }
        bench.report.info(
            S,
            &format!("{name}: worst time from slot to refreshed data"),
            f.worst_minutes,
            "min",
            "over the slots that got refreshed data before the next slot",
        );
        bench.report.info(
            S,
            &format!("{name}: Power BI calls per dataset-day"),
            f.powerbi_calls_per_dataset_day,
            "calls",
            "all datasets",
        );
    }
    bench.details.insert(
        S.to_owned(),
        Value::Array(
            figures
                .iter()
                .map(|f| {
                    json!({
                        "contender": f.name, "timeScale": scale, "slots": f.slots,
                        "firstTry": f.first_try, "injected": f.injected, "refreshes": f.refreshes,
                        "neverRefreshed": f.never_refreshed, "worstMinutes": f.worst_minutes,
                        "powerbiCallsPerDatasetDay": f.powerbi_calls_per_dataset_day,
                        "healthyTwoSlotCallsPerDay": f.healthy_two_slot_calls_per_day,
                        "noticedMinutes": f.noticed_minutes,
                        "noticedMinutesSlowerClock": if f.name.ends_with("Operator") { json!(noticed) } else { Value::Null },
                        "recoveredMinutes": f.recovered_minutes,
                    })
                })
                .collect(),
        ),
    );
}

/// The longest delay; `None` when a failure was never noticed.
fn worst(delays: &[Option<f64>]) -> Option<f64> {
    if delays.iter().any(Option::is_none) {
        return None;
    }
    delays.iter().flatten().copied().reduce(f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    fn completed(start: &str) -> SimRefresh {
        SimRefresh {
            refresh_type: "ViaApi".into(),
            start_time: ts(start),
            end_time: Some(ts(start) + SignedDuration::from_mins(3)),
            status: "Completed".into(),
        }
    }

    #[test]
    fn the_last_counted_slot_owns_only_the_refreshes_before_the_next_slot() {
        let (_, from, end) = week();
        // The last day's 10:30 slot is counted, its 22:30 one is too close to the end.
        let dataset = Dataset {
            name: "xds-00000".into(),
            workspace_id: "w".into(),
            id: "d".into(),
            gateway_id: "g".into(),
            datasource_id: "s".into(),
            xero_secret: 0,
            times: vec!["10:30".into(), "22:30".into()],
            last_refresh_seconds: 90,
        };
        let last_day = from + SignedDuration::from_hours(24 * (DAYS - 1));
        let at = |minutes: i64| (last_day + SignedDuration::from_mins(minutes)).to_string();
        let contender = Contender {
            name: "operator, startedBy: Operator",
            requests: Vec::new(),
            histories: BTreeMap::from([(
                "d".to_owned(),
                vec![completed(&at(10 * 60 + 31)), completed(&at(22 * 60 + 31))],
            )]),
        };
        let datasets = [dataset];
        let week = Week {
            from: last_day,
            end,
            failures_at: end,
            datasets: &datasets,
        };
        let f = week.figures(&contender);
        assert_eq!(
            (f.slots, f.refreshes, f.first_try),
            (1, 1, 1),
            "{:?}",
            f.extra
        );
    }

    #[test]
    fn each_dataset_has_two_to_four_distinct_slots_on_the_half_hour() {
        for i in 0..DATASETS {
            let times = times_of(i);
            assert_eq!(times.len(), 2 + i % 3, "{times:?}");
            let mut unique = times.clone();
            unique.dedup();
            assert_eq!(unique, times);
            assert!(
                times
                    .iter()
                    .all(|t| t.ends_with(":00") || t.ends_with(":30"))
            );
        }
    }
}
