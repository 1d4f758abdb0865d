//! `xero-operator refresh` and `xero-operator status`, the CLI binary against the testbed: with
//! the operator binary running against the simulator for `refresh --wait`, and with a status
//! written through the status subresource for `status`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, Patch, PatchParams, PostParams};
use powerbi_sim::{RunningSimulator, Seed, Simulator};
use serde_json::{Value, json};
use xero_operator::api::conditions::{self, ConditionStatus, find_condition, reason};
use xero_operator::api::{
    LastRefresh, RecoveryStatus, XeroDataset, XeroDatasetStatus, status_time,
};
use xero_operator::reconcile::validate::REFRESH_REQUESTED_AT;
use xero_testbed::TestEnv;

const TENANT: &str = "7d0b1a8e-0c57-4d8e-9b3a-5f2c9d1e4a60";
const SP_CLIENT: &str = "3f1c2b4a-9d8e-4f7a-b6c5-1e2d3c4b5a69";
const WORKSPACE: &str = "f089354e-8366-4e18-aea3-4cb4a3a50b48";
const DATASET: &str = "cfafbeb1-8037-4d0c-896e-a46fb27ff229";
const XERO_CLIENT: &str = "0A1B2C3D4E5F60718293A4B5C6D7E8F9";
const NAME: &str = "finance-xero";

/// The tenant of DESIGN.md section 1 (and of the demo): the last scheduled refresh failed on
/// expired Xero credentials and Power BI switched the schedule off.
fn broken_tenant_seed() -> String {
    format!(
        r#"
config:
  refreshDurationSeconds: 1
servicePrincipals:
  - {{tenantId: {TENANT}, clientId: {SP_CLIENT}, clientSecret: sp-secret, displayName: xero-operator}}
workspaces:
  - id: {WORKSPACE}
    name: Finance
    capacity: Shared
    datasets:
      - id: {DATASET}
        name: Xero
        configuredBy: xero-operator
        datasources:
          - datasourceType: Extension
            connectionDetails: {{kind: Xero, path: Xero}}
            gatewayId: 1f69e798-5852-4fdd-ab01-33bb14b6e934
            datasourceId: dc2f2dac-e5e2-4c37-af76-2a0bc10f16cb
            xeroTenantId: fe79f7dd-b6d4-4a92-ba7b-538af6289c58
        schedule:
          enabled: false
          days: [Monday, Tuesday, Wednesday, Thursday, Friday]
          times: ["06:00", "12:30"]
          localTimeZoneId: UTC
          notifyOption: NoNotification
        refreshHistory:
          - requestId: 9399bb89-25d1-44f8-8576-136d7e9014b1
            refreshType: Scheduled
            startTime: "2025-01-03T06:00:12Z"
            endTime: "2025-01-03T06:01:40Z"
            status: Failed
            serviceExceptionJson: '{{"errorCode":"DMTS_OAuthTokenRefreshFailedError"}}'
xero:
  apps:
    - {{clientId: {XERO_CLIENT}, clientSecret: xero-secret, redirectUris: ["http://localhost:8912/callback"]}}
  connections:
    - {{tenantId: fe79f7dd-b6d4-4a92-ba7b-538af6289c58, tenantName: Demo Company (UK), tenantType: ORGANISATION}}
  refreshTokens:
    - token: initial-refresh-token
"#
    )
}

fn dataset_manifest() -> Value {
    json!({
        "apiVersion": "xero-operator.dev/v1alpha1",
        "kind": "XeroDataset",
        "metadata": {"name": NAME},
        "spec": {
            "workspaceId": WORKSPACE,
            "dataset": {"name": "Xero"},
            "xero": {"organisation": "Demo Company (UK)", "credentialsSecretRef": {"name": "xero-app"}},
            "powerBI": {"credentialsSecretRef": {"name": "powerbi-sp"}},
            "schedule": {
                "enabled": true,
                "days": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"],
                "times": ["06:00", "12:30"],
                "timeZone": "UTC",
            },
            "recovery": {"maxAttemptsPerDay": 3, "backoff": {"initial": "2s", "max": "10s"}},
        },
    })
}

/// The operator binary, killed when dropped.
struct Operator {
    child: Child,
    log: tempfile::NamedTempFile,
}

impl Operator {
    fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Scenario {
    env: TestEnv,
    sim: Option<RunningSimulator>,
    operator: Option<Operator>,
}

/// What one run of the CLI did.
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Scenario {
    async fn start(name: &str) -> Scenario {
        xero_operator::telemetry::install_crypto_provider();
        Scenario {
            env: TestEnv::new(name).await,
            sim: None,
            operator: None,
        }
    }

    fn datasets(&self) -> Api<XeroDataset> {
        Api::namespaced(self.env.client.clone(), &self.env.namespace)
    }

    async fn create_secret(&self, name: &str, data: &[(&str, &str)]) {
        let data: BTreeMap<&str, &str> = data.iter().copied().collect();
        let secret: Secret =
            serde_json::from_value(json!({"metadata": {"name": name}, "stringData": data}))
                .expect("secret");
        Api::<Secret>::namespaced(self.env.client.clone(), &self.env.namespace)
            .create(&PostParams::default(), &secret)
            .await
            .expect("create secret");
    }

    async fn apply_dataset(&self) {
        self.datasets()
            .patch(
                NAME,
                &PatchParams::apply("cli-test").force(),
                &Patch::Apply(dataset_manifest()),
            )
            .await
            .expect("apply XeroDataset");
    }

    /// The simulator with the broken tenant, the Secrets, the XeroDataset and the operator
    /// binary watching this namespace; returns once the operator has healed the dataset.
    async fn healed(&mut self) {
        let seed = Seed::from_yaml(&broken_tenant_seed()).expect("seed");
        let sim = Simulator::start(SocketAddr::from(([127, 0, 0, 1], 0)), seed)
            .await
            .expect("simulator");
        let url = sim.url();
        self.sim = Some(sim);
        self.create_secret(
            "powerbi-sp",
            &[
                ("tenantId", TENANT),
                ("clientId", SP_CLIENT),
                ("clientSecret", "sp-secret"),
            ],
        )
        .await;
        self.create_secret(
            "xero-app",
            &[
                ("clientId", XERO_CLIENT),
                ("clientSecret", "xero-secret"),
                ("refreshToken", "initial-refresh-token"),
            ],
        )
        .await;
        self.apply_dataset().await;
        let log = tempfile::NamedTempFile::new().expect("log file");
        let out = log.reopen().expect("log file");
        let err = log.reopen().expect("log file");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_xero-operator"))
            .args([
                "run",
                "--watch-namespaces",
                &self.env.namespace,
                "--metrics-addr",
                "127.0.0.1:0",
                "--refresh-poll-interval",
                "1s",
                "--resync-interval",
                "1h",
            ])
            .env("KUBECONFIG", self.env.plane.kubeconfig_path())
            .env("XERO_OPERATOR_POWERBI_API_URL", &url)
            .env("XERO_OPERATOR_AUTHORITY_HOST", &url)
            .env("XERO_OPERATOR_XERO_IDENTITY_URL", &url)
            .env("XERO_OPERATOR_XERO_API_URL", &url)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start xero-operator");
        self.operator = Some(Operator { child, log });
        self.wait_for(
            "Ready=True after the heal",
            Duration::from_secs(60),
            |xds| {
                xds.status
                    .as_ref()
                    .and_then(|s| find_condition(&s.conditions, conditions::READY))
                    .is_some_and(|c| c.status == "True")
            },
        )
        .await;
    }

    async fn wait_for(
        &self,
        what: &str,
        within: Duration,
        ready: impl Fn(&XeroDataset) -> bool,
    ) -> XeroDataset {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(xds) = self.datasets().get(NAME).await
                && ready(&xds)
            {
                return xds;
            }
            if Instant::now() > deadline {
                let status = self.datasets().get(NAME).await.ok().and_then(|x| x.status);
                let log = self
                    .operator
                    .as_ref()
                    .map(Operator::log)
                    .unwrap_or_default();
                panic!("timed out waiting for {what}\nstatus: {status:#?}\noperator log:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Runs the CLI binary with the testbed's kubeconfig.
    async fn cli(&self, args: &[&str]) -> Run {
        let output = tokio::time::timeout(
            Duration::from_secs(120),
            tokio::process::Command::new(env!("CARGO_BIN_EXE_xero-operator"))
                .args(args)
                .env("KUBECONFIG", self.env.plane.kubeconfig_path())
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("the CLI did not exit within 120s")
        .expect("run the CLI");
        Run {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Refresh POSTs the simulator served for the dataset.
    async fn refresh_posts(&self) -> usize {
        let sim = self.sim.as_ref().expect("simulator");
        let list: Vec<Value> = reqwest::Client::new()
            .get(format!("{}/_sim/requests", sim.url()))
            .query(&[
                ("method", "POST"),
                (
                    "pathPrefix",
                    &format!("/v1.0/myorg/groups/{WORKSPACE}/datasets/{DATASET}/refreshes"),
                ),
            ])
            .send()
            .await
            .expect("request log")
            .json()
            .await
            .expect("request log json");
        list.len()
    }

    async fn annotation(&self) -> String {
        let xds = self.datasets().get(NAME).await.expect("read XeroDataset");
        xds.metadata
            .annotations
            .and_then(|a| a.get(REFRESH_REQUESTED_AT).cloned())
            .expect("the refresh-requested-at annotation")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_wait_reports_the_outcome_of_exactly_one_refresh_per_request() {
    let mut s = Scenario::start("cli-refresh").await;
    s.healed().await;
    let ns = s.env.namespace.clone();
    assert_eq!(s.refresh_posts().await, 1, "the heal's refresh");

    let run = s
        .cli(&["refresh", NAME, "-n", &ns, "--wait", "--timeout", "60s"])
        .await;
    assert!(
        run.success,
        "refresh --wait failed:\n{}{}",
        run.stdout, run.stderr
    );
    let value = s.annotation().await;
    assert!(value.parse::<Timestamp>().is_ok(), "not RFC 3339: {value}");
    assert!(
        run.stdout.contains(&format!(
            "Requested a refresh of XeroDataset {ns}/{NAME} ({REFRESH_REQUESTED_AT}={value})"
        )),
        "{}",
        run.stdout
    );
    let outcome = run
        .stdout
        .lines()
        .last()
        .expect("an outcome line")
        .to_owned();
    assert!(
        outcome.starts_with("Refresh ") && outcome.contains(" Completed"),
        "{}",
        run.stdout
    );
    assert_eq!(s.refresh_posts().await, 2, "one refresh for the request");
    let status = s
        .datasets()
        .get(NAME)
        .await
        .expect("read")
        .status
        .expect("status");
    assert_eq!(
        status.last_handled_refresh_at.as_deref(),
        Some(value.as_str())
    );
    let last = status.last_refresh.expect("last refresh");
    assert_eq!(last.status, "Completed");
    assert!(outcome.contains(&last.request_id), "{outcome}");

    // A second request: a new annotation value, again exactly one more refresh.
    let run = s.cli(&["refresh", NAME, "-n", &ns, "--wait"]).await;
    assert!(
        run.success,
        "refresh --wait failed:\n{}{}",
        run.stdout, run.stderr
    );
    assert_ne!(s.annotation().await, value);
    assert_eq!(s.refresh_posts().await, 3);

    // Without --wait it only asks.
    let run = s.cli(&["refresh", NAME, "-n", &ns]).await;
    assert!(run.success, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
    s.wait_for("the request handled", Duration::from_secs(30), |xds| {
        xds.status
            .as_ref()
            .and_then(|s| s.last_handled_refresh_at.as_deref())
            .is_some_and(|handled| {
                Some(handled)
                    == xds
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(REFRESH_REQUESTED_AT))
                        .map(String::as_str)
            })
    })
    .await;

    // What the operator did shows in `status`.
    let run = s.cli(&["status", NAME, "-n", &ns]).await;
    assert!(run.success, "{}", run.stderr);
    let out = run.stdout;
    assert!(
        out.starts_with(&format!("XeroDataset {ns}/{NAME}\n")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "Dataset:  \"Xero\" ({DATASET}) in workspace {WORKSPACE}"
        )) || out.lines().any(|l| l.trim_start().starts_with("Dataset:")
            && l.contains(&format!("\"Xero\" ({DATASET}) in workspace {WORKSPACE}"))),
        "{out}"
    );
    let row = |first: &str| {
        out.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|cells| cells.first() == Some(&first))
            .unwrap_or_else(|| panic!("no {first} row in\n{out}"))
    };
    assert_eq!(row("Ready")[1..3], ["True", reason::RECONCILED]);
    assert_eq!(row("ScheduleSynced")[1], "True");
    assert!(out.contains("RefreshSucceeded"), "{out}");
    assert!(out.contains("ScheduleUpdated"), "{out}");

    // Xero access revoked: the operator cannot serve the request until someone acts, so it
    // answers it at once without a refresh, and the command fails naming the reason.
    let sim = s.sim.as_ref().expect("simulator");
    let revoked = reqwest::Client::new()
        .post(format!("{}/_sim/xero/revoke", sim.url()))
        .json(&json!({"all": true}))
        .send()
        .await
        .expect("revoke");
    assert!(revoked.status().is_success());
    s.wait_for(
        "Ready=False after the revocation",
        Duration::from_secs(30),
        |xds| {
            xds.status
                .as_ref()
                .and_then(|s| find_condition(&s.conditions, conditions::READY))
                .is_some_and(|c| c.status == "False")
        },
    )
    .await;
    let posts = s.refresh_posts().await;
    let run = s
        .cli(&["refresh", NAME, "-n", &ns, "--wait", "--timeout", "30s"])
        .await;
    assert!(!run.success, "{}", run.stdout);
    assert!(
        run.stderr
            .contains("the operator handled the request without starting a refresh")
            && run.stderr.contains("OrganisationNotFound"),
        "{}",
        run.stderr
    );
    assert_eq!(
        s.refresh_posts().await,
        posts,
        "no refresh without Xero access"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_wait_fails_clearly_when_nobody_handles_the_request() {
    let s = Scenario::start("cli-refresh-timeout").await;
    s.apply_dataset().await;
    let ns = s.env.namespace.clone();
    let run = s
        .cli(&["refresh", NAME, "-n", &ns, "--wait", "--timeout", "2s"])
        .await;
    assert!(!run.success, "{}", run.stdout);
    assert!(
        run.stderr
            .contains("timed out after 2s: the operator has not handled the request"),
        "{}",
        run.stderr
    );
    let run = s.cli(&["refresh", "missing", "-n", &ns]).await;
    assert!(!run.success);
    assert!(
        run.stderr
            .contains(&format!("XeroDataset {ns}/missing not found")),
        "{}",
        run.stderr
    );
}

/// A status as the operator writes it for a dataset whose refresh token Xero rejected.
fn rejected_status(generation: i64, now: Timestamp) -> XeroDatasetStatus {
    let at = |minutes_ago: i64| status_time(now - SignedDuration::from_mins(minutes_ago));
    let mut conditions = Vec::new();
    for (type_, status, reason, message) in [
        (
            conditions::READY,
            ConditionStatus::False,
            reason::XERO_REFRESH_TOKEN_REJECTED,
            "Xero rejected the refresh token: sign in to Xero again with `xero-operator xero-login`",
        ),
        (
            conditions::CREDENTIALS_VALID,
            ConditionStatus::False,
            reason::XERO_REFRESH_TOKEN_REJECTED,
            "Xero rejected the refresh token",
        ),
        (
            conditions::SCHEDULE_SYNCED,
            ConditionStatus::True,
            reason::SCHEDULE_IN_SYNC,
            "the schedule matches the spec",
        ),
    ] {
        conditions::set_condition(
            &mut conditions,
            conditions::new_condition(type_, status, reason, message, Some(generation), at(5)),
        );
    }
    XeroDatasetStatus {
        observed_generation: Some(generation),
        conditions,
        dataset_id: Some(DATASET.into()),
        last_refresh: Some(LastRefresh {
            request_id: "r-1".into(),
            refresh_type: Some("Scheduled".into()),
            status: "Failed".into(),
            start_time: Some(at(30)),
            end_time: Some(at(28)),
            error_code: Some("DMTS_OAuthTokenRefreshFailedError".into()),
            error_message: None,
        }),
        // Half a minute of slack, so that the report still says "in 3h" a few seconds later.
        next_refresh_time: Some(status_time(now + SignedDuration::from_secs(3 * 3600 + 30))),
        recovery: Some(RecoveryStatus {
            attempts_today: 2,
            consecutive_failures: 3,
            last_attempt_time: Some(at(10)),
            ..RecoveryStatus::default()
        }),
        ..XeroDatasetStatus::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_conditions_refreshes_recovery_and_events_in_columns() {
    let s = Scenario::start("cli-status").await;
    s.apply_dataset().await;
    let ns = s.env.namespace.clone();
    let xds = s.datasets().get(NAME).await.expect("read");
    let generation = xds.metadata.generation.expect("generation");
    let now = Timestamp::now();
    let patch = json!({
        "apiVersion": "xero-operator.dev/v1alpha1",
        "kind": "XeroDataset",
        "status": rejected_status(generation, now),
    });
    s.datasets()
        .patch_status(
            NAME,
            &PatchParams::apply("xero-operator").force(),
            &Patch::Apply(&patch),
        )
        .await
        .expect("write status");
    let events: Api<Event> = Api::namespaced(s.env.client.clone(), &ns);
    for (minutes_ago, type_, reason, note) in [
        (20, "Normal", "RefreshTriggered", "started refresh r-1"),
        (
            5,
            "Warning",
            "XeroRefreshTokenRejected",
            "Xero rejected the refresh token",
        ),
    ] {
        let event: Event = serde_json::from_value(json!({
            "metadata": {"generateName": "finance-xero-"},
            "eventTime": (now - SignedDuration::from_mins(minutes_ago))
                .strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string(),
            "reportingController": "xero-operator",
            "reportingInstance": "xero-operator-test",
            "action": "Reconcile",
            "type": type_,
            "reason": reason,
            "note": note,
            "regarding": {
                "apiVersion": "xero-operator.dev/v1alpha1",
                "kind": "XeroDataset",
                "name": NAME,
                "namespace": ns,
                "uid": xds.metadata.uid,
            },
        }))
        .expect("event");
        events
            .create(&PostParams::default(), &event)
            .await
            .expect("create event");
    }

    let run = s.cli(&["status", NAME, "--namespace", &ns]).await;
    assert!(run.success, "{}", run.stderr);
    let out = run.stdout;
    let line = |label: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no {label} line in\n{out}"))
            .to_owned()
    };
    assert_eq!(
        out.lines().next(),
        Some(format!("XeroDataset {ns}/{NAME}").as_str())
    );
    assert!(
        line("Last refresh:").ends_with(
            "Failed (Scheduled), started 30m ago, took 2m, request r-1, error DMTS_OAuthTokenRefreshFailedError"
        ),
        "{out}"
    );
    assert!(line("Next refresh:").contains("in 3h"), "{out}");
    assert!(
        line("Recovery:").ends_with(
            "2 attempt(s) today (max 3), 3 consecutive failure(s), last attempt 10m ago"
        ),
        "{out}"
    );
    assert!(line("Generation:").contains("(up to date)"), "{out}");
    // The labels' values start in one column.
    let value_columns: Vec<usize> = ["Dataset:", "Last refresh:", "Recovery:"]
        .iter()
        .map(|label| {
            let l = line(label);
            l.len()
                - l[l.find(label).expect("label") + label.len()..]
                    .trim_start()
                    .len()
        })
        .collect();
    assert!(value_columns.windows(2).all(|w| w[0] == w[1]), "{out}");

    // Conditions: a header, then Ready first, in aligned columns.
    let header = line("TYPE");
    let reason_column = header.find("REASON").expect("REASON column");
    let ready = line("Ready ");
    assert_eq!(
        &ready[reason_column..reason_column + 24],
        "XeroRefreshTokenRejected"
    );
    assert!(ready.contains("False"), "{out}");
    assert!(
        ready.ends_with("sign in to Xero again with `xero-operator xero-login`"),
        "{out}"
    );
    let conditions_order: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("Conditions:"))
        .skip(2)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        conditions_order,
        ["Ready", "ScheduleSynced", "CredentialsValid"]
    );

    // Events: newest last.
    let events_block: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("Events:"))
        .skip(2)
        .collect();
    assert_eq!(events_block.len(), 2, "{out}");
    let cells = |l: &str| {
        l.split_whitespace()
            .take(3)
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        cells(events_block[0]),
        ["20m", "Normal", "RefreshTriggered"]
    );
    assert_eq!(
        cells(events_block[1]),
        ["5m", "Warning", "XeroRefreshTokenRejected"]
    );

    // The same through kubectl, with the binary installed as the plugin kubectl-xero.
    let plugins = tempfile::tempdir().expect("plugin dir");
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_xero-operator"),
        plugins.path().join("kubectl-xero"),
    )
    .expect("install the plugin");
    let output = tokio::process::Command::new(&s.env.plane.binaries().kubectl)
        .args(["xero", "status", NAME, "-n", &ns])
        .env("KUBECONFIG", s.env.plane.kubeconfig_path())
        .env("PATH", plugins.path())
        .output()
        .await
        .expect("run kubectl xero");
    let plugin_out = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        plugin_out.lines().next(),
        out.lines().next(),
        "{plugin_out}"
    );
    assert!(
        plugin_out.contains("XeroRefreshTokenRejected"),
        "{plugin_out}"
    );
}
