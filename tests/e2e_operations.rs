//! Running the operator as production runs it: with only the chart's RBAC, as two replicas with
//! leader election, and scraped by Prometheus.

mod e2e_support;

use std::time::{Duration, Instant};

use e2e_support::*;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use xero_operator::api::conditions;
use xero_operator::api::{Reason, XeroDataset};

const WAIT: Duration = Duration::from_secs(60);
const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/xero-operator");

fn refreshes_path() -> String {
    format!("/v1.0/myorg/groups/{WORKSPACE}/datasets/{DATASET}/refreshes")
}

/// Installs the chart into the scenario's namespace, watching only that namespace, and writes a
/// kubeconfig that authenticates as the chart's ServiceAccount (a TokenRequest token).
async fn install_chart_and_use_its_service_account(s: &mut Scenario) {
    let ns = s.env.namespace.clone();
    install_chart_as(s, "xo", &[format!("watchNamespaces={{{ns}}}")]).await;
}

/// Installs the chart as `release` into the scenario's namespace with `sets` (`--set` values)
/// and writes a kubeconfig that authenticates as its ServiceAccount (a TokenRequest token).
async fn install_chart_as(s: &mut Scenario, release: &str, sets: &[String]) {
    let ns = s.env.namespace.clone();
    let account = format!("{release}-xero-operator");
    let helm_home = tempfile::tempdir().expect("helm home");
    let output = tokio::process::Command::new(&xero_testbed::ensure_binaries().expect("helm").helm)
        .args([
            "install",
            release,
            CHART,
            "--namespace",
            &ns,
            "--set",
            "crds.install=false",
        ])
        .args(sets.iter().flat_map(|set| ["--set", set.as_str()]))
        .env("KUBECONFIG", s.env.plane.kubeconfig_path())
        .env("HELM_CACHE_HOME", helm_home.path().join("cache"))
        .env("HELM_CONFIG_HOME", helm_home.path().join("config"))
        .env("HELM_DATA_HOME", helm_home.path().join("data"))
        .output()
        .await
        .expect("run helm");
    assert!(
        output.status.success(),
        "helm install: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: Vec::new(),
            expiration_seconds: Some(3600),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    let token = Api::<ServiceAccount>::namespaced(s.env.client.clone(), &ns)
        .create_token_request(&account, &PostParams::default(), &request)
        .await
        .expect("token for the chart's ServiceAccount")
        .status
        .expect("token status")
        .token;
    let kubeconfig = s
        .env
        .plane
        .kubeconfig_for(&format!("system:serviceaccount:{ns}:{account}"), &token)
        .expect("kubeconfig");
    let path = s.env.plane.dir().join(format!("kubeconfig-{ns}"));
    std::fs::write(&path, kubeconfig).expect("write kubeconfig");
    s.kubeconfig = path;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_charts_service_account_has_enough_rights_to_heal() {
    let mut s = Scenario::start("e2e-chart-rbac", &broken_tenant_seed()).await;
    s.create_secrets().await;
    s.apply_dataset(&dataset_manifest("rbac", json!({}))).await;
    install_chart_and_use_its_service_account(&mut s).await;
    let ns = s.env.namespace.clone();
    let flags = leader_flags(&ns);
    s.start_operator_with(&flags.iter().map(String::as_str).collect::<Vec<_>>());

    s.wait_condition(
        "rbac",
        conditions::READY,
        "True",
        Some(Reason::Reconciled.as_str()),
        WAIT,
    )
    .await;
    assert_ne!(
        s.secret_value("xero-app", "refreshToken").await,
        INITIAL_REFRESH_TOKEN
    );
    assert_eq!(s.count("POST", &refreshes_path()).await, 1);
    // Events were written with the chart's rights too.
    assert!(
        s.event_reasons("rbac")
            .await
            .contains(&Reason::RefreshTriggered.as_str().to_owned())
    );
    // A denial shows as "Forbidden"/"forbidden" or as the status code 403 on its own; not as a
    // substring, which a log timestamp such as `57.885403Z` contains.
    let log = s.operator_log();
    assert!(
        !log.to_lowercase().contains("forbidden") && !has_word(&log, "403"),
        "{}",
        tail(&log, 40)
    );
}

/// Where the chart lets the operator read Secrets when it watches every namespace.
enum SecretAccess {
    /// In the scenario's namespace only (`rbac.secretNamespaces`).
    OptedIn,
    /// Everywhere (`rbac.clusterWideSecrets`).
    ClusterWide,
}

/// A scenario with the chart's operator watching every namespace: a XeroDataset in the
/// scenario's namespace and one in another namespace (`{ns}-else`) whose Secret holds
/// `other-refresh-token`, both labelled for this test alone (tests share the API server).
/// Installs the chart for `secrets` and starts the operator with the chart's rights.
async fn every_namespace_scenario(name: &str, secrets: SecretAccess) -> (Scenario, String) {
    let mut seed = seed_value();
    seed["xero"]["refreshTokens"] =
        serde_yaml::from_str("[{token: initial-refresh-token}, {token: other-refresh-token}]")
            .expect("tokens");
    let mut s = Scenario::start(name, &seed_text(&seed)).await;
    let ns = s.env.namespace.clone();
    let elsewhere = s
        .env
        .plane
        .namespace(&s.env.client, &format!("{ns}-else"))
        .await
        .expect("another namespace");
    let label = json!({"xero-operator.dev/e2e": ns});
    let mut manifest = dataset_manifest("rbac", json!({}));
    manifest["metadata"]["labels"] = label.clone();
    s.create_secrets().await;
    s.apply_dataset(&manifest).await;
    for (name, data) in [
        (
            "xero-app",
            json!({"clientId": XERO_CLIENT, "clientSecret": "xero-secret", "refreshToken": "other-refresh-token"}),
        ),
        (
            "powerbi-sp",
            json!({"tenantId": TENANT, "clientId": SP_CLIENT, "clientSecret": "sp-secret"}),
        ),
    ] {
        let secret: Secret =
            serde_json::from_value(json!({"metadata": {"name": name}, "stringData": data}))
                .expect("secret");
        Api::<Secret>::namespaced(s.env.client.clone(), &elsewhere)
            .create(&PostParams::default(), &secret)
            .await
            .expect("a Secret elsewhere");
    }
    let mut other = dataset_manifest("other", json!({}));
    other["metadata"]["labels"] = label;
    Api::<XeroDataset>::namespaced(s.env.client.clone(), &elsewhere)
        .patch(
            "other",
            &PatchParams::apply("e2e-test").force(),
            &Patch::Apply(&other),
        )
        .await
        .expect("a XeroDataset elsewhere");

    let (set, granted) = match secrets {
        SecretAccess::OptedIn => (format!("rbac.secretNamespaces={{{ns}}}"), ns.clone()),
        SecretAccess::ClusterWide => ("rbac.clusterWideSecrets=true".to_owned(), "*".to_owned()),
    };
    let sets = [set, "rbac.aggregateToDefaultRoles=false".to_owned()];
    install_chart_as(&mut s, &ns, &sets).await;
    s.watch_everywhere = true;
    let mut all_flags = leader_flags(&ns);
    all_flags.extend(["--secret-namespaces".to_owned(), granted]);
    all_flags.extend([
        "--watch-label-selector".to_owned(),
        format!("xero-operator.dev/e2e={ns}"),
    ]);
    s.start_operator_with(&all_flags.iter().map(String::as_str).collect::<Vec<_>>());
    (s, elsewhere)
}

/// Waits until the XeroDataset `other` in `namespace` is Ready with `reason`; its message.
async fn wait_other(s: &Scenario, namespace: &str, ready: &str, reason: Reason) -> String {
    let api = Api::<XeroDataset>::namespaced(s.env.client.clone(), namespace);
    let deadline = Instant::now() + WAIT;
    loop {
        let xds = api.get("other").await.expect("read");
        let condition = xds
            .status
            .as_ref()
            .and_then(|st| conditions::find_condition(&st.conditions, conditions::READY))
            .cloned();
        if let Some(c) = condition.filter(|c| c.status == ready && c.reason == reason.as_str()) {
            return c.message;
        }
        assert!(
            Instant::now() < deadline,
            "no Ready={ready} {reason}: {:?}\n{}",
            xds.status,
            tail(&s.operator_log(), 40)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn refresh_token_in(s: &Scenario, namespace: &str) -> String {
    let secret = Api::<Secret>::namespaced(s.env.client.clone(), namespace)
        .get("xero-app")
        .await
        .expect("read");
    let bytes = secret.data.and_then(|d| d.get("refreshToken").cloned());
    String::from_utf8(bytes.expect("a refresh token").0).expect("text")
}

/// The chart's default mode: XeroDatasets in every namespace, Secrets only where a namespace
/// opted in (`rbac.secretNamespaces`). With exactly those rights the operator heals the
/// dataset of the opted-in namespace, and a XeroDataset elsewhere is told SecretForbidden
/// (its Secret is never asked for, and a patch would be refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watching_every_namespace_the_operator_reads_secrets_only_where_they_opted_in() {
    let (s, elsewhere) = every_namespace_scenario("e2e-chart-all", SecretAccess::OptedIn).await;
    s.wait_reconciled("rbac", WAIT).await;
    assert_ne!(
        s.secret_value("xero-app", "refreshToken").await,
        INITIAL_REFRESH_TOKEN
    );
    let message = wait_other(&s, &elsewhere, "False", Reason::SecretForbidden).await;
    assert!(message.contains(&elsewhere), "{message}");
    assert!(message.contains("rbac.secretNamespaces"), "{message}");
    // The Secret elsewhere was never exchanged, and the API server was never refused.
    assert_eq!(
        refresh_token_in(&s, &elsewhere).await,
        "other-refresh-token"
    );
    let log = s.operator_log();
    assert!(!has_word(&log, "403"), "{}", tail(&log, 40));
}

/// With `rbac.clusterWideSecrets` the chart binds the Secret rules cluster-wide and the
/// operator watches Secrets everywhere (`--secret-namespaces '*'`): both namespaces' datasets
/// get past their Secrets, whose refresh tokens are rotated and stored with those rights.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_cluster_wide_secrets_every_namespace_is_served() {
    let (s, elsewhere) =
        every_namespace_scenario("e2e-chart-cluster", SecretAccess::ClusterWide).await;
    s.wait_reconciled("rbac", WAIT).await;
    wait_other(&s, &elsewhere, "True", Reason::Reconciled).await;
    assert_ne!(
        refresh_token_in(&s, &elsewhere).await,
        "other-refresh-token"
    );
    let log = s.operator_log();
    assert!(
        !log.to_lowercase().contains("forbidden") && !has_word(&log, "403"),
        "{}",
        tail(&log, 40)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_one_leader_and_a_quick_hand_over_without_duplicates() {
    let mut s = Scenario::start("e2e-ha", &broken_tenant_seed()).await;
    s.create_secrets().await;
    s.apply_dataset(&dataset_manifest("ha", json!({}))).await;
    let ns = s.env.namespace.clone();
    let flags = leader_flags(&ns);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let first = s.spawn_operator(&flags);
    s.wait_condition(
        "ha",
        conditions::READY,
        "True",
        Some(Reason::Reconciled.as_str()),
        WAIT,
    )
    .await;
    let second = s.spawn_operator(&flags);
    // Only the leader reconciles: one refresh for the one failure.
    assert_eq!(s.count("POST", &refreshes_path()).await, 1);

    // The leader dies; a refresh request made right after is served by the standby within the
    // lease hand-over time.
    first.kill();
    let killed = Instant::now();
    s.datasets()
        .patch(
            "ha",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"annotations": {"xero-operator.dev/refresh-requested-at": "after-failover"}}})),
        )
        .await
        .expect("annotate");
    s.wait_for(
        "ha",
        "the standby to serve the request",
        Duration::from_secs(30),
        |x| {
            x.status
                .as_ref()
                .and_then(|st| st.last_handled_refresh_at.as_deref())
                == Some("after-failover")
        },
    )
    .await;
    let hand_over = killed.elapsed();
    assert!(
        hand_over <= Duration::from_secs(15),
        "hand-over took {hand_over:?}"
    );
    s.wait_condition(
        "ha",
        conditions::READY,
        "True",
        Some(Reason::Reconciled.as_str()),
        WAIT,
    )
    .await;
    assert_eq!(
        s.count("POST", &refreshes_path()).await,
        2,
        "exactly the requested refresh, no duplicate"
    );
    eprintln!("leader hand-over served a request {hand_over:?} after the leader was killed");
    second.kill();
}

/// Checks that `text` is Prometheus text exposition: comments, or `name{labels} value` samples.
fn assert_prometheus_text(text: &str) {
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample: {line}"));
        assert!(value.parse::<f64>().is_ok(), "not a number in {line}");
        let name = series.split('{').next().unwrap_or_default();
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            assert!(
                labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                "bad labels in {line}"
            );
        }
    }
}

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_per_object_series_leave_with_the_object() {
    let mut s = Scenario::start("e2e-metrics", &broken_tenant_seed()).await;
    s.create_secrets().await;
    s.apply_dataset(&dataset_manifest("observed", json!({})))
        .await;
    s.start_operator();
    s.wait_condition(
        "observed",
        conditions::READY,
        "True",
        Some(Reason::Reconciled.as_str()),
        WAIT,
    )
    .await;
    let ns = s.env.namespace.clone();
    let last_success = format!(
        r#"xero_operator_dataset_last_success_timestamp_seconds{{namespace="{ns}",name="observed"}}"#
    );
    // The metrics follow the status write that made the dataset Ready: wait for them.
    let deadline = Instant::now() + WAIT;
    let text = loop {
        let text = s.metrics().await;
        if sample(&text, &last_success).is_some() || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_prometheus_text(&text);
    let now = jiff::Timestamp::now().as_second() as f64;
    let value =
        sample(&text, &last_success).unwrap_or_else(|| panic!("no {last_success} in\n{text}"));
    assert!(
        (now - value).abs() < 120.0,
        "last success {value} is not about now ({now})"
    );
    assert!(
        sample(&text, r#"xero_operator_reconciles_total{result="Success"}"#)
            .is_some_and(|v| v >= 1.0)
    );
    assert!(
        sample(&text, "xero_operator_reconcile_duration_seconds_count").is_some_and(|v| v >= 1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"xero_operator_actions_total{action="ScheduleUpdated"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"xero_operator_actions_total{action="CredentialsApplied"}"#
        ),
        Some(1.0)
    );

    s.datasets()
        .delete("observed", &DeleteParams::default())
        .await
        .expect("delete");
    let deadline = Instant::now() + WAIT;
    loop {
        let text = s.metrics().await;
        let gone = sample(&text, &last_success).is_none()
            && sample(
                &text,
                r#"xero_operator_datasets{ready="True",reason="Reconciled"}"#,
            ) == Some(0.0);
        if gone {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "per-object series still there:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_operator_gracefully_and_releases_the_lease() {
    let mut s = Scenario::start("e2e-sigterm", &broken_tenant_seed()).await;
    s.create_secrets().await;
    s.apply_dataset(&dataset_manifest("term", json!({}))).await;
    let ns = s.env.namespace.clone();
    let flags = leader_flags(&ns);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let operator = s.spawn_operator(&flags);
    s.wait_condition(
        "term",
        conditions::READY,
        "True",
        Some(Reason::Reconciled.as_str()),
        WAIT,
    )
    .await;
    let status = operator.terminate(Duration::from_secs(15));
    assert!(
        status.success(),
        "exit status {status}:\n{}",
        tail(&s.operator_log(), 30)
    );
    assert!(s.operator_log().contains("stopped"));
    // The lease was released: a new replica leads at once, not after the lease expires.
    let lease =
        Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(s.env.client.clone(), &ns)
            .get("xero-operator")
            .await
            .expect("lease");
    let holder = lease.spec.and_then(|spec| spec.holder_identity);
    assert_eq!(holder, None, "the lease is still held");
}
