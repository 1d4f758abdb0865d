//! The failure policy, pure: which [`Reason`] a failed step gets, whether a person must act,
//! and when to try again. The one place that maps client errors to the operator's vocabulary.

use std::time::Duration;

use super::model::{Failure, Timing};
use crate::api::Reason;
use crate::error::{ClientError, ErrorCategory, Service};

/// The longest wait a service's Retry-After may impose (Power BI has sent waits of nearly an
/// hour).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(6 * 3600);
/// The wait after a transient failure whose service named none.
const DEFAULT_RETRY: Duration = Duration::from_secs(30);

/// Why a step of the pipeline stopped.
#[derive(Debug)]
pub(crate) enum StepError {
    /// A call to a service failed.
    Call(ClientError),
    /// The pipeline found something a human must fix (a dataset or datasource that cannot be
    /// found or is ambiguous).
    Finding(Failure),
}

/// Where a person acts when the chain needs one: the Xero Secret to sign in again into, and the
/// dataset's settings page in the Power BI service.
#[derive(Debug, Clone, Default)]
pub(crate) struct Advice {
    pub namespace: String,
    pub xero_secret: String,
    /// The dataset's settings page, once the dataset is known.
    pub dataset_settings: Option<String>,
}

impl Advice {
    /// What to do about a failure of `reason`, one step away.
    fn for_reason(&self, reason: Reason) -> Option<String> {
        let login = format!(
            "`xero-operator xero-login --secret {} -n {}`",
            self.xero_secret, self.namespace
        );
        let settings = self.dataset_settings.as_deref();
        match reason {
            Reason::XeroRefreshTokenRejected => Some(format!(
                "sign in to Xero again with {login}; it writes a new refresh token to the Secret and the operator recovers within seconds"
            )),
            Reason::XeroAppRejected => Some(format!(
                "check clientId and clientSecret in Secret {}/{} against the Xero app at developer.xero.com, then sign in with {login}",
                self.namespace, self.xero_secret
            )),
            Reason::CredentialsRejected => Some(match settings {
                Some(url) => format!(
                    "open the dataset's settings at {url}, edit the Xero data source's credentials and sign in; or sign in again with {login}"
                ),
                None => format!("sign in to Xero again with {login}"),
            }),
            Reason::PowerBIForbidden => Some(match settings {
                Some(url) => format!(
                    "make the operator's principal the dataset's owner (Take over at {url}) or set spec.powerBI.takeOver: true"
                ),
                None => "make the operator's principal a Member or Admin of the workspace and the dataset's owner, or set spec.powerBI.takeOver: true".into(),
            }),
            _ => None,
        }
    }
}

impl StepError {
    /// Whether Power BI refused an access token as expired.
    pub(crate) fn is_token_expired(&self) -> bool {
        matches!(self, StepError::Call(err) if err.category() == ErrorCategory::TokenExpired)
    }
}

/// The failure of `err`, with what a person must do when one must, and when to look again.
pub(crate) fn failure_of(err: &StepError, timing: Timing, advice: &Advice) -> (Failure, Duration) {
    let (mut failure, wait) = classify(err, timing);
    if let Some(todo) = advice.for_reason(failure.reason) {
        failure.message = format!("{}; {todo}", failure.message);
    }
    (failure, wait)
}

fn classify(err: &StepError, timing: Timing) -> (Failure, Duration) {
    let err = match err {
        StepError::Call(err) => err,
        StepError::Finding(failure) => return (failure.clone(), timing.resync_interval),
    };
    let (reason, needs_human) = reason_of(err.category(), err.service());
    let message = err.message().to_owned();
    let wait = if needs_human {
        timing.resync_interval
    } else {
        // Retry-After is honoured in full.
        err.retry_after()
            .unwrap_or(DEFAULT_RETRY)
            .clamp(Duration::from_secs(1), MAX_RETRY_AFTER)
    };
    let failure = Failure {
        reason,
        message,
        needs_human,
    };
    (failure, wait)
}

/// The reason of a failed call by its category and service, and whether a person must act.
pub(crate) fn reason_of(category: ErrorCategory, service: Option<Service>) -> (Reason, bool) {
    use ErrorCategory as C;
    use Service as S;
    match (category, service) {
        (C::XeroRefreshTokenRejected, _) => (Reason::XeroRefreshTokenRejected, true),
        (C::XeroClientRejected, _) => (Reason::XeroAppRejected, true),
        (C::SecretNotFound, _) => (Reason::SecretNotFound, true),
        (C::SecretKeyMissing, _) => (Reason::SecretKeyMissing, true),
        (C::SecretValueInvalid, _) => (Reason::SecretValueInvalid, true),
        (C::SecretForbidden, _) => (Reason::SecretForbidden, true),
        (C::OrganisationNotFound, _) => (Reason::OrganisationNotFound, true),
        (C::OrganisationAmbiguous, _) => (Reason::OrganisationAmbiguous, true),
        (C::InvalidEndpoint, _) => (Reason::InvalidSpec, true),
        // Xero refusing a fresh access token means the user's access to the organisation was
        // revoked: someone must sign in again.
        (C::Unauthorized | C::Forbidden, Some(S::Xero | S::XeroIdentity)) => {
            (Reason::XeroRefreshTokenRejected, true)
        }
        (C::EntraTokenRejected | C::WorkloadIdentityUnavailable | C::Unauthorized, _) => {
            (Reason::PowerBIUnauthorized, true)
        }
        (C::Forbidden, Some(S::PowerBi | S::EntraId)) => (Reason::PowerBIForbidden, true),
        (C::NotFound, Some(S::PowerBi)) => (Reason::DatasetNotFound, true),
        (C::Throttled, Some(S::PowerBi | S::EntraId)) => (Reason::PowerBIThrottled, false),
        (C::Throttled, Some(S::Xero | S::XeroIdentity)) => (Reason::XeroThrottled, false),
        (_, Some(S::Xero | S::XeroIdentity)) => (Reason::XeroUnavailable, false),
        (_, Some(S::Kubernetes)) => (Reason::ApiUnavailable, false),
        _ => (Reason::PowerBIUnavailable, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMING: Timing = Timing {
        resync_interval: Duration::from_secs(3600),
        poll_interval: Duration::from_secs(15),
        default_credential_lead_time: Duration::from_secs(600),
    };

    fn call(service: Service, category: ErrorCategory) -> StepError {
        StepError::Call(ClientError::new(service, category, "it failed"))
    }

    #[test]
    fn each_failure_gets_its_reason_and_a_person_only_when_needed() {
        use ErrorCategory as C;
        use Service as S;
        let table = [
            (
                S::XeroIdentity,
                C::XeroRefreshTokenRejected,
                Reason::XeroRefreshTokenRejected,
                true,
            ),
            (
                S::XeroIdentity,
                C::XeroClientRejected,
                Reason::XeroAppRejected,
                true,
            ),
            (
                S::Xero,
                C::Unauthorized,
                Reason::XeroRefreshTokenRejected,
                true,
            ),
            (
                S::Xero,
                C::OrganisationNotFound,
                Reason::OrganisationNotFound,
                true,
            ),
            (S::Xero, C::ServerError, Reason::XeroUnavailable, false),
            (S::XeroIdentity, C::Throttled, Reason::XeroThrottled, false),
            (S::Xero, C::Throttled, Reason::XeroThrottled, false),
            (
                S::EntraId,
                C::EntraTokenRejected,
                Reason::PowerBIUnauthorized,
                true,
            ),
            (
                S::EntraId,
                C::Unauthorized,
                Reason::PowerBIUnauthorized,
                true,
            ),
            (
                S::EntraId,
                C::ServerError,
                Reason::PowerBIUnavailable,
                false,
            ),
            (S::EntraId, C::Throttled, Reason::PowerBIThrottled, false),
            (
                S::PowerBi,
                C::Unauthorized,
                Reason::PowerBIUnauthorized,
                true,
            ),
            (S::PowerBi, C::Forbidden, Reason::PowerBIForbidden, true),
            (S::PowerBi, C::NotFound, Reason::DatasetNotFound, true),
            (S::PowerBi, C::Throttled, Reason::PowerBIThrottled, false),
            (S::PowerBi, C::Timeout, Reason::PowerBIUnavailable, false),
            (
                S::Kubernetes,
                C::SecretNotFound,
                Reason::SecretNotFound,
                true,
            ),
            (
                S::Kubernetes,
                C::SecretKeyMissing,
                Reason::SecretKeyMissing,
                true,
            ),
            (
                S::Kubernetes,
                C::SecretForbidden,
                Reason::SecretForbidden,
                true,
            ),
            (
                S::Kubernetes,
                C::SecretAccessFailed,
                Reason::ApiUnavailable,
                false,
            ),
            (S::Kubernetes, C::Conflict, Reason::ApiUnavailable, false),
        ];
        for (service, category, reason, needs_human) in table {
            let (failure, wait) = failure_of(&call(service, category), TIMING, &Advice::default());
            assert_eq!(
                (failure.reason, failure.needs_human),
                (reason, needs_human),
                "{service:?} {category:?}"
            );
            let expected = if needs_human {
                TIMING.resync_interval
            } else {
                DEFAULT_RETRY
            };
            assert_eq!(wait, expected, "{service:?} {category:?}");
        }
        let (failure, _) = failure_of(
            &StepError::Call(ClientError::invalid_endpoint("bad URL")),
            TIMING,
            &Advice::default(),
        );
        assert_eq!(failure.reason, Reason::InvalidSpec);
    }

    #[test]
    fn retry_after_is_honoured_within_bounds_and_a_rejected_sign_in_says_what_to_do() {
        let throttled = |seconds| {
            StepError::Call(
                ClientError::new(Service::PowerBi, ErrorCategory::Throttled, "slow down")
                    .with_retry_after(Some(Duration::from_secs(seconds))),
            )
        };
        assert_eq!(
            failure_of(&throttled(0), TIMING, &Advice::default()).1,
            Duration::from_secs(1)
        );
        assert_eq!(
            failure_of(&throttled(3000), TIMING, &Advice::default()).1,
            Duration::from_secs(3000)
        );
        assert_eq!(
            failure_of(&throttled(86_400), TIMING, &Advice::default()).1,
            MAX_RETRY_AFTER
        );

        let advice = Advice {
            namespace: "finance".into(),
            xero_secret: "xero-app".into(),
            dataset_settings: Some("https://app.powerbi.com/groups/w/settings/datasets/d".into()),
        };
        let (failure, _) = failure_of(
            &call(
                Service::XeroIdentity,
                ErrorCategory::XeroRefreshTokenRejected,
            ),
            TIMING,
            &advice,
        );
        assert!(
            failure
                .message
                .contains("`xero-operator xero-login --secret xero-app -n finance`"),
            "{}",
            failure.message
        );
        let (failure, _) = failure_of(
            &call(Service::PowerBi, ErrorCategory::Forbidden),
            TIMING,
            &advice,
        );
        assert!(
            failure
                .message
                .contains("Take over at https://app.powerbi.com/groups/w/settings/datasets/d"),
            "{}",
            failure.message
        );
    }
}
