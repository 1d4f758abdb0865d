//! `xero-operator refresh NAME [--wait]`: asks the operator for one refresh now (the portal's
//! "Refresh now", the last step of the manual fix) by setting the refresh-requested-at annotation, and with
//! `--wait` follows the status until the operator has handled the request and the refresh it
//! started has ended.

use std::io::Write as _;
use std::time::Duration;

use jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};

use super::{CliError, FIELD_MANAGER, connect, short_duration};
use crate::api::REFRESH_REQUESTED_AT;
use crate::api::conditions::{self, find_condition};
use crate::api::{LastRefresh, XeroDataset};

/// Power BI's status of a refresh that is still running.
const RUNNING: &str = "Unknown";

/// Flags of `xero-operator refresh`.
#[derive(Debug, Clone, clap::Args)]
pub struct RefreshArgs {
    /// The XeroDataset.
    pub name: String,
    /// Its namespace. Default: the kubeconfig context's namespace, else `default`.
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Wait until the operator has started the refresh and it has ended; exit non-zero when it
    /// failed, was not started, or the timeout passed.
    #[arg(long)]
    pub wait: bool,
    /// How long `--wait` waits.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// How often `--wait` reads the status.
    #[arg(long, default_value = "1s", value_parser = parse_duration, hide = true)]
    pub poll_interval: Duration,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::api::duration::parse(text).map_err(|e| e.to_string())
}

/// Where a requested refresh stands, judged from the XeroDataset's status.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestProgress {
    /// The operator has not handled the request yet.
    Pending,
    /// The operator started the refresh; it runs.
    Running { request_id: String },
    /// The refresh ended (`Completed`, `Failed`, `Disabled`, ...).
    Ended(LastRefresh),
    /// The operator handled the request without starting a refresh; the text says why.
    NotStarted(String),
}

/// Judges the progress of the request `value`, given the id of the latest refresh before the
/// request (a refresh with another id is the one the operator started for it).
pub fn request_progress(xds: &XeroDataset, value: &str, before: Option<&str>) -> RequestProgress {
    let Some(status) = &xds.status else {
        return RequestProgress::Pending;
    };
    if status.last_handled_refresh_at.as_deref() != Some(value) {
        return RequestProgress::Pending;
    }
    match &status.last_refresh {
        Some(last) if Some(last.request_id.as_str()) != before => {
            if last.status == RUNNING {
                RequestProgress::Running {
                    request_id: last.request_id.clone(),
                }
            } else {
                RequestProgress::Ended(last.clone())
            }
        }
        _ => {
            // The operator says why in its conditions (a running refresh, the daily limit, a
            // credential problem).
            let why = [conditions::READY, conditions::REFRESH_SUCCEEDED]
                .iter()
                .filter_map(|type_| find_condition(&status.conditions, type_))
                .find(|c| c.status != "True")
                .or_else(|| find_condition(&status.conditions, conditions::READY))
                .map(|c| format!("{}: {}", c.reason, c.message))
                .unwrap_or_else(|| "no reason given".into());
            RequestProgress::NotStarted(why)
        }
    }
}

/// Sets the annotation and, with `--wait`, waits for the outcome.
pub async fn refresh(args: RefreshArgs) -> Result<(), CliError> {
    let (client, namespace) = connect(args.namespace.as_deref()).await?;
    let target = Target {
        datasets: Api::namespaced(client, &namespace),
        namespace,
        name: args.name.clone(),
    };
    let before = target
        .read()
        .await?
        .status
        .as_ref()
        .and_then(|s| s.last_refresh.as_ref())
        .map(|r| r.request_id.clone());

    let value = Timestamp::now().to_string();
    let patch = serde_json::json!({
        "metadata": {"annotations": {REFRESH_REQUESTED_AT: value}},
    });
    target
        .datasets
        .patch(
            &args.name,
            &PatchParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..PatchParams::default()
            },
            &Patch::Merge(&patch),
        )
        .await
        .map_err(|e| CliError::kubernetes(format!("annotate XeroDataset {}", target.path()), e))?;
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "Requested a refresh of XeroDataset {} ({REFRESH_REQUESTED_AT}={value})",
        target.path()
    );
    if !args.wait {
        return Ok(());
    }
    wait_for_outcome(&target, &args, &value, before.as_deref()).await
}

/// The XeroDataset a command works on.
struct Target {
    datasets: Api<XeroDataset>,
    namespace: String,
    name: String,
}

impl Target {
    fn path(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    async fn read(&self) -> Result<XeroDataset, CliError> {
        super::read_dataset(&self.datasets, &self.namespace, &self.name).await
    }
}

/// Follows the status until the request `value` is answered and its refresh has ended.
async fn wait_for_outcome(
    target: &Target,
    args: &RefreshArgs,
    value: &str,
    before: Option<&str>,
) -> Result<(), CliError> {
    let mut out = std::io::stdout();
    let deadline = tokio::time::Instant::now() + args.timeout;
    let mut reported_running = false;
    loop {
        let xds = target.read().await?;
        match request_progress(&xds, value, before) {
            RequestProgress::Pending => {}
            RequestProgress::Running { request_id } => {
                if !reported_running {
                    let _ = writeln!(out, "Refresh {request_id} started; waiting for it to end");
                    let _ = out.flush();
                    reported_running = true;
                }
            }
            RequestProgress::Ended(last) => {
                let _ = writeln!(out, "{}", describe_outcome(&last));
                return if last.status == "Completed" {
                    Ok(())
                } else {
                    Err(CliError::Refresh(format!(
                        "refresh {} of XeroDataset {} ended {}",
                        last.request_id,
                        target.path(),
                        last.status
                    )))
                };
            }
            RequestProgress::NotStarted(why) => {
                return Err(CliError::Refresh(format!(
                    "the operator handled the request without starting a refresh: {why}"
                )));
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(timed_out(&xds, args, reported_running));
        }
        tokio::time::sleep(args.poll_interval).await;
    }
}

/// The error of a wait that ran out: what was awaited, and the Ready condition when it says why.
fn timed_out(xds: &XeroDataset, args: &RefreshArgs, running: bool) -> CliError {
    let mut what = if running {
        "the refresh is still running".to_owned()
    } else {
        "the operator has not handled the request (is it running and watching this namespace?)"
            .to_owned()
    };
    // A dataset the operator cannot reconcile says why in its Ready condition.
    if let Some(ready) = xds
        .status
        .as_ref()
        .and_then(|s| find_condition(&s.conditions, conditions::READY))
        .filter(|c| c.status != "True")
    {
        what.push_str(&format!(
            "; Ready={} {}: {}",
            ready.status, ready.reason, ready.message
        ));
    }
    CliError::Timeout {
        waited: short_duration(jiff::SignedDuration::try_from(args.timeout).unwrap_or_default()),
        what,
    }
}

/// One line on how a refresh ended.
pub fn describe_outcome(last: &LastRefresh) -> String {
    let mut line = format!("Refresh {} {}", last.request_id, last.status);
    if let (Some(start), Some(end)) = (&last.start_time, &last.end_time) {
        line.push_str(&format!(
            " after {}",
            short_duration(end.0.duration_since(start.0))
        ));
    }
    if let Some(code) = &last.error_code {
        line.push_str(&format!(": {code}"));
    }
    if let Some(message) = &last.error_message {
        line.push_str(&format!(" ({message})"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::XeroDatasetStatus;

    fn dataset(handled: Option<&str>, last: Option<(&str, &str)>) -> XeroDataset {
        let mut xds: XeroDataset = serde_json::from_value(serde_json::json!({
            "apiVersion": "xero-operator.dev/v1alpha1",
            "kind": "XeroDataset",
            "metadata": {"name": "x"},
            "spec": {
                "workspaceId": "f089354e-8366-4e18-aea3-4cb4a3a50b48",
                "dataset": {"name": "Xero"},
                "xero": {"organisation": "Demo", "credentialsSecretRef": {"name": "xero-app"}},
                "schedule": {"days": ["Monday"], "times": ["06:00"], "timeZone": "UTC"},
            },
        }))
        .unwrap();
        xds.status = Some(XeroDatasetStatus {
            last_handled_refresh_at: handled.map(str::to_owned),
            last_refresh: last.map(|(id, status)| LastRefresh {
                request_id: id.into(),
                status: status.into(),
                ..LastRefresh::default()
            }),
            ..XeroDatasetStatus::default()
        });
        xds
    }

    #[test]
    fn a_request_is_pending_until_the_status_echoes_it() {
        let xds = dataset(Some("t0"), Some(("old", "Completed")));
        assert_eq!(
            request_progress(&xds, "t1", Some("old")),
            RequestProgress::Pending
        );
    }

    #[test]
    fn the_new_refresh_runs_then_ends() {
        let xds = dataset(Some("t1"), Some(("new", "Unknown")));
        assert_eq!(
            request_progress(&xds, "t1", Some("old")),
            RequestProgress::Running {
                request_id: "new".into()
            }
        );
        let xds = dataset(Some("t1"), Some(("new", "Failed")));
        assert!(matches!(
            request_progress(&xds, "t1", Some("old")),
            RequestProgress::Ended(last) if last.status == "Failed"
        ));
        let xds = dataset(Some("t1"), Some(("new", "Completed")));
        assert!(matches!(
            request_progress(&xds, "t1", None),
            RequestProgress::Ended(_)
        ));
    }

    #[test]
    fn a_handled_request_without_a_new_refresh_was_not_started() {
        let xds = dataset(Some("t1"), Some(("old", "Completed")));
        assert!(matches!(
            request_progress(&xds, "t1", Some("old")),
            RequestProgress::NotStarted(_)
        ));
    }
}
