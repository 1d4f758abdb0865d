//! End-to-end scenarios of the controller: the real operator binary against the testbed and the
//! simulator, asserting on the simulator's request log and on the XeroDataset status and events.

mod e2e_support;

use std::time::Duration;

use e2e_support::*;
use reqwest::Method;
use serde_json::json;
use xero_operator::api::Reason;
use xero_operator::api::conditions::{self, find_condition};

const WAIT: Duration = Duration::from_secs(60);

fn refreshes_path(dataset: &str) -> String {
    format!("/v1.0/myorg/groups/{WORKSPACE}/datasets/{dataset}/refreshes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_switched_off_after_failures_is_switched_back_on_as_desired() {
    // Power BI switched the schedule off and someone changed it by hand; the last refresh was
    // fine.
    let mut seed = seed_value();
    let dataset = &mut seed["workspaces"][0]["datasets"][0];
    dataset["schedule"] = serde_yaml::from_str(
        "{enabled: false, days: [Sunday], times: ['23:00'], localTimeZoneId: UTC, notifyOption: NoNotification}",
    )
    .expect("schedule");
    dataset["refreshHistory"][0]["status"] = "Completed".into();
    dataset["refreshHistory"][0]["serviceExceptionJson"] = "".into();
    let mut s = Scenario::start("e2e-schedule", &seed_text(&seed)).await;
    s.create_secrets().await;
    let spec = json!({"schedule": {"days": ["Monday", "Wednesday"], "times": ["07:00", "18:30"], "timeZone": "GMT Standard Time"}});
    s.apply_dataset(&dataset_manifest("schedule", spec)).await;
    s.start_operator();

    s.wait_condition("schedule", conditions::SCHEDULE_SYNCED, "True", None, WAIT)
        .await;
    let schedule = &s.sim_dataset().await["schedule"];
    assert_eq!(schedule["enabled"], true);
    assert_eq!(schedule["days"], json!(["Monday", "Wednesday"]));
    assert_eq!(schedule["times"], json!(["07:00", "18:30"]));
    assert_eq!(schedule["localTimeZoneId"], "GMT Standard Time");
    assert_eq!(
        s.count(
            "PATCH",
            &format!("/v1.0/myorg/groups/{WORKSPACE}/datasets/{DATASET}/refreshSchedule")
        )
        .await,
        1
    );
    // A healthy dataset: no refresh was started.
    assert_eq!(s.count("POST", &refreshes_path(DATASET)).await, 0);
    s.wait_condition(
        "schedule",
        conditions::READY,
        "True",
        Some(Reason::Reconciled.as_str()),
        WAIT,
    )
    .await;

    // A spec change is applied with one more PATCH.
    let spec = json!({"schedule": {"days": ["Friday"], "times": ["05:30"], "timeZone": "UTC"}});
    s.apply_dataset(&dataset_manifest("schedule", spec)).await;
    s.wait_for("schedule", "the new generation observed", WAIT, |x| {
        x.status.as_ref().and_then(|st| st.observed_generation) == x.metadata.generation
    })
    .await;
    let schedule = &s.sim_dataset().await["schedule"];
    assert_eq!(schedule["days"], json!(["Friday"]));
    assert_eq!(schedule["times"], json!(["05:30"]));
}

/// The race a clean clone's first `make test` lost: a second reconcile woke (by the Secret watch)
/// before the operator's first status write came back on the watch, so it got the cached object
/// without that status. Reproduced deterministically by handing the controller's reconcile the
/// stale object itself, against the real API server and the simulator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconcile_on_a_stale_cached_object_keeps_what_the_last_status_write_recorded() {
    use std::sync::Arc;
    use xero_operator::controller::{Context, reconcile};

    let mut seed = seed_value();
    seed["workspaces"][0]["datasets"][0]["refreshHistory"][0]["status"] = "Completed".into();
    seed["workspaces"][0]["datasets"][0]["refreshHistory"][0]["serviceExceptionJson"] = "".into();
    let s = Scenario::start("e2e-stale", &seed_text(&seed)).await;
    s.create_secrets().await;
    s.apply_dataset(&dataset_manifest("stale", json!({}))).await;
    let stale = Arc::new(s.datasets().get("stale").await.expect("read XeroDataset"));
    assert!(stale.status.is_none());

    let url = reqwest::Url::parse(&s.sim.url()).expect("simulator url");
    let services = xero_operator::reconcile::Services::new(
        s.env.client.clone(),
        &xero_operator::endpoints::Endpoints::all_at(&url),
    )
    .expect("services");
    let ctx = Arc::new(Context::new(
        s.env.client.clone(),
        services,
        Arc::new(xero_operator::metrics::Metrics::new()),
        xero_operator::reconcile::model::Timing {
            resync_interval: Duration::from_secs(3600),
            poll_interval: Duration::from_secs(1),
            default_credential_lead_time: Duration::from_secs(600),
        },
        xero_operator::clock::Clock::real(),
    ));

    reconcile(stale.clone(), ctx.clone())
        .await
        .expect("first reconcile");
    let synced = |x: &xero_operator::api::XeroDataset| {
        x.status
            .as_ref()
            .and_then(|st| find_condition(&st.conditions, conditions::SCHEDULE_SYNCED))
            .map(|c| c.status.clone())
    };
    let first = s.datasets().get("stale").await.expect("read");
    assert_eq!(
        synced(&first).as_deref(),
        Some("True"),
        "{:?}",
        first.status
    );

    // The same cached object again: the schedule is not read a second time within the resync
    // interval, so only the remembered status can keep ScheduleSynced.
    reconcile(stale, ctx).await.expect("second reconcile");
    let second = s.datasets().get("stale").await.expect("read");
    assert_eq!(
        synced(&second).as_deref(),
        Some("True"),
        "{:?}",
        second.status
    );
    assert_eq!(
        s.count(
            "GET",
            &format!("/v1.0/myorg/groups/{WORKSPACE}/datasets/{DATASET}/refreshSchedule")
        )
        .await,
        1,
        "the schedule was read once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_refresh_token_stalls_without_a_storm_and_a_new_token_recovers() {
    let mut seed = seed_value();
    seed["xero"]["refreshTokens"] =
        serde_yaml::from_str("[{token: initial-refresh-token}, {token: spare-refresh-token}]")
            .expect("tokens");
    let mut s = Scenario::start("e2e-revoked", &seed_text(&seed)).await;
    s.admin(
        Method::POST,
        "xero/revoke",
        json!({"refreshToken": INITIAL_REFRESH_TOKEN}),
    )
    .await;
    s.create_secrets().await;
    s.apply_dataset(&dataset_manifest("revoked", json!({})))
        .await;
    s.start_operator();

    let stalled = s
        .wait_condition(
            "revoked",
            conditions::CREDENTIALS_VALID,
            "False",
            Some(Reason::XeroRefreshTokenRejected.as_str()),
            WAIT,
        )
        .await;
    let conditions = &stalled.status.as_ref().expect("status").conditions;
    let stalled_condition = find_condition(conditions, conditions::STALLED).expect("Stalled");
    assert_eq!(stalled_condition.status, "True");
    assert!(
        find_condition(conditions, conditions::READY)
            .expect("Ready")
            .message
            .contains("xero-login")
    );
    // A few more reconciles (the resync, polls) must not exchange the rejected token again, and
    // no refresh is started without credentials.
    let exchanges = s.count("POST", "/connect/token").await;
    assert_eq!(exchanges, 1);
    s.apply_dataset(&dataset_manifest(
        "revoked",
        json!({"recovery": {"maxAttemptsPerDay": 4}}),
    ))
    .await;
    s.wait_for("revoked", "the new generation observed", WAIT, |x| {
        x.status.as_ref().and_then(|st| st.observed_generation) == x.metadata.generation
    })
    .await;
    assert_eq!(
        s.count("POST", "/connect/token").await,
        1,
        "the rejected token was exchanged again"
    );
    assert_eq!(s.count("POST", &refreshes_path(DATASET)).await, 0);

    // Someone signs in again: the new token in the Secret heals the dataset within seconds.
    let secret: k8s_openapi::api::core::v1::Secret =
        serde_json::from_value(json!({"stringData": {"refreshToken": "spare-refresh-token"}}))
            .expect("patch");
    s.secrets()
        .patch(
            "xero-app",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&secret),
        )
        .await
        .expect("patch secret");
    s.wait_condition(
        "revoked",
        conditions::READY,
        "True",
        Some(Reason::Reconciled.as_str()),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(s.count("POST", &refreshes_path(DATASET)).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_request_annotation_starts_exactly_one_refresh() {
    let mut seed = seed_value();
    seed["workspaces"][0]["datasets"][0]["refreshHistory"][0]["status"] = "Completed".into();
    let mut s = Scenario::start("e2e-request", &seed_text(&seed)).await;
    s.create_secrets().await;
    s.apply_dataset(&dataset_manifest("request", json!({})))
        .await;
    s.start_operator();
    s.wait_condition("request", conditions::READY, "True", None, WAIT)
        .await;
    assert_eq!(s.count("POST", &refreshes_path(DATASET)).await, 0);

    let annotate = |value: &'static str| json!({"metadata": {"annotations": {"xero-operator.dev/refresh-requested-at": value}}});
    for (value, expected) in [("2026-11-29T10:00:00Z", 1), ("2026-11-29T10:05:00Z", 2)] {
        s.datasets()
            .patch(
                "request",
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&annotate(value)),
            )
            .await
            .expect("annotate");
        let done = s
            .wait_for(
                "request",
                "the request echoed and the refresh completed",
                WAIT,
                |x| {
                    let status = x.status.as_ref();
                    status.and_then(|st| st.last_handled_refresh_at.as_deref()) == Some(value)
                        && status
                            .and_then(|st| st.last_refresh.as_ref())
                            .is_some_and(|r| r.status == "Completed")
                },
            )
            .await;
        assert!(done.status.is_some());
        assert_eq!(
            s.count("POST", &refreshes_path(DATASET)).await,
            expected,
            "one refresh per new value"
        );
    }
    // Two refreshes, two events: kube's recorder would merge events of one reason into one
    // series showing the first message.
    let triggered: Vec<String> = s
        .events("request")
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(Reason::RefreshTriggered.as_str()))
        .map(|e| {
            assert!(e.series.is_none(), "merged into a series: {e:?}");
            e.note.unwrap_or_default()
        })
        .collect();
    assert_eq!(triggered.len(), 2, "{triggered:?}");
    assert!(
        triggered[0].contains("as requested at 2026-11-29T10:00:00Z"),
        "{triggered:?}"
    );
    assert!(
        triggered[1].contains("as requested at 2026-11-29T10:05:00Z"),
        "{triggered:?}"
    );

    // The same value again (another annotation changes) starts nothing.
    s.datasets()
        .patch(
            "request",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&json!({"metadata": {"annotations": {"xero-operator.dev/reconcile-requested-at": "r1"}}})),
        )
        .await
        .expect("annotate");
    s.wait_for("request", "the reconcile request echoed", WAIT, |x| {
        x.status
            .as_ref()
            .and_then(|st| st.last_handled_reconcile_at.as_deref())
            == Some("r1")
    })
    .await;
    assert_eq!(s.count("POST", &refreshes_path(DATASET)).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_dataset_causes_no_calls_and_resumes_when_unsuspended() {
    let mut s = Scenario::start("e2e-suspend", &broken_tenant_seed()).await;
    s.create_secrets().await;
    s.apply_dataset(&dataset_manifest("suspended", json!({"suspend": true})))
        .await;
    s.start_operator();
    s.wait_condition(
        "suspended",
        conditions::READY,
        "False",
        Some(Reason::Suspended.as_str()),
        WAIT,
    )
    .await;
    // A reconcile request while suspended is handled, still without any call.
    s.datasets()
        .patch(
            "suspended",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&json!({"metadata": {"annotations": {"xero-operator.dev/reconcile-requested-at": "poke"}}})),
        )
        .await
        .expect("annotate");
    s.wait_for("suspended", "the reconcile request echoed", WAIT, |x| {
        x.status
            .as_ref()
            .and_then(|st| st.last_handled_reconcile_at.as_deref())
            == Some("poke")
    })
    .await;
    assert_eq!(
        s.requests("", "/").await.len(),
        0,
        "calls were made while suspended"
    );

    s.apply_dataset(&dataset_manifest("suspended", json!({"suspend": false})))
        .await;
    s.wait_condition(
        "suspended",
        conditions::READY,
        "True",
        Some(Reason::Reconciled.as_str()),
        WAIT,
    )
    .await;
    assert_eq!(s.count("POST", &refreshes_path(DATASET)).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_server_errors_are_reported_then_overcome() {
    let mut s = Scenario::start("e2e-faults", &broken_tenant_seed()).await;
    // Every refresh-history read is throttled: the client waits Retry-After between its tries,
    // then gives up with Throttled and the operator requeues.
    s.admin(
        Method::POST,
        "faults",
        json!({"method": "GET", "pathPrefix": refreshes_path(DATASET), "status": 429, "retryAfterSeconds": 2}),
    )
    .await;
    s.create_secrets().await;
    s.apply_dataset(&dataset_manifest("faults", json!({})))
        .await;
    s.start_operator();
    let throttled = s
        .wait_condition(
            "faults",
            conditions::READY,
            "False",
            Some(Reason::PowerBIThrottled.as_str()),
            WAIT,
        )
        .await;
    assert_eq!(
        find_condition(
            &throttled.status.expect("status").conditions,
            conditions::STALLED
        )
        .map(|c| c.status.as_str()),
        Some("False"),
        "throttling is transient, not stalled"
    );
    let throttled_calls = s.requests("GET", &refreshes_path(DATASET)).await;
    assert!(!throttled_calls.is_empty());

    // Then the service fails with 500s for a while.
    s.admin(Method::DELETE, "faults", json!({})).await;
    s.admin(
        Method::POST,
        "faults",
        json!({"method": "GET", "pathPrefix": refreshes_path(DATASET), "status": 500, "times": 8}),
    )
    .await;
    s.wait_condition(
        "faults",
        conditions::READY,
        "False",
        Some(Reason::PowerBIUnavailable.as_str()),
        WAIT,
    )
    .await;

    // Eventually the service recovers and the dataset heals, with exactly one refresh.
    s.wait_condition(
        "faults",
        conditions::READY,
        "True",
        Some(Reason::Reconciled.as_str()),
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(s.count("POST", &refreshes_path(DATASET)).await, 1);
    assert!(!s.operator_log().contains("panicked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_killed_during_a_refresh_does_not_start_a_second_one() {
    let mut seed = seed_value();
    seed["config"]["refreshDurationSeconds"] = 8.into();
    let mut s = Scenario::start("e2e-crash", &seed_text(&seed)).await;
    s.create_secrets().await;
    s.apply_dataset(&dataset_manifest("crash", json!({}))).await;
    s.start_operator();
    // Wait for the refresh to be accepted by Power BI, then kill the operator at once.
    let deadline = std::time::Instant::now() + WAIT;
    while s.count("POST", &refreshes_path(DATASET)).await == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no refresh started:\n{}",
            tail(&s.operator_log(), 40)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.stop_operator();
    s.start_operator();
    s.wait_condition(
        "crash",
        conditions::READY,
        "True",
        Some(Reason::Reconciled.as_str()),
        WAIT,
    )
    .await;
    assert_eq!(
        s.count("POST", &refreshes_path(DATASET)).await,
        1,
        "a second refresh was started after the restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_datasets_sharing_one_secret_heal_with_one_token_exchange() {
    const COUNT: usize = 20;
    let mut s = Scenario::start("e2e-shared", &many_datasets_seed(COUNT)).await;
    s.create_secrets().await;
    for i in 0..COUNT {
        let spec = json!({"dataset": {"id": dataset_id(i), "name": null}});
        s.apply_dataset(&dataset_manifest(&format!("shared-{i}"), spec))
            .await;
    }
    s.start_operator();
    for i in 0..COUNT {
        s.wait_condition(
            &format!("shared-{i}"),
            conditions::READY,
            "True",
            Some(Reason::Reconciled.as_str()),
            Duration::from_secs(90),
        )
        .await;
    }
    assert_eq!(
        s.count("POST", "/connect/token").await,
        1,
        "one exchange for one token lifetime"
    );
    for i in 0..COUNT {
        assert_eq!(s.count("POST", &refreshes_path(&dataset_id(i))).await, 1);
    }
    let rejected = s.requests("POST", "/connect/token").await;
    assert!(rejected.iter().all(|r| r["status"] == 200), "{rejected:?}");
}

/// A healthy dataset over an hour of operator time (the operator's clock runs 360 times faster)
/// makes a small, bounded number of Power BI calls: the resync reads the history and the schedule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_dataset_makes_few_calls_per_hour() {
    let mut seed = seed_value();
    let dataset = &mut seed["workspaces"][0]["datasets"][0];
    dataset["schedule"]["enabled"] = true.into();
    dataset["refreshHistory"][0]["status"] = "Completed".into();
    let mut s = Scenario::start("e2e-steady", &seed_text(&seed)).await;
    s.create_secrets().await;
    // No slot in the hour: the dataset refreshes at 03:00 three days from now only.
    let spec = json!({"schedule": {"days": [day_far_from_now()], "times": ["03:00"]}});
    s.apply_dataset(&dataset_manifest("steady", spec)).await;
    s.start_operator_with(&[
        "--time-scale",
        "360",
        "--clock-start",
        "2026-11-25T10:00:00Z",
    ]);
    s.wait_condition("steady", conditions::READY, "True", None, WAIT)
        .await;
    let first = s.requests("", "/v1.0/").await.len();
    // One operator hour is ten real seconds.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let hour = s.requests("", "/v1.0/").await.len() - first;
    eprintln!("Power BI calls in one operator hour of a healthy dataset: {hour}");
    // Resync every operator hour (this test runs the operator with --resync-interval 1h): one
    // history read and one schedule read each time.
    assert!(
        hour <= 4,
        "{hour} Power BI calls in an hour: {:#?}",
        s.requests("", "/v1.0/").await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dataset_the_operator_cannot_use_does_not_stop_the_others() {
    let mut s = Scenario::start("e2e-isolation", &many_datasets_seed(2)).await;
    s.create_secrets().await;
    // Valid for the API server, unusable for the operator: Power BI knows no such time zone.
    let unusable = json!({"schedule": {"timeZone": "Mars Standard Time"}});
    s.apply_dataset(&dataset_manifest("unusable", unusable))
        .await;
    // And one whose Secret does not exist.
    let orphan = json!({
        "dataset": {"id": dataset_id(1), "name": null},
        "xero": {"credentialsSecretRef": {"name": "missing"}},
    });
    s.apply_dataset(&dataset_manifest("orphan", orphan)).await;
    let healthy = json!({"dataset": {"id": dataset_id(0), "name": null}});
    s.apply_dataset(&dataset_manifest("healthy", healthy)).await;
    s.start_operator();

    let unusable = s
        .wait_condition(
            "unusable",
            conditions::STALLED,
            "True",
            Some(Reason::InvalidSpec.as_str()),
            WAIT,
        )
        .await;
    let ready = find_condition(
        &unusable.status.expect("status").conditions,
        conditions::READY,
    )
    .expect("Ready")
    .clone();
    assert!(
        ready.message.contains("spec.schedule.timeZone"),
        "{}",
        ready.message
    );
    s.wait_condition(
        "healthy",
        conditions::READY,
        "True",
        Some(Reason::Reconciled.as_str()),
        WAIT,
    )
    .await;
    s.wait_condition(
        "orphan",
        conditions::READY,
        "False",
        Some(Reason::SecretNotFound.as_str()),
        WAIT,
    )
    .await;
}
