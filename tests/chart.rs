//! The Helm chart in charts/xero-operator: it lints clean, renders with defaults and with every
//! toggle on, the API server accepts what it renders, the values schema rejects typos, the RBAC
//! is exactly the least privilege the operator needs (checked on the rendered YAML and, after
//! `helm install`, with the ServiceAccount's own token), the pod passes the `restricted` Pod
//! Security Standard, and the CRD template stays equal to crds/xerodatasets.yaml.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use serde::Deserialize as _;
use serde_json::{Value, json};
use xero_testbed::{TestEnv, TestbedBinaries};

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/xero-operator");
const CRD_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/xerodatasets.yaml");
/// The release name of renders that do not touch the testbed; objects are named `xo-xero-operator`.
const RELEASE: &str = "xo";
const FULLNAME: &str = "xo-xero-operator";

/// Values that turn every optional feature on. `watchNamespaces` is added per test.
const EVERY_TOGGLE_ON: &str = r#"
metrics:
  serviceMonitor: {enabled: true, labels: {release: prometheus}}
prometheusRule: {enabled: true, labels: {release: prometheus}, additionalAlertLabels: {team: finance}}
grafanaDashboard: {enabled: true, annotations: {grafana_folder: Operators}}
networkPolicy:
  enabled: true
  apiServerCIDRs: [10.0.0.1/32]
  metricsFrom: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}}]
podDisruptionBudget: {enabled: true}
workloadIdentity:
  enabled: true
  clientId: 6f2d9a5e-1b4c-4d8e-9f00-0a1b2c3d4e5f
  tenantId: 0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0
  namespaces: [finance]
  workspaces: [f089354e-8366-4e18-aea3-4cb4a3a50b48]
endpoints:
  powerbiApiUrl: https://api.powerbi.example/
  authorityHost: https://login.example/
  xeroIdentityUrl: https://identity.xero.example/
  xeroApiUrl: https://api.xero.example/
cloud: usgov
extraEnv: [{name: HTTPS_PROXY, value: "http://proxy.internal:3128"}]
imagePullSecrets: [{name: registry}]
nodeSelector: {kubernetes.io/os: linux}
tolerations: [{key: dedicated, operator: Exists, effect: NoSchedule}]
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector: {matchLabels: {app.kubernetes.io/name: xero-operator}}
podAnnotations: {example.com/owner: finance}
podLabels: {example.com/team: finance}
serviceAccount: {annotations: {example.com/owner: finance}, labels: {example.com/team: finance}}
"#;

// ---------------------------------------------------------------------------------------------
// helm, kubectl and the rendered YAML

fn binaries() -> TestbedBinaries {
    xero_testbed::ensure_binaries().expect("the testbed binaries (./hack/testbed-bins.sh)")
}

/// Runs helm with its cache and configuration in a temporary directory.
async fn helm(args: &[&str], kubeconfig: Option<&Path>) -> std::process::Output {
    let home = tempfile::tempdir().expect("a temporary HELM home");
    let mut command = tokio::process::Command::new(binaries().helm);
    command
        .args(args)
        .env("HELM_CACHE_HOME", home.path().join("cache"))
        .env("HELM_CONFIG_HOME", home.path().join("config"))
        .env("HELM_DATA_HOME", home.path().join("data"));
    match kubeconfig {
        Some(path) => command.env("KUBECONFIG", path),
        // No cluster: `helm template` must not need one.
        None => command.env("KUBECONFIG", home.path().join("no-kubeconfig")),
    };
    command.output().await.expect("run helm")
}

async fn helm_ok(args: &[&str], kubeconfig: Option<&Path>) -> String {
    let out = helm(args, kubeconfig).await;
    assert!(
        out.status.success(),
        "helm {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("helm prints UTF-8")
}

async fn kubectl(env: &TestEnv, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    use tokio::io::AsyncWriteExt as _;
    let mut child = tokio::process::Command::new(&env.plane.binaries().kubectl)
        .arg("--kubeconfig")
        .arg(env.plane.kubeconfig_path())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run kubectl");
    let mut input = child.stdin.take().expect("kubectl stdin");
    if let Some(text) = stdin {
        input
            .write_all(text.as_bytes())
            .await
            .expect("write to kubectl");
    }
    drop(input);
    child.wait_with_output().await.expect("kubectl output")
}

/// A temporary values file.
fn values_file(yaml: &str) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new()
        .suffix(".yaml")
        .tempfile()
        .expect("a temporary values file");
    std::fs::write(file.path(), yaml).expect("write the values file");
    file
}

fn parse_documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|document| Value::deserialize(document).expect("helm renders valid YAML"))
        .filter(|value| !value.is_null())
        .collect()
}

/// `helm template` of the chart as release `xo` in namespace `ops`, with extra arguments.
async fn render(args: &[&str]) -> Vec<Value> {
    let mut full = vec!["template", RELEASE, CHART, "--namespace", "ops"];
    full.extend_from_slice(args);
    parse_documents(&helm_ok(&full, None).await)
}

async fn render_every_toggle_on(watch_namespaces: &[&str]) -> Vec<Value> {
    let values = values_file(EVERY_TOGGLE_ON);
    let namespaces = format!("watchNamespaces={{{}}}", watch_namespaces.join(","));
    let values_path = values.path().to_str().expect("UTF-8 path");
    render(&["-f", values_path, "--set", &namespaces]).await
}

fn kind_of(object: &Value) -> &str {
    object["kind"].as_str().unwrap_or_default()
}

fn name_of(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

fn kinds(objects: &[Value]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for object in objects {
        *counts.entry(kind_of(object).to_owned()).or_default() += 1;
    }
    counts
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| kind_of(o) == kind && name_of(o) == name)
        .unwrap_or_else(|| panic!("the chart renders no {kind} {name}"))
}

fn deployment(objects: &[Value]) -> &Value {
    find(objects, "Deployment", FULLNAME)
}

fn env_vars(deployment: &Value) -> BTreeMap<String, Value> {
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("the operator container has env")
        .iter()
        .map(|var| {
            let name = var["name"].as_str().expect("env name").to_owned();
            let value = var
                .get("value")
                .cloned()
                .or_else(|| var.get("valueFrom").cloned())
                .unwrap_or(Value::Null);
            (name, value)
        })
        .collect()
}

/// Each grant of a Role or ClusterRole as `group/resource verb`, with `@name` when it is limited
/// to resource names.
fn grants(role: &Value) -> BTreeSet<String> {
    let strings = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|i| i.as_str().expect("RBAC lists hold strings").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_array().expect("rules") {
        let names = strings(&rule["resourceNames"]);
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    if names.is_empty() {
                        out.insert(format!("{group}/{resource} {verb}"));
                    }
                    for name in &names {
                        out.insert(format!("{group}/{resource} {verb}@{name}"));
                    }
                }
            }
        }
    }
    out
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// What the operator may do with XeroDatasets and Events; cluster-wide by default.
fn dataset_grants() -> BTreeSet<String> {
    set(&[
        "xero-operator.dev/xerodatasets get",
        "xero-operator.dev/xerodatasets list",
        "xero-operator.dev/xerodatasets watch",
        "xero-operator.dev/xerodatasets/status patch",
        "events.k8s.io/events create",
        "events.k8s.io/events patch",
    ])
}

/// What the operator may do with Secrets where it was granted them.
fn secret_grants() -> BTreeSet<String> {
    set(&[
        "/secrets get",
        "/secrets list",
        "/secrets watch",
        "/secrets patch",
    ])
}

/// What the operator may do in each namespace it watches; nothing more.
fn operator_grants() -> BTreeSet<String> {
    dataset_grants().union(&secret_grants()).cloned().collect()
}

/// What leader election may do in the release namespace.
fn lease_grants(lease: &str) -> BTreeSet<String> {
    set(&[
        "coordination.k8s.io/leases create",
        &format!("coordination.k8s.io/leases get@{lease}"),
        &format!("coordination.k8s.io/leases update@{lease}"),
    ])
}

fn assert_no_wildcards(objects: &[Value]) {
    for role in objects
        .iter()
        .filter(|o| kind_of(o) == "Role" || kind_of(o) == "ClusterRole")
    {
        let grants = grants(role);
        let wild: Vec<_> = grants.iter().filter(|g| g.contains('*')).collect();
        assert!(
            wild.is_empty(),
            "{} grants wildcards: {wild:?}",
            name_of(role)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// lint, render, schema

#[tokio::test]
async fn chart_lints_clean_with_defaults_and_every_toggle_on() {
    let values = values_file(EVERY_TOGGLE_ON);
    let values_path = values.path().to_str().expect("UTF-8 path");
    for args in [
        vec!["lint", "--strict", CHART],
        vec!["lint", "--strict", CHART, "-f", values_path],
        vec![
            "lint",
            "--strict",
            CHART,
            "--set",
            "watchNamespaces={finance,sales},replicaCount=1,leaderElection.enabled=false",
        ],
    ] {
        let out = helm_ok(&args, None).await;
        assert!(
            out.contains("0 chart(s) failed") && !out.contains("[WARNING]"),
            "helm {}:\n{out}",
            args.join(" ")
        );
    }
}

#[tokio::test]
async fn renders_the_expected_objects_with_defaults() {
    let objects = render(&[]).await;
    let expected: BTreeMap<String, usize> = [
        // The operator's, its Secret rules (bound nowhere by default), and the aggregated view
        // and edit roles.
        ("ClusterRole", 4),
        ("ClusterRoleBinding", 1),
        ("CustomResourceDefinition", 1),
        ("Deployment", 1),
        ("Role", 1), // leader election
        ("RoleBinding", 1),
        ("Service", 1),
        ("ServiceAccount", 1),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_owned(), n))
    .collect();
    assert_eq!(kinds(&objects), expected);

    let deployment = deployment(&objects);
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(
        container["image"],
        "ghcr.io/xero-operator/xero-operator:0.1.0"
    );
    assert_eq!(container["args"], json!(["run"]));
    assert_eq!(container["ports"][0]["containerPort"], 8080);
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/livez");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["port"], "metrics");
    assert_eq!(pod["serviceAccountName"], FULLNAME);
    assert!(container["resources"]["requests"].is_object());

    let env = env_vars(deployment);
    let expected_env = json!({
        "XERO_OPERATOR_LOG_FORMAT": "json",
        "XERO_OPERATOR_LOG_LEVEL": "info",
        "XERO_OPERATOR_CLOUD": "public",
        "XERO_OPERATOR_CONCURRENCY": "16",
        "XERO_OPERATOR_RESYNC_INTERVAL": "6h",
        "XERO_OPERATOR_REFRESH_POLL_INTERVAL": "15s",
        "XERO_OPERATOR_METRICS_ADDR": "0.0.0.0:8080",
        "XERO_OPERATOR_LEADER_ELECTION": "true",
        "XERO_OPERATOR_LEADER_ELECTION_NAMESPACE": {"fieldRef": {"fieldPath": "metadata.namespace"}},
        "XERO_OPERATOR_LEADER_ELECTION_LEASE": "xero-operator",
        "POD_NAME": {"fieldRef": {"fieldPath": "metadata.name"}},
    });
    assert_eq!(
        serde_json::to_value(&env).expect("env as JSON"),
        expected_env,
        "the operator's environment with default values (endpoint overrides and watched namespaces omitted when empty)"
    );

    let service = find(&objects, "Service", &format!("{FULLNAME}-metrics"));
    assert_eq!(service["spec"]["ports"][0]["port"], 8080);
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "metrics");
}

#[tokio::test]
async fn renders_every_toggle_on() {
    let objects = render_every_toggle_on(&["finance", "sales"]).await;
    let counts = kinds(&objects);
    for kind in [
        "ServiceMonitor",
        "PrometheusRule",
        "ConfigMap",
        "NetworkPolicy",
        "PodDisruptionBudget",
    ] {
        assert_eq!(counts.get(kind), Some(&1), "one {kind} in {counts:?}");
    }
    assert_eq!(counts.get("ClusterRoleBinding"), None, "{counts:?}");

    let deployment = deployment(&objects);
    let env = env_vars(deployment);
    assert_eq!(env["XERO_OPERATOR_WATCH_NAMESPACES"], "finance,sales");
    assert_eq!(env["XERO_OPERATOR_CLOUD"], "usgov");
    assert_eq!(
        env["XERO_OPERATOR_POWERBI_API_URL"],
        "https://api.powerbi.example/"
    );
    assert_eq!(
        env["XERO_OPERATOR_AUTHORITY_HOST"],
        "https://login.example/"
    );
    assert_eq!(
        env["XERO_OPERATOR_XERO_IDENTITY_URL"],
        "https://identity.xero.example/"
    );
    assert_eq!(
        env["XERO_OPERATOR_XERO_API_URL"],
        "https://api.xero.example/"
    );
    assert_eq!(env["HTTPS_PROXY"], "http://proxy.internal:3128");
    assert_eq!(env["XERO_OPERATOR_WORKLOAD_IDENTITY_NAMESPACES"], "finance");
    assert_eq!(
        env["XERO_OPERATOR_WORKLOAD_IDENTITY_WORKSPACES"],
        "f089354e-8366-4e18-aea3-4cb4a3a50b48"
    );
    let template = &deployment["spec"]["template"];
    assert_eq!(
        template["metadata"]["labels"]["azure.workload.identity/use"],
        "true"
    );
    assert_eq!(
        template["metadata"]["labels"]["example.com/team"],
        "finance"
    );
    assert_eq!(
        template["metadata"]["annotations"]["example.com/owner"],
        "finance"
    );
    assert_eq!(template["spec"]["imagePullSecrets"][0]["name"], "registry");
    assert_eq!(
        template["spec"]["nodeSelector"]["kubernetes.io/os"],
        "linux"
    );
    assert_eq!(template["spec"]["tolerations"][0]["key"], "dedicated");
    assert!(template["spec"]["affinity"]["podAntiAffinity"].is_object());

    let account = find(&objects, "ServiceAccount", FULLNAME);
    let annotations = &account["metadata"]["annotations"];
    assert_eq!(
        annotations["azure.workload.identity/client-id"],
        "6f2d9a5e-1b4c-4d8e-9f00-0a1b2c3d4e5f"
    );
    assert_eq!(
        annotations["azure.workload.identity/tenant-id"],
        "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
    );
    assert_eq!(annotations["example.com/owner"], "finance");
    assert_eq!(account["metadata"]["labels"]["example.com/team"], "finance");

    let rule = find(&objects, "PrometheusRule", FULLNAME);
    let alerts: BTreeSet<&str> = rule["spec"]["groups"][0]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| r["alert"].as_str().expect("alert name"))
        .collect();
    assert_eq!(
        alerts,
        BTreeSet::from([
            "XeroDatasetNotReady",
            "XeroDatasetRecoveryExhausted",
            "XeroOperatorThrottled",
            "XeroDatasetRefreshStale",
            "XeroRefreshTokenRejected",
        ])
    );
    let not_ready = rule["spec"]["groups"][0]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|r| r["alert"] == "XeroDatasetNotReady")
        .expect("XeroDatasetNotReady");
    assert_eq!(not_ready["for"], "30m");
    assert_eq!(not_ready["labels"]["team"], "finance");

    let dashboard_map = find(&objects, "ConfigMap", &format!("{FULLNAME}-dashboard"));
    assert_eq!(
        dashboard_map["metadata"]["labels"]["grafana_dashboard"],
        "1"
    );
    let dashboard: Value = serde_json::from_str(
        dashboard_map["data"]["xero-operator.json"]
            .as_str()
            .expect("the dashboard JSON"),
    )
    .expect("the dashboard is valid JSON");
    let titles: BTreeSet<&str> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .map(|p| p["title"].as_str().expect("panel title"))
        .collect();
    for title in [
        "XeroDatasets by status",
        "Refreshes triggered and failed",
        "Actions",
        "Reconcile errors by reason",
        "Reconcile latency",
        "Xero token exchanges",
    ] {
        assert!(titles.contains(title), "no panel {title:?} in {titles:?}");
    }

    // Every series the alerts and the dashboard query is one the operator exports.
    let exported = exported_series();
    let mut queried = series_names(&serde_json::to_string(&rule["spec"]).expect("rule JSON"));
    queried.extend(series_names(&dashboard.to_string()));
    let unknown: Vec<_> = queried.difference(&exported).collect();
    assert!(
        unknown.is_empty(),
        "the chart queries series the operator does not export: {unknown:?}; exported: {exported:?}"
    );

    let policy = find(&objects, "NetworkPolicy", FULLNAME);
    let egress_ports: BTreeSet<i64> = policy["spec"]["egress"]
        .as_array()
        .expect("egress")
        .iter()
        .flat_map(|rule| rule["ports"].as_array().expect("ports").clone())
        .map(|port| port["port"].as_i64().expect("numeric egress port"))
        .collect();
    assert_eq!(egress_ports, BTreeSet::from([53, 443, 6443]));
    assert_eq!(policy["spec"]["ingress"][0]["ports"][0]["port"], "metrics");
    // DNS to the cluster DNS only; HTTPS to public addresses, never the cloud metadata service.
    let egress = &policy["spec"]["egress"];
    assert_eq!(
        egress[0]["to"][0]["podSelector"]["matchLabels"]["k8s-app"],
        "kube-dns"
    );
    let https = egress[1]["to"].as_array().expect("HTTPS destinations");
    assert_eq!(https[0]["ipBlock"]["cidr"], "0.0.0.0/0");
    for private in ["10.0.0.0/8", "169.254.0.0/16", "127.0.0.0/8"] {
        assert!(
            https[0]["ipBlock"]["except"]
                .as_array()
                .expect("except")
                .iter()
                .any(|c| c == private),
            "{private} is not excluded: {https:?}"
        );
    }

    let budget = find(&objects, "PodDisruptionBudget", FULLNAME);
    assert_eq!(budget["spec"]["maxUnavailable"], 1);
}

/// Sample names of the operator's metrics, from its own registry.
fn exported_series() -> BTreeSet<String> {
    // Families without samples are not rendered: record one of each.
    let metrics = xero_operator::metrics::Metrics::new();
    metrics.reconciled("Success", Duration::from_millis(20));
    metrics.action("RefreshTriggered");
    metrics.refresh_outcome("Completed");
    metrics.dataset_state("finance/xero", "True", "Reconciled");
    metrics.last_success("finance", "xero", 1_700_000_000);
    metrics.token_exchange("Rotated");
    let text = metrics.render();
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            _ => &[""],
        };
        names.extend(suffixes.iter().map(|s| format!("{name}{s}")));
    }
    assert!(!names.is_empty(), "no metric families in:\n{text}");
    names
}

fn series_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("xero_operator_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

#[tokio::test]
async fn values_schema_rejects_typos_with_a_clear_message() {
    let cases: [(&[&str], &str); 5] = [
        (&["--set", "replicaCoun=2"], "replicaCoun"),
        (&["--set", "metrics.serviceMonitor.enable=true"], "enable"),
        (&["--set", "leaderElection.enabeld=false"], "enabeld"),
        (&["--set", "cloud=Public"], "cloud"),
        (
            &["--set", "replicaCount=2,leaderElection.enabled=false"],
            "leaderElection.enabled",
        ),
    ];
    for (args, named) in cases {
        let mut full = vec!["template", RELEASE, CHART];
        full.extend_from_slice(args);
        let out = helm(&full, None).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "helm accepted {args:?}:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            stderr.contains(named),
            "the error for {args:?} does not name {named:?}:\n{stderr}"
        );
    }
}

#[tokio::test]
async fn operator_accepts_the_configuration_the_chart_passes() {
    for objects in [
        render(&[]).await,
        render_every_toggle_on(&["finance", "sales"]).await,
    ] {
        let container = &deployment(&objects)["spec"]["template"]["spec"]["containers"][0];
        let args: Vec<&str> = container["args"]
            .as_array()
            .expect("args")
            .iter()
            .map(|a| a.as_str().expect("string args"))
            .collect();
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_xero-operator"));
        // No cluster to reach: the operator parses its configuration, then fails to connect.
        command
            .args(&args)
            .env_clear()
            .env("KUBECONFIG", "/nonexistent/kubeconfig");
        for var in container["env"].as_array().expect("env") {
            let name = var["name"].as_str().expect("env name");
            let value = match var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                Some("metadata.namespace") => "ops",
                Some("metadata.name") => "xo-xero-operator-5d8f7c9b4-x2k7p",
                Some(other) => panic!("unexpected fieldRef {other}"),
                None => var["value"].as_str().expect("env value"),
            };
            command.env(name, value);
        }
        let out = tokio::time::timeout(Duration::from_secs(60), command.output())
            .await
            .expect("the operator exits")
            .expect("run the operator");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains("cannot connect to Kubernetes"),
            "the operator did not accept the chart's configuration:\n{stderr}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// RBAC and pod security on the rendered YAML

#[tokio::test]
async fn rendered_rbac_is_least_privilege() {
    // Defaults: a ClusterRole for XeroDatasets and Events bound to the operator, the Secret
    // rules in a ClusterRole bound nowhere; the Lease Role in the release namespace.
    let objects = render(&[]).await;
    assert_no_wildcards(&objects);
    assert_eq!(
        grants(find(&objects, "ClusterRole", FULLNAME)),
        dataset_grants()
    );
    let binding = find(&objects, "ClusterRoleBinding", FULLNAME);
    assert_eq!(binding["roleRef"]["name"], FULLNAME);
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": FULLNAME, "namespace": "ops"}])
    );
    let secrets_role = format!("{FULLNAME}-secrets");
    assert_eq!(
        grants(find(&objects, "ClusterRole", &secrets_role)),
        secret_grants()
    );
    let bound_to_secrets = |objects: &[Value]| -> Vec<String> {
        objects
            .iter()
            .filter(|o| o["roleRef"]["name"] == secrets_role.as_str())
            .map(|o| format!("{} {}", kind_of(o), o["metadata"]["namespace"]))
            .collect()
    };
    assert!(bound_to_secrets(&objects).is_empty(), "{objects:?}");
    assert!(!env_vars(deployment(&objects)).contains_key("XERO_OPERATOR_SECRET_NAMESPACES"));

    // Namespaces opt in to Secret access one by one; cluster-wide only when asked for.
    let objects = render(&["--set", "rbac.secretNamespaces={finance,sales}"]).await;
    assert_eq!(
        bound_to_secrets(&objects),
        ["RoleBinding \"finance\"", "RoleBinding \"sales\""]
    );
    assert_eq!(
        env_vars(deployment(&objects))["XERO_OPERATOR_SECRET_NAMESPACES"],
        "finance,sales"
    );
    let objects = render(&["--set", "rbac.clusterWideSecrets=true"]).await;
    assert_eq!(bound_to_secrets(&objects), ["ClusterRoleBinding null"]);
    assert_eq!(
        env_vars(deployment(&objects))["XERO_OPERATOR_SECRET_NAMESPACES"],
        "*"
    );
    let objects = render(&["--set", "rbac.secretNamespaces={finance}"]).await;
    let objects_watching = render(&[
        "--set",
        "rbac.secretNamespaces={finance},watchNamespaces={sales}",
    ])
    .await;
    assert_eq!(bound_to_secrets(&objects).len(), 1);
    assert!(
        bound_to_secrets(&objects_watching).is_empty(),
        "watchNamespaces' Roles cover their Secrets; secretNamespaces is ignored"
    );
    assert!(
        !env_vars(deployment(&objects_watching)).contains_key("XERO_OPERATOR_SECRET_NAMESPACES")
    );
    let lease_role = find(&objects, "Role", &format!("{FULLNAME}-leader-election"));
    assert_eq!(lease_role["metadata"]["namespace"], "ops");
    assert_eq!(grants(lease_role), lease_grants("xero-operator"));

    // The aggregated roles give users read, and edit, access to XeroDatasets.
    let view = find(&objects, "ClusterRole", &format!("{FULLNAME}-view"));
    assert_eq!(
        view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"],
        "true"
    );
    assert_eq!(
        grants(view),
        set(&[
            "xero-operator.dev/xerodatasets get",
            "xero-operator.dev/xerodatasets list",
            "xero-operator.dev/xerodatasets watch",
            "xero-operator.dev/xerodatasets/status get",
            "xero-operator.dev/xerodatasets/status list",
            "xero-operator.dev/xerodatasets/status watch",
        ])
    );
    let edit = find(&objects, "ClusterRole", &format!("{FULLNAME}-edit"));
    assert_eq!(
        edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"],
        "true"
    );
    let edit_grants = grants(edit);
    for verb in [
        "create", "update", "patch", "delete", "get", "list", "watch",
    ] {
        assert!(
            edit_grants.contains(&format!("xero-operator.dev/xerodatasets {verb}")),
            "edit lacks {verb}: {edit_grants:?}"
        );
    }
    assert!(
        edit_grants
            .iter()
            .all(|g| g.starts_with("xero-operator.dev/")),
        "{edit_grants:?}"
    );

    // Leader election off: no Lease access at all.
    let objects = render(&["--set", "leaderElection.enabled=false,replicaCount=1"]).await;
    let lease_grants: Vec<_> = objects
        .iter()
        .filter(|o| kind_of(o) == "Role" || kind_of(o) == "ClusterRole")
        .flat_map(grants)
        .filter(|g| g.contains("leases"))
        .collect();
    assert!(lease_grants.is_empty(), "{lease_grants:?}");
    assert_eq!(
        env_vars(deployment(&objects))["XERO_OPERATOR_LEADER_ELECTION"],
        "false"
    );

    // watchNamespaces: a Role and a RoleBinding in each, no cluster-wide grant to the operator.
    let objects = render(&["--set", "watchNamespaces={finance,sales}"]).await;
    assert_no_wildcards(&objects);
    assert!(
        !objects.iter().any(|o| kind_of(o) == "ClusterRoleBinding"),
        "a ClusterRoleBinding with watchNamespaces set"
    );
    assert!(
        !objects
            .iter()
            .any(|o| kind_of(o) == "ClusterRole" && name_of(o) == FULLNAME),
        "the operator's ClusterRole with watchNamespaces set"
    );
    for namespace in ["finance", "sales"] {
        let role = objects
            .iter()
            .find(|o| {
                kind_of(o) == "Role"
                    && name_of(o) == FULLNAME
                    && o["metadata"]["namespace"] == namespace
            })
            .unwrap_or_else(|| panic!("no Role in {namespace}"));
        assert_eq!(grants(role), operator_grants());
        assert!(
            objects.iter().any(|o| kind_of(o) == "RoleBinding"
                && name_of(o) == FULLNAME
                && o["metadata"]["namespace"] == namespace),
            "no RoleBinding in {namespace}"
        );
    }
}

fn assert_restricted_security_context(pod_spec: &Value) {
    assert_eq!(pod_spec["automountServiceAccountToken"], true);
    let pod = &pod_spec["securityContext"];
    assert_eq!(pod["runAsNonRoot"], true, "pod securityContext: {pod}");
    assert_eq!(pod["runAsUser"], 65532, "pod securityContext: {pod}");
    assert_eq!(pod["runAsGroup"], 65532, "pod securityContext: {pod}");
    assert_eq!(pod["seccompProfile"]["type"], "RuntimeDefault");
    for field in ["hostNetwork", "hostPID", "hostIPC"] {
        assert!(pod_spec.get(field).is_none(), "{field} set");
    }
    let containers = pod_spec["containers"].as_array().expect("containers");
    let init = pod_spec["initContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for container in containers.iter().chain(&init) {
        let context = &container["securityContext"];
        let name = &container["name"];
        assert_eq!(context["runAsNonRoot"], true, "{name}: {context}");
        assert_eq!(context["runAsUser"], 65532, "{name}: {context}");
        assert_eq!(context["runAsGroup"], 65532, "{name}: {context}");
        assert_eq!(context["readOnlyRootFilesystem"], true, "{name}: {context}");
        assert_eq!(
            context["allowPrivilegeEscalation"], false,
            "{name}: {context}"
        );
        assert_eq!(
            context["capabilities"],
            json!({"drop": ["ALL"]}),
            "{name}: {context}"
        );
        assert_eq!(context["seccompProfile"]["type"], "RuntimeDefault");
        assert!(context.get("privileged").is_none_or(|p| p == false));
    }
}

// ---------------------------------------------------------------------------------------------
// On the testbed

/// A Pod with the rendered Deployment's pod template.
fn pod_from(deployment: &Value, name: &str) -> Pod {
    let template = &deployment["spec"]["template"];
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": template["metadata"]["labels"]},
        "spec": template["spec"],
    }))
    .expect("the pod template is a PodSpec")
}

async fn dry_run_create(client: &Client, namespace: &str, pod: &Pod) -> Result<Pod, kube::Error> {
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    Api::<Pod>::namespaced(client.clone(), namespace)
        .create(&params, pod)
        .await
}

fn is_pod_security_rejection(result: &Result<Pod, kube::Error>) -> bool {
    matches!(result, Err(kube::Error::Api(status))
        if status.code == 403 && status.message.contains("violates PodSecurity"))
}

#[tokio::test]
async fn pod_passes_the_restricted_pod_security_standard() {
    xero_operator::telemetry::install_crypto_provider();
    let env = TestEnv::new("chart-pss").await;
    let objects = render(&[]).await;
    let deployment = deployment(&objects);
    assert_restricted_security_context(&deployment["spec"]["template"]["spec"]);

    // A namespace that enforces the restricted profile, with the pod's ServiceAccount in it.
    let namespace = format!("{}-restricted", env.namespace);
    let restricted: Namespace = serde_json::from_value(json!({
        "metadata": {"name": namespace, "labels": {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
        }},
    }))
    .expect("a Namespace");
    Api::<Namespace>::all(env.client.clone())
        .create(&PostParams::default(), &restricted)
        .await
        .expect("create the restricted namespace");
    let account: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": FULLNAME}})).expect("a ServiceAccount");
    Api::<ServiceAccount>::namespaced(env.client.clone(), &namespace)
        .create(&PostParams::default(), &account)
        .await
        .expect("create the ServiceAccount");

    // Without the security contexts the API server rejects the pod: the check can fail. Wait
    // until it does, as the admission plugin may see the new namespace's labels a moment late.
    let mut stripped = pod_from(deployment, "stripped");
    if let Some(spec) = stripped.spec.as_mut() {
        spec.security_context = None;
        for container in &mut spec.containers {
            container.security_context = None;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let result = dry_run_create(&env.client, &namespace, &stripped).await;
        if is_pod_security_rejection(&result) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a pod without securityContext was not rejected by PodSecurity: {result:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let pod = pod_from(deployment, "chart-pod");
    let created = dry_run_create(&env.client, &namespace, &pod).await;
    assert!(
        created.is_ok(),
        "the chart's pod was rejected in a restricted namespace: {created:?}"
    );
}

#[tokio::test]
async fn api_server_accepts_every_rendered_object() {
    xero_operator::telemetry::install_crypto_provider();
    let env = TestEnv::new("chart-dry-run").await;
    let finance = env
        .plane
        .namespace(&env.client, "chart-dry-run-finance")
        .await
        .expect("a watched namespace");
    let kubeconfig = env.plane.kubeconfig_path().to_path_buf();
    let values = values_file(EVERY_TOGGLE_ON);
    let values_path = values.path().to_str().expect("UTF-8 path");
    let watched = format!("watchNamespaces={{{finance}}}");
    for args in [vec![], vec!["-f", values_path, "--set", &watched]] {
        let mut full = vec![
            "template",
            &env.namespace,
            CHART,
            "--namespace",
            &env.namespace,
        ];
        full.extend_from_slice(&args);
        let objects = parse_documents(&helm_ok(&full, Some(&kubeconfig)).await);
        // The prometheus-operator CRDs are not on the testbed; their objects are checked in
        // `renders_every_toggle_on`.
        let manifest: String = objects
            .iter()
            .filter(|o| {
                !o["apiVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("monitoring.coreos.com/")
            })
            .map(|o| format!("---\n{}", serde_yaml::to_string(o).expect("YAML")))
            .collect();
        // Every namespaced object names its namespace.
        let out = kubectl(
            &env,
            &["apply", "--dry-run=server", "-f", "-"],
            Some(&manifest),
        )
        .await;
        assert!(
            out.status.success(),
            "kubectl apply --dry-run=server of the chart rendered with {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A client authenticated as the ServiceAccount with a TokenRequest token.
async fn service_account_client(env: &TestEnv, namespace: &str, name: &str) -> Client {
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: Vec::new(),
            expiration_seconds: Some(600),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    let token = Api::<ServiceAccount>::namespaced(env.client.clone(), namespace)
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .expect("a TokenRequest for the chart's ServiceAccount")
        .status
        .expect("the TokenRequest's status")
        .token;
    env.plane
        .client_with_token(&format!("system:serviceaccount:{namespace}:{name}"), &token)
        .await
        .expect("a client with the ServiceAccount's token")
}

/// One access question: `verb group/resource[/subresource] [name] in namespace`.
struct Access<'a> {
    verb: &'a str,
    group: &'a str,
    resource: &'a str,
    subresource: Option<&'a str>,
    namespace: Option<&'a str>,
    name: Option<&'a str>,
}

fn access<'a>(verb: &'a str, group: &'a str, resource: &'a str, namespace: &'a str) -> Access<'a> {
    Access {
        verb,
        group,
        resource,
        subresource: None,
        namespace: Some(namespace),
        name: None,
    }
}

impl std::fmt::Display for Access<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.verb, self.group, self.resource)?;
        if let Some(sub) = self.subresource {
            write!(f, "/{sub}")?;
        }
        if let Some(name) = self.name {
            write!(f, " {name}")?;
        }
        match self.namespace {
            Some(ns) => write!(f, " in {ns}"),
            None => write!(f, " in all namespaces"),
        }
    }
}

/// Whether the client's user may do `what`, by a SelfSubjectAccessReview.
async fn can(client: &Client, what: &Access<'_>) -> bool {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(what.verb.to_owned()),
                group: Some(what.group.to_owned()),
                resource: Some(what.resource.to_owned()),
                subresource: what.subresource.map(str::to_owned),
                namespace: what.namespace.map(str::to_owned),
                name: what.name.map(str::to_owned),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    Api::<SelfSubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .expect("a SelfSubjectAccessReview")
        .status
        .is_some_and(|s| s.allowed)
}

/// Asserts each answer, reporting every wrong one at once.
async fn assert_access(client: &Client, allowed: &[Access<'_>], denied: &[Access<'_>]) {
    let mut wrong = Vec::new();
    for what in allowed {
        if !can(client, what).await {
            wrong.push(format!("cannot {what}"));
        }
    }
    for what in denied {
        if can(client, what).await {
            wrong.push(format!("can {what}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "the chart's ServiceAccount:\n{}",
        wrong.join("\n")
    );
}

async fn helm_install(env: &TestEnv, release: &str, args: &[&str]) {
    let mut full = vec![
        "install",
        release,
        CHART,
        "--namespace",
        &env.namespace,
        // The testbed installed the CRD already; `crd_template_equals_crds_dir` covers it.
        "--set",
        "crds.install=false",
    ];
    full.extend_from_slice(args);
    helm_ok(&full, Some(env.plane.kubeconfig_path())).await;
}

fn lease<'a>(verb: &'a str, namespace: &'a str, name: Option<&'a str>) -> Access<'a> {
    Access {
        name,
        ..access(verb, "coordination.k8s.io", "leases", namespace)
    }
}

fn status<'a>(verb: &'a str, namespace: &'a str) -> Access<'a> {
    Access {
        subresource: Some("status"),
        ..access(verb, "xero-operator.dev", "xerodatasets", namespace)
    }
}

#[tokio::test]
async fn helm_install_creates_everything_and_the_service_account_has_exactly_its_rights() {
    xero_operator::telemetry::install_crypto_provider();
    let env = TestEnv::new("chart-install").await;
    let other = env
        .plane
        .namespace(&env.client, "chart-install-other")
        .await
        .expect("another namespace");
    let release = env.namespace.clone();
    let fullname = format!("{release}-xero-operator");
    // Every namespace watched; Secrets only in the one that opted in.
    let opted_in = format!("rbac.secretNamespaces={{{release}}}");
    helm_install(&env, &release, &["--set", &opted_in]).await;

    let ns = env.namespace.as_str();
    let client = &env.client;
    Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .get(&fullname)
        .await
        .expect("the ServiceAccount");
    let deployment = Api::<Deployment>::namespaced(client.clone(), ns)
        .get(&fullname)
        .await
        .expect("the Deployment");
    assert_eq!(deployment.spec.and_then(|s| s.replicas), Some(2));
    Api::<Service>::namespaced(client.clone(), ns)
        .get(&format!("{fullname}-metrics"))
        .await
        .expect("the metrics Service");
    for name in [
        fullname.clone(),
        format!("{fullname}-view"),
        format!("{fullname}-edit"),
    ] {
        Api::<ClusterRole>::all(client.clone())
            .get(&name)
            .await
            .unwrap_or_else(|e| panic!("the ClusterRole {name}: {e}"));
    }
    Api::<ClusterRoleBinding>::all(client.clone())
        .get(&fullname)
        .await
        .expect("the ClusterRoleBinding");
    Api::<Role>::namespaced(client.clone(), ns)
        .get(&format!("{fullname}-leader-election"))
        .await
        .expect("the leader election Role");

    let operator = service_account_client(&env, ns, &fullname).await;
    let xds = |verb| access(verb, "xero-operator.dev", "xerodatasets", ns);
    let secrets = |verb, namespace| access(verb, "", "secrets", namespace);
    let allowed = [
        xds("get"),
        xds("list"),
        xds("watch"),
        access("list", "xero-operator.dev", "xerodatasets", &other),
        Access {
            namespace: None,
            ..xds("watch")
        },
        status("patch", ns),
        secrets("get", ns),
        secrets("list", ns),
        secrets("watch", ns),
        secrets("patch", ns),
        access("create", "events.k8s.io", "events", ns),
        access("patch", "events.k8s.io", "events", &other),
        lease("create", ns, None),
        lease("get", ns, Some("xero-operator")),
        lease("update", ns, Some("xero-operator")),
    ];
    let denied = [
        secrets("get", &other),
        secrets("list", &other),
        secrets("patch", &other),
        Access {
            namespace: None,
            ..secrets("list", ns)
        },
        secrets("get", "kube-system"),
        secrets("create", ns),
        secrets("delete", ns),
        secrets("update", ns),
        secrets("deletecollection", ns),
        xds("create"),
        xds("update"),
        xds("patch"),
        xds("delete"),
        status("update", ns),
        status("get", ns),
        access("create", "", "events", ns),
        access("get", "", "configmaps", ns),
        access("list", "", "pods", ns),
        access("create", "", "serviceaccounts", ns),
        access("get", "apps", "deployments", ns),
        access(
            "get",
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            ns,
        ),
        access("create", "rbac.authorization.k8s.io", "rolebindings", ns),
        lease("create", &other, None),
        lease("get", &other, Some("xero-operator")),
        lease("get", ns, Some("another-lease")),
        lease("update", ns, Some("another-lease")),
        lease("delete", ns, Some("xero-operator")),
        lease("list", ns, None),
    ];
    assert_access(&operator, &allowed, &denied).await;

    // Real calls with the token agree: listing works, creating a Secret is forbidden.
    Api::<xero_operator::api::XeroDataset>::all(operator.clone())
        .list(&ListParams::default())
        .await
        .expect("the ServiceAccount lists XeroDatasets");
    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": "planted"}})).expect("a Secret");
    let created = Api::<Secret>::namespaced(operator.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await;
    assert!(
        matches!(&created, Err(kube::Error::Api(s)) if s.code == 403),
        "the ServiceAccount created a Secret: {created:?}"
    );

    // `kubectl auth can-i`, as an administrator impersonating the ServiceAccount, agrees too.
    let subject = format!("system:serviceaccount:{ns}:{fullname}");
    for (question, expected) in [
        (["list", "xerodatasets.xero-operator.dev"], "yes"),
        (["patch", "xerodatasets.xero-operator.dev"], "no"),
        (["delete", "secrets"], "no"),
        (["create", "secrets"], "no"),
    ] {
        let out = kubectl(
            &env,
            &[
                "auth",
                "can-i",
                question[0],
                question[1],
                "--namespace",
                ns,
                "--as",
                &subject,
            ],
            None,
        )
        .await;
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            expected,
            "kubectl auth can-i {} {}: {}",
            question[0],
            question[1],
            String::from_utf8_lossy(&out.stderr)
        );
    }

    helm_ok(
        &["uninstall", &release, "--namespace", ns],
        Some(env.plane.kubeconfig_path()),
    )
    .await;
    let gone = Api::<ClusterRoleBinding>::all(client.clone())
        .get(&fullname)
        .await;
    assert!(
        matches!(&gone, Err(kube::Error::Api(s)) if s.code == 404),
        "helm uninstall left the ClusterRoleBinding: {gone:?}"
    );
}

#[tokio::test]
async fn watch_namespaces_give_roles_in_those_namespaces_only() {
    xero_operator::telemetry::install_crypto_provider();
    let env = TestEnv::new("chart-watch").await;
    let finance = env
        .plane
        .namespace(&env.client, "chart-watch-finance")
        .await
        .expect("ns");
    let sales = env
        .plane
        .namespace(&env.client, "chart-watch-sales")
        .await
        .expect("ns");
    let elsewhere = env
        .plane
        .namespace(&env.client, "chart-watch-else")
        .await
        .expect("ns");
    let release = env.namespace.clone();
    let fullname = format!("{release}-xero-operator");
    let watched = format!("watchNamespaces={{{finance},{sales}}}");
    helm_install(&env, &release, &["--set", &watched]).await;

    for namespace in [&finance, &sales] {
        Api::<Role>::namespaced(env.client.clone(), namespace)
            .get(&fullname)
            .await
            .unwrap_or_else(|e| panic!("the Role in {namespace}: {e}"));
        Api::<RoleBinding>::namespaced(env.client.clone(), namespace)
            .get(&fullname)
            .await
            .unwrap_or_else(|e| panic!("the RoleBinding in {namespace}: {e}"));
    }
    let binding = Api::<ClusterRoleBinding>::all(env.client.clone())
        .get(&fullname)
        .await;
    assert!(
        matches!(&binding, Err(kube::Error::Api(s)) if s.code == 404),
        "a ClusterRoleBinding with watchNamespaces set: {binding:?}"
    );

    let ns = env.namespace.as_str();
    let operator = service_account_client(&env, ns, &fullname).await;
    let allowed = [
        access("get", "", "secrets", &finance),
        access("patch", "", "secrets", &sales),
        access("watch", "xero-operator.dev", "xerodatasets", &finance),
        status("patch", &sales),
        access("create", "events.k8s.io", "events", &finance),
        lease("update", ns, Some("xero-operator")),
    ];
    let denied = [
        access("get", "", "secrets", &elsewhere),
        access("list", "", "secrets", ns),
        access("list", "xero-operator.dev", "xerodatasets", &elsewhere),
        Access {
            namespace: None,
            ..access("list", "xero-operator.dev", "xerodatasets", ns)
        },
        Access {
            namespace: None,
            ..access("list", "", "secrets", ns)
        },
        access("create", "events.k8s.io", "events", &elsewhere),
        access("create", "", "secrets", &finance),
        access("delete", "", "secrets", &finance),
    ];
    assert_access(&operator, &allowed, &denied).await;
}

// ---------------------------------------------------------------------------------------------
// The CRD template

#[tokio::test]
async fn crd_template_equals_crds_dir() {
    let rendered = render(&["--show-only", "templates/crd.yaml"]).await;
    let [mut crd] = <[Value; 1]>::try_from(rendered).expect("one CRD in templates/crd.yaml");
    let metadata = crd["metadata"].as_object_mut().expect("metadata");
    let annotations = metadata.remove("annotations").unwrap_or(Value::Null);
    assert_eq!(
        annotations["helm.sh/resource-policy"], "keep",
        "uninstalling the chart would delete the CRD and every XeroDataset"
    );
    let labels = metadata.remove("labels").unwrap_or(Value::Null);
    assert_eq!(labels["app.kubernetes.io/managed-by"], "Helm");

    let source = std::fs::read_to_string(CRD_FILE).expect("read crds/xerodatasets.yaml");
    let [expected] = <[Value; 1]>::try_from(parse_documents(&source))
        .expect("one CRD in crds/xerodatasets.yaml");
    assert!(
        crd == expected,
        "charts/xero-operator/templates/crd.yaml differs from crds/xerodatasets.yaml; \
         run ./hack/chart-crd.sh to copy it into the chart"
    );

    let without = render(&["--set", "crds.install=false"]).await;
    assert!(
        !without
            .iter()
            .any(|o| kind_of(o) == "CustomResourceDefinition"),
        "crds.install=false still renders the CRD"
    );
}

// ---------------------------------------------------------------------------------------------
// The chart as a package

#[tokio::test]
async fn the_chart_carries_the_operators_version_and_packages() {
    let version = env!("CARGO_PKG_VERSION");
    let text = std::fs::read_to_string(format!("{CHART}/Chart.yaml")).expect("Chart.yaml");
    let chart: Value = serde_yaml::from_str(&text).expect("Chart.yaml parses");
    assert_eq!(chart["version"], version, "chart version");
    assert_eq!(chart["appVersion"], version, "appVersion");
    assert!(chart["kubeVersion"].is_string());
    let annotations = &chart["annotations"];
    for key in [
        "artifacthub.io/crds",
        "artifacthub.io/images",
        "artifacthub.io/changes",
        "artifacthub.io/license",
    ] {
        assert!(annotations[key].is_string(), "{key}");
    }
    let images = annotations["artifacthub.io/images"].as_str().unwrap();
    assert!(
        images.contains(&format!("ghcr.io/xero-operator/xero-operator:{version}")),
        "{images}"
    );
    let out = tempfile::tempdir().expect("dir");
    helm_ok(
        &[
            "package",
            CHART,
            "--destination",
            out.path().to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert!(
        out.path()
            .join(format!("xero-operator-{version}.tgz"))
            .is_file()
    );
}
