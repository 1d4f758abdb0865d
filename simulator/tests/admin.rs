//! The admin API: faults (status, Retry-After, delay, malformed body), the request log, state,
//! re-seeding and the clock; plus the credential-expiry story (a dataset whose Xero credentials
//! expire, and the fix) driven through the public endpoints with every call counted.

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn status_faults_answer_in_the_services_shape_a_set_number_of_times() {
    let h = Harness::start().await;
    let token = h.pbi_token().await;
    let fault = json!({"method": "GET", "pathPrefix": "/v1.0/myorg/groups", "status": 503, "times": 2, "retryAfterSeconds": 7});
    let created = h.admin(Method::POST, "/faults", Some(&fault)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let path = format!("/groups/{GROUP}/datasets");
    for _ in 0..2 {
        let reply = h.pbi(Method::GET, &path, &token, None).await;
        reply.assert_pbi_error(503, "ServiceUnavailable");
        assert_eq!(reply.header("retry-after").as_deref(), Some("7"));
    }
    assert_eq!(
        h.pbi(Method::GET, &path, &token, None).await.status,
        200,
        "the fault is used up"
    );
    // Other methods are not affected.
    assert_eq!(h.refresh_now(&token, DATASET).await.status, 202);

    // 429 with the live throttling body; Entra and Xero get their own error shapes.
    h.admin(
        Method::POST,
        "/faults",
        Some(&json!({"pathPrefix": "/v1.0/", "status": 429, "retryAfterSeconds": 30, "times": 1})),
    )
    .await;
    let throttled = h.pbi(Method::GET, &path, &token, None).await;
    assert_eq!(throttled.status, 429);
    assert_eq!(throttled.header("retry-after").as_deref(), Some("30"));
    assert!(
        throttled.json()["message"]
            .as_str()
            .unwrap()
            .contains("Retry in 30 seconds")
    );

    h.admin(
        Method::POST,
        "/faults",
        Some(&json!({"pathPrefix": "/connect/token", "status": 400, "times": 1})),
    )
    .await;
    let reply = h.xero_refresh(INITIAL_REFRESH_TOKEN).await;
    assert_eq!(
        (reply.status.as_u16(), reply.text.as_str()),
        (400, r#"{"error":"invalid_grant"}"#)
    );
    assert_eq!(
        h.xero_refresh(INITIAL_REFRESH_TOKEN).await.status,
        200,
        "the faulted request was not served"
    );

    h.admin(
        Method::POST,
        "/faults",
        Some(&json!({"pathPrefix": format!("/{TENANT}/"), "status": 500, "times": 1})),
    )
    .await;
    let reply = h
        .form(
            &format!("/{TENANT}/oauth2/v2.0/token"),
            None,
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.json()["error"], "temporarily_unavailable");

    h.admin(
        Method::POST,
        "/faults",
        Some(&json!({"pathPrefix": "/connections", "status": 502})),
    )
    .await;
    let reply = h.send(Method::GET, "/connections", Some("x"), None).await;
    assert_eq!(
        (reply.status.as_u16(), reply.json()["Status"].as_u64()),
        (502, Some(502))
    );
    assert_eq!(
        h.admin(Method::GET, "/faults", None)
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert_eq!(h.admin(Method::DELETE, "/faults", None).await.status, 204);
    assert_eq!(
        h.send(Method::GET, "/connections", Some("x"), None)
            .await
            .status,
        401,
        "faults cleared"
    );

    let faulted: Vec<Value> = h
        .requests()
        .await
        .into_iter()
        .filter(|r| r["fault"] == true)
        .collect();
    assert_eq!(faulted.len(), 6);
}

#[tokio::test]
async fn an_answer_delay_serves_the_request_before_the_caller_hears_of_it() {
    let h = Harness::start().await;
    let token = h.pbi_token().await;
    let fault =
        json!({"method": "POST", "pathPrefix": "/v1.0/", "answerDelayMs": 1500, "times": 1});
    assert_eq!(
        h.admin(Method::POST, "/faults", Some(&fault)).await.status,
        201
    );
    let before = h.history(&token, DATASET).await.len();
    let started = Instant::now();
    let post = h.refresh_now(&token, DATASET);
    tokio::pin!(post);
    // While the caller waits, the refresh is already in the history.
    let served_first = loop {
        tokio::select! {
            reply = &mut post => break (reply, false),
            () = tokio::time::sleep(Duration::from_millis(50)) => {
                if h.history(&token, DATASET).await.len() > before {
                    break ((&mut post).await, true);
                }
            }
        }
    };
    let (reply, seen_before_answer) = served_first;
    assert!(
        seen_before_answer,
        "the refresh showed up only after the answer"
    );
    assert_eq!(reply.status, 202, "{}", reply.text);
    assert!(started.elapsed() >= Duration::from_millis(1500));
}

#[tokio::test]
async fn delay_and_malformed_body_faults() {
    let h = Harness::start().await;
    let token = h.pbi_token().await;
    let path = format!("/groups/{GROUP}/datasets");
    h.admin(
        Method::POST,
        "/faults",
        Some(&json!({"pathPrefix": "/v1.0/", "delayMs": 300, "times": 1})),
    )
    .await;
    let started = Instant::now();
    let reply = h.pbi(Method::GET, &path, &token, None).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(reply.status, 200, "a delay alone still serves the request");

    h.admin(
        Method::POST,
        "/faults",
        Some(&json!({"pathPrefix": "/v1.0/", "malformedBody": true, "times": 1})),
    )
    .await;
    let reply = h.pbi(Method::GET, &path, &token, None).await;
    assert_eq!(reply.status, 200);
    assert!(
        serde_json::from_str::<Value>(&reply.text).is_err(),
        "{}",
        reply.text
    );
    assert!(reply.text.starts_with('{'));

    h.admin(
        Method::POST,
        "/faults",
        Some(&json!({"pathPrefix": "/v1.0/", "status": 500, "malformedBody": true, "times": 1})),
    )
    .await;
    let reply = h.pbi(Method::GET, &path, &token, None).await;
    assert_eq!(reply.status, 500);
    assert!(serde_json::from_str::<Value>(&reply.text).is_err());
    assert_eq!(h.pbi(Method::GET, &path, &token, None).await.status, 200);

    for bad in [
        json!({}),
        json!({"status": 99}),
        json!({"delayMs": 1_000_000}),
        json!({"answerDelayMs": 60_001}),
        json!({"pathPrefix": "/_sim/state", "status": 500}),
        json!({"stauts": 500}),
    ] {
        assert_eq!(
            h.admin(Method::POST, "/faults", Some(&bad)).await.status,
            400,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn the_request_log_lists_every_served_call_without_secrets() {
    let h = Harness::start().await;
    let token = h.pbi_token().await;
    let (access, rotated) = h.xero_tokens(INITIAL_REFRESH_TOKEN).await;
    h.set_credentials(&token, GATEWAY, DATASOURCE, &access)
        .await;
    h.pbi(
        Method::GET,
        &format!("/groups/{GROUP}/datasets/{DATASET}/refreshes?$top=1"),
        &token,
        None,
    )
    .await;
    h.send(Method::GET, "/nowhere", None, None).await;
    h.state().await; // admin calls are not logged

    let log = h.requests().await;
    let summary: Vec<(String, String, u64, Option<String>)> = log
        .iter()
        .map(|r| {
            (
                r["service"].as_str().unwrap().to_owned(),
                format!(
                    "{} {}",
                    r["method"].as_str().unwrap(),
                    r["path"].as_str().unwrap()
                ),
                r["status"].as_u64().unwrap(),
                r["principal"].as_str().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "entra".into(),
                format!("POST /{TENANT}/oauth2/v2.0/token"),
                200,
                Some(CLIENT_ID.into())
            ),
            (
                "xero-identity".into(),
                "POST /connect/token".into(),
                200,
                Some(XERO_CLIENT.into())
            ),
            (
                "powerbi".into(),
                format!("PATCH /v1.0/myorg/gateways/{GATEWAY}/datasources/{DATASOURCE}"),
                200,
                Some(CLIENT_ID.into())
            ),
            (
                "powerbi".into(),
                format!("GET /v1.0/myorg/groups/{GROUP}/datasets/{DATASET}/refreshes"),
                200,
                Some(CLIENT_ID.into())
            ),
            ("powerbi".into(), "GET /nowhere".into(), 404, None),
        ]
    );
    assert_eq!(log[3]["query"], "%24top=1");
    assert!(
        log.iter()
            .all(|r| r["time"].as_str().unwrap().starts_with("2025-01-06T08:"))
    );
    let seqs: Vec<u64> = log.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));

    let text = serde_json::to_string(&log).unwrap() + &h.state().await.to_string();
    for secret in [
        CLIENT_SECRET,
        XERO_SECRET,
        &token,
        &access,
        &rotated,
        INITIAL_REFRESH_TOKEN,
        "janes-xero-access-token",
    ] {
        assert!(
            !text.contains(secret),
            "a secret leaked into the log or state"
        );
    }

    let filtered = h
        .admin(Method::GET, "/requests?service=powerbi&method=GET", None)
        .await
        .json();
    assert_eq!(filtered.as_array().unwrap().len(), 2);
    assert_eq!(h.admin(Method::DELETE, "/requests", None).await.status, 204);
    assert!(h.requests().await.is_empty());
}

#[tokio::test]
async fn state_reseed_and_clock() {
    let h = Harness::start().await;
    let state = h.state().await;
    assert_eq!(state["workspaces"][0]["datasets"][0]["name"], "Xero");
    assert_eq!(state["xero"]["connections"].as_array().unwrap().len(), 2);
    assert!(
        state["now"]
            .as_str()
            .unwrap()
            .starts_with("2025-01-06T08:00:")
    );

    let before: jiff::Timestamp = h.admin(Method::GET, "/clock", None).await.json()["now"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let reply = h
        .admin(
            Method::POST,
            "/clock/advance",
            Some(&json!({"seconds": 90.5})),
        )
        .await;
    let after: jiff::Timestamp = reply.json()["now"].as_str().unwrap().parse().unwrap();
    assert!(after.duration_since(before).as_secs_f64() >= 90.5);
    for bad in [json!({"seconds": -1}), json!({}), json!({"seconds": "10"})] {
        assert_eq!(
            h.admin(Method::POST, "/clock/advance", Some(&bad))
                .await
                .status,
            400
        );
    }

    let reseed =
        "servicePrincipals: []\nworkspaces: [{id: g1, datasets: [{id: d1, name: Only}]}]\n";
    let reply = read(
        h.http
            .post(format!("{}/_sim/seed", h.url))
            .body(reseed)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    let state = h.state().await;
    assert_eq!(state["workspaces"][0]["datasets"][0]["name"], "Only");
    let later: jiff::Timestamp = state["now"].as_str().unwrap().parse().unwrap();
    assert!(later >= after, "re-seeding keeps the clock");

    let reply = read(
        h.http
            .post(format!("{}/_sim/seed", h.url))
            .body("workspaces: [{nope: 1}]")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["code"], "InvalidSeed");
}

#[tokio::test]
async fn the_simulator_refuses_non_loopback_addresses() {
    let result = powerbi_sim::Simulator::start("0.0.0.0:0".parse().unwrap(), seed()).await;
    assert!(matches!(result, Err(powerbi_sim::Error::NotLoopback(_))));
}

#[test]
fn the_readme_example_seed_is_the_tested_one() {
    let readme = include_str!("../README.md");
    let start = readme.find("```yaml\n").expect("a yaml block") + "```yaml\n".len();
    let end = start + readme[start..].find("```").unwrap();
    assert_eq!(
        &readme[start..end],
        SEED_YAML,
        "README's example seed differs from examples/seed.yaml"
    );
}

/// The credential-expiry story end to end through the public endpoints: a dataset whose Xero
/// credentials keep expiring, the schedule Power BI switches off, and the operator's fix; every
/// call the "operator" makes is counted.
#[tokio::test]
async fn the_credential_expiry_story() {
    let h = Harness::start().await;

    // 1. The latest refresh failed on credentials.
    let token = h.pbi_token().await;
    let datasets = h
        .pbi(
            Method::GET,
            &format!("/groups/{GROUP}/datasets"),
            &token,
            None,
        )
        .await
        .json();
    let xero = datasets["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "Xero")
        .unwrap();
    assert_eq!(xero["id"], DATASET);
    let latest = h
        .pbi(
            Method::GET,
            &format!("/groups/{GROUP}/datasets/{DATASET}/refreshes?$top=1"),
            &token,
            None,
        )
        .await
        .json();
    assert_eq!(latest["value"][0]["status"], "Failed");

    // 2-5. Find the Xero data source and the organisation; get a fresh Xero access token.
    let sources = h
        .pbi(
            Method::GET,
            &format!("/groups/{GROUP}/datasets/{DATASET}/datasources"),
            &token,
            None,
        )
        .await
        .json();
    let source = &sources["value"][0];
    let (access, refresh_token) = h.xero_tokens(INITIAL_REFRESH_TOKEN).await;
    let connections = h
        .send(Method::GET, "/connections", Some(&access), None)
        .await
        .json();
    let tenant = connections
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["tenantName"] == "Demo Company (UK)")
        .unwrap();
    assert_eq!(tenant["tenantId"], XERO_UK);
    let gateway = source["gatewayId"].as_str().unwrap();
    let datasource = source["datasourceId"].as_str().unwrap();
    assert_eq!(
        h.set_credentials(&token, gateway, datasource, &access)
            .await
            .status,
        200
    );

    // 6-7. The schedule is set; refresh now and watch it complete.
    let schedule = h.schedule(&token, DATASET).await;
    assert_eq!(schedule["enabled"], true);
    let request_id = h
        .refresh_now(&token, DATASET)
        .await
        .header("requestid")
        .unwrap();
    let done = h.finish_refresh(&token, DATASET).await;
    assert_eq!(
        (done["requestId"].as_str(), done["status"].as_str()),
        (Some(request_id.as_str()), Some("Completed"))
    );

    // Nobody pushes credentials before the next slots: Power BI's scheduled refreshes run on
    // an expired token and fail, and after four in a row the schedule is switched off.
    h.advance(3600.0).await;
    for _ in 0..4 {
        h.scheduled_refresh(DATASET, None).await;
        h.advance(60.0).await;
    }
    let token = h.pbi_token().await;
    let history = h.history(&token, DATASET).await;
    assert!(
        history[..4]
            .iter()
            .all(|r| r["refreshType"] == "Scheduled" && r["status"] == "Failed")
    );
    assert_eq!(
        refresh_error_code(&history[0]),
        "DMTS_OAuthTokenRefreshFailedError"
    );
    assert_eq!(h.schedule(&token, DATASET).await["enabled"], false);

    // The fix: fresh credentials (the rotated refresh token; the seeded one is past its
    // grace period by now), the schedule back on, and the next scheduled refresh succeeds.
    assert_eq!(
        h.xero_refresh(INITIAL_REFRESH_TOKEN).await.text,
        r#"{"error":"invalid_grant"}"#
    );
    let (access, _) = h.xero_tokens(&refresh_token).await;
    assert_eq!(
        h.set_credentials(&token, gateway, datasource, &access)
            .await
            .status,
        200
    );
    let enable = json!({"value": {"enabled": true, "days": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"], "times": ["06:00", "12:30"], "localTimeZoneId": "UTC"}});
    assert_eq!(
        h.pbi(
            Method::PATCH,
            &format!("/groups/{GROUP}/datasets/{DATASET}/refreshSchedule"),
            &token,
            Some(&enable)
        )
        .await
        .status,
        200
    );
    assert_eq!(h.scheduled_refresh(DATASET, None).await.status, 202);
    assert_eq!(
        h.finish_refresh(&token, DATASET).await["status"],
        "Completed"
    );

    // Every call the operator made, counted.
    let log = h.requests().await;
    let count = |service: &str, method: &str, suffix: &str| {
        log.iter()
            .filter(|r| {
                r["service"] == service
                    && r["method"] == method
                    && r["path"].as_str().unwrap().ends_with(suffix)
            })
            .count()
    };
    assert_eq!(count("entra", "POST", "/oauth2/v2.0/token"), 2);
    assert_eq!(count("xero-identity", "POST", "/connect/token"), 3);
    assert_eq!(count("xero-api", "GET", "/connections"), 1);
    assert_eq!(count("powerbi", "GET", "/datasets"), 1);
    assert_eq!(count("powerbi", "GET", "/datasources"), 1);
    assert_eq!(
        count("powerbi", "PATCH", &format!("/datasources/{DATASOURCE}")),
        2
    );
    assert_eq!(count("powerbi", "POST", "/refreshes"), 1);
    assert_eq!(count("powerbi", "PATCH", "/refreshSchedule"), 1);
    assert_eq!(count("powerbi", "GET", "/refreshSchedule"), 2);
    assert_eq!(
        log.iter()
            .filter(|r| r["status"].as_u64().unwrap() >= 400)
            .count(),
        1,
        "only the stale token"
    );
}

#[tokio::test]
async fn failing_refreshes_fail_the_next_refreshes_of_any_type_whatever_the_credentials() {
    let h = Harness::start().await;
    let token = h.pbi_token().await;
    let (access, _) = h.xero_tokens(INITIAL_REFRESH_TOKEN).await;
    let set = h
        .set_credentials(&token, GATEWAY, DATASOURCE, &access)
        .await;
    assert_eq!(set.status, 200, "{}", set.text);
    let path = format!("/datasets/{DATASET}/failing-refreshes");
    let marked = h
        .admin(Method::POST, &path, Some(&json!({"count": 2})))
        .await;
    assert_eq!(marked.status, 204, "{}", marked.text);

    // Two failures with a processing error: one through the API, one scheduled.
    assert_eq!(h.refresh_now(&token, DATASET).await.status, 202);
    let api = h.finish_refresh(&token, DATASET).await;
    assert_eq!(api["status"], "Failed", "{api}");
    assert_eq!(api["refreshType"], "ViaApi");
    let scheduled = h.scheduled_refresh(DATASET, None).await;
    assert_eq!(scheduled.status, 202, "{}", scheduled.text);
    let scheduled = h.finish_refresh(&token, DATASET).await;
    assert_eq!(scheduled["status"], "Failed", "{scheduled}");
    // Then the credentials decide again.
    assert_eq!(h.refresh_now(&token, DATASET).await.status, 202);
    let healthy = h.finish_refresh(&token, DATASET).await;
    assert_eq!(healthy["status"], "Completed", "{healthy}");

    let unknown = h
        .admin(
            Method::POST,
            "/datasets/00000000-0000-0000-0000-000000000000/failing-refreshes",
            Some(&json!({"count": 1})),
        )
        .await;
    assert_eq!(unknown.status, 404);
    let bad = h
        .admin(Method::POST, &path, Some(&json!({"count": -1})))
        .await;
    assert_eq!(bad.status, 400);
}
