//! The README documents every flag, every chart value and every reason, and the
//! examples it points to work.

use std::collections::BTreeSet;
use std::process::Command;

use xero_operator::api::Reason;

const README: &str = include_str!("../README.md");
const VALUES: &str = include_str!("../charts/xero-operator/values.yaml");
/// Chart values documented as a whole object rather than key by key.
const OBJECT_VALUES: [&str; 3] = ["podSecurityContext", "securityContext", "resources"];

/// The long flags `xero-operator SUBCOMMAND --help` lists.
fn flags(subcommand: &str) -> BTreeSet<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_xero-operator"))
        .args([subcommand, "--help"])
        .output()
        .expect("run xero-operator --help");
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let line = line.trim_start();
            let line = line.strip_prefix("-n, ").unwrap_or(line);
            let flag = line.strip_prefix("--")?;
            let name: String = flag
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            (name != "help").then(|| format!("--{name}"))
        })
        .collect()
}

#[test]
fn every_flag_is_documented() {
    let mut missing = Vec::new();
    for subcommand in ["run", "xero-login", "refresh", "status", "crd"] {
        let found = flags(subcommand);
        assert!(!found.is_empty(), "no flags parsed for {subcommand}");
        for flag in found {
            if !README.contains(&format!("`{flag}`")) {
                missing.push(format!("{subcommand} {flag}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "flags missing from README.md: {missing:?}"
    );
}

/// Dotted paths of the chart's values: leaves, empty maps, lists, and the whole-object values.
fn value_paths(value: &serde_yaml::Value, prefix: &str, out: &mut Vec<String>) {
    match value {
        serde_yaml::Value::Mapping(map) if !map.is_empty() && !OBJECT_VALUES.contains(&prefix) => {
            for (key, child) in map {
                let key = key.as_str().expect("string keys");
                let path = if prefix.is_empty() {
                    key.to_owned()
                } else {
                    format!("{prefix}.{key}")
                };
                value_paths(child, &path, out);
            }
        }
        _ => out.push(prefix.to_owned()),
    }
}

#[test]
fn every_chart_value_is_documented() {
    let values: serde_yaml::Value = serde_yaml::from_str(VALUES).expect("values.yaml");
    let mut paths = Vec::new();
    value_paths(&values, "", &mut paths);
    assert!(paths.len() > 50, "parsed only {} values", paths.len());
    let missing: Vec<&String> = paths
        .iter()
        .filter(|path| !README.contains(&format!("| `{path}` |")))
        .collect();
    assert!(
        missing.is_empty(),
        "chart values missing from README.md: {missing:?}"
    );
}

/// The reasons the README's troubleshooting table lists, in its order: the backticked words of
/// each row's first cell.
fn troubleshooting_reasons() -> Vec<String> {
    let table = README
        .split("## Troubleshooting")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Troubleshooting section");
    table
        .lines()
        .filter(|line| line.starts_with("| `"))
        .filter_map(|line| line.split('|').nth(1))
        .flat_map(|cell| {
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_troubleshooting_table_lists_every_reason_in_order() {
    let documented = troubleshooting_reasons();
    let reasons: Vec<String> = Reason::ALL.iter().map(|r| r.as_str().to_owned()).collect();
    assert_eq!(
        documented, reasons,
        "README.md's troubleshooting table and api::Reason differ"
    );
}

#[tokio::test]
async fn the_shared_secret_example_applies_and_the_values_examples_render() {
    xero_operator::telemetry::install_crypto_provider();
    let env = xero_testbed::TestEnv::new("docs-examples").await;
    let root = env!("CARGO_MANIFEST_DIR");
    let output = Command::new(&env.plane.binaries().kubectl)
        .arg("--kubeconfig")
        .arg(env.plane.kubeconfig_path())
        .args(["apply", "-n", &env.namespace, "-f"])
        .arg(format!("{root}/examples/shared-secret/"))
        .output()
        .expect("kubectl apply");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let applied = String::from_utf8_lossy(&output.stdout);
    assert!(
        applied.contains("xerodataset.xero-operator.dev/uk-management-accounts created"),
        "{applied}"
    );
    assert!(
        applied.contains("xerodataset.xero-operator.dev/nz-management-accounts created"),
        "{applied}"
    );

    let home = tempfile::tempdir().expect("helm home");
    for values in ["values-namespaced.yaml", "values-workload-identity.yaml"] {
        let output = Command::new(&xero_testbed::ensure_binaries().expect("helm").helm)
            .args([
                "template",
                "xero-operator",
                &format!("{root}/charts/xero-operator"),
                "-f",
            ])
            .arg(format!("{root}/examples/helm/{values}"))
            .env("HELM_CACHE_HOME", home.path().join("cache"))
            .env("HELM_CONFIG_HOME", home.path().join("config"))
            .env("HELM_DATA_HOME", home.path().join("data"))
            .output()
            .expect("helm template");
        assert!(
            output.status.success(),
            "{values}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let rendered = String::from_utf8_lossy(&output.stdout);
        match values {
            "values-namespaced.yaml" => {
                assert!(rendered.contains("kind: RoleBinding"), "{rendered}");
                for namespace in ["finance", "group-reporting"] {
                    assert!(
                        rendered.contains(&format!("namespace: {namespace}")),
                        "{rendered}"
                    );
                }
            }
            _ => {
                assert!(
                    rendered.contains("azure.workload.identity/client-id"),
                    "{rendered}"
                );
                assert!(
                    rendered.contains("XERO_OPERATOR_WORKLOAD_IDENTITY_NAMESPACES"),
                    "the identity is offered to the example's namespace: {rendered}"
                );
            }
        }
    }
}
