//! The one error type of the external clients (Power BI, Entra ID, Xero, Kubernetes Secrets):
//! the service that failed and a stable category, from which the controller picks the
//! condition reason (`reconcile::failure`).

use std::fmt;
use std::time::Duration;

/// Why a call to an external service failed. Each category is a stable PascalCase word
/// ([`ErrorCategory::as_str`]); adding one is fine, renaming one breaks dashboards and alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCategory {
    /// The service has no such resource (HTTP 404).
    NotFound,
    /// The service did not accept the caller's identity (HTTP 401).
    Unauthorized,
    /// The caller lacks permission (HTTP 403).
    Forbidden,
    /// The access token expired (Power BI answers 403 with code `TokenExpired`; Xero 401).
    TokenExpired,
    /// The service asked the caller to slow down (HTTP 429), after the configured retries.
    Throttled,
    /// The request conflicts with the resource's state (HTTP 409), such as a running refresh.
    Conflict,
    /// The service rejected the request as invalid (HTTP 400 and other 4xx).
    InvalidRequest,
    /// The service failed (HTTP 5xx), after the configured retries.
    ServerError,
    /// The service answered with a body the client cannot read.
    MalformedResponse,
    /// The service did not answer in time.
    Timeout,
    /// The service could not be reached (DNS, connection refused, TLS).
    ConnectionFailed,
    /// Microsoft Entra ID rejected the service principal (wrong client id or secret, untrusted
    /// federated assertion, unknown tenant).
    EntraTokenRejected,
    /// Workload identity is configured incompletely (environment variables or the federated
    /// token file missing).
    WorkloadIdentityUnavailable,
    /// Xero rejected the refresh token (`invalid_grant`): expired, revoked or superseded. A human
    /// has to sign in again.
    XeroRefreshTokenRejected,
    /// Xero rejected the app's client id or secret (`invalid_client`).
    XeroClientRejected,
    /// No Xero connection has the organisation's name.
    OrganisationNotFound,
    /// Several Xero connections have the organisation's name.
    OrganisationAmbiguous,
    /// The referenced Kubernetes Secret does not exist.
    SecretNotFound,
    /// The referenced Kubernetes Secret has no (or an empty) value for a key.
    SecretKeyMissing,
    /// A Secret's value has a shape no such credential has.
    SecretValueInvalid,
    /// The operator may not read or write Secrets in the namespace: it is not among the ones
    /// that opted in (`--secret-namespaces`), or the API server refused (RBAC).
    SecretForbidden,
    /// Reading or writing a Kubernetes Secret failed for another reason (API server
    /// unavailable).
    SecretAccessFailed,
    /// A configured endpoint URL is not acceptable.
    InvalidEndpoint,
}

impl ErrorCategory {
    /// The stable PascalCase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "NotFound",
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden => "Forbidden",
            Self::TokenExpired => "TokenExpired",
            Self::Throttled => "Throttled",
            Self::Conflict => "Conflict",
            Self::InvalidRequest => "InvalidRequest",
            Self::ServerError => "ServerError",
            Self::MalformedResponse => "MalformedResponse",
            Self::Timeout => "Timeout",
            Self::ConnectionFailed => "ConnectionFailed",
            Self::EntraTokenRejected => "EntraTokenRejected",
            Self::WorkloadIdentityUnavailable => "WorkloadIdentityUnavailable",
            Self::XeroRefreshTokenRejected => "XeroRefreshTokenRejected",
            Self::XeroClientRejected => "XeroClientRejected",
            Self::OrganisationNotFound => "OrganisationNotFound",
            Self::OrganisationAmbiguous => "OrganisationAmbiguous",
            Self::SecretNotFound => "SecretNotFound",
            Self::SecretKeyMissing => "SecretKeyMissing",
            Self::SecretValueInvalid => "SecretValueInvalid",
            Self::SecretForbidden => "SecretForbidden",
            Self::SecretAccessFailed => "SecretAccessFailed",
            Self::InvalidEndpoint => "InvalidEndpoint",
        }
    }
}

impl fmt::Display for ErrorCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A service the operator calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// The Power BI REST API.
    PowerBi,
    /// Microsoft Entra ID, which issues the Power BI access tokens.
    EntraId,
    /// Xero's identity service (token endpoint).
    XeroIdentity,
    /// Xero's API (connections).
    Xero,
    /// The Kubernetes API (Secrets).
    Kubernetes,
}

impl Service {
    /// The service's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::PowerBi => "Power BI",
            Self::EntraId => "Microsoft Entra ID",
            Self::XeroIdentity => "Xero identity",
            Self::Xero => "Xero",
            Self::Kubernetes => "Kubernetes",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A failed call to an external service. The message is for humans (conditions, events, logs)
/// and never holds a secret: messages are built from status codes, the service's error codes and
/// names, not from request bodies or headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    /// `None` for a configuration error found before any call (an unusable endpoint URL).
    service: Option<Service>,
    category: ErrorCategory,
    message: String,
    http_status: Option<u16>,
    request_id: Option<String>,
    retry_after: Option<Duration>,
}

impl ClientError {
    /// An error of `service` in `category` with a human-readable `message` (which must hold no
    /// secret).
    pub fn new(service: Service, category: ErrorCategory, message: impl Into<String>) -> Self {
        Self {
            service: Some(service),
            category,
            message: message.into(),
            http_status: None,
            request_id: None,
            retry_after: None,
        }
    }

    /// A configured endpoint that cannot be used; no service was called.
    pub fn invalid_endpoint(message: impl Into<String>) -> Self {
        Self {
            service: None,
            ..Self::new(Service::PowerBi, ErrorCategory::InvalidEndpoint, message)
        }
    }

    /// Records the HTTP status the service answered with.
    pub fn with_http_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }

    /// Records the service's request id, for support cases.
    pub fn with_request_id(mut self, request_id: Option<String>) -> Self {
        self.request_id = request_id;
        self
    }

    /// Records how long the service asked the caller to wait.
    pub fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// The same error in another category, when the body says more than the status.
    pub(crate) fn with_category(mut self, category: ErrorCategory) -> Self {
        self.category = category;
        self
    }

    /// Appends advice to the message.
    pub(crate) fn with_message_suffix(mut self, suffix: &str) -> Self {
        self.message.push_str(suffix);
        self
    }

    /// The service that failed; `None` for a configuration error.
    pub fn service(&self) -> Option<Service> {
        self.service
    }

    /// The stable category.
    pub fn category(&self) -> ErrorCategory {
        self.category
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status the service answered with, if it answered.
    pub fn http_status(&self) -> Option<u16> {
        self.http_status
    }

    /// The service's request id (`RequestId` / `x-ms-request-id`), if it sent one.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// How long the service asked the caller to wait before trying again (`Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(request_id) = &self.request_id {
            write!(f, " (request id {request_id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ClientError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_are_pascal_case_words() {
        for category in [
            ErrorCategory::NotFound,
            ErrorCategory::XeroRefreshTokenRejected,
            ErrorCategory::SecretKeyMissing,
            ErrorCategory::MalformedResponse,
        ] {
            let name = category.as_str();
            assert!(name.chars().next().is_some_and(|c| c.is_ascii_uppercase()));
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric()));
            assert_eq!(format!("{category:?}"), name);
        }
    }

    #[test]
    fn display_adds_the_request_id() {
        let error = ClientError::new(
            Service::PowerBi,
            ErrorCategory::NotFound,
            "dataset not found",
        )
        .with_request_id(Some("abc".into()));
        assert_eq!(error.to_string(), "dataset not found (request id abc)");
    }
}
