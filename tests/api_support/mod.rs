//! What the XeroDataset API tests share: a valid manifest to start from, kubectl against the
//! testbed, and typed and untyped handles on XeroDatasets.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::path::PathBuf;
use std::process::Output;

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};
use xero_operator::api::XeroDataset;
use xero_testbed::TestEnv;

/// A test environment on the shared testbed, with the TLS provider installed first.
pub async fn test_env(name: &str) -> TestEnv {
    xero_operator::telemetry::install_crypto_provider();
    TestEnv::new(name).await
}

/// A valid XeroDataset manifest with only the required fields, named `name`.
pub fn minimal_manifest(name: &str) -> Value {
    json!({
        "apiVersion": "xero-operator.dev/v1alpha1",
        "kind": "XeroDataset",
        "metadata": {"name": name},
        "spec": {
            "workspaceId": "f089354e-8366-4e18-aea3-4cb4a3a50b48",
            "dataset": {"name": "Xero"},
            "xero": {
                "organisation": "Demo Company (UK)",
                "credentialsSecretRef": {"name": "xero-app"}
            },
            "schedule": {"times": ["06:00", "12:30"]}
        }
    })
}

/// Sets the value at a JSON pointer such as `/spec/schedule/times`, creating objects on the way;
/// `None` removes it.
pub fn set(manifest: &mut Value, pointer: &str, value: Option<Value>) {
    let (parent_pointer, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    let mut parent = &mut *manifest;
    for segment in parent_pointer.split('/').skip(1) {
        parent = parent
            .as_object_mut()
            .expect("pointer goes through objects")
            .entry(segment)
            .or_insert_with(|| json!({}));
    }
    let parent = parent.as_object_mut().expect("parent is an object");
    match value {
        Some(value) => parent.insert(key.to_owned(), value),
        None => parent.remove(key),
    };
}

/// XeroDatasets in the test's namespace, typed.
pub fn datasets(env: &TestEnv) -> Api<XeroDataset> {
    Api::namespaced(env.client.clone(), &env.namespace)
}

/// XeroDatasets in the test's namespace, as raw JSON: what the API server stored, without the
/// defaults serde would fill in on deserialization.
pub fn raw_datasets(env: &TestEnv) -> Api<DynamicObject> {
    let resource = ApiResource::erase::<XeroDataset>(&());
    Api::namespaced_with(env.client.clone(), &env.namespace, &resource)
}

/// Server-side applies `manifest` with strict field validation (unknown fields are errors), as
/// `kubectl apply` does by default.
pub async fn apply(env: &TestEnv, manifest: &Value) -> Result<DynamicObject, kube::Error> {
    let name = manifest["metadata"]["name"]
        .as_str()
        .expect("manifest has a name");
    let params = PatchParams::apply("api-tests").validation_strict();
    raw_datasets(env)
        .patch(name, &params, &Patch::Apply(manifest))
        .await
}

/// The repository root, where `crds/` and `examples/` are.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs kubectl (the one matching the testbed's server) against the testbed as admin.
pub async fn kubectl(env: &TestEnv, args: &[&str]) -> Output {
    let binaries = env.plane.binaries();
    tokio::process::Command::new(&binaries.kubectl)
        .arg("--kubeconfig")
        .arg(env.plane.kubeconfig_path())
        .args(args)
        .current_dir(repo_root())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|err| panic!("run {}: {err}", binaries.kubectl.display()))
}

/// Runs kubectl with `stdin` as its standard input.
pub async fn kubectl_with_input(env: &TestEnv, args: &[&str], stdin: &str) -> Output {
    use tokio::io::AsyncWriteExt as _;
    let binaries = env.plane.binaries();
    let mut child = tokio::process::Command::new(&binaries.kubectl)
        .arg("--kubeconfig")
        .arg(env.plane.kubeconfig_path())
        .args(args)
        .current_dir(repo_root())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|err| panic!("run {}: {err}", binaries.kubectl.display()));
    let mut input = child.stdin.take().expect("piped stdin");
    input
        .write_all(stdin.as_bytes())
        .await
        .expect("write kubectl's stdin");
    drop(input);
    child.wait_with_output().await.expect("wait for kubectl")
}

/// Runs kubectl and returns its stdout, failing the test with its stderr when it fails.
pub async fn kubectl_ok(env: &TestEnv, args: &[&str]) -> String {
    let output = kubectl(env, args).await;
    assert!(
        output.status.success(),
        "kubectl {} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
