//! The preflight on demand: the chain the operator checks before it reports `Ready`, link by
//! link, for `xero-operator check`. Each link is the same step the reconcile runs (the Power BI
//! sign-in, the dataset, its Xero datasource, the Xero exchange with the new refresh token
//! stored, the organisation, Power BI accepting the credentials), and a failed link gets the same
//! reason and advice the status would show. After the first failure the rest are skipped: each
//! needs what the one before it produced.

use std::time::Duration;

use kube::ResourceExt as _;

use super::execute::{
    datasource_binding, update_datasource, xero_access_token, xero_allowance, xero_organisation,
};
use super::failure::{Advice, StepError, failure_of};
use super::gather::identify_dataset;
use super::model::{Failure, Timing};
use super::services::{Services, Session};
use super::validate::{ValidatedSpec, validate};
use crate::api::{Reason, XeroDataset};
use crate::endpoints::Cloud;
use crate::xero::XeroAccessToken;

/// One link of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Spec,
    PowerBiSignIn,
    Dataset,
    XeroDatasource,
    XeroSignIn,
    XeroOrganisation,
    XeroAllowance,
    CredentialsAccepted,
}

impl Link {
    /// Every link, in the order they are checked.
    pub const ALL: [Link; 8] = [
        Link::Spec,
        Link::PowerBiSignIn,
        Link::Dataset,
        Link::XeroDatasource,
        Link::XeroSignIn,
        Link::XeroOrganisation,
        Link::XeroAllowance,
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
            Link::XeroAllowance => "Xero's limits leave the app calls in the organisation",
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

    fn pass(&mut self, link: Link, found: String) {
        self.record(link, Verdict::Passed(found));
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
    let spec = match validate(
        xds,
        CHECK_TIMING.default_credential_lead_time,
        services.configuration(),
    ) {
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
    match check_links(&mut report, &mut advice, services, &namespace, &spec).await {
        Ok(()) => report,
        Err((link, err)) => {
            let (failure, _) = failure_of(&err, CHECK_TIMING, &advice);
            report.fail(link, failure)
        }
    }
}

/// The links after the spec, each recorded as it passes; the first that breaks, with why.
/// `advice` gains the dataset's settings page once the dataset is known.
async fn check_links(
    report: &mut Preflight,
    advice: &mut Advice,
    services: &Services,
    namespace: &str,
    spec: &ValidatedSpec,
) -> Result<(), (Link, StepError)> {
    let at = |link| move |err| (link, err);
    let cloud = services
        .cloud(spec.cloud)
        .map_err(|err| (Link::PowerBiSignIn, StepError::Call(err)))?;
    let session = Session {
        services,
        cloud,
        namespace,
        spec,
    };
    let token = session
        .powerbi_token()
        .await
        .map_err(at(Link::PowerBiSignIn))?;
    let identity = match &spec.powerbi_secret {
        Some(secret) => format!("as the service principal in Secret {}", secret.name),
        None => "with the workload identity".to_owned(),
    };
    report.pass(Link::PowerBiSignIn, identity);

    let (dataset_id, dataset_name) = identify_dataset(&session, &token, None)
        .await
        .map_err(at(Link::Dataset))?;
    advice.dataset_settings =
        Some(Cloud::from(spec.cloud).dataset_settings_url(&spec.workspace_id, &dataset_id));
    report.pass(Link::Dataset, format!("{dataset_name} ({dataset_id})"));

    let binding = datasource_binding(&session, &token, &dataset_id)
        .await
        .map_err(at(Link::XeroDatasource))?;
    report.pass(
        Link::XeroDatasource,
        format!(
            "datasource {} on gateway {}",
            binding.datasource_id, binding.gateway_id
        ),
    );

    let xero = check_xero_links(report, &session).await?;

    update_datasource(&session, &token, &dataset_id, binding, &xero.access_token)
        .await
        .map_err(at(Link::CredentialsAccepted))?;
    report.pass(
        Link::CredentialsAccepted,
        "OAuth2 credential set on the datasource".to_owned(),
    );
    Ok(())
}

/// The Xero links: the refresh-token exchange (the new token stored), the organisation among the
/// connections, and the app's calls left in it; the access token for the last link.
async fn check_xero_links(
    report: &mut Preflight,
    session: &Session<'_>,
) -> Result<XeroAccessToken, (Link, StepError)> {
    let at = |link| move |err| (link, err);
    let secret = session.xero_secret();
    let xero = xero_access_token(session, &secret)
        .await
        .map_err(at(Link::XeroSignIn))?;
    report.pass(
        Link::XeroSignIn,
        format!(
            "access token valid until {}; refresh token stored in Secret {} at {}",
            xero.expires_at, secret.name, xero.refresh_token_rotated_at
        ),
    );

    let organisation = xero_organisation(session, &xero.access_token)
        .await
        .map_err(at(Link::XeroOrganisation))?;
    report.pass(
        Link::XeroOrganisation,
        format!(
            "{} (tenant {})",
            organisation.tenant_name.as_deref().unwrap_or("?"),
            organisation.tenant_id
        ),
    );

    let allowance = xero_allowance(
        session,
        &secret,
        &xero.access_token,
        &organisation.tenant_id,
    )
    .await
    .map_err(at(Link::XeroAllowance))?;
    let left = |count: Option<u32>| count.map_or_else(|| "?".to_owned(), |n| n.to_string());
    report.pass(
        Link::XeroAllowance,
        format!(
            "{} left today, {} this minute",
            left(allowance.day),
            left(allowance.minute)
        ),
    );
    Ok(xero)
}

/// The failure policy's waits do not matter to a one-off check.
const CHECK_TIMING: Timing = Timing {
    resync_interval: Duration::from_secs(6 * 3600),
    poll_interval: Duration::from_secs(15),
    default_credential_lead_time: Duration::from_secs(600),
};
