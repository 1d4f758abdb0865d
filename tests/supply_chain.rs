//! The supply chain is locked where the repository can lock it: one pinned Rust release, every
//! cargo build at Cargo.lock's versions, base images by digest, Go never fetched on the fly,
//! and cargo-deny in the lint with the bans the project relies on.

use std::path::Path;

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// The scripts and the Makefile that run cargo.
fn build_scripts() -> Vec<(String, String)> {
    let mut scripts = vec![("Makefile".to_owned(), read("Makefile"))];
    let hack = Path::new(env!("CARGO_MANIFEST_DIR")).join("hack");
    for entry in std::fs::read_dir(hack).expect("hack/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "sh") {
            let name = format!("hack/{}", path.file_name().unwrap().to_string_lossy());
            scripts.push((name.clone(), read(&name)));
        }
    }
    scripts
}

#[test]
fn every_cargo_build_uses_the_lock_file() {
    let commands = ["build", "test", "run", "clippy", "install"];
    let mut unlocked = Vec::new();
    for (name, text) in build_scripts() {
        for line in text.lines().map(str::trim) {
            let runs_cargo = line
                .split_whitespace()
                .collect::<Vec<_>>()
                .windows(2)
                .any(|w| {
                    (w[0].ends_with("cargo") || w[0].contains("CARGO")) && commands.contains(&w[1])
                });
            let checks_only = line.contains("--version");
            if runs_cargo
                && !checks_only
                && !line.contains("--locked")
                && !line.contains("$(LOCKED)")
            {
                unlocked.push(format!("{name}: {line}"));
            }
        }
    }
    assert!(
        unlocked.is_empty(),
        "cargo without --locked:\n{}",
        unlocked.join("\n")
    );
}

#[test]
fn one_rust_release_is_pinned_and_the_image_builds_with_it() {
    let toolchain = read("rust-toolchain.toml");
    let channel = toolchain
        .lines()
        .find_map(|l| l.strip_prefix("channel = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("a channel");
    assert!(
        channel.split('.').count() == 3 && channel.split('.').all(|p| p.parse::<u32>().is_ok()),
        "a release, not a moving channel: {channel}"
    );
    assert!(toolchain.contains("\"rustfmt\"") && toolchain.contains("\"clippy\""));
    let dockerfile = read("Dockerfile");
    assert!(
        dockerfile.contains(&format!("FROM rust:{channel}-")),
        "the image builds with Rust {channel}"
    );
}

#[test]
fn base_images_are_pinned_by_digest() {
    let dockerfile = read("Dockerfile");
    let froms: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert!(!froms.is_empty());
    for from in froms {
        let image = from.split_whitespace().nth(1).expect("an image");
        let digest = image.split_once("@sha256:").map(|(_, d)| d).unwrap_or("");
        assert!(
            digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit()),
            "not pinned by digest: {from}"
        );
    }
}

#[test]
fn go_is_never_downloaded_on_the_fly() {
    let script = read("hack/testbed-bins.sh");
    assert!(script.contains("export GOTOOLCHAIN=local"), "{script}");
}

#[test]
fn cargo_deny_runs_in_the_lint_with_the_bans_the_project_relies_on() {
    let makefile = read("Makefile");
    let lint = makefile
        .split("\nlint:")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .expect("a lint target");
    assert!(lint.contains("hack/cargo-deny.sh"), "{lint}");
    assert!(read("hack/cargo-deny.sh").contains("--offline"));
    let deny = read("deny.toml");
    for krate in ["reqwest", "hyper", "rustls"] {
        assert!(
            deny.contains(&format!(
                "{{ crate = \"{krate}\", deny-multiple-versions = true }}"
            )),
            "{krate}"
        );
    }
    assert!(
        deny.contains("unknown-registry = \"deny\"") && deny.contains("unknown-git = \"deny\"")
    );
}
