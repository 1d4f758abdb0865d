//! The preflight on demand: the chain the operator checks before it reports `Ready`, link by
//! link, for `xero-operator check`. Each link is the same step the reconcile runs (the Power BI
//! sign-in, the dataset, its Xero datasource, the Xero exchange with the new refresh token
//! stored, the organisation, Power BI accepting the credentials), and a failed link gets the same
//! reason and advice the status would show. After the first failure the rest are skipped: each
//! needs what the one before it produced.

use std::time::Duration;

use kube::ResourceExt as _;

use super::execute::{datasource_binding, update_datasource, xero_access_token, xero_organisation};
use super::failure::{Advice, StepError, failure_of};
use super::gather::identify_dataset;
use super::model::{Failure, Timing};
use super::services::{Services, Session};
use super::validate::validate;
use crate::api::{Reason, XeroDataset};
use crate::endpoints::Cloud;

/// One link of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Spec,
    PowerBiSignIn,
    Dataset,
    XeroDatasource,
    XeroSignIn,
    XeroOrganisation,
    CredentialsAccepted,
}

impl Link {
    /// Every link, in the order they are checked.
    pub const ALL: [Link; 7] = [
        Link::Spec,
        Link::PowerBiSignIn,
        Link::Dataset,
        Link::XeroDatasource,
        Link::XeroSignIn,
        Link::XeroOrganisation,
        Link::CredentialsAccepted,
    ];

    /// What the link proves, as a short phrase.
    pub fn title(self) -> &'static str {
        match self {
            Link::Spec => "the spec is valid",
            Link::PowerBiSignIn => "the Power BI principal signs in",
            Link::Dataset => "the dataset is found",
            Link::XeroDatasource => "the dataset has one Xero datasource",
            Link::XeroSignIn => "the Xero refresh token exchanges (new one stored)",
            Link::XeroOrganisation => "the organisation is among Xero's connections",
            Link::CredentialsAccepted => "Power BI accepts the Xero credentials",
        }
    }
}

/// How one link fared.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// It held; what was found.
    Passed(String),
    /// It broke: the reason and message the status would show.
    Failed(Failure),
    /// Not checked: an earlier link broke.
    Skipped,
}

/// The verdict on each link, in [`Link::ALL`]'s order.
#[derive(Debug, Clone)]
pub struct Preflight {
    pub links: Vec<(Link, Verdict)>,
}

impl Preflight {
    /// Whether every link held.
    pub fn passed(&self) -> bool {
        self.links
            .iter()
            .all(|(_, verdict)| matches!(verdict, Verdict::Passed(_)))
    }

    /// The first failure, if any.
    pub fn failure(&self) -> Option<&Failure> {
        self.links.iter().find_map(|(_, verdict)| match verdict {
            Verdict::Failed(failure) => Some(failure),
            _ => None,
        })
    }

    fn record(&mut self, link: Link, verdict: Verdict) {
        self.links.push((link, verdict));
    }

    /// Records a failed link; the ones not reached are skipped.
    fn fail(mut self, link: Link, failure: Failure) -> Self {
        self.record(link, Verdict::Failed(failure));
        for rest in Link::ALL.iter().skip(self.links.len()) {
            self.links.push((*rest, Verdict::Skipped));
        }
        self
    }
}

/// Checks the chain of `xds` link by link. It writes nothing but what every exchange writes (the
/// rotated refresh token into the Xero Secret) and the credentials it applies to the datasource.
pub async fn preflight(xds: &XeroDataset, services: &Services) -> Preflight {
    let mut report = Preflight { links: Vec::new() };
    let spec = match validate(xds, Duration::from_secs(600), services.configuration()) {
        Ok(spec) => spec,
        Err(invalid) => {
            let failure = Failure {
                reason: Reason::InvalidSpec,
                message: invalid.0,
                needs_human: true,
            };
            return report.fail(Link::Spec, failure);
        }
    };
    report.record(Link::Spec, Verdict::Passed("valid".into()));
    let namespace = xds.namespace().unwrap_or_default();
    let mut advice = Advice {
        namespace: namespace.clone(),
        xero_secret: spec.xero_secret.name.clone(),
        dataset_settings: None,
    };
    let failed = |report: Preflight, link, err: StepError, advice: &Advice| {
        let (failure, _) = failure_of(&err, CHECK_TIMING, advice);
        report.fail(link, failure)
    };
    let cloud = match services.cloud(spec.cloud) {
        Ok(cloud) => cloud,
        Err(err) => return failed(report, Link::PowerBiSignIn, StepError::Call(err), &advice),
    };
    let session = Session {
        services,
        cloud,
        namespace: &namespace,
        spec: &spec,
    };
    let token = match session.powerbi_token().await {
        Ok(token) => token,
        Err(err) => return failed(report, Link::PowerBiSignIn, err, &advice),
    };
    let identity = match &spec.powerbi_secret {
        Some(secret) => format!("as the service principal in Secret {}", secret.name),
        None => "with the workload identity".to_owned(),
    };
    report.record(Link::PowerBiSignIn, Verdict::Passed(identity));

    let (dataset_id, dataset_name) = match identify_dataset(&session, &token, None).await {
        Ok(found) => found,
        Err(err) => return failed(report, Link::Dataset, err, &advice),
    };
    advice.dataset_settings =
        Some(Cloud::from(spec.cloud).dataset_settings_url(&spec.workspace_id, &dataset_id));
    let found = format!("{dataset_name} ({dataset_id})");
    report.record(Link::Dataset, Verdict::Passed(found));

    let binding = match datasource_binding(&session, &token, &dataset_id).await {
        Ok(binding) => binding,
        Err(err) => return failed(report, Link::XeroDatasource, err, &advice),
    };
    let bound = format!(
        "datasource {} on gateway {}",
        binding.datasource_id, binding.gateway_id
    );
    report.record(Link::XeroDatasource, Verdict::Passed(bound));

    let secret = session.xero_secret();
    let xero = match xero_access_token(&session, &secret).await {
        Ok(xero) => xero,
        Err(err) => return failed(report, Link::XeroSignIn, err, &advice),
    };
    let signed_in = format!(
        "access token valid until {}; refresh token stored in Secret {} at {}",
        xero.expires_at, secret.name, xero.refresh_token_rotated_at
    );
    report.record(Link::XeroSignIn, Verdict::Passed(signed_in));

    let organisation = match xero_organisation(&session, &xero.access_token).await {
        Ok(organisation) => organisation,
        Err(err) => return failed(report, Link::XeroOrganisation, err, &advice),
    };
    let tenant = format!(
        "{} (tenant {})",
        organisation.tenant_name.as_deref().unwrap_or("?"),
        organisation.tenant_id
    );
    report.record(Link::XeroOrganisation, Verdict::Passed(tenant));

    let applied = update_datasource(&session, &token, &dataset_id, binding, &xero.access_token);
    if let Err(err) = applied.await {
        return failed(report, Link::CredentialsAccepted, err, &advice);
    }
    let accepted = "OAuth2 credential set on the datasource".to_owned();
    report.record(Link::CredentialsAccepted, Verdict::Passed(accepted));
    report
}

/// The failure policy's waits do not matter to a one-off check.
const CHECK_TIMING: Timing = Timing {
    resync_interval: Duration::from_secs(6 * 3600),
    poll_interval: Duration::from_secs(15),
    default_credential_lead_time: Duration::from_secs(600),
};
