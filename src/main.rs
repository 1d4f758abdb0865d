//! The `xero-operator` command: wiring only; everything else lives in the library crate.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use xero_operator::cli::{self, CliError};
use xero_operator::telemetry::{self, LogFormat};

/// What `--version` prints: the crate's version, and the git revision of the build when it was
/// made from a checkout (`XERO_OPERATOR_REVISION`, which hack/static-binary.sh sets).
static VERSION: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| match option_env!("XERO_OPERATOR_REVISION") {
        Some(revision) if !revision.is_empty() => {
            format!("{} ({revision})", env!("CARGO_PKG_VERSION"))
        }
        _ => env!("CARGO_PKG_VERSION").to_owned(),
    });

#[derive(Parser)]
#[command(
    name = "xero-operator",
    version = VERSION.as_str(),
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
    /// Sign in to Xero (authorization code with PKCE) and store the refresh token in a Secret.
    XeroLogin(Box<cli::login::LoginArgs>),
    /// Ask the operator for one refresh of a XeroDataset now; --wait for its outcome.
    Refresh(cli::refresh::RefreshArgs),
    /// Show a XeroDataset's conditions, refreshes, recovery counters and recent events.
    Status(cli::status::StatusArgs),
    /// Check a XeroDataset's whole chain now (Power BI sign-in, dataset, datasource, Xero
    /// sign-in, organisation, credentials accepted) and print each link with pass or fail.
    Check(Box<cli::check::CheckArgs>),
}

/// Parses the command line; installed as `kubectl-xero`, the binary is the kubectl plugin
/// `kubectl xero` and names itself so in help and errors.
fn parse() -> Cli {
    let argv0 = std::env::args().next().unwrap_or_default();
    if !cli::invoked_as_kubectl_plugin(&argv0) {
        return Cli::parse();
    }
    let matches = Cli::command()
        .name("kubectl xero")
        .bin_name("kubectl xero")
        .get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
}

/// Exit code and message of a failed CLI command.
fn cli_outcome(result: Result<(), CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::install_crypto_provider();
    let cli = parse();
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
        Command::XeroLogin(args) => cli_outcome(cli::login::xero_login(*args).await),
        Command::Refresh(args) => cli_outcome(cli::refresh::refresh(args).await),
        Command::Status(args) => cli_outcome(cli::status::status(args).await),
        Command::Check(args) => cli_outcome(cli::check::check(*args).await),
    }
}
