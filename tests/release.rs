//! The release machinery: the workflows call scripts that exist, the krew manifest the release
//! writes is what krew reads, and the release text comes from CHANGELOG.md. (actionlint, in
//! `make lint`, checks the workflows' syntax and the actions' inputs.)

use std::path::Path;
use std::process::Command;

use serde_yaml::Value;
use sha2::{Digest, Sha256};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn workflow(name: &str) -> (String, Value) {
    let text = std::fs::read_to_string(format!("{ROOT}/.github/workflows/{name}")).unwrap();
    let parsed = serde_yaml::from_str(&text).unwrap();
    (text, parsed)
}

fn python(script: &str, args: &[&str]) -> std::process::Output {
    Command::new("python3")
        .arg(format!("{ROOT}/hack/{script}"))
        .args(args)
        .output()
        .expect("python3")
}

#[test]
fn ci_runs_exactly_the_test_command_within_the_limit() {
    let (_, ci) = workflow("ci.yml");
    let job = &ci["jobs"]["test"];
    let steps = job["steps"].as_sequence().unwrap();
    let runs: Vec<&str> = steps.iter().filter_map(|s| s["run"].as_str()).collect();
    assert_eq!(runs, [".ci/run"]);
    assert!(job["timeout-minutes"].as_u64().unwrap() <= 90);
    assert_eq!(ci["permissions"]["contents"], "read");
}

#[test]
fn the_release_builds_both_platforms_attests_them_and_publishes_image_chart_and_files() {
    let (text, release) = workflow("release.yml");
    assert_eq!(release["on"]["push"]["tags"][0], "v*.*.*");
    assert_eq!(release["permissions"]["contents"], "read");
    let arches: Vec<&str> = release["jobs"]["build"]["strategy"]["matrix"]["include"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|entry| entry["arch"].as_str().unwrap())
        .collect();
    assert_eq!(arches, ["amd64", "arm64"]);
    let publish = &release["jobs"]["publish"];
    let uses: Vec<&str> = publish["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|s| s["uses"].as_str())
        .collect();
    for action in ["actions/attest-build-provenance@", "actions/attest-sbom@"] {
        assert!(uses.iter().any(|u| u.starts_with(action)), "{action}");
    }
    for needed in [
        "skopeo copy --all",
        "helm push",
        "gh release create",
        "XERO_AUDITABLE",
    ] {
        assert!(text.contains(needed), "{needed}");
    }
    // Every script the workflows run is in the repository and executable.
    let mut scripts = 0;
    for word in text.split(|c: char| c.is_whitespace() || c == '(' || c == '|') {
        let word = word
            .trim_start_matches("./")
            .trim_end_matches([',', '.', ';', ':', ')', '`']);
        if word.starts_with("hack/") {
            let path = Path::new(ROOT).join(word);
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(&path)
                    .unwrap_or_else(|e| panic!("{word}: {e}"))
                    .permissions(),
            );
            assert!(mode & 0o111 != 0, "{word} is not executable");
            scripts += 1;
        }
    }
    assert!(scripts >= 4, "{scripts}");
}

#[test]
fn the_krew_manifest_names_each_platforms_archive_with_its_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let mut archives = Vec::new();
    for (arch, content) in [("arm64", "arm"), ("amd64", "x86")] {
        let path = dir
            .path()
            .join(format!("xero-operator-1.2.3-linux-{arch}.tar.gz"));
        std::fs::write(&path, content).unwrap();
        archives.push((arch, path, format!("{:x}", Sha256::digest(content))));
    }
    let paths: Vec<&str> = archives
        .iter()
        .map(|(_, p, _)| p.to_str().unwrap())
        .collect();
    let mut args = vec![
        "--version",
        "1.2.3",
        "--url",
        "https://example.test/v1.2.3/",
    ];
    args.extend(&paths);
    let out = python("krew-manifest.py", &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: Value = serde_yaml::from_slice(&out.stdout).unwrap();
    assert_eq!(
        manifest["apiVersion"],
        "krew.googlecontainertools.github.com/v1alpha2"
    );
    assert_eq!(manifest["kind"], "Plugin");
    // The binary, linked by krew as kubectl-xero, is the plugin `kubectl xero`.
    assert_eq!(manifest["metadata"]["name"], "xero");
    let spec = &manifest["spec"];
    assert_eq!(spec["version"], "v1.2.3");
    assert!(spec["shortDescription"].as_str().unwrap().len() <= 50);
    let platforms = spec["platforms"].as_sequence().unwrap();
    assert_eq!(platforms.len(), 2);
    for (arch, path, sha) in &archives {
        let platform = platforms
            .iter()
            .find(|p| p["selector"]["matchLabels"]["arch"] == *arch)
            .unwrap_or_else(|| panic!("no {arch}"));
        assert_eq!(platform["selector"]["matchLabels"]["os"], "linux");
        assert_eq!(platform["sha256"], sha.as_str());
        let name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            platform["uri"],
            format!("https://example.test/v1.2.3/{name}").as_str()
        );
        assert_eq!(platform["bin"], "xero-operator");
        assert_eq!(platform["files"][0]["from"], "xero-operator");
    }

    // An archive of another version or platform, or two of one platform, is refused.
    let stray = dir.path().join("xero-operator-1.2.4-linux-amd64.tar.gz");
    std::fs::write(&stray, "x").unwrap();
    let out = python(
        "krew-manifest.py",
        &["--version", "1.2.3", "--url", "u", stray.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let out = python(
        "krew-manifest.py",
        &["--version", "1.2.3", "--url", "u", paths[0], paths[0]],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("two archives for one platform"));
}

#[test]
fn the_release_text_is_the_changelogs_section_for_the_version() {
    let out = python("changelog-section.py", &[env!("CARGO_PKG_VERSION")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("### "), "{text}");
    assert!(!text.contains("\n## "), "{text}");
    let missing = python("changelog-section.py", &["0.0.0-never"]);
    assert!(!missing.status.success());
}
