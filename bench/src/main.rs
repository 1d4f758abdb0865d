//! `xero-bench`: runs xero-operator's benchmarks (issue 9) against a fresh testbed control plane
//! and in-process simulators, starting the release-built operator binary as a subprocess, and
//! prints every figure beside its target; the figures also go to `target/bench/summary.json`.
//!
//! Environment: `BENCH_SCENARIOS` (default `footprint,heal,steady,slots,scale,shards`),
//! `BENCH_SCALE` (object counts of the scale scenario, default `1000,10000`), `BENCH_TIME_SCALE`
//! (how much faster than real time the steady-state day runs, default 240),
//! `BENCH_SLOTS_TIME_SCALE` (the same for the slots scenario's week, default 900), `XERO_BENCH_OPERATOR` and
//! `XERO_BENCH_STATIC_BINARY` (binaries; default the release builds under `target/`).
#![forbid(unsafe_code)]

mod clock;
mod cluster;
mod error;
mod fixtures;
mod footprint;
mod heal;
mod noticing;
mod operator;
mod poller;
mod report;
mod scale;
mod shards;
mod sim;
mod slots;
mod steady;

use std::path::PathBuf;
use std::process::ExitCode;

use jiff::Timestamp;
use kube::Client;
use serde_json::{Map, Value, json};
use xero_testbed::{ControlPlane, Options};

use error::{Context as _, Result};
use operator::OperatorConfig;
use report::Report;
use sim::Sim;

/// What every scenario works with.
pub struct Bench {
    pub plane: ControlPlane,
    pub client: Client,
    pub root: PathBuf,
    pub out: PathBuf,
    pub operator: PathBuf,
    pub http: reqwest::Client,
    pub report: Report,
    /// Raw measurements per scenario, for the JSON summary.
    pub details: Map<String, Value>,
}

impl Bench {
    /// The operator's command line for a scenario; its log goes to `target/bench/logs/NAME.log`.
    pub fn operator_config(
        &self,
        namespace: &str,
        sim: &Sim,
        name: &str,
        flags: Vec<String>,
        clock: Option<(f64, Timestamp)>,
    ) -> OperatorConfig {
        OperatorConfig {
            binary: self.operator.clone(),
            kubeconfig: self.plane.kubeconfig_path().to_path_buf(),
            namespace: namespace.to_owned(),
            sim_url: sim.url(),
            log: self.out.join("logs").join(format!("{name}.log")),
            flags,
            clock,
        }
    }
}

struct Settings {
    scenarios: Vec<String>,
    scale: Vec<usize>,
    time_scale: f64,
    slots_time_scale: f64,
}

fn settings() -> Result<Settings> {
    let var =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let scale = var("BENCH_SCALE", "1000,10000")
        .split(',')
        .map(|n| {
            n.trim()
                .parse::<usize>()
                .context(format!("BENCH_SCALE entry {n:?}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let time_scale = var("BENCH_TIME_SCALE", "240")
        .parse::<f64>()
        .context("BENCH_TIME_SCALE")?;
    let slots_time_scale = var("BENCH_SLOTS_TIME_SCALE", "900")
        .parse::<f64>()
        .context("BENCH_SLOTS_TIME_SCALE")?;
    let scenarios = var(
        "BENCH_SCENARIOS",
        "footprint,heal,steady,slots,scale,shards",
    )
    .split(',')
    .map(|s| s.trim().to_owned())
    .filter(|s| !s.is_empty())
    .collect();
    Ok(Settings {
        scenarios,
        scale,
        time_scale,
        slots_time_scale,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    match run().await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xero-bench: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<ExitCode> {
    // reqwest is built without a crypto provider; everything here is plain http on loopback,
    // but the kube client needs one for the API server.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let settings = settings()?;
    let mut bench = start_bench().await?;
    let errors = run_scenarios(&mut bench, &settings).await;
    summarise(&bench, &settings, errors)?;
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Finds the operator binary and starts a fresh testbed control plane for the scenarios.
async fn start_bench() -> Result<Bench> {
    let root = xero_testbed::workspace_root();
    let out = root.join("target/bench");
    let operator = operator::operator_binary(&root)?;
    println!("starting a fresh testbed control plane");
    let plane = ControlPlane::start(&Options {
        dir: None,
        crd_dir: Some(root.join("crds")),
    })
    .context("start the testbed")?;
    let client = plane.client().await.context("testbed client")?;
    Ok(Bench {
        plane,
        client,
        root,
        out,
        operator,
        http: reqwest::Client::new(),
        report: Report::default(),
        details: Map::new(),
    })
}

/// Runs the chosen scenarios in turn, the scale scenario once per object count; one that fails
/// is recorded and the rest still run. Returns how many failed.
async fn run_scenarios(bench: &mut Bench, settings: &Settings) -> usize {
    let mut errors = 0;
    for scenario in &settings.scenarios {
        println!("== {scenario}");
        let result = match scenario.as_str() {
            "footprint" => footprint::run(bench).await,
            "heal" => heal::run(bench).await,
            "steady" => steady::run(bench, settings.time_scale).await,
            "slots" => slots::run(bench, settings.slots_time_scale).await,
            "scale" => {
                for n in &settings.scale {
                    if let Err(err) = scale::run(bench, *n).await {
                        scenario_failed(bench, &format!("scale N={n}"), &err);
                        errors += 1;
                    }
                }
                Ok(())
            }
            "shards" => {
                let n = settings.scale.iter().copied().max().unwrap_or(1000);
                shards::run(bench, n).await
            }
            other => Err(error::BenchError(format!(
                "unknown scenario {other:?} (footprint, heal, steady, slots, scale, shards)"
            ))),
        };
        if let Err(err) = result {
            scenario_failed(bench, scenario, &err);
            errors += 1;
        }
    }
    errors
}

/// Reports a scenario that could not run, on stderr and in the summary.
fn scenario_failed(bench: &mut Bench, scenario: &str, err: &error::BenchError) {
    eprintln!("xero-bench: {scenario}: {err}");
    bench.report.scenario_failed(scenario, &err.to_string());
}

/// Prints the table of every figure and writes `summary.json`.
fn summarise(bench: &Bench, settings: &Settings, errors: usize) -> Result<()> {
    println!(
        "\nxero-operator benchmarks ({} cores; figures from this machine)\n",
        cores()
    );
    print!("{}", bench.report.table());
    let summary = bench.out.join("summary.json");
    let environment = json!({
        "cores": cores(),
        "timeScale": settings.time_scale,
        "slotsTimeScale": settings.slots_time_scale,
        "scale": settings.scale,
        "operatorBinary": bench.operator,
        "details": bench.details,
    });
    bench.report.write_json(&summary, environment)?;
    let missed = bench.report.missed();
    println!(
        "\n{} figures, {missed} targets missed, {errors} scenarios failed to run; summary: {}",
        bench.report.figures.len(),
        summary.display()
    );
    Ok(())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
