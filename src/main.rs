//! The `xero-operator` command: wiring only; everything else lives in the library crate.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use xero_operator::telemetry::{self, LogFormat};

#[derive(Parser)]
#[command(
    name = "xero-operator",
    version,
    about = "Keeps Power BI datasets built on Xero refreshing"
)]
struct Cli {
    /// Log format.
    #[arg(
        long,
        env = "XERO_OPERATOR_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    log_format: LogFormat,
    /// Log level, as a tracing filter directive.
    #[arg(
        long,
        env = "XERO_OPERATOR_LOG_LEVEL",
        default_value = "info",
        global = true
    )]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator: reconcile XeroDatasets until SIGTERM.
    Run(Box<xero_operator::run::RunArgs>),
    /// Print the XeroDataset CustomResourceDefinition as YAML (what crds/xerodatasets.yaml holds).
    Crd,
}

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::install_crypto_provider();
    let cli = Cli::parse();
    telemetry::init_logging(cli.log_format, &cli.log_level);
    match cli.command {
        Command::Run(args) => match xero_operator::run::run(*args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(%error, "xero-operator stopped");
                ExitCode::FAILURE
            }
        },
        Command::Crd => match xero_operator::api::crd_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("cannot render the CRD: {error}");
                ExitCode::FAILURE
            }
        },
    }
}
