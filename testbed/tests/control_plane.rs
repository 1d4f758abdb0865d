//! The testbed itself: a real control plane starts, enforces RBAC, runs beside another one, and
//! leaves no process behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, ListParams, PostParams};
use xero_testbed::TestEnv;

const KUBE_VERSION: &str = "v1.36.3";

fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("valid object")
}

#[tokio::test]
async fn control_plane_serves_the_pinned_version_and_stores_objects() {
    install_crypto();
    let env = TestEnv::new("version").await;
    let version = env.client.apiserver_version().await.expect("version");
    assert_eq!(version.git_version, KUBE_VERSION);

    let secrets = Api::<Secret>::namespaced(env.client.clone(), &env.namespace);
    let secret: Secret = from_json(serde_json::json!({
        "metadata": {"name": "probe"},
        "stringData": {"key": "value"},
    }));
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("create");
    let read = secrets.get("probe").await.expect("get");
    let data = read.data.expect("data");
    assert_eq!(data["key"].0, b"value");

    // kubectl from the testbed binaries talks to the same server with the written kubeconfig.
    let output = Command::new(&env.plane.binaries().kubectl)
        .arg("--kubeconfig")
        .arg(env.plane.kubeconfig_path())
        .args([
            "get",
            "secret",
            "probe",
            "-n",
            &env.namespace,
            "-o",
            "jsonpath={.data.key}",
        ])
        .output()
        .expect("run kubectl");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "dmFsdWU=");
}

#[tokio::test]
async fn rbac_is_enforced_for_service_account_tokens() {
    install_crypto();
    let env = TestEnv::new("rbac").await;
    let ns = &env.namespace;
    let accounts = Api::<ServiceAccount>::namespaced(env.client.clone(), ns);
    accounts
        .create(
            &PostParams::default(),
            &from_json(serde_json::json!({"metadata": {"name": "reader"}})),
        )
        .await
        .expect("create service account");
    let request: TokenRequest = from_json(serde_json::json!({"spec": {"audiences": []}}));
    let token = accounts
        .create_token_request("reader", &PostParams::default(), &request)
        .await
        .expect("token request")
        .status
        .expect("token status")
        .token;
    let reader = env
        .plane
        .client_with_token("reader", &token)
        .await
        .expect("client");
    let reader_secrets = Api::<Secret>::namespaced(reader, ns);

    let denied = reader_secrets.list(&ListParams::default()).await;
    match denied {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("expected 403 before any role is bound, got {other:?}"),
    }

    Api::<Role>::namespaced(env.client.clone(), ns)
        .create(
            &PostParams::default(),
            &from_json(serde_json::json!({
                "metadata": {"name": "secret-reader"},
                "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}],
            })),
        )
        .await
        .expect("create role");
    Api::<RoleBinding>::namespaced(env.client.clone(), ns)
        .create(
            &PostParams::default(),
            &from_json(serde_json::json!({
                "metadata": {"name": "secret-reader"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "secret-reader"},
                "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}],
            })),
        )
        .await
        .expect("create role binding");

    // RBAC changes reach the authorizer through an informer: wait for the grant to apply.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match reader_secrets.list(&ListParams::default()).await {
            Ok(_) => break,
            Err(err) if Instant::now() < deadline => {
                let _ = err;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("listing secrets still fails after the role binding: {err}"),
        }
    }
}

/// A `xero-testbed up` process, stopped when dropped.
struct Background {
    child: Child,
    dir: PathBuf,
}

impl Background {
    fn start(dir: &Path) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_xero-testbed"))
            .arg("up")
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start xero-testbed");
        Background {
            child,
            dir: dir.to_path_buf(),
        }
    }

    fn wait_ready(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(server) = std::fs::read_to_string(self.dir.join("ready")) {
                return server;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("xero-testbed exited early: {status}");
            }
            assert!(Instant::now() < deadline, "xero-testbed not ready in time");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) {
                found.push(cmdline);
            }
        }
    }
    found
}

fn wait_until_gone(needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !processes_mentioning(needle).is_empty() {
        assert!(
            Instant::now() < deadline,
            "processes left behind: {:?}",
            processes_mentioning(needle)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_control_planes_run_side_by_side_and_leave_nothing_behind() {
    install_crypto();
    let base = tempfile::tempdir().expect("tempdir");
    let (a, b) = (base.path().join("a"), base.path().join("b"));
    let mut first = Background::start(&a);
    let mut second = Background::start(&b);
    let (server_a, server_b) = (first.wait_ready(), second.wait_ready());
    assert_ne!(server_a, server_b, "both control planes got the same port");

    for dir in [&a, &b] {
        let output = Command::new(&xero_testbed::ensure_binaries().expect("binaries").kubectl)
            .arg("--kubeconfig")
            .arg(dir.join("kubeconfig"))
            .args(["get", "--raw", "/version"])
            .output()
            .expect("run kubectl");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(String::from_utf8_lossy(&output.stdout).contains(KUBE_VERSION));
    }
    let etcd_a = format!("--data-dir={}", a.join("etcd").display());
    assert!(
        !processes_mentioning(&etcd_a).is_empty(),
        "etcd of the first control plane runs"
    );

    // A graceful stop (SIGTERM) of one, and SIGKILL of the other: the watchdog must still stop
    // etcd and the API server of the killed one.
    let status = Command::new("kill")
        .arg(first.child.id().to_string())
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    second.child.kill().expect("SIGKILL");
    let _ = first.child.wait();
    let _ = second.child.wait();
    wait_until_gone(&a.display().to_string());
    wait_until_gone(&b.display().to_string());
}
