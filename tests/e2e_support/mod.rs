//! End-to-end scenarios: the real `xero-operator` binary as a subprocess, against the testbed's
//! kube-apiserver and the Power BI / Entra / Xero simulator over real HTTP.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use powerbi_sim::{RunningSimulator, Seed, Simulator};
use serde_json::{Value, json};
use xero_operator::api::XeroDataset;
use xero_operator::api::conditions::find_condition;
use xero_testbed::TestEnv;

pub const TENANT: &str = "7d0b1a8e-0c57-4d8e-9b3a-5f2c9d1e4a60";
pub const SP_CLIENT: &str = "3f1c2b4a-9d8e-4f7a-b6c5-1e2d3c4b5a69";
pub const WORKSPACE: &str = "f089354e-8366-4e18-aea3-4cb4a3a50b48";
pub const DATASET: &str = "cfafbeb1-8037-4d0c-896e-a46fb27ff229";
pub const XERO_CLIENT: &str = "0A1B2C3D4E5F60718293A4B5C6D7E8F9";
pub const INITIAL_REFRESH_TOKEN: &str = "initial-refresh-token";

/// A tenant in trouble: the dataset's last scheduled refresh
/// failed because its Xero credentials expired, and Power BI switched the schedule off.
pub fn broken_tenant_seed() -> String {
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
    - token: {INITIAL_REFRESH_TOKEN}
"#
    )
}

/// The XeroDataset of the scenarios, with `overrides` merged into its spec.
pub fn dataset_manifest(name: &str, overrides: Value) -> Value {
    let mut manifest = json!({
        "apiVersion": "xero-operator.dev/v1alpha1",
        "kind": "XeroDataset",
        "metadata": {"name": name},
        "spec": {
            "workspaceId": WORKSPACE,
            "dataset": {"name": "Xero"},
            "xero": {"organisation": "Demo Company (UK)", "credentialsSecretRef": {"name": "xero-app"}},
            "powerBI": {"credentialsSecretRef": {"name": "powerbi-sp"}},
            // Most scenarios are about Power BI's own schedule; tests/e2e_slots.rs covers the
            // default, startedBy: Operator.
            "schedule": {
                "enabled": true,
                "days": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"],
                "times": times_far_from_now(),
                "timeZone": "UTC",
                "startedBy": "PowerBI",
            },
            "recovery": {"maxAttemptsPerDay": 3, "backoff": {"initial": "2s", "max": "10s"}},
        },
    });
    merge(&mut manifest["spec"], overrides);
    manifest
}

/// Two slot times 4 and 10 hours from now (UTC, on the half hour): no test finds a slot due
/// while it runs, where a recovery would wait for the scheduled refresh (a fixed 12:30 made the
/// suite fail between 12:25 and 12:45).
pub fn times_far_from_now() -> Vec<String> {
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
    [4, 10]
        .into_iter()
        .map(|hours| {
            let at = now.saturating_add(jiff::SignedDuration::from_hours(hours));
            format!(
                "{:02}:{:02}",
                at.hour(),
                if at.minute() < 30 { 0 } else { 30 }
            )
        })
        .collect()
}

/// The English name of the weekday three days from now (UTC): a day whose slots are never due
/// while a test runs.
pub fn day_far_from_now() -> &'static str {
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
    let day = now
        .saturating_add(jiff::SignedDuration::from_hours(72))
        .weekday();
    xero_operator::api::DayOfWeek::of(day).name()
}

/// Merges `patch` into `target`, object by object (a JSON merge patch without deletions).
pub fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                merge(target.entry(key).or_insert(Value::Null), value);
            }
        }
        (target, patch) => *target = patch,
    }
}

/// One scenario: a namespace, a simulator, and (once started) an operator watching the namespace.
pub struct Scenario {
    pub env: TestEnv,
    pub sim: RunningSimulator,
    pub http: reqwest::Client,
    operator: Option<Operator>,
    logs: tempfile::TempDir,
    runs: usize,
    /// The kubeconfig operators use: the admin's unless a test sets another.
    pub kubeconfig: PathBuf,
    /// Operators watch every namespace instead of the scenario's only.
    pub watch_everywhere: bool,
}

/// An operator process; killed (SIGKILL) when dropped.
pub struct Operator {
    child: Child,
}

impl Operator {
    /// Kills the process at once, as a crash or a node failure would.
    pub fn kill(self) {
        drop(self);
    }

    /// Sends SIGTERM, as Kubernetes does on a rollout, and waits for the exit status.
    pub fn terminate(mut self, within: Duration) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the operator did not exit within {within:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Scenario {
    pub async fn start(name: &str, seed: &str) -> Scenario {
        xero_operator::telemetry::install_crypto_provider();
        let env = TestEnv::new(name).await;
        let seed = Seed::from_yaml(seed).expect("seed");
        let sim = Simulator::start(SocketAddr::from(([127, 0, 0, 1], 0)), seed)
            .await
            .expect("simulator");
        let kubeconfig = env.plane.kubeconfig_path().to_path_buf();
        Scenario {
            kubeconfig,
            env,
            sim,
            http: reqwest::Client::new(),
            operator: None,
            logs: tempfile::tempdir().expect("log dir"),
            runs: 0,
            watch_everywhere: false,
        }
    }

    pub fn datasets(&self) -> Api<XeroDataset> {
        Api::namespaced(self.env.client.clone(), &self.env.namespace)
    }

    pub fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.env.client.clone(), &self.env.namespace)
    }

    /// Creates the Power BI service principal Secret and the Xero app Secret.
    pub async fn create_secrets(&self) {
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
                ("refreshToken", INITIAL_REFRESH_TOKEN),
            ],
        )
        .await;
    }

    pub async fn create_secret(&self, name: &str, data: &[(&str, &str)]) {
        let data: BTreeMap<&str, &str> = data.iter().copied().collect();
        let secret: Secret =
            serde_json::from_value(json!({"metadata": {"name": name}, "stringData": data}))
                .expect("secret");
        self.secrets()
            .create(&PostParams::default(), &secret)
            .await
            .expect("create secret");
    }

    pub async fn secret_value(&self, name: &str, key: &str) -> String {
        let secret = self.secrets().get(name).await.expect("read secret");
        let bytes = secret.data.and_then(|d| d.get(key).cloned()).expect("key");
        String::from_utf8(bytes.0).expect("utf-8")
    }

    pub async fn apply_dataset(&self, manifest: &Value) {
        let name = manifest["metadata"]["name"].as_str().expect("name");
        self.datasets()
            .patch(
                name,
                &PatchParams::apply("e2e-test").force(),
                &Patch::Apply(manifest),
            )
            .await
            .expect("apply XeroDataset");
    }

    /// Starts the operator binary, watching this scenario's namespace only.
    pub fn start_operator(&mut self) {
        self.start_operator_with(&[]);
    }

    /// Starts the operator binary with extra flags.
    pub fn start_operator_with(&mut self, extra: &[&str]) {
        self.stop_operator();
        let operator = self.spawn_operator(extra);
        self.operator = Some(operator);
    }

    /// Starts one more operator process, owned by the caller.
    pub fn spawn_operator(&mut self, extra: &[&str]) -> Operator {
        self.runs += 1;
        let log = self.log_path();
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let url = self.sim.url();
        let watched: &[&str] = if self.watch_everywhere {
            &[]
        } else {
            &["--watch-namespaces", &self.env.namespace]
        };
        let child = Command::new(env!("CARGO_BIN_EXE_xero-operator"))
            .arg("run")
            .args(watched)
            .args([
                "--metrics-addr",
                "127.0.0.1:0",
                "--refresh-poll-interval",
                "1s",
                "--resync-interval",
                "1h",
                "--log-level",
                "info,xero_operator=debug",
            ])
            .args(extra)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("XERO_OPERATOR_POWERBI_API_URL", &url)
            .env("XERO_OPERATOR_AUTHORITY_HOST", &url)
            .env("XERO_OPERATOR_XERO_IDENTITY_URL", &url)
            .env("XERO_OPERATOR_XERO_API_URL", &url)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start xero-operator");
        Operator { child }
    }

    /// Kills the operator with SIGKILL (no graceful shutdown).
    pub fn stop_operator(&mut self) {
        self.operator = None;
    }

    fn log_path(&self) -> PathBuf {
        self.logs.path().join(format!("operator-{}.log", self.runs))
    }

    /// The operator's log so far (for failure messages, and to check that no secret is logged).
    pub fn operator_log(&self) -> String {
        (1..=self.runs)
            .map(|run| {
                std::fs::read_to_string(self.logs.path().join(format!("operator-{run}.log")))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n--- restart ---\n")
    }

    /// The operator's /metrics text, from the address its log names.
    pub async fn metrics(&self) -> String {
        let log = self.operator_log();
        let line = log
            .lines()
            .find(|l| l.contains("serving /metrics"))
            .expect("the operator logs its metrics address");
        let addr = line
            .split("addr=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map(|a| a.trim_matches(|c: char| !c.is_ascii_digit() && c != '.' && c != ':'))
            .expect("metrics address");
        self.http
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("metrics text")
    }

    /// Waits until `ready` holds for the XeroDataset `name`, polling the API server.
    pub async fn wait_for(
        &self,
        name: &str,
        what: &str,
        within: Duration,
        ready: impl Fn(&XeroDataset) -> bool,
    ) -> XeroDataset {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(xds) = self.datasets().get(name).await
                && ready(&xds)
            {
                return xds;
            }
            if Instant::now() > deadline {
                let current = self.datasets().get(name).await.ok().and_then(|x| x.status);
                panic!(
                    "timed out after {within:?} waiting for {what}\nstatus: {current:#?}\noperator log:\n{}",
                    tail(&self.operator_log(), 60)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until the condition `type_` has `status` (and `reason` when given).
    pub async fn wait_condition(
        &self,
        name: &str,
        type_: &str,
        status: &str,
        reason: Option<&str>,
        within: Duration,
    ) -> XeroDataset {
        self.wait_for(
            name,
            &format!("{type_}={status} ({reason:?})"),
            within,
            |xds| {
                xds.status
                    .as_ref()
                    .and_then(|s| find_condition(&s.conditions, type_))
                    .is_some_and(|c| c.status == status && reason.is_none_or(|r| c.reason == r))
            },
        )
        .await
    }

    /// The simulator's request log, filtered by method and path prefix.
    pub async fn requests(&self, method: &str, path_prefix: &str) -> Vec<Value> {
        let url = format!("{}/_sim/requests", self.sim.url());
        let list: Vec<Value> = self
            .http
            .get(url)
            .query(
                &[("method", method), ("pathPrefix", path_prefix)]
                    .into_iter()
                    .filter(|(_, v)| !v.is_empty())
                    .collect::<Vec<_>>(),
            )
            .send()
            .await
            .expect("request log")
            .json()
            .await
            .expect("request log json");
        list
    }

    /// Counts requests by method and path prefix.
    pub async fn count(&self, method: &str, path_prefix: &str) -> usize {
        self.requests(method, path_prefix).await.len()
    }

    /// Calls the simulator's admin API.
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let response = self
            .http
            .request(method, format!("{}/_sim/{path}", self.sim.url()))
            .json(&body)
            .send()
            .await
            .expect("admin call");
        assert!(
            response.status().is_success(),
            "admin {path}: {}",
            response.status()
        );
        response.json().await.unwrap_or(Value::Null)
    }

    /// The simulator's clock, which dates the refreshes.
    pub async fn sim_now(&self) -> jiff::Timestamp {
        let clock = self.admin(reqwest::Method::GET, "clock", Value::Null).await;
        clock["now"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .expect("the simulator's time")
    }

    /// The simulator's state of the dataset.
    pub async fn sim_dataset(&self) -> Value {
        self.sim_dataset_by_id(DATASET).await
    }

    /// The simulator's state of the dataset `id` (its schedule, its refreshes newest first).
    pub async fn sim_dataset_by_id(&self, id: &str) -> Value {
        let state: Value = self
            .http
            .get(format!("{}/_sim/state", self.sim.url()))
            .send()
            .await
            .expect("state")
            .json()
            .await
            .expect("state json");
        state["workspaces"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|w| w["datasets"].as_array().cloned().unwrap_or_default())
            .find(|d| d["id"] == id)
            .expect("dataset in simulator state")
    }

    /// Waits until `name` is Ready=False with `reason`; returns the Ready message.
    pub async fn wait_not_ready(&self, name: &str, reason: &str, within: Duration) -> String {
        let xds = self
            .wait_condition(name, "Ready", "False", Some(reason), within)
            .await;
        xds.status
            .as_ref()
            .and_then(|s| find_condition(&s.conditions, "Ready"))
            .map(|c| c.message.clone())
            .unwrap_or_default()
    }

    /// Waits until `name` is Ready=True with reason Reconciled.
    pub async fn wait_reconciled(&self, name: &str, within: Duration) -> XeroDataset {
        self.wait_condition(name, "Ready", "True", Some("Reconciled"), within)
            .await
    }

    /// Asks for a refresh of `name` with the refresh-requested-at annotation set to `value`.
    pub async fn request_refresh(&self, name: &str, value: &str) {
        let annotate =
            json!({"metadata": {"annotations": {"xero-operator.dev/refresh-requested-at": value}}});
        self.datasets()
            .patch(name, &PatchParams::default(), &Patch::Merge(&annotate))
            .await
            .expect("annotate");
    }

    /// Event reasons on the XeroDataset `name`, oldest first.
    pub async fn event_reasons(&self, name: &str) -> Vec<String> {
        self.events(name)
            .await
            .into_iter()
            .filter_map(|e| e.reason)
            .collect()
    }

    /// The events on the XeroDataset `name` as the API server holds them, oldest first.
    pub async fn events(&self, name: &str) -> Vec<Event> {
        let events = Api::<Event>::namespaced(self.env.client.clone(), &self.env.namespace)
            .list(&ListParams::default())
            .await
            .expect("events");
        let mut ours: Vec<Event> = events
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .collect();
        ours.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
        ours
    }
}

/// Whether `word` occurs in `text` as a whole word (bounded by characters that are neither
/// letters nor digits), so that `403` is found in `status=403` but not in `57.885403Z`.
pub fn has_word(text: &str, word: &str) -> bool {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .any(|token| token == word)
}

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The flags of an operator that takes part in leader election through a Lease in `ns`.
pub fn leader_flags(ns: &str) -> Vec<String> {
    [
        "--leader-election",
        "true",
        "--leader-election-namespace",
        ns,
        // The chart's leaderElection.leaseName, which its Role names.
        "--leader-election-lease",
        "xero-operator",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The broken tenant's seed as a value, to change before starting a scenario.
pub fn seed_value() -> serde_yaml::Value {
    serde_yaml::from_str(&broken_tenant_seed()).expect("seed yaml")
}

pub fn seed_text(seed: &serde_yaml::Value) -> String {
    serde_yaml::to_string(seed).expect("seed yaml")
}

/// The broken tenant with `count` Xero datasets (ids from [`dataset_id`], names `Xero 0` ...).
pub fn many_datasets_seed(count: usize) -> String {
    let mut seed = seed_value();
    let template = seed["workspaces"][0]["datasets"][0].clone();
    let datasets: Vec<serde_yaml::Value> = (0..count)
        .map(|i| {
            let mut d = template.clone();
            d["id"] = dataset_id(i).into();
            d["name"] = format!("Xero {i}").into();
            d["datasources"][0]["datasourceId"] = format!("dc2f2dac-e5e2-4c37-af76-{i:012}").into();
            d["refreshHistory"][0]["requestId"] = format!("failed-{i}").into();
            d
        })
        .collect();
    seed["workspaces"][0]["datasets"] = datasets.into();
    seed_text(&seed)
}

/// The id of the `i`-th dataset of [`many_datasets_seed`].
pub fn dataset_id(i: usize) -> String {
    format!("cfafbeb1-8037-4d0c-896e-{i:012}")
}
