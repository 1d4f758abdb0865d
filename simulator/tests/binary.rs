//! The `powerbi-sim` binary: prints `listening on http://127.0.0.1:PORT` first, serves the
//! seed, and refuses non-loopback addresses.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;
use reqwest::Method;

/// Kills the child when the test ends, whatever happens.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn prints_its_url_first_and_serves_the_seed() {
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/seed.yaml");
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_powerbi-sim"))
            .args(["--listen", "127.0.0.1:0", "--seed", seed])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("binary starts"),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:") && !url.ends_with('/'),
        "{url}"
    );

    let client = client();
    let state = read(
        client
            .request(Method::GET, format!("{url}/_sim/state"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(state.status, 200);
    assert_eq!(state.json()["workspaces"][0]["datasets"][0]["name"], "Xero");
}

#[test]
fn refuses_non_loopback_and_bad_seeds() {
    let output = Command::new(env!("CARGO_BIN_EXE_powerbi-sim"))
        .args(["--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("loopback"));
    assert!(output.stdout.is_empty());

    let output = Command::new(env!("CARGO_BIN_EXE_powerbi-sim"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--seed",
            "/nonexistent/seed.yaml",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("seed"));
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let h = Harness::start().await;
    let url = h.url.clone();
    assert_eq!(h.state().await["workspaces"][0]["id"], GROUP);
    h.sim.shutdown().await;
    let fresh = client();
    assert!(
        fresh.get(format!("{url}/_sim/state")).send().await.is_err(),
        "still serving after shutdown"
    );
}
