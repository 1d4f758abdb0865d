//! `powerbi-sim --listen 127.0.0.1:0 --seed FILE`: serves the simulator until interrupted.
//! The first line on stdout is `listening on http://127.0.0.1:PORT`.
#![forbid(unsafe_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use powerbi_sim::{Seed, Simulator};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "powerbi-sim",
    version,
    about = "Power BI, Entra ID and Xero identity simulator on loopback"
)]
struct Cli {
    /// Loopback address to listen on; port 0 picks a free port.
    #[arg(long, env = "POWERBI_SIM_LISTEN", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Seed file (YAML or JSON); an empty tenant when absent.
    #[arg(long, env = "POWERBI_SIM_SEED")]
    seed: Option<PathBuf>,
    /// Log filter for stderr, as a tracing directive.
    #[arg(long, env = "POWERBI_SIM_LOG", default_value = "warn")]
    log: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(EnvFilter::try_new(&cli.log).unwrap_or_else(|_| EnvFilter::new("warn")))
        .init();
    let seed = match cli.seed.as_deref().map(Seed::from_file).transpose() {
        Ok(seed) => seed.unwrap_or_default(),
        Err(e) => {
            eprintln!("powerbi-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    let simulator = match Simulator::start(cli.listen, seed).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("powerbi-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "listening on {}", simulator.url())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    wait_for_signal().await;
    simulator.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
