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

/// The failure of `err` and when to look again.
pub(crate) fn failure_of(err: &StepError, timing: Timing) -> (Failure, Duration) {
    let err = match err {
        StepError::Call(err) => err,
        StepError::Finding(failure) => return (failure.clone(), timing.resync_interval),
    };
    let (reason, needs_human) = reason_of(err.category(), err.service());
    let message = match reason {
        Reason::XeroRefreshTokenRejected => format!(
            "{}; sign in to Xero again with `xero-operator xero-login` to write a new refresh token to the Secret",
            err.message()
        ),
        _ => err.message().to_owned(),
    };
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
        (C::XeroRefreshTokenRejected | C::XeroClientRejected, _) => {
            (Reason::XeroRefreshTokenRejected, true)
        }
        (C::SecretNotFound, _) => (Reason::SecretNotFound, true),
        (C::SecretKeyMissing, _) => (Reason::SecretKeyMissing, true),
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
                Reason::XeroRefreshTokenRejected,
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
            (
                S::XeroIdentity,
                C::Throttled,
                Reason::XeroUnavailable,
                false,
            ),
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
                C::SecretAccessFailed,
                Reason::ApiUnavailable,
                false,
            ),
            (S::Kubernetes, C::Conflict, Reason::ApiUnavailable, false),
        ];
        for (service, category, reason, needs_human) in table {
            let (failure, wait) = failure_of(&call(service, category), TIMING);
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
        assert_eq!(failure_of(&throttled(0), TIMING).1, Duration::from_secs(1));
        assert_eq!(
            failure_of(&throttled(3000), TIMING).1,
            Duration::from_secs(3000)
        );
        assert_eq!(failure_of(&throttled(86_400), TIMING).1, MAX_RETRY_AFTER);

        let (failure, _) = failure_of(
            &call(
                Service::XeroIdentity,
                ErrorCategory::XeroRefreshTokenRejected,
            ),
            TIMING,
        );
        assert!(
            failure.message.contains("xero-operator xero-login"),
            "{}",
            failure.message
        );
    }
}
