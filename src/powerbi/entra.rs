//! Microsoft Entra ID access tokens for Power BI: the client credentials grant, with a client
//! secret or with workload identity federation, cached until shortly before expiry.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{AuthType, ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};
use reqwest::Url;
use tokio::time::Instant;

use crate::clock::Clock;
use crate::endpoints::join;
use crate::error::{ClientError, ErrorCategory, Service};
use crate::http::{Call, OAuthHttp, RetryPolicy, token_error};
use crate::secret::SecretString;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// A cached token is replaced this long before it expires, so that no call starts with a token
/// that expires on the way.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// Assumed lifetime when Entra ID leaves out `expires_in` (it does not in practice).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// A service principal with a client secret, read from the XeroDataset's Secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientSecretCredential {
    /// The Entra tenant (directory) id.
    pub tenant_id: String,
    /// The application (client) id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: SecretString,
}

/// The operator's own identity through workload identity federation (for example AKS workload
/// identity): a projected Kubernetes service-account token is the client assertion.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkloadIdentity {
    /// The Entra tenant id (`AZURE_TENANT_ID`).
    pub tenant_id: String,
    /// The application or managed identity's client id (`AZURE_CLIENT_ID`).
    pub client_id: String,
    /// The federated token file (`AZURE_FEDERATED_TOKEN_FILE`). The kubelet rotates it, so it
    /// is read again before every token request.
    pub federated_token_file: PathBuf,
}

impl WorkloadIdentity {
    /// Reads `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and `AZURE_FEDERATED_TOKEN_FILE`, as the
    /// workload identity webhook injects them. (`AZURE_AUTHORITY_HOST` is read by
    /// [`crate::endpoints::Endpoints::resolve`].)
    pub fn from_env() -> Result<Self, ClientError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`WorkloadIdentity::from_env`] with an injected environment.
    pub fn from_lookup(env: impl Fn(&str) -> Option<String>) -> Result<Self, ClientError> {
        let get = |name: &str| {
            env(name)
                .filter(|value| !value.trim().is_empty())
                .ok_or_else(|| {
                    ClientError::new(
                        Service::EntraId,
                        ErrorCategory::WorkloadIdentityUnavailable,
                        format!(
                            "workload identity needs the environment variable {name}; is the \
                         operator's service account set up for Azure workload identity?"
                        ),
                    )
                })
        };
        Ok(Self {
            tenant_id: get("AZURE_TENANT_ID")?,
            client_id: get("AZURE_CLIENT_ID")?,
            federated_token_file: PathBuf::from(get("AZURE_FEDERATED_TOKEN_FILE")?),
        })
    }

    async fn assertion(&self) -> Result<SecretString, ClientError> {
        let unavailable = |reason: String| {
            ClientError::new(
                Service::EntraId,
                ErrorCategory::WorkloadIdentityUnavailable,
                format!(
                    "cannot read the federated token file {}: {reason}",
                    self.federated_token_file.display()
                ),
            )
        };
        let text = tokio::fs::read_to_string(&self.federated_token_file)
            .await
            .map_err(|error| unavailable(error.to_string()))?;
        let assertion = text.trim();
        if assertion.is_empty() {
            return Err(unavailable("it is empty".to_owned()));
        }
        Ok(SecretString::new(assertion))
    }
}

/// How the operator proves its identity to Entra ID for one XeroDataset.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EntraCredential {
    /// A service principal with a client secret.
    ClientSecret(ClientSecretCredential),
    /// The operator's own workload identity.
    WorkloadIdentity(WorkloadIdentity),
}

impl EntraCredential {
    fn tenant_id(&self) -> &str {
        match self {
            Self::ClientSecret(credential) => &credential.tenant_id,
            Self::WorkloadIdentity(identity) => &identity.tenant_id,
        }
    }

    fn client_id(&self) -> &str {
        match self {
            Self::ClientSecret(credential) => &credential.client_id,
            Self::WorkloadIdentity(identity) => &identity.client_id,
        }
    }
}

#[derive(Clone)]
struct CachedToken {
    token: SecretString,
    renew_at: Instant,
}

type TokenSlot = Arc<tokio::sync::Mutex<Option<CachedToken>>>;

/// Gets and caches Power BI access tokens from Entra ID.
///
/// Tokens are cached per credential: per tenant and client id, and also per client secret, so
/// that a Secret in one namespace cannot borrow the token of a service principal whose secret it
/// does not hold. Concurrent callers for one credential share one token request.
pub struct EntraTokenProvider {
    http: reqwest::Client,
    authority_host: Url,
    scope: String,
    retry: RetryPolicy,
    slots: Mutex<HashMap<EntraCredential, TokenSlot>>,
    /// The operator's clock, on which token lifetimes run (real time outside benchmarks).
    clock: Clock,
}

impl EntraTokenProvider {
    /// A provider asking the authority at `authority_host` (for example
    /// `https://login.microsoftonline.com/`) for tokens of `scope` (see
    /// [`crate::endpoints::Cloud::powerbi_scope`]).
    pub fn new(
        http: reqwest::Client,
        authority_host: Url,
        scope: impl Into<String>,
        retry: RetryPolicy,
    ) -> Self {
        Self {
            http,
            authority_host,
            scope: scope.into(),
            retry,
            slots: Mutex::new(HashMap::new()),
            clock: Clock::real(),
        }
    }

    /// Lets token lifetimes run on `clock`: a benchmark's faster clock ends them sooner.
    pub fn on_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// A Power BI access token for `credential`: the cached one while it has more than a few
    /// minutes left, else a new one.
    pub async fn token(&self, credential: &EntraCredential) -> Result<SecretString, ClientError> {
        let slot = self.slot(credential);
        // Holding the slot's lock across the request makes concurrent callers wait for this
        // request and reuse its token instead of sending their own.
        let mut cached = slot.lock().await;
        if let Some(token) = cached
            .as_ref()
            .filter(|token| Instant::now() < token.renew_at)
        {
            return Ok(token.token.clone());
        }
        let requested_at = Instant::now();
        let (token, lifetime) = self.request(credential).await?;
        let margin = REFRESH_MARGIN.min(lifetime / 2);
        *cached = Some(CachedToken {
            token: token.clone(),
            renew_at: requested_at + self.clock.real_duration(lifetime - margin),
        });
        Ok(token)
    }

    /// Forgets the cached token of `credential`, for example after Power BI answered
    /// `TokenExpired`.
    pub async fn invalidate(&self, credential: &EntraCredential) {
        self.slot(credential).lock().await.take();
    }

    fn slot(&self, credential: &EntraCredential) -> TokenSlot {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if !slots.contains_key(credential) {
            // A new credential (a new client secret, say): the slots of credentials whose token
            // has expired go, so that no old client secret stays in memory for long.
            let now = Instant::now();
            slots.retain(|_, slot| {
                slot.try_lock().map_or(true, |cached| {
                    cached.as_ref().is_some_and(|t| now < t.renew_at)
                })
            });
        }
        slots.entry(credential.clone()).or_default().clone()
    }

    async fn request(
        &self,
        credential: &EntraCredential,
    ) -> Result<(SecretString, Duration), ClientError> {
        let call = Call {
            service: Service::EntraId,
            operation: "ClientCredentialsToken",
            idempotent: true,
        };
        let url = join(
            &self.authority_host,
            &[credential.tenant_id(), "oauth2", "v2.0", "token"],
        )?;
        let client = BasicClient::new(ClientId::new(credential.client_id().to_owned()))
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri(TokenUrl::from_url(url));
        let (client, assertion) = match credential {
            EntraCredential::ClientSecret(secret) => (
                client
                    .set_client_secret(ClientSecret::new(secret.client_secret.expose().to_owned())),
                None,
            ),
            EntraCredential::WorkloadIdentity(identity) => {
                (client, Some(identity.assertion().await?))
            }
        };
        let mut request = client
            .exchange_client_credentials()
            .add_scope(Scope::new(self.scope.clone()));
        if let Some(assertion) = &assertion {
            request = request
                .add_extra_param("client_assertion_type", JWT_BEARER)
                .add_extra_param("client_assertion", assertion.expose());
        }
        let http = OAuthHttp {
            client: &self.http,
            policy: &self.retry,
            call,
        };
        let response = request
            .request_async(&http)
            .await
            // Every OAuth2 error from Entra ID means the identity or its set-up is wrong.
            .map_err(|error| token_error(call, error, |_| ErrorCategory::EntraTokenRejected))?;
        tracing::debug!(
            tenant_id = credential.tenant_id(),
            client_id = credential.client_id(),
            "got a Power BI access token from Entra ID"
        );
        Ok((
            SecretString::new(response.access_token().secret().as_str()),
            response.expires_in().unwrap_or(DEFAULT_LIFETIME),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_new_credential_sweeps_out_the_slots_of_expired_tokens() {
        crate::telemetry::install_crypto_provider();
        let provider = EntraTokenProvider::new(
            reqwest::Client::new(),
            Url::parse("http://127.0.0.1:9/").expect("url"),
            "scope",
            RetryPolicy::default(),
        );
        let credential = |secret: &str| {
            EntraCredential::ClientSecret(ClientSecretCredential {
                tenant_id: "t".into(),
                client_id: "c".into(),
                client_secret: SecretString::new(secret),
            })
        };
        let cache = |secret: &str, renew_at: Instant| {
            let slot = provider.slot(&credential(secret));
            *slot.try_lock().expect("free") = Some(CachedToken {
                token: SecretString::new("token"),
                renew_at,
            });
        };
        cache("old-secret", Instant::now());
        cache("current-secret", Instant::now() + Duration::from_secs(600));
        provider.slot(&credential("new-secret"));
        let slots = provider.slots.lock().expect("lock");
        assert!(
            !slots.contains_key(&credential("old-secret")),
            "the expired one goes"
        );
        assert!(slots.contains_key(&credential("current-secret")));
        assert!(slots.contains_key(&credential("new-secret")));
    }

    #[test]
    fn workload_identity_reads_the_webhook_variables() {
        let env = |name: &str| match name {
            "AZURE_TENANT_ID" => Some("t".to_owned()),
            "AZURE_CLIENT_ID" => Some("c".to_owned()),
            "AZURE_FEDERATED_TOKEN_FILE" => Some("/var/run/token".to_owned()),
            _ => None,
        };
        let identity = WorkloadIdentity::from_lookup(env).unwrap();
        assert_eq!(identity.tenant_id, "t");
        assert_eq!(
            identity.federated_token_file,
            PathBuf::from("/var/run/token")
        );

        let error = WorkloadIdentity::from_lookup(|name| {
            (name != "AZURE_CLIENT_ID").then(|| "x".to_owned())
        })
        .unwrap_err();
        assert_eq!(error.category(), ErrorCategory::WorkloadIdentityUnavailable);
        assert!(error.message().contains("AZURE_CLIENT_ID"));
    }

    #[test]
    fn credentials_debug_without_the_secret() {
        let credential = EntraCredential::ClientSecret(ClientSecretCredential {
            tenant_id: "tenant".into(),
            client_id: "client".into(),
            client_secret: SecretString::new("very-secret"),
        });
        let debug = format!("{credential:?}");
        assert!(debug.contains("client"));
        assert!(!debug.contains("very-secret"));
    }
}
