//! Power BI and Entra behaviour: refresh outcomes from the Xero credentials, one refresh at a
//! time, the daily quota, the 4-failure switch-off, schedule PATCH rules, ownership, auth
//! errors and rate limiting.

mod common;

use std::time::Duration;

use common::*;
use powerbi_sim::seed::{Capacity, RateLimit};
use reqwest::Method;
use serde_json::{Value, json};

fn schedule_path(dataset: &str) -> String {
    format!("/groups/{GROUP}/datasets/{dataset}/refreshSchedule")
}

#[tokio::test]
async fn a_refresh_fails_without_credentials_and_on_expired_ones_and_succeeds_on_fresh_ones() {
    let h = Harness::start().await;
    let token = h.pbi_token().await;

    // No credentials at all.
    let reply = h.refresh_now(&token, DATASET).await;
    assert_eq!(reply.status, 202);
    assert!(reply.text.is_empty());
    let entry = h.finish_refresh(&token, DATASET).await;
    assert_eq!(entry["status"], "Failed");
    assert_eq!(entry["refreshType"], "ViaApi");
    assert_eq!(
        refresh_error_code(&entry),
        "ModelRefreshFailed_CredentialsNotSpecified"
    );

    // Fresh credentials.
    let (access, _) = h.xero_tokens(INITIAL_REFRESH_TOKEN).await;
    assert_eq!(
        h.set_credentials(&token, GATEWAY, DATASOURCE, &access)
            .await
            .status,
        200
    );
    assert_eq!(h.refresh_now(&token, DATASET).await.status, 202);
    let entry = h.finish_refresh(&token, DATASET).await;
    assert_eq!(entry["status"], "Completed", "{entry}");
    assert!(entry.get("serviceExceptionJson").is_none());

    // The same credentials 30 minutes later: the Xero token has expired.
    h.advance(1800.0).await;
    let token = h.pbi_token().await;
    assert_eq!(h.refresh_now(&token, DATASET).await.status, 202);
    let entry = h.finish_refresh(&token, DATASET).await;
    assert_eq!(entry["status"], "Failed");
    assert_eq!(
        refresh_error_code(&entry),
        "DMTS_OAuthTokenRefreshFailedError"
    );
}

#[tokio::test]
async fn a_refresh_fails_on_revoked_unknown_or_other_tenant_tokens() {
    // Power BI tests the connection when credentials are set; with that off, bad tokens are
    // stored and the refresh is where they fail.
    let h = Harness::start_with(untested_credentials(seed())).await;
    let token = h.pbi_token().await;
    let (access, rotated) = h.xero_tokens(INITIAL_REFRESH_TOKEN).await;

    for (label, access_token) in [("unknown", "never-issued-by-xero")] {
        h.set_credentials(&token, GATEWAY, DATASOURCE, access_token)
            .await;
        h.refresh_now(&token, DATASET).await;
        let entry = h.finish_refresh(&token, DATASET).await;
        assert_eq!(entry["status"], "Failed", "{label}");
        assert_eq!(
            refresh_error_code(&entry),
            "DM_GWPipeline_Gateway_InvalidConnectionCredentials"
        );
    }

    // A token whose grant covers only the NZ organisation, for a source reading the UK one.
    let mut seed = untested_credentials(seed());
    seed.xero.access_tokens[0].tenant_ids = Some(vec![XERO_NZ.into()]);
    let other = Harness::start_with(seed).await;
    let other_token = other.pbi_token().await;
    other
        .set_credentials(&other_token, GATEWAY, DATASOURCE, "janes-xero-access-token")
        .await;
    other.refresh_now(&other_token, DATASET).await;
    let entry = other.finish_refresh(&other_token, DATASET).await;
    assert_eq!(entry["status"], "Failed");
    assert!(
        entry["serviceExceptionJson"]
            .as_str()
            .unwrap()
            .contains("not connected")
    );

    // Revoked while the refresh runs.
    h.set_credentials(&token, GATEWAY, DATASOURCE, &access)
        .await;
    h.advance(24.0 * 3600.0).await; // a new day for the quota; the old access token has expired
    let (access, _) = h.xero_tokens(&h.xero_tokens(&rotated).await.1).await;
    h.set_credentials(&token, GATEWAY, DATASOURCE, &access)
        .await;
    let token = h.pbi_token().await;
    h.set_credentials(&token, GATEWAY, DATASOURCE, &access)
        .await;
    assert_eq!(h.refresh_now(&token, DATASET).await.status, 202);
    h.admin(Method::POST, "/xero/revoke", Some(&json!({"all": true})))
        .await;
    let entry = h.finish_refresh(&token, DATASET).await;
    assert_eq!(entry["status"], "Failed");
    assert!(
        entry["serviceExceptionJson"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
}

#[tokio::test]
async fn a_load_that_outlives_the_xero_token_fails() {
    let mut seed = seed();
    seed.workspaces[0].datasets[0].refresh_duration_seconds = Some(3600);
    let h = Harness::start_with(seed).await;
    let token = h.pbi_token().await;
    let (access, _) = h.xero_tokens(INITIAL_REFRESH_TOKEN).await;
    h.set_credentials(&token, GATEWAY, DATASOURCE, &access)
        .await;
    h.refresh_now(&token, DATASET).await;
    h.advance(3599.0).await;
    let token = h.pbi_token().await;
    assert_eq!(
        h.history(&token, DATASET).await[0]["status"],
        "Unknown",
        "still running"
    );
    h.advance(1.0).await;
    let entry = h.history(&token, DATASET).await.remove(0);
    assert_eq!(entry["status"], "Failed");
    // The end time is the run's, not when somebody looked.
    let start: jiff::Timestamp = entry["startTime"].as_str().unwrap().parse().unwrap();
    let end: jiff::Timestamp = entry["endTime"].as_str().unwrap().parse().unwrap();
    assert_eq!(end.duration_since(start).as_secs(), 3600);
}

#[tokio::test]
async fn a_short_refresh_completes_in_real_time_without_moving_the_clock() {
    let mut seed = seed();
    seed.config.refresh_duration_seconds = 1;
    let h = Harness::start_with(seed).await;
    let token = h.pbi_token().await;
    let (access, _) = h.xero_tokens(INITIAL_REFRESH_TOKEN).await;
    h.set_credentials(&token, GATEWAY, DATASOURCE, &access)
        .await;
    h.refresh_now(&token, DATASET).await;
    let entry = h
        .wait_refresh(&token, DATASET, Duration::from_secs(10))
        .await;
    assert_eq!(entry["status"], "Completed");
}

#[tokio::test]
async fn only_one_refresh_runs_at_a_time() {
    let h = Harness::start().await;
    let token = h.pbi_token().await;
    let first = h.refresh_now(&token, DATASET).await;
    assert_eq!(first.status, 202);
    let request_id = first.header("requestid").unwrap();
    h.refresh_now(&token, DATASET)
        .await
        .assert_pbi_error(400, "InvalidRequest");
    let history = h.history(&token, DATASET).await;
    assert_eq!(
        history.iter().filter(|r| r["status"] == "Unknown").count(),
        1
    );
    assert_eq!(history[0]["requestId"], request_id.as_str());
    // A scheduled refresh is skipped too.
    assert_eq!(h.scheduled_refresh(DATASET, None).await.status, 400);
    h.finish_refresh(&token, DATASET).await;
    assert_eq!(h.refresh_now(&token, DATASET).await.status, 202);

    let mut seed = seed();
    seed.config.concurrent_refresh_status = 409;
    let h = Harness::start_with(seed).await;
    let token = h.pbi_token().await;
    h.refresh_now(&token, DATASET).await;
    h.refresh_now(&token, DATASET)
        .await
        .assert_pbi_error(409, "InvalidRequest");
}

#[tokio::test]
async fn the_ninth_refresh_of_a_day_is_rejected_scheduled_ones_included() {
    let mut seed = seed();
    seed.config.refresh_duration_seconds = 0;
    let h = Harness::start_with(seed).await;
    let token = h.pbi_token().await;
    for i in 0..8 {
        let reply = if i % 3 == 0 {
            // Completed, so that failures do not switch the schedule off on the way.
            h.scheduled_refresh(DATASET, Some(&json!({"outcome": "Completed"})))
                .await
        } else {
            h.refresh_now(&token, DATASET).await
        };
        assert_eq!(reply.status, 202, "refresh {}: {}", i + 1, reply.text);
    }
    let ninth = h.refresh_now(&token, DATASET).await;
    ninth.assert_pbi_error(400, "InvalidRequest");
    assert!(
        ninth.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exceeded limit")
    );
    let skipped = h
        .scheduled_refresh(DATASET, Some(&json!({"outcome": "Completed"})))
        .await;
    skipped.assert_pbi_error(400, "InvalidRequest");
    // The other dataset has its own quota, but its schedule is off, so nothing runs there.
    assert_eq!(
        h.scheduled_refresh(PERSONS_DATASET, Some(&json!({"outcome": "Completed"})))
            .await
            .status,
        409,
        "its schedule is off"
    );
    // The next (UTC) day the quota starts again.
    h.advance(16.0 * 3600.0).await;
    let token = h.pbi_token().await;
    assert_eq!(h.refresh_now(&token, DATASET).await.status, 202);
    assert_eq!(
        h.state().await["workspaces"][0]["datasets"][0]["refreshesToday"],
        1
    );
}

#[tokio::test]
async fn four_consecutive_scheduled_failures_switch_the_schedule_off() {
    let h = Harness::start().await;
    let token = h.pbi_token().await;
    // The seed already holds one failed scheduled refresh; three more make four.
    for _ in 0..3 {
        let reply = h
            .scheduled_refresh(DATASET, Some(&json!({"durationSeconds": 60})))
            .await;
        assert_eq!(reply.status, 202, "{}", reply.text);
        assert_eq!(reply.json()["refreshType"], "Scheduled");
        assert_eq!(reply.json()["status"], "Unknown");
        let entry = h.finish_refresh(&token, DATASET).await;
        assert_eq!(entry["status"], "Failed");
    }
    assert_eq!(h.schedule(&token, DATASET).await["enabled"], false);
    let skipped = h.scheduled_refresh(DATASET, None).await;
    assert_eq!(skipped.status, 409, "a disabled schedule does not run");
    assert_eq!(skipped.json()["error"]["code"], "ScheduleDisabled");

    // Failed API refreshes do not count by default; re-enabling restarts the count.
    let reply = h
        .pbi(
            Method::PATCH,
            &schedule_path(DATASET),
            &token,
            Some(&json!({"value": {"enabled": true}})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    for _ in 0..3 {
        h.scheduled_refresh(DATASET, Some(&json!({"outcome": "Failed"})))
            .await;
        h.finish_refresh(&token, DATASET).await;
    }
    assert_eq!(
        h.schedule(&token, DATASET).await["enabled"],
        true,
        "three failures are not four"
    );
    h.scheduled_refresh(DATASET, Some(&json!({"outcome": "Completed"})))
        .await;
    assert_eq!(
        h.finish_refresh(&token, DATASET).await["status"],
        "Completed"
    );
    h.scheduled_refresh(DATASET, Some(&json!({"outcome": "Failed"})))
        .await;
    let entry = h.finish_refresh(&token, DATASET).await;
    assert_eq!(
        refresh_error_code(&entry),
        "ModelRefresh_ShortMessage_ProcessingError"
    );
    assert_eq!(
        h.schedule(&token, DATASET).await["enabled"],
        true,
        "a success reset the count"
    );
}

#[tokio::test]
async fn refresh_request_bodies_follow_the_rules_for_service_principals_and_shared_capacity() {
    let h = Harness::start().await;
    let token = h.pbi_token().await;
    let path = format!("/groups/{GROUP}/datasets/{DATASET}/refreshes");
    for body in [
        json!({"notifyOption": "MailOnFailure"}),
        json!({"notifyOption": "Sometimes"}),
        json!({}),
        json!({"type": "Full"}),
        json!([1, 2]),
    ] {
        h.pbi(Method::POST, &path, &token, Some(&body))
            .await
            .assert_pbi_error(400, "InvalidRequest");
    }
    let reply = h
        .send(
            Method::POST,
            &format!("/v1.0/myorg{path}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(reply.status, 202);

    let mut seed = seed();
    seed.workspaces[0].capacity = Capacity::Premium;
    let h = Harness::start_with(seed).await;
    let token = h.pbi_token().await;
    h.pbi(
        Method::POST,
        &path,
        &token,
        Some(&json!({"type": "Full", "notifyOption": "NoNotification"})),
    )
    .await
    .assert_pbi_error(400, "InvalidRequest");
    let reply = h
        .pbi(
            Method::POST,
            &path,
            &token,
            Some(&json!({"type": "Full", "commitMode": "Transactional"})),
        )
        .await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let id = reply.header("x-ms-request-id").unwrap();
    assert!(
        reply
            .header("location")
            .unwrap()
            .ends_with(&format!("/refreshes/{id}"))
    );
    assert_eq!(
        h.history(&token, DATASET).await[0]["refreshType"],
        "ViaEnhancedApi"
    );
}

#[tokio::test]
async fn history_is_newest_first_and_honours_top() {
    let mut seed = seed();
    seed.config.refresh_duration_seconds = 0;
    let h = Harness::start_with(seed).await;
    let token = h.pbi_token().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            h.refresh_now(&token, DATASET)
                .await
                .header("requestid")
                .unwrap(),
        );
        h.advance(1.0).await;
    }
    let path = format!("/groups/{GROUP}/datasets/{DATASET}/refreshes");
    let top = h
        .pbi(Method::GET, &format!("{path}?$top=2"), &token, None)
        .await
        .json();
    let got: Vec<&str> = top["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["requestId"].as_str().unwrap())
        .collect();
    assert_eq!(got, vec![ids[2].as_str(), ids[1].as_str()]);
    assert_eq!(
        h.history(&token, DATASET).await.len(),
        4,
        "three new and the seeded one"
    );
    for bad in ["0", "-1", "two"] {
        h.pbi(Method::GET, &format!("{path}?$top={bad}"), &token, None)
            .await
            .assert_pbi_error(400, "InvalidRequest");
    }
}

#[tokio::test]
async fn schedule_patch_rules() {
    let h = Harness::start().await;
    let token = h.pbi_token().await;
    let path = schedule_path(DATASET);
    let ok = json!({"value": {"days": ["Sunday", "Friday", "Saturday"], "times": ["05:00", "11:30", "17:30", "23:00"], "localTimeZoneId": "UTC"}});
    assert_eq!(
        h.pbi(Method::PATCH, &path, &token, Some(&ok)).await.status,
        200
    );
    let stored = h.schedule(&token, DATASET).await;
    assert_eq!(stored["days"], json!(["Sunday", "Friday", "Saturday"]));
    assert_eq!(stored["times"], json!(["05:00", "11:30", "17:30", "23:00"]));
    assert_eq!(stored["enabled"], true);

    let eight: Vec<String> = (0..8).map(|h| format!("{h:02}:00")).collect();
    let nine: Vec<String> = (0..9).map(|h| format!("{h:02}:30")).collect();
    assert_eq!(
        h.pbi(
            Method::PATCH,
            &path,
            &token,
            Some(&json!({"value": {"times": eight}}))
        )
        .await
        .status,
        200
    );
    let rejected = [
        json!({"value": {"times": nine}}),
        json!({"value": {"times": ["07:15"]}}),
        json!({"value": {"times": ["07:00", "07:00"]}}),
        json!({"value": {"days": []}}),
        json!({"value": {"days": ["Someday"]}}),
        json!({"value": {"enabled": false, "times": ["07:00"]}}),
        json!({"value": {"enabled": false, "days": ["Monday"]}}),
        json!({"value": {"notifyOption": "MailOnFailure"}}),
        json!({"days": ["Monday"]}),
        json!("value"),
    ];
    for body in rejected {
        let reply = h.pbi(Method::PATCH, &path, &token, Some(&body)).await;
        assert_eq!(
            reply.status, 400,
            "{body} should be rejected: {}",
            reply.text
        );
        assert_eq!(reply.json()["error"]["code"], "InvalidRequest");
    }
    let malformed = read(
        h.http
            .patch(format!("{}/v1.0/myorg{path}", h.url))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body("{\"value\": {")
            .send()
            .await
            .unwrap(),
    )
    .await;
    malformed.assert_pbi_error(400, "InvalidRequest");

    // Disabling alone is fine and keeps days and times, as the live service shows them.
    assert_eq!(
        h.pbi(
            Method::PATCH,
            &path,
            &token,
            Some(&json!({"value": {"enabled": false}}))
        )
        .await
        .status,
        200
    );
    let stored = h.schedule(&token, DATASET).await;
    assert_eq!(stored["enabled"], false);
    assert_eq!(stored["days"], json!(["Sunday", "Friday", "Saturday"]));

    // Premium allows 48 slots.
    let mut seed = seed();
    seed.workspaces[0].capacity = Capacity::Premium;
    let h = Harness::start_with(seed).await;
    let token = h.pbi_token().await;
    let all: Vec<String> = (0..48)
        .map(|i| format!("{:02}:{}", i / 2, if i % 2 == 0 { "00" } else { "30" }))
        .collect();
    assert_eq!(
        h.pbi(
            Method::PATCH,
            &path,
            &token,
            Some(&json!({"value": {"times": all}}))
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn only_the_owner_may_change_schedule_and_credentials_until_it_takes_over() {
    let h = Harness::start().await;
    let token = h.pbi_token().await;
    let path = schedule_path(PERSONS_DATASET);
    let enable = json!({"value": {"enabled": true, "days": ["Monday"], "times": ["06:00"]}});
    // The live service's status for this is not documented: 400 in reports (the default).
    let refused = h.pbi(Method::PATCH, &path, &token, Some(&enable)).await;
    refused.assert_pbi_error(400, "PowerBINotAuthorizedException");
    assert!(
        refused.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("only supported for the dataset owner")),
        "{}",
        refused.text
    );
    h.set_credentials(&token, PERSONS_GATEWAY, PERSONS_DATASOURCE, "x")
        .await
        .assert_pbi_error(400, "PowerBINotAuthorizedException");
    let state = h.state().await;
    assert_eq!(
        state["workspaces"][0]["datasets"][1]["datasources"][0]["credentials"]["accessTokenState"],
        "Valid"
    );

    let reply = h
        .pbi(
            Method::POST,
            &format!("/groups/{GROUP}/datasets/{PERSONS_DATASET}/Default.TakeOver"),
            &token,
            None,
        )
        .await;
    assert_eq!(reply.status, 200);
    let dataset = h
        .pbi(
            Method::GET,
            &format!("/groups/{GROUP}/datasets/{PERSONS_DATASET}"),
            &token,
            None,
        )
        .await
        .json();
    assert_eq!(dataset["configuredBy"], "xero-operator");
    // Cloud credentials are the owner's: Jane's are gone.
    let state = h.state().await;
    assert!(state["workspaces"][0]["datasets"][1]["datasources"][0]["credentials"].is_null());
    // Jane's schedule stores MailOnFailure, which a service principal may not keep: its change
    // must set NoNotification.
    let mailing = h.pbi(Method::PATCH, &path, &token, Some(&enable)).await;
    assert_eq!(mailing.status, 400, "{}", mailing.text);
    assert!(
        mailing
            .text
            .contains("Invalid NotifyOption value 'MailOnFailure' for app only owner requests"),
        "{}",
        mailing.text
    );
    let quiet = json!({"value": {"enabled": true, "days": ["Monday"], "times": ["06:00"], "notifyOption": "NoNotification"}});
    assert_eq!(
        h.pbi(Method::PATCH, &path, &token, Some(&quiet))
            .await
            .status,
        200
    );
    // The new owner's binding has a new datasource id; the old one is gone.
    let sources = h
        .pbi(
            Method::GET,
            &format!("/groups/{GROUP}/datasets/{PERSONS_DATASET}/datasources"),
            &token,
            None,
        )
        .await
        .json();
    let rebound = sources["value"][0]["datasourceId"]
        .as_str()
        .expect("datasource id")
        .to_owned();
    assert_ne!(rebound, PERSONS_DATASOURCE);
    assert_eq!(
        h.set_credentials(
            &token,
            PERSONS_GATEWAY,
            PERSONS_DATASOURCE,
            "janes-xero-access-token"
        )
        .await
        .status,
        404
    );
    assert_eq!(
        h.set_credentials(&token, PERSONS_GATEWAY, &rebound, "janes-xero-access-token")
            .await
            .status,
        200
    );
    // Now the owner, the principal's credentials are tested like anyone's.
    h.set_credentials(&token, PERSONS_GATEWAY, &rebound, "x")
        .await
        .assert_pbi_error(400, "DM_GWPipeline_Gateway_InvalidConnectionCredentials");
}

/// `seed` with Power BI's connection test on Update Datasource switched off.
fn untested_credentials(mut seed: powerbi_sim::Seed) -> powerbi_sim::Seed {
    seed.config.validate_credentials_on_update = false;
    seed
}

#[tokio::test]
async fn update_datasource_validates_the_credential_details() {
    let h = Harness::start().await;
    let token = h.pbi_token().await;
    let (access, _) = h.xero_tokens(INITIAL_REFRESH_TOKEN).await;
    let path = format!("/gateways/{GATEWAY}/datasources/{DATASOURCE}");
    let mut stringly = credentials_body(&access);
    stringly["credentialDetails"]["useEndUserOAuth2Credentials"] = json!("False");
    assert_eq!(
        h.pbi(Method::PATCH, &path, &token, Some(&stringly))
            .await
            .status,
        200,
        "the swagger's own example sends a string"
    );
    let mut cases: Vec<Value> = vec![json!({}), json!({"credentialDetails": "x"})];
    for (field, value) in [
        ("credentialType", json!("Magic")),
        ("credentials", json!("not json")),
        ("credentials", json!("{\"credentialData\":[]}")),
        ("encryptedConnection", json!("Maybe")),
        ("privacyLevel", json!(1)),
        ("useEndUserOAuth2Credentials", json!("perhaps")),
    ] {
        let mut body = credentials_body(&access);
        body["credentialDetails"][field] = value;
        cases.push(body);
    }
    let mut missing = credentials_body(&access);
    missing["credentialDetails"]
        .as_object_mut()
        .unwrap()
        .remove("privacyLevel");
    cases.push(missing);
    for body in cases {
        let reply = h.pbi(Method::PATCH, &path, &token, Some(&body)).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text);
    }
    h.pbi(
        Method::PATCH,
        &format!("/gateways/{GATEWAY}/datasources/00000000-0000-0000-0000-000000000000"),
        &token,
        Some(&credentials_body("t")),
    )
    .await
    .assert_pbi_error(404, "DMTS_DatasourceNotFoundError");

    let mut seed = seed();
    seed.config.validate_credentials_on_update = true;
    let h = Harness::start_with(seed).await;
    let token = h.pbi_token().await;
    assert_eq!(
        h.set_credentials(&token, GATEWAY, DATASOURCE, "bogus")
            .await
            .status,
        400
    );
    let (access, _) = h.xero_tokens(INITIAL_REFRESH_TOKEN).await;
    assert_eq!(
        h.set_credentials(&token, GATEWAY, DATASOURCE, &access)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn power_bi_answers_401_and_403_as_documented() {
    let h = Harness::start().await;
    let path = format!("/v1.0/myorg/groups/{GROUP}/datasets");
    let none = h.send(Method::GET, &path, None, None).await;
    none.assert_pbi_error(401, "PowerBINotAuthorizedException");
    assert!(none.header("www-authenticate").is_some());
    h.send(Method::GET, &path, Some("not-a-token"), None)
        .await
        .assert_pbi_error(401, "PowerBINotAuthorizedException");

    let token = h.pbi_token().await;
    assert_eq!(
        h.send(Method::GET, &path, Some(&token), None).await.status,
        200
    );
    h.advance(3599.0).await;
    let expired = h.send(Method::GET, &path, Some(&token), None).await;
    assert_eq!(expired.status, 403);
    assert_eq!(
        expired.json(),
        json!({"error": {"code": "TokenExpired", "message": "Access token has expired, resubmit with a new access token"}})
    );
    assert!(expired.header("requestid").is_some());

    let mut seed = seed();
    seed.workspaces[0].members = Some(vec!["someone-else".into()]);
    let h = Harness::start_with(seed).await;
    let token = h.pbi_token().await;
    h.send(Method::GET, &path, Some(&token), None)
        .await
        .assert_pbi_error(403, "PowerBINotAuthorizedException");

    let h = Harness::start().await;
    let token = h.pbi_token().await;
    h.pbi(
        Method::GET,
        "/groups/00000000-0000-0000-0000-000000000000/datasets",
        &token,
        None,
    )
    .await
    .assert_pbi_error(404, "PowerBIEntityNotFound");
    h.pbi(
        Method::GET,
        &format!("/groups/{GROUP}/datasets/00000000-0000-0000-0000-000000000000"),
        &token,
        None,
    )
    .await
    .assert_pbi_error(404, "ItemNotFound");
    h.pbi(
        Method::DELETE,
        &format!("/groups/{GROUP}/datasets/{DATASET}"),
        &token,
        None,
    )
    .await
    .assert_pbi_error(405, "MethodNotAllowed");
    h.send(Method::GET, "/v1.0/myorg/nothing/here", Some(&token), None)
        .await
        .assert_pbi_error(404, "NotFound");
}

#[tokio::test]
async fn entra_issues_tokens_for_secrets_and_assertions_and_refuses_the_rest() {
    let h = Harness::start().await;
    let url = format!("/{TENANT}/oauth2/v2.0/token");
    let scope = "https://analysis.windows.net/powerbi/api/.default";
    let reply = h
        .form(
            &url,
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
                ("scope", scope),
            ],
        )
        .await;
    let body = reply.json();
    assert_eq!(
        (body["token_type"].as_str(), body["expires_in"].as_u64()),
        (Some("Bearer"), Some(3599))
    );

    let federated = assertion(
        &json!({"iss": "https://oidc.example/cluster", "sub": "system:serviceaccount:ops:xero-operator", "aud": "api://AzureADTokenExchange", "exp": 1}),
    );
    let assertion_type = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    let reply = h
        .form(
            &url,
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT_ID),
                ("client_assertion_type", assertion_type),
                ("client_assertion", &federated),
                ("scope", scope),
            ],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let token = reply.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        h.pbi(
            Method::GET,
            &format!("/groups/{GROUP}/datasets"),
            &token,
            None
        )
        .await
        .status,
        200
    );

    let wrong_audience =
        assertion(&json!({"iss": "https://oidc.example/cluster", "aud": "api://other"}));
    // (form fields, status, error, AADSTS code)
    type Case<'a> = (Vec<(&'a str, &'a str)>, u16, &'a str, u64);
    let cases: Vec<Case> = vec![
        (
            vec![
                ("client_id", CLIENT_ID),
                ("client_secret", "wrong"),
                ("scope", scope),
            ],
            401,
            "invalid_client",
            7000215,
        ),
        (
            vec![
                ("client_id", "unknown-app"),
                ("client_secret", CLIENT_SECRET),
                ("scope", scope),
            ],
            400,
            "unauthorized_client",
            700016,
        ),
        (
            vec![
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
            400,
            "invalid_scope",
            70011,
        ),
        (
            vec![("client_id", CLIENT_ID), ("scope", scope)],
            401,
            "invalid_client",
            7000218,
        ),
        (
            vec![
                ("client_id", CLIENT_ID),
                ("client_assertion_type", assertion_type),
                ("client_assertion", &wrong_audience),
                ("scope", scope),
            ],
            401,
            "invalid_client",
            700212,
        ),
        (
            vec![
                ("client_id", CLIENT_ID),
                ("client_assertion_type", assertion_type),
                ("client_assertion", "garbage"),
                ("scope", scope),
            ],
            400,
            "invalid_request",
            50027,
        ),
        (
            vec![("client_secret", CLIENT_SECRET), ("scope", scope)],
            400,
            "invalid_request",
            900144,
        ),
    ];
    for (fields, status, error, code) in cases {
        let mut all = vec![("grant_type", "client_credentials")];
        all.extend(fields.iter().copied());
        let reply = h.form(&url, None, &all).await;
        assert_eq!(reply.status.as_u16(), status, "{fields:?}: {}", reply.text);
        let body = reply.json();
        assert_eq!(body["error"], error, "{fields:?}");
        assert_eq!(body["error_codes"], json!([code]), "{fields:?}");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .starts_with(&format!("AADSTS{code}:"))
        );
        assert!(body["trace_id"].is_string() && body["correlation_id"].is_string());
    }
    let reply = h
        .form(
            "/other-tenant/oauth2/v2.0/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
                ("scope", scope),
            ],
        )
        .await;
    assert_eq!(reply.json()["error_codes"], json!([90002]));
    let reply = h.form(&url, None, &[("grant_type", "password")]).await;
    assert_eq!(reply.json()["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_retry_after() {
    let mut seed = seed();
    seed.config.rate_limit = Some(RateLimit {
        requests: 3,
        window_seconds: 60,
    });
    let h = Harness::start_with(seed).await;
    let token = h.pbi_token().await;
    let path = format!("/groups/{GROUP}/datasets");
    for _ in 0..3 {
        assert_eq!(h.pbi(Method::GET, &path, &token, None).await.status, 200);
    }
    let limited = h.pbi(Method::GET, &path, &token, None).await;
    assert_eq!(limited.status, 429);
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(
        limited.json()["message"]
            .as_str()
            .unwrap()
            .contains(&format!("Retry in {retry} seconds"))
    );
    h.advance(retry as f64).await;
    assert_eq!(h.pbi(Method::GET, &path, &token, None).await.status, 200);

    // Xero's API has its own count per app.
    let (access, _) = h.xero_tokens(INITIAL_REFRESH_TOKEN).await;
    for _ in 0..3 {
        assert_eq!(
            h.send(Method::GET, "/connections", Some(&access), None)
                .await
                .status,
            200
        );
    }
    let limited = h
        .send(Method::GET, "/connections", Some(&access), None)
        .await;
    assert_eq!(limited.status, 429);
    assert!(limited.header("retry-after").is_some());
    assert_eq!(
        limited.header("x-rate-limit-problem").as_deref(),
        Some("minute")
    );
}

/// Several Microsoft front ends answer 411 to a body-less POST over HTTP/1.1 that states no
/// length (reqwest sends none by default); the simulator does too unless told otherwise.
#[tokio::test]
async fn a_post_that_states_no_length_gets_411_and_one_that_does_is_served() {
    let h = Harness::start().await;
    let token = h.pbi_token().await;
    let path = format!("/v1.0/myorg/groups/{GROUP}/datasets/{DATASET}/refreshes");
    let before = h.history(&token, DATASET).await.len();
    h.post_without_length(&path, &token)
        .await
        .assert_pbi_error(411, "LengthRequired");
    assert_eq!(
        h.history(&token, DATASET).await.len(),
        before,
        "nothing started"
    );
    assert_eq!(h.refresh_now(&token, DATASET).await.status, 202);
    assert_eq!(h.history(&token, DATASET).await.len(), before + 1);

    let mut seed = seed();
    seed.config.require_content_length = false;
    let lenient = Harness::start_with(seed).await;
    let token = lenient.pbi_token().await;
    assert_eq!(lenient.post_without_length(&path, &token).await.status, 202);
}

/// The example seed with the Xero dataset's data source moved to an on-premises gateway.
fn on_premises(key_bits: u32, admins: Option<Vec<String>>) -> powerbi_sim::Seed {
    let mut seed = seed();
    seed.gateways.push(powerbi_sim::seed::GatewaySeed {
        id: GATEWAY.to_owned(),
        name: Some("Office".to_owned()),
        key_bits,
        admins,
    });
    seed
}

#[tokio::test]
async fn an_on_premises_gateway_publishes_its_key_and_reads_only_encrypted_credentials_from_admins()
{
    let h = Harness::start_with(on_premises(2048, None)).await;
    let token = h.pbi_token().await;
    let gateway = h
        .pbi(Method::GET, &format!("/gateways/{GATEWAY}"), &token, None)
        .await;
    assert_eq!(gateway.status, 200, "{}", gateway.text);
    let body = gateway.json();
    assert_eq!(body["type"], "Resource");
    assert_eq!(body["publicKey"]["exponent"], "AQAB");
    let modulus = body["publicKey"]["modulus"].as_str().expect("modulus");
    assert_eq!(
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, modulus)
            .unwrap()
            .len(),
        256
    );
    // A cloud source's gateway is not one Get Gateway shows.
    let cloud = h
        .pbi(
            Method::GET,
            &format!("/gateways/{PERSONS_GATEWAY}"),
            &token,
            None,
        )
        .await;
    cloud.assert_pbi_error(404, "PowerBIEntityNotFound");

    // Plain credentials, or a blob it cannot read, are refused as the live service does.
    let (access, _) = h.xero_tokens(INITIAL_REFRESH_TOKEN).await;
    let plain = h
        .set_credentials(&token, GATEWAY, DATASOURCE, &access)
        .await;
    plain.assert_pbi_error(400, "DM_GWPipeline_UnknownError");
    let mut garbled = credentials_body(&access);
    garbled["credentialDetails"]["encryptionAlgorithm"] = json!("RSA-OAEP");
    garbled["credentialDetails"]["credentials"] = json!("bm90IGVuY3J5cHRlZA==");
    let path = format!("/gateways/{GATEWAY}/datasources/{DATASOURCE}");
    h.pbi(Method::PATCH, &path, &token, Some(&garbled))
        .await
        .assert_pbi_error(400, "DM_GWPipeline_UnknownError");

    // Only an admin of the gateway's data source may set them at all.
    let other = Harness::start_with(on_premises(1024, Some(vec!["someone-else".to_owned()]))).await;
    let token = other.pbi_token().await;
    let (access, _) = other.xero_tokens(INITIAL_REFRESH_TOKEN).await;
    other
        .set_credentials(&token, GATEWAY, DATASOURCE, &access)
        .await
        .assert_pbi_error(401, "PowerBINotAuthorizedException");
}
