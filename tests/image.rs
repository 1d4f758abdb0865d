//! The container image `make image` builds without a container daemon: a valid OCI layout
//! whose one layer holds the static binary, a CA bundle and the non-root user, nothing else,
//! the same digest on every build of a commit, and an operator that heals a dataset when run
//! from the image's root filesystem as the image's user (in a chroot when the tests run as
//! root, else as the current user in the extracted tree).

mod e2e_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use e2e_support::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The image of this commit: `XERO_IMAGE` (the line `hack/image.sh` prints, which `make test`
/// sets) or a fresh build.
fn image() -> Value {
    let line = match std::env::var("XERO_IMAGE") {
        Ok(line) if !line.trim().is_empty() => line,
        _ => {
            let out = Command::new(format!("{ROOT}/hack/image.sh"))
                .stderr(Stdio::inherit())
                .output()
                .expect("run hack/image.sh");
            assert!(out.status.success(), "hack/image.sh failed");
            String::from_utf8(out.stdout).expect("utf-8")
        }
    };
    serde_json::from_str(line.trim()).expect("hack/image.sh prints one JSON line")
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    let data = std::fs::read(layout.join("blobs/sha256").join(hex)).expect("the blob");
    assert_eq!(
        format!("sha256:{:x}", Sha256::digest(&data)),
        digest,
        "blob content"
    );
    data
}

fn command_output(program: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(program).args(args).output().expect(program);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// This machine's architecture as OCI names it (the image is built for it).
fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The layer blob of the image at `layout`.
fn layer_path(layout: &Path) -> (PathBuf, Value) {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index")).unwrap();
    let manifest: Value = serde_json::from_slice(&blob(
        layout,
        index["manifests"][0]["digest"].as_str().unwrap(),
    ))
    .unwrap();
    let digest = manifest["layers"][0]["digest"].as_str().unwrap();
    blob(layout, digest);
    (layout.join("blobs/sha256").join(&digest[7..]), manifest)
}

#[test]
fn the_image_is_an_oci_layout_with_the_binary_a_ca_bundle_and_the_user_only() {
    let image = image();
    let layout = PathBuf::from(image["layout"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(layout.join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion": "1.0.0"}"#
    );
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let entry = &index["manifests"][0];
    assert_eq!(entry["digest"], image["digest"]);
    assert_eq!(
        entry["platform"],
        json!({"architecture": oci_arch(), "os": "linux"})
    );
    let (layer, manifest) = layer_path(&layout);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let config: Value = serde_json::from_slice(&blob(
        &layout,
        manifest["config"]["digest"].as_str().unwrap(),
    ))
    .unwrap();
    let run = &config["config"];
    assert_eq!(run["User"], "65532:65532");
    assert_eq!(run["Entrypoint"], json!(["/usr/local/bin/xero-operator"]));
    assert_eq!(run["Cmd"], json!(["run"]));
    let labels = &run["Labels"];
    let revision =
        String::from_utf8(command_output("git", &["-C", ROOT, "rev-parse", "HEAD"])).unwrap();
    assert_eq!(labels["org.opencontainers.image.revision"], revision.trim());
    assert_eq!(
        labels["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(labels["org.opencontainers.image.licenses"], "Apache-2.0");
    assert!(labels["org.opencontainers.image.source"].is_string());
    // The config names the uncompressed layer.
    let tar = command_output("gzip", &["-dc", layer.to_str().unwrap()]);
    assert_eq!(
        config["rootfs"]["diff_ids"][0],
        format!("sha256:{:x}", Sha256::digest(&tar))
    );

    // Exactly these entries, owned by root except the user's home, the binary executable.
    let listing = String::from_utf8(command_output(
        "tar",
        &["-tzvf", layer.to_str().unwrap(), "--numeric-owner"],
    ))
    .unwrap();
    let names: BTreeSet<&str> = listing
        .lines()
        .map(|l| l.split_whitespace().last().unwrap().trim_end_matches('/'))
        .collect();
    let expected: BTreeSet<&str> = [
        "etc",
        "etc/group",
        "etc/passwd",
        "etc/ssl",
        "etc/ssl/certs",
        "etc/ssl/certs/ca-certificates.crt",
        "home",
        "home/nonroot",
        "usr",
        "usr/local",
        "usr/local/bin",
        "usr/local/bin/xero-operator",
    ]
    .into_iter()
    .collect();
    assert_eq!(names, expected, "{listing}");
    let binary = listing
        .lines()
        .find(|l| l.ends_with("usr/local/bin/xero-operator"))
        .unwrap();
    assert!(binary.starts_with("-rwxr-xr-x 0/0"), "{binary}");
    assert!(
        listing
            .lines()
            .any(|l| l.contains("65532/65532") && l.ends_with("home/nonroot/"))
    );

    // The archive holds the same layout and Docker's manifest.json, for docker load and kind.
    let archive = image["archive"].as_str().unwrap();
    let members = String::from_utf8(command_output("tar", &["-tf", archive])).unwrap();
    for member in ["oci-layout", "index.json", "manifest.json"] {
        assert!(
            members.lines().any(|m| m == member),
            "{member} in {members}"
        );
    }
    let docker: Value =
        serde_json::from_slice(&command_output("tar", &["-xOf", archive, "manifest.json"]))
            .unwrap();
    assert_eq!(
        docker[0]["RepoTags"][0],
        format!(
            "ghcr.io/xero-operator/xero-operator:{}",
            env!("CARGO_PKG_VERSION")
        )
    );

    // Another build of the same commit gives the same digest.
    let again = tempfile::tempdir().unwrap();
    let binary_path = PathBuf::from(ROOT).join(format!(
        "target/{}-unknown-linux-gnu/release/xero-operator",
        std::env::consts::ARCH
    ));
    let created = String::from_utf8(command_output(
        "git",
        &["-C", ROOT, "log", "-1", "--format=%ct"],
    ))
    .unwrap();
    let rebuilt: Value = serde_json::from_slice(&command_output(
        "python3",
        &[
            &format!("{ROOT}/hack/image.py"),
            binary_path.to_str().unwrap(),
            again.path().to_str().unwrap(),
            "--version",
            env!("CARGO_PKG_VERSION"),
            "--revision",
            revision.trim(),
            "--created",
            created.trim(),
        ],
    ))
    .unwrap();
    assert_eq!(rebuilt["digest"], image["digest"]);
}

/// Creates the devices every container runtime provides (the random sources, which the operator
/// reads when the getrandom system call is unavailable); false where the machine does not allow
/// it (no root, no CAP_MKNOD), and the operator then runs from the tree without a chroot.
/// The release joins an amd64 and an arm64 image into one multi-platform image: an index that
/// names each platform's manifest, every blob present and matching its digest, and nothing
/// joined twice.
#[test]
fn single_platform_layouts_join_into_one_multi_platform_image() {
    let dir = tempfile::tempdir().unwrap();
    let script = format!("{ROOT}/hack/image.py");
    // Any file serves as the binary: this checks the layout, not what runs.
    let binary = format!("{ROOT}/Cargo.toml");
    let mut manifests = Vec::new();
    for arch in ["arm64", "amd64"] {
        let out = dir.path().join(arch);
        let built: Value = serde_json::from_slice(&command_output(
            "python3",
            &[
                &script,
                &binary,
                out.to_str().unwrap(),
                "--version",
                "9.9.9",
                "--revision",
                "r",
                "--created",
                "0",
                "--arch",
                arch,
            ],
        ))
        .unwrap();
        manifests.push((arch, built["digest"].as_str().unwrap().to_string()));
    }
    let joined_dir = dir.path().join("joined");
    let layouts = ["amd64", "arm64"].map(|arch| dir.path().join(arch).join("oci"));
    let joined: Value = serde_json::from_slice(&command_output(
        "python3",
        &[
            &script,
            "index",
            joined_dir.to_str().unwrap(),
            "--version",
            "9.9.9",
            layouts[0].to_str().unwrap(),
            layouts[1].to_str().unwrap(),
        ],
    ))
    .unwrap();
    let layout = PathBuf::from(joined["layout"].as_str().unwrap());
    let top: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(top["manifests"][0]["digest"], joined["digest"]);
    assert_eq!(
        top["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "9.9.9"
    );
    let index: Value =
        serde_json::from_slice(&blob(&layout, joined["digest"].as_str().unwrap())).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let listed = index["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{index}");
    for (arch, digest) in &manifests {
        let entry = listed
            .iter()
            .find(|m| m["platform"]["architecture"] == *arch)
            .unwrap_or_else(|| panic!("no {arch} in {index}"));
        assert_eq!(entry["digest"], digest.as_str());
        assert_eq!(entry["platform"]["os"], "linux");
        let manifest: Value = serde_json::from_slice(&blob(&layout, digest)).unwrap();
        let config: Value = serde_json::from_slice(&blob(
            &layout,
            manifest["config"]["digest"].as_str().unwrap(),
        ))
        .unwrap();
        assert_eq!(config["architecture"], *arch);
        blob(&layout, manifest["layers"][0]["digest"].as_str().unwrap());
    }

    // Two images of one platform are refused.
    let twice = Command::new("python3")
        .args([
            &script,
            "index",
            dir.path().join("twice").to_str().unwrap(),
            "--version",
            "9.9.9",
            layouts[0].to_str().unwrap(),
            layouts[0].to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!twice.status.success());
    assert!(
        String::from_utf8_lossy(&twice.stderr).contains("two layouts for linux/amd64"),
        "{}",
        String::from_utf8_lossy(&twice.stderr)
    );
}

fn devices(dev: &Path) -> bool {
    std::fs::create_dir_all(dev).is_ok()
        && [("null", "3"), ("random", "8"), ("urandom", "9")]
            .iter()
            .all(|(name, minor)| {
                Command::new("mknod")
                    .args(["-m", "666"])
                    .arg(dev.join(name))
                    .args(["c", "1", minor])
                    .status()
                    .is_ok_and(|status| status.success())
            })
}

/// The operator process started from the image; killed when dropped.
struct Contained(Child);

impl Drop for Contained {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_from_the_images_root_filesystem_heals_a_dataset() {
    let image = image();
    let (layer, _) = layer_path(Path::new(image["layout"].as_str().unwrap()));
    let rootfs = tempfile::tempdir().unwrap();
    command_output(
        "tar",
        &[
            "-xzf",
            layer.to_str().unwrap(),
            "-C",
            rootfs.path().to_str().unwrap(),
        ],
    );

    let s = Scenario::start("e2e-image", &broken_tenant_seed()).await;
    s.create_secrets().await;
    s.apply_dataset(&dataset_manifest("image", json!({}))).await;
    // The kubeconfig goes into the user's home inside the image's tree.
    let kubeconfig = s.env.plane.kubeconfig_yaml().expect("kubeconfig");
    let home = rootfs.path().join("home/nonroot");
    std::fs::write(home.join("kubeconfig"), kubeconfig).unwrap();
    let as_root = String::from_utf8(command_output("id", &["-u"]))
        .unwrap()
        .trim()
        == "0"
        && devices(&rootfs.path().join("dev"));
    let url = s.sim.url();
    let args = [
        "run",
        "--watch-namespaces",
        &s.env.namespace,
        "--metrics-addr",
        "127.0.0.1:0",
        "--refresh-poll-interval",
        "1s",
        "--leader-election",
        "false",
    ];
    let mut command = if as_root {
        // A chroot into the image's tree, as the image's user: the operator sees only the
        // image's files (its CA bundle, its passwd) and the devices a runtime provides.
        command_output(
            "chown",
            &["65532:65532", home.join("kubeconfig").to_str().unwrap()],
        );
        // Found on the host's PATH before the child's environment is cleared.
        let chroot = String::from_utf8(command_output("sh", &["-c", "command -v chroot"])).unwrap();
        let mut c = Command::new(chroot.trim());
        c.args(["--userspec=65532:65532", rootfs.path().to_str().unwrap()])
            .arg("/usr/local/bin/xero-operator");
        c
    } else {
        Command::new(rootfs.path().join("usr/local/bin/xero-operator"))
    };
    let kubeconfig_path = if as_root {
        PathBuf::from("/home/nonroot/kubeconfig")
    } else {
        home.join("kubeconfig")
    };
    let log = tempfile::NamedTempFile::new().unwrap();
    command
        .args(args)
        .env_clear()
        .env("KUBECONFIG", &kubeconfig_path)
        .env("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
        .env("XERO_OPERATOR_POWERBI_API_URL", &url)
        .env("XERO_OPERATOR_AUTHORITY_HOST", &url)
        .env("XERO_OPERATOR_XERO_IDENTITY_URL", &url)
        .env("XERO_OPERATOR_XERO_API_URL", &url)
        .stdin(Stdio::null())
        .stdout(log.reopen().unwrap())
        .stderr(log.reopen().unwrap());
    let _operator = Contained(command.spawn().expect("start the operator from the image"));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let xds = s.datasets().get("image").await.expect("read");
        let ready = xds.status.as_ref().and_then(|st| {
            xero_operator::api::conditions::find_condition(&st.conditions, "Ready").cloned()
        });
        if ready.is_some_and(|c| c.status == "True" && c.reason == "Reconciled") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not healed: {:?}\noperator log:\n{}",
            xds.status,
            std::fs::read_to_string(log.path()).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_ne!(
        s.secret_value("xero-app", "refreshToken").await,
        INITIAL_REFRESH_TOKEN,
        "the operator from the image rotated and stored the refresh token"
    );
}
