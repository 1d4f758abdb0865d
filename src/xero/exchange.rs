//! The refresh-token grant against Xero's identity service, with the `oauth2` crate on the
//! process's reqwest client.

use std::time::Duration;

use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{AuthType, ClientId, ClientSecret, RefreshToken, TokenResponse, TokenUrl};
use reqwest::Url;

use crate::endpoints::join;
use crate::error::{ClientError, ErrorCategory, Service};
use crate::http::{Call, OAuthHttp, RetryPolicy, token_error};
use crate::secret::SecretString;

/// Xero access tokens live 30 minutes; assumed when `expires_in` is missing.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(1800);

const CALL: Call = Call {
    service: Service::XeroIdentity,
    operation: "RefreshToken",
    // Presenting the same refresh token twice is safe: the old token keeps working for
    // 30 minutes, which is what makes a lost answer recoverable.
    idempotent: true,
};

/// What one exchange returns.
#[derive(Debug, Clone)]
pub struct XeroTokens {
    /// The access token (30 minutes).
    pub access_token: SecretString,
    /// The new refresh token, which replaces the one presented.
    pub refresh_token: SecretString,
    /// The access token's lifetime.
    pub expires_in: Duration,
}

/// Xero's token endpoint (`{identity}/connect/token`).
#[derive(Debug, Clone)]
pub struct XeroTokenEndpoint {
    http: reqwest::Client,
    token_url: Url,
    retry: RetryPolicy,
}

impl XeroTokenEndpoint {
    /// The endpoint of the identity service at `identity_url` (`https://identity.xero.com/`).
    pub fn new(
        http: reqwest::Client,
        identity_url: &Url,
        retry: RetryPolicy,
    ) -> Result<Self, ClientError> {
        Ok(Self {
            http,
            token_url: join(identity_url, &["connect", "token"])?,
            retry,
        })
    }

    /// Exchanges `refresh_token` for an access token and a new refresh token, authenticating
    /// the app with HTTP Basic (what Xero's own SDKs send). `invalid_grant` gives
    /// `XeroRefreshTokenRejected`, `invalid_client` gives `XeroClientRejected`.
    pub async fn exchange(
        &self,
        client_id: &str,
        client_secret: &SecretString,
        refresh_token: &SecretString,
    ) -> Result<XeroTokens, ClientError> {
        let client = BasicClient::new(ClientId::new(client_id.to_owned()))
            .set_client_secret(ClientSecret::new(client_secret.expose().to_owned()))
            .set_auth_type(AuthType::BasicAuth)
            .set_token_uri(TokenUrl::from_url(self.token_url.clone()));
        let presented = RefreshToken::new(refresh_token.expose().to_owned());
        let http = OAuthHttp {
            client: &self.http,
            policy: &self.retry,
            call: CALL,
        };
        let response = client
            .exchange_refresh_token(&presented)
            .request_async(&http)
            .await
            .map_err(|error| with_hint(token_error(CALL, error, category_of)))?;
        let Some(new_refresh_token) = response.refresh_token() else {
            return Err(ClientError::new(
                Service::XeroIdentity,
                ErrorCategory::MalformedResponse,
                "Xero answered the refresh without a new refresh token; does the app request \
                 the offline_access scope?",
            ));
        };
        Ok(XeroTokens {
            access_token: SecretString::new(response.access_token().secret().as_str()),
            refresh_token: SecretString::new(new_refresh_token.secret().as_str()),
            expires_in: response.expires_in().unwrap_or(DEFAULT_LIFETIME),
        })
    }
}

fn category_of(code: &BasicErrorResponseType) -> ErrorCategory {
    match code {
        BasicErrorResponseType::InvalidGrant => ErrorCategory::XeroRefreshTokenRejected,
        BasicErrorResponseType::InvalidClient | BasicErrorResponseType::UnauthorizedClient => {
            ErrorCategory::XeroClientRejected
        }
        _ => ErrorCategory::InvalidRequest,
    }
}

/// Says what Xero's refusal means; what a person must do, with the exact Secret and command,
/// is the operator's to add (`reconcile::failure::Advice`).
fn with_hint(error: ClientError) -> ClientError {
    match error.category() {
        ErrorCategory::XeroRefreshTokenRejected => {
            error.with_message_suffix("; the refresh token expired, was revoked or was superseded")
        }
        ErrorCategory::XeroClientRejected => error
            .with_message_suffix("; Xero does not accept the app's client id and client secret"),
        _ => error,
    }
}
