//! The heal scenario end to end: the operator does by itself the manual fix of a dataset whose
//! Xero credentials expired (edit the data source credentials, sign in to Xero, switch the
//! schedule back on, "Refresh now").

mod e2e_support;

use std::time::Duration;

use e2e_support::*;
use serde_json::json;
use xero_operator::api::Reason;
use xero_operator::api::conditions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dataset_broken_by_expired_xero_credentials_is_healed() {
    let mut s = Scenario::start("e2e-heal", &broken_tenant_seed()).await;
    s.create_secrets().await;
    s.apply_dataset(&dataset_manifest("finance-xero", json!({})))
        .await;
    s.start_operator();

    let healed = s
        .wait_condition(
            "finance-xero",
            conditions::READY,
            "True",
            Some(Reason::Reconciled.as_str()),
            Duration::from_secs(60),
        )
        .await;
    let status = healed.status.expect("status");
    assert_eq!(status.dataset_id.as_deref(), Some(DATASET));
    assert_eq!(
        status.xero_tenant_id.as_deref(),
        Some("fe79f7dd-b6d4-4a92-ba7b-538af6289c58")
    );
    let last = status.last_refresh.expect("last refresh");
    assert_eq!(last.status, "Completed");
    assert_eq!(
        status
            .recovery
            .expect("recovery")
            .last_handled_failure_request_id
            .as_deref(),
        Some("9399bb89-25d1-44f8-8576-136d7e9014b1")
    );
    assert_eq!(status.observed_generation, healed.metadata.generation);

    // The Xero refresh token was rotated and persisted.
    let token = s.secret_value("xero-app", "refreshToken").await;
    assert_ne!(
        token, INITIAL_REFRESH_TOKEN,
        "the Secret still holds the old refresh token"
    );

    // Power BI: the schedule is back on, the credentials were applied once, one refresh ran.
    let dataset = s.sim_dataset().await;
    assert_eq!(dataset["schedule"]["enabled"], true, "{dataset:#}");
    assert_eq!(
        s.count(
            "POST",
            &format!("/v1.0/myorg/groups/{WORKSPACE}/datasets/{DATASET}/refreshes")
        )
        .await,
        1
    );
    assert_eq!(
        s.count(
            "PATCH",
            &format!("/v1.0/myorg/groups/{WORKSPACE}/datasets/{DATASET}/refreshSchedule")
        )
        .await,
        1
    );
    assert_eq!(s.count("PATCH", "/v1.0/myorg/gateways/").await, 1);
    assert_eq!(s.count("POST", "/connect/token").await, 1);

    let events = s.event_reasons("finance-xero").await;
    let expected = [
        Reason::ScheduleUpdated.as_str(),
        Reason::CredentialsApplied.as_str(),
        Reason::RefreshTriggered.as_str(),
        Reason::RefreshSucceeded.as_str(),
    ];
    let positions: Vec<usize> = expected
        .iter()
        .map(|r| {
            events
                .iter()
                .position(|e| e == r)
                .unwrap_or_else(|| panic!("no {r} event in {events:?}"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "events out of order: {events:?}"
    );

    // The metrics tell the same story, without a secret.
    let metrics = s.metrics().await;
    for line in [
        r#"xero_operator_token_exchanges_total{outcome="Rotated"} 1"#,
        r#"xero_operator_actions_total{action="RefreshTriggered"} 1"#,
        r#"xero_operator_refresh_outcomes_total{status="Completed"} 1"#,
        r#"xero_operator_datasets{ready="True",reason="Reconciled"} 1"#,
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }

    // Nothing secret reached the operator's log or metrics.
    let log = s.operator_log();
    for secret in [
        "sp-secret",
        "xero-secret",
        INITIAL_REFRESH_TOKEN,
        token.as_str(),
    ] {
        assert!(
            !log.contains(secret),
            "the operator log contains a secret value"
        );
        assert!(
            !metrics.contains(secret),
            "the metrics contain a secret value"
        );
    }
    s.stop_operator();
}
