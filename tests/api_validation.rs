//! The XeroDataset API as the API server enforces it, on the testbed: the CRD installs, the
//! examples apply, every invalid spec is refused with a message naming the field, and omitted
//! fields get their defaults. Also: the committed CRD matches the generated one.

mod api_support;

use api_support::{
    apply, kubectl, kubectl_ok, kubectl_with_input, minimal_manifest, raw_datasets, repo_root, set,
    test_env,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use std::time::{Duration, Instant};

use kube::api::Api;
use serde_json::{Value, json};

/// A change to the minimal manifest: a JSON pointer and its new value (`None` removes it).
type Change = (&'static str, fn() -> Option<Value>);

/// A change to the minimal manifest that the API server must refuse.
struct Invalid {
    /// What the case is about.
    case: &'static str,
    /// Changes to the minimal manifest: JSON pointer and new value (`None` removes it).
    changes: &'static [Change],
    /// The field the error must name, as the API server writes paths.
    field: &'static str,
    /// A fragment of the message the user must see.
    says: &'static str,
}

fn times(count: usize) -> Vec<String> {
    (0..count)
        .map(|slot| {
            format!(
                "{:02}:{}",
                slot / 2,
                if slot % 2 == 0 { "00" } else { "30" }
            )
        })
        .collect()
}

const UUID: &str = "cfafbeb1-8037-4d0c-896e-a46fb27ff229";

const INVALID: &[Invalid] = &[
    Invalid {
        case: "workspace id is not a uuid",
        changes: &[("/spec/workspaceId", || Some(json!("finance-workspace")))],
        field: "spec.workspaceId",
        says: "must be a uuid",
    },
    Invalid {
        case: "dataset id is not a uuid",
        changes: &[("/spec/dataset", || Some(json!({"id": "12345"})))],
        field: "spec.dataset.id",
        says: "must be a uuid",
    },
    Invalid {
        case: "dataset has both id and name",
        changes: &[("/spec/dataset", || {
            Some(json!({"id": UUID, "name": "Xero"}))
        })],
        field: "spec.dataset",
        says: "set only one of dataset.id and dataset.name",
    },
    Invalid {
        case: "dataset has neither id nor name",
        changes: &[("/spec/dataset", || Some(json!({"datasourceId": UUID})))],
        field: "spec.dataset",
        says: "one of dataset.id or dataset.name is required",
    },
    Invalid {
        case: "datasource id is not a uuid",
        changes: &[("/spec/dataset/datasourceId", || Some(json!("xero-1")))],
        field: "spec.dataset.datasourceId",
        says: "must be a uuid",
    },
    Invalid {
        case: "time not on :00 or :30",
        changes: &[("/spec/schedule/times", || Some(json!(["06:15"])))],
        field: "spec.schedule.times",
        says: "minutes 00 or 30",
    },
    Invalid {
        case: "time 24:00",
        changes: &[("/spec/schedule/times", || Some(json!(["24:00"])))],
        field: "spec.schedule.times",
        says: "between 00:00 and 23:30",
    },
    Invalid {
        case: "time without a leading zero",
        changes: &[("/spec/schedule/times", || Some(json!(["6:00"])))],
        field: "spec.schedule.times",
        says: "must be hh:mm",
    },
    Invalid {
        case: "duplicate time",
        changes: &[("/spec/schedule/times", || {
            Some(json!(["06:00", "12:30", "06:00"]))
        })],
        field: "spec.schedule.times[2]",
        says: "Duplicate value: \"06:00\"",
    },
    Invalid {
        case: "9 times on Shared capacity",
        changes: &[("/spec/schedule/times", || Some(json!(times(9))))],
        field: "spec.schedule.times",
        says: "at most 8 times a day on Shared capacity",
    },
    Invalid {
        case: "49 times on Premium capacity",
        changes: &[
            ("/spec/capacity", || Some(json!("Premium"))),
            ("/spec/schedule/times", || {
                let mut times = times(48);
                times.push("23:00".into());
                Some(json!(times))
            }),
        ],
        field: "spec.schedule.times",
        says: "must have at most 48 items",
    },
    Invalid {
        case: "enabled schedule without times",
        changes: &[("/spec/schedule/times", || Some(json!([])))],
        field: "spec.schedule.times",
        says: "needs at least one time when the schedule is enabled",
    },
    Invalid {
        case: "empty days",
        changes: &[("/spec/schedule/days", || Some(json!([])))],
        field: "spec.schedule.days",
        says: "should have at least 1 items",
    },
    Invalid {
        case: "unknown day name",
        changes: &[("/spec/schedule/days", || Some(json!(["Monday", "Funday"])))],
        field: "spec.schedule.days[1]",
        says: "Unsupported value: \"Funday\"",
    },
    Invalid {
        case: "unknown slot starter",
        changes: &[("/spec/schedule/startedBy", || Some(json!("PowerBi")))],
        field: "spec.schedule.startedBy",
        says: "Unsupported value: \"PowerBi\"",
    },
    Invalid {
        case: "duplicate day",
        changes: &[("/spec/schedule/days", || Some(json!(["Monday", "Monday"])))],
        field: "spec.schedule.days[1]",
        says: "Duplicate value: \"Monday\"",
    },
    Invalid {
        case: "empty time zone",
        changes: &[("/spec/schedule/timeZone", || Some(json!("")))],
        field: "spec.schedule.timeZone",
        says: "at least 1 chars long",
    },
    Invalid {
        case: "lead time is not a duration",
        changes: &[("/spec/schedule/credentialLeadTime", || {
            Some(json!("10 minutes"))
        })],
        field: "spec.schedule.credentialLeadTime",
        says: "must be a duration such as 10m",
    },
    Invalid {
        case: "lead time longer than a Xero access token lives",
        changes: &[("/spec/schedule/credentialLeadTime", || Some(json!("45m")))],
        field: "spec.schedule.credentialLeadTime",
        says: "must be at most 15m",
    },
    Invalid {
        case: "backoff with a unit Go does not know",
        changes: &[("/spec/recovery/backoff/initial", || Some(json!("1d")))],
        field: "spec.recovery.backoff.initial",
        says: "must be a duration such as 10m",
    },
    Invalid {
        case: "backoff max is not a duration",
        changes: &[("/spec/recovery/backoff/max", || Some(json!("PT2H")))],
        field: "spec.recovery.backoff.max",
        says: "must be a duration such as 10m",
    },
    Invalid {
        case: "backoff initial longer than max",
        changes: &[
            ("/spec/recovery/backoff/initial", || Some(json!("3h"))),
            ("/spec/recovery/backoff/max", || Some(json!("1h30m"))),
        ],
        field: "spec.recovery.backoff",
        says: "backoff.initial must not be longer than backoff.max",
    },
    Invalid {
        case: "backoff initial of zero",
        changes: &[("/spec/recovery/backoff/initial", || Some(json!("0s")))],
        field: "spec.recovery.backoff.initial",
        says: "must be longer than 0s",
    },
    Invalid {
        case: "more than 48 attempts a day",
        changes: &[("/spec/recovery/maxAttemptsPerDay", || Some(json!(49)))],
        field: "spec.recovery.maxAttemptsPerDay",
        says: "less than or equal to 48",
    },
    Invalid {
        case: "negative attempts a day",
        changes: &[("/spec/recovery/maxAttemptsPerDay", || Some(json!(-1)))],
        field: "spec.recovery.maxAttemptsPerDay",
        says: "greater than or equal to 0",
    },
    Invalid {
        case: "Xero secret ref in another namespace",
        changes: &[("/spec/xero/credentialsSecretRef/namespace", || {
            Some(json!("finance-secrets"))
        })],
        field: "spec.xero.credentialsSecretRef.namespace",
        says: "unknown field",
    },
    Invalid {
        case: "Power BI secret ref in another namespace",
        changes: &[("/spec/powerBI/credentialsSecretRef", || {
            Some(json!({"name": "powerbi-sp", "namespace": "kube-system"}))
        })],
        field: "spec.powerBI.credentialsSecretRef.namespace",
        says: "unknown field",
    },
    Invalid {
        case: "uppercase secret name",
        changes: &[("/spec/xero/credentialsSecretRef/name", || {
            Some(json!("Xero-App"))
        })],
        field: "spec.xero.credentialsSecretRef.name",
        says: "must be a Secret name (DNS-1123 subdomain)",
    },
    Invalid {
        case: "secret key with a space",
        changes: &[("/spec/xero/credentialsSecretRef/refreshTokenKey", || {
            Some(json!("refresh token"))
        })],
        field: "spec.xero.credentialsSecretRef.refreshTokenKey",
        says: "must be a Secret key",
    },
    Invalid {
        case: "Power BI secret without a name",
        changes: &[("/spec/powerBI/credentialsSecretRef", || {
            Some(json!({"tenantIdKey": "tenant"}))
        })],
        field: "spec.powerBI.credentialsSecretRef.name",
        says: "Required value",
    },
    Invalid {
        case: "unknown capacity",
        changes: &[("/spec/capacity", || Some(json!("Dedicated")))],
        field: "spec.capacity",
        says: "Unsupported value: \"Dedicated\"",
    },
    Invalid {
        case: "unknown cloud",
        changes: &[("/spec/powerBI/cloud", || Some(json!("Germany")))],
        field: "spec.powerBI.cloud",
        says: "Unsupported value: \"Germany\"",
    },
    Invalid {
        case: "empty organisation",
        changes: &[("/spec/xero/organisation", || Some(json!("")))],
        field: "spec.xero.organisation",
        says: "at least 1 chars long",
    },
    Invalid {
        case: "missing workspace id",
        changes: &[("/spec/workspaceId", || None)],
        field: "spec.workspaceId",
        says: "Required value",
    },
    Invalid {
        case: "missing schedule",
        changes: &[("/spec/schedule", || None)],
        field: "spec.schedule",
        says: "Required value",
    },
    Invalid {
        case: "suspend is not a boolean",
        changes: &[("/spec/suspend", || Some(json!("yes")))],
        field: "spec.suspend",
        says: "must be of type boolean",
    },
];

/// Edge cases the API server must accept, so the rules above are not stricter than documented.
const VALID: &[(&str, &[Change])] = &[
    (
        "8 times on Shared",
        &[("/spec/schedule/times", || Some(json!(times(8))))],
    ),
    (
        "48 times on Premium",
        &[
            ("/spec/capacity", || Some(json!("Premium"))),
            ("/spec/schedule/times", || Some(json!(times(48)))),
        ],
    ),
    (
        "00:00 and 23:30",
        &[("/spec/schedule/times", || Some(json!(["00:00", "23:30"])))],
    ),
    (
        "a disabled schedule without times",
        &[("/spec/schedule", || Some(json!({"enabled": false})))],
    ),
    (
        "dataset by uppercase uuid",
        &[("/spec/dataset", || Some(json!({"id": UUID.to_uppercase()})))],
    ),
    (
        "dataset by id with a datasource id",
        &[("/spec/dataset", || {
            Some(json!({"id": UUID, "datasourceId": UUID}))
        })],
    ),
    (
        "lead time 15m",
        &[("/spec/schedule/credentialLeadTime", || Some(json!("15m")))],
    ),
    (
        "lead time 0s",
        &[("/spec/schedule/credentialLeadTime", || Some(json!("0s")))],
    ),
    (
        "backoff initial equal to max, in other units",
        &[
            ("/spec/recovery/backoff/initial", || Some(json!("90m"))),
            ("/spec/recovery/backoff/max", || Some(json!("1h30m"))),
        ],
    ),
    (
        "fractional backoff",
        &[("/spec/recovery/backoff/initial", || Some(json!("1.5m")))],
    ),
    (
        "recovery off",
        &[("/spec/recovery/maxAttemptsPerDay", || Some(json!(0)))],
    ),
    (
        "dotted secret name and custom keys",
        &[("/spec/xero/credentialsSecretRef", || {
            Some(
                json!({"name": "xero.app-1", "clientIdKey": "XERO_CLIENT_ID", "refreshTokenKey": "token.v2"}),
            )
        })],
    ),
];

#[tokio::test]
async fn the_api_server_refuses_each_invalid_spec_naming_the_field() {
    assert!(
        INVALID.len() >= 20,
        "the issue asks for at least 20 invalid manifests"
    );
    let env = test_env("api-invalid").await;
    apply(&env, &minimal_manifest("control"))
        .await
        .expect("the minimal manifest is valid, so each refusal below comes from its change");

    // Through `kubectl apply`, as users meet these errors. (Server-side apply reports some of
    // them, duplicates and unknown fields, as 500 "failed to create typed patch object".)
    let mut failures = Vec::new();
    for (index, invalid) in INVALID.iter().enumerate() {
        let mut manifest = minimal_manifest(&format!("invalid-{index}"));
        for (pointer, value) in invalid.changes {
            set(&mut manifest, pointer, value());
        }
        let output = kubectl_with_input(
            &env,
            &["apply", "-n", &env.namespace, "-f", "-"],
            &manifest.to_string(),
        )
        .await;
        let message = String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            failures.push(format!("{}: accepted", invalid.case));
        } else if !message.contains(invalid.field) || !message.contains(invalid.says) {
            failures.push(format!(
                "{}: the message does not name {:?} with {:?}: {message}",
                invalid.case, invalid.field, invalid.says
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        INVALID.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn the_api_server_accepts_the_edge_cases() {
    let env = test_env("api-valid-edges").await;
    let mut failures = Vec::new();
    for (index, (case, changes)) in VALID.iter().enumerate() {
        let mut manifest = minimal_manifest(&format!("valid-{index}"));
        for (pointer, value) in *changes {
            set(&mut manifest, pointer, value());
        }
        if let Err(err) = apply(&env, &manifest).await {
            failures.push(format!("{case}: {err}"));
        }
    }
    assert!(failures.is_empty(), "refused:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn the_api_server_applies_the_defaults() {
    let env = test_env("api-defaults").await;
    apply(&env, &minimal_manifest("defaults"))
        .await
        .expect("apply the minimal manifest");

    // Read back untyped: typed deserialization would fill in the same defaults client-side.
    let stored = raw_datasets(&env).get("defaults").await.expect("get");
    let spec = &stored.data["spec"];
    assert_eq!(
        spec,
        &json!({
            "workspaceId": "f089354e-8366-4e18-aea3-4cb4a3a50b48",
            "dataset": {"name": "Xero"},
            "xero": {
                "organisation": "Demo Company (UK)",
                "credentialsSecretRef": {
                    "name": "xero-app",
                    "clientIdKey": "clientId",
                    "clientSecretKey": "clientSecret",
                    "refreshTokenKey": "refreshToken"
                }
            },
            "powerBI": {"cloud": "Public", "takeOver": false},
            "schedule": {
                "enabled": true,
                "days": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
                "times": ["06:00", "12:30"],
                "timeZone": "UTC",
                "startedBy": "Operator"
            },
            "capacity": "Shared",
            "recovery": {"maxAttemptsPerDay": 3, "backoff": {"initial": "5m", "max": "2h"}},
            "suspend": false
        }),
        "defaults applied by the API server"
    );

    // A Power BI secret ref gets its default key names too.
    let mut manifest = minimal_manifest("powerbi-keys");
    set(
        &mut manifest,
        "/spec/powerBI",
        Some(json!({"credentialsSecretRef": {"name": "powerbi-sp"}})),
    );
    apply(&env, &manifest).await.expect("apply");
    let stored = raw_datasets(&env).get("powerbi-keys").await.expect("get");
    assert_eq!(
        stored.data["spec"]["powerBI"],
        json!({
            "credentialsSecretRef": {
                "name": "powerbi-sp",
                "tenantIdKey": "tenantId",
                "clientIdKey": "clientId",
                "clientSecretKey": "clientSecret"
            },
            "cloud": "Public",
            "takeOver": false
        })
    );
}

#[tokio::test]
async fn the_crd_is_established_and_the_examples_apply() {
    let env = test_env("api-examples").await;
    let crd = Api::<CustomResourceDefinition>::all(env.client.clone())
        .get("xerodatasets.xero-operator.dev")
        .await
        .expect("the CRD is installed");
    let conditions = crd.status.and_then(|s| s.conditions).unwrap_or_default();
    for wanted in ["Established", "NamesAccepted"] {
        assert!(
            conditions
                .iter()
                .any(|c| c.type_ == wanted && c.status == "True"),
            "{wanted} is not True: {conditions:?}"
        );
    }

    // What the README tells users to run, in this test's namespace.
    let output = kubectl_ok(
        &env,
        &[
            "apply",
            "-n",
            &env.namespace,
            "-f",
            "crds/",
            "-f",
            "examples/",
        ],
    )
    .await;
    assert!(
        output.contains("xerodataset.xero-operator.dev/finance-xero"),
        "{output}"
    );
    assert!(
        output.contains("xerodataset.xero-operator.dev/group-reporting"),
        "{output}"
    );

    // Short name and category both find them.
    for resource in ["xds", "xero"] {
        let names = kubectl_ok(&env, &["get", resource, "-n", &env.namespace, "-o", "name"]).await;
        let mut names: Vec<&str> = names.lines().collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "xerodataset.xero-operator.dev/finance-xero",
                "xerodataset.xero-operator.dev/group-reporting"
            ],
            "kubectl get {resource}"
        );
    }

    // The typed API reads them back.
    let datasets = api_support::datasets(&env);
    let premium = datasets
        .get("group-reporting")
        .await
        .expect("get group-reporting");
    assert_eq!(premium.spec.capacity, xero_operator::api::Capacity::Premium);
    assert_eq!(premium.spec.schedule.times.len(), 12);
    let finance = datasets
        .get("finance-xero")
        .await
        .expect("get finance-xero");
    assert!(finance.spec.power_bi.credentials_secret_ref.is_some());
}

#[tokio::test]
async fn kubectl_explain_shows_the_field_documentation() {
    let env = test_env("api-explain").await;
    // The API server publishes a new CRD's OpenAPI a moment after it is Established.
    let deadline = Instant::now() + Duration::from_secs(60);
    let output = loop {
        let output = kubectl(&env, &["explain", "xds.spec.schedule"]).await;
        if output.status.success() {
            // kubectl wraps the text; compare it as one line.
            break String::from_utf8_lossy(&output.stdout)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
        }
        assert!(
            Instant::now() < deadline,
            "kubectl explain xds.spec.schedule: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for fragment in [
        "credentialLeadTime",
        "minutes 00 or 30",
        "Windows time zone id",
        "Default: all seven days",
    ] {
        assert!(
            output.contains(fragment),
            "kubectl explain xds.spec.schedule lacks {fragment:?}:\n{output}"
        );
    }
}

#[test]
fn the_committed_crd_matches_the_generated_one() {
    let path = repo_root().join("crds/xerodatasets.yaml");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = xero_operator::api::crd_yaml().expect("render the CRD");
    assert!(
        committed == generated,
        "{} is out of date with src/api; regenerate it with `{}`",
        path.display(),
        xero_operator::api::REGENERATE_CRD_COMMAND
    );
}
