//! Captures every log line of a full credential flow at trace level (our code, reqwest, hyper,
//! kube, oauth2) and checks that no secret appears in it. A test binary of its own, because the
//! capture is the process's global subscriber.

mod clients_support;

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clients_support::*;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};
use serde_json::json;
use xero_operator::powerbi::models::{CredentialEncryption, PrivacyLevel};
use xero_operator::powerbi::{
    ClientSecretCredential, EntraCredential, EntraTokenProvider, PowerBiClient,
};
use xero_operator::secret::SecretString;
use xero_operator::secret_store::SecretStore;
use xero_operator::xero::{XeroApi, XeroSecretRef, XeroTokenRotation};
use xero_testbed::TestEnv;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_logs_of_a_full_token_flow() {
    let capture = Capture::default();
    let writer = capture.clone();
    // Everything at trace, except the simulator's own logs: it is the far side of the wire,
    // not the operator.
    tracing_subscriber::fmt()
        .with_env_filter("trace,powerbi_sim=off")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .try_init()
        .expect("the only subscriber of this test binary");

    let env = TestEnv::new("clients-redaction").await;
    let sim = Sim::start().await;
    let urls = sim.urls();

    // Power BI: a token, reads, credentials, a refresh, and a throttled call.
    let credential = EntraCredential::ClientSecret(ClientSecretCredential {
        tenant_id: TENANT_ID.into(),
        client_id: SP_CLIENT_ID.into(),
        client_secret: SecretString::new(SP_SECRET),
    });
    tracing::debug!(?credential, "credential as the controller might log it");
    let entra = EntraTokenProvider::new(
        http(),
        urls.authority_host.clone(),
        urls.powerbi_scope.clone(),
        quick_retry(3),
    );
    let powerbi_token = entra.token(&credential).await.unwrap();
    let powerbi = PowerBiClient::new(http(), &urls.powerbi_api, quick_retry(3)).unwrap();
    powerbi.datasets(&powerbi_token, WORKSPACE).await.unwrap();
    sim.fault(json!({"method": "GET", "pathPrefix": "/v1.0/myorg/groups", "status": 429, "retryAfterSeconds": 0, "times": 1}))
        .await;
    powerbi
        .refresh_history(&powerbi_token, WORKSPACE, DATASET, Some(3))
        .await
        .unwrap();
    powerbi
        .datasources(&powerbi_token, WORKSPACE, DATASET)
        .await
        .unwrap();

    // Xero: a Secret, two rotations, connections, then the credentials applied to Power BI.
    let data: BTreeMap<String, ByteString> = [
        ("clientId", XERO_CLIENT_ID),
        ("clientSecret", XERO_CLIENT_SECRET),
        ("refreshToken", INITIAL_REFRESH_TOKEN),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), ByteString(value.as_bytes().to_vec())))
    .collect();
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.namespace);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("xero-app".into()),
            ..ObjectMeta::default()
        },
        data: Some(data),
        ..Secret::default()
    };
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let secret_ref = XeroSecretRef::new(&env.namespace, "xero-app");
    let rotation = XeroTokenRotation::new(
        http(),
        &urls.xero_identity,
        quick_retry(3),
        SecretStore::new(env.client.clone()),
    )
    .unwrap();
    let first = rotation
        .access_token(&secret_ref, Duration::from_secs(600))
        .await
        .unwrap();
    let first_refresh_token = stored_refresh_token(&secrets).await;
    rotation.forget(&secret_ref).await;
    let xero = rotation
        .access_token(&secret_ref, Duration::from_secs(600))
        .await
        .unwrap();
    tracing::debug!(?xero, "access token as the controller might log it");
    let connections = XeroApi::new(http(), &urls.xero_api, quick_retry(1)).unwrap();
    connections
        .organisation(&xero.access_token, "Demo Company (UK)")
        .await
        .unwrap();
    powerbi
        .update_datasource_oauth2(
            &powerbi_token,
            GATEWAY,
            DATASOURCE,
            (&xero.access_token, &CredentialEncryption::None),
            PrivacyLevel::Organizational,
        )
        .await
        .unwrap();
    powerbi
        .trigger_refresh(&powerbi_token, WORKSPACE, DATASET)
        .await
        .unwrap();

    // Failures are logged the way the controller logs them.
    let wrong = EntraCredential::ClientSecret(ClientSecretCredential {
        tenant_id: TENANT_ID.into(),
        client_id: SP_CLIENT_ID.into(),
        client_secret: SecretString::new("wrong-client-secret-value"),
    });
    let error = entra.token(&wrong).await.unwrap_err();
    tracing::warn!(%error, ?error, "Entra refused");
    sim.revoke_all_xero().await;
    rotation.forget(&secret_ref).await;
    let error = rotation
        .access_token(&secret_ref, Duration::from_secs(600))
        .await
        .unwrap_err();
    tracing::warn!(%error, ?error, "Xero refused");
    let latest_refresh_token = stored_refresh_token(&secrets).await;
    sim.running.shutdown().await;

    let logs = capture.text();
    for expected in [
        "rotated the Xero refresh token",
        "GetDatasetsInGroup",
        "retrying",
        "Xero refused",
    ] {
        assert!(
            logs.contains(expected),
            "the capture works: {expected:?} is logged"
        );
    }
    let basic = |id: &str, secret: &str| STANDARD.encode(format!("{id}:{secret}"));
    let secrets_to_hide = [
        SP_SECRET.to_owned(),
        "wrong-client-secret-value".to_owned(),
        XERO_CLIENT_SECRET.to_owned(),
        INITIAL_REFRESH_TOKEN.to_owned(),
        first_refresh_token.clone(),
        latest_refresh_token.clone(),
        powerbi_token.expose().to_owned(),
        first.access_token.expose().to_owned(),
        xero.access_token.expose().to_owned(),
        basic(XERO_CLIENT_ID, XERO_CLIENT_SECRET),
        STANDARD.encode(&first_refresh_token),
        STANDARD.encode(&latest_refresh_token),
        STANDARD.encode(XERO_CLIENT_SECRET),
    ];
    for (index, secret) in secrets_to_hide.iter().enumerate() {
        assert!(!secret.is_empty());
        assert!(
            !logs.contains(secret.as_str()),
            "secret #{index} appears in the logs ({} bytes of logs)",
            logs.len()
        );
    }
}

async fn stored_refresh_token(secrets: &Api<Secret>) -> String {
    let secret = secrets.get("xero-app").await.unwrap();
    String::from_utf8(secret.data.unwrap()["refreshToken"].0.clone()).unwrap()
}
