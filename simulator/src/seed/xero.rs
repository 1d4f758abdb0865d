//! Xero apps, connections and tokens issued before start-up.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Xero's side: apps, the organisations connected to them, and tokens already issued.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct XeroSeed {
    /// OAuth2 apps registered at developer.xero.com.
    pub apps: Vec<XeroAppSeed>,
    /// Organisations connected to the apps; also the organisations a user consents to.
    pub connections: Vec<XeroConnectionSeed>,
    /// Refresh tokens already issued (e.g. the one an operator's Secret starts with).
    pub refresh_tokens: Vec<XeroTokenSeed>,
    /// Access tokens already issued (e.g. the one a datasource's credentials hold).
    pub access_tokens: Vec<XeroAccessTokenSeed>,
}

/// A Xero OAuth2 app.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct XeroAppSeed {
    /// 32 uppercase hex characters in real life; anything here.
    pub client_id: String,
    /// Absent for a PKCE (public) app, which authenticates with its client id alone.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Redirect URIs accepted by the authorize and token endpoints (exact match).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Tenants a user consents to at `/connect/authorize`; all seeded connections when absent.
    #[serde(default)]
    pub consent_tenant_ids: Option<Vec<String>>,
}

/// A Xero connection (an organisation connected to an app).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct XeroConnectionSeed {
    /// Connection id; generated when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// The app it belongs to; every app when absent.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Organisation id.
    pub tenant_id: String,
    /// Organisation display name.
    pub tenant_name: String,
    /// `ORGANISATION`, `PRACTICE`, ...
    #[serde(default = "default_tenant_type")]
    pub tenant_type: String,
    /// When first connected; start time when absent.
    #[serde(default)]
    pub created_date_utc: Option<Timestamp>,
    /// When last (re)connected; the creation time when absent.
    #[serde(default)]
    pub updated_date_utc: Option<Timestamp>,
}

fn default_tenant_type() -> String {
    "ORGANISATION".to_owned()
}

/// A Xero refresh token issued before start-up.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct XeroTokenSeed {
    /// The token value.
    pub token: String,
    /// The app it was issued to; the first app when absent.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Tenants it grants; all the app's connections when absent.
    #[serde(default)]
    pub tenant_ids: Option<Vec<String>>,
    /// Granted scope; a typical read-only set with `offline_access` when absent.
    #[serde(default)]
    pub scope: Option<String>,
}

/// A Xero access token issued before start-up.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct XeroAccessTokenSeed {
    /// The token value.
    pub token: String,
    /// The app it was issued to; the first app when absent.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Tenants it grants; all the app's connections when absent.
    #[serde(default)]
    pub tenant_ids: Option<Vec<String>>,
    /// Seconds of validity left at start-up (negative: already expired); the configured access
    /// token lifetime when absent.
    #[serde(default)]
    pub expires_in_seconds: Option<i64>,
}
