//! The user-facing commands besides `run` and `crd`: `xero-login` (first sign-in to Xero),
//! `refresh` (ask for one refresh now, optionally wait for its outcome), `status` (a
//! XeroDataset's health, readable in a terminal) and `check` (the preflight of the whole chain,
//! from the user's terminal).
//!
//! They talk to the cluster of the current kubeconfig (`KUBECONFIG`, or in-cluster), like
//! kubectl, and also run as a kubectl plugin when the binary is installed as `kubectl-xero`.

pub mod check;
pub mod login;
pub mod refresh;
pub mod status;

use std::path::Path;

use jiff::{SignedDuration, Timestamp};
use kube::Client;

use crate::error::ClientError;

/// The name under which kubectl finds the binary as a plugin (`kubectl xero ...`).
pub const KUBECTL_PLUGIN_BINARY: &str = "kubectl-xero";

/// The field manager of the commands' writes (Secrets, annotations).
pub const FIELD_MANAGER: &str = "xero-operator-cli";

/// Whether the process was started as the kubectl plugin, judged by the file name of `argv[0]`.
pub fn invoked_as_kubectl_plugin(argv0: &str) -> bool {
    Path::new(argv0)
        .file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name == KUBECTL_PLUGIN_BINARY)
}

/// Why a command failed. Messages name what went wrong and what to do; none holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(
        "cannot connect to Kubernetes: {0} (set KUBECONFIG or run inside a cluster, as for kubectl)"
    )]
    Connect(#[source] kube::Error),
    #[error("XeroDataset {namespace}/{name} not found")]
    DatasetNotFound { namespace: String, name: String },
    #[error("{what}: {source}")]
    Kubernetes {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("{0}")]
    Client(#[from] ClientError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Login(String),
    #[error("{0}")]
    Refresh(String),
    #[error("{0}")]
    Check(String),
    #[error("timed out after {waited}: {what}")]
    Timeout { waited: String, what: String },
}

impl CliError {
    /// A failed Kubernetes API call, described by `what` ("read XeroDataset finance/x").
    pub fn kubernetes(what: impl Into<String>, source: kube::Error) -> Self {
        Self::Kubernetes {
            what: what.into(),
            source,
        }
    }
}

/// A client for the kubeconfig's cluster, and the namespace to use: `namespace` when given,
/// else the kubeconfig context's namespace, else `default`.
pub async fn connect(namespace: Option<&str>) -> Result<(Client, String), CliError> {
    crate::telemetry::install_crypto_provider();
    let client = Client::try_default().await.map_err(CliError::Connect)?;
    let namespace = match namespace {
        Some(ns) if !ns.is_empty() => ns.to_owned(),
        _ => client.default_namespace().to_owned(),
    };
    Ok((client, namespace))
}

/// `text` safe to print on a terminal: control characters other than newlines (which a cloud
/// service's error message may carry, escape sequences included) become spaces.
pub fn terminal_safe(text: &str) -> String {
    crate::api::blank_controls(text, true)
}

/// The XeroDataset `namespace/name`, or [`CliError::DatasetNotFound`].
pub async fn read_dataset(
    datasets: &kube::Api<crate::api::XeroDataset>,
    namespace: &str,
    name: &str,
) -> Result<crate::api::XeroDataset, CliError> {
    datasets
        .get_opt(name)
        .await
        .map_err(|e| CliError::kubernetes(format!("read XeroDataset {namespace}/{name}"), e))?
        .ok_or_else(|| CliError::DatasetNotFound {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
}

/// A duration as kubectl prints ages: the largest unit or two (`45s`, `3m20s`, `5h`, `2d3h`).
pub fn short_duration(duration: SignedDuration) -> String {
    let seconds = duration.as_secs().unsigned_abs();
    let (minutes, hours, days) = (seconds / 60, seconds / 3600, seconds / 86_400);
    if seconds < 120 {
        format!("{seconds}s")
    } else if minutes < 10 {
        match seconds % 60 {
            0 => format!("{minutes}m"),
            rest => format!("{minutes}m{rest}s"),
        }
    } else if hours < 3 {
        match minutes % 60 {
            0 => format!("{hours}h"),
            rest if hours > 0 => format!("{hours}h{rest}m"),
            _ => format!("{minutes}m"),
        }
    } else if days < 2 {
        format!("{hours}h")
    } else if days < 8 {
        match hours % 24 {
            0 => format!("{days}d"),
            rest => format!("{days}d{rest}h"),
        }
    } else {
        format!("{days}d")
    }
}

/// How long ago `at` was (`5m ago`), or how far ahead it is (`in 3h`), seen from `now`.
pub fn relative_time(at: Timestamp, now: Timestamp) -> String {
    let offset = now.duration_since(at);
    if offset.is_negative() {
        format!("in {}", short_duration(offset))
    } else {
        format!("{} ago", short_duration(offset))
    }
}

/// Rows as text columns separated by two spaces, each column as wide as its widest cell; the
/// last column is not padded.
pub fn align_columns(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            rows.iter()
                .filter_map(|row| row.get(column))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for row in rows {
        let mut line = String::new();
        for (column, cell) in row.iter().enumerate() {
            if column + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                let pad = widths[column] - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plugin_is_recognised_by_its_file_name() {
        assert!(invoked_as_kubectl_plugin("kubectl-xero"));
        assert!(invoked_as_kubectl_plugin("/usr/local/bin/kubectl-xero"));
        assert!(!invoked_as_kubectl_plugin("xero-operator"));
        assert!(!invoked_as_kubectl_plugin("/bin/kubectl-xero-old"));
    }

    #[test]
    fn durations_read_like_kubectl_ages() {
        let s = SignedDuration::from_secs;
        assert_eq!(short_duration(s(5)), "5s");
        assert_eq!(short_duration(s(119)), "119s");
        assert_eq!(short_duration(s(200)), "3m20s");
        assert_eq!(short_duration(s(600)), "10m");
        assert_eq!(short_duration(s(3900)), "1h5m");
        assert_eq!(short_duration(s(5 * 3600)), "5h");
        assert_eq!(short_duration(s(3 * 86_400 + 7200)), "3d2h");
        assert_eq!(short_duration(s(30 * 86_400)), "30d");
        assert_eq!(short_duration(s(-90)), "90s");
    }

    #[test]
    fn relative_times_say_ago_or_in() {
        let now: Timestamp = "2026-11-29T12:00:00Z".parse().unwrap();
        let earlier: Timestamp = "2026-11-29T11:55:00Z".parse().unwrap();
        let later: Timestamp = "2026-11-29T15:00:00Z".parse().unwrap();
        assert_eq!(relative_time(earlier, now), "5m ago");
        assert_eq!(relative_time(later, now), "in 3h");
    }

    #[test]
    fn columns_align_on_the_widest_cell() {
        let rows = vec![
            vec!["TYPE".into(), "STATUS".into(), "MESSAGE".into()],
            vec!["Ready".into(), "True".into(), "all good".into()],
            vec!["CredentialsValid".into(), "False".into(), "".into()],
        ];
        assert_eq!(
            align_columns(&rows),
            "TYPE              STATUS  MESSAGE\n\
             Ready             True    all good\n\
             CredentialsValid  False\n"
        );
    }
}
