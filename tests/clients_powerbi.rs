//! The Power BI client and the Entra ID token provider against the simulator, over real HTTP.

mod clients_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clients_support::*;
use serde_json::json;
use xero_operator::error::ErrorCategory;
use xero_operator::http::{HttpSettings, RetryPolicy, http_client};
use xero_operator::powerbi::models::{
    CredentialEncryption, PrivacyLevel, RefreshScheduleUpdate, RefreshStatus, RefreshType,
};
use xero_operator::powerbi::{
    ClientSecretCredential, EntraCredential, EntraTokenProvider, PowerBiClient, WorkloadIdentity,
};
use xero_operator::secret::SecretString;

fn service_principal() -> EntraCredential {
    EntraCredential::ClientSecret(ClientSecretCredential {
        tenant_id: TENANT_ID.into(),
        client_id: SP_CLIENT_ID.into(),
        client_secret: SecretString::new(SP_SECRET),
    })
}

fn entra(sim: &Sim) -> EntraTokenProvider {
    let urls = sim.urls();
    EntraTokenProvider::new(
        http(),
        urls.authority_host,
        urls.powerbi_scope,
        quick_retry(3),
    )
}

fn powerbi(sim: &Sim, retry: RetryPolicy) -> PowerBiClient {
    PowerBiClient::new(http(), &sim.urls().powerbi_api, retry).unwrap()
}

fn dataset_path() -> String {
    format!("/v1.0/myorg/groups/{WORKSPACE}/datasets/{DATASET}")
}

#[tokio::test]
async fn every_power_bi_call_works_against_the_simulator() {
    let sim = Sim::start().await;
    let token = entra(&sim).token(&service_principal()).await.unwrap();
    let client = powerbi(&sim, quick_retry(3));

    let datasets = client.datasets(&token, WORKSPACE).await.unwrap();
    let names: Vec<&str> = datasets.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["Xero", "Sales"]);

    let dataset = client.dataset(&token, WORKSPACE, DATASET).await.unwrap();
    assert_eq!(dataset.id, DATASET);
    assert_eq!(dataset.is_refreshable, Some(true));

    let history = client
        .refresh_history(&token, WORKSPACE, DATASET, Some(5))
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].status, RefreshStatus::Failed);
    assert_eq!(history[0].refresh_type, Some(RefreshType::Scheduled));
    assert_eq!(
        history[0].service_exception().unwrap().code.as_deref(),
        Some("ModelRefreshFailed_CredentialsNotSpecified")
    );

    let schedule = client
        .refresh_schedule(&token, WORKSPACE, DATASET)
        .await
        .unwrap();
    assert!(schedule.enabled);
    assert_eq!(schedule.times, ["06:00", "12:30"]);
    assert_eq!(schedule.local_time_zone_id.as_deref(), Some("UTC"));

    let update = RefreshScheduleUpdate {
        days: Some(vec!["Monday".into(), "Friday".into()]),
        times: Some(vec!["07:00".into()]),
        ..RefreshScheduleUpdate::default()
    };
    client
        .update_refresh_schedule(&token, WORKSPACE, DATASET, &update)
        .await
        .unwrap();
    let schedule = client
        .refresh_schedule(&token, WORKSPACE, DATASET)
        .await
        .unwrap();
    assert_eq!(schedule.days, ["Monday", "Friday"]);
    assert_eq!(schedule.times, ["07:00"]);

    client
        .update_refresh_schedule(
            &token,
            WORKSPACE,
            DATASET,
            &RefreshScheduleUpdate::disable(),
        )
        .await
        .unwrap();
    assert!(
        !client
            .refresh_schedule(&token, WORKSPACE, DATASET)
            .await
            .unwrap()
            .enabled
    );
    let mixed = RefreshScheduleUpdate {
        times: Some(vec!["08:00".into()]),
        ..RefreshScheduleUpdate::disable()
    };
    let error = client
        .update_refresh_schedule(&token, WORKSPACE, DATASET, &mixed)
        .await
        .unwrap_err();
    assert_eq!(error.category(), ErrorCategory::InvalidRequest);

    let datasources = client
        .datasources(&token, WORKSPACE, DATASET)
        .await
        .unwrap();
    assert_eq!(datasources.len(), 1);
    assert_eq!(
        datasources[0].connection_details.kind.as_deref(),
        Some("Xero")
    );
    assert_eq!(
        datasources[0].gateway_binding(),
        Some((GATEWAY, DATASOURCE))
    );

    let xero_access_token = SecretString::new("a-xero-access-token");
    client
        .update_datasource_oauth2(
            &token,
            GATEWAY,
            DATASOURCE,
            (&xero_access_token, &CredentialEncryption::None),
            PrivacyLevel::Organizational,
        )
        .await
        .unwrap();

    let triggered = client
        .trigger_refresh(&token, WORKSPACE, DATASET)
        .await
        .unwrap();
    let request_id = triggered
        .request_id
        .expect("the RequestId header names the refresh");
    let history = client
        .refresh_history(&token, WORKSPACE, DATASET, Some(1))
        .await
        .unwrap();
    assert_eq!(history[0].request_id.as_deref(), Some(request_id.as_str()));
    assert_eq!(history[0].refresh_type, Some(RefreshType::ViaApi));
    assert!(history[0].is_running());

    // Sales belongs to a person; taking it over makes the service principal its owner.
    let before = client
        .dataset(&token, WORKSPACE, OTHER_DATASET)
        .await
        .unwrap();
    assert_eq!(before.configured_by.as_deref(), Some("jane@contoso.com"));
    client
        .take_over(&token, WORKSPACE, OTHER_DATASET)
        .await
        .unwrap();
    let after = client
        .dataset(&token, WORKSPACE, OTHER_DATASET)
        .await
        .unwrap();
    assert_eq!(after.configured_by.as_deref(), Some("xero-operator"));

    sim.running.shutdown().await;
}

#[tokio::test]
async fn injected_failures_map_to_stable_categories() {
    let sim = Sim::start().await;
    let token = entra(&sim).token(&service_principal()).await.unwrap();
    // One attempt: each status is seen as it is, without retries.
    let client = powerbi(&sim, quick_retry(1));
    for (status, category) in [
        (400, ErrorCategory::InvalidRequest),
        (401, ErrorCategory::Unauthorized),
        (403, ErrorCategory::Forbidden),
        (404, ErrorCategory::NotFound),
        (409, ErrorCategory::Conflict),
        (429, ErrorCategory::Throttled),
        (500, ErrorCategory::ServerError),
        (503, ErrorCategory::ServerError),
    ] {
        sim.fault(
            json!({"method": "GET", "pathPrefix": dataset_path(), "status": status, "times": 1}),
        )
        .await;
        let error = client
            .dataset(&token, WORKSPACE, DATASET)
            .await
            .unwrap_err();
        assert_eq!(error.category(), category, "HTTP {status}: {error}");
        assert_eq!(error.http_status(), Some(status));
        assert!(
            error.request_id().is_some(),
            "the RequestId header is kept: {error}"
        );
        assert!(!error.message().contains(token.expose()));
    }

    sim.fault(
        json!({"method": "GET", "pathPrefix": dataset_path(), "malformedBody": true, "times": 1}),
    )
    .await;
    let error = client
        .dataset(&token, WORKSPACE, DATASET)
        .await
        .unwrap_err();
    assert_eq!(
        error.category(),
        ErrorCategory::MalformedResponse,
        "{error}"
    );

    // The service's own answers, not injected.
    let error = client
        .dataset(&token, WORKSPACE, "00000000-0000-0000-0000-000000000000")
        .await
        .unwrap_err();
    assert_eq!(error.category(), ErrorCategory::NotFound, "{error}");
    let error = client
        .dataset(&SecretString::new("not-a-token"), WORKSPACE, DATASET)
        .await
        .unwrap_err();
    assert_eq!(error.category(), ErrorCategory::Unauthorized, "{error}");
    assert!(!error.message().contains("not-a-token"));

    sim.running.shutdown().await;
}

#[tokio::test]
async fn an_expired_entra_token_is_token_expired_and_a_new_one_works() {
    let sim = Sim::start().await;
    let provider = entra(&sim);
    let credential = service_principal();
    let token = provider.token(&credential).await.unwrap();
    let client = powerbi(&sim, quick_retry(1));
    client.dataset(&token, WORKSPACE, DATASET).await.unwrap();

    // The simulator's clock passes the token's expiry; the provider's cache (real time) does
    // not know, so the controller hears TokenExpired and invalidates.
    sim.advance_clock(3700).await;
    let stale = provider.token(&credential).await.unwrap();
    let error = client
        .dataset(&stale, WORKSPACE, DATASET)
        .await
        .unwrap_err();
    assert_eq!(error.category(), ErrorCategory::TokenExpired, "{error}");
    provider.invalidate(&credential).await;
    let fresh = provider.token(&credential).await.unwrap();
    assert_ne!(fresh, stale);
    client.dataset(&fresh, WORKSPACE, DATASET).await.unwrap();

    sim.running.shutdown().await;
}

#[tokio::test]
async fn timeouts_are_retried_for_reads_and_reported_as_timeout() {
    let sim = Sim::start().await;
    let token = entra(&sim).token(&service_principal()).await.unwrap();
    let impatient = http_client(&HttpSettings {
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_millis(300),
    })
    .unwrap();

    sim.fault(json!({"method": "GET", "pathPrefix": dataset_path(), "delayMs": 1000, "times": 1}))
        .await;
    let once =
        PowerBiClient::new(impatient.clone(), &sim.urls().powerbi_api, quick_retry(1)).unwrap();
    let error = once.dataset(&token, WORKSPACE, DATASET).await.unwrap_err();
    assert_eq!(error.category(), ErrorCategory::Timeout, "{error}");

    sim.fault(json!({"method": "GET", "pathPrefix": dataset_path(), "delayMs": 1000, "times": 1}))
        .await;
    let twice = PowerBiClient::new(impatient, &sim.urls().powerbi_api, quick_retry(2)).unwrap();
    twice.dataset(&token, WORKSPACE, DATASET).await.unwrap();

    sim.running.shutdown().await;
}

#[tokio::test]
async fn throttling_waits_for_retry_after_and_gives_up_after_the_configured_attempts() {
    let sim = Sim::start().await;
    let token = entra(&sim).token(&service_principal()).await.unwrap();
    let client = powerbi(&sim, quick_retry(3));
    let path = format!("{}/refreshes", dataset_path());

    sim.fault(json!({"method": "GET", "pathPrefix": path, "status": 429, "retryAfterSeconds": 2, "times": 1}))
        .await;
    let started = Instant::now();
    client
        .refresh_history(&token, WORKSPACE, DATASET, None)
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(sim.requests(&path).await.len(), 2);

    sim.fault(json!({"method": "GET", "pathPrefix": path, "status": 429, "retryAfterSeconds": 1}))
        .await;
    let started = Instant::now();
    let error = client
        .refresh_history(&token, WORKSPACE, DATASET, None)
        .await
        .unwrap_err();
    assert_eq!(error.category(), ErrorCategory::Throttled, "{error}");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(1)));
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "two waits of 1 s"
    );
    assert_eq!(
        sim.requests(&path).await.len(),
        2 + 3,
        "three attempts, then it gives up"
    );
    sim.clear_faults().await;

    // A Retry-After beyond what the helper waits for ends the call at once; the controller
    // requeues after it.
    sim.fault(json!({"method": "GET", "pathPrefix": path, "status": 429, "retryAfterSeconds": 3392, "times": 1}))
        .await;
    let started = Instant::now();
    let error = client
        .refresh_history(&token, WORKSPACE, DATASET, None)
        .await
        .unwrap_err();
    assert_eq!(error.category(), ErrorCategory::Throttled);
    assert_eq!(error.retry_after(), Some(Duration::from_secs(3392)));
    assert!(started.elapsed() < Duration::from_secs(2));

    sim.running.shutdown().await;
}

#[tokio::test]
async fn server_errors_are_retried_only_where_a_repeat_is_harmless() {
    let sim = Sim::start().await;
    let token = entra(&sim).token(&service_principal()).await.unwrap();
    let client = powerbi(&sim, quick_retry(4));

    sim.fault(json!({"method": "GET", "pathPrefix": dataset_path(), "status": 503, "times": 2}))
        .await;
    client.dataset(&token, WORKSPACE, DATASET).await.unwrap();
    let gets: Vec<_> = sim
        .requests(&dataset_path())
        .await
        .into_iter()
        .filter(|r| r["method"] == "GET")
        .collect();
    assert_eq!(gets.len(), 3);

    // Starting a refresh twice could start two refreshes: a 500 is reported, not retried.
    let path = format!("{}/refreshes", dataset_path());
    sim.fault(json!({"method": "POST", "pathPrefix": path, "status": 500, "times": 1}))
        .await;
    let error = client
        .trigger_refresh(&token, WORKSPACE, DATASET)
        .await
        .unwrap_err();
    assert_eq!(error.category(), ErrorCategory::ServerError);
    // A 429 was refused without effect, so it is retried.
    sim.fault(json!({"method": "POST", "pathPrefix": path, "status": 429, "retryAfterSeconds": 0, "times": 1}))
        .await;
    client
        .trigger_refresh(&token, WORKSPACE, DATASET)
        .await
        .unwrap();
    let posts = sim
        .requests(&path)
        .await
        .into_iter()
        .filter(|r| r["method"] == "POST")
        .count();
    assert_eq!(posts, 3);

    // A second refresh while one runs is refused by the service (400 per the 2025 docs).
    let error = client
        .trigger_refresh(&token, WORKSPACE, DATASET)
        .await
        .unwrap_err();
    assert_eq!(error.category(), ErrorCategory::InvalidRequest, "{error}");

    sim.running.shutdown().await;
}

#[tokio::test]
async fn entra_tokens_are_cached_and_concurrent_callers_share_one_request() {
    let sim = Sim::start().await;
    let provider = Arc::new(entra(&sim));
    let credential = service_principal();
    let mut callers = Vec::new();
    for _ in 0..10 {
        let provider = provider.clone();
        let credential = credential.clone();
        callers.push(tokio::spawn(
            async move { provider.token(&credential).await },
        ));
    }
    let mut tokens = Vec::new();
    for caller in callers {
        tokens.push(caller.await.unwrap().unwrap());
    }
    assert!(tokens.windows(2).all(|pair| pair[0] == pair[1]));
    provider.token(&credential).await.unwrap();
    let token_path = format!("/{TENANT_ID}/oauth2/v2.0/token");
    assert_eq!(sim.requests(&token_path).await.len(), 1);

    // A wrong secret for the same app gets its own request, and Entra's refusal.
    let wrong = EntraCredential::ClientSecret(ClientSecretCredential {
        tenant_id: TENANT_ID.into(),
        client_id: SP_CLIENT_ID.into(),
        client_secret: SecretString::new("wrong-secret-value"),
    });
    let error = provider.token(&wrong).await.unwrap_err();
    assert_eq!(
        error.category(),
        ErrorCategory::EntraTokenRejected,
        "{error}"
    );
    assert!(!error.message().contains("wrong-secret-value"));
    assert_eq!(sim.requests(&token_path).await.len(), 2);

    sim.running.shutdown().await;
}

fn federated_token(subject: &str) -> String {
    let encode = |value: serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());
    format!(
        "{}.{}.c2lnbmF0dXJl",
        encode(json!({"alg": "RS256", "typ": "JWT"})),
        encode(json!({"iss": OIDC_ISSUER, "sub": subject, "aud": ["api://AzureADTokenExchange"]})),
    )
}

#[tokio::test]
async fn workload_identity_reads_the_federated_token_file_before_every_request() {
    let sim = Sim::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("azure-identity-token");
    let env = |name: &str| match name {
        "AZURE_TENANT_ID" => Some(TENANT_ID.to_owned()),
        "AZURE_CLIENT_ID" => Some(WI_CLIENT_ID.to_owned()),
        "AZURE_FEDERATED_TOKEN_FILE" => Some(file.display().to_string()),
        _ => None,
    };
    let credential = EntraCredential::WorkloadIdentity(WorkloadIdentity::from_lookup(env).unwrap());
    let provider = entra(&sim);
    let client = powerbi(&sim, quick_retry(1));

    let missing = provider.token(&credential).await.unwrap_err();
    assert_eq!(
        missing.category(),
        ErrorCategory::WorkloadIdentityUnavailable
    );

    std::fs::write(&file, federated_token(WI_SUBJECT)).unwrap();
    let token = provider.token(&credential).await.unwrap();
    client.datasets(&token, WORKSPACE).await.unwrap();

    // The kubelet rotates the file; the next request must present the new content. A subject
    // the app does not trust proves that the file was read again.
    std::fs::write(
        &file,
        federated_token("system:serviceaccount:other:intruder"),
    )
    .unwrap();
    provider.invalidate(&credential).await;
    let error = provider.token(&credential).await.unwrap_err();
    assert_eq!(
        error.category(),
        ErrorCategory::EntraTokenRejected,
        "{error}"
    );

    std::fs::write(&file, format!("{}\n", federated_token(WI_SUBJECT))).unwrap();
    let token = provider.token(&credential).await.unwrap();
    client.datasets(&token, WORKSPACE).await.unwrap();

    sim.running.shutdown().await;
}

/// Capitalises every property name (except `@odata.*`), as the swagger's PascalCase schemas
/// and the .NET SDK spell them.
fn pascal_case(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let mut chars = key.chars();
                    let key = match chars.next() {
                        Some(first) if first != '@' => {
                            first.to_ascii_uppercase().to_string() + chars.as_str()
                        }
                        _ => key,
                    };
                    (key, pascal_case(value))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(pascal_case).collect()),
        other => other,
    }
}

/// A loopback proxy in front of the simulator that answers in PascalCase.
async fn pascal_case_proxy(upstream: reqwest::Url) -> reqwest::Url {
    use axum::body::Bytes;
    use axum::extract::Request;
    use axum::response::IntoResponse;

    let forward = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |request: Request| {
        let forward = forward.clone();
        let upstream = upstream.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body: Bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
            let path = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let url = upstream.join(path.trim_start_matches('/')).unwrap();
            let answer = forward
                .request(parts.method, url)
                .headers(parts.headers)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = answer.status();
            let headers = answer.headers().clone();
            let bytes = answer.bytes().await.unwrap();
            let body = match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Ok(value) => serde_json::to_vec(&pascal_case(value)).unwrap(),
                Err(_) => bytes.to_vec(),
            };
            let mut response = (status, body).into_response();
            for name in ["requestid", "content-type", "retry-after"] {
                if let Some(value) = headers.get(name) {
                    response.headers_mut().insert(name, value.clone());
                }
            }
            response
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    reqwest::Url::parse(&format!("http://{address}/")).unwrap()
}

#[tokio::test]
async fn pascal_case_answers_read_the_same_as_camel_case_ones() {
    let sim = Sim::start().await;
    let token = entra(&sim).token(&service_principal()).await.unwrap();
    let camel = powerbi(&sim, quick_retry(1));
    let proxy = pascal_case_proxy(sim.base.clone()).await;
    let pascal = PowerBiClient::new(http(), &proxy, quick_retry(1)).unwrap();

    assert_eq!(
        camel.datasets(&token, WORKSPACE).await.unwrap(),
        pascal.datasets(&token, WORKSPACE).await.unwrap()
    );
    assert_eq!(
        camel.dataset(&token, WORKSPACE, DATASET).await.unwrap(),
        pascal.dataset(&token, WORKSPACE, DATASET).await.unwrap()
    );
    assert_eq!(
        camel
            .refresh_history(&token, WORKSPACE, DATASET, None)
            .await
            .unwrap(),
        pascal
            .refresh_history(&token, WORKSPACE, DATASET, None)
            .await
            .unwrap()
    );
    let schedule = pascal
        .refresh_schedule(&token, WORKSPACE, DATASET)
        .await
        .unwrap();
    assert_eq!(
        camel
            .refresh_schedule(&token, WORKSPACE, DATASET)
            .await
            .unwrap(),
        schedule
    );
    assert_eq!(schedule.notify_option.as_deref(), Some("NoNotification"));
    assert_eq!(
        camel.datasources(&token, WORKSPACE, DATASET).await.unwrap(),
        pascal
            .datasources(&token, WORKSPACE, DATASET)
            .await
            .unwrap()
    );
    // Error envelopes too: the code and message are read from both.
    let error = pascal
        .dataset(&token, WORKSPACE, UNKNOWN_DATASET)
        .await
        .unwrap_err();
    let expected = camel
        .dataset(&token, WORKSPACE, UNKNOWN_DATASET)
        .await
        .unwrap_err();
    assert_eq!(error.category(), ErrorCategory::NotFound);
    assert_eq!(error.message(), expected.message());
    assert!(error.message().contains(": "), "{error}");

    sim.running.shutdown().await;
}

const UNKNOWN_DATASET: &str = "00000000-0000-0000-0000-000000000001";
