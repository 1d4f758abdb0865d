//! `xero-operator run`: connects to Kubernetes, checks the CRD, serves the health and metrics
//! endpoints, optionally wins leader election, and runs the controller until SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::api::{Api, ListParams};
use tokio::sync::watch;

use crate::api::{XeroDataset, duration};
use crate::clock::Clock;
use crate::controller::{Context, run_controller};
use crate::endpoints::Endpoints;
use crate::leader::{ElectionEnd, LeaseSettings, run_election};
use crate::metrics::Metrics;
use crate::reconcile::Services;
use crate::reconcile::model::Timing;
use crate::reconcile::services::IdentityOffer;
use crate::secret_store::SecretScope;
use crate::server::{Readiness, serve};

/// Flags of `xero-operator run`; each one can also be set by its environment variable.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub endpoints: Endpoints,
    /// Namespaces to watch, comma-separated; all namespaces when empty.
    #[arg(long, env = "XERO_OPERATOR_WATCH_NAMESPACES", value_delimiter = ',')]
    pub watch_namespaces: Vec<String>,
    /// Namespaces whose XeroDatasets may use the operator's own Power BI identity (workload
    /// identity) when they name no `spec.powerBI.credentialsSecretRef`, comma-separated; `*` for
    /// every namespace. None by default: whoever may edit XeroDatasets in a namespace could
    /// otherwise point the operator's identity at any workspace.
    #[arg(
        long,
        env = "XERO_OPERATOR_WORKLOAD_IDENTITY_NAMESPACES",
        value_delimiter = ','
    )]
    pub workload_identity_namespaces: Vec<String>,
    /// The Power BI workspaces (ids, comma-separated) the operator's own identity serves; a
    /// XeroDataset using it for another workspace shows InvalidSpec. Any workspace when empty
    /// (give the identity access only to the workspaces it serves, too).
    #[arg(
        long,
        env = "XERO_OPERATOR_WORKLOAD_IDENTITY_WORKSPACES",
        value_delimiter = ','
    )]
    pub workload_identity_workspaces: Vec<String>,
    /// When the operator watches every namespace: the namespaces whose Secrets it may read and
    /// watch (and patch, to store rotated refresh tokens), comma-separated; `*` for every
    /// namespace (cluster-wide Secret access). None by default: a XeroDataset elsewhere is
    /// refused with SecretForbidden. With `--watch-namespaces`, Secrets are read in the watched
    /// namespaces and this flag must be empty.
    #[arg(long, env = "XERO_OPERATOR_SECRET_NAMESPACES", value_delimiter = ',')]
    pub secret_namespaces: Vec<String>,
    /// Only XeroDatasets whose labels match this selector (for example `shard=a`), so that
    /// several operator Deployments can split a cluster's objects; all when empty.
    #[arg(long, env = "XERO_OPERATOR_WATCH_LABEL_SELECTOR")]
    pub watch_label_selector: Option<String>,
    /// XeroDatasets reconciled at the same time (per watched namespace).
    #[arg(long, env = "XERO_OPERATOR_CONCURRENCY", default_value_t = 16)]
    pub concurrency: u16,
    /// Longest time between two reconciles of a dataset (the schedule drift check); at least a
    /// day between the slots of datasets with `startedBy: Operator`, which wake them.
    #[arg(long, env = "XERO_OPERATOR_RESYNC_INTERVAL", default_value = "6h", value_parser = parse_duration)]
    pub resync_interval: Duration,
    /// First poll of a running refresh; later polls grow with its age, up to 5 minutes.
    #[arg(long, env = "XERO_OPERATOR_REFRESH_POLL_INTERVAL", default_value = "15s", value_parser = parse_duration)]
    pub refresh_poll_interval: Duration,
    /// Credential lead time of XeroDatasets that do not set spec.schedule.credentialLeadTime.
    #[arg(long, env = "XERO_OPERATOR_DEFAULT_CREDENTIAL_LEAD_TIME", default_value = "10m", value_parser = parse_lead_time)]
    pub default_credential_lead_time: Duration,
    /// Address of the /metrics, /livez and /readyz endpoints.
    #[arg(
        long,
        env = "XERO_OPERATOR_METRICS_ADDR",
        default_value = "0.0.0.0:8080"
    )]
    pub metrics_addr: SocketAddr,
    /// Take part in leader election so that only one replica reconciles.
    #[arg(long, env = "XERO_OPERATOR_LEADER_ELECTION", default_value_t = false, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Namespace of the leader Lease (the operator's own namespace).
    #[arg(
        long,
        env = "XERO_OPERATOR_LEADER_ELECTION_NAMESPACE",
        default_value = "default"
    )]
    pub leader_election_namespace: String,
    /// Name of the leader Lease.
    #[arg(
        long,
        env = "XERO_OPERATOR_LEADER_ELECTION_LEASE",
        default_value = "xero-operator"
    )]
    pub leader_election_lease: String,
    /// Only in builds made for the benchmarks: a clock faster than real time.
    #[cfg(feature = "bench-clock")]
    #[command(flatten)]
    pub bench_clock: BenchClockArgs,
    /// This replica's identity in the election (the pod name).
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,
}

/// The clock flags of builds made for the benchmarks (feature `bench-clock`; `make bench` builds
/// with it). A production build has no way to run its clock at another speed or from another
/// time.
#[cfg(feature = "bench-clock")]
#[derive(Debug, Clone, clap::Args)]
pub struct BenchClockArgs {
    /// The operator's clock runs this many times faster than real time.
    #[arg(
        long,
        env = "XERO_OPERATOR_TIME_SCALE",
        default_value_t = 1.0,
        hide = true
    )]
    pub time_scale: f64,
    /// The time (RFC 3339) the operator's clock starts at.
    #[arg(long, env = "XERO_OPERATOR_CLOCK_START", hide = true)]
    pub clock_start: Option<jiff::Timestamp>,
}

/// The operator's clock: real time, or in a benchmark build what its flags say.
#[cfg(feature = "bench-clock")]
fn clock(args: &RunArgs) -> Clock {
    let bench = &args.bench_clock;
    Clock::scaled(
        bench.clock_start.unwrap_or_else(jiff::Timestamp::now),
        bench.time_scale,
    )
}

/// The operator's clock: real time.
#[cfg(not(feature = "bench-clock"))]
fn clock(_args: &RunArgs) -> Clock {
    Clock::real()
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    duration::parse(text).map_err(|e| e.to_string())
}

/// A credential lead time: at most what a dataset's spec may set.
fn parse_lead_time(text: &str) -> Result<Duration, String> {
    let lead = parse_duration(text)?;
    let max = duration::parse(crate::api::MAX_CREDENTIAL_LEAD_TIME).map_err(|e| e.to_string())?;
    if lead > max {
        return Err(format!(
            "at most {}: Xero access tokens last 30 minutes and Power BI may start a scheduled refresh 15 minutes late",
            crate::api::MAX_CREDENTIAL_LEAD_TIME
        ));
    }
    Ok(lead)
}

/// Why the operator could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot connect to Kubernetes: {0}")]
    Connect(#[source] kube::Error),
    #[error(
        "the XeroDataset CRD (xerodatasets.xero-operator.dev) is not installed or not served: {0}; install it with `xero-operator crd | kubectl apply -f -` or the Helm chart"
    )]
    CrdMissing(#[source] kube::Error),
    #[error("invalid endpoint configuration: {0}")]
    Endpoints(#[source] crate::error::ClientError),
    #[error("cannot serve the health and metrics endpoints: {0}")]
    Server(#[source] std::io::Error),
    #[error("lost the leader lease; exiting so that a new leader can take over")]
    LostLeadership,
    #[error("{0}")]
    Flags(String),
}

/// Runs the operator until SIGTERM or SIGINT.
pub async fn run(args: RunArgs) -> Result<(), RunError> {
    let client = Client::try_default().await.map_err(RunError::Connect)?;
    check_crd(&client, &args).await?;
    let metrics = Arc::new(Metrics::new());
    // One XeroDataset watch per watched namespace, or one for the whole cluster.
    let readiness = Arc::new(Readiness::after_watches(args.watch_namespaces.len().max(1)));
    let ctx = Arc::new(context(client.clone(), &args, metrics.clone())?);

    let (stop_tx, stop) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let on_signal = stop_tx.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        let _ = on_signal.send(true);
    });
    let server = tokio::spawn(serve(
        args.metrics_addr,
        metrics,
        readiness.clone(),
        stopped(stop.clone()),
    ));

    let (leading_tx, mut leading) = watch::channel(!args.leader_election);
    // The election stops (and releases the lease) only after the controllers have finished
    // their in-flight reconciles, so that a standby never works beside a leader shutting down.
    let (end_election, election_stop) = watch::channel(false);
    let election = args
        .leader_election
        .then(|| start_election(&client, &args, leading_tx, election_stop));
    if args.leader_election {
        // A standby replica is healthy and ready; only the leader reconciles.
        readiness.set_ready();
        tracing::info!("waiting to become the leader");
        let mut stop_wait = stop.clone();
        tokio::select! {
            _ = leading.wait_for(|l| *l) => {}
            _ = stop_wait.wait_for(|s| *s) => {}
        }
    }
    if !*stop.borrow() {
        let shutdown = stop_or_lost_leadership(stop.clone(), leading.clone());
        run_controllers(ctx, &args, readiness, shutdown).await;
    }
    // The controllers stop on a signal or when leadership is lost; either way, stop the rest.
    let _ = stop_tx.send(true);
    let _ = end_election.send(true);

    let lost_leadership = match election {
        Some(task) => matches!(task.await, Ok(ElectionEnd::Lost)),
        None => false,
    };
    if let Ok(Err(err)) = server.await {
        return Err(RunError::Server(err));
    }
    if lost_leadership {
        return Err(RunError::LostLeadership);
    }
    tracing::info!("stopped");
    Ok(())
}

/// Fails early when the CRD is not served. Listing needs only the operator's own RBAC (no
/// access to CRDs themselves), in the first watched namespace when the operator is limited to
/// some.
async fn check_crd(client: &Client, args: &RunArgs) -> Result<(), RunError> {
    let probe = match args.watch_namespaces.first() {
        Some(namespace) => Api::<XeroDataset>::namespaced(client.clone(), namespace),
        None => Api::<XeroDataset>::all(client.clone()),
    };
    probe
        .list(&ListParams::default().limit(1))
        .await
        .map(|_| ())
        .map_err(RunError::CrdMissing)
}

/// The namespaces whose Secrets the operator reads: the watched ones, or with every namespace
/// watched the ones `--secret-namespaces` grants.
fn secret_scope(args: &RunArgs) -> Result<SecretScope, RunError> {
    let given = args
        .secret_namespaces
        .iter()
        .any(|ns| !ns.trim().is_empty());
    if args.watch_namespaces.is_empty() {
        Ok(SecretScope::from_flag(&args.secret_namespaces))
    } else if given {
        Err(RunError::Flags(
            "--secret-namespaces applies only when the operator watches every namespace; with --watch-namespaces it reads Secrets in the watched namespaces".into(),
        ))
    } else {
        Ok(SecretScope::Namespaces(
            args.watch_namespaces.iter().cloned().collect(),
        ))
    }
}

/// What every reconcile shares, from the flags.
fn context(client: Client, args: &RunArgs, metrics: Arc<Metrics>) -> Result<Context, RunError> {
    let clock = clock(args);
    let services =
        Services::reading_secrets_in(client.clone(), &args.endpoints, secret_scope(args)?)
            .map_err(RunError::Endpoints)?
            .on_clock(clock)
            .count_exchanges_in(metrics.clone())
            .offering_identity_to(IdentityOffer::from_flag(&args.workload_identity_namespaces))
            .serving_workspaces(&args.workload_identity_workspaces);
    let timing = Timing {
        resync_interval: args.resync_interval,
        poll_interval: args.refresh_poll_interval,
        default_credential_lead_time: args.default_credential_lead_time,
    };
    Ok(Context::new(client, services, metrics, timing, clock))
}

fn start_election(
    client: &Client,
    args: &RunArgs,
    leading: watch::Sender<bool>,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<ElectionEnd> {
    let identity = args
        .pod_name
        .clone()
        .unwrap_or_else(|| format!("xero-operator-{}", std::process::id()));
    let settings = LeaseSettings::new(
        &args.leader_election_namespace,
        &args.leader_election_lease,
        &identity,
    );
    tokio::spawn(run_election(client.clone(), settings, leading, stop))
}

/// Resolves on shutdown, or at once when leadership is lost.
fn stop_or_lost_leadership(
    mut stop: watch::Receiver<bool>,
    mut leading: watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()> + Send + Sync + Clone + 'static {
    let shutdown = async move {
        // A closed channel (no election runs) is not a loss of leadership.
        let lost_leadership = async {
            if leading.wait_for(|l| !*l).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            _ = stop.wait_for(|s| *s) => {}
            _ = lost_leadership => {}
        }
    };
    futures::FutureExt::shared(Box::pin(shutdown))
}

/// One controller per watched namespace (or one for the cluster), until `shutdown`.
async fn run_controllers(
    ctx: Arc<Context>,
    args: &RunArgs,
    readiness: Arc<Readiness>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + Clone + 'static,
) {
    let namespaces: Vec<Option<String>> = if args.watch_namespaces.is_empty() {
        vec![None]
    } else {
        args.watch_namespaces
            .iter()
            .map(|ns| Some(ns.clone()))
            .collect()
    };
    tracing::info!(namespaces = ?args.watch_namespaces, "starting the controller");
    let controllers = namespaces.into_iter().map(|ns| {
        run_controller(
            ctx.clone(),
            ns,
            args.watch_label_selector.clone().filter(|s| !s.is_empty()),
            args.concurrency,
            readiness.clone(),
            shutdown.clone(),
        )
    });
    futures::future::join_all(controllers).await;
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = ctrl_c => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}
