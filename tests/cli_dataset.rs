//! `xero-operator refresh` and `xero-operator status`, the CLI binary against the testbed: with
//! the operator binary running against the simulator for `refresh --wait`, and with a status
//! written through the status subresource for `status`.

use std::process::Stdio;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use xero_operator::api::REFRESH_REQUESTED_AT;
use xero_operator::api::Reason;
use xero_operator::api::conditions::{self, ConditionStatus, find_condition};
use xero_operator::api::{
    LastRefresh, RecoveryStatus, XeroDataset, XeroDatasetStatus, status_time,
};

mod e2e_support;

use e2e_support::{DATASET, WORKSPACE, broken_tenant_seed, dataset_manifest};

const NAME: &str = "finance-xero";

/// The end-to-end scenario (testbed, simulator with the broken tenant, operator binary) with
/// the CLI on top.
struct Scenario {
    e2e: e2e_support::Scenario,
}

impl std::ops::Deref for Scenario {
    type Target = e2e_support::Scenario;

    fn deref(&self) -> &Self::Target {
        &self.e2e
    }
}

/// What one run of the CLI did.
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Scenario {
    async fn start(name: &str) -> Scenario {
        Scenario {
            e2e: e2e_support::Scenario::start(name, &broken_tenant_seed()).await,
        }
    }

    async fn apply_dataset(&self) {
        self.e2e
            .apply_dataset(&dataset_manifest(NAME, json!({})))
            .await;
    }

    /// The Secrets, the XeroDataset and the operator binary watching this namespace; returns
    /// once the operator has healed the dataset.
    async fn healed(&mut self) {
        self.e2e.create_secrets().await;
        self.apply_dataset().await;
        self.e2e.start_operator();
        self.e2e
            .wait_condition(
                NAME,
                conditions::READY,
                "True",
                None,
                Duration::from_secs(60),
            )
            .await;
    }

    async fn wait_for(
        &self,
        what: &str,
        within: Duration,
        ready: impl Fn(&XeroDataset) -> bool,
    ) -> XeroDataset {
        self.e2e.wait_for(NAME, what, within, ready).await
    }

    /// Runs the CLI binary with the testbed's kubeconfig, and the simulator as every cloud
    /// service (as the operator of the scenario has).
    async fn cli(&self, args: &[&str]) -> Run {
        let url = self.sim.url();
        let output = tokio::time::timeout(
            Duration::from_secs(120),
            tokio::process::Command::new(env!("CARGO_BIN_EXE_xero-operator"))
                .args(args)
                .env("KUBECONFIG", self.env.plane.kubeconfig_path())
                .env("XERO_OPERATOR_POWERBI_API_URL", &url)
                .env("XERO_OPERATOR_AUTHORITY_HOST", &url)
                .env("XERO_OPERATOR_XERO_IDENTITY_URL", &url)
                .env("XERO_OPERATOR_XERO_API_URL", &url)
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
        self.e2e
            .count(
                "POST",
                &format!("/v1.0/myorg/groups/{WORKSPACE}/datasets/{DATASET}/refreshes"),
            )
            .await
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
    assert_eq!(row("Ready")[1..3], ["True", Reason::Reconciled.as_str()]);
    assert_eq!(row("ScheduleSynced")[1], "True");
    assert!(out.contains("RefreshSucceeded"), "{out}");
    assert!(out.contains("ScheduleUpdated"), "{out}");

    // Xero access revoked: the operator cannot serve the request until someone acts, so it
    // answers it at once without a refresh, and the command fails naming the reason: the
    // rejected sign-in it is (confirmed with a fresh exchange), not a missing organisation.
    let sim = &s.sim;
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
            && run.stderr.contains("XeroRefreshTokenRejected")
            && run
                .stderr
                .contains("xero-operator xero-login --secret xero-app"),
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
            Reason::XeroRefreshTokenRejected,
            "Xero rejected the refresh token: sign in to Xero again with `xero-operator xero-login`",
        ),
        (
            conditions::CREDENTIALS_VALID,
            ConditionStatus::False,
            Reason::XeroRefreshTokenRejected,
            "Xero rejected the refresh token",
        ),
        (
            conditions::SCHEDULE_SYNCED,
            ConditionStatus::True,
            Reason::ScheduleInSync,
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

/// The line of the check's report about `link` (a phrase of its title).
fn link_line<'a>(report: &'a str, link: &str) -> &'a str {
    report
        .lines()
        .find(|line| line.contains(link))
        .unwrap_or_else(|| panic!("no line about {link:?} in:\n{report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_prints_each_link_of_the_chain_and_fails_at_a_typo_in_the_organisation() {
    let scenario = Scenario::start("cli-check").await;
    scenario.e2e.create_secrets().await;
    let ns = scenario.env.namespace.clone();
    // A prefix of the connected organisation's name: everything before the organisation holds.
    scenario
        .e2e
        .apply_dataset(&dataset_manifest(
            NAME,
            json!({"xero": {"organisation": "Demo Company"}}),
        ))
        .await;
    let updates_before = scenario.count("PATCH", "/v1.0/myorg/gateways/").await;
    let broken = scenario.cli(&["check", NAME, "-n", &ns]).await;
    assert!(
        !broken.success,
        "a broken chain fails the command:\n{}",
        broken.stdout
    );
    let report = &broken.stdout;
    for passed in [
        "spec is valid",
        "principal signs in",
        "dataset is found",
        "one Xero datasource",
        "refresh token exchanges",
    ] {
        assert!(
            link_line(report, passed).trim_start().starts_with("PASS"),
            "{report}"
        );
    }
    let organisation = link_line(report, "among Xero's connections");
    assert!(
        organisation.contains("FAIL") && organisation.contains("OrganisationNotFound"),
        "{report}"
    );
    assert!(link_line(report, "accepts the Xero credentials").contains("SKIP"));
    assert!(
        report.contains("Demo Company (UK)"),
        "the message names the connected organisations:\n{report}"
    );
    assert!(
        broken.stderr.contains("OrganisationNotFound"),
        "{}",
        broken.stderr
    );
    assert_eq!(
        scenario.count("PATCH", "/v1.0/myorg/gateways/").await,
        updates_before,
        "no credentials are applied past a broken link"
    );
    // The exchange rotated the refresh token, and the new one is stored.
    let stored = scenario.secret_value("xero-app", "refreshToken").await;
    assert_ne!(stored, e2e_support::INITIAL_REFRESH_TOKEN);
    assert!(!report.contains(&stored), "no token in the report");

    // Fixed, every link holds, and Power BI got the credentials once.
    scenario.apply_dataset().await;
    let fixed = scenario.cli(&["check", NAME, "-n", &ns]).await;
    assert!(fixed.success, "{}\n{}", fixed.stdout, fixed.stderr);
    let passes = fixed
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("PASS"))
        .count();
    assert_eq!(passes, 8, "{}", fixed.stdout);
    assert!(link_line(&fixed.stdout, "among Xero's connections").contains("Demo Company (UK)"));
    assert!(
        link_line(&fixed.stdout, "limits leave the app calls").contains("left today"),
        "{}",
        fixed.stdout
    );
    assert_eq!(
        scenario.count("PATCH", "/v1.0/myorg/gateways/").await,
        updates_before + 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_a_missing_dataset_and_a_missing_xero_dataset_clearly() {
    let scenario = Scenario::start("cli-check-missing").await;
    scenario.e2e.create_secrets().await;
    let ns = scenario.env.namespace.clone();
    let absent = scenario.cli(&["check", "nobody", "-n", &ns]).await;
    assert!(!absent.success);
    assert!(
        absent
            .stderr
            .contains(&format!("XeroDataset {ns}/nobody not found")),
        "{}",
        absent.stderr
    );

    scenario
        .e2e
        .apply_dataset(&dataset_manifest(
            NAME,
            json!({"dataset": {"name": "Sales"}}),
        ))
        .await;
    let run = scenario.cli(&["check", NAME, "-n", &ns]).await;
    assert!(!run.success);
    let dataset = link_line(&run.stdout, "dataset is found");
    assert!(
        dataset.contains("FAIL") && dataset.contains("DatasetNotFound"),
        "{}",
        run.stdout
    );
    // Nothing past the dataset ran: the refresh token is untouched.
    assert_eq!(
        scenario.secret_value("xero-app", "refreshToken").await,
        e2e_support::INITIAL_REFRESH_TOKEN
    );
}
