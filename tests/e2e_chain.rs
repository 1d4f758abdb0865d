//! Ready means the next refresh will work: the whole chain (Power BI, the dataset, its Xero
//! datasource, the Xero token exchange, the organisation, Power BI accepting the credentials) is
//! checked as soon as a XeroDataset is applied or a Secret changes, not at the next slot. The
//! real operator binary against the testbed and the simulator.

mod e2e_support;

use std::time::Duration;

use e2e_support::*;
use kube::api::{Patch, PatchParams};
use reqwest::Method;
use serde_json::json;
use xero_operator::api::Reason;
use xero_operator::api::conditions;

/// Within seconds of applying: no slot is due for days, so only the chain check can tell.
const WAIT: Duration = Duration::from_secs(30);

/// Healthy datasets (the last refresh completed) whose only slot is at 03:00 three days from now.
fn healthy_seed(count: usize) -> serde_yaml::Value {
    let mut seed: serde_yaml::Value =
        serde_yaml::from_str(&many_datasets_seed(count)).expect("seed");
    for dataset in seed["workspaces"][0]["datasets"]
        .as_sequence_mut()
        .expect("datasets")
    {
        dataset["refreshHistory"][0]["status"] = "Completed".into();
        dataset["refreshHistory"][0]["serviceExceptionJson"] = "".into();
        dataset["schedule"] = serde_yaml::from_str(&format!(
            "{{enabled: true, days: [{}], times: ['03:00'], localTimeZoneId: UTC, notifyOption: NoNotification}}",
            day_far_from_now()
        ))
        .expect("schedule");
    }
    seed
}

fn by_id(i: usize, overrides: serde_json::Value) -> serde_json::Value {
    let mut spec = json!({
        "dataset": {"id": dataset_id(i), "name": null},
        "schedule": {"days": [day_far_from_now()], "times": ["03:00"]},
    });
    merge(&mut spec, overrides);
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_broken_link_of_the_chain_shows_at_once_with_its_own_reason() {
    let mut seed = healthy_seed(5);
    // Dataset 3 reads SQL, not Xero.
    seed["workspaces"][0]["datasets"][3]["datasources"][0]["connectionDetails"] =
        serde_yaml::from_str("{kind: Sql, server: sql.example.com, database: sales}").expect("sql");
    seed["xero"]["refreshTokens"] = serde_yaml::from_str(
        "[{token: initial-refresh-token}, {token: revoked-refresh-token}, {token: other-refresh-token}]",
    )
    .expect("tokens");
    let mut s = Scenario::start("e2e-chain", &seed_text(&seed)).await;
    s.admin(
        Method::POST,
        "xero/revoke",
        json!({"refreshToken": "revoked-refresh-token"}),
    )
    .await;
    s.create_secrets().await;
    s.create_secret(
        "xero-wrong-app",
        &[
            ("clientId", XERO_CLIENT),
            ("clientSecret", "not-the-app-secret"),
            ("refreshToken", "other-refresh-token"),
        ],
    )
    .await;
    s.create_secret(
        "xero-revoked",
        &[
            ("clientId", XERO_CLIENT),
            ("clientSecret", "xero-secret"),
            ("refreshToken", "revoked-refresh-token"),
        ],
    )
    .await;
    let cases = [
        ("healthy", by_id(0, json!({})), Reason::Reconciled),
        (
            "typo",
            by_id(1, json!({"xero": {"organisation": "Demo Company"}})),
            Reason::OrganisationNotFound,
        ),
        (
            "wrong-app",
            by_id(
                2,
                json!({"xero": {"credentialsSecretRef": {"name": "xero-wrong-app"}}}),
            ),
            Reason::XeroAppRejected,
        ),
        ("not-xero", by_id(3, json!({})), Reason::DatasourceNotFound),
        (
            "revoked",
            by_id(
                4,
                json!({"xero": {"credentialsSecretRef": {"name": "xero-revoked"}}}),
            ),
            Reason::XeroRefreshTokenRejected,
        ),
    ];
    for (name, spec, _) in &cases {
        s.apply_dataset(&dataset_manifest(name, spec.clone())).await;
    }
    s.start_operator();
    for (name, _, reason) in &cases {
        let ready = if *reason == Reason::Reconciled {
            "True"
        } else {
            "False"
        };
        let xds = s
            .wait_condition(name, conditions::READY, ready, Some(reason.as_str()), WAIT)
            .await;
        let status = xds.status.expect("status");
        if *reason == Reason::Reconciled {
            // Ready only once the chain passed for this generation.
            let verified = status
                .credentials
                .as_ref()
                .and_then(|c| c.verified_for.clone())
                .expect("verifiedFor");
            assert!(verified.starts_with("1-"), "{verified}");
        }
    }
    // The healthy one applied credentials although no slot is near, and nothing refreshed.
    for i in 0..cases.len() {
        let refreshes = format!(
            "/v1.0/myorg/groups/{WORKSPACE}/datasets/{}/refreshes",
            dataset_id(i)
        );
        assert_eq!(s.count("POST", &refreshes).await, 0, "{refreshes}");
    }
    assert_eq!(
        s.count("PATCH", "/v1.0/myorg/gateways/").await,
        1,
        "only the healthy one's credentials were accepted"
    );
    let revoked = s.datasets().get("revoked").await.expect("read");
    let ready = conditions::find_condition(
        &revoked.status.as_ref().expect("status").conditions,
        conditions::READY,
    )
    .expect("Ready")
    .clone();
    assert!(
        ready
            .message
            .contains("`xero-operator xero-login --secret xero-revoked -n "),
        "{}",
        ready.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_grant_is_reported_as_such_and_a_new_sign_in_heals_it_within_seconds() {
    let mut seed = healthy_seed(1);
    seed["xero"]["refreshTokens"] =
        serde_yaml::from_str("[{token: initial-refresh-token}, {token: spare-refresh-token}]")
            .expect("tokens");
    let mut s = Scenario::start("e2e-regrant", &seed_text(&seed)).await;
    s.create_secrets().await;
    s.apply_dataset(&dataset_manifest("regrant", by_id(0, json!({}))))
        .await;
    s.start_operator();
    s.wait_reconciled("regrant", WAIT).await;

    // The user revokes the app's access in Xero: the operator's cached access token now sees
    // no organisation. A refresh request makes it apply credentials with that token.
    let current = s.secret_value("xero-app", "refreshToken").await;
    s.admin(
        Method::POST,
        "xero/revoke",
        json!({"refreshToken": current}),
    )
    .await;
    s.request_refresh("regrant", "after-revoke").await;
    // Reported as the rejected sign-in it is, not as a missing organisation.
    s.wait_condition(
        "regrant",
        conditions::READY,
        "False",
        Some(Reason::XeroRefreshTokenRejected.as_str()),
        WAIT,
    )
    .await;

    // A new sign-in writes a new refresh token: healed within seconds, operator still running.
    let secret: k8s_openapi::api::core::v1::Secret =
        serde_json::from_value(json!({"stringData": {"refreshToken": "spare-refresh-token"}}))
            .expect("patch");
    s.secrets()
        .patch("xero-app", &PatchParams::default(), &Patch::Merge(&secret))
        .await
        .expect("patch secret");
    s.wait_reconciled("regrant", WAIT).await;
    assert_ne!(
        s.secret_value("xero-app", "refreshToken").await,
        "spare-refresh-token",
        "the new sign-in's token was exchanged and rotated"
    );
}

/// Power BI may refuse a cached access token as expired before the cache expects it (clock skew,
/// early revocation): the operator drops it and tries once more with a new one instead of failing
/// until its cache expires an hour later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_power_bi_token_expired_early_is_replaced_at_once() {
    let mut s = Scenario::start("e2e-expired", &seed_text(&healthy_seed(1))).await;
    s.create_secrets().await;
    s.apply_dataset(&dataset_manifest("expired", by_id(0, json!({}))))
        .await;
    s.start_operator();
    s.wait_reconciled("expired", WAIT).await;
    let entra_before = s
        .count("POST", &format!("/{TENANT}/oauth2/v2.0/token"))
        .await;

    // Two hours pass for the services, not for the operator: its cached tokens are now expired.
    s.admin(Method::POST, "clock/advance", json!({"seconds": 7200}))
        .await;
    s.request_refresh("expired", "after-expiry").await;
    s.wait_for("expired", "the requested refresh completed", WAIT, |x| {
        let status = x.status.as_ref();
        status.and_then(|st| st.last_handled_refresh_at.as_deref()) == Some("after-expiry")
            && status
                .and_then(|st| st.last_refresh.as_ref())
                .is_some_and(|r| r.status == "Completed")
    })
    .await;
    let expired: Vec<_> = s
        .requests("", "/v1.0/")
        .await
        .into_iter()
        .filter(|r| r["status"] == 403)
        .collect();
    assert_eq!(
        expired.len(),
        1,
        "one refusal, then a new token: {expired:?}"
    );
    assert_eq!(
        s.count("POST", &format!("/{TENANT}/oauth2/v2.0/token"))
            .await,
        entra_before + 1
    );
}

/// A dataset a person configured belongs to that person: the operator's principal may change it
/// only after a Take Over. Power BI refuses with "This operation is only supported for the
/// dataset owner" (400 in users' reports, the simulator's default): with `takeOver: true` the
/// operator takes it over and reads the datasource binding again; without, the status says what
/// a person must do, with the dataset's settings page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dataset_someone_else_owns_is_taken_over_when_allowed_and_explained_when_not() {
    let mut seed = healthy_seed(2);
    for dataset in seed["workspaces"][0]["datasets"]
        .as_sequence_mut()
        .expect("datasets")
    {
        dataset["configuredBy"] = "finance.analyst@example.com".into();
    }
    let mut s = Scenario::start("e2e-owner", &seed_text(&seed)).await;
    s.create_secrets().await;
    s.apply_dataset(&dataset_manifest(
        "allowed",
        by_id(0, json!({"powerBI": {"takeOver": true}})),
    ))
    .await;
    s.apply_dataset(&dataset_manifest("not-allowed", by_id(1, json!({}))))
        .await;
    s.start_operator();

    s.wait_reconciled("allowed", WAIT).await;
    let take_over = format!(
        "/v1.0/myorg/groups/{WORKSPACE}/datasets/{}/Default.TakeOver",
        dataset_id(0)
    );
    assert_eq!(s.count("POST", &take_over).await, 1);

    let refused = s
        .wait_condition(
            "not-allowed",
            conditions::READY,
            "False",
            Some(Reason::PowerBIForbidden.as_str()),
            WAIT,
        )
        .await;
    let message = conditions::find_condition(
        &refused.status.as_ref().expect("status").conditions,
        conditions::READY,
    )
    .expect("Ready")
    .message
    .clone();
    let settings = format!(
        "https://app.powerbi.com/groups/{WORKSPACE}/settings/datasets/{}",
        dataset_id(1)
    );
    assert!(message.contains(&settings), "{message}");
    assert!(message.contains("spec.powerBI.takeOver"), "{message}");
    let not_taken = format!(
        "/v1.0/myorg/groups/{WORKSPACE}/datasets/{}/Default.TakeOver",
        dataset_id(1)
    );
    assert_eq!(s.count("POST", &not_taken).await, 0);
}

/// A schedule a person set up in the portal stores `notifyOption: MailOnFailure`, which a
/// service principal may not keep ("Invalid NotifyOption value 'MailOnFailure' for app only
/// owner requests"): after the Take Over the operator's change sets `NoNotification`, and a
/// disable takes two changes, `NoNotification` first and then the disable alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_a_person_set_up_with_failure_mails_is_changed_and_switched_off() {
    let mut seed = healthy_seed(2);
    for dataset in seed["workspaces"][0]["datasets"]
        .as_sequence_mut()
        .expect("datasets")
    {
        dataset["configuredBy"] = "finance.analyst@example.com".into();
        dataset["schedule"]["notifyOption"] = "MailOnFailure".into();
    }
    let mut s = Scenario::start("e2e-notify", &seed_text(&seed)).await;
    s.create_secrets().await;
    let take_over = json!({"powerBI": {"takeOver": true}});
    let mut changed = by_id(0, take_over.clone());
    merge(&mut changed, json!({"schedule": {"times": ["04:00"]}}));
    let mut off = by_id(1, take_over);
    merge(&mut off, json!({"schedule": {"enabled": false}}));
    s.apply_dataset(&dataset_manifest("changed", changed)).await;
    s.apply_dataset(&dataset_manifest("off", off)).await;
    s.start_operator();
    s.wait_reconciled("changed", WAIT).await;
    s.wait_reconciled("off", WAIT).await;

    let schedule = s.sim_dataset_by_id(&dataset_id(0)).await["schedule"].clone();
    assert_eq!(schedule["times"], json!(["04:00"]), "{schedule}");
    assert_eq!(schedule["enabled"], true);
    assert_eq!(schedule["notifyOption"], "NoNotification");
    let schedule = s.sim_dataset_by_id(&dataset_id(1)).await["schedule"].clone();
    assert_eq!(schedule["enabled"], false, "{schedule}");
    assert_eq!(schedule["notifyOption"], "NoNotification");
    let path = format!(
        "/v1.0/myorg/groups/{WORKSPACE}/datasets/{}/refreshSchedule",
        dataset_id(1)
    );
    let accepted = s
        .requests("PATCH", &path)
        .await
        .iter()
        .filter(|r| r["status"] == 200)
        .count();
    assert_eq!(accepted, 2, "NoNotification, then the disable alone");
}

/// Without `spec.powerBI.credentialsSecretRef` a XeroDataset would use the operator's own Power
/// BI identity; it is offered only to the namespaces the operator lists, so that nobody who may
/// edit a XeroDataset elsewhere can point it at another team's workspace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_own_identity_is_offered_only_to_listed_namespaces() {
    let mut s = Scenario::start("e2e-identity", &broken_tenant_seed()).await;
    s.create_secrets().await;
    let mut manifest = dataset_manifest("borrower", json!({}));
    manifest["spec"]
        .as_object_mut()
        .expect("spec")
        .remove("powerBI");
    s.apply_dataset(&manifest).await;
    s.start_operator();
    let ready = s
        .wait_not_ready("borrower", Reason::InvalidSpec.as_str(), WAIT)
        .await;
    assert!(ready.contains("--workload-identity-namespaces"), "{ready}");
    assert_eq!(
        s.count("POST", "/v1.0/").await,
        0,
        "nothing asked of Power BI"
    );

    // Listed, but for other workspaces only: refused, naming the workspace flag.
    let ns = s.env.namespace.clone();
    s.start_operator_with(&[
        "--workload-identity-namespaces",
        &ns,
        "--workload-identity-workspaces",
        "0b9f1b7e-1111-4c3a-9d2e-5f6a7b8c9d0e",
    ]);
    s.wait_for("borrower", "the workspace gate's message", WAIT, |x| {
        x.status
            .as_ref()
            .and_then(|st| conditions::find_condition(&st.conditions, conditions::READY))
            .is_some_and(|ready| {
                ready.reason == Reason::InvalidSpec.as_str()
                    && ready.message.contains("--workload-identity-workspaces")
                    && ready.message.contains(WORKSPACE)
            })
    })
    .await;
    assert_eq!(s.count("POST", "/v1.0/").await, 0);

    // Listed with its workspace, the namespace gets past the gates to the identity itself
    // (absent here: no workload identity webhook ran).
    let upper = WORKSPACE.to_ascii_uppercase();
    s.start_operator_with(&[
        "--workload-identity-namespaces",
        &ns,
        "--workload-identity-workspaces",
        &format!("0b9f1b7e-1111-4c3a-9d2e-5f6a7b8c9d0e, {upper}"),
    ]);
    s.wait_condition(
        "borrower",
        conditions::READY,
        "False",
        Some(Reason::PowerBIUnauthorized.as_str()),
        WAIT,
    )
    .await;
}

/// A value pasted wrongly (a tenant id with a character missing) is named, by key, at once,
/// without a call to Entra ID with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_of_the_wrong_shape_is_named_by_its_key() {
    let mut s = Scenario::start("e2e-shape", &broken_tenant_seed()).await;
    s.create_secret(
        "powerbi-sp",
        &[
            ("tenantId", &TENANT[..35]),
            ("clientId", SP_CLIENT),
            ("clientSecret", "sp-secret"),
        ],
    )
    .await;
    s.create_secret(
        "xero-app",
        &[
            ("clientId", XERO_CLIENT),
            ("clientSecret", "xero-secret"),
            ("refreshToken", INITIAL_REFRESH_TOKEN),
        ],
    )
    .await;
    s.apply_dataset(&dataset_manifest("pasted", json!({})))
        .await;
    s.start_operator();
    let message = s
        .wait_not_ready("pasted", Reason::SecretValueInvalid.as_str(), WAIT)
        .await;
    assert!(message.contains("\"tenantId\""), "{message}");
    assert!(
        !message.contains(&TENANT[..35]),
        "the value is not shown: {message}"
    );
    assert_eq!(s.count("POST", "/").await, 0, "nothing was sent anywhere");
}

/// Xero limits the calls of one app in one organisation (5,000 a day), and the refresh reads
/// the organisation through that app. When another integration of the same app has used the
/// day up, a refresh would only fail: the operator reads the app's calls left before it applies
/// credentials, reports `XeroThrottled` and spends none of Power BI's refreshes; once Xero's
/// day is over, the next request refreshes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organisation_whose_xero_day_is_used_up_is_reported_and_costs_no_refresh() {
    const ORGANISATION: &str = "fe79f7dd-b6d4-4a92-ba7b-538af6289c58";
    let mut seed = healthy_seed(1);
    seed["config"]["xeroOrganisationCallsPerDay"] = 50.into();
    seed["xero"]["refreshTokens"] = serde_yaml::from_str(
        "[{token: initial-refresh-token}, {token: another-integrations-token}]",
    )
    .expect("tokens");
    let mut s = Scenario::start("e2e-xero-day", &seed_text(&seed)).await;
    s.create_secrets().await;
    s.apply_dataset(&dataset_manifest("xero-day", by_id(0, json!({}))))
        .await;
    s.start_operator();
    s.wait_reconciled("xero-day", WAIT).await;

    // Another integration of the same Xero app reads the organisation until Xero says no more
    // today.
    let sim = s.sim.url();
    let tokens: serde_json::Value = s
        .http
        .post(format!("{sim}/connect/token"))
        .basic_auth(XERO_CLIENT, Some("xero-secret"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "another-integrations-token"),
        ])
        .send()
        .await
        .expect("exchange")
        .json()
        .await
        .expect("tokens");
    let access = tokens["access_token"].as_str().expect("access token");
    let mut day_used_up = false;
    for _ in 0..60 {
        let answer = s
            .http
            .get(format!("{sim}/api.xro/2.0/Organisation"))
            .bearer_auth(access)
            .header("xero-tenant-id", ORGANISATION)
            .send()
            .await
            .expect("organisation");
        if answer.status() == 429 {
            let problem = answer.headers().get("x-rate-limit-problem");
            day_used_up = problem.is_some_and(|p| p == "day");
            if day_used_up {
                break;
            }
            // The minute is used up: the next one comes sooner for the simulator.
            s.admin(Method::POST, "clock/advance", json!({"seconds": 61}))
                .await;
        }
    }
    assert!(day_used_up, "the organisation's day is used up");
    let refreshes = format!("/v1.0/myorg/groups/{WORKSPACE}/datasets/");
    let started_before = s.count("POST", &refreshes).await;

    s.request_refresh("xero-day", "while-used-up").await;
    let message = s
        .wait_not_ready("xero-day", Reason::XeroThrottled.as_str(), WAIT)
        .await;
    assert!(message.contains("for the day"), "{message}");
    assert!(!message.contains(access), "{message}");
    assert_eq!(
        s.count("POST", &refreshes).await,
        started_before,
        "no refresh is started while it would fail"
    );

    // Xero's day ends (for the simulator); the next request refreshes.
    s.admin(Method::POST, "clock/advance", json!({"seconds": 86_400}))
        .await;
    s.request_refresh("xero-day", "next-day").await;
    s.wait_for("xero-day", "the next day's refresh completed", WAIT, |x| {
        let status = x.status.as_ref();
        status.and_then(|st| st.last_handled_refresh_at.as_deref()) == Some("next-day")
            && status
                .and_then(|st| st.last_refresh.as_ref())
                .is_some_and(|r| r.status == "Completed")
    })
    .await;
    s.wait_reconciled("xero-day", WAIT).await;
}

/// Power BI tests the connection when credentials are set and refuses ones that do not work
/// (400). A cached Xero token refused so gets one fresh exchange; refused again, the dataset
/// shows CredentialsRejected with Power BI's answer and waits for a change instead of retrying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_get_one_fresh_exchange_then_their_own_reason() {
    let mut s = Scenario::start("e2e-refused", &seed_text(&healthy_seed(1))).await;
    s.create_secrets().await;
    s.apply_dataset(&dataset_manifest("refused", by_id(0, json!({}))))
        .await;
    s.start_operator();
    s.wait_reconciled("refused", WAIT).await;
    let exchanges_before = s.count("POST", "/connect/token").await;
    let updates_before = s.count("PATCH", "/v1.0/myorg/gateways/").await;
    let refuse = |times: u32| json!({"method": "PATCH", "pathPrefix": "/v1.0/myorg/gateways/", "status": 400, "times": times});

    // Refused once: the cached token is replaced by a fresh one, which is accepted.
    s.admin(Method::POST, "faults", refuse(1)).await;
    s.request_refresh("refused", "refused-once").await;
    s.wait_for("refused", "the requested refresh completed", WAIT, |x| {
        let status = x.status.as_ref();
        status.and_then(|st| st.last_handled_refresh_at.as_deref()) == Some("refused-once")
            && status
                .and_then(|st| st.last_refresh.as_ref())
                .is_some_and(|r| r.status == "Completed")
    })
    .await;
    assert_eq!(
        s.count("POST", "/connect/token").await,
        exchanges_before + 1
    );
    assert_eq!(
        s.count("PATCH", "/v1.0/myorg/gateways/").await,
        updates_before + 2
    );

    // Refused every time: one fresh exchange, then its own reason, no third attempt.
    s.admin(Method::POST, "faults", refuse(3)).await;
    s.request_refresh("refused", "refused-always").await;
    let message = s
        .wait_not_ready("refused", Reason::CredentialsRejected.as_str(), WAIT)
        .await;
    assert!(message.contains("HTTP 400"), "{message}");
    assert_eq!(
        s.count("POST", "/connect/token").await,
        exchanges_before + 2
    );
    assert_eq!(
        s.count("PATCH", "/v1.0/myorg/gateways/").await,
        updates_before + 4
    );
}

/// Datasets whose Xero datasource is on an on-premises data gateway: the operator reads the
/// gateway's public key and sends the credentials encrypted (RSA-OAEP; the 1024-bit and the
/// larger-key scheme), which the gateway decrypts and Power BI accepts; where the operator's
/// principal is no admin of the gateway's data source the status says what a person must do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datasets_behind_on_premises_gateways_heal_with_encrypted_credentials() {
    let gateways = [
        ("0a0a0a0a-2048-4000-8000-000000000001", 2048, None),
        ("0a0a0a0a-1024-4000-8000-000000000002", 1024, None),
        (
            "0a0a0a0a-2048-4000-8000-000000000003",
            2048,
            Some("5c5c5c5c-0000-4000-8000-00000000abcd"),
        ),
    ];
    let mut seed = healthy_seed(3);
    let mut declared = Vec::new();
    for (i, (id, bits, admin)) in gateways.iter().enumerate() {
        seed["workspaces"][0]["datasets"][i]["datasources"][0]["gatewayId"] = (*id).into();
        let admins = admin.map_or(String::new(), |a| format!(", admins: [{a}]"));
        declared.push(format!(
            "{{id: {id}, name: Office gateway {i}, keyBits: {bits}{admins}}}"
        ));
    }
    seed["gateways"] =
        serde_yaml::from_str(&format!("[{}]", declared.join(", "))).expect("gateways");
    let mut s = Scenario::start("e2e-gateway", &seed_text(&seed)).await;
    s.create_secrets().await;
    for i in 0..3 {
        s.apply_dataset(&dataset_manifest(&format!("gw-{i}"), by_id(i, json!({}))))
            .await;
    }
    s.start_operator();
    for i in 0..2 {
        s.wait_reconciled(&format!("gw-{i}"), WAIT).await;
    }
    let message = s
        .wait_not_ready("gw-2", Reason::GatewayAdminRequired.as_str(), WAIT)
        .await;
    assert!(message.contains("Office gateway 2"), "{message}");
    assert!(
        message.contains("Manage connections and gateways"),
        "{message}"
    );

    // Every update went to an on-premises gateway, encrypted: none was refused as unreadable.
    let updates = s.requests("PATCH", "/v1.0/myorg/gateways/").await;
    assert!(updates.len() >= 3, "{updates:?}");
    assert!(
        updates.iter().all(|u| u["status"] != 400),
        "refused updates: {updates:?}"
    );
    // The healed datasets' credentials work: a requested refresh completes.
    s.request_refresh("gw-1", "behind-the-gateway").await;
    s.wait_for("gw-1", "the requested refresh completed", WAIT, |x| {
        let status = x.status.as_ref();
        status.and_then(|st| st.last_handled_refresh_at.as_deref()) == Some("behind-the-gateway")
            && status
                .and_then(|st| st.last_refresh.as_ref())
                .is_some_and(|r| r.status == "Completed")
    })
    .await;
    assert!(
        !s.operator_log().contains("credentialData"),
        "no plaintext credentials logged"
    );
}
