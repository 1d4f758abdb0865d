//! `xero-operator check NAME`: the operator's preflight for one XeroDataset, run from a user's
//! terminal with the user's access to the cluster, and printed link by link with pass or fail and
//! the reason. It is how a user confirms on their own tenant what no test here can (that Power BI
//! accepts a Xero access token as the Xero datasource's OAuth2 credential, above all).
//!
//! Like the operator, it exchanges the Xero refresh token and stores the new one in the Secret
//! before it uses the access token, so it can run while the operator runs. It needs to read the
//! XeroDataset and its Secrets and to patch the Xero Secret; a dataset that uses the operator's
//! workload identity (no `spec.powerBI.credentialsSecretRef`) can only be checked where that
//! identity is available.

use std::fmt::Write as _;

use kube::api::Api;

use super::{CliError, align_columns, connect, read_dataset, terminal_safe};
use crate::api::XeroDataset;
use crate::endpoints::Endpoints;
use crate::reconcile::Services;
use crate::reconcile::preflight::{Preflight, Verdict, preflight};

/// Flags of `xero-operator check`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// The XeroDataset.
    pub name: String,
    /// Its namespace. Default: the kubeconfig context's namespace, else `default`.
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// The service URLs, as for `run` (the same flags and environment variables).
    #[command(flatten)]
    pub endpoints: Endpoints,
}

/// Runs the preflight and prints it; fails when a link broke.
pub async fn check(args: CheckArgs) -> Result<(), CliError> {
    let (client, namespace) = connect(args.namespace.as_deref()).await?;
    let datasets = Api::<XeroDataset>::namespaced(client.clone(), &namespace);
    let xds = read_dataset(&datasets, &namespace, &args.name).await?;

    let services = Services::new(client, &args.endpoints)?;
    let report = preflight(&xds, &services).await;
    let where_ = format!("{namespace}/{}", args.name);
    print!("{}", render(&where_, &report));
    match report.failure() {
        None => Ok(()),
        Some(failure) => Err(CliError::Check(format!(
            "the chain of XeroDataset {where_} is broken: {}",
            failure.reason
        ))),
    }
}

/// The report: one line per link (`PASS`, `FAIL` or `SKIP`, what it proves, what was found),
/// and under a failed link its reason and message.
pub fn render(dataset: &str, report: &Preflight) -> String {
    let mut rows = Vec::new();
    let mut failure = None;
    for (link, verdict) in &report.links {
        let (mark, detail) = match verdict {
            Verdict::Passed(found) => ("PASS", found.clone()),
            Verdict::Failed(f) => {
                failure = Some(f);
                ("FAIL", f.reason.to_string())
            }
            Verdict::Skipped => ("SKIP", "-".to_owned()),
        };
        rows.push(vec![mark.to_owned(), link.title().to_owned(), detail]);
    }
    let mut text = format!("Checking XeroDataset {dataset}\n");
    for line in align_columns(&rows).lines() {
        let _ = writeln!(text, "  {line}");
    }
    match failure {
        Some(f) => {
            let _ = writeln!(text, "\n{}: {}", f.reason, f.message);
        }
        None => {
            text.push_str("\nEvery link holds: the next refresh will have working credentials.\n")
        }
    }
    terminal_safe(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Reason;
    use crate::reconcile::model::Failure;
    use crate::reconcile::preflight::Link;

    #[test]
    fn a_broken_link_is_marked_with_its_reason_and_the_rest_are_skipped() {
        let links = vec![
            (Link::Spec, Verdict::Passed("valid".into())),
            (
                Link::PowerBiSignIn,
                Verdict::Failed(Failure {
                    reason: Reason::PowerBIUnauthorized,
                    message: "Entra ID refused the client secret\u{1b}[2J".into(),
                    needs_human: true,
                }),
            ),
            (Link::Dataset, Verdict::Skipped),
        ];
        let report = Preflight { links };
        assert!(!report.passed());
        let text = render("finance/x", &report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Checking XeroDataset finance/x");
        assert!(lines[1].trim_start().starts_with("PASS"), "{text}");
        assert!(lines[2].contains("FAIL") && lines[2].contains("PowerBIUnauthorized"));
        assert!(lines[3].contains("SKIP"), "{text}");
        assert!(text.contains("PowerBIUnauthorized: Entra ID refused the client secret"));
        assert!(
            !text.contains('\u{1b}'),
            "no escape sequence reaches the terminal"
        );
    }
}
