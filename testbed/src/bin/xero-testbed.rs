//! `xero-testbed up --dir DIR [--crds DIR]`: runs the testbed control plane in the foreground
//! until SIGTERM or SIGINT, for `make testbed-up`, the demo and benchmarks. Writes
//! `DIR/kubeconfig`, then `DIR/ready` once the API server is ready and the CRDs are Established.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use xero_testbed::{ControlPlane, Options};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() != Some("up") {
        eprintln!("usage: xero-testbed up --dir DIR [--crds DIR]");
        return ExitCode::from(2);
    }
    let mut options = Options::default();
    while let Some(flag) = args.next() {
        let value = args.next().map(PathBuf::from);
        match (flag.as_str(), value) {
            ("--dir", Some(dir)) => options.dir = Some(dir),
            ("--crds", Some(dir)) => options.crd_dir = Some(dir),
            _ => {
                eprintln!("xero-testbed: unknown or incomplete flag {flag}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(dir) = options.dir.clone() else {
        eprintln!("xero-testbed: --dir is required");
        return ExitCode::from(2);
    };
    let ready = dir.join("ready");
    let _ = std::fs::remove_file(&ready);
    let plane = match ControlPlane::start(&options) {
        Ok(plane) => plane,
        Err(err) => {
            eprintln!("xero-testbed: {err}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(err) = std::fs::write(&ready, plane.server()) {
        eprintln!("xero-testbed: write {}: {err}", ready.display());
        return ExitCode::FAILURE;
    }
    println!("kube-apiserver ready at {}", plane.server());
    println!("kubeconfig: {}", plane.kubeconfig_path().display());
    println!("kubectl:    {}", plane.binaries().kubectl.display());
    if plane.binaries().helm.is_file() {
        println!("helm:       {}", plane.binaries().helm.display());
    }

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("xero-testbed: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(err) => {
                    eprintln!("xero-testbed: {err}");
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    });
    let _ = std::fs::remove_file(&ready);
    plane.stop();
    println!("control plane stopped");
    ExitCode::SUCCESS
}
