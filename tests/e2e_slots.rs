//! `spec.schedule.startedBy: Operator` end to end: the operator keeps Power BI's own schedule
//! off and starts each slot's refresh itself, once, within a minute of the slot; it heals a
//! broken dataset as in the other mode, keeps the capacity's daily limit, and leaves a suspended
//! dataset alone. The slot scenario runs the operator and the simulator on one virtual clock,
//! ten times faster than real time, with the simulator's Power BI scheduler on: a Power BI
//! schedule left on would start refreshes of its own.

mod e2e_support;

use std::time::Duration;

use e2e_support::*;
use jiff::Timestamp;
use serde_json::{Value, json};
use xero_operator::api::conditions::{self, find_condition};
use xero_operator::api::{Reason, XeroDataset};

const WAIT: Duration = Duration::from_secs(90);
/// Wednesday, two minutes before the 06:00 slot.
const START: &str = "2026-11-25T05:58:00Z";
const SLOT: &str = "2026-11-25T06:00:00Z";
const TIME_SCALE: &str = "10";

fn operator_started(name: &str, dataset: usize, extra: Value) -> Value {
    let mut spec = json!({
        "dataset": {"id": dataset_id(dataset), "name": null},
        "schedule": {"startedBy": "Operator", "times": ["06:00", "12:30"]},
    });
    merge(&mut spec, extra);
    dataset_manifest(name, spec)
}

fn refreshes_path(dataset: usize) -> String {
    format!(
        "/v1.0/myorg/groups/{WORKSPACE}/datasets/{}/refreshes",
        dataset_id(dataset)
    )
}

fn schedule_path(dataset: usize) -> String {
    format!(
        "/v1.0/myorg/groups/{WORKSPACE}/datasets/{}/refreshSchedule",
        dataset_id(dataset)
    )
}

fn ts(text: &str) -> Timestamp {
    text.parse().expect("timestamp")
}

/// A completed scheduled refresh of the seed's history.
fn completed(start: &str, minutes: i64) -> serde_yaml::Value {
    let end = ts(start) + jiff::SignedDuration::from_mins(minutes);
    serde_yaml::from_str(&format!(
        "{{requestId: done-{start}, refreshType: Scheduled, startTime: \"{start}\", endTime: \"{end}\", status: Completed}}"
    ))
    .expect("refresh")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_dataset_is_healed_and_power_bi_schedule_switched_off() {
    let mut seed = seed_value();
    seed["workspaces"][0]["datasets"][0]["schedule"]["enabled"] = true.into();
    let mut s = Scenario::start("e2e-slots-heal", &seed_text(&seed)).await;
    s.create_secrets().await;
    let spec = json!({"schedule": {"startedBy": "Operator"}});
    s.apply_dataset(&dataset_manifest("finance-xero", spec))
        .await;
    s.start_operator();

    let healed = s.wait_reconciled("finance-xero", WAIT).await;
    let status = healed.status.expect("status");
    assert_eq!(
        status.last_refresh.expect("last refresh").status,
        "Completed"
    );
    let dataset = s.sim_dataset().await;
    assert_eq!(dataset["schedule"]["enabled"], false, "{dataset:#}");
    let refreshes = format!("/v1.0/myorg/groups/{WORKSPACE}/datasets/{DATASET}/refreshes");
    assert_eq!(s.count("POST", &refreshes).await, 1);
    let synced = find_condition(&status.conditions, conditions::SCHEDULE_SYNCED)
        .expect("ScheduleSynced")
        .clone();
    assert_eq!(synced.status, "True", "{synced:?}");
}

/// What a CI run of the demo at 06:05 found: Power BI switched its schedule off after the
/// failures, the 06:00 slot passed, and the operator (with Power BI starting the slots) waited
/// for the slot's scheduled refresh until 06:15, though switching the schedule on at 06:05 does
/// not bring that slot back. The failure is recovered at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_after_a_slot_missed_with_the_schedule_off_is_recovered_at_once() {
    let mut seed = seed_value();
    seed["config"] = serde_yaml::from_str(
        "{startTime: \"2026-11-25T06:05:00Z\", timeScale: 1, refreshDurationSeconds: 2}",
    )
    .expect("config");
    let mut s = Scenario::start("e2e-slots-missed", &seed_text(&seed)).await;
    s.create_secrets().await;
    let spec = json!({"schedule": {"startedBy": "PowerBI", "times": ["06:00", "12:30"]}});
    s.apply_dataset(&dataset_manifest("finance-xero", spec))
        .await;
    let now = s.sim_now().await.to_string();
    s.start_operator_with(&["--time-scale", "1", "--clock-start", &now]);

    let healed = s.wait_reconciled("finance-xero", WAIT).await;
    let status = healed.status.expect("status");
    let last = status.last_refresh.expect("last refresh");
    assert_eq!(last.status, "Completed");
    assert_eq!(last.refresh_type.as_deref(), Some("ViaApi"));
    assert!(
        last.start_time.expect("start time").0 < ts("2026-11-25T06:10:00Z"),
        "recovered late: {:?}",
        status.schedule_updated_time
    );
    assert_eq!(s.sim_dataset().await["schedule"]["enabled"], true);
    let refreshes = format!("/v1.0/myorg/groups/{WORKSPACE}/datasets/{DATASET}/refreshes");
    assert_eq!(s.count("POST", &refreshes).await, 1);
}

/// Three datasets at the 06:00 slot: a healthy one gets its refresh once, within a minute; one
/// whose capacity already ran 8 refreshes today gets none and says why; a suspended one is left
/// alone (Power BI's own scheduler refreshes it, as its schedule is on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_a_slot_the_operator_starts_the_refresh_once_within_the_limit() {
    let mut seed: serde_yaml::Value =
        serde_yaml::from_str(&many_datasets_seed(3)).expect("seed yaml");
    seed["config"] = serde_yaml::from_str(&format!(
        "{{startTime: \"{START}\", timeScale: {TIME_SCALE}, refreshDurationSeconds: 60, scheduler: {{enabled: true, seed: 7}}}}"
    ))
    .expect("config");
    let datasets = seed["workspaces"][0]["datasets"]
        .as_sequence_mut()
        .expect("datasets");
    for dataset in datasets.iter_mut() {
        dataset["schedule"]["enabled"] = true.into();
        dataset["refreshHistory"] = vec![completed("2026-11-24T12:30:00Z", 3)].into();
    }
    // Dataset 1 used its 8 refreshes of the day (UTC, as the schedule's zone) already.
    datasets[1]["refreshHistory"] = (0..8)
        .rev()
        .map(|i| {
            let minute = if i % 2 == 0 { 10 } else { 40 };
            completed(&format!("2026-11-25T0{}:{minute}:00Z", i / 2), 3)
        })
        .collect::<Vec<_>>()
        .into();
    let mut s = Scenario::start("e2e-slots", &seed_text(&seed)).await;
    s.create_secrets().await;
    s.apply_dataset(&operator_started("slot", 0, json!({})))
        .await;
    s.apply_dataset(&operator_started("limit", 1, json!({})))
        .await;
    s.apply_dataset(&operator_started("paused", 2, json!({"suspend": true})))
        .await;
    let now = s.sim_now().await;
    assert!(now < ts(SLOT), "the setup took past the slot: {now}");
    let now = now.to_string();
    s.start_operator_with(&["--time-scale", TIME_SCALE, "--clock-start", &now]);

    let served = s
        .wait_for("slot", "the 06:00 slot's refresh completed", WAIT, |x| {
            slot_refresh_completed(x)
        })
        .await;
    let status = served.status.expect("status");
    let last = status.last_refresh.expect("last refresh");
    assert_eq!(last.refresh_type.as_deref(), Some("ViaApi"));
    let started = last.start_time.expect("start time").0;
    assert!(
        started >= ts(SLOT) && started < ts("2026-11-25T06:01:00Z"),
        "the slot's refresh started at {started}"
    );
    assert_eq!(s.count("POST", &refreshes_path(0)).await, 1);
    let healthy = s.sim_dataset_by_id(&dataset_id(0)).await;
    assert_eq!(healthy["schedule"]["enabled"], false, "{healthy:#}");
    let scheduled: Vec<&Value> = healthy["refreshes"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|r| r["refreshType"] == "Scheduled")
        .filter(|r| r["startTime"].as_str().is_some_and(|t| ts(t) >= ts(START)))
        .collect();
    assert!(
        scheduled.is_empty(),
        "Power BI's scheduler refreshed too: {scheduled:#?}"
    );
    let triggered: Vec<String> = s
        .events("slot")
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(Reason::RefreshTriggered.as_str()))
        .filter_map(|e| e.note)
        .collect();
    assert_eq!(triggered.len(), 1, "{triggered:?}");
    assert!(triggered[0].contains("scheduled slot at"), "{triggered:?}");

    let message = s
        .wait_not_ready("limit", Reason::DailyLimitReached.as_str(), WAIT)
        .await;
    assert!(message.contains("slot at"), "{message}");
    assert_eq!(s.count("POST", &refreshes_path(1)).await, 0);

    let paused = s
        .wait_not_ready("paused", Reason::Suspended.as_str(), WAIT)
        .await;
    assert!(!paused.is_empty());
    assert_eq!(s.count("POST", &refreshes_path(2)).await, 0);
    assert_eq!(s.count("PATCH", &schedule_path(2)).await, 0);
}

fn slot_refresh_completed(xds: &XeroDataset) -> bool {
    xds.status.as_ref().is_some_and(|status| {
        status.last_started_slot_time.as_ref().map(|t| t.0) == Some(ts(SLOT))
            && status
                .last_refresh
                .as_ref()
                .is_some_and(|r| r.status == "Completed")
    })
}

/// Leadership changing hands at a slot: the slot's refresh starts once, not twice and not
/// never. Phase one: the leader dies right after Power BI accepted the 06:00 refresh of the
/// first dataset, before it heard the answer or wrote the status; the standby that takes over
/// finds the refresh in the history and starts none. Phase two: the leader dies seconds before
/// the 06:30 slot of the second dataset; the standby that takes over (up to 15 real seconds
/// later, minutes on this clock) starts that slot's refresh late, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_is_started_once_when_leadership_changes_hands() {
    const SCALE: &str = "20";
    let mut seed: serde_yaml::Value =
        serde_yaml::from_str(&many_datasets_seed(2)).expect("seed yaml");
    seed["config"] = serde_yaml::from_str(&format!(
        "{{startTime: \"{START}\", timeScale: {SCALE}, refreshDurationSeconds: 60}}"
    ))
    .expect("config");
    for dataset in seed["workspaces"][0]["datasets"]
        .as_sequence_mut()
        .expect("datasets")
    {
        dataset["refreshHistory"] = vec![completed("2026-11-24T12:30:00Z", 3)].into();
    }
    let mut s = Scenario::start("e2e-slots-ha", &seed_text(&seed)).await;
    s.create_secrets().await;
    s.apply_dataset(&operator_started(
        "first",
        0,
        json!({"schedule": {"times": ["06:00"]}}),
    ))
    .await;
    s.apply_dataset(&operator_started(
        "second",
        1,
        json!({"schedule": {"times": ["06:30"]}}),
    ))
    .await;
    // The leader's answer to the first slot's refresh comes 30 s after Power BI started it.
    s.admin(
        reqwest::Method::POST,
        "faults",
        json!({"method": "POST", "pathPrefix": refreshes_path(0), "answerDelayMs": 30000, "times": 1}),
    )
    .await;
    let ns = s.env.namespace.clone();
    let now = s.sim_now().await.to_string();
    let mut flags = leader_flags(&ns);
    flags.extend([
        "--time-scale".into(),
        SCALE.into(),
        "--clock-start".into(),
        now,
    ]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let leader = s.spawn_operator(&flags);
    s.wait_reconciled("first", WAIT).await;
    s.wait_reconciled("second", WAIT).await;
    let standby = s.spawn_operator(&flags);

    // Phase one.
    let request_id = wait_for_api_refresh(&s, 0).await;
    leader.kill();
    s.wait_for(
        "first",
        "the standby to read the slot's refresh",
        WAIT,
        |x| {
            x.status
                .as_ref()
                .and_then(|st| st.last_refresh.as_ref())
                .is_some_and(|r| r.request_id == request_id && r.status == "Completed")
        },
    )
    .await;
    // The killed leader never heard Power BI's answer, so the request log (written as answers
    // go out) may miss its POST: the history counts.
    assert_eq!(api_refreshes(&s, 0).await, 1, "not twice");

    // Phase two.
    let next_standby = s.spawn_operator(&flags);
    while s.sim_now().await < ts("2026-11-25T06:29:45Z") {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    standby.kill();
    let caught_up = s
        .wait_for(
            "second",
            "the new leader to start the 06:30 slot",
            WAIT,
            |x| {
                x.status.as_ref().is_some_and(|st| {
                    st.last_started_slot_time.as_ref().map(|t| t.0)
                        == Some(ts("2026-11-25T06:30:00Z"))
                        && st
                            .last_refresh
                            .as_ref()
                            .is_some_and(|r| r.status == "Completed")
                })
            },
        )
        .await;
    assert_eq!(api_refreshes(&s, 1).await, 1, "once, not never");
    let started = caught_up
        .status
        .expect("status")
        .last_refresh
        .expect("last")
        .start_time;
    eprintln!("the 06:30 slot's refresh started at {started:?} after the leader died");
    next_standby.kill();
}

/// How many refreshes of dataset `i` the simulator's history shows started through the API.
async fn api_refreshes(s: &Scenario, i: usize) -> usize {
    s.sim_dataset_by_id(&dataset_id(i)).await["refreshes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["refreshType"] == "ViaApi")
        .count()
}

/// Waits until the history of dataset `i` shows a refresh started through the API; its id.
async fn wait_for_api_refresh(s: &Scenario, i: usize) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let dataset = s.sim_dataset_by_id(&dataset_id(i)).await;
        if let Some(refresh) = dataset["refreshes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["refreshType"] == "ViaApi")
        {
            return refresh["requestId"]
                .as_str()
                .expect("request id")
                .to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no refresh started through the API: {dataset:#}\n{}",
            tail(&s.operator_log(), 40)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
