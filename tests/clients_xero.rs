//! Xero refresh-token rotation through real Secrets (the testbed's kube-apiserver) against the
//! simulator's Xero identity service: rotation, sharing, crashes, conflicts, revocation.

mod clients_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use clients_support::*;
use futures::FutureExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::mpsc;
use xero_operator::error::{ClientError, ErrorCategory};
use xero_operator::secret::SecretString;
use xero_operator::secret_store::{SecretAccess, SecretStore, SecretValues, SecretWrite};
use xero_operator::xero::{
    BeforeSecretWrite, ROTATED_AT_ANNOTATION, XeroApi, XeroSecretRef, XeroTokenEndpoint,
    XeroTokenRotation, find_organisation,
};
use xero_testbed::TestEnv;

const FRESH: Duration = Duration::from_secs(600);

async fn create_secret(env: &TestEnv, name: &str, refresh_token: &str) -> XeroSecretRef {
    let data: BTreeMap<String, ByteString> = [
        ("clientId", XERO_CLIENT_ID),
        ("clientSecret", XERO_CLIENT_SECRET),
        ("refreshToken", refresh_token),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), ByteString(value.as_bytes().to_vec())))
    .collect();
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        data: Some(data),
        ..Secret::default()
    };
    secrets_api(env)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    XeroSecretRef::new(&env.namespace, name)
}

fn secrets_api(env: &TestEnv) -> Api<Secret> {
    Api::namespaced(env.client.clone(), &env.namespace)
}

async fn stored_refresh_token(env: &TestEnv, name: &str) -> String {
    let secret = secrets_api(env).get(name).await.unwrap();
    let data = secret.data.unwrap();
    String::from_utf8(data["refreshToken"].0.clone()).unwrap()
}

async fn set_stored_refresh_token(client: &kube::Client, namespace: &str, name: &str, token: &str) {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let patch = json!({"stringData": {"refreshToken": token}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
}

fn rotation(sim: &Sim, env: &TestEnv) -> XeroTokenRotation {
    XeroTokenRotation::new(
        http(),
        &sim.urls().xero_identity,
        quick_retry(3),
        SecretStore::new(env.client.clone()),
    )
    .unwrap()
}

fn endpoint(sim: &Sim) -> XeroTokenEndpoint {
    XeroTokenEndpoint::new(http(), &sim.urls().xero_identity, quick_retry(1)).unwrap()
}

/// Whether Xero still accepts `refresh_token` (an exchange, so only for tokens the test is done
/// with).
async fn accepted(sim: &Sim, refresh_token: &str) -> Result<(), ClientError> {
    endpoint(sim)
        .exchange(
            XERO_CLIENT_ID,
            &SecretString::new(XERO_CLIENT_SECRET),
            &SecretString::new(refresh_token),
        )
        .await
        .map(|_| ())
}

/// A hook that, on its first call only, reports and then runs `then`.
fn first_time<F>(then: F) -> (BeforeSecretWrite, mpsc::UnboundedReceiver<()>)
where
    F: Fn() -> futures::future::BoxFuture<'static, ()> + Send + Sync + 'static,
{
    let (reached, reports) = mpsc::unbounded_channel();
    let fired = AtomicBool::new(false);
    let hook: BeforeSecretWrite = Arc::new(move |_secret: &XeroSecretRef| {
        if fired.swap(true, Ordering::SeqCst) {
            return async {}.boxed();
        }
        let _ = reached.send(());
        then()
    });
    (hook, reports)
}

#[tokio::test]
async fn three_rotations_leave_the_latest_token_and_old_ones_die_after_the_grace_period() {
    let env = TestEnv::new("clients-rotate").await;
    let sim = Sim::start().await;
    let secret = create_secret(&env, "xero-app", INITIAL_REFRESH_TOKEN).await;
    let rotation = rotation(&sim, &env);

    let mut tokens = vec![INITIAL_REFRESH_TOKEN.to_owned()];
    let mut access = Vec::new();
    for _ in 0..3 {
        rotation.forget(&secret).await;
        let token = rotation.access_token(&secret, FRESH).await.unwrap();
        let stored = stored_refresh_token(&env, "xero-app").await;
        assert!(
            !tokens.contains(&stored),
            "every exchange stores a new refresh token"
        );
        tokens.push(stored);
        access.push(token);
    }
    assert_eq!(sim.xero_token_requests().await, 3);
    let annotations = secrets_api(&env)
        .get("xero-app")
        .await
        .unwrap()
        .metadata
        .annotations
        .unwrap();
    let rotated_at: jiff::Timestamp = annotations[ROTATED_AT_ANNOTATION].parse().unwrap();
    assert_eq!(rotated_at, access[2].refresh_token_rotated_at);

    // The access token reaches the organisations.
    let connections = XeroApi::new(http(), &sim.urls().xero_api, quick_retry(1)).unwrap();
    let all = connections.list(&access[2].access_token).await.unwrap();
    assert_eq!(
        find_organisation(&all, "Demo Company (UK)")
            .unwrap()
            .tenant_id,
        DEMO_UK
    );
    let found = connections
        .organisation(&access[2].access_token, "Demo Company (UK)")
        .await
        .unwrap();
    assert_eq!(found.tenant_id, DEMO_UK);
    assert!(found.created_date_utc.is_some());
    let error = connections
        .organisation(&access[2].access_token, "Twin Ltd")
        .await
        .unwrap_err();
    assert_eq!(error.category(), ErrorCategory::OrganisationAmbiguous);
    let error = connections
        .organisation(&access[2].access_token, "Nobody Ltd")
        .await
        .unwrap_err();
    assert_eq!(error.category(), ErrorCategory::OrganisationNotFound);

    // Past the grace period every superseded token is rejected; the stored one works.
    sim.advance_clock(1801).await;
    for old in &tokens[..3] {
        let error = accepted(&sim, old).await.unwrap_err();
        assert_eq!(
            error.category(),
            ErrorCategory::XeroRefreshTokenRejected,
            "{error}"
        );
    }
    rotation.forget(&secret).await;
    rotation.access_token(&secret, FRESH).await.unwrap();

    sim.running.shutdown().await;
}

#[tokio::test]
async fn twenty_concurrent_users_of_one_secret_cause_one_exchange() {
    let env = TestEnv::new("clients-share").await;
    let sim = Sim::start().await;
    let secret = create_secret(&env, "xero-app", INITIAL_REFRESH_TOKEN).await;
    let rotation = Arc::new(rotation(&sim, &env));

    let mut users = Vec::new();
    for _ in 0..20 {
        let rotation = rotation.clone();
        let secret = secret.clone();
        users.push(tokio::spawn(async move {
            rotation.access_token(&secret, FRESH).await
        }));
    }
    let mut tokens = Vec::new();
    for user in users {
        tokens.push(user.await.unwrap().expect("no user sees an error"));
    }
    assert!(
        tokens
            .windows(2)
            .all(|pair| pair[0].access_token == pair[1].access_token)
    );
    let exchanges = sim.requests("/connect/token").await;
    assert_eq!(exchanges.len(), 1, "one exchange: {exchanges:?}");
    assert!(
        exchanges.iter().all(|request| request["status"] == 200),
        "no invalid_grant"
    );

    sim.running.shutdown().await;
}

#[tokio::test]
async fn a_crash_between_the_token_response_and_the_secret_write_is_recovered() {
    let env = TestEnv::new("clients-crash").await;
    let sim = Sim::start().await;
    let secret = create_secret(&env, "xero-app", INITIAL_REFRESH_TOKEN).await;

    // The first operator exchanges the token and dies before writing the Secret.
    let (hook, mut reached) = first_time(|| futures::future::pending().boxed());
    let doomed = Arc::new(rotation(&sim, &env).with_before_secret_write(hook));
    let task = {
        let doomed = doomed.clone();
        let secret = secret.clone();
        tokio::spawn(async move { doomed.access_token(&secret, FRESH).await })
    };
    reached.recv().await.expect("the exchange completed");
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(sim.xero_token_requests().await, 1);
    assert_eq!(
        stored_refresh_token(&env, "xero-app").await,
        INITIAL_REFRESH_TOKEN
    );

    // Restarted within the grace period, the operator recovers with the previous token.
    sim.advance_clock(20 * 60).await;
    let restarted = rotation(&sim, &env);
    restarted.access_token(&secret, FRESH).await.unwrap();
    let stored = stored_refresh_token(&env, "xero-app").await;
    assert_ne!(stored, INITIAL_REFRESH_TOKEN);

    // Once the old token is dead, the stored one still works.
    sim.advance_clock(31 * 60).await;
    assert!(accepted(&sim, INITIAL_REFRESH_TOKEN).await.is_err());
    restarted.forget(&secret).await;
    restarted.access_token(&secret, FRESH).await.unwrap();

    sim.running.shutdown().await;
}

#[tokio::test]
async fn a_conflicting_write_rereads_the_secret_and_continues() {
    let env = TestEnv::new("clients-conflict").await;
    let sim = Sim::start().await;

    // Someone edits the Secret (a label) between the exchange and the write: the same result
    // is written again at the new resourceVersion, without a second exchange.
    let secret = create_secret(&env, "labelled", INITIAL_REFRESH_TOKEN).await;
    let (client, namespace) = (env.client.clone(), env.namespace.clone());
    let (hook, _reached) = first_time(move || {
        let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
        async move {
            let patch = json!({"metadata": {"labels": {"team": "finance"}}});
            api.patch("labelled", &PatchParams::default(), &Patch::Merge(patch))
                .await
                .unwrap();
        }
        .boxed()
    });
    let rotation_a = rotation(&sim, &env).with_before_secret_write(hook);
    rotation_a.access_token(&secret, FRESH).await.unwrap();
    assert_eq!(sim.xero_token_requests().await, 1);
    let stored = stored_refresh_token(&env, "labelled").await;
    assert_ne!(stored, INITIAL_REFRESH_TOKEN);
    let labels = secrets_api(&env)
        .get("labelled")
        .await
        .unwrap()
        .metadata
        .labels
        .unwrap();
    assert_eq!(labels["team"], "finance");

    // A sign-in stores a newer refresh token in between: rotation continues from that one.
    let secret = create_secret(&env, "signed-in", &stored).await;
    let newer = endpoint(&sim)
        .exchange(
            XERO_CLIENT_ID,
            &SecretString::new(XERO_CLIENT_SECRET),
            &SecretString::new(&stored),
        )
        .await
        .unwrap();
    let newer_token = newer.refresh_token.expose().to_owned();
    let (client, namespace) = (env.client.clone(), env.namespace.clone());
    let written = newer_token.clone();
    let (hook, _reached) = first_time(move || {
        let (client, namespace, written) = (client.clone(), namespace.clone(), written.clone());
        async move { set_stored_refresh_token(&client, &namespace, "signed-in", &written).await }
            .boxed()
    });
    let rotation_b = rotation(&sim, &env).with_before_secret_write(hook);
    let before = sim.xero_token_requests().await;
    rotation_b.access_token(&secret, FRESH).await.unwrap();
    assert_eq!(
        sim.xero_token_requests().await,
        before + 2,
        "the stale result is dropped, the newest token exchanged"
    );
    let stored = stored_refresh_token(&env, "signed-in").await;
    assert_ne!(stored, newer_token);
    sim.advance_clock(31 * 60).await;
    accepted(&sim, &stored)
        .await
        .expect("the stored token works after the grace period");

    sim.running.shutdown().await;
}

/// Reads from the real API server, writes to one that is down.
struct UnavailableForWrites {
    reads: SecretStore,
    writes: SecretStore,
    failed_writes: AtomicUsize,
}

impl SecretAccess for UnavailableForWrites {
    async fn read(&self, namespace: &str, name: &str) -> Result<SecretValues, ClientError> {
        self.reads.read(namespace, name).await
    }

    async fn write(
        &self,
        namespace: &str,
        name: &str,
        write: SecretWrite<'_>,
    ) -> Result<String, ClientError> {
        let result = self.writes.write(namespace, name, write).await;
        self.failed_writes
            .fetch_add(usize::from(result.is_err()), Ordering::SeqCst);
        result
    }
}

#[tokio::test]
async fn a_secret_write_that_fails_keeps_the_previous_token_and_hands_out_nothing() {
    let env = TestEnv::new("clients-unavailable").await;
    let sim = Sim::start().await;
    let secret = create_secret(&env, "xero-app", INITIAL_REFRESH_TOKEN).await;

    let mut config = kube::Config::new("https://127.0.0.1:1".parse().unwrap());
    config.connect_timeout = Some(Duration::from_secs(1));
    let down = kube::Client::try_from(config).unwrap();
    let store = UnavailableForWrites {
        reads: SecretStore::new(env.client.clone()),
        writes: SecretStore::new(down),
        failed_writes: AtomicUsize::new(0),
    };
    let broken =
        XeroTokenRotation::new(http(), &sim.urls().xero_identity, quick_retry(1), store).unwrap();
    let error = broken.access_token(&secret, FRESH).await.unwrap_err();
    assert_eq!(
        error.category(),
        ErrorCategory::SecretAccessFailed,
        "{error}"
    );
    assert!(
        error
            .message()
            .contains(&format!("{}/xero-app", env.namespace))
    );
    // The mark of the exchange could not be written, so Xero was not even asked: nothing can
    // be lost when nothing can be stored.
    assert_eq!(sim.xero_token_requests().await, 0);
    assert_eq!(
        stored_refresh_token(&env, "xero-app").await,
        INITIAL_REFRESH_TOKEN
    );

    // With the API server back, the stored token works.
    sim.advance_clock(25 * 60).await;
    let healthy = rotation(&sim, &env);
    healthy.access_token(&secret, FRESH).await.unwrap();
    let stored = stored_refresh_token(&env, "xero-app").await;
    assert_ne!(stored, INITIAL_REFRESH_TOKEN);
    sim.advance_clock(31 * 60).await;
    accepted(&sim, &stored)
        .await
        .expect("the stored token works");

    sim.running.shutdown().await;
}

#[tokio::test]
async fn a_rejected_refresh_token_is_not_presented_again_until_the_secret_changes() {
    let env = TestEnv::new("clients-revoked").await;
    let sim = Sim::start().await;
    let secret = create_secret(&env, "xero-app", INITIAL_REFRESH_TOKEN).await;
    let rotation = rotation(&sim, &env);
    sim.revoke_all_xero().await;

    let error = rotation.access_token(&secret, FRESH).await.unwrap_err();
    assert_eq!(
        error.category(),
        ErrorCategory::XeroRefreshTokenRejected,
        "{error}"
    );
    assert!(
        error
            .message()
            .contains("the refresh token expired, was revoked or was superseded"),
        "{error}"
    );
    assert!(!error.message().contains(INITIAL_REFRESH_TOKEN));
    assert_eq!(sim.xero_token_requests().await, 1);

    for _ in 0..3 {
        let again = rotation.access_token(&secret, FRESH).await.unwrap_err();
        assert_eq!(again.category(), ErrorCategory::XeroRefreshTokenRejected);
    }
    assert_eq!(
        sim.xero_token_requests().await,
        1,
        "no further exchange attempts"
    );

    // A new refresh token in the Secret (a sign-in) is tried.
    set_stored_refresh_token(
        &env.client,
        &env.namespace,
        "xero-app",
        "another-refresh-token",
    )
    .await;
    let error = rotation.access_token(&secret, FRESH).await.unwrap_err();
    assert_eq!(error.category(), ErrorCategory::XeroRefreshTokenRejected);
    assert_eq!(sim.xero_token_requests().await, 2);

    sim.running.shutdown().await;
}

#[tokio::test]
async fn a_refresh_token_saved_from_a_file_with_a_newline_still_works() {
    let env = TestEnv::new("clients-newline").await;
    let sim = Sim::start().await;
    let secret = create_secret(&env, "xero-app", &format!("{INITIAL_REFRESH_TOKEN}\n")).await;
    rotation(&sim, &env)
        .access_token(&secret, FRESH)
        .await
        .expect("the token without its newline is exchanged");
    let stored = stored_refresh_token(&env, "xero-app").await;
    assert!(
        !stored.ends_with('\n') && stored != INITIAL_REFRESH_TOKEN,
        "{stored:?}"
    );

    // White space alone is no value.
    create_secret(&env, "blank", " \n").await;
    let error = rotation(&sim, &env)
        .access_token(&XeroSecretRef::new(&env.namespace, "blank"), FRESH)
        .await
        .unwrap_err();
    assert_eq!(error.category(), ErrorCategory::SecretKeyMissing, "{error}");
    sim.running.shutdown().await;
}

#[tokio::test]
async fn missing_secrets_and_keys_are_named_without_values() {
    let env = TestEnv::new("clients-missing").await;
    let sim = Sim::start().await;
    let rotation = rotation(&sim, &env);

    let error = rotation
        .access_token(&XeroSecretRef::new(&env.namespace, "absent"), FRESH)
        .await
        .unwrap_err();
    assert_eq!(error.category(), ErrorCategory::SecretNotFound);
    assert!(
        error
            .message()
            .contains(&format!("{}/absent", env.namespace)),
        "{error}"
    );

    create_secret(&env, "partial", INITIAL_REFRESH_TOKEN).await;
    let mut secret = XeroSecretRef::new(&env.namespace, "partial");
    secret.refresh_token_key = "xeroRefreshToken".into();
    let error = rotation.access_token(&secret, FRESH).await.unwrap_err();
    assert_eq!(error.category(), ErrorCategory::SecretKeyMissing);
    assert!(error.message().contains("xeroRefreshToken"), "{error}");
    assert!(!error.message().contains(INITIAL_REFRESH_TOKEN));
    assert!(!error.message().contains(XERO_CLIENT_SECRET));
    assert_eq!(sim.xero_token_requests().await, 0);

    sim.running.shutdown().await;
}
