//! A XeroDataset's health as users read it: status written through the status subresource (as
//! the operator writes it, server-side apply under its own field manager) shows in the columns of
//! `kubectl get xds`, and `kubectl wait --for=condition=Ready` returns only once Ready=True was
//! computed for the current generation.

mod api_support;

use std::collections::BTreeMap;
use std::time::Duration;

use api_support::{apply, datasets, kubectl, kubectl_ok, minimal_manifest, set, test_env};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use xero_operator::api::Reason;
use xero_operator::api::conditions::{self, ConditionStatus};
use xero_operator::api::{LastRefresh, XeroDatasetStatus};
use xero_testbed::TestEnv;

/// Writes `status` the way the operator does: server-side apply on the status subresource.
async fn write_status(env: &TestEnv, name: &str, status: &XeroDatasetStatus) {
    let patch = json!({
        "apiVersion": "xero-operator.dev/v1alpha1",
        "kind": "XeroDataset",
        "status": status,
    });
    datasets(env)
        .patch_status(
            name,
            &PatchParams::apply("xero-operator").force(),
            &Patch::Apply(&patch),
        )
        .await
        .unwrap_or_else(|err| panic!("write the status of {name}: {err}"));
}

fn at(timestamp: Timestamp) -> Time {
    xero_operator::api::status_time(timestamp)
}

/// A status with only the Ready condition, for `generation`.
fn ready_status(status: ConditionStatus, generation: i64) -> XeroDatasetStatus {
    let mut conditions = Vec::new();
    let reason = if status == ConditionStatus::True {
        Reason::Reconciled
    } else {
        Reason::Progressing
    };
    conditions::set_condition(
        &mut conditions,
        conditions::new_condition(
            conditions::READY,
            status,
            reason,
            format!("status for generation {generation}"),
            Some(generation),
            at(Timestamp::now()),
        ),
    );
    XeroDatasetStatus {
        observed_generation: Some(generation),
        conditions,
        ..XeroDatasetStatus::default()
    }
}

/// Rows of kubectl's table output, keyed by header. Columns are found from the header's
/// positions: kubectl aligns every cell with its header.
fn parse_table(output: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = output.lines();
    let header = lines.next().expect("a header line");
    // Headers are separated by at least two spaces ("LAST REFRESH" holds one).
    let mut starts = Vec::new();
    let mut previous_blank = 2;
    for (index, character) in header.char_indices() {
        if character != ' ' && previous_blank >= 2 {
            starts.push(index);
        }
        previous_blank = if character == ' ' {
            previous_blank + 1
        } else {
            0
        };
    }
    let names: Vec<String> = starts
        .iter()
        .enumerate()
        .map(|(i, &start)| {
            let end = starts.get(i + 1).copied().unwrap_or(header.len());
            header[start..end].trim().to_owned()
        })
        .collect();
    lines
        .map(|line| {
            starts
                .iter()
                .enumerate()
                .map(|(i, &start)| {
                    let end = starts
                        .get(i + 1)
                        .copied()
                        .unwrap_or(line.len())
                        .min(line.len());
                    let cell = line.get(start.min(line.len())..end).unwrap_or("").trim();
                    (names[i].clone(), cell.to_owned())
                })
                .collect()
        })
        .collect()
}

fn row<'a>(rows: &'a [BTreeMap<String, String>], name: &str) -> &'a BTreeMap<String, String> {
    rows.iter()
        .find(|row| row.get("NAME").map(String::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no row {name} in {rows:?}"))
}

#[tokio::test]
async fn kubectl_get_shows_the_health_columns() {
    let env = test_env("api-columns").await;
    apply(&env, &minimal_manifest("failing"))
        .await
        .expect("apply failing");
    let mut by_id = minimal_manifest("by-id");
    set(
        &mut by_id,
        "/spec/dataset",
        Some(json!({"id": "cfafbeb1-8037-4d0c-896e-a46fb27ff229"})),
    );
    set(&mut by_id, "/spec/suspend", Some(json!(true)));
    apply(&env, &by_id).await.expect("apply by-id");

    let now = Timestamp::now();
    let next_refresh = (now + SignedDuration::from_hours(3))
        .round(jiff::Unit::Second)
        .expect("round");
    let mut status = ready_status(ConditionStatus::False, 1);
    conditions::set_condition(
        &mut status.conditions,
        conditions::new_condition(
            conditions::READY,
            ConditionStatus::False,
            Reason::XeroRefreshTokenRejected,
            "Xero rejected the refresh token; sign in again with xero-operator xero-login",
            Some(1),
            at(now),
        ),
    );
    status.last_refresh = Some(LastRefresh {
        request_id: "8c7b5f2e-1111-4a4a-9b9b-0123456789ab".into(),
        refresh_type: Some("Scheduled".into()),
        status: "Failed".into(),
        start_time: Some(at(now - SignedDuration::from_mins(20))),
        end_time: Some(at(now - SignedDuration::from_mins(18))),
        error_code: Some("ModelRefreshFailed_CredentialsNotSpecified".into()),
        error_message: Some("The credentials provided for the Xero source are invalid.".into()),
    });
    status.last_successful_refresh_time = Some(at(now - SignedDuration::from_hours(5)));
    status.next_refresh_time = Some(at(next_refresh));
    status.dataset_id = Some("0e2f3f1a-2222-4b4b-8c8c-0123456789ab".into());
    status.dataset_name = Some("Xero".into());
    write_status(&env, "failing", &status).await;

    // The typed status reads back as written.
    let stored = datasets(&env).get("failing").await.expect("get failing");
    assert_eq!(stored.status.as_ref(), Some(&status));

    let output = kubectl_ok(&env, &["get", "xds", "-n", &env.namespace]).await;
    let rows = parse_table(&output);
    let failing = row(&rows, "failing");
    let expected = [
        ("DATASET", "Xero"),
        ("READY", "False"),
        ("REASON", "XeroRefreshTokenRejected"),
        ("LAST REFRESH", "Failed"),
        ("LAST SUCCESS", "5h"),
        ("NEXT REFRESH", next_refresh.to_string().as_str()),
        ("SUSPENDED", "false"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    for (column, value) in &expected {
        assert_eq!(
            failing.get(column),
            Some(value),
            "column {column} of:\n{output}"
        );
    }
    assert!(!failing["AGE"].is_empty(), "AGE is empty:\n{output}");
    assert!(
        !failing.contains_key("MESSAGE"),
        "MESSAGE shows without -o wide:\n{output}"
    );

    // An object without status: every status column is blank, DATASET too (the name is what
    // Power BI reports).
    let by_id = row(&rows, "by-id");
    for column in [
        "DATASET",
        "READY",
        "REASON",
        "LAST REFRESH",
        "LAST SUCCESS",
        "NEXT REFRESH",
    ] {
        assert_eq!(by_id[column], "", "column {column} of:\n{output}");
    }
    assert_eq!(by_id["SUSPENDED"], "true", "{output}");

    // spec.suspend and spec.workspaceId are selectable fields.
    let suspended = kubectl_ok(
        &env,
        &[
            "get",
            "xds",
            "-n",
            &env.namespace,
            "--field-selector",
            "spec.suspend=true",
            "-o",
            "name",
        ],
    )
    .await;
    assert_eq!(suspended.trim(), "xerodataset.xero-operator.dev/by-id");

    // Named by id in the spec, the dataset shows with the name Power BI reports, not its uuid.
    let named = XeroDatasetStatus {
        dataset_id: Some("cfafbeb1-8037-4d0c-896e-a46fb27ff229".into()),
        dataset_name: Some("Sales".into()),
        ..XeroDatasetStatus::default()
    };
    write_status(&env, "by-id", &named).await;
    let output = kubectl_ok(&env, &["get", "xds", "-n", &env.namespace]).await;
    assert_eq!(
        row(&parse_table(&output), "by-id")["DATASET"],
        "Sales",
        "{output}"
    );

    let wide = kubectl_ok(&env, &["get", "xds", "-n", &env.namespace, "-o", "wide"]).await;
    let rows = parse_table(&wide);
    assert_eq!(
        row(&rows, "failing")["MESSAGE"],
        "Xero rejected the refresh token; sign in again with xero-operator xero-login",
        "{wide}"
    );
}

#[tokio::test]
async fn kubectl_wait_returns_when_ready_is_true_for_the_current_generation() {
    let env = test_env("api-wait").await;
    let mut manifest = minimal_manifest("waiting");
    apply(&env, &manifest).await.expect("apply");
    // A spec change makes generation 2, so a Ready=True from generation 1 is stale.
    set(
        &mut manifest,
        "/spec/schedule/times",
        Some(json!(["07:00"])),
    );
    let stored = apply(&env, &manifest).await.expect("apply the change");
    assert_eq!(stored.metadata.generation, Some(2));

    let wait = |timeout: &'static str| {
        [
            "wait",
            "--for=condition=Ready",
            timeout,
            "-n",
            env.namespace.as_str(),
            "xds/waiting",
        ]
    };

    // Ready=True, but computed for generation 1: kubectl wait must not return success.
    write_status(&env, "waiting", &ready_status(ConditionStatus::True, 1)).await;
    let stale = kubectl(&env, &wait("--timeout=2s")).await;
    assert!(
        !stale.status.success(),
        "kubectl wait returned for a Ready=True of generation 1"
    );

    // Start waiting, then write Ready=False for the current generation: still waiting.
    let binaries = env.plane.binaries();
    let mut waiter = tokio::process::Command::new(&binaries.kubectl)
        .arg("--kubeconfig")
        .arg(env.plane.kubeconfig_path())
        .args(wait("--timeout=60s"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start kubectl wait");
    write_status(&env, "waiting", &ready_status(ConditionStatus::False, 2)).await;
    let not_ready = kubectl(&env, &wait("--timeout=2s")).await;
    assert!(
        !not_ready.status.success(),
        "kubectl wait returned for Ready=False"
    );
    assert!(
        waiter.try_wait().expect("poll kubectl wait").is_none(),
        "kubectl wait returned before Ready=True for generation 2"
    );

    // Ready=True for generation 2: the waiter returns, successfully, well before its timeout.
    write_status(&env, "waiting", &ready_status(ConditionStatus::True, 2)).await;
    let output = tokio::time::timeout(Duration::from_secs(30), waiter.wait_with_output())
        .await
        .expect("kubectl wait returns within 30s of Ready=True")
        .expect("kubectl wait ran");
    assert!(
        output.status.success(),
        "kubectl wait failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("condition met"));
}
